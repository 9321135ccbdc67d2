"""How an item's edits read: which fields changed, and the words that did."""

from __future__ import annotations

import pytest

from harvester.cli_format import field_changes

BEFORE = {"title": "Kick-off in Vienna", "category": "Project News", "url": "https://e.org/a",
          "published": "2020-05-13T10:31:28Z", "summary": "One two three.",
          "content": "<p>One <b>two</b> three.</p>"}


@pytest.mark.parametrize(("edit", "expected"), [
    ({}, []),
    ({"title": "Kick-off in Kyiv"},
     [("title", ["-Kick-off in Vienna", "+Kick-off in Kyiv"])]),
    ({"category": None}, [("category", ["-Project News"])]),
    # the same words in other markup: said, without a diff of tags
    ({"content": "<div>One <i>two</i> three.</div>"}, [("content (markup only)", [])]),
    ({"content": "<p>One two four.</p>", "summary": "One two four."},
     [("summary", ["-One two three.", "+One two four."]),
      ("content", ["-One two three.", "+One two four."])]),
])
def test_field_changes(edit, expected):
    assert list(field_changes(BEFORE, {**BEFORE, **edit})) == expected
