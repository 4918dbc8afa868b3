import io
import json

from rich.console import Console

from casesync.cli.progress import JsonEvents, PlainEvents, RichEvents
from casesync.sync.plan import CasePlan, CreateCase, MarkUploadFinished, Plan
from casesync.sync.report import ApplyReport, CaseOutcome, Step

API = "https://radiopaedia.org"
PLAN = Plan(API, (CasePlan("a", "A", None, (CreateCase("A"),), ()),), (), "sha256:x")


def report() -> ApplyReport:
    done = ApplyReport(cases_created=1, bytes_uploaded=2_000_000, elapsed=2.0)
    done.outcomes["a"] = CaseOutcome("a", "done", "", 7)
    done.outcomes["b"] = CaseOutcome("b", "failed", "422: Was not anonymized", None)
    return done


def test_json_events_are_one_object_per_line() -> None:
    out = io.StringIO()
    events = JsonEvents(out)
    events.plan(PLAN)
    events.step("a", Step.create_case(), "done", "id 7")
    events.summary(report(), API)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["plan", "step", "summary"]
    assert lines[2]["outcomes"][0]["url"] == f"{API}/cases/7"
    assert lines[2]["outcomes"][1]["message"] == "422: Was not anonymized"


def test_plain_lines_for_finished_steps_only_and_a_summary_table() -> None:
    out = io.StringIO()
    events = PlainEvents(Console(file=out, width=120))
    events.plan(PLAN)
    events.step("a", Step.create_case(), "started")
    events.step("a", Step.create_case(), "done", "id 7")
    events.summary(report(), API)
    text = out.getvalue()
    assert "create case started" not in text
    assert "a: create case done (id 7)" in text
    assert "1.0 MB/s" in text  # throughput
    assert "422: Was not anonymized" in text
    assert f"a: {API}/cases/7" in text


def test_rich_bars_on_a_terminal_end_with_the_same_summary() -> None:
    out = io.StringIO()
    events = RichEvents(Console(file=out, width=120, force_terminal=True))
    events.plan(PLAN)
    events.step("a", Step.upload(0, 0), "started")
    events.uploaded(1000)
    events.step("a", Step.create_case(), "failed", "boom")
    events.summary(report(), API)
    events.close()
    text = out.getvalue()
    assert "a: create case failed (boom)" in text
    assert f"{API}/cases/7" in text


def test_a_case_bar_counts_the_plan_actions_only() -> None:
    """Uploads and --wait's processing jobs are not actions: the bar never passes its total."""
    plan = Plan(
        API, (CasePlan("a", "A", None, (CreateCase("A"), MarkUploadFinished()), ()),), (), "x"
    )
    events = RichEvents(Console(file=io.StringIO(), width=120, force_terminal=True))
    events.plan(plan)
    for step in (Step.create_case(), Step.upload(0, 0), Step.mark_finished()):
        events.step("a", step, "done")
    for job in ("j1", "j2", "j3"):
        events.step("a", Step.processing(job), "done")
    events.close()
    (bar,) = events.steps.tasks
    assert (bar.completed, bar.total) == (2, 2)
