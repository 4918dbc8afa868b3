"""The SQLite files under ``.casesync/cache/``: caches only, so a damaged one is rebuilt.

A cache that cannot be read (a disk that filled up, a file truncated by a crash, one written by
something else) must never stop validate or plan: it is deleted and started afresh, and the
worst that happens is that files are hashed and checked again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from casesync.fsutil import refuse_symlink

Statement = tuple[str, tuple[object, ...]]


def open_cache(
    path: Path, statements: Sequence[Statement], *, threads: bool = False
) -> sqlite3.Connection:
    """Connect and run ``statements`` (schema set-up); on a damaged file, start again empty.

    Callers under ``.casesync`` pass a folder made by ``fsutil.state_folder`` (no symlink)."""
    for companion in ("", "-journal", "-wal", "-shm"):  # sqlite would follow a symlink
        refuse_symlink(path.with_name(path.name + companion))
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        connection = sqlite3.connect(path, timeout=30, check_same_thread=not threads)
        try:
            with connection:
                for sql, parameters in statements:
                    connection.execute(sql, parameters)
            return connection
        except sqlite3.DatabaseError:
            connection.close()
            if attempt == 2:
                raise
            for leftover in (path, path.with_name(path.name + "-journal")):
                leftover.unlink(missing_ok=True)
    raise AssertionError("unreachable")
