"""Words for people: how a change reads in the demo and in `show`, what `retag` did."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .dates import shown_when
from .edits import FieldChange, field_changes
from .models import Change, ChangeKind, PollReport
from .store import SqliteStore
from .words import counted

if TYPE_CHECKING:
    from .retag import RetagReport


def describe_change(ch: Change, store: SqliteStore | None = None, zone: str = "UTC") -> str:
    it = ch.item
    rules = f"  rules: {', '.join(ch.rules)}" if ch.rules else "  rules: -"
    when = shown_when(it.published, zone)
    head = f"  {ch.kind.value.upper():7} {when}  {it.category or '-'} · {it.title}"
    lines = [head, f"          {it.url or '(no link)'}", "        " + rules]
    if ch.kind is ChangeKind.CHANGED and store is not None:
        versions = store.item_versions(ch.item_id)
        if versions:
            now = {"title": it.title, "summary": it.summary, "content": it.content}
            for fc in field_changes(versions[-1], now, ("title", "summary", "content")):
                lines.append(f"          {fc.field} changed:")
                lines += [f"            {d}" for d in fc.lines()]
    return "\n".join(lines)


DRY_RUN_LINES = 40  # of a page's watched text, and of each field an edit changed (as messages)


def describe_dry_run(report: PollReport, zone: str, store: SqliteStore, page: bool = False
                     ) -> list[str]:
    """What a dry run would store: each new or changed item by its headline; an edit with
    what it would change (against what is stored); a watched page's first read (`page`)
    with the text it would watch — for tuning `content`, `remove` and `ignore` by trial."""
    from .text import html_paragraphs

    lines = []
    for ch in report.changes:
        if ch.kind is ChangeKind.UNCHANGED:
            continue
        it = ch.item
        rules = f" [{', '.join(ch.rules)}]" if ch.rules else ""
        cat = f"{it.category} · " if it.category else ""
        lines += [f"would store {ch.kind.value.upper():7} {shown_when(it.published, zone)[:10]} "
                  f"{cat}{it.title}{rules}", f"    {it.url or ''}"]
        if ch.kind is ChangeKind.CHANGED:
            stored = store.items(ref=ch.item_id)
            if stored:
                lines += edit_lines(field_changes(stored[0], it.versioned(),
                                                  max_lines=DRY_RUN_LINES), "    ")
        elif page:
            text = [w for para in html_paragraphs(it.content, repeats=True)
                    for w in textwrap.wrap(para, 90)]
            more = len(text) - DRY_RUN_LINES
            lines += ["    watched text:", *(f"      {t}" for t in text[:DRY_RUN_LINES]),
                      *([f"      … {counted(more, 'more line')}"] if more > 0 else [])]
    if report.queued:
        lines.append(f"would queue {counted(report.queued, 'notification')}")
    return lines


def describe_item(item: Mapping[str, Any], versions: Sequence[Mapping[str, Any]],
                  zone: str = "UTC") -> str:
    """One stored item in full, then each edit it went through, oldest first; its date as
    its source gave it (in `zone`), and as stored."""
    cat = f"{item['category']} · " if item["category"] else ""
    flag = f" ({item['date_flag']} date: first seen)" if item["date_flag"] else ""
    edits = f" (edited; {counted(len(versions), 'earlier version')} kept)" if versions else ""
    rows = [("id", item["id"]), ("url", item["url"] or "(no link)"),
            ("published", f"{shown_when(item['published'], zone)} ({item['published']})"
             + flag), ("sources", ", ".join(item["sources"])),
            ("rules", ", ".join(item["rules"]) or "-"), ("tags", ", ".join(item["tags"]) or "-"),
            ("first seen", item["first_seen"]), ("last seen", item["last_seen"]),
            ("version", f"{item['version']}{edits}")]
    lines = [f"{cat}{item['title']}", *(f"  {k:<11} {v}" for k, v in rows)]
    if item["summary"]:
        lines += ["", *textwrap.wrap(item["summary"], 88, initial_indent="  ",
                                     subsequent_indent="  ")]
    for old, new in itertools.pairwise([*versions, item]):  # each edit: from, to
        lines += ["", f"edited {old['recorded_at']} (version {old['version']} → "
                      f"{new['version']}):"]
        lines += edit_lines(field_changes(old, new), "  ")
    return "\n".join(lines)


def edit_lines(changes: Sequence[FieldChange], indent: str) -> list[str]:
    """An edit's fields as `show` and a dry run say them: each field's label, then its
    changes, word by word or line by line, indented a step further."""
    lines = []
    for ch in changes:
        lines.append(f"{indent}{ch.label} changed" + (":" if ch.diff else ""))
        lines += [f"{indent}  {d}" for d in ch.lines()]
    return lines


def describe_retag(report: RetagReport, configured: Sequence[str], dry_run: bool,
                   zone_of: Callable[[str], str] = lambda _: "UTC") -> list[str]:
    """`retag`'s lines: the newest changes by name (dated in their sources' zones), each
    rule's counts (configured rules in config order, then the ones no longer configured),
    and what was written."""
    lines = []
    for r in report.newest:
        marks = " ".join([*(f"+{n}" for n in r.gained), *(f"-{n}" for n in r.lost)])
        lines.append(f"{marks}  {shown_when(r.published, zone_of(r.source))[:10]}  "
                     f"{r.title}  ({r.source})")
    if report.changed > len(report.newest):
        lines.append(f"… and {report.changed - len(report.newest)} more")
    counts = report.counts
    for name in [*(n for n in configured if n in counts), *sorted(set(counts) - set(configured))]:
        gained, lost = counts[name]
        gone = "" if name in configured else " (no longer configured)"
        lines.append(f"rule {name}{gone}: gained by {counted(gained, 'item')}, "
                     f"lost by {counted(lost, 'item')}")
    judged = counted(report.judged, "item")
    if not report.changed:
        lines.append(f"all {counted(report.judged, 'stored item')} already carry the rules the "
                     "config gives them")
    elif dry_run:
        lines.append(f"would retag {report.changed} of {judged} (dry run: nothing written)")
    else:
        kept = report.changed - report.written
        lines.append(f"retagged {report.written} of {judged}; nothing is notified"
                     + (f" ({kept} edited meanwhile kept their poll's rules)" if kept else ""))
    return lines
