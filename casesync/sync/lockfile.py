"""casesync.lock: the record of what exists remotely, committed to git.

It holds remote ids that cannot be regenerated, so it is written atomically (temp file, fsync,
rename, fsync the folder), refused when corrupt or from a newer casesync (and then never
overwritten), and serialised deterministically so git diffs stay readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from casesync.errors import LockfileError, StateWriteError
from casesync.fsutil import atomic_write, read_regular

LOCK_VERSION = 1
_T = TypeVar("_T")


def fingerprint(value: object) -> str:
    """A short, stable digest of a metadata value, so the lock shows which field changed."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:16]


def fingerprints(fields: dict[str, object]) -> dict[str, str]:
    return {name: fingerprint(value) for name, value in sorted(fields.items())}


@dataclass
class LockedFile:
    path: str  # relative to the project root, posix
    size: int
    sha256: str
    upload_id: int | None = None  # the upload id attached to the series


@dataclass
class LockedSeries:
    content_id: str  # digest of the ordered file hashes: the default identity
    key: str | None = None  # explicit key from the manifest, if any
    job_id: str | None = None
    series_id: int | None = None
    status: str | None = None  # last processing status seen
    fields: dict[str, str] = field(default_factory=dict)  # fingerprints of what was sent
    files: list[LockedFile] = field(default_factory=list)
    adopted: bool = False  # recorded by 'casesync adopt': it existed, its ids are unknown


@dataclass
class LockedStudy:
    study_id: int | None  # None: adopted, the id on the site is unknown
    position: int
    key: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    series: list[LockedSeries] = field(default_factory=list)
    adopted: bool = False


@dataclass
class LockedCase:
    case_id: int
    created_at: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    upload_finished: bool = False
    studies: list[LockedStudy] = field(default_factory=list)


@dataclass
class Lock:
    api_url: str
    cases: dict[str, LockedCase] = field(default_factory=dict)
    # sha256 of the file as read, so plans can cite it without re-serialising a large lock
    source_digest: str = field(default="", compare=False, repr=False)

    def digest(self) -> str:
        """Digest of the content: the file's when unchanged since loading, else recomputed."""
        return self.source_digest or hashlib.sha256(self.to_json().encode()).hexdigest()

    def uploaded_hashes(self, excluding: Collection[str] = ()) -> set[str]:
        """Hashes whose bytes the server already holds (attached to some series), leaving out
        the cases keyed in ``excluding`` (deleted on the site: their uploads went with them)."""
        return {
            file.sha256
            for key, case in self.cases.items()
            if key not in excluding
            for study in case.studies
            for series in study.series
            for file in series.files
            if file.upload_id is not None
        }

    def to_json(self) -> str:
        """Deterministic text: sorted keys, one file per line (``[path, size, sha256,
        upload_id]``), so a new series adds one line per slice and git diffs stay readable.

        Written after every create, so it must stay fast for tens of thousands of files: the
        structure is laid out here and every leaf goes through the C JSON encoder.
        """
        document = {
            "version": LOCK_VERSION,
            "api_url": self.api_url,
            "cases": {key: case_document(case) for key, case in self.cases.items()},
        }
        return _layout(document, "") + "\n"


def case_document(case: LockedCase) -> dict[str, Any]:
    """One case as the lock stores it (also what the journal records for adopt)."""
    return {
        "case_id": case.case_id,
        "created_at": case.created_at,
        "fields": case.fields,
        "upload_finished": case.upload_finished,
        "studies": [
            {
                "study_id": study.study_id,
                "position": study.position,
                "key": study.key,
                "fields": study.fields,
                "series": [
                    {
                        "content_id": series.content_id,
                        "key": series.key,
                        "job_id": series.job_id,
                        "series_id": series.series_id,
                        "status": series.status,
                        "fields": series.fields,
                        "files": [[f.path, f.size, f.sha256, f.upload_id] for f in series.files],
                    }
                    | _adopted(series.adopted)
                    for series in study.series
                ],
            }
            | _adopted(study.adopted)
            for study in case.studies
        ],
    }


def _adopted(flag: bool) -> dict[str, bool]:
    """Written only when set, so locks without adopted entries stay byte-identical."""
    return {"adopted": True} if flag else {}


def _layout(value: object, indent: str) -> str:
    """Indented JSON with sorted keys, except that a list of plain values stays on one line."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        items = (f"{inner}{_encode(key)}: {_layout(value[key], inner)}" for key in sorted(value))
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _layout(item, inner) for item in value) + f"\n{indent}]"
    return _encode(value)


# one encoder for every leaf: json.dumps with options would build a new encoder per call
_encode = json.JSONEncoder(ensure_ascii=False).encode


def load_lock(path: Path, api_url: str) -> Lock:
    """Read the lockfile, or an empty one for ``api_url`` when there is none yet."""
    if not path.exists():
        return Lock(api_url=api_url)
    try:
        raw = read_regular(path, None, str(path), follow=False)
        document = json.loads(raw)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
        raise LockfileError(
            f"{path.name} is unreadable or corrupt ({exc})",
            hint="restore it from git (git checkout -- casesync.lock); never delete it",
        ) from None
    lock = parse_lock(document, path.name)
    lock.source_digest = hashlib.sha256(raw).hexdigest()
    return lock


class BadField(ValueError):
    """A value in a state file is not what casesync writes; the message names the field."""


def want(value: Any, where: str, kind: type[_T]) -> _T:
    """``value`` when it is a ``kind`` (a bool never passes for an int), else ``BadField``."""
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise BadField(f"{where} is {_shown(value)}, not {_KIND_NAMES.get(kind, kind.__name__)}")


def want_optional(value: Any, where: str, kind: type[_T]) -> _T | None:
    return None if value is None else want(value, where, kind)


def want_id(value: Any, where: str) -> int:
    """A remote id: a positive integer (``1e400`` and ``NaN`` arrive as floats and fail)."""
    number = want(value, where, int)
    if number < 1:
        raise BadField(f"{where} is {number}, not a positive integer")
    return number


def want_fields(value: Any, where: str) -> dict[str, str]:
    fields = want(value, where, dict)
    for name, digest in fields.items():
        want(digest, f"{where}.{name}", str)
    return dict(fields)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # inf, nan
        text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


_KIND_NAMES: dict[type, str] = {
    int: "an integer",
    str: "a string",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


def parse_lock(document: Any, name: str = "casesync.lock") -> Lock:
    """The lock, with every value checked: a bad one is named, never half-used."""
    if not isinstance(document, dict) or "version" not in document:
        raise LockfileError(f"{name} is not a casesync lockfile", hint="restore it from git")
    version = document["version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_VERSION:
        raise LockfileError(
            f"{name} has version {version!r}, newer than this casesync understands",
            hint="upgrade casesync (pip install -U casesync)",
        )
    try:
        if version != LOCK_VERSION or isinstance(version, bool):
            raise BadField(f"version is {_shown(version)}; casesync writes {LOCK_VERSION}")
        cases = want(document.get("cases", {}), "cases", dict)
        lock = Lock(
            api_url=want(document.get("api_url"), "api_url", str),
            cases={key: parse_case(value, f"cases[{_shown(key)}]") for key, value in cases.items()},
        )
        _check_ids_unique(lock)
    except BadField as exc:
        raise LockfileError(
            f"{name} is corrupt: {exc}",
            hint="restore it from git (git checkout -- casesync.lock), or correct that value; "
            "never delete it",
        ) from None
    return lock


def parse_case(raw: Any, where: str) -> LockedCase:
    """One case entry, every value checked (``BadField`` names the first bad one)."""
    raw = want(raw, where, dict)
    return LockedCase(
        case_id=want_id(raw.get("case_id"), f"{where}.case_id"),
        created_at=want(raw.get("created_at", ""), f"{where}.created_at", str),
        fields=want_fields(raw.get("fields", {}), f"{where}.fields"),
        upload_finished=want(raw.get("upload_finished", False), f"{where}.upload_finished", bool),
        studies=_items(raw, "studies", where, _study),
    )


def _items(raw: dict[str, Any], name: str, where: str, parse: Callable[[Any, str], _T]) -> list[_T]:
    """The list ``raw[name]``, each item parsed with its place named (``studies[2]``)."""
    items = want(raw.get(name, []), f"{where}.{name}", list)
    return [parse(item, f"{where}.{name}[{n}]") for n, item in enumerate(items)]


def _study(raw: Any, where: str) -> LockedStudy:
    raw = want(raw, where, dict)
    adopted = want(raw.get("adopted", False), f"{where}.adopted", bool)
    study_id = raw.get("study_id")
    return LockedStudy(
        study_id=None if adopted and study_id is None else want_id(study_id, f"{where}.study_id"),
        position=want(raw.get("position"), f"{where}.position", int),
        key=want_optional(raw.get("key"), f"{where}.key", str),
        fields=want_fields(raw.get("fields", {}), f"{where}.fields"),
        series=_items(raw, "series", where, _series),
        adopted=adopted,
    )


def _series(raw: Any, where: str) -> LockedSeries:
    raw = want(raw, where, dict)
    return LockedSeries(
        content_id=want(raw.get("content_id"), f"{where}.content_id", str),
        key=want_optional(raw.get("key"), f"{where}.key", str),
        job_id=want_optional(raw.get("job_id"), f"{where}.job_id", str),
        series_id=want_optional(raw.get("series_id"), f"{where}.series_id", int),
        status=want_optional(raw.get("status"), f"{where}.status", str),
        fields=want_fields(raw.get("fields", {}), f"{where}.fields"),
        files=_files(raw, where),
        adopted=want(raw.get("adopted", False), f"{where}.adopted", bool),
    )


def _files(raw: dict[str, Any], where: str) -> list[LockedFile]:
    """``raw["files"]``: rows that are plainly well formed are taken as they are (a no-op plan
    reads tens of thousands); any other row goes through ``_file``, which names what is wrong."""
    rows = want(raw.get("files", []), f"{where}.files", list)
    files = []
    for n, row in enumerate(rows):
        if (
            type(row) is list
            and len(row) == 4
            and type(row[0]) is str
            and type(row[1]) is int
            and row[1] >= 0
            and type(row[2]) is str
            and (row[3] is None or (type(row[3]) is int and row[3] >= 1))
        ):
            files.append(LockedFile(row[0], row[1], row[2], row[3]))
        else:
            files.append(_file(row, f"{where}.files[{n}]"))
    return files


def _file(raw: Any, where: str) -> LockedFile:
    if not isinstance(raw, list) or len(raw) != 4:
        raise BadField(f"{where} is {_shown(raw)}, not [path, size, sha256, upload id]")
    path, size, sha256, upload_id = raw
    size = want(size, f"{where} size", int)
    if size < 0:
        raise BadField(f"{where} size is {size}, not a size in bytes")
    return LockedFile(
        path=want(path, f"{where} path", str),
        size=size,
        sha256=want(sha256, f"{where} sha256", str),
        upload_id=None if upload_id is None else want_id(upload_id, f"{where} upload id"),
    )


def _check_ids_unique(lock: Lock) -> None:
    """One remote object per id: a copied entry would make casesync add to the wrong case."""
    case_keys: dict[int, str] = {}
    study_keys: dict[int, str] = {}
    upload_hashes: dict[int, str] = {}
    for key, case in lock.cases.items():
        if case.case_id in case_keys:
            raise BadField(
                f"case id {case.case_id} is recorded for both {case_keys[case.case_id]} and {key}"
            )
        case_keys[case.case_id] = key
        for study in case.studies:
            if study.study_id is None:  # adopted: no id to compare
                continue
            if study.study_id in study_keys:
                raise BadField(
                    f"study id {study.study_id} is recorded twice "
                    f"({study_keys[study.study_id]} and {key})"
                )
            study_keys[study.study_id] = key
            for file in (f for series in study.series for f in series.files):
                if file.upload_id is None:
                    continue
                if upload_hashes.setdefault(file.upload_id, file.sha256) != file.sha256:
                    raise BadField(
                        f"upload id {file.upload_id} is recorded for two different contents "
                        f"(the second in {key}: {file.path})"
                    )


def check_api_url_matches(lock: Lock, api_url: str, lock_path: Path) -> None:
    """Ids from one server must never be sent to another (test ids to production)."""
    if lock.cases and lock.api_url != api_url:
        raise LockfileError(
            f"{lock_path.name} belongs to {lock.api_url}, not {api_url}",
            hint="use --lockfile to keep a separate lockfile per server",
        )


def save_lock(path: Path, lock: Lock) -> None:
    """Write atomically: a crash leaves either the old or the new file, never a torn one."""
    text = lock.to_json()
    atomic_write(path, text)
    lock.source_digest = hashlib.sha256(text.encode()).hexdigest()


def check_writable(path: Path) -> None:
    """Refuse before anything is sent when the lockfile could not be saved after a create."""
    folder = path.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError | NotADirectoryError)
        problem = "does not exist" if missing else f"cannot be written ({exc.strerror})"
        raise StateWriteError(
            f"the lockfile's folder {folder} {problem}",
            hint="create it (or fix its permissions), or pass another --lockfile; nothing was sent",
        ) from None
    os.close(fd)
    os.unlink(probe)


def remove_stale_temp_files(path: Path) -> None:
    """Temp files a killed writer left beside ``path`` (never committed by mistake).

    Only for a caller holding the repository's apply lock: no other writer can be mid-write.
    """
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
