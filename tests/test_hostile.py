"""The hostile-input suite: every case in fixtures/hostile/ against a recording server.

Each case first gives the source two good polls (the ICMPD feed of 15 May, then of
27 May, which queues notifications), so there is something to lose; then serves the
hostile response and checks the outcome: a clear error with every stored item and
outbox row exactly as before, or the harmless items. The server's log shows what
the harvester asked for: no DTD, no request after a 429, no private address.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import timedelta

import pytest

from harvester.config import load_config
from harvester.devserver import FixtureServer, Response
from harvester.harvest import poll_sources
from harvester.models import PollStatus
from harvester.store import SqliteStore

from .conftest import FIXTURES, NOW, make_config
from .hostile import Case, load_cases, response, substitute
from .test_harvest import snapshot

CASES = load_cases()
BULLETS = {"xml", "caps", "ssrf", "encoding", "text", "dates", "formats", "politeness",
           "bad-polls", "identity"}


def _toml_value(v: object) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return str(v).lower()
    return json.dumps(v)  # strings, numbers and lists of them are valid TOML this way


def _config(tmp_path, case: Case, url: str, base: str):
    http = {"timeout": 2, "retries": 0, **case.http}
    lines = ['[storage]\npath = "h.db"\n', "[http]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in http.items()]
    lines += ["", "[defaults]", 'timezone = "Europe/Vienna"', "",
              "[[notifiers]]", 'name = "hook"', 'kind = "webhook"', "rules = []",
              'url = "http://127.0.0.1:9/never-delivered-in-this-suite"',
              'on = ["new", "changed"]', "",
              "[[sources]]", 'name = "hostile"', f'url = "{url}"']
    source = {"kind": "feed", "category_from_title": True,
              **{k: v for k, v in case.source.items()
                 if not isinstance(v, dict)}}
    lines += [f"{k} = {_toml_value(v)}" for k, v in source.items()]
    for table, values in case.source.items():
        if isinstance(values, dict):
            lines.append(f"  [sources.{table}]")
            lines += [f"  {k} = {_toml_value(str(v).replace('@BASE@', base))}"
                      if isinstance(v, str) else f"  {k} = {_toml_value(v)}"
                      for k, v in values.items()]
    return load_config(make_config(tmp_path, "\n".join(lines) + "\n"))


def _poll(config, store, at):
    return next(iter(poll_sources(config, store, clock=lambda: at)))


def _stored_text(store: SqliteStore) -> str:
    rows = store.conn.execute("SELECT * FROM items").fetchall()
    return json.dumps(rows, ensure_ascii=False)


def _titles(store: SqliteStore) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT title FROM items")}


def test_every_bullet_of_the_issue_has_cases():
    covered = {c.covers for c in CASES}
    assert covered == BULLETS, sorted(covered ^ BULLETS)
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: Case, tmp_path):
    with FixtureServer() as srv:
        expect = substitute(case.expect, srv.base)
        url = srv.url("/feed")
        config = _config(tmp_path, case, url, srv.base)
        store = SqliteStore(tmp_path / "h.db")
        at = NOW
        before: dict = {}
        titles_before: set[str] = set()
        if case.baseline.get("skip") is not True:
            headers = case.baseline.get("headers", {})
            files = case.baseline.get("files", ["feeds/icmpd-2020-05-a.rss",
                                                "feeds/icmpd-2020-05-b.rss"])
            for name in files:
                srv.route("/feed", Response(
                    (FIXTURES / name).read_bytes(), headers=dict(headers),
                    content_type=case.baseline.get("content_type", "application/rss+xml"),
                    conditional=not headers))
                assert _poll(config, store, at).status is PollStatus.OK
                at += timedelta(minutes=30)
            assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] > 0
            before, titles_before = snapshot(store), _titles(store)
        for route in case.routes:
            srv.route(route["path"], response(route, srv.base))
        srv.route("/feed", response(case.response, srv.base))
        seen = len(srv.requests)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu_started = time.monotonic(), time.process_time()
        report = _poll(config, store, at)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
        hostile_requests = srv.requests[seen:]

        # The work is bounded in CPU time, which tests running beside this one (-n 4) do not
        # stretch; a wait (a drip, a timeout, a Retry-After) in wall time, which they stretch
        # by about the CPU time they take from it.
        limit = expect.get("max_seconds", 2.0)
        assert cpu < limit, f"took {cpu:.2f}s of CPU"
        assert elapsed < limit + 2 * cpu, f"took {elapsed:.2f}s ({cpu:.2f}s of CPU)"
        assert grown_mb < expect.get("max_mb", 40), f"peak memory grew {grown_mb:.0f} MB"
        outcome = expect["outcome"]
        assert report.status.value == {"failed": "error"}.get(outcome, outcome), report
        if outcome == "failed":
            assert expect["error"] in report.error
            if before:
                assert snapshot(store) == before  # items, versions, sightings and outbox
            row = store.sources()[0]
            assert expect["error"] in row["last_error"]  # what `harvester sources` shows
        else:
            assert report.error is None, report.error
        if "warning" in expect:
            assert expect["warning"] in (report.warning or ""), report.warning
        added = _titles(store) - titles_before
        if "added" in expect:
            assert sorted(added) == sorted(expect["added"])
        if "added_count" in expect:
            assert len(added) == expect["added_count"]
        for want in expect.get("items", []):
            by = "title" if "title" in want else "url"
            got = store.conn.execute(f"SELECT * FROM items WHERE {by} = ?",
                                     (want[by],)).fetchone()
            assert got is not None, want[by]
            cols = [d[0] for d in store.conn.execute("SELECT * FROM items LIMIT 0").description]
            row = dict(zip(cols, got, strict=True))
            for k, v in want.items():
                if k.endswith("_contains"):
                    assert v in (row[k[:-9]] or ""), (k, row[k[:-9]])
                elif k.endswith("_length"):
                    assert len(row[k[:-7]] or "") == v, (k, len(row[k[:-7]] or ""))
                else:
                    assert row[k] == v, (k, row[k])
        text = _stored_text(store)
        for bad in expect.get("absent", []):
            assert bad not in text, f"{bad!r} reached the store"
        for path in expect.get("untouched", []):
            assert not srv.hits(path.replace("@BASE@", srv.base)), f"{path} was requested"
        paths = [r.path for r in hostile_requests]
        if "requests" in expect:
            assert paths.count("/feed") == expect["requests"], paths
        for k, v in expect.get("sent", {}).items():
            assert hostile_requests[0].headers.get(k) == v, hostile_requests[0].headers
        if expect.get("retry_after") == "none":
            assert report.retry_after is None
        elif "retry_after" in expect:
            assert report.retry_after == pytest.approx(expect["retry_after"], abs=5)
        if "then" in expect:  # a later poll: what a cron run an hour on would do
            then = expect["then"]
            seen = len(srv.requests)
            later = _poll(config, store, at + timedelta(seconds=then["after"]))
            assert later.status.value == then["outcome"], later
            assert len(srv.requests) - seen == then["requests"]
            for k, v in then.get("sent", {}).items():
                assert srv.requests[-1].headers.get(k) == v
        store.close()
