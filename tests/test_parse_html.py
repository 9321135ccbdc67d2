"""What parse/html.py makes of a page's words for a terminal (titles in `probe`, `init`
and the errors that name a page)."""

from __future__ import annotations

import pytest

from harvester.parse.html import one_line

TITLE = "Ukrainian border guards and customs officers optimise operations with support by the EU"


@pytest.mark.parametrize(("text", "limit", "shown"), [
    ("News\n  Centre\t| ICMPD\x1b[2J", 80, "News Centre | ICMPD[2J"),
    (TITLE, 200, TITLE),
    # cut between words, not inside one
    (TITLE, 40, "Ukrainian border guards and customs…"),
    (TITLE, 30, "Ukrainian border guards and…"),
    (TITLE, 24, "Ukrainian border guards…"),  # a cut that falls between words already
    # one word longer than the line has nowhere else to be cut
    ("x" * 50, 10, "xxxxxxxxx…"),
    ("Migration " + "y" * 50, 20, "Migration…"),
])
def test_one_line_is_one_printable_line_cut_between_words(text, limit, shown):
    assert one_line(text, limit) == shown
    assert len(one_line(text, limit)) <= limit
