"""`harvester init`: a first config from the URLs a user knows, over a real loopback server,
then polled with `once` as a new user would."""

from __future__ import annotations

import html
import re

import pytest

from harvester.config import load_config
from harvester.devserver import Response
from harvester.starter import labelled_titles, local_timezone

from .conftest import FEEDS, LISTINGS, feed_bytes, page_body, redirect, run_cli, serve

ANNOUNCES = (b'<link rel="alternate" type="application/rss+xml" title="NEWS CENTRE" '
             b'href="/news-centre/rss">\n</head>')


def feed_page(feed: bytes, older: int = 0) -> bytes:
    """The news page a site's feed is made from: the feed's own items (title, link, date),
    then `older` ones the feed no longer holds, and a link announcing the feed."""
    from harvester.parse import parse_feed

    rows = [(e.link, e.title, e.published[5:16])
            for e in parse_feed(feed, url="https://www.icmpd.org/news-centre/rss").entries]
    rows += [(f"https://www.icmpd.org/news-centre/news-detail/old-{i}/", f"Older news {i}",
              "02 January 2019") for i in range(older)]
    items = "".join(
        f'<div class="news"><h3><a href="{html.escape(link)}">{html.escape(title)}</a>'
        f'</h3><p class="date">{date}</p></div>' for link, title, date in rows)
    return b"<html><head>" + ANNOUNCES + f"<body><main>{items}</main></body></html>".encode()


def test_a_page_showing_more_than_its_feed_holds_is_still_that_feeds(server, icmpd_a,
                                                                      tmp_path):
    """The feed holds the newest 7 of the page's 27: its news is the page's."""
    server.route("/news-centre/rss", server.routes["/rss"])
    server.route("/news-centre/", Response(feed_page(feed_bytes("icmpd-2020-05-a.rss"), 20),
                                           content_type="text/html"))
    r = run_cli("init", server.url("/news-centre/"), cwd=tmp_path)
    assert r.stdout.splitlines()[1] == (f"  {server.url('/news-centre/rss')}  (feed, 7 entries"
                                        f" now; announced by {server.url('/news-centre/')})")


def test_init_writes_a_config_that_polls_each_url_as_what_it_is(server, icmpd_a, tmp_path):
    """A feed as a feed; a page announcing the feed it is made from as that feed; a page
    announcing a feed of other news (the whole site's, say) as the listing it is; a page
    announcing nothing as a listing. The written config then polls them all."""
    html_type = "text/html; charset=utf-8"
    server.route("/news-centre/rss", server.routes["/rss"])
    server.route("/news-centre/", Response(feed_page(feed_bytes("icmpd-2020-05-a.rss")),
                                           content_type=html_type))
    server.route("/projects/", Response(page_body(server, "a", 5).replace(b"</head>", ANNOUNCES, 1),
                                        content_type=html_type))
    server.route("/archive/", Response((LISTINGS / "other-markup.html").read_bytes(),
                                       content_type=html_type))
    server.route("/news-centre/?page=1", server.routes["/news-centre/"])
    rss, page = server.url("/news-centre/rss"), server.url("/news-centre/")
    urls = [icmpd_a, page, server.url("/projects/"), server.url("/archive/"),
            # the announced feed again, and a page announcing it: one source still
            rss, server.url("/news-centre/?page=1")]
    r = run_cli("init", *urls, cwd=tmp_path, env={"TZ": "Europe/Vienna"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "wrote harvester.toml: 4 sources",
        f"  {icmpd_a}  (feed, 7 entries now)",
        f"  {rss}  (feed, 7 entries now; announced by {page})",
        f"  {server.url('/projects/')}  (html, 3 entries now; it announces {rss}, which "
        "carries 0 of its newest 3 entries)",
        f"  {server.url('/archive/')}  (html, 10 entries now)",
        f"  {rss}: given twice, listed once",
        f"  {server.url('/news-centre/?page=1')}: the same source as {rss}, listed once",
        "next: harvester --config harvester.toml once   (a first poll stores what is there "
        "silently; what comes after is news)"]
    config = load_config(tmp_path / "harvester.toml")
    host = "127-0-0-1"  # the host names a source; the port does not
    assert [(s.name, s.kind.value, s.url) for s in config.sources] == [
        (f"{host}-rss", "feed", icmpd_a),
        (f"{host}-news-centre-rss", "feed", rss),
        (f"{host}-projects", "html", server.url("/projects/")),
        (f"{host}-archive", "html", server.url("/archive/"))]
    # ICMPD's titles read "Press Release: …": the category rules need it read from there
    assert [s.category_from_title for s in config.sources] == [True, True, False, False]
    assert config.defaults.timezone == "Europe/Vienna"
    assert config.storage.path == tmp_path / "harvester.db"
    assert config.sources[3].listing.item.startswith("xpath:")  # pinned: found once, here
    assert (config.sources[3].listing.param, config.sources[3].listing.next) == (None, None)
    r = run_cli("once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stored = dict(re.findall(r"^(\S+): baseline: (\d+) items? stored silently", r.stderr, re.M))
    # the feed and the one the page announces are the same news: stored once, by either
    assert set(stored) == {f"{host}-rss", f"{host}-news-centre-rss", f"{host}-projects",
                           f"{host}-archive"}
    assert sorted([stored[f"{host}-rss"], stored[f"{host}-news-centre-rss"]]) == ["0", "7"]
    assert (stored[f"{host}-projects"], stored[f"{host}-archive"]) == ("3", "10")


def test_init_finds_how_a_listing_pages_on_so_the_baseline_walks_them(server, tmp_path):
    """ICMPD's news centre pages with ?page=N: the first poll reads all five pages."""
    serve(server, "a")
    r = run_cli("init", server.url("/news-centre/"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [src] = load_config(tmp_path / "harvester.toml").sources
    assert (src.listing.param, src.listing.max_pages) == ("page", 5)
    r = run_cli("once", cwd=tmp_path)
    assert r.stderr.startswith("127-0-0-1-news-centre: baseline: 43 items stored silently")


def test_init_writes_where_a_feed_moved_for_good(server, icmpd_a, tmp_path):
    server.route("/old-rss", redirect(301, "/rss"))
    r = run_cli("init", server.url("/old-rss"), cwd=tmp_path)
    assert r.stdout.splitlines()[1] == (
        f"  {icmpd_a}  (feed, 7 entries now; moved from {server.url('/old-rss')})")
    [src] = load_config(tmp_path / "harvester.toml").sources
    assert src.url == icmpd_a


def test_init_never_overwrites_and_writes_nothing_when_a_url_is_no_source(server, icmpd_a,
                                                                          tmp_path):
    server.route("/about", Response(b"<html><body><p>About us</p></body></html>",
                                    content_type="text/html"))
    r = run_cli("init", icmpd_a, server.url("/about"), server.url("/gone"), cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"harvester: error: nothing written; {server.url('/about')}: neither a feed, nor a "
        "page announcing one, nor a page with repeated entries (each with a link and a date);"
        f" {server.url('/gone')}: HTTP 404 Not Found\n")
    assert not (tmp_path / "harvester.toml").exists()
    (tmp_path / "mine.toml").write_text("# my own\n")
    r = run_cli("--config", "mine.toml", "init", icmpd_a, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("harvester: error: mine.toml exists: init writes a new config and "
                        "never overwrites one (edit it, or give --config another path)\n")
    assert (tmp_path / "mine.toml").read_text() == "# my own\n"


@pytest.mark.parametrize(("tz", "zone"), [
    ("Europe/Vienna", "Europe/Vienna"), (":America/New_York", "America/New_York")])
def test_the_local_time_zone_comes_from_tz_first(tz, zone):
    assert local_timezone({"TZ": tz}) == zone


@pytest.mark.parametrize("name", ["icmpd-2019-03.rss", "icmpd-2020-05-a.rss",
                                  "icmpd-2020-05-b-jsonfeed.json"])
def test_category_labels_in_titles_are_recognised_in_the_seed_feeds(name):
    from harvester.parse import parse_feed

    doc = parse_feed((FEEDS / name).read_bytes(), url="https://www.icmpd.org/news-centre/rss")
    assert labelled_titles(doc.entries)


@pytest.mark.parametrize("titles", [
    ["Vienna: a conference", "Germany joins", "A new phase starts", "Kick-off in Accra"],
    ["Ghana: project launched", "Kenya: project launched", "Iraq: MoU signed"],  # no repeat
    ["Press Release: one", "Press Release: two"],  # too few to tell
])
def test_an_occasional_colon_is_no_category_label(titles):
    from harvester.models import RawEntry

    assert not labelled_titles([RawEntry(title=t) for t in titles])
