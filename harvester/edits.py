"""What an edit changed: the fields that differ between two versions of an item, each with
a line diff people can read. `show`, the demo and item.changed notifications all say it
this way. Pure functions of stored rows."""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .text import html_to_text

# the fields an edit is told by, in the order they are said
VERSIONED = ("title", "category", "url", "published", "summary", "content")
_WIDTH = 90


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an edit: its old and new value (the content's as text: a diff of markup
    buries the words) and the lines that differ, "-old" and "+new" (and " … N more lines"
    when cut short)."""

    field: str
    before: str
    after: str
    diff: tuple[str, ...]

    @property
    def label(self) -> str:
        """'summary', or 'content (markup only)' when only the content's tags changed."""
        return self.field if self.diff else f"{self.field} (markup only)"


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any],
                  fields: Sequence[str] = VERSIONED,
                  max_lines: int | None = None) -> tuple[FieldChange, ...]:
    """Each of `fields` that differs between two versions of an item; past `max_lines`
    a field's diff ends in a line saying how many more there were (a rewritten article
    would otherwise fill a message twice over)."""
    out = []
    for field in fields:
        old, new = before.get(field) or "", after.get(field) or ""
        if old == new:
            continue
        if field == "content":
            old, new = html_to_text(old), html_to_text(new)
        diff = tuple(d for d in difflib.unified_diff(textwrap.wrap(old, _WIDTH),
                                                     textwrap.wrap(new, _WIDTH),
                                                     lineterm="", n=0)
                     if not d.startswith(("---", "+++", "@@")))
        if max_lines is not None and len(diff) > max_lines:
            diff = (*diff[:max_lines], f" … {len(diff) - max_lines} more lines")
        out.append(FieldChange(field, old, new, diff))
    return tuple(out)


def edit_of(current: Mapping[str, Any], versions: Sequence[Mapping[str, Any]],
            content_hash: str) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(before, after) of the edit that made an item's content hash `content_hash`: the
    newest version with that hash and the one before it. `versions` are the item's earlier
    versions, oldest first, each replaced by the next. None when the history has no such
    edit (the hash was only re-computed, or the rows are gone)."""
    states = [*versions, current]
    for i in range(len(states) - 1, 0, -1):
        if states[i].get("content_hash") == content_hash:
            return states[i - 1], states[i]
    return None


__all__ = ["VERSIONED", "FieldChange", "edit_of", "field_changes"]
