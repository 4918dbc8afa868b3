"""Waiting during apply: the clock, and ``--wait``'s polling of series jobs up to a deadline.

Time comes from a ``Clock`` so that tests run waits and deadlines without sleeping. A job that
is still processing at the deadline is recorded in the lock with its last status (not a final
one) and reported: apply never polls forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from casesync.api.models import JobStatus
from casesync.errors import ApiError
from casesync.sync.journal import Ledger
from casesync.sync.report import Step, StepEvents

FINAL_JOB_STATES = ("completed-dicom-processing", "ready")


class Clock(Protocol):
    def now(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class JobClient(Protocol):
    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus: ...


class StillProcessing(Exception):
    """--wait ran out of time with series jobs of this case still processing."""


class JobWaiter:
    """Polls series jobs; one deadline for the whole run, set when the first wait starts."""

    def __init__(
        self,
        client: JobClient,
        ledger: Ledger,
        events: StepEvents,
        clock: Clock,
        *,
        poll_seconds: float,
        timeout: float,
        check_stop: Callable[[], None],
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.events = events
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self.check_stop = check_stop
        self.deadline: float | None = None

    async def wait_case(self, key: str, case_id: int) -> None:
        """Record the status of every unfinished job of the case; raise for late or failed."""
        if self.deadline is None:
            self.deadline = self.clock.now() + self.timeout
        late = []
        for study in self.ledger.lock.cases[key].studies:
            for series in study.series:
                if series.job_id is None or study.study_id is None:
                    continue  # adopted: nothing of ours to poll
                if series.status in FINAL_JOB_STATES:
                    continue
                step = Step.processing(series.job_id)
                status = await self._poll(case_id, study.study_id, series.job_id, self.deadline)
                recorded = status.status or (None if status.done else "processing")
                self.ledger.record_job(key, series.job_id, recorded, status.series_id)
                if not status.done:
                    late.append(f"{series.job_id} ({recorded})")
                    self.events.step(key, step, "failed", f"still {recorded} at the deadline")
                elif status.failed:
                    self.events.step(key, step, "failed", "the server reported no series")
                    raise ApiError(f"series job {series.job_id} failed in processing")
                else:
                    self.events.step(key, step, "done", status.status or "")
        if late:
            raise StillProcessing(
                f"series job{'s' * (len(late) > 1)} {', '.join(late)} still processing after "
                f"--wait-timeout ({self.timeout / 60:g} min), recorded as such in the lockfile; "
                "look at the case on the site later"
            )

    async def _poll(self, case_id: int, study_id: int, job_id: str, deadline: float) -> JobStatus:
        """The job's status once it is done, or as it stands when the deadline has passed."""
        while True:
            self.check_stop()
            status = await self.client.job_status(case_id, study_id, job_id)
            left = deadline - self.clock.now()
            if status.done or left <= 0:
                return status
            await self.clock.sleep(min(self.poll_seconds, left))
