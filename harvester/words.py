"""Counts: in messages people read (summary lines, subjects, warnings), and as servers and
configs write them."""

from __future__ import annotations


def is_count(text: str) -> bool:
    """Whether `text` is a count as a header, a port or a config writes one: ASCII digits
    only — str.isdigit() also says yes to "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 item', '2 items', '0 items': a count with its noun in the number it takes."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def size(n: int) -> str:
    """'512 B', '2.0 KB': a body's size as a summary line shows it."""
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def duration(seconds: float) -> str:
    """'90d', '2h', '15m', '90s': an interval in the config's own spelling."""
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{int(seconds // length)}{unit}"
    return f"{seconds:g}s"


__all__ = ["counted", "duration", "is_count", "size"]
