import io
import json

from rich.console import Console

from casesync.cli.options import Output
from casesync.cli.progress import (
    JsonEvents,
    PlainEvents,
    RichEvents,
    shorten_middle,
    summary_lines,
)
from casesync.sync.plan import CasePlan, CreateCase, MarkUploadFinished, Plan
from casesync.sync.report import ApplyReport, CaseOutcome, Step
from casesync.sync.uploads import upload_detail

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


LONG_KEY = "neuro/paediatric-" + "x" * 80 + "-posterior-fossa-tumour-2024"


def test_a_long_case_key_is_cut_in_the_middle_so_each_line_fits_80_columns() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    plan = Plan(API, (CasePlan(LONG_KEY, "T", None, (CreateCase("T"),), ()),), (), "sha256:x")
    events = RichEvents(console)
    events.plan(plan)
    events.step(LONG_KEY, Step.create_study(0), "started")
    events.live.refresh()
    events.close()
    bar_lines = [line for line in out.getvalue().splitlines() if "0/1" in line]
    assert bar_lines, out.getvalue()
    for line in bar_lines:
        visible = line.split("\x1b")[0] if "\x1b[" in line else line
        assert len(visible.rstrip()) <= 80, line
        assert "neuro/paed" in line and "…" in line and "create study 1 started" in line


def test_shorten_middle_keeps_both_ends() -> None:
    assert shorten_middle("abcdefghij", 7) == "abc…hij"
    assert shorten_middle("short", 7) == "short"
    assert len(shorten_middle(LONG_KEY, 30)) == 30


def test_without_a_terminal_lines_are_not_padded() -> None:
    out = io.StringIO()
    events = PlainEvents(Output().console(plain=True))
    events.console.file = out
    events.plan(PLAN)
    events.summary(report(), API)
    lines = out.getvalue().splitlines()
    assert lines and all(line == line.rstrip() for line in lines)
    assert max(map(len, lines)) < 200
    assert "\x1b" not in out.getvalue()


def test_quiet_prints_failures_and_the_summary_verbose_also_starts() -> None:
    def run(verbosity: int) -> str:
        out = io.StringIO()
        events = PlainEvents(Console(file=out, width=120), verbosity)
        events.step("a", Step.create_case(), "started")
        events.step("a", Step.create_case(), "done", "id 7")
        events.step("b", Step.create_case(), "failed", "boom")
        events.summary(report(), API)
        return out.getvalue()

    quiet, normal, verbose = run(-1), run(0), run(1)
    assert "done" not in quiet and "b: create case failed (boom)" in quiet
    assert "casesync apply:" in quiet
    assert "a: create case done (id 7)" in normal and "started" not in normal
    assert "a: create case started" in verbose


def test_the_summary_counts_files_as_the_plan_did_after_a_resume() -> None:
    done = ApplyReport(files_uploaded=2, files_resumed=1, files_present=4, bytes_uploaded=10)
    text = "\n".join(summary_lines(done, API))
    assert "3 files uploaded (1 sent by an earlier run that was stopped)" in text
    assert "4 files of new series already on the server (not sent again)" in text
    assert upload_detail(3, 7) == "3 files uploaded, 4 already on the server"
    assert upload_detail(1, 1) == "1 file uploaded"


def test_no_color_consoles_emit_no_escape_code_at_all() -> None:
    for output in (
        Output.from_flags(False, False, True, {}),
        Output.from_flags(False, False, False, {"NO_COLOR": "1", "FORCE_COLOR": "1"}),
    ):
        console = output.console()
        console.file = io.StringIO()
        console.print("[bold underline red]styled[/] https://example.org 12 MB", style="italic")
        assert console.file.getvalue() == "styled https://example.org 12 MB\n"
    forced = Output.from_flags(False, False, False, {"FORCE_COLOR": "1"})
    assert forced.force_terminal and forced.color
