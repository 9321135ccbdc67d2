"""A watched page (kind = "page"): one page, read as one entry whose edits are the news.

The entry's content is the block `select.content` names, else the page's body without
its chrome (navigation, asides, the site's header and footer; an article's own header
stays): what changes on every visit there — a "most read" box, a footer's clock — is not
the page's news. What `select.remove` names goes too, and the text `select.ignore`
matches (from the title and description too); scripts and forms' fields never reach the
content (the sanitiser drops them). Bytes in, one raw entry out: no HTTP, no database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ParseError
from ..models import ParsedDocument, RawEntry
from .html import SITE_CHROME, drop_elements, html_document, page_base

if TYPE_CHECKING:
    import lxml.html



class BlockMissing(ParseError):
    """The watched block is not on the page: a redesign, said at once as a stale layout."""


def parse_page(body: bytes, url: str, link: str, *, content_type: str | None = None,
               encoding: str | None = None, content: str | None = None,
               remove: Sequence[str] = (), ignore: Sequence[re.Pattern[str]] = (),
               source: str | None = None) -> ParsedDocument:
    """The page at `url` (as fetched) as one entry linking to `link` (the source's URL as
    configured, so a redirect or a key in the query never changes the item's identity)."""
    import lxml.html

    from .listing import _found

    root = html_document(body, url=url, content_type=content_type, encoding=encoding,
                         source=source)
    head_title = root.findtext("head/title")
    heading = root.find(".//h1")
    title = " ".join((head_title or (heading.text_content() if heading is not None else ""))
                     .split())
    description = root.xpath("string(.//meta[@name='description']/@content)").strip()
    for pattern in ignore:  # "Tenders (3 open)": a title that counts is no edit either
        title = " ".join(pattern.sub("", title).split())
        description = " ".join(pattern.sub("", description).split())
    drop_elements(root.xpath("//script | //style | //template | //noscript"))  # never shown text
    for expr in remove:
        drop_elements(_found(root, expr, "select.remove", (source, url)))
    if content:
        found = _found(root, content, "select.content", (source, url))
        if not found or not isinstance(found[0], lxml.html.HtmlElement):
            raise BlockMissing(f"select.content {content!r} matched nothing: the page's "
                               "layout may have changed", source=source, url=url)
        block = found[0]
    else:
        drop_elements(root.xpath(SITE_CHROME))  # when no block is named
        block = root.find("body")
        if block is None:
            block = root
    if not block.text_content().strip():
        raise ParseError("the page shows no text (it may be drawn by JavaScript, which the "
                         "harvester does not run)", source=source, url=url)
    if ignore:
        _spaced(block)
        for pattern in ignore:
            _cut(block, pattern)
    entry = RawEntry(title=title or None, link=link, summary=description or None,
                     content=lxml.html.tostring(block, encoding="unicode"))
    return ParsedDocument((entry,), page_base(root, url), title=title or None, parser="page")


_SPACE = re.compile(r"\s+")


def _spaced(block: lxml.html.HtmlElement) -> None:
    """Each run of whitespace as one space, as a browser shows it (not in <pre> or a
    <textarea>), so a pattern's one space matches where the page's source breaks a line."""
    kept = {d for pre in block.iter("pre", "textarea") for d in pre.iter()}
    for el in block.iter():
        if not isinstance(el.tag, str):
            continue
        if el.text and el not in kept:
            el.text = _SPACE.sub(" ", el.text)
        # an element's tail is its parent's text: after a </pre>, the page's again
        if el.tail and el is not block and el.getparent() not in kept:
            el.tail = _SPACE.sub(" ", el.tail)


def _cut(el: lxml.html.HtmlElement, pattern: re.Pattern[str]) -> None:
    """Cut what `pattern` matches from `el`'s text, leaving the markup around it: a match
    inside one run of text goes alone; one across markup ("Last updated <time>…</time>")
    turns the innermost element holding all of it into its plain text, less the match."""
    if not pattern.search(el.text_content()):
        return
    children = [c for c in el if isinstance(c.tag, str)]
    for child in children:
        _cut(child, pattern)
    if el.text:
        el.text = pattern.sub("", el.text)
    for child in children:
        if child.tail:
            child.tail = pattern.sub("", child.tail)
    text = el.text_content()
    if pattern.search(text):
        for child in list(el):
            el.remove(child)
        el.text = pattern.sub("", text)


__all__ = ["BlockMissing", "parse_page"]
