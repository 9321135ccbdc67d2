"""A database, folder or lock file this user may not write: a container run under another
uid than its volume's owner, or one `sudo harvester once`, leaves such files behind.

Writing commands say whose the file is and what its mode is, in one line; the commands
that only read (`items`, `sources`, `log`, `outbox`) still read; nothing stored is
changed. Root may write any file, so as root the CLI runs without the capabilities that
let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): bound by the files' modes as their owner.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.perms import unwritable

from .conftest import feed_source, http_fast, make_config, run_cli

_CAPS = "-dac_override,-dac_read_search"
BOUND = ("setpriv", "--bounding-set", _CAPS, "--inh-caps", _CAPS) if os.geteuid() == 0 else ()
if BOUND and not shutil.which("setpriv"):
    pytest.skip("running as root without setpriv (util-linux): no way to be bound by modes",
                allow_module_level=True)


def bound(*args: str) -> subprocess.CompletedProcess[str]:
    """`harvester ARGS` bound by the files' modes, even when the tests run as root."""
    return run_cli(*args, prefix=BOUND)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder nobody can reach (pytest's own tmp folder is its owner's alone)."""
    path = Path(tempfile.mkdtemp(prefix="hv-perms-"))
    path.chmod(0o755)
    yield path
    for folder, _, _ in os.walk(path):
        os.chmod(folder, 0o755)
    shutil.rmtree(path)


@pytest.fixture
def polled(server, icmpd_a, open_dir) -> tuple[str, Path]:
    """A config whose database, in its own folder `data`, holds one poll of the feed."""
    db = open_dir / "data" / "h.db"
    http = http_fast().replace('path = "h.db"', 'path = "data/h.db"')
    cfg = make_config(open_dir, http + feed_source("icmpd", icmpd_a), rules=False)
    cfg.chmod(0o644)
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in db.parent.iterdir()) == ["h.db", "h.db.sources.lock"]
    db.parent.chmod(0o755)
    return str(cfg), db


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


READS = (("items", "--json"), ("sources",), ("log",), ("outbox",))


def test_a_database_file_this_user_may_not_write_is_named_and_still_read(polled):
    cfg, db = polled
    before = {args: run_cli("--config", cfg, *args) for args in READS}
    assert len(before["items", "--json"].stdout.splitlines()) == 7
    url = json.loads(before["items", "--json"].stdout.splitlines()[0])["url"]
    before["show", url] = run_cli("--config", cfg, "show", url)
    db.chmod(0o444)
    stored = digest(db)
    r = bound("--config", cfg, "once")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        f"harvester: error: cannot open database {db}: this user (uid {os.getuid()}) may not "
        f"write the file (it belongs to uid {os.getuid()} with mode 444)\n"))
    for args in before:
        r = bound("--config", cfg, *args)
        was = before[args]
        assert (r.returncode, r.stdout, r.stderr) == (0, was.stdout, was.stderr), args
    assert digest(db) == stored


def test_a_folder_this_user_may_not_write_is_named_and_its_database_still_read(polled):
    """SQLite keeps a WAL database's -wal and -shm files beside it, so a writable file in a
    read-only folder is no more writable than a read-only one."""
    cfg, db = polled
    before = run_cli("--config", cfg, "items", "--json").stdout
    db.chmod(0o666)
    db.parent.chmod(0o555)
    stored = digest(db)
    r = bound("--config", cfg, "once")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        f"harvester: error: cannot open database {db}: this user (uid {os.getuid()}) may not "
        f"write its folder {db.parent} (it belongs to uid {os.getuid()} with mode 555), "
        "where SQLite keeps h.db-wal and h.db-shm beside the database\n"))
    r = bound("--config", cfg, "items", "--json")
    assert (r.returncode, r.stdout, r.stderr) == (0, before, "")
    assert digest(db) == stored
    assert sorted(p.name for p in db.parent.iterdir()) == ["h.db", "h.db.sources.lock"]
    # and a backup into that folder is refused before a copy is begun
    r = bound("--config", cfg, "backup", str(db.parent / "copy.db"))
    assert (r.returncode, r.stderr) == (1, (
        f"harvester: error: cannot back up to {db.parent / 'copy.db'}: this user "
        f"(uid {os.getuid()}) may not write its folder {db.parent} (it belongs to uid "
        f"{os.getuid()} with mode 555)\n"))


def test_a_database_folder_this_user_may_not_create_is_named(polled):
    cfg, db = polled
    db.parent.chmod(0o555)
    elsewhere = db.parent / "sub" / "h.db"
    Path(cfg).write_text(Path(cfg).read_text().replace('"data/h.db"', '"data/sub/h.db"'))
    r = bound("--config", cfg, "once")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        f"harvester: error: cannot open database {elsewhere}: cannot create the folder "
        f"{elsewhere.parent}: Permission denied\n"))
    # nothing is stored there yet, and reading it needs no folder: said as for a new config
    r = bound("--config", cfg, "items")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no items\n")
    assert not elsewhere.parent.exists()


@pytest.mark.parametrize(("command", "lock"), [(("once",), "h.db.sources.lock"),
                                               (("run",), "h.db.lock")])
def test_a_lock_file_this_user_may_not_write_is_named(polled, command, lock):
    """The database writable, its lock file left by another user (`sudo harvester once`)."""
    cfg, db = polled
    db.parent.chmod(0o777)
    db.chmod(0o666)
    (db.parent / lock).touch()
    (db.parent / lock).chmod(0o444)
    r = bound("--config", cfg, *command)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        f"harvester: error: cannot open the lock file {db.parent / lock}: this user "
        f"(uid {os.getuid()}) may not write the file (it belongs to uid {os.getuid()} with "
        "mode 444)\n"))


def test_a_wal_file_this_user_may_not_write_is_named(polled):
    """A -wal file left by another user's process stops writes as the database itself
    would; read-only, the database is still read."""
    cfg, db = polled
    before = run_cli("--config", cfg, "items", "--json").stdout
    db.chmod(0o666)
    wal = db.parent / "h.db-wal"
    wal.write_bytes(b"")
    wal.chmod(0o444)
    assert unwritable(db, wal=False) is None
    r = bound("--config", cfg, "once")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.endswith(
        f"{db}: this user (uid {os.getuid()}) may not write its h.db-wal (it belongs to uid "
        f"{os.getuid()} with mode 444)\n"), r.stderr
    r = bound("--config", cfg, "items", "--json")
    assert (r.returncode, r.stdout, r.stderr) == (0, before, "")
