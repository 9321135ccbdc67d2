"""The store under contention and crashes: real processes on one SQLite file.

Twenty `harvester once` runs beside a daemon finish without a lock error; outbox
claims keep overlapping runs from sending one notification twice; and a run killed
with SIGKILL at random moments, over and over, never leaves a half-written poll or
loses a notification.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvester.dates import iso_utc
from harvester.devserver import Response
from harvester.store import SqliteStore, claimant

from .conftest import NOW, Running, feed_bytes, feed_source, http_fast, make_config, run_cli
from .servers import Receiver
from .test_notify import webhook_notifier

SECRET_ENV = {"HV_HOOK_SECRET": "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="}


@pytest.fixture
def receiver():
    r = Receiver(secret=b"secret-key-for-tests")
    yield r
    r.stop()


def growing_feed():
    """A feed that gains one item per request: every poll has something new to store and
    to notify, so a kill can land inside any stage."""
    count = [0]
    lock = threading.Lock()

    def handle(handler):
        with lock:
            count[0] += 1
            n = min(count[0], 60)
        items = "".join(
            f"<item><title>Launch {i}</title><link>http://news.example/launch/{i}</link>"
            f"<description>Project launch number {i}</description>"
            f"<pubDate>Wed, 27 May 2020 10:{i % 60:02d}:00 +0200</pubDate></item>"
            for i in range(n))
        return Response(f'<rss version="2.0"><channel><title>g</title>{items}</channel></rss>'
                        .encode(), conditional=False)
    return handle


def consistent(db_path) -> None:
    """integrity_check passes, and no poll is half-written: every item has its sighting
    and its version history, every outbox row its item."""
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        if db.execute("PRAGMA user_version").fetchone() == (0,):
            # killed before the schema's transaction committed: an empty file, migrated
            # whole by the next run
            assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'items'"
                              ).fetchone() == (0,)
            return
        assert db.execute("SELECT count(*) FROM items i WHERE NOT EXISTS "
                          "(SELECT 1 FROM sightings s WHERE s.item_id = i.id)").fetchone() == (0,)
        # version n of an item has the n - 1 versions it replaced on record
        assert db.execute("SELECT count(*) FROM items i WHERE i.version - 1 != "
                          "(SELECT count(*) FROM item_versions v WHERE v.item_id = i.id)"
                          ).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM outbox o WHERE o.item_id IS NOT NULL AND NOT "
                          "EXISTS (SELECT 1 FROM items i WHERE i.id = o.item_id)"
                          ).fetchone() == (0,)
        assert db.execute("SELECT count(*) - count(DISTINCT key) FROM items").fetchone() == (0,)
    finally:
        db.close()


def test_a_live_claim_holds_and_a_dead_processes_claim_is_void(tmp_path, server, icmpd_a,
                                                                 config_for):
    from harvester.harvest import poll_sources

    config = config_for(feed_source("icmpd-rss", icmpd_a, first_run="all"),
                        notifiers='\n[[notifiers]]\nname = "c"\nkind = "console"\nrules = []\n')
    store = SqliteStore(tmp_path / "h.db")
    list(poll_sources(config, store, clock=lambda: NOW))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = claimant().rpartition(":")[0]
    ids = [r[0] for r in store.conn.execute("SELECT id FROM outbox ORDER BY id")]
    assert len(ids) == 7
    later = NOW + timedelta(seconds=5)
    store.conn.execute("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                       (f"{host}:{os.getppid()}", "2020-05-28T09:00:00Z", ids[0]))
    store.conn.execute("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                       (f"{host}:{dead.pid}", "2020-05-28T09:00:00Z", ids[1]))
    store.conn.execute("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                       (f"{host}:{os.getppid()}", "2020-05-28T08:00:01Z", ids[2]))
    claimed = {r["id"] for r in store.claim_due(later, per_row=30)}
    # a live process's unexpired claim is respected; a dead one's and an expired one are not
    assert claimed == set(ids) - {ids[0]}
    rows = dict(store.conn.execute("SELECT id, claimed_until FROM outbox"))
    assert rows[ids[1]] == "2020-05-28T08:04:05Z"  # a minute plus 30 s a row for 6 rows
    # another live process of this host holds them now…
    store.conn.execute("UPDATE outbox SET claimed_by = ? WHERE claimed_by = ?",
                       (f"{host}:{os.getppid()}", claimant()))
    assert store.claim_due(later, per_row=30) == []
    # …but a claim of this process's own, left by a pass that could not settle it, is not
    store.conn.execute("UPDATE outbox SET claimed_by = ? WHERE id = ?", (claimant(), ids[3]))
    assert [r["id"] for r in store.claim_due(later, per_row=30)] == [ids[3]]
    store.close()


@pytest.mark.slow
def test_twenty_onces_and_a_daemon_share_one_database(server, tmp_path, receiver, monkeypatch):
    for name, path in (("icmpd-2020-05-b.rss", "/a"), ("icmpd-2019-03.rss", "/b")):
        server.route(path, Response(feed_bytes(name)))
    server.route("/g", growing_feed())
    sources = (feed_source("a", server.url("/a"), first_run="all")
               + feed_source("b", server.url("/b"), first_run="all")
               + feed_source("g", server.url("/g"), first_run="all"))
    cfg = make_config(tmp_path, http_fast('every = "1s"\n') + '[daemon]\ndeliver_every = "1s"\n'
                      + sources + webhook_notifier(receiver.url, rules="[]",
                                                   extra="max_per_run = 1000\n"), rules=False)
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)
    env = {**os.environ, "PYTHONUTF8": "1"}
    daemon = Running(cfg, tmp_path, http=False)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg),
                                   "once"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(20)]
        results = [(p.wait(120), *p.communicate()) for p in procs]
        # the onces leave a source another process is polling to it, so the hits on /g so
        # far are anywhere from a few to twenty
        after = len(server.hits("/g"))
        daemon.wait_for(lambda: len(server.hits("/g")) >= after + 4, what="daemon polls")
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    for code, _out, err in results:
        assert code == 0, err
        assert "locked" not in err and "Traceback" not in err, err
        lines = err.splitlines()
        for name in "abg":  # each source polled, or left to the process polling it
            assert len([ln for ln in lines if ln.startswith(f"{name}: ")]) == 1, err
    log = daemon.err.read_text()
    assert "locked" not in log and "Traceback" not in log, log[-2000:]
    consistent(tmp_path / "h.db")
    db = sqlite3.connect(tmp_path / "h.db")
    outbox = dict(db.execute("SELECT id, status FROM outbox"))
    delivered = [d.id for d in receiver.deliveries]
    assert set(delivered) <= set(outbox)
    assert len(delivered) == len(set(delivered)), "a notification was sent twice"
    sent = {i for i, s in outbox.items() if s == "sent"}
    assert sent == set(delivered)
    # every fetch of /g stored the one item it added, once
    assert db.execute("SELECT count(*) FROM sightings WHERE source = 'g'").fetchone() == (
        min(len(server.hits("/g")), 60),)


def test_many_first_opens_of_a_new_database_at_once_all_succeed(tmp_path):
    """SQLite answers `journal_mode = WAL` with "database is locked" at once, not after
    the busy timeout, while another connection is turning the file to WAL: a cron `once`
    started beside the daemon on a new volume failed so (a CI run caught it)."""
    failures: list[str] = []
    for round_ in range(40):
        path = tmp_path / f"h{round_}.db"
        start = threading.Barrier(16)

        def open_one(path=path, start=start) -> None:
            start.wait()
            try:
                SqliteStore(path).close()
            except Exception as e:  # every failure, of whatever kind, is the finding
                failures.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=open_one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    store = SqliteStore(tmp_path / "h0.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_backup_taken_while_the_daemon_writes_is_whole(server, tmp_path):
    """`harvester backup` beside a daemon storing one more item every second: each copy
    passes the same checks as the live database, holds the items it reports, and replaces
    the one before it whole."""
    server.route("/g", growing_feed())
    cfg = make_config(tmp_path, http_fast('every = "1s"\n') + feed_source("g", server.url("/g")),
                      rules=False)
    target = tmp_path / "backup.db"
    counts = []
    daemon = Running(cfg, tmp_path, http=False)
    try:
        for _ in range(4):
            polls = len(server.hits("/g"))
            daemon.wait_for(lambda polls=polls: len(server.hits("/g")) > polls, what="a poll")
            r = run_cli("--config", str(cfg), "backup", str(target))
            assert r.returncode == 0, r.stderr
            m = re.fullmatch(r"backed up (\d+) items? to (.+) \([\d.]+ MiB, checked\)\n", r.stdout)
            assert m and m.group(2) == str(target), r.stdout
            consistent(target)
            copy = sqlite3.connect(target)
            assert copy.execute("SELECT count(*) FROM items").fetchone() == (int(m.group(1)),)
            copy.close()
            counts.append(int(m.group(1)))
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert "locked" not in daemon.err.read_text()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(server, tmp_path, receiver):
    """Runs killed at random points (start-up, fetch, parse, the write, delivery) until
    thirty have been:
    after each, the database is consistent; at the end every notification has been
    delivered, each at least once, and there are no more resends than kills."""
    server.route("/g", growing_feed())
    hook = webhook_notifier(receiver.url, rules="[]", extra="max_per_run = 1000\n")
    cfg = make_config(tmp_path, http_fast() + feed_source("g", server.url("/g"), first_run="all")
                      + hook, rules=False)
    env = {**os.environ, **SECRET_ENV, "PYTHONUTF8": "1"}
    receiver.hold = 0.03  # a delivery takes a moment, so kills land inside some of them
    # Kills are drawn across what a run takes on this machine, timed on a database of its
    # own: a fixed window killed most runs on a slow machine and a third on a fast one.
    (tmp_path / "calib").mkdir()
    calib = make_config(tmp_path / "calib", http_fast() + feed_source(
        "g", server.url("/g"), first_run="all") + webhook_notifier(
        receiver.url + "/calib", rules="[]", extra="max_per_run = 1000\n"), rules=False)
    for _ in range(2):  # a baseline, then a run like most of those below: one new item
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "harvester", "--config", str(calib), "once"],
                       env=env, capture_output=True, timeout=60, check=True)
    span = time.monotonic() - started
    rng = random.Random(20201123)
    kills = runs = 0
    while kills < 30:
        runs += 1
        assert runs <= 90, f"only {kills} kills in {runs} runs"
        proc = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg),
                                 "once"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.02, 1.2 * span))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        else:
            # it ended before its moment came: runs take less than the calibration said
            # now (it ran in a slow spell; under -n 4 the machine's speed moves a lot)
            span *= 0.8
        proc.wait(10)
        if (tmp_path / "h.db").exists():
            consistent(tmp_path / "h.db")
    receiver.hold = 0.0
    final = subprocess.run([sys.executable, "-m", "harvester", "--config", str(cfg), "once"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    consistent(tmp_path / "h.db")
    db = sqlite3.connect(tmp_path / "h.db")
    outbox = dict(db.execute("SELECT id, status FROM outbox"))
    items = db.execute("SELECT count(*) FROM items").fetchone()[0]
    assert len(outbox) == items  # one notification per item, none queued twice
    assert set(outbox.values()) == {"sent"}
    delivered = [d.id for d in receiver.deliveries if d.path == "/hook"]  # not calibration's
    assert set(delivered) == set(outbox)  # every one at least once, no unknown ids
    assert all(d.valid for d in receiver.deliveries)
    resends = len(delivered) - len(set(delivered))
    print(f"{kills} kills in {runs} runs; {len(outbox)} notifications, {resends} resent")
    assert resends <= kills


@given(st.lists(st.text()))
def test_json_lists_are_written_as_json_dumps_writes_them(values):
    from harvester.store import _json_list

    assert _json_list(values) == json.dumps(values, ensure_ascii=False)
    assert json.loads(_json_list(values)) == values


def _poll(store: SqliteStore, name: str, decide=None, now=NOW) -> None:
    """One source's poll through the store's public write path, with nothing to store."""
    from harvester.models import PollPlan, PollReport, PollStatus, SourceState

    store.apply_poll(name, f"http://127.0.0.1/{name}", "feed", now,
                     PollReport(name, PollStatus.OK), SourceState(name, etag=f'"{name}"'), [],
                     decide or (lambda known: PollPlan((), (), True)))


def _etags(db_path) -> dict[str, str]:
    with sqlite3.connect(db_path) as other:  # another connection: sees committed rows only
        return dict(other.execute("SELECT name, etag FROM sources"))


def test_polls_in_a_group_share_commits_and_fail_alone(tmp_path):
    db = tmp_path / "h.db"
    store = SqliteStore(db)

    def broken(known):
        raise RuntimeError("decide failed")

    with store.group(seconds=3600):
        _poll(store, "a")
        with pytest.raises(RuntimeError, match="decide failed"):
            _poll(store, "b", broken)
        _poll(store, "c")
        assert _etags(db) == {}  # not committed yet: one transaction for the group
    # b's savepoint was undone alone; a and c were committed when the group ended
    assert _etags(db) == {"a": '"a"', "c": '"c"'}
    store.close()


def test_a_group_commits_at_its_time_limit_and_on_flush(tmp_path):
    db = tmp_path / "h.db"
    store = SqliteStore(db)
    with store.group(seconds=0):  # every poll is past the limit: committed at once
        _poll(store, "a")
        assert _etags(db) == {"a": '"a"'}
    with store.group(seconds=3600):
        _poll(store, "b")
        assert "b" not in _etags(db)
        store.flush()  # poll_sources flushes before it waits: the lock is not held idle
        assert _etags(db)["b"] == '"b"'
        # and another writer gets the lock between polls
        with sqlite3.connect(db, timeout=0.1) as other:
            other.execute("UPDATE sources SET last_error = 'x' WHERE name = 'a'")
        _poll(store, "c")
    assert set(_etags(db)) == {"a", "b", "c"}
    store.close()


def test_a_group_says_when_what_was_written_is_committed_or_lost(tmp_path):
    # poll_sources holds each poll's report until this says its rows are stored
    db = tmp_path / "h.db"
    store = SqliteStore(db)
    committed: list[set[str]] = []
    lost: list[str] = []
    with store.group(seconds=3600, on_commit=lambda: committed.append(set(_etags(db))),
                     on_lost=lost.append):
        assert not store.uncommitted()
        _poll(store, "a")
        _poll(store, "b")
        assert store.uncommitted() and committed == []
        store.flush()
        assert not store.uncommitted()
        assert committed == [{"a", "b"}]  # called once another connection sees the rows
        store.flush()  # nothing written since: no commit, no call
        _poll(store, "c")
        # SQLite rolls a whole transaction back itself on some errors (a full disk, an I/O
        # error): the polls written in it since the last commit are gone with it
        with pytest.raises(sqlite3.OperationalError), store._write() as conn:
            conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        assert lost == ["disk I/O error"] and not store.uncommitted()
        _poll(store, "d")
    assert committed == [{"a", "b"}, {"a", "b", "d"}]  # c went with the lost transaction
    _poll(store, "e")  # outside a group: its own commit, no hook called
    assert not store.uncommitted() and len(committed) == 2 and lost == ["disk I/O error"]
    store.close()


def test_a_group_keeps_its_journals_and_pages_in_memory_only_while_grouping(tmp_path):
    """Each poll's savepoint journals the pages it changes; beyond 64 KiB SQLite spilled
    that to a temporary file (~180 MB for a first poll of 200 feeds), and a 2 MB page cache
    spilled to the WAL. A group keeps both in memory; afterwards the defaults return, so a
    big query's sort may use files again and a long-running daemon stays small."""
    store = SqliteStore(tmp_path / "h.db")

    def pragmas() -> tuple[int, int]:
        return (store.conn.execute("PRAGMA temp_store").fetchone()[0],
                store.conn.execute("PRAGMA cache_size").fetchone()[0])

    def broken(known):
        raise RuntimeError("decide failed")

    assert pragmas() == (0, -2000)  # SQLite's defaults: temporary files, 2 MB of cache
    with store.group(seconds=3600):
        assert pragmas() == (2, -8192)  # MEMORY, 8 MiB
        _poll(store, "a")
        with pytest.raises(RuntimeError, match="decide failed"):  # still undone alone
            _poll(store, "b", broken)
    assert pragmas() == (0, -2000)
    assert _etags(tmp_path / "h.db") == {"a": '"a"'}
    store.close()


def test_known_reads_keys_urls_and_titles_in_one_query(server, icmpd_a, config_for, store):
    """The issue's "identities loaded in one query per source": one SELECT answers by key
    for the source, by URL and by title for any source, and the baseline flag."""
    from harvester.harvest import poll_sources

    config = config_for(feed_source("icmpd-rss", icmpd_a))
    list(poll_sources(config, store, clock=lambda: NOW))
    rows = {i["title"]: i for i in store.items()}
    first, second, third = list(rows.values())[:3]
    first_key = store.conn.execute("SELECT key FROM sightings WHERE item_id = ?",
                                   (first["id"],)).fetchone()[0]
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    # the other source knows nothing by key; one entry shares a URL, one only a title
    other = store.known("listing", [("url:elsewhere", second["url"], "Another title", None),
                                    ("url:x", "https://x.example/", third["title"], None),
                                    ("url:none", None, "", None)])
    mine = store.known("icmpd-rss", [(first_key, first["url"], first["title"], None)])
    store.conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"]
    assert other.by_key == {} and not other.baseline_done
    assert (other.by_url[second["url"]].id, other.by_url[second["url"]].own) == (
        second["id"], False)
    assert [(s.id, s.own) for s in other.by_title[third["title"]]] == [(third["id"], False)]
    assert list(other.by_url) == [second["url"]] and list(other.by_title) == [third["title"]]
    # found by key: neither its URL nor its title is looked for elsewhere
    assert mine.baseline_done and mine.by_url == {} and mine.by_title == {}
    assert (mine.by_key[first_key].id, mine.by_key[first_key].own) == (first["id"], True)


def test_an_entry_found_by_nothing_is_looked_for_among_the_items_dated_near_it(
        server, icmpd_a, config_for, store):
    """What a retitled entry may be (diff): this source's items within 12 hours of its
    date, less those found — read by date, so the cost is a day's items, never the
    source's whole history — and no read at all for an entry without a date."""
    from harvester.harvest import poll_sources

    config = config_for(feed_source("icmpd-rss", icmpd_a))
    list(poll_sources(config, store, clock=lambda: NOW))
    by_date = {i["published"]: i for i in store.items()}
    may13 = [by_date["2020-05-13T13:07:50Z"], by_date["2020-05-13T10:31:28Z"]]
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    fresh = ("url:https://www.icmpd.org/fresh/", "https://www.icmpd.org/fresh/", "Fresh",
             "2020-05-13T12:00:00Z")
    found = store.known("icmpd-rss", [fresh])
    store.conn.set_trace_callback(None)
    assert sorted(g.item.id for g in found.gone) == sorted(i["id"] for i in may13)
    assert {(g.title, g.summary) for g in found.gone} == {(i["title"], i["summary"])
                                                          for i in may13}
    [_, former_sql, vanished_sql] = statements
    plan = " ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + vanished_sql))
    assert plan.startswith("SEARCH i USING INDEX items_published"), plan
    # (and before that, whether an item had its link or title once: by index, see below)
    plan = " ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + former_sql))
    assert "SEARCH v USING INDEX item_versions_url" in plan
    assert "SEARCH v USING INDEX item_versions_title" in plan
    first_key = store.conn.execute("SELECT key FROM sightings WHERE item_id = ?",
                                   (may13[0]["id"],)).fetchone()[0]
    # one of them in this read: only the other is gone
    found = store.known("icmpd-rss", [fresh, (first_key, None, "", None)])
    assert [g.item.id for g in found.gone] == [may13[1]["id"]]
    store.conn.execute("INSERT INTO sources (name, url, kind, baseline_at)"
                       " VALUES ('listing', 'https://www.icmpd.org/news', 'html', ?)",
                       (iso_utc(NOW),))
    assert store.known("listing", [fresh]).gone == []  # another source's items are not its
    statements.clear()
    store.conn.set_trace_callback(statements.append)
    assert store.known("icmpd-rss", [(*fresh[:3], None)]).gone == []
    store.conn.set_trace_callback(None)
    assert len(statements) == 2  # what is known, what was known once: no read by date


def test_an_entry_with_a_link_or_title_an_item_had_before_is_that_item(
        server, icmpd_a, config_for, store):
    """A link or a title an item had in an earlier version identifies it to an entry that
    nothing stored now does (a listing showing it as it was before its title and link
    were both fixed); diff takes either only for an entry of the same day."""
    from harvester.harvest import poll_sources

    config = config_for(feed_source("icmpd-rss", icmpd_a))
    list(poll_sources(config, store, clock=lambda: NOW))
    item = store.items()[0]
    store.conn.execute("INSERT INTO item_versions (item_id, version, recorded_at, content_hash,"
                       " title, url, category, summary, content, published) VALUES"
                       " (?, 1, ?, 'v2:old', 'Lauched: a project', 'https://www.icmpd.org/old/',"
                       " NULL, '', '', ?)", (item["id"], iso_utc(NOW), item["published"]))
    old_link = ("url:https://www.icmpd.org/old/", "https://www.icmpd.org/old/", "Other",
                item["published"])
    old_title = ("url:https://www.icmpd.org/x/", "https://www.icmpd.org/x/",
                 "Lauched: a project", item["published"])
    found = store.known("listing", [old_link, old_title])
    assert found.by_former_url["https://www.icmpd.org/old/"].id == item["id"]
    assert [s.id for s in found.by_title["Lauched: a project"]] == [item["id"]]
    assert not found.by_former_url["https://www.icmpd.org/old/"].first  # icmpd-rss's
    assert store.known("icmpd-rss", [old_link]).by_former_url[
        "https://www.icmpd.org/old/"].first


def test_forgetting_the_source_that_brought_an_item_hands_its_words_to_the_one_left(
        server, icmpd_a, config_for, store):
    """An item's words are its first source's: another's view is no edit of them, until
    `forget` takes that source away and the item becomes the other's."""
    from harvester.harvest import poll_sources

    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        feed_source("mirror", icmpd_a.replace("/rss", "/mirror")))
    server.route("/mirror", Response(feed_bytes("icmpd-2020-05-a.rss")))
    list(poll_sources(config, store, sources=config.sources[:1], clock=lambda: NOW))
    list(poll_sources(config, store, sources=config.sources[1:], clock=lambda: NOW))
    item = store.items()[0]
    key = store.conn.execute("SELECT key FROM sightings WHERE item_id = ? AND source ="
                             " 'mirror'", (item["id"],)).fetchone()[0]

    def mirrors() -> tuple[bool, bool]:
        stored = store.known("mirror", [(key, item["url"], item["title"], None)]).by_key[key]
        return stored.own, stored.first

    assert mirrors() == (True, False)
    store.forget(["icmpd-rss"])
    assert mirrors() == (True, True)


def test_prune_log_drops_the_rows_older_than_the_cutoff_and_nothing_else(tmp_path):
    store = SqliteStore(tmp_path / "h.db")
    ages = (120, 100, 95, 91, 89, 10, 0)  # days before NOW, in the order they were logged
    for i, days in enumerate(ages):
        _poll(store, f"s{i % 2}", now=NOW - timedelta(days=days))
    logged = [r["at"] for r in store.fetch_log()]

    # batches of two: the four old rows go in two transactions
    assert store.prune_log(NOW - timedelta(days=90), batch=2) == 4
    assert [r["at"] for r in store.fetch_log()] == logged[4:]
    assert store.prune_log(NOW - timedelta(days=90)) == 0
    # the sources' health rows are not the log's: both stay, as they were
    assert [(r["name"], r["last_polled"]) for r in store.sources()] == [
        ("s0", logged[6]), ("s1", logged[5])]
    # every row older than the cutoff, up to the newest
    assert store.prune_log(NOW + timedelta(seconds=1)) == 3
    assert store.fetch_log() == []
    assert store.prune_log(NOW) == 0
    store.close()


def test_next_due_is_the_first_pending_row_due_later_of_a_notifier_not_disabled(tmp_path):
    store = SqliteStore(tmp_path / "h.db")
    rows = [("a", "hook", "pending", 0), ("b", "hook", "pending", 30), ("c", "hook", "sent", 10),
            ("d", "gone", "pending", 5), ("e", "mail", "pending", 60)]
    with store.conn:
        store.conn.executemany(
            "INSERT INTO outbox (id, notifier, item_id, event, created_at, status,"
            " next_attempt_at) VALUES (?, ?, ?, 'item.new', ?, ?, ?)",
            [(i, n, i, iso_utc(NOW), st, iso_utc(NOW + timedelta(seconds=s)))
             for i, n, st, s in rows])
    store.disable_notifier("gone", "410", NOW)
    # due now (a held-back row) is not "later"; sent rows and a disabled notifier's never are
    assert store.next_due(NOW) == NOW + timedelta(seconds=30)
    assert store.next_due(NOW + timedelta(seconds=30)) == NOW + timedelta(seconds=60)
    assert store.next_due(NOW + timedelta(seconds=60)) is None
    store.close()


# -- a database that refuses writes (a full disk) ----------------------------------------

# Past this size the kernel refuses a write (RLIMIT_FSIZE): room for the WAL's index and its
# first frame, so a run opens the database and then fails at its first real commit.
FULL_AT = 32 * 1024
REFUSE_MARKING_SENT = ("CREATE TRIGGER refuse BEFORE UPDATE OF status ON outbox"
                       " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")


def _count(db, sql: str) -> int:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchone()[0]


def test_a_full_disk_fails_the_run_in_one_line_and_the_next_run_stores_it_all(
        server, icmpd_a, tmp_path):
    cfg = make_config(tmp_path, http_fast() + feed_source("icmpd-rss", icmpd_a))
    db = tmp_path / "h.db"
    assert run_cli("--config", str(cfg), "once").returncode == 0  # the baseline: 7 items
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once", max_file_size=FULL_AT)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    last = r.stderr.splitlines()[-1]
    assert re.fullmatch(rf"harvester: error: cannot (store the poll of 'icmpd-rss'|record polls)"
                        rf" in {re.escape(str(db))}: (disk I/O error|database or disk is full)",
                        last), last
    consistent(db)
    assert _count(db, "SELECT count(*) FROM items") == 7  # the poll was undone whole
    r = run_cli("--config", str(cfg), "once")  # room again: the same news, nothing lost
    assert r.returncode == 0, r.stderr
    assert "icmpd-rss: 3 new, 1 changed, 6 unchanged" in r.stderr
    assert _count(db, "SELECT count(*) FROM items") == 10
    consistent(db)


def test_polls_sharing_a_commit_that_fails_are_said_as_not_stored(server, tmp_path):
    # A run's polls share commits (SqliteStore.group): one that fails undoes every poll in
    # it, so no line may claim news the database never got, and the next run stores it all.
    names = [f"s{i}" for i in range(8)]
    for name in names:
        server.route(f"/{name}", Response(feed_bytes("icmpd-2020-05-a.rss")))
    cfg = make_config(tmp_path, http_fast() + "".join(
        feed_source(name, server.url(f"/{name}")) for name in names))
    db = tmp_path / "h.db"
    assert run_cli("--config", str(cfg), "once").returncode == 0  # the baselines: 7 items
    for name in names:
        server.route(f"/{name}", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once", max_file_size=FULL_AT)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    *lines, last = r.stderr.splitlines()
    assert re.fullmatch(rf"harvester: error: cannot (store the poll of 's\d'|record polls)"
                        rf" in {re.escape(str(db))}: (disk I/O error|database or disk is full)",
                        last), last
    said = [line.split(":")[0] for line in lines]
    # each said once; a commit that fails before waiting ends the run, its later sources
    # unpolled and so unsaid (on a busy machine, that can come after four sources)
    assert said and len(said) == len(set(said)) and set(said) <= set(names), r.stderr
    for line in lines:
        assert re.fullmatch(
            r"s\d: error: (not stored: the write failed \((disk I/O error|database or disk is "
            r"full)\); the next run reads it again|cannot store the poll of 's\d' in .*)",
            line), line
    consistent(db)
    assert _count(db, "SELECT count(*) FROM items") == 7
    r = run_cli("--config", str(cfg), "once")  # room again: the same news, nothing lost
    assert r.returncode == 0, r.stderr
    said = dict(re.sub(r" \(HTTP 200, .*\)$", "", line).split(": ", 1)
                for line in r.stderr.splitlines())
    # the first source to store the news has it new; the rest know it through that one.
    # The edit is the source's that brought the item in the first run: another's view of
    # it is a sighting, never an edit
    with sqlite3.connect(db) as conn:
        owners = dict(conn.execute("SELECT source, count(*) FROM items GROUP BY source"))
    if len(owners) == 1:  # the same source came first both times
        expected = {name: "3 new, 1 changed, 6 unchanged" for name in owners}
    else:
        (first, _), (newest, _) = sorted(owners.items(), key=lambda kv: -kv[1])
        assert owners == {first: 7, newest: 3}
        expected = {first: "0 new, 1 changed, 9 unchanged",
                    newest: "3 new, 0 changed, 7 unchanged"}
    assert said == {name: expected.get(name, "0 new, 0 changed, 10 unchanged")
                    for name in names}
    assert _count(db, "SELECT count(*) FROM items") == 10
    consistent(db)


def test_a_delivery_the_database_cannot_record_goes_again_with_the_same_id(
        server, icmpd_a, tmp_path, receiver):
    cfg = make_config(tmp_path, http_fast() + feed_source("icmpd-rss", icmpd_a)
                      + webhook_notifier(receiver.url))
    db = tmp_path / "h.db"
    assert run_cli("--config", str(cfg), "once", env=SECRET_ENV).returncode == 0
    with sqlite3.connect(db) as c:
        c.execute(REFUSE_MARKING_SENT)  # the receiver takes it; marking it sent fails
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once", env=SECRET_ENV)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"harvester: error: cannot mark notifications sent in {db}: disk full (test)")
    [first] = receiver.deliveries
    assert _count(db, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 1
    with sqlite3.connect(db) as c:
        c.execute("DROP TRIGGER refuse")
    r = run_cli("--config", str(cfg), "once", env=SECRET_ENV)
    assert r.returncode == 0, r.stderr
    assert "delivery: 1 sent" in r.stderr
    # sent again, as one the receiver can tell it has had
    assert [d.id for d in receiver.deliveries] == [first.id, first.id]
    assert _count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == 1


STORE_CALLS = {
    "source_state": lambda s: s.source_state("a"), "sources": lambda s: s.sources(),
    "outbox": lambda s: s.outbox(), "iter_outbox": lambda s: list(s.iter_outbox()),
    "outbox_counts": lambda s: s.outbox_counts(),
    "fetch_log": lambda s: s.fetch_log(), "next_due": lambda s: s.next_due(NOW),
    "item_versions": lambda s: s.item_versions("i"),
    "disabled_notifiers": lambda s: s.disabled_notifiers(), "items": lambda s: s.items(),
    "iter_items": lambda s: list(s.iter_items()),
    "claim_due": lambda s: s.claim_due(NOW, 1), "mark_sent": lambda s: s.mark_sent(["x"], NOW),
    "mark_failed": lambda s: s.mark_failed(["x"], "e", retry_at=None),
    "requeue": lambda s: s.requeue(NOW, dead=True),
    "disable_notifier": lambda s: s.disable_notifier("n", "why", NOW),
    "enable_notifier": lambda s: s.enable_notifier("n"), "release": lambda s: s.release(["x"]),
    "retag": lambda s: s.retag([]), "forget": lambda s: s.forget(["a"]),
    "prune_log": lambda s: s.prune_log(NOW), "tagged_items": lambda s: list(s.tagged_items()),
    "apply_poll": lambda s: _poll(s, "a"),
}


@pytest.mark.parametrize("call", STORE_CALLS.values(), ids=STORE_CALLS.keys())
def test_every_store_call_says_what_it_could_not_do_in_which_database(tmp_path, call):
    from harvester.errors import StoreError

    store = SqliteStore(tmp_path / "h.db")
    store.conn.close()  # an SQLite error on whatever the call does first
    with pytest.raises(StoreError, match=rf"^cannot [a-z' -]+ in {re.escape(str(tmp_path))}"
                                         r"/h\.db: Cannot operate on a closed database\.$"):
        call(store)
