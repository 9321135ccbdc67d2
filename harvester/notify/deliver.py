"""The outbox delivery loop: due rows → channels → sent, retry later, or dead.

At-least-once by construction: a row is marked sent only after its channel said
so, so a crash in between resends it — with the same id (webhook-id, Message-ID)
for the receiver to recognise. Nothing is ever dropped: the last failed attempt
leaves the row `dead`, visible in `harvester outbox`, until retried.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..config import Config, DeliveryConfig, NotifierConfig, NotifierKind
from ..dates import iso_utc
from ..store import SqliteStore
from ..words import counted
from .base import Channel, Message, Outcome, OutcomeKind, message_from_row

log = logging.getLogger("harvester.notify")
DEFAULT_MAX_PER_RUN = 10


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    disabled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # rows waiting for notifiers the config no longer names (renamed, removed): sent by none
    orphaned: dict[str, int] = field(default_factory=dict)

    @property
    def acted(self) -> bool:
        """Whether the pass sent, failed or disabled anything."""
        return bool(self.sent or self.retrying or self.dead or self.disabled)

    def line(self) -> str:
        text = f"delivery: {self.sent} sent, {self.retrying} waiting to retry, {self.dead} dead"
        if self.disabled:
            text += f"; notifiers disabled: {', '.join(self.disabled)}"
        return text


def orphan_notes(orphaned: Mapping[str, int]) -> list[str]:
    """What to say of rows that wait for a notifier no longer configured, and the fix."""
    return [f"{counted(n, 'notification')} {'waits' if n == 1 else 'wait'} for notifier "
            f"{name}, which is no longer configured (`harvester outbox move {name} NEW` sends "
            f"{'it' if n == 1 else 'them'} through another, `harvester outbox drop {name}` "
            f"drops {'it' if n == 1 else 'them'})"
            for name, n in sorted(orphaned.items())]


def make_channel(cfg: NotifierConfig, config: Config) -> Channel:
    if cfg.kind is NotifierKind.EMAIL:
        from .email import EmailChannel

        return EmailChannel(cfg, config.delivery.timeout)
    if cfg.kind is NotifierKind.WEBHOOK:
        from .webhook import WebhookChannel

        # a webhook goes out through the proxy the sources use
        return WebhookChannel(cfg, config.delivery.timeout,
                              config.http.proxy_routes(os.environ))
    if cfg.kind is NotifierKind.COMMAND:
        from .command import CommandChannel

        return CommandChannel(cfg, config.delivery.timeout)
    from .console import ConsoleChannel

    return ConsoleChannel()


def backoff(attempt: int, delivery: DeliveryConfig, retry_after: float | None,
            rand: Callable[[], float]) -> float:
    """Seconds until attempt `attempt + 1`: exponential, capped, with ±20 % jitter so a
    fleet of rows does not retry in lockstep; never sooner than the server asked."""
    # past 2**64 the cap has long been reached; 2**1025 would overflow a float
    base = min(delivery.backoff_max, delivery.backoff * 2 ** min(max(0, attempt - 1), 64))
    delay = base * (0.8 + 0.4 * rand())
    return max(delay, min(retry_after or 0.0, delivery.backoff_max))


def sooner(notifiers: Sequence[NotifierConfig], held: Iterable[tuple[str, str, str]]
           ) -> list[tuple[str, str, str, str]]:
    """(notifier, created_at, due, new due) for the held news that a notifier's schedule
    as configured now sends sooner than the time it was held for: its `at` taken out
    (due when queued) or changed (the first such time after it was queued). A time once
    promised is never put off: a schedule made later leaves what waits as it was."""
    schedules = {n.name: n.at for n in notifiers}
    out = []
    for name, created, due in held:
        if name not in schedules:  # a notifier no longer configured: its rows wait as they are
            continue
        at = schedules[name]
        try:
            queued, promised = datetime.fromisoformat(created), datetime.fromisoformat(due)
        except ValueError:  # a row written by hand: it waits as it is, and blocks no pass
            continue
        sooner_at = at.next_at(queued) if at is not None else queued
        if sooner_at < promised:
            out.append((name, created, due, iso_utc(sooner_at)))
    return out


def deliver(config: Config, store: SqliteStore, now: datetime, *,
            channels: Mapping[str, Channel] | None = None,
            rand: Callable[[], float] = random.random) -> DeliveryReport:
    """One delivery pass over the due outbox rows (held news first brought forward to
    the notifiers' schedules as configured now: `sooner`)."""
    report = DeliveryReport()
    store.bring_forward(sooner(config.notifiers, store.held(now)))
    rows = store.claim_due(now, per_row=config.delivery.timeout)
    settled: set[str] = set()
    try:
        versions = store.versions_of([r["item_id"] for r in rows
                                      if r["event"] == "item.changed"])
        _deliver(config, store, now, rows, versions, channels, rand, report, settled)
    finally:
        store.release([r["id"] for r in rows if r["id"] not in settled])
    report.orphaned = orphaned(config, store)
    return report


def orphaned(config: Config, store: SqliteStore) -> dict[str, int]:
    """How many rows wait for each notifier the config no longer names (renamed, removed):
    rows no pass will send."""
    configured = {n.name for n in config.notifiers}
    return {name: n for name, n in store.pending_by_notifier().items() if name not in configured}


def _deliver(config: Config, store: SqliteStore, now: datetime, rows: list[dict],
             versions: Mapping[str, list[dict]], channels: Mapping[str, Channel] | None,
             rand: Callable[[], float], report: DeliveryReport, settled: set[str]) -> None:
    notifiers = {n.name: n for n in config.notifiers}
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["notifier"] in notifiers:  # a notifier removed from the config keeps its rows
            groups.setdefault(row["notifier"], []).append(row)
    for name, group in groups.items():
        cfg = notifiers[name]
        channel = (channels or {}).get(name) or make_channel(cfg, config)
        attempts = {r["id"]: r["attempts"] for r in group}
        messages = [message_from_row(r, versions.get(r["item_id"], ()),
                                     config.zone_of(r["source"] or ""))
                    for r in group]
        limit = int(cfg.option("max_per_run", DEFAULT_MAX_PER_RUN))
        # flood guard: past the limit, one digest — each row still accounted for itself
        # a notifier with an `at` time sends what waited for it as one digest, by default
        digest = bool(cfg.option("digest", cfg.at is not None)) or len(messages) > limit
        batches = [messages] if digest else [[m] for m in messages]
        for i, batch in enumerate(batches):
            outcome = channel.send(batch, digest=digest)
            _settle(store, config.delivery, name, batch, outcome, attempts, now, rand, report)
            settled.update(m.id for m in batch)
            if outcome.kind in (OutcomeKind.RETRY, OutcomeKind.GONE):
                # Down, overloaded, asking for a pause, or gone: one failed attempt a pass
                # says so. The other rows wait, untried, for the next pass, rather than each
                # waiting out the same timeout (ten messages to a hung server: ten timeouts).
                held = sum(len(b) for b in batches[i + 1:])
                if held:
                    report.retrying += held
                    report.errors[-1] += (f" ({counted(held, 'more message')} held for the "
                                          "next pass)")
                break


def _settle(store: SqliteStore, delivery: DeliveryConfig, name: str, batch: Sequence[Message],
            outcome: Outcome, attempts: Mapping[str, int], now: datetime,
            rand: Callable[[], float], report: DeliveryReport) -> None:
    ids = [m.id for m in batch]
    if outcome.kind is OutcomeKind.SENT:
        store.mark_sent(ids, now, outcome.response)
        report.sent += len(ids)
        if outcome.detail:  # sent, with something to say (a recipient refused)
            report.errors.append(f"{name}: {outcome.detail}")
        return
    report.errors.append(f"{name}: {outcome.detail}")
    if outcome.kind is OutcomeKind.GONE:
        store.disable_notifier(name, outcome.detail, now)
        log.error("notifier %s disabled: %s", name, outcome.detail)
        report.disabled.append(name)
        store.mark_failed(ids, outcome.detail, retry_at=now, response=outcome.response)
        report.retrying += len(ids)
        return
    if outcome.kind is OutcomeKind.DEAD:
        store.mark_failed(ids, outcome.detail, retry_at=None, response=outcome.response)
        report.dead += len(ids)
        return
    # Each row has its own max_attempts: news a digest carried beside a row on its last
    # attempt is not dead with it. The rows that live on are retried together, on the
    # schedule of the freshest of them, so the digest stays one.
    tried = {i: attempts.get(i, 0) + 1 for i in ids}
    dead = [i for i in ids if tried[i] >= delivery.max_attempts]
    if dead:
        store.mark_failed(dead, outcome.detail, retry_at=None, response=outcome.response)
        report.dead += len(dead)
    alive = [i for i in ids if tried[i] < delivery.max_attempts]
    if alive:
        wait = backoff(min(tried[i] for i in alive), delivery, outcome.retry_after, rand)
        store.mark_failed(alive, outcome.detail, retry_at=now + timedelta(seconds=wait),
                          response=outcome.response)
        report.retrying += len(alive)


__all__ = ["DeliveryReport", "backoff", "deliver", "make_channel", "orphan_notes", "orphaned"]
