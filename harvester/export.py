"""Stored items as CSV, for a spreadsheet: one row an item, the feed's words kept inert."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

COLUMNS = ("published", "source", "category", "title", "url", "rules", "summary",
           "first_seen", "id")
# a cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# ("=HYPERLINK(…)" in a feed's title would run when the sheet is opened): OWASP's advice is
# to lead such a cell with a quote, which shows the text as written
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A header line, then a line an item (its rules joined with '; '), as RFC 4180 has
    it; each given as its row comes (a cell's quoted line breaks stay within its line)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        writer.writerow(cells)
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    yield line(COLUMNS)
    for row in rows:
        values = {**row, "rules": "; ".join(row["rules"])}
        yield line([_cell(values.get(c)) for c in COLUMNS])


def items_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The whole CSV (csv_lines) as one string."""
    return "".join(csv_lines(rows))


__all__ = ["COLUMNS", "csv_lines", "items_csv"]
