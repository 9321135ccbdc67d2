"""The exception root: what any error says is printable text, whatever a server wrote."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.errors import FetchError, HarvesterError, printable

CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PIECES = st.sampled_from(["\x1b", "[", "]", "0;", "52;c;", "31m", "2J", "\x07", "\x9b", "\x9d",
                          "\x9c", "\\", "\r", "\n", "\t", "\u202e", "\u2066", "ok", " ", "é"])


@given(st.lists(PIECES | st.text(max_size=3)).map("".join))
def test_any_text_becomes_text_without_controls_and_stays_so(text):
    shown = printable(text)
    assert not CONTROLS.search(shown)
    assert printable(shown) == shown


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn")),
               max_size=40))
def test_printable_text_is_left_as_it_is(text):
    assert printable(text) == text


@pytest.mark.parametrize(("said", "shown"), [
    ("HTTP 500 \x1b]0;title\x07Boom", "HTTP 500 Boom"),
    ("HTTP 500 \x1b]52;c;cHduZWQ=\x1b\\Boom", "HTTP 500 Boom"),  # the clipboard, ST-ended
    ("\x1b[1;31mred\x1b[0m and \x9b2Jclear", "red and clear"),
    ("first line\r\nsecond\tcolumn", "first line second column"),
    ("fdp\u202e.exe", "fdp.exe"),
    ("\x1b]0;never ended", ""),  # a terminal would take the rest as the title too
])
def test_an_errors_message_is_its_text(said, shown):
    assert str(HarvesterError(said)) == shown
    e = FetchError(f"request failed: {said}", source="s", url="http://e.example/")
    assert (str(e), e.message, e.source) == (f"request failed: {shown}", e.args[0], "s")
