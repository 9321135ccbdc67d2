"""The pipeline end to end: a real loopback HTTP server, a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harvester.config import load_config
from harvester.devserver import Response
from harvester.harvest import poll_sources
from harvester.models import HASH_VERSION, PollReport, PollStatus
from harvester.notify.deliver import deliver
from harvester.store import SqliteStore

from .conftest import (
    NOW,
    PAGES,
    feed_bytes,
    feed_source,
    http_fast,
    make_config,
    redirect,
    run_cli,
    source_lock_held,
)

CONSOLE = '\n[[notifiers]]\nname = "team"\nkind = "console"\nrules = ["press-release", "project-launch"]\n'
ALL_EDITS = '\n[[notifiers]]\nname = "edits"\nkind = "console"\non = ["new", "changed"]\n'


def clock():
    return NOW


def poll(config, store, **kw):
    return {r.source: r for r in poll_sources(config, store, clock=clock, **kw)}


def snapshot(conn_or_store) -> dict:
    """Everything stored, for 'nothing changed' assertions."""
    conn = conn_or_store.conn if isinstance(conn_or_store, SqliteStore) else conn_or_store
    out = {}
    for table in ("items", "sightings", "item_versions", "outbox"):
        out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return out


EXPECTED_A = [  # (published UTC, category, title, canonical URL path) from seed 002
    ("2020-05-15T08:08:57Z", "Project News", "First annual review of the TRAFIG project",
     "/news-centre/news-detail/project-news-first-annual-review-of-the-trafig-project/"),
    ("2020-05-13T13:07:50Z", "COVID-19", "ICMPD employees will start to return to their workplaces",
     "/news-centre/news-detail/covid-19-icmpd-employees-will-start-to-return-to-their-workplaces/"),
    ("2020-05-13T10:31:28Z", "Project News",
     "Ukrainian border guards and customs officers optimise operations with support by the EU",
     "/news-centre/news-detail/project-news-ukrainian-border-guards-and-customs-officers-optimise"
     "-operations-with-support-by-the-e/"),
    ("2020-05-12T11:09:43Z", "Project news",
     "First expert meeting on asylum in the framework of the ICMPD Annual Policy Initiative 2020",
     "/news-centre/news-detail/project-news-first-expert-meeting-on-asylum-in-the-framework-of-the"
     "-icmpd-annual-policy-initiative/"),
    ("2020-05-08T07:38:21Z", "Expert Voice", "Immunity passports – unwise and unnecessary",
     "/news-centre/news-detail/expert-voice-immunity-passports-unwise-and-unnecessary/"),
    ("2020-05-07T10:31:21Z", "Project news",
     "TALENTAS project virtual meeting “Talent Policy in times of COVID-19 and beyond”",
     "/news-centre/news-detail/project-news-talentas-project-virtual-meeting-talent-policy-in-times"
     "-of-covid-19-and-beyond/"),
    ("2020-04-30T12:18:01Z", "Project News",
     "The fourth phase of the Migration EU Expertise Initiative is launched",
     "/news-centre/news-detail/project-news-the-fourth-phase-of-the-migration-eu-expertise"
     "-initiative-is-launched/"),
]


def test_baseline_stores_every_item_and_notifies_nothing(server, icmpd_a, config_for, store):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=CONSOLE)
    r = poll(config, store)["icmpd-rss"]
    assert (r.status, r.baseline, r.new, r.changed, r.unchanged, r.queued) == (
        PollStatus.OK, True, 7, 0, 0, 0)
    rows = store.items()
    assert [(i["published"], i["category"], i["title"], i["url"]) for i in rows] == [
        (p, c, t, "https://www.icmpd.org" + u) for p, c, t, u in EXPECTED_A]
    assert store.outbox() == []
    launched = [i["title"] for i in rows if "project-launch" in i["rules"]]
    assert launched == [EXPECTED_A[2][2], EXPECTED_A[6][2]]
    src = store.sources()[0]
    assert src["baseline_at"] == "2020-05-28T08:00:00Z" and src["items"] == 7
    assert src["etag"] and src["last_modified"] and src["consecutive_failures"] == 0


def test_second_snapshot_new_changed_unchanged_and_outbox(server, icmpd_a, config_for, store):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=CONSOLE + ALL_EDITS)
    poll(config, store)
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = poll(config, store)["icmpd-rss"]
    assert (r.status, r.baseline, r.new, r.changed, r.unchanged) == (PollStatus.OK, False, 3, 1, 6)
    by_title = {i["title"]: i for i in store.items()}
    assert len(by_title) == 10
    germany = by_title["Germany joins the European migration organisation ICMPD"]
    assert germany["category"] == "Press Release" and germany["rules"] == ["press-release"]
    assert germany["published"] == "2020-05-20T07:41:00Z"
    assert germany["url"] == ("https://www.icmpd.org/news-centre/news-detail/press-release-germany"
                              "-joins-the-european-migration-organisation-icmpd/")
    edited = by_title[EXPECTED_A[2][2]]
    assert edited["version"] == 2
    assert edited["summary"].startswith("On 7 May 2020 in Kyiv, ICMPD organized a kick-off")
    [old] = store.item_versions(edited["id"])
    assert old["version"] == 1 and old["summary"].startswith("On 7 of May 2020 in Kyiv")
    outbox = {(o["notifier"], o["event"], o["item_id"]) for o in store.outbox()}
    new_ids = {by_title[t]["id"] for t in (
        "Germany joins the European migration organisation ICMPD",
        "How the COVID-19 ‘Infodemic’ targets migrants",
        "ICMPD provides Ukrainian border guards with protective equipment in response to COVID-19")}
    assert outbox == {("team", "item.new", germany["id"])} | {
        ("edits", "item.new", i) for i in new_ids} | {("edits", "item.changed", edited["id"])}
    assert all(o["status"] == "pending" for o in store.outbox())
    assert [ (f["status"], f["new"], f["changed"], f["unchanged"]) for f in store.fetch_log()] == [
        ("ok", 7, 0, 0), ("ok", 3, 1, 6)]



def test_new_items_older_than_max_age_are_stored_not_notified(server, icmpd_a, config_for,
                                                              store):
    """Snapshot B brings three items new to the store; two are dated a week before the
    poll (27 May vs 20 and 18 May): with max_age = "5d" they are stored and told as no news,
    and the poll's line, and `log` after it, say so."""
    config = config_for(feed_source("icmpd-rss", icmpd_a, max_age="5d"),
                        notifiers=CONSOLE + ALL_EDITS)
    poll(config, store)
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = poll(config, store)["icmpd-rss"]
    assert (r.new, r.old, r.changed, r.unchanged, r.queued) == (3, 2, 1, 6, 2)
    assert r.line().startswith("icmpd-rss: 3 new (2 older than max_age: not notified), "
                               "1 changed, 6 unchanged, 2 notifications queued (HTTP 200, ")
    titles = {i["id"]: i["title"] for i in store.items()}
    assert len(titles) == 10  # stored all the same
    assert sorted((o["notifier"], o["event"], titles[o["item_id"]]) for o in store.outbox()) == [
        ("edits", "item.changed", EXPECTED_A[2][2]),
        ("edits", "item.new", "ICMPD provides Ukrainian border guards with protective equipment"
                              " in response to COVID-19")]
    logged = store.fetch_log()[-1]
    assert logged["old"] == 2 and PollReport.from_log(logged).line() == r.line()



def test_a_repoll_that_finds_nothing_stored_before_warns_of_missed_entries(
        server, icmpd_a, config_for, store):
    """Snapshot A has seven entries; a day later the feed's window holds three others
    only (more came than it shows): the entries that came and went between were never
    seen, and the poll says so. A window that still holds one stored entry does not."""
    config = config_for(feed_source("icmpd-rss", icmpd_a))
    poll(config, store)
    b = feed_bytes("icmpd-2020-05-b.rss")
    head, *entries = b.split(b"<item>")  # B's first three entries are the new ones
    server.route("/rss", Response(b"<item>".join([head, *entries[:3]]).rpartition(b"</item>")[0]
                                  + b"</item></channel></rss>"))
    r = poll(config, store)["icmpd-rss"]
    assert (r.new, r.changed, r.unchanged) == (3, 0, 0)
    assert r.warning == ("none of the feed's 3 entries was stored before: any that came "
                         "and went since the last poll were missed (poll it more often)")
    assert store.fetch_log()[-1]["warning"] == r.warning
    assert r.line().endswith("; warning: " + r.warning)
    server.route("/rss", Response(b))  # the three and seven seen before
    r = poll(config, store)["icmpd-rss"]
    assert (r.new, r.warning) == (0, None)


def test_not_modified_sends_validators_and_writes_only_the_log(server, icmpd_a, config_for,
                                                               store):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=CONSOLE)
    poll(config, store)
    before = snapshot(store)
    r = poll(config, store)["icmpd-rss"]
    assert (r.status, r.http_status, r.new, r.bytes) == (PollStatus.NOT_MODIFIED, 304, 0, 0)
    second = server.hits("/rss")[1].headers
    assert second["If-None-Match"] == Response(feed_bytes("icmpd-2020-05-a.rss")).etag
    assert second["If-Modified-Since"] == "Wed, 27 May 2020 09:06:39 GMT"
    assert snapshot(store) == before
    assert [f["status"] for f in store.fetch_log()] == ["ok", "not-modified"]


def test_identical_body_without_validators_is_not_parsed_again(server, config_for, store):
    server.route("/plain", Response(feed_bytes("icmpd-2020-05-a.rss"), conditional=False))
    config = config_for(feed_source("icmpd-rss", server.url("/plain")))
    poll(config, store)
    before = snapshot(store)
    r = poll(config, store)["icmpd-rss"]
    assert (r.status, r.http_status) == (PollStatus.NOT_MODIFIED, 200)
    assert snapshot(store) == before


@pytest.mark.parametrize(("first_run", "queued"), [("all", 7), ("latest:2", 2), ("baseline", 0)])
def test_first_run_setting(server, icmpd_a, config_for, store, first_run, queued):
    config = config_for(feed_source("icmpd-rss", icmpd_a, first_run=first_run),
                        notifiers=ALL_EDITS)
    r = poll(config, store)["icmpd-rss"]
    assert r.baseline and r.queued == queued and len(store.outbox()) == queued
    if first_run == "latest:2":
        titles = {i["id"]: i["title"] for i in store.items()}
        assert sorted(titles[o["item_id"]] for o in store.outbox()) == sorted(
            [EXPECTED_A[0][2], EXPECTED_A[1][2]])


def test_source_added_later_gets_a_baseline_too(server, icmpd_a, config_for, store):
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ALL_EDITS)
    poll(config, store)
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        feed_source("icmpd-2019", server.url("/2019")), notifiers=ALL_EDITS)
    reports = poll(config, store)
    assert reports["icmpd-2019"].baseline and reports["icmpd-2019"].new == 10
    assert reports["icmpd-rss"].status is PollStatus.NOT_MODIFIED
    assert store.outbox() == []


def test_failing_source_does_not_stop_the_others_nor_touch_items(server, icmpd_a, config_for,
                                                                 store):
    def slow(handler):
        time.sleep(4)  # past the 2 s timeout
        return Response(b"late")

    server.route("/slow", slow)
    server.route("/garbage", Response(b"\x89PNG\r\n\x1a\n\x00\x00binary junk", content_type="image/png"))
    config = config_for(feed_source("icmpd-rss", icmpd_a), feed_source("slow", server.url("/slow")),
                        feed_source("garbage", server.url("/garbage")))
    reports = poll(config, store)
    assert reports["icmpd-rss"].status is PollStatus.OK and reports["icmpd-rss"].new == 7
    assert reports["slow"].status is PollStatus.ERROR
    assert reports["slow"].error == "timed out after 2s"
    assert reports["garbage"].status is PollStatus.ERROR
    assert reports["garbage"].error.startswith("not a readable feed (")
    health = {s["name"]: s for s in store.sources()}
    assert health["slow"]["consecutive_failures"] == 1 and health["slow"]["last_success"] is None
    assert health["garbage"]["last_error"].startswith("not a readable feed")


def test_failed_poll_after_baseline_changes_no_stored_item(server, icmpd_a, config_for, store):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ALL_EDITS)
    poll(config, store)
    before = snapshot(store)
    for bad in (Response(b"", content_type="application/rss+xml"),
                Response(b"<html><body>Page not found</body></html>", content_type="text/html"),
                Response(b"<rss><channel><item><title>trunc", content_type="application/rss+xml"),
                Response(b"oops", status=500, content_type="text/plain")):
        server.route("/rss", bad)
        r = poll(config, store)["icmpd-rss"]
        assert r.status is PollStatus.ERROR, bad
        assert snapshot(store) == before
    src = store.sources()[0]
    assert src["consecutive_failures"] == 4 and src["last_error"] == "HTTP 500 Internal Server Error"
    # and it recovers: the counter snaps back
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    assert poll(config, store)["icmpd-rss"].status is not PollStatus.ERROR
    assert store.sources()[0]["consecutive_failures"] == 0


def test_too_large_body_is_an_error_not_a_truncated_parse(server, config_for, store, tmp_path):
    big = feed_bytes("icmpd-2019-03.rss")
    server.route("/big", Response(big))
    http = f'[storage]\npath = "h.db"\n[http]\nmax_bytes = {len(big) - 1}\nretries = 0\n'
    config = config_for(feed_source("big", server.url("/big")), http=http)
    r = poll(config, store)["big"]
    assert r.status is PollStatus.ERROR
    assert r.error == f"too large: body exceeds the {len(big) - 1}-byte cap"
    # declared up front: refused before reading
    server.gzip_bodies = False
    r = poll(config, store)["big"]
    assert r.error == f"too large: Content-Length {len(big)} exceeds the {len(big) - 1}-byte cap"
    assert store.items() == []


def test_transient_errors_are_retried_honouring_retry_after(server, config_for, store):
    calls = []

    def flaky(handler):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response(b"busy", status=503, content_type="text/plain",
                            headers={"Retry-After": "1"}, conditional=False)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/flaky", flaky)
    http = '[storage]\npath = "h.db"\n[http]\ntimeout = 5\nretries = 2\n'
    config = config_for(feed_source("flaky", server.url("/flaky")), http=http)
    r = poll(config, store)["flaky"]
    assert r.status is PollStatus.OK and r.new == 7
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9


def test_changed_guid_same_link_is_one_item(server, config_for, store):
    def rss(guid: str) -> bytes:
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                f'<item><title>Press Release: A</title><guid isPermaLink="false">{guid}</guid>'
                f"<link>https://www.icmpd.org//news/a/</link>"
                f"<pubDate>Wed, 27 May 2020 11:06:39 +0200</pubDate></item></channel></rss>"
                ).encode()

    server.route("/g", Response(rss("tx_ttnews-1")))
    config = config_for(feed_source("g", server.url("/g")), notifiers=ALL_EDITS)
    poll(config, store)
    server.route("/g", Response(rss("tx_ttnews-1-new")))
    r = poll(config, store)["g"]
    assert (r.new, r.changed, r.unchanged) == (0, 0, 1)
    assert len(store.items()) == 1 and store.outbox() == []
    keys = [k for (k,) in store.conn.execute("SELECT key FROM sightings ORDER BY key")]
    assert keys == ["guid:tx_ttnews-1", "guid:tx_ttnews-1-new"]


def test_dry_run_writes_nothing(server, icmpd_a, config_for, store):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ALL_EDITS)
    r = poll(config, store, dry_run=True)["icmpd-rss"]
    assert r.new == 7 and r.baseline
    assert snapshot(store) == {"items": [], "sightings": [], "item_versions": [], "outbox": []}
    assert store.sources() == [] and store.fetch_log() == []


BUSY_LINE = "icmpd-rss: not polled: another harvester process is polling it now"


def test_a_source_another_process_is_polling_is_left_to_it(server, icmpd_a, config_for, store,
                                                           tmp_path):
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        feed_source("archive", server.url("/2019")))
    with source_lock_held(tmp_path / "h.db", "icmpd-rss"):
        reports = poll(config, store)
    busy = reports["icmpd-rss"]
    assert (busy.status, busy.line()) == (PollStatus.BUSY, BUSY_LINE)
    assert server.hits("/rss") == []
    assert store.fetch_log(source="icmpd-rss") == []  # not a poll: nothing in its history
    assert not store.source_state("icmpd-rss").baseline_done
    assert reports["archive"].status is PollStatus.OK and reports["archive"].baseline
    # once the other process lets go, it is polled as ever
    again = poll(config, store)["icmpd-rss"]
    assert (again.status, again.baseline, again.new) == (PollStatus.OK, True, 7)


def test_a_poll_lets_go_of_its_sources_even_when_cut_short(server, icmpd_a, config_for, store,
                                                           tmp_path):
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        feed_source("archive", server.url("/2019")))
    poll(config, store)
    polls = poll_sources(config, store, clock=clock)
    next(polls)  # one source recorded, the other perhaps not yet
    polls.close()
    for name in ("icmpd-rss", "archive"):  # the helper asserts it could take the lock
        with source_lock_held(tmp_path / "h.db", name):
            pass


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("extra", "state", "now", "due", "at"), [
    ("", {}, "2020-05-28T08:00:00Z", True, None),  # never polled
    ('every = "30m"\n', {"last": "2020-05-28T07:40:00Z"}, "2020-05-28T08:00:00Z", False,
     "2020-05-28T08:10:00Z"),
    # a run three minutes early (a tenth of the interval) finds it due: cron starts runs on
    # the minute, the last poll was stamped as it ended
    ('every = "30m"\n', {"last": "2020-05-28T07:30:05Z"}, "2020-05-28T07:57:05Z", True,
     "2020-05-28T08:00:05Z"),
    ('every = "30m"\n', {"last": "2020-05-28T07:30:05Z"}, "2020-05-28T07:57:00Z", False,
     "2020-05-28T08:00:05Z"),
    # failing three times in a row: 30 min doubled twice, as the daemon spaces them
    ('every = "30m"\n', {"last": "2020-05-28T07:00:00Z", "failures": 3},
     "2020-05-28T08:00:00Z", False, "2020-05-28T09:00:00Z"),
    ('every = "30m"\n', {"last": "2020-05-28T07:00:00Z", "failures": 3},
     "2020-05-28T08:48:00Z", True, "2020-05-28T09:00:00Z"),
    # … never further apart than [daemon] backoff_max (6 h)
    ('every = "1d"\n', {"last": "2020-05-28T07:00:00Z", "failures": 4},
     "2020-05-28T12:00:00Z", False, "2020-05-28T13:00:00Z"),
    # … however long the run of failures (a site down for weeks, polled at the cap): 2 to
    # the 1,025th power of an interval is past what a float holds
    ('every = "1m"\n', {"last": "2020-05-28T07:00:00Z", "failures": 5000},
     "2020-05-28T12:30:00Z", True, "2020-05-28T13:00:00Z"),
    # a cron line, in the source's zone (Vienna, summer: UTC+2), due from its minute on
    ('cron = "0 9 * * 1"\ntimezone = "Europe/Vienna"\n', {"last": "2020-05-25T07:00:04Z"},
     "2020-06-01T06:59:00Z", False, "2020-06-01T07:00:00Z"),
    ('cron = "0 9 * * 1"\ntimezone = "Europe/Vienna"\n', {"last": "2020-05-25T07:00:04Z"},
     "2020-06-01T07:00:00Z", True, "2020-06-01T07:00:00Z"),
    # … through the hour the clock repeats (25 Oct 2026): 02:40 CEST, then 02:00 CET
    ('cron = "*/20 * * * *"\ntimezone = "Europe/Vienna"\n', {"last": "2026-10-25T00:40:03Z"},
     "2026-10-25T01:00:00Z", True, "2026-10-25T01:00:00Z"),
])
def test_once_due_polls_a_source_when_its_schedule_says(config_for, extra, state, now, due, at):
    from harvester.harvest import due_at, split_due
    from harvester.models import SourceState

    config = config_for(feed_source("s", "https://www.icmpd.org/rss") + extra)
    [src] = config.sources
    st = SourceState("s", consecutive_failures=state.get("failures", 0),
                     last_polled=_at(state["last"]) if "last" in state else None)
    assert due_at(src, st, config.daemon.backoff_max) == (_at(at) if at else None)
    ready, later = split_due([src], {"s": st}, _at(now), config.daemon.backoff_max)
    assert (ready, later) == (([src], []) if due else ([], [(src, _at(at))]))


def test_a_cron_line_that_never_fires_is_never_due(config_for):
    from harvester.harvest import NEVER, split_due
    from harvester.models import SourceState

    config = config_for(feed_source("s", "https://www.icmpd.org/rss") + 'cron = "0 0 30 2 *"\n')
    [src] = config.sources
    st = SourceState("s", last_polled=_at("2020-05-28T07:00:00Z"))
    assert split_due([src], {"s": st}, _at("2030-01-01T00:00:00Z"), 3600.0) == (
        [], [(src, NEVER)])


def _tracked(active: dict, peak: dict, lock: threading.Lock, host: str):
    def handler(h):
        with lock:
            active[host] = active.get(host, 0) + 1
            active["all"] = active.get("all", 0) + 1
            peak[host] = max(peak.get(host, 0), active[host])
            peak["all"] = max(peak.get("all", 0), active["all"])
        time.sleep(0.2)
        with lock:
            active[host] -= 1
            active["all"] -= 1
        # distinct articles per source (same titles on the same day would be one item)
        return Response(feed_bytes("icmpd-2020-05-a.rss").replace(
            b"https://www.icmpd.org//", f"https://{host}/{h.path[1:]}/".encode()).replace(
            b"</title>", f" ({host}{h.path})</title>".encode()))
    return handler


def test_fetches_are_bounded_globally_and_per_host(config_for, store):
    from harvester.devserver import FixtureServer

    active, peak, lock = {}, {}, threading.Lock()
    with FixtureServer(host="127.0.0.1") as one, FixtureServer(host="127.0.0.2") as two:
        sources = []
        for srv, host in ((one, "one"), (two, "two")):
            for i in range(4):
                srv.route(f"/f{i}", _tracked(active, peak, lock, host))
                sources.append(feed_source(f"{host}-{i}", srv.url(f"/f{i}")))
        http = '[storage]\npath = "h.db"\n[http]\nconcurrency = 3\nper_host = 2\n'
        reports = poll(config_for(*sources, http=http), store)
    assert {(r.status, r.new) for r in reports.values()} == {(PollStatus.OK, 7)}, [
        (r.source, r.new, r.unchanged, r.error) for r in reports.values()]
    assert peak["one"] == 2 and peak["two"] == 2  # per host
    assert peak["all"] == 3  # globally
    assert len(store.items()) == 56


def test_ctrl_c_while_polls_are_recorded_says_every_poll_it_stored(server, config_for, store):
    """A poll's report waits for the commit that stores it; Ctrl-C in the middle of
    recording commits what was recorded, and says it before it goes on."""
    import itertools

    names = [f"s{i}" for i in range(6)]
    arrived = threading.Barrier(len(names), timeout=5)

    def together(h):  # every answer at once: the polls are recorded back to back
        arrived.wait()
        return Response(feed_bytes("icmpd-2020-05-a.rss").replace(  # distinct articles
            b"https://www.icmpd.org//", f"https://www.icmpd.org/{h.path[1:]}/".encode()).replace(
            b"</title>", f" ({h.path})</title>".encode()))

    for name in names:
        server.route(f"/{name}", together)
    config = config_for(*[feed_source(n, server.url(f"/{n}")) for n in names],
                        http=http_fast().replace("retries = 0", "retries = 0\nconcurrency = 6"
                                                 "\nper_host = 6"))
    calls = itertools.count()

    def clock():  # Ctrl-C lands while the fourth source is being read
        if next(calls) == 7:
            raise KeyboardInterrupt
        return NOW

    said = []
    with pytest.raises(KeyboardInterrupt):
        for report in poll_sources(config, store, clock=clock):
            said.append(report)
    stored = {name for (name,) in store.conn.execute(
        "SELECT name FROM sources WHERE baseline_at IS NOT NULL")}
    assert {r.source for r in said} == stored and len(stored) == 3
    assert {(r.status, r.new, r.baseline) for r in said} == {(PollStatus.OK, 7, True)}


def test_a_feed_empty_since_its_first_poll_is_empty_not_failing(server, config_for, store):
    """A new blog's feed, regenerated with a new date each time: no items is all it has
    had, so it is no CMS gone wrong (that guard is for a feed that had items)."""
    count = iter(range(100))

    def empty(_req):
        return Response(f'<?xml version="1.0"?><rss version="2.0"><channel><title>New blog'
                        f"</title><lastBuildDate>{next(count)}</lastBuildDate></channel></rss>"
                        .encode(), conditional=False)

    server.route("/blog", empty)
    config = config_for(feed_source("blog", server.url("/blog")))
    reports = [poll(config, store)["blog"] for _ in range(3)]
    assert [(r.status, r.baseline, r.new, r.error) for r in reports] == [
        (PollStatus.OK, True, 0, None), (PollStatus.OK, False, 0, None),
        (PollStatus.OK, False, 0, None)]
    assert store.source_state("blog").consecutive_failures == 0
    # its first item is news, as for any source past its baseline
    server.route("/blog", Response(b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
                                   b"New blog</title><item><title>Hello</title><link>"
                                   b"https://blog.example/1</link></item></channel></rss>"))
    assert poll(config, store)["blog"].new == 1


def test_items_hashed_by_an_earlier_version_are_no_edits_after_an_upgrade(
        server, config_for, store):
    """What the hash covers changed (v2: an entry with only its body takes its summary
    from it): items stored under v1 are re-hashed silently, not told as edited."""
    atom = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            b"<title>T</title><id>urn:f</id>" + b"".join(
                f'<entry><title>Post {i}</title><id>urn:p{i}</id><link href="https://e.org/{i}"/>'
                f"<updated>2020-05-2{i}T10:00:00Z</updated><content type=\"html\">&lt;p&gt;Body "
                f"{i}&lt;/p&gt;</content></entry>".encode() for i in range(1, 4)) + b"</feed>")
    server.route("/atom", Response(atom, content_type="application/atom+xml"))
    config = config_for(feed_source("blog", server.url("/atom")), notifiers=ALL_EDITS)
    poll(config, store)
    assert [i["summary"] for i in store.items()] == ["Body 3", "Body 2", "Body 1"]
    # as v1 stored them: no summary, its hash, the raw form's fingerprint
    store.conn.execute("UPDATE items SET summary = '', content_hash = 'v1:' ||"
                       " substr(content_hash, 4)")
    store.conn.execute("UPDATE sightings SET raw_hash = 'v1-fingerprint'")
    server.route("/atom", Response(atom.replace(b"<title>T</title>", b"<title>T2</title>"),
                                   content_type="application/atom+xml"))
    r = poll(config, store)["blog"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 3, 0)
    assert {i["content_hash"][:3] for i in store.items()} == {HASH_VERSION + ":"}
    assert [i["summary"] for i in store.items()] == ["Body 3", "Body 2", "Body 1"]
    assert store.conn.execute("SELECT count(*) FROM item_versions").fetchone() == (0,)


def test_letters_spelled_decomposed_are_the_same_words_to_rules_search_and_edits(
        server, config_for, store):
    """A feed that writes "Ü" as "U" and a combining diaeresis (as macOS and some CMSs do):
    the rule typed "über" tags its item, `items --search` typed either way finds it, and
    when the feed starts spelling it composed, nothing was edited."""
    import unicodedata

    title = "Übereinkommen über Grenzmanagement unterzeichnet"
    feed = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T'
            b"</title><link>https://www.icmpd.org/</link>"
            b"<item><title>{t}</title><link>https://www.icmpd.org/news/a/</link>"
            b"<pubDate>Wed, 20 May 2020 09:41:00 +0200</pubDate></item></channel></rss>")
    spelled = {form: feed.replace(b"{t}", unicodedata.normalize(form, title).encode())
               for form in ("NFC", "NFD")}
    server.route("/de", Response(spelled["NFD"], content_type="application/rss+xml"))
    config = config_for(feed_source("de", server.url("/de"), first_run="all"),
                        notifiers=CONSOLE.replace('rules = ["press-release", "project-launch"]',
                                                  'rules = ["abkommen"]')
                        + "\n[[rules]]\nname = \"abkommen\"\nmatch = '(?i)\\büber'\n")
    assert poll(config, store)["de"].queued == 1
    [item] = store.items()
    assert item["title"] == title and item["rules"] == ["abkommen"]
    for typed in ("ÜBER", unicodedata.normalize("NFD", "über"), '"Grenzmanagement unter"'):
        assert [i["id"] for i in store.items(text=typed)] == [item["id"]], typed
    server.route("/de", Response(spelled["NFC"], content_type="application/rss+xml"))
    r = poll(config, store)["de"]
    assert (r.new, r.changed, r.unchanged) == (0, 0, 1)


def test_links_stored_in_an_earlier_spelling_are_respelled_by_the_upgrade(
        server, config_for, tmp_path):
    """Before schema 13 a link was stored as written: raw letters ("/новости/a/") stayed
    raw. The upgrade rewrites every stored spelling (the item's link, its identity key,
    each source's sighting, its earlier versions' links) as this version reads it, so the
    feed that percent-encodes the same links, in lower case even, brings neither news nor
    edits, and the hashes (v3, made of the old spelling) are made anew silently."""
    from urllib.parse import quote, unquote

    def feed(spell, title_a="Визит в Вену"):
        return (f'<rss version="2.0"><channel><title>t</title>'
                f"<item><title>{title_a}</title><link>https://www.icmpd.org{spell('/новости/a/')}"
                f"</link><pubDate>Wed, 20 May 2020 10:00:00 +0200</pubDate></item>"
                f"<item><title>Новый проект</title><guid isPermaLink=\"false\">urn:b</guid>"
                f"<link>https://www.icmpd.org{spell('/новости/b/')}</link>"
                f"</item></channel></rss>").encode()  # undated: hashed without its date

    server.route("/rss", Response(feed(lambda p: p)))
    config = config_for(feed_source("rss", server.url("/rss")), notifiers=ALL_EDITS)
    store = SqliteStore(tmp_path / "up.db")
    poll(config, store)
    server.route("/rss", Response(feed(lambda p: p, "Визит в Вену (обновлено)")))
    assert poll(config, store)["rss"].changed == 1  # an edit: item_versions holds a link
    current = snapshot(store)
    assert {r["url"] for r in store.items()} == {
        "https://www.icmpd.org" + quote(f"/новости/{x}/") for x in "ab"}

    def spelled(db):
        return {"items": db.execute("SELECT id, key, url FROM items ORDER BY id").fetchall(),
                "sightings": db.execute("SELECT * FROM sightings ORDER BY 1, 2").fetchall(),
                "item_versions": db.execute("SELECT id, url FROM item_versions").fetchall()}

    respelled = spelled(store.conn)
    # the database as schema 12 stored it: links and keys as written, v3 hashes
    conn = store.conn
    conn.execute("UPDATE items SET content_hash = 'v3:' || substr(content_hash, 4)")
    for table, column in (("items", "url"), ("items", "key"), ("sightings", "key"),
                          ("item_versions", "url")):
        for (value,) in conn.execute(f"SELECT {column} FROM {table}").fetchall():
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                         (unquote(value), value))
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm013_url_spelling'")
    conn.execute("PRAGMA user_version = 12")
    assert spelled(conn) != respelled
    store.close()
    store = SqliteStore(tmp_path / "up.db")
    try:
        assert spelled(store.conn) == respelled
        lower = feed(lambda p: re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(p)),
                     "Визит в Вену (обновлено)")
        server.route("/rss", Response(lower))
        r = poll(config, store)["rss"]
        assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 2, 0)
        after = snapshot(store)
        assert {t: after[t] for t in ("items", "item_versions", "outbox")} == {
            t: current[t] for t in ("items", "item_versions", "outbox")}
    finally:
        store.close()


def test_a_newer_harvesters_database_is_refused_and_left_as_it_is(server, icmpd_a, tmp_path):
    """An image rolled back to an older harvester: it must not write into a schema it does
    not know (nor mark it as its own), and says what to do instead."""
    from harvester.store import SCHEMA_VERSION

    cfg = str(make_config(tmp_path, http_fast() + feed_source("icmpd-rss", icmpd_a)))
    assert run_cli("--config", cfg, "once").returncode == 0
    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = sqlite3.connect(db).execute("SELECT * FROM fetch_log").fetchall()
    said = (f"harvester: error: database {db} has schema version {SCHEMA_VERSION + 1}, newer "
            f"than this harvester's {SCHEMA_VERSION}: a newer version wrote it; run that "
            "version, or a backup taken before the upgrade (nothing was changed)\n")
    for command in (("once",), ("items",), ("sources",)):
        r = run_cli("--config", cfg, *command)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", said), command
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT * FROM fetch_log").fetchall() == before


def store_db(store):
    from sqlite_utils import Database

    return Database(store.conn, execute_plugins=False)


def test_database_is_wal_with_a_schema_version(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    from harvester.migrations import migrations
    from harvester.store import SCHEMA_VERSION

    names = [r[0] for r in store.conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = 'harvester'")]
    assert names == ["m001_initial", "m002_delivery", "m003_raw_hash", "m004_title_index",
                     "m005_retry_after", "m006_outbox_claims", "m007_fetch_log_outcome",
                     "m008_fetch_log_old", "m009_read_as",
                     "m010_fetch_log_cut", "m011_fetch_log_unmatched", "m012_version_identity",
                     "m013_url_spelling", "m014_fetch_log_markup"]
    assert migrations.pending(store_db(store)) == []
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(names)
    # re-opening applies nothing twice
    again = SqliteStore(store.path)
    again.close()
    assert store.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(names)


def test_an_older_database_is_migrated_and_keeps_its_items(server, icmpd_a, config_for,
                                                          tmp_path):
    """A database made by the first schema (before delivery and raw hashes) upgrades in
    place on open, every stored item intact, and polls on as before."""
    import sqlite3

    from sqlite_utils import Database

    from harvester.migrations import migrations

    path = tmp_path / "h.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m002_delivery")
    conn.execute("INSERT INTO items (id, source, key, url, title, published, content_hash,"
                 " first_seen, last_seen) VALUES ('i_old', 'icmpd-rss', 'url:u', 'https://o/',"
                 " 'Kept', '2019-01-01T00:00:00Z', 'v1:x', '2019-01-01T00:00:00Z',"
                 " '2019-01-01T00:00:00Z')")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = SqliteStore(path)
    try:
        assert [i["title"] for i in store.items()] == ["Kept"]
        r = poll(config_for(feed_source("icmpd-rss", icmpd_a)), store)["icmpd-rss"]
        assert r.status is PollStatus.OK and r.new == 7
        assert len(store.items()) == 8
    finally:
        store.close()


def test_a_repoll_reads_only_entries_whose_raw_form_changed(server, icmpd_a, config_for,
                                                            store, monkeypatch):
    import harvester.normalise as norm

    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ALL_EDITS)
    poll(config, store)
    calls = []
    real = norm.normalise
    monkeypatch.setattr(norm, "normalise", lambda e, ctx: calls.append(e.title) or real(e, ctx))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = poll(config, store)["icmpd-rss"]
    assert (r.new, r.changed, r.unchanged) == (3, 1, 6)
    assert len(calls) == 4  # the 3 new entries and the edited one; 6 untouched ones skipped
    assert {i["last_seen"] for i in store.items()} == {"2020-05-28T08:00:00Z"}


def test_items_since_and_json_columns(server, icmpd_a, config_for, store):
    config = config_for(feed_source("icmpd-rss", icmpd_a))
    poll(config, store)
    recent = store.items(since="2020-05-13T00:00:00Z")
    assert [i["published"] for i in recent] == [p for p, *_ in EXPECTED_A[:3]]
    assert store.items(rule="press-release") == []
    assert [i["title"] for i in store.items(rule="project-launch")] == [
        EXPECTED_A[2][2], EXPECTED_A[6][2]]
    row = sqlite3.connect(store.path).execute("SELECT rules, tags FROM items LIMIT 1").fetchone()
    assert json.loads(row[0]) is not None and json.loads(row[1]) is not None
    assert datetime.now(UTC) > NOW  # the stored times come from the clock we passed in
    assert {i["first_seen"] for i in store.items()} == {"2020-05-28T08:00:00Z"}


def test_malformed_feed_with_entries_is_kept_with_the_warning_recorded(server, config_for, store):
    body = feed_bytes("icmpd-2020-05-a.rss").replace(
        b"<title>Project News: First annual review", b"<title>Project News: First &nbsp; annual review")
    server.route("/bozo", Response(body))
    config = config_for(feed_source("bozo", server.url("/bozo")))
    r = poll(config, store)["bozo"]
    assert r.status is PollStatus.OK and r.new == 7
    assert r.warning.startswith("malformed feed, entries kept: ")
    assert "undefined entity" in store.fetch_log()[0]["warning"]


def test_redirects_are_followed_within_the_limit(server, config_for, store):
    server.route("/moved", redirect(301, "/rss"))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    server.route("/loop", redirect(302, "/loop2"))
    server.route("/loop2", redirect(307, "/loop"))
    for n in range(10):
        server.route(f"/hop{n}", redirect(302, f"/hop{n + 1}"))
    config = config_for(feed_source("moved", server.url("/moved")),
                        feed_source("loop", server.url("/loop")),
                        feed_source("far", server.url("/hop0")))
    reports = poll(config, store)
    assert reports["moved"].status is PollStatus.OK and reports["moved"].new == 7
    assert reports["loop"].error == (f"redirect loop: {server.url('/loop')} → "
                                     f"{server.url('/loop2')} → {server.url('/loop')}")
    assert len(server.hits("/loop")) == 1 and len(server.hits("/loop2")) == 1
    assert reports["far"].error == "too many redirects (more than 5)"
    assert [r.path for r in server.requests if r.path.startswith("/hop")] == [
        f"/hop{n}" for n in range(6)]


def test_a_feed_that_moved_for_good_says_where_on_every_poll(server, config_for, store):
    """301/308 all the way: the poll works and says what to write in the config instead,
    on a 304 too (each poll still pays the hop). A temporary redirect on the way is no
    such news."""
    server.route("/old", redirect(301, "/older"))
    server.route("/older", redirect(308, "/rss"))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    # a temporary hop, then a permanent one, to a feed of its own (the same feed would be
    # stored by whichever source polled first: this test is not about that)
    server.route("/away", redirect(302, "/away-old"))
    server.route("/away-old", redirect(301, "/other"))
    server.route("/other", Response(feed_bytes("icmpd-2019-03.rss")))
    config = config_for(feed_source("moved", server.url("/old")),
                        feed_source("away", server.url("/away")))
    first = poll(config, store)
    moved = (f"moved permanently to {server.url('/rss')}: write that as the source's url")
    assert (first["moved"].status, first["moved"].new, first["moved"].warning) == (
        PollStatus.OK, 7, moved)
    assert (first["away"].status, first["away"].new, first["away"].warning) == (
        PollStatus.OK, 10, None)
    again = poll(config, store)["moved"]
    assert again.status is PollStatus.NOT_MODIFIED and again.http_status == 304
    assert again.line().endswith(f"; warning: {moved}")
    assert [row["warning"] for row in store.fetch_log(source="moved")] == [moved, moved]


def test_a_source_can_force_the_encoding_a_server_lies_about(server, config_for, store):
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            "<item><title>Press Release: Café in Zürich, São Paulo</title>"
            "<link>https://www.icmpd.org/news/cafe/</link></item></channel></rss>"
            ).encode("iso-8859-1")
    server.route("/latin", Response(body, content_type="application/rss+xml; charset=utf-8"))
    config = config_for(feed_source("latin", server.url("/latin"), encoding="iso-8859-1"))
    assert poll(config, store)["latin"].new == 1
    [row] = store.items()
    assert (row["category"], row["title"]) == ("Press Release", "Café in Zürich, São Paulo")


def test_items_cross_the_worker_boundary_whole():
    """Parse workers hand items back by pickle, through Item.__reduce__: every field,
    in its own place, must survive (a field added to Item and not to __reduce__ fails)."""
    import dataclasses
    import pickle

    from harvester.models import DateFlag, Item

    values = {f.name: f"v-{f.name}" for f in dataclasses.fields(Item)}
    values.update(tags=("a", "b"), date_flag=DateFlag.FUTURE)
    item = Item(**values)
    back = pickle.loads(pickle.dumps(item))
    assert {f.name: getattr(back, f.name) for f in dataclasses.fields(Item)} == values


def _corpus_sources(server, feeds: int, listings: int) -> str:
    """ICMPD-shaped feeds (all three dialects) and listing pages from the bench corpus,
    served here; their source blocks."""
    from bench.corpus import render_feed, render_listing

    blocks = []
    for i in range(feeds):
        path = f"/f{i}.xml"
        server.route(path, Response(render_feed(7, i, 6, 20, ("rss2", "rss1", "atom")[i % 3]),
                                    content_type="application/xml"))
        blocks.append(feed_source(f"f{i}", server.url(path)))
    for i in range(listings):
        path = f"/l{i}.html"
        server.route(path, Response(render_listing(7, 100 + i, 6, 20),
                                    content_type="text/html; charset=utf-8"))
        blocks.append(_corpus_listing_block(f"l{i}", server.url(path)))
    return "".join(blocks)


def _corpus_listing_block(name: str, url: str) -> str:
    """A listing source read with the selectors config/example.toml documents."""
    return feed_source(name, url).replace('"feed"', '"html"') + (
        '[sources.select]\nitem = "div.news-item"\ntitle = "h3"\nlink = "h3 a"\n'
        'date = ".date"\ncategory = ".category"\nsummary = ".teaser"\n'
        'date_formats = ["%d %B %Y"]\n')


def test_worker_processes_store_exactly_what_reading_inline_stores(server, config_for, tmp_path,
                                                                   monkeypatch):
    """A first poll of more than INLINE_READS new sources reads the bodies in forked worker
    processes — feeds whole, a watched page, a listing's page 1, its later pages back on
    the writer — and must store what reading on the writer's thread stores."""
    from harvester import harvest

    from .test_listing_source import listing_source, page_hits, serve

    serve(server, "a")  # the ICMPD news centre: five pages, followed by their "next" links
    # and a page whose layout changed: its selectors find nothing
    server.route("/redesigned.html", Response(b"<html><body><ul><li>News moved</li></ul>"
                                              b"</body></html>", content_type="text/html"))
    sources = _corpus_sources(server, feeds=harvest.INLINE_READS + 3, listings=4) + (
        listing_source(server.url("/news-centre/"))) + _corpus_listing_block(
        "redesigned", server.url("/redesigned.html"))
    server.route("/kyiv", Response((PAGES / "kyiv-a.html").read_bytes(),
                                   content_type="text/html; charset=utf-8"))
    sources += f'[[sources]]\nname = "watched"\nkind = "page"\nurl = "{server.url("/kyiv")}"\n'
    config = config_for(sources, http=http_fast().replace("retries = 0", "retries = 0\n"
                                                          "per_host = 8\nconcurrency = 8"))
    submitted: list[str] = []
    real_submit = harvest._Readers.submit

    def counting_submit(self, fetched, *a):
        job = real_submit(self, fetched, *a)
        if job is not None:
            submitted.append(fetched.source.name)
        return job

    monkeypatch.setattr(harvest._Readers, "submit", counting_submit)
    runs = []
    for processes in ("2", "0"):
        monkeypatch.setenv(harvest.PROCESSES_ENV, processes)
        submitted.clear()
        del server.requests[:]
        store = SqliteStore(tmp_path / f"p{processes}.db")
        try:
            reports = poll(config, store)
            stale = reports.pop("redesigned")
            assert (stale.status, stale.error) == (PollStatus.ERROR, (
                f"selectors matched nothing on {server.url('/redesigned.html')} — the layout"
                f" may have changed; try `harvester probe {server.url('/redesigned.html')}`"))
            assert {r.status for r in reports.values()} == {PollStatus.OK}
            assert reports["icmpd-news"].new == 43
            runs.append((snapshot(store), sorted(submitted), page_hits(server)))
        finally:
            store.close()
    (with_workers, read_there, pages_there), (inline, read_inline, pages_inline) = runs
    assert read_inline == []
    assert read_there == sorted([f"f{i}" for i in range(harvest.INLINE_READS + 3)]
                                + [f"l{i}" for i in range(4)]
                                + ["icmpd-news", "redesigned", "watched"])
    assert pages_there == pages_inline == ["/news-centre/"] + [
        f"/news-centre/?page={n}" for n in (2, 3, 4, 5)]
    assert len(with_workers["items"]) == (harvest.INLINE_READS + 3 + 4) * 6 + 43 + 1
    assert with_workers == inline


@pytest.mark.parametrize("processes", ["0", "2"])
def test_a_bug_met_while_reading_one_source_fails_that_source_not_the_run(
        server, config_for, store, monkeypatch, processes):
    """Reading is pure code over untrusted bytes; an exception it did not foresee (a
    library's assertion, say) is that source's error, named, and the other sources are
    polled and stored as usual — in-process and in the worker processes."""
    import harvester.parse
    from harvester import harvest

    real = harvester.parse.parse_feed

    def parse_feed(body, *, url, **kw):
        if url.endswith("/bad"):
            raise AssertionError("too many bodies: []")
        return real(body, url=url, **kw)

    monkeypatch.setattr(harvester.parse, "parse_feed", parse_feed)  # forked workers inherit it
    monkeypatch.setenv(harvest.PROCESSES_ENV, processes)
    sources = _corpus_sources(server, feeds=harvest.INLINE_READS + 1, listings=0)
    server.route("/bad", Response(feed_bytes("icmpd-2020-05-a.rss")))
    config = config_for(sources + feed_source("bad", server.url("/bad")))
    reports = poll(config, store)
    bad = reports.pop("bad")
    assert (bad.status, bad.error) == (PollStatus.ERROR, (
        "internal error while reading: AssertionError: too many bodies: [] "
        "(a harvester bug: please report it with this source)"))
    assert {r.status for r in reports.values()} == {PollStatus.OK}
    assert len(store.items()) == (harvest.INLINE_READS + 1) * 6


def test_an_unforeseen_error_while_fetching_fails_that_source_not_the_run(
        server, config_for, store, monkeypatch):
    """Fetching reads a server's headers: one it did not foresee (a Content-Length of "²"
    once reached int() and ended the whole run in a traceback) is that source's error,
    named, and the other sources are polled and stored as usual."""
    from harvester.fetch import Fetcher

    real = Fetcher._read_capped

    def read_capped(self, resp, url, *args, **kw):
        if url.endswith("/bad"):
            int("²")
        return real(self, resp, url, *args, **kw)

    monkeypatch.setattr(Fetcher, "_read_capped", read_capped)
    server.route("/bad", Response(feed_bytes("icmpd-2020-05-a.rss")))
    server.route("/good", Response(feed_bytes("icmpd-2020-05-a.rss")))
    config = config_for(feed_source("bad", server.url("/bad")),
                        feed_source("good", server.url("/good")))
    reports = poll(config, store)
    assert (reports["bad"].status, reports["bad"].error) == (PollStatus.ERROR, (
        "internal error while fetching: ValueError: invalid literal for int() with base 10: "
        "'²' (a harvester bug: please report it with this source)"))
    assert (reports["good"].status, reports["good"].new) == (PollStatus.OK, 7)
    assert [s["last_error"] for s in store.sources() if s["name"] == "bad"] == [
        reports["bad"].error]


def test_gzipped_bodies_are_decoded_and_fingerprinted_in_the_worker_processes(
        server, config_for, store, tmp_path, monkeypatch):
    """With worker processes, a feed's gzip body crosses to a worker as sent: the worker
    decodes it (cap and errors as on the way in), fingerprints it, and leaves a body
    byte-identical to the last one unparsed; reports and the stored fingerprint are those
    of the decoded body, as when it is decoded on the way in."""
    import gzip

    import harvester.parse
    from harvester import harvest

    cap = 100_000
    http = http_fast().replace("retries = 0", f"retries = 0\nmax_bytes = {cap}")
    old = feed_bytes("icmpd-2020-05-a.rss")
    # always a 200: the same bytes come again, with nothing to say they are the same
    server.route("/old", Response(old, conditional=False))
    config = config_for(feed_source("old", server.url("/old")), http=http)
    assert poll(config, store)["old"].new == 7  # its baseline, read inline

    parsed = tmp_path / "parsed"
    real = harvester.parse.parse_feed

    def parse_feed(body, *, url, **kw):
        with parsed.open("a") as f:  # the workers' own record: their memory is not ours
            f.write(url.rsplit("/", 1)[1] + "\n")
        return real(body, url=url, **kw)

    monkeypatch.setattr(harvester.parse, "parse_feed", parse_feed)
    monkeypatch.setenv(harvest.PROCESSES_ENV, "2")
    crossed: dict[str, tuple[str | None, int]] = {}  # source → (coding, size) sent to a worker
    real_submit = harvest._Readers.submit

    def submit(self, fetched, *a):
        crossed[fetched.source.name] = (fetched.result.coding, fetched.result.size)
        return real_submit(self, fetched, *a)

    monkeypatch.setattr(harvest._Readers, "submit", submit)
    server.route("/big", Response(b"<rss>" + b" " * cap + b"</rss>"))
    server.route("/corrupt", Response(b"not gzip", headers={"Content-Encoding": "gzip"}))
    config = config_for(
        _corpus_sources(server, feeds=harvest.INLINE_READS + 1, listings=0),
        *(feed_source(n, server.url(f"/{n}")) for n in ("old", "big", "corrupt")), http=http)
    reports = poll(config, store)
    bodies = {f"f{i}": server.routes[f"/f{i}.xml"].body for i in range(harvest.INLINE_READS + 1)}
    assert sorted(parsed.read_text().split()) == sorted(f"{n}.xml" for n in bodies)
    assert (reports["old"].status, reports["old"].bytes) == (PollStatus.NOT_MODIFIED, len(old))
    assert (reports["big"].error, reports["corrupt"].error) == (
        f"too large: body exceeds the {cap}-byte cap",
        "the body is not the gzip it is labelled: Error -3 while decompressing data: "
        "incorrect header check")
    hashes = dict(store.conn.execute("SELECT name, body_hash FROM sources"))
    by_name = {s.name: s for s in config.sources}
    assert crossed == {"old": ("gzip", len(gzip.compress(old, mtime=0))),
                       "big": ("gzip", len(gzip.compress(server.routes["/big"].body, mtime=0))),
                       "corrupt": ("gzip", len(b"not gzip")),
                       **{n: ("gzip", len(gzip.compress(b, mtime=0))) for n, b in bodies.items()}}
    for name, body in bodies.items():
        assert (reports[name].status, reports[name].new, reports[name].bytes) == (
            PollStatus.OK, 6, len(body))
        assert hashes[name] == harvest.body_fingerprint(by_name[name], body)
    assert hashes["old"] == harvest.body_fingerprint(by_name["old"], old)


def test_a_worker_process_that_dies_fails_the_reads_in_flight_not_the_run(
        server, config_for, store, monkeypatch):
    """The OOM killer, or a crash in a parser's C code, takes a worker with it: the reads
    then in flight fail, named (which body it was is not known, and reading them here
    could take this process down too), the rest are read inline, and the next poll
    reads the failed ones."""
    import os

    import harvester.parse
    from harvester import harvest

    parent = os.getpid()
    real = harvester.parse.parse_feed

    def parse_feed(body, *, url, **kw):
        if url.endswith("/f3.xml"):
            if os.getpid() != parent:
                os._exit(9)  # a worker killed while reading this body
            raise AssertionError("read inline, in the writer's own process")
        return real(body, url=url, **kw)

    monkeypatch.setattr(harvester.parse, "parse_feed", parse_feed)
    monkeypatch.setenv(harvest.PROCESSES_ENV, "2")
    # the sources after f3 answer once the poll knows its workers are gone: those are the
    # ones read inline, whatever this machine's speed (f0–f3 may be in flight at the death)
    gone = threading.Event()
    real_broken = harvest._Readers.broken

    def broken(self):
        real_broken(self)
        gone.set()

    monkeypatch.setattr(harvest._Readers, "broken", broken)
    names = [f"f{i}" for i in range(harvest.INLINE_READS + 4)]
    # every source in flight at once: the held answers must not keep f0–f3 waiting
    config = config_for(_corpus_sources(server, feeds=len(names), listings=0),
                        http=http_fast().replace("retries = 0", "retries = 0\nconcurrency = 16"
                                                 "\nper_host = 16"))
    for name in names[4:]:
        served = server.routes[f"/{name}.xml"]

        def after_the_death(handler, served=served):
            assert gone.wait(10), "the poll never learnt that a worker died"
            return served

        server.route(f"/{name}.xml", after_the_death)
    reports = poll(config, store)
    died = ("not read: a worker process reading bodies died (A process in the process pool "
            "was terminated abruptly while the future was running or pending.)")
    assert sorted(reports) == sorted(names)
    assert (reports["f3"].status, reports["f3"].error) == (PollStatus.ERROR, died)
    failed = {n for n, r in reports.items() if r.status is PollStatus.ERROR}
    assert all(reports[n].error == died for n in failed)
    assert all((r.status, r.new) == (PollStatus.OK, 6) for n, r in reports.items()
               if n not in failed)
    assert "f3" in failed and failed <= {"f0", "f1", "f2", "f3"}  # the rest, read inline
    monkeypatch.setattr(harvester.parse, "parse_feed", real)
    again = poll(config, store)
    assert {n: (r.status, r.new) for n, r in again.items() if n in failed} == {
        n: (PollStatus.OK, 6) for n in failed}
    assert len(store.items()) == len(names) * 6


def test_the_worker_processes_of_a_killed_once_end_with_it(server, tmp_path):
    """A `once` SIGKILLed mid-poll (a cron timeout, the OOM killer) leaves no worker
    process behind waiting for work for ever."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from harvester import harvest

    release = threading.Event()
    blocks = _corpus_sources(server, feeds=harvest.INLINE_READS + 4, listings=0)
    for path in list(server.routes):
        served = server.routes[path]

        def held(handler, served=served):
            release.wait(20)  # the poll stays in progress until the test is done
            return served

        server.route(path, held)
    cfg = make_config(tmp_path, http_fast() + blocks)
    proc = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg), "once"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, harvest.PROCESSES_ENV: "2"})
    try:
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the workers are forked before the first fetch
        tasks = Path(f"/proc/{proc.pid}/task")
        workers = [int(pid) for task in tasks.iterdir()
                   for pid in (task / "children").read_text().split()]
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def alive(pid: int) -> bool:
            try:  # a zombie is gone, only not yet reaped
                return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
            except FileNotFoundError:
                return False

        deadline = time.monotonic() + 5
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(alive, workers)), "worker processes outlived the killed once"
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()


def test_a_body_left_gzipped_for_workers_that_are_gone_is_decoded_here(server, store):
    """decoded(): what the fetch thread would have given had it decoded the body itself —
    the body, its fingerprint — and a body that is not gzip is the fetch's error."""
    from harvester.config import HttpConfig
    from harvester.fetch import Fetcher
    from harvester.harvest import Fetched, body_fingerprint, decoded, fetch_one

    body = feed_bytes("icmpd-2020-05-a.rss")
    server.route("/gz", Response(body))
    server.route("/bad", Response(b"not gzip", headers={"Content-Encoding": "gzip"}))
    fetcher = Fetcher(HttpConfig(timeout=5, retries=0))
    state = store.source_state("s")
    src = _corpus_source_config("s", server.url("/gz"))
    coded = fetch_one(src, state, fetcher, decode=False)
    assert (coded.result.coding, coded.fingerprint) == ("gzip", None)
    plain = fetch_one(src, state, fetcher)
    got = decoded(coded, 10_000_000)
    assert (got.result.body, got.result.coding, got.fingerprint) == (
        body, None, body_fingerprint(src, body)) == (
        plain.result.body, plain.result.coding, plain.fingerprint)
    bad_src = _corpus_source_config("b", server.url("/bad"))
    bad = decoded(fetch_one(bad_src, state, fetcher, decode=False), 10_000_000)
    assert bad.result is None and str(bad.error) == (
        "the body is not the gzip it is labelled: Error -3 while decompressing data: "
        "incorrect header check")
    assert isinstance(bad, Fetched)


def _corpus_source_config(name: str, url: str):
    from harvester.config import FirstRun, SourceConfig, SourceKind

    return SourceConfig(name, SourceKind.FEED, url, 3600, FirstRun(), "UTC")


HOME = "https://www.example.org/news/"


def _rss(items: str, *, home: str = HOME, description: str = "d") -> bytes:
    """An RSS 2.0 document of these <item>s, its channel linking to `home`."""
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
            f"<link>{home}</link><description>{description}</description>{items}"
            "</channel></rss>").encode()


def _announcements(*entries: tuple[int, str | None], built: str = "1") -> bytes:
    """A feed whose entries all link to one page: (day of May 2020, guid or None)."""
    items = "".join(
        f"<item><title>Announcement: project {d} starts</title><link>{HOME}</link>"
        + (f"<guid isPermaLink='false'>{g}</guid>" if g else "")
        + f"<description>Text {d}</description>"
        f"<pubDate>Fri, {d:02d} May 2020 10:00:00 +0000</pubDate></item>"
        for d, g in entries)
    return _rss(items, description=built)


@pytest.mark.parametrize("guids", [False, True])
def test_entries_that_share_one_link_are_items_each(server, config_for, store, guids):
    """A feed whose every entry links to the site's news page: five announcements are five
    items (the link was their identity, so four were dropped unsaid), and they stay five
    as the feed's window moves — one alone again with the link to itself is still itself."""
    def g(d):
        return f"news-{d}" if guids else None

    server.route("/rss", Response(_announcements(*((d, g(d)) for d in (5, 4, 3, 2, 1)))))
    config = config_for(feed_source("same", server.url("/rss"), first_run="all"),
                        notifiers=ALL_EDITS)
    r = poll(config, store)["same"]
    assert (r.status, r.new, r.queued) == (PollStatus.OK, 5, 5)
    assert sorted((i["title"], i["url"]) for i in store.items()) == [
        (f"project {d} starts", HOME) for d in (1, 2, 3, 4, 5)]
    # the same entries (another body): each is itself, unread (its raw form is unchanged)
    server.route("/rss", Response(_announcements(*((d, g(d)) for d in (5, 4, 3, 2, 1)),
                                                 built="2")))
    r = poll(config, store)["same"]
    assert (r.new, r.changed, r.unchanged) == (0, 0, 5)
    # a sixth, and the window drops the oldest three
    server.route("/rss", Response(_announcements(*((d, g(d)) for d in (6, 5, 4)))))
    r = poll(config, store)["same"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (1, 0, 2, 1)
    # one left, the link its own again
    server.route("/rss", Response(_announcements((6, g(6)))))
    r = poll(config, store)["same"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 1, 0)
    assert len(store.items()) == 6


def test_an_item_seen_alone_is_itself_when_its_link_comes_to_be_shared(server, config_for,
                                                                        store):
    """The opposite way: stored under its link when it was the only entry with it, the
    item is found by its title once another entry links to the same page."""
    server.route("/rss", Response(_announcements((1, None))))
    config = config_for(feed_source("same", server.url("/rss")), notifiers=ALL_EDITS)
    assert poll(config, store)["same"].new == 1
    server.route("/rss", Response(_announcements((2, None), (1, None))))
    r = poll(config, store)["same"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (1, 0, 1, 1)
    assert sorted(i["title"] for i in store.items()) == [
        "project 1 starts", "project 2 starts"]


def test_entries_with_one_link_and_one_title_are_still_one_item(server, config_for, store):
    server.route("/rss", Response(_announcements((1, None), (1, None))))
    config = config_for(feed_source("same", server.url("/rss")))
    assert poll(config, store)["same"].new == 1


def _one_guid(*days: int) -> bytes:
    """A feed whose CMS gives every entry the site's address as its guid."""
    items = "".join(
        f"<item><title>Announcement: project {d} starts</title>"
        f"<link>{HOME}{d}/</link><guid>https://www.example.org/</guid>"
        f"<pubDate>Fri, {d:02d} May 2020 10:00:00 +0000</pubDate></item>" for d in days)
    return _rss(items)


def test_entries_that_share_one_guid_are_items_each(server, config_for, store):
    """Every entry's guid the site's address: the guid identifies none of them, so each is
    its own item by its link, however the window moves; one alone with it again is still
    itself, not the item that guid first named."""
    server.route("/rss", Response(_one_guid(1)))
    config = config_for(feed_source("cms", server.url("/rss")), notifiers=ALL_EDITS)
    assert poll(config, store)["cms"].new == 1  # alone, the guid names it
    server.route("/rss", Response(_one_guid(3, 2, 1)))
    r = poll(config, store)["cms"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (2, 0, 1, 2)
    server.route("/rss", Response(_one_guid(3)))  # alone again, under that guid
    r = poll(config, store)["cms"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 1, 0)
    assert sorted((i["title"], i["url"], i["version"]) for i in store.items()) == [
        (f"project {d} starts", f"{HOME}{d}/", 1) for d in (1, 2, 3)]


def test_links_with_a_new_session_id_each_poll_are_the_same_items(server, config_for, store):
    """An old servlet site writes the visitor's session into every link (…;jsessionid=…),
    new on each poll: the items are the ones stored, not edits of them each time (nor, for
    undated entries, new items each time)."""
    def page(session: str) -> bytes:
        items = "".join(
            f"<item><title>Project {d} starts</title>"
            f"<link>{HOME}{d};jsessionid={session}</link>"
            + (f"<pubDate>Fri, {d:02d} May 2020 10:00:00 +0000</pubDate>" if d % 2 else "")
            + "</item>" for d in (1, 2, 3))
        return _rss(items)

    server.route("/rss", Response(page("0A1B2C")))
    config = config_for(feed_source("servlet", server.url("/rss")), notifiers=ALL_EDITS)
    assert poll(config, store)["servlet"].new == 3
    server.route("/rss", Response(page("9Z8Y7X")))
    r = poll(config, store)["servlet"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 3, 0)
    assert sorted(i["url"] for i in store.items()) == [f"{HOME}{d}" for d in (1, 2, 3)]


def test_two_organisations_newsletters_of_one_day_are_two_items(server, config_for, store):
    def newsletter(host: str) -> bytes:
        return _rss(f"<item><title>Newsletter</title><link>https://{host}/news/newsletter-may"
                    "</link><pubDate>Fri, 15 May 2020 10:00:00 +0000</pubDate></item>",
                    home=f"https://{host}/")

    server.route("/a", Response(newsletter("www.icmpd.org")))
    server.route("/b", Response(newsletter("www.iom.int")))
    config = config_for(feed_source("icmpd", server.url("/a"), first_run="all"),
                        feed_source("iom", server.url("/b"), first_run="all"),
                        notifiers=ALL_EDITS)
    reports = poll(config, store)
    assert {(r.source, r.new, r.unchanged, r.queued) for r in reports.values()} == {
        ("icmpd", 1, 0, 1), ("iom", 1, 0, 1)}
    assert sorted(i["url"] for i in store.items()) == [
        "https://www.icmpd.org/news/newsletter-may", "https://www.iom.int/news/newsletter-may"]


def test_entries_dated_with_the_time_the_feed_was_made_are_not_edits(server, config_for,
                                                                      store):
    """A feed that dates every entry with the moment it was generated: each poll moves every
    date, and that alone is no edit (nor an "Updated:" message each poll); an item keeps the
    date it was first seen with, and a real edit is still one."""
    def made_at(minute: int, edited: bool = False) -> bytes:
        items = "".join(
            f"<item><title>Project {d} starts{' in Accra' if edited and d == 2 else ''}"
            f"</title><link>{HOME}{d}/</link>"
            f"<pubDate>Wed, 27 May 2020 09:{minute:02d}:00 +0000</pubDate></item>"
            for d in (1, 2, 3))
        return _rss(items)

    server.route("/rss", Response(made_at(0)))
    config = config_for(feed_source("cms", server.url("/rss")), notifiers=ALL_EDITS)
    assert poll(config, store)["cms"].new == 3
    server.route("/rss", Response(made_at(30)))
    r = poll(config, store)["cms"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 3, 0)
    assert {i["published"] for i in store.items()} == {"2020-05-27T09:00:00Z"}
    server.route("/rss", Response(made_at(45, edited=True)))
    r = poll(config, store)["cms"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 1, 2, 1)
    [edit] = [c for c in r.changes if c.kind.value == "changed"]
    assert edit.item.title == "Project 2 starts in Accra"


def test_entries_dated_as_a_time_ago_keep_their_first_reading(server, config_for, store):
    """A feed that writes "3 hours ago": the item is dated back from the poll's clock, and
    keeps that date when the text grows to "4 hours ago" — no edit, no message."""
    def ago(hours: int) -> bytes:
        return _rss(f"<item><title>Project 1 starts</title><link>{HOME}1/</link>"
                    f"<pubDate>{hours} hours ago</pubDate></item>")

    server.route("/rss", Response(ago(3)))
    config = config_for(feed_source("relative", server.url("/rss")), notifiers=ALL_EDITS)
    assert poll(config, store)["relative"].new == 1
    [item] = store.items()
    assert (item["published"], item["date_flag"]) == ("2020-05-28T05:00:00Z", "")
    server.route("/rss", Response(ago(4)))
    r = poll(config, store)["relative"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 0, 1, 0)
    assert store.items()[0]["published"] == "2020-05-28T05:00:00Z"


def test_a_source_whose_site_moves_to_another_domain_brings_no_news(server, config_for, store):
    """The organisation moves to a new domain: the feed's items come back under new links,
    with their titles and dates. They are this source's items, edited (their links), not
    news; another organisation's item of the same title stays its own (the test above)."""
    def feed(host: str) -> bytes:
        items = "".join(
            f"<item><title>Project {d} starts</title><link>https://{host}/news/{d}/</link>"
            f"<pubDate>Fri, {d:02d} May 2020 10:00:00 +0000</pubDate></item>" for d in (1, 2))
        return _rss(items, home=f"https://{host}/")

    server.route("/rss", Response(feed("www.icmpd.org")))
    config = config_for(feed_source("icmpd", server.url("/rss")), notifiers=CONSOLE)
    assert poll(config, store)["icmpd"].new == 2
    server.route("/rss", Response(feed("www.icmpd.int")))
    r = poll(config, store)["icmpd"]
    assert (r.new, r.changed, r.queued) == (0, 2, 0)
    assert sorted(i["url"] for i in store.items()) == [
        "https://www.icmpd.int/news/1/", "https://www.icmpd.int/news/2/"]


def test_an_item_retitled_under_a_new_link_is_one_edit_not_news_again(server, config_for,
                                                                       store):
    """An editor fixes a typo in a title, and the CMS makes the link anew from it: the
    entry's link and title are both new, the old ones gone from the feed. It is the stored
    item, edited — told once as an edit, not a second time as news — and an entry alike
    to one that is still in the feed is news of its own."""
    def feed(*titles: str) -> bytes:
        items = "".join(
            f"<item><title>{t}</title><link>{HOME}{t.lower().replace(' ', '-')}/</link>"
            f"<description>News from {t.split()[0]}.</description>"
            "<pubDate>Wed, 27 May 2020 09:00:00 +0000</pubDate></item>" for t in titles)
        return _rss(items)

    server.route("/rss", Response(feed("Ghana lauch second SMMIG phase", "Kyiv meeting held")))
    config = config_for(feed_source("icmpd", server.url("/rss")), notifiers=ALL_EDITS + CONSOLE)
    assert poll(config, store)["icmpd"].new == 2
    [before] = [i for i in store.items() if i["title"] == "Ghana lauch second SMMIG phase"]
    server.route("/rss", Response(feed("Ghana launch second SMMIG phase", "Kyiv meeting held")))
    r = poll(config, store)["icmpd"]
    assert (r.new, r.changed, r.unchanged, r.queued) == (0, 1, 1, 2)
    [edit] = [c for c in r.changes if c.kind.value == "changed"]
    assert (edit.item_id, edit.item.url) == (before["id"], f"{HOME}ghana-launch-second-smmig-phase/")
    assert sorted((i["title"], i["url"], i["version"]) for i in store.items()) == [
        ("Ghana launch second SMMIG phase", f"{HOME}ghana-launch-second-smmig-phase/", 2),
        ("Kyiv meeting held", f"{HOME}kyiv-meeting-held/", 1)]
    # the edits' notifier hears an edit; the team, whose project-launch rule "lauch" did
    # not match, hears of the launch for the first time: as news
    assert sorted(store.conn.execute("SELECT notifier, event FROM outbox")) == [
        ("edits", "item.changed"), ("team", "item.new")]
    server.route("/rss", Response(feed("Ghana launch second SMMIG phase", "Ghana launch SMMIG second phase",
                                       "Kyiv meeting held")))
    r = poll(config, store)["icmpd"]
    assert (r.new, r.changed, r.unchanged) == (1, 0, 2)


# -- a model of a feed's life: what is new and what is edited, however the feed moves ------

_STEPS = st.lists(st.lists(st.one_of(
    st.tuples(st.just("add")),
    st.tuples(st.sampled_from(["drop", "back", "edit", "revert", "retitle", "relink", "launch"]),
              st.integers(0, 30)),
    st.tuples(st.just("shuffle"), st.randoms(use_true_random=False)),
), max_size=4), min_size=1, max_size=7)


def _model_rss(items: list[dict], guids: bool) -> bytes:
    day = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
           "<title>Model</title><link>https://www.icmpd.org/</link>"]
    for it in items:
        date = format_datetime(day + timedelta(days=it["n"] * 3), usegmt=True)
        guid = f'<guid isPermaLink="false">urn:model:{it["n"]}</guid>' if guids else ""
        out.append(f"<item>{guid}<title>{it['title']}</title>"
                   f"<link>https://www.icmpd.org/news/{it['slug']}/</link>"
                   f"<pubDate>{date}</pubDate><description>{it['summary']}</description></item>")
    out.append("</channel></rss>")
    return "".join(out).encode()


def _model_listing(items: list[dict]) -> bytes:
    """The model feed's items as the site's news listing shows them: the day only, and a
    teaser of the summary's first words (another view of the same items)."""
    day = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    rows = "".join(
        f'<div class="news-item"><h3><a href="https://www.icmpd.org/news/{it["slug"]}/">{it["title"]}</a></h3>'
        f'<span class="date">{(day + timedelta(days=it["n"] * 3)).strftime("%d %B %Y")}'
        f'</span><p class="teaser">{" ".join(it["summary"].split()[:4])} …</p></div>'
        for it in items)
    return (f"<!DOCTYPE html><html><head><title>News</title></head><body><main>{rows}"
            "</main></body></html>").encode()


_MODEL_LISTING = """
[[sources]]
name = "mirror"
kind = "html"
url = "{url}"
[sources.select]
item = "div.news-item"
title = "h3"
link = "h3 a"
date = ".date"
summary = ".teaser"
date_formats = ["%d %B %Y"]
"""


_MODEL_HOOK = """
[[notifiers]]
name = "hook"
kind = "webhook"
url = "{url}"
on = ["new", "changed"]
max_per_run = 10000

[[notifiers]]
name = "launches"
kind = "webhook"
url = "{url}/launches"
rules = ["launch"]
max_per_run = 10000

[[rules]]
name = "launch"
match = '(?i)\\blaunched\\b'
fields = ["title"]
"""


@pytest.fixture
def model_receiver():
    from .servers import Receiver

    r = Receiver()
    yield r
    r.stop()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@pytest.mark.parametrize("guids", [True, False], ids=["guids", "links-only"])
@pytest.mark.parametrize("mirror", [False, True], ids=["alone", "mirrored"])
@given(steps=_STEPS, max_age=st.sampled_from([None, 120]))
# found by it: an edit undone (title fixed; summary edited; that edit undone) went untold,
# its content being what the first edit made
@example(steps=[[("retitle", 0)], [("add",), ("edit", 1)], [("revert", 1)]], max_age=None)
# and: mirrored, an item's title and link both fixed before the listing first showed it,
# which it then did as it was before — taken for a new item there
@example(steps=[[("add",)], [("retitle", 0), ("relink", 0)], []], max_age=None)
def test_each_item_is_news_once_and_each_edit_seen_is_told_once_however_the_feed_moves(
        server, model_receiver, guids, mirror, steps, max_age):
    """A feed polled again and again while items come, go, come back, are edited (and
    edited back: summary, title, link) and move about: every item first seen after the
    baseline is told as new exactly once, an item that comes back unchanged is no news,
    each poll that finds an item's words other than the store's last version of them is
    one edit — the version counted up, and told unless the item went that same way before
    (a flap: told once each way) — and the store holds each item once.
    Without guids too, where an item is known by its link, else its title, else (both
    fixed at once) as retitled. `mirrored`: the site's listing page, a second source with
    its own view of the items (a teaser for a summary, the day for a date), shows each
    poll what the feed showed the poll before; it brings no news and no edit — its view
    and its stale copies never count as the feed's items edited back. Delivered after all
    the polls, each edit's message says that edit's own fields, before and after, however
    many edits came after it. A notifier of launches hears of each item once, when it
    first comes as one or is first edited into one ("launched" put in its title). With
    `max_age` (120 days), an item dated before it is stored but no news, new or edited
    into a notifier's rules; its edits are still told as edits."""
    words = ["border", "migration", "dialogue", "returns", "labour", "mobility", "visa",
             "asylum", "training", "customs", "pilot", "research", "capacity", "partnership"]
    path = f"/model-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as tmp:
        old = {} if max_age is None else {"max_age": f"{max_age}d"}
        cfg = load_config(make_config(Path(tmp), http_fast() + feed_source(
            "model", server.url(path), **old)
            + _MODEL_LISTING.format(url=server.url(path + "-mirror"))
            + _MODEL_HOOK.format(url=model_receiver.url), rules=False))
        model_receiver.deliveries.clear()
        store = SqliteStore(cfg.storage.path)
        try:
            present: list[dict] = []
            removed: list[dict] = []
            stored: dict[int, tuple[str, str, str]] = {}  # n → its fields last stored
            versions: dict[int, int] = {}
            expected_new: set[int] = set()
            launches: set[int] = set()  # the items the launches notifier hears of
            told_edits: list[frozenset] = []  # each edit told: its (field, before, after)
            ways: set[tuple] = set()  # (item, fields before, fields after) of each edit told
            made = 0
            lagging: list[dict] = []  # what the mirror shows: the feed a poll ago

            def dated_old(n: int) -> bool:  # (no item is dated within a day of the line)
                return max_age is not None and (datetime(2020, 1, 1, 9, tzinfo=UTC)
                                                + timedelta(days=n * 3)
                                                < NOW - timedelta(days=max_age))

            def add() -> None:
                nonlocal made
                title = " ".join(words[(made * 5 + k) % len(words)] for k in range(3))
                present.insert(0, {"n": made, "title": f"{title.capitalize()} number {made}",
                                   "summary": f"Item {made} about {title}.",
                                   "original": f"Item {made} about {title}.",
                                   "slug": f"model-{made}"})
                made += 1

            add()
            add()
            for poll_no, ops in enumerate([[], *steps]):
                for op in ops:
                    if op[0] == "add":
                        add()
                    elif op[0] == "drop" and present:
                        removed.append(present.pop(op[1] % len(present)))
                    elif op[0] == "back" and removed:
                        present.insert(op[1] % (len(present) + 1),
                                       removed.pop(op[1] % len(removed)))
                    elif op[0] == "edit" and present:
                        it = present[op[1] % len(present)]
                        it["summary"] += f" Revised {poll_no} {op[1]}."
                    elif op[0] == "revert" and present:
                        it = present[op[1] % len(present)]
                        it["summary"] = it["original"]
                    elif op[0] == "retitle" and present:  # a typo fixed, a word added
                        present[op[1] % len(present)]["title"] += " (updated)"
                    elif op[0] == "launch" and present:  # the word a rule looks for, in or out
                        it = present[op[1] % len(present)]
                        it["title"] = (it["title"].replace(" launched", "")
                                       if "launched" in it["title"] else it["title"] + " launched")
                    elif op[0] == "relink" and present:  # the CMS rebuilt its slug
                        present[op[1] % len(present)]["slug"] += "-1"
                    elif op[0] == "shuffle":
                        op[1].shuffle(present)
                server.route(path, Response(_model_rss(present, guids)))
                server.route(path + "-mirror", Response(_model_listing(lagging),
                                                        content_type="text/html; charset=utf-8"))
                polled = cfg.sources if mirror and poll_no else cfg.sources[:1]
                reports = {r.source: r for r in poll_sources(
                    cfg, store, sources=polled,
                    clock=lambda k=poll_no: NOW + timedelta(minutes=10 * k))}
                report = reports.pop("model")
                for other in reports.values():
                    assert (other.status, other.new, other.changed) in (
                        (PollStatus.OK, 0, 0), (PollStatus.NOT_MODIFIED, 0, 0)) or (
                        not lagging and other.status is PollStatus.ERROR  # an empty listing
                        and other.error.startswith("selectors matched nothing")), other.line()
                lagging = [dict(it) for it in present]  # the next poll's mirror
                if not present:  # a feed emptied after it had items is a fault, not news
                    assert report.status is PollStatus.ERROR and report.error == (
                        "the feed has no entries now; the items stored before are kept")
                    continue
                # a feed the same as the last poll's answers 304: nothing to read, nothing new
                assert report.status in (PollStatus.OK, PollStatus.NOT_MODIFIED), report.line()
                new = {it["n"] for it in present if it["n"] not in stored}
                changed = {it["n"] for it in present if it["n"] in stored
                           and stored[it["n"]] != (it["title"], it["summary"], it["slug"])}
                assert (report.new, report.changed) == (len(new), len(changed)), (
                    poll_no, report.line())
                if poll_no:
                    # an item dated before max_age is no news, new or edited into the rules
                    expected_new |= {n for n in new if not dated_old(n)}
                    launches |= {it["n"] for it in present if "launched" in it["title"] and (
                        it["n"] in new or (it["n"] in changed
                        and "launched" not in stored[it["n"]][0])) and not dated_old(it["n"])}
                    for it in present:
                        now = (it["title"], it["summary"], it["slug"])
                        if it["n"] not in changed or (it["n"], stored[it["n"]], now) in ways:
                            continue  # (the same way again: a flap, told the first time)
                        ways.add((it["n"], stored[it["n"]], now))
                        told_edits.append(frozenset(
                            (field, before, after) for field, before, after in zip(
                                ("title", "summary", "url"), stored[it["n"]], now, strict=True)
                            if before != after))
                for it in present:
                    versions[it["n"]] = versions.get(it["n"], 0) + (it["n"] in changed
                                                                    or it["n"] in new)
                    stored[it["n"]] = (it["title"], it["summary"], it["slug"])
            rows = store.conn.execute("SELECT url, version FROM items").fetchall()
            assert dict(rows) == {f"https://www.icmpd.org/news/{stored[n][2]}/": v
                                  for n, v in versions.items()}
            rows = store.outbox()
            outbox = [(r["event"], r["item_id"]) for r in rows if r["notifier"] == "hook"]
            assert sorted(r["event"] for r in rows if r["notifier"] == "launches") == [
                "item.new"] * len(launches)
            told_new = [item for event, item in outbox if event == "item.new"]
            assert len(told_new) == len(set(told_new)) == len(expected_new)
            assert len([e for e, _ in outbox if e == "item.changed"]) == len(told_edits)
            sent = deliver(cfg, store, NOW + timedelta(days=1))
            assert sent.line() == f"delivery: {len(rows)} sent, 0 waiting to retry, 0 dead"
            bodies = [d.body for d in model_receiver.deliveries if d.path == "/hook"]
            assert sorted(d.body["data"]["item"]["url"].split("/")[-2]
                          for d in model_receiver.deliveries
                          if d.path == "/hook/launches") == sorted(stored[n][2] for n in launches)
            assert sorted(b["data"]["item"]["id"] for b in bodies if b["type"] == "item.new") \
                == sorted(told_new)

            def said(change: dict) -> tuple[str, str, str]:
                before, after = change["before"], change["after"]
                if change["field"] == "url":  # the model's slug of the link said
                    before, after = (u.split("/")[-2] for u in (before, after))
                return change["field"], before, after

            assert Counter(frozenset(map(said, b["data"]["changes"])) for b in bodies
                           if b["type"] == "item.changed") == Counter(told_edits)
        finally:
            store.close()


def _content_feed(contents: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>https://www.icmpd.org/n/{i}</link>"
        f"<guid>https://www.icmpd.org/n/{i}</guid><pubDate>Wed, 20 May 2020 0{i}:00:00 GMT"
        f"</pubDate><description>Teaser {i}.</description>"
        f"<content:encoded><![CDATA[{c}]]></content:encoded></item>"
        for i, c in enumerate(contents))
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:content='
            '"http://purl.org/rss/1.0/modules/content/"><channel><title>T</title><link>'
            f"https://www.icmpd.org/</link><description>d</description>{items}</channel></rss>"
            ).encode()


def test_a_feed_rendered_anew_is_no_flood_of_edits(server, config_for, store):
    """A CMS update re-renders every entry's content (<b> now <strong>, other line breaks):
    each item of the feed's window was told as "Updated: … content (markup only) changed",
    with nothing to read in it. Such edits are stored, not told; an edit of words, or of a
    link's target, in the same poll is told."""
    before = [f"<p>Kick-off in <b>Accra</b>, item {i}.</p><p>More.</p>" for i in range(4)]
    after = [before[0].replace("<b>Accra</b>", "<strong>Accra</strong>"),
             before[1].replace("</p><p>", "</p>\n\n   <p>"),
             before[2].replace("More.", "More words."),
             before[3].replace("<b>Accra</b>", '<a href="https://www.icmpd.org/accra">Accra</a>')]
    server.route("/rss", Response(_content_feed(before)))
    config = config_for(feed_source("icmpd-rss", server.url("/rss")), notifiers=(
        '\n[[notifiers]]\nname = "edits"\nkind = "console"\non = ["new", "changed"]\n'))
    list(poll_sources(config, store, clock=lambda: NOW))
    server.route("/rss", Response(_content_feed(after)))
    [report] = poll_sources(config, store, clock=lambda: NOW)
    assert report.line().startswith(
        "icmpd-rss: 0 new, 4 changed (2 of markup only: not notified), 0 unchanged, "
        "2 notifications queued")
    stored = {i["title"]: i["content"] for i in store.items()}
    titles = {i["id"]: i["title"] for i in store.items()}
    told = {titles[r["item_id"]] for r in store.outbox() if r["event"] == "item.changed"}
    assert told == {"Item 2", "Item 3"}
    assert "<strong>Accra</strong>" in stored["Item 0"]  # what the feed says now is kept
