"""One apply (or resolve) at a time per repository: ``.casesync/apply.lock`` with its owner.

Two applies on one repo would race on the journal and the lockfile and could create the same
case twice, so a second one is refused at once, showing who holds the lock. A lock left by a
process that died on this host is taken over (with a notice); one from another host is never
guessed about.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from casesync.errors import Refused
from casesync.journal import utc_now
from casesync.settings import STATE_DIR

LOCK_NAME = "apply.lock"


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    command: str
    started_at: str
    proc_start: str | None = None  # /proc start time: tells a reused pid from the owner

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}: {self.command}"


def current_owner(command: str | None = None) -> Owner:
    pid = os.getpid()
    return Owner(
        pid, socket.gethostname(), command or " ".join(sys.argv), utc_now(), _proc_start(pid)
    )


def _proc_start(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (Linux); None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def is_alive(owner: Owner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path("/proc").is_dir():
        started = _proc_start(owner.pid)
        return started is not None and (owner.proc_start in (None, started))
    return True


def read_owner(path: Path) -> Owner | None:
    try:
        return Owner(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Owner(0, "?", "unreadable lock file", "?")


@contextmanager
def run_lock(
    root: Path, notice: Callable[[str], None], command: str | None = None
) -> Iterator[Owner]:
    """Hold the repository's apply lock for the duration of the block."""
    path = root / STATE_DIR / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = current_owner(command)
    while not _try_create(path, me):
        owner = read_owner(path)
        if owner is None:
            continue  # released between our attempt and the read
        if owner.host != me.host or is_alive(owner):
            raise Refused(
                f"another casesync apply holds {path}: {owner.describe()}",
                hint="wait for it to finish; if that process is gone for good, delete the file",
            )
        notice(f"taking over the apply lock left by a process that is gone ({owner.describe()})")
        path.unlink(missing_ok=True)
    try:
        yield me
    finally:
        if read_owner(path) == me:
            path.unlink(missing_ok=True)


def _try_create(path: Path, owner: Owner) -> bool:
    """Write the owner to a temp file, then hard-link it into place: never a torn lock."""
    fd, temp = tempfile.mkstemp(prefix=".apply.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(owner), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
