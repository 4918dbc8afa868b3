"""The executor in-process against the emulator: order of work, unknown outcomes, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from authfactory import tokens_for
from helpers import add_study, check_matches_manifests, teaching_repo

from casesync.api.client import RadiopaediaClient
from casesync.emulator import Emulator
from casesync.errors import ApiError, OutcomeUnknown, Refused
from casesync.sync.apply import settle_and_plan
from casesync.sync.executor import ApiClient, ApplyOptions, Executor
from casesync.sync.lockfile import load_lock
from casesync.sync.report import ApplyReport, Step, StepState
from casesync.sync.resolve import Answer, resolve


class Recorder:
    """Events as a list, to check what a user would be told."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str, str, str]] = []
        self.notices: list[str] = []

    def plan(self, plan: object) -> None:
        pass

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        self.steps.append((case, step.label, state, detail))

    def uploaded(self, count: int) -> None:
        pass

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def summary(self, report: ApplyReport, api_url: str) -> None:
        pass


class LosesAnswers:
    """The real client, except that chosen creates reach the server and their answer is lost."""

    def __init__(self, client: RadiopaediaClient, method: str, sent: bool = True) -> None:
        self.client = client
        self.method = method
        self.sent = sent
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if name != self.method or self.lost:
            return real

        async def lose(*args: Any, **kwargs: Any) -> Any:
            self.lost += 1
            if self.sent:
                await real(*args, **kwargs)
            raise OutcomeUnknown("connection dropped", method="POST", path=name)

        return lose


class Rejects:
    """The real client, except that series creates of one case get a permanent 422."""

    def __init__(self, client: RadiopaediaClient, case_id_of: Callable[[], set[int]]) -> None:
        self.client = client
        self.case_ids = case_id_of

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def create_series(self, case_id: int, *args: Any) -> str:
        if case_id in self.case_ids():
            raise ApiError("422: Validation failed: Uploaded data Was not anonymized", status=422)
        job: str = await self.client.create_series(case_id, *args)
        return job


Run = Callable[..., Awaitable[tuple[ApplyReport, Recorder]]]


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[RadiopaediaClient]:
    async with RadiopaediaClient(emulator.base_url, tokens_for(emulator)) as api:
        yield api


@pytest.fixture
def run(emulator: Emulator) -> Run:
    async def go(root: Path, api: ApiClient, **options: Any) -> tuple[ApplyReport, Recorder]:
        prepared, ledger, plan = settle_and_plan(root, emulator.base_url, None)
        events = Recorder()
        executor = Executor(api, prepared.manifest, plan, ledger, events, ApplyOptions(**options))
        report = await executor.run()
        ledger.compact()
        return report, events

    return go


async def test_creates_everything_in_order(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=3)
    report, events = await run(root, client)
    assert (report.cases_created, report.studies_created, report.series_created) == (3, 6, 9)
    assert report.files_uploaded == 3 * (4 + 3 + 1)
    check_matches_manifests(root, emulator.snapshot())
    lock = load_lock(root / "casesync.lock", emulator.base_url)
    assert all(case.upload_finished for case in lock.cases.values())
    case_steps = [step for case, step, state, _ in events.steps if case == "cases/case-00"]
    creates = [s for s in case_steps if s.startswith("create") and s in case_steps]
    assert creates[0] == "create case"
    assert creates.index("create study 1") < creates.index("create study 2")


async def test_rerun_sends_nothing(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=2)
    await run(root, client)
    before = dict(emulator.snapshot()["requests"])
    report, _ = await run(root, client)
    assert emulator.snapshot()["requests"] == before
    assert {o.status for o in report.outcomes.values()} == {"unchanged"}


@pytest.mark.parametrize(
    ("reached_server", "told"),
    [(True, "adopted case"), (False, "did not reach the server")],
)
async def test_a_lost_case_answer_is_settled_from_the_listing(
    tmp_path: Path,
    emulator: Emulator,
    client: RadiopaediaClient,
    run: Run,
    reached_server: bool,
    told: str,
) -> None:
    root = teaching_repo(tmp_path, cases=2)
    lossy = LosesAnswers(client, "create_case", sent=reached_server)
    report, events = await run(root, lossy, settle_seconds=0.05)
    assert report.problems == []
    assert any(told in notice for notice in events.notices)
    check_matches_manifests(root, emulator.snapshot())


async def test_a_lost_study_answer_blocks_only_its_case_until_resolved(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=2)
    report, _ = await run(root, LosesAnswers(client, "create_study"))
    statuses = sorted(o.status for o in report.outcomes.values())
    assert statuses == ["done", "unknown"]
    (blocked,) = report.problems
    assert "study 1: a create was sent at " in blocked.message
    assert f"casesync resolve {blocked.key} --study-id N" in blocked.message

    again, _ = await run(root, client)  # still blocked: nothing is created blindly
    assert again.outcomes[blocked.key].status == "unknown"
    assert again.studies_created == 0

    state = emulator.snapshot()
    case_id = blocked.case_id
    (study,) = [s for c in state["cases"] if c["id"] == case_id for s in c["studies"]]
    resolve(root, blocked.key, Answer(study_id=study["id"]), print, api_url_flag=emulator.base_url)
    final, _ = await run(root, client)
    assert final.problems == []
    check_matches_manifests(root, emulator.snapshot())


async def test_a_permanent_failure_skips_the_case_and_others_go_on(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=3)
    first_case = lambda: {min(c["id"] for c in emulator.snapshot()["cases"])}  # noqa: E731
    report, _ = await run(root, Rejects(client, first_case))
    failed = [o for o in report.outcomes.values() if o.status == "failed"]
    assert len(failed) == 1
    assert "Was not anonymized" in failed[0].message
    assert sum(o.status == "done" for o in report.outcomes.values()) == 2


async def test_fail_fast_starts_no_new_work(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=3)
    everything = lambda: {c["id"] for c in emulator.snapshot()["cases"]}  # noqa: E731
    report, _ = await run(root, Rejects(client, everything), fail_fast=True)
    statuses = sorted(o.status for o in report.outcomes.values())
    assert statuses == ["failed", "skipped", "skipped"]


async def test_a_case_no_longer_a_draft_takes_no_new_imaging(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=2)
    await run(root, client)
    lock = load_lock(root / "casesync.lock", emulator.base_url)
    published = lock.cases["cases/case-00"].case_id
    emulator.state.cases[published].status = "published"
    add_study(root, "case-00", seed=7000)
    add_study(root, "case-01", seed=8000)
    report, _ = await run(root, client)
    assert report.outcomes["cases/case-00"].status == "skipped"
    assert "published" in report.outcomes["cases/case-00"].message
    assert report.outcomes["cases/case-01"].status == "done"
    assert report.studies_created == 1


async def test_over_quota_is_refused_before_any_create(
    tmp_path: Path, emulator_factory: Any, run: Run
) -> None:
    small = await emulator_factory(draft_quota=1)
    root = teaching_repo(tmp_path, cases=2)
    async with RadiopaediaClient(small.base_url, tokens_for(small)) as api:
        prepared, ledger, plan = settle_and_plan(root, small.base_url, None)
        executor = Executor(api, prepared.manifest, plan, ledger, Recorder(), ApplyOptions())
        with pytest.raises(Refused, match="allows only 1 more"):
            await executor.run()
    assert small.snapshot()["cases"] == []


async def test_wait_records_the_processing_status(
    tmp_path: Path, emulator: Emulator, client: RadiopaediaClient, run: Run
) -> None:
    root = teaching_repo(tmp_path, cases=1)
    report, _ = await run(root, client, wait=True, poll_seconds=0.05)
    assert report.problems == []
    lock = load_lock(root / "casesync.lock", emulator.base_url)
    statuses = {s.status for st in lock.cases["cases/case-00"].studies for s in st.series}
    assert statuses == {"ready"}


class EmulatorTime:
    """The executor's clock: a sleep moves it and the emulator's clock on, and nobody waits."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += seconds
        self.emulator.advance_clock(seconds)
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("job_seconds", "outcome", "polls"),
    [(60, "done", 13 + 1 + 1), (86400, "processing", 121 + 1 + 1)],
)
async def test_wait_polls_until_its_deadline_and_no_longer(
    tmp_path: Path, emulator_factory: Any, job_seconds: int, outcome: str, polls: int
) -> None:
    slow = await emulator_factory(job_seconds=job_seconds)
    root = teaching_repo(tmp_path, cases=1, images=1)
    clock = EmulatorTime(slow)
    options = ApplyOptions(wait=True, wait_timeout=600, poll_seconds=5)
    async with RadiopaediaClient(slow.base_url, tokens_for(slow)) as api:
        prepared, ledger, plan = settle_and_plan(root, slow.base_url, None)
        executor = Executor(api, prepared.manifest, plan, ledger, Recorder(), options, clock)
        report = await executor.run()
    assert report.outcomes["cases/case-00"].status == outcome
    asked = slow.snapshot()["requests"]
    assert sum(n for name, n in asked.items() if name.startswith("GET /image_prep")) == polls
    lock = load_lock(root / "casesync.lock", slow.base_url)
    series = [s for study in lock.cases["cases/case-00"].studies for s in study.series]
    if outcome == "done":
        assert {s.status for s in series} == {"ready"} and clock.time == 60
    else:
        assert clock.time == 600  # the deadline, not a poll more
        assert all(s.status not in ("ready", None) and s.series_id is None for s in series)
        message = report.outcomes["cases/case-00"].message
        assert "still processing after --wait-timeout (10 min)" in message
