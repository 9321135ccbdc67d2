"""What an edit changed: which fields, the words that did, and which edit a notification
is about."""

from __future__ import annotations

import pytest

from harvester.edits import (
    FieldChange,
    added_text,
    adds_words,
    edit_of,
    field_changes,
    word_line,
)

BEFORE = {"title": "Kick-off in Vienna", "category": "Project News", "url": "https://e.org/a",
          "published": "2020-05-13T10:31:28Z", "summary": "One two three.",
          "content": "<p>One <b>two</b> three.</p>"}


@pytest.mark.parametrize(("edit", "expected"), [
    ({}, []),
    ({"title": "Kick-off in Kyiv"},
     [("title", "title", ("-Kick-off in Vienna", "+Kick-off in Kyiv"))]),
    ({"category": None}, [("category", "category", ("-Project News",))]),
    # the same words in other markup: said, without a diff of tags
    ({"content": "<div>One <i>two</i> three.</div>"}, [("content", "content (markup only)", ())]),
    # hyphenation marks put in for narrow screens: no word changed
    ({"content": "<p>One <b>t&shy;wo</b> th\u200bree.</p>"},
     [("content", "content (markup only)", ())]),
    ({"content": "<p>One two four.</p>", "summary": "One two four."},
     [("summary", "summary", ("-One two three.", "+One two four.")),
      ("content", "content", ("-One two three.", "+One two four."))]),
])
def test_field_changes(edit, expected):
    changes = field_changes(BEFORE, {**BEFORE, **edit})
    assert [(c.field, c.label, c.diff) for c in changes] == expected


TABLE = "<table><tr><td>Austria</td><td>Yes</td><td>No</td></tr></table>"


@pytest.mark.parametrize(("after", "words", "adds"), [
    # a cell that comes to say what the one beside it says: a word replaced, not taken out
    (TABLE.replace("No", "Yes"), ((("=", "Austria Yes"), ("-", "No"), ("+", "Yes")),), True),
    # a line put in beside its twin: words put in
    (TABLE.replace("</tr>", "</tr><tr><td>No</td></tr>"),
     ((("=", "Austria Yes No"), ("+", "No")),), True),
])
def test_a_paragraph_beside_its_twin_is_words_of_the_edit(after, words, adds):
    """A feed's summary that says its teaser twice is read once, but an edit is of every
    paragraph: a table's cells, a list's lines."""
    [change] = field_changes({"content": TABLE}, {"content": after}, ("content",))
    assert change.words == words and change.diff
    assert adds_words({"content": TABLE}, {"content": after}) is adds


def test_a_contents_change_carries_its_text_not_its_markup():
    [change] = field_changes(BEFORE, {**BEFORE, "content": "<p>One <b>two</b> four.</p>"})
    assert change == FieldChange("content", "One two three.", "One two four.",
                                 ("-One two three.", "+One two four."),
                                 ((("=", "One two"), ("-", "three."), ("+", "four.")),))


SMMIG = ("On 24 March 2022, the Ghana Immigration Service (GIS) and ICMPD signed an MoU for the "
         "implementation of the second phase of the SMMIG project, funded by the Denmark "
         "Ministry of Foreign Affairs.")


@pytest.mark.parametrize(("before", "after", "told"), [
    # the seeds' own edits (the listing's snapshots A → B, the feed's a → b): a word or two
    (SMMIG, SMMIG.replace("an MoU", "a Memorandum of Understanding"),
     ["… Immigration Service (GIS) and ICMPD signed [-an MoU-] {+a Memorandum of "
      "Understanding+} for the implementation of the second …"]),
    ("On 7 of May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes "
     "analysis and...", "On 7 May 2020 in Kyiv, ICMPD organized a kick-off meeting on "
     "business processes analysis and...", ["On 7 [-of-] May 2020 in Kyiv, ICMPD organized …"]),
    # changes far apart are told apart; near ones share their context
    ("a b c d e f g h i j k l m n o p q r s t", "x b c d e f g h i j k l m n o p q r s y",
     ["[-a-] {+x+} b c d e f g …", "… n o p q r s [-t-] {+y+}"]),
    ("a b c d e f g h i j", "a b X d e Y g h i j", ["a b [-c-] {+X+} d e [-f-] {+Y+} g h i j"]),
    # words only added, only taken out
    ("Germany joins ICMPD", "Germany officially joins ICMPD",
     ["Germany {+officially+} joins ICMPD"]),
    ("Germany officially joins ICMPD", "Germany joins ICMPD",
     ["Germany [-officially-] joins ICMPD"]),
    # every other word changed, each change a word apart: one hunk of confetti, so lines
    (" ".join(f"old{i} &" for i in range(10)), " ".join(f"new{i} &" for i in range(10)),
     ["-" + " ".join(f"old{i} &" for i in range(10)),
      "+" + " ".join(f"new{i} &" for i in range(10))]),
    # a rewrite is told line by line: a word diff of it would be confetti
    ("Kick-off in Vienna", "Project launched in Accra", ["-Kick-off in Vienna",
                                                          "+Project launched in Accra"]),
])
def test_a_small_edit_is_told_word_by_word(before, after, told):
    [change] = field_changes({"summary": before}, {"summary": after}, ("summary",))
    assert list(change.lines()) == told


def test_many_word_changes_are_cut_short_and_say_by_how_much():
    old = " ".join(f"w{i}" for i in range(400))
    new = " ".join(f"x{i}" if i % 40 == 0 else f"w{i}" for i in range(400))  # 10 changes
    [change] = field_changes({"summary": old}, {"summary": new}, ("summary",), max_lines=4)
    assert len(change.words) == 5
    assert change.lines()[-1] == "… 6 more changes"


def test_an_edit_of_a_page_crowded_with_one_word_is_told_line_by_line():
    """A word diff compares each word with every place it stands in the other text: a
    page that repeats a few words thousands of times (a table of figures, or one made to
    stall the harvester) would take seconds a message, and longer in the write that asks
    whether an edit put words in. Past EDIT_WORK such pairs, an edit is told line by line,
    and what it put in is counted, not aligned."""
    old = " ".join(["0"] * 10_000)
    new = old + " 1"
    [change] = field_changes({"summary": old}, {"summary": new}, ("summary",))
    assert change.words == () and change.diff == (  # the last of its 223 lines at 90
        "-" + " ".join(["0"] * 10), "+" + " ".join(["0"] * 10 + ["1"]))
    assert adds_words({"summary": old}, {"summary": new})
    assert not adds_words({"summary": new}, {"summary": old})
    assert added_text({"summary": old}, {"summary": new}) == "1"  # counted, not aligned
    # a page of ordinary words is told word by word, however long
    text = SMMIG * 200
    [change] = field_changes({"summary": text}, {"summary": text + " Ghana"}, ("summary",))
    assert [word_line(h) for h in change.words] == [
        "… the Denmark Ministry of Foreign Affairs. {+Ghana+}"]


def _v(version: int, content_hash: str) -> dict:
    return {"version": version, "content_hash": content_hash}


@pytest.mark.parametrize(("versions", "current", "wanted", "expected"), [
    ([_v(1, "A")], _v(2, "B"), "B", (1, 2)),
    # edited again before the first edit's message went: each message keeps its own edit
    ([_v(1, "A"), _v(2, "B")], _v(3, "C"), "B", (1, 2)),
    ([_v(1, "A"), _v(2, "B")], _v(3, "C"), "C", (2, 3)),
    # back and forth: the newest edit to that content
    ([_v(1, "A"), _v(2, "B")], _v(3, "A"), "A", (2, 3)),
    # a hash that no edit made (re-computed after a hash version change): nothing to say
    ([_v(1, "A")], _v(2, "B"), "Z", None),
    ([], _v(1, "A"), "A", None),
    # an edit named by where it came from as well: the first of two edits to B is its own,
    # even after an edit undone brought the item back to B
    ([_v(1, "A"), _v(2, "B"), _v(3, "C")], _v(4, "B"), "A>B", (1, 2)),
    ([_v(1, "A"), _v(2, "B"), _v(3, "C")], _v(4, "B"), "C>B", (3, 4)),
    # its first state's row pruned (keep_versions): the newest edit to B is said
    ([_v(2, "B"), _v(3, "C")], _v(4, "B"), "A>B", (3, 4)),
])
def test_edit_of_finds_the_edit_a_notification_is_about(versions, current, wanted, expected):
    found = edit_of(current, versions, wanted)
    assert (None if found is None else (found[0]["version"], found[1]["version"])) == expected


def test_a_long_diff_is_cut_short_and_says_by_how_much():
    old = " ".join(f"word{i}" for i in range(300))  # ~2,000 characters: 24 lines at 90
    new = " ".join(f"other{i}" for i in range(300))
    [full] = field_changes({"summary": old}, {"summary": new}, ("summary",))
    [cut] = field_changes({"summary": old}, {"summary": new}, ("summary",), max_lines=10)
    assert len(full.diff) > 40
    assert cut.diff == (*full.diff[:10], f" … {len(full.diff) - 10} more lines")
    assert (cut.before, cut.after) == (old, new)


@pytest.mark.parametrize(("edit", "adds"), [
    # a member state joins, a tender is posted: words put in
    ({"content": "<p>One two three. Four.</p>"}, True),
    ({"content": "<p>One two four.</p>"}, True),  # replaced: new words too
    ({"title": "Kick-off in Kyiv"}, True),
    ({"published": "2020-05-14T10:31:28Z"}, True),
    # a word already on the page elsewhere, put in once more, is put in all the same
    ({"content": "<p>One two two three.</p>"}, True),
    # a tender that closed, a line taken down: words taken out only
    ({"content": "<p>One three.</p>"}, False),
    ({"content": "<p>One two three.</p>", "summary": "One two"}, False),
    ({"category": None}, False),
    # the same words in other markup or spacing, or in another order: nothing put in
    ({"content": "<div>One <i>two</i>\n three.</div>"}, False),
    ({"content": "<p>three. One two</p>"}, False),
    ({}, False),
])
def test_an_edit_adds_words_when_any_field_gained_some(edit, adds):
    assert adds_words(BEFORE, {**BEFORE, **edit}) is adds


@pytest.mark.parametrize(("edit", "added"), [
    # the words put in, in reading order: a call posted, a word replaced
    ({"content": "<p>One two three.</p><p>Call for tenders: border equipment.</p>"},
     "Call for tenders: border equipment."),
    ({"summary": "One two four."}, "four."),
    ({"title": "Kick-off in Kyiv", "summary": "One two three, in Kyiv."},
     "Kyiv\nthree, in Kyiv."),
    # each run of words put in on a line of its own
    ({"title": "Project launched in Accra"}, "Project launched\nAccra"),
    # words taken out only, or moved markup: nothing put in
    ({"summary": "One three."}, ""),
    ({"content": "<div>One <i>two</i> three.</div>"}, ""),
])
def test_added_text_is_the_words_an_edit_put_in(edit, added):
    assert added_text(BEFORE, {**BEFORE, **edit}) == added
