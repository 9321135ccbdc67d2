"""Words for people: how a change reads in the demo and on the console."""

from __future__ import annotations

import difflib
import textwrap

from .models import Change, ChangeKind
from .store import SqliteStore


def describe_change(ch: Change, store: SqliteStore | None = None) -> str:
    it = ch.item
    rules = f"  rules: {', '.join(ch.rules)}" if ch.rules else "  rules: -"
    head = f"  {ch.kind.value.upper():7} {it.published}  {it.category or '-'} · {it.title}"
    lines = [head, f"          {it.url or '(no link)'}", "        " + rules]
    if ch.kind is ChangeKind.CHANGED and store is not None:
        versions = store.item_versions(ch.item_id)
        if versions:
            old = versions[-1]
            for field in ("title", "summary"):
                before, after = old[field], getattr(it, field)
                if before != after:
                    lines.append(f"          {field} changed:")
                    for d in difflib.unified_diff(textwrap.wrap(before, 90),
                                                  textwrap.wrap(after, 90), lineterm="", n=0):
                        if not d.startswith(("---", "+++", "@@")):
                            lines.append(f"            {d}")
    return "\n".join(lines)
