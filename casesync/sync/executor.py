"""Carry out a plan over the API: concurrent across cases, journaled, never duplicating.

Per case: create the case, then its studies one at a time in manifest order (the server
assigns positions as they come), then its series in order, each with the upload ids of its
slices; uploads start at once and share one pool across all cases; finally mark the upload
finished. Every create goes through the ``Ledger`` (intent, request, result); a create whose
outcome is unknown stops its case, except a case create, which the case listing may settle
(``remote.Remote``). A refused login or a lockfile that cannot be written stops the whole run,
which still ends with its report. Uploads are ``uploads.Uploader``'s; what the server says of
cases (listing, drafts, quota) is ``remote``'s; what the run reports is ``report``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from casesync.api.models import (
    CaseFields,
    JobStatus,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    User,
)
from casesync.errors import (
    ApiError,
    AuthError,
    CasesyncError,
    FileChanged,
    LockfileError,
    OutcomeUnknown,
)
from casesync.project.manifest import CaseSpec, Manifest
from casesync.sync.journal import (
    CaseMade,
    CaseRecord,
    Intent,
    Ledger,
    Made,
    Record,
    SeriesMade,
    SeriesRecord,
    StudyMade,
    StudyRecord,
)
from casesync.sync.lockfile import LockedFile, fingerprints
from casesync.sync.plan import (
    CasePlan,
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    Plan,
)
from casesync.sync.remote import CaseBlocked, CaseSkipped, ListingClient, Remote, check_quota
from casesync.sync.report import (
    ApplyReport,
    CaseOutcome,
    CaseStatus,
    Events,
    Step,
    series_label,
    study_label,
)
from casesync.sync.uploads import UploadClient, Uploader
from casesync.sync.waiting import Clock, JobWaiter, MonotonicClock, StillProcessing

T = TypeVar("T")
CASE_CREATE_ATTEMPTS = 3


class ApiClient(UploadClient, ListingClient, Protocol):
    """What the executor needs from ``casesync.api.client.RadiopaediaClient``."""

    async def current_user(self) -> User: ...
    async def create_case(self, fields: CaseFields) -> RemoteCase: ...
    async def create_study(self, case_id: int, fields: StudyFields) -> RemoteStudy: ...
    async def create_series(
        self, case_id: int, study_id: int, fields: SeriesFields, upload_ids: Sequence[int]
    ) -> str: ...
    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus: ...
    async def mark_upload_finished(self, case_id: int) -> RemoteCase: ...


@dataclass(frozen=True)
class ApplyOptions:
    upload_concurrency: int = 8
    api_concurrency: int = 4
    wait: bool = False
    fail_fast: bool = False
    poll_seconds: float = 5.0
    wait_timeout: float = 30 * 60.0  # --wait gives up on jobs still processing after this
    within_quota: bool = False  # create the new cases that fit the draft quota, not refuse
    # after a case create with no answer, wait this long before trusting the case listing:
    # a server still busy with the request must not be taken for one that never got it
    settle_seconds: float = 3.0


class Stopped(Exception):
    """A stop was requested (signal or --fail-fast): no new work is started."""


class Executor:
    def __init__(
        self,
        client: ApiClient,
        manifest: Manifest,
        plan: Plan,
        ledger: Ledger,
        events: Events,
        options: ApplyOptions,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.plan = plan
        self.ledger = ledger
        self.events = events
        self.options = options
        self.clock = clock or MonotonicClock()
        self.report = ApplyReport()
        self.stop_reason: str | None = None
        self.fatal: CasesyncError | None = None  # what stopped the whole run (login, lockfile)
        self._jobs = JobWaiter(
            client,
            ledger,
            events,
            self.clock,
            poll_seconds=options.poll_seconds,
            timeout=options.wait_timeout,
            check_stop=self._check_stop,
        )
        self._uploads = Uploader(
            client,
            manifest.project.root,
            events,
            self.report,
            batch=options.upload_concurrency,
            check_stop=self._check_stop,
            planned=frozenset(
                sha
                for case in plan.cases
                for action in case.actions
                if isinstance(action, CreateSeries)
                for sha in action.upload_hashes
            ),
        )
        self._remote = Remote(client, ledger, events, self.report)
        # an intent is written only when its request can leave at once, so that a crash
        # leaves as few unknown creates as there were requests really in flight
        self._sending = asyncio.Semaphore(options.api_concurrency)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    def _stop_all(self, error: CasesyncError) -> None:
        self.fatal = self.fatal or error
        self.request_stop(str(error))

    def _check_stop(self) -> None:
        if self.stop_reason is not None:
            raise Stopped(f"stopped before this case was finished ({self.stop_reason})")

    async def run(self) -> ApplyReport:
        """Settle old unknowns, check the quota, then run every case with work concurrently."""
        started = asyncio.get_running_loop().time()
        try:
            await self._run()
        except (AuthError, LockfileError) as exc:  # before any case started: all stay as they are
            self._stop_all(exc)
        finally:
            self.report.elapsed = asyncio.get_running_loop().time() - started
        return self.report

    async def _run(self) -> None:
        cases = [c for c in self.plan.cases if c.actions or c.blocked]
        for case in self.plan.cases:
            work = bool(case.actions or case.blocked)
            status: CaseStatus = "interrupted" if work else "unchanged"
            message = "not finished" if work else ""
            self.report.outcomes[case.key] = CaseOutcome(case.key, status, message, case.case_id)
        if not cases:
            return
        user = await self.client.current_user()
        doubts: dict[str, str] = {}  # case key -> why its unknown case create stays unknown
        for intent in self.ledger.open_intents:
            if intent.kind == "case":
                try:
                    await self._remote.settle_case(intent)
                except CaseBlocked as exc:
                    doubts[intent.case] = str(exc)
        cases = self._within_quota(user, cases)
        blocked = {i.case: i for i in self.ledger.open_intents}
        runnable = []
        for case in cases:
            if case.key in blocked:
                why = doubts.get(case.key) or str(CaseBlocked(blocked[case.key]))
                self._outcome(case.key, "unknown", why)
            else:
                runnable.append(case)
        await asyncio.gather(*(self._case(case) for case in runnable))

    def _within_quota(self, user: User, cases: list[CasePlan]) -> list[CasePlan]:
        """The cases to run: all, or with --within-quota the new ones that fit (in order)."""
        new = [
            case.key
            for case in cases
            if any(isinstance(a, CreateCase) for a in case.actions)
            and case.key not in self.ledger.lock.cases
        ]
        waiting = check_quota(user, new, self.options.within_quota)
        used = f"{user.quotas.draft_case_count} of {user.quotas.allowed_draft_cases}"
        for key in waiting:
            self._outcome(
                key,
                "waiting",
                f"waiting for draft quota ({used} drafts used): publish or delete drafts "
                "on the site, then run apply again",
            )
        return [case for case in cases if case.key not in waiting]

    def _outcome(self, key: str, status: CaseStatus, message: str = "") -> None:
        locked = self.ledger.lock.cases.get(key)
        self.report.outcomes[key] = CaseOutcome(
            key, status, message, locked.case_id if locked else None
        )

    async def _case(self, plan: CasePlan) -> None:
        """Run one case; whatever stops it becomes its outcome, never the whole run's error."""
        uploads: dict[tuple[int, int], asyncio.Task[dict[str, int]]] = {}
        try:
            await self._case_work(plan, uploads)
            self._outcome(plan.key, "done")
        except (Stopped, CaseBlocked, CaseSkipped, StillProcessing) as exc:
            self._outcome(plan.key, self._stopped_status(exc), str(exc))
        except (ApiError, FileChanged, OSError) as exc:  # a file changed or vanished since checked
            self._outcome(plan.key, "failed", str(exc))
            if self.options.fail_fast:
                self.request_stop(f"--fail-fast: case {plan.key} failed")
        except CasesyncError as exc:  # login refused, lockfile or journal not writable
            self._outcome(plan.key, "failed", str(exc))
            self._stop_all(exc)
        finally:
            for task in uploads.values():
                task.cancel()
            await asyncio.gather(*uploads.values(), return_exceptions=True)

    def _stopped_status(self, exc: Exception) -> CaseStatus:
        if isinstance(exc, Stopped):
            return "interrupted" if self.report.interrupted else "skipped"
        if isinstance(exc, CaseBlocked):
            return "unknown"
        return "skipped" if isinstance(exc, CaseSkipped) else "processing"

    async def _case_work(
        self, plan: CasePlan, uploads: dict[tuple[int, int], asyncio.Task[dict[str, int]]]
    ) -> None:
        """Uploads start at once; creates go in plan order, each series after its uploads."""
        spec = self.manifest.case(plan.key)
        self._check_stop()
        if plan.case_id is not None:
            await self._remote.check_draft(plan.key, plan.case_id)
        for action in plan.actions:
            if isinstance(action, CreateSeries):
                series = spec.studies[action.study_index].series[action.series_index]
                uploads[(action.study_index, action.series_index)] = asyncio.create_task(
                    self._uploads.series(
                        plan.key,
                        action.study_index,
                        action.series_index,
                        series,
                        action.upload_files,
                    )
                )
        case_id = await self._ensure_case(plan, spec)
        study_ids = dict(plan.study_ids)
        for action in plan.actions:
            if isinstance(action, CreateStudy):
                study_ids[action.study_index] = await self._create_study(
                    plan.key, case_id, spec, action
                )
            elif isinstance(action, CreateSeries):
                ids = await uploads[(action.study_index, action.series_index)]
                study_id = study_ids[action.study_index]
                await self._create_series(plan.key, case_id, study_id, spec, action, ids)
        if any(isinstance(a, MarkUploadFinished) for a in plan.actions):
            await self._mark_finished(plan.key, case_id)
        if self.options.wait:
            await self._jobs.wait_case(plan.key, case_id)
        if plan.blocked:
            raise CaseSkipped("; ".join(sorted({b.reason for b in plan.blocked})))

    async def _ensure_case(self, plan: CasePlan, spec: CaseSpec) -> int:
        locked = self.ledger.lock.cases.get(plan.key)
        if locked is not None:
            return locked.case_id
        record = CaseRecord(spec.fields.title, fingerprints(spec.sent_fields()))
        step = Step.create_case()
        for _ in range(CASE_CREATE_ATTEMPTS):
            self._check_stop()
            self.events.step(plan.key, step, "started")
            try:
                intent, remote = await self._send(
                    plan.key, "case", record, lambda: self.client.create_case(spec.fields)
                )
            except CaseBlocked as lost:  # the listing may tell
                await self.clock.sleep(self.options.settle_seconds)
                adopted = await self._remote.settle_case(lost.intent)
                if adopted is None:
                    continue
                self.events.step(plan.key, step, "done", f"id {adopted}")
                return adopted
            except (ApiError, AuthError) as exc:
                self.events.step(plan.key, step, "failed", str(exc))
                raise
            self.ledger.finish(intent, CaseMade(remote.id, remote.created_at))
            self.report.cases_created += 1
            self.events.step(plan.key, step, "done", f"id {remote.id}")
            return remote.id
        raise ApiError(f"creating case {plan.key} failed {CASE_CREATE_ATTEMPTS} times")

    async def _create_study(
        self, key: str, case_id: int, spec: CaseSpec, action: CreateStudy
    ) -> int:
        study = spec.studies[action.study_index]
        step = Step.create_study(action.study_index)
        record = StudyRecord(
            case_id,
            action.position,
            study.key,
            fingerprints(study.sent_fields()),
            action.study_index,
        )
        remote = await self._create(
            key,
            (study_label(action.study_index), step),
            record,
            lambda: self.client.create_study(case_id, study.fields(action.position)),
            lambda made: StudyMade(made.id),
        )
        self.report.studies_created += 1
        self.events.step(key, step, "done", f"id {remote.id}, pos {action.position}")
        return remote.id

    async def _create_series(
        self,
        key: str,
        case_id: int,
        study_id: int,
        spec: CaseSpec,
        action: CreateSeries,
        upload_ids: dict[str, int],
    ) -> None:
        series = spec.studies[action.study_index].series[action.series_index]
        files = tuple(
            LockedFile(f.path, f.size, f.sha256, upload_ids[f.sha256]) for f in series.files
        )
        record = SeriesRecord(
            case_id,
            study_id,
            series.content_id,
            series.key,
            fingerprints(series.sent_fields()),
            files,
        )
        step = Step.create_series(action.study_index, action.series_index)
        ids = [upload_ids[f.sha256] for f in series.files]  # slice order
        job_id = await self._create(
            key,
            (series_label(action.study_index, action.series_index), step),
            record,
            lambda: self.client.create_series(case_id, study_id, series.fields(), ids),
            lambda made: SeriesMade(made),
        )
        self.report.series_created += 1
        self.events.step(key, step, "done", f"job {job_id}")

    async def _create(
        self,
        key: str,
        named: tuple[str, Step],  # the journal's label, the step shown
        record: StudyRecord | SeriesRecord,
        request: Callable[[], Awaitable[T]],
        remote: Callable[[T], Made],
    ) -> T:
        """A study or series create, bracketed by the journal; unknown outcome blocks the case."""
        label, step = named
        self._check_stop()
        self.events.step(key, step, "started")
        try:
            intent, made = await self._send(key, label, record, request)
        except CaseBlocked:
            self.events.step(key, step, "failed", "outcome unknown")
            raise
        except (ApiError, AuthError) as exc:
            self.events.step(key, step, "failed", str(exc))
            raise
        self.ledger.finish(intent, remote(made))
        return made

    async def _send(
        self,
        key: str,
        label: str,
        record: Record,
        request: Callable[[], Awaitable[T]],
    ) -> tuple[Intent, T]:
        """Journal the intent, then send: only ``OutcomeUnknown`` leaves the intent open.

        Any other error means the server did not make it (an error answer, a refused login,
        or a failure before the request left), so the intent is closed as not created.
        """
        async with self._sending:
            self._check_stop()
            intent = self.ledger.begin(key, label, record)
            try:
                return intent, await request()
            except OutcomeUnknown as exc:
                raise CaseBlocked(intent) from exc
            except Exception as exc:
                self.ledger.not_created(intent, str(exc) or type(exc).__name__)
                raise

    async def _mark_finished(self, key: str, case_id: int) -> None:
        self._check_stop()
        step = Step.mark_finished()
        self.events.step(key, step, "started")
        await self.client.mark_upload_finished(case_id)
        self.ledger.mark_finished(key)
        self.events.step(key, step, "done")
