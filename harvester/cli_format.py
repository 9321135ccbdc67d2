"""Words for people: how a change reads in the demo, on the console and in `show`."""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .models import Change, ChangeKind
from .store import SqliteStore
from .text import html_to_text
from .words import counted

# what `show` compares between an item's versions, in the order it says them
VERSIONED = ("title", "category", "url", "published", "summary", "content")


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any],
                  fields: Sequence[str] = VERSIONED) -> Iterator[tuple[str, list[str]]]:
    """Each field that differs, with its line diff (wrapped at 90 columns; the content's
    text, since its markup would bury the words)."""
    for field in fields:
        old, new = before.get(field) or "", after.get(field) or ""
        if old == new:
            continue
        if field == "content":
            old, new = html_to_text(old), html_to_text(new)
            if old == new:
                yield "content (markup only)", []
                continue
        yield field, [d for d in difflib.unified_diff(textwrap.wrap(old, 90),
                                                      textwrap.wrap(new, 90), lineterm="", n=0)
                      if not d.startswith(("---", "+++", "@@"))]


def describe_change(ch: Change, store: SqliteStore | None = None) -> str:
    it = ch.item
    rules = f"  rules: {', '.join(ch.rules)}" if ch.rules else "  rules: -"
    head = f"  {ch.kind.value.upper():7} {it.published}  {it.category or '-'} · {it.title}"
    lines = [head, f"          {it.url or '(no link)'}", "        " + rules]
    if ch.kind is ChangeKind.CHANGED and store is not None:
        versions = store.item_versions(ch.item_id)
        if versions:
            now = {"title": it.title, "summary": it.summary}
            for field, diff in field_changes(versions[-1], now, ("title", "summary")):
                lines.append(f"          {field} changed:")
                lines += [f"            {d}" for d in diff]
    return "\n".join(lines)


def describe_item(item: Mapping[str, Any], versions: Sequence[Mapping[str, Any]]) -> str:
    """One stored item in full, then each edit it went through, oldest first."""
    cat = f"{item['category']} · " if item["category"] else ""
    flag = f" ({item['date_flag']} date: first seen)" if item["date_flag"] else ""
    edits = f" (edited; {counted(len(versions), 'earlier version')} kept)" if versions else ""
    rows = [("id", item["id"]), ("url", item["url"] or "(no link)"),
            ("published", item["published"] + flag), ("sources", ", ".join(item["sources"])),
            ("rules", ", ".join(item["rules"]) or "-"), ("tags", ", ".join(item["tags"]) or "-"),
            ("first seen", item["first_seen"]), ("last seen", item["last_seen"]),
            ("version", f"{item['version']}{edits}")]
    lines = [f"{cat}{item['title']}", *(f"  {k:<11} {v}" for k, v in rows)]
    if item["summary"]:
        lines += ["", *textwrap.wrap(item["summary"], 88, initial_indent="  ",
                                     subsequent_indent="  ")]
    for old, new in zip(versions, [*versions[1:], item], strict=True):
        lines += ["", f"edited {old['recorded_at']} (version {old['version']} → "
                      f"{new['version']}):"]
        for field, diff in field_changes(old, new):
            lines.append(f"  {field} changed" + (":" if diff else ""))
            lines += [f"    {d}" for d in diff]
    return "\n".join(lines)
