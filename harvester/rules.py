"""Which rules an item matches: categories, a regex over chosen fields, an exclude regex."""

from __future__ import annotations

from collections.abc import Sequence

from .config import RuleConfig
from .models import Item
from .text import collapse


def _fold(s: str) -> str:
    return collapse(s).casefold()


def _field(item: Item, name: str) -> str:
    if name == "category":
        return " ".join(filter(None, (item.category, *item.tags)))
    value = getattr(item, name)
    return value or ""


def rule_matches(rule: RuleConfig, item: Item) -> bool:
    if rule.sources and item.source not in rule.sources:
        return False
    if rule.categories:
        have = {_fold(c) for c in (item.category, *item.tags) if c}
        if not have.intersection(_fold(c) for c in rule.categories):
            return False
    if rule.match is not None and not any(
        rule.match.search(_field(item, f)) for f in rule.fields
    ):
        return False
    return not (
        rule.exclude is not None and any(rule.exclude.search(_field(item, f)) for f in rule.fields)
    )


def classify(item: Item, rules: Sequence[RuleConfig]) -> tuple[str, ...]:
    """Names of the rules `item` matches, in config order."""
    return tuple(r.name for r in rules if rule_matches(r, item))


__all__ = ["classify", "rule_matches"]
