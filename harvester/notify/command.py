"""The command channel: a program of the user's run for each message (or digest), given the
webhook's JSON on its standard input (or, `input = "text"`, the message as text) —
newsboat's notify-program, rss2email's sendmail.

The program is the config's, run without a shell, its arguments as written; what a feed
says reaches it only on stdin, never as an argument or in the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import IO

from ..config import NotifierConfig
from .base import Message, Outcome, OutcomeKind
from .render import text_message
from .webhook import payload

SAID_CAP = 200  # characters of what the program printed that the outbox row keeps


class CommandChannel:
    def __init__(self, cfg: NotifierConfig, timeout: float):
        self.cfg = cfg
        self.argv = [str(a) for a in cfg.option("command", ())]
        self.timeout = float(cfg.option("timeout", timeout))

    def send(self, messages: Sequence[Message], *, digest: bool) -> Outcome:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        msg_id, body = payload(messages, digest, stamp)
        data = (text_message(messages, digest) if self.cfg.option("input") == "text"
                else json.dumps(body, ensure_ascii=False)).encode()
        env = {**os.environ, "HARVESTER_NOTIFIER": self.cfg.name, "HARVESTER_ID": msg_id,
               "HARVESTER_EVENT": body["type"]}
        shown = self.argv[0]
        # the program's output goes to files, read back only in part: a chatty or endless
        # one cannot fill memory, nor block on a full pipe nobody reads
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=out,
                                        stderr=err, env=env, start_new_session=True)
            except OSError as e:
                # not there, or not executable: no retry will find it otherwise, and
                # `outbox retry --dead` sends the rows once it is put right
                return Outcome(OutcomeKind.DEAD, f"cannot run {shown}: {e.strerror or e}")
            try:
                # a program that exits without reading its input is no failure of ours
                proc.communicate(data, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return Outcome(OutcomeKind.RETRY, f"{shown} did not finish within "
                                                  f"{self.timeout:g}s: stopped",
                               response=_said(err) or _said(out))
            said, complaint = _said(out), _said(err)
        if proc.returncode == 0:
            return Outcome(OutcomeKind.SENT, response=said)
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        return Outcome(OutcomeKind.RETRY, f"{shown} failed ({how})"
                       + (f": {complaint}" if complaint else ""), response=said)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The program and whatever it started (it leads its own session): a shell script's
    children must not outlive the attempt."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _said(f: IO[bytes]) -> str | None:
    """The last line of what the program wrote to `f`, as the outbox keeps it."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4096))
    lines = f.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip()[:SAID_CAP] if lines else None
