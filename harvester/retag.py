"""The configured rules, applied again to what is stored.

Rules tag an item when it is stored or edited. After a rule is added or changed, the
history still carries the old tags: `items --rule new-rule` would show only what
arrives from now on. A retag judges every stored item again. It never notifies:
an item is news once, when it appears, not when a rule is written for it.
`judge` decides (pure); `retag_store` runs it over a store a batch at a time, so a
million items, all changing, take the memory of one batch.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import RuleConfig
from .models import Item
from .rules import classify

if TYPE_CHECKING:
    from .store import SqliteStore


@dataclass(frozen=True, slots=True)
class Retag:
    """One item whose rules change: what it was tagged with, what it is tagged with now."""

    item_id: str
    content_hash: str  # what it was judged on: an item edited since is left to its poll
    source: str
    title: str
    published: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def gained(self) -> tuple[str, ...]:
        return tuple(r for r in self.after if r not in self.before)

    @property
    def lost(self) -> tuple[str, ...]:
        return tuple(r for r in self.before if r not in self.after)


def judge(item_id: str, item: Item, before: Sequence[str],
          rules: Sequence[RuleConfig]) -> Retag | None:
    """The change the rules make to one stored item's tags, or None."""
    after = classify(item, rules)
    if tuple(before) == after:
        return None
    return Retag(item_id, item.content_hash, item.source, item.title, item.published,
                 tuple(before), after)


@dataclass
class RetagReport:
    """What a retag found and did: counts, and the newest few changes by name."""

    judged: int = 0
    changed: int = 0
    written: int = 0  # fewer than changed when polls edited items meanwhile
    counts: dict[str, list[int]] = field(default_factory=dict)  # rule → [gained, lost]
    newest: list[Retag] = field(default_factory=list)  # newest first

    def add(self, r: Retag) -> None:
        self.changed += 1
        for name in r.gained:
            self.counts.setdefault(name, [0, 0])[0] += 1
        for name in r.lost:
            self.counts.setdefault(name, [0, 0])[1] += 1


def retag_store(store: SqliteStore, rules: Sequence[RuleConfig], *, write: bool = True,
                shown: int = 20, batch: int = 2000) -> RetagReport:
    """Judge every stored item by `rules`, writing each batch's changes unless `write` is
    false. Keeps the `shown` newest changes for a person to read."""
    report = RetagReport()
    newest: list[tuple[str, int, Retag]] = []  # a min-heap on published
    seq = itertools.count()
    pending: list[tuple[str, str, tuple[str, ...]]] = []
    for item_id, item, before in store.tagged_items(batch):
        report.judged += 1
        r = judge(item_id, item, before, rules)
        if r is None:
            continue
        report.add(r)
        entry = (r.published, -next(seq), r)  # the first met wins a tie
        if len(newest) < shown:
            heapq.heappush(newest, entry)
        elif entry > newest[0]:
            heapq.heapreplace(newest, entry)
        if write:
            pending.append((r.item_id, r.content_hash, r.after))
            if len(pending) >= batch:
                report.written += store.retag(pending)
                pending = []
    if write and pending:
        report.written += store.retag(pending)
    report.newest = [r for _, _, r in sorted(newest, reverse=True)]
    return report


__all__ = ["Retag", "RetagReport", "judge", "retag_store"]
