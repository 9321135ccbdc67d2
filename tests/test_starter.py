"""`harvester init`: a first config from the URLs a user knows, over a real loopback server,
then polled with `once` as a new user would."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from harvester.config import load_config
from harvester.devserver import FixtureServer, Response
from harvester.models import FetchResult
from harvester.starter import SITEMAP_TRIES, labelled_titles, local_timezone, restless_page

from .conftest import (
    FEEDS,
    LISTINGS,
    PAGES,
    feed_bytes,
    news_sitemap,
    page_body,
    redirect,
    run_cli,
    serve,
)

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


def test_a_site_that_announces_no_feed_is_looked_for_where_its_software_serves_one(
        server, tmp_path):
    """A page that names no feed and shows no entries: its site's /feed/, /rss, … are
    tried (as feed readers do), and the first that is a feed with entries is the source."""
    server.route("/index.xml", Response(feed_bytes("icmpd-2020-05-a.rss")))  # Hugo's
    server.route("/about", Response(b"<html><body><p>About us</p></body></html>",
                                    content_type="text/html"))
    r = run_cli("init", server.url("/about"), cwd=tmp_path)
    assert (r.returncode, r.stdout.splitlines()[1]) == (0, (
        f"  {server.url('/index.xml')}  (feed, 7 entries now; found at /index.xml of "
        f"{server.url('/about')}'s site, which announces none)"))
    tried = [q.path for q in server.requests]
    assert tried == ["/about", "/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml",
                     "/index.xml"]
    # probe, which reads pages, says where the feed is
    probe_points_to(server, tmp_path, "its site serves a feed", "/index.xml")


def probe_points_to(server: FixtureServer, tmp_path: Path, found: str, path: str) -> None:
    """`probe` on /about, a page of no entries, fails saying what its site has (`found`)
    at `path`, and how to probe that instead."""
    r = run_cli("probe", server.url("/about"), cwd=tmp_path)
    there = server.url(path)
    assert (r.returncode, r.stderr) == (1, (
        f"harvester: error: found no repeated entries with a link and a date on "
        f"{server.url('/about')}; {found}: {there} (try `harvester probe {there}`)\n"))


ABOUT = Response(b"<html><body><p>About us</p></body></html>", content_type="text/html")
LISTED = json.loads((LISTINGS / "entries.json").read_text("utf-8"))["a"][:12]
TRIED_FEEDS = ["/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml"]


def init_finds_sitemap(server: FixtureServer, tmp_path: Path, path: str, where: str,
                       fetched: list[str]) -> None:
    """`init` on /about, a page of no entries on a site serving no feed, writes the
    sitemap at `path` as its source, found `where`, after fetching `fetched`."""
    server.route("/about", ABOUT)
    r = run_cli("init", server.url("/about"), cwd=tmp_path)
    assert (r.returncode, r.stdout.splitlines()[1]) == (0, (
        f"  {server.url(path)}  (feed, 12 entries now; {server.url('/about')}'s site serves "
        f"no feed: {where}, each page in it an item)"))
    assert [q.path for q in server.requests] == ["/about", *TRIED_FEEDS, "/robots.txt",
                                                 *fetched]


def test_a_site_with_no_feed_is_read_through_the_sitemap_its_robots_txt_names(
        server, tmp_path):
    """No feed announced, none where site software serves one: the sitemap its
    robots.txt names (on its own site: one elsewhere is not fetched) reads as a feed of
    its pages, and init says so."""
    elsewhere = server.url("/other.xml").replace("127.0.0.1", "localhost")
    server.route("/robots.txt", Response(
        f"User-agent: *\nDisallow: /admin/\nSitemap: {elsewhere}\n"
        f"sitemap:  {server.url('/news-sitemap.xml')}\n".encode(), content_type="text/plain"))
    server.route("/news-sitemap.xml", Response(news_sitemap(LISTED),
                                               content_type="application/xml"))
    server.route("/other.xml", Response(news_sitemap(LISTED[:1]), content_type="text/xml"))
    init_finds_sitemap(server, tmp_path, "/news-sitemap.xml", "the sitemap its /robots.txt names",
                       ["/news-sitemap.xml"])
    r = run_cli("once", cwd=tmp_path)
    assert r.stderr.startswith("127-0-0-1-news-sitemap-xml: baseline: 12 items stored silently")
    items = run_cli("items", "--json", cwd=tmp_path).stdout.splitlines()
    assert json.loads(items[0])["title"] == LISTED[0]["title"]


def test_a_sitemap_index_is_looked_into_for_the_sitemap_of_the_sites_news(server, tmp_path):
    """No robots.txt: /sitemap.xml, an index as WordPress and Yoast write it; of the
    sitemaps it lists, those named for posts or news are tried first. probe says where."""
    index = ('<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.'
             'org/schemas/sitemap/0.9">' + "".join(
                 f"<sitemap><loc>{server.url(p)}</loc></sitemap>"
                 for p in ("/page-sitemap.xml", "/post-sitemap.xml")) + "</sitemapindex>")
    server.route("/sitemap.xml", Response(index.encode(), content_type="application/xml"))
    server.route("/page-sitemap.xml", Response(news_sitemap(LISTED[:2], plain=True),
                                               content_type="application/xml"))
    server.route("/post-sitemap.xml", Response(news_sitemap(LISTED, plain=True),
                                               content_type="application/xml"))
    init_finds_sitemap(server, tmp_path, "/post-sitemap.xml", "a sitemap in its index /sitemap.xml",
                       ["/sitemap.xml", "/post-sitemap.xml"])
    probe_points_to(server, tmp_path, "its site has a sitemap, which reads as a feed of its "
                    "pages", "/post-sitemap.xml")


def test_a_sitemap_index_that_lists_itself_is_fetched_a_few_times_only(server, tmp_path):
    index = ('<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             + f"<sitemap><loc>{server.url('/sitemap.xml')}</loc></sitemap>" * 50
             + "</sitemapindex>")
    server.route("/sitemap.xml", Response(index.encode(), content_type="application/xml"))
    server.route("/about", ABOUT)
    r = run_cli("init", server.url("/about"), cwd=tmp_path)
    assert r.returncode == 1 and "neither a feed, nor a page announcing one" in r.stderr
    assert [q.path for q in server.requests] == ["/about", *TRIED_FEEDS, "/robots.txt",
                                                 *["/sitemap.xml"] * SITEMAP_TRIES]


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>New</title></channel></rss>',
    b'<feed xmlns="http://www.w3.org/2005/Atom"><title>New</title><id>urn:x</id></feed>',
    b'{"version": "https://jsonfeed.org/version/1.1", "title": "New", "items": []}',
], ids=["rss", "atom", "json"])
def test_a_feed_with_no_entries_yet_is_a_feed(server, tmp_path, body):
    """A new blog, a category with no posts yet: subscribed to, not refused as "neither a
    feed nor a page"."""
    server.route("/new", Response(body, content_type="application/octet-stream"))
    url = server.url("/new")
    r = run_cli("init", url, cwd=tmp_path)
    assert (r.returncode, r.stdout.splitlines()[1]) == (0, f"  {url}  (feed, 0 entries now)")
    assert load_config(tmp_path / "harvester.toml").sources[0].kind.value == "feed"
    r = run_cli("probe", url, cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.endswith("# a feed, not a listing page (no selectors needed): no entries "
                             "yet\n")
    r = run_cli("--config", str(tmp_path / "harvester.toml"), "once", cwd=tmp_path)
    assert r.returncode == 0 and "baseline: 0 items stored silently" in r.stderr


def test_a_blogs_comments_feed_announced_first_is_not_its_news(server, icmpd_a, tmp_path):
    """WordPress announces "Site » Comments Feed" (/comments/feed/) beside "Site » Feed",
    in whatever order its theme writes them: a feed of comments is a feed, never the news."""
    server.route("/feed/", server.routes["/rss"])
    server.route("/comments/feed/", Response(feed_bytes("icmpd-2019-03.rss")))
    server.route("/2020/05/a-post/feed/", Response(feed_bytes("icmpd-2019-03.rss")))
    head = (b'<link rel="alternate" type="application/rss+xml" title="ICMPD &raquo; '
            b'Comments Feed" href="/comments/feed/">'
            b'<link rel="alternate" type="application/rss+xml" title="ICMPD &raquo; A post '
            b'Kommentare" href="/2020/05/a-post/feed/">'
            b'<link rel="alternate" type="application/rss+xml" title="ICMPD &raquo; Feed" '
            b'href="/feed/">')
    server.route("/blog/", Response(b"<html><head>" + head + b"</head><body><p>Welcome</p>"
                                    b"</body></html>", content_type="text/html"))
    r = run_cli("init", server.url("/blog/"), cwd=tmp_path)
    assert r.stdout.splitlines()[1] == (
        f"  {server.url('/feed/')}  (feed, 7 entries now; announced by {server.url('/blog/')})")
    r = run_cli("probe", server.url("/blog/"), cwd=tmp_path)
    assert r.stderr.endswith(f"the page announces a feed: {server.url('/feed/')} (try "
                             f"`harvester probe {server.url('/feed/')}`)\n")


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


def test_init_never_overwrites_and_writes_nothing_when_a_url_is_no_source(server, tmp_path):
    # the feed where no site software puts one, so that the /about page finds none either
    icmpd_a = server.url("/news-centre/rss-2020")
    server.route("/news-centre/rss-2020", Response(feed_bytes("icmpd-2020-05-a.rss")))
    server.route("/about", Response(b"<html><body><p>About us</p></body></html>",
                                    content_type="text/html"))
    r = run_cli("init", icmpd_a, server.url("/about"), server.url("/gone"), cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"harvester: error: nothing written; {server.url('/about')}: neither a feed, nor a "
        "page announcing one, nor a page with repeated entries (each with a link and a date);"
        " to watch the page itself for edits, give it with --page; "
        f"{server.url('/gone')}: HTTP 404 Not Found\n")
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


# -- harvester add: sources into a config that exists ----------------------------------------

MINE = """\
# my own config: add must leave every byte of it as it was
[storage]
path = "h.db"   # beside me

[[sources]]
name = "icmpd"
url = "{feed}"
category_from_title = true

[[notifiers]]
name = "stdout"
kind = "console\""""  # no newline at the end, as an editor may leave it


def test_add_appends_what_the_config_lacks_and_the_next_poll_takes_it(server, icmpd_a,
                                                                       tmp_path):
    """A listing page and a second feed are added; the feed the config has, given again
    (and under its canonical form), is said and left out; the user's text stays as it was."""
    serve(server, "a")
    server.route("/rss-2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    before = cfg.read_bytes()
    page, older = server.url("/news-centre/"), server.url("/rss-2019")
    r = run_cli("add", page, icmpd_a, older, server.url("/rss#top"), page, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "added 2 sources to harvester.toml:",
        f"  127-0-0-1-news-centre  {page}  (html, 10 entries now)",
        f"  127-0-0-1-rss-2019  {older}  (feed, 10 entries now)",
        f"  {icmpd_a}: already watched as icmpd",
        f"  {server.url('/rss#top')}: already watched as icmpd",
        "next: harvester once --source 127-0-0-1-news-centre --source 127-0-0-1-rss-2019   (a "
        "first poll stores what is there silently); a running daemon polls them within seconds"
        " (it watches its config's files)"]
    after = cfg.read_bytes()
    assert after.startswith(before + b"\n\n[[sources]]\n")
    config = load_config(cfg)
    assert [(s.name, s.kind.value, s.url, s.category_from_title) for s in config.sources] == [
        ("icmpd", "feed", icmpd_a, True),
        ("127-0-0-1-news-centre", "html", page, False),
        ("127-0-0-1-rss-2019", "feed", older, True)]
    assert config.sources[1].listing.param == "page"  # found on the page, as init finds it
    r = run_cli("once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stored = dict(re.findall(r"^(\S+): baseline: (\d+) items? stored silently", r.stderr, re.M))
    assert stored == {"icmpd": "7", "127-0-0-1-news-centre": "43", "127-0-0-1-rss-2019": "10"}
    r = run_cli("add", icmpd_a, older, cwd=tmp_path)  # again: nothing to add, nothing written
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [f"  {icmpd_a}: already watched as icmpd",
                                     f"  {older}: already watched as 127-0-0-1-rss-2019",
                                     "nothing added: the config polls each of these already"]
    assert cfg.read_bytes() == after


def test_add_with_a_header_sends_it_now_and_on_every_poll_keeping_the_secret_out(
        server, icmpd_a, tmp_path):
    """A feed behind a token: `add -H` fetches it with the token, writes the source with
    the header as given (`${NAME}`, so the file holds no secret), and polls send it."""
    body = feed_bytes("icmpd-2019-03.rss")

    def guarded(handler):
        if handler.headers.get("Authorization") != "Bearer s3cret":
            return Response(b"who are you?", 401, "text/plain", conditional=False)
        return Response(body)

    server.route("/members/rss", guarded)
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    url = server.url("/members/rss")
    r = run_cli("add", url, cwd=tmp_path)
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    r = run_cli("add", url, "-H", "Authorization: Bearer ${HV_TOKEN}", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "Usage: harvester add [OPTIONS] URL...\nTry "
                                           "'harvester add --help' for help.\n\nError: Invalid "
                                           "value for '-H' / '--header': 'Authorization': "
                                           "environment variable HV_TOKEN is not set\n")
    # given as it is, it would be written as it is: said
    r = run_cli("add", url, "--print", "-H", "Authorization: Bearer s3cret", cwd=tmp_path)
    assert 'headers = { Authorization = "Bearer s3cret" }' in r.stdout
    assert ("  note: Authorization written as given, not as ${NAME} from the environment: a "
            "secret is better kept out of the file") in r.stderr.splitlines()
    env = {"HV_TOKEN": "s3cret"}
    r = run_cli("add", url, "--name", "members", "-H", "Authorization: Bearer ${HV_TOKEN}",
                cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["added 1 source to harvester.toml:",
                                         f"  members  {url}  (feed, 10 entries now)"]
    text = cfg.read_text()
    assert 'headers = { Authorization = "Bearer ${HV_TOKEN}" }\n' in text
    assert "s3cret" not in text
    r = run_cli("once", "--source", "members", cwd=tmp_path, env=env)
    assert r.stderr.startswith("members: baseline: 10 items stored silently"), r.stderr
    asked = server.hits("/members/rss")
    assert [h.headers.get("Authorization") for h in asked] == [None] + ["Bearer s3cret"] * 3


def test_add_and_probe_read_a_key_in_a_url_from_the_environment(server, icmpd_a, tmp_path):
    """`add 'https://…/rss?key=${FEED_KEY}'`, as the config itself would hold it: fetched
    with the value, written (and said) as given, so the file holds no secret."""
    body = feed_bytes("icmpd-2019-03.rss")
    server.route("/private/rss?key=s3cr3t-key", Response(body))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    url = server.url("/private/rss?key=${HV_FEED_KEY}")
    r = run_cli("add", url, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (1, "harvester: error: nothing written; "
                                           f"{url}: environment variable HV_FEED_KEY is not "
                                           "set\n")
    env = {"HV_FEED_KEY": "s3cr3t-key"}
    r = run_cli("add", url, "--name", "private", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["added 1 source to harvester.toml:",
                                         f"  private  {url}  (feed, 10 entries now)"]
    assert f'url = "{url}"' in cfg.read_text() and "s3cr3t" not in cfg.read_text()
    r = run_cli("probe", url, "--entries", "1", cwd=tmp_path, env=env)
    assert r.returncode == 0 and f'url = "{url}"' in r.stdout and "s3cr3t" not in r.stdout
    r = run_cli("once", "--source", "private", cwd=tmp_path, env=env)
    assert r.stderr.startswith("private: baseline: 10 items stored silently"), r.stderr


def test_a_variable_a_site_names_is_never_read_from_the_environment(server, icmpd_a,
                                                                    tmp_path):
    """The config reads ${NAME} in a source's URL from the environment. A permanent move
    whose Location the site wrote with ${HV_SECRET}, written into the config as it came,
    had every poll send that variable (a password, a token) to the site. It is written
    %24{HV_SECRET}, the same characters to the site and no reference to the config (an
    announced feed's link comes percent-encoded already); the user's own ${NAME}, which a
    move quotes back or a page links its feed with, stays theirs."""
    body = feed_bytes("icmpd-2020-05-a.rss")
    server.route("/old-rss", Response(b"", status=301,
                                      headers={"Location": "/rss?k=${HV_SECRET}"}))
    server.route("/announcing/", Response(b"<html><head>" + ANNOUNCES.replace(
        b"/news-centre/rss", b"/news-centre/rss?k=${HV_SECRET}") + b"<body></body></html>"))
    for path in ("/rss?k=", "/news-centre/rss?k="):  # the braces as requests sends them
        server.route(path + "$%7BHV_SECRET%7D", Response(body))
        server.route(path + "%24%7BHV_SECRET%7D", Response(body))
    server.route("/private/rss?key=s3cr3t-key", Response(
        b"", status=301, headers={"Location": "/private/feed?key=s3cr3t-key"}))
    server.route("/private/feed?key=s3cr3t-key", Response(body))
    server.route("/private/page?key=s3cr3t-key", Response(b"<html><head>" + ANNOUNCES.replace(
        b"/news-centre/rss", b"/private/news?key=s3cr3t-key") + b"<body></body></html>"))
    server.route("/private/news?key=s3cr3t-key", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    env = {"HV_SECRET": "s3cret", "HV_FEED_KEY": "s3cr3t-key"}
    for url, name in ((server.url("/old-rss"), "moved"), (server.url("/announcing/"), "said"),
                      (server.url("/private/rss?key=${HV_FEED_KEY}"), "mine"),
                      (server.url("/private/page?key=${HV_FEED_KEY}"), "mine-too")):
        r = run_cli("add", url, "--name", name, cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
    text = cfg.read_text()
    assert f'url = "{server.url("/rss?k=%24{HV_SECRET}")}"\n' in text
    assert f'url = "{server.url("/news-centre/rss?k=$%7BHV_SECRET%7D")}"\n' in text
    assert f'url = "{server.url("/private/feed?key=${HV_FEED_KEY}")}"\n' in text
    # a page that links its feed with the key it was asked with: the file holds no secret
    assert f'url = "{server.url("/private/news?key=${HV_FEED_KEY}")}"\n' in text
    assert "s3cr" not in text
    r = run_cli("once", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert [h.path for h in server.requests if "s3cret" in h.path] == []
    assert len(server.hits("/rss?k=%24%7BHV_SECRET%7D")) == 1
    assert len(server.hits("/private/feed?key=s3cr3t-key")) == 2  # examined, then polled
    assert len(server.hits("/private/news?key=s3cr3t-key")) == 2


def test_a_variable_a_robots_txt_names_is_never_read_from_the_environment(server, tmp_path):
    """The sitemap a site's robots.txt names, with ${HV_SECRET} in its query: the source
    init writes never sends that variable to the site."""
    server.route("/robots.txt", Response(
        f"Sitemap: {server.url('/news-sitemap.xml')}?k=${{HV_SECRET}}\n".encode(),
        content_type="text/plain"))
    for query in ("$%7BHV_SECRET%7D", "%24%7BHV_SECRET%7D"):
        server.route(f"/news-sitemap.xml?k={query}", Response(
            news_sitemap(LISTED), content_type="application/xml"))
    server.route("/about", ABOUT)
    env = {"HV_SECRET": "s3cret"}
    r = run_cli("init", server.url("/about"), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "harvester.toml").read_text()
    assert f'url = "{server.url("/news-sitemap.xml")}?k=%24{{HV_SECRET}}"\n' in text
    r = run_cli("once", cwd=tmp_path, env=env)
    assert r.stderr.startswith("127-0-0-1-news-sitemap-xml: baseline: 12 items stored"), (
        r.stderr)
    assert [h.path for h in server.requests if "s3cret" in h.path] == []


def test_add_with_a_header_refuses_a_source_on_another_site(server, icmpd_a, tmp_path):
    """The page announces a feed elsewhere: its source would send the header there."""
    other = server.url("/news-centre/rss").replace("127.0.0.1", "localhost")
    server.route("/news-centre/", Response(ANNOUNCES.replace(b"/news-centre/rss", other.encode())
                                           .join([b"<html><head>", b"<body></body></html>"])))
    server.route("/news-centre/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    page = server.url("/news-centre/")
    r = run_cli("add", page, "-H", "Cookie: session=1", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"harvester: error: nothing written; {page}: its source would be "
                        f"{other}, on another site, where the -H headers would go too: add "
                        "that URL itself if it is meant\n")
    assert cfg.read_text() == MINE.format(feed=icmpd_a)


def test_add_to_an_included_file_only(server, icmpd_a, tmp_path):
    """--to writes a file the config includes, made if missing; one it does not include
    would never be polled, so it is refused and nothing is left behind."""
    server.route("/rss-2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    (tmp_path / "sources.d").mkdir()
    r = run_cli("add", server.url("/rss-2019"), "--to", "sources.d/news.toml", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("harvester: error: sources.d/news.toml is not among the files "
                        "harvester.toml includes (its include = [...] names them); nothing "
                        "written\n")
    assert list((tmp_path / "sources.d").iterdir()) == []
    cfg.write_text('include = ["sources.d/*.toml"]\n' + MINE.format(feed=icmpd_a))
    before = cfg.read_bytes()
    r = run_cli("add", server.url("/rss-2019"), "--to", "sources.d/news.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "added 1 source to sources.d/news.toml:"
    assert cfg.read_bytes() == before
    assert [s.name for s in load_config(cfg).sources] == ["icmpd", "127-0-0-1-rss-2019"]
    assert list((tmp_path / "sources.d").iterdir()) == [tmp_path / "sources.d" / "news.toml"]


def test_add_keeps_a_configs_permissions_and_its_symlink(server, icmpd_a, tmp_path):
    """A config holding secrets is often 0600, and often a link into a deploy folder."""
    server.route("/rss-2019", Response(feed_bytes("icmpd-2019-03.rss")))
    real = tmp_path / "deploy" / "harvester.toml"
    real.parent.mkdir()
    real.write_text(MINE.format(feed=icmpd_a))
    real.chmod(0o600)
    (tmp_path / "harvester.toml").symlink_to(real)
    r = run_cli("add", server.url("/rss-2019"), "--name", "older", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "harvester.toml").is_symlink()
    assert real.stat().st_mode & 0o777 == 0o600
    assert [s.name for s in load_config(real).sources] == ["icmpd", "older"]
    assert [p.name for p in real.parent.iterdir()] == ["harvester.toml"]  # no temporary left


@pytest.mark.parametrize(("args", "code", "message"), [
    (("{rss}", "--name", "icmpd news"), 2,
     "--name: 'icmpd news' is not a valid name (letters, digits, '.', '_', '-'; up to 64)"),
    (("{rss}", "{page}", "--name", "news"), 2, "--name names one source: give one URL with it"),
    (("{rss}", "--name", "icmpd"), 2, "--name: a source named 'icmpd' exists already"),
    (("{rss}", "{about}", "{gone}"), 1,
     "nothing written; {about}: neither a feed, nor a page announcing one, nor a page with "
     "repeated entries (each with a link and a date); to watch the page itself for edits, "
     "give it with --page; {gone}: HTTP 404 Not Found"),
    (("{login}",), 1,
     "nothing written; {login}: neither a feed, nor a page announcing one, nor a page with "
     "repeated entries (each with a link and a date); it shows a login form: add it with "
     "-H 'Authorization: Bearer ${{TOKEN}}' (or a Cookie) if it wants credentials"),
])
def test_add_writes_nothing_when_a_url_or_name_is_wrong(server, tmp_path, args, code, message):
    server.route("/rss-2019", Response(feed_bytes("icmpd-2019-03.rss")))
    server.route("/about", Response(b"<html><body><p>About us</p></body></html>",
                                    content_type="text/html"))
    server.route("/members", Response(b"<html><body><form><input type=password></form>"
                                      b"</body></html>", content_type="text/html"))
    serve(server, "a")
    urls = {"rss": server.url("/rss-2019"), "page": server.url("/news-centre/"),
            "about": server.url("/about"), "gone": server.url("/gone"),
            "login": server.url("/members")}
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=server.url("/rss")))
    before = cfg.read_bytes()
    r = run_cli("add", *(a.format(**urls) for a in args), cwd=tmp_path)
    assert (r.returncode, r.stdout) == (code, "")
    assert r.stderr == f"harvester: error: {message.format(**urls)}\n"
    assert cfg.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["harvester.toml"]
    if "login" in message:  # probe says so too, in its words
        r = run_cli("probe", urls["login"], cwd=tmp_path)
        assert (r.returncode, r.stderr) == (1, (
            f"harvester: error: found no repeated entries with a link and a date on "
            f"{urls['login']}; it shows a login form: probe it with -H 'Authorization: Bearer "
            "…' (or a Cookie) if it wants credentials\n"))



def test_add_page_watches_a_page_whole_and_its_next_edit_is_news(server, tmp_path):
    """A page with no entries to list (an article) is refused as a source of news items,
    pointing to --page; with it, the page is added as read now, and polled so."""
    server.route("/kyiv", Response((PAGES / "kyiv-a.html").read_bytes(),
                                   content_type="text/html; charset=utf-8"))
    server.route("/app", Response(b"<html><head><title>App</title></head><body><div id=app>"
                                  b"</div><script>render()</script></body></html>",
                                  content_type="text/html"))
    page = server.url("/kyiv")
    r = run_cli("probe", page, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (1, (
        f"harvester: error: found no repeated entries with a link and a date on {page}; to "
        f"watch the page itself for edits: harvester add --page {page} (a source of kind = "
        '"page")\n'))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=server.url("/rss")))
    r = run_cli("add", "--page", page, server.url("/app"), cwd=tmp_path)
    assert (r.returncode, r.stderr) == (1, (
        f"harvester: error: nothing written; {server.url('/app')}: the page shows no text (it "
        "may be drawn by JavaScript, which the harvester does not run)\n"))
    r = run_cli("add", "--page", page, "--name", "kyiv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        "added 1 source to harvester.toml:",
        f"  kyiv  {page}  (page; Ukrainian border guards and customs officers optimise "
        "operations with support…)"]
    assert cfg.read_text().endswith(
        "[[sources]]  # Ukrainian border guards and customs officers optimise operations with "
        f'support…\nname = "kyiv"\nkind = "page"\nurl = "{page}"\n')
    r = run_cli("once", "--source", "kyiv", cwd=tmp_path)
    assert r.stderr.startswith("kyiv: baseline: 1 item stored silently")



def test_add_page_says_when_the_page_changes_from_one_visit_to_the_next(server, tmp_path):
    """A view counter in the article ("Read 1204 times", more at each visit) would make
    every poll an edit, told to everyone. `add --page` reads the page twice, says what
    differs, and writes the `ignore` that takes it out — checked against both visits."""
    visits = iter(["kyiv-a.html", "kyiv-a-visited.html"] * 5)
    server.route("/counted", lambda handler: Response(
        (PAGES / next(visits)).read_bytes(), content_type="text/html; charset=utf-8",
        conditional=False))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=server.url("/rss")))
    r = run_cli("add", "--page", server.url("/counted"), "--name", "kyiv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2:5] == [
        "  kyiv: the page read otherwise at a second visit a moment later, so each poll "
        "would tell an edit:",
        "    content: … project can be found here. Read [-1204-] {+1311+} times",
        "  written with ignore = ['Read \\d+ times'], which reads both visits the same"]
    assert cfg.read_text().endswith(
        f'name = "kyiv"\nkind = "page"\nurl = "{server.url("/counted")}"\n'
        "  [sources.select]\n  ignore = ['Read \\d+ times']  # changes at every visit\n")
    for _ in range(3):  # each visit counted anew, none an edit
        r = run_cli("once", "--source", "kyiv", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    log = [json.loads(line) for line in run_cli(
        "log", "--source", "kyiv", "--json", cwd=tmp_path).stdout.splitlines()]
    assert [(e["status"], e["changed"]) for e in log] == [("ok", 0)] * 3
    # init --page says and writes the same
    r = run_cli("--config", "new.toml", "init", "--page", server.url("/counted"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2] == (
        f"  {server.url('/counted')}: the page read otherwise at a second visit a moment "
        "later, so each poll would tell an edit:")
    assert "  [sources.select]\n  ignore = ['Read \\d+ times']  # changes at every visit\n" in (
        tmp_path / "new.toml").read_text()


def test_a_sites_sitemap_is_added_as_a_feed_and_its_new_pages_are_news(server, tmp_path):
    """A site without a feed: its news sitemap is added as a feed source, a first poll
    takes the baseline, and a page the sitemap gains later is told as news."""
    from .test_parse_feed import news_sitemap

    listed = json.loads((LISTINGS / "entries.json").read_text("utf-8"))["a"]
    server.route("/sitemap.xml", Response(news_sitemap(listed[1:4]),
                                          content_type="application/xml"))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=server.url("/rss")))  # and its console notifier
    r = run_cli("add", server.url("/sitemap.xml"), "--name", "sitemap", cwd=tmp_path)
    assert r.stdout.splitlines()[1] == (f"  sitemap  {server.url('/sitemap.xml')}  (feed, 3 "
                                        "entries now)")
    r = run_cli("once", "--source", "sitemap", cwd=tmp_path)
    assert r.stderr.startswith("sitemap: baseline: 3 items stored silently")
    server.route("/sitemap.xml", Response(news_sitemap(listed[:4]),
                                          content_type="application/xml"))
    r = run_cli("once", "--source", "sitemap", cwd=tmp_path)
    assert r.stderr.startswith("sitemap: 1 new, 0 changed, 3 unchanged, 1 notification queued")
    assert r.stdout.splitlines()[:3] == [
        f"== {listed[0]['title']}", "   2022-03-31 07:00 UTC · sitemap",
        f"   https://www.icmpd.org{listed[0]['path']}"]


def test_add_without_a_config_points_to_init(icmpd_a, tmp_path):
    r = run_cli("add", icmpd_a, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("harvester: error: no config at harvester.toml to add to: `harvester "
                        "init URL…` writes a first one\n")
    assert list(tmp_path.iterdir()) == []


def test_add_refuses_a_config_whose_sources_are_an_inline_array(server, icmpd_a, tmp_path):
    """`sources = [...]` cannot take [[sources]] tables after it: said, and left alone."""
    server.route("/rss-2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = tmp_path / "h.toml"
    cfg.write_text(f'sources = [{{name = "icmpd", url = "{icmpd_a}"}}]\n')
    r = run_cli("--config", "h.toml", "add", server.url("/rss-2019"), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("harvester: error: h.toml: cannot take [[sources]] tables at its"
                               " end: Cannot mutate immutable namespace")
    assert cfg.read_text() == f'sources = [{{name = "icmpd", url = "{icmpd_a}"}}]\n'


def test_add_print_shows_the_tables_and_writes_nothing(server, icmpd_a, tmp_path):
    """For a config kept in git or made by a deploy tool: the tables go to stdout."""
    serve(server, "a")
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=icmpd_a))
    before = cfg.read_bytes()
    page = server.url("/news-centre/")
    r = run_cli("add", "--print", page, icmpd_a, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f'[[sources]]\nname = "127-0-0-1-news-centre"\nkind = "html"\n'
                               f'url = "{page}"\n  [sources.select]\n')
    assert r.stderr.splitlines() == [f"  127-0-0-1-news-centre  {page}  (html, 10 entries now)",
                                     f"  {icmpd_a}: already watched as icmpd"]
    assert cfg.read_bytes() == before
    cfg.write_text(MINE.format(feed=icmpd_a) + "\n\n" + r.stdout)  # pasted as printed
    assert [s.name for s in load_config(cfg).sources] == ["icmpd", "127-0-0-1-news-centre"]


def test_add_page_stands_on_its_first_read_when_the_second_visit_is_refused(server, tmp_path):
    answers = iter([Response((PAGES / "kyiv-a.html").read_bytes(), content_type="text/html",
                             conditional=False),
                    Response(b"slow down", status=429, content_type="text/plain",
                             conditional=False)])
    server.route("/once-a-minute", lambda handler: next(answers))
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(MINE.format(feed=server.url("/rss")))
    r = run_cli("add", "--page", server.url("/once-a-minute"), "--name", "kyiv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        "added 1 source to harvester.toml:",
        f"  kyiv  {server.url('/once-a-minute')}  (page; Ukrainian border guards and customs "
        "officers optimise operations with support…)"]
    assert "read otherwise" not in r.stdout and "[sources.select]" not in cfg.read_text()


def _visit(main: str) -> FetchResult:
    body = ("<html><head><title>Calls for tenders</title></head><body><main>"
            f"<h1>Calls for tenders</h1><p>Open calls for the Budapest Process.</p>{main}"
            "</main></body></html>").encode()
    return FetchResult("https://www.icmpd.org/tenders", 200, body, "text/html", None, None, 0.1)


@pytest.mark.parametrize(("first", "second", "lines", "ignore"), [
    ("<p>Read 1204 times</p>", "<p>Read 1204 times</p>", None, None),
    # a counter, and a clock, each taken out by its digits in the words around them
    ("<p>Read 1204 times</p>", "<p>Read 1311 times</p>",
     ("content: … calls for the Budapest Process. Read [-1204-] {+1311+} times",),
     ("Read \\d+ times",)),
    ("<p>Updated at 10:31:28 (CET)</p>", "<p>Updated at 10:31:29 (CET)</p>",
     ("content: … for the Budapest Process. Updated at [-10:31:28-] {+10:31:29+} (CET)",),
     ("at \\d+:\\d+:\\d+ \\(CET\\)",)),
    # a date and time: its dashes read as written
    ("<p>Updated 2020-05-13 10:31</p>", "<p>Updated 2020-05-14 08:02</p>",
     ("content: … calls for the Budapest Process. Updated [-2020-05-13 10:31-] "
      "{+2020-05-14 08:02+}",),
     ("Updated \\d+-\\d+-\\d+ \\d+:\\d+",)),
    # words that change at every visit, no digits to tell them by: said, nothing written
    ("<p>Quote of the day: Know thyself</p>", "<p>Quote of the day: Carpe diem</p>",
     ("content: … Budapest Process. Quote of the day: [-Know thyself-] {+Carpe diem+}",),
     ()),
    # a link that leads elsewhere each time (a cache-busting query), the words the same
    ('<p><a href="/t.pdf?v=1">Terms</a></p>', '<p><a href="/t.pdf?v=2">Terms</a></p>',
     ("content: a link in it leads elsewhere",), ()),
])
def test_a_page_read_twice_says_what_differs_and_the_ignore_that_takes_it_out(
        first, second, lines, ignore):

    found = restless_page(_visit(first), _visit(second), "https://www.icmpd.org/tenders")
    if lines is None:
        assert found is None
    else:
        assert (found.lines, found.ignore) == (lines, ignore)
