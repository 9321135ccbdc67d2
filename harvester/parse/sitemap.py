"""Sitemaps (sitemaps.org 0.9, with Google News' extension) → raw entries.

A site without a feed often has a sitemap, and every CMS writes one: each <url> is a
page, its <loc> the link, <news:publication_date> (else <lastmod>) its date, and
<news:title> its title — or, in a plain sitemap, a title read from the link's last path
segment ("germany-joins-icmpd" → "Germany joins icmpd"). Entries are listed newest first,
as a feed lists them, whatever order the sitemap keeps. A sitemap index lists sitemaps,
not pages: it is refused, naming them. Parsed by lxml with no entity, DTD or network.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from ..errors import ParseError
from ..models import ParsedDocument, RawEntry
from .caps import MAX_MARKUP_TAGS, check_tags

_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_SLUG_END = re.compile(r"\.(?:s?html?|php|aspx?|jsp)$", re.IGNORECASE)


def parse_sitemap(body: bytes, *, url: str, source: str | None = None) -> ParsedDocument:
    """A sitemap's pages as entries, newest first; ParseError for an index or a document
    that is not well-formed."""
    from lxml import etree

    check_tags(body.count(b"<"), "document", source=source, url=url)
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as e:
        raise ParseError(f"not a well-formed sitemap: {e}", source=source, url=url) from e
    if etree.QName(root).localname == "sitemapindex":
        locs = [loc for el in root if (loc := _child(el, "loc"))]
        shown = ", ".join(locs[:3]) + (", …" if len(locs) > 3 else "")
        raise ParseError(f"a sitemap index: it lists {len(locs)} sitemaps, not pages; give "
                         f"one of them as the source's url ({shown})", source=source, url=url)
    entries = []
    for el in root:
        if not isinstance(el.tag, str) or etree.QName(el).localname != "url":
            continue
        loc = _child(el, "loc")
        if not loc:
            continue
        news = el.find(f"{_NEWS}news")
        title = news.findtext(f"{_NEWS}title") if news is not None else None
        date = (news.findtext(f"{_NEWS}publication_date") if news is not None else None)
        entries.append(RawEntry(title=(title or "").strip() or _slug_title(loc), link=loc,
                                published=(date or "").strip() or _child(el, "lastmod")))
    # newest first, as feeds list them (ISO 8601 dates sort as text; undated ones last)
    entries.sort(key=lambda e: e.published or "", reverse=True)
    return ParsedDocument(tuple(entries), url, parser="sitemap")


def sitemap_index(body: bytes) -> list[str] | None:
    """The sitemaps a sitemap index lists, in its order; None for anything else (a
    sitemap of pages, a feed, a page, what is not well-formed). For `init`, which looks
    into an index for the sitemap that lists a site's news."""
    from lxml import etree

    if (b"sitemapindex" not in body[:4096] or not body[:512].lstrip().startswith(b"<")
            or body.count(b"<") > MAX_MARKUP_TAGS):
        return None
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if etree.QName(root).localname != "sitemapindex":
        return None
    return [loc for el in root if isinstance(el.tag, str) and (loc := _child(el, "loc"))]


def _parser():
    """A parser that expands no entity and loads no DTD or anything over the network."""
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def _child(el, name: str) -> str | None:
    """The text of the child element `name`, in the sitemap namespace or none."""
    from lxml import etree

    for child in el:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip() or None
    return None


def _slug_title(link: str) -> str | None:
    """A plain sitemap's page titled by its link's last path segment, as words."""
    segment = unquote(urlsplit(link).path.rstrip("/").rpartition("/")[2])
    words = " ".join(re.split(r"[-_+\s]+", _SLUG_END.sub("", segment))).strip()
    if not words or words.isdigit():
        return None  # "/news/12345": no words to read; the link titles it
    return words[0].upper() + words[1:]


__all__ = ["parse_sitemap", "sitemap_index"]
