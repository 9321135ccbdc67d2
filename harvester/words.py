"""Counts in messages people read: summary lines, subjects, warnings."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 item', '2 items', '0 items': a count with its noun in the number it takes."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


__all__ = ["counted"]
