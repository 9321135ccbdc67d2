"""The only place that touches SQL.

A narrow API — read a source's state, apply one poll in one transaction, read
items/sources/outbox back — behind the `Store` protocol, so another backend
could stand behind it later. SQLite runs in WAL mode with a busy timeout, and
writes take the write lock up front (BEGIN IMMEDIATE) so concurrent runs queue
instead of failing half-way.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .dates import iso_utc
from .errors import StoreError
from .models import (
    RETITLE_HOURS,
    VERSIONED,
    Change,
    ChangeKind,
    DateFlag,
    Item,
    Known,
    Notification,
    PollPlan,
    PollReport,
    PollStatus,
    SourceState,
    StoredItem,
    StoredSource,
    Vanished,
)
from .perms import unwritable
from .text import composed

_json_string = json.encoder.encode_basestring  # the C encoder json.dumps itself uses
BUSY_TIMEOUT_S = 10.0
SCHEMA_VERSION = 14  # how many migrations migrations.py holds; kept in PRAGMA user_version
# an entry's identity key, canonical URL, title and (when it is the source's) date
Lookup = tuple[str, str | None, str, str | None]
SourceEvents = Callable[[int, str], Sequence[Notification]]  # (failures, since) → outbox rows
# last_new → its "source.silent" rows (diff.silence_events)
Silence = Callable[[str | None], Sequence[Notification]]
_Deferred = tuple[str, str, str, str, PollReport, SourceState, SourceEvents | None,
                  Silence | None]
_CHUNK = 500  # keep IN (…) lists well under SQLite's variable limit
_DEFER_MAX = 256
VANISHED_MAX = 50  # new entries in one read beyond which none is looked for as retitled
# What `known` reads, in one statement: the baseline flag (kind 0), then stored items by
# this source's keys (1), by canonical URL (2) and by exact title (3), the last two for
# any source, with whether this source has sighted them. Columns after the kind are
# StoredItem's, then own, then title, then the rules it matched, then whether this source
# brought it first.
_KNOWN_SQL = (
    "SELECT 0, baseline_at IS NOT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM sources WHERE name = ?"
    " UNION ALL SELECT 1, i.id, s.key, i.url, i.content_hash, i.published, i.date_flag, 1, NULL,"
    " i.rules, i.source = ? FROM sightings s JOIN items i ON i.id = s.item_id"
    " WHERE s.source = ? AND s.key IN ({keys})"
    " UNION ALL SELECT 2, id, key, url, content_hash, published, date_flag, EXISTS(SELECT 1"
    " FROM sightings g WHERE g.item_id = items.id AND g.source = ?), NULL, rules, source = ?"
    " FROM items WHERE url IN ({urls})"
    " UNION ALL SELECT 3, id, NULL, url, content_hash, published, date_flag, EXISTS(SELECT 1"
    " FROM sightings g WHERE g.item_id = items.id AND g.source = ?), title, rules, source = ?"
    " FROM items WHERE title IN ({titles})")

# The same rows as _KNOWN_SQL's by URL and by title, found by a link or title an item had
# before (its earlier versions): for the entries that nothing stored now identifies.
_HISTORY_SQL = (
    "SELECT DISTINCT 2, i.id, i.key, v.url, i.content_hash, i.published, i.date_flag,"
    " EXISTS(SELECT 1 FROM sightings g WHERE g.item_id = i.id AND g.source = ?), NULL, i.rules,"
    " i.source = ? FROM item_versions v JOIN items i ON i.id = v.item_id WHERE v.url IN ({urls})"
    " UNION ALL SELECT DISTINCT 3, i.id, NULL, i.url, i.content_hash, i.published, i.date_flag,"
    " EXISTS(SELECT 1 FROM sightings g WHERE g.item_id = i.id AND g.source = ?), v.title,"
    " i.rules, i.source = ? FROM item_versions v JOIN items i ON i.id = v.item_id"
    " WHERE v.title IN ({titles})")


def _marks(n: int) -> str:
    return ",".join("?" * n)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(what: str) -> Callable[[_Method], _Method]:
    """An SQLite failure inside the method (a full disk, a lock held too long) becomes a
    StoreError saying what could not be done, in which database: sqlite3's own errors
    never reach the pipeline or the CLI."""
    def wrap(method: _Method) -> _Method:
        @functools.wraps(method)
        def guarded(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as e:
                raise self._failure(what, e) from e
        return guarded  # type: ignore[return-value]
    return wrap


class Store(Protocol):
    """What the pipeline needs from storage."""

    def source_state(self, name: str) -> SourceState: ...

    def source_states(self, names: Sequence[str]) -> dict[str, SourceState]: ...

    def known(self, source: str, entries: Sequence[Lookup],
              texts: Mapping[str, str] | None = None) -> Known: ...

    def raw_hashes(self, source: str, keys: Sequence[str]) -> dict[str, str]: ...

    def has_items(self, source: str) -> bool: ...

    def stored_sources(self) -> list[StoredSource]: ...

    def rename_source(self, old: str, new: str) -> None: ...

    def apply_poll(self, source: str, url: str, kind: str, now: datetime, report: PollReport,
                   state: SourceState, entries: Sequence[Lookup],
                   decide: Callable[[Known], PollPlan],
                   recovered: SourceEvents | None = None, silent: Silence | None = None,
                   texts: Mapping[str, str] | None = None) -> PollPlan: ...

    def record_not_modified(self, source: str, url: str, kind: str, now: datetime,
                            report: PollReport, state: SourceState,
                            recovered: SourceEvents | None = None,
                            silent: Silence | None = None) -> None: ...

    def flush(self) -> None: ...

    def group(self, seconds: float = ..., *, on_commit: Callable[[], None] | None = ...,
              on_lost: Callable[[str], None] | None = ...) -> AbstractContextManager[None]: ...

    def uncommitted(self) -> bool: ...

    def record_failure(self, source: str, url: str, kind: str, now: datetime,
                       report: PollReport, failing: SourceEvents | None = None) -> int: ...

    def prune_log(self, before: datetime, batch: int = ...) -> int: ...

    def close(self) -> None: ...


def _json_list(values: Sequence[str]) -> str:
    """A JSON array of strings (tags, rules), as json.dumps(ensure_ascii=False) writes it,
    without its per-call machinery: two of these per stored item."""
    if not values:
        return "[]"
    return "[" + ", ".join(map(_json_string, values)) + "]"


def _has(haystack: str | None, word: str) -> bool:
    text = (haystack or "").casefold()
    if not word.isascii():  # composed (NFC) as the word is: an item stored before text was
        text = composed(text)
    if " " in word:  # a phrase: across a line break or a run of spaces in the text too
        text = " ".join(text.split())
    return word in text


_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def search_terms(text: str) -> list[tuple[bool, str]]:
    """A search as people type one: words each to be found, a "quoted phrase" found as
    written, a -word or -"phrase" not found; (wanted, casefolded text) each. A lone "-"
    or a hyphenated word ("COVID-19") is a word."""
    terms = []
    for m in _TERM.finditer(text):
        if m[3] is not None:
            word = m[3]
            if word.startswith("-") and len(word) > 1:
                terms.append((False, composed(word[1:].casefold())))
            else:
                terms.append((True, composed(word.casefold())))
        elif phrase := " ".join(m[2].split()):
            terms.append((not m[1], composed(phrase.casefold())))
    return terms


def _stored(row: sqlite3.Row | tuple[Any, ...], own: bool = True) -> StoredItem:
    """A StoredItem from a row of its columns in StoredItem's order, the rules JSON ninth
    and whether this source brought it first tenth."""
    return StoredItem(id=row[0], key=row[1], url=row[2], content_hash=row[3], published=row[4],
                      date_flag=DateFlag(row[5]), own=own, rules_json=row[8] or "[]",
                      first=bool(row[9]))


def claimant() -> str:
    """This process, as an outbox claim names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimant_alive(claim: str | None) -> bool:
    """Whether the process named by a claim may still be running: certainly not when it
    was on this host and its pid is gone; a claim from another host is trusted until
    its lease ends."""
    host, _, pid = (claim or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def backup_database(path: str | Path, dest: str | Path) -> tuple[int, int]:
    """A consistent copy of the database at `path` to `dest`, taken while polls may be
    writing (VACUUM INTO is one read transaction, and WAL readers block no writer):
    compacted, checked, synced, and only then renamed over `dest`, so a backup already
    there is replaced whole or not at all. Copying the file itself could miss the WAL's
    pages. The schema is left as found: a backup taken before an upgrade is one of the
    old database, not of a migrated one. Returns (items, bytes) of the copy."""
    path, dest = Path(path), Path(dest)
    if dest.exists() and (dest.is_dir() or os.path.samefile(dest, path)):
        what = "a folder" if dest.is_dir() else "this database itself"
        raise StoreError(f"cannot back up to {dest}: it is {what}")
    if not dest.parent.is_dir():
        raise StoreError(f"cannot back up to {dest}: there is no folder {dest.parent}")
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        # the copy is written beside `dest` and renamed over it, so the folder is what counts
        raise StoreError(f"cannot back up to {dest}: {unwritable(dest, wal=False)}")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        tmp.unlink(missing_ok=True)
        conn = _connect_read_only(path)
        try:
            conn.execute("VACUUM INTO ?", (str(tmp),))
        finally:
            conn.close()
        copy = sqlite3.connect(f"{tmp.resolve().as_uri()}?mode=ro", uri=True)
        try:
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
            items = copy.execute("SELECT count(*) FROM items").fetchone()[0]
        finally:
            copy.close()
        if check != "ok":
            raise StoreError(f"the copy at {tmp} failed its check: {check}")
        with open(tmp, "rb+") as f:  # SQLite does not sync what VACUUM INTO writes
            os.fsync(f.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, dest)
        dir_fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself, through a crash
        finally:
            os.close(dir_fd)
    except sqlite3.Error as e:
        raise StoreError(f"cannot back up {path} to {dest}: {e}") from e
    except OSError as e:
        raise StoreError(f"cannot back up {path} to {dest}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return items, size


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What forgetting a source deleted (or, in a dry run, would delete)."""

    source: str
    items: int  # items no other source has seen
    versions: int  # their earlier versions
    notifications: int  # outbox rows about them or about the source
    polls: int  # its fetch-log rows
    kept: int  # items other sources have seen too: kept, as theirs
    stored: bool  # whether the database held anything of it at all


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the database at `path`, even for a user who may not
    write its folder."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                               isolation_level=None, check_same_thread=False)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        if Path(f"{path}-wal").exists() or not unwritable(path):
            raise
        # A WAL database's reader must create its -shm file in the folder. With no -wal
        # file there is no write in flight to miss, so the file is read as it is.
        conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True,
                               isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _open_read_only(path: Path) -> sqlite3.Connection:
    """The database at `path` opened for reading by a user who may not write it."""
    try:
        conn = _connect_read_only(path)
        conn.create_function("hv_has", 2, _has, deterministic=True)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as e:
        raise StoreError(f"cannot open database {path} even read-only "
                         f"({unwritable(path)}): {e}") from e
    if version != SCHEMA_VERSION:
        conn.close()
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        raise StoreError(
            f"database {path} has schema version {version}, older than this harvester's "
            f"{SCHEMA_VERSION}, and reading it needs the upgrade, which needs write access: "
            f"{unwritable(path)}")
    return conn


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(
        f"database {path} has schema version {version}, newer than this harvester's "
        f"{SCHEMA_VERSION}: a newer version wrote it; run that version, or a backup taken "
        "before the upgrade (nothing was changed)")


class _StillLocked(Exception):
    """`_patiently` gave up; the SQLite error is its cause."""


def _patiently(conn: sqlite3.Connection, sql: str, limit_s: float) -> None:
    """Run `sql`, trying again for up to `limit_s` while SQLite says the database is busy:
    for the statements it fails at once on contention instead of calling the busy handler
    (BEGIN IMMEDIATE upgrading a WAL read, switching a file to WAL)."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise _StillLocked from e
            time.sleep(0.05)


class _Undo(Exception):
    """Raised inside a write to roll it back: a dry run counts what it would delete."""


class SqliteStore:
    """SQLite behind the Store protocol."""

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 new_in_memory: bool = False):
        """`read_only` is for commands that only read: when this user may not write the
        database (or the folder SQLite keeps its -wal and -shm files in), it is opened
        read-only instead of refused, so another account can still list what it holds.
        With it, or with `new_in_memory` (a dry run), a database not there yet is not made:
        an empty one in memory answers as the new one would."""
        self.path = Path(path)
        self._deferred: list[_Deferred] = []
        self._group_s: float | None = None  # inside group(): how long one transaction may run
        self._group_until = 0.0
        # group()'s hooks: its polls committed, or undone with the transaction that held them
        self._on_commit: Callable[[], None] | None = None
        self._on_lost: Callable[[str], None] | None = None
        conn: sqlite3.Connection | None = None
        memory = (read_only or new_in_memory) and not self.path.exists()
        try:
            try:
                if not memory:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot open database {self.path}: cannot create the "
                                 f"folder {self.path.parent}: {e.strerror or e}") from e
            # SQLite would open a file it may not write read-only, without a word, and fail
            # at the first write: after a whole poll's fetching, and naming no file
            why = None if memory else unwritable(self.path)
            if why and read_only and self.path.is_file():
                self.conn = _open_read_only(self.path)
                return
            if why:
                raise StoreError(f"cannot open database {self.path}: {why}")
            # isolation_level=None: this class says BEGIN/COMMIT itself, nothing implicit
            conn = sqlite3.connect(":memory:" if memory else str(self.path),
                                   timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # 16 KiB pages for a new database (a no-op on an existing one): an item row with
            # its content (~4 KiB) fits one page instead of spilling to an overflow page, and
            # a commit writes a quarter of the WAL frames (measured: ~10 % off a cold poll's
            # writes). Must precede WAL mode, which fixes the page size.
            conn.execute("PRAGMA page_size = 16384")
            # SQLite answers this with "locked" at once, skipping the busy handler, while
            # another connection turns the same new file to WAL (a cron run starting beside
            # the daemon): wait as for any other lock
            _patiently(conn, "PRAGMA journal_mode = WAL", BUSY_TIMEOUT_S)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # SQLite's LIKE and lower() fold ASCII only: "über" would miss "Über"
            conn.create_function("hv_has", 2, _has, deterministic=True)
            self.conn = conn
            # user_version mirrors the applied migrations, so an up-to-date database is
            # recognised without loading sqlite-utils (a third of a cold start's imports)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                # a newer harvester's database (an image rolled back): writing to a schema
                # this one does not know could lose what the newer one keeps there
                conn.close()
                raise _newer(self.path, version)
            if version != SCHEMA_VERSION:
                self._migrate()
        except (sqlite3.Error, _StillLocked) as e:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open database {self.path}: {e.__cause__ or e}") from e

    def _migrate(self) -> None:
        from sqlite_utils import Database

        from .migrations import migrations

        with self._write():
            migrations.apply(Database(self.conn, execute_plugins=False))
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self._iter_query(sql, args))

    def _iter_query(self, sql: str, args: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows as dicts, read as they are consumed."""
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        for values in cur:
            yield dict(zip(names, values, strict=True))

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; waits for the lock rather than failing on contention.
        Inside `group()`, a savepoint of the group's transaction: undone alone on failure."""
        grouped = self._group_s is not None
        if not (grouped and self.conn.in_transaction):
            self._begin()
            self._group_until = time.monotonic() + (self._group_s or 0.0)
        if grouped:
            self.conn.execute("SAVEPOINT poll")
        deferred, self._deferred = self._deferred, []
        try:
            self._write_deferred(deferred)
            yield self.conn
        except BaseException as e:
            if self.conn.in_transaction:
                if grouped:
                    self.conn.execute("ROLLBACK TO poll")
                    self.conn.execute("RELEASE poll")
                else:
                    self.conn.execute("ROLLBACK")
            elif grouped and isinstance(e, sqlite3.Error):
                # SQLite rolled it all back itself (a full disk, an I/O error): the group's
                # earlier polls went with it
                self._lost(e)
            self._deferred[:0] = deferred  # kept for the next transaction
            raise
        else:
            try:
                if grouped:
                    self.conn.execute("RELEASE poll")
                if not grouped or time.monotonic() >= self._group_until:
                    self._commit()
            except BaseException:
                self._deferred[:0] = deferred
                raise

    @contextmanager
    def group(self, seconds: float = 0.25, *, on_commit: Callable[[], None] | None = None,
              on_lost: Callable[[str], None] | None = None) -> Iterator[None]:
        """Let the polls written inside share transactions of up to `seconds`, each poll a
        savepoint (all of it or none of it, as before). A commit per poll rewrote the same
        index pages 200 times in a cold poll of 200 sources. The caller must `flush()`
        before it waits on anything, so the write lock is never held idle.

        A poll written here is stored only once its transaction commits: `on_commit` is
        called when one does, `on_lost` (with SQLite's reason) when one fails (a full disk)
        and takes every poll written in it since the last commit (see `uncommitted`)."""
        if self._group_s is not None:  # already grouping
            yield
            return
        self._group_s = seconds
        self._on_commit, self._on_lost = on_commit, on_lost
        # Two settings for the length of a group, measured on a first poll of 200 feeds:
        # - each poll's savepoint journals the pages it changes, so that it alone can be
        #   rolled back; SQLite keeps 64 KiB of that in memory and spilled the rest to a
        #   temporary file, ~180 MB in all. Kept in memory here (about one poll's pages at a
        #   time), not always: the same setting would hold a large query's sort in memory;
        # - 8 MiB of page cache, not SQLite's 2 MB (125 of these pages): a commit's dirty
        #   pages and the index pages it touches fit, instead of spilling to the WAL and
        #   being read back from it (~220 MB). Given back after, so a daemon stays small.
        # Together: 63,000 page reads and writes → 21,000, ~0.1 s less system time.
        cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        if not self.conn.in_transaction:  # SQLite refuses temp_store inside one
            self.conn.execute("PRAGMA temp_store = MEMORY")
            self.conn.execute("PRAGMA cache_size = -8192")
        try:
            yield
        finally:
            self._group_s = None
            try:
                if self.conn.in_transaction:  # every savepoint released so far is a whole poll
                    self._commit()
            except sqlite3.Error as e:
                raise self._failure("record polls", e) from e
            finally:
                self._on_commit = self._on_lost = None
                if not self.conn.in_transaction:
                    self.conn.execute("PRAGMA temp_store = DEFAULT")
                    self.conn.execute(f"PRAGMA cache_size = {int(cache)}")

    def uncommitted(self) -> bool:
        """Whether what was written last still waits for its group's commit."""
        return self._group_s is not None and self.conn.in_transaction

    def _commit(self) -> None:
        """COMMIT. Should it fail (a full disk), what SQLite did not roll back itself is
        rolled back, so the connection never sits in a failed transaction holding the
        write lock."""
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            self._lost(e)
            raise
        if self._on_commit is not None:
            self._on_commit()

    def _lost(self, e: sqlite3.Error) -> None:
        if self._on_lost is not None:
            self._on_lost(str(e))

    def _begin(self) -> None:
        try:
            _patiently(self.conn, "BEGIN IMMEDIATE", BUSY_TIMEOUT_S * 3)
        except _StillLocked as e:
            raise StoreError(f"database {self.path} stayed locked: {e.__cause__}") from e

    def _failure(self, what: str, e: sqlite3.Error, source: str | None = None,
                 url: str | None = None) -> StoreError:
        """The StoreError for an SQLite failure while doing `what` in this database."""
        why = unwritable(self.path) if "SQLITE_READONLY" in (
            getattr(e, "sqlite_errorname", "") or "") else None
        return StoreError(f"cannot {what} in {self.path}: {why or e}", source=source, url=url)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads for a poll ----------------------------------------------------------------

    def source_state(self, name: str) -> SourceState:
        return self.source_states([name])[name]

    def source_states(self, names: Sequence[str]) -> dict[str, SourceState]:
        """Each named source's fetch state and health, in one query (a chunk of names at a
        time); a source never polled has a fresh state."""
        states = {name: SourceState(name) for name in names}
        try:
            rows = list(self._rows(
                "SELECT name, etag, last_modified, body_hash, baseline_at IS NOT NULL,"
                " consecutive_failures, not_before, last_polled, last_success, read_as"
                " FROM sources"
                " WHERE name IN ({marks})", list(states)))
        except sqlite3.Error as e:
            what = f"read source {names[0]!r}" if len(names) == 1 else "read the sources"
            raise self._failure(what, e, source=names[0] if len(names) == 1 else None) from e
        for (name, etag, last_modified, body_hash, baseline, failures, not_before, polled,
             success, read_as) in rows:
            states[name] = SourceState(
                name, etag=etag, last_modified=last_modified, body_hash=body_hash,
                baseline_done=bool(baseline), consecutive_failures=failures,
                not_before=datetime.fromisoformat(not_before) if not_before else None,
                last_polled=datetime.fromisoformat(polled) if polled else None,
                last_success=datetime.fromisoformat(success) if success else None,
                read_as=read_as)
        return states

    def known(self, source: str, entries: Sequence[Lookup],
              texts: Mapping[str, str] | None = None) -> Known:
        """What is stored for these entries — (identity key, canonical URL, title) — by
        key for this source, else by URL, else by title, for any source: one query; with
        `texts` (each entry's content hash as this read gives it, by key), the stored
        fields of each item found that an entry would edit too (a second)."""
        try:
            return self._known(source, entries, texts)
        except sqlite3.Error as e:
            raise self._failure(f"read items of {source!r}", e, source=source) from e

    def _rows(self, sql: str, values: Sequence[str], *before: object) -> Iterator[tuple[Any, ...]]:
        """`sql` with {marks} run over `values` in chunks under SQLite's variable limit."""
        for i in range(0, len(values), _CHUNK):
            chunk = values[i : i + _CHUNK]
            yield from self.conn.execute(sql.format(marks=_marks(len(chunk))),
                                         (*before, *chunk))

    def _known(self, source: str, entries: Sequence[Lookup],
               texts: Mapping[str, str] | None = None) -> Known:
        # One statement per chunk of entries (one for any feed's window): the source's
        # baseline flag, then rows by key for this source, by URL and by title for any
        # source. Which URL and title rows count depends on what the key rows found, so
        # that is sorted out here, in the order the three lookups stand in.
        by_key: dict[str, StoredItem] = {}
        url_rows: list[tuple[Any, ...]] = []
        title_rows: list[tuple[Any, ...]] = []
        baseline_done = False
        for i in range(0, max(len(entries), 1), _CHUNK):
            chunk = entries[i : i + _CHUNK]
            keys = [e[0] for e in chunk]
            urls = [e[1] for e in chunk if e[1]]
            titles = [e[2] for e in chunk if e[2]]
            sql = _KNOWN_SQL.format(keys=_marks(len(keys)), urls=_marks(len(urls)),
                                    titles=_marks(len(titles)))
            for row in self.conn.execute(sql, (source, source, source, *keys, source, source,
                                               *urls, source, source, *titles)):
                kind, stored = row[0], row[1:]
                if kind == 0:
                    baseline_done = bool(stored[0])
                elif kind == 1:
                    by_key[stored[1]] = _stored(stored)
                else:
                    (url_rows if kind == 2 else title_rows).append(stored)
        # a changed guid, or an article another source brought first
        known_urls = {s.url for s in by_key.values()}
        rest = [e for e in entries if e[0] not in by_key and e[1] not in known_urls]
        # and the links of entries whose guid names an item with another link: a guid
        # several entries had may be this one's now (diff)
        wanted_urls = {e[1] for e in rest if e[1]} | {
            u for k, u, *_ in entries if u and k in by_key and by_key[k].url != u}
        by_url: dict[str, StoredItem] = {}
        for row in url_rows:
            # an item keyed by its title and date had a link it shared with others: the
            # link is not the item's (diff.dedupe)
            if row[2] in wanted_urls and not row[1].startswith("hash:"):
                by_url.setdefault(row[2], _stored(row, bool(row[6])))
        # a title-keyed entry is looked for by title even where its link is known: its link
        # may be one it now shares with others, and the stored item the one it had alone
        wanted_titles = {t for k, u, t, _ in rest
                         if t and (u not in by_url or k.startswith("hash:"))}
        by_title: dict[str, list[StoredItem]] = {}
        for row in title_rows:
            if row[7] in wanted_titles:
                by_title.setdefault(row[7], []).append(_stored(row, bool(row[6])))
        # and what no stored link or title names: perhaps one an item had before an edit
        former, formerly = self._former(source, [
            e for e in rest if e[1] not in by_url and e[2] not in by_title])
        for title, rows in formerly.items():
            by_title.setdefault(title, []).extend(rows)
        found = Known(by_key, by_url, baseline_done, by_title, by_former_url=former)
        ids = {s.id for s in (*by_key.values(), *by_url.values(), *former.values())} | {
            s.id for rows in by_title.values() for s in rows}
        if baseline_done:
            found.gone.extend(self._vanished(source, ids, [
                e[3] for e in rest if e[3] and e[1] not in by_url]))
        if texts is not None:
            # an item its entry reads the same (most of any feed's window), or whose entry
            # was not read again (its raw form unchanged), is no edit: its fields are not
            # needed. An edit's are, and any found under another key.
            same = {s.id for k, s in by_key.items()
                    if texts.get(k, s.content_hash) == s.content_hash}
            wanted = sorted((ids - same) | {g.item.id for g in found.gone})
            found.texts.update(
                (row[0], dict(zip(VERSIONED, row[1:], strict=True))) for row in self._rows(
                    f"SELECT id, {', '.join(VERSIONED)} FROM items WHERE id IN ({{marks}})",
                    wanted))
        return found

    def _former(self, source: str, lost: Sequence[Lookup]
                ) -> tuple[dict[str, StoredItem], dict[str, list[StoredItem]]]:
        """The items whose earlier versions had the link (by link) or the title (by title)
        of an entry that nothing stored now identifies: a listing showing an item as it was
        before its title and link were both fixed (the feed saw the fix first). One indexed
        query, and only for such entries: a poll's news."""
        former: dict[str, StoredItem] = {}
        by_title: dict[str, list[StoredItem]] = {}
        urls = sorted({e[1] for e in lost if e[1]})
        titles = sorted({e[2] for e in lost if e[2]})
        for i in range(0, max(len(urls), len(titles)), _CHUNK):
            some_urls, some_titles = urls[i : i + _CHUNK], titles[i : i + _CHUNK]
            if not (some_urls or some_titles):
                break
            sql = _HISTORY_SQL.format(urls=_marks(len(some_urls)),
                                      titles=_marks(len(some_titles)))
            for row in self.conn.execute(sql, (source, source, *some_urls, source, source,
                                               *some_titles)):
                kind, stored = row[0], row[1:]
                if kind == 2 and not stored[1].startswith("hash:"):
                    former.setdefault(stored[2], _stored(stored, bool(stored[6])))
                elif kind == 3:
                    by_title.setdefault(stored[7], []).append(_stored(stored, bool(stored[6])))
        return former, by_title

    def _vanished(self, source: str, found: set[str], dates: Sequence[str]) -> list[Vanished]:
        """This source's items dated within RETITLE_HOURS of an entry found by nothing, less
        the items `found`: what such an entry may be, retitled (diff). One indexed range
        read per stretch of dates; none when more than VANISHED_MAX entries are new at
        once (a window that moved on, not a title fixed)."""
        if not dates or len(dates) > VANISHED_MAX:
            return []
        margin = timedelta(hours=RETITLE_HOURS)
        spans: list[list[datetime]] = []
        for day in sorted(dates):
            try:
                at = datetime.fromisoformat(day.replace("Z", "+00:00"))
            except ValueError:
                continue
            if spans and at - margin <= spans[-1][1]:
                spans[-1][1] = at + margin
            else:
                spans.append([at - margin, at + margin])
        out, seen = [], set(found)
        for lo, hi in spans:
            # CROSS JOIN keeps items, read by date, the outer loop: left to itself SQLite
            # walks all of the source's sightings (77 ms for one with 20,000 items, where
            # by date a day of a million-item store costs 4)
            for row in self.conn.execute(
                    "SELECT i.id, s.key, i.url, i.content_hash, i.published, i.date_flag,"
                    " i.title, i.summary, i.rules, i.source = ? FROM items i"
                    " CROSS JOIN sightings s ON s.item_id = i.id"
                    " WHERE i.published BETWEEN ? AND ? AND i.date_flag = '' AND s.source = ?",
                    (source, iso_utc(lo), iso_utc(hi), source)):
                if row[0] not in seen:
                    seen.add(row[0])  # an item sighted under two keys is one
                    out.append(Vanished(_stored(row), row[6], row[7] or ""))
        return out

    def raw_hashes(self, source: str, keys: Sequence[str]) -> dict[str, str]:
        """The raw fingerprint this source last gave for each key (one query)."""
        try:
            return dict(self._rows("SELECT key, raw_hash FROM sightings WHERE source = ?"
                                   " AND raw_hash IS NOT NULL AND key IN ({marks})", keys, source))
        except sqlite3.Error as e:
            raise self._failure(f"read items of {source!r}", e, source=source) from e

    def has_items(self, source: str) -> bool:
        """Whether this source has sighted any item (one indexed row read)."""
        try:
            return self.conn.execute("SELECT 1 FROM sightings WHERE source = ? LIMIT 1",
                                     (source,)).fetchone() is not None
        except sqlite3.Error as e:
            raise self._failure(f"read items of {source!r}", e, source=source) from e

    # -- writes --------------------------------------------------------------------------

    def _queue(self, notes: Sequence[Notification], ts: str) -> int:
        """Outbox rows; the unique key makes queueing the same event twice a no-op."""
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT OR IGNORE INTO outbox (id, notifier, item_id, event, ref, source, data,"
            " created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(n.id, n.notifier, n.item_id, n.event, n.ref, n.source, n.data, ts, n.due or ts)
             for n in notes])
        return self.conn.total_changes - before

    def _upsert_source(self, source: str, url: str, kind: str, now: str) -> None:
        self.conn.execute(
            "INSERT INTO sources (name, url, kind, last_polled) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET url = excluded.url, kind = excluded.kind,"
            " last_polled = excluded.last_polled", (source, url, kind, now))

    def _log(self, source: str, now: str, report: PollReport) -> None:
        self.conn.execute(
            "INSERT INTO fetch_log (source, at, status, http_status, duration_ms, bytes, new,"
            " changed, unchanged, queued, old, reread, cut, unmatched, markup, baseline, error,"
            " warning) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (source, now, report.status.value, report.http_status,
             round(report.duration * 1000), report.bytes, report.new, report.changed,
             report.unchanged, report.queued, report.old, report.reread, report.cut,
             report.unmatched, report.markup, report.baseline, report.error, report.warning))

    def _success(self, source: str, now: str, status: PollStatus, state: SourceState,
                 recovered: SourceEvents | None, silent: Silence | None = None) -> None:
        row = self.conn.execute("SELECT alerted, failing_since, consecutive_failures FROM sources"
                                " WHERE name = ?", (source,)).fetchone()
        if row and row[0] and recovered is not None:
            self._queue(recovered(row[2], row[1] or now), now)
        if silent is not None:  # when it last brought news: its newest sighting, or baseline
            last_new = self.conn.execute(
                "SELECT coalesce((SELECT max(first_seen) FROM sightings WHERE source = ?),"
                " (SELECT baseline_at FROM sources WHERE name = ?))", (source, source)
            ).fetchone()[0]
            self._queue(silent(last_new), now)
        self.conn.execute(
            "UPDATE sources SET etag = ?, last_modified = ?, body_hash = ?, read_as = ?,"
            " last_status = ?, last_success = ?, consecutive_failures = 0, failing_since = NULL,"
            " alerted = 0, not_before = NULL WHERE name = ?",
            (state.etag, state.last_modified, state.body_hash, state.read_as, status.value, now,
             source))

    def apply_poll(self, source: str, url: str, kind: str, now: datetime, report: PollReport,
                   state: SourceState, entries: Sequence[Lookup],
                   decide: Callable[[Known], PollPlan],
                   recovered: SourceEvents | None = None, silent: Silence | None = None,
                   texts: Mapping[str, str] | None = None) -> PollPlan:
        """Read what is known, let `decide` (pure) plan the poll, write the plan: all in one
        transaction, so a concurrent run or a crash can never leave half a poll."""
        ts = iso_utc(now)
        try:
            with self._write() as c:
                plan = decide(self._known(source, entries, texts))
                self._upsert_source(source, url, kind, ts)
                self._write_changes(source, ts, plan)
                if plan.baseline:
                    c.execute("UPDATE sources SET baseline_at = COALESCE(baseline_at, ?)"
                              " WHERE name = ?", (ts, source))
                self._success(source, ts, PollStatus.OK, state, recovered, silent)
                plan = replace(plan, queued=self._queue(plan.notifications, ts))
                self._log(source, ts, report.planned(plan))
        except sqlite3.Error as e:
            raise self._failure(f"store the poll of {source!r}", e, source=source,
                                url=url) from e
        return plan

    def _write_changes(self, source: str, ts: str, plan: PollPlan) -> None:
        c = self.conn
        new = [ch for ch in plan.changes if ch.kind is ChangeKind.NEW]
        changed = [ch for ch in plan.changes if ch.kind is ChangeKind.CHANGED]
        unchanged = [ch for ch in plan.changes if ch.kind is ChangeKind.UNCHANGED]
        c.executemany(
            "INSERT INTO items (id, source, key, guid, url, title, category, tags, summary,"
            " content, published, date_flag, language, author, content_hash, rules, first_seen,"
            " last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(ch.item_id, source, it.key, it.guid, it.url, it.title, it.category,
              _json_list(it.tags), it.summary, it.content, it.published,
              it.date_flag.value, it.language, it.author, it.content_hash,
              _json_list(ch.rules), ts, ts) for ch in new for it in (ch.item,)])
        c.executemany(
            "INSERT INTO item_versions (item_id, version, recorded_at, content_hash, title, url,"
            " category, summary, content, published) SELECT id, version, ?, content_hash, title,"
            " url, category, summary, content, published FROM items WHERE id = ?",
            [(ts, ch.item_id) for ch in changed])
        c.executemany(
            # an edit that brings no content keeps the stored one (a followed article's text)
            "UPDATE items SET guid = ?, url = ?, title = ?, category = ?, tags = ?, summary = ?,"
            " content = COALESCE(NULLIF(?, ''), content), published = ?, date_flag = ?,"
            " language = ?, author = ?,"
            " content_hash = ?, rules = ?, version = version + 1, last_seen = ?, updated_at = ?"
            " WHERE id = ?",
            [(it.guid, it.url, it.title, it.category, _json_list(it.tags),
              it.summary, it.content, it.published, it.date_flag.value, it.language, it.author,
              it.content_hash, _json_list(ch.rules), ts, ts, ch.item_id)
             for ch in changed for it in (ch.item,)])
        if plan.keep_versions is not None:
            # an item at version v holds versions 1 … v-1 here: the newest `keep` stay
            c.executemany(
                "DELETE FROM item_versions WHERE item_id = ?"
                " AND version < (SELECT version FROM items WHERE id = ?) - ?",
                [(ch.item_id, ch.item_id, plan.keep_versions) for ch in changed])
        # an item hashed by an earlier HASH_VERSION is no edit (diff says so): it is stored
        # as this version reads it, with no earlier version kept and none counted
        rehashed, seen = [], []
        for ch in unchanged:
            if ch.foreign:
                continue
            if ch.previous is not None and ch.previous.content_hash != ch.item.content_hash:
                rehashed.append(ch)
            else:
                seen.append(ch)
        c.executemany(
            "UPDATE items SET guid = ?, url = ?, title = ?, category = ?, tags = ?, summary = ?,"
            " content = COALESCE(NULLIF(?, ''), content), published = ?, date_flag = ?,"
            " language = ?, author = ?, content_hash = ?, last_seen = ? WHERE id = ?",
            [(it.guid, it.url, it.title, it.category, _json_list(it.tags), it.summary,
              it.content, it.published, it.date_flag.value, it.language, it.author,
              it.content_hash, ts, ch.item_id) for ch in rehashed for it in (ch.item,)])
        # a sighting through another source leaves the item as its first source has it
        c.executemany(
            "UPDATE items SET last_seen = ?, content_hash = ? WHERE id = ?",
            [(ts, ch.item.content_hash, ch.item_id) for ch in seen])
        c.executemany("UPDATE items SET last_seen = ? WHERE id = ?",
                      [(ts, ch.item_id) for ch in unchanged if ch.foreign])
        # every item seen now has a sighting under this source's current key for it. A new
        # item's key had none (`decide` read the sightings in this transaction), so a plain
        # INSERT: an upsert checks the foreign key at twice the cost (measured: 0.12 s vs
        # 0.07 s per 10,000 rows).
        def sighting(ch: Change) -> tuple[Any, ...]:
            return (source, ch.item.key, ch.item_id, ts, ts, ch.item.raw_hash or None)

        insert = ("INSERT INTO sightings (source, key, item_id, first_seen, last_seen,"
                  " raw_hash) VALUES (?, ?, ?, ?, ?, ?)")
        c.executemany(insert, map(sighting, new))
        c.executemany(insert + " ON CONFLICT(source, key) DO UPDATE SET item_id ="
                      " excluded.item_id, last_seen = excluded.last_seen,"
                      " raw_hash = excluded.raw_hash",
                      [sighting(ch) for ch in plan.changes if ch.kind is not ChangeKind.NEW])
        # entries whose raw form had not changed: only seen again
        c.executemany("UPDATE sightings SET last_seen = ? WHERE source = ? AND key = ?",
                      [(ts, source, key) for key, _ in plan.same])
        c.executemany("UPDATE items SET last_seen = ? WHERE id = ?",
                      [(ts, item) for _, item in plan.same])

    def record_not_modified(self, source: str, url: str, kind: str, now: datetime,
                            report: PollReport, state: SourceState,
                            recovered: SourceEvents | None = None,
                            silent: Silence | None = None) -> None:
        """Note a poll that changed nothing. Only health and the fetch log change, so the
        write is deferred to the next transaction (or `flush`): a re-poll of 200 unchanged
        sources then costs one commit, not 200."""
        self._deferred.append((source, url, kind, iso_utc(now), report, state, recovered,
                               silent))
        if len(self._deferred) >= _DEFER_MAX:
            self.flush()

    def flush(self) -> None:
        """Write deferred not-modified records, and commit a group's open transaction."""
        try:
            if self._deferred:
                with self._write():
                    pass  # _write writes what is deferred
            if self._group_s is not None and self.conn.in_transaction:
                self._commit()
        except sqlite3.Error as e:
            raise self._failure("record polls", e) from e

    def _write_deferred(self, deferred: list[_Deferred]) -> None:
        for source, url, kind, ts, report, state, recovered, silent in deferred:
            self._upsert_source(source, url, kind, ts)
            self._success(source, ts, PollStatus.NOT_MODIFIED, state, recovered, silent)
            self._log(source, ts, report)

    def record_failure(self, source: str, url: str, kind: str, now: datetime,
                       report: PollReport, failing: SourceEvents | None = None) -> int:
        """A failed poll changes no item: only the source's health, the fetch log and, when
        `failing` says the streak is long enough, one operators' event per streak. Returns
        how many outbox rows that event made."""
        queued = 0
        ts = iso_utc(now)
        # the server's Retry-After, kept so that no later run (daemon or cron) asks sooner
        not_before = (iso_utc(now + timedelta(seconds=report.retry_after))
                      if report.retry_after else None)
        try:
            with self._write() as c:
                self._upsert_source(source, url, kind, ts)
                c.execute(
                    "UPDATE sources SET last_status = 'error', last_error = ?, last_error_at = ?,"
                    " consecutive_failures = consecutive_failures + 1,"
                    " failing_since = COALESCE(failing_since, ?), not_before = ? WHERE name = ?",
                    (report.error, ts, ts, not_before, source))
                if failing is not None:
                    count, since, alerted = c.execute(
                        "SELECT consecutive_failures, failing_since, alerted FROM sources"
                        " WHERE name = ?", (source,)).fetchone()
                    queued = 0 if alerted else self._queue(failing(count, since), ts)
                    if queued:
                        c.execute("UPDATE sources SET alerted = 1 WHERE name = ?", (source,))
                self._log(source, ts, replace(report, queued=queued))
        except sqlite3.Error as e:
            raise self._failure(f"record the failure of {source!r}", e, source=source) from e
        return queued

    # -- the outbox ----------------------------------------------------------------------

    @_guarded("claim due notifications")
    def claim_due(self, now: datetime, per_row: float, limit: int = 1000
                  ) -> list[dict[str, Any]]:
        """Pending rows whose time has come, of notifiers not disabled, with their items —
        claimed for this process for a minute plus `per_row` seconds a row (time for each
        to time out in turn), so an overlapping run
        (cron beside a daemon) does not send them too. A claim by a process of this host
        that has died is void at once: a killed run's rows are resent by the next one. So
        is one of this process's own: it runs one pass at a time, so its claim standing at
        the start of a pass is one an earlier pass could not settle (its database refused
        the write), and those rows go now, not when the claim runs out."""
        me = claimant()
        ts = iso_utc(now)
        with self._write() as c:
            rows = self._query(
                "SELECT o.*, i.title, i.category, i.url, i.published, i.summary, i.content,"
                " i.first_seen, i.rules, i.source AS item_source, i.version,"
                " i.content_hash AS item_hash FROM outbox o"
                " LEFT JOIN items i ON i.id = o.item_id"
                " WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
                " AND o.notifier NOT IN (SELECT name FROM notifier_state"
                "                        WHERE disabled_at IS NOT NULL)"
                # a poll's rows share created_at: its oldest news goes first, so a chat
                # or an inbox reads in the order the source published it
                " ORDER BY o.created_at, i.published, o.rowid LIMIT ?", (ts, limit))
            rows = [r for r in rows if not (r["claimed_until"] and r["claimed_until"] > ts
                                            and r["claimed_by"] != me
                                            and claimant_alive(r["claimed_by"]))]
            until = iso_utc(now + timedelta(seconds=60 + per_row * len(rows)))
            c.executemany("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                          [(me, until, r["id"]) for r in rows])
        return rows

    @_guarded("read the outbox")
    def held(self, now: datetime) -> list[tuple[str, str, str]]:
        """(notifier, created_at, next_attempt_at) of untried pending rows due after `now`:
        news a notifier's `at` holds, one triple a poll (its rows share both times)."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT DISTINCT notifier, created_at, next_attempt_at FROM outbox"
            " WHERE status = 'pending' AND next_attempt_at > ? AND attempts = 0",
            (iso_utc(now),))]

    @_guarded("bring notifications forward")
    def bring_forward(self, changes: Sequence[tuple[str, str, str, str]]) -> int:
        """Set (notifier, created_at, next_attempt_at) → new time, for untried pending rows
        only: a row tried meanwhile keeps its backoff."""
        if not changes:  # the usual pass: no write lock taken for nothing
            return 0
        with self._write() as c:
            before = c.total_changes
            c.executemany(
                "UPDATE outbox SET next_attempt_at = ? WHERE notifier = ? AND created_at = ?"
                " AND next_attempt_at = ? AND status = 'pending' AND attempts = 0",
                [(new, name, created, old) for name, created, old, new in changes])
            return c.total_changes - before

    @_guarded("release notifications")
    def release(self, ids: Sequence[str]) -> None:
        """Give up claims on rows this pass did not settle (their notifier was disabled)."""
        with self._write() as c:
            c.executemany("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                          " WHERE id = ? AND claimed_by = ?", [(i, claimant()) for i in ids])

    @_guarded("mark notifications sent")
    def mark_sent(self, ids: Sequence[str], now: datetime, response: str | None = None) -> None:
        with self._write() as c:
            c.executemany("UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                          " last_error = NULL, response = ?, claimed_by = NULL,"
                          " claimed_until = NULL WHERE id = ?",
                          [(iso_utc(now), response, i) for i in ids])

    @_guarded("record a failed delivery")
    def mark_failed(self, ids: Sequence[str], error: str, *, retry_at: datetime | None,
                    response: str | None = None) -> None:
        """A failed attempt: retried at `retry_at`, or `dead` when that is None."""
        with self._write() as c:
            c.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, response = ?,"
                " status = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
                " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                [(error, response, "pending" if retry_at else "dead",
                  iso_utc(retry_at) if retry_at else None, i) for i in ids])

    @_guarded("disable a notifier")
    def disable_notifier(self, name: str, reason: str, now: datetime) -> None:
        with self._write() as c:
            c.execute("INSERT INTO notifier_state (name, disabled_at, disabled_reason)"
                      " VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                      " disabled_at = excluded.disabled_at,"
                      " disabled_reason = excluded.disabled_reason",
                      (name, iso_utc(now), reason))

    @_guarded("enable a notifier")
    def enable_notifier(self, name: str) -> None:
        with self._write() as c:
            c.execute("UPDATE notifier_state SET disabled_at = NULL, disabled_reason = NULL"
                      " WHERE name = ?", (name,))

    @_guarded("read the notifiers' state")
    def disabled_notifiers(self) -> dict[str, str]:
        return {r["name"]: r["disabled_reason"] for r in self._query(
            "SELECT name, disabled_reason FROM notifier_state WHERE disabled_at IS NOT NULL")}

    @_guarded("re-queue notifications")
    def requeue(self, now: datetime, ids: Sequence[str] = (), dead: bool = False) -> int:
        """Put rows back to pending, due now: the given ids, or every dead row."""
        with self._write() as c:
            before = c.total_changes
            if dead:
                c.execute("UPDATE outbox SET status = 'pending', next_attempt_at = ?,"
                          " attempts = 0, claimed_by = NULL, claimed_until = NULL"
                          " WHERE status = 'dead'", (iso_utc(now),))
            c.executemany("UPDATE outbox SET status = 'pending', next_attempt_at = ?,"
                          " attempts = 0, claimed_by = NULL, claimed_until = NULL"
                          " WHERE id = ? AND status != 'pending'",
                          [(iso_utc(now), i) for i in ids])
            return c.total_changes - before

    # -- the rules, applied again (retag.py decides) ---------------------------------------

    def tagged_items(self, batch: int = 2000) -> Iterator[tuple[str, Item, list[str]]]:
        """Every stored item as the rules read it, with the rules it is tagged with. Read
        by id a batch at a time, so a million items are never held at once."""
        after = ""
        while True:
            try:
                rows = self.conn.execute(
                    "SELECT id, source, key, url, guid, title, category, tags, summary, content,"
                    " published, date_flag, language, content_hash, author, rules FROM items"
                    " WHERE id > ? ORDER BY id LIMIT ?", (after, batch)).fetchall()
            except sqlite3.Error as e:
                raise self._failure("read items", e) from e
            if not rows:
                return
            for (item_id, source, key, url, guid, title, category, tags, summary, content,
                 published, date_flag, language, content_hash, author, rules) in rows:
                yield item_id, Item(source, key, url, guid, title, category,
                                    tuple(json.loads(tags)), summary, content, published,
                                    DateFlag(date_flag), language, content_hash,
                                    author), json.loads(rules)
            after = rows[-1][0]

    def retag(self, changes: Sequence[tuple[str, str, Sequence[str]]]) -> int:
        """Set items' rules: (id, the content hash they were judged on, rules). An item
        edited since keeps what its poll gave it. One transaction; returns how many."""
        try:
            with self._write() as c:
                before = c.total_changes
                c.executemany("UPDATE items SET rules = ? WHERE id = ? AND content_hash = ?",
                              [(_json_list(rules), i, h) for i, h, rules in changes])
                return c.total_changes - before
        except sqlite3.Error as e:
            raise self._failure("retag items", e) from e

    # -- reads for people ----------------------------------------------------------------

    def items(self, *, source: str | None = None, rule: str | None = None,
              since: str | None = None, limit: int | None = None,
              ref: str | None = None, text: str | None = None) -> list[dict[str, Any]]:
        """Stored items, newest first (see iter_items), as a list."""
        return list(self.iter_items(source=source, rule=rule, since=since, limit=limit,
                                    ref=ref, text=text))

    def iter_items(self, *, source: str | None = None, rule: str | None = None,
                   since: str | None = None, limit: int | None = None,
                   ref: str | None = None, text: str | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Stored items, newest first, read as they are consumed: a dump of a million items
        holds one at a time. `source` matches any source that has seen the item, `ref` an
        item's id or its canonical URL, `text` items whose title, category, summary or
        content hold each of its words (in any case, any script; see search_terms)."""
        where, args = [], []
        for wanted, term in search_terms(text or ""):
            where.append(("" if wanted else "NOT ") + "hv_has(i.title || ' ' || coalesce("
                         "i.category, '') || ' ' || i.summary || ' ' || i.content, ?)")
            args.append(term)
        if ref:
            where.append("(i.id = ? OR i.url = ?)")
            args += [ref, ref]
        if source:
            where.append("i.id IN (SELECT item_id FROM sightings WHERE source = ?)")
            args.append(source)
        if rule:
            where.append("EXISTS (SELECT 1 FROM json_each(i.rules) WHERE value = ?)")
            args.append(rule)
        if since:
            where.append("i.published >= ?")
            args.append(since)
        sql = ("SELECT i.*, (SELECT json_group_array(source) FROM (SELECT DISTINCT source FROM"
               " sightings WHERE item_id = i.id ORDER BY source)) AS sources FROM items i")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY i.published DESC, i.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        try:
            for r in self._iter_query(sql, args):
                for k in ("tags", "rules", "sources"):
                    r[k] = json.loads(r[k]) if r[k] else []
                yield r
        except sqlite3.Error as e:
            raise self._failure("read items", e) from e

    def item_versions(self, item_id: str) -> list[dict[str, Any]]:
        """What an edited item looked like before each edit, oldest first."""
        return self.versions_of([item_id]).get(item_id, [])

    @_guarded("read item versions")
    def versions_of(self, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """item_versions for several items at once (a delivery pass's edits), each item's
        oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        ids = sorted(set(item_ids))
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            for row in self._query(f"SELECT * FROM item_versions WHERE item_id IN"
                                   f" ({_marks(len(chunk))}) ORDER BY item_id, version", chunk):
                out.setdefault(row["item_id"], []).append(row)
        return out

    @_guarded("read the sources")
    def sources(self) -> list[dict[str, Any]]:
        """Each stored source's health, with the number of items it has seen and what its
        latest poll warned of (a feed that moved, a malformed one read all the same)."""
        # last_new: when the source last brought an item it had not given before (its
        # baseline's items count as of the baseline): a feed that stopped still answers;
        # last_new_item: the same, but none when that was its baseline; last_edit: a watched
        # page's news, its last edit (one item, so one lookup by the sightings' key)
        return list(self._query(
            "SELECT s.*, coalesce(g.items, 0) AS items, g.last_new,"
            " nullif(g.last_new, s.baseline_at) AS last_new_item,"
            " CASE s.kind WHEN 'page' THEN (SELECT max(i.updated_at) FROM sightings w"
            "  JOIN items i ON i.id = w.item_id WHERE w.source = s.name) END AS last_edit,"
            " (SELECT f.warning FROM fetch_log f WHERE f.source = s.name"
            "  ORDER BY f.at DESC, f.id DESC LIMIT 1) AS last_warning"
            " FROM sources s LEFT JOIN (SELECT source, count(*) AS items,"
            "  max(first_seen) AS last_new FROM sightings GROUP BY source) g"
            " ON g.source = s.name ORDER BY s.name"))

    def outbox(self, status: str | None = None,
               ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Outbox rows, oldest first (see iter_outbox), as a list."""
        return list(self.iter_outbox(status, ids))

    def iter_outbox(self, status: str | None = None,
                    ids: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Outbox rows, oldest first: all, or those in `status`, or those with these ids;
        read as they are consumed (the history of sent rows grows with the news)."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if ids is not None:
            where.append(f"id IN ({_marks(len(ids))})")
            args.extend(ids)
        sql = "SELECT * FROM outbox" + (" WHERE " + " AND ".join(where) if where else "")
        try:
            yield from self._iter_query(sql + " ORDER BY created_at, rowid", args)
        except sqlite3.Error as e:
            raise self._failure("read the outbox", e) from e

    @_guarded("move notifications")
    def move_notifications(self, old: str, new: str, now: datetime,
                           new_id: Callable[[str, str, str], str]) -> tuple[int, int]:
        """Give notifier `old`'s pending and dead rows to `new`, due now, each under the id
        `new_id(item_id, event, ref)` (ids derive from the unique key): (moved, dropped),
        a row `new` has already being dropped rather than sent twice."""
        with self._write() as c:
            dropped = c.execute(
                "DELETE FROM outbox WHERE notifier = ? AND status IN ('pending', 'dead')"
                " AND EXISTS (SELECT 1 FROM outbox n WHERE n.notifier = ?"
                " AND n.item_id IS outbox.item_id AND n.event = outbox.event"
                " AND n.ref = outbox.ref)", (old, new)).rowcount
            rows = c.execute("SELECT id, item_id, event, ref FROM outbox WHERE notifier = ?"
                             " AND status IN ('pending', 'dead')", (old,)).fetchall()
            c.executemany("UPDATE outbox SET id = ?, notifier = ?, status = 'pending',"
                          " attempts = 0, next_attempt_at = ?, last_error = NULL,"
                          " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                          [(new_id(item_id, event, ref), new, iso_utc(now), row_id)
                           for row_id, item_id, event, ref in rows])
        return len(rows), dropped

    @_guarded("drop notifications")
    def drop_notifications(self, notifier: str) -> tuple[int, int]:
        """Delete `notifier`'s pending and dead rows (its sent ones stay, as history):
        (pending, dead) dropped."""
        with self._write() as c:
            counts = dict(c.execute("SELECT status, count(*) FROM outbox WHERE notifier = ?"
                                    " AND status IN ('pending', 'dead') GROUP BY status",
                                    (notifier,)).fetchall())
            c.execute("DELETE FROM outbox WHERE notifier = ? AND status IN ('pending', 'dead')",
                      (notifier,))
        return counts.get("pending", 0), counts.get("dead", 0)

    @_guarded("read the outbox")
    def pending_by_notifier(self) -> dict[str, int]:
        """How many rows wait for each notifier (one indexed count)."""
        return dict(self.conn.execute("SELECT notifier, count(*) FROM outbox"
                                      " WHERE status = 'pending' GROUP BY notifier").fetchall())

    @_guarded("read the outbox")
    def next_due(self, after: datetime) -> datetime | None:
        """When the first pending row due later than `after` comes due (a retry's backoff,
        a notifier's `at`); None when none is."""
        row = self.conn.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
            " AND next_attempt_at > ? AND notifier NOT IN (SELECT name FROM notifier_state"
            " WHERE disabled_at IS NOT NULL)", (iso_utc(after),)).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def forget(self, sources: Sequence[str], *, dry_run: bool = False) -> list[Forgotten]:
        """Delete all the database holds of these sources, in one transaction: their items,
        with their versions and notifications, their sightings, log and health rows. An
        item another source has seen too is kept, and becomes that source's. Nothing is
        deleted in a dry run, nor when any of them has nothing stored (see `stored`)."""
        results: list[Forgotten] = []
        try:
            with self._write() as c:
                results = [self._forget(c, source) for source in sources]
                if dry_run or not all(f.stored for f in results):
                    raise _Undo
        except _Undo:
            pass
        except sqlite3.Error as e:
            raise self._failure(f"forget {', '.join(map(repr, sources))}", e) from e
        return results

    @_guarded("read the sources")
    def stored_sources(self) -> list[StoredSource]:
        """Every source the database has a row for (one small query)."""
        return [StoredSource(*row) for row in self.conn.execute(
            "SELECT name, url, kind, read_as FROM sources ORDER BY name")]

    def rename_source(self, old: str, new: str) -> None:
        """What is stored under `old` — its row, sightings, items first seen there, log and
        queued notifications — under `new` from now on, in one transaction. `new` must have
        nothing stored (StoreError, nothing changed, if it has)."""
        try:
            with self._write() as c:
                if c.execute("SELECT 1 FROM sources WHERE name = ? UNION ALL SELECT 1 FROM"
                             " sightings WHERE source = ? LIMIT 1", (new, new)).fetchone():
                    raise StoreError(f"cannot give what {old!r} stored to {new!r} in "
                                     f"{self.path}: {new!r} has data of its own", source=new)
                c.execute("UPDATE sources SET name = ? WHERE name = ?", (new, old))
                c.execute("UPDATE sightings SET source = ? WHERE source = ?", (new, old))
                c.execute("UPDATE items SET source = ? WHERE source = ?", (new, old))
                c.execute("UPDATE fetch_log SET source = ? WHERE source = ?", (new, old))
                c.execute("UPDATE outbox SET source = ? WHERE source = ?", (new, old))
                c.execute("UPDATE outbox SET item_id = ? WHERE item_id = ?",
                          (f"source:{new}", f"source:{old}"))
        except sqlite3.Error as e:
            raise self._failure(f"rename {old!r} to {new!r}", e, source=new) from e

    @staticmethod
    def _forget(c: sqlite3.Connection, source: str) -> Forgotten:
        row = c.execute("SELECT 1 FROM sources WHERE name = ?", (source,)).fetchone()
        only = [r[0] for r in c.execute(
            "SELECT DISTINCT g.item_id FROM sightings g WHERE g.source = ? AND NOT"
            " EXISTS (SELECT 1 FROM sightings o WHERE o.item_id = g.item_id"
            " AND o.source != g.source)", (source,))]
        kept = c.execute("SELECT count(DISTINCT item_id) FROM sightings WHERE source = ?",
                         (source,)).fetchone()[0] - len(only)
        versions = notes = 0
        for i in range(0, len(only), _CHUNK):
            chunk = only[i : i + _CHUNK]
            marks = _marks(len(chunk))
            versions += c.execute(f"DELETE FROM item_versions WHERE item_id IN ({marks})",
                                  chunk).rowcount
            notes += c.execute(f"DELETE FROM outbox WHERE item_id IN ({marks})", chunk).rowcount
        notes += c.execute("DELETE FROM outbox WHERE item_id = ?",
                           (f"source:{source}",)).rowcount
        c.execute("DELETE FROM sightings WHERE source = ?", (source,))
        for i in range(0, len(only), _CHUNK):
            chunk = only[i : i + _CHUNK]
            c.execute(f"DELETE FROM items WHERE id IN ({_marks(len(chunk))})", chunk)
        # a kept item first seen here is now first seen where it was seen next
        c.execute("UPDATE items SET source = (SELECT g.source FROM sightings g"
                  " WHERE g.item_id = items.id ORDER BY g.first_seen, g.source LIMIT 1)"
                  " WHERE source = ?", (source,))
        polls = c.execute("DELETE FROM fetch_log WHERE source = ?", (source,)).rowcount
        c.execute("DELETE FROM sources WHERE name = ?", (source,))
        return Forgotten(source, len(only), versions, notes, polls, kept,
                         bool(row or only or kept or polls or notes))

    @_guarded("read the outbox")
    def outbox_counts(self) -> list[tuple[str, int]]:
        return self.conn.execute(
            "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status").fetchall()

    def prune_log(self, before: datetime, batch: int = 10_000) -> int:
        """Delete the fetch-log rows written before `before`; how many went.

        Rows are appended as time passes, so the old ones are the lowest ids: finding the
        first row to keep reads only the rows that go, and a run with nothing to prune
        reads one. Deleted a batch a transaction, so a first prune of a long history
        never holds the write lock long enough to time out a poll waiting for it."""
        cutoff = iso_utc(before)
        try:
            self.flush()
            keep = self.conn.execute("SELECT id FROM fetch_log WHERE at >= ? ORDER BY id LIMIT 1",
                                     (cutoff,)).fetchone()
            end = keep[0] if keep else (self.conn.execute(
                "SELECT max(id) FROM fetch_log").fetchone()[0] or 0) + 1
            low = self.conn.execute("SELECT min(id) FROM fetch_log").fetchone()[0] or end
            removed = 0
            while low < end:
                high = min(end, low + batch)
                with self._write() as c:
                    removed += c.execute("DELETE FROM fetch_log WHERE id >= ? AND id < ?",
                                         (low, high)).rowcount
                low = high
            return removed
        except sqlite3.Error as e:
            raise self._failure("prune the fetch log", e) from e

    @_guarded("read the fetch log")
    def fetch_log(self, source: str | None = None, last: int | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
        """The log of polls, oldest first: all of it, or the `last` N (of one source, of
        one status)."""
        conds, args = [], []
        for column, value in (("source", source), ("status", status)):
            if value:
                conds.append(f"{column} = ?")
                args.append(value)
        where = "WHERE " + " AND ".join(conds) if conds else ""
        # (source, at) is indexed: one source's newest rows come straight off the index
        newest = "at DESC, id DESC" if source else "id DESC"
        if last is None:
            return self._query(f"SELECT * FROM fetch_log {where} ORDER BY id", args)
        return self._query(f"SELECT * FROM (SELECT * FROM fetch_log {where} ORDER BY {newest}"
                           " LIMIT ?) ORDER BY id", [*args, last])


__all__ = ["Forgotten", "SqliteStore", "Store", "backup_database"]
