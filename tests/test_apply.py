"""``run_apply`` in-process against the emulator: what survives a disk that fails mid-run.

Every durable write casesync makes (the apply lock, each journal line, each lockfile save)
ends in an ``os.fsync``, so failing the N-th fsync is the disk failing at the N-th step. For
every step, the next run (on a healthy disk) must create nothing that already exists.
Also: the plan a person confirms before anything is sent says all there is to know, and
``--within-quota`` sends drafts out in waves as the draft quota allows (through the CLI).
"""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    apply_in_process,
    check_matches_manifests,
    env_tokens,
    teaching_repo,
    user_answers,
)
from phifactory import clean_ct, write
from repofactory import SIMPLE_CASE, write_case, write_pngs, write_project
from rich.console import Console
from sitehelpers import publish
from test_e2e_apply import apply, cli

from casesync.cli.progress import JsonEvents, PlainEvents
from casesync.emulator import EmulatorConfig, EmulatorThread
from casesync.errors import CasesyncError, PartialFailure, Refused, StateWriteError
from casesync.sync.apply import ApplySettings, run_apply
from casesync.sync.journal import journal_path
from casesync.sync.resolve import resolve

MUTATING = ("POST ", "PUT ", "PATCH ", "DELETE ")


class Disk:
    """Stands in for ``os.fsync``: counts the calls and fails those ``failing`` picks."""

    def __init__(self, failing: Callable[[int], bool] = lambda n: False) -> None:
        self.failing = failing
        self.calls = 0

    def fsync(self, fd: int) -> None:
        self.calls += 1
        if self.failing(self.calls):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig(job_seconds=0.01, draft_quota=None)) as running:
        yield running


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorThread) -> Disk:
    monkeypatch.setenv("CASESYNC_ACCESS_TOKEN", emulator.issue_tokens()["access_token"])
    fake = Disk()
    monkeypatch.setattr(os, "fsync", fake.fsync)
    return fake


def one_case_repo(root: Path, title: str) -> Path:
    """A case, a study and a series (one of each create), under a title no other run uses."""
    write_project(root)
    case = write_case(root, "case-00", SIMPLE_CASE.replace("Acute appendicitis", title))
    write_pngs(case / "xr", ["img1.png", "img2.png"])
    return root


def apply_once(root: Path, emulator: EmulatorThread) -> CasesyncError | None:
    return apply_in_process(root, emulator.base_url)[0]


def apply_until_done(root: Path, emulator: EmulatorThread) -> None:
    """Rerun on a healthy disk, answering resolve as a user would, until apply succeeds."""
    for _ in range(4):
        error = apply_once(root, emulator)
        if error is None:
            return
        assert isinstance(error, PartialFailure), error
        for key, _kind, answer in user_answers(root, emulator.snapshot(), emulator.base_url):
            resolve(root, key, answer, print, api_url_flag=emulator.base_url)
    raise AssertionError("apply did not finish")


def only(state: dict[str, Any], title: str) -> dict[str, Any]:
    return state | {"cases": [c for c in state["cases"] if c["title"] == title]}


def mutating(state: dict[str, Any]) -> int:
    return sum(n for name, n in state["requests"].items() if name.startswith(MUTATING))


def test_a_disk_failing_at_any_step_never_leads_to_a_duplicate(
    tmp_path: Path, emulator: EmulatorThread, disk: Disk
) -> None:
    clean = one_case_repo(tmp_path / "clean", "Durable clean")
    assert apply_once(clean, emulator) is None
    steps = disk.calls
    assert steps == 2 + 6 + 4 * 2  # the apply lock (taken, freed), 6 journal lines, 4 saves

    modes: dict[str, Callable[[int, int], bool]] = {
        "full from": lambda call, step: call >= step,  # the disk fills up and stays full
        "one error at": lambda call, step: call == step,  # one write fails, later ones work
    }
    for mode, fails in modes.items():
        for step in range(1, steps + 1):
            title = f"Durable {mode} {step}"
            root = one_case_repo(tmp_path / f"{mode}-{step}".replace(" ", "-"), title)
            disk.failing = lambda call, step=step, fails=fails: fails(call, step)  # type: ignore[misc]
            disk.calls = 0
            failed = apply_once(root, emulator)
            if isinstance(failed, StateWriteError):
                assert "run 'casesync apply' again" in str(failed) or "nothing was sent" in str(
                    failed
                ), str(failed)
            disk.failing = lambda call: False
            apply_until_done(root, emulator)
            check_matches_manifests(root, only(emulator.snapshot(), title))  # each made once
            assert not journal_path(root).exists(), f"{mode} {step}"


def test_a_lockfile_that_cannot_be_saved_keeps_the_ids_in_the_journal(
    tmp_path: Path, emulator: EmulatorThread, disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = one_case_repo(tmp_path / "repo", "Lock not saved")
    import casesync.sync.journal

    def no_space(path: Path, lock: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(casesync.sync.journal, "save_lock", no_space)
    error = apply_once(root, emulator)
    assert isinstance(error, StateWriteError)
    assert "cannot write" in error.message and "No space left on device" in error.message
    assert "run 'casesync apply' again" in str(error.hint)
    assert journal_path(root).exists()
    assert not (root / "casesync.lock").exists()
    made = only(emulator.snapshot(), "Lock not saved")
    assert len(made["cases"]) == 1  # the run stopped after the first create

    monkeypatch.undo()
    monkeypatch.setenv("CASESYNC_ACCESS_TOKEN", emulator.issue_tokens()["access_token"])
    assert apply_once(root, emulator) is None
    check_matches_manifests(root, only(emulator.snapshot(), "Lock not saved"))


def test_a_full_disk_at_start_is_a_clean_error_and_nothing_is_sent(
    tmp_path: Path, emulator: EmulatorThread, disk: Disk
) -> None:
    root = one_case_repo(tmp_path / "repo", "Full at start")
    disk.failing = lambda call: True
    error = apply_once(root, emulator)
    assert isinstance(error, StateWriteError)
    assert "apply.lock" in error.message and "No space left on device" in error.message
    assert mutating(emulator.snapshot()) == 0


# --- the plan shown before "Apply? [y/N]" ---


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
        run_apply(settings, events, decline, env_tokens)
    [before] = shown
    assert "    ! study 1 series 1: PHI gate [lo-value] " in before
    assert before.rstrip().endswith(", 1 warning.")


def test_the_json_plan_event_carries_them_too(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = ApplySettings(root=project_with_phi_warnings(tmp_path), interactive=True)
    with pytest.raises(Refused):
        run_apply(settings, JsonEvents(out), lambda: False, env_tokens)
    event = json.loads(out.getvalue().splitlines()[0])
    assert event["event"] == "plan"
    assert event["plan"]["summary"]["warnings"] == 1
    assert event["plan"]["cases"][0]["warnings"][0]["code"] == "phi-lo-value"


def test_within_quota_creates_what_fits_then_the_rest_after_publishing(tmp_path: Path) -> None:
    root = teaching_repo(tmp_path / "repo", cases=5, images=1)
    with EmulatorThread(EmulatorConfig(job_seconds=0.05, draft_quota=3)) as emulator:
        refused = apply(root, emulator)
        assert refused.returncode == 5 and "--within-quota" in refused.stderr
        assert emulator.snapshot()["cases"] == []

        planned = cli(root, emulator, "plan", "--refresh", "-f", "json")
        quota = json.loads(planned.stdout)["quota"]
        assert quota["can_create"] == [f"cases/case-0{n}" for n in range(3)]
        assert quota["waiting_for_quota"] == ["cases/case-03", "cases/case-04"]

        first = apply(root, emulator, "--within-quota")
        assert first.returncode == 4, first.stdout + first.stderr
        created = emulator.snapshot()["cases"]
        assert [c["title"] for c in created] == [f"Teaching case {n}" for n in range(3)]
        waiting = [line for line in first.stdout.splitlines() if "waiting for draft quota" in line]
        assert [line.split(": ")[0] for line in waiting] == ["cases/case-03", "cases/case-04"]
        assert "2 waiting" in first.stderr

        status = cli(root, emulator, "status")
        assert "Draft quota of demo: 3 of 3 used" in status.stdout
        assert status.stdout.count("! waiting for draft quota") == 2

        publish(emulator, created[0]["id"])
        publish(emulator, created[1]["id"])
        second = apply(root, emulator, "--within-quota")
        assert second.returncode == 0, second.stdout + second.stderr
        titles = sorted(c["title"] for c in emulator.snapshot()["cases"])
        assert titles == [f"Teaching case {n}" for n in range(5)]
        assert "No changes" in cli(root, emulator, "plan").stdout
