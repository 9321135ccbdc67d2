"""Run as a container's first process (PID 1), harvester is its own `init`.

PID 1 inherits every orphaned process and must reap it: a command notifier's program that
leaves a child behind (a `… &`, a mail queue runner), or whose children outlive the kill of
a timed-out run, would otherwise stay a zombie for the container's life, one a message,
until the container runs out of process ids. PID 1 also gets no signal it has not asked
for, so `docker stop` would wait out its grace for a `harvester once` that never saw
SIGTERM. As tini (`docker run --init`) does, the first process forks: the child runs the
command; the parent passes signals on to it, reaps whatever ends, and exits as the child
did. Reaping in the command's own process instead would take the exit statuses of the
programs it runs from under `subprocess`.
"""

from __future__ import annotations

import contextlib
import os
import signal

# what an operator or a container engine sends to stop, reload, or interrupt the command
_PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def be_init() -> None:
    """When this process is PID 1 (and HARVESTER_NO_INIT is unset): fork; return in the
    child, which runs the command; in the parent, reap and pass signals on until the child
    ends, then exit with its code. Anywhere else, return at once."""
    if os.getpid() != 1 or os.environ.get("HARVESTER_NO_INIT"):
        return
    child = os.fork()
    if child == 0:
        return
    for sig in _PASSED_ON:
        signal.signal(sig, lambda signum, _frame: _pass_on(child, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:  # cannot be while the child lives; said as its end
            os._exit(1)
        if pid == child:
            os._exit(exit_code(status))


def _pass_on(child: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended: os.wait() is about to say so
        os.kill(child, signum)


__all__ = ["be_init", "exit_code"]
