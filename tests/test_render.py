"""Golden files for the plan renderers; UPDATE_GOLDEN=1 rewrites them after a reviewed change."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from test_plan import API, case, locked, manifest, series, study

from casesync.cli.render import (
    MARKDOWN_MARKER,
    describe_action,
    human_bytes,
    render_plan,
    render_problems,
    summary_line,
)
from casesync.problems import Problem
from casesync.project.manifest import SeriesNote
from casesync.sync.lockfile import Lock
from casesync.sync.plan import CreateSeries, Plan, make_plan

GOLDEN = Path(__file__).parent / "golden"


def sample_plan() -> Plan:
    applied = case("knee-01", study("X-ray", series("1")), title="Old title")
    changed = case(
        "knee-01",
        study("X-ray", series("1")),
        study("MRI", series("4", "5", perspective="Sagittal")),
        title="Meniscal tear | knee",
    )
    lo_value = SeriesNote(
        "phi-lo-value",
        "PHI gate [lo-value] ContrastBolusAgent (0018,0010): long strings may hold personal data; "
        "check what it says; 3 of 3 files, e.g. cases/a/1.png",
        ("ContrastBolusAgent (0018,0010)",),
    )
    new = case(
        "appendicitis-01",
        study("CT", replace(series("1", "2", "3"), notes=(lo_value,)), caption="CT <abdomen>"),
        title="Acute appendicitis",
    )
    gone = case("removed-case", study("CT", series("9")))
    lock = Lock(
        API, {"knee-01": locked(applied, case_id=11), "removed-case": locked(gone, case_id=12)}
    )
    return make_plan(manifest(new, changed), lock, API)


@pytest.mark.parametrize(("fmt", "suffix"), [("text", "txt"), ("json", "json"), ("markdown", "md")])
def test_plan_renders_like_the_golden_file(fmt: str, suffix: str) -> None:
    rendered = render_plan(sample_plan(), fmt)
    golden = GOLDEN / f"plan.{suffix}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_json_plan_is_versioned_and_parses() -> None:
    document = json.loads(render_plan(sample_plan(), "json"))
    assert document["format_version"] == 1
    assert document["summary"]["cases_to_create"] == 1
    assert document["summary"]["warnings"] == 3  # the PHI gate's warning counts too
    [phi] = document["cases"][0]["warnings"]
    assert (phi["code"], phi["fields"]) == ("phi-lo-value", ["ContrastBolusAgent (0018,0010)"])
    assert document["inputs_digest"].startswith("sha256:")


def test_markdown_carries_the_marker_and_escapes_html_and_pipes() -> None:
    text = render_plan(sample_plan(), "markdown")
    assert text.startswith(MARKDOWN_MARKER)
    assert "CT &lt;abdomen&gt;" in text and "Meniscal tear \\| knee" in text


def test_no_changes_summary() -> None:
    spec = case("a", study("CT", series("1")))
    plan = make_plan(manifest(spec), Lock(API, {"a": locked(spec)}), API)
    assert summary_line(plan) == "No changes. The remote cases match the manifests."
    assert render_plan(plan, "text").endswith("No changes. The remote cases match the manifests.\n")


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_400_000_000, "1.4 GB")]
)
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def big_plan(cases: int) -> Plan:
    """A first plan for a whole collection: every case new, three studies of three series."""
    specs = [
        case(
            f"collection/case-{n:03}",
            *(study("CT", series(*(str(i) for i in range(40)))) for _ in range(3)),
            title=f"Teaching case number {n} with a fairly long descriptive title",
        )
        for n in range(cases)
    ]
    return make_plan(manifest(*specs), Lock(API, {}), API)


def test_a_big_markdown_plan_fits_a_pull_request_comment() -> None:
    plan = big_plan(500)
    full = render_plan(plan, "markdown", max_chars=10**9)
    text = render_plan(plan, "markdown")
    assert len(full) > 65_536  # without the budget, the comment would be refused
    assert len(text) <= 60_000
    assert text.startswith(MARKDOWN_MARKER) and summary_line(plan) in text
    shown = text.count("<details>")
    assert 0 < shown < 500
    assert f"**{500 - shown} more cases.**" in text and "full plan is in the job log" in text


@pytest.mark.parametrize("budget", [1_000, 5_000, 20_000])
def test_every_budget_is_kept_and_the_rest_is_counted(budget: int) -> None:
    text = render_plan(big_plan(500), "markdown", max_chars=budget)
    assert len(text) <= budget
    details = text.count("<details>")
    rows = text.count("| `collection/case-")
    left_out = text.split("| … | and ")[1].split(" more case")[0] if "| … |" in text else "0"
    assert details + rows + int(left_out) == 500


def test_a_plan_that_fits_is_not_collapsed() -> None:
    text = render_plan(big_plan(3), "markdown")
    assert text.count("<details>") == 3 and "more case" not in text


def test_problems_as_github_annotations_and_json_carry_the_rule_code() -> None:
    problems = [
        Problem(
            "cases/a/case.yaml",
            4,
            9,
            "unknown modality 'CTT'",
            "did you mean 'CT'?",
            code="unknown-modality",
        ),
        Problem("cases/a/case.yaml", 1, 1, "sample", None, "warning", code="sample-case"),
    ]
    assert render_problems(problems, "github") == (
        "::error file=cases/a/case.yaml,line=4,col=9,title=unknown-modality"
        "::unknown modality 'CTT' (did you mean 'CT'?)\n"
        "::warning file=cases/a/case.yaml,line=1,col=1,title=sample-case::sample\n"
    )
    document = json.loads(render_problems(problems, "json"))
    assert [p["code"] for p in document["problems"]] == ["unknown-modality", "sample-case"]


def test_plan_in_github_form_is_the_text_plan_plus_warning_annotations() -> None:
    plan = sample_plan()
    rendered = render_plan(plan, "github")
    assert rendered.startswith(render_plan(plan, "text"))
    notes = [line for line in rendered.splitlines() if line.startswith("::")]
    assert len(notes) == plan.warning_count


def test_a_series_without_perspective_or_specifics_is_described_without_a_blank_label() -> None:
    action = CreateSeries(0, 1, None, 1, "image/png", 0, None, None, 1, 12_700)
    assert describe_action(action) == (
        "create series 1.2: 1 image (image/png), root 0; upload 1 file (12.7 kB)"
    )
