"""Plain data passed between the pipeline's stages; no I/O here.

    fetch → FetchResult → parse → RawEntry → normalise → Item → diff → Change
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import printable
from .words import counted, size

# Version of what `content_hash` covers; a stored hash of another version is re-hashed
# silently instead of reading as an edit.
# v2: an entry with only a body takes its summary from it; v3: text in composed form (NFC),
# without soft hyphens and zero-width spaces; v4: links in one spelling (RFC 3986: non-ASCII
# percent-encoded, escapes upper-case, an IDN host in ASCII), text without direction
# controls that reach past themselves; v5: a "<" that opens no HTML element is text
HASH_VERSION = "v5"
EARLIER_HASH_VERSIONS = ("v1", "v2", "v3", "v4")


class ChangeKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class DateFlag(StrEnum):
    """Why an item's `published` is not the date the source gave."""

    NONE = ""
    MISSING = "missing"  # the entry had no (readable) date: first-seen is used
    FUTURE = "future"  # more than a day ahead: clamped to first-seen


class PollStatus(StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not-modified"
    ERROR = "error"
    WAITING = "waiting"  # not polled: the server's Retry-After has not passed
    BUSY = "busy"  # not polled: another process is polling it at this moment


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one HTTP exchange gave: a body, or a 304."""

    url: str  # final URL after redirects
    status: int
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    duration: float
    not_modified: bool = False
    # where every redirect on the way was permanent (301/308): the URL to write instead
    moved_to: str | None = None
    # "gzip": the body is still as sent, compressed (fetched with decode=False); fetch.decode
    # gives the decoded one
    coding: str | None = None

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as a parser read it: strings as found, nothing cleaned yet."""

    title: str | None = None
    link: str | None = None
    guid: str | None = None
    summary: str | None = None  # HTML or text
    content: str | None = None  # HTML body where the feed has one
    published: str | None = None  # the date text as found
    updated: str | None = None
    categories: tuple[str, ...] = ()
    author: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A parser's output for one body: channel facts plus entries."""

    entries: tuple[RawEntry, ...]
    base_url: str
    title: str | None = None
    language: str | None = None
    warning: str | None = None  # e.g. feedparser's bozo reason when entries were still read
    parser: str = "feedparser"  # which path read it: "lxml" (fast) or "feedparser"


# the fields an item keeps earlier versions of, and an edit is told by, in that order
VERSIONED = ("title", "category", "url", "published", "summary", "content")


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised entry: what is stored, diffed, classified and notified."""

    source: str
    key: str  # identity within the source: "guid:…", "url:…" or "hash:…"
    url: str | None
    guid: str | None
    title: str
    category: str | None
    tags: tuple[str, ...]  # every <category> the entry carried
    summary: str
    content: str
    published: str  # UTC ISO 8601, e.g. 2020-05-27T09:06:39Z
    date_flag: DateFlag
    language: str | None
    content_hash: str
    author: str | None = None
    raw_hash: str = ""  # of the raw entry: unchanged raw form → unchanged item, not re-read

    def versioned(self) -> dict[str, str | None]:
        """The VERSIONED fields, as a stored row has them: what an edit is read against."""
        return {f: getattr(self, f) for f in VERSIONED}

    def __reduce__(self) -> tuple[type[Item], tuple[object, ...]]:
        # Items cross from parse workers to the writer by pickle; rebuilding through the
        # constructor costs half of dataclasses' generic slots state (measured: 43 → 26 µs
        # an item, dumps + loads, on the benchmark corpus).
        return (Item, (self.source, self.key, self.url, self.guid, self.title, self.category,
                       self.tags, self.summary, self.content, self.published, self.date_flag,
                       self.language, self.content_hash, self.author, self.raw_hash))


@dataclass(frozen=True, slots=True)
class StoredItem:
    """What the store knows of an item, as much as diffing needs."""

    id: str
    key: str | None  # the sighting key of this source, when it had one
    url: str | None
    content_hash: str
    published: str
    date_flag: DateFlag
    own: bool = True  # this source has seen it before (False: known through another source)
    # the rules it matched when last stored (JSON, as stored): read only for an edit
    rules_json: str = "[]"
    # this source brought it first: its content is this source's view, and only this
    # source's can edit it (another's — a listing's excerpt, a lagging cache — never does)
    first: bool = True

    @property
    def rules(self) -> tuple[str, ...]:
        import json

        return tuple(json.loads(self.rules_json or "[]"))


def edit_ref(before: str, after: str) -> str:
    """What names an edit among an item's notifications: the content hash it left and the
    one it made. An edit undone is a new one (the item went back: told), while a page
    flapping between two versions repeats the same two (told once each way)."""
    return f"{before}>{after}"


# An entry retitled keeps its date, or one this near (a CMS that re-dates an edit): a
# daily's next issue, a day on, is not one.
RETITLE_HOURS = 12


@dataclass(frozen=True, slots=True)
class Vanished:
    """A stored item of this source that this read does not show, dated near an entry found
    by nothing else, with the words that tell whether that entry is it under a new title
    and link."""

    item: StoredItem
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class StoredSource:
    """A source the database has rows for, as far as telling a renamed one goes."""

    name: str
    url: str
    kind: str
    read_as: str | None  # the settings it was last read under (harvest.read_settings)


@dataclass(frozen=True, slots=True)
class Change:
    """One item's fate in one poll, with the rules it matched."""

    kind: ChangeKind
    item: Item
    item_id: str
    previous: StoredItem | None = None
    rules: tuple[str, ...] = ()
    rekeyed: bool = False  # known by URL under another key: the sighting key moves
    foreign: bool = False  # first seen through another source: this is only a sighting


@dataclass(frozen=True, slots=True)
class Notification:
    """An outbox row to be: one per (notifier, item, event)."""

    id: str
    notifier: str
    item_id: str  # for a source event: "source:<name>"
    event: str  # "item.new" | "item.changed" | "source.failing" | "source.recovered" | …
    source: str
    ref: str = ""  # what makes a repeat event distinct (a change's edit_ref)
    data: str | None = None  # JSON details of a source event (error, failures, since)
    due: str | None = None  # when to send it (a notifier's `at`); None: at once


@dataclass(frozen=True, slots=True)
class SourceState:
    """Per-source fetch state kept between polls."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    baseline_done: bool = False
    consecutive_failures: int = 0
    not_before: datetime | None = None  # a server's Retry-After: no request before this
    last_polled: datetime | None = None  # the last poll's time, whatever came of it
    last_success: datetime | None = None  # the last poll that went well
    read_as: str | None = None  # harvest.read_settings of the source's last read


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll of one source did; the CLI prints it, the fetch log stores it."""

    source: str
    status: PollStatus
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    queued: int = 0
    old: int = 0  # of the new: dated before the source's max_age, so not notified
    reread: int = 0  # of the changed: found by reading under changed settings, not notified
    cut: int = 0  # of the changed: words taken out only, under edits = "added": not notified
    unmatched: int = 0  # of the changed: added words edits_match does not find: not notified
    markup: int = 0  # of the changed: markup only, no word or link's target: not notified
    baseline: bool = False
    http_status: int | None = None
    bytes: int = 0
    duration: float = 0.0
    error: str | None = None
    warning: str | None = None
    retry_after: float | None = None  # the server's Retry-After on a failed fetch, seconds
    changes: tuple[Change, ...] = field(default=(), repr=False)

    @classmethod
    def from_log(cls, row: Mapping[str, Any]) -> PollReport:
        """A poll as the fetch log keeps it (its changes are not kept); its words as text,
        whatever an earlier version stored of a server's."""
        return cls(row["source"], PollStatus(row["status"]), new=row["new"],
                   changed=row["changed"], unchanged=row["unchanged"], queued=row["queued"],
                   old=row["old"], reread=row["reread"], cut=row["cut"],
                   unmatched=row["unmatched"], markup=row["markup"],
                   baseline=bool(row["baseline"]), http_status=row["http_status"],
                   bytes=row["bytes"], duration=(row["duration_ms"] or 0) / 1000,
                   error=row["error"] and printable(row["error"]),
                   warning=row["warning"] and printable(row["warning"]))

    def warned(self, note: str | None) -> PollReport:
        """This report with `note` added to its warnings."""
        if not note:
            return self
        return replace(self, warning=f"{self.warning}; {note}" if self.warning else note)

    def planned(self, plan: PollPlan) -> PollReport:
        """This report with what a poll's plan did: its counts, its queue, its warning.
        The store logs it; `once` and the daemon say it."""
        kinds = Counter(ch.kind for ch in plan.changes)
        return replace(self.warned(plan.warning), baseline=plan.baseline,
                       queued=len(plan.notifications) if plan.queued is None else plan.queued,
                       old=plan.old, reread=plan.reread,
                       cut=plan.cut, unmatched=plan.unmatched, markup=plan.markup,
                       changes=plan.changes,
                       new=kinds[ChangeKind.NEW], changed=kinds[ChangeKind.CHANGED],
                       unchanged=kinds[ChangeKind.UNCHANGED] + len(plan.same))

    def line(self, *, dry_run: bool = False) -> str:
        """What happened, in one line of words: `once` prints it, the daemon logs it. A dry
        run's line says what would have been stored and queued: nothing was."""
        would = "would be " if dry_run else ""
        if self.status is PollStatus.ERROR:
            return f"{self.source}: error: {self.error}"
        if self.status in (PollStatus.WAITING, PollStatus.BUSY):
            return f"{self.source}: {self.warning}"
        # from the whole milliseconds the fetch log keeps, so `log` replays what was said
        net = (f"HTTP {self.http_status}, {size(self.bytes)} in "
               f"{round(self.duration * 1000) / 1000:.2f}s")
        if self.status is PollStatus.NOT_MODIFIED:
            why = "not modified" if self.http_status == 304 else "not modified (same body)"
            return f"{self.source}: {why} ({net})" + (
                f"; warning: {self.warning}" if self.warning else "")
        if self.baseline:
            text = f"{self.source}: baseline: {counted(self.new, 'item')} {would}stored"
            text += (f", {counted(self.queued, 'notification')} {would}queued" if self.queued
                     else " silently")
            if self.unchanged:  # a second source's first poll: the news it carries is known
                text += f", {self.unchanged} known already through other sources"
        else:
            old = f" ({self.old} older than max_age: not notified)" if self.old else ""
            # edits stored, not told: a poll has at most one reason (untold_edits)
            reread = next((f" ({why}: not notified)" for n, why in (
                (self.reread, "read under changed settings"),
                (self.cut, f"{self.cut} with words taken out only"),
                (self.unmatched, f"{self.unmatched} whose added words do not match edits_match"),
                (self.markup, f"{self.markup} of markup only")) if n), "")
            text = (f"{self.source}: {self.new} new{old}, {self.changed} changed{reread}, "
                    f"{self.unchanged} unchanged")
            if self.queued:
                text += f", {counted(self.queued, 'notification')} {would}queued"
        text += f" ({net})"
        if self.warning:
            text += f"; warning: {self.warning}"
        return text


@dataclass(frozen=True, slots=True)
class Known:
    """What the store knows that one poll's decisions need, read inside its transaction."""

    by_key: dict[str, StoredItem]
    by_url: dict[str, StoredItem]
    baseline_done: bool
    by_title: dict[str, list[StoredItem]] = field(default_factory=dict)  # exact title
    # the stored fields of the items found (id → title, …, content), when the poll asked
    # for them: a source whose edits are told only when they put words in
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # this source's items dated near a new entry's date that this read does not show: what
    # an entry retitled (and so re-linked) may be
    gone: list[Vanished] = field(default_factory=list)
    # items that had an entry's link in an earlier version (an entry nothing else found)
    by_former_url: dict[str, StoredItem] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Everything one successful poll writes, decided before any write happens."""

    changes: tuple[Change, ...]
    notifications: tuple[Notification, ...]
    baseline: bool
    same: tuple[tuple[str, str], ...] = ()  # (key, item id): raw form unchanged, not re-read
    old: int = 0  # new items dated before the source's max_age: stored, not notified
    warning: str | None = None  # what the decisions found worth saying (entries missed)
    keep_versions: int | None = None  # an edited item's earlier versions kept (None: all)
    reread: int = 0  # edits found by reading under changed settings: stored, not notified
    cut: int = 0  # edits that only took words out, under edits = "added": stored, not notified
    unmatched: int = 0  # edits whose added words edits_match does not find: stored, not told
    markup: int = 0  # edits of markup only (no word, no link's target): stored, not told
    # outbox rows the write added: fewer than `notifications` where one was queued before
    # (the same edit again, of a page turning between two texts); None until written
    queued: int | None = None
