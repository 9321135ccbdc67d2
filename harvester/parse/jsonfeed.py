"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org) → raw entries; feedparser reads neither.

Only the fields the pipeline uses are read, each type-checked: a JSON document is
as untrusted as an XML one, and a number where a string belongs is skipped, not
trusted. A JSON body that is not a JSON Feed (an API's error object, say) is a
ParseError, so it can never read as "the feed is now empty".
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ParseError
from ..models import ParsedDocument, RawEntry

_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")
_MAX_DEPTH_HINT = "nested too deeply"
# json.loads builds every object before anything can be capped: 3 million empty items fit
# the 10 MB body cap, and took 7 s and 600 MB. A feed of 20,000 items (the entry cap) with
# a few objects each stays far below this; braces inside strings count too, erring long.
MAX_CONTAINERS = 200_000


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct.endswith("json"):
        return True
    return body[:64].lstrip().startswith(b"{")


# JSON's \uD83D escapes can leave half of a UTF-16 pair (an emoji cut by a JavaScript
# substring): not a character, and nothing downstream (nh3, SQLite, UTF-8 output) takes it
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _s(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    return _LONE_SURROGATE.sub("\ufffd", v).strip() or None


def _author(item: dict, feed: dict) -> str | None:
    for holder in (item, feed):
        authors = holder.get("authors")
        if isinstance(authors, list):
            names = [n for a in authors if isinstance(a, dict) if (n := _s(a.get("name")))]
            if names:
                return ", ".join(names)
        a = holder.get("author")  # 1.0
        if isinstance(a, dict) and _s(a.get("name")):
            return _s(a.get("name"))
    return None


def _entry(item: dict, feed: dict) -> RawEntry:
    guid = item.get("id")
    if isinstance(guid, int | float) and not isinstance(guid, bool):
        guid = str(guid)  # 1.0 feeds in the wild use numbers; 1.1 says string
    content = _s(item.get("content_html"))
    if content is None and (text := _s(item.get("content_text"))):
        from html import escape

        content = "<p>" + escape(text).replace("\n\n", "</p><p>") + "</p>"
    tags = item.get("tags")
    return RawEntry(
        title=_s(item.get("title")),
        link=_s(item.get("url")) or _s(item.get("external_url")),
        guid=_s(guid),
        summary=_s(item.get("summary")),
        content=content,
        published=_s(item.get("date_published")),
        updated=_s(item.get("date_modified")),
        categories=tuple(t for t in (_s(x) for x in tags) if t) if isinstance(tags, list) else (),
        author=_author(item, feed),
    )


def parse_json_feed(body: bytes, *, url: str, source: str | None = None) -> ParsedDocument:
    """A JSON Feed's items; ParseError for JSON that is not one."""
    if body.count(b"{") + body.count(b"[") > MAX_CONTAINERS:
        raise ParseError(f"not read: a JSON document of more than {MAX_CONTAINERS:,} objects "
                         "and arrays", source=source, url=url)
    try:
        doc = json.loads(body)
    except RecursionError as e:
        raise ParseError(f"not a feed: JSON {_MAX_DEPTH_HINT}", source=source, url=url) from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise ParseError(f"not a feed: invalid JSON ({e})", source=source, url=url) from e
    if not isinstance(doc, dict) or not _VERSION.match(str(doc.get("version", ""))):
        raise ParseError("not a feed: a JSON document that is not a JSON Feed "
                         "(no jsonfeed.org version)", source=source, url=url)
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("not a feed: JSON Feed without an items list", source=source, url=url)
    entries = tuple(_entry(it, doc) for it in items if isinstance(it, dict))
    return ParsedDocument(entries=entries, base_url=url,
                          title=_s(doc.get("title")), language=_s(doc.get("language")),
                          parser="jsonfeed")


__all__ = ["looks_like_json", "parse_json_feed"]
