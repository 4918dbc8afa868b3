"""The apply journal and the lockfile, kept together so no remote create is ever lost.

Creating a case, a study or a series is not idempotent, so each create is bracketed in
``.casesync/journal.jsonl``: an *intent* line (fsynced) before the request, a *done* line with
the remote id after it. Every done result is folded into casesync.lock at once (atomic write).
The intent carries the whole lock entry except the remote id, so a result can be folded in
later (after a crash, or by ``casesync resolve``) without the manifests. An intent with no
result is an outcome-unknown create: apply must settle it, never repeat it blindly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casesync.errors import LockfileError
from casesync.fsutil import atomic_write, ensure_dir, open_nofollow, refuse_symlink
from casesync.lockfile import (
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    remove_stale_temp_files,
    save_lock,
)
from casesync.settings import STATE_DIR

JOURNAL_FILE = "journal.jsonl"
KINDS = ("case", "study", "series")


def journal_path(root: Path) -> Path:
    return root / STATE_DIR / JOURNAL_FILE


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Intent:
    """A create about to be sent; ``record`` is its future lock entry minus the remote id."""

    ref: str
    kind: str  # case | study | series
    case: str  # the case key
    label: str  # "case", "study 2", "study 2 series 1"
    at: str  # ISO-8601 UTC, written before the request left
    record: dict[str, Any]

    @property
    def sent_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)

    def local_time(self) -> str:
        return self.sent_at.astimezone().strftime("%H:%M:%S")

    def describe(self) -> str:
        where = f"case {self.case}" if self.kind == "case" else f"case {self.case}, {self.label}"
        return f"{where}: a create was sent at {self.local_time()} and no answer was recorded"

    def way_out(self) -> str:
        adopt = {"case": "--case-id N", "study": "--study-id N", "series": "--series-job J"}
        return (
            f"look at the case on the site, then run 'casesync resolve {self.case} "
            f"{adopt[self.kind]}' if the {self.kind} is there, or 'casesync resolve "
            f"{self.case} --not-created' if it is not"
        )


class Journal:
    """Append-only lines, each fsynced before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        ensure_dir(self.path.parent.parent, self.path.parent)  # .casesync: not a symlink
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Every complete line; a torn last line (killed mid-write) is ignored."""
        if not self.path.exists():
            return []
        refuse_symlink(self.path)
        lines = self.path.read_text(encoding="utf-8").splitlines()
        entries = []
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    continue
                raise LockfileError(
                    f"{self.path} line {number} is corrupt",
                    hint="inspect it; never delete it while creates are unsettled",
                ) from None
            entries.append(entry)
        return entries

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the journal atomically (compaction); no entries removes it."""
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        text = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
        atomic_write(self.path, text)


class Ledger:
    """The journal and the lock together: every result lands in both, in order.

    All calls are synchronous and made from one thread (the event loop), so lock writes are
    serialised without further locking.
    """

    def __init__(self, root: Path, lock_path: Path, lock: Lock) -> None:
        self.journal = Journal(journal_path(root))
        self.lock_path = lock_path
        self.lock = lock
        self._open: dict[str, Intent] = {}

    @property
    def open_intents(self) -> list[Intent]:
        return list(self._open.values())

    def recover(self) -> list[Intent]:
        """Fold every recorded result into the lock; return the intents still unsettled.

        Runs under the apply lock, so it also clears temp files of a lockfile write that a kill
        interrupted.
        """
        remove_stale_temp_files(self.lock_path)
        folded = False
        for entry in self.journal.entries():
            if entry["t"] == "intent":
                self._open[entry["ref"]] = _intent(entry)
            elif entry["ref"] in self._open:
                intent = self._open.pop(entry["ref"])
                if entry["t"] == "done":
                    folded = fold(self.lock, intent, entry["remote"]) or folded
        if folded:
            save_lock(self.lock_path, self.lock)
        self.compact()  # also drops a torn last line, so new lines never follow one
        return self.open_intents

    def begin(self, kind: str, case: str, label: str, record: dict[str, Any]) -> Intent:
        intent = Intent(uuid.uuid4().hex[:12], kind, case, label, utc_now(), record)
        self.journal.append(_entry(intent))
        self._open[intent.ref] = intent
        return intent

    def finish(self, intent: Intent, remote: dict[str, Any]) -> None:
        """The create succeeded (or was found on the server): journal it, then the lock."""
        self.journal.append({"t": "done", "ref": intent.ref, "remote": remote})
        self._open.pop(intent.ref, None)
        if fold(self.lock, intent, remote):
            save_lock(self.lock_path, self.lock)

    def not_created(self, intent: Intent, reason: str) -> None:
        """The server refused it, or it was shown not to exist: nothing to record."""
        self.journal.append({"t": "not-created", "ref": intent.ref, "reason": reason})
        self._open.pop(intent.ref, None)

    def mark_finished(self, case: str) -> None:
        self.lock.cases[case].upload_finished = True
        save_lock(self.lock_path, self.lock)

    def record_job(self, case: str, job_id: str, status: str | None, series_id: int | None) -> None:
        for study in self.lock.cases[case].studies:
            for series in study.series:
                if series.job_id == job_id:
                    series.status = status
                    series.series_id = series_id
        save_lock(self.lock_path, self.lock)

    def compact(self) -> None:
        """Keep only unsettled intents; every result is already in the saved lock."""
        self.journal.rewrite([_entry(intent) for intent in self._open.values()])


def _entry(intent: Intent) -> dict[str, Any]:
    return {
        "t": "intent",
        "ref": intent.ref,
        "kind": intent.kind,
        "case": intent.case,
        "label": intent.label,
        "at": intent.at,
        "record": intent.record,
    }


def _intent(entry: dict[str, Any]) -> Intent:
    if entry.get("kind") not in KINDS:
        raise LockfileError(f"journal entry of unknown kind: {entry.get('kind')!r}")
    return Intent(
        entry["ref"], entry["kind"], entry["case"], entry["label"], entry["at"], entry["record"]
    )


def fold(lock: Lock, intent: Intent, remote: dict[str, Any]) -> bool:
    """Add the created object to the lock unless it is already there; True when it changed."""
    record = intent.record
    if intent.kind == "case":
        if intent.case in lock.cases:
            return False
        lock.cases[intent.case] = LockedCase(
            case_id=int(remote["case_id"]),
            created_at=str(remote.get("created_at", "")),
            fields=dict(record["fields"]),
        )
        return True
    case = lock.cases.get(intent.case)
    if case is None or case.case_id != record["case_id"]:
        raise LockfileError(
            f"the journal records a {intent.kind} of case {intent.case} (id "
            f"{record['case_id']}) that casesync.lock does not hold",
            hint="restore casesync.lock from git, then run apply again",
        )
    if intent.kind == "study":
        study_id = int(remote["study_id"])
        if any(s.study_id == study_id for s in case.studies):
            return False
        case.studies.append(
            LockedStudy(study_id, int(record["position"]), record["key"], dict(record["fields"]))
        )
        return True
    study = next((s for s in case.studies if s.study_id == record["study_id"]), None)
    if study is None:
        raise LockfileError(
            f"the journal records a series of study {record['study_id']} of case {intent.case} "
            "that casesync.lock does not hold",
            hint="restore casesync.lock from git, then run apply again",
        )
    job_id = str(remote["job_id"])
    if any(s.job_id == job_id for s in study.series):
        return False
    study.series.append(
        LockedSeries(
            content_id=record["content_id"],
            key=record["key"],
            job_id=job_id,
            fields=dict(record["fields"]),
            files=[LockedFile(**f) for f in record["files"]],
        )
    )
    return True
