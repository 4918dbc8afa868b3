"""``casesync adopt`` (both imaging modes) and ``forget``, each followed by a plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from helpers import add_study, teaching_repo
from sitehelpers import create_case, publish
from test_e2e_apply import apply, cli

from casesync.project.schema import schema_text
from casesync.sync.journal import journal_path


def plan_actions(root: Path, emulator: Any, key: str) -> list[str]:
    document = json.loads(cli(root, emulator, "plan", "-f", "json").stdout)
    case = next(case for case in document["cases"] if case["key"] == key)
    return [action["action"] for action in case["actions"]]


def test_adopt_imaging_absent_then_plan_adds_the_studies(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=2)
    case_id = create_case(emulator_thread, "Made on the site")
    done = cli(root, emulator_thread, "adopt", "cases/case-00", "--case-id", str(case_id))
    assert done.returncode == 0, done.stderr
    assert f"now case {case_id} (" in done.stdout
    assert plan_actions(root, emulator_thread, "cases/case-00") == [
        "create_study",
        "create_series",
        "create_series",
        "create_study",
        "create_series",
        "mark_upload_finished",
    ]
    assert not journal_path(root).exists()  # the adopt was journaled, then compacted
    assert apply(root, emulator_thread).returncode == 0
    [case] = emulator_thread.snapshot()["cases"]  # no second case was created
    assert case["id"] == case_id and len(case["studies"]) == 2


def test_adopt_imaging_present_records_everything_then_only_additions_are_planned(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=2)
    assert apply(root, emulator_thread).returncode == 0
    case_id = emulator_thread.snapshot()["cases"][0]["id"]
    (root / "casesync.lock").unlink()  # a team that made its cases before casesync
    publish(emulator_thread, case_id)  # present imaging needs no draft
    done = cli(
        root, emulator_thread, "adopt", "cases/case-00", "--case-id", str(case_id),
        "--imaging", "present",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 studies and 3 series are recorded as present" in done.stdout
    assert plan_actions(root, emulator_thread, "cases/case-00") == []
    lock = json.loads((root / "casesync.lock").read_text())
    jsonschema.validate(lock, json.loads(schema_text("lock")))
    studies = lock["cases"]["cases/case-00"]["studies"]
    assert [(s["study_id"], s["adopted"]) for s in studies] == [(None, True), (None, True)]
    assert all(series["adopted"] for s in studies for series in s["series"])

    add_study(root, "case-00", seed=500)
    assert plan_actions(root, emulator_thread, "cases/case-00") == [
        "create_study",
        "create_series",
        "mark_upload_finished",
    ]


def test_adopt_refuses_unknown_taken_or_published_cases(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2, images=2)
    missing = cli(root, emulator_thread, "adopt", "cases/case-00", "--case-id", "424242")
    assert missing.returncode == 1 and "not in your case listing" in missing.stderr
    case_id = create_case(emulator_thread, "On the site")
    assert (
        cli(root, emulator_thread, "adopt", "cases/case-00", "--case-id", str(case_id)).returncode
        == 0
    )
    taken = cli(root, emulator_thread, "adopt", "cases/case-01", "--case-id", str(case_id))
    assert taken.returncode == 5 and "already recorded for cases/case-00" in taken.stderr
    other = create_case(emulator_thread, "Published")
    publish(emulator_thread, other)
    published = cli(root, emulator_thread, "adopt", "cases/case-01", "--case-id", str(other))
    assert published.returncode == 5 and "--imaging present" in published.stderr
    assert "cases/case-01" not in json.loads((root / "casesync.lock").read_text())["cases"]


def test_forget_then_plan_creates_the_case_again(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2, images=2)
    assert apply(root, emulator_thread).returncode == 0
    case_id = json.loads((root / "casesync.lock").read_text())["cases"]["cases/case-00"]["case_id"]
    unasked = cli(root, emulator_thread, "forget", "cases/case-00")
    assert unasked.returncode == 5 and "--yes" in unasked.stderr
    done = cli(root, emulator_thread, "forget", "cases/case-00", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"case {case_id} ({emulator_thread.base_url}/cases/{case_id})" in done.stdout
    assert "2 studies and 3 series" in done.stdout
    assert plan_actions(root, emulator_thread, "cases/case-00")[0] == "create_case"
    assert plan_actions(root, emulator_thread, "cases/case-01") == []
    again = cli(root, emulator_thread, "forget", "cases/case-00", "--yes")
    assert again.returncode == 1 and "nothing to forget" in again.stderr


def test_a_new_series_in_a_study_adopted_without_its_id_is_blocked() -> None:
    from test_plan import API, case, manifest, series, study

    from casesync.sync.adopt import adopted_entry
    from casesync.sync.lockfile import Lock
    from casesync.sync.plan import CreateSeries, CreateStudy, make_plan

    before = case("a", study("CT", series("a")))
    lock = Lock(API, {"a": adopted_entry(before, 5, "", "present")})
    assert not make_plan(manifest(before), lock, API).has_changes
    after = case("a", study("CT", series("a"), series("b")), study("MRI", series("c")))
    plan = make_plan(manifest(after), lock, API).cases[0]
    assert [type(a) for a in plan.actions][:2] == [CreateStudy, CreateSeries]
    assert plan.actions[1].study_index == 1
    [blocked] = plan.blocked
    assert isinstance(blocked.action, CreateSeries) and blocked.action.study_index == 0
    assert "adopted without its id" in blocked.reason


def test_adopt_and_forget_are_folded_from_the_journal_and_a_stopped_one_never_happened(
    tmp_path: Path,
) -> None:
    from test_plan import API, case, series, study

    from casesync.sync.adopt import adopted_entry
    from casesync.sync.journal import AdoptRecord, CaseMade, ForgetRecord, Forgotten, Ledger
    from casesync.sync.lockfile import load_lock

    lock_path = tmp_path / "casesync.lock"
    entry = adopted_entry(case("a", study("CT", series("a"))), 7, "", "present")
    ledger = Ledger(tmp_path, lock_path, load_lock(lock_path, API))
    adopt_intent = ledger.begin("a", "adopt", AdoptRecord(entry))
    ledger.finish(adopt_intent, CaseMade(7))
    ledger.begin("a", "forget", ForgetRecord(7))  # killed before its result
    again = Ledger(tmp_path, lock_path, load_lock(lock_path, API))
    assert again.recover() == []
    assert again.lock.cases["a"] == entry and load_lock(lock_path, API).cases["a"] == entry
    forget_intent = again.begin("a", "forget", ForgetRecord(7))
    again.finish(forget_intent, Forgotten())
    assert load_lock(lock_path, API).cases == {}
