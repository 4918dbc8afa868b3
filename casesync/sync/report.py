"""What an apply run tells its caller: steps as they happen, and the report at the end.

The engine owns this vocabulary; ``casesync.cli.progress`` only renders it. A step has a kind
(what sort of work, so a display can count the plan's actions without reading labels) and a
label (what the user reads: "create study 2 series 1").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from casesync.sync.plan import Plan

StepState = Literal["started", "done", "failed"]
# done | unchanged: nothing left to do; the others are problems the summary lists
CaseStatus = Literal[
    "done", "unchanged", "failed", "skipped", "unknown", "processing", "interrupted", "waiting"
]
FINE: tuple[CaseStatus, ...] = ("done", "unchanged")


class StepKind(enum.Enum):
    CREATE_CASE = "create case"
    CREATE_STUDY = "create study"
    CREATE_SERIES = "create series"
    MARK_FINISHED = "mark upload finished"
    UPLOAD = "upload"  # a series' files, alongside the plan's actions
    PROCESSING = "processing job"  # --wait: a series job, after the plan's actions

    @property
    def is_action(self) -> bool:
        """One of the plan's actions (a progress bar counts these), not work around them."""
        return self not in (StepKind.UPLOAD, StepKind.PROCESSING)


@dataclass(frozen=True)
class Step:
    kind: StepKind
    label: str

    def __str__(self) -> str:
        return self.label

    @classmethod
    def create_case(cls) -> Step:
        return cls(StepKind.CREATE_CASE, "create case")

    @classmethod
    def create_study(cls, study_index: int) -> Step:
        return cls(StepKind.CREATE_STUDY, f"create {study_label(study_index)}")

    @classmethod
    def create_series(cls, study_index: int, series_index: int) -> Step:
        return cls(StepKind.CREATE_SERIES, f"create {series_label(study_index, series_index)}")

    @classmethod
    def upload(cls, study_index: int, series_index: int) -> Step:
        return cls(StepKind.UPLOAD, f"upload {series_label(study_index, series_index)}")

    @classmethod
    def mark_finished(cls) -> Step:
        return cls(StepKind.MARK_FINISHED, "mark upload finished")

    @classmethod
    def processing(cls, job_id: str) -> Step:
        return cls(StepKind.PROCESSING, f"processing job {job_id}")


def case_url(api_url: str, case_id: int) -> str:
    return f"{api_url}/cases/{case_id}"


def study_label(study_index: int) -> str:
    return f"study {study_index + 1}"


def series_label(study_index: int, series_index: int) -> str:
    return f"study {study_index + 1} series {series_index + 1}"


@dataclass
class CaseOutcome:
    key: str
    status: CaseStatus
    message: str = ""
    case_id: int | None = None


@dataclass
class ApplyReport:
    outcomes: dict[str, CaseOutcome] = field(default_factory=dict)
    cases_created: int = 0
    studies_created: int = 0
    series_created: int = 0
    files_uploaded: int = 0  # sent by this run
    files_resumed: int = 0  # counted by the plan, sent by an earlier run that was stopped
    files_present: int = 0  # not counted by the plan: the server had them already
    bytes_uploaded: int = 0
    elapsed: float = 0.0
    interrupted: bool = False  # by a signal

    @property
    def problems(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes.values() if o.status not in FINE]

    @property
    def files_planned_done(self) -> int:
        """The plan's "files to upload" that are now on the server (the number the plan said)."""
        return self.files_uploaded + self.files_resumed

    @property
    def throughput(self) -> float:
        return self.bytes_uploaded / self.elapsed if self.elapsed > 0 else 0.0


class StepEvents(Protocol):
    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None: ...


class Events(StepEvents, Protocol):
    """What apply calls while it runs; the CLI implements it (bars, plain lines or JSON)."""

    def plan(self, plan: Plan) -> None: ...
    def uploaded(self, count: int) -> None: ...
    def notice(self, message: str) -> None: ...
    def summary(self, report: ApplyReport, api_url: str) -> None: ...
    def close(self) -> None: ...
