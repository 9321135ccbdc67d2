"""The outbox delivery loop against a receiver that fails as real ones do: a model of
what each pass may send, and what each answer does to the rows it carried."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harvester.config import load_config
from harvester.devserver import Response
from harvester.harvest import poll_sources
from harvester.notify.deliver import deliver
from harvester.store import SqliteStore

from .conftest import NOW, feed_source, http_fast, make_config, run_cli
from .servers import Receiver

MAX_ATTEMPTS = 3
BACKOFF = 60.0
BACKOFF_MAX = 600.0
LIMIT = 2  # max_per_run: past it, one digest

_CONFIG = f"""
[delivery]
max_attempts = {MAX_ATTEMPTS}
backoff = "{int(BACKOFF)}s"
backoff_max = "{int(BACKOFF_MAX)}s"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{{url}}"
max_per_run = {LIMIT}
"""

# what the receiver answers, request by request in a pass (then 200): accepted, down,
# overloaded, slow down (Retry-After seconds), or refused for good
_ANSWERS = st.sampled_from([(200,), (500,), (503,), (429, 5), (429, 90), (429, 400),
                            (429, 100_000), (400,)])
_PASSES = st.lists(st.tuples(
    st.integers(0, 4),  # items new to the feed before the pass
    st.sampled_from([0, 30, 61, 300, 1800, 7200]),  # seconds since the last pass
    st.lists(_ANSWERS, max_size=4),
), min_size=1, max_size=8)


def _rss(count: int) -> bytes:
    items = "".join(
        f'<item><guid isPermaLink="false">urn:model:{n}</guid><title>Item {n}</title>'
        f"<link>https://www.icmpd.org/news/item-{n}/</link><pubDate>"
        f"{format_datetime(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=n), usegmt=True)}"
        "</pubDate></item>" for n in range(count))
    return (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>M'
            b"</title><link>https://www.icmpd.org/</link>" + items.encode()
            + b"</channel></rss>")


@pytest.fixture
def model_receiver():
    r = Receiver()
    yield r
    r.stop()


def _ids(delivery) -> list[str]:
    """The outbox rows a request carried: a digest's, or the one message's (its id)."""
    if delivery.body["type"] == "digest":
        return [n["id"] for n in delivery.body["data"]["notifications"]]
    return [delivery.id]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(passes=_PASSES)
# found by it: a digest's news died on its first failure, beside rows on their last attempt
@example(passes=[(2, 0, [(500,)]), (0, 61, [(500,)]), (1, 300, [(500,)])])
def test_every_notification_lands_once_or_dies_after_its_own_attempts(
        server, model_receiver, passes):
    """Polls queue news while a receiver answers each pass's requests from a script. In
    every pass: only rows whose time has come are sent, oldest first, one at a time up to
    max_per_run and one digest past it; a 5xx or 429 ends the pass (the channel is down or
    asks for a pause: the rest wait, untried). A 2xx marks what it carried sent; a 5xx or 429 counts one attempt
    against each row it carried, and a row is dead after its own max_attempts — never
    sooner because a digest carried it beside an older row — else retried no sooner than
    the backoff and a Retry-After say, a digest's rows together; any other 4xx is dead at
    once. Afterwards, with the receiver well, every row is sent exactly once or dead."""
    path = f"/model-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(make_config(Path(tmp), http_fast() + feed_source(
            "model", server.url(path))
            + _CONFIG.format(url=model_receiver.url), rules=False))
        model_receiver.deliveries.clear()
        store = SqliteStore(cfg.storage.path)
        try:
            items = 1
            server.route(path, Response(_rss(items)))
            list(poll_sources(cfg, store, clock=lambda: NOW))  # the baseline
            now = NOW
            accepted: dict[str, int] = {}  # row id → 2xx requests that carried it
            for new, gap, answers in [*passes, *[(0, 86_400, [])] * (MAX_ATTEMPTS + 1)]:
                now += timedelta(seconds=gap)
                if new:
                    items += new
                    server.route(path, Response(_rss(items)))
                    list(poll_sources(cfg, store, clock=lambda t=now: t))
                before = {r["id"]: r for r in store.outbox()}
                published = dict(store.conn.execute("SELECT id, published FROM items"))
                due = [i for i, r in before.items() if r["status"] == "pending"
                       and r["next_attempt_at"] <= now.strftime("%Y-%m-%dT%H:%M:%SZ")]
                model_receiver.deliveries.clear()
                model_receiver.answers = [(a[0], {"Retry-After": str(a[1])} if len(a) > 1
                                           else {}) for a in answers]
                deliver(cfg, store, now, rand=lambda: 0.5)
                requests = [(_ids(d), answers[k] if k < len(answers) else (200,))
                            for k, d in enumerate(model_receiver.deliveries)]
                after = {r["id"]: r for r in store.outbox()}
                carried = [i for ids, _ in requests for i in ids]
                assert len(carried) == len(set(carried)) and set(carried) <= set(due)
                # the channel down (5xx) or asking for a pause (429) ends its pass: the rest
                # wait, untried; a message refused for good (400) is that message's fault
                assert all(a[0] in (200, 400) for _, a in requests[:-1])
                if requests and requests[-1][1][0] in (200, 400):
                    assert sorted(carried) == sorted(due)
                if len(due) > LIMIT:
                    assert len(requests) == 1 and len(requests[0][0]) == len(due)
                else:
                    assert all(len(ids) == 1 for ids, _ in requests)
                    order = [(before[i]["created_at"], published[before[i]["item_id"]])
                             for i in carried]
                    assert order == sorted(order)  # poll by poll, oldest news first
                for ids, answer in requests:
                    waits = set()
                    for i in ids:
                        was, row = before[i], after[i]
                        assert row["attempts"] == was["attempts"] + 1
                        if answer[0] == 200:
                            accepted[i] = accepted.get(i, 0) + 1
                            assert row["status"] == "sent"
                        elif answer[0] == 400 or row["attempts"] == MAX_ATTEMPTS:
                            assert row["status"] == "dead", (answer, row["attempts"])
                        else:
                            assert row["status"] == "pending", (answer, row["attempts"])
                            wait = (datetime.fromisoformat(row["next_attempt_at"]) - now
                                    ).total_seconds()
                            floor = min(BACKOFF, BACKOFF_MAX)
                            if answer[0] == 429:
                                floor = max(floor, min(answer[1], BACKOFF_MAX))
                            assert floor <= wait <= BACKOFF_MAX, (answer, wait)
                            waits.add(wait)
                    assert len(waits) <= 1  # a digest's rows are retried together
                for i in set(before) - set(carried):
                    assert {k: after[i][k] for k in ("status", "attempts", "next_attempt_at")
                            } == {k: before[i][k] for k in ("status", "attempts",
                                                            "next_attempt_at")}
            rows = store.outbox()
            assert len(rows) == items - 1  # one row an item after the baseline's
            for row in rows:
                assert row["status"] in ("sent", "dead"), row
                assert accepted.get(row["id"], 0) == (row["status"] == "sent")
        finally:
            store.close()


def test_a_notifier_allowed_thousands_of_attempts_backs_off_to_its_cap():
    """max_attempts is the operator's: one who never wants a row dead sets it high, and the
    backoff's doubling stays at backoff_max however many attempts (2 to the 1,025th power
    of 30 s is past what a float holds)."""
    from harvester.config import DeliveryConfig
    from harvester.notify.deliver import backoff

    delivery = DeliveryConfig(max_attempts=100_000, backoff=30.0, backoff_max=3600.0)
    assert [backoff(n, delivery, None, lambda: 0.5) for n in (1, 2, 3, 8, 1025, 99_999)] == [
        30.0, 60.0, 120.0, 3600.0, 3600.0, 3600.0]


_DAILY = """
[delivery]
max_attempts = 3
backoff = "10m"
backoff_max = "2h"

[[notifiers]]
name = "daily"
kind = "webhook"
url = "{url}"
at = "08:00"
timezone = "Europe/Vienna"
"""


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(
    st.integers(0, 3),  # items new to the feed before the pass
    st.sampled_from([600, 3600, 4 * 3600, 11 * 3600, 86_400]),  # seconds since the last pass
    st.lists(st.sampled_from([200, 503, 429]), max_size=2),  # the receiver's answers
), min_size=1, max_size=8))
def test_a_daily_notifier_sends_each_days_news_once_in_a_digest_never_before_its_hour(
        server, model_receiver, steps):
    """`at = "08:00"` (Vienna): polls queue news at any hour, passes come at any hour and
    the receiver sometimes fails. No notification goes out before the 08:00 after it was
    queued; each request is one digest of whatever is due; a failed digest is retried
    after its backoff (not held for the next day); in the end each goes out exactly once."""
    from zoneinfo import ZoneInfo

    vienna = ZoneInfo("Europe/Vienna")
    path = f"/daily-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(make_config(Path(tmp), http_fast() + feed_source(
            "model", server.url(path)) + _DAILY.format(url=model_receiver.url), rules=False))
        model_receiver.deliveries.clear()
        store = SqliteStore(cfg.storage.path)
        try:
            items = 1
            server.route(path, Response(_rss(items)))
            list(poll_sources(cfg, store, clock=lambda: NOW))
            now, queued_at, accepted = NOW, {}, {}
            for new, gap, answers in [*steps, *[(0, 86_400, [])] * 4]:
                now += timedelta(seconds=gap)
                if new:
                    items += new
                    server.route(path, Response(_rss(items)))
                    list(poll_sources(cfg, store, clock=lambda t=now: t))
                    for row in store.outbox():
                        queued_at.setdefault(row["id"], now)
                model_receiver.deliveries.clear()
                model_receiver.answers = [(a, {"Retry-After": "60"} if a == 429 else {})
                                          for a in answers]
                deliver(cfg, store, now, rand=lambda: 0.5)
                for k, d in enumerate(model_receiver.deliveries):
                    assert d.body["type"] == "digest"
                    for i in _ids(d):
                        # the 08:00 in Vienna on or after the moment it was queued
                        local = queued_at[i].astimezone(vienna)
                        hour = local.replace(hour=8, minute=0, second=0, microsecond=0)
                        due = hour if hour >= local else hour + timedelta(days=1)
                        assert now >= due, (i, now, due)
                        if (answers[k] if k < len(answers) else 200) == 200:
                            accepted[i] = accepted.get(i, 0) + 1
            rows = store.outbox()
            assert len(rows) == items - 1 and {r["status"] for r in rows} <= {"sent", "dead"}
            for row in rows:
                assert accepted.get(row["id"], 0) == (row["status"] == "sent")
        finally:
            store.close()


def _news(server, path: str, config, store: SqliteStore, new: int) -> None:
    """A baseline of one item at `path`, then `new` items more, each polled at NOW."""
    for count in (1, 1 + new):
        server.route(path, Response(_rss(count)))
        list(poll_sources(config, store, clock=lambda: NOW))


def test_a_digest_being_retried_keeps_its_backoff_when_the_at_time_is_taken_out(
        server, model_receiver, tmp_path):
    """Held news is brought forward to the schedule configured now (test_notify), but a
    row already tried and failing waits out its backoff: taking `at` out is no retry."""
    path = f"/retried-{uuid.uuid4().hex}"
    body = http_fast() + feed_source("model", server.url(path))
    daily = load_config(make_config(tmp_path, body + _DAILY.format(url=model_receiver.url),
                                    rules=False))
    store = SqliteStore(daily.storage.path)
    try:
        _news(server, path, daily, store, 2)
        at_eight = NOW + timedelta(hours=22)  # 08:00 in Vienna the next day
        model_receiver.answers = [(503, {})]
        assert deliver(daily, store, at_eight, rand=lambda: 0.5).retrying == 2
        undated = load_config(make_config(
            tmp_path, body + _DAILY.format(url=model_receiver.url).replace('at = "08:00"\n', "")
            .replace('timezone = "Europe/Vienna"\n', ""),
            rules=False))
        model_receiver.deliveries.clear()
        report = deliver(undated, store, at_eight + timedelta(minutes=9), rand=lambda: 0.5)
        assert (report.sent, model_receiver.deliveries) == (0, [])
        assert [r["next_attempt_at"] for r in store.outbox()] == ["2020-05-29T06:10:00Z"] * 2
        assert deliver(undated, store, at_eight + timedelta(minutes=10)).sent == 2
    finally:
        store.close()


def test_outbox_lists_what_waits_and_the_newest_of_what_was_sent(
        server, model_receiver, tmp_path):
    """A year of news is thousands of sent rows; `outbox`, read by eye, lists what waits
    or died and the newest ten sent, saying how many older ones it left out.
    `--status sent` and `--json` list every row."""
    path = f"/history-{uuid.uuid4().hex}"
    cfg = load_config(make_config(tmp_path, http_fast() + feed_source(
        "model", server.url(path)) + _CONFIG.format(url=model_receiver.url).replace(
        f"max_per_run = {LIMIT}", "max_per_run = 100"), rules=False))
    store = SqliteStore(cfg.storage.path)
    try:
        _news(server, path, cfg, store, 14)
        model_receiver.answers = [(400, {})]  # the first refused for good: dead
        report = deliver(cfg, store, NOW, rand=lambda: 0.5)
        assert (report.sent, report.dead) == (13, 1)
    finally:
        store.close()
    listed = run_cli("--config", str(cfg.path), "outbox")
    statuses = [line.split()[1] for line in listed.stdout.splitlines()
                if line.startswith("n_")]
    assert sorted(statuses) == ["dead"] + ["sent"] * 10
    assert listed.stderr == ("3 older sent rows not shown (`harvester outbox --status sent` "
                             "lists every one)\n")
    every = run_cli("--config", str(cfg.path), "outbox", "--status", "sent")
    assert len(every.stdout.splitlines()) == 13 and every.stderr == ""
    assert len(run_cli("--config", str(cfg.path), "outbox", "--json").stdout.splitlines()) == 14


def test_sooner_brings_held_news_forward_only_and_leaves_rows_it_cannot_read():
    """The pure decision behind held news following a changed `at`: a row is brought
    forward to the schedule's first time after it was queued, never put off; a notifier
    no longer configured, or a row whose times do not read (written by hand), is left."""
    from harvester.config import NotifierConfig, NotifierKind, parse_schedule
    from harvester.notify.deliver import sooner

    daily = NotifierConfig("daily", NotifierKind.CONSOLE, at=parse_schedule("08:00", "UTC"))
    now_ = NotifierConfig("now", NotifierKind.CONSOLE)
    held = [("daily", "2020-05-28T10:00:00Z", "2020-06-01T08:00:00Z"),  # held for Monday
            ("daily", "2020-05-28T10:00:00Z", "2020-05-28T12:00:00Z"),  # promised sooner
            ("now", "2020-05-28T10:00:00Z", "2020-06-01T08:00:00Z"),
            ("gone", "2020-05-28T10:00:00Z", "2020-06-01T08:00:00Z"),
            ("now", "yesterday", "2020-06-01T08:00:00Z")]
    assert sooner([daily, now_], held) == [
        ("daily", "2020-05-28T10:00:00Z", "2020-06-01T08:00:00Z", "2020-05-29T08:00:00Z"),
        ("now", "2020-05-28T10:00:00Z", "2020-06-01T08:00:00Z", "2020-05-28T10:00:00Z")]
