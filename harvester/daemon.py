"""`harvester run`: the long-running daemon. APScheduler (3.x) lives here and nowhere else.

One job per source on its own `every` (or `cron`), with jitter, max_instances = 1,
coalescing and a misfire grace; one delivery job for the outbox, run at start, at once
after a poll that queued something, and every `deliver_every` for retries. Every poll goes
through harvest.fetch_one/process — the same code as `harvester once`. A failing source's
next poll is pushed out exponentially (or to its Retry-After) and snaps back after a
success.
SIGTERM/SIGINT let the poll and the delivery in progress finish (within a grace period)
and exit 0; SIGHUP reloads the config, keeping the old one if the new one is bad, and so
does a change to the config's files (`[daemon] watch_config`, on by default). One daemon
per database, and one poll of a source at a time across processes (see locks.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .config import Config, SourceConfig, load_config
from .crontab import parse as parse_crontab
from .dates import iso_utc
from .errors import HarvesterError
from .fetch import Fetcher
from .harvest import NEVER, backoff, due_at, poll_one, prune_log, system_clock
from .locks import InstanceLock
from .models import PollStatus, SourceState
from .notify import deliver
from .notify.deliver import orphan_notes
from .store import SqliteStore
from .words import counted, duration

log = logging.getLogger("harvester")
WATCH_EVERY_S = 1.0  # how often the config's files are looked at


def cron_trigger(line: str, timezone: str) -> Any:
    """An APScheduler trigger firing when the crontab line does, as cron runs it: times
    from crontab.py, which reads the line as cron does (APScheduler 3 counts weekdays from
    Monday) and steps over the clock's changes, where APScheduler 3's CronTrigger, in the
    hour the clock repeats, hands back a time it already gave and its scheduler loops on
    it for ever (agronholm/apscheduler#1021)."""
    from apscheduler.triggers.base import BaseTrigger

    tab, zone = parse_crontab(line), ZoneInfo(timezone)

    class CronLine(BaseTrigger):  # type: ignore[misc]  # (APScheduler ships no types)
        def get_next_fire_time(self, previous_fire_time: datetime | None,
                               now: datetime) -> datetime | None:
            after = now if previous_fire_time is None else min(previous_fire_time, now)
            return tab.next_fire(after, zone)

        def __str__(self) -> str:
            return f"cron[{line!r}, {timezone}]"

    return CronLine()


class _FilesWatch:
    """Says when files have changed and then stayed the same for one look, so a file being
    written is not read half-way. Nothing is seen at first: the first look compares the
    files with the config loaded at start, so an edit made while starting is not missed."""

    def __init__(self, look: Callable[[], tuple[tuple[object, ...], ...]]):
        self.look = look
        self.seen: tuple[tuple[object, ...], ...] = ()
        self.settled = True

    def reset(self) -> None:
        """What the files look like now is what the running config was read from."""
        self.seen, self.settled = self.look(), True

    def settled_change(self) -> bool:
        now = self.look()
        if now != self.seen:
            self.seen, self.settled = now, False
            return False
        if self.settled:
            return False
        self.settled = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, source, event, counts, error, message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "message": record.getMessage()}
        for key in ("source", "event", "counts", "error", "warning", "notifier"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(fmt: str, level: str = "info") -> None:
    """Log lines on stderr, text or JSON. `level` "warning" keeps what needs a look (a
    failed poll, one that worked with a warning, a delivery that failed) and drops the
    line of every poll that went well."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # its "skipped: maximum number of running instances reached", every turn a long poll
    # overruns, names no source: the daemon says it once per overrun, attributed (_skipped)
    logging.getLogger("apscheduler.scheduler").addFilter(
        lambda record: "maximum number of running instances" not in record.getMessage())
    # urllib3 warns of each connection retry in its own terms; the poll's record says how
    # the request ended, in ours
    logging.getLogger("urllib3").setLevel(logging.ERROR)


class Daemon:
    def __init__(self, config_path: Path, config: Config, http: str | None = None):
        from .metrics import Metrics

        self.config_path = config_path
        self.config = config
        self.http = http
        self.metrics = Metrics()
        self._local = threading.local()
        self._stores: list[SqliteStore] = []
        self._stores_lock = threading.Lock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        # a poll that queued something while a delivery pass runs asks it to go round again
        self._delivery_lock = threading.Lock()
        # a poll that ends after a reload took its source away must not bring back the
        # series the reload dropped (they would stand, stale, until the daemon restarts).
        # Not the scheduler's own state: a job asking it for a job waits on the lock its
        # shutdown holds while it waits for that job to end.
        self._series_lock = threading.Lock()
        self._dropped: set[str] = set()  # sources a reload stopped polling
        self._delivery_running = False
        self._delivery_again = False
        self._orphans_said: set[str] = set()  # notifiers whose left rows were said
        self.scheduler: Any = None
        self.lock = InstanceLock(config.storage.path)
        self.forced = False  # stopped with a job still running: see run_daemon
        # why the config on disk was refused, while the daemon runs the one before it
        self.config_refused: str | None = None
        # sources whose poll ran past their next turn, said once for each overrun
        self._overrun: set[str] = set()
        self._overrun_lock = threading.Lock()

    # -- per-thread stores: one SQLite connection per scheduler thread --------------------

    def store(self) -> SqliteStore:
        s = getattr(self._local, "store", None)
        if s is None:
            s = SqliteStore(self.config.storage.path)
            self._local.store = s
            with self._stores_lock:
                self._stores.append(s)
        return s

    # -- jobs -------------------------------------------------------------------------------

    def _skipped(self, event: Any) -> None:
        """A source's turn came while its last poll still ran (a slow server, a timeout
        longer than its `every`): said once an overrun, with the source, in our words."""
        kind, _, name = event.job_id.partition(":")
        if kind != "poll":
            return
        with self._overrun_lock:
            if name in self._overrun:
                return
            self._overrun.add(name)
        log.info("%s: its poll still runs at its next turn; turns are skipped until it ends",
                 name, extra={"source": name, "event": "poll.overrun"})

    def poll(self, name: str) -> None:
        try:
            self._poll(name)
        finally:
            with self._overrun_lock:
                self._overrun.discard(name)

    def _poll(self, name: str) -> None:
        src = next((s for s in self.config.sources if s.name == name), None)
        if src is None:
            return
        try:
            store = self.store()
            # the failure streak is the store's, so a restarted daemon keeps backing off
            before = store.source_state(name).consecutive_failures
            report = poll_one(src, self.config, store, fetcher=self.fetcher)
        except HarvesterError as e:
            # not the source's failure (a database locked too long, a lock file in the way):
            # said in one line, and tried again at its next turn
            log.error("%s: not polled: %s", name, e,
                      extra={"source": name, "event": "poll.error", "error": str(e)})
            return
        with self._series_lock:
            if name not in self._dropped:
                self.metrics.observe_poll(report)
        extra = {"source": name, "event": "poll",
                 "counts": {"new": report.new, "changed": report.changed,
                            "unchanged": report.unchanged, "queued": report.queued,
                            "old": report.old, "reread": report.reread,
                            "cut": report.cut, "unmatched": report.unmatched,
                            "markup": report.markup}}
        if report.status is PollStatus.WAITING:
            self._push_back(name, report.retry_after or src.every)
            log.info("%s: %s", name, report.warning, extra={**extra, "event": "poll.waiting"})
            return
        if report.status is PollStatus.BUSY:  # a `once` is polling it: the next run is due
            log.info("%s: %s", name, report.warning, extra={**extra, "event": "poll.busy"})
            return
        if report.status is PollStatus.ERROR:
            failures = before + 1
            delay = self._backoff(src, failures, report.retry_after)
            self._push_back(name, delay)
            log.warning("%s: poll failed (%d in a row), next in %.0fs: %s", name, failures,
                        delay, report.error,
                        extra={**extra, "error": report.error, "event": "poll.failed"})
            if report.queued:  # the operators' alert goes now, not in deliver_every
                self._deliver_soon()
            return
        if before:
            log.info("%s: recovered after %s", name, counted(before, "failure"),
                     extra={**extra, "event": "poll.recovered"})
            self._deliver_soon()  # its recovery, if its failure was alerted, goes now too
        # the same words as `once`; a poll that worked with a warning is one to look at
        log.log(logging.WARNING if report.warning else logging.INFO, "%s", report.line(),
                extra={**extra, "warning": report.warning} if report.warning else extra)
        if report.queued:
            self._deliver_soon()  # whoever waits for news hears it now, not in deliver_every

    def _backoff(self, src: SourceConfig, failures: int, retry_after: float | None) -> float:
        base = backoff(src.every, failures, self.config.daemon.backoff_max)
        return max(base, min(retry_after or 0.0, self.config.daemon.backoff_max))

    def _push_back(self, name: str, delay: float) -> None:
        job = self.scheduler.get_job(f"poll:{name}")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def _deliver_soon(self) -> None:
        """Bring the delivery job forward to now; if a pass is running, it goes round once
        more instead (a second run of the job would be refused by max_instances)."""
        with self._delivery_lock:
            if self._delivery_running:
                self._delivery_again = True
                return
        job = self.scheduler.get_job("deliver") if self.scheduler.running else None
        if job is not None:  # (None while stopping: what was queued goes at the next start)
            job.modify(next_run_time=datetime.now(UTC))

    def deliver(self) -> None:
        """The delivery job: a pass over the due outbox rows, again while polls ask for one."""
        with self._delivery_lock:
            self._delivery_running = True
        try:
            while True:
                self._deliver_pass()
                with self._delivery_lock:
                    if not self._delivery_again:
                        self._delivery_running = False
                        return
                    self._delivery_again = False
        except BaseException:
            with self._delivery_lock:
                self._delivery_running = False
            raise

    def _deliver_pass(self) -> None:
        try:
            self._deliver_once()
        except HarvesterError as e:
            # the harvester's own trouble (its database full or locked too long): one line;
            # what was not marked sent stays pending and goes on the next pass
            log.error("delivery: not done: %s", e,
                      extra={"event": "delivery.error", "error": str(e)})

    def _deliver_once(self) -> None:
        store = self.store()
        now = system_clock()
        report = deliver(self.config, store, now)
        self.metrics.observe_delivery(report, store)
        if report.acted:
            log.info("%s", report.line(), extra={"event": "delivery", "counts": {
                "sent": report.sent, "retrying": report.retrying, "dead": report.dead}})
        for err in report.errors:
            log.warning("delivery: %s", err, extra={"event": "delivery.failed", "error": err})
        # said once a notifier, not every pass: the fix (a rename back, `outbox move`) is
        # the operator's; said again should its rows be left waiting once more
        fresh = {k: v for k, v in report.orphaned.items() if k not in self._orphans_said}
        for note in orphan_notes(fresh):
            log.warning("delivery: %s", note, extra={"event": "delivery.orphaned"})
        self._orphans_said = set(report.orphaned)
        # A retry's backoff or a notifier's `at` that ends before the timer's next turn
        # brings the job forward to it. Only rows due later than now: what is due now but
        # was held back (a channel down) waits for the timer, or a pass would follow a pass.
        due = store.next_due(now)
        job = self.scheduler.get_job("deliver") if self.scheduler.running else None
        if due is not None and job is not None and job.next_run_time > due:
            job.modify(next_run_time=due)

    def prune(self) -> None:
        """The fetch log's retention ([storage] keep_log), hourly: a few rows each time."""
        try:
            n = prune_log(self.config, self.store(), system_clock())
        except HarvesterError as e:
            log.error("fetch log: not pruned: %s", e,
                      extra={"event": "prune.error", "error": str(e)})
            return
        if n:
            log.info("fetch log: %s older than %s removed", counted(n, "row"),
                     duration(self.config.storage.keep_log or 0),
                     extra={"event": "prune", "counts": {"removed": n}})

    # -- scheduling -------------------------------------------------------------------------

    def _trigger(self, src: SourceConfig, config: Config) -> Any:
        from apscheduler.triggers.interval import IntervalTrigger

        jitter = src.every * config.daemon.jitter
        if src.cron:
            return cron_trigger(src.cron, src.timezone)
        return IntervalTrigger(seconds=src.every, jitter=jitter or None, timezone=UTC)

    def _schedule(self, config: Config, first: bool) -> None:
        wanted = {s.name: s for s in config.sources if s.enabled}
        for job in self.scheduler.get_jobs():
            name = job.id.partition(":")[2]
            if job.id.startswith("poll:") and name not in wanted:
                with self._series_lock:
                    job.remove()
                    self.metrics.forget(name)
                    self._dropped.add(name)
                log.info("%s: removed", name, extra={"source": name, "event": "source.removed"})
        # [daemon] jitter and misfire_grace shape every source's job
        timing = config.daemon != self.config.daemon  # (at start, the same config)
        now = datetime.now(UTC)
        states = self.store().source_states(list(wanted)) if first else {}
        news = ({r["name"]: r["last_new"] for r in self.store().sources()} if first else {})
        for name, state in states.items():
            last_new = news.get(name)
            self.metrics.seed(name, state.last_success,
                              datetime.fromisoformat(last_new) if last_new else None)
        with self._series_lock:
            self._dropped -= wanted.keys()  # added back
        for name, src in wanted.items():
            job = self.scheduler.get_job(f"poll:{name}")
            old = None if first else next((s for s in self.config.sources if s.name == name), None)
            if job is not None and old == src and not timing:
                continue
            # a new or changed source is polled at once; an unchanged one keeps its turn, and
            # at start each takes up its turn where the last run (daemon or once) left it
            when = (job.next_run_time if job and old == src
                    else self._resume_at(src, states[name], config, now) if first else now)
            self.scheduler.add_job(
                self.poll, self._trigger(src, config), args=[name], id=f"poll:{name}",
                name=name, replace_existing=True, max_instances=1, coalesce=True,
                misfire_grace_time=int(config.daemon.misfire_grace), next_run_time=when)
            if not first and old != src:
                log.info("%s: %s", name, "rescheduled" if job else "added",
                         extra={"source": name, "event": "source.scheduled"})

    def next_polls(self) -> dict[str, datetime | None]:
        """Each scheduled source's next poll, as the scheduler has it (the status page)."""
        return {job.id.partition(":")[2]: job.next_run_time
                for job in self.scheduler.get_jobs() if job.id.startswith("poll:")}

    @staticmethod
    def _resume_at(src: SourceConfig, state: SourceState, config: Config,
                   now: datetime) -> datetime:
        """A source's first poll after a start: when its schedule, counted from its last
        poll, says — so a restart (a deploy, a container's crash loop) does not poll every
        source again at once — and now for one never polled or overdue."""
        at = due_at(src, state, config.daemon.backoff_max)
        return now if at is None or at <= now or at == NEVER else at

    def reload(self, why: str = "SIGHUP") -> None:
        try:
            config = load_config(self.config_path)
        except HarvesterError as e:
            log.error("config reload refused, keeping the running one: %s", e,
                      extra={"event": "reload.failed", "error": str(e)})
            self._refused(str(e))
            return
        self._refused(None)
        if config == self.config:  # a save of the same text, a stray file in sources.d/
            # said when asked for (SIGHUP), not each time a file is touched
            log.log(logging.INFO if why == "SIGHUP" else logging.DEBUG, "config unchanged (%s)",
                    why, extra={"event": "reload.unchanged"})
            return
        if config.storage.path != self.config.storage.path:
            log.error("config reload refused: [storage] path cannot change while running",
                      extra={"event": "reload.failed"})
            self._refused("[storage] path cannot change while running")
            return
        self._schedule(config, first=False)
        if config.daemon.deliver_every != self.config.daemon.deliver_every:
            self.scheduler.reschedule_job("deliver", trigger="interval",
                                          seconds=config.daemon.deliver_every)
        if config.http != self.config.http:  # a poll in progress finishes with the old one
            self.fetcher = Fetcher(config.http)
        self.config = config
        log.info("config reloaded: %s (%s)", counted(len(config.sources), "source"), why,
                 extra={"event": "reload", "counts": {"sources": len(config.sources)}})
        _advise(config)

    def _refused(self, why: str | None) -> None:
        """Say (on /healthz, the status page and /metrics) whether the config on disk is one
        this daemon refused: with watch_config, an edit's only other trace is a log line."""
        self.config_refused = f"at {iso_utc(datetime.now(UTC))}: {why}" if why else None
        self.metrics.config_ok.set(0 if why else 1)

    def _config_files(self) -> tuple[tuple[object, ...], ...]:
        """What the config's files look like now: a change in one (an edit, `harvester
        add`, a file dropped into an included folder) changes this."""
        seen: list[tuple[object, ...]] = []
        for path in self.config.watched:
            try:
                st = path.stat()
            except OSError:
                seen.append((path,))
                continue
            seen.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(seen)

    # -- life cycle -------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        alive = bool(self.scheduler and self.scheduler.running)
        writable = False
        try:
            conn = sqlite3.connect(self.config.storage.path, timeout=2, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                writable = True
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        return alive and writable, {"scheduler": "running" if alive else "stopped",
                                    "database": "writable" if writable else "unwritable",
                                    "sources": len(self.config.sources),
                                    # still healthy: it runs the config it had
                                    "config": f"refused {self.config_refused}"
                                    if self.config_refused else "loaded"}

    def run(self) -> int:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.lock.acquire()
        try:
            self.fetcher = Fetcher(self.config.http)
            self.store()  # opens and migrates the database before anything runs
            self.scheduler = BackgroundScheduler(
                executors={"default": ThreadPoolExecutor(max(2, self.config.http.concurrency))},
                timezone=UTC)
            self.scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
            self._schedule(self.config, first=True)
            # before the scheduler starts: a source due at start has a turn already past
            started = datetime.now(UTC)
            waiting = sum(1 for at in self.next_polls().values() if at and at > started)
            self.scheduler.add_job(self.deliver, "interval",
                                   seconds=self.config.daemon.deliver_every, id="deliver",
                                   max_instances=1, coalesce=True,
                                   next_run_time=datetime.now(UTC))  # what a last run left
            self.scheduler.add_job(self.prune, "interval", hours=1, id="prune",
                                   max_instances=1, coalesce=True,
                                   next_run_time=datetime.now(UTC))
            server = None
            if self.http:
                from .web import serve

                server = serve(self, self.http)
            signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
            signal.signal(signal.SIGINT, lambda *_: self._stop.set())
            signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
            self.scheduler.start()
            routes = self.fetcher.routes
            log.info("running: %s, database %s%s%s%s", counted(len(self.config.sources), "source"),
                     self.config.storage.path, f", http on {self.http}" if self.http else "",
                     f"; proxy: {routes.describe()}" if routes.http or routes.https else "",
                     f"; {counted(waiting, 'source')} polled lately "
                     f"{'waits for its' if waiting == 1 else 'wait for their'} turn"
                     if waiting else "",
                     extra={"event": "start"})
            _advise(self.config)
            watch = _FilesWatch(self._config_files)
            look_at = time.monotonic() + WATCH_EVERY_S
            while not self._stop.is_set():
                self._stop.wait(0.2)
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                    watch.reset()
                elif self.config.daemon.watch_config and time.monotonic() >= look_at:
                    look_at = time.monotonic() + WATCH_EVERY_S
                    if watch.settled_change():
                        self.reload("its files changed")
                        watch.reset()
            log.info("stopping: waiting up to %.0fs for polls in progress",
                     self.config.daemon.grace, extra={"event": "stop"})
            if server is not None:
                server.shutdown()
            done = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                                    daemon=True)
            done.start()
            done.join(self.config.daemon.grace)
            # An unfinished poll's transaction rolls back: nothing half-written. A message
            # being sent stays queued and goes out, with the same id, at the next start.
            if done.is_alive():
                log.warning("grace period over; exiting with a poll or a delivery unfinished",
                            extra={"event": "stop.forced"})
                self.forced = True
            else:
                for store in self._stores:
                    store.close()  # flushes deferred health rows
            return 0
        finally:
            self.lock.release()


def _advise(config: Config) -> None:
    """Log what `check` would warn of: a daemon's operator may never run it."""
    from .advice import source_warnings

    for warning in source_warnings(config):
        log.warning("config: %s", warning, extra={"event": "config.warning"})


def run_daemon(config_path: str | None, http: str | None, log_format: str,
               log_level: str = "info") -> int:
    setup_logging(log_format, log_level)
    config = load_config(config_path)
    started = time.monotonic()
    daemon = Daemon(config.path, config, http)
    code = daemon.run()
    log.info("stopped after %.0fs", time.monotonic() - started, extra={"event": "stopped"})
    if daemon.forced:
        # The scheduler's worker threads would hold the interpreter's exit until the job
        # ends (a hung server: its whole timeout), past the grace the operator set. Its
        # transaction rolls back, and a message being sent stays queued: exit now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


__all__ = ["Daemon", "cron_trigger", "run_daemon"]
