"""Edits of the config's own text (`add`, `remove`): what the user wrote around a table
stays as it was, and a file is only changed when the config still reads as meant."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.config import load_config
from harvester.configfile import appended, toml_string, with_enabled, without_sources
from harvester.devserver import Response
from harvester.errors import ConfigError

from .conftest import feed_bytes, run_cli

HEAD = """\
# the team's watch list
[storage]
path = "h.db"
"""

FEED_A = """\
[[sources]]
name = "a"
url = "https://a.example/rss"
"""

LISTING_B = """\
[[sources]]   # the news centre
name = "b"
kind = "html"
url = "https://b.example/news/"
  [sources.select]
  item = "css:div.news"
  title = "css:h3"
  link = "css:h3 a"
  [sources.pages]
  param = "page"
  max = 5
"""

RULES = """\
[[rules]]
name = "press-release"
categories = ["Press Release"]
"""


@pytest.mark.parametrize(("before", "names", "after"), [
    # a table with its sub-tables, between two others
    (HEAD + "\n" + FEED_A + "\n" + LISTING_B + "\n" + RULES, {"b"},
     HEAD + "\n" + FEED_A + "\n" + RULES),
    # the comments introducing it go with it; one after a blank line at its end is the next's
    (HEAD + "\n# A's feed\n" + FEED_A + "\n# the listing:\n" + LISTING_B, {"a"},
     HEAD + "\n# the listing:\n" + LISTING_B),
    # a commented-out key right after its last line is its own
    (HEAD + "\n" + FEED_A + '# every = "1h"\n\n' + RULES, {"a"}, HEAD + "\n" + RULES),
    # comments right below another table's last line end that table: they stay
    (HEAD + "# more storage later\n" + FEED_A, {"a"}, HEAD + "# more storage later\n"),
    # the last tables of a file: no blank lines left at its end
    (HEAD + "\n" + FEED_A + "\n" + LISTING_B, {"a", "b"}, HEAD),
    # a name no table has: the text as it was
    (HEAD + "\n" + FEED_A, {"z"}, HEAD + "\n" + FEED_A),
    # Windows line endings stay Windows line endings
    ((HEAD + "\n" + FEED_A + "\n" + RULES).replace("\n", "\r\n"), {"a"},
     (HEAD + "\n" + RULES).replace("\n", "\r\n")),
])
def test_without_sources_takes_out_just_those_tables(before, names, after):
    assert without_sources(before, names, "h.toml") == after
    kept = tomllib.loads(after).get("sources", [])
    assert [t["name"] for t in kept] == [t["name"] for t in tomllib.loads(before).get(
        "sources", []) if t["name"] not in names]


@pytest.mark.parametrize(("old", "new"), [
    ("", FEED_A),
    (HEAD, HEAD + "\n" + FEED_A),
    (HEAD.rstrip("\n"), HEAD + "\n" + FEED_A),  # no newline at its end: one is added
    (HEAD.replace("\n", "\r\n"), (HEAD + "\n" + FEED_A).replace("\n", "\r\n")),
])
def test_appended_tables_follow_the_text_after_a_blank_line(old, new):
    assert appended(old, FEED_A) == new


def test_a_header_inside_a_multiline_string_is_not_guessed_at():
    text = HEAD + '\n[[sources]]\nname = "a"\nurl = "https://a.example/"\nnote = """\n[x]\n"""\n'
    with pytest.raises(ConfigError) as e:
        without_sources(text, {"a"}, "h.toml")
    assert str(e.value) == ("h.toml: cannot tell where a [[sources]] table ends (line 5): edit "
                            "the file by hand")


# -- harvester remove --------------------------------------------------------------------


@pytest.fixture
def watched(server, tmp_path):
    """A config of two feeds and an included file of one, polled once."""
    for path in ("/a", "/b", "/c"):
        server.route(path, Response(feed_bytes("icmpd-2019-03.rss" if path == "/c" else
                                               "icmpd-2020-05-a.rss")))
    (tmp_path / "sources.d").mkdir()
    (tmp_path / "sources.d" / "more.toml").write_text(
        f'# kept\n\n[[sources]]\nname = "c"\nurl = "{server.url("/c")}"\n')
    cfg = tmp_path / "harvester.toml"
    cfg.write_text(f'include = ["sources.d/*.toml"]\n{HEAD}\n'
                   f'[[sources]]\nname = "a"\nurl = "{server.url("/a")}"\n\n'
                   f'# B, the same feed again\n[[sources]]\nname = "b"\nurl = "{server.url("/b")}"\n'
                   f'\n{RULES}')
    r = run_cli("once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return cfg


def test_remove_takes_sources_out_of_the_config_and_its_included_files(watched, tmp_path):
    r = run_cli("remove", "c", "b", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "removed b from harvester.toml; its stored items stay in the database (items --source"
        " b lists them, forget b deletes them)",
        "removed c from sources.d/more.toml; its stored items stay in the database (items "
        "--source c lists them, forget c deletes them)",
        "a running daemon stops polling them within seconds (it watches its config's files)"]
    [a] = load_config(watched).sources
    assert watched.read_text() == (f'include = ["sources.d/*.toml"]\n{HEAD}\n[[sources]]\n'
                                   f'name = "a"\nurl = "{a.url}"\n\n{RULES}')
    assert (tmp_path / "sources.d" / "more.toml").read_text() == "# kept\n"
    r = run_cli("items", "--source", "c", "--json", cwd=tmp_path)
    assert len(r.stdout.splitlines()) == 10  # the history is the user's to keep
    r = run_cli("once", cwd=tmp_path)
    assert r.stderr.startswith("a: ")
    assert "c: " not in r.stderr and "\nb: " not in r.stderr


def test_a_config_a_windows_editor_saved_with_a_byte_order_mark_reads_and_keeps_it(
        watched, tmp_path):
    """Notepad starts a UTF-8 file with a byte-order mark, which TOML parsers refuse as
    "invalid statement at line 1": the config reads, and an edit leaves the mark where
    it was, for the editor that wrote it."""
    bom = b"\xef\xbb\xbf"
    include = tmp_path / "sources.d" / "more.toml"
    for path in (watched, include):
        path.write_bytes(bom + path.read_bytes())
    r = run_cli("check", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith(f"{watched}: ok\n")
    assert [s.name for s in load_config(watched).sources] == ["a", "b", "c"]
    r = run_cli("remove", "b", "c", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert watched.read_bytes().startswith(bom + b'include = ["sources.d/*.toml"]\n')
    assert include.read_bytes() == bom + b"# kept\n"
    assert [s.name for s in load_config(watched).sources] == ["a"]


@pytest.mark.parametrize(("args", "setup", "message"), [
    (("a", "nope"), None, "no source named 'nope' in the config (`check` lists them)"),
    (("a",), "rule", "rule 'only-a' names 'a' in its sources: take it out of there first; "
     "nothing changed"),
    (("a",), "inline", "harvester.toml: the config read again was not the one without those "
     "sources (a table that does not end where it seems to?): edit it by hand; nothing "
     "changed"),
])
def test_remove_changes_nothing_when_it_cannot_do_just_that(watched, tmp_path, args, setup,
                                                            message):
    if setup == "rule":
        watched.write_text(watched.read_text() + '\n[[rules]]\nname = "only-a"\nsources = ["a"]\n')
    if setup == "inline":  # written as an inline array: no [[sources]] table to take out
        a, b = (json.dumps(s.url) for s in load_config(watched).sources[:2])
        watched.write_text(f'include = ["sources.d/*.toml"]\nsources = [{{name = "a", url = {a}}},'
                           f' {{name = "b", url = {b}}}]\n{HEAD}')
    before = watched.read_bytes(), (tmp_path / "sources.d" / "more.toml").read_bytes()
    r = run_cli("remove", *args, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"harvester: error: {message}\n"
    assert (watched.read_bytes(), (tmp_path / "sources.d" / "more.toml").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.db", "h.db.sources.lock",
                                                          "harvester.toml", "sources.d"]


BLOCKS = st.lists(st.tuples(st.sampled_from(["feed", "listing", "rule", "off"]),
                            st.sampled_from(["", "# about it\n", "# one\n# two\n"]),
                            st.sampled_from(["", "\n", "\n\n"]),
                            st.sampled_from(["", "# said after\n"])), max_size=6)


def _written(blocks) -> tuple[str, list[str]]:
    """A config text of these tables (an "off" one a feed that says `enabled = false`) and
    its sources' names."""
    text, names = HEAD, []
    for i, (kind, above, between, after) in enumerate(blocks):
        body = {"feed": FEED_A.replace('"a"', f'"s{i}"'),
                "off": FEED_A.replace('"a"', f'"s{i}"') + "enabled = false\n",
                "listing": LISTING_B.replace('"b"', f'"s{i}"'),
                "rule": RULES.replace('"press-release"', f'"r{i}"')}[kind]
        text += between + above + body + after
        if kind != "rule":
            names.append(f"s{i}")
    return text, names


@given(BLOCKS, st.sets(st.integers(0, 5)))
def test_without_sources_leaves_every_other_table_as_it_read(blocks, gone_at):
    """Whatever the comments and blank lines around them, what the TOML says changes only by
    the tables taken out."""
    text, names = _written(blocks)
    gone = {n for i, n in enumerate(names) if i in gone_at}
    before, after = tomllib.loads(text), tomllib.loads(without_sources(text, gone, "h.toml"))
    assert after.get("sources", []) == [t for t in before.get("sources", [])
                                        if t["name"] not in gone]
    assert {k: v for k, v in after.items() if k != "sources"} == {
        k: v for k, v in before.items() if k != "sources"}


# -- harvester disable / enable ----------------------------------------------------------

NOTE = "harvester disable, 2026-11-24"


@pytest.mark.parametrize(("before", "names", "enabled", "after"), [
    # after the name line, in its indentation; the other tables as they were
    (HEAD + "\n" + FEED_A + "\n" + LISTING_B, {"a"}, False,
     HEAD + '\n[[sources]]\nname = "a"\nenabled = false  # ' + NOTE + "\n"
     + FEED_A.split("\n", 2)[2] + "\n" + LISTING_B),
    # a listing's: before its sub-tables, whatever follows its name
    (HEAD + "\n" + LISTING_B, {"b"}, False,
     HEAD + "\n" + LISTING_B.replace('name = "b"\n', 'name = "b"\nenabled = false  # '
                                      + NOTE + "\n")),
    # an `enabled = true` of its own is the line that says so now
    (HEAD + "\n" + FEED_A + "  enabled=true\n", {"a"}, False,
     HEAD + "\n" + FEED_A + "  enabled = false  # " + NOTE + "\n"),
    # on again: the line goes, whoever wrote it
    (HEAD + "\n" + FEED_A + "enabled = false   # the site is down\n" + RULES, {"a"}, True,
     HEAD + "\n" + FEED_A + RULES),
    # a file's last line without its newline, and Windows line endings, stay so
    (HEAD + "\n" + '[[sources]]\nurl = "https://a.example/rss"\nname = "a"', {"a"}, False,
     HEAD + "\n" + '[[sources]]\nurl = "https://a.example/rss"\nname = "a"\n'
     + "enabled = false  # " + NOTE + "\n"),
    ((HEAD + "\n" + FEED_A).replace("\n", "\r\n"), {"a"}, False,
     (HEAD + '\n[[sources]]\nname = "a"\nenabled = false  # ' + NOTE + '\nurl = '
      '"https://a.example/rss"\n').replace("\n", "\r\n")),
])
def test_with_enabled_writes_one_line_and_leaves_the_rest(before, names, enabled, after):
    assert with_enabled(before, names, enabled, "h.toml", NOTE) == after
    assert {t["name"]: t.get("enabled", True) for t in tomllib.loads(after)["sources"]} == {
        t["name"]: (enabled if t["name"] in names else t.get("enabled", True))
        for t in tomllib.loads(before)["sources"]}


@given(BLOCKS, st.sets(st.integers(0, 5)))
def test_disabling_and_enabling_again_gives_the_text_back(blocks, chosen):
    """Whatever the file looks like around them, `disable` then `enable` of the sources that
    were on leaves it byte for byte as it was, and each step changes what the TOML says
    only by those sources' `enabled`."""
    text, names = _written(blocks)
    on = {t["name"] for t in tomllib.loads(text).get("sources", []) if t.get("enabled", True)}
    picked = {n for i, n in enumerate(names) if i in chosen} & on
    off = with_enabled(text, picked, False, "h.toml", NOTE)
    read = tomllib.loads(off).get("sources", [])
    assert [t.get("enabled", True) for t in read] == [
        t.get("enabled", True) and t["name"] not in picked
        for t in tomllib.loads(text).get("sources", [])]
    assert with_enabled(off, picked, True, "h.toml") == text


def test_disable_stops_polling_sources_and_enable_brings_them_back(watched, tmp_path):
    more = tmp_path / "sources.d" / "more.toml"
    before = watched.read_bytes(), more.read_bytes()
    r = run_cli("disable", "c", "b", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    # the day it was done, by the machine's clock (the harvester reads it at one place)
    today = re.search(r"# harvester disable, (\d{4}-\d\d-\d\d)\n", watched.read_text())[1]
    assert abs(date.fromisoformat(today) - datetime.now(UTC).date()) <= timedelta(days=1)
    assert r.stdout.splitlines() == [
        "disabled b in harvester.toml (its items and health stay; `harvester enable b` polls "
        "it again)",
        "disabled c in sources.d/more.toml (its items and health stay; `harvester enable c` "
        "polls it again)",
        "a running daemon stops polling them within seconds (it watches its config's files)"]
    assert f'name = "b"\nenabled = false  # harvester disable, {today}\nurl' in (
        watched.read_text())
    assert more.read_text().startswith(
        f'# kept\n\n[[sources]]\nname = "c"\nenabled = false  # harvester disable, {today}\n')
    r = run_cli("once", cwd=tmp_path)
    assert [line.split(":")[0] for line in r.stderr.splitlines()] == ["a"]
    r = run_cli("sources", cwd=tmp_path)
    b = r.stdout.split("\nb: ")[1].split("\nc: ")[0]
    assert b.startswith("disabled (enabled = false), ok, 7 items")
    assert "next due" not in b and "next due" in r.stdout.split("\nb: ")[0]
    r = run_cli("sources", "--json", cwd=tmp_path)
    assert [(s["name"], s["enabled"], s["next_due"] is None)
            for s in map(json.loads, r.stdout.splitlines())] == [
        ("a", True, False), ("b", False, True), ("c", False, True)]
    r = run_cli("disable", "b", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "b is disabled already\n")
    r = run_cli("enable", "b", "c", "a", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "a is enabled already", "enabled b in harvester.toml", "enabled c in sources.d/more.toml",
        "a running daemon polls them within seconds (it watches its config's files)"]
    assert (watched.read_bytes(), more.read_bytes()) == before
    r = run_cli("once", cwd=tmp_path)
    assert sorted(line.split(":")[0] for line in r.stderr.splitlines()) == ["a", "b", "c"]


@pytest.mark.parametrize(("command", "args", "setup", "message"), [
    ("disable", ("a", "nope"), None, "no source named 'nope' in the config (`check` lists them)"),
    ("disable", ("a",), "multiline", "harvester.toml: would not be TOML with that `enabled` "
     "line: Unterminated string (at end of document)"),
])
def test_disable_and_enable_change_nothing_when_they_cannot_do_just_that(
        watched, tmp_path, command, args, setup, message):
    if setup == "multiline":  # a line of a multi-line string that reads like the key
        watched.write_text(watched.read_text().replace(
            'name = "a"\n', 'name = "a"\nedits_match = """launched|\nenabled = kick-off"""\n', 1))
    before = watched.read_bytes(), (tmp_path / "sources.d" / "more.toml").read_bytes()
    r = run_cli(command, *args, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"harvester: error: {message}\n"
    assert (watched.read_bytes(), (tmp_path / "sources.d" / "more.toml").read_bytes()) == before


@given(st.text())
def test_a_toml_string_reads_back_as_the_text_it_was(text):
    """Whatever `add`, `init` and `opml import` write into a config — a URL with an emoji,
    a header value with a quote, a tab or a control character — reads back as it was (a
    lone surrogate, which no TOML file can hold, as U+FFFD)."""
    expected = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    assert tomllib.loads(f"k = {toml_string(text)}")["k"] == expected
