"""``casesync status``: one row per case, what the site says next to what the repository says.

Read-only: the journal's results are folded into the lock in memory (nothing is written, no run
lock is taken), the listing is read once, and with ``jobs`` the recorded series jobs that have
not reached a final state are polled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from casesync.api.models import JobStatus
from casesync.project.validate import load_project_file, validate_project
from casesync.settings import LOCK_FILE, resolve_api_url
from casesync.sync.journal import Intent, journal_path, replay
from casesync.sync.journalfile import Journal
from casesync.sync.lockfile import Lock, check_api_url_matches, load_lock
from casesync.sync.plan import DRIFT_CODES, make_plan
from casesync.sync.remote import QuotaUse, RemoteState, RemoteView
from casesync.sync.report import case_url
from casesync.sync.waiting import FINAL_JOB_STATES

if TYPE_CHECKING:
    from casesync.api.credentials import TokenSource

UP_TO_DATE = "up to date"
PENDING = "changes pending"
UNKNOWN = "unknown outcomes to resolve"
INVALID = "invalid"
UNCHECKED = "not checked (the project has errors)"


@dataclass(frozen=True)
class Job:
    study_id: int
    job_id: str
    status: str | None  # as recorded, or as polled with --jobs


@dataclass(frozen=True)
class CaseStatus:
    key: str
    case_id: int | None
    url: str | None
    remote: RemoteState | None  # None: not created yet
    local: str  # UP_TO_DATE | PENDING | UNKNOWN | INVALID | UNCHECKED
    processing: tuple[Job, ...] = ()  # series jobs not finished (polled with --jobs)
    notes: tuple[str, ...] = ()

    @property
    def needs_attention(self) -> bool:
        remote_bad = self.remote is not None and self.remote.deleted
        return self.local != UP_TO_DATE or remote_bad or bool(self.notes)


@dataclass(frozen=True)
class StatusReport:
    api_url: str
    checked_at: str
    cases: tuple[CaseStatus, ...]
    quota: QuotaUse | None
    jobs_polled: bool

    @property
    def needs_attention(self) -> bool:
        return any(case.needs_attention for case in self.cases)


JobPoller = Callable[[str, list[tuple[int, int, str]]], dict[str, JobStatus]]


def status(
    root: Path,
    *,
    api_url_flag: str | None = None,
    lock_path: Path | None = None,
    jobs: bool = False,
    read: Callable[[str], RemoteView],
    poll: JobPoller,
) -> StatusReport:
    """Every case of the repository (and of the lock) with its remote and local state."""
    project, _ = load_project_file(root)
    api_url = resolve_api_url(api_url_flag, project.api_url if project else None)
    lock_path = lock_path or root / LOCK_FILE
    lock = load_lock(lock_path, api_url)
    check_api_url_matches(lock, api_url, lock_path)
    unknown, _ = replay(Journal(journal_path(root)), lock)
    remote = read(api_url)
    validation = validate_project(root)
    rows: dict[str, CaseStatus] = {}
    quota = None
    if validation.manifest is not None:
        plan = make_plan(validation.manifest, lock, api_url, remote)
        quota = plan.quota
        for case in plan.cases:
            local = PENDING if case.actions or case.blocked else UP_TO_DATE
            notes = tuple(w.message for w in case.warnings if w.code in DRIFT_CODES)
            notes += tuple(sorted({b.reason for b in case.blocked}))
            if quota is not None and case.key in quota.waiting:
                notes += ("waiting for draft quota",)
            rows[case.key] = _row(case.key, lock, api_url, remote, local, notes)
    else:
        broken = {p.file for p in validation.errors}
        for key in lock.cases:
            rows[key] = _row(key, lock, api_url, remote, UNCHECKED, ())
        for file in sorted(broken):
            rows[file] = CaseStatus(file, None, None, None, INVALID, notes=("see 'validate'",))
    for intent in unknown:
        base = rows.get(intent.case) or _row(intent.case, lock, api_url, remote, UNKNOWN, ())
        rows[intent.case] = _with_unknown(base, intent)
    if jobs:
        rows = _poll_jobs(rows, lock, api_url, poll)
    return StatusReport(api_url, remote.checked_at, tuple(rows.values()), quota, jobs)


def _row(
    key: str, lock: Lock, api_url: str, remote: RemoteView, local: str, notes: tuple[str, ...]
) -> CaseStatus:
    locked = lock.cases.get(key)
    if locked is None:
        return CaseStatus(key, None, None, None, local, notes=notes)
    processing = tuple(
        Job(study.study_id, series.job_id, series.status)
        for study in locked.studies
        for series in study.series
        if study.study_id is not None
        and not remote.state(locked.case_id).deleted
        and series.job_id is not None
        and series.status not in FINAL_JOB_STATES
    )
    return CaseStatus(
        key,
        locked.case_id,
        case_url(api_url, locked.case_id),
        remote.state(locked.case_id),
        local,
        processing,
        notes,
    )


def _with_unknown(row: CaseStatus, intent: Intent) -> CaseStatus:
    note = f"{intent.describe()}; {intent.way_out()}"
    return CaseStatus(
        row.key, row.case_id, row.url, row.remote, UNKNOWN, row.processing, (*row.notes, note)
    )


def _poll_jobs(
    rows: dict[str, CaseStatus], lock: Lock, api_url: str, poll: JobPoller
) -> dict[str, CaseStatus]:
    wanted = [
        (row.case_id, job.study_id, job.job_id)
        for row in rows.values()
        if row.case_id is not None
        for job in row.processing
    ]
    if not wanted:
        return rows
    found = poll(api_url, wanted)
    polled = {}
    for key, row in rows.items():
        still: list[Job] = []
        notes = list(row.notes)
        for job in row.processing:
            answer = found[job.job_id]
            if answer.failed:
                notes.append(f"series job {job.job_id} failed in processing")
            elif not answer.succeeded:
                still.append(Job(job.study_id, job.job_id, answer.status or "processing"))
        polled[key] = CaseStatus(
            row.key, row.case_id, row.url, row.remote, row.local, tuple(still), tuple(notes)
        )
    return polled


def poll_with_client(
    tokens: TokenSource, api_url: str, wanted: list[tuple[int, int, str]]
) -> dict[str, JobStatus]:
    """The status of each wanted job, asked with the caller's credentials."""
    from casesync.api.client import RadiopaediaClient

    async def run() -> dict[str, JobStatus]:
        async with RadiopaediaClient(api_url, tokens(api_url)) as client:
            answers = await asyncio.gather(*(client.job_status(*item) for item in wanted))
        return {answer.job_id: answer for answer in answers}

    return asyncio.run(run())
