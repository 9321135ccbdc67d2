"""The configured rules, applied again to what is stored.

Rules tag an item when it is stored or edited. After a rule is added or changed, the
history still carries the old tags: `items --rule new-rule` would show only what
arrives from now on. A retag judges every stored item again. It never notifies:
an item is news once, when it appears, not when a rule is written for it.
`plan_retag` decides (pure); `retag_store` runs it over a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def plan_retag(stored: Iterable[tuple[str, Item, Sequence[str]]],
               rules: Sequence[RuleConfig]) -> list[Retag]:
    """The items whose rules differ from what the configured rules say now."""
    out = []
    for item_id, item, before in stored:
        after = classify(item, rules)
        if tuple(before) != after:
            out.append(Retag(item_id, item.content_hash, item.source, item.title,
                             item.published, tuple(before), after))
    return out


def rule_counts(retags: Sequence[Retag]) -> dict[str, tuple[int, int]]:
    """(gained, lost) for each rule a retag touches, in the order first met."""
    counts: dict[str, list[int]] = {}
    for r in retags:
        for name in r.gained:
            counts.setdefault(name, [0, 0])[0] += 1
        for name in r.lost:
            counts.setdefault(name, [0, 0])[1] += 1
    return {name: (g, lost) for name, (g, lost) in counts.items()}


def retag_store(store: SqliteStore, rules: Sequence[RuleConfig], *, write: bool = True,
                ) -> tuple[list[Retag], int]:
    """Judge every stored item by `rules`; write the changes unless `write` is false.
    Returns the changes, newest first, and how many items were judged."""
    judged = 0

    def counted() -> Iterable[tuple[str, Item, Sequence[str]]]:
        nonlocal judged
        for row in store.tagged_items():
            judged += 1
            yield row

    retags = sorted(plan_retag(counted(), rules), key=lambda r: r.published, reverse=True)
    if write and retags:
        store.retag([(r.item_id, r.content_hash, r.after) for r in retags])
    return retags, judged


__all__ = ["Retag", "plan_retag", "retag_store", "rule_counts"]
