"""`follow = true`: an item's article page, reduced to its main text.

The main block is the `content` selector's element when one is configured, else the
element whose own paragraphs hold the most text (a readability-style guess), once the
site's chrome is gone — navigation, asides, the header and footer outside the article,
forms but one that wraps the page (ASP.NET's). Stored sanitised, like any content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .errors import FetchError, ParseError
from .fetch import Fetcher
from .models import Item
from .normalise import clean_content

_NOISE = ("script", "style", "noscript", "template", "iframe")


def main_html(body: bytes, url: str, selector: str | None = None, *,
              content_type: str | None = None, encoding: str | None = None) -> str:
    """The article's main block as HTML; ParseError naming why when the page gives none,
    so a redesign that outdates `select.content` is said rather than stored as silence."""
    import lxml.html

    from .parse.html import SITE_CHROME, drop_elements, html_document

    root = html_document(body, url=url, content_type=content_type, encoding=encoding)
    drop_elements(list(root.iter(*_NOISE)))
    drop_elements(root.xpath(SITE_CHROME))
    # a search box, a comment form; not the one form ASP.NET Web Forms wraps a page in
    text = len(root.text_content())
    drop_elements([f for f in root.iter("form") if 2 * len(f.text_content()) < text])
    if selector:
        from .parse.listing import _found

        found = _found(root, selector, "select.content", (None, url))
        if not found:
            raise ParseError(f"select.content {selector!r} matched nothing: the article "
                             "pages' layout may have changed", url=url)
        best = found[0]
        if not isinstance(best, lxml.html.HtmlElement):
            raise ParseError(f"select.content {selector!r} selects text or attributes, not "
                             "the element that holds the article", url=url)
    else:
        best, score = None, 0
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            own = sum(len(p.text_content().strip()) for p in el if p.tag == "p")
            if own > score:
                best, score = el, own
        if best is None:
            raise ParseError("found no paragraphs of article text; name the block that "
                             "holds it with select.content", url=url)
    return lxml.html.tostring(best, encoding="unicode")


def follow(items: Sequence[Item], fetcher: Fetcher, source: str, selector: str | None,
           origin: str | None = None, headers: Sequence[tuple[str, str]] = (),
           ) -> tuple[list[Item], list[str]]:
    """Items with their article text as content; (items, problems) — a page that fails
    leaves its item as it was, never fails the poll."""
    out, problems = [], []
    for it in items:
        if not it.url:
            out.append(it)
            continue
        try:
            fr = fetcher.fetch(it.url, source=source, origin=origin, headers=headers)
            html = main_html(fr.body, fr.url, selector, content_type=fr.content_type)
        except (FetchError, ParseError) as e:
            problems.append(f"{it.url}: {e}")
            out.append(it)
            continue
        out.append(replace(it, content=clean_content(html, fr.url)))
    return out, problems


__all__ = ["follow", "main_html"]
