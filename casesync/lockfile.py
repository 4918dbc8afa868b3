"""casesync.lock: the record of what exists remotely, committed to git.

It holds remote ids that cannot be regenerated, so it is written atomically (temp file, fsync,
rename, fsync the folder), refused when corrupt or from a newer casesync (and then never
overwritten), and serialised deterministically so git diffs stay readable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casesync.errors import LockfileError
from casesync.fsutil import atomic_write, read_regular

LOCK_VERSION = 1


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


@dataclass
class LockedStudy:
    study_id: int
    position: int
    key: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    series: list[LockedSeries] = field(default_factory=list)


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

    def uploaded_hashes(self) -> set[str]:
        """Hashes whose bytes the server already holds (attached to some series)."""
        return {
            file.sha256
            for case in self.cases.values()
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
            "cases": {key: _case_document(case) for key, case in self.cases.items()},
        }
        return _layout(document, "") + "\n"


def _case_document(case: LockedCase) -> dict[str, Any]:
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
                    for series in study.series
                ],
            }
            for study in case.studies
        ],
    }


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockfileError(
            f"{path.name} is unreadable or corrupt ({exc})",
            hint="restore it from git (git checkout -- casesync.lock); never delete it",
        ) from None
    lock = parse_lock(document, path.name)
    lock.source_digest = hashlib.sha256(raw).hexdigest()
    return lock


def parse_lock(document: Any, name: str = "casesync.lock") -> Lock:
    if not isinstance(document, dict) or "version" not in document:
        raise LockfileError(f"{name} is not a casesync lockfile", hint="restore it from git")
    version = document["version"]
    if not isinstance(version, int) or version > LOCK_VERSION:
        raise LockfileError(
            f"{name} has version {version!r}, newer than this casesync understands",
            hint="upgrade casesync (pip install -U casesync)",
        )
    try:
        return Lock(
            api_url=str(document["api_url"]),
            cases={key: _case(value) for key, value in document.get("cases", {}).items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise LockfileError(
            f"{name} is corrupt (bad entry: {exc})", hint="restore it from git"
        ) from None


def _case(raw: dict[str, Any]) -> LockedCase:
    return LockedCase(
        case_id=int(raw["case_id"]),
        created_at=str(raw.get("created_at", "")),
        fields=dict(raw.get("fields", {})),
        upload_finished=bool(raw.get("upload_finished", False)),
        studies=[_study(study) for study in raw.get("studies", [])],
    )


def _study(raw: dict[str, Any]) -> LockedStudy:
    return LockedStudy(
        study_id=int(raw["study_id"]),
        position=int(raw["position"]),
        key=raw.get("key"),
        fields=dict(raw.get("fields", {})),
        series=[_series(series) for series in raw.get("series", [])],
    )


def _series(raw: dict[str, Any]) -> LockedSeries:
    return LockedSeries(
        content_id=str(raw["content_id"]),
        key=raw.get("key"),
        job_id=raw.get("job_id"),
        series_id=raw.get("series_id"),
        status=raw.get("status"),
        fields=dict(raw.get("fields", {})),
        files=[LockedFile(*file) for file in raw.get("files", [])],
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


def remove_stale_temp_files(path: Path) -> None:
    """Temp files a killed writer left beside ``path`` (never committed by mistake).

    Only for a caller holding the repository's apply lock: no other writer can be mid-write.
    """
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
