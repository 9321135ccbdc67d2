"""Raw entries → `Item`s: pure functions of the entry, its context and `now`.

Identity, canonical URL, plain-text title/category/summary, sanitised content,
UTC dates and a versioned content hash all come from here, so every source kind
(feed, listing page) gives items that diff and classify the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .dates import iso_utc, parse_date
from .models import HASH_VERSION, DateFlag, Item, RawEntry
from .text import collapse, composed, html_to_text, markup_head, sanitise_html, strip_controls
from .urls import canonical_url

FUTURE_TOLERANCE = timedelta(days=1)
MAX_TITLE = 500
MAX_SUMMARY = 5_000
MAX_CONTENT = 200_000
# A link longer than this is no link a server answers (most refuse past 8 KB with a 414):
# not kept, so a hostile feed's megabyte "URLs" never become keys, index entries and mail
MAX_URL = 8_192
MAX_GUID = 2_048  # guids are ids: a tag URI or a permalink, never kilobytes
MAX_TAGS = 100
MAX_AUTHOR = 200
MAX_TAG = 200  # characters of one tag (a category)
# Markup read for a text field, per character of text it may keep: a tag-dense field
# still fills its limit, while a 9 MB title is not built into a 390 MB tree for 500
# characters (content has its own cap: clean_content).
_MARKUP_PER_CHAR = 20
MAX_LANGUAGE = 35  # the longest BCP 47 tags in use ("zh-Hant-CN-x-private1") are shorter

# "Press Release: Germany joins …" — a short label before the first colon.
_TITLE_PREFIX = re.compile(r"^\s*([^:.!?\"“”/]{2,40}?)\s*:(?!//)\s*(\S.*)$", re.DOTALL)  # never "https://…"


@dataclass(frozen=True, slots=True)
class Context:
    """What normalising one source's entries needs besides the entries."""

    source: str
    base_url: str
    now: datetime
    timezone: str = "UTC"
    category_from_title: bool = False
    language: str | None = None
    date_formats: tuple[str, ...] = ()
    # links several entries of the document share under different titles (a feed whose
    # every entry links to the site's home page), and guids several share under different
    # links or titles (a CMS that gives every entry the site's address): no identity
    shared_urls: frozenset[str] = frozenset()
    shared_guids: frozenset[str] = frozenset()  # as the entries give them


def text_of(markup: str | None, limit: int) -> str:
    """Plain text of a field's markup, read from at most _MARKUP_PER_CHAR × `limit`
    characters of it; the caller clips the text to `limit`."""
    return composed(html_to_text(markup_head(markup, _MARKUP_PER_CHAR * limit)
                                 if markup else markup))


def split_category(title: str) -> tuple[str | None, str]:
    """'Project News: Kick-off …' → ('Project News', 'Kick-off …'); no label → (None, title)."""
    m = _TITLE_PREFIX.match(title)
    if not m or len(m.group(1).split()) > 5:
        return None, title
    return collapse(m.group(1)), m.group(2).strip()


def _clip(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def content_hash(title: str, url: str | None, category: str | None, summary: str, content: str,
                 published: str | None) -> str:
    """Stable hash of the normalised fields; the version prefix lets a future change of
    what is hashed be told apart from a change of the item."""
    joined = "\x1f".join((title, url or "", category or "", summary, content, published or ""))
    h = hashlib.sha256(joined.encode("utf-8", "surrogatepass"))
    return f"{HASH_VERSION}:{h.hexdigest()[:32]}"


def identity(guid: str | None, url: str | None, title: str, date_text: str | None) -> str:
    """guid where present, else canonical URL, else a hash of title + date (the guid and
    URL an entry has as its own: see `shared_ids`)."""
    if guid:
        return "guid:" + guid
    if url:
        return "url:" + url
    digest = hashlib.sha256(f"{title}\x1f{date_text or ''}".encode("utf-8", "surrogatepass"))
    return "hash:" + digest.hexdigest()[:32]


def raw_fingerprint(entry: RawEntry, ctx: Context) -> str:
    """Hash of an entry as found plus what shapes its reading: the same fingerprint means
    `normalise` would give the same item (bar a first-seen date), so a re-poll can skip it."""
    parts = (HASH_VERSION, ctx.base_url, ctx.timezone, str(ctx.category_from_title),
             ctx.language or "", entry.title or "", entry.link or "", entry.guid or "",
             entry.summary or "", entry.content or "", entry.published or "",
             entry.updated or "", "\x1e".join(entry.categories), entry.author or "",
             entry.language or "")
    return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def clean_content(markup: str | None, base_url: str | None) -> str:
    """An item's content: sanitised HTML, at most MAX_CONTENT characters. Only so much of
    the markup is read as can make that much (sanitising costs time in proportion: 10 MB
    took a second), so a megabyte article page or feed entry costs what 200 KB would."""
    if not markup:
        return ""
    return composed(sanitise_html(markup[: 4 * MAX_CONTENT], base_url))[:MAX_CONTENT]


def item_url(entry: RawEntry, ctx: Context) -> str | None:
    """The entry's link, canonical, when it is one worth keeping."""
    url = canonical_url(entry.link, ctx.base_url)
    return url if url is None or len(url) <= MAX_URL else None


def item_guid(entry: RawEntry) -> str | None:
    """The entry's guid, as text; one longer than MAX_GUID by its hash (still its own, still
    stable), not as a megabyte key."""
    if not entry.guid:
        return None
    guid = collapse(strip_controls(entry.guid)) or None
    if guid is None or len(guid) <= MAX_GUID:
        return guid
    return "sha256:" + hashlib.sha256(guid.encode("utf-8", "surrogatepass")).hexdigest()


def shared_ids(entries: Sequence[RawEntry], ctx: Context) -> Context:
    """`ctx` with the links entries of one document share under different titles (one page
    for many announcements) and the guids they share under different links or titles:
    neither is then any entry's identity (see `identity`)."""
    titles: dict[str, str] = {}
    seen: dict[str, tuple[str, str]] = {}
    links, guids = set(), set()
    for e in entries:  # raw links first: canonical ones only for the few that repeat
        if e.link and titles.setdefault(e.link, e.title or "") != (e.title or ""):
            links.add(e.link)
        if e.guid and seen.setdefault(e.guid, (e.link or "", e.title or "")) != (
                e.link or "", e.title or ""):
            guids.add(e.guid)
    if not links and not guids:
        return ctx
    urls = frozenset(u for u in (canonical_url(link, ctx.base_url) for link in links) if u)
    return replace(ctx, shared_urls=urls, shared_guids=frozenset(guids))


def _own_ids(entry: RawEntry, ctx: Context
             ) -> tuple[str | None, str | None, str | None, str | None]:
    """(guid, canonical URL, and each again where it is the entry's own, not shared)."""
    url = item_url(entry, ctx)
    guid = item_guid(entry)
    return (guid, url, None if entry.guid in ctx.shared_guids else guid,
            None if url in ctx.shared_urls else url)


def _summary(entry: RawEntry, content: Callable[[], str]) -> str:
    """The entry's teaser as text; an entry with only its body (Atom's <content> alone, a
    JSON Feed post, a microblog entry) is told by the text of its body as stored (the
    sanitised `content()`), not by nothing."""
    return text_of(entry.summary, MAX_SUMMARY) or (
        text_of(content(), MAX_SUMMARY) if entry.content else "")


def prepare(entry: RawEntry, ctx: Context) -> tuple[str, str | None, str]:
    """(identity key, canonical URL, raw fingerprint): the cheap part of `normalise`."""
    _, url, own_guid, own_url = _own_ids(entry, ctx)
    title = ""
    if not own_guid and not own_url:  # a hash identity needs the (normalised) title
        title = text_of(entry.title, MAX_TITLE)
        if ctx.category_from_title:
            title = split_category(title)[1]
        summary = _summary(entry, lambda: clean_content(entry.content, url or ctx.base_url))
        if not title:  # as normalise has it
            title = _clip(summary, 120) if summary else (url or "(untitled)")
        title = _clip(title, MAX_TITLE)
    return identity(own_guid, own_url, title, entry.published), url, raw_fingerprint(entry, ctx)


def normalise(entry: RawEntry, ctx: Context) -> Item:
    """One raw entry → one Item. Never raises on odd input: it degrades and flags."""
    title = text_of(entry.title, MAX_TITLE)
    # each once, in the feed's order, and a hundred at most: a tag cloud, not a payload
    categories = list(dict.fromkeys(
        c for c in (_clip(collapse(text_of(c, MAX_TAG)), MAX_TAG)
                    for c in entry.categories[:MAX_TAGS * 10]) if c
    ))[:MAX_TAGS]
    category = categories[0] if categories else None
    if ctx.category_from_title:
        label, rest = split_category(title)
        if label:
            category, title = label, rest
    guid, url, own_guid, own_url = _own_ids(entry, ctx)
    content = clean_content(entry.content, url or ctx.base_url)
    summary = _summary(entry, lambda: content)
    if not title:
        title = _clip(summary, 120) if summary else (url or "(untitled)")

    date = parse_date(entry.published, ctx.timezone, ctx.date_formats, ctx.now) or parse_date(
        entry.updated, ctx.timezone, ctx.date_formats, ctx.now)
    flag = DateFlag.NONE
    if date is None:
        flag, date = DateFlag.MISSING, ctx.now
    elif date > ctx.now + FUTURE_TOLERANCE:
        flag, date = DateFlag.FUTURE, ctx.now
    published = iso_utc(date)

    title = _clip(title, MAX_TITLE)
    summary = _clip(summary, MAX_SUMMARY)
    author = (_clip(collapse(text_of(entry.author, MAX_AUTHOR)), MAX_AUTHOR) or None
              if entry.author else None)
    language = (entry.language or ctx.language or "").strip().lower() or None
    if language and len(language) > MAX_LANGUAGE:  # no language tag is that long
        language = None
    return Item(
        source=ctx.source,
        key=identity(own_guid, own_url, title, entry.published),
        url=url,
        guid=guid,
        title=title,
        category=category,
        tags=tuple(categories),
        summary=summary,
        content=content,
        # a clamped or missing date is "first seen", which moves each poll: not hashed
        published=published,
        date_flag=flag,
        language=language,
        author=author,
        content_hash=content_hash(title, url, category, summary, content,
                                  None if flag else published),
        raw_hash=raw_fingerprint(entry, ctx),
    )


__all__ = ["HASH_VERSION", "MAX_GUID", "MAX_URL", "Context", "clean_content", "content_hash",
           "identity", "item_guid", "item_url", "normalise", "prepare", "raw_fingerprint",
           "split_category", "text_of"]
