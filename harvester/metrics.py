"""Prometheus metrics of the daemon, in a registry of its own."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from .models import PollReport, PollStatus

if TYPE_CHECKING:
    from .notify import DeliveryReport
    from .store import SqliteStore


class Metrics:
    def __init__(self) -> None:
        # a `_created` timestamp beside every counter and histogram doubles the series for
        # nothing a dashboard of this daemon uses (process-wide: only the daemon has metrics)
        disable_created_metrics()
        r = self.registry = CollectorRegistry()
        self.polls = Counter("harvester_polls", "Polls by source and outcome",
                             ["source", "status"], registry=r)
        self.failures = Counter("harvester_poll_failures", "Failed polls by source",
                                ["source"], registry=r)
        self.items = Counter("harvester_items", "Items found new or changed",
                             ["source", "kind"], registry=r)
        self.fetch_seconds = Histogram(
            "harvester_fetch_duration_seconds", "Time to fetch a source", ["source"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.bytes = Counter("harvester_fetched_bytes", "Bytes fetched", ["source"], registry=r)
        self.last_success = Gauge("harvester_source_last_success_timestamp_seconds",
                                  "When a source last polled fine", ["source"], registry=r)
        self.last_new = Gauge("harvester_source_last_new_item_timestamp_seconds",
                              "When a source last brought a new item (a feed that stopped "
                              "updating polls fine)", ["source"], registry=r)
        self.notifications = Counter("harvester_notifications", "Delivery attempts by result",
                                     ["result"], registry=r)
        self.outbox = Gauge("harvester_outbox_rows", "Outbox rows by status", ["status"],
                            registry=r)
        # as Prometheus's own: 0 while the config on disk is one the daemon refused
        self.config_ok = Gauge("harvester_config_last_reload_successful",
                               "Whether the last config reload worked", registry=r)
        self.config_ok.set(1)

    def observe_poll(self, report: PollReport) -> None:
        self.polls.labels(report.source, report.status.value).inc()
        if report.status is PollStatus.ERROR:
            self.failures.labels(report.source).inc()
            return
        if report.status in (PollStatus.WAITING, PollStatus.BUSY):
            return
        self.items.labels(report.source, "new").inc(report.new)
        self.items.labels(report.source, "changed").inc(report.changed)
        self.fetch_seconds.labels(report.source).observe(report.duration)
        self.bytes.labels(report.source).inc(report.bytes)
        self.last_success.labels(report.source).set_to_current_time()
        if report.new:
            self.last_new.labels(report.source).set_to_current_time()

    def seed(self, source: str, last_success: datetime | None,
             last_new: datetime | None = None) -> None:
        """A source's last success and last news as the database has them, at start: a
        source failing (or silent) since before a restart shows its age at once, not only
        after its next success."""
        if last_success is not None:
            self.last_success.labels(source).set(last_success.timestamp())
        if last_new is not None:
            self.last_new.labels(source).set(last_new.timestamp())

    def forget(self, source: str) -> None:
        """Drop a source's series once it is no longer polled (removed or disabled): its
        last success would otherwise look staler by the hour to an alert on it."""
        per_source: list[tuple[Counter | Gauge | Histogram, list[tuple[str, ...]]]] = [
            (self.polls, [(source, s.value) for s in PollStatus]),
            (self.items, [(source, "new"), (source, "changed")])]
        per_source += [(m, [(source,)]) for m in (self.failures, self.fetch_seconds,
                                                  self.bytes, self.last_success,
                                                  self.last_new)]
        for metric, label_sets in per_source:
            for labels in label_sets:
                with contextlib.suppress(KeyError):  # a series it never had
                    metric.remove(*labels)

    def observe_delivery(self, report: DeliveryReport, store: SqliteStore) -> None:
        self.notifications.labels("sent").inc(report.sent)
        self.notifications.labels("failed").inc(report.retrying + report.dead)
        counts = {"pending": 0, "sent": 0, "dead": 0}
        for row in store.outbox_counts():
            counts[row[0]] = row[1]
        for status, n in counts.items():
            self.outbox.labels(status).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
