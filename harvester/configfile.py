"""Changes to the config's own text: `[[sources]]` tables appended (`add`), taken out
(`remove`), switched off and on (`disable`, `enable`). What the user wrote around them
stays byte for byte; each file is swapped whole, and put back as it was when the config,
read again, does not say what was meant.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import DIRECTION_CONTROLS, ConfigError

_HEADER = re.compile(r"\s*\[")  # any table header: [x], [[x]], [ x . y ]
_SOURCES = re.compile(r"\s*\[\[\s*sources\s*\]\]")
_SUBTABLE = re.compile(r"\s*\[\s*sources\s*\.")  # [sources.select] belongs to the table above
_QUIET = re.compile(r"\s*(#.*)?\n?")  # a blank or comment-only line
_ENABLED = re.compile(r"\s*enabled\s*=")
_NAME = re.compile(r"\s*name\s*=")


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}
# (C1 controls and the direction controls that turn what follows them are legal TOML, but
# an editor or a terminal obeys them: escaped, they are seen and read back the same)
_TOML_UNSAFE = re.compile(rf'["\\\x00-\x1f\x7f-\x9f{DIRECTION_CONTROLS}\ud800-\udfff]')


def _toml_escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _TOML_ESCAPES:
        return _TOML_ESCAPES[ch]
    # a lone surrogate (from undecodable bytes) is no character a TOML file can hold
    return "\ufffd" if "\ud800" <= ch <= "\udfff" else f"\\u{ord(ch):04X}"


def toml_string(value: str) -> str:
    """`value` as a TOML basic string that reads back as it is: quotes, backslashes,
    control and direction characters escaped, every other character as itself — JSON's
    escapes are not TOML's (an emoji becomes two surrogate escapes, which TOML refuses)."""
    return '"' + _TOML_UNSAFE.sub(_toml_escape, value) + '"'


def appended(old: str, blocks: str) -> str:
    """A TOML file's text with `blocks` after it, a blank line between, in the line endings
    the file has (a file written on Windows keeps CRLF)."""
    nl = "\r\n" if "\r\n" in old else "\n"
    if old and not old.endswith("\n"):
        old += nl
    return old + (nl if old.strip() else "") + blocks.replace("\n", nl)


def _tables(lines: list[str], shown: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Each `[[sources]]` table of a file's lines: (its header's index, the index of the
    next table's header, what it holds). Its sub-tables ([sources.select]) are its own."""
    for start, line in enumerate(lines):
        if not _SOURCES.match(line):
            continue
        end = next((i for i in range(start + 1, len(lines))
                    if _HEADER.match(lines[i]) and not _SUBTABLE.match(lines[i])), len(lines))
        try:
            [table] = tomllib.loads("".join(lines[start:end]))["sources"]
        except (tomllib.TOMLDecodeError, ValueError):
            # a header-like line inside a multi-line string: where the table ends is unsure
            raise ConfigError("cannot tell where a [[sources]] table ends (line "
                              f"{start + 1}): edit the file by hand", file=shown) from None
        yield start, end, table


def without_sources(text: str, names: set[str], shown: str) -> str:
    """`text` without the `[[sources]]` tables named in `names`, each with the comment lines
    just above its header (a blank line before them) and the blank lines after it; a
    comment after a blank line at its end is the next table's, and stays."""
    lines = text.splitlines(keepends=True)
    spans = []
    for start, end, table in _tables(lines, shown):
        if table.get("name") not in names:
            continue
        while end > start + 1 and _QUIET.fullmatch(lines[end - 1]):
            end -= 1  # trailing comments and blank lines, then the table's own again:
        while end < len(lines) and _QUIET.fullmatch(lines[end]) and lines[end].strip():
            end += 1  # comments right after its last line (no blank line) are its own
        while end < len(lines) and not lines[end].strip():
            end += 1
        first = start
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        if first > 0 and lines[first - 1].strip():
            first = start  # those comments end something above, not introduce this table
        if end == len(lines) and first > 0 and not lines[first - 1].strip():
            first -= 1  # the last table: the blank line that set it apart goes with it
        spans.append((first, end))
    drop = {i for first, end in spans for i in range(first, end)}
    kept = [line for i, line in enumerate(lines) if i not in drop]
    if len(lines) - 1 in drop:  # the file's last tables went: no blank lines left at its end
        while kept and not kept[-1].strip():
            kept.pop()
    return "".join(kept)


def with_enabled(text: str, names: set[str], enabled: bool, shown: str, note: str = "") -> str:
    """`text` with the `[[sources]]` tables named in `names` switched off (an `enabled =
    false` line, `# note` beside it, after the table's `name` line, or in place of the
    `enabled` line it has) or on again (that line taken out: on is the default). Every other
    line stays byte for byte, so switching a source off and on gives the text back."""
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    edits: dict[int, str | None] = {}  # line index → its new text (None: dropped)
    after: dict[int, str] = {}  # line index → a line to insert after it
    for start, end, table in _tables(lines, shown):
        if table.get("name") not in names:
            continue
        own = next((i for i in range(start + 1, end) if _SUBTABLE.match(lines[i])), end)
        at = next((i for i in range(start + 1, own) if _ENABLED.match(lines[i])), None)
        if enabled:
            if at is not None:
                edits[at] = None
            continue
        said = "enabled = false" + (f"  # {note}" if note else "")
        if at is not None:
            ending = lines[at][len(lines[at].rstrip("\r\n")):] or nl
            edits[at] = _indent(lines[at]) + said + ending
            continue
        named = next((i for i in range(start + 1, own) if _NAME.match(lines[i])), start)
        after[named] = (_indent(lines[named]) if named != start else "") + said + nl
    out: list[str] = []
    for i, line in enumerate(lines):
        new = edits.get(i, line)
        if new is not None:
            out.append(new)
        if i in after:
            if not line.endswith("\n"):
                out[-1] += nl  # the file's last line, without one
            out.append(after[i])
    return "".join(out)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def sources_in(path: Path, shown: str) -> set[str]:
    """The names of the `[[sources]]` tables one file of the config holds."""
    try:
        data = tomllib.loads(path.read_text("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=shown) from None
    tables = data.get("sources", [])
    return {t["name"] for t in tables if isinstance(t, dict) and isinstance(t.get("name"), str)}


def rewrite_verified(changes: Mapping[Path, Callable[[str], str]],
                     verify: Callable[[], object], *, not_toml: str,
                     shown: Mapping[Path, str] | None = None) -> None:
    """Apply each change to its file's text (a missing file reads as ""), then `verify()`
    — the config read again. A file is swapped whole (a reader never sees half of it) and,
    when `verify` raises, every file is put back as it was. OSError when one cannot be
    written; ConfigError, saying `not_toml`, when a new text would not be TOML (the file
    named as `shown` has it, else as given)."""
    plan = []
    for target, change in changes.items():
        name = (shown or {}).get(target, str(target))
        real = target.resolve()  # a symlinked config keeps its link; what it points to changes
        try:
            before: bytes | None = real.read_bytes()
        except FileNotFoundError:
            before = None
        # a byte-order mark (Windows editors write one) stays, outside what is changed
        bom = codecs.BOM_UTF8 if (before or b"").startswith(codecs.BOM_UTF8) else b""
        try:
            text = change((before or b"")[len(bom):].decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", file=name) from None
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:  # `sources = [...]` inline cannot take [[sources]]
            raise ConfigError(f"{not_toml}: {e}", file=name) from None
        mode = stat.S_IMODE(real.stat().st_mode) if before is not None else None
        plan.append((real, before, bom + text.encode("utf-8"), mode))
    done = []
    try:
        for real, before, after, mode in plan:
            _replace(real, after, mode)
            done.append((real, before, mode))
        verify()
    except BaseException:
        for real, before, mode in reversed(done):
            if before is None:
                real.unlink(missing_ok=True)
            else:
                _replace(real, before, mode)
        raise


def _replace(path: Path, data: bytes, mode: int | None) -> None:
    """Write `data` to a file beside `path`, then rename it over `path`: all or nothing.
    A config may hold secrets: the new file keeps the old one's permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = ["appended", "rewrite_verified", "sources_in", "without_sources"]
