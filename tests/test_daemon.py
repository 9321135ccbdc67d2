"""`harvester run` as a real child process against a loopback server."""

from __future__ import annotations

import errno
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harvester.config import load_config
from harvester.devserver import Response
from harvester.harvest import poll_sources
from harvester.store import SqliteStore

from .conftest import (
    feed_bytes,
    feed_source,
    free_port,
    http_fast,
    make_config,
    redirect,
    run_cli,
    source_lock_held,
)
from .servers import Receiver
from .test_notify import webhook_notifier

BASE = http_fast('every = "1s"\n') + '[daemon]\ndeliver_every = "1s"\ngrace = "10s"\n'

CONSOLE = '\n[[notifiers]]\nname = "stdout"\nkind = "console"\nrules = []\n'
# for the tests of SIGHUP itself: without the daemon also reloading on its own when the
# file changes, which would race the signal
SIGNALLED = BASE.replace("[daemon]\n", "[daemon]\nwatch_config = false\n")


def test_daemon_polls_delivers_serves_health_and_metrics_reloads_and_stops(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, SIGNALLED + feed_source("icmpd-rss", icmpd_a) + CONSOLE)
    d = running(cfg)
    d.wait_for(lambda: len(server.hits("/rss")) >= 3, what="three polls")
    status, body = d.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"ok": True, "scheduler": "running", "database": "writable",
                                "sources": 1, "config": "loaded"}
    # an uptime monitor's HEAD: the GET's status and headers, no body
    for path, ctype in (("/healthz", "application/json"), ("/", "text/html; charset=utf-8"),
                        ("/feed.atom", "application/atom+xml; charset=utf-8")):
        head = urllib.request.Request(f"http://127.0.0.1:{d.port}{path}", method="HEAD")
        with urllib.request.urlopen(head, timeout=5) as r:
            assert (r.status, r.headers["Content-Type"], r.read()) == (200, ctype, b""), path
            if path != "/":  # the page's times move with each poll
                assert int(r.headers["Content-Length"]) == len(d.get(path)[1]), path
    # new items appear: stored and delivered by the daemon's own delivery job
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    d.wait_for(lambda: "Germany joins the European migration" in d.out.read_text(),
               what="the console notification")
    status, body = d.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    polls = {(s.labels["source"], s.labels["status"]): s.value
             for s in families["harvester_polls"].samples if s.name == "harvester_polls_total"}
    assert polls[("icmpd-rss", "ok")] >= 1 and polls[("icmpd-rss", "not-modified")] >= 1
    new = [s.value for s in families["harvester_items"].samples
           if s.name == "harvester_items_total" and s.labels["kind"] == "new"]
    assert sum(new) == 10  # 7 at baseline, 3 later
    assert "harvester_fetch_duration_seconds" in families
    assert "harvester_source_last_success_timestamp_seconds" in families
    [news] = families["harvester_source_last_new_item_timestamp_seconds"].samples
    assert news.labels == {"source": "icmpd-rss"} and time.time() - news.value < 30
    assert "_created" not in body.decode()  # no timestamp series doubling every counter
    d.wait_for(lambda: any(s.labels == {"status": "sent"} and s.value >= 3 for s in
                           {f.name: f for f in text_string_to_metric_families(
                               d.get("/metrics")[1].decode())}["harvester_outbox_rows"].samples),
               what="outbox gauge")
    status, page = d.get("/")
    assert status == 200 and b"icmpd-rss" in page and b"<script" not in page
    # when the scheduler polls it next (a second after the last, as `every` says)
    next_poll = re.search(rb"<td>icmpd-rss</td>(?:<td>[^<]*</td>){4}<td>([^<]*)</td>", page)
    assert next_poll and re.fullmatch(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)?",
                                      next_poll.group(1)), page
    assert b'<link rel="alternate" type="application/atom+xml"' in page
    status, atom = d.get("/feed.atom?rule=press-release&limit=5")
    entries = feedparser.parse(atom).entries
    assert status == 200 and [e.title for e in entries] == [
        "Germany joins the European migration organisation ICMPD"]
    assert len(feedparser.parse(d.get("/feed.atom?limit=3")[1]).entries) == 3
    # a limit that is no count (a superscript two is a digit to Python, not a number to
    # int()) is the default's, not a dropped connection and a traceback in the log
    for odd in ("%C2%B2", "-1", "x", "0"):
        status, atom = d.get(f"/feed.atom?limit={odd}")
        assert (status, len(feedparser.parse(atom).entries)) == (200, 10), odd
    # a feed reader asking again with the ETag it was given: 304 while nothing changed
    parsed = feedparser.parse(f"http://127.0.0.1:{d.port}/feed.atom?rule=press-release")
    assert parsed.status == 200 and parsed.etag
    again = feedparser.parse(f"http://127.0.0.1:{d.port}/feed.atom?rule=press-release",
                             etag=parsed.etag)
    assert again.status == 304 and again.entries == []
    # SIGHUP: a source added to the file is polled without a restart
    server.route("/second", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg.write_text(cfg.read_text() + feed_source("second", server.url("/second")))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: server.hits("/second"), what="the reloaded source's first poll")
    assert [r["message"] for r in d.logs() if r.get("event") == "reload"] == [
        "config reloaded: 2 sources (SIGHUP)"]
    # a bad config on SIGHUP is refused and the old one kept
    good = cfg.read_text()
    cfg.write_text(good + "\n[[sources]]\nname = 'x'\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: any(r.get("event") == "reload.failed" for r in d.logs()),
               what="the refused reload")
    assert d.get("/healthz")[0] == 200
    before = len(server.hits("/rss"))
    d.wait_for(lambda: len(server.hits("/rss")) > before + 1, what="polls after a bad reload")
    # SIGTERM: exit 0 within a few seconds, the database intact
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    db = sqlite3.connect(tmp_path / "h.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM items").fetchone() == (20,)
    assert {e["event"] for e in d.logs()} >= {"start", "poll", "delivery", "stop", "stopped"}


def test_a_source_dropped_into_an_included_folder_is_polled_after_a_reload(
        server, icmpd_a, tmp_path, running):
    """The conf.d way: a deployment tool writes one file per source, then sends SIGHUP."""
    (tmp_path / "sources.d").mkdir()
    cfg = make_config(tmp_path, 'include = ["sources.d/*.toml"]\n' + SIGNALLED)
    r = run_cli("--config", str(cfg), "check")
    assert r.returncode == 0 and "sources: none yet" in r.stdout, r.stderr
    d = running(cfg, http=False)
    d.wait_for(lambda: [x for x in d.logs() if x.get("event") == "start"], what="the start")
    (tmp_path / "sources.d" / "icmpd.toml").write_text(feed_source("icmpd-rss", icmpd_a))
    r = run_cli("--config", str(cfg), "check")
    assert "sources also from: sources.d/icmpd.toml" in r.stdout.splitlines()
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: server.hits("/rss"), what="the included source's first poll")
    assert [x["message"] for x in d.logs() if x.get("event") == "reload"] == [
        "config reloaded: 1 source (SIGHUP)"]
    assert d.stop() == 0


def test_the_daemon_takes_up_what_add_and_remove_write_without_a_signal(
        server, icmpd_a, tmp_path, running):
    """`[daemon] watch_config` (on by default): an edit of the config's files is reloaded
    a moment after it ends, as SIGHUP would; a bad edit is refused once, the old config
    kept; saving the same text again changes nothing and logs nothing."""
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a))
    d = running(cfg)
    d.wait_for(lambda: server.hits("/rss"), what="a first poll")

    def reloads(event: str = "reload") -> list[str]:
        return [r["message"] for r in d.logs() if r.get("event") == event]

    server.route("/second", Response(feed_bytes("icmpd-2019-03.rss")))
    r = run_cli("--config", str(cfg), "add", server.url("/second"), "--name", "second")
    assert r.returncode == 0, r.stderr
    d.wait_for(lambda: reloads(), what="the reload after add")
    assert reloads() == ["config reloaded: 2 sources (its files changed)"]
    d.wait_for(lambda: server.hits("/second"), what="the added source's first poll")
    d.wait_for(lambda: b'source="second"' in d.get("/metrics")[1], what="its series")
    r = run_cli("--config", str(cfg), "remove", "second")
    assert r.returncode == 0, r.stderr
    d.wait_for(lambda: len(reloads()) == 2, what="the reload after remove")
    assert reloads()[1] == "config reloaded: 1 source (its files changed)"
    polled = len(server.hits("/second"))
    before = len(server.hits("/rss"))
    d.wait_for(lambda: len(server.hits("/rss")) >= before + 2, what="two more polls")
    assert len(server.hits("/second")) == polled  # removed: not polled any more
    # nor in /metrics: a removed source's last success would only look staler by the hour
    metrics = d.get("/metrics")[1]
    assert b'source="second"' not in metrics and b'source="icmpd-rss"' in metrics
    good = cfg.read_text()
    cfg.write_text(good + "\n[[sources]]\nname = 'x'\n")
    d.wait_for(lambda: reloads("reload.failed"), what="the refused reload")
    # said where someone who edited the file would look, not only in the log
    status, body = d.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["ok"]  # it still runs the config it had
    assert re.fullmatch(r"refused at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: \S+harvester\.toml: "
                        r"sources\[1\]\.url: is required", health["config"]), health["config"]
    assert b"The config on disk was refused" in d.get("/")[1]
    assert b"harvester_config_last_reload_successful 0.0" in d.get("/metrics")[1]
    cfg.write_text(good)  # put back: the same config as the running one, said nowhere
    before = len(server.hits("/rss"))
    d.wait_for(lambda: len(server.hits("/rss")) >= before + 3, what="polls after")
    assert len(reloads("reload.failed")) == 1 and len(reloads()) == 2
    assert reloads("reload.unchanged") == []
    assert json.loads(d.get("/healthz")[1])["config"] == "loaded"
    assert b"harvester_config_last_reload_successful 1.0" in d.get("/metrics")[1]
    assert d.stop() == 0


def test_a_file_dropped_into_an_included_folder_is_taken_up_without_a_signal(
        server, icmpd_a, tmp_path, running):
    (tmp_path / "sources.d").mkdir()
    cfg = make_config(tmp_path, 'include = ["sources.d/*.toml"]\n' + BASE)
    d = running(cfg, http=False)
    d.wait_for(lambda: [x for x in d.logs() if x.get("event") == "start"], what="the start")
    (tmp_path / "sources.d" / "icmpd.toml").write_text(feed_source("icmpd-rss", icmpd_a))
    d.wait_for(lambda: [x for x in d.logs() if x.get("event") == "reload"], what="the reload")
    assert [x["message"] for x in d.logs() if x.get("event") == "reload"] == [
        "config reloaded: 1 source (its files changed)"]
    d.wait_for(lambda: server.hits("/rss"), what="the dropped-in source's first poll")
    assert d.stop() == 0


def test_log_level_warning_keeps_only_what_needs_a_look(server, icmpd_a, tmp_path, running):
    """A thousand sources polled every half hour write a line each that went well; at
    --log-level warning only a poll with a warning (here: a feed that moved) is left, and
    what `check` would have warned of."""
    server.route("/old", redirect(301, "/other"))
    server.route("/other", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a)
                      + feed_source("moved", server.url("/old")))
    d = running(cfg, http=False, args=["--log-level", "warning"])
    d.wait_for(lambda: len(server.hits("/rss")) >= 3 and len(server.hits("/other")) >= 3,
               what="three polls of each")
    assert d.stop() == 0
    logs = d.logs()
    assert {r["level"] for r in logs} == {"warning"}
    # what `check` warns of, said as it starts: these tests poll every second
    assert [r["message"] for r in logs if r["event"] == "config.warning"] == [
        f"config: source {name} polls {url} every 1s: more than once a minute is more than "
        "news changes and more than many sites allow (they block an address for less); 15m "
        "to 1h is usual" for name, url in (("icmpd-rss", icmpd_a), ("moved", server.url("/old")))]
    logs = [r for r in logs if r["event"] != "config.warning"]
    assert {r["source"] for r in logs} == {"moved"}
    assert all(r["warning"] == f"moved permanently to {server.url('/other')}: write that as "
               "the source's url" for r in logs)
    r = run_cli("--config", str(cfg), "run", "--log-level", "loud")
    assert r.returncode == 2 and "'loud' is not one of 'debug', 'info', 'warning', 'error'" \
        in r.stderr


def test_a_reload_applies_the_http_settings_to_the_next_polls(server, icmpd_a, tmp_path,
                                                               running):
    cfg = make_config(tmp_path, SIGNALLED + feed_source("icmpd-rss", icmpd_a))
    d = running(cfg, http=False)
    d.wait_for(lambda: server.hits("/rss"), what="a first poll")
    assert server.hits("/rss")[0].headers["User-Agent"].startswith("harvester/")
    cfg.write_text(cfg.read_text().replace("[http]\n", '[http]\nuser_agent = "reloaded/2"\n', 1))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "reload"], what="the reload")
    n = len(server.hits("/rss"))
    d.wait_for(lambda: len(server.hits("/rss")) >= n + 2, what="polls after the reload")
    assert server.hits("/rss")[-1].headers["User-Agent"] == "reloaded/2"
    assert d.stop() == 0


# deliver_every only paces retries: news must not wait for it
SLOW_RETRIES = BASE.replace('deliver_every = "1s"', 'deliver_every = "1h"')


def test_news_goes_out_at_once_and_each_poll_is_logged_in_the_words_of_once(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, SLOW_RETRIES + feed_source("icmpd-rss", icmpd_a) + CONSOLE)
    d = running(cfg, http=False)

    def polls() -> list[dict]:
        return [r for r in d.logs() if r.get("event") == "poll"]

    d.wait_for(lambda: len(polls()) >= 2, what="a baseline and a re-poll")
    first, second = polls()[:2]
    assert first["level"] == "info"
    assert first["message"].startswith("icmpd-rss: baseline: 7 items stored silently (HTTP 200, ")
    assert second["message"].startswith("icmpd-rss: not modified (HTTP 304, ")
    # three new items and an edited one, in a feed with an undefined entity: read, warned of
    body = feed_bytes("icmpd-2020-05-b.rss").replace(b"</channel>", b"&bogus;</channel>")
    server.route("/rss", Response(body))
    d.wait_for(lambda: "Germany joins the European migration" in d.out.read_text(), timeout=10,
               what="the console notification, long before deliver_every")
    [news] = [r for r in polls() if r["counts"]["queued"]]
    assert news["level"] == "warning"
    assert news["message"].startswith(
        "icmpd-rss: 3 new, 1 changed, 6 unchanged, 3 notifications queued (HTTP 200, ")
    assert news["warning"].startswith("malformed feed, entries kept: ")
    assert news["message"].endswith("; warning: " + news["warning"])
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "delivery"], what="its record")
    assert [r["message"] for r in d.logs() if r.get("event") == "delivery"] == [
        "delivery: 3 sent, 0 waiting to retry, 0 dead"]
    assert d.stop() == 0


def test_an_operators_alert_goes_out_at_once_and_so_does_the_recovery(server, tmp_path,
                                                                       running):
    """A source that fails its second poll in a row: the operators hear it now, not when
    deliver_every (an hour here) comes round; and they hear it works again as soon."""
    server.route("/flaky", Response(b"down", status=500, content_type="text/plain",
                                    conditional=False))
    ops = ('\n[[notifiers]]\nname = "ops"\nkind = "console"\non = []\n'
           'events = ["source.failing", "source.recovered"]\n')
    cfg = make_config(tmp_path, SLOW_RETRIES.replace('every = "1s"', 'every = "1s"\n'
                                                     "failures_before_alert = 2")
                      + feed_source("flaky", server.url("/flaky")) + ops)
    d = running(cfg, http=False)
    d.wait_for(lambda: "== Source failing: flaky (2 polls in a row)" in d.out.read_text(),
               timeout=15, what="the alert, long before deliver_every")
    server.route("/flaky", Response(feed_bytes("icmpd-2020-05-a.rss")))
    d.wait_for(lambda: "== Source recovered: flaky" in d.out.read_text(), timeout=15,
               what="the recovery, long before deliver_every")
    assert d.out.read_text().count("== Source failing: flaky") == 1
    assert d.stop() == 0


def test_what_an_earlier_run_left_pending_goes_out_when_the_daemon_starts(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, SLOW_RETRIES + feed_source("icmpd-rss", icmpd_a) + CONSOLE)
    config = load_config(cfg)
    store = SqliteStore(config.storage.path)
    list(poll_sources(config, store))  # the baseline
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    [report] = poll_sources(config, store)  # queues; polling as a library delivers nothing
    store.close()
    assert report.queued == 3
    d = running(cfg, http=False)
    d.wait_for(lambda: "Germany joins the European migration" in d.out.read_text(), timeout=10,
               what="the pending notifications, long before deliver_every")
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "delivery"], what="its record")
    assert [r["message"] for r in d.logs() if r.get("event") == "delivery"] == [
        "delivery: 3 sent, 0 waiting to retry, 0 dead"]
    assert d.stop() == 0


def test_rows_left_to_a_notifier_no_longer_configured_are_said_once(
        server, icmpd_a, tmp_path, running):
    """The daemon checks the outbox every few seconds: what waits for a notifier the config
    no longer names is said once, with the fix, not at every pass."""
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a) + CONSOLE)
    config = load_config(cfg)
    store = SqliteStore(config.storage.path)
    list(poll_sources(config, store))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    list(poll_sources(config, store))
    store.close()
    cfg.write_text(cfg.read_text().replace('name = "stdout"', 'name = "console"'))
    d = running(cfg, http=False)
    time.sleep(3.5)  # three delivery passes
    assert [(r["level"], r["message"]) for r in d.logs()
            if r.get("event") == "delivery.orphaned"] == [(
                "warning", "delivery: 3 notifications wait for notifier stdout, which is no "
                "longer configured (`harvester outbox move stdout NEW` sends them through "
                "another, `harvester outbox drop stdout` drops them)")]
    assert "Germany joins" not in d.out.read_text()
    assert d.stop() == 0


def test_a_restart_takes_up_each_sources_turn_where_the_last_run_left_it(server, icmpd_a,
                                                                         tmp_path, running):
    """A deploy or a container's crash loop must not poll every source again at each start:
    one polled lately waits for its `every`; one never polled goes at once."""
    server.route("/2019", Response(feed_bytes("icmpd-2019-03.rss")))
    cfg = make_config(tmp_path, BASE + feed_source("lately", icmpd_a) + 'every = "1h"\n'
                      + feed_source("new", server.url("/2019")))
    r = run_cli("--config", str(cfg), "once", "--source", "lately")
    assert r.returncode == 0, r.stderr
    d = running(cfg, http=False)
    polled = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"],
                        what="the new source's poll")
    assert [r["source"] for r in polled] == ["new"]
    start = next(r["message"] for r in d.logs() if r.get("event") == "start")
    assert start.endswith("; 1 source polled lately waits for its turn")
    time.sleep(1.5)  # and stays waiting (its turn is an hour after that poll)
    assert len(server.hits("/rss")) == 1
    assert d.stop() == 0


def test_the_daemon_prunes_the_fetch_log_past_keep_log(server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a))
    config = load_config(cfg)
    store = SqliteStore(config.storage.path)
    for _ in range(3):
        list(poll_sources(config, store))
    with store.conn:  # two polls long ago
        store.conn.execute("UPDATE fetch_log SET at = '2000-01-01T00:00:00Z' WHERE id < 3")
    store.close()
    d = running(cfg, http=False)
    [record] = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "prune"],
                          what="the prune")
    assert (record["message"], record["counts"]) == (
        "fetch log: 2 rows older than 90d removed", {"removed": 2})
    # polled a moment ago, the source's turn comes a second after that poll, not at start
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"], what="its poll")
    assert d.stop() == 0
    after = SqliteStore(config.storage.path)
    ids = [r["id"] for r in after.fetch_log()]
    after.close()
    assert ids[0] == 3 and len(ids) >= 2  # the third poll's, and the daemon's own


def test_a_retry_goes_when_its_backoff_ends_not_at_the_next_deliver_every(
        server, icmpd_a, tmp_path, running, monkeypatch):
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    receiver = Receiver(secret=b"secret-key-for-tests", answers=[(503, {})])
    try:
        cfg = make_config(tmp_path, SLOW_RETRIES + '[delivery]\nbackoff = "2s"\n'
                          + feed_source("icmpd-rss", icmpd_a, first_run="latest:1")
                          + webhook_notifier(receiver.url, rules="[]"))
        d = running(cfg, http=False)
        d.wait_for(lambda: len(receiver.deliveries) >= 2, timeout=15,
                   what="the retry, 2 s (±20 %) after the 503, long before deliver_every")
        first, retry = receiver.deliveries[:2]
        assert first.id == retry.id
        # the receiver records a delivery before it answers; the daemon logs after the answer
        d.wait_for(lambda: len([r for r in d.logs() if r.get("event") == "delivery"]) >= 2,
                   what="the retry's record")
        assert [r["message"] for r in d.logs() if r.get("event") == "delivery"] == [
            "delivery: 0 sent, 1 waiting to retry, 0 dead",
            "delivery: 1 sent, 0 waiting to retry, 0 dead"]
        assert d.stop() == 0
    finally:
        receiver.stop()


def test_sigterm_mid_delivery_exits_after_the_grace_and_the_message_goes_at_next_start(
        server, icmpd_a, tmp_path, running, monkeypatch):
    """A receiver that sits on the request: the daemon does not wait past its grace, and the
    interrupted message goes out at the next start, with the same id."""
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    receiver = Receiver(secret=b"secret-key-for-tests", hold=30.0)
    try:
        cfg = make_config(tmp_path, BASE.replace('grace = "10s"', 'grace = "1s"')
                          + feed_source("icmpd-rss", icmpd_a, first_run="all")
                          + webhook_notifier(receiver.url, rules="[]"))
        d = running(cfg, http=False)
        d.wait_for(lambda: receiver.deliveries, what="the first message, held")
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 5
        assert [r["message"] for r in d.logs() if r.get("event") == "stop.forced"] == [
            "grace period over; exiting with a poll or a delivery unfinished"]
        held = receiver.deliveries[0].id
        receiver.hold = 0.0
        d = running(cfg, http=False)
        d.wait_for(lambda: len(receiver.deliveries) >= 8, what="all seven, one of them again")
        assert d.stop() == 0
        ids = [x.id for x in receiver.deliveries]
        assert len(set(ids)) == 7 and ids.count(held) == 2
        assert all(x.valid for x in receiver.deliveries)
    finally:
        receiver.stop()


def test_failing_source_backs_off_and_snaps_back(server, tmp_path, running):
    server.route("/flaky", Response(b"down", status=500, content_type="text/plain",
                                    conditional=False))
    cfg = make_config(tmp_path, BASE + feed_source("flaky", server.url("/flaky")))
    d = running(cfg, http=False)
    # Wait on the log, not the server's hit count: the daemon logs a failure only after the
    # response has come back, so the fourth hit can be seen before its record is written.
    def failures() -> list[dict]:
        return [r for r in d.logs() if r.get("event") == "poll.failed"]

    d.wait_for(lambda: len(failures()) >= 4, timeout=30, what="four failed polls logged")
    delays = [r["message"].split("next in ")[1].split("s:")[0] for r in failures()]
    assert delays[:4] == ["1", "2", "4", "8"], delays
    server.route("/flaky", Response(feed_bytes("icmpd-2020-05-a.rss")))
    [recovered] = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll.recovered"],
                             timeout=30, what="recovery")
    assert recovered["message"] == f"flaky: recovered after {len(failures())} failures"
    n = len(server.hits("/flaky"))
    d.wait_for(lambda: len(server.hits("/flaky")) >= n + 2, timeout=10,
               what="polls back at the normal interval")
    assert d.stop() == 0


def test_the_log_is_the_daemons_own_words(tmp_path, running):
    """A source that is down, with retries: one poll.failed record naming what happened,
    not urllib3's internal "Retrying (_PoliteRetry(total=1, …))" warnings before it."""
    down = f"http://127.0.0.1:{free_port()}/feed.xml"
    cfg = make_config(tmp_path, BASE.replace("retries = 0", "retries = 2")
                      + feed_source("down", down))
    d = running(cfg, http=False)
    failed = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll.failed"],
                        what="a failed poll")
    assert d.stop() == 0
    assert failed[0]["error"] == f"cannot connect: [Errno {errno.ECONNREFUSED}] Connection refused"
    assert [r["message"] for r in d.logs() if "event" not in r] == []
    assert d.logs()[0]["message"].startswith("running: 1 source, database ")


def test_a_second_daemon_on_the_same_database_refuses_to_start(server, icmpd_a, tmp_path,
                                                                running):
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a))
    first = running(cfg, http=False)
    first.wait_for(lambda: server.hits("/rss"), what="the first daemon's poll")
    second = subprocess.run([sys.executable, "-m", "harvester", "--config", str(cfg), "run"],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"harvester: error: another harvester daemon (pid {first.proc.pid}) is already running "
        f"on {tmp_path / 'h.db'}; stop it first, or give this one its own [storage] path")
    assert first.stop() == 0


def test_the_daemon_leaves_a_source_to_the_once_polling_it(server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a))
    with source_lock_held(tmp_path / "h.db", "icmpd-rss"):
        d = running(cfg, http=False)
        busy = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll.busy"],
                          what="a poll that finds the source taken")
        assert busy[0]["message"] == ("icmpd-rss: not polled: another harvester process is "
                                      "polling it now")
        assert server.hits("/rss") == []
    # not a failure: no backoff, the next run (every 1s) polls it
    polled = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"],
                        what="the poll once the source is free")
    assert polled[0]["message"].startswith("icmpd-rss: baseline: 7 items stored silently")
    assert [r for r in d.logs() if r.get("event") == "poll.failed"] == []
    assert d.stop() == 0


def test_a_poll_the_harvester_itself_cannot_run_is_one_line_and_the_daemon_goes_on(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a))
    (tmp_path / "h.db.sources.lock").mkdir()  # in the way: not a file it can lock in
    d = running(cfg, http=False)
    errors = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll.error"],
                        what="the poll's error")
    assert errors[0]["message"] == (f"icmpd-rss: not polled: cannot open the lock file "
                                    f"{tmp_path / 'h.db.sources.lock'}: Is a directory")
    assert "Traceback" not in d.err.read_text()
    (tmp_path / "h.db.sources.lock").rmdir()  # out of the way: the next turn polls
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"], what="the poll")
    assert d.stop() == 0


def test_an_http_address_it_cannot_serve_is_one_line_and_exit_1(tmp_path):
    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    cfg = make_config(tmp_path, BASE)
    try:
        r = run_cli("--config", str(cfg), "run", "--http", f"127.0.0.1:{port}", timeout=20)
    finally:
        busy.close()
    assert (r.returncode, r.stderr.splitlines()[-1]) == (
        1, f"harvester: error: cannot serve HTTP on 127.0.0.1:{port}: Address already in use")
    for port in ("70000", "\u00b2"):  # "²": a digit to isdigit(), a traceback from int()
        r = run_cli("--config", str(cfg), "run", "--http", f"127.0.0.1:{port}")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert f"'127.0.0.1:{port}' is not HOST:PORT (a port up to 65535)" in r.stderr


def test_cron_and_every_are_exclusive_and_checked(tmp_path):
    from harvester.config import load_config
    from harvester.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[[sources]]\nname = "a"\nurl = "https://e.org/"\nevery = "1h"\n'
                    'cron = "*/15 * * * *"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.cron: give either 'every' or 'cron'"):
        load_config(path)
    path.write_text('[[sources]]\nname = "a"\nurl = "https://e.org/"\ncron = "*/15 25 * * *"\n')
    with pytest.raises(ConfigError, match=r"hour 25 is outside 0-23"):
        load_config(path)


def test_a_cron_source_reads_its_weekdays_as_cron_does(server, icmpd_a, tmp_path, running):
    """Sundays as 7 (APScheduler 3's own crontab reading refused the daemon's start over it):
    polled at once, as any source is at start, then on its line."""
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a)
                      + 'cron = "0 9 * * 7"\n')
    d = running(cfg, http=False)
    polled = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"],
                        what="the first poll")
    assert polled[0]["message"].startswith("icmpd-rss: baseline: 7 items stored silently")
    assert d.stop() == 0


def test_sigterm_lets_the_poll_in_progress_finish(server, tmp_path, running):
    import threading

    arrived = threading.Event()
    body = feed_bytes("icmpd-2020-05-a.rss")

    def slow(handler):
        arrived.set()
        time.sleep(1.5)
        return Response(body)

    server.route("/slow", slow)
    cfg = make_config(tmp_path, BASE + feed_source("slow", server.url("/slow")))
    d = running(cfg, http=False)
    d.wait_for(arrived.is_set, what="the slow poll to start")
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(15) == 0
    # as soon as the poll ends, not when the grace (10 s) runs out: the poll, ending, must
    # not wait on anything the stopping scheduler holds
    assert time.monotonic() - t0 < 6
    events = [r.get("event") for r in d.logs()]
    assert events[-3:] == ["stop", "poll", "stopped"]  # the poll told, no stop.forced
    db = sqlite3.connect(tmp_path / "h.db")
    assert db.execute("SELECT count(*) FROM items").fetchone() == (7,)  # it finished
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_poll_that_outlasts_the_grace_does_not_hold_the_exit(server, tmp_path, running):
    """The server sits on the request for longer than the grace: the daemon exits 0 when
    the grace is over, not when the request ends, and stores nothing half-done."""
    import threading

    arrived, release = threading.Event(), threading.Event()

    def hung(handler):
        arrived.set()
        release.wait(30)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/hung", hung)
    cfg = make_config(tmp_path, BASE.replace('grace = "10s"', 'grace = "1s"')
                      .replace("timeout = 2", "timeout = 30")
                      + feed_source("hung", server.url("/hung")))
    d = running(cfg, http=False)
    try:
        d.wait_for(arrived.is_set, what="the hung poll to start")
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 5
    finally:
        release.set()
    assert [r["event"] for r in d.logs()][-3:] == ["stop", "stop.forced", "stopped"]
    db = sqlite3.connect(tmp_path / "h.db")
    assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_healthz_is_503_when_the_database_is_not_writable(server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE.replace('every = "1s"', 'every = "1h"', 1)
                      + feed_source("icmpd-rss", icmpd_a))
    d = running(cfg)
    d.wait_for(lambda: d.get("/healthz")[0] == 200 if server.hits("/rss") else None,
               what="a healthy start")
    blocker = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        status, body = d.get("/healthz")
        assert status == 503
        assert json.loads(body)["database"] == "unwritable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert d.get("/healthz")[0] == 200
    assert d.stop() == 0


def test_backoff_honours_retry_after(server, tmp_path, running):
    server.route("/busy", Response(b"slow down", status=429, content_type="text/plain",
                                   headers={"Retry-After": "7"}, conditional=False))
    cfg = make_config(tmp_path, BASE + feed_source("busy", server.url("/busy")))
    d = running(cfg, http=False)
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll.failed"],
               what="the first refused poll")
    first = next(r for r in d.logs() if r.get("event") == "poll.failed")
    assert "next in 7s: HTTP 429" in first["message"]
    time.sleep(3)
    assert len(server.hits("/busy")) == 1  # not polled again before the server's time
    assert d.stop() == 0


def test_a_delivery_its_database_refuses_is_one_line_and_goes_on_the_next_pass(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a) + CONSOLE)
    d = running(cfg, http=False)
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "poll"], what="the baseline")
    with sqlite3.connect(tmp_path / "h.db") as c:  # the message goes; marking it sent fails
        c.execute("CREATE TRIGGER refuse BEFORE UPDATE OF status ON outbox"
                  " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    errors = d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "delivery.error"],
                        what="the delivery's error")
    assert errors[0]["level"] == "error"
    assert errors[0]["message"] == (f"delivery: not done: cannot mark notifications sent in "
                                    f"{tmp_path / 'h.db'}: disk full (test)")
    with sqlite3.connect(tmp_path / "h.db") as c:
        c.execute("DROP TRIGGER refuse")
    # the next pass (deliver_every) sends what the failed one could not mark: its claim on
    # the rows is its own, not one to wait out
    d.wait_for(lambda: [r for r in d.logs() if r.get("event") == "delivery"], what="the pass")
    assert [r["message"] for r in d.logs() if r.get("event") == "delivery"] == [
        "delivery: 3 sent, 0 waiting to retry, 0 dead"]
    assert "Traceback" not in d.err.read_text()
    with sqlite3.connect(tmp_path / "h.db") as c:
        assert c.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall() == [
            ("sent", 3)]
    assert d.stop() == 0


def test_a_status_page_it_cannot_read_the_database_for_is_503_with_the_reason(
        server, icmpd_a, tmp_path, running):
    cfg = make_config(tmp_path, BASE.replace('every = "1s"', 'every = "1h"', 1)
                      + feed_source("icmpd-rss", icmpd_a))
    d = running(cfg)
    d.wait_for(lambda: d.get("/")[0] == 200 if server.hits("/rss") else None,
               what="a page after the first poll")
    db = tmp_path / "h.db"
    # the file the page opens afresh is gone and a folder stands in its place (the daemon's
    # own connections keep the old file)
    db.rename(tmp_path / "moved.db")
    db.mkdir()
    for path in ("/", "/feed.atom"):
        status, body = d.get(path)
        assert (status, body.decode()) == (
            503, f"cannot open database {db}: unable to open database file\n")
    assert "Traceback" not in d.err.read_text()
    db.rmdir()
    (tmp_path / "moved.db").rename(db)
    assert d.get("/")[0] == 200
    assert d.stop() == 0


def test_a_restarted_daemon_exports_each_sources_last_success_from_the_database(
        server, icmpd_a, tmp_path, running):
    """A source failing since before a restart shows its age at once: the gauge comes
    from the database, not only from this process's next success."""
    cfg = make_config(tmp_path, http_fast('every = "1h"\n') + feed_source("icmpd-rss", icmpd_a)
                      + feed_source("never", server.url("/nothing-here")))
    assert run_cli("--config", str(cfg), "once").returncode == 1  # "never" has no feed
    stored = sqlite3.connect(tmp_path / "h.db").execute(
        "SELECT last_success FROM sources WHERE name = 'icmpd-rss'").fetchone()[0]
    hits = len(server.hits("/rss"))
    d = running(cfg)

    def up() -> bool:
        try:
            return d.get("/healthz")[0] == 200
        except OSError:  # not listening yet
            return False

    d.wait_for(up, what="the daemon's HTTP")
    families = {f.name: f for f in text_string_to_metric_families(d.get("/metrics")[1].decode())}
    gauge = {s.labels["source"]: s.value for s in
             families["harvester_source_last_success_timestamp_seconds"].samples}
    assert len(server.hits("/rss")) == hits  # polled an hour from the last run: not yet
    assert gauge == {"icmpd-rss": datetime.fromisoformat(stored).timestamp()}  # none: never
    # and when each last brought a new item (its baseline's, here): an alert on its age
    # finds a feed that stopped updating, which polls fine
    news = {s.labels["source"]: s.value for s in
            families["harvester_source_last_new_item_timestamp_seconds"].samples}
    assert news == {"icmpd-rss": datetime.fromisoformat(stored).timestamp()}


def test_a_poll_running_past_its_next_turn_is_said_once_with_its_source(
        server, icmpd_a, tmp_path, running):
    """A slow server and an `every` shorter than a poll: APScheduler warned at each turn
    skipped, naming a job but no source; the daemon says it once an overrun, attributed."""
    def slow(_req):
        time.sleep(3.5)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/slow", slow)
    cfg = make_config(tmp_path, BASE.replace("timeout = 2", "timeout = 10")
                      + feed_source("slow", server.url("/slow")))
    d = running(cfg, http=False)
    d.wait_for(lambda: any(r.get("event") == "poll" for r in d.logs()), what="the slow poll")
    overruns = [r for r in d.logs() if r.get("event") == "poll.overrun"]
    assert [(r["source"], r["message"]) for r in overruns] == [
        ("slow", "slow: its poll still runs at its next turn; turns are skipped until it ends")]
    assert "maximum number of running instances" not in d.err.read_text()
