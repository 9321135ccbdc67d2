"""harvester as a container's first process: in a real PID namespace (`unshare`, which
needs root: skipped without it), it reaps the orphans a command notifier leaves and
passes signals on to the command, as `docker run --init` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harvester.devserver import Response
from harvester.pid1 import exit_code

from .conftest import feed_bytes, feed_source, http_fast, make_config


def _namespaces() -> bool:
    try:
        return subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_pid_namespace = pytest.mark.skipif(
    sys.platform != "linux" or not _namespaces(),
    reason="needs a PID namespace (unshare -p, as root) to run as PID 1")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and (_stat(int(p.name)) or ("", 0))[1] == pid]


def _descendants(pid: int) -> list[int]:
    children = _children(pid)
    return children + [d for child in children for d in _descendants(child)]


def _as_pid1(cfg: Path, *args: str, env: dict[str, str] | None = None,
             out: Path) -> tuple[subprocess.Popen, int]:
    """`harvester` as the first process of a new PID namespace: (unshare, its PID 1)."""
    proc = subprocess.Popen(
        ["unshare", "-p", "--kill-child", "--mount-proc", sys.executable, "-m", "harvester",
         "--config", str(cfg), *args], stdout=out.open("w"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUTF8": "1", **(env or {})})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if first := _children(proc.pid):
            return proc, first[0]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the namespace's first process did not start")


@pytest.mark.parametrize(("status", "code"), [
    (0, 0), (3 << 8, 3), (signal.SIGTERM, 128 + signal.SIGTERM),
    (signal.SIGKILL, 128 + signal.SIGKILL)])
def test_the_first_process_exits_as_the_command_did(status, code):
    assert exit_code(status) == code


# a program that hands its message to something outliving it (`… &`, as a mail queue
# runner would), and one that hangs past its timeout and is killed with what it started
_LEAVES_A_CHILD = "#!/bin/sh\ncat > /dev/null\n(sleep 0.3) &\necho posted\n"
_HANGS = "#!/bin/sh\ncat > /dev/null\nsleep 60\n"


@needs_pid_namespace
@pytest.mark.parametrize("program", [_LEAVES_A_CHILD, _HANGS], ids=["leaves", "hangs"])
def test_as_pid1_the_daemon_leaves_no_zombies_and_stops_on_sigterm(
        server, tmp_path, program):
    script = tmp_path / "post-news"
    script.write_text(program)
    script.chmod(0o755)
    server.route("/pid1.rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    cfg = make_config(tmp_path, http_fast('every = "1s"\n')
                      + '[daemon]\njitter = 0\ndeliver_every = "1s"\ngrace = "10s"\n'
                      + feed_source("icmpd-rss", server.url("/pid1.rss"))
                      + '\n[[notifiers]]\nname = "post"\nkind = "command"\nrules = []\n'
                        'command = ["./post-news"]\ntimeout = "1s"\n')
    log = tmp_path / "daemon.log"
    proc, first = _as_pid1(cfg, "run", out=log)
    try:
        deadline = time.monotonic() + 20
        while "baseline: 7 items" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        server.route("/pid1.rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
        said = "delivery: 3 sent" if program == _LEAVES_A_CHILD else "did not finish within 1s"
        while said not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert said in log.read_text(), log.read_text()
        time.sleep(1.5)  # the orphans have ended by now: reaped, or zombies
        # every process of the namespace descends from its first: a zombie among them is an
        # orphan nobody reaped
        assert [pid for pid in _descendants(first) if (_stat(pid) or ("", 0))[0] == "Z"] == []
        os.kill(first, signal.SIGTERM)  # what `docker stop` sends PID 1
        assert proc.wait(15) == 0
        assert "stopped after" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@needs_pid_namespace
@pytest.mark.parametrize(("env", "code"), [
    ({}, 128 + signal.SIGTERM),
    # left to the container's own init: harvester is PID 1 itself, and SIGTERM passes it by
    ({"HARVESTER_NO_INIT": "1"}, 0)], ids=["init", "no-init"])
def test_as_pid1_once_ends_on_sigterm_at_once(server, tmp_path, env, code):
    """PID 1 gets no signal it has not asked for: `docker stop` of a `once` stuck on a slow
    source waited out its grace, then killed it. The command gets the signal now, and the
    container ends as it did (143)."""
    arrived = threading.Event()

    def slow(handler):
        arrived.set()
        time.sleep(4)
        return Response(feed_bytes("icmpd-2020-05-a.rss"))

    server.route("/slow.rss", slow)
    cfg = make_config(tmp_path, http_fast().replace("timeout = 2", "timeout = 30")
                      + feed_source("slow", server.url("/slow.rss")))
    proc, first = _as_pid1(cfg, "once", out=tmp_path / "once.log", env=env)
    try:
        assert arrived.wait(10)
        started = time.monotonic()
        os.kill(first, signal.SIGTERM)
        assert proc.wait(15) == code
        if not env:
            assert time.monotonic() - started < 2  # not when the answer came, 4 s on
        else:
            assert time.monotonic() - started > 2  # it finished the poll: SIGTERM unseen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
