"""The last plan, reused while nothing it was computed from has changed: a no-op ``casesync
plan`` at about the cost of a stat walk, the way ``git status`` trusts its index.

The key is a digest over the lstat (mode, size, mtime, ctime, inode) of every entry in the
project (``.git`` folders and casesync's state folder aside), the lockfile, the login file, the
settings that choose the server, and the files of casesync and of the libraries validation
uses. ctime cannot be set by hand and moves on every write, so an edit that restores the old
size and mtime still misses. A snapshot is only stored when every ctime in it is older than
``RACY_NS``: a file written in the same clock tick as the walk (or on a file system with
two-second timestamps) could change again without its stat changing, as git's "racily clean"
entries can. The stored plan is JSON read by a decoder that knows only the plan's own classes:
a memo file committed by a hostile pull request can at worst miss, never run code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import operator
import os
import stat
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casesync import __version__
from casesync.errors import ConfigError
from casesync.fsutil import RACY_NS, atomic_write, read_regular, state_folder
from casesync.settings import STATE_DIR
from casesync.sync import plan as plan_module
from casesync.sync.plan import Plan

MEMO_FORMAT = 1
MEMO_FILE = "plan.json"
MEMO_LIMIT = 256 * 1024 * 1024  # a plan of 100,000 uploads is ~10 MB; anything bigger is not ours
LIBRARIES = ("yaml", "jsonschema", "pydicom", "markdown_it", "nh3")  # validation's results
# git rewrites its folder on every status; the state folder holds caches and this memo
PROJECT_SKIPPED = frozenset({".git", STATE_DIR})
GIT_ONLY = frozenset({".git"})
CODE_SKIPPED = frozenset({"__pycache__"})  # written by the interpreter as it imports
# POSIX: listing and stat relative to an open folder, and a ctime that is a change time (on
# Windows it is the creation time, so a rewrite could go unseen): elsewhere plan always computes
FD_WALK = os.listdir in os.supports_fd and os.stat in os.supports_dir_fd and os.name == "posix"
# what of an entry's lstat goes into the digest, five numbers each (ctime the fourth)
STAT_KEY = operator.attrgetter("st_mode", "st_size", "st_mtime_ns", "st_ctime_ns", "st_ino")


@dataclass(frozen=True)
class Snapshot:
    """What the plan's inputs looked like when the walk ran."""

    digest: str
    newest_ctime_ns: int
    taken_ns: int

    @property
    def trusted(self) -> bool:
        """Nothing changed within ``RACY_NS`` of the walk: its stat cannot hide a later write."""
        return self.newest_ctime_ns < self.taken_ns - RACY_NS


def snapshot(
    root: Path,
    extra_files: Iterable[Path],
    settings: Mapping[str, str | None],
    clock: Callable[[], int] = time.time_ns,
) -> Snapshot | None:
    """Walk the project and digest it with ``extra_files`` and ``settings``; None when some
    folder cannot be listed or changes under the walk, or off POSIX (no memo to trust)."""
    if not FD_WALK:
        return None
    taken = clock()
    names: list[str] = []
    numbers = array("q")
    try:
        _walk(str(root), names, numbers, PROJECT_SKIPPED, GIT_ONLY)
        for path in extra_files:
            names.append(str(path))
            _stat_into(numbers, path)
        code = Path(__file__).resolve().parent.parent
        names.append(str(code))
        _walk(str(code), names, numbers, CODE_SKIPPED, CODE_SKIPPED)
        for origin in _library_origins():
            names.append(origin)
            _stat_into(numbers, Path(origin))
    except OSError:
        return None
    reader = [getattr(os, name, lambda: None)() for name in ("geteuid", "getegid")]
    digest = hashlib.sha256()  # reader: whether a file can be read depends on who asks
    digest.update(json.dumps([__version__, reader, dict(settings)], sort_keys=True).encode())
    digest.update("\0".join(names).encode())
    digest.update(numbers.tobytes())
    newest = max(numbers[3::5], default=0)
    return Snapshot(digest.hexdigest(), newest, taken)


def _walk(
    top: str, names: list[str], numbers: array[int], skip: frozenset[str], below: frozenset[str]
) -> None:
    """Every entry below ``top``, folder by folder, without following symlinks; names in
    ``skip`` are left out whole in ``top``, names in ``below`` in every folder under it. A
    stack, not recursion: a hostile tree may be thousands of folders deep."""
    pending = [(top, skip)]
    while pending:
        folder, excluded = pending.pop()
        names.append(folder)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            entries = [name for name in os.listdir(fd) if name not in excluded]
            for name in entries:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                numbers.extend(STAT_KEY(info))
                if stat.S_ISDIR(info.st_mode):
                    pending.append((f"{folder}/{name}", below))
        finally:
            os.close(fd)
        names.extend(entries)


def _stat_into(numbers: array[int], path: Path) -> None:
    try:
        numbers.extend(STAT_KEY(os.lstat(path)))
    except FileNotFoundError:
        numbers.extend((0, 0, 0, 0, 0))


def _library_origins() -> list[str]:
    """The files the libraries load from: an upgrade moves their stat (found without importing)."""
    origins = []
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        origins.append(spec.origin if spec is not None and spec.origin else f"missing:{name}")
    return origins


def load(root: Path, current: Snapshot) -> Plan | None:
    """The plan stored for exactly ``current``, or None (no memo, another snapshot, unreadable)."""
    if not current.trusted:
        return None
    try:
        document = json.loads(read_regular(_memo_path(root), MEMO_LIMIT, follow=False))
        if document.get("format") != MEMO_FORMAT or document.get("digest") != current.digest:
            return None
        plan = decode(document["plan"])
    except (OSError, ConfigError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # ConfigError: a symlink, FIFO or huge file there, never followed or read
    return plan if isinstance(plan, Plan) else None


def save(root: Path, taken: Snapshot, plan: Plan) -> None:
    """Store ``plan`` for ``taken`` when the snapshot can be trusted; a failure only costs speed."""
    if not taken.trusted or plan.checked_at is not None:  # a listing read now is not an input
        return
    # ConfigError: a symlink there (never written through); TypeError: a class it cannot hold
    with contextlib.suppress(OSError, ConfigError, TypeError):
        document = {"format": MEMO_FORMAT, "digest": taken.digest, "plan": encode(plan)}
        atomic_write(_memo_path(root), json.dumps(document), durable=False)


def _memo_path(root: Path) -> Path:
    return state_folder(root, "cache") / MEMO_FILE


# The plan's classes, the only ones the decoder builds.
_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in vars(plan_module).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and cls.__module__ == plan_module.__name__
}


def encode(value: Any) -> Any:
    """JSON data for a plan: dataclasses tagged by class name, tuples as lists, frozensets and
    int-keyed dicts tagged; anything else the plan does not hold is a TypeError."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _CLASSES.get(name) is not type(value):
            raise TypeError(f"{name} is not a plan class")
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": name, "fields": fields}
    if isinstance(value, tuple):
        return [encode(item) for item in value]
    if isinstance(value, frozenset):
        return {"frozenset": sorted(encode(item) for item in value)}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, str | int | bool):
        return value
    raise TypeError(f"a plan does not hold {type(value).__name__}")


def decode(data: Any) -> Any:
    """The inverse of ``encode``; a class or shape it does not know is a ValueError."""
    if isinstance(data, list):
        return tuple(decode(item) for item in data)
    if isinstance(data, dict):
        if set(data) == {"class", "fields"}:
            cls = _CLASSES.get(data["class"])
            if cls is None or not isinstance(data["fields"], dict):
                raise ValueError(f"unknown class {data['class']!r}")
            return cls(**{name: decode(value) for name, value in data["fields"].items()})
        if set(data) == {"frozenset"}:
            return frozenset(decode(item) for item in data["frozenset"])
        if set(data) == {"dict"}:
            return {decode(k): decode(v) for k, v in data["dict"]}
        raise ValueError("unknown object in the plan memo")
    if data is None or isinstance(data, str | int | bool):
        return data
    raise ValueError(f"a plan does not hold {type(data).__name__}")
