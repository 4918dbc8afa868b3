"""``run_apply`` before anything is sent: the plan a person confirms says all there is to know."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from phifactory import clean_ct, write
from repofactory import SIMPLE_CASE, write_case, write_project
from rich.console import Console

from casesync.cli.progress import JsonEvents, PlainEvents
from casesync.errors import Refused
from casesync.sync.apply import ApplySettings, run_apply


def project_with_phi_warnings(root: Path) -> Path:
    write_project(root)
    case_dir = write_case(root, "ct-01", SIMPLE_CASE.replace("X-ray", "CT"))
    (case_dir / "xr").mkdir()
    write(clean_ct(), case_dir / "xr" / "1.dcm")  # passes the gate with lo-value warnings
    return root


def test_the_plan_shown_before_the_prompt_carries_the_phi_warnings(tmp_path: Path) -> None:
    out = io.StringIO()
    shown: list[str] = []

    def decline() -> bool:
        shown.append(out.getvalue())  # what the person saw when asked "Apply? [y/N]"
        return False

    settings = ApplySettings(root=project_with_phi_warnings(tmp_path), interactive=True)
    events = PlainEvents(Console(file=out, width=400, no_color=True))
    with pytest.raises(Refused, match="cancelled"):
        run_apply(settings, events, decline)
    [before] = shown
    assert "    ! study 1 series 1: PHI gate [lo-value] " in before
    assert before.rstrip().endswith(", 1 warning.")


def test_the_json_plan_event_carries_them_too(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = ApplySettings(root=project_with_phi_warnings(tmp_path), interactive=True)
    with pytest.raises(Refused):
        run_apply(settings, JsonEvents(out), lambda: False)
    event = json.loads(out.getvalue().splitlines()[0])
    assert event["event"] == "plan"
    assert event["plan"]["summary"]["warnings"] == 1
    assert event["plan"]["cases"][0]["warnings"][0]["code"] == "phi-lo-value"
