"""Charset reconciliation: header, BOM, XML declaration and <meta> against the bytes."""

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.parse import parse_feed
from harvester.parse.encoding import to_utf8
from harvester.parse.listing import Selectors, extract

TITLE = "Réunion à Genève – “quoted” €"


def rss(title_bytes: bytes, decl: str | None = "utf-8") -> bytes:
    head = f'<?xml version="1.0" encoding="{decl}"?>'.encode() if decl else b""
    return (head + b'<rss version="2.0"><channel><title>c</title><item><title>' + title_bytes
            + b"</title><link>http://news.example/1</link></item></channel></rss>")


CASES = [
    # (why, body, content type, override, expected title, note contains)
    ("utf-8 as labelled", rss(TITLE.encode()), "application/rss+xml; charset=utf-8", None,
     TITLE, None),
    ("utf-8 behind a latin-1 header", rss(TITLE.encode(), None),
     "text/xml; charset=ISO-8859-1", None, TITLE, "the HTTP header says cp1252"),
    ("utf-8 behind a latin-1 declaration", rss(TITLE.encode(), "iso-8859-1"), None, None,
     TITLE, "the XML declaration says cp1252"),
    ("windows-1252 behind a utf-8 header", rss(TITLE.encode("cp1252"), None),
     "application/xml; charset=utf-8", None, TITLE, "says UTF-8 but the bytes are not"),
    ("windows-1252, unlabelled", rss(TITLE.encode("cp1252"), None), None, None, TITLE,
     "read as Windows-1252"),
    ("latin-1 declared", rss("Réunion à Genève".encode("latin-1"), "iso-8859-1"), None, None,
     "Réunion à Genève", None),
    ("utf-8 BOM beats a latin-1 header", codecs.BOM_UTF8 + rss(TITLE.encode()),
     "text/xml; charset=iso-8859-1", None, TITLE, None),
    ("utf-16 with BOM", rss(TITLE.encode(), "utf-16").decode().encode("utf-16"), None, None,
     TITLE, None),
    ("koi8-r declared", rss("Новости".encode("koi8-r"), "koi8-r"), None, None, "Новости", None),
    ("override wins", rss("Café".encode("latin-1"), None),
     "text/xml; charset=utf-8", "latin-1", "Café", None),
    ("control characters stripped", rss(b"a\x01b\x0bc\x1bd\x7fe\xc2\x85f"), None, None,
     "abcdef", None),
]


@pytest.mark.parametrize("why,body,ctype,override,title,note", CASES, ids=[c[0] for c in CASES])
def test_feeds_come_out_right_whatever_the_labels_say(why, body, ctype, override, title, note):
    doc = parse_feed(body, url="http://news.example/rss", content_type=ctype,
                     encoding=override)
    assert doc.entries[0].title == title
    assert "Ã" not in doc.entries[0].title and "\ufffd" not in doc.entries[0].title
    if note:
        assert note in (doc.warning or ""), doc.warning
    else:
        assert doc.warning is None


def test_an_html_listing_reads_utf8_behind_a_wrong_meta_charset():
    page = ('<html><head><meta charset="iso-8859-1"></head><body><ul>'
            '<li><a href="/a">Réunion à Genève</a></li><li><a href="/b">Zürich</a></li>'
            "</ul></body></html>").encode()
    select = Selectors(item="li", title="a", link="a")
    listing = extract(page, url="http://news.example/", select=select,
                      content_type="text/html; charset=windows-1252")
    assert [e.title for e in listing.document.entries] == ["Réunion à Genève", "Zürich"]
    cp = page.decode().encode("cp1252")
    listing = extract(cp, url="http://news.example/", select=select, content_type="text/html")
    assert [e.title for e in listing.document.entries] == ["Réunion à Genève", "Zürich"]


def test_the_declaration_is_rewritten_to_what_the_bytes_now_are():
    out = to_utf8(rss("Café".encode("latin-1"), "ISO-8859-1"))
    assert out.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert "Café".encode() in out.body and out.encoding == "cp1252"


@given(st.binary(max_size=400), st.sampled_from([None, "text/xml; charset=utf-8",
                                                 "text/html; charset=latin-1",
                                                 "application/json; charset=bogus"]))
def test_any_bytes_become_valid_utf8_without_controls(body, ctype):
    out = to_utf8(body, ctype).body.decode("utf-8")  # never raises
    assert not any(ord(c) < 32 and c not in "\t\n\r" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
