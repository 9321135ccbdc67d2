"""HTML listing sources through the whole pipeline, over a real loopback server."""

from __future__ import annotations

import html
import json
import re
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harvester.config import load_config
from harvester.dates import iso_utc, parse_date
from harvester.devserver import FixtureServer, Response
from harvester.harvest import poll_sources
from harvester.models import PollStatus
from harvester.store import SqliteStore

from .conftest import (
    HTTP_FAST,
    LISTINGS,
    feed_bytes,
    feed_source,
    make_config,
    page_body,
    run_cli,
    serve,
)

ENTRIES = json.loads((LISTINGS / "entries.json").read_text("utf-8"))
NOW = datetime(2022, 4, 10, 8, 0, tzinfo=UTC)
OPS = ('\n[[notifiers]]\nname = "ops"\nkind = "console"\nevents = ["source.failing"]\n'
       '\n[[notifiers]]\nname = "all"\nkind = "console"\nrules = []\n')


def listing_source(url: str, select: bool = True, first_run: str | None = None,
                   **pages: object) -> str:
    out = ["[[sources]]", 'name = "icmpd-news"', 'kind = "html"', f'url = "{url}"']
    if first_run:
        out.append(f'first_run = "{first_run}"')
    if select:
        out += ["  [sources.select]", '  item = "div.news-item"', '  title = "h3"',
                '  link = "h3 a"', '  date = ".date"', '  category = ".category"',
                '  summary = ".teaser"', '  date_formats = ["%d %B %Y"]']
    out += ["  [sources.pages]", '  next = "a.next"']
    out += [f"  {k} = {json.dumps(v)}" for k, v in pages.items()]
    return "\n".join(out) + "\n"


def poll(config, store, now=NOW):
    return {r.source: r for r in poll_sources(config, store, clock=lambda: now)}


def page_hits(server: FixtureServer) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith("/news-centre/")]


def test_baseline_walks_the_pages_then_one_request_a_poll(server, config_for, store):
    serve(server, "a")
    config = config_for(listing_source(server.url("/news-centre/")), notifiers=OPS)
    r = poll(config, store)["icmpd-news"]
    assert (r.status, r.baseline, r.new) == (PollStatus.OK, True, 43)
    assert page_hits(server) == ["/news-centre/"] + [f"/news-centre/?page={n}" for n in (2, 3, 4, 5)]
    rows = {i["title"]: i for i in store.items()}
    first = ENTRIES["a"][0]
    row = rows[first["title"]]
    assert row["category"] == first["category"] == "Project News"
    assert row["url"] == server.base + first["path"]
    assert row["published"] == "2022-03-30T22:00:00Z"  # 31 March 2022, Vienna
    assert row["summary"] == first["teaser"]
    assert store.outbox() == []
    # nothing changed: page 1 answers 304, and that is the whole poll
    del server.requests[:]
    assert poll(config, store)["icmpd-news"].status is PollStatus.NOT_MODIFIED
    assert page_hits(server) == ["/news-centre/"]
    # two new entries on top, one teaser edited, the rest pushed down a page
    serve(server, "b")
    del server.requests[:]
    r = poll(config, store)["icmpd-news"]
    assert (r.new, r.changed, r.unchanged) == (2, 1, 7)
    assert page_hits(server) == ["/news-centre/"]  # page 1 held stored items: stop there
    assert [o["event"] for o in store.outbox()] == ["item.new", "item.new"]
    assert len(store.items()) == 45


# -- a model of a listing's life: news arrives on top and pushes the rest down its pages ---

_PER_PAGE = 4
_MAX_PAGES = 5
_POLLS = st.lists(st.tuples(
    st.integers(0, (_MAX_PAGES - 1) * _PER_PAGE - 1),  # items published since the last poll
    st.lists(st.integers(0, 60), max_size=2),  # items taken down (picked by position)
    st.booleans(),  # the site's featured item shown on top of page 1 (a sticky post)
), min_size=1, max_size=6)


def _model_page(items: list[int], featured: int | None, n: int, path: str) -> bytes:
    """Page n of a newest-first listing, _PER_PAGE items a page; a featured item goes on
    top of page 1 besides them, and not in its place further down (as WordPress shows a
    sticky post)."""
    rest = [i for i in items if i != featured]
    shown = rest[(n - 1) * _PER_PAGE:n * _PER_PAGE]
    if n == 1 and featured is not None:
        shown = [featured, *shown]
    day = datetime(2022, 1, 1, tzinfo=UTC)
    rows = "".join(
        f'<div class="news-item"><h3><a href="/news/item-{i}/">Item {i}</a></h3>'
        f'<span class="date">{(day + timedelta(days=i)).strftime("%d %B %Y")}</span>'
        f'<p class="teaser">About item {i}.</p></div>' for i in shown)
    more = (f'<a class="next" href="{path}?page={n + 1}">Next</a>'
            if len(rest) > n * _PER_PAGE else "")
    return (f"<!DOCTYPE html><html><head><title>News</title></head><body><main>{rows}"
            f"</main>{more}</body></html>").encode()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(polls=_POLLS)
# found by it: with a featured item on page 1, news that had gone on to page 2 was never
# read (page 1 held something stored, so the walk stopped there), poll after poll
@example(polls=[(6, [], True)])
def test_every_item_published_between_polls_is_news_once_however_far_it_was_pushed(
        server, polls):
    """A listing of four items a page, newest first: between polls up to 15 items are
    published (so some are pushed to pages 2–4), old ones are taken down, and a featured
    item comes and goes on top of page 1. Each poll reads on past page 1 until it reaches
    what it stored, and each item published after the baseline is news exactly once."""
    path = f"/listing-{uuid.uuid4().hex}/"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(make_config(Path(tmp), HTTP_FAST + listing_source(
            server.url(path), max=_MAX_PAGES) + OPS))
        store = SqliteStore(cfg.storage.path)
        try:
            items = list(range(6, -1, -1))  # newest first
            made, featured = 7, None
            stored: set[int] = set()
            told: set[int] = set()
            for k, (published, taken, feature) in enumerate([(0, [], False), *polls]):
                items[:0] = range(made + published - 1, made - 1, -1)
                made += published
                for t in taken:
                    if len(items) > 1:
                        items.pop(t % len(items))
                featured = (items[-1] if feature else None)  # the oldest, kept on top
                pages = max(1, -(-len([i for i in items if i != featured]) // _PER_PAGE))
                for n in range(1, pages + 1):
                    r = Response(_model_page(items, featured, n, path),
                                 content_type="text/html; charset=utf-8")
                    server.route(f"{path}?page={n}", r)
                    if n == 1:
                        server.route(path, r)
                report = poll(cfg, store, NOW + timedelta(hours=k))["icmpd-news"]
                assert report.status in (PollStatus.OK, PollStatus.NOT_MODIFIED), report.line()
                new = set(items) - stored
                assert report.new == len(new), (k, report.line(), sorted(new))
                stored |= new
                if k:
                    told |= new
            titles = sorted(i["title"] for i in store.items())
            assert titles == sorted(f"Item {i}" for i in stored)
            assert sorted(o["item_id"] for o in store.outbox() if o["notifier"] == "all") \
                == sorted(i["id"] for i in store.items() if int(i["title"][5:]) in told)
        finally:
            store.close()


@pytest.mark.parametrize(("emptied", "warning"), [
    (1, "1 entry without a title or link was dropped"),
    (2, "2 entries without a title or link were dropped"),
])
def test_entries_without_title_or_link_are_dropped_and_counted(server, config_for, store,
                                                               emptied, warning):
    serve(server, "a")
    page1 = page_body(server, "a", 1).decode()
    for e in ENTRIES["a"][:emptied]:  # the heading holds both the title and the link
        page1 = re.sub(rf'<h3><a href="[^"]*">{re.escape(html.escape(e["title"], quote=False))}'
                       r"</a></h3>", "<h3></h3>", page1)
    server.route("/news-centre/", Response(page1.encode(), content_type="text/html"))
    config = config_for(listing_source(server.url("/news-centre/")))
    r = poll(config, store)["icmpd-news"]
    assert (r.status, r.new, r.warning) == (PollStatus.OK, 43 - emptied, warning)
    assert not {e["title"] for e in ENTRIES["a"][:emptied]} & {i["title"] for i in store.items()}


def test_pagination_stops_on_a_page_seen_before_and_at_max(server, config_for, store):
    serve(server, "a")
    loop = (LISTINGS / "news-a-page-2.html").read_bytes().replace(
        b'href="/news-centre/?page=3">Next', b'href="/news-centre/">Next').replace(
        b"https://www.icmpd.org/", server.base.encode() + b"/")
    server.route("/news-centre/?page=2", Response(loop, content_type="text/html"))
    config = config_for(listing_source(server.url("/news-centre/")))
    assert poll(config, store)["icmpd-news"].new == 20
    assert page_hits(server) == ["/news-centre/", "/news-centre/?page=2"]
    serve(server, "a")
    config2 = config_for(listing_source(server.url("/news-centre/"), max=2))
    store.conn.execute("DELETE FROM sources")  # start over as a new source
    del server.requests[:]
    poll(config2, store)
    assert page_hits(server) == ["/news-centre/", "/news-centre/?page=2"]



def test_selectors_changed_in_the_config_are_read_at_once_and_their_edits_are_not_news(
        server, config_for, store):
    """A summary selector added after the baseline: the next poll asks for the page whole
    (a 304 would keep the old reading until the site changed), reads the same bytes anew,
    and stores the summaries it gained as edits that are no one's news. The poll after it
    is conditional again."""
    serve(server, "a")
    edits = '\n[[notifiers]]\nname = "all"\nkind = "console"\non = ["new", "changed"]\n'
    full = listing_source(server.url("/news-centre/"))
    config = config_for(full.replace('  summary = ".teaser"\n', ""), notifiers=edits)
    poll(config, store)
    assert {i["summary"] for i in store.items()} == {""}
    config = config_for(full, notifiers=edits)
    del server.requests[:]
    r = poll(config, store)["icmpd-news"]
    assert "If-None-Match" not in server.hits("/news-centre/")[0].headers
    assert (r.status, r.new, r.changed, r.reread, r.queued) == (PollStatus.OK, 0, 10, 10, 0)
    assert r.line().startswith("icmpd-news: 0 new, 10 changed (read under changed settings: "
                               "not notified), 0 unchanged (HTTP 200, ")
    first = ENTRIES["a"][0]
    assert {i["title"]: i["summary"] for i in store.items()}[first["title"]] == first["teaser"]
    assert store.outbox() == []
    del server.requests[:]
    assert poll(config, store)["icmpd-news"].status is PollStatus.NOT_MODIFIED
    assert "If-None-Match" in server.hits("/news-centre/")[0].headers


def test_a_listing_read_to_max_with_nothing_stored_before_warns_of_missed_entries(
        server, config_for, store):
    """Reading one page at most, a listing whose page 1 is all new since the last poll
    (the news of the page before has gone to page 2) may have missed what went past it."""
    serve(server, "a")
    config = config_for(listing_source(server.url("/news-centre/"), max=1))
    assert poll(config, store)["icmpd-news"].new == 10
    older = Response(page_body(server, "a", 2), content_type="text/html; charset=utf-8")
    server.route("/news-centre/", older)  # stands in for ten items newer than the last poll's
    r = poll(config, store)["icmpd-news"]
    assert (r.new, r.warning) == (10, (
        "none of the 10 entries read was stored before: any that came and went since the "
        "last poll were missed (poll it more often, or let it read more pages: "
        "[sources.pages] max)"))


@pytest.mark.parametrize("select", [True, False])
def test_a_login_page_where_the_listing_was_is_said(server, config_for, store, select):
    """A members' listing whose session or key has gone: the alarm says the page shows a
    login form, as well as what a redesign would say."""
    server.route("/news-centre/", Response(
        b"<html><head><title>Sign in</title></head><body><form><input name=u>"
        b"<input type=password name=p></form></body></html>", content_type="text/html"))
    r = poll(config_for(listing_source(server.url("/news-centre/"), select=select)),
             store)["icmpd-news"]
    assert r.status is PollStatus.ERROR
    assert r.error.endswith(" (the page shows a login form: it may want credentials, sent "
                            'with `headers = { Authorization = "Bearer ${TOKEN}" }` or a '
                            "Cookie)")


def test_stale_layout_fails_loudly_and_keeps_every_item(server, config_for, store, tmp_path):
    serve(server, "a")
    config = config_for(listing_source(server.url("/news-centre/")), notifiers=OPS)
    poll(config, store)
    before = store.conn.execute("SELECT * FROM items ORDER BY id").fetchall()
    server.route("/news-centre/", Response(
        b"<html><body><article class='card'><h2>Redesigned</h2></article></body></html>",
        content_type="text/html"))
    r = poll(config, store)["icmpd-news"]
    url = server.url("/news-centre/")
    assert r.status is PollStatus.ERROR
    assert r.error == (f"selectors matched nothing on {url} — the layout may have changed; "
                       f"try `harvester probe {url}`")
    assert store.conn.execute("SELECT * FROM items ORDER BY id").fetchall() == before
    [alert] = store.outbox()
    assert (alert["notifier"], alert["event"]) == ("ops", "source.failing")  # at once
    r = run_cli("--config", str(tmp_path / "harvester.toml"), "sources")
    assert "icmpd-news: FAILING (1 in a row), 43 items" in r.stdout
    assert "selectors matched nothing on" in r.stdout
    # the entries still there, their headings renamed: said as such, not as "nothing"
    page = (LISTINGS / "news-a-page-1.html").read_bytes()
    server.route("/news-centre/", Response(page.replace(b"<h3", b"<h2").replace(
        b"</h3>", b"</h2>"), content_type="text/html; charset=utf-8"))
    r = poll(config, store)["icmpd-news"]
    assert r.error == (f"select.item found 10 entries on {url}, none with both a title "
                       "(select.title 'h3') and a link (select.link 'h3 a'); try "
                       f"`harvester probe {url}`")
    assert store.conn.execute("SELECT * FROM items ORDER BY id").fetchall() == before


def test_auto_detection_reads_a_page_with_no_selectors(server, config_for, store):
    body = (LISTINGS / "other-markup.html").read_bytes()
    server.route("/latest", Response(body, content_type="text/html; charset=utf-8"))
    config = config_for(listing_source(server.url("/latest"), select=False))
    r = poll(config, store)["icmpd-news"]
    assert r.status is PollStatus.OK and r.new == 10
    got = {i["title"]: i for i in store.items()}
    for e in ENTRIES["a"][:10]:
        row = got[e["title"]]
        assert row["url"] == server.base + e["path"]
        assert row["published"] == iso_utc(parse_date(e["date"], "Europe/Vienna"))
        assert row["date_flag"] == ""
        assert row["category"] == e["category"]
        assert row["summary"] == e["teaser"]


@pytest.mark.parametrize("cap,pages,warning", [
    (25, ["/news-centre/", "/news-centre/?page=2", "/news-centre/?page=3"],
     "only the first 25 entries were read (after 3 pages)"),
    (5, ["/news-centre/"], "only the first 5 entries were read (after 1 page)"),
])
def test_a_listing_is_read_to_as_many_entries_as_a_feed(
        server, config_for, store, monkeypatch, cap, pages, warning):
    """The feeds' cap on entries a poll reads holds for a listing too, across its pages
    and within one: the first `cap` are stored, said in the warning, and no page past
    them is fetched (a 10 MB page can hold ~100,000 entries, pages.max 1000 pages)."""
    import harvester.listing
    import harvester.parse.listing

    monkeypatch.setattr(harvester.listing, "MAX_ENTRIES", cap)
    monkeypatch.setattr(harvester.parse.listing, "MAX_ENTRIES", cap)
    serve(server, "a")  # 43 entries over five pages
    config = config_for(listing_source(server.url("/news-centre/")))
    r = poll(config, store)["icmpd-news"]
    assert (r.status, r.new, r.warning) == (PollStatus.OK, cap, warning)
    assert page_hits(server) == pages
    stored = {i["title"] for i in store.items()}
    assert stored == {e["title"] for e in ENTRIES["a"][:cap]}


@pytest.mark.parametrize("body,error", [
    (b"  \n", "empty page"),
    (b"<ul>" + b"<li><a href='/a'>t</a></li>" * 200 + b"</ul>",
     "not read: 802 tags in the page, more than 800"),
])
def test_a_page_with_no_selectors_that_cannot_be_read_says_why(
        server, config_for, store, monkeypatch, body, error):
    """Auto-detection looks for entries only on a page it can read: an empty one, or one
    past the tag cap, is that poll's error (counted like any other), not a redesign
    alerted at once as "found no repeated entries"."""
    import harvester.parse.caps as caps

    monkeypatch.setattr(caps, "MAX_MARKUP_TAGS", 800)
    server.route("/latest", Response(body, content_type="text/html; charset=utf-8"))
    config = config_for(listing_source(server.url("/latest"), select=False), notifiers=OPS)
    r = poll(config, store)["icmpd-news"]
    assert (r.status, r.error) == (PollStatus.ERROR, error)
    assert store.outbox() == []  # one failure is not yet an alert


def test_a_feed_and_a_listing_with_the_same_news_give_one_item_one_notification(
        server, config_for, store):
    serve(server, "b")
    newest = ENTRIES["b"][:3]
    items = "".join(
        f"<item><title>{e['category'] or 'News'}: {e['title']}</title>"
        f"<link>{server.base}/{e['path']}</link>"  # the doubled slash of the real feed
        f"<description>{e['teaser']}</description>"
        f"<pubDate>Fri, 08 Apr 2022 10:00:00 +0200</pubDate></item>" for e in newest)
    rss = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
           f"<title>t</title>{items}</channel></rss>").encode()
    server.route("/rss", Response(rss))
    config = config_for(feed_source("icmpd-rss", server.url("/rss"), first_run="all"),
                        listing_source(server.url("/news-centre/"), first_run="all"),
                        notifiers=OPS)
    poll(config, store)
    rows = store.items()
    assert len(rows) == 45  # the listing's 45, the feed's 3 among them
    both = [r for r in rows if r["title"] in {e["title"] for e in newest}]
    assert len(both) == 3 and all(r["sources"] == ["icmpd-news", "icmpd-rss"] for r in both)
    per_item = {}
    for o in store.outbox():
        per_item[o["item_id"]] = per_item.get(o["item_id"], 0) + 1
    assert all(n == 1 for n in per_item.values()) and len(per_item) == 45


def test_same_title_same_day_under_other_urls_is_one_item(server, config_for, store):
    """The feed links /press/…, the listing /news-centre/news-detail/…: title and day match."""
    serve(server, "b")
    newest = ENTRIES["b"][:2]  # 08 April 2022 and 01 April 2022 in the listing
    dates = ["Fri, 08 Apr 2022 10:00:00 +0200", "Fri, 01 Apr 2022 16:30:00 +0200"]
    items = "".join(
        f"<item><title>Project News: {e['title']}</title><link>{server.base}/press/{i}</link>"
        f"<pubDate>{d}</pubDate></item>" for i, (e, d) in enumerate(zip(newest, dates, strict=True)))
    server.route("/rss", Response(f'<rss version="2.0"><channel><title>t</title>{items}'
                                  f"</channel></rss>".encode()))
    config = config_for(listing_source(server.url("/news-centre/"), max=1),
                        feed_source("icmpd-rss", server.url("/rss")))
    poll(config, store)
    rows = [r for r in store.items() if r["title"] in {e["title"] for e in newest}]
    assert len(rows) == 2 and all(r["sources"] == ["icmpd-news", "icmpd-rss"] for r in rows)
    assert len(store.items()) == 10
    # polled again and again, neither source's view reads as an edit of the other's
    for _ in range(2):
        reports = poll(config, store)
        assert all(r.changed == 0 for r in reports.values())
    assert store.conn.execute("SELECT count(*) FROM item_versions").fetchone() == (0,)
    assert {r["version"] for r in store.items()} == {1}


@pytest.mark.parametrize("bad", [
    '[[sources]]\nname = "x"\nkind = "html"\nurl = "https://e.org/"\n  [sources.select]\n'
    '  item = "div"\n',
    '[[sources]]\nname = "x"\nkind = "feed"\nurl = "https://e.org/"\n  [sources.select]\n'
    '  item = "div"\n',
])
def test_listing_config_errors(tmp_path, bad):
    path = tmp_path / "c.toml"
    path.write_text(bad)
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2 and "sources[0].select" in r.stderr


def article(title: str) -> bytes:
    return (f"<html><body><header><nav><a href='/'>Home</a> Menu text</nav></header>"
            f"<div class='layout'><aside><p>Related: other news that is not this</p></aside>"
            f"<div class='article'><h1>{title}</h1><p>First paragraph of the story.</p>"
            f"<script>alert(1)</script><p>Second paragraph, <a href='/more'>more</a>.</p>"
            f"</div></div><footer><p>© ICMPD footer text</p></footer></body></html>").encode()


def test_follow_stores_each_new_items_main_text_once(server, config_for, store):
    serve(server, "a")
    for e in ENTRIES["b"][:12]:
        server.route(e["path"], Response(article(e["title"]), content_type="text/html"))
    src = listing_source(server.url("/news-centre/"), max=1).replace(
        'kind = "html"', 'kind = "html"\nfollow = true')
    config = config_for(src)
    r = poll(config, store)["icmpd-news"]
    assert r.new == 10 and r.warning is None
    first = ENTRIES["a"][0]
    row = next(i for i in store.items() if i["title"] == first["title"])
    assert row["content"].startswith(f'<div><h1>{first["title"]}</h1>'
                                     "<p>First paragraph of the story.</p>")
    assert f'<a href="{server.base}/more" rel="noopener noreferrer nofollow">more</a>' in row["content"]
    assert "script" not in row["content"] and "Menu" not in row["content"]
    assert "footer" not in row["content"] and "Related" not in row["content"]
    articles = [q.path for q in server.requests if "news-detail" in q.path]
    assert len(articles) == 10
    # the next snapshot: only the two new items' pages are fetched
    serve(server, "b")
    del server.requests[:]
    r = poll(config, store)["icmpd-news"]
    assert (r.new, r.changed) == (2, 1)
    assert sorted(q.path for q in server.requests if "news-detail" in q.path) == sorted(
        e["path"] for e in ENTRIES["b"][:2])
    # the edited teaser kept its article text
    edited = next(i for i in store.items() if i["title"] == ENTRIES["b"][2]["title"])
    assert edited["version"] == 2 and "First paragraph of the story." in edited["content"]


def test_a_content_selector_that_gives_text_leaves_the_items_as_listed(
        server, config_for, store):
    """select.content must name the element that holds the article: one giving text (or a
    number) is said in the poll's warning, and each item is stored as listed."""
    serve(server, "a")
    for e in ENTRIES["a"][:10]:
        server.route(e["path"], Response(article(e["title"]), content_type="text/html"))
    src = listing_source(server.url("/news-centre/"), max=1).replace(
        'kind = "html"', 'kind = "html"\nfollow = true').replace(
        '  summary = ".teaser"', '  summary = ".teaser"\n  content = "xpath://h1/text()"')
    r = poll(config_for(src), store)["icmpd-news"]
    first = f"{server.base}{ENTRIES['a'][0]['path']}"
    assert (r.status, r.new) == (PollStatus.OK, 10)
    assert r.warning == (f"10 article pages not read: {first}: select.content "
                         "'xpath://h1/text()' selects text or attributes, not the element "
                         "that holds the article")
    assert not any("First paragraph" in (i["content"] or "") for i in store.items())


@pytest.mark.parametrize("content, page, why", [
    ('  content = "div.article-body"', article("x"),
     "select.content 'div.article-body' matched nothing: the article pages' layout may "
     "have changed"),
    ("", b"<html><body><div><img src='/a.png'><span>Only a caption</span></div></body></html>",
     "found no paragraphs of article text; name the block that holds it with "
     "select.content"),
    ("", b"  ", "empty page"),
])
def test_an_article_page_without_article_text_is_said(server, config_for, store, content,
                                                      page, why):
    """follow asked for each article's text: a page that gives none (a content selector
    the site's redesign outdated, no paragraphs to find, an empty answer) is said in the
    poll's warning, not stored silently without it."""
    serve(server, "a")
    for e in ENTRIES["a"][:10]:
        server.route(e["path"], Response(page, content_type="text/html"))
    src = listing_source(server.url("/news-centre/"), max=1).replace(
        'kind = "html"', 'kind = "html"\nfollow = true').replace(
        '  summary = ".teaser"', '  summary = ".teaser"\n' + content)
    r = poll(config_for(src), store)["icmpd-news"]
    first = f"{server.base}{ENTRIES['a'][0]['path']}"
    assert (r.status, r.new) == (PollStatus.OK, 10)
    assert r.warning == f"10 article pages not read: {first}: {why}"
    assert all(not i["content"] for i in store.items())


def test_follow_reads_at_most_its_cap_of_article_pages_a_poll(server, config_for, store,
                                                               monkeypatch):
    """A feed of thousands of links must not become thousands of requests in one poll: the
    first FOLLOW_MAX new items get their article text, the rest are stored as they came."""
    monkeypatch.setattr("harvester.harvest.FOLLOW_MAX", 4)
    serve(server, "a")
    for e in ENTRIES["a"][:10]:
        server.route(e["path"], Response(article(e["title"]), content_type="text/html"))
    src = listing_source(server.url("/news-centre/"), max=1).replace(
        'kind = "html"', 'kind = "html"\nfollow = true')
    r = poll(config_for(src), store)["icmpd-news"]
    assert r.new == 10
    assert r.warning == ("6 new items stored without article text: follow reads at most 4 "
                         "article pages a poll")
    assert sorted(q.path for q in server.requests if "news-detail" in q.path) == sorted(
        e["path"] for e in ENTRIES["a"][:4])  # the page's first four: its newest
    texts = {i["title"]: i["content"] for i in store.items()}
    assert all("First paragraph of the story." in texts[e["title"]] for e in ENTRIES["a"][:4])
    assert not any("First paragraph" in texts[e["title"]] for e in ENTRIES["a"][4:10])


def test_probe_prints_a_ready_select_block(server):
    server.route("/latest", Response((LISTINGS / "other-markup.html").read_bytes(),
                                     content_type="text/html; charset=utf-8"))
    r = run_cli("probe", server.url("/latest"), "--entries", "1")
    assert r.returncode == 0, r.stderr
    first = ENTRIES["a"][0]
    assert r.stdout.splitlines()[:12] == [
        "[[sources]]", 'name = "CHANGE-ME"', 'kind = "html"', f'url = "{server.url("/latest")}"',
        "  [sources.select]", "  item = 'xpath:/html/body/div/table/tr'",
        "  title = 'xpath:./td/a'", "  link = 'xpath:./td/a'", "  date = 'xpath:./td/small'",
        "  category = 'xpath:./td/div[1]'", "  summary = 'xpath:./td/div[2]'",
        '  date_formats = ["%d %B %Y"]']
    assert f"#   {first['date']} [{first['category']}] {first['title']}" in r.stdout
    server.route("/empty", Response(b"<html><body><p>nothing</p></body></html>",
                                    content_type="text/html"))
    r = run_cli("probe", server.url("/empty"))
    assert r.returncode == 1 and "found no repeated entries" in r.stderr


ANNOUNCED = (b'<link rel="alternate" type="application/rss+xml" title="NEWS CENTRE" '
             b'href="news-centre/rss">\n<link rel="alternate" type="application/rss+xml" '
             b'href="news-centre/rss">\n<link rel="alternate" hreflang="de" type="text/html" '
             b'href="/de/">\n<link rel="stylesheet" type="text/css" href="site.css">\n'
             b'<link rel="alternate" type="application/atom+xml" href="javascript:alert(1)">\n'
             b'<link rel="Alternate feed" type="Application/Atom+XML; charset=utf-8" '
             b'title="Press\x1b[2J releases" href="https://press.example/all.atom">\n</head>')


def test_probe_names_the_feeds_a_page_announces(server):
    """A listing page's <head> often names its feed, which needs no selectors and which no
    redesign breaks: probe says so, as a feed reader would find it."""
    body = page_body(server, "a", 1).replace(b"</head>", ANNOUNCED, 1)
    server.route("/news-centre/", Response(body, content_type="text/html; charset=utf-8"))
    r = run_cli("probe", server.url("/news-centre/"), "--entries", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    pages = lines.index("  [sources.pages]")  # ?page=2 links: the walk the first poll takes
    assert lines[pages + 1:pages + 3] == ["  param = 'page'", "  max = 5"]
    assert r.stdout.splitlines()[-3:] == [
        "# feeds this page announces (no selectors needed; `harvester probe FEED-URL` shows "
        "one's entries):",
        f"#   {server.url('/news-centre/rss')}  (RSS: NEWS CENTRE)",
        "#   https://press.example/all.atom  (Atom: Press[2J releases)"]
    bare = (b"<html><head>" + ANNOUNCED + b"<body><p>Our news moved.</p></body></html>")
    server.route("/moved", Response(bare, content_type="text/html"))
    r = run_cli("probe", server.url("/moved"))
    assert (r.returncode, r.stderr) == (1, (
        f"harvester: error: found no repeated entries with a link and a date on "
        f"{server.url('/moved')}; the page announces a feed: {server.url('/news-centre/rss')}"
        f" (try `harvester probe {server.url('/news-centre/rss')}`)\n"))


def test_probe_prints_a_pages_and_a_feeds_entries_as_text_not_as_commands(server):
    """The entries probe shows are the site's words, before any normalising: an escape
    sequence written as a character reference (`&#x1b;]0;…&#x7;` sets the terminal's
    title) or a direction override must reach the terminal as the text around it."""
    evil = "&#x1b;]0;pwned&#x7;Visit &#x9b;2J&#x202e;now&#13;&#10;x"
    cards = "".join(f'<div class="news-item"><h3><a href="/n/{i}">{evil} {i}</a></h3>'
                    f'<span class="date">0{i} May 2020</span></div>' for i in range(1, 4))
    server.route("/page", Response(f"<html><body>{cards}</body></html>".encode(),
                                   content_type="text/html; charset=utf-8"))
    server.route("/feed", Response((
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>'
        f"{evil.replace('&#x1b;', '&amp;#x1b;')}</title><category>{evil}</category>"
        f"<link>http://news.example/1</link></item></channel></rss>").encode()))
    shown = {path: run_cli("probe", server.url(path), "--entries", "1") for path in ("/page",
                                                                                     "/feed")}
    assert all(r.returncode == 0 for r in shown.values()), shown
    # (the escape's reference goes as the page is read, its text stays; HTML reads &#x9b;
    # as cp1252's "›", as browsers do)
    assert "#   01 May 2020 ]0;pwnedVisit \u203a2Jnow x 1\n" in shown["/page"].stdout
    for r in shown.values():
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", r.stdout)


def test_probe_on_a_feed_says_it_is_one(server, icmpd_a):
    """Probing the feed rather than the page: a feed source needs no selectors."""
    r = run_cli("probe", icmpd_a, "--entries", "1")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "[[sources]]", 'name = "CHANGE-ME"', 'kind = "feed"', f'url = "{icmpd_a}"', "",
        "# a feed, not a listing page (no selectors needed): 7 entries; the first 1:",
        "#   Fri, 15 May 2020 10:08:57 +0200 Project News: First annual review of the TRAFIG"
        " project",
        "#     https://www.icmpd.org//news-centre/news-detail/project-news-first-annual-review"
        "-of-the-trafig-project/"]


def test_a_sources_headers_go_with_its_later_pages_and_followed_articles(
        server, config_for, store, monkeypatch):
    """A site that wants a token or a consent cookie gets it on every request the source
    makes there: the listing, its next pages, each new item's article."""
    monkeypatch.setenv("HV_NEWS_TOKEN", "t0ken")
    serve(server, "a")
    for e in ENTRIES["a"][:20]:
        server.route(e["path"], Response(article(e["title"]), content_type="text/html"))
    src = listing_source(server.url("/news-centre/"), max=2).replace(
        'kind = "html"', 'kind = "html"\nfollow = true\nheaders = { Authorization = '
        '"Bearer ${HV_NEWS_TOKEN}", Cookie = "consent=yes" }')
    r = poll(config_for(src), store)["icmpd-news"]
    assert (r.status, r.new) == (PollStatus.OK, 20)
    paths = [q.path for q in server.requests]
    assert paths[:2] == ["/news-centre/", "/news-centre/?page=2"]
    assert len([p for p in paths if "news-detail" in p]) == 20
    assert {(q.headers.get("Authorization"), q.headers.get("Cookie"))
            for q in server.requests} == {("Bearer t0ken", "consent=yes")}


def test_probe_sends_headers_and_prints_them_for_the_environment(server):
    """A feed behind a token: probe with -H as with curl; the block it prints reads the
    value from the environment rather than repeating it."""
    def guarded(req):
        if req.headers.get("Authorization") != "Bearer t0ken":
            return Response(b"login first", status=401, content_type="text/plain")
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/private.rss", guarded)
    url = server.url("/private.rss")
    r = run_cli("probe", url)
    assert (r.returncode, r.stderr) == (1, (
        "harvester: error: HTTP 401 Unauthorized (the site wants credentials: a source sends "
        'them with `headers = { Authorization = "Bearer ${TOKEN}" }`, probe and add with -H)\n'))
    r = run_cli("probe", url, "-H", "Authorization: Bearer t0ken", "--header", "X-Client: me",
                "--entries", "0")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[:5] == [
        "[[sources]]", 'name = "CHANGE-ME"', 'kind = "feed"', f'url = "{url}"',
        'headers = { Authorization = "${AUTHORIZATION}", X-Client = "${X_CLIENT}" }  # set '
        "AUTHORIZATION, X_CLIENT in the environment"]
    assert "t0ken" not in r.stdout
    r = run_cli("probe", url, "-H", "Host: elsewhere")
    assert r.returncode == 2
    assert ("Invalid value for '-H' / '--header': 'Host': the harvester sets this header "
            "itself") in r.stderr
    r = run_cli("probe", url, "-H", "X-Token: t\u20acken")  # http.client would raise
    assert r.returncode == 2
    assert "'X-Token': a header value can hold only visible ASCII or Latin-1 text" in r.stderr


def test_a_listings_dates_are_shown_as_the_page_gives_them(server, tmp_path):
    """"31 March 2022" on a Vienna page is Vienna's midnight, 22:00 the day before in UTC:
    `items`, `show`, a dry run and notifications show the page's date, not the day before
    (the JSON keeps the exact UTC time)."""
    serve(server, "a")
    cfg = make_config(tmp_path, HTTP_FAST + listing_source(server.url("/news-centre/"),
                                                           first_run="latest:1", max=1)
                      + '\n[[notifiers]]\nname = "out"\nkind = "console"\n')
    first = ENTRIES["a"][0]
    assert first["date"] == "31 March 2022"
    r = run_cli("--config", str(cfg), "once", "--dry-run")
    assert f"would store NEW     2022-03-31 Project News · {first['title']}" in r.stdout
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 0
    assert ("   2022-03-31 · icmpd-news · rules: project-launch\n"
            f"   {server.base}{first['path']}") in r.stdout
    r = run_cli("--config", str(cfg), "items", "--limit", "1")
    assert r.stdout.startswith(f"2022-03-31  icmpd-news       Project News · {first['title']}")
    r = run_cli("--config", str(cfg), "show", f"{server.base}{first['path']}")
    assert "  published   2022-03-31 (2022-03-30T22:00:00Z)\n" in r.stdout
    r = run_cli("--config", str(cfg), "items", "--limit", "1", "--json")
    assert json.loads(r.stdout)["published"] == "2022-03-30T22:00:00Z"


def test_a_pages_raw_links_and_a_feeds_encoded_ones_are_one_item_each(server, config_for, store):
    """A site whose slugs are not ASCII: its news page writes the hrefs as the letters
    they are, its feed percent-encodes them (in lower-case hex, as some CMSs do). The page
    gives no dates and the feed's titles carry a prefix, so only the link can tell each
    article is one: one item, two sightings, one notification — and `show` finds it by
    the link as a browser's address bar shows it."""
    from urllib.parse import quote

    slugs = ["визит-в-вену", "новый-проект", "Schüler-Austausch"]
    cards = "".join(f'<li><a href="/новости/{s}/">{s.replace("-", " ")}</a></li>' for s in slugs)
    server.route("/news/", Response(f"<html><body><ul>{cards}</ul></body></html>".encode(),
                                    content_type="text/html; charset=utf-8"))

    def encoded(slug: str) -> str:
        return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(),  # "%d0%bd…", as some CMSs
                      quote(f"/новости/{slug}/"))

    items = "".join(f"<item><title>News: {s.replace('-', ' ')}</title>"
                    f"<link>{server.base}{encoded(s)}</link>"
                    f"<pubDate>Fri, 08 Apr 2022 10:00:00 +0200</pubDate></item>" for s in slugs)
    server.route("/rss", Response(f'<rss version="2.0"><channel><title>t</title>{items}'
                                  f"</channel></rss>".encode()))
    listing = "\n".join([
        "[[sources]]", 'name = "news-page"', 'kind = "html"', f'url = "{server.url("/news/")}"',
        'first_run = "all"', "  [sources.select]", '  item = "li"', '  title = "a"',
        '  link = "a"'])
    config = config_for(listing + "\n", feed_source("rss", server.url("/rss"), first_run="all"),
                        notifiers=OPS)
    reports = poll(config, store)
    assert (reports["news-page"].new, reports["rss"].new) in {(3, 0), (0, 3)}
    rows = store.items()
    assert sorted(r["url"] for r in rows) == sorted(
        server.base + quote(f"/новости/{s}/") for s in slugs)
    assert all(r["sources"] == ["news-page", "rss"] for r in rows)
    assert sorted(o["item_id"] for o in store.outbox() if o["notifier"] == "all") == sorted(
        r["id"] for r in rows)
    # polled again, neither the page nor the feed brings anything new
    assert all(r.new == 0 for r in poll(config, store).values())
    cfg = config.path
    shown = run_cli("--config", str(cfg), "show", f"{server.base}/новости/новый-проект/")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].endswith("новый проект")
