"""The lxml fast path must give exactly what the feedparser path gives, or decline."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.corpus import initial_head, render_feed
from harvester.normalise import Context, normalise
from harvester.parse.fast import parse_fast
from harvester.parse.feed import parse_feed, parse_with_feedparser

from .conftest import FEEDS, NOW

URL = "https://www.icmpd.org/news-centre/rss"


def both(body: bytes, content_type: str | None = "application/rss+xml; charset=utf-8"):
    fast = parse_fast(body, url=URL, content_type=content_type)
    slow = parse_with_feedparser(body, url=URL, content_type=content_type)
    return fast, slow


def normalised(doc):
    ctx = Context("s", doc.base_url, NOW, "Europe/Vienna", True, doc.language)
    return [normalise(e, ctx) for e in doc.entries]


CASES = [(f.name, f.read_bytes()) for f in sorted(FEEDS.glob("*.rss"))] + [
    (f"corpus-{dialect}-{i}", render_feed(7, i, 20, initial_head(20), dialect))
    for dialect in ("rss2", "rss1", "atom") for i in range(12)
]


@pytest.mark.parametrize(("name", "body"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_matches_feedparser(name, body):
    fast, slow = both(body)
    assert fast is not None, "the fast path should take well-formed UTF-8 feeds"
    assert fast.parser == "lxml" and slow.parser == "feedparser"
    assert fast.language == slow.language
    assert len(fast.entries) == len(slow.entries) > 0
    assert normalised(fast) == normalised(slow)


_NS = ('xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
       'xmlns:media="http://search.yahoo.com/mrss/" '
       'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"')


def _rss_item(extra: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {_NS}><channel>'
            "<title>T</title><item><title>a</title><link>https://e.org/1</link>"
            "<description>d</description><pubDate>Tue, 26 May 2020 10:00:00 +0000</pubDate>"
            f"{extra}</item></channel></rss>").encode()


def _atom_entry(extra: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f"{_NS}><title>T</title><id>x</id><entry><title>a</title><id>urn:1</id>"
            f"<updated>2020-05-26T14:12:00Z</updated>{extra}</entry></feed>").encode()


# What real feeds hold beyond the core: feedparser reads some of it into the fields
# (itunes:summary as content, media:keywords as tags, the last of author and dc:creator,
# the last of several alternate links), so the fast path must match it or decline
ODD = {
    "relative link": _rss_item("").replace(b"https://e.org/1", b"/news/1"),
    "itunes:summary": _rss_item("<itunes:summary>IS</itunes:summary>"),
    "itunes:author": _rss_item("<itunes:author>IA</itunes:author>"),
    "itunes:category": _rss_item('<itunes:category text="IC"/>'),
    "media:keywords": _rss_item("<media:keywords>k1, k2</media:keywords>"),
    "media:description": _rss_item("<media:description>MD</media:description>"),
    "dcterms:issued": _rss_item("<dcterms:issued>2019-01-01T00:00:00Z</dcterms:issued>"),
    "updated in an item": _rss_item("<updated>2019-01-01T00:00:00Z</updated>"),
    "keywords": _rss_item("<keywords>kw</keywords>"),
    "dc:creator then author": _rss_item("<dc:creator>Jane</dc:creator><author>j@e.org (J)</author>"),
    "author then dc:creator": _rss_item("<author>j@e.org (J)</author><dc:creator>Jane</dc:creator>"),
    "harmless extras": _rss_item('<comments>https://e.org/c</comments><enclosure url="https://e.'
                                 'org/a.mp3" length="1" type="audio/mpeg"/><media:thumbnail '
                                 'url="https://e.org/t.jpg"/><dc:creator>Jane</dc:creator>'),
    "atom: two alternate links": _atom_entry('<link rel="alternate" href="https://e.org/de"/>'
                                             '<link rel="alternate" href="https://e.org/en"/>'),
    "atom: a PDF alternate": _atom_entry('<link rel="alternate" type="application/pdf" '
                                         'href="https://e.org/pdf"/>'),
    "atom: rel in capitals": _atom_entry('<link rel="ALTERNATE" href="https://e.org/f"/>'),
    "atom: an empty href": _atom_entry('<link href="https://e.org/e"/><link href=""/>'),
    "atom: relative href": _atom_entry('<link href="/p/1"/>'),
    "atom: self and alternate": _atom_entry('<link rel="self" href="https://e.org/s"/><link '
                                            'rel="alternate" type="text/html" href="https://e.'
                                            'org/g"/>'),
    "atom: YouTube's media:group": _atom_entry(
        '<link rel="alternate" href="https://e.org/v"/><media:group><media:title>T'
        "</media:title><media:description>Video</media:description></media:group>"),
}
TAKEN = {"relative link", "harmless extras", "atom: relative href", "atom: self and alternate"}


@pytest.mark.parametrize("name", ODD)
def test_what_real_feeds_hold_beyond_the_core_reads_alike_or_is_declined(name):
    fast, slow = both(ODD[name], None)
    assert (fast is not None) == (name in TAKEN)
    if fast is not None:  # raw_hash included: a feed read by either path is the same items
        assert normalised(fast) == normalised(slow)


@pytest.mark.parametrize(("why", "body", "content_type"), [
    ("not well-formed", b"<rss version='2.0'><channel><item><title>x</item></channel></rss>", None),
    ("a DOCTYPE", b'<!DOCTYPE rss [<!ENTITY e "x">]><rss version="2.0"><channel/></rss>', None),
    ("xml:base", b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://a/"></feed>', None),
    ("latin-1 declared", b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel/></rss>', None),
    ("header disagrees", b'<rss version="2.0"><channel/></rss>', "text/xml; charset=windows-1252"),
    ("unknown dialect", b"<opml><body/></opml>", None),
    ("xhtml content", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>t</title>'
                      b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div>'
                      b"</content></entry></feed>", None),
    ("markup in an RSS title", b'<rss version="2.0"><channel><item><title>a<b>x</b></title>'
                               b"</item></channel></rss>", None),
])
def test_fast_path_declines_what_it_cannot_vouch_for(why, body, content_type):
    assert parse_fast(body, url=URL, content_type=content_type) is None, why


def test_parse_feed_uses_the_fast_path_and_falls_back():
    good = (FEEDS / "icmpd-2020-05-a.rss").read_bytes()
    assert parse_feed(good, url=URL).parser == "lxml"
    # a Latin-1 document is transcoded to UTF-8 first, so the fast path can read it too
    latin = (b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel>'
             b"<item><title>Caf\xe9</title><link>http://a/</link></item></channel></rss>")
    doc = parse_feed(latin, url=URL)
    assert doc.parser == "lxml" and doc.entries[0].title == "Café"
    based = latin.replace(b"<channel>", b'<channel xml:base="http://a/">')
    doc = parse_feed(based, url=URL)
    assert doc.parser == "feedparser" and doc.entries[0].title == "Café"


# -- any feed hypothesis can write: the fast path reads it as feedparser does, or declines --

_TEXT_BITS = st.sampled_from([
    "Kick-off", "in", "Vienna", " ", "  ", "\n", "\t", "&amp;", "&lt;b&gt;bold&lt;/b&gt;",
    "&#233;", "&#x1F600;", "&quot;", "&apos;", "é", "Ü", "“quoted”", "—", "<![CDATA[<p>cdata "
    "&amp; more</p>]]>", "<![CDATA[x]]>", "&lt;p&gt;para&lt;/p&gt;", "&lt;a href='/rel'&gt;"
    "link&lt;/a&gt;", "&#160;", "\u00a0", "&amp;amp;", "0", "Press Release:", "x" * 30,
    "SchÃ¼ler", "Ã©", "&#147;", "\u0094", "\u00df",  # UTF-8 read as Latin-1; cp1252's quotes
])
_TEXT = st.lists(_TEXT_BITS, max_size=6).map("".join)
_DATES = st.sampled_from([
    "Tue, 26 May 2020 10:00:00 +0000", "Tue, 26 May 2020 10:00:00 GMT", "26 May 2020 10:00 +0200",
    "Tue, 26 May 2020 10:00:00 CEST", "2020-05-26T10:00:00Z", "2020-05-26T10:00:00+02:00",
    "2020-05-26", "Wed, 31 Feb 2020 10:00:00 +0000", "yesterday", "", " Tue, 26 May 2020 "
    "10:00:00 +0000 ", "Tue, 26 May 2020 25:00:00 +0000", "1590487200"])
_LINKS = st.sampled_from(["https://e.org/1", "/news/2", "news/3?a=1&amp;b=2", "", " https://e.org/4 ",
                          "https://E.ORG:443/5#frag", "javascript:alert(1)", "mailto:a@e.org"])


_NO_ATTRS = st.just("")


def _maybe(draw, parts: list[str], tag: str, value: st.SearchStrategy[str],
           attrs: st.SearchStrategy[str] = _NO_ATTRS) -> None:
    """Half the time, the element `tag` with a drawn value (and attributes) in `parts`."""
    if draw(st.booleans()):
        parts.append(f"<{tag}{draw(attrs)}>{draw(value)}</{tag}>")


_KINDS = st.sampled_from(["", ' type="text"', ' type="html"'])


@st.composite
def _rss_doc(draw) -> bytes:
    items = []
    for n in range(draw(st.integers(1, 4))):
        parts: list[str] = []
        for tag, value in (("title", _TEXT), ("link", _LINKS), ("description", _TEXT),
                           ("content:encoded", _TEXT), ("pubDate", _DATES),
                           ("dc:creator", _TEXT)):
            _maybe(draw, parts, tag, value)
        _maybe(draw, parts, "guid", st.sampled_from(["urn:g:1", f"urn:g:{n}", "https://e.org/g",
                                                     ""]),
               st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"']))
        parts += [f"<category>{draw(_TEXT)}</category>" for _ in range(draw(st.integers(0, 2)))]
        items.append("<item>" + "".join(draw(st.permutations(parts))) + "</item>")
    lang = draw(st.sampled_from(["", "<language>en</language>", "<language>de-AT</language>"]))
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>'
            f"<link>https://www.icmpd.org/</link>{lang}{''.join(items)}</channel></rss>").encode()


@st.composite
def _atom_doc(draw) -> bytes:
    entries = []
    for n in range(draw(st.integers(1, 4))):
        parts = [f"<id>{draw(st.sampled_from(['urn:e:1', f'urn:e:{n}', 'https://e.org/i']))}</id>"]
        for tag in ("title", "summary", "content"):
            _maybe(draw, parts, tag, _TEXT, _KINDS)
        for tag in ("published", "updated"):
            _maybe(draw, parts, tag, _DATES)
        if draw(st.booleans()):
            parts.append(f'<link href="{draw(_LINKS)}"/>')
        for _ in range(draw(st.integers(0, 2))):
            parts.append(f'<category term="{draw(st.sampled_from(["News", "a b", "&amp;", ""]))}"/>')
        _maybe(draw, parts, "author", _TEXT.map(lambda t: f"<name>{t}</name>"))
        entries.append("<entry>" + "".join(draw(st.permutations(parts))) + "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            "<title>T</title><id>urn:feed</id><link href=\"https://www.icmpd.org/\"/>"
            f"{''.join(entries)}</feed>").encode()


def _rss(item: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T'
            f"</title><item>{item}</item></channel></rss>").encode()


def _atom(entry: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/'
            f'Atom"><title>T</title><id>urn:f</id><entry><id>urn:e</id>{entry}</entry></feed>'
            ).encode()


@settings(max_examples=200, deadline=None)
@given(st.one_of(_rss_doc(), _atom_doc()))
# found by it — each read otherwise by the fast path than by feedparser:
# UTF-8 read as Latin-1 ("SchÃ¼ler"), which feedparser decodes again, and cp1252's quotes
@example(_rss("<title>SchÃ¼ler &#147;lernen&#148;</title><link>https://e.org/1</link>"))
# … but not in an Atom author's name, which it reads as it is
@example(_atom("<title>t</title><author><name>Ã© \u00e9\u00a0\u00a0</name></author>"))
# a category given twice (without a domain or scheme: once)
@example(_rss("<title>t</title><category>News</category><category>News</category>"
              '<category domain="d">News</category>'))
@example(_atom('<title>t</title><category term="News"/><category term="News"/>'
               '<category term="News" scheme="s"/>'))
# an empty <link>: a link of nothing, so a permalink guid is not taken for it
@example(_rss('<title>t</title><link></link><guid isPermaLink="true">https://e.org/g</guid>'))
# a description that is the content: no summary of its own
@example(_rss("<title>t</title><description>same</description>"
              "<content:encoded>same</content:encoded>"))
# spaces around an Atom href, some of which feedparser keeps
@example(_atom('<title>t</title><link href=" https://e.org/4 "/>'))
def test_any_feed_reads_alike_on_both_paths_or_the_fast_one_declines(body):
    """Titles with entities, CDATA and escaped markup, relative and odd links, dates in
    every shape feeds write them (and some no reader can), fields missing or repeated, in
    any order: the fast path gives the very items feedparser gives, or leaves the feed
    to it."""
    fast, slow = both(body, None)
    if fast is not None:
        assert normalised(fast) == normalised(slow)


def test_utf8_read_as_latin1_is_read_again_on_both_paths():
    """"SchÃ¼ler" — a CMS that took its UTF-8 for Latin-1 and encoded it again — is
    "Schüler", and cp1252's curly quotes are quotes, whichever path reads the feed."""
    for title, read in (("SchÃ¼ler lernen", "Schüler lernen"),
                        ("&#147;Schüler&#148; lernen", "“Schüler” lernen")):
        fast, slow = both(_rss(f"<title>{title}</title><link>https://e.org/1</link>"), None)
        assert fast.entries[0].title == slow.entries[0].title == read
