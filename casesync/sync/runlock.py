"""One apply (or resolve) at a time per repository: ``.casesync/apply.lock`` with its owner.

Two applies on one repo would race on the journal and the lockfile and could create the same
case twice, so a second one is refused at once, showing who holds the lock. The lock is an OS
file lock (flock), which the kernel releases when its process dies however it dies, so a
lock left by a killed apply is simply taken over (with a notice naming the dead owner); the
owner written in the file is only there to be shown.

flock is POSIX only: on Windows apply and resolve stop with a clear error (validate and plan
never import this module).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from casesync.errors import ConfigError, Refused, StateWriteError
from casesync.fsutil import open_nofollow, state_folder
from casesync.settings import STATE_DIR
from casesync.sync.journal import utc_now

LOCK_NAME = "apply.lock"


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    command: str
    started_at: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}: {self.command}"


def current_owner(command: str | None = None) -> Owner:
    return Owner(os.getpid(), socket.gethostname(), command or " ".join(sys.argv), utc_now())


def read_owner(path: Path) -> Owner | None:
    """The owner written in the lock file; None when it holds none (free or never used)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    try:
        return Owner(**json.loads(text))
    except (ValueError, TypeError):
        return Owner(0, "?", "unreadable lock file", "?")


@contextmanager
def run_lock(
    root: Path, notice: Callable[[str], None], command: str | None = None
) -> Iterator[Owner]:
    """Hold the repository's apply lock for the duration of the block."""
    fcntl = _fcntl()
    path = root / STATE_DIR / LOCK_NAME
    try:
        fd = open_nofollow(state_folder(root) / LOCK_NAME, os.O_RDWR | os.O_CREAT)  # no symlink
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = read_owner(path)
            shown = owner.describe() if owner else "an owner still starting"
            raise Refused(
                f"another casesync apply is running on this repository: {shown}",
                hint="wait for it to finish (CI: put apply in one concurrency group)",
            ) from None
        previous = read_owner(path)
        if previous is not None:
            notice(f"taking over the apply lock of a process that is gone ({previous.describe()})")
        me = current_owner(command)
        try:
            _write(fd, json.dumps(asdict(me)))
        except OSError as exc:
            raise _unwritable(path, exc) from None
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):  # a stale owner only makes a notice next time
                _write(fd, "")  # released cleanly: nothing to take over next time
    finally:
        os.close(fd)  # also releases the flock


def _fcntl() -> ModuleType:
    try:
        import fcntl
    except ImportError:  # Windows
        raise ConfigError(
            "apply and resolve need a POSIX system (Linux, macOS): the apply lock is a flock",
            hint="on Windows run them inside WSL; validate and plan work as they are",
        ) from None
    return fcntl


def _unwritable(path: Path, exc: OSError) -> StateWriteError:
    return StateWriteError(
        f"cannot write {path} ({exc.strerror or exc})",
        hint="free disk space (or fix the folder's permissions), then run again; nothing was sent",
    )


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    os.fsync(fd)
