"""The one way an HTML page becomes an lxml tree: reconciled to UTF-8, no network.

libxml2's HTML parser never loads a DTD or an external entity (lxml's HTMLParser has
no `resolve_entities` switch because there is nothing to switch off); `no_network`
is set all the same, and the encoding is decided by to_utf8, not by a <meta> tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ParseError
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
    data = to_utf8(body, content_type, encoding, html=True).body
    check_tags(data.count(b"<"), "page", source=source, url=url)
    parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True, remove_comments=True,
                                  remove_pis=True, huge_tree=False)
    try:
        return lxml.html.document_fromstring(data, parser=parser)
    except Exception as e:  # lxml raises ParserError, XMLSyntaxError or ValueError
        raise ParseError(f"not an HTML page: {e}", source=source, url=url) from e


def page_base(root: lxml.html.HtmlElement, url: str) -> str:
    """What the page's links resolve against: its <base href> when that is an http(s)
    URL, else the page's own URL."""
    from ..urls import canonical_url

    base_el = root.find(".//base[@href]")
    if base_el is None:
        return url
    return canonical_url(base_el.get("href", ""), url) or url


__all__ = ["html_document", "page_base"]
