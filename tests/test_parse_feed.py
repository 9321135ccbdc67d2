"""parse/feed.py: a document of more entries than are read is cut before either parser
builds them, and gives exactly the entries reading it whole would have given."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

import harvester.parse.caps as caps
import harvester.parse.feed as feed
from bench.corpus import initial_head, render_feed
from harvester.errors import ParseError
from harvester.parse import parse_feed

from .conftest import NOW, SITEMAP_NS, news_sitemap

URL = "https://www.icmpd.org/news-centre/rss"
CAP = 7


def _malformed(body: bytes) -> bytes:
    """The same feed with a bare "&" before its first entry: lxml refuses it."""
    for tag in (b"<item", b"<entry"):
        at = body.find(tag)
        if at > 0:
            return body[:at] + b" & " + body[at:]
    raise AssertionError("no entry")


DOCS = {f"{dialect}{'-malformed' if bad else ''}": (
    _malformed(render_feed(3, 1, 20, initial_head(20), dialect)) if bad
    else render_feed(3, 1, 20, initial_head(20), dialect))
    for dialect in ("rss2", "rss1", "atom") for bad in (False, True)}


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(feed, "MAX_ENTRIES", CAP)


@pytest.mark.parametrize("name", list(DOCS))
def test_a_document_over_the_cap_reads_as_its_first_entries(name, small_cap, monkeypatch):
    """20 entries under a cap of 7: the parser sees the first 7 and the document's end
    (so the fast path still takes a well-formed one), and they are exactly the first 7
    that reading the whole document gives; the warning counts all 20."""
    body = DOCS[name]
    seen: list[int] = []  # how many entries each parser was handed

    def spy(parse):
        def parsing(body, **kw):
            seen.append(len(feed._ENTRY_START.findall(body)))
            return parse(body, **kw)
        return parsing

    monkeypatch.setattr(feed, "parse_fast", spy(feed.parse_fast))
    monkeypatch.setattr(feed, "parse_with_feedparser", spy(feed.parse_with_feedparser))
    cut = parse_feed(body, url=URL, content_type="application/xml")
    assert seen == ([CAP, CAP] if name.endswith("malformed") else [CAP])
    monkeypatch.setattr(feed, "first_entries", lambda b: (b, None))
    whole = parse_feed(body, url=URL, content_type="application/xml")
    assert len(whole.entries) == CAP and len(cut.entries) == CAP
    assert cut.entries == whole.entries
    assert (cut.parser, cut.title, cut.language) == (whole.parser, whole.title, whole.language)
    assert cut.parser == ("feedparser" if name.endswith("malformed") else "lxml")
    assert cut.warning is not None and cut.warning.endswith(
        f"20 entries; only the first {CAP} were read")
    assert cut.warning == whole.warning


def test_the_cut_keeps_the_documents_end(small_cap):
    body = DOCS["rss2"]
    cut, total = feed.first_entries(body)
    assert total == 20
    root = etree.fromstring(cut)  # still well-formed
    assert len(root.findall("channel/item")) == CAP
    starts = [m.start() for m in re.finditer(rb"<item>", body)]
    assert cut == body[:starts[CAP]] + body[body.rindex(b"</item>") + len(b"</item>"):]
    # entries never closed: the root's closing tag is kept, so the cut document is not
    # taken for a truncated one (as the whole one was not)
    unclosed = (b'<rss version="2.0"><channel><title>t</title>'
                + b"".join(b"<item><title>%d</title>" % i for i in range(20))
                + b"</channel></rss>")
    cut, total = feed.first_entries(unclosed)
    assert total == 20
    assert cut == unclosed[:unclosed.index(b"<item><title>7<")] + b"</rss>"
    assert len(parse_feed(cut, url=URL).entries) == CAP


@pytest.mark.parametrize("body", [
    DOCS["atom"],                                     # 20 entries, cap 20: read whole
    b"<rss><channel>" + b"<x/>" * 50 + b"</channel></rss>",  # many tags, no entries
    b"<rss><channel>" + b"<itemize/>" * 50 + b"<entryway/>" * 50 + b"</channel></rss>",
])
def test_a_document_within_the_cap_is_left_as_it_is(body, monkeypatch):
    monkeypatch.setattr(feed, "MAX_ENTRIES", 20)
    assert feed.first_entries(body) == (body, None)
    assert feed.first_entries(body)[0] is body


@pytest.mark.parametrize("name", ["rss2", "atom", "rss2-malformed", "atom-malformed"])
def test_a_document_of_too_many_tags_is_refused_before_either_parser_builds_it(
        name, monkeypatch):
    """Counted after the cut to the first entries: a document past MAX_MARKUP_TAGS is refused,
    one lxml declines is past MAX_LENIENT_TAGS too; at the caps, each reads."""
    from harvester.errors import ParseError

    body = DOCS[name]
    tags = body.count(b"<") - caps.cdata_tags(body)  # what is counted, past the lenient cap
    malformed = name.endswith("malformed")
    monkeypatch.setattr(caps, "MAX_MARKUP_TAGS", tags)
    monkeypatch.setattr(feed, "MAX_LENIENT_TAGS", tags)
    assert len(parse_feed(body, url=URL, content_type="application/xml").entries) == 20
    monkeypatch.setattr(feed, "MAX_LENIENT_TAGS", tags - 1)
    if malformed:
        with pytest.raises(ParseError) as e:
            parse_feed(body, url=URL, content_type="application/xml")
        assert str(e.value) == (f"not read: a malformed document of {tags:,} tags, more than "
                                f"the {tags - 1:,} a malformed feed is read with")
    else:  # the fast path reads it: the lenient cap is not its business
        assert parse_feed(body, url=URL, content_type="application/xml").parser == "lxml"
    monkeypatch.setattr(caps, "MAX_MARKUP_TAGS", tags - 1)
    with pytest.raises(ParseError) as e:
        parse_feed(body, url=URL, content_type="application/xml")
    assert str(e.value) == f"not read: {tags:,} tags in the document, more than {tags - 1:,}"


def test_the_tags_are_counted_after_the_cut(small_cap, monkeypatch):
    """20 entries cut to 7: the tag cap weighs what is parsed, not what was sent."""
    body = DOCS["rss2"]
    cut, _ = feed.first_entries(body)
    monkeypatch.setattr(caps, "MAX_MARKUP_TAGS", cut.count(b"<"))
    assert len(parse_feed(body, url=URL, content_type="application/xml").entries) == CAP


def test_markup_inside_cdata_is_text_to_the_tag_caps(monkeypatch):
    """HTML content wrapped in CDATA builds no node in the XML tree (its fields read a
    bounded window of it later, see text_of and clean_content), so past the lenient cap
    its "<"s are not counted; the same markup as elements is."""
    from harvester.errors import ParseError

    monkeypatch.setattr(caps, "MAX_MARKUP_TAGS", 100)
    monkeypatch.setattr(feed, "MAX_LENIENT_TAGS", 100)
    markup = "<p>word</p>" * 200
    wrapped = (f'<rss version="2.0"><channel><title>t</title><item><title>One</title>'
               f"<link>http://a/1</link><description><![CDATA[{markup}]]></description>"
               f"</item></channel></rss>").encode()
    doc = parse_feed(wrapped, url=URL)
    assert [e.title for e in doc.entries] == ["One"] and doc.entries[0].summary == markup
    bare = wrapped.replace(b"<![CDATA[", b"").replace(b"]]>", b"")
    with pytest.raises(ParseError) as e:
        parse_feed(bare, url=URL)
    assert str(e.value) == "not read: 414 tags in the document, more than 100"


PAGE = URL.replace("/rss", "/")
_CHALLENGE = b"<title>Just a moment...</title></head><body><p>Checking your browser</p>"
_NEWS_PAGE = (b'<title>News\n Centre | ICMPD</title><link rel="alternate" '
              b'type="application/rss+xml" href="rss"><link rel="alternate" '
              b'type="application/atom+xml" href="/atom.xml"></head><body>')


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"<!DOCTYPE html>\n<html><head>" + _CHALLENGE + b"</body></html>", "text/html",
     'not a feed: an HTML page ("Just a moment...") with nothing to list on it (a bot check, '
     "or a maintenance or error page, came instead of the feed; `harvester probe "
     f"{PAGE}` shows it)"),
    # served as a feed, an XML declaration and a comment first: still a page
    (b'<?xml version="1.0"?>\n<!-- cached -->\n<html><head>' + _CHALLENGE + b"</body></html>",
     "application/rss+xml",
     'not a feed: an HTML page ("Just a moment...") with nothing to list on it (a bot check, '
     "or a maintenance or error page, came instead of the feed; `harvester probe "
     f"{PAGE}` shows it)"),
    # a login form: the feed wants credentials (an expired key, a session gone)
    (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=post>"
     b"<input name=user><INPUT TYPE='Password' name=pw></form></body></html>", "text/html",
     'not a feed: an HTML page ("Sign in") with a login form: the feed wants credentials; '
     'a source sends them with `headers = { Authorization = "Bearer ${TOKEN}" }` (or a '
     "Cookie), or a key in its url as ${NAME}"),
    (b"<html>soft 404</html>", "text/html",
     "not a feed: an HTML page with nothing to list on it (a bot check, or a maintenance or "
     f"error page, came instead of the feed; `harvester probe {PAGE}` shows it)"),
    # the site's news as a page of links: a listing source reads it
    (b"<html><body>" + b"".join(b'<h3><a href="/n/%d">News %d</a></h3>' % (i, i)
                                for i in range(3)) + b"</body></html>", "text/html",
     'not a feed: an HTML page; a listing page is read with kind = "html"'
     f" (`harvester probe {PAGE}` finds its entries)"),
    # a login box in the site's header is no sign-in page: the feed it names is the way on
    (b"<!doctype html><html><head>" + _NEWS_PAGE + b"<form><input type=password></form>"
     b"</body></html>", "text/html",
     'not a feed: an HTML page ("News Centre | ICMPD"), which names its feed at '
     "https://www.icmpd.org/news-centre/rss (and 1 more: `harvester probe "
     f"{PAGE}` lists them): write that as the source's url"),
    (b"<!doctype html><html><head>" + _NEWS_PAGE + b"</body></html>", "text/html",
     'not a feed: an HTML page ("News Centre | ICMPD"), which names its feed at '
     "https://www.icmpd.org/news-centre/rss (and 1 more: `harvester probe "
     f"{PAGE}` lists them): write that as the source's url"),
])
def test_an_html_page_where_the_feed_should_be_is_named_with_the_way_on(body, content_type,
                                                                       expected):
    """A bot check, a soft 404 or the site's own page answers for the feed: the error says
    which page came, and the feed it names, the kind that reads a listing, or — for a page
    with nothing to list — what such a page is (it suggested a listing source before)."""
    from harvester.errors import ParseError

    with pytest.raises(ParseError) as e:
        parse_feed(body, url=PAGE, content_type=content_type)
    assert str(e.value) == expected


def test_a_page_title_is_one_short_line():
    from harvester.errors import ParseError

    title = "Breaking\x1b[31m news " + "very " * 30
    body = f"<html><head><title>{title}</title></head><body></body></html>".encode()
    with pytest.raises(ParseError) as e:
        parse_feed(body, url=PAGE, content_type="text/html")
    shown = str(e.value).split('"')[1]
    assert shown == "Breaking[31m news" + " very" * 12 + "…"  # cut between words, ≤ 80


_ICMPD = (Path(__file__).parent.parent / "fixtures" / "feeds" / "icmpd-2020-05-a.rss"
          ).read_bytes()
_NO_DECL = _ICMPD.split(b"?>", 1)[1]


@pytest.mark.parametrize(("body", "warning"), [
    (b"\n\n  " + _ICMPD, None),  # whitespace before the declaration: harmless, unsaid
    (b"\xef\xbb\xbf\r\n" + _ICMPD, None),
    (b"<br />\n<b>Warning</b>:  Undefined variable $x in <b>/var/www/feed.php</b> on line "
     b"<b>12</b><br />\n" + _ICMPD, "98 bytes before the feed ignored"),
    (b"Deprecated: Function create_function() is deprecated\n" + _ICMPD,
     "53 bytes before the feed ignored"),
    (_ICMPD + b"\n<!-- generated in 0.2s -->\n<script src='//stats.host/t.js'></script>",
     "70 bytes after the feed ignored"),  # "truncated feed: the document ends early" before
    # what XML allows around the root stays, and is no warning
    (_ICMPD + b"\n<!-- Dynamic page generated in 0.3 seconds. -->\n", None),
    (b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
     b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<!-- c -->\n' + _NO_DECL, None),
    (b'<!-- c -->\n<?xml-stylesheet type="text/xsl" href="/rss.xsl"?>\n' + _NO_DECL, None),
])
def test_what_a_server_writes_around_the_feed_is_left_out(body, warning):
    """A PHP warning before the feed, a host's script after it: the feed is read whole, on
    the fast path, and the poll's warning says how many bytes were ignored."""
    doc = parse_feed(body, url=URL, content_type="application/rss+xml")
    assert [e.title for e in doc.entries] == [
        e.title for e in parse_feed(_ICMPD, url=URL, content_type="application/rss+xml").entries]
    assert len(doc.entries) == 7
    assert doc.warning == warning
    cut, _ = feed.without_junk(body)
    assert feed.parse_fast(feed.without_dtd(cut), url=URL,
                           content_type="application/rss+xml") is not None


RSS_HEAD = (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>T'
            b'</title>\n')


@pytest.mark.parametrize("item, warning", [
    (b"<item><title>Austria&nbsp;and Ghana</title><link>https://x.example/a</link></item>",
     "line 4, column 21: undefined entity &nbsp;"),
    (b"<item><title>A <b>bold</title><link>https://x.example/a</link></item>",
     "line 4, column 25: mismatched tag"),
])
def test_a_malformed_feeds_warning_says_where_in_words(item, warning):
    """feedparser's `<unknown>:4:20:` is said as a line and column a person can look up,
    and an undefined entity by its name: what to tell the feed's publisher."""
    body = RSS_HEAD + b"<link>https://x.example/</link>\n" + item + b"\n</channel></rss>\n"
    doc = parse_feed(body, url="https://x.example/rss")
    assert len(doc.entries) == 1
    assert doc.warning == f"malformed feed, entries kept: {warning}"


@pytest.mark.parametrize("plain", [False, True])
def test_a_sitemap_is_read_as_its_pages_newest_first(plain):
    """A site without a feed has a sitemap: each page an entry, dated by its news
    publication date (else lastmod), titled by its news title (else its link's words)."""
    import json

    listed = json.loads((Path(__file__).parent.parent / "fixtures" / "listings" / "entries.json")
                        .read_text("utf-8"))["a"]
    listed = [listed[i] for i in (0, 1, 3, 4)]  # four days, newest first
    body = news_sitemap(list(reversed(listed)), plain)  # oldest first, as CMSes often write
    doc = parse_feed(body, url="https://www.icmpd.org/sitemap.xml")
    assert doc.parser == "sitemap" and doc.warning is None
    got = [(e.link, e.published, e.title) for e in doc.entries]
    assert [link for link, _, _ in got] == [f"https://www.icmpd.org{e['path']}" for e in listed]
    if plain:
        assert got[0][1:] == ("2022-03-31", "The second phase of the strengthening border and "
                              "migration management smmig project launch")
    else:
        assert [title for _, _, title in got] == [e["title"] for e in listed]
        assert got[0][1] == "2022-03-31T09:00:00+02:00"


def test_a_sitemaps_pages_without_a_link_are_passed_over_and_one_without_words_is_its_link():
    """A `<url>` with no (or an empty) `<loc>` names no page, and a comment is no page
    either; a link whose last segment is a number has no words to title it, so the link
    does — never an empty title."""
    from harvester.normalise import Context, normalise

    body = (f"<urlset {SITEMAP_NS}><!-- generated --><url><loc>https://e.org/news/12345</loc>"
            "<lastmod>2020-05-02</lastmod></url><url><lastmod>2020-05-03</lastmod></url>"
            "<url><loc> </loc></url></urlset>").encode()
    doc = parse_feed(body, url="https://e.org/sitemap.xml")
    assert [(e.link, e.title, e.published) for e in doc.entries] == [
        ("https://e.org/news/12345", None, "2020-05-02")]
    item = normalise(doc.entries[0], Context("e", "https://e.org/sitemap.xml", NOW))
    assert (item.title, item.url, item.published) == (
        "https://e.org/news/12345", "https://e.org/news/12345", "2020-05-02T00:00:00Z")


@pytest.mark.parametrize(("body", "error"), [
    (f'<sitemapindex {SITEMAP_NS}><sitemap><loc>https://e.org/news.xml</loc></sitemap>'
     f'<sitemap><loc>https://e.org/pages.xml</loc></sitemap></sitemapindex>'.encode(),
     "a sitemap index: it lists 2 sitemaps, not pages; give one of them as the source's url "
     "(https://e.org/news.xml, https://e.org/pages.xml)"),
    (f"<urlset {SITEMAP_NS}><url><loc>https://e.org/a</loc></url>".encode(),
     "not a well-formed sitemap: "),
])
def test_a_sitemap_that_lists_no_pages_is_said(body, error):
    with pytest.raises(ParseError) as exc:
        parse_feed(body, url="https://e.org/sitemap.xml")
    assert str(exc.value).startswith(error)


def test_a_sitemaps_entities_are_never_expanded():
    body = (b'<?xml version="1.0"?>\n<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">'
            b'<!ENTITY l "lollollollollol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">]>\n'
            + f"<urlset {SITEMAP_NS}><url><loc>https://e.org/a-&x;&l2;</loc></url>"
              "</urlset>".encode())
    with pytest.raises(ParseError) as exc:  # undefined once the DOCTYPE is gone
        parse_feed(body, url="https://e.org/sitemap.xml")
    assert "not a well-formed sitemap" in str(exc.value) and "root:" not in str(exc.value)
