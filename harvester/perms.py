"""Why this user cannot write a file, said so that whoever reads it can fix it: a
container run as another uid than the volume's owner, or one run by `sudo`, leaves files
the service's user may not write, and "Permission denied" alone does not say whose."""

from __future__ import annotations

import os
from pathlib import Path


def _whose(path: Path) -> str:
    st = path.stat()
    return f"it belongs to uid {st.st_uid} with mode {st.st_mode & 0o777:o}"


def _me() -> str:
    return f"this user (uid {os.getuid()})" if hasattr(os, "getuid") else "this user"


def unwritable(path: Path, *, wal: bool = True) -> str | None:
    """Why this user cannot write `path` or create files beside it; None when the
    permissions are not the problem. `wal`: `path` is a SQLite database, whose -wal and
    -shm files live in the same folder."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return f"the file system holding {path.parent} is mounted read-only"
        beside = [path.with_name(path.name + end) for end in ("-wal", "-shm")] if wal else []
        for file in (path, *beside):
            if file.exists() and not os.access(file, os.R_OK | os.W_OK):
                what = "the file" if file == path else f"its {file.name}"
                return f"{_me()} may not write {what} ({_whose(file)})"
        folder = path.parent
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
            why = (f", where SQLite keeps {path.name}-wal and {path.name}-shm beside the "
                   "database") if wal else ""
            return f"{_me()} may not write its folder {folder} ({_whose(folder)}){why}"
    except OSError:
        return None
    return None


__all__ = ["unwritable"]
