"""Locks between harvester processes sharing one database, as files beside it.

One daemon per database (`InstanceLock`), and one poll of a source at a time whichever
process polls it (`SourceLocks`): a cron `once` that starts while the last one is still
polling, or a `once` by hand beside the daemon, skips the sources being polled instead of
fetching and storing them twice. The kernel drops a dead process's locks, so none goes
stale.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

from .errors import HarvesterError
from .perms import unwritable


def _cannot_open(path: Path, e: OSError) -> str:
    return f"cannot open the lock file {path}: {unwritable(path, wal=False) or e.strerror}"


class InstanceLock:
    """An exclusive lock on `<database>.lock`, held for the daemon's life."""

    def __init__(self, db: Path):
        self.path = db.with_name(db.name + ".lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise HarvesterError(_cannot_open(self.path, e)) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HarvesterError(
                f"another harvester daemon (pid {holder}) is already running on "
                f"{self.path.with_suffix('')}; stop it first, or give this one its own "
                "[storage] path") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _offset(source: str) -> int:
    """The byte of the lock file that stands for a source: its name's hash, so any process
    finds the same byte without a table (48 bits: two of a config's sources sharing one
    is as likely as not for some 20 million sources)."""
    return int.from_bytes(hashlib.sha256(source.encode()).digest()[:6], "big")


class SourceLocks:
    """Per-source locks in one file, `<database>.sources.lock`: a POSIX record lock on one
    byte per source.

    Record locks belong to the process, so one instance per file serves a whole process
    (`for_database`): closing any other descriptor of the file would drop every lock this
    process holds on it. Threads of one process do not exclude each other by it; the
    daemon's scheduler runs one poll of a source at a time itself."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @classmethod
    def for_database(cls, db: Path) -> SourceLocks:
        path = db.with_name(db.name + ".sources.lock").absolute()
        with _GUARD:
            locks = _OPEN.get(path)
            if locks is None:
                locks = _OPEN[path] = cls(path)
            return locks

    def _file(self) -> int:
        if self._fd is None:
            # not closed while the process lives (see the class's note); O_CLOEXEC keeps it
            # out of programs this one starts
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def acquire(self, source: str) -> bool:
        """Take a source's lock if no other process holds it; False if one does."""
        with self._mutex:
            try:
                fd = self._file()
            except OSError as e:
                raise HarvesterError(_cannot_open(self.path, e), source=source) from e
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(source))
            except (BlockingIOError, PermissionError):  # EAGAIN or EACCES, as systems differ
                return False
            except OSError as e:  # ENOLCK: a file system without record locks
                raise HarvesterError(f"cannot lock {source!r} in {self.path}: {e.strerror}",
                                     source=source) from e
            return True

    def release(self, source: str) -> None:
        with self._mutex:
            if self._fd is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, _offset(source))


_OPEN: dict[Path, SourceLocks] = {}  # the process's one instance per lock file
_GUARD = threading.Lock()

__all__ = ["InstanceLock", "SourceLocks"]
