"""Feed bodies (RSS 0.9x/1.0/2.0, Atom, anything feedparser reads; JSON Feed; sitemaps)
→ raw entries."""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import replace
from typing import Any

from ..errors import ParseError
from ..models import ParsedDocument, RawEntry
from .caps import cdata_tags, check_tags
from .encoding import to_utf8
from .fast import own_summary, parse_fast
from .jsonfeed import looks_like_json, parse_json_feed
from .sitemap import parse_sitemap

_CLOSING = re.compile(rb"</(?:\w+:)?(?:rss|feed|RDF)\s*>\s*$", re.IGNORECASE)
# What may stand around a document's root: whitespace, comments, processing instructions
# (the XML declaration among them) and a doctype
_PROLOG = re.compile(rb"(?:\s|<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*",
                     re.DOTALL | re.IGNORECASE)
# An HTML page where a feed should be (a login or bot-check page, a soft 404, the site's
# front page): what opens it, past its prolog
_HTML_START = re.compile(_PROLOG.pattern + rb"<(?:html|head|body)[\s>]",
                         re.IGNORECASE | re.DOTALL)
# A sitemap (see sitemap.py): what opens it, past its prolog
_SITEMAP_START = re.compile(_PROLOG.pattern + rb"<(?:[\w.-]+:)?(?:urlset|sitemapindex)[\s>]",
                            re.IGNORECASE | re.DOTALL)
# A cap on entries per fetch: generous (a 10,000-item archive feed is read whole), but a
# document of a million empty <item/>s must not become a million rows.
MAX_ENTRIES = 20_000
# Tags a document lxml refused may hold (caps.MAX_MARKUP_TAGS holds for every document):
# feedparser's lenient parser reads them at ~17 µs and up to ~460 bytes a tag (2.5
# million: 43 s; 3 million nested: 52 s and 1.4 GB). A malformed archive of 20,000
# entries with a dozen tags each still reads.
MAX_LENIENT_TAGS = 250_000
# An entry's start and end tags, in any dialect and namespace prefix (feedparser's loose
# parser reads <ITEM> too)
_ENTRY_START = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]", re.IGNORECASE)
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>"
                        rb"|<(?:[\w.-]+:)?(?:item|entry)(?:\s[^<>]*)?/>", re.IGNORECASE)


_DOCTYPE = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)
_SUBSET_END = re.compile(rb"\]\s*>")


def without_dtd(body: bytes) -> bytes:
    """The document without its DOCTYPE. A feed has no use for a DTD, and an internal
    subset is where billion-laughs entities live: expat would expand them to its
    amplification limit (tens of MB, a second) before refusing. Without the
    declarations, each reference is just an undefined entity."""
    m = _DOCTYPE.search(body, 0, 4096)
    if m is None:
        return body
    gt, bracket = body.find(b">", m.end()), body.find(b"[", m.end())
    if gt < 0:
        return body
    if 0 <= bracket < gt:  # an internal subset: up to its closing "]>"
        end = _SUBSET_END.search(body, bracket)
        if end is None:
            return body[:m.start()]  # never closed: nothing after it is a document
        return body[:m.start()] + body[end.end():]
    return body[:m.start()] + body[gt + 1:]


def first_entries(body: bytes) -> tuple[bytes, int | None]:
    """A document of more than MAX_ENTRIES entries as its first MAX_ENTRIES and its end
    (the closing tags after the last entry), and how many it had; any other as it is.
    Both parsers build every entry before any cap could apply: 1.4 million empty <item/>s
    fit the 10 MB body cap and took 2.9 s and 500 MB through lxml; 300,000 in a malformed
    document 5.6 s through feedparser (cut first: 0.4 s and ~50 MB each)."""
    starts = _ENTRY_START.finditer(body)
    cut = next(itertools.islice(starts, MAX_ENTRIES, None), None)
    if cut is None:
        return body, None
    total = MAX_ENTRIES + 1 + sum(1 for _ in starts)
    last_end = deque(_ENTRY_END.finditer(body, cut.start()), maxlen=1)
    if last_end:
        rest = body[last_end[0].end():]
    else:  # the entries after the cut are never closed: keep the root's end, if any
        closing = _CLOSING.search(body, max(len(body) - 4096, cut.start()))
        rest = body[closing.start():] if closing else b""
    return body[:cut.start()] + rest, total


def _utf8_type(content_type: str | None) -> str:
    media = (content_type or "application/xml").split(";", 1)[0].strip() or "application/xml"
    return f"{media}; charset=utf-8"


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _entry(e: Any) -> RawEntry:
    content = None
    for c in e.get("content") or ():
        if c.get("value"):
            content = c["value"]
            break
    summary = own_summary(_str(e.get("summary")), content)
    return RawEntry(
        title=_str(e.get("title")),
        link=_str(e.get("link")),
        guid=_str(e.get("id")),
        summary=summary,
        content=content,
        # dict.get: feedparser's own get() aliases a missing "updated" to "published", noisily
        published=_str(dict.get(e, "published")),
        updated=_str(dict.get(e, "updated")),
        categories=tuple(t["term"] for t in e.get("tags") or () if _str(t.get("term"))),
        author=_str(e.get("author")),
    )


def parse_feed(body: bytes, *, url: str, content_type: str | None = None,
               encoding: str | None = None, source: str | None = None) -> ParsedDocument:
    """Parse a feed body: the lxml fast path when it is sure, else feedparser. A broken
    feed that still yields entries is kept with a warning, one that yields none is a
    ParseError naming why."""
    if not body or body.isspace():  # not strip(): that copies the whole body
        raise ParseError("empty body: the server sent no feed", source=source, url=url)
    decoded = to_utf8(body, content_type, encoding)
    body, utf8_type = decoded.body, _utf8_type(content_type)
    total, note = None, decoded.note
    if looks_like_json(body, content_type):
        doc = parse_json_feed(body, url=url, source=source)
    elif _SITEMAP_START.match(body, 0, 4096):
        doc = parse_sitemap(without_dtd(body), url=url, source=source)
    else:
        body, trimmed = without_junk(body)
        note = "; ".join(filter(None, (note, trimmed))) or None
        doc, total = _parse_xml(without_dtd(body), url=url, content_type=utf8_type,
                                source=source)
    return _capped(doc, note, total)


# where a feed document starts and ends (a feed.php's warnings, a host's injected script
# around it are no prolog)
_DOC_START = re.compile(rb"<\?xml\s|<(?:[\w.-]+:)?(?:rss|feed|RDF)\b")
_DOC_END = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF)\s*>")


def without_junk(body: bytes) -> tuple[bytes, str | None]:
    """The document without what a server wrote before or after it — whitespace before
    the XML declaration (said nowhere: it is harmless), a PHP warning, an injected script
    (said, as the bytes ignored) — so it parses whole, on the fast path."""
    notes = []
    start = _DOC_START.search(body, 0, 4096)
    if start is not None and start.start() > 0:
        head = body[: start.start()]
        # nothing may stand before an XML declaration; a prolog before the root may
        if head.isspace() or start[0].startswith(b"<?") or not _PROLOG.fullmatch(head):
            body = body[start.start():]
            if not head.isspace():
                notes.append(f"{len(head):,} bytes before the feed ignored")
    ends = deque(_DOC_END.finditer(body, max(0, len(body) - 4096)), maxlen=1)
    end = ends[0] if ends else None
    if end is not None and not _PROLOG.fullmatch(body, end.end()):
        notes.append(f"{len(body) - end.end():,} bytes after the feed ignored")
        body = body[: end.end()]
    return body, "; ".join(notes) or None


def _parse_xml(body: bytes, *, url: str, content_type: str,
               source: str | None) -> tuple[ParsedDocument, int | None]:
    """An XML document's entries (cut to the first MAX_ENTRIES: how many there were), read
    by the fast path or feedparser, within the tag caps."""
    tags, total = body.count(b"<"), None
    if tags > MAX_ENTRIES:  # fewer tags cannot hold more entries: no closer look
        body, total = first_entries(body)
        if total is not None:
            tags = body.count(b"<")
    if tags > MAX_LENIENT_TAGS:  # near a cap: count only what parsers make nodes of
        tags -= cdata_tags(body)
    check_tags(tags, "document", source=source, url=url)
    doc = parse_fast(body, url=url, content_type=content_type)
    if doc is None:
        if tags > MAX_LENIENT_TAGS:
            raise ParseError(f"not read: a malformed document of {tags:,} tags, more than the "
                             f"{MAX_LENIENT_TAGS:,} a malformed feed is read with", source=source,
                             url=url)
        doc = parse_with_feedparser(body, url=url, content_type=content_type, source=source)
    return doc, total


def _capped(doc: ParsedDocument, note: str | None, total: int | None = None) -> ParsedDocument:
    """At most MAX_ENTRIES entries, and a warning that says how many there were (`total`:
    counted before the document was cut to its first entries)."""
    warnings = [w for w in (doc.warning, note) if w]
    entries = doc.entries
    total = max(total or 0, len(entries))
    if total > MAX_ENTRIES:
        which = "newest" if doc.parser == "sitemap" else "first"  # a sitemap: sorted so
        warnings.append(f"{total} entries; only the {which} {MAX_ENTRIES} were read")
        entries = entries[:MAX_ENTRIES]
    if entries is doc.entries and len(warnings) == (1 if doc.warning else 0):
        return doc
    return replace(doc, entries=entries, warning="; ".join(warnings) or None)


# A character reference to a UTF-16 surrogate (&#xD800;) names no character: lxml refuses
# the document (so it comes here), and feedparser would hand on a string nothing can
# encode. Browsers read it as U+FFFD; so does this.
_SURROGATE_REF = re.compile(rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*5[5-7]\d{3});")


def _replacement_ref(m: re.Match[bytes]) -> bytes:
    ref = m.group()[2:-1]
    code = int(ref[1:], 16) if ref[:1] in (b"x", b"X") else int(ref)
    return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF else m.group()


def without_surrogate_refs(body: bytes) -> bytes:
    """The document with each reference to a UTF-16 surrogate made U+FFFD's."""
    return _SURROGATE_REF.sub(_replacement_ref, body)


def _html_page(body: bytes, *, url: str, content_type: str | None,
               source: str | None) -> ParseError:
    """The error for an HTML page at a feed's URL: which page it is, and the way on — the
    feed it names, or the html kind that reads a listing page."""
    from .html import login_form, page_signs

    title, feeds = page_signs(body, url, content_type=content_type)
    named = f' ("{title}")' if title else ""
    page = f"an HTML page{named}"
    feeds = [f for f in feeds if f.url != url]
    if not feeds and login_form(body):  # a sign-in page came instead of the feed
        return ParseError(f"not a feed: {page} with a login form: the feed wants credentials;"
                          ' a source sends them with `headers = { Authorization = "Bearer '
                          '${TOKEN}" }` (or a Cookie), or a key in its url as ${NAME}',
                          source=source, url=url)
    if feeds:
        more = (f" (and {len(feeds) - 1} more: `harvester probe {url}` lists them)"
                if len(feeds) > 1 else "")
        return ParseError(f"not a feed: {page}, which names its feed at {feeds[0].url}{more}:"
                          " write that as the source's url", source=source, url=url)
    if len(list(itertools.islice(_LINK.finditer(body, 0, 1 << 20), 3))) < 3:
        # no list to read: a bot check, a maintenance or error page stood in for the feed
        return ParseError(f"not a feed: {page} with nothing to list on it (a bot check, or a "
                          "maintenance or error page, came instead of the feed; `harvester "
                          f"probe {url}` shows it)", source=source, url=url)
    return ParseError(f'not a feed: {page}; a listing page is read with kind = "html"'
                      f" (`harvester probe {url}` finds its entries)", source=source, url=url)


_LINK = re.compile(rb"<a\s[^>]*href", re.IGNORECASE)


_ENTITY = re.compile(rb"&[A-Za-z][\w.-]{0,31};")


def _complaint(e: BaseException | None, body: bytes) -> str:
    """What feedparser found wrong, where a person can look it up: "line 4, column 21:
    undefined entity &nbsp;", not "<unknown>:4:20: undefined entity"."""
    if e is None:
        return "malformed feed"
    line, column = getattr(e, "getLineNumber", None), getattr(e, "getColumnNumber", None)
    message = getattr(e, "getMessage", None)
    if not (callable(line) and callable(column) and callable(message)):
        return str(e)
    line, column, said = line(), column(), str(message())
    if not isinstance(line, int) or not isinstance(column, int) or line < 1:
        return said
    if said == "undefined entity":  # which one: what the publisher must fix
        text = next(itertools.islice(body.splitlines(), line - 1, None), b"")
        name = _ENTITY.match(text, column)
        if name:
            said += f" {name.group().decode('ascii')}"
    return f"line {line}, column {column + 1}: {said}"


def parse_with_feedparser(body: bytes, *, url: str, content_type: str | None = None,
                          source: str | None = None) -> ParsedDocument:
    """The universal path: whatever feedparser reads, however broken. The body is UTF-8
    by now (to_utf8), and content_type says so."""
    import feedparser  # ~25 ms to import; most polls never need it

    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    body = without_surrogate_refs(body)
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except Exception as e:
        raise ParseError(f"feed parser failed: {e}", source=source, url=url) from e
    entries = tuple(_entry(e) for e in parsed.entries)
    if not entries and _HTML_START.match(body[:4096]):
        raise _html_page(body, url=url, content_type=content_type, source=source)
    warning = None
    if parsed.get("bozo"):
        reason = _complaint(parsed.get("bozo_exception"), body)
        if entries and not _CLOSING.search(body[-4096:]):
            # a cut-off document is not the feed: fail the poll rather than store and
            # notify whatever half of it the parser recovered
            raise ParseError(f"truncated feed: the document ends early ({reason})",
                             source=source, url=url)
        if not entries:
            raise ParseError(f"not a readable feed ({reason})", source=source, url=url)
        warning = f"malformed feed, entries kept: {reason}"
    elif not entries and not parsed.get("version"):
        raise ParseError("not a feed: no RSS, Atom or RDF document found", source=source, url=url)
    feed = parsed.get("feed", {})
    return ParsedDocument(
        entries=entries,
        base_url=url,
        title=_str(feed.get("title")),
        language=_str(feed.get("language")),
        warning=warning,
    )
