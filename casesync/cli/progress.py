"""What apply shows while it runs and at the end: renderings of ``casesync.sync.report``.

Three forms: rich progress bars on a TTY, one plain line per finished step (plus a periodic
summary) for CI logs, and one JSON event per line for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from casesync.cli.render import human_bytes, plan_to_dict, render_text
from casesync.sync.plan import Plan
from casesync.sync.report import FINE, ApplyReport, Step, StepState, case_url

if TYPE_CHECKING:  # rich is imported where something is shown: validate and plan rarely need it
    from rich.console import Console
    from rich.progress import TaskID

SUMMARY_EVERY_SECONDS = 10.0


class JsonEvents:
    """One JSON object per line on ``out``: plan, step, notice, summary."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _emit(self, event: str, **data: Any) -> None:
        self.out.write(json.dumps({"event": event, **data}, sort_keys=True) + "\n")
        self.out.flush()

    def plan(self, plan: Plan) -> None:
        self._emit("plan", plan=plan_to_dict(plan))

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        self._emit("step", case=case, step=step.label, state=state, detail=detail)

    def uploaded(self, count: int) -> None:
        """Byte counts are summed into the summary; per-chunk events would flood the stream."""

    def notice(self, message: str) -> None:
        self._emit("notice", message=message)

    def summary(self, report: ApplyReport, api_url: str) -> None:
        data = asdict(report)
        data["outcomes"] = [
            {**asdict(o), "url": case_url(api_url, o.case_id) if o.case_id else None}
            for o in report.outcomes.values()
        ]
        self._emit("summary", **data)

    def close(self) -> None:
        """Nothing to release: every line is already flushed."""


class PlainEvents:
    """CI logs: a line per finished or failed step, and a summary line now and then."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total_bytes = 0
        self.sent = 0
        self.last_summary = time.monotonic()

    def plan(self, plan: Plan) -> None:
        self.total_bytes = plan.upload_bytes
        self.console.print(render_text(plan), end="", markup=False, highlight=False)

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        if state != "started":
            stamp = time.strftime("%H:%M:%S")
            extra = f" ({detail})" if detail else ""
            line = f"{stamp} {case}: {step} {state}{extra}"
            self.console.print(line, markup=False, highlight=False)
        now = time.monotonic()
        if now - self.last_summary >= SUMMARY_EVERY_SECONDS:
            self.last_summary = now
            self.console.print(
                f"progress: {human_bytes(self.sent)} of {human_bytes(self.total_bytes)} uploaded",
                markup=False,
            )

    def uploaded(self, count: int) -> None:
        self.sent += count

    def notice(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def summary(self, report: ApplyReport, api_url: str) -> None:
        print_summary(self.console, report, api_url)

    def close(self) -> None:
        """Nothing to release: every line is already printed."""


class RichEvents(PlainEvents):
    """A TTY: an overall bytes bar with rate and ETA, and one line per case (steps done)."""

    def __init__(self, console: Console) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        super().__init__(console)
        self.transfer = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.steps = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        )
        self.live = Live(Group(self.transfer, self.steps), console=console)
        self.overall: TaskID | None = None
        self.cases: dict[str, TaskID] = {}

    def plan(self, plan: Plan) -> None:
        super().plan(plan)
        self.overall = self.transfer.add_task("upload", total=plan.upload_bytes or None)
        for case in plan.cases:
            if case.actions:
                self.cases[case.key] = self.steps.add_task(
                    f"  {case.key}: waiting", total=len(case.actions)
                )

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        self.live.start()  # only once work starts: the confirmation prompt comes before
        task = self.cases.get(case)
        if task is not None:
            self.steps.update(task, description=f"  {case}: {step} {state}")
            if state == "done" and step.kind.is_action:  # not uploads, not --wait's jobs
                self.steps.advance(task)
        if state == "failed":
            line = f"{case}: {step} failed ({detail})"
            self.live.console.print(line, markup=False, highlight=False)

    def uploaded(self, count: int) -> None:
        if self.overall is not None:
            self.transfer.advance(self.overall, count)

    def summary(self, report: ApplyReport, api_url: str) -> None:
        self.live.stop()
        super().summary(report, api_url)

    def close(self) -> None:
        self.live.stop()


def print_summary(console: Console, report: ApplyReport, api_url: str) -> None:
    """The end-of-run table, the problem cases with their messages, and the case URLs."""
    from rich.table import Table

    table = Table(title="casesync apply", show_header=False)
    rows = [
        ("cases created", str(report.cases_created)),
        ("studies created", str(report.studies_created)),
        ("series created", str(report.series_created)),
        ("files uploaded", str(report.files_uploaded)),
        ("files already on the server", str(report.files_present)),
        ("bytes uploaded", human_bytes(report.bytes_uploaded)),
        ("time", f"{report.elapsed:.1f} s"),
        ("throughput", f"{human_bytes(int(report.throughput))}/s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if report.problems:
        problems = Table("case", "status", "what happened")
        for outcome in report.outcomes.values():
            problems.add_row(outcome.key, outcome.status, outcome.message or "-")
        console.print(problems)
    for outcome in report.outcomes.values():
        if outcome.case_id is not None and outcome.status in FINE:
            console.print(f"{outcome.key}: {case_url(api_url, outcome.case_id)}", markup=False)


@contextmanager
def hashing_progress() -> Iterator[Callable[[int], None] | None]:
    """A byte counter on stderr while new or changed files are hashed (TTY only)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("hashing"), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hashing", total=None)
        yield lambda size: bar.advance(task, size)
