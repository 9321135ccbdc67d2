"""The plain data between stages: what a poll report says in words."""

from __future__ import annotations

import pytest

from harvester.models import PollReport, PollStatus


@pytest.mark.parametrize(("report", "line"), [
    (PollReport("a", PollStatus.OK, new=1, baseline=True, http_status=200, bytes=512),
     "a: baseline: 1 item stored silently (HTTP 200, 512 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, new=2, queued=1, baseline=True, http_status=200),
     "a: baseline: 2 items stored, 1 notification queued (HTTP 200, 0 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, new=1, unchanged=1, queued=2, http_status=200,
                bytes=2048, duration=0.25),
     "a: 1 new, 0 changed, 1 unchanged, 2 notifications queued (HTTP 200, 2.0 KB in 0.25s)"),
    (PollReport("a", PollStatus.OK, baseline=True, http_status=200),
     "a: baseline: 0 items stored silently (HTTP 200, 0 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, new=1, unchanged=6, baseline=True, http_status=200),
     "a: baseline: 1 item stored silently, 6 known already through other sources"
     " (HTTP 200, 0 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, changed=1, unchanged=6, http_status=200, bytes=1024,
                warning="malformed feed, entries kept: undefined entity"),
     "a: 0 new, 1 changed, 6 unchanged (HTTP 200, 1.0 KB in 0.00s); warning: malformed feed,"
     " entries kept: undefined entity"),
    (PollReport("a", PollStatus.NOT_MODIFIED, http_status=304, duration=0.01),
     "a: not modified (HTTP 304, 0 B in 0.01s)"),
    (PollReport("a", PollStatus.NOT_MODIFIED, http_status=200, bytes=23347),
     "a: not modified (same body) (HTTP 200, 22.8 KB in 0.00s)"),
    (PollReport("a", PollStatus.ERROR, http_status=500, error="HTTP 500 Internal Server Error"),
     "a: error: HTTP 500 Internal Server Error"),
])
def test_a_poll_report_reads_as_one_line_of_words(report, line):
    """`once` prints this line and the daemon logs it: one wording for both."""
    assert report.line() == line


@pytest.mark.parametrize(("report", "line"), [
    (PollReport("a", PollStatus.OK, new=7, baseline=True, http_status=200),
     "a: baseline: 7 items would be stored silently (HTTP 200, 0 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, new=7, queued=7, baseline=True, http_status=200),
     "a: baseline: 7 items would be stored, 7 notifications would be queued"
     " (HTTP 200, 0 B in 0.00s)"),
    (PollReport("a", PollStatus.OK, new=3, changed=1, unchanged=6, queued=1, http_status=200),
     "a: 3 new, 1 changed, 6 unchanged, 1 notification would be queued"
     " (HTTP 200, 0 B in 0.00s)"),
])
def test_a_dry_runs_line_says_what_would_have_been_done(report, line):
    """`once --dry-run` stores and queues nothing; its summary must not say it did."""
    assert report.line(dry_run=True) == line


@pytest.mark.parametrize("seconds", [0.00467, 0.0049, 0.005, 0.01499, 0.125, 2.0049])
def test_a_poll_replayed_from_the_log_reads_as_it_was_said(seconds):
    """The fetch log keeps a poll's time in whole milliseconds; `log` replays its line.
    4.67 ms was said as "0.00s" and replayed as "0.01s": the line is said from the
    milliseconds kept, so `log` says what `once` said."""
    said = PollReport("a", PollStatus.NOT_MODIFIED, http_status=304, duration=seconds)
    row = {"source": "a", "status": "not-modified", "new": 0, "changed": 0, "unchanged": 0,
           "queued": 0, "old": 0, "reread": 0, "cut": 0, "unmatched": 0, "markup": 0,
           "baseline": 0, "http_status": 304, "bytes": 0, "duration_ms": round(seconds * 1000),
           "error": None, "warning": None}
    assert PollReport.from_log(row).line() == said.line()
