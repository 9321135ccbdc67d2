"""Pure decisions of a poll: what is new, changed or unchanged, and what to notify.

Everything here takes data (plus `now` where time matters) and returns data, so
`harvester once`, the daemon and the tests all get the same answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from .config import FirstRun, FirstRunMode, NotifierConfig, RuleConfig
from .dates import iso_utc
from .models import (
    HASH_VERSION,
    RETITLE_HOURS,
    Change,
    ChangeKind,
    Item,
    Notification,
    StoredItem,
    Vanished,
    edit_ref,
)
from .rules import classify


@lru_cache(maxsize=1024)
def _source_prefix(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:8]


def item_id(source: str, key: str) -> str:
    """Stable id of a new item, from the source it was first seen in and its identity key.

    The source's own hash leads, so one source's items sit together in the id index and a
    poll's inserts dirty a few neighbouring pages rather than one page per item."""
    prefix = _source_prefix(source)
    digest = hashlib.sha256(f"{source}\x1f{key}".encode()).hexdigest()[:16]
    return f"i_{prefix}{digest}"


def dedupe(items: Sequence[Item], shared: Collection[str] = ()) -> list[Item]:
    """Two entries of one fetch with the same identity (or the same canonical URL, unless
    entries `shared` it under different titles) are one item; the first wins, as feeds list
    newest first."""
    seen_keys: set[str] = set()
    seen_urls: set[str] = set()
    out = []
    for it in items:
        if it.key in seen_keys or (it.url and it.url in seen_urls and it.url not in shared):
            continue
        seen_keys.add(it.key)
        if it.url:
            seen_urls.add(it.url)
        out.append(it)
    return out


def _redated(it: Item, prev: StoredItem) -> bool:
    """Whether the stored item is this one but for its date: the hash of these fields with
    the stored date is the stored hash."""
    from .normalise import content_hash  # rarely needed: not on a re-poll's import path

    return (it.published != prev.published and not it.date_flag and not prev.date_flag
            and content_hash(it.title, it.url, it.category, it.summary, it.content,
                             prev.published) == prev.content_hash)


def _same_site(a: str | None, b: str | None) -> bool:
    """Whether two canonical links are on one site (the host, but for a leading "www."):
    an item without a link could be on either."""
    if not a or not b:
        return True
    return _site(a) == _site(b)


def _site(url: str) -> str:
    host = url.partition("://")[2].partition("/")[0].partition("?")[0]
    return host.removeprefix("www.")


def _dated_near(a: str, b: str, hours: float = 36) -> bool:
    """Within `hours` of each other: by default a day and a half, for a listing's date-only
    midnight vs a feed's timestamp of the same day."""
    try:
        da = datetime.fromisoformat(a.replace("Z", "+00:00"))
        db = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return False
    return abs((da - db).total_seconds()) <= hours * 3600


def _folder(url: str) -> tuple[str, str]:
    """A link's site and the folder its last path segment stands in."""
    path = url.partition("://")[2].partition("?")[0].partition("#")[0]
    return _site(url), path.partition("/")[2].rstrip("/").rpartition("/")[0]


def _alike(a: str, b: str, at_least: float) -> bool:
    """Whether at least this share of the two texts' words is the same, in order (a case
    change is no change; the first 300 words are enough to tell)."""
    from difflib import SequenceMatcher  # only when an entry is new and an item vanished

    wa, wb = a.casefold().split()[:300], b.casefold().split()[:300]
    return bool(wa or wb) and SequenceMatcher(None, wa, wb, autojunk=False).ratio() >= at_least


def _retitled(it: Item, gone: Vanished) -> bool:
    """Whether a new entry is this vanished item under a fixed title, with the link its
    CMS made from that title: its date (within RETITLE_HOURS), a link in the same folder
    of the same site (or neither has one), two thirds of the title's words, and four
    fifths of the summary's where both have one (a title put right leaves the summary
    as it was, or nearly; a fast feed's next update, alike in title, says other things)."""
    prev = gone.item
    return (not it.date_flag and not prev.date_flag
            and _dated_near(prev.published, it.published, RETITLE_HOURS)
            and (it.url is None) == (prev.url is None)
            and (it.url is None or _folder(it.url) == _folder(prev.url or ""))
            and _alike(gone.title, it.title, 2 / 3)
            and (not gone.summary or not it.summary or _alike(gone.summary, it.summary, 0.8)))


def _twins(new: Sequence[Item], gone: Sequence[Vanished]) -> dict[str, StoredItem]:
    """The new entries (by key) that are a vanished item retitled: only where one entry
    and one item have each other alone — two alike either way are left as news."""
    if not gone or not new:
        return {}
    found = {}
    for it in new:
        matches = [g.item for g in gone if _retitled(it, g)]
        if len(matches) == 1:
            found[it.key] = matches[0]
    claims = Counter(prev.id for prev in found.values())
    return {key: prev for key, prev in found.items() if claims[prev.id] == 1}


def diff(items: Sequence[Item], by_key: Mapping[str, StoredItem],
         by_url: Mapping[str, StoredItem], rules: Sequence[RuleConfig] = (),
         matched: Mapping[str, tuple[str, ...]] | None = None,
         by_title: Mapping[str, Sequence[StoredItem]] | None = None,
         shared: Collection[str] = (), gone: Sequence[Vanished] = (),
         former: Mapping[str, StoredItem] | None = None) -> list[Change]:
    """Compare a fetch's items with what the store knows. Items absent from the fetch are
    not touched: a feed is a window, not the archive. `matched` (item key → rule names)
    is classification done already, e.g. in the worker that read the body. A link in
    `shared` (several entries' under different titles) identifies none of them. `gone`:
    this source's items dated near an entry found by nothing else and not in this read,
    which that entry may be under a new title and link. `former`: items that had an
    entry's link in an earlier version; that item when dated the same (a slug freed by a
    rename and given to a later article is that article's)."""

    def rules_of(it: Item) -> tuple[str, ...]:
        return matched[it.key] if matched is not None else classify(it, rules)

    def lookup(it: Item) -> tuple[StoredItem | None, bool]:
        """The stored item this entry is, and whether it is found under another key."""
        prev = by_key.get(it.key)
        if (prev is not None and prev.url != it.url and it.url is not None
                and it.key.startswith("guid:") and it.url in by_url):
            # a guid once given to another entry too (a CMS's one for all), now alone: the
            # item stored under this entry's own link is this one
            return by_url[it.url], True
        if prev is not None:
            return prev, False
        if it.url is not None and it.url not in shared and it.url in by_url:
            return by_url[it.url], True  # a new guid, or seen via another source
        was = former.get(it.url) if former and it.url is not None else None
        if was is not None and not it.date_flag and _dated_near(was.published, it.published):
            return was, True  # the link it had before an edit (a listing a poll behind)
        if by_title and not it.date_flag:
            # this source's item under a new URL (the site moved), or another source's copy
            # on the same site: the same title on the same day (another organisation's
            # "Newsletter" that day is its own)
            prev = next((p for p in by_title.get(it.title, ())
                         if not p.date_flag and _dated_near(p.published, it.published)
                         and (p.own or _same_site(p.url, it.url))), None)
        return prev, prev is not None

    def seen(it: Item, prev: StoredItem, rekeyed: bool) -> Change:
        if not (prev.own and prev.first):
            # another source's article: one item, two sightings. Its content is the first
            # source's; this source's differing view is not an edit (nor a notification),
            # the first time it shows the item or the tenth.
            return Change(ChangeKind.UNCHANGED, it, prev.id, previous=prev, rekeyed=True,
                          foreign=True)
        if prev.date_flag and it.date_flag:
            # keep the first-seen date the item was given, not this poll's clock
            it = replace(it, published=prev.published)
        # a hash from an older HASH_VERSION is not comparable: re-hash silently, never alert
        same = (prev.content_hash == it.content_hash
                or not prev.content_hash.startswith(HASH_VERSION + ":"))
        if not same and _redated(it, prev):
            # only the date moved (a feed that dates every entry with the time it was
            # generated): no edit; the item keeps the date it was first seen with
            it, same = replace(it, published=prev.published, content_hash=prev.content_hash), True
        kind = ChangeKind.UNCHANGED if same else ChangeKind.CHANGED
        return Change(kind, it, prev.id, previous=prev, rekeyed=rekeyed,
                      rules=rules_of(it) if kind is ChangeKind.CHANGED else ())

    changes: list[Change | None] = []
    new: list[tuple[int, Item]] = []
    for it in dedupe(items, shared):
        prev, rekeyed = lookup(it)
        if prev is None:
            new.append((len(changes), it))
            changes.append(None)
        else:
            changes.append(seen(it, prev, rekeyed))
    twins = _twins([it for _, it in new], gone)
    for i, it in new:
        twin = twins.get(it.key)
        changes[i] = (seen(it, twin, True) if twin is not None
                      else Change(ChangeKind.NEW, it, item_id(it.source, it.key),
                                  rules=rules_of(it)))
    return [ch for ch in changes if ch is not None]


def no_overlap(changes: Sequence[Change], same: int) -> bool:
    """Whether a re-poll found nothing it stored before (`same`: entries whose raw form
    was, not re-read): a source shows its newest entries only, so with two or more and
    none known its window moved past the last poll's, and what came and went between
    was never seen."""
    return same == 0 and len(changes) >= 2 and all(c.kind is ChangeKind.NEW for c in changes)


def notification_id(notifier: str, item_id_: str, event: str, ref: str = "") -> str:
    """Derived from what makes the event unique, so a re-queue gets the same id."""
    raw = f"{notifier}\x1f{item_id_}\x1f{event}\x1f{ref}".encode()
    return "n_" + hashlib.sha256(raw).hexdigest()[:24]


def _wants(n: NotifierConfig, rules: tuple[str, ...]) -> bool:
    return not n.rules or any(r in n.rules for r in rules)


def old_news(changes: Sequence[Change], max_age: float | None,
             now: datetime) -> frozenset[str]:
    """Ids of the items new to the store but dated more than `max_age` seconds before
    `now`: an old article a site puts back, or a feed whose entries all got new ids, is
    stored as any other but told as no news. An item without a date of its own (dated
    when first seen) is never old."""
    if max_age is None:
        return frozenset()
    cutoff = iso_utc(now - timedelta(seconds=max_age))
    # both sides are UTC ISO 8601 in one form ("…Z"): they compare as strings
    return frozenset(c.item_id for c in changes if c.kind is ChangeKind.NEW
                     and not c.item.date_flag and c.item.published < cutoff)


@dataclass(frozen=True, slots=True)
class Untold:
    """The edits a poll stores without telling, and why."""

    ids: frozenset[str] = frozenset()
    reread: int = 0  # the source was read under changed settings: every edit is theirs
    cut: int = 0  # edits = "added": these only took words out
    unmatched: int = 0  # edits_match: the words these put in do not match it
    markup: int = 0  # these changed markup only: no word, no link's target


def untold_edits(changes: Sequence[Change], *, reread: bool,
                 before: Mapping[str, Mapping[str, object]] | None = None,
                 match: re.Pattern[str] | None = None, added: bool = False) -> Untold:
    """Which edits are no news: all of them when the source was read under other settings
    than its last read (`reread`: they are the config's doing, not the site's); else, with
    `before` (the stored fields by item id), those whose added words `match` does not find
    (a source's edits_match), or, with `added`, those that took words out only (its edits
    = "added"), or else those that change no word and no link (markup only)."""
    if not any(c.kind is ChangeKind.CHANGED for c in changes):
        return Untold()  # most polls: and the text reader is not even imported
    if reread:
        ids = frozenset(c.item_id for c in changes if c.kind is ChangeKind.CHANGED)
        return Untold(ids, reread=len(ids))
    if before is not None and match is not None:
        from .edits import added_text

        ids = _edits_failing(changes, before, lambda old, new: bool(
            match.search(added_text(old, new))))
        return Untold(ids, unmatched=len(ids))
    if before is not None and added:
        ids = taken_out_only(changes, before)
        return Untold(ids, cut=len(ids))
    if before is not None:
        from .edits import reads_otherwise

        ids = _edits_failing(changes, before, reads_otherwise)
        return Untold(ids, markup=len(ids))
    return Untold()


def taken_out_only(changes: Sequence[Change],
                   before: Mapping[str, Mapping[str, object]]) -> frozenset[str]:
    """Ids of the edited items whose edit put no words in (`edits.adds_words`), against
    `before`, each item's stored fields by id: no news where a source's `edits = "added"`.
    An item whose stored fields are not at hand is not counted among them."""
    from .edits import adds_words  # difflib, the text reader: for such a source

    return _edits_failing(changes, before, adds_words)


def _edits_failing(changes: Sequence[Change], before: Mapping[str, Mapping[str, object]],
                   news: Callable[[Mapping[str, object], Mapping[str, object]], bool]
                   ) -> frozenset[str]:
    """Ids of the edited items whose edit — stored fields `before` it, the item's after —
    `news` does not find to be news; an item whose stored fields are not at hand is not
    among them."""
    return frozenset(c.item_id for c in changes if c.kind is ChangeKind.CHANGED
                     and c.item_id in before and not news(before[c.item_id], c.item.versioned()))


def plan_notifications(changes: Sequence[Change], notifiers: Sequence[NotifierConfig], *,
                       baseline: bool, first_run: FirstRun, now: datetime | None = None,
                       old: Collection[str] = (), edits_are_news: bool = False,
                       max_age: float | None = None) -> list[Notification]:
    """Outbox rows this poll causes. A baseline poll queues nothing unless the source's
    `first_run` says "all" or "latest:N"; re-seen and unchanged items never queue, nor do
    new items in `old` (`old_news`) after the baseline. A notifier with an `at` time gets
    its rows due then (from `now`), not at once. `edits_are_news` (a watched page, whose
    edits are all it has to tell): an edit goes to the notifiers of news as well. An item
    in `old` never queues (`old_news`, `untold_edits`). An edit that brings an item into a
    notifier's rules (a typo fixed in the word a rule looks for) is news to that notifier,
    which never heard of it — unless the item is dated before `max_age`."""
    new = [c for c in changes if c.kind is ChangeKind.NEW]
    if baseline:
        if first_run.mode is FirstRunMode.BASELINE:
            return []
        if first_run.mode is FirstRunMode.LATEST:
            kept = {id(c) for c in sorted(new, key=lambda c: c.item.published,
                                          reverse=True)[: first_run.n]}
            new = [c for c in new if id(c) in kept]
        eligible = new
    else:
        eligible = [c for c in changes if c.kind is not ChangeKind.UNCHANGED
                    and c.item_id not in old]
    due = {n.name: iso_utc(n.at.next_at(now)) for n in notifiers
           if n.at is not None and now is not None}
    out = []
    # the outbox is read in this order: oldest first, and items of one date (a listing's
    # day, a feed without dates) bottom to top, as sources list the newest first
    cutoff = iso_utc(now - timedelta(seconds=max_age)) if max_age and now else ""
    for c in sorted(reversed(eligible), key=lambda c: c.item.published):
        kind = c.kind.value  # "new" | "changed"
        told = ("new", "changed") if edits_are_news and kind == "changed" else (kind,)
        ref_of_kind = (edit_ref(c.previous.content_hash, c.item.content_hash)
                       if kind == "changed" and c.previous else "")
        for n in notifiers:
            if not _wants(n, c.rules):
                continue
            event, ref = f"item.{kind}", ref_of_kind
            if (kind == "changed" and not edits_are_news and n.rules and "new" in n.on
                    and c.previous is not None and not _wants(n, c.previous.rules)
                    and not (c.item.published < cutoff and not c.item.date_flag)):
                event, ref = "item.new", ""  # news to this notifier: see above
            elif not any(k in n.on for k in told):
                continue
            out.append(Notification(notification_id(n.name, c.item_id, event, ref), n.name,
                                    c.item_id, event, c.item.source, ref, due=due.get(n.name)))
    return out


def source_events(source: str, url: str, notifiers: Sequence[NotifierConfig], *,
                  threshold: int, error: str | None = None):
    """The operators' events of a source's failure streak, as callbacks for the store:
    `failing(count, since)` queues one "source.failing" once the streak reaches `threshold`;
    `recovered(count, since)` queues "source.recovered" after an alerted streak ends."""
    def rows(event: str, count: int, since: str, wanted: tuple[str, ...]) -> list[Notification]:
        data = json.dumps({"source": source, "url": url, "failures": count, "since": since,
                           "error": error})
        return [Notification(notification_id(n.name, f"source:{source}", event, since), n.name,
                             f"source:{source}", event, source, since, data)
                for n in notifiers if any(e in n.events for e in wanted)]

    def failing(count: int, since: str) -> list[Notification]:
        if count < threshold:
            return []
        return rows("source.failing", count, since, ("source.failing",))

    def recovered(count: int, since: str) -> list[Notification]:
        return rows("source.recovered", count, since, ("source.failing", "source.recovered"))

    return failing, recovered


def silence_events(source: str, url: str, notifiers: Sequence[NotifierConfig],
                   after: float | None, now: datetime):
    """The operators' "source.silent" event of a source that answers but has brought no
    new item for `after` seconds, as a callback for the store: `silent(last_new)` gives
    one row per notifier that asks for it, keyed by `last_new`, so a silence is told once
    and the next one (news, then silence again) once more. None when nobody listens."""
    wanted = [n for n in notifiers if "source.silent" in n.events]
    if after is None or not wanted:
        return None

    def silent(last_new: str | None) -> list[Notification]:
        if not last_new:
            return []
        since = datetime.fromisoformat(last_new.replace("Z", "+00:00"))
        quiet = (now - since).total_seconds()
        if quiet < after:
            return []
        data = json.dumps({"source": source, "url": url, "since": last_new,
                           "days": int(quiet // 86400)})
        return [Notification(notification_id(n.name, f"source:{source}", "source.silent",
                                             last_new), n.name, f"source:{source}",
                             "source.silent", source, last_new, data) for n in wanted]

    return silent


__all__ = [
    "Untold",
    "dedupe",
    "diff",
    "item_id",
    "no_overlap",
    "notification_id",
    "old_news",
    "plan_notifications",
    "silence_events",
    "source_events",
    "taken_out_only",
    "untold_edits",
]
