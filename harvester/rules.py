"""Which rules an item matches: categories, a regex over chosen fields, an exclude regex."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .config import RuleConfig
from .models import Item
from .text import collapse, composed


def _fold(s: str) -> str:
    return composed(collapse(s).casefold())


@lru_cache(maxsize=256)
def _folded(categories: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_fold(c) for c in categories)


def _field(item: Item, name: str) -> str:
    if name == "category":
        return " ".join(filter(None, (item.category, *item.tags)))
    value = getattr(item, name)
    return value or ""


def rule_matches(rule: RuleConfig, item: Item, have: frozenset[str] | None = None) -> bool:
    """Does `rule` match `item`? `have` is the item's folded categories, when known."""
    if rule.sources and item.source not in rule.sources:
        return False
    if rule.categories:
        if have is None:
            have = item_categories(item)
        if have.isdisjoint(_folded(rule.categories)):
            return False
    if rule.match is not None and not any(
        rule.match.search(_field(item, f)) for f in rule.fields
    ):
        return False
    return not (
        rule.exclude is not None and any(rule.exclude.search(_field(item, f)) for f in rule.fields)
    )


def item_categories(item: Item) -> frozenset[str]:
    return frozenset(_fold(c) for c in (item.category, *item.tags) if c)


def classify(item: Item, rules: Sequence[RuleConfig]) -> tuple[str, ...]:
    """Names of the rules `item` matches, in config order."""
    if not rules:
        return ()
    have = item_categories(item)
    return tuple(r.name for r in rules if rule_matches(r, item, have))


__all__ = ["classify", "item_categories", "rule_matches"]
