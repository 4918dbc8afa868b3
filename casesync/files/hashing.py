"""Facts about image files (SHA-256, size, format, DICOM slice keys), computed once and cached.

Hashing streams each file in chunks on a thread pool (hashlib releases the GIL). Results are
cached in ``.casesync/cache/files.sqlite`` keyed by path with (inode, size, mtime_ns, ctime_ns),
like DVC: an unchanged file costs one ``stat`` and one row lookup, so a no-op plan stays cheap.
The ctime also changes with the file's mode and owner, so a cached file is one that was readable
when it was hashed and whose permissions have not changed since: it needs no access check.
A file whose ctime is within ``RACY_NS`` of the hashing is not cached (git's "racily clean"
entries): rewritten in the same timestamp tick, its stat would not change, and a stale hash
would stand for new content, PHI check included. It is hashed again next time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from casesync.errors import ConfigError
from casesync.files.cachedb import open_cache
from casesync.files.dicomheader import (
    SliceKeys,
    instance_number,
    position_along_normal,
    read_slice_keys,
)
from casesync.files.formats import DICOM, sniff_format
from casesync.fsutil import RACY_NS, open_regular

CHUNK_BYTES = 1024 * 1024
CACHE_SCHEMA = 3
FACTS_TABLE = "file_facts_v3"  # older tables lack the SOP UID (1) or the ctime (2): dropped


class FileFacts(NamedTuple):
    """What casesync needs to know about one file's content (a tuple: made 40,000 times per
    plan on big repos, so it must be cheap to build)."""

    sha256: str
    size: int
    format: str | None  # MIME type sniffed from the bytes; None when unknown
    instance_number: int | None = None  # DICOM only
    slice_position: float | None = None  # DICOM only: position along the slice normal
    sop_uid: str | None = None  # DICOM only: SOPInstanceUID (meta header, else dataset)


@dataclass(frozen=True)
class _Stat:
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


class FactsCache:
    """A SQLite table of file facts, valid while (inode, size, mtime_ns, ctime_ns) are unchanged."""

    def __init__(self, path: Path) -> None:
        self.connection = open_cache(
            path,
            [
                ("DROP TABLE IF EXISTS files", ()),
                ("DROP TABLE IF EXISTS file_facts", ()),
                (
                    f"CREATE TABLE IF NOT EXISTS {FACTS_TABLE} ("
                    " path TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER,"
                    " ctime_ns INTEGER, sha256 TEXT, format TEXT, instance_number INTEGER,"
                    " slice_position REAL, sop_uid TEXT, schema INTEGER)",
                    (),
                ),
            ],
        )

    def lookup_all(self) -> dict[str, tuple[Any, ...]]:
        """path -> (mtime_ns, ctime_ns, ino, sha256, size, format, instance_number,
        slice_position, sop_uid): the stat fields to compare, then the facts in ``FileFacts``
        order."""
        rows = self.connection.execute(
            "SELECT path, mtime_ns, ctime_ns, ino, sha256, size, format, instance_number,"
            f" slice_position, sop_uid FROM {FACTS_TABLE} WHERE schema = ?",
            (CACHE_SCHEMA,),
        )
        return {row[0]: row[1:] for row in rows}

    def store(self, entries: Sequence[tuple[str, _Stat, FileFacts]]) -> None:
        with self.connection:
            self.connection.executemany(
                f"INSERT OR REPLACE INTO {FACTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        path,
                        stat.ino,
                        stat.size,
                        stat.mtime_ns,
                        stat.ctime_ns,
                        facts.sha256,
                        facts.format,
                        facts.instance_number,
                        facts.slice_position,
                        facts.sop_uid,
                        CACHE_SCHEMA,
                    )
                    for path, stat, facts in entries
                ],
            )

    def close(self) -> None:
        self.connection.close()


def gather_facts(
    root: Path,
    relpaths: Sequence[str],
    cache: FactsCache | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    unreadable: set[str] | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
) -> dict[str, FileFacts]:
    """Facts for every path (posix, relative to ``root``); only new or changed files are read.

    ``progress`` is called with the byte count of each file as it is hashed. With
    ``unreadable``, a new or changed file this process may not read is added to it and left
    out of the result (for a located validation problem) instead of stopping with an error.
    """
    started_ns = clock_ns()
    cached = cache.lookup_all() if cache else {}
    result: dict[str, FileFacts] = {}
    todo: list[tuple[str, _Stat]] = []
    prefix = f"{root}{os.sep}"
    stat, make = os.stat, FileFacts._make
    for relpath in dict.fromkeys(relpaths):  # the hot loop of a no-op plan: keep it plain
        info = stat(prefix + relpath)
        row = cached.get(relpath)
        if (
            row is not None
            and row[0] == info.st_mtime_ns
            and row[1] == info.st_ctime_ns
            and row[2] == info.st_ino
            and row[4] == info.st_size
        ):
            result[relpath] = make(row[3:])
        elif unreadable is not None and not os.access(prefix + relpath, os.R_OK):
            unreadable.add(relpath)
        else:
            todo.append(
                (relpath, _Stat(info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
            )
    if not todo:
        return result
    pool_size = workers or min(32, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="hash") as pool:
        computed = list(pool.map(lambda item: _read(root, item[0], progress), todo))
    for (relpath, _), facts in zip(todo, computed, strict=True):
        result[relpath] = facts
    if cache:
        settled_ns = started_ns - RACY_NS
        cache.store(
            [
                (relpath, stat, facts)
                for (relpath, stat), facts in zip(todo, computed, strict=True)
                if stat.ctime_ns < settled_ns
            ]
        )
    return result


def _read(root: Path, relpath: str, progress: Callable[[int], None] | None) -> FileFacts:
    try:
        return compute_facts(root / relpath, progress)
    except OSError as exc:  # vanished or unreadable since it was listed
        raise ConfigError(
            f"cannot read {relpath}: {exc.strerror or exc}", hint="check the file and rerun"
        ) from None


def compute_facts(path: Path, progress: Callable[[int], None] | None = None) -> FileFacts:
    """Hash one file in chunks, sniff its format, and read DICOM slice keys from its header."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        chunk = handle.read(CHUNK_BYTES)
        fmt = sniff_format(chunk) if chunk else None
        keys = read_slice_keys(chunk, len(chunk) < CHUNK_BYTES) if fmt == DICOM else None
        size = 0
        while chunk:
            digest.update(chunk)
            size += len(chunk)
            chunk = handle.read(CHUNK_BYTES)
    if progress:
        progress(size)
    if keys is None and fmt == DICOM:
        keys = dicom_slice_keys(path)  # an encoding the quick reader leaves to pydicom
    instance, position, sop_uid = keys or (None, None, None)
    return FileFacts(digest.hexdigest(), size, fmt, instance, position, sop_uid)


def dicom_slice_keys(path: Path) -> SliceKeys:
    """InstanceNumber, the position along the slice normal and the SOPInstanceUID, from the
    header only."""
    import pydicom  # imported lazily: plain-image repos never pay for it

    try:
        header = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=[
                "InstanceNumber",
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "SOPInstanceUID",
            ],
        )
    except Exception:  # unreadable headers are reported by validation and the PHI gate
        return None, None, None
    value = header.get("InstanceNumber")
    instance = instance_number(str(value)) if value is not None else None
    position = _position_along_normal(
        header.get("ImagePositionPatient"), header.get("ImageOrientationPatient")
    )
    meta = getattr(header, "file_meta", None)
    sop_uid = (meta.get("MediaStorageSOPInstanceUID") if meta else None) or header.get(
        "SOPInstanceUID"
    )
    return instance, position, str(sop_uid) if sop_uid else None


def _position_along_normal(position: object, orientation: object) -> float | None:
    try:
        ipp = [float(v) for v in position]  # type: ignore[attr-defined]
        iop = [float(v) for v in orientation]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return position_along_normal(ipp, iop)
