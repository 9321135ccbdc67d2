"""HTML listing pages → raw entries, by configured selectors (CSS, or "xpath:…").

Bytes in, raw entries out: no HTTP, no database. Text is each element's text content,
whitespace-normalised; links resolve against the page URL and its <base href>; the date
text is kept as found (normalising reads it with the source's date formats).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..errors import ParseError
from ..models import ParsedDocument, RawEntry
from ..text import collapse
from ..urls import join
from .feed import MAX_ENTRIES
from .html import html_document, page_base


@dataclass(frozen=True, slots=True)
class Selectors:
    item: str
    title: str
    link: str
    date: str | None = None
    category: str | None = None
    summary: str | None = None
    next: str | None = None  # the "next page" link, when pagination follows links


@dataclass(frozen=True, slots=True)
class Listing:
    """One page's entries, the link to the next page, and what was dropped."""

    document: ParsedDocument
    next_url: str | None
    dropped: int  # entries without a title or a link
    unread: int = 0  # entries past MAX_ENTRIES, not read


_compiled = threading.local()
_COMPILED_MAX = 256  # auto-detection tries many generated selectors; a config has a handful


def _compile(expr: str):
    """The selector, compiled once per thread: building a CSSSelector (parse, translate to
    XPath, compile) cost ~70 µs, five times per entry. Per thread because lxml's XPath
    evaluators keep per-call state; sharing them across threads is not promised."""
    cache = getattr(_compiled, "cache", None)
    if cache is None or len(cache) > _COMPILED_MAX:
        cache = _compiled.cache = {}
    fn = cache.get(expr)
    if fn is None:
        fn = cache[expr] = _build(expr)
    return fn


def _build(expr: str):
    from lxml.etree import XPath

    if expr.startswith("xpath:"):
        return XPath(expr[len("xpath:"):])
    from lxml.cssselect import CSSSelector

    return CSSSelector(expr)


def _text(el) -> str:
    return collapse(el.text_content()) if hasattr(el, "text_content") else collapse(str(el))


def _found(node, expr: str, key: str, where: tuple[str | None, str]) -> list:
    """What `expr` selects under `node`: elements, attributes or text. An XPath may also
    give a number or a truth value (count(), boolean()), which holds no entry to read."""
    found = _compile(expr)(node)
    if isinstance(found, list):
        return found
    if isinstance(found, str):  # string(…)
        return [found] if found.strip() else []
    what = "a truth value" if isinstance(found, bool) else "a number"
    raise ParseError(f"{key} {expr!r} gives {what} ({found!r}), not elements or text",
                     source=where[0], url=where[1])


def _first(node, expr: str | None, key: str, where: tuple[str | None, str]):
    if not expr:
        return None
    found = _found(node, expr, key, where)
    return found[0] if found else None


def _href(el) -> str | None:
    """The href of the element, or of its first a[href]."""
    if isinstance(el, str):
        return el.strip() or None
    href = el.get("href")
    if href is None:
        inner = el.xpath(".//a[@href]")
        href = inner[0].get("href") if inner else None
    return href.strip() if href else None


def extract(body: bytes, *, url: str, select: Selectors, source: str | None = None,
            content_type: str | None = None, encoding: str | None = None) -> Listing:
    """The entries of one listing page."""
    root = html_document(body, url=url, content_type=content_type, encoding=encoding,
                         source=source)
    base = page_base(root, url)
    entries: list[RawEntry] = []
    dropped = unread = 0
    from lxml import etree

    where = (source, url)
    nodes = _found(root, select.item, "select.item", where)
    if any(not isinstance(n, etree._Element) for n in nodes):
        raise ParseError(f"select.item {select.item!r} selects text or attributes, not "
                         "elements: it must select one element per entry", source=source,
                         url=url)
    for i, node in enumerate(nodes):
        if len(entries) == MAX_ENTRIES:  # as many as a feed gives: no page is a million rows
            unread = len(nodes) - i
            break
        title_el = _first(node, select.title, "select.title", where)
        link_el = _first(node, select.link, "select.link", where)
        title = _text(title_el) if title_el is not None else ""
        href = _href(link_el) if link_el is not None else None
        link = join(base, href) if href else None  # None too for an href that is no URL
        if not title or not link:
            dropped += 1
            continue
        summary_el = _first(node, select.summary, "select.summary", where)
        date_el = _first(node, select.date, "select.date", where)
        category_el = _first(node, select.category, "select.category", where)
        category = _text(category_el) if category_el is not None else ""
        entries.append(RawEntry(
            title=title, link=link,
            summary=_text(summary_el) if summary_el is not None else None,
            published=_text(date_el) if date_el is not None else None,
            categories=(category,) if category else ()))
    next_url = None
    if select.next:
        nxt = _first(root, select.next, "pages.next", where)
        href = _href(nxt) if nxt is not None else None
        next_url = join(base, href) if href else None
    lang = root.get("lang")
    return Listing(ParsedDocument(tuple(entries), base_url=base, title=None,
                                  language=lang.strip().lower() if lang else None,
                                  parser="listing"), next_url, dropped, unread)


__all__ = ["Listing", "Selectors", "extract"]
