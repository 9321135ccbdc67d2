"""Polls sources end to end: fetch → parse → normalise → diff → classify → store + outbox.

`harvester once` and the daemon both call `poll_sources`/`poll_one`; there is no
second pipeline. Fetches run concurrently on threads; parsing and the one write
transaction per source happen on the calling thread, so SQLite sees one writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .config import Config, SourceConfig
from .diff import diff, plan_notifications
from .errors import FetchError, HarvesterError
from .fetch import Fetcher
from .models import FetchResult, Known, PollPlan, PollReport, PollStatus, SourceState
from .normalise import HASH_VERSION, Context, normalise_all
from .parse import parse_feed
from .store import Store

Clock = Callable[[], datetime]


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


def body_fingerprint(source: SourceConfig, body: bytes) -> str:
    """Hash of a body and everything that shapes how it is read: the same bytes under the
    same settings give the same items, so they need not be parsed again."""
    h = hashlib.sha256(f"{HASH_VERSION}|{source.url}|{source.category_from_title}|"
                       f"{source.timezone}|{source.encoding}|".encode())
    h.update(body)
    return h.hexdigest()


def fetch_one(source: SourceConfig, state: SourceState, fetcher: Fetcher) -> Fetched:
    try:
        result = fetcher.fetch(source.url, etag=state.etag, last_modified=state.last_modified,
                               source=source.name)
    except FetchError as e:
        return Fetched(source, state, error=e)
    return Fetched(source, state, result=result)


def process(fetched: Fetched, config: Config, store: Store, now: datetime, *,
            dry_run: bool = False) -> PollReport:
    """Turn one fetch outcome into stored items and outbox rows (or a recorded failure)."""
    src, state = fetched.source, fetched.state
    if fetched.error is not None or fetched.result is None:
        err = fetched.error or FetchError("no response", source=src.name, url=src.url)
        report = PollReport(src.name, PollStatus.ERROR, http_status=err.status, error=str(err))
        if not dry_run:
            store.record_failure(src.name, src.url, src.kind.value, now, report)
        return report
    fr = fetched.result
    base = PollReport(src.name, PollStatus.OK, http_status=fr.status, bytes=fr.size,
                      duration=fr.duration)
    try:
        if fr.not_modified:
            return _not_modified(src, state, fr, base, store, now, dry_run,
                                 body_hash=state.body_hash)
        fingerprint = body_fingerprint(src, fr.body)
        if fingerprint == state.body_hash and state.baseline_done:
            return _not_modified(src, state, fr, base, store, now, dry_run, body_hash=fingerprint)
        doc = parse_feed(fr.body, url=fr.url, content_type=fr.content_type, encoding=src.encoding,
                         source=src.name)
        ctx = Context(source=src.name, base_url=doc.base_url, now=now, timezone=src.timezone,
                      category_from_title=src.category_from_title, language=doc.language)
        items = normalise_all(doc.entries, ctx)
        base = replace(base, warning=doc.warning)
        new_state = replace(state, etag=fr.etag, last_modified=fr.last_modified,
                            body_hash=fingerprint)

        def decide(known: Known) -> PollPlan:
            changes = diff(items, known.by_key, known.by_url, config.rules)
            baseline = not known.baseline_done
            notes = plan_notifications(changes, config.notifiers, baseline=baseline,
                                       first_run=src.first_run)
            return PollPlan(tuple(changes), tuple(notes), baseline)

        keys = [it.key for it in items]
        urls = [it.url for it in items if it.url]
        if dry_run:
            plan = decide(store.known(src.name, keys, urls))
        else:
            plan = store.apply_poll(src.name, src.url, src.kind.value, now, base, new_state,
                                    keys, urls, decide)
    except HarvesterError as e:
        report = replace(base, status=PollStatus.ERROR, error=str(e))
        if not dry_run:
            store.record_failure(src.name, src.url, src.kind.value, now, report)
        return report
    counts = {k: 0 for k in ("new", "changed", "unchanged")}
    for ch in plan.changes:
        counts[ch.kind.value] += 1
    return replace(base, baseline=plan.baseline, queued=len(plan.notifications),
                   changes=plan.changes, **counts)


def _not_modified(src: SourceConfig, state: SourceState, fr: FetchResult, base: PollReport,
                  store: Store, now: datetime, dry_run: bool,
                  body_hash: str | None) -> PollReport:
    report = replace(base, status=PollStatus.NOT_MODIFIED)
    if not dry_run:
        new_state = replace(state, etag=fr.etag or state.etag,
                            last_modified=fr.last_modified or state.last_modified,
                            body_hash=body_hash)
        store.record_not_modified(src.name, src.url, src.kind.value, now, report, new_state)
    return report


def poll_sources(config: Config, store: Store, *, sources: Sequence[SourceConfig] | None = None,
                 fetcher: Fetcher | None = None, clock: Clock = system_clock,
                 dry_run: bool = False) -> Iterator[PollReport]:
    """Poll sources concurrently; yields one report per source as each is stored."""
    chosen = [s for s in (config.sources if sources is None else sources) if s.enabled]
    if not chosen:
        return
    fetcher = fetcher or Fetcher(config.http)
    states = {s.name: store.source_state(s.name) for s in chosen}
    workers = max(1, min(config.http.concurrency, len(chosen)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(fetch_one, s, states[s.name], fetcher) for s in chosen]
        for fut in as_completed(futures):
            yield process(fut.result(), config, store, clock(), dry_run=dry_run)


def poll_one(source: SourceConfig, config: Config, store: Store, *,
             fetcher: Fetcher | None = None, clock: Clock = system_clock) -> PollReport:
    """Poll a single source now (the daemon's job body)."""
    fetcher = fetcher or Fetcher(config.http)
    fetched = fetch_one(source, store.source_state(source.name), fetcher)
    return process(fetched, config, store, clock())


__all__ = ["Fetched", "body_fingerprint", "poll_one", "poll_sources", "process", "system_clock"]
