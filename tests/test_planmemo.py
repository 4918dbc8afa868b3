"""The plan memo: reused only while nothing the plan was computed from has changed.

The clock is injected: ``LATER`` puts the walk ten seconds after every file was written, so a
snapshot is trusted; ``NOW`` leaves the files inside the racy window.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from repofactory import png_bytes, simple_repo, write_pngs
from typer.testing import CliRunner

from casesync.cli.app import app
from casesync.sync import planmemo, workflow
from casesync.sync.lockfile import Lock, save_lock
from casesync.sync.plan import (
    Blocked,
    CasePlan,
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    Plan,
    PlanWarning,
)


def LATER() -> int:
    return time.time_ns() + 10 * 10**9


NOW = time.time_ns
MEMO = Path(".casesync") / "cache" / planmemo.MEMO_FILE


class Counted:
    """``workflow.prepare_plan`` with a count of calls: a call is a miss."""

    def __init__(self) -> None:
        self.calls = 0
        self.original = workflow.prepare_plan

    def __call__(self, *args: object, **kwargs: object) -> workflow.PreparedPlan:
        self.calls += 1
        return self.original(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted()
    monkeypatch.setattr(workflow, "prepare_plan", counted)
    return counted


def plan_twice(
    root: Path, counted: Counted, change: Callable[[], object], clock: Callable[[], int] = LATER
) -> tuple[Plan, Plan, int]:
    """Plan, apply ``change``, plan again: both plans and how many were computed."""
    first = workflow.plan_only(root, clock=clock)
    change()
    second = workflow.plan_only(root, clock=clock)
    return first, second, counted.calls


def test_an_unchanged_project_reuses_the_plan(tmp_path: Path, computed: Counted) -> None:
    root = simple_repo(tmp_path / "repo", cases=2)
    first, second, calls = plan_twice(root, computed, lambda: None)
    assert calls == 1
    assert second == first
    assert second.has_changes  # no lock yet: everything to create, remembered as it was


def test_what_git_and_casesync_write_for_themselves_is_not_an_input(
    tmp_path: Path, computed: Counted
) -> None:
    root = simple_repo(tmp_path / "repo")
    (root / ".git").mkdir()

    def housekeeping() -> None:
        (root / ".git" / "index").write_bytes(b"git status rewrites this")
        (root / ".casesync" / "cache" / "other.sqlite").write_bytes(b"")

    assert plan_twice(root, computed, housekeeping)[2] == 1


def test_a_rewritten_slice_misses_even_with_its_size_and_mtime_restored(
    tmp_path: Path, computed: Counted
) -> None:
    root = simple_repo(tmp_path / "repo")
    slice_path = root / "cases" / "case-00" / "xr" / "img2.png"
    before = os.stat(slice_path)

    replacement = next(
        data for seed in range(50, 250) if len(data := png_bytes(seed)) == before.st_size
    )

    def rewrite() -> None:  # other pixels, same length, same mtime: only the ctime moves
        slice_path.write_bytes(replacement)
        os.utime(slice_path, ns=(before.st_atime_ns, before.st_mtime_ns))

    first, second, calls = plan_twice(root, computed, rewrite)
    assert calls == 2
    assert second != first
    assert second == workflow.prepare_plan(root).plan


@pytest.mark.parametrize(
    "change",
    ["new slice", "edited manifest", "new lockfile", "api url flag", "casesync.yaml"],
)
def test_any_input_that_changes_recomputes_the_plan(
    tmp_path: Path, computed: Counted, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    root = simple_repo(tmp_path / "repo")
    case_dir = root / "cases" / "case-00"
    workflow.plan_only(root, clock=LATER)
    if change == "new slice":
        write_pngs(case_dir / "xr", ["img9.png"], seed=90)
    elif change == "edited manifest":
        text = (case_dir / "case.yaml").read_text()
        (case_dir / "case.yaml").write_text(text.replace("Acute", "Chronic"))
    elif change == "new lockfile":
        save_lock(root / "casesync.lock", Lock(api_url="https://radiopaedia.org"))
    elif change == "casesync.yaml":
        (root / "casesync.yaml").write_text("version: 1\napi_url: http://127.0.0.1:9\n")
    flag = "http://127.0.0.1:9" if change == "api url flag" else None
    second = workflow.plan_only(root, api_url_flag=flag, clock=LATER)
    assert computed.calls == 2
    assert second == workflow.prepare_plan(root, api_url_flag=flag).plan


def test_the_server_chosen_by_the_environment_is_an_input(
    tmp_path: Path, computed: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = simple_repo(tmp_path / "repo")
    workflow.plan_only(root, clock=LATER)
    monkeypatch.setenv("CASESYNC_API_URL", "http://127.0.0.1:9")
    assert workflow.plan_only(root, clock=LATER).api_url == "http://127.0.0.1:9"
    assert computed.calls == 2


def test_files_written_just_now_are_not_trusted(tmp_path: Path, computed: Counted) -> None:
    root = simple_repo(tmp_path / "repo")
    assert plan_twice(root, computed, lambda: None, clock=NOW)[2] == 2
    assert not (root / MEMO).exists()


def test_a_copy_of_the_project_does_not_reuse_the_originals_plan(
    tmp_path: Path, computed: Counted
) -> None:
    root = simple_repo(tmp_path / "repo")
    workflow.plan_only(root, clock=LATER)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)  # memo and mtimes copied; inodes and ctimes are new
    workflow.plan_only(copy, clock=LATER)
    assert computed.calls == 2


@pytest.mark.parametrize("planted", ["garbage", "unknown class", "symlink", "fifo", "wrong digest"])
def test_a_planted_memo_is_a_miss_never_a_crash_nor_a_write_through(
    tmp_path: Path, computed: Counted, planted: str
) -> None:
    root = simple_repo(tmp_path / "repo")
    expected = workflow.plan_only(root, clock=NOW)  # makes .casesync/cache, stores nothing
    memo = root / MEMO
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    current = planmemo.snapshot(root, (), {})
    assert current is not None
    documents = {
        "garbage": "{not json",
        "unknown class": json.dumps(
            {"format": 1, "digest": current.digest, "plan": {"class": "Popen", "fields": {}}}
        ),
        "wrong digest": json.dumps(
            {"format": 1, "digest": "0" * 64, "plan": planmemo.encode(expected)}
        ),
    }
    if planted == "symlink":
        memo.symlink_to(target)
    elif planted == "fifo":
        os.mkfifo(memo)
    else:
        memo.write_text(documents[planted])
    assert workflow.plan_only(root, clock=LATER) == expected
    assert computed.calls == 2
    assert target.read_text() == "{}"


def test_every_plan_class_survives_the_memo() -> None:
    series = CreateSeries(
        1, 2, 33, 4, "image/png", 1, "Axial", "thin", 4, 400, frozenset({"a", "b"})
    )
    case = CasePlan(
        "key",
        "Title",
        7,
        (CreateCase("Title"), CreateStudy(1, "CT", "Axial CT", 3), series, MarkUploadFinished()),
        (PlanWarning("case-changed", "title changed", ("title", "body")),),
        {0: 5, 1: 6},
        (Blocked(CreateStudy(2, "MRI", None, 4), "the case was deleted"),),
        None,
        True,
    )
    plan = Plan("https://radiopaedia.org", (case,), (PlanWarning("gone", "x"),), "sha256:1", "t")
    used = {type(value).__name__ for value in (series, case, plan, *case.actions, *case.blocked)}
    used |= {"PlanWarning"}
    assert used == set(planmemo._CLASSES)  # a new plan class needs a place in this test
    assert planmemo.decode(json.loads(json.dumps(planmemo.encode(plan)))) == plan
    for value in (case, series, plan):
        defaults = [
            f.name
            for f in dataclasses.fields(value)
            if getattr(value, f.name) == f.default and f.name not in LISTING_ONLY
        ]
        assert not defaults, f"{type(value).__name__}: set {defaults} in this test"


LISTING_ONLY = {"remote", "quota"}  # set by plan --refresh only, whose plans are never stored


def test_a_plan_with_the_listing_in_it_is_not_stored(tmp_path: Path) -> None:
    root = simple_repo(tmp_path / "repo")
    plan = workflow.prepare_plan(root).plan
    refreshed = dataclasses.replace(plan, checked_at="2026-11-30T12:00:00Z")
    current = planmemo.snapshot(root, (), {}, LATER)
    assert current is not None and current.trusted
    planmemo.save(root, current, refreshed)
    assert not (root / MEMO).exists()
    planmemo.save(root, current, plan)
    assert planmemo.load(root, current) == plan


def test_the_plan_command_shows_the_remembered_plan(
    tmp_path: Path, computed: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = simple_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    monkeypatch.setattr(planmemo, "RACY_NS", -(10**12))  # every file counts as old
    first = CliRunner().invoke(app, ["plan", "--format", "json"])
    second = CliRunner().invoke(app, ["plan", "--format", "json"])
    assert first.exit_code == second.exit_code == 0, first.output
    assert computed.calls == 1
    assert second.output == first.output


def test_another_user_does_not_reuse_the_plan(
    tmp_path: Path, computed: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that user can read may be unreadable to another: nothing in its stat says so."""
    root = simple_repo(tmp_path / "repo")
    workflow.plan_only(root, clock=LATER)
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    workflow.plan_only(root, clock=LATER)
    assert computed.calls == 2


def test_without_a_posix_walk_the_plan_is_always_computed(
    tmp_path: Path, computed: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planmemo, "FD_WALK", False)  # as on Windows, whose ctime is creation
    root = simple_repo(tmp_path / "repo")
    assert plan_twice(root, computed, lambda: None)[2] == 2
    assert not (root / MEMO).exists()


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    root = simple_repo(tmp_path / "repo")
    folders = [os.path.join(root, *["d"] * depth) for depth in range(1, 1501)]
    for folder in folders:  # ~3,000 characters at the bottom: under PATH_MAX
        os.mkdir(folder)
    try:
        assert planmemo.snapshot(root, (), {}) is not None
    finally:  # bottom up: pytest's recursive cleanup would itself hit the recursion limit
        for folder in reversed(folders):
            os.rmdir(folder)
