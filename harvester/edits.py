"""What an edit changed: the fields that differ between two versions of an item, each with
a line diff people can read. `show`, the demo and item.changed notifications all say it
this way. Pure functions of stored rows."""

from __future__ import annotations

import difflib
import re
import textwrap
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .models import VERSIONED
from .text import html_to_text

_WIDTH = 90
CONTEXT_WORDS = 6  # unchanged words shown either side of a change
# past this share of a field's words changed, an edit is a rewrite: told line by line;
# so is one whose changes crowd together, more than this many runs in one hunk
REWRITE_SHARE = 0.5
DENSE_RUNS = 8
# A word diff weighs each word against every place it stands in the other text: past
# this many such pairs (a page repeating a few words thousands of times — a table of
# figures, or one made to stall the harvester: 10,000 words of two took 1.7 s), an edit
# is told line by line. This README's 13,000 words, edited, are 1.1 million.
EDIT_WORK = 5_000_000

# One run of changed words in its context: ("=", unchanged words), ("-", words taken out),
# ("+", words put in), in reading order; "…" marks where the context was cut.
Hunk = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an edit: its old and new value (the content's as text: a diff of markup
    buries the words) and the lines that differ, "-old" and "+new" (and " … N more lines"
    when cut short)."""

    field: str
    before: str
    after: str
    diff: tuple[str, ...]
    # the same edit word by word, each change in a few words of context — "signed [-an
    # MoU-] {+a Memorandum of Understanding+} for" — unless it rewrote the field
    words: tuple[Hunk, ...] = ()

    @property
    def label(self) -> str:
        """'summary', or 'content (markup only)' when only the content's tags changed."""
        return self.field if self.diff else f"{self.field} (markup only)"

    def lines(self) -> tuple[str, ...]:
        """The edit as plain-text lines: word by word when it changed a few words, else
        line by line."""
        return tuple(map(word_line, self.words)) if self.words else self.diff


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], fields: Sequence[str]
             ) -> Iterator[tuple[str, str, str]]:
    """(field, old, new) for each of `fields` that differs, the content as its text."""
    for field in fields:
        old, new = before.get(field) or "", after.get(field) or ""
        if old == new:
            continue
        if field == "content":
            # every paragraph, twins too: "Yes" put in beside a "Yes" (a table's cell, a
            # list's line) is words put in, and "No" → "Yes" beside one is no word taken out
            old, new = html_to_text(old, repeats=True), html_to_text(new, repeats=True)
        yield field, old, new


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any],
                  fields: Sequence[str] = VERSIONED,
                  max_lines: int | None = None) -> tuple[FieldChange, ...]:
    """Each of `fields` that differs between two versions of an item; past `max_lines`
    a field's diff ends in a line saying how many more there were (a rewritten article
    would otherwise fill a message twice over)."""
    out = []
    for field, old, new in _changed(before, after, fields):
        diff = tuple(d for d in difflib.unified_diff(textwrap.wrap(old, _WIDTH),
                                                     textwrap.wrap(new, _WIDTH),
                                                     lineterm="", n=0)
                     if not d.startswith(("---", "+++", "@@")))
        if max_lines is not None and len(diff) > max_lines:
            diff = (*diff[:max_lines], f" … {len(diff) - max_lines} more lines")
        words = word_hunks(old, new)
        if max_lines is not None and len(words) > max_lines:
            words = (*words[:max_lines], (("=", f"… {len(words) - max_lines} more changes"),))
        out.append(FieldChange(field, old, new, diff, words))
    return tuple(out)


def word_hunks(old: str, new: str) -> tuple[Hunk, ...]:
    """Where two texts differ, word by word, each change with CONTEXT_WORDS either side
    (changes closer than that share one hunk). None for a rewrite (more than
    REWRITE_SHARE of the words changed, or a hunk of more than DENSE_RUNS changes), where
    a word diff is confetti, nor for a change of spacing alone."""
    a, b = old.split(), new.split()
    if a == b or not a or not b or _pairs(a, b) > EDIT_WORK:
        return ()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    changed = sum(max(i2 - i1, j2 - j1)
                  for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")
    if changed > REWRITE_SHARE * max(len(a), len(b)):
        return ()
    hunks = []
    for group in matcher.get_grouped_opcodes(CONTEXT_WORDS):
        segments: list[tuple[str, str]] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                segments.append(("=", " ".join(a[i1:i2])))
                continue
            if i2 > i1:
                segments.append(("-", " ".join(a[i1:i2])))
            if j2 > j1:
                segments.append(("+", " ".join(b[j1:j2])))
        # "…" where the text goes on before or after the hunk
        if group[0][1] > 0:
            op, text = segments[0]
            segments[:1] = [("=", "… " + text)] if op == "=" else [("=", "…"), (op, text)]
        if group[-1][2] < len(a):
            op, text = segments[-1]
            segments[-1:] = [("=", text + " …")] if op == "=" else [(op, text), ("=", "…")]
        if sum(op == "-" or op == "+" for op, _ in segments) > 2 * DENSE_RUNS:
            return ()  # every other word: one hunk as long as the text, and unreadable
        hunks.append(tuple(segments))
    return tuple(hunks)


def _pairs(a: Sequence[str], b: Sequence[str]) -> int:
    """The pairs of equal words across two texts: what a word diff of them weighs."""
    counts = Counter(b)
    return sum(n * counts[w] for w, n in Counter(a).items())


def adds_words(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Did the edit from `before` to `after` put words in — any versioned field holding a
    word, or more of a word, than it did (the content read as text)? An edit that only
    takes words out (a closed call taken down), moves them or changes markup does not.
    Counted, not aligned: linear however the page repeats itself."""
    return any(_beyond(old.split(), new.split())
               for _, old, new in _changed(before, after, VERSIONED))


_HREF = re.compile(r'\bhref="([^"]*)"')


def reads_otherwise(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Did the edit from `before` to `after` change what a reader reads: a word of any
    versioned field (the content read as text), or where a link of the content leads (a
    tender's documents moved to v2.pdf)? One that only re-renders the markup — indented
    otherwise, a word put in bold, a non-breaking space for a space — does not."""
    return (any(old.split() != new.split() for _, old, new in _changed(before, after, VERSIONED))
            or _HREF.findall(before.get("content") or "") != _HREF.findall(
                after.get("content") or ""))


def _beyond(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The words of `b`, in order, past as many of each as `a` holds: what it put in,
    counted rather than aligned."""
    had, put = Counter(a), []
    for w in b:
        if had[w]:
            had[w] -= 1
        else:
            put.append(w)
    return put


def added_text(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The words an edit put in, in reading order, each run of them a line (so a phrase
    is only found where it was put in whole). Empty for an edit that only took words out
    or moved markup. A text too crowded to align (EDIT_WORK) gives the words it holds
    beyond what it held, one run."""
    runs = []
    for _, old, new in _changed(before, after, VERSIONED):
        a, b = old.split(), new.split()
        if _pairs(a, b) > EDIT_WORK:
            runs.append(_beyond(a, b))
            continue
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        runs += [b[j1:j2] for tag, _, _, j1, j2 in matcher.get_opcodes()
                 if tag in ("insert", "replace")]
    return "\n".join(" ".join(run) for run in runs if run)


def word_line(hunk: Hunk) -> str:
    """A hunk as plain text, as `git diff --word-diff` writes one."""
    marks = {"=": "{}", "-": "[-{}-]", "+": "{{+{}+}}"}
    return " ".join(marks[op].format(text) for op, text in hunk)


def edit_of(current: Mapping[str, Any], versions: Sequence[Mapping[str, Any]],
            ref: str) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(before, after) of the edit a notification's `ref` names (models.edit_ref: the
    content hash it left and the one it made; a row queued before that, the one it made):
    the newest such pair of versions, else the newest version with that hash and the one
    before it (the first state's row pruned). `versions` are the item's earlier versions,
    oldest first, each replaced by the next. None when the history has no such edit (the
    hash was only re-computed, or the rows are gone)."""
    before, _, after = ref.rpartition(">")
    states = [*versions, current]
    newest = None
    for i in range(len(states) - 1, 0, -1):
        if states[i].get("content_hash") == after:
            if not before or states[i - 1].get("content_hash") == before:
                return states[i - 1], states[i]
            newest = newest or (states[i - 1], states[i])
    return newest


__all__ = ["CONTEXT_WORDS", "DENSE_RUNS", "EDIT_WORK", "REWRITE_SHARE", "VERSIONED",
           "FieldChange", "Hunk", "added_text", "adds_words", "edit_of", "field_changes",
           "word_hunks", "word_line"]
