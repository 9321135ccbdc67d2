"""The daemon's status page, rendered from a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harvester.models import PollReport, PollStatus, SourceState
from harvester.web import _render

from .conftest import NOW


def test_status_page_lists_recent_failures_newest_first_and_escaped(store):
    assert "<h2>Recent failures</h2><ul><li>none</li></ul>" in _render(store)
    for minutes, error in ((3, "HTTP 503 Service Unavailable"),
                           (2, "not a readable feed (text/html is not an XML media type)"),
                           (1, "HTTP 500 <script>alert(1)</script>")):
        store.record_failure("news", "http://127.0.0.1/news", "feed",
                             NOW - timedelta(minutes=minutes),
                             PollReport("news", PollStatus.ERROR, error=error))
    page = _render(store)
    assert "<script" not in page
    failures = page.split("<h2>Recent failures</h2><ul>")[1].split("</ul>")[0]
    assert failures == (
        "<li>2020-05-28T07:59:00Z <b>news</b>: HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt;</li>"
        "<li>2020-05-28T07:58:00Z <b>news</b>: not a readable feed (text/html is not an XML"
        " media type)</li>"
        "<li>2020-05-28T07:57:00Z <b>news</b>: HTTP 503 Service Unavailable</li>")


def test_status_page_shows_the_warning_of_a_sources_latest_poll(store):
    moved = "moved permanently to https://new.example/rss: write that as the source's url"
    store.record_not_modified("news", "http://127.0.0.1/news", "feed", NOW,
                              PollReport("news", PollStatus.NOT_MODIFIED, http_status=304,
                                         warning=moved), SourceState("news"))
    store.flush()
    row = _render(store).split("<th>last error</th></tr>")[1].split("</tr>")[0]
    assert row == (f"<tr><td>news</td><td>ok; warning: {moved.replace(chr(39), '&#x27;')}</td>"
                   "<td>0</td><td></td><td>2020-05-28T08:00:00Z</td><td></td><td></td>")
    # the daemon's scheduler says when each source it polls goes next
    row = _render(store, next_polls={"news": NOW + timedelta(minutes=30)}).split(
        "<th>next poll</th><th>last error</th></tr>")[1].split("</tr>")[0]
    assert row.endswith("<td>2020-05-28T08:00:00Z</td><td>2020-05-28T08:30:00Z</td><td></td>")


def test_a_connection_that_never_sends_its_request_is_closed_not_kept(monkeypatch):
    """Each connection holds a thread of the daemon: one that says nothing is let go."""
    import socket

    from harvester import web

    monkeypatch.setattr(web, "IDLE_TIMEOUT", 0.5)
    server = web.serve(None, "127.0.0.1:0")  # type: ignore[arg-type]  # never reached
    try:
        with socket.create_connection(server.server_address[:2], timeout=10) as idle:
            idle.sendall(b"GET /metr")  # and then nothing more
            assert idle.recv(1024) == b""  # closed by the server, not by our 10 s timeout
    finally:
        server.shutdown()
        server.server_close()


def test_status_page_dates_matched_items_as_their_source_gave_them(server, config_for, store):
    """A Vienna listing's "31 March 2022" (Vienna's midnight: 22:00 UTC the day before)."""
    from harvester.harvest import poll_sources

    from .conftest import serve
    from .test_listing_source import ENTRIES, listing_source

    serve(server, "a")
    config = config_for(listing_source(server.url("/news-centre/"), max=1))
    list(poll_sources(config, store, clock=lambda: datetime(2022, 4, 10, tzinfo=UTC)))
    first = ENTRIES["a"][0]
    page = _render(store, zone_of=config.zone_of)
    assert ("<tr><td>icmpd-news</td><td>ok</td><td>10</td><td>none since the baseline</td>"
            "<td>2022-04-10T00:00:00Z</td>") in page
    assert f"<li>2022-03-31 <b>project-launch</b> <a href=\"{server.base}{first['path']}\">" in page
