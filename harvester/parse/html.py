"""The one way an HTML page becomes an lxml tree: reconciled to UTF-8, no network.

libxml2's HTML parser never loads a DTD or an external entity (lxml's HTMLParser has
no `resolve_entities` switch because there is nothing to switch off); `no_network`
is set all the same, and the encoding is decided by to_utf8, not by a <meta> tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import ParseError
from ..text import without_unfit_refs
from .caps import check_tags
from .encoding import to_utf8

if TYPE_CHECKING:
    import lxml.html


def html_document(body: bytes, *, url: str, content_type: str | None = None,
                  encoding: str | None = None, source: str | None = None) -> lxml.html.HtmlElement:
    """The page's root element; ParseError when there is no HTML to read."""
    import lxml.html

    if not body or body.isspace():
        raise ParseError("empty page", source=source, url=url)
    sent = not_html(body, content_type)
    if sent:  # libxml2 would read it as text, and a PDF's bytes would become "the page"
        raise ParseError(f"not an HTML page: the server sent {sent}", source=source, url=url)
    data = without_unfit_refs(to_utf8(body, content_type, encoding, html=True).body)
    check_tags(data.count(b"<"), "page", source=source, url=url)
    parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True, remove_comments=True,
                                  remove_pis=True, huge_tree=False)
    try:
        return lxml.html.document_fromstring(data, parser=parser)
    except Exception as e:  # lxml raises ParserError, XMLSyntaxError or ValueError
        raise ParseError(f"not an HTML page: {e}", source=source, url=url) from e


# types that are never an HTML page; application/octet-stream is not among them (servers
# label HTML so), so it is told by its bytes
_NOT_HTML = re.compile(r"(application/(pdf|json|zip|msword|vnd\.[^;]*)|image/|audio/"
                       r"|video/|font/)", re.IGNORECASE)


def not_html(body: bytes, content_type: str | None) -> str | None:
    """What a body is when it is plainly no HTML page — a PDF, an image, JSON — by its type
    or its first bytes; None when it may be one."""
    if body.startswith(b"%PDF-"):
        return "a PDF"
    kind = (content_type or "").split(";")[0].strip().lower()
    if _NOT_HTML.match(kind):
        return kind
    if b"\x00" in body[:1024] and not body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary data"  # NULs in text are UTF-16's only, which starts with its BOM
    return None


# A site's chrome around what a page says: its navigation, asides, and the header and
# footer outside <main> or an <article> (inside, they are the article's own: its heading
# and date, its tags)
SITE_CHROME = ("//nav | //aside | //header[not(ancestor::main or ancestor::article)]"
               " | //footer[not(ancestor::main or ancestor::article)]")


def drop_elements(found: Iterable[object]) -> None:
    """Take the elements among `found` out of their tree, with what is inside them (text
    and attributes a selector found are left alone)."""
    import lxml.html

    for el in found:
        if isinstance(el, lxml.html.HtmlElement) and el.getparent() is not None:
            el.drop_tree()


def page_base(root: lxml.html.HtmlElement, url: str) -> str:
    """What the page's links resolve against: its <base href> when that is an http(s)
    URL, else the page's own URL."""
    from ..urls import canonical_url

    base_el = root.find(".//base[@href]")
    if base_el is None:
        return url
    return canonical_url(base_el.get("href", ""), url) or url


# the link types a page announces its feeds with, as feed readers discover them
_FEED_TYPES = {"application/rss+xml": "RSS", "application/rdf+xml": "RSS 1.0",
               "application/atom+xml": "Atom", "application/feed+json": "JSON Feed"}


@dataclass(frozen=True, slots=True)
class AnnouncedFeed:
    url: str
    kind: str  # RSS, RSS 1.0, Atom, JSON Feed
    title: str = ""


def one_line(text: str, limit: int) -> str:
    """Page text fit for a terminal: no control characters, one line, at most `limit`,
    cut between words where a word does not take most of the line."""
    from ..text import collapse, strip_controls

    line = collapse(strip_controls(text))
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if line[limit - 1] != " ":  # the cut falls inside a word: back to the space before it
        space = cut.rfind(" ")
        if space > limit // 3:
            cut = cut[:space]
    return cut.rstrip() + "…"


# A blog announces its comments' feed beside its posts' ("ICMPD » Comments Feed",
# /comments/feed/), often first: it is never the news
_COMMENTS = re.compile(r"\bcomments?\b|kommentare|commentaires|comentarios|comentários"
                       r"|commenti|reacties", re.IGNORECASE)


def _announced(root: lxml.html.HtmlElement, url: str) -> list[AnnouncedFeed]:
    """The page's announced feeds in its order, those of comments last."""
    from ..urls import canonical_url

    base = page_base(root, url)
    found: dict[str, AnnouncedFeed] = {}
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = _FEED_TYPES.get((link.get("type") or "").partition(";")[0].strip().lower())
        href = (link.get("href") or "").strip()
        feed = canonical_url(href, base) if href else None  # http(s) only, or None
        if "alternate" in rel and kind and feed and feed not in found:
            found[feed] = AnnouncedFeed(feed, kind, one_line(link.get("title") or "", 200))
    return sorted(found.values(), key=lambda f: bool(
        _COMMENTS.search(f.title) or _COMMENTS.search(urlsplit(f.url).path)))


def announced_feeds(body: bytes, url: str, *, content_type: str | None = None,
                    encoding: str | None = None) -> list[AnnouncedFeed]:
    """The feeds a page names with <link rel="alternate" type="application/rss+xml"
    href="…">, in its order (feeds of comments last), resolved against the page; only
    http(s) ones."""
    try:
        root = html_document(body, url=url, content_type=content_type, encoding=encoding)
    except ParseError:
        return []
    return _announced(root, url)


_PASSWORD = re.compile(rb"""<input\b[^>]*\btype\s*=\s*["']?password\b""", re.IGNORECASE)


def login_form(body: bytes) -> bool:
    """Whether the page asks for a password (in its first 256 KB): a sign-in page served
    where a feed or a listing was, its session or key gone."""
    return _PASSWORD.search(body, 0, 256 * 1024) is not None


def page_signs(body: bytes, url: str, *,
               content_type: str | None = None) -> tuple[str, list[AnnouncedFeed]]:
    """What tells a person which page this is: its <title> (one line, 80 characters at
    most) and the feeds it announces."""
    try:
        root = html_document(body, url=url, content_type=content_type)
    except ParseError:
        return "", []
    title = root.find(".//title")
    text = title.text_content() if title is not None else ""
    return one_line(text, 80), _announced(root, url)


__all__ = ["SITE_CHROME", "AnnouncedFeed", "announced_feeds", "drop_elements", "html_document",
           "not_html", "one_line", "page_base", "page_signs"]
