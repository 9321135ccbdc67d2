"""CSV export: what a spreadsheet would take for a formula is kept as text."""

from __future__ import annotations

import csv
import io

import pytest

from harvester.export import COLUMNS, items_csv


@pytest.mark.parametrize(("title", "cell"), [
    ("=1+1", "'=1+1"), ("+49 30 1234", "'+49 30 1234"), ("-On 7 May", "'-On 7 May"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tTabbed", "'\tTabbed"), ("Germany joins ICMPD", "Germany joins ICMPD"),
    ("a = b", "a = b"),
])
def test_a_cell_a_spreadsheet_would_run_starts_with_a_quote(title, cell):
    row = dict.fromkeys(COLUMNS, "x") | {"title": title, "rules": ["r1", "r2"], "url": None}
    _, values = csv.reader(io.StringIO(items_csv([row]), newline=""))
    got = dict(zip(COLUMNS, values, strict=True))
    assert (got["title"], got["rules"], got["url"]) == (cell, "r1; r2", "")
