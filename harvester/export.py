"""Stored items as CSV, for a spreadsheet: one row an item, the feed's words kept inert."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
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


def items_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """A header line, then a row an item (its rules joined with '; '), as RFC 4180 has it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = {**row, "rules": "; ".join(row["rules"])}
        writer.writerow([_cell(values.get(c)) for c in COLUMNS])
    return out.getvalue()


__all__ = ["COLUMNS", "items_csv"]
