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
import copy
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from casesync.errors import LockfileError, StateWriteError
from casesync.settings import STATE_DIR
from casesync.sync.journalfile import LOCAL_KINDS, Journal, Kind
from casesync.sync.lockfile import (
    BadField,
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    case_document,
    parse_case,
    remove_stale_temp_files,
    save_lock,
    want,
    want_id,
)

JOURNAL_FILE = "journal.jsonl"
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
class CaseRecord:
    """What a case create will put in the lock, minus the case id the server gives."""

    title: str
    fields: dict[str, str]  # fingerprints of what was sent
    kind: ClassVar[Kind] = "case"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseRecord:
        return cls(data["title"], dict(data["fields"]))


@dataclass(frozen=True)
class StudyRecord:
    case_id: int
    position: int
    key: str | None
    fields: dict[str, str]
    study_index: int | None = None  # in the manifest; for a reader of the journal
    kind: ClassVar[Kind] = "study"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyRecord:
        return cls(
            data["case_id"],
            data["position"],
            data.get("key"),
            dict(data["fields"]),
            data.get("study_index"),
        )


@dataclass(frozen=True)
class SeriesRecord:
    case_id: int
    study_id: int
    content_id: str
    key: str | None
    fields: dict[str, str]
    files: tuple[LockedFile, ...]  # in slice order, each with its upload id
    kind: ClassVar[Kind] = "series"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"files": [dataclasses.asdict(f) for f in self.files]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeriesRecord:
        files = tuple(
            LockedFile(f["path"], f["size"], f["sha256"], f.get("upload_id")) for f in data["files"]
        )
        return cls(
            data["case_id"],
            data["study_id"],
            data["content_id"],
            data.get("key"),
            dict(data["fields"]),
            files,
        )


@dataclass(frozen=True)
class AdoptRecord:
    """``casesync adopt`` or ``import``: a whole lock entry for a case that exists on the site."""

    entry: LockedCase
    kind: ClassVar[Kind] = "adopt"

    def to_json(self) -> dict[str, Any]:
        return {"entry": case_document(self.entry)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdoptRecord:
        return cls(parse_case(data["entry"], "record.entry"))


@dataclass(frozen=True)
class ForgetRecord:
    """``casesync forget`` (or ``apply --recreate``): the case leaves the lock."""

    case_id: int
    kind: ClassVar[Kind] = "forget"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ForgetRecord:
        return cls(data["case_id"])


Record = CaseRecord | StudyRecord | SeriesRecord | AdoptRecord | ForgetRecord
RECORDS: dict[str, type[Record]] = {
    "case": CaseRecord,
    "study": StudyRecord,
    "series": SeriesRecord,
    "adopt": AdoptRecord,
    "forget": ForgetRecord,
}


@dataclass(frozen=True)
class CaseMade:
    """The server's answer to a case create (or the case adopted from the listing)."""

    case_id: int
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StudyMade:
    study_id: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SeriesMade:
    job_id: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Forgotten:
    """A forget's result: nothing from the server."""

    def to_json(self) -> dict[str, Any]:
        return {}


Made = CaseMade | StudyMade | SeriesMade | Forgotten


def made_from_json(kind: str, remote: dict[str, Any]) -> Made:
    """A done line's remote ids, checked against the kind of its intent (``BadField``)."""
    if kind == "forget":
        return Forgotten()
    if kind in ("case", "adopt"):
        created_at = want(remote.get("created_at", ""), "remote.created_at", str)
        return CaseMade(want_id(remote.get("case_id"), "remote.case_id"), created_at)
    if kind == "study":
        return StudyMade(want_id(remote.get("study_id"), "remote.study_id"))
    job_id = want(remote.get("job_id"), "remote.job_id", str)
    if not job_id:
        raise BadField("remote.job_id is empty")
    return SeriesMade(job_id)


@dataclass(frozen=True)
class Intent:
    """A create about to be sent; ``record`` is its future lock entry minus the remote id."""

    ref: str
    case: str  # the case key
    label: str  # "case", "study 2", "study 2 series 1"
    at: str  # ISO-8601 UTC, written before the request left
    record: Record

    @property
    def kind(self) -> Kind:
        return self.record.kind

    def to_json(self) -> dict[str, Any]:
        """The journal's intent line."""
        return {
            "t": "intent",
            "ref": self.ref,
            "kind": self.kind,
            "case": self.case,
            "label": self.label,
            "at": self.at,
            "record": self.record.to_json(),
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Intent:
        """An intent line already checked by ``check_entry``."""
        record = RECORDS[entry["kind"]].from_json(entry["record"])
        return cls(entry["ref"], entry["case"], entry["label"], entry["at"], record)

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
        self._unsaved: dict[str, tuple[Intent, Made]] = {}
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
        opened, folded = replay(self.journal, self.lock)
        self._open.update((intent.ref, intent) for intent in opened)
        self._dirty = folded or self._dirty
        self._save()
        self._write(self.journal.path, self._compact)  # drops a torn last line too
        return self.open_intents

    def begin(self, case: str, label: str, record: Record) -> Intent:
        """Journal a create before it is sent; raises (and nothing is sent) if that fails."""
        intent = Intent(uuid.uuid4().hex[:12], case, label, utc_now(), record)
        self._write(self.journal.path, lambda: self.journal.append(intent.to_json()))
        self._open[intent.ref] = intent
        return intent

    def finish(self, intent: Intent, made: Made) -> None:
        """The create succeeded (or was found on the server): journal it, then the lock.

        Either write may fail; the result is lost only if both do (and then its intent is
        still journaled, so the next run settles it instead of creating it again).
        """
        self._dirty = fold(self.lock, intent, made) or self._dirty  # refuses before writing
        self._open.pop(intent.ref, None)
        self._unsaved[intent.ref] = (intent, made)
        with contextlib.suppress(StateWriteError):  # kept in write_error; the lock may hold it
            self._write(self.journal.path, lambda: self.journal.append(_done(intent, made)))
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
        entries = [intent.to_json() for intent in self._open.values()]
        for intent, made in self._unsaved.values():
            entries += [intent.to_json(), _done(intent, made)]
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


def replay(journal: Journal, lock: Lock) -> tuple[list[Intent], bool]:
    """Fold every recorded result into ``lock`` in memory (nothing is written).

    Returns the intents still unsettled, and whether the lock changed. An intent whose result
    reached the lock but not the journal is settled; so is an adopt or forget stopped before
    its result (no request was sent: it never happened).
    """
    pending: dict[str, Intent] = {}
    folded = False
    for number, entry in journal.entries():
        if entry["t"] == "intent":
            pending[entry["ref"]] = Intent.from_json(entry)
        elif entry["ref"] in pending:
            intent = pending.pop(entry["ref"])
            if entry["t"] == "done":
                try:
                    made = made_from_json(intent.kind, entry["remote"])
                except BadField as exc:
                    raise journal.corrupt(number, str(exc)) from None
                folded = fold(lock, intent, made) or folded
    unsettled = [
        intent
        for intent in pending.values()
        if intent.kind not in LOCAL_KINDS and not _locked(lock, intent)
    ]
    return unsettled, folded


def _done(intent: Intent, made: Made) -> dict[str, Any]:
    return {"t": "done", "ref": intent.ref, "remote": made.to_json()}


def _locked(lock: Lock, intent: Intent) -> bool:
    """The lock already holds what this intent was about to create (it is settled)."""
    case = lock.cases.get(intent.case)
    record = intent.record
    if isinstance(record, (AdoptRecord, ForgetRecord)):
        return True  # no request was sent: settled whether or not it finished
    if isinstance(record, CaseRecord) or case is None:
        return case is not None
    if case.case_id != record.case_id:
        return False
    if isinstance(record, StudyRecord):
        return any(s.position == record.position for s in case.studies)
    return any(
        series.content_id == record.content_id and series.key == record.key
        for study in case.studies
        if study.study_id == record.study_id
        for series in study.series
    )


def fold(lock: Lock, intent: Intent, made: Made) -> bool:
    """Add the created object to the lock unless it is already there; True when it changed."""
    record = intent.record
    if isinstance(record, AdoptRecord):
        lock.cases[intent.case] = copy.deepcopy(record.entry)
        return True
    if isinstance(record, ForgetRecord):
        return lock.cases.pop(intent.case, None) is not None
    if isinstance(record, CaseRecord):
        return _fold_case(lock, intent.case, record, _made(made, CaseMade))
    case = lock.cases.get(intent.case)
    if case is None or case.case_id != record.case_id:
        raise LockfileError(
            f"the journal records a {intent.kind} of case {intent.case} (id "
            f"{record.case_id}) that casesync.lock does not hold",
            hint="restore casesync.lock from git, then run apply again",
        )
    if isinstance(record, StudyRecord):
        study_id = _made(made, StudyMade).study_id
        if any(s.study_id == study_id for s in case.studies):
            return False
        case.studies.append(LockedStudy(study_id, record.position, record.key, dict(record.fields)))
        return True
    study = next((s for s in case.studies if s.study_id == record.study_id), None)
    if study is None:
        raise LockfileError(
            f"the journal records a series of study {record.study_id} of case {intent.case} "
            "that casesync.lock does not hold",
            hint="restore casesync.lock from git, then run apply again",
        )
    job_id = _made(made, SeriesMade).job_id
    if any(s.job_id == job_id for s in study.series):
        return False
    study.series.append(
        LockedSeries(
            content_id=record.content_id,
            key=record.key,
            job_id=job_id,
            fields=dict(record.fields),
            files=[dataclasses.replace(f) for f in record.files],
        )
    )
    return True


def _fold_case(lock: Lock, key: str, record: CaseRecord, made: CaseMade) -> bool:
    if key in lock.cases:
        return False
    taken = [other for other, c in lock.cases.items() if c.case_id == made.case_id]
    if taken:
        raise LockfileError(
            f"case id {made.case_id} is already recorded for {taken[0]}, so it cannot "
            f"also be {key}",
            hint="look at the case on the site again: each case key has its own case",
        )
    lock.cases[key] = LockedCase(
        case_id=made.case_id, created_at=made.created_at, fields=dict(record.fields)
    )
    return True


MadeT = TypeVar("MadeT", CaseMade, StudyMade, SeriesMade)


def _made(made: Made, kind: type[MadeT]) -> MadeT:
    """The answer must be of the intent's kind (resolve checks it; a journal line too)."""
    if not isinstance(made, kind):
        raise LockfileError(f"a {type(made).__name__} cannot settle a create of another kind")
    return made
