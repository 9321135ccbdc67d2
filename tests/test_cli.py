"""The command line as a user runs it: a real child process, a real server, a real database."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from harvester.devserver import Response
from harvester.harvest import poll_sources
from harvester.store import SqliteStore

from .conftest import (
    KYIV_BEFORE,
    KYIV_WORDS,
    NOW,
    feed_bytes,
    feed_source,
    free_port,
    make_config,
    redirect,
    run_cli,
)

HTTP = '[storage]\npath = "h.db"\n[http]\ntimeout = 2\nretries = 0\n[defaults]\ntimezone = "Europe/Vienna"\n'
NOTIFY = '[[notifiers]]\nname = "team"\nkind = "console"\nrules = ["press-release", "project-launch"]\n'


def test_once_items_sources_round_trip(server, icmpd_a, tmp_path: Path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + NOTIFY))
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("icmpd-rss: baseline: 7 items stored silently (HTTP 200, ")

    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0
    assert r.stderr.startswith("icmpd-rss: 3 new, 1 changed, 6 unchanged, "
                               "1 notification queued (HTTP 200, ")
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0
    assert r.stderr.startswith("icmpd-rss: not modified (HTTP 304, ")

    r = run_cli("--config", cfg, "items", "--json")
    assert r.returncode == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 10
    top = rows[0]
    assert {k: top[k] for k in ("source", "title", "category", "url", "published", "rules")} == {
        "source": "icmpd-rss",
        "title": "ICMPD provides Ukrainian border guards with protective equipment in response to"
                 " COVID-19",
        "category": "Project News",
        "url": "https://www.icmpd.org/news-centre/news-detail/project-news-icmpd-provides-ukrainian"
               "-border-guards-with-protective-equipment-in-response-to-covid/",
        "published": "2020-05-27T09:06:39Z",
        "rules": [],
    }
    assert top["summary"].startswith("On May 26, 2020, ICMPD handed over personal protective")
    assert top["id"].startswith("i_") and top["first_seen"].endswith("Z")

    r = run_cli("--config", cfg, "items", "--rule", "press-release")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == (
        "2020-05-20  icmpd-rss        Press Release · Germany joins the European migration"
        " organisation ICMPD  [press-release]")

    r = run_cli("--config", cfg, "items", "--json", "--since", "2020-05-15")
    assert [json.loads(x)["published"] for x in r.stdout.splitlines()] == [
        "2020-05-27T09:06:39Z", "2020-05-20T07:41:00Z", "2020-05-18T11:09:53Z",
        "2020-05-15T08:08:57Z"]

    r = run_cli("--config", cfg, "sources")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == f"icmpd-rss: ok, 10 items  {icmpd_a}"


def test_items_search_wants_every_word_in_any_case(server, icmpd_a, tmp_path):
    server.route("/de", Response(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>ÜBER DIE GRENZE: 100% mehr Zusammenarbeit</title>"
        "<link>https://example.org/de/1</link></item></channel></rss>".encode()))
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                          + feed_source("de", server.url("/de"))))
    assert run_cli("--config", cfg, "once").returncode == 0

    def found(*words: str) -> list[str]:
        r = run_cli("--config", cfg, "items", "--json", "--search", " ".join(words))
        return sorted(json.loads(x)["title"] for x in r.stdout.splitlines())

    assert found("UKRAINIAN") == [
        "Ukrainian border guards and customs officers optimise operations with support by the EU"]
    assert found("ukrainian", "trafig") == []  # every word, not any
    # "ÜBER DIE GRENZE:" became the category (category_from_title), which counts too
    assert found("über", "100%") == ["100% mehr Zusammenarbeit"]
    assert found("Kick-off") == [  # the summary counts, not only the title
        "Ukrainian border guards and customs officers optimise operations with support by the EU"]
    assert found("nothing-like-this") == []
    # a "quoted phrase" is found as written; a -word or -"phrase" keeps out what holds it
    kyiv = "Ukrainian border guards and customs officers optimise operations with support by the EU"
    asylum = ("First expert meeting on asylum in the framework of the ICMPD Annual Policy "
              "Initiative 2020")  # "border" and "guards" apart in its text
    assert found("border", "guards") == [asylum, kyiv]
    assert found('"border guards"') == [kyiv]
    assert found('"guards border"') == []
    assert found('"border guards"', "-customs") == []
    assert found("border", '-"customs officers"') == [
        asylum, "Immunity passports – unwise and unnecessary"]  # "borders" in its text
    covid = found("COVID-19")
    assert len(covid) == 5 and found("COVID-19", "-talentas") == [
        t for t in covid if not t.startswith("TALENTAS")]  # a hyphen inside is the word's
    r = run_cli("--config", cfg, "items", "--atom", "--search", "über")
    assert "<title>harvester: search \"über\"</title>" in r.stdout
    assert "<id>urn:harvester:items?q=%C3%BCber</id>" in r.stdout


def test_items_atom_is_a_feed_readers_and_our_own_parser_read(server, icmpd_a, tmp_path):
    import feedparser

    from harvester.parse import parse_feed

    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    assert run_cli("--config", cfg, "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    assert run_cli("--config", cfg, "once").returncode == 0
    stored = [json.loads(x) for x in run_cli("--config", cfg, "items", "--json").stdout.splitlines()]

    r = run_cli("--config", cfg, "items", "--atom", "--rule", "press-release")
    assert r.returncode == 0 and r.stdout.startswith("<?xml version='1.0' encoding='utf-8'?>")
    body = r.stdout.encode()
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.version == "atom10"
    assert parsed.feed.title == "harvester: rule press-release"
    [entry] = parsed.entries
    germany = next(x for x in stored if x["rules"] == ["press-release"])
    assert (entry.id, entry.title, entry.link, entry.published) == (
        f"urn:harvester:item:{germany['id']}", germany["title"], germany["url"],
        "2020-05-20T07:41:00Z")
    assert [t.term for t in entry.tags] == ["Press Release", "press-release"]
    assert entry.content[0].value.startswith("<p>Vienna 12th May 2020: The number of ICMPD")

    # every item, newest first, read back through the harvester's own feed reader
    r = run_cli("--config", cfg, "items", "--atom")
    entries = parse_feed(r.stdout.encode(), url="http://127.0.0.1/feed.atom").entries
    assert [(e.title, e.link, e.published) for e in entries] == [
        (x["title"], x["url"], x["published"]) for x in stored]

    r = run_cli("--config", cfg, "items", "--atom", "--json")
    assert r.returncode == 2 and "--json, --atom and --csv are formats: choose one" in r.stderr


def test_items_csv_opens_in_a_spreadsheet_with_the_feeds_words_inert(server, tmp_path):
    """A title that is a spreadsheet formula stays text (OWASP's leading quote); commas
    and quotes are quoted as RFC 4180 has it."""
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b'<item><title>=HYPERLINK("http://evil.example","Press Release")</title>'
            b"<link>https://news.example/1</link><category>Press Release</category>"
            b'<description>Vienna, "quoted" &lt;p&gt;two&lt;/p&gt;&lt;p&gt;paragraphs&lt;/p&gt;'
            b"</description><pubDate>Wed, 20 May 2020 09:41:00 +0200</pubDate></item>"
            b"</channel></rss>")
    server.route("/csv.rss", Response(feed))
    cfg = str(make_config(tmp_path, HTTP + feed_source("news", server.url("/csv.rss"),
                                                       first_run="all")))
    assert run_cli("--config", cfg, "once").returncode == 0
    r = run_cli("--config", cfg, "items", "--csv")
    assert r.returncode == 0, r.stderr
    header, row = csv.reader(io.StringIO(r.stdout, newline=""))
    assert header == ["published", "source", "category", "title", "url", "rules", "summary",
                      "first_seen", "id"]
    got = dict(zip(header, row, strict=True))
    assert {k: got[k] for k in header[:7]} == {
        "published": "2020-05-20T07:41:00Z", "source": "news", "category": "Press Release",
        "title": "'=HYPERLINK(\"http://evil.example\",\"Press Release\")",
        "url": "https://news.example/1", "rules": "press-release",
        "summary": 'Vienna, "quoted" two paragraphs'}
    assert got["id"].startswith("i_") and got["first_seen"].endswith("Z")
    assert len(r.stdout.splitlines()) == 2  # the header, and a row an item
    r = run_cli("--config", cfg, "items", "--csv", "--since", "2030-01-01")
    assert (r.returncode, r.stdout.splitlines()) == (0, [",".join(header)])


# the CLI in a process that says, on the way out, the most memory it held (KiB): its own
# VmHWM, not getrusage's maxrss, which keeps the peak of the process it was forked from
PEAK_RSS = ("import runpy, sys\n"
            "sys.argv = ['harvester', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('harvester', run_name='__main__')\n"
            "finally:\n"
            "    hwm = next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:'))\n"
            "    print('peak', hwm.split()[1], file=sys.stderr)\n")


@pytest.mark.parametrize("fmt", ["--json", "--csv", "--plain"])
def test_items_are_written_as_they_are_read_not_held_all_at_once(icmpd_a, tmp_path, fmt):
    """A dump of the whole archive (a backup, a spreadsheet) holds one item at a time: here
    2,000 items carrying 100 MB of content, which the list read before held whole (133 MiB
    at its peak; ~50 MiB now)."""
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    assert run_cli("--config", cfg, "once").returncode == 0
    with sqlite3.connect(tmp_path / "h.db") as db:
        db.execute(
            "INSERT INTO items (id, source, key, title, category, summary, content, published,"
            " content_hash, first_seen, last_seen) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
            " SELECT i + 1 FROM n WHERE i < 2000) SELECT 'pad' || i, 'icmpd-rss', 'pad:' || i,"
            " 'Padding ' || i, 'Project News', 'A summary', printf('%50000s', 'x'),"
            " '2019-01-01T00:00:00Z', 'v3:pad', '2019-01-01T00:00:00Z', '2019-01-01T00:00:00Z'"
            " FROM n")
    args = ["--config", cfg, "items"] + ([] if fmt == "--plain" else [fmt])
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], capture_output=True,
                       text=True, env={**os.environ, "PYTHONUTF8": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    # plain: a line an item, and one more for each URL (the feed's 7 have one)
    assert len(r.stdout.splitlines()) == {"--json": 2007, "--csv": 2008, "--plain": 2014}[fmt]
    peak_kib = int(r.stderr.split("peak ")[-1])
    assert peak_kib < 90 * 1024, f"held {peak_kib // 1024} MiB"


def test_once_exit_1_when_a_source_fails_and_others_still_commit(server, icmpd_a, tmp_path):
    server.route("/broken", Response(b"<html>soft 404</html>", content_type="text/html"))
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                          + feed_source("broken", server.url("/broken"))))
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 1
    lines = sorted(r.stderr.splitlines())
    assert lines[0].startswith("broken: error: not a feed: an HTML page with nothing to list")
    assert lines[1].startswith("icmpd-rss: baseline: 7 items stored silently")
    assert sqlite3.connect(tmp_path / "h.db").execute("SELECT count(*) FROM items").fetchone() == (7,)
    r = run_cli("--config", cfg, "sources")
    assert "broken: FAILING (1 in a row), 0 items" in r.stdout
    assert "    last error:   " in r.stdout


def test_once_names_a_refused_connection(tmp_path):
    """A server that is down reads as one: not "timed out", which would send the user to
    raise timeouts."""
    down = f"http://127.0.0.1:{free_port()}/feed.xml"
    cfg = str(make_config(tmp_path, HTTP + feed_source("down", down)))
    refused = f"cannot connect: [Errno {errno.ECONNREFUSED}] Connection refused"
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"down: error: {refused}"]
    r = run_cli("--config", cfg, "sources")
    assert r.stdout.splitlines()[2].endswith(f"  {refused}")


def test_sources_counts_items_in_words(server, tmp_path):
    one = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
           b"<title>Only</title><link>https://example.org/only</link></item></channel></rss>")
    server.route("/one", Response(one))
    url = server.url("/one")
    cfg = str(make_config(tmp_path, HTTP + feed_source("one", url)))
    assert run_cli("--config", cfg, "once").returncode == 0
    r = run_cli("--config", cfg, "sources")
    assert r.stdout.splitlines()[0] == f"one: ok, 1 item  {url}"
    cfg = str(make_config(tmp_path, HTTP + feed_source("other", url + "?2")))
    r = run_cli("--config", cfg, "sources")
    assert r.stdout.splitlines() == [f"other: never polled  {url}?2",
                                     "one: no longer configured, 1 item kept (`harvester "
                                     "forget one` deletes its data)"]


def test_forget_deletes_what_a_removed_source_left_and_nothing_else(server, tmp_path):
    """`old` saw ten items first, seven of which `keep` sees too, and one of its own three
    was edited once: forgetting it deletes its three (their version, their notification),
    its log and health row, and leaves the seven as `keep`'s."""
    b = feed_bytes("icmpd-2020-05-b.rss")
    server.route("/a", Response(feed_bytes("icmpd-2020-05-a.rss")))
    server.route("/b", Response(b))
    edits = '[[notifiers]]\nname = "edits"\nkind = "console"\non = ["new", "changed"]\n'
    both = str(make_config(tmp_path, HTTP + feed_source("old", server.url("/b"))
                           + feed_source("keep", server.url("/a")) + edits))
    assert run_cli("--config", both, "once", "--source", "old").returncode == 0
    assert run_cli("--config", both, "once", "--source", "keep").returncode == 0
    own = b"Germany joins the European migration organisation ICMPD"  # only `old` carries it
    assert b.count(own) == 1
    server.route("/b", Response(b.replace(own, own.replace(b" ICMPD", b", ICMPD"))))
    r = run_cli("--config", both, "once", "--source", "old")
    assert r.stderr.startswith("old: 0 new, 1 changed, 9 unchanged, 1 notification queued"), (
        r.stderr)
    db = tmp_path / "h.db"
    before = {t: sqlite3.connect(db).execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
              for t in ("items", "sightings", "item_versions", "outbox", "fetch_log", "sources")}

    cfg = str(make_config(tmp_path, HTTP + feed_source("keep", server.url("/a")) + edits))
    r = run_cli("--config", cfg, "forget", "keep")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("harvester: error: 'keep' is still in the config: `harvester remove "
                        "keep` takes it out first (forget deletes what a source no longer "
                        "polled left)\n")
    r = run_cli("--config", cfg, "forget", "old", "nope")
    assert (r.returncode, r.stderr) == (2, "harvester: error: nothing is stored for 'nope' "
                                           "(`sources` lists what is); nothing deleted\n")
    told = ("old: 3 items, 1 earlier version, 1 notification, 2 polls of its log; 7 items "
            "other sources have seen too")
    r = run_cli("--config", cfg, "forget", "old", "--dry-run")
    assert (r.returncode, r.stdout) == (0, f"would forget {told} would stay\n")
    after = {t: sqlite3.connect(db).execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
             for t in before}
    assert after == before

    r = run_cli("--config", cfg, "forget", "old")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"forgot {told} stayed\n", "")
    items = [json.loads(x) for x in run_cli("--config", cfg, "items", "--json").stdout.splitlines()]
    assert len(items) == 7
    assert {(i["source"], tuple(i["sources"])) for i in items} == {("keep", ("keep",))}
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM item_versions").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    assert con.execute("SELECT DISTINCT source FROM fetch_log").fetchall() == [("keep",)]
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    assert run_cli("--config", cfg, "sources").stdout.splitlines()[0].startswith("keep: ok, 7 ")
    assert "old" not in run_cli("--config", cfg, "sources").stdout
    r = run_cli("--config", cfg, "forget", "old")
    assert r.returncode == 2 and "nothing is stored for 'old'" in r.stderr


def test_sources_says_what_the_latest_poll_warned_of(server, icmpd_a, tmp_path):
    """A feed that moved for good polls fine, so only a warning says to edit the config:
    `sources`, where health is checked, shows it too."""
    server.route("/old-rss", redirect(301, icmpd_a))
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", server.url("/old-rss"))))
    r = run_cli("--config", cfg, "once")
    moved = f"moved permanently to {icmpd_a}: write that as the source's url"
    assert r.returncode == 0 and r.stderr.splitlines()[0].endswith(f"; warning: {moved}")
    r = run_cli("--config", cfg, "sources")
    assert r.stdout.splitlines()[3] == f"    warning:      {moved}"
    [row] = map(json.loads, run_cli("--config", cfg, "sources", "--json").stdout.splitlines())
    assert (row["health"], row["last_warning"]) == ("ok", moved)


def test_sources_says_when_each_source_last_brought_news(server, icmpd_a, tmp_path):
    """A feed that stopped updating still answers 200 (the ICMPD feed's last item is of
    2020; its listing went on): `sources` says when each source last brought a new item,
    or that none came since its baseline, so a dead feed is seen for what it is."""
    from harvester.config import load_config

    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                      + feed_source("quiet", server.url("/quiet")))
    server.route("/quiet", Response(feed_bytes("icmpd-2019-03.rss")))
    config = load_config(cfg)
    with SqliteStore(config.storage.path) as store:
        list(poll_sources(config, store, clock=lambda: NOW))
        server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
        later = NOW + timedelta(days=3)
        list(poll_sources(config, store, clock=lambda: later))
    out = run_cli("--config", str(cfg), "sources").stdout.splitlines()
    assert out[2] == "    last new item: 2020-05-31T08:00:00Z"
    assert out[5] == "    last new item: none since the baseline, 2020-05-28T08:00:00Z"
    rows = [json.loads(x) for x in run_cli("--config", str(cfg), "sources", "--json").stdout
            .splitlines()]
    assert [r["last_new_item"] for r in rows] == ["2020-05-31T08:00:00Z", None]


def test_sources_json_gives_each_sources_health_for_scripts(server, icmpd_a, tmp_path):
    server.route("/broken", Response(b"", status=500))
    broken = server.url("/broken")
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                          + feed_source("broken", broken)
                          + feed_source("later", icmpd_a, enabled=False)))
    assert run_cli("--config", cfg, "once").returncode == 1
    r = run_cli("--config", cfg, "sources", "--json")
    assert r.returncode == 0
    ok, failing, never = (json.loads(x) for x in r.stdout.splitlines())
    assert ok["last_polled"] == ok["last_success"] == ok["baseline_at"]
    assert {k: ok[k] for k in ("name", "configured", "enabled", "kind", "url", "health",
                               "consecutive_failures", "items", "last_status", "last_error",
                               "not_before")} == {
        "name": "icmpd-rss", "configured": True, "enabled": True, "kind": "feed",
        "url": icmpd_a, "health": "ok", "consecutive_failures": 0, "items": 7,
        "last_status": "ok", "last_error": None, "not_before": None}
    assert (failing["health"], failing["consecutive_failures"], failing["last_error"],
            failing["last_success"]) == ("failing", 1, "HTTP 500 Internal Server Error", None)
    assert failing["failing_since"] == failing["last_error_at"] == failing["last_polled"]
    # the default every (30 min) after the last poll; after one failure, the same
    # (1×, then 2×, 4× … as the daemon backs off)
    for row in (ok, failing):
        polled = datetime.fromisoformat(row["last_polled"])
        assert row["next_due"] == (polled + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = run_cli("--config", cfg, "sources").stdout.splitlines()
    assert text[1].endswith(f"    next due: {ok['next_due']}")
    assert never == {"name": "later", "configured": True, "enabled": False, "kind": "feed",
                     "url": icmpd_a, "health": "never polled", "consecutive_failures": 0,
                     "items": 0, "last_polled": None, "last_status": None,
                     "last_success": None, "last_error": None, "last_error_at": None,
                     "failing_since": None, "not_before": None, "baseline_at": None,
                     "last_warning": None, "next_due": None, "last_new_item": None,
                     "last_edit": None, "settings_changed": False}
    cfg = str(make_config(tmp_path, HTTP + feed_source("broken", broken)))
    r = run_cli("--config", cfg, "sources", "--json")
    gone = json.loads(r.stdout.splitlines()[1])
    assert {k: gone[k] for k in ("name", "configured", "enabled", "url", "items")} == {
        "name": "icmpd-rss", "configured": False, "enabled": None, "url": icmpd_a, "items": 7}


def test_once_source_selection_and_usage_errors(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                          + feed_source("other", server.url("/none"))))
    r = run_cli("--config", cfg, "once", "--source", "icmpd-rss")
    assert r.returncode == 0 and "other" not in r.stderr
    r = run_cli("--config", cfg, "once", "--source", "nope")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("no source named 'nope' (sources: icmpd-rss, other)")
    r = run_cli("--config", cfg, "once", "--bogus")
    assert r.returncode == 2 and "No such option" in r.stderr and "--bogus" in r.stderr
    r = run_cli("--config", cfg, "items", "--since", "whenever")
    assert r.returncode == 2 and "'whenever' is not a date (2020-05-01) or a time ago (7d, 12h)" \
        in r.stderr
    # a time ago: the 2020 fixture items are older than an hour, younger than 300 years
    r = run_cli("--config", cfg, "items", "--since", "1h")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no items\n")
    r = run_cli("--config", cfg, "items", "--json", "--since", "109500d")
    assert len(r.stdout.splitlines()) == 7
    # further back than the calendar goes: everything, not an OverflowError
    r = run_cli("--config", cfg, "items", "--json", "--since", "99999999999d")
    assert (r.returncode, len(r.stdout.splitlines()), r.stderr) == (0, 7, "")


def test_backup_copies_the_database_and_refuses_what_would_lose_it(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    r = run_cli("--config", cfg, "backup", str(tmp_path / "b.db"))
    assert (r.returncode, r.stderr) == (
        1, f"harvester: error: no database at {tmp_path / 'h.db'} yet: nothing has been polled\n")
    assert run_cli("--config", cfg, "once").returncode == 0
    r = run_cli("--config", cfg, "backup", "b.db", cwd=tmp_path)  # relative: to the shell's folder
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"backed up 7 items to b\.db \(\d+\.\d MiB, checked\)\n", r.stdout)
    copy = sqlite3.connect(tmp_path / "b.db")
    assert copy.execute("SELECT count(*) FROM items").fetchone() == (7,)
    assert copy.execute("PRAGMA user_version").fetchone() == sqlite3.connect(
        tmp_path / "h.db").execute("PRAGMA user_version").fetchone()
    copy.close()
    # restored as the README says (the copy where the database was): the same items
    before = run_cli("--config", cfg, "items", "--json").stdout
    for leftover in ("h.db-wal", "h.db-shm"):
        (tmp_path / leftover).unlink(missing_ok=True)
    (tmp_path / "h.db").write_bytes((tmp_path / "b.db").read_bytes())
    assert run_cli("--config", cfg, "items", "--json").stdout == before
    for target, problem in ((tmp_path / "h.db", "it is this database itself"),
                            (tmp_path, "it is a folder"),
                            (tmp_path / "nowhere" / "b.db",
                             f"there is no folder {tmp_path / 'nowhere'}")):
        r = run_cli("--config", cfg, "backup", str(target))
        assert (r.returncode, r.stderr) == (
            1, f"harvester: error: cannot back up to {target}: {problem}\n")
    assert not list(tmp_path.glob("*partial*"))  # no half-written copy left behind


def test_a_backup_before_an_upgrade_is_of_the_old_database(tmp_path):
    """`backup` leaves the schema as it finds it: taken before an upgrade, it is a copy
    of the old database, and the live one is not migrated by taking it."""
    from sqlite_utils import Database

    from harvester.migrations import migrations

    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    migrations.apply(Database(conn), stop_before="m002_delivery")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    cfg = str(make_config(tmp_path, HTTP, rules=False))
    r = run_cli("--config", cfg, "backup", str(tmp_path / "old.db"))
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    for db in ("h.db", "old.db"):
        version = sqlite3.connect(tmp_path / db).execute("PRAGMA user_version").fetchone()
        assert version == (1,), db


def test_items_names_a_filter_the_config_does_not_know(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    assert run_cli("--config", cfg, "once").returncode == 0
    r = run_cli("--config", cfg, "items", "--rule", "press-releas")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", (
        "no items; no rule named 'press-releas' in the config"
        " (rules: press-release, project-launch)\n"))
    r = run_cli("--config", cfg, "items", "--source", "icmpd")
    assert r.stderr == "no items; no source named 'icmpd' in the config (sources: icmpd-rss)\n"
    # a configured name that matches nothing is not a mistake: no hint
    r = run_cli("--config", cfg, "items", "--rule", "press-release", "--since", "2030-01-01")
    assert r.stderr == "no items\n"


def test_ctrl_c_ends_once_at_once_keeping_what_was_stored(server, icmpd_a, tmp_path):
    """A hung server and an impatient user: SIGINT ends the run within a second, not after
    the request's 30 s timeout, and the source that had answered stays stored."""
    import signal
    import subprocess
    import sys

    def hung(handler):
        time.sleep(10)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/hung", hung)
    cfg = make_config(tmp_path, HTTP.replace("timeout = 2", "timeout = 30")
                      + feed_source("icmpd-rss", icmpd_a) + feed_source("hung", server.url("/hung")))
    proc = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg), "once"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not server.hits("/hung") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the hung request is in flight; icmpd-rss has been stored
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 2, err
    assert proc.returncode == 1 and err.rstrip().endswith("Aborted!")
    assert "icmpd-rss: baseline: 7 items stored silently" in err
    db = sqlite3.connect(tmp_path / "h.db")
    assert db.execute("SELECT count(*) FROM items").fetchone() == (7,)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_cron_once_that_overlaps_the_last_leaves_its_sources_to_it(server, tmp_path):
    """A run that starts while the previous one is still polling (a slow server, a short
    cron interval) polls what is free and leaves the rest to it: no source is fetched or
    stored twice at once, and the overlap is said, not an error."""
    import subprocess
    import sys
    import threading

    answer = threading.Event()

    def slow(handler):
        answer.wait(30)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/slow", slow)
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = make_config(tmp_path, HTTP.replace("timeout = 2", "timeout = 30")
                      + feed_source("icmpd-rss", server.url("/slow"))
                      + feed_source("archive", server.url("/2019")))
    first = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg), "once",
                              "--source", "icmpd-rss"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not server.hits("/slow") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.hits("/slow"), "the first run never asked"
        second = run_cli("--config", str(cfg), "once")
        assert second.returncode == 0, second.stderr
        lines = second.stderr.splitlines()
        assert lines[0] == "icmpd-rss: not polled: another harvester process is polling it now"
        assert lines[1].startswith("archive: baseline: ") and len(lines) == 2
        assert len(server.hits("/slow")) == 1
    finally:
        answer.set()
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0
    assert err.startswith("icmpd-rss: baseline: 7 items stored silently (HTTP 200, ")
    third = run_cli("--config", str(cfg), "once", "--source", "icmpd-rss")
    assert third.stderr.startswith("icmpd-rss: not modified (HTTP 304, ")
    # the per-source locks are one file beside the database, whatever the number of sources
    assert sorted(p.name for p in tmp_path.glob("h.db*.lock")) == ["h.db.sources.lock"]


def test_once_due_polls_only_what_its_schedule_has_come_round_for(server, tmp_path):
    """A cron job every minute beside sources of their own pace: `once --due` polls each
    when its `every` has come round, a failing one backed off, and says what it left."""
    server.route("/a", Response(feed_bytes("icmpd-2020-05-a.rss")))
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = str(make_config(tmp_path, HTTP + feed_source("quick", server.url("/a"))
                          + 'every = "5s"\n' + feed_source("slow", server.url("/2019"))
                          + 'every = "1d"\n' + feed_source("down", server.url("/gone"))
                          + 'every = "5s"\n'))
    r = run_cli("--config", cfg, "once", "--due")
    assert r.returncode == 1  # "down" answered 404
    assert sorted(line.split(":")[0] for line in r.stderr.splitlines()) == [
        "down", "quick", "slow"]
    r = run_cli("--config", cfg, "once", "--due")
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"not due yet: 3 sources \(the next, (\w+), at (\S+)\)\n", r.stderr)
    assert m and m.group(1) in ("quick", "down"), r.stderr
    assert [len(server.hits(p)) for p in ("/a", "/2019", "/gone")] == [1, 1, 1]
    time.sleep(5.1)  # quick's 5 s have passed; down's first failure holds it off 5 s too
    r = run_cli("--config", cfg, "once", "--due")
    lines = r.stderr.splitlines()
    assert lines[0].startswith("not due yet: 1 source (the next, slow, at "), r.stderr
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["down", "quick"]
    assert [len(server.hits(p)) for p in ("/a", "/2019", "/gone")] == [2, 1, 2]
    r = run_cli("--config", cfg, "once", "--due", "--source", "slow")
    assert r.stderr.startswith("not due yet: 1 source (the next, slow, at "), r.stderr
    assert len(r.stderr.splitlines()) == 1
    # without --due, every source is polled, as before
    r = run_cli("--config", cfg, "once")
    assert [len(server.hits(p)) for p in ("/a", "/2019", "/gone")] == [3, 2, 3]


def test_a_lock_file_it_cannot_open_is_one_line_not_a_traceback(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    (tmp_path / "h.db.sources.lock").mkdir()  # in the way: not a file it can lock in
    r = run_cli("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"harvester: error: cannot open the lock file "
                        f"{tmp_path / 'h.db.sources.lock'}: Is a directory\n")
    assert server.hits("/rss") == []


def test_once_says_when_there_is_nothing_to_poll(tmp_path):
    """A run from cron that polls nothing must not read like a healthy one."""
    empty = make_config(tmp_path, HTTP)
    r = run_cli("--config", str(empty), "once")
    assert (r.returncode, r.stderr) == (0, f"no sources to poll: {empty} has no [[sources]]\n")
    r = run_cli("--config", str(empty), "check")
    assert r.stdout.splitlines()[3] == (
        "sources: none yet (config/example.toml shows a [[sources]] table)")
    off = make_config(tmp_path, HTTP + feed_source("a", "http://127.0.0.1:9/a", enabled=False)
                      + feed_source("b", "http://127.0.0.1:9/b", enabled=False))
    r = run_cli("--config", str(off), "once")
    assert (r.returncode, r.stderr) == (0, "no sources to poll: disabled: a, b\n")
    r = run_cli("--config", str(off), "once", "--source", "b")
    assert (r.returncode, r.stderr) == (0, "no sources to poll: disabled: b\n")


def test_dry_run_shows_but_writes_nothing(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a, first_run="all")
                          + NOTIFY))
    r = run_cli("--config", cfg, "once", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would store NEW     2020-04-30 Project News · The fourth phase of the Migration EU " \
           "Expertise Initiative is launched [project-launch]" in r.stdout
    assert r.stdout.strip().endswith("would queue 2 notifications")
    assert r.stderr.startswith("icmpd-rss: baseline: 7 items would be stored, 2 notifications "
                               "would be queued (HTTP 200, ")
    # before the first poll, not even an empty database: a dry run writes no file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harvester.toml"]
    assert run_cli("--config", cfg, "once").returncode == 0
    db = tmp_path / "h.db"
    before = sqlite3.connect(db).execute("SELECT * FROM items ORDER BY id").fetchall()
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", cfg, "once", "--dry-run")
    assert r.stderr.startswith("icmpd-rss: 3 new, 1 changed, 6 unchanged, 1 notification "
                               "would be queued (HTTP 200, ")
    # an edit is shown as it would be told: which fields, the words that changed
    lines = r.stdout.splitlines()
    at = lines.index(next(li for li in lines if li.startswith("would store CHANGED ")))
    assert lines[at + 2:at + 4] == ["    summary changed:",
                                    "      On 7 [-of-] May 2020 in Kyiv, ICMPD organized …"]
    assert sqlite3.connect(db).execute("SELECT * FROM items ORDER BY id").fetchall() == before


def test_reading_commands_before_the_first_poll_answer_and_write_no_file(tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", "http://127.0.0.1:9/rss")))
    for args, out, err in [(("items",), "", "no items\n"), (("log",), "", "no polls logged\n"),
                           (("outbox",), "", "outbox is empty\n"),
                           (("sources",), "icmpd-rss: never polled  http://127.0.0.1:9/rss\n", "")]:
        r = run_cli("--config", cfg, *args)
        assert (r.returncode, r.stdout, r.stderr) == (0, out, err), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harvester.toml"]


@pytest.mark.parametrize(("keep_log", "left"), [(None, [2, 3, 4]), ("0", [1, 2, 3, 4])])
def test_once_prunes_the_fetch_log_past_keep_log(server, icmpd_a, tmp_path, keep_log, left):
    """A poll's row in the fetch log is kept `[storage] keep_log` (90 days), then dropped:
    the one table that grows with every poll does not grow for ever."""
    http = HTTP.replace('"h.db"\n', f'"h.db"\nkeep_log = {keep_log}\n') if keep_log else HTTP
    cfg = str(make_config(tmp_path, http + feed_source("icmpd-rss", icmpd_a)))
    for _ in range(3):
        assert run_cli("--config", cfg, "once").returncode == 0
    with sqlite3.connect(tmp_path / "h.db") as db:  # the first poll, long ago
        db.execute("UPDATE fetch_log SET at = '2000-01-01T00:00:00Z' WHERE id = 1")
    r = run_cli("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr.startswith("icmpd-rss: not modified (HTTP 304, ")
    rows = sqlite3.connect(tmp_path / "h.db").execute(
        "SELECT id, status FROM fetch_log ORDER BY id").fetchall()
    assert rows == [(i, "ok" if i == 1 else "not-modified") for i in left]


def test_log_tells_each_polls_story_in_the_words_once_printed(server, icmpd_a, tmp_path):
    server.route("/broken", Response(b"<html>soft 404</html>", content_type="text/html"))
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + NOTIFY
                          + feed_source("broken", server.url("/broken"))))
    printed = []
    for feed in ("icmpd-2020-05-a.rss", "icmpd-2020-05-b.rss", None):
        if feed:
            server.route("/rss", Response(feed_bytes(feed)))
        r = run_cli("--config", cfg, "once")
        printed += sorted(line for line in r.stderr.splitlines() if ": " in line
                          and not line.startswith(("delivery", " ")))

    def timeless(lines):  # a poll's duration is rounded to the millisecond in the log
        return [re.sub(r" in \d+\.\d\ds\)", " in …s)", x) for x in lines]

    r = run_cli("--config", cfg, "log")
    assert r.returncode == 0 and r.stderr == ""
    stamps = [x[:20] for x in r.stdout.splitlines()]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in stamps)
    logged = [x[22:] for x in r.stdout.splitlines()]
    assert sorted(timeless(logged)) == sorted(timeless(printed))
    assert timeless(x for x in logged if x.startswith("icmpd-rss")) == [
        "icmpd-rss: baseline: 7 items stored silently (HTTP 200, 22.8 KB in …s)",
        "icmpd-rss: 3 new, 1 changed, 6 unchanged, 1 notification queued"
        " (HTTP 200, 35.7 KB in …s)",
        "icmpd-rss: not modified (HTTP 304, 0 B in …s)"]

    r = run_cli("--config", cfg, "log", "--source", "broken", "--last", "2", "--json")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["source"], x["status"], x["http_status"], x["baseline"]) for x in rows] == [
        ("broken", "error", 200, False)] * 2
    assert rows[0]["id"] < rows[1]["id"] and rows[1]["error"].startswith("not a ")
    r = run_cli("--config", cfg, "log", "--status", "error", "--last", "2")
    assert [x[22:] for x in r.stdout.splitlines()] == [
        "broken: error: not a feed: an HTML page with nothing to list on it (a bot check, or a "
        "maintenance or error page, came instead of the feed; `harvester probe "
        f'{server.url("/broken")}` shows it)'] * 2
    r = run_cli("--config", cfg, "log", "--status", "not-modified")
    assert timeless(x[22:] for x in r.stdout.splitlines()) == [
        "icmpd-rss: not modified (HTTP 304, 0 B in …s)"]
    r = run_cli("--config", cfg, "log", "--source", "brokn")
    assert (r.returncode, r.stdout, r.stderr) == (
        0, "", "no polls logged; no source named 'brokn' in the config"
               " (sources: icmpd-rss, broken)\n")


def test_show_gives_an_item_in_full_with_what_each_edit_changed(server, icmpd_a, tmp_path):
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)))
    assert run_cli("--config", cfg, "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    assert run_cli("--config", cfg, "once").returncode == 0
    url = ("https://www.icmpd.org/news-centre/news-detail/project-news-ukrainian-border-guards-"
           "and-customs-officers-optimise-operations-with-support-by-the-e/")

    r = run_cli("--config", cfg, "show", url + "?utm_source=mail#top")  # as pasted from a mail
    assert (r.returncode, r.stderr) == (0, "")
    out = r.stdout.splitlines()
    assert out[:3] == [
        "Project News · Ukrainian border guards and customs officers optimise operations with"
        " support by the EU", f"  id          {out[1][14:]}", f"  url         {url}"]
    assert out[3:7] == ["  published   2020-05-13 12:31 CEST (2020-05-13T10:31:28Z)", "  sources     icmpd-rss",
                        "  rules       project-launch", "  tags        -"]
    assert out[9:] == [
        "  version     2 (edited; 1 earlier version kept)", "",
        "  On 7 May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes",
        "  analysis and...", "",
        f"edited {out[14][7:27]} (version 1 → 2):",
        "  summary changed:", *(f"    {d}" for d in KYIV_WORDS)]

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out[14][7:27])  # when it was edited

    r = run_cli("--config", cfg, "show", out[1][14:], "--json")
    [item] = [json.loads(x) for x in r.stdout.splitlines()]
    assert (item["url"], item["version"]) == (url, 2)
    assert [(v["version"], v["summary"]) for v in item["versions"]] == [
        (1, KYIV_BEFORE)]

    # an item never edited (most of them): in full, with no edits to tell
    r = run_cli("--config", cfg, "show", "https://www.icmpd.org/news-centre/news-detail/"
                "project-news-first-annual-review-of-the-trafig-project/")
    assert (r.returncode, r.stderr) == (0, "")
    out = r.stdout.splitlines()
    assert [out[0], *out[2:]] == [
        "Project News · First annual review of the TRAFIG project",
        "  url         https://www.icmpd.org/news-centre/news-detail/project-news-first-annual-"
        "review-of-the-trafig-project/",
        "  published   2020-05-15 10:08 CEST (2020-05-15T08:08:57Z)", "  sources     icmpd-rss",
        "  rules       -", "  tags        -",
        f"  first seen  {out[7][14:]}", f"  last seen   {out[8][14:]}", "  version     1", "",
        "  The first year of implementation of the Horizon 2020 Transnational Figurations of",
        "  Displacement..."]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line[14:]) for line in out[7:9])

    r = run_cli("--config", cfg, "show", "i_nope")
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "harvester: error: no stored item with id or URL 'i_nope' (`harvester items"
               " --json` gives ids)\n")


def test_check_describes_what_would_be_polled(tmp_path):
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", "https://www.icmpd.org/news-centre/rss", every="2h")
                      + feed_source("weekly", "https://www.icmpd.org/weekly")
                      + 'cron = "0 9 * * 7"\nmax_age = "14d"\nedits = "added"\n' + NOTIFY)
    r = run_cli("--config", str(cfg), "check")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        f"{cfg}: ok",
        f"database: {tmp_path / 'h.db'}, fetch log kept 90d",
        "proxy: none, requests go direct",
        "source icmpd-rss: feed https://www.icmpd.org/news-centre/rss every 2h, first run baseline",
        "source weekly: feed https://www.icmpd.org/weekly on cron '0 9 * * 7' (Europe/Vienna), "
        "first run baseline, new items older than 14d not notified, edits told only when "
        "they add words",
        "rule press-release: categories Press Release",
        "rule project-launch: match in title/summary; with exclude",
        "notifier team: console, press-release, project-launch, on new",
    ]


def test_check_warns_of_a_notifiers_secret_not_set_or_not_a_secret(tmp_path):
    """Found by `check` before deploying, not as rows waiting after the first news; named,
    never shown, and no failure: the daemon's environment may be another than this one."""
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", "https://www.icmpd.org/rss") + (
        '[[notifiers]]\nname = "hook"\nkind = "webhook"\nurl = "https://hooks.example/x"\n'
        'secret_env = "HV_SECRET"\n[[notifiers]]\nname = "mail"\nkind = "email"\n'
        'host = "smtp.example"\nfrom = "a@example.org"\nto = ["b@example.org"]\n'
        'username_env = "HV_USER"\npassword_env = "HV_PASSWORD"\n'), rules=False)
    bare = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    r = run_cli("--config", str(cfg), "check", env=bare | {"HV_USER": "watcher"})
    assert (r.returncode, r.stderr.splitlines()) == (0, [
        "  warning: environment variable HV_SECRET (secret_env) is not set here: the "
        "notifications wait until it is",
        "  warning: environment variable HV_PASSWORD (password_env) is not set here: the "
        "notifications wait until it is"])
    r = run_cli("--config", str(cfg), "check", env=bare | {
        "HV_SECRET": "whsec_not-base64", "HV_USER": "watcher", "HV_PASSWORD": "s3cret"})
    assert (r.returncode, r.stderr) == (0, (
        "  warning: environment variable HV_SECRET is no signing secret: a whsec_ secret is "
        "base64 after its prefix (Only base64 data is allowed)\n"))
    assert "s3cret" not in r.stdout + r.stderr and "not-base64" not in r.stdout + r.stderr
    r = run_cli("--config", str(cfg), "check", env=bare | {
        "HV_SECRET": "whsec_c2VjcmV0", "HV_USER": "watcher", "HV_PASSWORD": "s3cret"})
    assert (r.returncode, r.stderr) == (0, "")


def test_check_warns_of_two_sources_reading_one_url_alike(tmp_path):
    """The same feed under two names (another spelling of its URL): fetched twice a round
    for the same items. Two sections of one listing page are two sources, not a repeat."""
    section = ('[[sources]]\nname = "{name}"\nkind = "html"\nurl = "https://www.icmpd.org/'
               'news-centre/"\n  [sources.select]\n  item = "{item}"\n  title = "h3"\n'
               '  link = "h3 a"\n')
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", "https://www.icmpd.org/news-centre/rss")
                      + feed_source("again", "HTTPS://WWW.ICMPD.ORG:443/news-centre/rss#top")
                      + section.format(name="news", item="div.news-item")
                      + section.format(name="events", item="div.event"), rules=False)
    r = run_cli("--config", str(cfg), "check")
    assert (r.returncode, r.stderr) == (0, (
        "  warning: sources icmpd-rss, again poll the same URL (https://www.icmpd.org/"
        "news-centre/rss): it is fetched 2 times a round for the same items; keep one\n"))


def test_check_warns_of_a_source_polled_more_than_once_a_minute(tmp_path):
    """A typo'd `every = "10s"` (for 10m) hammers a site six times a minute: said on stderr,
    the check still passing (which sources are warned of: test_advice.py)."""
    cfg = make_config(tmp_path, HTTP
                      + feed_source("hasty", "https://www.icmpd.org/news-centre/rss", every="10s")
                      + feed_source("minute", "https://e.org/a", every="1m"), rules=False)
    r = run_cli("--config", str(cfg), "check")
    assert (r.returncode, r.stderr) == (0, (
        "  warning: source hasty polls https://www.icmpd.org/news-centre/rss every 10s: more "
        "than once a minute is more than news changes and more than many sites allow (they "
        "block an address for less); 15m to 1h is usual\n"))


def test_check_names_a_sources_headers_but_never_their_values(tmp_path):
    cfg = make_config(tmp_path, HTTP + feed_source("intranet", "https://news.corp.example/rss")
                      + 'headers = { Authorization = "Bearer ${HV_TOKEN}", Cookie = "a=1" }\n',
                      rules=False)
    r = run_cli("--config", str(cfg), "check", env={"HV_TOKEN": "s3cret-t0ken"})
    assert r.returncode == 0, r.stderr
    assert ("source intranet: feed https://news.corp.example/rss every 30m, first run baseline, "
            "sends Authorization, Cookie") in r.stdout.splitlines()
    assert "s3cret" not in r.stdout
    r = run_cli("--config", str(cfg), "check")
    assert (r.returncode, r.stderr) == (2, f"harvester: error: {cfg}: sources[0].headers."
                                           "Authorization: environment variable HV_TOKEN is not set\n")


def test_check_says_which_sources_a_rule_keeps_to_and_that_no_one_is_told(tmp_path):
    cfg = make_config(tmp_path, HTTP + feed_source("press-office", "https://e.org/rss")
                      + '[[rules]]\nname = "all-press"\nsources = ["press-office"]\n'
                      'exclude = "(?i)vacanc"\n', rules=False)
    r = run_cli("--config", str(cfg), "check")
    assert r.stdout.splitlines()[-2:] == [
        "rule all-press: from press-office; with exclude",
        "notifiers: none, so nobody is told of new items (`items` lists them; "
        "config/example.toml shows a [[notifiers]] table)"], r.stderr


def test_check_names_a_webhooks_headers_but_never_their_values(tmp_path):
    cfg = make_config(tmp_path, HTTP + '\n[[notifiers]]\nname = "hook"\nkind = "webhook"\n'
                      'url = "https://hooks.corp.example/n8n"\n'
                      'headers = { X-Api-Key = "${HV_TOKEN}" }\n', rules=False)
    r = run_cli("--config", str(cfg), "check", env={"HV_TOKEN": "s3cret-t0ken"})
    assert r.returncode == 0, r.stderr
    assert "notifier hook: webhook, every item, on new, sends X-Api-Key" in r.stdout.splitlines()
    assert "s3cret" not in r.stdout


@pytest.mark.parametrize("args", [("items", "--source"), ("items", "--atom", "--rule"),
                                  ("items", "--search"), ("show",), ("log", "--source")])
def test_an_argument_that_is_not_utf8_is_a_usage_error_not_a_traceback(tmp_path, args):
    cfg = make_config(tmp_path, HTTP)
    r = run_cli("--config", str(cfg), *args, os.fsdecode(b"caf\xe9"))  # Latin-1 in a UTF-8 shell
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "harvester: error: an argument is not UTF-8 text (it holds b'\\xe9')\n"


@pytest.mark.parametrize(("url", "hint"), [
    ("http://[intranet/news", ""), ("ftp://example.org/", ""), ("news page", ""), ("http://", ""),
    ("www.icmpd.org/news-centre/", " (did you mean https://www.icmpd.org/news-centre/?)")])
def test_probe_names_a_url_it_cannot_fetch(tmp_path, url, hint):
    r = run_cli("probe", url, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"harvester: error: not an http(s) URL: {url}{hint}\n"


def test_check_says_which_notifiers_hear_no_items_and_which_hear_nothing(tmp_path):
    cfg = make_config(tmp_path, HTTP + NOTIFY
                      + '\n[[notifiers]]\nname = "ops"\nkind = "console"\n'
                      'events = ["source.failing"]\n'
                      '\n[[notifiers]]\nname = "mute"\nkind = "console"\non = []\n')
    r = run_cli("--config", str(cfg), "check")
    assert r.stdout.splitlines()[-3:] == [
        "notifier team: console, press-release, project-launch, on new",
        "notifier ops: console, no items, events source.failing",
        "notifier mute: console, no items; it hears nothing (`on = []` and no `events`)"]


def test_check_says_when_a_notifier_with_an_at_time_sends(tmp_path):
    cfg = make_config(tmp_path, HTTP + NOTIFY + 'at = "mon 7:30"\n')
    r = run_cli("--config", str(cfg), "check")
    assert r.stdout.splitlines()[-1] == ("notifier team: console, press-release, project-launch,"
                                         " on new, every mon at 07:30 (Europe/Vienna)")


def test_demo_runs_offline_and_shows_new_and_changed():
    r = run_cli("demo")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "icmpd-rss: baseline — 7 items stored, none notified" in out
    assert "icmpd-news: baseline — 43 items stored, none notified" in out
    assert "icmpd-news: 2 new, 1 changed, 7 unchanged" in out
    assert "  NEW     2022-04-01  Project News · The projects TRAFIG and SPRING" in out
    assert "icmpd-rss: 3 new, 1 changed, 6 unchanged" in out
    assert "  NEW     2020-05-20 09:41 CEST  Press Release · Germany joins the European migration " \
           "organisation ICMPD" in out
    assert "        rules: press-release" in out
    assert "  CHANGED 2020-05-13 12:31 CEST  Project News · Ukrainian border guards" in out
    # the article page watched whole: its edit is its news
    assert "icmpd-kyiv-article: baseline — 1 item stored, none notified" in out
    assert "icmpd-kyiv-article: 0 new, 1 changed, 0 unchanged" in out
    assert "          content changed:\n            … EU 13 May 2020 On 7 [-of-] May 2020 in " \
           "Kyiv, ICMPD organized …\n" in out
    assert "notifications: 2 queued, delivered to the console:\n== Press Release: Germany joins" \
           " the European migration organisation ICMPD\n" in out
    assert "\n== Updated: Ukrainian border guards and customs officers optimise operations with " \
           "support by the EU - ICMPD\n" in out
    assert "delivery: 2 sent, 0 waiting to retry, 0 dead" in out
    assert "icmpd-rss: not modified (HTTP 304)" in out
    assert "icmpd-news: not modified (HTTP 304)" in out
    assert "icmpd-kyiv-article: not modified (HTTP 304)" in out
    assert out.rstrip().endswith("56 items stored; 15 match a rule")


def test_version_and_help():
    r = run_cli("--version")
    assert r.returncode == 0 and "0.1.0" in r.stdout
    r = run_cli("--help")
    for cmd in ("once", "items", "sources", "check", "demo"):
        assert cmd in r.stdout


@pytest.mark.parametrize("args", [
    ("log", "--last", "99999999999999999999"),
    ("items", "--limit", "99999999999999999999"),
    ("probe", "https://www.icmpd.org/news-centre/", "--entries", "-1"),
])
def test_a_count_out_of_range_is_a_usage_error_naming_the_option(tmp_path, args):
    """A count past what SQLite's integers hold was a traceback (`log`) or "datatype
    mismatch" (`items`); probe took a negative one. Said as any bad option is, before
    anything is read or fetched."""
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", "https://www.icmpd.org/rss"))
    r = run_cli("--config", str(cfg), *args)
    assert r.returncode == 2 and r.stdout == ""
    low = 0 if args[0] == "probe" else 1  # probe --entries 0 prints the block alone
    assert r.stderr.splitlines()[-1] == (f"Error: Invalid value for '{args[-2]}': {args[-1]} is "
                                         f"not in the range {low}<=x<=1000000000.")


def test_a_source_last_read_by_an_earlier_version_is_said_so_not_as_changed_settings(
        server, icmpd_a, tmp_path):
    """After an upgrade whose reading differs (HASH_VERSION), `sources` says the source was
    last read by an earlier harvester, not that its settings changed (nobody changed the
    config); its next poll reads it anew and tells no edit of it."""
    import sqlite3

    from harvester.config import load_config
    from harvester.harvest import read_settings

    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + NOTIFY)
    assert run_cli("--config", str(cfg), "once").returncode == 0
    [src] = load_config(cfg).sources
    with sqlite3.connect(tmp_path / "h.db") as db:  # as the harvester before v3 left it
        db.execute("UPDATE sources SET read_as = ?, body_hash = NULL, etag = NULL,"
                   " last_modified = NULL", (read_settings(src, "v2"),))
        db.execute("UPDATE items SET content_hash = 'v2:' || substr(content_hash, 4)")
    text = run_cli("--config", str(cfg), "sources").stdout.splitlines()
    assert ("    last read by an earlier harvester version: its next poll reads it anew, and "
            "stored items it reads otherwise are updated silently") in text
    assert not any("settings changed" in line for line in text)
    r = run_cli("--config", str(cfg), "once")
    assert r.stderr.startswith("icmpd-rss: 0 new, 0 changed, 7 unchanged (HTTP 200, ")
    assert not any("earlier harvester" in line
                   for line in run_cli("--config", str(cfg), "sources").stdout.splitlines())


@pytest.mark.parametrize(("head", "said"), [
    # a window title set, colours (7-bit and C1 forms), a carriage return over the line
    (b"HTTP/1.1 500 Boom \x1b]0;pwned\x07\x1b[31mRED\x1b[0m \x9b2Jgone\rok\r\n",
     "HTTP 500 Boom RED gone ok"),
    (b"HTTP/1.1 503 \x1b]52;c;cHduZWQ=\x1b\\Busy\xe2\x80\xae\r\n", "HTTP 503 Busy\xe2\xae"),  # UTF-8 read as Latin-1, as HTTP reads it
])
def test_a_servers_words_reach_the_terminal_as_text_not_as_commands(server, tmp_path, head,
                                                                    said):
    """A status line is the server's to write: an escape sequence in it would set the
    terminal's title or clipboard, colour or clear the screen, where `once`, `sources` and
    `log` print it. They print its text, and the operators' alert carries the same."""
    from .hostile import _raw

    server.route("/evil", lambda h: _raw(h, head + b"Content-Length: 0\r\n\r\n"))
    cfg = str(make_config(tmp_path, HTTP.replace("[defaults]\n", "[defaults]\nfailures_before_"
                                                 "alert = 1\n")
                          + feed_source("evil", server.url("/evil"))
                          + '\n[[notifiers]]\nname = "ops"\nkind = "console"\n'
                          'events = ["source.failing"]\n'))
    outputs = [run_cli("--config", cfg, "once")]
    assert outputs[0].returncode == 1
    assert f"evil: error: {said}\n" in outputs[0].stderr
    outputs += [run_cli("--config", cfg, command) for command in ("sources", "log")]
    for r in outputs:
        shown = r.stdout + r.stderr
        assert said in shown
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown), (
            r.args, shown)


def test_words_an_earlier_version_stored_as_the_server_wrote_them_are_shown_as_text(
        server, icmpd_a, tmp_path):
    """Errors stored before they were kept as text (a status line's escapes, a receiver's
    answer) are shown as text by `sources`, `log` and `outbox` all the same."""
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + NOTIFY))
    assert run_cli("--config", cfg, "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    assert run_cli("--config", cfg, "once").returncode == 0  # a press release: one row queued
    said = "HTTP 500 \x1b]0;pwned\x07Boom\x1b[2J\r\nagain\u202e"
    with sqlite3.connect(tmp_path / "h.db") as db:
        db.execute("UPDATE sources SET last_error = ?, last_error_at = '2020-05-27T09:00:00Z'",
                   (said,))
        db.execute("UPDATE fetch_log SET status = 'error', error = ?, warning = ?",
                   (said, said))
        db.execute("UPDATE outbox SET status = 'pending', last_error = ?", (said,))
    for command in ("sources", "log", "outbox"):
        r = run_cli("--config", cfg, command)
        assert r.returncode in (0, 1), (command, r.stderr)
        assert "HTTP 500 Boom again" in r.stdout, (command, r.stdout)
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                             r.stdout + r.stderr), (command, r.stdout)
