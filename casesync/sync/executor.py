"""Carry out a plan over the API: concurrent across cases, journaled, never duplicating.

Per case: create the case, then its studies one at a time in manifest order (the server
assigns positions as they come), then its series in order, each with the upload ids of its
slices; uploads start at once and share one pool across all cases; finally mark the upload
finished. Every create goes through the ``Ledger`` (intent, request, result); a create whose
outcome is unknown stops its case, except a case create, which the case listing may settle
(``settle.judge``). A refused login or a lockfile that cannot be written stops the whole run,
which still ends with its report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from casesync.api.models import (
    CaseFields,
    JobStatus,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    UploadSlot,
    User,
)
from casesync.cli.progress import ApplyReport, CaseOutcome, Events
from casesync.errors import (
    ApiError,
    AuthError,
    CasesyncError,
    LockfileError,
    OutcomeUnknown,
    Refused,
)
from casesync.project.manifest import CaseSpec, ImageFile, Manifest, SeriesSpec
from casesync.sync.journal import Intent, Ledger
from casesync.sync.lockfile import fingerprints
from casesync.sync.plan import (
    CasePlan,
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    Plan,
)
from casesync.sync.settle import judge
from casesync.sync.waiting import Clock, JobWaiter, MonotonicClock, StillProcessing

T = TypeVar("T")
CASE_CREATE_ATTEMPTS = 3


class ApiClient(Protocol):
    """What the executor needs from ``casesync.api.client.RadiopaediaClient``."""

    async def current_user(self) -> User: ...
    async def list_cases(self) -> list[RemoteCase]: ...
    async def create_case(self, fields: CaseFields) -> RemoteCase: ...
    async def create_study(self, case_id: int, fields: StudyFields) -> RemoteStudy: ...
    async def presign(self, sha256s: Sequence[str]) -> list[UploadSlot]: ...
    async def upload(
        self, path: Path, slot: UploadSlot, content_type: str, progress: _Progress | None = None
    ) -> UploadSlot: ...
    async def create_series(
        self, case_id: int, study_id: int, fields: SeriesFields, upload_ids: Sequence[int]
    ) -> str: ...
    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus: ...
    async def mark_upload_finished(self, case_id: int) -> RemoteCase: ...


class _Progress(Protocol):
    def __call__(self, count: int, /) -> None: ...


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


class CaseBlocked(Exception):
    """A create of this case has an unknown outcome; the user settles it with resolve."""

    def __init__(self, intent: Intent, way_out: str = "") -> None:
        super().__init__(f"{intent.describe()}; {way_out or intent.way_out()}")
        self.intent = intent


class CaseSkipped(Exception):
    """The case cannot take new imaging (no longer a draft, or deleted on the site)."""


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
        self._claims: dict[str, asyncio.Future[None]] = {}  # sha256 -> its upload finished
        # a batch is presigned just before its PUTs: one batch uploads while the next is
        # presigned, so a URL waits at most one batch of uploads (URLs may expire quickly)
        self._window = asyncio.Semaphore(2)
        self._batch = options.upload_concurrency
        self._listing: dict[int, RemoteCase] | None = None
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
            status = "interrupted" if work else "unchanged"
            message = "not finished" if work else ""
            self.report.outcomes[case.key] = CaseOutcome(case.key, status, message, case.case_id)
        if not cases:
            return
        user = await self.client.current_user()
        doubts: dict[str, str] = {}  # case key -> why its unknown case create stays unknown
        for intent in self.ledger.open_intents:
            if intent.kind == "case":
                try:
                    await self._settle_case(intent)
                except CaseBlocked as exc:
                    doubts[intent.case] = str(exc)
        cases = self._check_quota(user, cases)
        blocked = {i.case: i for i in self.ledger.open_intents}
        runnable = []
        for case in cases:
            if case.key in blocked:
                why = doubts.get(case.key) or str(CaseBlocked(blocked[case.key]))
                self._outcome(case.key, "unknown", why)
            else:
                runnable.append(case)
        await asyncio.gather(*(self._case(case) for case in runnable))

    def _check_quota(self, user: User, cases: list[CasePlan]) -> list[CasePlan]:
        """The cases to run: all, or with --within-quota the new ones that fit (in order)."""
        new = [
            case.key
            for case in cases
            if any(isinstance(a, CreateCase) for a in case.actions)
            and case.key not in self.ledger.lock.cases
        ]
        left = user.quotas.drafts_left
        if left is None or len(new) <= left:
            return cases
        if self.options.within_quota:
            used = f"{user.quotas.draft_case_count} of {user.quotas.allowed_draft_cases}"
            for key in new[left:]:
                self._outcome(
                    key,
                    "waiting",
                    f"waiting for draft quota ({used} drafts used): publish or delete drafts "
                    "on the site, then run apply again",
                )
            return [case for case in cases if case.key not in new[left:]]
        raise Refused(
            f"{len(new)} new cases to create, but the draft quota of {user.login} allows only "
            f"{left} more ({user.quotas.draft_case_count} of "
            f"{user.quotas.allowed_draft_cases} used); nothing was created",
            hint="apply fewer with --case KEY or with --within-quota, or publish or delete "
            "drafts on the site, or ask Radiopaedia to raise your quota",
        )

    async def _listing_by_id(self, refresh: bool = False) -> dict[int, RemoteCase]:
        if self._listing is None or refresh:
            self._listing = {c.id: c for c in await self.client.list_cases()}
        return self._listing

    async def _settle_case(self, intent: Intent) -> int | None:
        """An unknown case create: the listing shows it exists (adopt it), or not, or cannot
        tell (``CaseBlocked``: the user settles it with resolve)."""
        listing = await self._listing_by_id(refresh=True)
        verdict = judge(intent, listing.values(), self.ledger.lock, self.ledger.open_intents)
        if verdict.doubt:
            raise CaseBlocked(intent, verdict.way_out(intent))
        if verdict.adopted is not None:
            case = verdict.adopted
            self.ledger.finish(intent, {"case_id": case.id, "created_at": case.created_at})
            self.events.notice(
                f"case {intent.case}: the create sent at {intent.local_time()} did reach the "
                f"server: adopted case {case.id} from the case listing"
            )
            self.report.cases_created += 1
            return case.id
        self.ledger.not_created(intent, "no matching case in the case listing")
        self.events.notice(
            f"case {intent.case}: the create sent at {intent.local_time()} did not reach the "
            "server (not in the case listing); it will be created"
        )
        return None

    def _outcome(self, key: str, status: str, message: str = "") -> None:
        locked = self.ledger.lock.cases.get(key)
        self.report.outcomes[key] = CaseOutcome(
            key, status, message, locked.case_id if locked else None
        )

    async def _case(self, plan: CasePlan) -> None:
        spec = self.manifest.case(plan.key)
        uploads: dict[tuple[int, int], asyncio.Task[dict[str, int]]] = {}
        try:
            self._check_stop()
            if plan.case_id is not None:
                await self._check_draft(plan.case_id)
            for action in plan.actions:
                if isinstance(action, CreateSeries):
                    series = spec.studies[action.study_index].series[action.series_index]
                    uploads[(action.study_index, action.series_index)] = asyncio.create_task(
                        self._upload_series(plan.key, action, series)
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
            self._outcome(plan.key, "done")
        except Stopped as exc:
            self._outcome(
                plan.key, "interrupted" if self.report.interrupted else "skipped", str(exc)
            )
        except CaseBlocked as exc:
            self._outcome(plan.key, "unknown", str(exc))
        except CaseSkipped as exc:
            self._outcome(plan.key, "skipped", str(exc))
        except StillProcessing as exc:
            self._outcome(plan.key, "processing", str(exc))
        except (ApiError, OSError) as exc:  # OSError: a file changed or vanished since validation
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

    async def _check_draft(self, case_id: int) -> None:
        listing = await self._listing_by_id()
        remote = listing.get(case_id)
        if remote is None:
            raise CaseSkipped(
                f"case {case_id} is not in your case listing (deleted on the site?); nothing "
                f"was added; 'casesync apply --recreate {self._key_of(case_id)}' creates it again"
            )
        if not remote.is_draft:
            raise CaseSkipped(
                f"case {case_id} is {remote.status.replace('_', ' ')}: only a draft can take "
                "new imaging; add it on the site"
            )

    def _key_of(self, case_id: int) -> str:
        return next(k for k, c in self.ledger.lock.cases.items() if c.case_id == case_id)

    async def _ensure_case(self, plan: CasePlan, spec: CaseSpec) -> int:
        locked = self.ledger.lock.cases.get(plan.key)
        if locked is not None:
            return locked.case_id
        record = {"title": spec.fields.title, "fields": fingerprints(spec.sent_fields())}
        for _ in range(CASE_CREATE_ATTEMPTS):
            self._check_stop()
            self.events.step(plan.key, "create case", "started")
            try:
                intent, remote = await self._send(
                    plan.key, "case", "case", record, lambda: self.client.create_case(spec.fields)
                )
            except CaseBlocked as lost:  # the listing may tell
                await self.clock.sleep(self.options.settle_seconds)
                adopted = await self._settle_case(lost.intent)
                if adopted is None:
                    continue
                self.events.step(plan.key, "create case", "done", f"id {adopted}")
                return adopted
            except (ApiError, AuthError) as exc:
                self.events.step(plan.key, "create case", "failed", str(exc))
                raise
            self.ledger.finish(intent, {"case_id": remote.id, "created_at": remote.created_at})
            self.report.cases_created += 1
            self.events.step(plan.key, "create case", "done", f"id {remote.id}")
            return remote.id
        raise ApiError(f"creating case {plan.key} failed {CASE_CREATE_ATTEMPTS} times")

    async def _create_study(
        self, key: str, case_id: int, spec: CaseSpec, action: CreateStudy
    ) -> int:
        study = spec.studies[action.study_index]
        label = f"study {action.study_index + 1}"
        record = {
            "case_id": case_id,
            "study_index": action.study_index,
            "position": action.position,
            "key": study.key,
            "fields": fingerprints(study.sent_fields()),
        }
        remote = await self._create(
            key,
            "study",
            label,
            record,
            lambda: self.client.create_study(case_id, study.fields(action.position)),
            lambda made: {"study_id": made.id},
        )
        self.report.studies_created += 1
        self.events.step(key, f"create {label}", "done", f"id {remote.id}, pos {action.position}")
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
        files = [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "upload_id": upload_ids[f.sha256]}
            for f in series.files
        ]
        record = {
            "case_id": case_id,
            "study_id": study_id,
            "content_id": series.content_id,
            "key": series.key,
            "fields": fingerprints(series.sent_fields()),
            "files": files,
        }
        label = f"study {action.study_index + 1} series {action.series_index + 1}"
        ids = [upload_ids[f.sha256] for f in series.files]  # slice order
        job_id = await self._create(
            key,
            "series",
            label,
            record,
            lambda: self.client.create_series(case_id, study_id, series.fields(), ids),
            lambda made: {"job_id": made},
        )
        self.report.series_created += 1
        self.events.step(key, f"create {label}", "done", f"job {job_id}")

    async def _create(
        self,
        key: str,
        kind: str,
        label: str,
        record: dict[str, Any],
        request: Callable[[], Awaitable[T]],
        remote: Callable[[T], dict[str, Any]],
    ) -> T:
        """A study or series create, bracketed by the journal; unknown outcome blocks the case."""
        self._check_stop()
        step = f"create {label}"
        self.events.step(key, step, "started")
        try:
            intent, made = await self._send(key, kind, label, record, request)
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
        kind: str,
        label: str,
        record: dict[str, Any],
        request: Callable[[], Awaitable[T]],
    ) -> tuple[Intent, T]:
        """Journal the intent, then send: only ``OutcomeUnknown`` leaves the intent open.

        Any other error means the server did not make it (an error answer, a refused login,
        or a failure before the request left), so the intent is closed as not created.
        """
        async with self._sending:
            self._check_stop()
            intent = self.ledger.begin(kind, key, label, record)
            try:
                return intent, await request()
            except OutcomeUnknown as exc:
                raise CaseBlocked(intent) from exc
            except Exception as exc:
                self.ledger.not_created(intent, str(exc) or type(exc).__name__)
                raise

    async def _mark_finished(self, key: str, case_id: int) -> None:
        self._check_stop()
        self.events.step(key, "mark upload finished", "started")
        await self.client.mark_upload_finished(case_id)
        self.ledger.mark_finished(key)
        self.events.step(key, "mark upload finished", "done")

    async def _upload_series(
        self, key: str, action: CreateSeries, series: SeriesSpec
    ) -> dict[str, int]:
        """Upload ids by hash: presigned just in time, in batches, uploading what is missing."""
        unique: dict[str, ImageFile] = {}
        for file in series.files:
            unique.setdefault(file.sha256, file)
        hashes = list(unique)
        batches = [hashes[i : i + self._batch] for i in range(0, len(hashes), self._batch)]
        step = f"upload study {action.study_index + 1} series {action.series_index + 1}"
        self.events.step(key, step, "started")
        results = await asyncio.gather(
            *(
                self._upload_batch([unique[h] for h in batch], series.image_format)
                for batch in batches
            )
        )
        ids = {sha: upload_id for part in results for sha, upload_id in part.items()}
        self.events.step(key, step, "done", f"{len(ids)} file{'s' if len(ids) != 1 else ''}")
        return ids

    async def _upload_batch(self, files: list[ImageFile], content_type: str) -> dict[str, int]:
        async with self._window:
            self._check_stop()
            mine = [f for f in files if f.sha256 not in self._claims]
            theirs = [f for f in files if f.sha256 in self._claims]
            loop = asyncio.get_running_loop()
            claims = {f.sha256: loop.create_future() for f in mine}
            self._claims.update(claims)
            try:
                ids = await self._presign_and_put(mine, content_type)
            finally:
                for future in claims.values():
                    future.set_result(None)
            if theirs:  # the same bytes in another series: wait, then the server has them
                await asyncio.gather(*(self._claims[f.sha256] for f in theirs))
                ids.update(await self._presign_and_put(theirs, content_type))
            return ids

    async def _presign_and_put(self, files: list[ImageFile], content_type: str) -> dict[str, int]:
        if not files:
            return {}
        slots = await self.client.presign([f.sha256 for f in files])
        by_hash = {f.sha256: f for f in files}
        done = await asyncio.gather(*(self._put(by_hash[s.sha256], s, content_type) for s in slots))
        return dict(done)

    async def _put(self, file: ImageFile, slot: UploadSlot, content_type: str) -> tuple[str, int]:
        if slot.already_uploaded:
            self.report.files_present += 1
            return file.sha256, slot.upload_id
        self._check_stop()
        path = self.manifest.project.root / file.path
        final = await self.client.upload(path, slot, content_type, progress=self._uploaded)
        self.report.files_uploaded += 1
        self.report.bytes_uploaded += file.size
        return file.sha256, final.upload_id

    def _uploaded(self, count: int) -> None:
        self.events.uploaded(count)
