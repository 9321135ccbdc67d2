"""The lxml fast path must give exactly what the feedparser path gives, or decline."""

from __future__ import annotations

import pytest

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
