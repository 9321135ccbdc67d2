"""Polls sources end to end: fetch → parse → normalise → diff → classify → store + outbox.

`harvester once` and the daemon both come through here; there is no second
pipeline. Fetches run on threads. Reading a body (parse + normalise: pure, CPU
bound) runs inline, or — when a poll has many bodies to read and the machine
has cores to spare — in worker processes, since threads would share one GIL.
Diffing and the one write transaction per source stay on the calling thread,
so SQLite sees a single writer.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .config import Config, EditsTold, RuleConfig, SourceConfig, SourceKind
from .crontab import parse as parse_crontab
from .dates import iso_utc
from .diff import (
    diff,
    no_overlap,
    old_news,
    plan_notifications,
    silence_events,
    source_events,
    untold_edits,
)
from .errors import FetchError, HarvesterError, printable
from .fetch import Fetcher, decode
from .locks import SourceLocks
from .models import (
    EARLIER_HASH_VERSIONS,
    HASH_VERSION,
    FetchResult,
    Item,
    Known,
    PollPlan,
    PollReport,
    PollStatus,
    SourceState,
)
from .rules import classify
from .store import Store
from .words import counted, is_count

if TYPE_CHECKING:  # parse.* imports lxml: a re-poll of 304s never loads it
    from .normalise import Context
    from .parse.listing import Listing, Selectors

Clock = Callable[[], datetime]
# Article pages one poll fetches at most for `follow`: a listing's news of a day, but not
# a (hostile) feed of 20,000 links, each one a request to wherever it points.
FOLLOW_MAX = 50
# Below this many bodies to read, worker processes do not pay for their fork.
INLINE_READS = 12
PROCESSES_ENV = "HARVESTER_PARSE_PROCESSES"  # "0" keeps all parsing in-process


def system_clock() -> datetime:
    """The one place the wall clock is read; everything else is handed `now`."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source's fetch outcome, carried from a worker thread to the writer."""

    source: SourceConfig
    state: SourceState
    result: FetchResult | None = None
    error: FetchError | None = None
    fingerprint: str | None = None  # body_fingerprint of a 200, hashed on the fetch thread


@dataclass(frozen=True, slots=True)
class Read:
    """What reading one body gave: items, or the reason there are none."""

    items: tuple[Item, ...] = ()
    matched: dict[str, tuple[str, ...]] | None = None  # item key → rules it matches
    warning: str | None = None
    error: str | None = None
    same: tuple[str, ...] = ()  # keys whose raw form is what this source gave last time
    shared: frozenset[str] = frozenset()  # links entries share under different titles
    stale: bool = False  # a listing whose selectors matched nothing: alert at once
    # a listing's page 1 as a worker read it (selectors, entries): the writer goes on from it
    page1: tuple[Selectors, Listing] | None = None
    # a body a worker decoded (see read_coded): its size and fingerprint, which the writer
    # never saw; `unchanged`: byte-identical to the last one, so it was not parsed
    size: int | None = None
    fingerprint: str | None = None
    unchanged: bool = False


def _contained(read: Callable[..., Read]) -> Callable[..., Read]:
    """An unexpected exception while reading untrusted bytes fails this source's poll, with
    an error that names it, instead of ending the whole run; HarvesterErrors (a store that
    cannot be read, say) keep their own handling."""

    @functools.wraps(read)
    def reading(*args: Any, **kwargs: Any) -> Read:
        try:
            return read(*args, **kwargs)
        except HarvesterError:
            raise
        except Exception as e:
            return Read(error=f"internal error while reading: {type(e).__name__}: {e} "
                              "(a harvester bug: please report it with this source)")

    return reading


def read_settings(source: SourceConfig, version: str = HASH_VERSION) -> str:
    """Hash of everything in a source's config that shapes how its bytes become items
    (and of how this version normalises them): a listing's or a page's selectors, a
    followed article's, category_from_title, the zone of undated times, the encoding."""
    return hashlib.sha256(
        f"{version}|{source.url}|{source.category_from_title}|{source.timezone}|"
        f"{source.encoding}|{source.page}|{source.listing}|{source.follow}".encode()
    ).hexdigest()[:32]


def settings_changed(source: SourceConfig, state: SourceState) -> bool:
    """Was the source last read under other settings (`read_settings`)? Its next read then
    differs from what is stored by them, not by the site."""
    return (state.baseline_done and state.read_as is not None
            and state.read_as != read_settings(source))


def read_by_earlier_version(source: SourceConfig, state: SourceState) -> bool:
    """Was the source last read, under these same settings, by an earlier harvester that
    normalised otherwise (`settings_changed` then says so, not the config)?"""
    return state.read_as is not None and any(
        state.read_as == read_settings(source, v) for v in EARLIER_HASH_VERSIONS)


def body_fingerprint(source: SourceConfig, body: bytes) -> str:
    """Hash of a body and everything that shapes how it is read: the same bytes under the
    same settings give the same items, so they need not be parsed again."""
    h = hashlib.sha256(f"{read_settings(source)}|".encode())
    h.update(body)
    return h.hexdigest()


def fetch_one(source: SourceConfig, state: SourceState, fetcher: Fetcher,
              decode: bool = True) -> Fetched:
    """Fetch a source; with `decode=False` a gzip body stays compressed, for a worker
    process to decode and fingerprint (see read_coded)."""
    try:
        # read under changed settings, the page is asked for whole: a 304 would keep the
        # old reading until the site changed it
        fresh = settings_changed(source, state)
        # the configured URL as written is the origin: what a message may show of it
        result = fetcher.fetch(source.request_url, etag=None if fresh else state.etag,
                               last_modified=None if fresh else state.last_modified,
                               source=source.name,
                               origin=source.url, headers=source.headers, decode=decode)
    except FetchError as e:
        return Fetched(source, state, error=e)
    except Exception as e:  # a server's answer no code path foresaw: this source's error
        return Fetched(source, state, error=FetchError(
            f"internal error while fetching: {type(e).__name__}: {e} (a harvester bug: please "
            "report it with this source)", source=source.name, url=source.url))
    fingerprint = (None if result.not_modified or result.coding
                   else body_fingerprint(source, result.body))
    return Fetched(source, state, result=result, fingerprint=fingerprint)


@_contained
def read_body(source: SourceConfig, body: bytes, url: str, content_type: str | None,
              now: datetime, rules: Sequence[RuleConfig] = (),
              known_raw: Callable[[list[str]], Mapping[str, str]] | None = None) -> Read:
    """Parse, normalise and classify one body: pure, so it can run in another process.

    With `known_raw` (key → the raw fingerprint stored for this source), entries whose raw
    form is unchanged are not normalised again: on a re-poll of a feed with one new item,
    one item is read, not the whole window."""
    # imported here: a re-poll where every source answers 304 never needs lxml or nh3
    from .normalise import Context, normalise, prepare, shared_ids
    from .parse import parse_feed
    from .parse.page import BlockMissing, parse_page

    try:
        if source.page is not None:
            doc = parse_page(body, url, source.url, content_type=content_type,
                             encoding=source.encoding, content=source.page.content,
                             remove=source.page.remove, ignore=source.page.ignore,
                             source=source.name)
        else:
            doc = parse_feed(body, url=url, content_type=content_type,
                             encoding=source.encoding, source=source.name)
    except BlockMissing as e:  # a watched page's block is gone: a redesign, alerted at once
        return Read(error=str(e), stale=True)
    except HarvesterError as e:
        return Read(error=str(e))
    ctx = Context(source=source.name, base_url=doc.base_url, now=now, timezone=source.timezone,
                  category_from_title=source.category_from_title, language=doc.language)
    ctx = shared_ids(doc.entries, ctx)
    if known_raw is None:
        items = tuple(normalise(e, ctx) for e in doc.entries)
        same: list[str] = []
    else:
        prepared = [prepare(e, ctx) for e in doc.entries]
        stored = known_raw([key for key, _, _ in prepared])
        fresh, same, seen = [], [], set()
        for entry, (key, _, raw) in zip(doc.entries, prepared, strict=True):
            if key in seen:
                continue  # a duplicate within the fetch: the first one counts (see dedupe)
            seen.add(key)
            if stored.get(key) == raw:
                same.append(key)
            else:
                fresh.append(normalise(entry, ctx))
        items = tuple(fresh)
    return Read(items, {it.key: classify(it, rules) for it in items}, warning=doc.warning,
                same=tuple(same), shared=ctx.shared_urls)


def _decoded_body(source: SourceConfig, fr: FetchResult,
                  max_bytes: int) -> tuple[FetchResult, str]:
    """A body left gzipped, decoded (FetchError as on the way in), and its fingerprint."""
    fr = decode(fr, max_bytes, source.name)
    return fr, body_fingerprint(source, fr.body)


def decoded(fetched: Fetched, max_bytes: int) -> Fetched:
    """A fetch whose body was left gzipped for a worker process, decoded and fingerprinted
    here instead; a body that does not decode is the fetch's error, as on the way in."""
    fr = fetched.result
    if fr is None or fr.coding is None:
        return fetched
    try:
        fr, fingerprint = _decoded_body(fetched.source, fr, max_bytes)
    except FetchError as e:
        return replace(fetched, result=None, error=e)
    return replace(fetched, result=fr, fingerprint=fingerprint)


@_contained
def read_coded(source: SourceConfig, fr: FetchResult, max_bytes: int, now: datetime,
               rules: Sequence[RuleConfig], last_hash: str | None) -> Read:
    """A body still gzipped, decoded, fingerprinted and read in a worker process, so the
    writer's process never gunzips, hashes or ships the decoded bytes (measured: a first
    poll of 200 feeds 1.09 → 1.02 s, see README › Performance). `last_hash`: the fingerprint
    stored for the source, if it has a baseline; the same bytes again are not parsed."""
    try:
        fr, fingerprint = _decoded_body(source, fr, max_bytes)
    except FetchError as e:
        return Read(error=str(e))
    if fingerprint == last_hash:
        return Read(size=fr.size, fingerprint=fingerprint, unchanged=True)
    read = read_body(source, fr.body, fr.url, fr.content_type, now, rules)
    return replace(read, size=fr.size, fingerprint=fingerprint)


def _listing_context(src: SourceConfig, base: str, now: datetime) -> Context:
    from .normalise import Context

    return Context(src.name, base, now, src.timezone, src.category_from_title, None,
                   src.listing.date_formats if src.listing else ())


@_contained
def read_listing_first(source: SourceConfig, first: FetchResult, now: datetime,
                       rules: Sequence[RuleConfig] = ()) -> Read:
    """Page 1 of a listing source, read, normalised and classified: pure, so it can run in
    a worker process. The writer goes on to later pages (`read_listing`): they need the
    network and the store."""
    from .listing import StaleLayout, first_page
    from .normalise import normalise

    try:
        select, page = first_page(source, first)
    except StaleLayout as e:
        return Read(error=str(e), stale=True)
    except HarvesterError as e:
        return Read(error=str(e))
    ctx = _listing_context(source, first.url, now)
    items = tuple(normalise(e, ctx) for e in page.document.entries)
    return Read(items, {it.key: classify(it, rules) for it in items}, page1=(select, page))


@_contained
def read_listing(fetched: Fetched, config: Config, store: Store, fetcher: Fetcher,
                 now: datetime, *, first: Read | None = None) -> Read:
    """Read an HTML listing source: page 1 (unless a worker has: `first`) and,
    incrementally, the pages after it."""
    from .listing import StaleLayout, read_pages
    from .normalise import normalise, prepare

    src, fr = fetched.source, fetched.result
    assert fr is not None and src.listing is not None
    page1 = first.page1 if first is not None else None

    ctx = _listing_context(src, fr.url, now)

    def known(entries: list) -> Known:
        prepared = [prepare(e, ctx) for e in entries]
        return store.known(src.name, [(k, u, "", None) for k, u, _ in prepared])

    try:
        entries, warning = read_pages(src, fr, fetcher, baseline=not fetched.state.baseline_done,
                                      known=known, page1=page1)
    except StaleLayout as e:
        return Read(error=str(e), stale=True)
    except HarvesterError as e:
        return Read(error=str(e))
    done = first.items if first is not None else ()
    skip = len(page1[1].document.entries) if page1 is not None else 0  # normalised already
    later = tuple(normalise(e, ctx) for e in entries[skip:])
    matched = dict(first.matched or {}) if first is not None else {}
    matched.update((it.key, classify(it, config.rules)) for it in later)
    return Read(done + later, matched, warning=warning)


def _base_report(fetched: Fetched, read: Read | None) -> PollReport:
    fr = fetched.result
    assert fr is not None
    size = read.size if read is not None and read.size is not None else fr.size
    report = PollReport(fetched.source.name, PollStatus.OK, http_status=fr.status,
                        bytes=size, duration=fr.duration)
    if fr.moved_to:  # said on every poll until the config says it: each one pays the hop
        report = report.warned(f"moved permanently to {fr.moved_to}: write that as the "
                               "source's url")
    return report


def needs_reading(fetched: Fetched) -> bool:
    """A 200 whose body is not byte-identical to the last one stored (a gzipped one: not
    known until a worker has decoded it)."""
    fr, state = fetched.result, fetched.state
    return (fetched.error is None and fr is not None and not fr.not_modified
            and not (state.baseline_done and fr.coding is None
                     and fetched.fingerprint == state.body_hash))


def _follow_new(src: SourceConfig, items: tuple[Item, ...], store: Store,
                fetcher: Fetcher) -> tuple[tuple[Item, ...], list[str], int]:
    """Fetch the article page of each item not stored yet (never the stored ones again),
    the first FOLLOW_MAX of them; (items, problems, how many were left as they came).
    Outside the write transaction: no network wait holds the database."""
    from .article import follow

    known = store.known(src.name, [(it.key, it.url, it.title, None) for it in items])
    fresh = [it for it in items if it.key not in known.by_key
             and not (it.url and it.url in known.by_url)]
    if not fresh:
        return items, [], 0
    selector = src.listing.content if src.listing else None
    followed, problems = follow(fresh[:FOLLOW_MAX], fetcher, src.name, selector,
                                origin=src.url, headers=src.headers)
    by_key = {it.key: it for it in followed}
    return (tuple(by_key.get(it.key, it) for it in items), problems,
            max(len(fresh) - FOLLOW_MAX, 0))


def record(fetched: Fetched, read: Read | None, config: Config, store: Store, now: datetime, *,
           dry_run: bool = False, fetcher: Fetcher | None = None) -> PollReport:
    """Store one source's poll (or its failure): the diff and the write, one transaction."""
    src, state, fr = fetched.source, fetched.state, fetched.result
    if fetched.error is not None or fr is None:
        err = fetched.error or FetchError("no response", source=src.name, url=src.url)
        return _failed(PollReport(src.name, PollStatus.ERROR, http_status=err.status,
                                  retry_after=err.retry_after),
                       str(err), fetched, store, now, dry_run, config)
    if read is not None and read.fingerprint is not None:
        fetched = replace(fetched, fingerprint=read.fingerprint)
    base = _base_report(fetched, read)
    try:
        if read is None or read.unchanged:  # 304, or the same bytes as last time
            return _not_modified(fetched, base, store, now, dry_run, config)
        if read.error is not None:
            return _failed(base, read.error, fetched, store, now, dry_run, config, read.stale)
        if (state.baseline_done and not read.items and not read.same
                and store.has_items(src.name)):
            # a feed that empties overnight is a broken CMS far more often than news (one
            # empty since its first poll, a new blog's, is just empty)
            return _failed(base, "the feed has no entries now; the items stored before are "
                           "kept", fetched, store, now, dry_run, config)
        items = read.items
        base = base.warned(read.warning)
        if src.follow and not dry_run:
            items, problems, unread = _follow_new(src, items, store,
                                                  fetcher or Fetcher(config.http))
            if problems:
                base = base.warned(f"{len(problems)} article pages not read: {problems[0]}")
            if unread:
                base = base.warned(f"{counted(unread, 'new item')} stored without article "
                                   f"text: follow reads at most {FOLLOW_MAX} article pages a poll")

        reread = settings_changed(src, state)
        # the stored fields of the items an entry edits, to tell what the edit put in, or
        # whether it changed anything a reader reads (only those: the rest read the same)
        texts = {it.key: it.content_hash for it in items}

        def decide(known: Known) -> PollPlan:
            changes = diff(items, known.by_key, known.by_url, config.rules, read.matched,
                           known.by_title, read.shared, known.gone, known.by_former_url)
            baseline = not known.baseline_done
            old = frozenset() if baseline else old_news(changes, src.max_age, now)
            untold = untold_edits(changes, reread=reread, match=src.edits_match,
                                  before=None if baseline else known.texts,
                                  added=src.edits is EditsTold.ADDED)
            notes = plan_notifications(changes, config.notifiers, baseline=baseline,
                                       first_run=src.first_run, now=now, old=old | untold.ids,
                                       edits_are_news=src.kind is SourceKind.PAGE,
                                       max_age=src.max_age)
            same = tuple((k, known.by_key[k].id) for k in read.same if k in known.by_key)
            gap = not baseline and no_overlap(changes, len(same))
            return PollPlan(tuple(changes), tuple(notes), baseline, same, len(old),
                            _missed(src, len(changes)) if gap else None,
                            config.storage.keep_versions, reread=untold.reread, cut=untold.cut,
                            unmatched=untold.unmatched, markup=untold.markup)

        entries = [(it.key, it.url, it.title, None if it.date_flag else it.published)
                   for it in items] + [(key, None, "", None) for key in read.same]
        if dry_run:
            plan = decide(store.known(src.name, entries, texts))
        else:
            new_state = replace(state, etag=fr.etag, last_modified=fr.last_modified,
                                body_hash=fetched.fingerprint, read_as=read_settings(src))
            plan = store.apply_poll(src.name, src.url, src.kind.value, now, base, new_state,
                                    entries, decide, _recovered(src, config),
                                    _silent(src, config, now), texts)
    except HarvesterError as e:
        return _failed(base, str(e), fetched, store, now, dry_run, config)
    return base.planned(plan)


def _missed(src: SourceConfig, n: int) -> str:
    """The warning of a re-poll that found nothing stored before (`diff.no_overlap`)."""
    if src.kind is SourceKind.FEED:
        return (f"none of the feed's {n} entries was stored before: any that came and went "
                "since the last poll were missed (poll it more often)")
    return (f"none of the {n} entries read was stored before: any that came and went since "
            "the last poll were missed (poll it more often, or let it read more pages: "
            "[sources.pages] max)")


def _failed(base: PollReport, error: str, fetched: Fetched, store: Store, now: datetime,
            dry_run: bool, config: Config, stale: bool = False) -> PollReport:
    """A failed poll changes no item: only the source's health, the fetch log and, after
    enough failures in a row (a stale listing layout: at once), one operators' alert."""
    src = fetched.source
    error = printable(error)  # a worker's or a library's words, not only a HarvesterError's
    report = replace(base, status=PollStatus.ERROR, error=error)
    if not dry_run:
        threshold = 1 if stale else src.failures_before_alert
        failing, _ = source_events(src.name, src.url, config.notifiers, threshold=threshold,
                                   error=error)
        queued = store.record_failure(src.name, src.url, src.kind.value, now, report, failing)
        report = replace(report, queued=queued)  # the operators' alert, when this one made it
    return report


def _recovered(src: SourceConfig, config: Config):
    return source_events(src.name, src.url, config.notifiers,
                         threshold=src.failures_before_alert)[1]


def _silent(src: SourceConfig, config: Config, now: datetime):
    return silence_events(src.name, src.url, config.notifiers, src.silent_after, now)


def _not_modified(fetched: Fetched, base: PollReport, store: Store, now: datetime,
                  dry_run: bool, config: Config) -> PollReport:
    src, state, fr = fetched.source, fetched.state, fetched.result
    assert fr is not None
    report = replace(base, status=PollStatus.NOT_MODIFIED)
    if not dry_run:
        new_state = replace(state, etag=fr.etag or state.etag,
                            last_modified=fr.last_modified or state.last_modified)
        store.record_not_modified(src.name, src.url, src.kind.value, now, report, new_state,
                                  _recovered(src, config), _silent(src, config, now))
    return report


def process(fetched: Fetched, config: Config, store: Store, now: datetime, *,
            dry_run: bool = False, needs: bool | None = None,
            fetcher: Fetcher | None = None) -> PollReport:
    """Read (inline) and record one fetch outcome."""
    read = None
    if needs is None:
        needs = needs_reading(fetched)
    if needs and fetched.source.kind is SourceKind.HTML:
        read = read_listing(fetched, config, store, fetcher or Fetcher(config.http), now)
    elif needs:
        fr = fetched.result
        assert fr is not None
        src = fetched.source
        known_raw = None
        if fetched.state.baseline_done:
            def known_raw(keys: list[str]) -> Mapping[str, str]:
                return store.raw_hashes(src.name, keys)
        read = read_body(src, fr.body, fr.url, fr.content_type, now, config.rules, known_raw)
    return record(fetched, read, config, store, now, dry_run=dry_run, fetcher=fetcher)


def _worker_count() -> int:
    configured = os.environ.get(PROCESSES_ENV)
    if configured is not None and is_count(configured):
        return int(configured)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # one more worker than cores: the writer thread often waits on SQLite or the network,
    # and an idle core costs more than a little oversubscription (measured: 2 cores, 3 best)
    return min((cpus or 1) + 1, 4) if (cpus or 1) > 1 else 0


def _warm() -> None:
    """Import what reading a body needs (lxml, nh3: ~0.1 s) in a fresh worker."""
    from . import normalise, parse  # noqa: F401


def _orphan_guard(parent: int) -> None:
    """Each worker's start: it ends when the process that forked it is gone (a `once`
    SIGKILLed by a cron timeout or the OOM killer), instead of waiting for work for ever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="harvester-orphan-guard").start()


class _Readers:
    """Worker processes that read bodies, for polls that will have many to read.

    Forked before any fetch thread starts (a fork beside running threads can inherit a held
    lock), and only when enough sources have no baseline yet — a first poll reads every
    body; a re-poll mostly gets 304s, and ~25 ms of fork would be most of its cost."""

    def __init__(self, expected_reads: int, max_bytes: int) -> None:
        self.pool: Executor | None = None
        self.max_bytes = max_bytes
        workers = _worker_count()
        if workers and expected_reads > INLINE_READS:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_orphan_guard, initargs=(os.getpid(),))
            # With "fork", the first submit forks every worker, now, while this process has
            # one thread. Not waited for: the workers load the parsers while the first
            # fetches are in flight, instead of when the first body arrives.
            for _ in range(workers):
                pool.submit(_warm)
            self.pool = pool

    def submit(self, fetched: Fetched, now: datetime,
               rules: Sequence[RuleConfig]) -> Future[Read] | None:
        """Hand the body to a worker (a listing's page 1 only: later pages ask the store
        whether to go on); None means read it inline, as there are no workers (left)."""
        if self.pool is None:
            return None
        fr = fetched.result
        assert fr is not None
        try:
            if fetched.source.kind is SourceKind.HTML:
                return self.pool.submit(read_listing_first, fetched.source, fr, now, rules)
            if fr.coding is not None:
                state = fetched.state
                return self.pool.submit(read_coded, fetched.source, fr, self.max_bytes, now,
                                        rules, state.body_hash if state.baseline_done else None)
            return self.pool.submit(read_body, fetched.source, fr.body, fr.url,
                                    fr.content_type, now, rules)
        except BrokenExecutor:
            self.broken()
            return None

    def result(self, job: Future[Read]) -> Read:
        """A worker's read; when a worker died (the OOM killer, a crash in a parser's C
        code), the failure of every read then in flight, and the rest read inline."""
        try:
            return job.result()
        except BrokenExecutor as e:
            self.broken()
            # which body it was is not known, and one read inline could take this whole
            # process down with it: these sources are read again at their next poll
            return Read(error=f"not read: a worker process reading bodies died ({e})")

    def broken(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Unsaid:
    """Reports waiting to be said. A poll's report says what it stored, so one whose writes
    wait for their group's commit is held until that commit, and said as a failure if the
    commit fails and takes them with it (a full disk): a line never claims news that the
    database does not hold."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: list[PollReport] = []
        self.ready: list[PollReport] = []

    def add(self, report: PollReport) -> None:
        # a failure or a 304 is true whether or not its bookkeeping rows are committed
        if report.status is PollStatus.OK and self.store.uncommitted():
            self.held.append(report)
        else:
            self.ready.append(report)

    def committed(self) -> None:
        self.ready += self.held
        self.held = []

    def lost(self, reason: str) -> None:
        self.ready += [replace(r, status=PollStatus.ERROR, new=0, changed=0, unchanged=0,
                               queued=0, baseline=False, changes=(),
                               error=f"not stored: the write failed ({reason}); the next "
                                     "run reads it again")
                       for r in self.held]
        self.held = []

    def take(self) -> list[PollReport]:
        ready, self.ready = self.ready, []
        return ready


def _before_network(fetched: Fetched, store: Store) -> None:
    """Commit the open group before a poll that fetches more (listing pages, articles):
    a network wait must not hold the write lock."""
    if fetched.source.follow or fetched.source.kind is SourceKind.HTML:
        store.flush()


def poll_sources(config: Config, store: Store, *, sources: Sequence[SourceConfig] | None = None,
                 fetcher: Fetcher | None = None, clock: Clock = system_clock,
                 dry_run: bool = False) -> Iterator[PollReport]:
    """Poll sources concurrently; yields one report per source as each is stored."""
    chosen = [s for s in (config.sources if sources is None else sources) if s.enabled]
    if not chosen:
        return
    fetcher = fetcher or Fetcher(config.http)
    # Each source's lock, then its state: read under the lock, the state is the one the last
    # poll left, not one another process is about to replace. A dry run writes nothing, so
    # it neither waits for nor keeps out another poll.
    locks = None if dry_run else SourceLocks.for_database(config.storage.path)
    busy: list[SourceConfig] = []
    if locks is not None:
        free: list[SourceConfig] = []
        for src in chosen:
            (free if locks.acquire(src.name) else busy).append(src)
        chosen = free
    held = {s.name for s in chosen} if locks is not None else set()

    notes: dict[str, str] = {}  # a renamed source's take-over, said in its report

    def finished(report: PollReport) -> PollReport:
        if report.source in held:
            held.discard(report.source)
            assert locks is not None
            locks.release(report.source)
        return report.warned(notes.get(report.source))

    try:
        for src in busy:
            yield busy_report(src)
        states = store.source_states([s.name for s in chosen])
        if locks is not None:
            notes, left = take_over_renamed(chosen, states, config, store, locks)
            for src in [s for s in chosen if s.name in left]:
                chosen.remove(src)
                yield finished(busy_report(src))
            if notes:
                states = store.source_states([s.name for s in chosen])
        else:  # a dry run changes nothing, so reads a renamed source as a new one: said
            notes = {new: f"a poll takes over what {old} stored first (renamed): this dry run "
                          "reads it as a new source"
                     for new, old in renamed_from(chosen, states, config, store).items()}
        start = clock()
        for src in [s for s in chosen if waiting(states[s.name], start)]:
            chosen.remove(src)
            yield finished(waiting_report(src, states[src.name], start))
        yield from _poll_held(chosen, states, config, store, fetcher, clock, dry_run, finished)
    finally:
        if locks is not None:
            for name in held:  # sources left unpolled: Ctrl-C, or a caller that stopped
                locks.release(name)


def _poll_held(chosen: list[SourceConfig], states: Mapping[str, SourceState], config: Config,
               store: Store, fetcher: Fetcher, clock: Clock, dry_run: bool,
               finished: Callable[[PollReport], PollReport]) -> Iterator[PollReport]:
    """poll_sources's fetching, reading and recording, once its sources are its own."""
    readers = _Readers(sum(not states[s.name].baseline_done for s in chosen),
                       config.http.max_bytes)
    unsaid = _Unsaid(store)
    try:
        yield from _poll_grouped(chosen, states, config, store, fetcher, clock, dry_run,
                                 finished, readers, unsaid)
    except (HarvesterError, KeyboardInterrupt):
        # before the error or the Ctrl-C: what the group's last commit stored, or the polls
        # a failed commit took with it, said as failures
        yield from map(finished, unsaid.take())
        raise
    finally:
        readers.close()
        store.flush()


def _poll_grouped(chosen: list[SourceConfig], states: Mapping[str, SourceState],
                  config: Config, store: Store, fetcher: Fetcher, clock: Clock, dry_run: bool,
                  finished: Callable[[PollReport], PollReport], readers: _Readers,
                  unsaid: _Unsaid) -> Iterator[PollReport]:
    """_poll_held's loop: fetches on threads, bodies read by `readers`, each poll a savepoint
    in the group's commits, its report said once the commit holding it is (see _Unsaid)."""
    threads = max(1, min(config.http.concurrency, len(chosen)))
    # Sources in flight (fetching, waiting to be read, being read) are capped, so a poll of
    # a thousand feeds holds a few dozen bodies in memory, not a thousand.
    window = threads * 4
    todo = iter(chosen)
    # each source's poll is a savepoint; sources share commits (see SqliteStore.group)
    with store.group(on_commit=unsaid.committed, on_lost=unsaid.lost), \
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool:
        pending: dict[Future[object], Fetched | None] = {}

        def start_next() -> None:
            src = next(todo, None)
            if src is not None:
                # a feed's or a page's gzipped body goes to a worker as it came (see
                # read_coded); a listing's stays here, as its later pages are read here
                keep_coded = readers.pool is not None and src.kind is not SourceKind.HTML
                pending[pool.submit(fetch_one, src, states[src.name], fetcher,
                                    not keep_coded)] = None

        for _ in range(window):
            start_next()
        try:
            while pending:
                done, _ = wait(pending, timeout=0, return_when=FIRST_COMPLETED)
                if not done:
                    store.flush()  # commit before waiting: the write lock is never held idle
                    yield from map(finished, unsaid.take())
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    fetched = pending.pop(fut)
                    if fetched is not None:  # a read finished in a worker process
                        _before_network(fetched, store)
                        read = readers.result(fut)  # type: ignore[arg-type]
                        if read.page1 is not None:  # a listing: go on to later pages here
                            read = read_listing(fetched, config, store, fetcher, clock(),
                                                first=read)
                        unsaid.add(record(fetched, read, config, store, clock(),
                                          dry_run=dry_run, fetcher=fetcher))
                    else:
                        result = fut.result()
                        assert isinstance(result, Fetched)
                        fetched = result
                        needs = needs_reading(fetched)
                        job = readers.submit(fetched, clock(), config.rules) if needs else None
                        if job is not None:
                            pending[job] = fetched  # type: ignore[index]
                            continue
                        # a body left gzipped for workers that are gone: decoded here
                        fetched = decoded(fetched, config.http.max_bytes)
                        needs = needs_reading(fetched)
                        if needs:
                            _before_network(fetched, store)
                        unsaid.add(process(fetched, config, store, clock(), dry_run=dry_run,
                                           needs=needs, fetcher=fetcher))
                    yield from map(finished, unsaid.take())
                    start_next()
        except (KeyboardInterrupt, GeneratorExit):
            # Ctrl-C, or a caller that stopped reading: start nothing more, and cut short
            # the requests in flight, or leaving the pool would wait out their timeouts
            for fut in pending:
                fut.cancel()
            fetcher.interrupt()
            raise
    yield from map(finished, unsaid.take())  # what the group's last commit stored


def waiting(state: SourceState, now: datetime) -> bool:
    """Whether the server's Retry-After still forbids asking this source."""
    return state.not_before is not None and state.not_before > now


def waiting_report(src: SourceConfig, state: SourceState, now: datetime) -> PollReport:
    assert state.not_before is not None
    return PollReport(src.name, PollStatus.WAITING,
                      warning=f"not polled: the server asked for no request before "
                              f"{iso_utc(state.not_before)} (Retry-After)",
                      retry_after=(state.not_before - now).total_seconds())


# How early a run may find a source due, as a share of its interval: cron starts runs on
# the minute, while a source's last poll is stamped when it ended, a little after one.
DUE_EARLY = 0.1
NEVER = datetime.max.replace(tzinfo=UTC)  # the turn of a cron line that names no date


def backoff(every: float, failures: int, backoff_max: float) -> float:
    """Seconds from a failed poll to the next: the interval doubled for each failure in a
    row, at most `backoff_max` — the daemon's spacing, and `once --due`'s."""
    # past 2**64 intervals the cap has long been reached; 2**1025 would overflow a float
    return min(backoff_max, every * 2 ** min(max(0, failures - 1), 64))


def due_at(src: SourceConfig, state: SourceState, backoff_max: float) -> datetime | None:
    """When a source's schedule next asks for a poll, from its last one (None: never
    polled, so now; NEVER: a cron line that names no date, a 30 February)."""
    last = state.last_polled
    if last is None:
        return None
    if state.consecutive_failures:
        return last + timedelta(seconds=backoff(src.every, state.consecutive_failures,
                                                backoff_max))
    if src.cron:  # the line is in the source's own time zone
        nxt = parse_crontab(src.cron).next_fire(last, ZoneInfo(src.timezone))
        return nxt if nxt else NEVER
    return last + timedelta(seconds=src.every)


def next_due(src: SourceConfig, state: SourceState, backoff_max: float) -> datetime | None:
    """When a polled source is next due, a server's Retry-After honoured (`sources`);
    None for one disabled, never polled, or whose cron line names no date."""
    if not src.enabled:
        return None
    at = due_at(src, state, backoff_max)
    if at is None or at == NEVER:
        return None
    return max(at, state.not_before) if state.not_before else at


def split_due(sources: Sequence[SourceConfig], states: Mapping[str, SourceState],
              now: datetime, backoff_max: float
              ) -> tuple[list[SourceConfig], list[tuple[SourceConfig, datetime]]]:
    """The sources due now, and the others with when each will be (`once --due`)."""
    due, later = [], []
    for src in sources:
        state = states[src.name]
        at = due_at(src, state, backoff_max)
        if at is None:  # never polled
            due.append(src)
            continue
        assert state.last_polled is not None  # due_at is None exactly when it is
        # a cron line names exact minutes; an interval may come round a little early
        early = (at - state.last_polled) * DUE_EARLY if (
            state.consecutive_failures or not src.cron) else timedelta(0)
        if now >= at - early:
            due.append(src)
        else:
            later.append((src, at))
    return due, later


def renamed_from(sources: Sequence[SourceConfig], states: Mapping[str, SourceState],
                 config: Config, store: Store) -> dict[str, str]:
    """{new: old} for each of `sources` never polled that is a stored source renamed in the
    config (renames.renamed)."""
    if all(states[s.name].last_polled is not None for s in sources):
        return {}
    from .renames import renamed

    pairs = renamed(config.sources, store.stored_sources(), read_settings)
    return {s.name: pairs[s.name] for s in sources
            if s.name in pairs and states[s.name].last_polled is None}


def take_over_renamed(sources: Sequence[SourceConfig], states: Mapping[str, SourceState],
                      config: Config, store: Store,
                      locks: SourceLocks) -> tuple[dict[str, str], set[str]]:
    """Give each of `sources` that is a stored source renamed in the config what its old
    name stored; what its report is to say of it, by name. And the names left out this
    time: their old name's lock is held, by a process polling it under the config before."""
    notes, left = {}, set()
    for new, old in renamed_from(sources, states, config, store).items():
        if not locks.acquire(old):
            left.add(new)
            continue
        try:
            store.rename_source(old, new)
        except HarvesterError as e:  # polled as a new source then: its baseline is silent
            notes[new] = f"did not take over what {old} stored: {e}"
            continue
        finally:
            locks.release(old)
        notes[new] = f"took over what {old} stored (no longer configured, the same URL: renamed)"
    return notes, left


def busy_report(src: SourceConfig) -> PollReport:
    return PollReport(src.name, PollStatus.BUSY,
                      warning="not polled: another harvester process is polling it now")


def poll_one(source: SourceConfig, config: Config, store: Store, *,
             fetcher: Fetcher | None = None, clock: Clock = system_clock) -> PollReport:
    """Poll a single source now (the daemon's job body)."""
    fetcher = fetcher or Fetcher(config.http)
    locks = SourceLocks.for_database(config.storage.path)
    if not locks.acquire(source.name):
        return busy_report(source)
    try:
        state = store.source_state(source.name)  # under the lock: see poll_sources
        notes, left = take_over_renamed([source], {source.name: state}, config, store, locks)
        if left:
            return busy_report(source)
        if notes:
            state = store.source_state(source.name)
        now = clock()
        if waiting(state, now):
            return waiting_report(source, state, now)
        fetched = fetch_one(source, state, fetcher)
        report = process(fetched, config, store, clock(), fetcher=fetcher)
        store.flush()
    finally:
        locks.release(source.name)
    return report.warned(notes.get(source.name))


def prune_log(config: Config, store: Store, now: datetime) -> int:
    """Drop the fetch-log rows older than [storage] keep_log (`once` at its end, the daemon
    hourly); how many went."""
    keep = config.storage.keep_log
    return store.prune_log(now - timedelta(seconds=keep)) if keep else 0


__all__ = ["NEVER", "Fetched", "Read", "backoff", "body_fingerprint", "due_at", "next_due",
           "poll_one", "poll_sources", "process", "prune_log", "read_body",
           "read_by_earlier_version", "read_settings", "record", "settings_changed",
           "split_due", "system_clock"]
