"""Finding a listing's entries without selectors: the repeated blocks with a link and a date.

Used when an html source has no `item` selector, and by `harvester probe URL`, which
prints what it found as a ready [sources.select] block, and the feeds the page
announces (which need no selectors at all).
"""

from __future__ import annotations

import re
from collections import Counter

from .configfile import toml_string
from .parse.html import AnnouncedFeed, announced_feeds
from .parse.listing import Selectors

_DATE = re.compile(
    r"\b(\d{1,2}(?:st|nd|rd|th)?\.?\s+(de\s+)?[A-Za-zÀ-ÿ]{3,}\.?,?\s+(de\s+)?\d{4}"
    r"|\d{4}-\d{2}-\d{2}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4}"
    r"|[A-Z][a-z]{2,}\.? \d{1,2}(?:st|nd|rd|th)?, \d{4}"
    # a time ago, as dates.parse_date reads it back from the poll's clock
    r"|(?i:\d{1,4}\s+(?:sec|min|hour|hr|day|week|month|year)[a-z]*\s+ago"
    r"|(?:vor|il y a|hace|há)\s+\d{1,4}\s+[a-zäéíêñ]+))\b")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _text(el) -> str:
    return " ".join(el.text_content().split())


def _signature(el) -> tuple[str, str]:
    return el.tag, " ".join(sorted((el.get("class") or "").split()))


def _step(el) -> str:
    cls = el.get("class")
    if cls:
        return f"{el.tag}[@class='{cls}']"
    same = [s for s in el.getparent() if s.tag == el.tag]
    return f"{el.tag}[{same.index(el) + 1}]" if len(same) > 1 else el.tag


def _relative(item, el) -> str:
    steps = []
    while el is not item:
        steps.append(_step(el))
        el = el.getparent()
    return "xpath:./" + "/".join(reversed(steps))


def _date_element(item):
    best = None
    for el in item.iter():
        if not isinstance(el.tag, str):
            continue
        t = _text(el)
        if len(t) <= 40 and _DATE.search(t) and (best is None or len(t) < len(_text(best))):
            best = el
    return best


def _blocks(root):
    """Candidate (parent, items) groups, best first."""
    scored = []
    for parent in root.iter():
        if not isinstance(parent.tag, str) or len(parent) < 3:
            continue
        kids = [k for k in parent if isinstance(k.tag, str)]
        sig, count = Counter(_signature(k) for k in kids).most_common(1)[0]
        if count < 3:
            continue
        items = [k for k in kids if _signature(k) == sig]
        good = [k for k in items if k.xpath(".//a[@href]") and _date_element(k) is not None]
        if len(good) >= max(3, int(0.8 * len(items))):
            scored.append((len(good), -len(parent.getroottree().getpath(parent)), parent, items))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return [(p, items) for _, _, p, items in scored]


def detect(body: bytes, url: str, *, content_type: str | None = None,
           encoding: str | None = None) -> Selectors | None:
    """Selectors for the page's repeated entries, or None when there are none; ParseError
    when there is no page to look at (empty, not HTML, too large to build)."""
    from .parse.html import html_document

    root = html_document(body, url=url, content_type=content_type, encoding=encoding)
    blocks = _blocks(root)
    if not blocks:
        return None
    parent, items = blocks[0]
    tree = root.getroottree()
    tag, cls = _signature(items[0])
    item = f"xpath:{tree.getpath(parent)}/{tag}" + (
        f"[@class='{items[0].get('class')}']" if cls else "")
    # Each field's path is voted on by every entry, so one entry lacking a category (or
    # shaped a little differently) does not decide the selectors for all.
    votes: dict[str, Counter[str]] = {k: Counter() for k in
                                      ("title", "link", "date", "category", "summary")}
    for sample in items[:30]:
        for field, path in _fields(sample).items():
            votes[field][path] += 1
    chosen = {f: (c.most_common(1)[0][0] if c else None) for f, c in votes.items()}
    if not (chosen["title"] and chosen["link"]):
        return None
    return Selectors(item=item, title=chosen["title"], link=chosen["link"],
                     date=chosen["date"], category=chosen["category"],
                     summary=chosen["summary"])


# what a "next page" link says, in the languages the date reader knows
_NEXT_WORDS = frozenset({"next", "next page", "older", "older posts", "older entries", "more",
                         "›", "»", ">", "next ›", "next »", "weiter", "nächste", "nächste seite",
                         "suivant", "page suivante", "siguiente", "próxima", "seguinte"})
_PAGE_PARAMS = ("page", "p", "pg", "paged", "seite", "pagina")


def pagination(body: bytes, url: str, *, content_type: str | None = None) -> dict[str, str]:
    """How the page links to its next one, as [sources.pages] settings: a `param` when a
    link to the same path differs by ?page=2 (or p, pg, …), else a `next` selector for a
    rel="next" link or one whose text says "Next"; {} when there is none to see."""
    from urllib.parse import parse_qsl, urlsplit

    from .errors import ParseError
    from .parse.html import html_document, page_base
    from .urls import join

    try:
        root = html_document(body, url=url, content_type=content_type)
    except ParseError:
        return {}
    base, here = page_base(root, url), urlsplit(url)
    for a in root.iter("a"):
        target = join(base, (a.get("href") or "").strip())
        if not target:
            continue
        parts = urlsplit(target)
        if (parts.netloc, parts.path.rstrip("/")) != (here.netloc, here.path.rstrip("/")):
            continue
        for key, value in parse_qsl(parts.query):
            if key.lower() in _PAGE_PARAMS and value == "2":
                return {"param": key}
    if root.xpath("//a[@href][contains(concat(' ', normalize-space(@rel), ' '), ' next ')]"):
        return {"next": 'a[rel~="next"][href]'}
    for a in root.iter("a"):
        words = _text(a).lower()
        if a.get("href") and words in _NEXT_WORDS:
            return {"next": f"xpath://a[@href][normalize-space()={_xpath_str(_text(a))}]"}
    return {}


def _xpath_str(s: str) -> str:
    # XPath 1.0 has no escapes: a string is quoted with whichever quote it does not hold
    return f"'{s}'" if "'" not in s else f'"{s}"'


def pages_block(pages: dict[str, str], max_pages: int = 5) -> str:
    """The [sources.pages] table for what `pagination` found ("" for nothing)."""
    if not pages:
        return ""
    key, value = next(iter(pages.items()))
    return f"  [sources.pages]\n  {key} = {_toml_str(value)}\n  max = {max_pages}"


def _fields(sample) -> dict[str, str]:
    """Relative paths of one entry's title, link, date, category and summary."""
    links = sample.xpath(".//a[@href]")
    if not links:
        return {}
    link = max(links, key=lambda a: len(_text(a)))
    heading = next((el for el in sample.iter(*_HEADINGS)), None)
    title_el = heading if heading is not None and _text(heading) else link
    date_el = _date_element(sample)
    used = [u for u in (title_el, date_el, link) if u is not None]
    texts = [el for el in sample.iter() if isinstance(el.tag, str) and _text(el)
             and not any(el is u or el in u.iterancestors() or u in el.iterancestors()
                         for u in used)
             and not any(isinstance(c.tag, str) and _text(c) for c in el)]
    short = [el for el in texts if len(_text(el)) <= 40 and len(_text(el).split()) <= 4]
    long = [el for el in texts if len(_text(el)) > 40]
    out = {"title": _relative(sample, title_el), "link": _relative(sample, link)}
    if date_el is not None:
        out["date"] = _relative(sample, date_el)
    if short:
        out["category"] = _relative(sample, short[0])
    if long:
        out["summary"] = _relative(sample, max(long, key=lambda el: len(_text(el))))
    return out


def toml_block(found: Selectors) -> str:
    lines = ["  [sources.select]"]
    for key in ("item", "title", "link", "date", "category", "summary"):
        value = getattr(found, key)
        if value:
            lines.append(f"  {key} = {_toml_str(value)}")
    lines.append('  date_formats = ["%d %B %Y"]')
    return "\n".join(lines)


def _toml_str(s: str) -> str:
    if "'" not in s and s.isprintable():
        return f"'{s}'"  # a literal string: a selector's backslashes stay as written
    return toml_string(s)


__all__ = ["AnnouncedFeed", "announced_feeds", "detect", "pages_block", "pagination",
           "toml_block"]
