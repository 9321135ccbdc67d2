"""A watched page (kind = "page") end to end: a loopback server, a real SQLite file, the
CLI in a subprocess. The Kyiv article page of fixtures/pages/ (build_pages.py) is edited
between 13 and 27 May; between visits its counter, clock, token and asides move too."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harvester.config import load_config
from harvester.dates import shown_when
from harvester.devserver import FixtureServer, Response
from harvester.edits import field_changes
from harvester.harvest import poll_sources
from harvester.models import PollStatus
from harvester.notify.deliver import deliver
from harvester.store import SqliteStore
from harvester.web import _render

from .conftest import NOW, PAGES, http_fast, make_config, run_cli

TITLE = "Ukrainian border guards and customs officers optimise operations with support by the EU"
OPS = '\n[[notifiers]]\nname = "ops"\nkind = "console"\nevents = ["source.failing"]\n'
NEWS = '\n[[notifiers]]\nname = "news"\nkind = "console"\n'  # on = ["new"], the default


def page_source(url: str, select: str = "") -> str:
    return (f'[[sources]]\nname = "kyiv"\nkind = "page"\nurl = "{url}"\n'
            + (f"  [sources.select]\n{select}" if select else ""))


def show(server: FixtureServer, name: str) -> None:
    server.route("/kyiv", Response((PAGES / name).read_bytes(),
                                   content_type="text/html; charset=utf-8"))


def poll(config, store):
    [report] = poll_sources(config, store, clock=lambda: NOW)
    return report


def test_a_watched_page_is_one_item_of_its_text_without_the_sites_chrome(
        server, config_for, store):
    show(server, "kyiv-a.html")
    config = config_for(page_source(server.url("/kyiv")), notifiers=NEWS)
    r = poll(config, store)
    assert (r.status, r.baseline, r.new, r.queued) == (PollStatus.OK, True, 1, 0)
    [item] = store.items()
    assert item["title"] == f"{TITLE} - ICMPD"  # the page's <title>
    assert item["url"] == server.url("/kyiv")
    assert item["summary"] == TITLE  # its meta description
    assert item["published"] == "2020-05-28T08:00:00Z"  # a page has no date: first seen
    content = store.conn.execute("SELECT content FROM items").fetchone()[0]
    # the article, its own header included; not the site's header, menu, search form,
    # "most read" aside, footer clock or scripts
    assert content.startswith(f"<h1>{TITLE}</h1><p>13 May 2020</p>\n<p>On 7 of May 2020 in "
                              "Kyiv, ICMPD organized")
    assert "Read 1204 times" in content
    for chrome in ("About us", "Search", "Most read", "TRAFIG", "Page generated", "dataLayer",
                   "f3a9c1"):
        assert chrome not in content


def test_an_edit_of_the_page_is_its_news_and_what_moves_on_every_visit_is_not(
        server, tmp_path):
    """The counter inside the article is named in `remove`; the rest of what moves is
    the site's chrome. The edit goes to a notifier of news (on = ["new"]) as an update,
    told word by word."""
    show(server, "kyiv-a.html")
    cfg = str(make_config(tmp_path, http_fast() + page_source(
        server.url("/kyiv"), '  remove = [".page-views"]\n') + NEWS))
    r = run_cli("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr.startswith("kyiv: baseline: 1 item stored silently (HTTP 200, ")
    show(server, "kyiv-a-visited.html")
    r = run_cli("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr.startswith("kyiv: 0 new, 0 changed, 1 unchanged (HTTP 200, ")
    # a page's news is its edits: `sources` says when it was last edited, not "new item"
    baseline = _when(cfg, "SELECT baseline_at FROM sources", shown=False)
    assert (f"    last edit: none since the baseline, {baseline}"
            in run_cli("--config", cfg, "sources").stdout.splitlines())
    show(server, "kyiv-b.html")
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        f"== Updated: {TITLE} - ICMPD",
        f"   {_when(cfg, 'SELECT published FROM items')} · updated "
        f"{_when(cfg, 'SELECT created_at FROM outbox')} · kyiv",
        f"   {server.url('/kyiv')}",
        f"   {TITLE}",
        "   content changed:",
        "     … EU 13 May 2020 On 7 [-of-] May 2020 in Kyiv, ICMPD organized …",
    ]
    assert r.stderr.startswith("kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued")
    edited = _when(cfg, "SELECT updated_at FROM items", shown=False)
    assert f"    last edit: {edited}" in run_cli("--config", cfg, "sources").stdout.splitlines()
    [status] = [json.loads(line) for line in run_cli("--config", cfg, "sources", "--json")
                .stdout.splitlines()]
    assert (status["kind"], status["last_edit"], status["last_new_item"]) == (
        "page", edited, None)
    with SqliteStore(Path(cfg).parent / "h.db", read_only=True) as store:
        assert f"<td>kyiv</td><td>ok</td><td>1</td><td>edited {edited}</td>" in _render(store)


def _when(cfg: str, query: str, shown: bool = True) -> str:
    """A time stored (the item's date: when it was first seen; when its edit was queued),
    as messages give it (in Vienna's time) or as stored."""
    with sqlite3.connect(Path(cfg).parent / "h.db") as conn:
        [(at,)] = conn.execute(query).fetchall()
    return shown_when(at, "Europe/Vienna") if shown else at


def test_without_remove_a_counter_in_the_article_is_an_edit(server, config_for, store):
    show(server, "kyiv-a.html")
    config = config_for(page_source(server.url("/kyiv")), notifiers=NEWS)
    poll(config, store)
    show(server, "kyiv-a-visited.html")
    r = poll(config, store)
    assert (r.changed, r.queued) == (1, 1)
    [version] = store.item_versions(store.items()[0]["id"])
    assert "Read 1204 times" in version["content"]


def test_ignore_cuts_a_counters_words_so_a_visit_is_no_edit_and_an_edit_still_is(
        server, config_for, store):
    """`ignore` where `remove` has no element to name: the counter's words are cut, the
    block holding them stays."""
    show(server, "kyiv-a.html")
    config = config_for(page_source(server.url("/kyiv"), "  ignore = ['Read \\d+ times']\n"),
                        notifiers=NEWS)
    poll(config, store)
    [item] = store.items()
    content = store.conn.execute("SELECT content FROM items").fetchone()[0]
    assert "times" not in content and content.endswith("</a>.</p> <div></div>")  # sanitised
    show(server, "kyiv-a-visited.html")  # only the counter moved in the article
    r = poll(config, store)
    assert (r.changed, r.unchanged, r.queued) == (0, 1, 0)
    show(server, "kyiv-b.html")
    r = poll(config, store)
    assert (r.changed, r.queued) == (1, 1)
    [before] = store.item_versions(item["id"])
    [after] = store.items(ref=item["id"])
    [edit] = field_changes(before, after)
    assert (edit.field, edit.words) == ("content", (
        (("=", "… EU 13 May 2020 On 7"), ("-", "of"), ("=", "May 2020 in Kyiv, ICMPD organized …")),
    ))


def test_remove_added_after_a_noisy_edit_reads_the_page_anew_without_telling_it(
        server, tmp_path):
    """The usual way to a quiet page: an edit that was only its counter, then `remove`
    for the counter. The poll under the new settings stores the page as they read it and
    tells no one of the counter it lost; `log` tells that poll as `once` did."""
    show(server, "kyiv-a.html")
    cfg = make_config(tmp_path, http_fast() + page_source(server.url("/kyiv")) + NEWS)
    run_cli("--config", str(cfg), "once")
    show(server, "kyiv-a-visited.html")
    cfg.write_text(cfg.read_text().replace(
        '[[notifiers]]', '  [sources.select]\n  remove = [".page-views"]\n\n[[notifiers]]'))
    said = ("    settings changed since its last read: its next poll reads it anew, and the "
            "edits that makes are not told")
    assert said in run_cli("--config", str(cfg), "sources").stdout.splitlines()
    [status] = [json.loads(li) for li in run_cli("--config", str(cfg), "sources", "--json")
                .stdout.splitlines()]
    assert status["settings_changed"] is True
    r = run_cli("--config", str(cfg), "once")
    assert (r.returncode, r.stdout) == (0, "")
    assert said not in run_cli("--config", str(cfg), "sources").stdout.splitlines()
    line = ("kyiv: 0 new, 1 changed (read under changed settings: not notified), 0 unchanged "
            "(HTTP 200, ")
    assert r.stderr.startswith(line)
    assert run_cli("--config", str(cfg), "log").stdout.splitlines()[-1].endswith(
        r.stderr.splitlines()[0])
    show(server, "kyiv-b.html")  # a real edit after it is news again
    r = run_cli("--config", str(cfg), "once")
    assert r.stdout.splitlines()[0] == f"== Updated: {TITLE} - ICMPD"


def quiet_page_watched(server: FixtureServer, tmp_path: Path, setting: str) -> str:
    """A config watching the Kyiv page, its counter removed, with one more source key
    `setting`, and the page's baseline polled: the config file's path."""
    show(server, "kyiv-a.html")
    cfg = str(make_config(tmp_path, http_fast() + page_source(
        server.url("/kyiv"), '  remove = [".page-views"]\n').replace(
        'kind = "page"\n', f'kind = "page"\n{setting}\n') + NEWS))
    run_cli("--config", cfg, "once")
    return cfg


def polled_untold(cfg: str, why: str) -> None:
    """One poll that stores the page's edit and tells no one, its line saying `why`, and
    `harvester log` saying that poll alike."""
    r = run_cli("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr.startswith(f"kyiv: 0 new, 1 changed ({why}: not notified), 0 unchanged "
                               "(HTTP 200, ")
    assert run_cli("--config", cfg, "log").stdout.splitlines()[-1].endswith(
        r.stderr.splitlines()[0])


def test_with_edits_added_an_edit_that_only_takes_words_out_is_stored_not_told(
        server, tmp_path):
    """A call for tenders that closes, a line taken down: with `edits = "added"` only an
    edit that puts words in is news; the others are stored (and shown by `show`)."""
    cfg = quiet_page_watched(server, tmp_path, 'edits = "added"')
    show(server, "kyiv-b.html")  # "On 7 of May" became "On 7 May": a word out, none in
    polled_untold(cfg, "1 with words taken out only")
    assert "    … EU 13 May 2020 On 7 [-of-] May 2020 in Kyiv, ICMPD organized …" in run_cli(
        "--config", cfg, "show", server.url("/kyiv")).stdout.splitlines()
    server.route("/kyiv", Response((PAGES / "kyiv-b.html").read_bytes().replace(
        b"ICMPD organized", b"ICMPD successfully organized"), content_type="text/html"))
    r = run_cli("--config", cfg, "once")
    assert r.stdout.splitlines()[0] == f"== Updated: {TITLE} - ICMPD"
    assert ("     … 7 May 2020 in Kyiv, ICMPD {+successfully+} organized a kick-off meeting on "
            "business …") in r.stdout.splitlines()
    assert r.stderr.startswith("kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued")


def test_an_edit_of_markup_alone_is_stored_not_told_and_a_link_moved_is_told(server,
                                                                             tmp_path):
    """A page the site renders anew — indented otherwise, a word put in bold, a non-breaking
    space — reads the same: it was told as news ("content (markup only) changed") with
    nothing to read in it. Such an edit is stored (`show` lists it) and not told; one that
    moves a link (the tender's documents now at v2.pdf) changes no word and is told."""
    cfg = quiet_page_watched(server, tmp_path, "")
    kyiv = (PAGES / "kyiv-a.html").read_bytes()
    for variant in (kyiv.replace(b"><", b">\n   <"),
                    kyiv.replace(b"ICMPD organized", b"<b>ICMPD</b>&nbsp;organized")):
        server.route("/kyiv", Response(variant, content_type="text/html"))
        polled_untold(cfg, "1 of markup only")
    assert "  content (markup only) changed" in run_cli(
        "--config", cfg, "show", server.url("/kyiv")).stdout.splitlines()
    server.route("/kyiv", Response(kyiv.replace(b"ICMPD organized", b'<a href="/docs/v2.pdf">'
                                                b"ICMPD</a> organized"),
                                   content_type="text/html"))
    r = run_cli("--config", cfg, "once")
    assert r.stdout.splitlines()[0] == f"== Updated: {TITLE} - ICMPD"
    assert r.stderr.startswith("kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued")
    server.route("/kyiv", Response(kyiv.replace(b"ICMPD organized", b'<a href="/docs/v3.pdf">'
                                                b"ICMPD</a> organized"),
                                   content_type="text/html"))
    r = run_cli("--config", cfg, "once")
    assert r.stderr.startswith("kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued")


def test_a_page_flipping_back_to_an_edit_told_before_says_it_queued_nothing(server, tmp_path):
    """A page that turns between two texts (a banner put up and taken down each day): the
    same edit again is the notification told before (its id is the edit's), so nothing is
    queued — and the poll's line says so, where it said "1 notification queued"."""
    cfg = quiet_page_watched(server, tmp_path, "")
    kyiv = (PAGES / "kyiv-a.html").read_bytes()
    flipped = kyiv.replace(b"ICMPD organized", b"ICMPD successfully organized")
    lines = []
    for body in (flipped, kyiv, flipped, kyiv):
        server.route("/kyiv", Response(body, content_type="text/html"))
        lines.append(run_cli("--config", cfg, "once").stderr.splitlines()[0])
    assert [line.partition(" (HTTP")[0] for line in lines] == [
        "kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued",
        "kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued",
        "kyiv: 0 new, 1 changed, 0 unchanged",
        "kyiv: 0 new, 1 changed, 0 unchanged"]
    assert run_cli("--config", cfg, "log").stdout.splitlines()[-1].endswith(lines[-1])


def test_a_dry_run_shows_the_text_a_page_would_watch_and_what_new_settings_would_change(
        server, tmp_path):
    """Tuning `content`, `remove` and `ignore` by trial: `once --dry-run` shows the text
    a first poll would watch, and after it, what the page read under the settings being
    tried differs by from what is stored — with nothing written."""
    show(server, "kyiv-a.html")
    cfg = make_config(tmp_path, http_fast() + page_source(server.url("/kyiv")) + NEWS)
    r = run_cli("--config", str(cfg), "once", "--dry-run")
    lines = r.stdout.splitlines()
    assert lines[:5] == [
        f"would store NEW     {lines[0][20:30]} {TITLE} - ICMPD",
        f"    {server.url('/kyiv')}",
        "    watched text:",
        f"      {TITLE}",
        "      13 May 2020"]
    assert "      Read 1204 times" in lines
    run_cli("--config", str(cfg), "once")
    cfg.write_text(cfg.read_text().replace(
        "[[notifiers]]", "  [sources.select]\n  ignore = ['Read \\d+ times']\n\n[[notifiers]]"))
    r = run_cli("--config", str(cfg), "once", "--dry-run")
    told = ["    content changed:", "      … the project can be found here. [-Read 1204 times-]"]
    assert r.stdout.splitlines()[2:] == told
    r = run_cli("--config", str(cfg), "once", "--dry-run")  # nothing was written
    assert r.stdout.splitlines()[2:] == told


def test_with_edits_match_only_an_edit_putting_in_matching_words_is_told(server, tmp_path):
    """A call for tenders page, watched for calls on one subject: `edits_match` is
    searched in the words an edit put in, not in the whole page."""
    cfg = quiet_page_watched(server, tmp_path, "edits_match = '(?i)\\bsuccessful'")
    edited = (PAGES / "kyiv-b.html").read_bytes()
    server.route("/kyiv", Response(edited.replace(b"ICMPD organized", b"ICMPD quickly organized"),
                                   content_type="text/html"))
    polled_untold(cfg, "1 whose added words do not match edits_match")
    server.route("/kyiv", Response(edited.replace(b"ICMPD organized",
                                                  b"ICMPD successfully organized"),
                                   content_type="text/html"))
    r = run_cli("--config", cfg, "once")
    assert ("     … 7 May 2020 in Kyiv, ICMPD [-quickly-] {+successfully+} organized a kick-off "
            "meeting on business …") in r.stdout.splitlines()
    assert r.stderr.startswith("kyiv: 0 new, 1 changed, 0 unchanged, 1 notification queued")
    assert "edits told only when they add words matching '(?i)\\bsuccessful'" in run_cli(
        "--config", cfg, "check").stdout


def test_a_watched_block_that_is_gone_is_said_at_once_and_keeps_the_item(
        server, config_for, store):
    show(server, "kyiv-a.html")
    config = config_for(page_source(server.url("/kyiv"), '  content = "article.news-detail"\n'),
                        notifiers=OPS)
    poll(config, store)
    before = store.conn.execute("SELECT * FROM items").fetchall()
    server.route("/kyiv", Response(b"<html><body><div class='story'><h1>Redesigned</h1>"
                                   b"<p>Text</p></div></body></html>", content_type="text/html"))
    r = poll(config, store)
    assert r.status is PollStatus.ERROR
    assert r.error == ("select.content 'article.news-detail' matched nothing: the page's "
                       "layout may have changed")
    assert store.conn.execute("SELECT * FROM items").fetchall() == before
    [alert] = store.outbox()
    assert (alert["notifier"], alert["event"]) == ("ops", "source.failing")  # at once


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


@pytest.mark.parametrize(("body", "ctype", "error"), [
    (b"<html><head><title>App</title><script>render()</script></head><body><div id=app>"
     b"</div></body></html>", "text/html", "the page shows no text (it may be drawn by "
                                           "JavaScript, which the harvester does not run)"),
    (b"", "text/html", "empty page"),
    # a call for tenders is often a PDF: its bytes are no page text to watch
    (PDF, "application/pdf", "not an HTML page: the server sent a PDF"),
    (PDF, "application/octet-stream", "not an HTML page: the server sent a PDF"),
    (PNG, "image/png", "not an HTML page: the server sent image/png"),
    (PNG, "application/octet-stream", "not an HTML page: the server sent binary data"),
    (b'{"news": []}', "application/json", "not an HTML page: the server sent application/json"),
])
def test_a_page_with_nothing_to_watch_fails_its_poll_saying_why(server, config_for, store,
                                                                body, ctype, error):
    server.route("/kyiv", Response(body, content_type=ctype))
    r = poll(config_for(page_source(server.url("/kyiv"))), store)
    assert (r.status, r.error) == (PollStatus.ERROR, error)
    assert store.items() == []


def test_a_pdf_is_said_as_one_by_probe_and_by_a_listing_source(server, config_for, store):
    """Not as a listing whose layout changed, nor as a page to watch with --page."""
    server.route("/tenders.pdf", Response(PDF, content_type="application/pdf"))
    url = server.url("/tenders.pdf")
    r = run_cli("probe", url)
    assert (r.returncode, r.stderr) == (
        1, "harvester: error: not an HTML page: the server sent a PDF\n")
    config = config_for(f'[[sources]]\nname = "tenders"\nkind = "html"\nurl = "{url}"\n',
                        notifiers=OPS)
    [report] = poll_sources(config, store, clock=lambda: NOW)
    assert report.error == "not an HTML page: the server sent a PDF"
    assert store.outbox() == []  # a failure like any other, not a stale layout's alarm


def test_a_pages_content_is_sanitised_as_any_items(server, config_for, store):
    server.route("/kyiv", Response(
        b"<html><body><main><p>Open call<img src=x onerror='alert(1)'> <a href='javascript:"
        b"steal()'>apply</a></p><iframe src='https://evil.example/'></iframe></main>"
        b"<form><input type=hidden name=csrf value=s3cr3t></form></body></html>",
        content_type="text/html"))
    poll(config_for(page_source(server.url("/kyiv"))), store)
    content = store.conn.execute("SELECT content FROM items").fetchone()[0]
    assert content == (f'<p>Open call<img src="{server.url("/x")}"> '
                       '<a rel="noopener noreferrer nofollow">apply</a></p>')


def test_a_page_that_changes_on_every_poll_keeps_its_newest_versions_only(
        server, tmp_path, store):
    """[storage] keep_versions: a watched page can change on every poll (a counter nobody
    named in `remove`), and each version is a copy of the page; the oldest go."""
    config = load_config(make_config(tmp_path, http_fast().replace(
        '[storage]\npath = "h.db"\n', '[storage]\npath = "h.db"\nkeep_versions = 2\n')
        + page_source(server.url("/kyiv"))))
    assert config.storage.keep_versions == 2
    page = (PAGES / "kyiv-a.html").read_bytes()
    for views in (1204, 1205, 1206, 1207, 1208):
        server.route("/kyiv", Response(page.replace(b"Read 1204 times", f"Read {views} times"
                                                    .encode()), content_type="text/html"))
        poll(config, store)
    [item] = store.items()
    assert item["version"] == 5 and "Read 1208 times" in store.conn.execute(
        "SELECT content FROM items").fetchone()[0]
    # version n was the page of the nth poll: read 1203 + n times
    kept = [(v["version"], f"Read {1203 + v['version']} times" in v["content"])
            for v in store.item_versions(item["id"])]
    assert kept == [(3, True), (4, True)]


# -- a model of a page's life: its words edited, and what moves on every visit -------------

_WORDS = ["border", "customs", "training", "Kyiv", "Vienna", "meeting", "officers", "EU",
          "support", "project", "tenders", "call", "deadline", "May", "2020", "the", "of"]
_PAGE_STEPS = st.lists(st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 9), st.lists(st.sampled_from(_WORDS),
                                                           min_size=1, max_size=6)),
    st.tuples(st.sampled_from(["drop", "reflow"]), st.integers(0, 9)),
    st.tuples(st.just("word"), st.integers(0, 9), st.integers(0, 9), st.sampled_from(_WORDS)),
    st.tuples(st.just("back"), st.integers(0, 9)),  # the page as it was some polls ago
), max_size=3), min_size=1, max_size=6)

_PAGE_HOOK = """
[[notifiers]]
name = "hook"
kind = "webhook"
url = "{url}"
max_per_run = 1000
"""


def _model_page(paragraphs: list[list[str]], visit: int, reflow: set[int]) -> bytes:
    """The watched article among what moves on every visit: a counter (named in
    `remove`), a clock (cut by `ignore`) and the site's chrome. A reflowed paragraph
    holds its words as another CMS writes them out: a line break and indent between."""
    body = "".join(
        "<p>" + ("\n      ".join(words) if k in reflow else " ".join(words)) + "</p>"
        for k, words in enumerate(paragraphs))
    return (f"<!DOCTYPE html><html><head><title>Member states</title><meta name='description'"
            f" content='Who the members are'></head><body>"
            f"<nav><a href='/'>Home</a> <a href='/n{visit}'>Visit {visit}</a></nav>"
            f"<main><h1>Member states</h1>{body}<p>Last updated 0{visit % 10}:{visit:02d}."
            f'</p><span class="page-views">Read {1000 + visit} times</span></main>'
            f"<footer>Generated in {visit} ms</footer></body></html>").encode()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@pytest.mark.parametrize("edits", ["all", "added"])
@given(steps=_PAGE_STEPS)
# found by it: a paragraph put in beside its twin was read as no words at all (an edit of
# "markup only", told with nothing to show, or under "added" not told)
@example(steps=[[("add", 0, ["border", "border", "border"])],
                [("add", 0, ["border", "border", "border"])]])
def test_each_edit_of_a_pages_words_is_one_version_told_once_and_nothing_else_is(
        server, model_receiver, edits, steps):
    """A watched page whose paragraphs are put in, taken down, reworded and put back as
    they were, while its counter, clock and chrome move on every visit and its paragraphs
    are sometimes written out with other line breaks. A poll finds an edit exactly when the
    article's words differ from the last stored: one version each, told unless the page
    went that same way before (a flap: told once each way) — and with `edits = "added"`
    only when it put a word in (or more of one). Delivered, each edit's message says the
    article's text before and after."""
    path = f"/page-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(make_config(Path(tmp), http_fast() + page_source(
            server.url(path), '  remove = [".page-views"]\n'
            "  ignore = ['Last updated \\d+:\\d+\\.']\n").replace(
                'kind = "page"\n', f'kind = "page"\nedits = "{edits}"\n')
            + _PAGE_HOOK.format(url=model_receiver.url)))
        model_receiver.deliveries.clear()
        store = SqliteStore(cfg.storage.path)
        try:
            paragraphs = [["ICMPD", "has", "member", "states"], ["Austria", "Bulgaria"]]
            history = [[list(p) for p in paragraphs]]
            stored = paragraphs
            told: list[tuple[str, str]] = []
            ways: set[tuple[str, str]] = set()
            versions = 0
            for visit, ops in enumerate([[], *steps]):
                reflow: set[int] = set()
                for op in ops:
                    k = op[1] % (len(paragraphs) + (op[0] == "add"))
                    if op[0] == "add":
                        paragraphs.insert(k, list(op[2]))
                    elif op[0] == "drop" and len(paragraphs) > 1:
                        paragraphs.pop(k)
                    elif op[0] == "reflow":
                        reflow.add(k)
                    elif op[0] == "word":
                        words = paragraphs[k]
                        words[op[2] % len(words)] = op[3]
                    elif op[0] == "back":
                        paragraphs = [list(p) for p in history[op[1] % len(history)]]
                history.append([list(p) for p in paragraphs])
                server.route(path, Response(_model_page(paragraphs, visit, reflow),
                                            content_type="text/html; charset=utf-8"))
                [report] = poll_sources(cfg, store,
                                        clock=lambda v=visit: NOW + timedelta(hours=v))
                assert report.status is PollStatus.OK, report.line()
                before = " ".join(" ".join(p) for p in stored)
                after = " ".join(" ".join(p) for p in paragraphs)
                edited = before != after
                assert report.changed == (edited and visit > 0), (visit, report.line())
                if edited:
                    versions += 1
                    added = Counter(after.split()) - Counter(before.split())
                    if (before, after) not in ways and (edits == "all" or added):
                        told.append((before, after))
                    ways.add((before, after))
                stored = [list(p) for p in paragraphs]
            [item] = store.items()
            assert item["version"] == versions + 1
            assert deliver(cfg, store, NOW + timedelta(days=1)).sent == len(told)
            # oldest first: each message says its own edit, a run of words in context
            for d, (before, after) in zip(model_receiver.deliveries, told, strict=True):
                assert d.body["type"] == "item.changed"
                [change] = d.body["data"]["changes"]
                assert change["field"] == "content" and change["diff"]
                for hunk in change["words"]:
                    for side, text in (("-", f"Member states {before}"),
                                       ("+", f"Member states {after}")):
                        run = [w for op, t in hunk if op in ("=", side) for w in t.split()
                               if w != "…"]
                        assert _within(run, text.split()), (side, run, text)
        finally:
            store.close()


def _within(run: list[str], words: list[str]) -> bool:
    """Is `run` found in `words`, word after word?"""
    return any(words[k:k + len(run)] == run for k in range(len(words) - len(run) + 1))


@pytest.fixture
def model_receiver():
    from .servers import Receiver

    r = Receiver()
    yield r
    r.stop()
