"""The apply journal and the lockfile, kept together so no remote create is ever lost.

Creating a case, a study or a series is not idempotent, so each create is bracketed in
``.casesync/journal.jsonl``: an *intent* line (fsynced) before the request, a *done* line with
the remote id after it. Every done result is folded into casesync.lock at once (atomic write).
The intent carries the whole lock entry except the remote id, so a result can be folded in
later (after a crash, or by ``casesync resolve``) without the manifests. An intent with no
result is an outcome-unknown create: apply must settle it, never repeat it blindly. A result
leaves the journal only once a lock holding it is on disk: when the lock cannot be written,
the journal keeps it and the next run folds it in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casesync.atomicfile import atomic_write_text
from casesync.errors import LockfileError, StateWriteError
from casesync.settings import STATE_DIR
from casesync.sync.lockfile import (
    BadField,
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    remove_stale_temp_files,
    save_lock,
    want,
    want_fields,
    want_id,
    want_optional,
)

JOURNAL_FILE = "journal.jsonl"
KINDS = ("case", "study", "series")
LINE_TYPES = ("intent", "done", "not-created")
RECOVER_HINT = (
    "free disk space (or fix the folder), then run 'casesync apply' again: it first records "
    "in the lockfile what .casesync/journal.jsonl holds, and creates nothing twice; never "
    "delete the journal"
)


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
        moment = dt.datetime.fromisoformat(self.at)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)

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
        """Write and fsync one line; on failure cut the file back, so no torn line is left."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                left = memoryview(line.encode())
                while left:
                    left = left[os.write(fd, left) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def entries(self) -> list[tuple[int, dict[str, Any]]]:
        """Every line with its number, checked; a torn last line (killed mid-write) is left out."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LockfileError(
                f"cannot read {self.path} ({exc.strerror})", hint="fix its permissions"
            ) from None
        lines = data.split(b"\n")
        torn = lines.pop()  # empty when the file ends with a newline, as every write does
        entries = [(number, self._line(number, line)) for number, line in enumerate(lines, 1)]
        if torn:
            with contextlib.suppress(LockfileError):
                entries.append((len(lines) + 1, self._line(len(lines) + 1, torn)))
        return entries

    def _line(self, number: int, line: bytes) -> dict[str, Any]:
        try:
            entry = json.loads(line.decode("utf-8"))
            _check_entry(entry)
        except UnicodeDecodeError:
            raise self.corrupt(number, "it is not UTF-8 text") from None
        except BadField as exc:
            raise self.corrupt(number, str(exc)) from None
        except (ValueError, RecursionError):
            raise self.corrupt(number, "it is not a JSON line") from None
        return dict(entry)

    def corrupt(self, number: int, problem: str) -> LockfileError:
        return LockfileError(
            f"{self.path} line {number} is corrupt: {problem}",
            hint="casesync did not write it: correct or remove that line, keeping every other; "
            "never delete the journal while creates are unsettled (it holds remote ids)",
        )

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the journal atomically (compaction); no entries removes it."""
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        text = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
        atomic_write_text(self.path, text)


class Ledger:
    """The journal and the lock together: every result lands in both, in order.

    All calls are synchronous and made from one thread (the event loop), so lock writes are
    serialised without further locking. A write that fails raises ``StateWriteError`` (the
    first one is kept in ``write_error``); results not yet in a saved lock stay journaled.
    """

    def __init__(self, root: Path, lock_path: Path, lock: Lock) -> None:
        self.journal = Journal(journal_path(root))
        self.lock_path = lock_path
        self.lock = lock
        self.write_error: StateWriteError | None = None
        self._open: dict[str, Intent] = {}
        # results folded into ``lock`` that no saved lockfile holds yet, with their done lines
        self._unsaved: dict[str, tuple[Intent, dict[str, Any]]] = {}
        self._dirty = False  # ``lock`` differs from the lockfile on disk

    @property
    def open_intents(self) -> list[Intent]:
        return list(self._open.values())

    @property
    def unsaved(self) -> int:
        """How many results the lockfile on disk lacks (they are kept in the journal)."""
        return len(self._unsaved)

    def recover(self) -> list[Intent]:
        """Fold every recorded result into the lock; return the intents still unsettled.

        Runs under the apply lock, so it also clears temp files of a lockfile write that a kill
        interrupted. Nothing has been sent yet, so a failed write here simply stops the run.
        """
        remove_stale_temp_files(self.lock_path)
        for number, entry in self.journal.entries():
            if entry["t"] == "intent":
                self._open[entry["ref"]] = _intent(entry)
            elif entry["ref"] in self._open:
                intent = self._open.pop(entry["ref"])
                if entry["t"] == "done":
                    try:
                        remote = checked_remote(intent.kind, entry["remote"])
                    except BadField as exc:
                        raise self.journal.corrupt(number, str(exc)) from None
                    self._dirty = fold(self.lock, intent, remote) or self._dirty
        for intent in list(self._open.values()):
            if _locked(self.lock, intent):  # its result reached the lock, not the journal
                del self._open[intent.ref]
        self._save()
        self._write(self.journal.path, self._compact)  # drops a torn last line too
        return self.open_intents

    def begin(self, kind: str, case: str, label: str, record: dict[str, Any]) -> Intent:
        """Journal a create before it is sent; raises (and nothing is sent) if that fails."""
        intent = Intent(uuid.uuid4().hex[:12], kind, case, label, utc_now(), record)
        self._write(self.journal.path, lambda: self.journal.append(_entry(intent)))
        self._open[intent.ref] = intent
        return intent

    def finish(self, intent: Intent, remote: dict[str, Any]) -> None:
        """The create succeeded (or was found on the server): journal it, then the lock.

        Either write may fail; the result is lost only if both do (and then its intent is
        still journaled, so the next run settles it instead of creating it again).
        """
        self._dirty = fold(self.lock, intent, remote) or self._dirty  # refuses before writing
        done = {"t": "done", "ref": intent.ref, "remote": remote}
        self._open.pop(intent.ref, None)
        self._unsaved[intent.ref] = (intent, done)
        with contextlib.suppress(StateWriteError):  # kept in write_error; the lock may hold it
            self._write(self.journal.path, lambda: self.journal.append(done))
        self._save()

    def not_created(self, intent: Intent, reason: str) -> None:
        """The server refused it, or it was shown not to exist: nothing to record."""
        self._open.pop(intent.ref, None)
        entry = {"t": "not-created", "ref": intent.ref, "reason": reason}
        self._write(self.journal.path, lambda: self.journal.append(entry))

    def mark_finished(self, case: str) -> None:
        self.lock.cases[case].upload_finished = True
        self._dirty = True
        self._save()

    def record_job(self, case: str, job_id: str, status: str | None, series_id: int | None) -> None:
        for study in self.lock.cases[case].studies:
            for series in study.series:
                if series.job_id == job_id:
                    series.status = status
                    series.series_id = series_id
        self._dirty = True
        self._save()

    def compact(self) -> None:
        """Keep only what the saved lock lacks; if that cannot be written, keep every line."""
        with contextlib.suppress(StateWriteError):
            self._write(self.journal.path, self._compact)

    def _compact(self) -> None:
        entries = [_entry(intent) for intent in self._open.values()]
        for intent, done in self._unsaved.values():
            entries += [_entry(intent), done]
        self.journal.rewrite(entries)

    def _save(self) -> None:
        if self._dirty:
            self._write(self.lock_path, lambda: save_lock(self.lock_path, self.lock))
        self._dirty = False
        self._unsaved.clear()

    def _write(self, path: Path, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            error = StateWriteError(f"cannot write {path} ({reason})", hint=RECOVER_HINT)
            self.write_error = self.write_error or error
            raise error from None


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
    return Intent(
        entry["ref"], entry["kind"], entry["case"], entry["label"], entry["at"], entry["record"]
    )


def _check_entry(entry: Any) -> None:
    """A journal line as casesync writes it, or ``BadField`` naming what is not."""
    entry = want(entry, "the line", dict)
    if entry.get("t") not in LINE_TYPES:
        raise BadField(f'"t" is {entry.get("t")!r}, not one of {", ".join(LINE_TYPES)}')
    if not want(entry.get("ref"), "ref", str):
        raise BadField("ref is empty")
    if entry["t"] == "done":
        want(entry.get("remote"), "remote", dict)
    if entry["t"] != "intent":
        return
    kind = entry.get("kind")
    if kind not in KINDS:
        raise BadField(f"kind is {kind!r}, not one of {', '.join(KINDS)}")
    if not want(entry.get("case"), "case", str):
        raise BadField("case is empty")
    want(entry.get("label"), "label", str)
    try:
        dt.datetime.fromisoformat(want(entry.get("at"), "at", str))
    except ValueError:
        raise BadField(f"at is {entry['at']!r}, not a time") from None
    _check_record(kind, want(entry.get("record"), "record", dict))


def _check_record(kind: str, record: dict[str, Any]) -> None:
    """The future lock entry: everything ``fold`` reads, with the types the lock needs."""
    want_fields(record.get("fields"), "record.fields")
    if kind == "case":
        want(record.get("title"), "record.title", str)
        return
    want_id(record.get("case_id"), "record.case_id")
    want_optional(record.get("key"), "record.key", str)
    if kind == "study":
        want(record.get("position"), "record.position", int)
        return
    want_id(record.get("study_id"), "record.study_id")
    want(record.get("content_id"), "record.content_id", str)
    for n, file in enumerate(want(record.get("files"), "record.files", list)):
        where = f"record.files[{n}]"
        want(want(file, where, dict).get("path"), f"{where}.path", str)
        want(file.get("size"), f"{where}.size", int)
        want(file.get("sha256"), f"{where}.sha256", str)
        if file.get("upload_id") is not None:
            want_id(file["upload_id"], f"{where}.upload_id")


def checked_remote(kind: str, remote: dict[str, Any]) -> dict[str, Any]:
    """A done line's remote ids, checked against the kind of its intent."""
    if kind == "case":
        want_id(remote.get("case_id"), "remote.case_id")
        want(remote.get("created_at", ""), "remote.created_at", str)
    elif kind == "study":
        want_id(remote.get("study_id"), "remote.study_id")
    elif not want(remote.get("job_id"), "remote.job_id", str):
        raise BadField("remote.job_id is empty")
    return remote


def _locked(lock: Lock, intent: Intent) -> bool:
    """The lock already holds what this intent was about to create (it is settled)."""
    case = lock.cases.get(intent.case)
    if intent.kind == "case" or case is None:
        return case is not None
    record = intent.record
    if case.case_id != record["case_id"]:
        return False
    if intent.kind == "study":
        return any(s.position == record["position"] for s in case.studies)
    return any(
        series.content_id == record["content_id"] and series.key == record["key"]
        for study in case.studies
        if study.study_id == record["study_id"]
        for series in study.series
    )


def fold(lock: Lock, intent: Intent, remote: dict[str, Any]) -> bool:
    """Add the created object to the lock unless it is already there; True when it changed."""
    record = intent.record
    if intent.kind == "case":
        if intent.case in lock.cases:
            return False
        taken = [key for key, c in lock.cases.items() if c.case_id == remote["case_id"]]
        if taken:
            raise LockfileError(
                f"case id {remote['case_id']} is already recorded for {taken[0]}, so it cannot "
                f"also be {intent.case}",
                hint="look at the case on the site again: each case key has its own case",
            )
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
            files=[
                LockedFile(f["path"], f["size"], f["sha256"], f.get("upload_id"))
                for f in record["files"]
            ],
        )
    )
    return True
