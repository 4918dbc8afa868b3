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
from casesync.wording import plural

if TYPE_CHECKING:  # rich is imported where something is shown: validate and plan rarely need it
    from rich.console import Console
    from rich.progress import TaskID

    from casesync.cli.options import Output

SUMMARY_EVERY_SECONDS = 10.0
ELLIPSIS = "…"
BAR_WIDTH = 20
STEP_COUNTER_WIDTH = 7  # "12/12" and its padding


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
    """CI logs: a line per finished or failed step, and a summary line now and then.

    ``verbosity``: -1 (quiet) prints only failures, the plan and the summary; 1 also prints
    when each step starts.
    """

    def __init__(self, console: Console, verbosity: int = 0) -> None:
        self.console = console
        self.verbosity = verbosity
        self.total_bytes = 0
        self.sent = 0
        self.last_summary = time.monotonic()

    def plan(self, plan: Plan) -> None:
        self.total_bytes = plan.upload_bytes
        self.console.print(render_text(plan), end="", markup=False, highlight=False)

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        shown = state == "failed" or (self.verbosity >= 0 and state != "started")
        if shown or self.verbosity > 0:
            stamp = time.strftime("%H:%M:%S")
            extra = f" ({detail})" if detail else ""
            line = f"{stamp} {case}: {step} {state}{extra}"
            self.console.print(line, markup=False, highlight=False)
        now = time.monotonic()
        if self.verbosity >= 0 and now - self.last_summary >= SUMMARY_EVERY_SECONDS:
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
        for line in summary_lines(report, api_url):
            self.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        """Nothing to release: every line is already printed."""


class RichEvents(PlainEvents):
    """A TTY: an overall bytes bar with rate and ETA, and one line per case (steps done)."""

    def __init__(self, console: Console, verbosity: int = 0) -> None:
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

        super().__init__(console, verbosity)
        self.transfer = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.steps = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=BAR_WIDTH),
            MofNCompleteColumn(),
            console=console,
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
                    self._describe(case.key, "waiting"), total=len(case.actions)
                )

    def _describe(self, case: str, doing: str) -> str:
        """One line per case that fits the terminal with its bar: long keys lose their middle."""
        room = self.console.width - BAR_WIDTH - STEP_COUNTER_WIDTH - 4
        return "  " + fit(f"{shorten_middle(case, max(12, room // 2))}: {doing}", room)

    def step(self, case: str, step: Step, state: StepState, detail: str = "") -> None:
        self.live.start()  # only once work starts: the confirmation prompt comes before
        task = self.cases.get(case)
        if task is not None:
            self.steps.update(task, description=self._describe(case, f"{step} {state}"))
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


def summary_lines(report: ApplyReport, api_url: str) -> list[str]:
    """The end of a run as plain lines (a log): counts in the plan's terms, problems, URLs."""
    resumed = (
        f" ({report.files_resumed} sent by an earlier run that was stopped)"
        if report.files_resumed
        else ""
    )
    lines = [
        f"casesync apply: {plural(report.cases_created, 'case')}, "
        f"{plural(report.studies_created, 'study')}, "
        f"{plural(report.series_created, 'series')} created; "
        f"{plural(report.files_planned_done, 'file')} uploaded{resumed}; "
        f"{human_bytes(report.bytes_uploaded)} sent in {report.elapsed:.1f} s "
        f"({human_bytes(int(report.throughput))}/s)",
    ]
    if report.files_present:
        lines.append(
            f"{plural(report.files_present, 'file')} of new series already on the server "
            "(not sent again)"
        )
    lines += [
        f"{outcome.key}: {outcome.status}: {outcome.message or '-'}" for outcome in report.problems
    ]
    lines += [
        f"{outcome.key}: {case_url(api_url, outcome.case_id)}"
        for outcome in report.outcomes.values()
        if outcome.case_id is not None and outcome.status in FINE
    ]
    return lines


def shorten_middle(text: str, width: int) -> str:
    """``ct-brain-…-2024`` style: the start and end of a key say the most about it."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    return text[: (keep + 1) // 2] + ELLIPSIS + text[len(text) - keep // 2 :]


def fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + ELLIPSIS


@contextmanager
def hashing_progress(output: Output | None = None) -> Iterator[Callable[[int], None] | None]:
    """A byte counter on stderr while new or changed files are hashed (TTY only, not -q)."""
    if not sys.stderr.isatty() or (output is not None and output.quiet):
        yield None
        return
    from rich.progress import DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    console = output.console(stderr=True) if output is not None else None
    columns = (TextColumn("hashing"), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("hashing", total=None)
        yield lambda size: bar.advance(task, size)
