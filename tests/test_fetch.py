"""fetch.py against real loopback servers: the network policy, per-host limits, deadlines.

A "public" source needs a second network here: the policy is told (as an operator would
with allow_networks) that 127.0.0.1 is fine, and a second server on 127.0.0.2 plays the
private service a hostile source tries to reach.
"""

from __future__ import annotations

import errno
import socket
import threading
import time

import pytest

from harvester.config import HttpConfig
from harvester.devserver import FixtureServer, Response
from harvester.errors import FetchError, PolicyError
from harvester.fetch import Fetcher, retry_after_seconds, same_site
from harvester.netpolicy import NetworkPolicy, parse_networks

from .conftest import feed_bytes, feed_source, free_port, http_fast, make_config, redirect, run_cli

ONLY_127_0_0_1 = parse_networks(("127.0.0.1/32",))
FEED_A = feed_bytes("icmpd-2020-05-a.rss")


@pytest.fixture
def private():
    """A service on 127.0.0.2 that no source on 127.0.0.1 may reach."""
    with FixtureServer(host="127.0.0.2") as srv:
        srv.route("/secret", Response(b"internal", content_type="text/plain"))
        yield srv


def test_a_public_source_cannot_redirect_into_a_private_network(server, private, tmp_path):
    """Through the real CLI: the refusal is the poll's error, `sources` names it, and the
    private server never sees a request."""
    server.route("/feed", redirect(302, private.url("/secret")))
    cfg = make_config(tmp_path, http_fast().replace(
        "[http]\n", '[http]\nallow_networks = ["127.0.0.1/32"]\n')
        + feed_source("pub", server.url("/feed")), rules=False)
    r = run_cli("--config", str(cfg), "once", cwd=tmp_path)
    expected = ("refused by the network policy: 127.0.0.2 resolves to 127.0.0.2 (loopback); a "
                "source may only reach public addresses and its own URL's network (widen with "
                "[http] allow_networks)")
    assert r.returncode == 1
    assert r.stderr.strip() == f"pub: error: {expected}"
    assert private.requests == []
    shown = run_cli("--config", str(cfg), "sources", cwd=tmp_path).stdout
    assert expected in shown and "FAILING (1 in a row)" in shown


def test_a_source_may_reach_its_own_network(server, private):
    """Without allow_networks, a source on loopback may follow links within loopback."""
    server.route("/feed", redirect(302, private.url("/secret")))
    result = Fetcher(HttpConfig(timeout=2, retries=0)).fetch(server.url("/feed"))
    assert result.body == b"internal" and result.url == private.url("/secret")


def test_dns_rebinding_is_caught_at_connect_time(server, private, monkeypatch):
    """A name that resolves to an allowed address when the source's network is worked out
    and to a private one when connecting: the connect-time check refuses it. (Public DNS
    cannot run here; the resolver is the one thing replaced.)"""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])

    def rebinding(host, port, *a, **kw):
        if host == "feeds.rebind.test":
            ip = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    fetcher = Fetcher(HttpConfig(timeout=2, retries=0), NetworkPolicy(ONLY_127_0_0_1))
    port = private.base.rsplit(":", 1)[1]
    with pytest.raises(PolicyError) as e:
        fetcher.fetch(f"http://feeds.rebind.test:{port}/secret")
    assert str(e.value).startswith(
        "refused by the network policy: feeds.rebind.test resolves to 127.0.0.2 (loopback)")
    assert private.requests == []


def _slow_feeds(server, n: int, seconds: float) -> list[str]:
    """n feed URLs on the fixture server, each answered after `seconds`."""
    def slow(handler):
        time.sleep(seconds)
        return Response(feed_bytes("icmpd-2020-05-a.rss"), conditional=False)

    for i in range(n):
        server.route(f"/f{i}", slow)
    return [server.url(f"/f{i}") for i in range(n)]


def _fetch_together(fetcher: Fetcher, urls: list[str]) -> list[object]:
    """Each URL fetched on a thread of its own, all at once: each one's result or error."""
    results: list[object] = [None] * len(urls)

    def fetch(i: int) -> None:
        try:
            results[i] = fetcher.fetch(urls[i])
        except FetchError as e:
            results[i] = e

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_at_most_per_host_requests_are_in_flight_to_one_host(server):
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0, per_host=2))
    _fetch_together(fetcher, _slow_feeds(server, 6, 0.15))
    assert len(server.requests) == 6 and server.peak_in_flight == 2


def test_a_request_waiting_its_turn_at_a_busy_host_does_not_time_out_unsent(server):
    """per_host queues a host's requests; a request's timeout is its own, from its turn on
    (the wait for the turn has one of its own): a slow host's second feed is fetched, not
    "timed out" before it was ever sent."""
    fetcher = Fetcher(HttpConfig(timeout=1, retries=0, per_host=1))
    results = _fetch_together(fetcher, _slow_feeds(server, 2, 0.7))
    # one at a time, 0.7 s each: the second ended ~1.4 s after it was asked for, past 1 s
    assert len(server.requests) == 2 and server.peak_in_flight == 1
    assert all(getattr(r, "status", r) == 200 for r in results), results
    # and its duration is the server's, not the queue's
    assert all(0.6 < r.duration < 0.95 for r in results), results


def test_a_request_that_gets_no_turn_at_its_host_within_the_timeout_is_not_sent(server):
    server.route("/f", Response(feed_bytes("icmpd-2020-05-a.rss")))
    fetcher = Fetcher(HttpConfig(timeout=0.5, retries=0, per_host=1))
    turn = fetcher._host_slot(server.url("/f"))
    turn.acquire()  # as a request to the host still in flight holds it
    try:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(server.url("/f"))
        assert 0.45 < time.monotonic() - started < 1.0
    finally:
        turn.release()
    assert str(caught.value) == ("not sent: no turn at 127.0.0.1 within 0.5s ([http] per_host"
                                 " = 1 requests at a time, all in flight)")
    assert server.requests == []
    assert fetcher.fetch(server.url("/f")).status == 200  # the turn is free again


def test_an_interrupted_run_ends_a_wait_for_a_turn_at_once(server):
    server.route("/f", Response(feed_bytes("icmpd-2020-05-a.rss")))
    fetcher = Fetcher(HttpConfig(timeout=30, retries=0, per_host=1))
    turn = fetcher._host_slot(server.url("/f"))
    turn.acquire()
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            fetcher.fetch(server.url("/f"))
        except FetchError as e:
            outcome.append(e)

    waiting = threading.Thread(target=fetch)
    waiting.start()
    time.sleep(0.3)
    try:
        started = time.monotonic()
        fetcher.interrupt()  # Ctrl-C in `once`
        waiting.join(5)
        assert time.monotonic() - started < 0.5
    finally:
        turn.release()
    assert [str(e) for e in outcome] == ["timed out after 30s"] and server.requests == []


def test_the_deadline_covers_the_whole_request_across_retries(server):
    """A server that accepts and then says nothing: one deadline for the request, however
    many retries are allowed."""
    def silent(handler):
        time.sleep(3)
        return None

    server.route("/silent", silent)
    fetcher = Fetcher(HttpConfig(timeout=1, retries=3))
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1s"):
        fetcher.fetch(server.url("/silent"))
    assert time.monotonic() - started < 1.6


def test_a_retry_backoff_never_outlasts_the_deadline(server):
    """503 after 503: the backoff between attempts (0, 0.6, 1.2 s) would carry the third
    wait past the 1 s deadline; the request ends at the deadline instead."""
    server.route("/busy", Response(b"busy", status=503, content_type="text/plain",
                                   conditional=False))
    fetcher = Fetcher(HttpConfig(timeout=1, retries=3))
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1s"):
        fetcher.fetch(server.url("/busy"))
    assert time.monotonic() - started < 1.4
    assert len(server.hits("/busy")) == 3


def test_a_refused_connection_is_reported_as_one_not_as_a_timeout():
    """urllib3 files "connection refused" under its timeout errors; the user must read what
    happened (a server that is down), not "timed out", which sends them to raise timeouts."""
    fetcher = Fetcher(HttpConfig(timeout=30, retries=0))
    started = time.monotonic()
    with pytest.raises(FetchError) as e:
        fetcher.fetch(f"http://127.0.0.1:{free_port()}/feed.xml")
    assert time.monotonic() - started < 5
    assert str(e.value) == f"cannot connect: [Errno {errno.ECONNREFUSED}] Connection refused"


@pytest.mark.parametrize(("status", "said"), [
    (401, "HTTP 401 Unauthorized (the site wants credentials: a source sends them with "
          '`headers = { Authorization = "Bearer ${TOKEN}" }`, probe and add with -H)'),
    (410, "HTTP 410 Gone (the site says it is gone for good: remove the source, or point it "
          "elsewhere)"),
    (404, "HTTP 404 Not Found"),
])
def test_a_refusal_says_what_would_mend_it(server, status, said):
    server.route("/feed", Response(b"no", status=status, content_type="text/plain"))
    with pytest.raises(FetchError) as e:
        Fetcher(HttpConfig(timeout=5, retries=0)).fetch(server.url("/feed"))
    assert str(e.value) == said


NOT_MODIFIED_UNASKED = (
    "HTTP 304 Not Modified, to a request that named no copy of its own (no If-None-Match or "
    "If-Modified-Since): there is nothing to read; a cache in front of the site answers "
    "wrongly")


def test_a_304_to_a_request_that_named_no_copy_is_an_error(server):
    """A 304 says "the copy you hold is current": to a request that holds none (a first
    poll; one after a setting changed) it is a broken cache's answer, not news of nothing.
    Taken for "not modified", the source stayed `ok, 0 items` poll after poll."""
    server.route("/feed", Response(b"", status=304, conditional=False))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0))
    with pytest.raises(FetchError) as e:
        fetcher.fetch(server.url("/feed"))
    assert (str(e.value), e.value.status) == (NOT_MODIFIED_UNASKED, 304)
    asked = fetcher.fetch(server.url("/feed"), etag='"v1"')  # asked: the answer it names
    assert asked.not_modified and asked.body == b""


@pytest.mark.parametrize(("status", "body", "said"), [
    (302, b"<html><body>Moved</body></html>",
     "HTTP 302 Found without a Location header: the server says the page is elsewhere, and "
     "not where"),
    (301, FEED_A, "HTTP 301 Moved Permanently without a Location header: the server says the "
                  "page is elsewhere, and not where"),
    (300, b"", "HTTP 300 Multiple Choices: an answer that is not the page (a 3xx that is no "
               "redirect to follow)"),
    (305, b"", "HTTP 305 Use Proxy: an answer that is not the page (a 3xx that is no redirect "
               "to follow)"),
])
def test_a_3xx_that_is_no_redirect_to_follow_is_said_as_such(server, status, body, said):
    """A 3xx without a Location (or one that is no redirect) is not the page: it was read
    as one, said as "empty body" or "not a feed: an HTML page" (with a hint to make the
    source a listing), or, with a feed in its body, stored as if the server had said 200."""
    server.route("/feed", Response(body, status=status, conditional=False))
    with pytest.raises(FetchError) as e:
        Fetcher(HttpConfig(timeout=5, retries=0)).fetch(server.url("/feed"))
    assert (str(e.value), e.value.status) == (said, status)


def test_a_source_answered_304_unasked_fails_its_first_poll(server, tmp_path):
    server.route("/feed", Response(b"", status=304, conditional=False))
    cfg = make_config(tmp_path, http_fast() + feed_source("icmpd-rss", server.url("/feed")))
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 1
    assert r.stderr == f"icmpd-rss: error: {NOT_MODIFIED_UNASKED}\n"
    server.route("/feed", Response(feed_bytes("icmpd-2020-05-a.rss")))
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 0 and "icmpd-rss: baseline: 7 items stored silently" in r.stderr


def test_a_host_that_does_not_resolve_is_named(no_public_dns):
    """A typo in a source's host, or a listing's next page on a site that is gone: the
    host is said, where errno -2 alone does not tell which of a poll's requests failed."""
    fetcher = Fetcher(HttpConfig(timeout=30, retries=0))
    with pytest.raises(FetchError) as e:
        fetcher.fetch("http://feeds.example/rss")
    assert str(e.value) == "cannot resolve feeds.example: Name or service not known"
    assert e.value.url == "http://feeds.example/rss"


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), ("0", 0.0), (" 30 ", 30.0), ("99999999999", 604800.0),
    ("-5", None), ("soon", None), ("", None), (None, None), ("1.5", None),
    ("Wed, 27 May 2020 10:02:00 GMT", 120.0), ("Wed, 27 May 2020 09:00:00 GMT", None),
    ("Wed, 32 Foo 2020 10:02:00 GMT", None),
])
def test_retry_after_values(value, expected):
    now = 1590573600.0  # Wed, 27 May 2020 10:00:00 GMT
    assert retry_after_seconds(value, now=now) == expected


@pytest.mark.parametrize(("a", "b", "same"), [
    ("https://news.example/rss", "https://news.example/other?x=1", True),
    ("https://news.example/rss", "https://NEWS.example:443/rss", True),
    ("http://news.example/rss", "https://news.example/rss", True),  # the https upgrade
    ("https://news.example/rss", "http://news.example/rss", False),  # not the downgrade
    ("https://news.example/rss", "https://news.example:8443/rss", False),
    ("https://news.example/rss", "https://cdn.news.example/rss", False),
    ("https://news.example/rss", "https://example.org/rss", False),
    ("http://news.example:8080/rss", "https://news.example/rss", False),
    ("https://news.example/rss", "https://news.example:99999/rss", False),  # not URLs
    ("https://news.example/rss", "https://[news.example/rss", False),
])
def test_which_urls_a_sources_own_headers_may_go_to(a, b, same):
    assert same_site(a, b) is same


def test_a_sources_headers_go_to_its_own_site_and_not_where_it_redirects(server, private):
    """A token for the feed's host stays there when a redirect points somewhere else."""
    server.route("/feed", redirect(302, "/moved"))
    server.route("/moved", redirect(302, private.url("/secret")))
    token = (("Authorization", "Bearer t0ken"), ("User-Agent", "NewsWatch/2"))
    result = Fetcher(HttpConfig(timeout=2, retries=0)).fetch(server.url("/feed"), headers=token)
    assert result.body == b"internal"
    assert [(r.path, r.headers.get("Authorization"), r.headers.get("User-Agent"))
            for r in server.requests] == [("/feed", "Bearer t0ken", "NewsWatch/2"),
                                         ("/moved", "Bearer t0ken", "NewsWatch/2")]
    [elsewhere] = private.requests
    assert "Authorization" not in elsewhere.headers
    assert elsewhere.headers["User-Agent"].startswith("harvester/")


def _gzipped(body: bytes) -> bytes:
    import gzip

    return gzip.compress(body, mtime=0)


FEED = feed_bytes("icmpd-2020-05-a.rss")
# what servers send as "gzip": decode must read each as urllib3 reads it on the way in
CODED = {
    "one member": _gzipped(FEED),
    "two members": _gzipped(FEED[:1000]) + _gzipped(FEED[1000:]),
    "garbage after a member": _gzipped(FEED) + b"\x00junk after the trailer",
    "cut short": _gzipped(FEED)[:-500],
    "not gzip at all": b"<rss>plain bytes labelled gzip</rss>",
    "empty": b"",
}


@pytest.mark.parametrize(("coding", "body", "read"), [
    ("x-gzip", _gzipped(FEED), FEED),  # gzip's old name
    ("identity", FEED, FEED),
    ("utf-8", FEED, FEED),  # a misconfigured server's nonsense label: the body as it came
    ("none", FEED, FEED),
    ("br", b"\x1b\x00\x00brotli bytes", None),  # not asked for, and nothing here reads it
    ("zstd", b"(\xb5/\xfd zstd bytes", None),
    ("gzip, br", _gzipped(FEED), None),
])
@pytest.mark.parametrize("decode", [True, False])
def test_a_body_in_a_coding_not_asked_for_says_so(server, coding, body, read, decode):
    """A server that answers in a coding the request did not offer: read when it can be,
    else said as that, not handed on as bytes the parser calls a syntax error."""
    server.route("/feed", Response(body, headers={"Content-Encoding": coding}))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0))
    if read is not None:
        assert fetcher.fetch(server.url("/feed"), decode=decode).body == read
        return
    with pytest.raises(FetchError) as e:
        fetcher.fetch(server.url("/feed"), decode=decode)
    assert str(e.value) == (f"the body came encoded as '{coding.split(', ')[-1]}', which was "
                            "not asked for (Accept-Encoding: gzip, deflate) and cannot be read")
    assert (e.value.status, e.value.url) == (200, server.url("/feed"))


@pytest.mark.parametrize(("headers", "body", "read"), [
    # nginx compressing a feed.xml.gz it keeps compressed: gzip inside gzip
    ({"Content-Encoding": "gzip"}, _gzipped(_gzipped(FEED)), FEED),
    ({"Content-Type": "application/gzip"}, _gzipped(FEED), FEED),  # the .gz served as is
    ({}, b"\x1f\x8bnot gzip after all", b"\x1f\x8bnot gzip after all"),  # left to the parser
    ({"Content-Encoding": "gzip"}, _gzipped(_gzipped(b"\0" * 1_000_001)), "too large"),
])
@pytest.mark.parametrize("decode_now", [True, False])
def test_a_body_that_is_gzip_itself_is_read_once_more(server, headers, body, read, decode_now):
    """What a body decodes to starting as gzip is read once more, within the same cap, on
    the way in and in a worker alike; what only looks like gzip is left as it came."""
    from harvester.fetch import decode

    server.route("/feed", Response(body, headers=headers))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0, max_bytes=1_000_000))
    try:
        got = fetcher.fetch(server.url("/feed"), decode=decode_now)
        got = decode(got, 1_000_000).body
    except FetchError as e:
        got = str(e).split(":")[0]
    assert got == read


@pytest.mark.parametrize("name", list(CODED))
@pytest.mark.parametrize("cap", [10_000_000, len(FEED) - 1])
def test_a_body_left_gzipped_decodes_later_as_it_would_have_on_the_way_in(server, name, cap):
    """fetch(decode=False) hands a gzip body over as sent, for a worker process to decode;
    decode() then gives the very body, or the very error (a cap passed, a body that is not
    the gzip it is labelled), that decoding while reading gives."""
    from harvester.fetch import decode

    sent = CODED[name]
    server.route("/feed", Response(sent, content_type="application/rss+xml",
                                   headers={"Content-Encoding": "gzip"}))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0, max_bytes=cap))
    url = server.url("/feed")

    def outcome(fetch):
        try:
            return fetch().body
        except FetchError as e:
            return (str(e), e.status, e.url)

    coded = fetcher.fetch(url, decode=False)
    assert (coded.coding, coded.body) == ("gzip", sent)
    later = outcome(lambda: decode(coded, cap, "feed"))
    assert later == outcome(lambda: fetcher.fetch(url))
    expected = {"one member": FEED, "two members": FEED, "garbage after a member": FEED,
                "empty": b""}
    if name == "not gzip at all":
        assert later == ("the body is not the gzip it is labelled: Error -3 while decompressing "
                         "data: incorrect header check", 200, url)
    elif name == "cut short":
        assert isinstance(later, bytes) and FEED.startswith(later) and len(later) > 1000
    elif cap < len(FEED) and name != "empty":
        assert later == (f"too large: body exceeds the {cap}-byte cap", 200, url)
    else:
        assert later == expected[name]


def test_only_a_gzip_body_is_left_coded(server):
    """A plain body, or one in another coding, comes decoded whatever `decode` says."""
    import zlib

    server.gzip_bodies = False
    server.route("/plain", Response(FEED, content_type="application/rss+xml"))
    server.route("/deflate", Response(zlib.compress(FEED), content_type="application/rss+xml",
                                      headers={"Content-Encoding": "deflate"}))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0))
    for path in ("/plain", "/deflate"):
        r = fetcher.fetch(server.url(path), decode=False)
        assert (r.coding, r.body) == (None, FEED), path


@pytest.fixture
def handshakes(tmp_path):
    """A TLS listener on 127.0.0.1 counting the handshakes tried: its certificate is for
    `localhost` only, from a CA whose file is returned but that nothing trusts yet."""
    import ssl

    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    tried: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            tried.append(1)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass  # the client gave up on the certificate

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], tmp_path / "ca.pem", tried
    listener.close()


@pytest.mark.parametrize("trust, why", [
    (False, "the TLS certificate of 127.0.0.1 is not signed by a CA this machine trusts "
            "(unable to get local issuer certificate): a private CA (your organisation's, "
            "a TLS-inspecting proxy's) goes in SSL_CERT_FILE, a PEM file"),
    (True, "the TLS certificate of 127.0.0.1 is not valid: IP address mismatch, "
           "certificate is not valid for '127.0.0.1'"),
])
def test_a_certificate_that_fails_verification_is_said_and_not_tried_again(
        handshakes, monkeypatch, trust, why):
    """An intranet feed under an organisation's own CA, or a certificate for another name:
    the error says what is wrong with it, and where a private CA goes. It fails alike
    every time, so it is not retried within the poll as a dropped connection is."""
    port, ca_file, tried = handshakes
    if trust:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(FetchError) as e:
        Fetcher(HttpConfig(timeout=2, retries=2)).fetch(f"https://127.0.0.1:{port}/rss")
    assert str(e.value) == why
    assert len(tried) == 1


def _cookie(req) -> str | None:
    return {k.lower(): v for k, v in req.headers.items()}.get("cookie")


@pytest.mark.parametrize("status", [302, 301])
def test_a_cookie_set_on_a_redirect_goes_with_the_next_hop(server, private, status):
    """A gate that sets a cookie and redirects back to the same address (a CMS's session
    check, a firewall's cookie test): the cookie goes with the next request, as a
    browser's would, and the same URL again with it is no loop. It lasts one fetch, and
    goes to no other host."""
    body = feed_bytes("icmpd-2020-05-a.rss")

    def gate(req):
        if _cookie(req) != "gate=ok":
            return Response(b"", status=status, conditional=False, headers={
                "Location": "/rss", "Set-Cookie": "gate=ok; Path=/; HttpOnly"})
        return Response(body)

    server.route("/rss", gate)
    fetcher = Fetcher(HttpConfig(timeout=2, retries=0))
    got = fetcher.fetch(server.url("/rss"))
    assert (got.status, got.body, got.url, got.moved_to) == (200, body, server.url("/rss"), None)
    fetcher.fetch(server.url("/rss"))
    assert [_cookie(q) for q in server.requests] == [None, "gate=ok", None, "gate=ok"]
    # a cookie is its host's: a redirect to another one does not carry it
    server.route("/away", Response(b"", status=302, conditional=False, headers={
        "Location": private.url("/secret"), "Set-Cookie": "gate=ok; Path=/"}))
    assert fetcher.fetch(server.url("/away")).body == b"internal"
    assert [_cookie(q) for q in private.requests] == [None]


def test_a_gate_whose_cookie_never_lets_it_through_is_a_loop(server):
    server.route("/rss", Response(b"", status=302, conditional=False, headers={
        "Location": "/rss", "Set-Cookie": "gate=ok; Path=/"}))
    with pytest.raises(FetchError) as e:
        Fetcher(HttpConfig(timeout=2, retries=0)).fetch(server.url("/rss"))
    url = server.url("/rss")
    assert str(e.value) == f"redirect loop: {url} → {url} → {url}"
    assert [_cookie(q) for q in server.requests] == [None, "gate=ok"]


def test_a_sources_own_cookie_goes_with_the_ones_a_redirect_sets(server):
    body = feed_bytes("icmpd-2020-05-a.rss")
    server.route("/rss", lambda req: Response(body) if "gate=ok" in (_cookie(req) or "") else
                 Response(b"", status=302, conditional=False, headers={
                     "Location": "/rss", "Set-Cookie": "gate=ok; Path=/"}))
    got = Fetcher(HttpConfig(timeout=2, retries=0)).fetch(
        server.url("/rss"), headers=[("cookie", "consent=yes")])
    assert got.body == body
    assert [_cookie(q) for q in server.requests] == ["consent=yes", "consent=yes; gate=ok"]


def test_cookies_past_a_browsers_limits_are_not_taken():
    """A redirect cannot make every later hop carry megabytes: a cookie past 4 KB, or past
    the 50th, is dropped as a browser drops it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sent: list[str | None] = []

    class Gate(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            sent.append(self.headers.get("Cookie"))
            self.send_response(302 if self.path != "/end" else 200)
            if self.path == "/rss":
                self.send_header("Set-Cookie", "big=" + "x" * 5000)
                self.send_header("Location", "/two")
            elif self.path == "/two":
                for i in range(60):
                    self.send_header("Set-Cookie", f"c{i}=v; Path=/")
                self.send_header("Location", "/end")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        port = httpd.server_address[1]
        Fetcher(HttpConfig(timeout=2, retries=0)).fetch(f"http://127.0.0.1:{port}/rss")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert sent[:2] == [None, None]
    assert sent[2] == "; ".join(f"c{i}=v" for i in range(50))


TOKEN = "s3cr3t-feed-token"


def test_a_token_in_a_sources_url_comes_from_the_environment_and_is_never_said(
        server, tmp_path):
    """A private feed whose key sits in its query (`?key=${FEED_TOKEN}`): the request
    carries the value; the config, `check`, `sources`, the log and every error keep
    `${FEED_TOKEN}`, even where the server echoes the URL back."""
    body = feed_bytes("icmpd-2020-05-a.rss")
    server.route(f"/private/rss?key={TOKEN}", Response(body))
    url = server.url("/private/rss?key=${HV_FEED_TOKEN}")
    cfg = make_config(tmp_path, http_fast() + feed_source("private", url), rules=False)
    env = {"HV_FEED_TOKEN": TOKEN}
    r = run_cli("--config", str(cfg), "once", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [q.path for q in server.requests] == [f"/private/rss?key={TOKEN}"]
    assert "private: baseline: 7 items stored silently" in r.stderr
    r = run_cli("--config", str(cfg), "check", env=env, cwd=tmp_path)
    assert f"source private: feed {url} every" in r.stdout
    # the server moves it for good, the new address holding the token too
    server.route(f"/private/rss?key={TOKEN}", redirect(301, f"/v2/rss?key={TOKEN}"))
    server.route(f"/v2/rss?key={TOKEN}", Response(body))
    r = run_cli("--config", str(cfg), "once", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    moved = server.url("/v2/rss?key=${HV_FEED_TOKEN}")
    assert f"moved permanently to {moved}" in r.stderr
    server.route(f"/v2/rss?key={TOKEN}", Response(b"", status=302, conditional=False,
                                                  headers={"Location": f"/v2/rss?key={TOKEN}"}))
    r = run_cli("--config", str(cfg), "once", env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert f"redirect loop: {moved} → {moved}" in r.stderr
    for command in ("sources", "log"):
        shown = run_cli("--config", str(cfg), command, env=env, cwd=tmp_path).stdout
        assert "HV_FEED_TOKEN" in shown and TOKEN not in shown
    assert TOKEN not in (tmp_path / "h.db").read_bytes().decode("latin-1")
    # a variable not set is a config error naming it, as for a header
    r = run_cli("--config", str(cfg), "once", cwd=tmp_path)
    assert r.returncode == 2
    assert "sources[0].url: environment variable HV_FEED_TOKEN is not set" in r.stderr
