"""``casesync status``: one row per case from the listing, the lock and the journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import add_study, teaching_repo
from sitehelpers import publish, retitle
from test_e2e_apply import apply, cli

from casesync.api.models import JobStatus
from casesync.sync.journal import Ledger, StudyRecord
from casesync.sync.lockfile import load_lock


def no_jobs(api_url: str, wanted: list[tuple[int, int, str]]) -> dict[str, JobStatus]:
    raise AssertionError("status polled jobs without --jobs")


def test_status_shows_an_unknown_outcome_and_what_needs_attention(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=3, images=2)
    assert apply(root, emulator_thread, "--wait").returncode == 0
    lock_path = root / "casesync.lock"
    lock = load_lock(lock_path, emulator_thread.base_url)
    ids = {key: case.case_id for key, case in lock.cases.items()}
    add_study(root, "case-00", seed=700)  # a study whose create answer was lost:
    Ledger(root, lock_path, lock).begin(
        "cases/case-00", "study 3", StudyRecord(ids["cases/case-00"], 4, None, {})
    )
    publish(emulator_thread, ids["cases/case-01"])

    clean = cli(root, emulator_thread, "status", "--detailed-exitcode")
    assert clean.returncode == 2, clean.stdout + clean.stderr
    lines = clean.stdout.splitlines()
    rows = {line[2:].split(":")[0]: line for line in lines if line[2:].startswith("cases/")}
    assert len(rows) == 3
    assert "unknown outcomes to resolve" in rows["cases/case-00"]
    assert rows["cases/case-00"].startswith("!")
    assert "published, public; up to date" in rows["cases/case-01"]
    assert rows["cases/case-01"].startswith(" ")
    assert f"{emulator_thread.base_url}/cases/{ids['cases/case-02']}" in rows["cases/case-02"]
    assert "casesync resolve cases/case-00 --study-id N" in clean.stdout
    assert "Draft quota of demo: 2 of 10 used" in clean.stdout

    plain = cli(root, emulator_thread, "status")
    assert plain.returncode == 0 and plain.stdout == clean.stdout.replace(
        clean.stdout.splitlines()[0], plain.stdout.splitlines()[0]
    )

    retitle(emulator_thread, ids["cases/case-02"], "Renamed")
    document = json.loads(cli(root, emulator_thread, "status", "-f", "json").stdout)
    by_key = {case["key"]: case for case in document["cases"]}
    assert by_key["cases/case-00"]["local"] == "unknown outcomes to resolve"
    assert by_key["cases/case-01"]["status"] == "published"
    assert by_key["cases/case-02"]["title_on_site"] == "Renamed"
    assert by_key["cases/case-02"]["needs_attention"] is True
    assert by_key["cases/case-01"]["processing"] == []  # --wait recorded the final states
    assert document["needs_attention"] is True


def test_status_jobs_polls_series_still_processing(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=2)
    assert apply(root, emulator_thread).returncode == 0  # no --wait: jobs recorded unfinished
    recorded = json.loads(cli(root, emulator_thread, "status", "-f", "json").stdout)
    assert len(recorded["cases"][0]["processing"]) == 3
    assert recorded["needs_attention"] is False  # processing is not a problem
    polled = json.loads(cli(root, emulator_thread, "status", "--jobs", "-f", "json").stdout)
    assert polled["jobs_polled"] is True and polled["cases"][0]["processing"] == []


def test_status_of_an_invalid_project_names_the_broken_case_file(tmp_path: Path) -> None:
    from casesync.api.models import Quotas, User
    from casesync.sync.remote import RemoteView
    from casesync.sync.status import INVALID, status

    root = teaching_repo(tmp_path / "repo", cases=2, images=1)
    case_file = root / "cases/case-01/case.yaml"
    case_file.write_text(case_file.read_text().replace("system: Gastrointestinal\n", ""))
    remote = RemoteView(User("me", Quotas(10, 0, None, 0)), {}, "2026-01-01T00:00:00+00:00")
    report = status(
        root, api_url_flag="https://radiopaedia.org", read=lambda url: remote, poll=no_jobs
    )
    assert [(c.key, c.local) for c in report.cases] == [("cases/case-01/case.yaml", INVALID)]
    assert report.needs_attention and report.quota is None
