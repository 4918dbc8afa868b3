"""apply end to end against a server that lies: a proxy in front of the emulator drops or spoils
create answers (``hostile.py``), and the emulator keeps jobs processing. Nothing may be
duplicated, no case may get another case's remote case, and nothing may end in a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import apply_in_process, check_matches_manifests, teaching_repo, user_answers
from hostile import HostileProxy, Spoiler
from phifactory import clean_ct, write

from casesync.emulator import EmulatorConfig, EmulatorThread
from casesync.errors import AuthError, PartialFailure
from casesync.files.formats import DICOM
from casesync.files.hashing import FACTS_TABLE, FactsCache, gather_facts
from casesync.fsutil import RACY_NS
from casesync.project.validate import validate_project
from casesync.sync.journal import Ledger
from casesync.sync.lockfile import load_lock
from casesync.sync.resolve import Answer, resolve

MUTATING = ("POST ", "PUT ", "PATCH ", "DELETE ")
WAIT_NONE = ("--wait", "--wait-timeout", "0")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig(job_seconds=0.01, draft_quota=None)) as running:
        monkeypatch.setenv("CASESYNC_ACCESS_TOKEN", running.issue_tokens()["access_token"])
        yield running


def outcomes(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (summary,) = [e for e in events if e["event"] == "summary"]
    return {o["key"]: o for o in summary["outcomes"]}


def mutating(state: dict[str, Any]) -> dict[str, int]:
    return {name: n for name, n in state["requests"].items() if name.startswith(MUTATING)}


def resolve_as_a_user(root: Path, emulator: EmulatorThread, api_url: str) -> None:
    for key, _kind, answer in user_answers(root, emulator.snapshot(), api_url):
        resolve(root, key, answer, print, api_url_flag=api_url)


def same_title_repo(root: Path) -> Path:
    """Two cases with one title (they differ in age, 0 and 1 years)."""
    teaching_repo(root, cases=2, images=1)
    for index in range(2):
        case_file = root / f"cases/case-{index:02d}/case.yaml"
        case_file.write_text(case_file.read_text().replace(f"Teaching case {index}", "Twins"))
    return root


def test_item2_a_lost_create_never_adopts_another_case_with_the_same_title(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    root = same_title_repo(tmp_path / "repo")
    spoiler = Spoiler(case=["drop-before", "drop-after"])  # one never arrives, one's answer lost
    with HostileProxy(emulator.base_url, spoiler) as proxy:
        error, events = apply_in_process(root, proxy.url)
        assert isinstance(error, PartialFailure), error
        (made,) = emulator.snapshot()["cases"]
        said = outcomes(events)
        for key in ("cases/case-00", "cases/case-01"):
            assert said[key]["status"] == "unknown"
            assert f"look at case {made['id']} on the site" in said[key]["message"]
            assert f"casesync resolve {key} --case-id N" in said[key]["message"]
        assert load_lock(root / "casesync.lock", proxy.url).cases == {}

        again, _ = apply_in_process(root, proxy.url)  # still unknown: nothing is guessed
        assert isinstance(again, PartialFailure)
        assert len(emulator.snapshot()["cases"]) == 1

        # the user looks: the case made is the one whose age says so
        owner = f"cases/case-{int(made['age'].split()[0]):02d}"
        other = ({"cases/case-00", "cases/case-01"} - {owner}).pop()
        resolve(root, owner, Answer(case_id=made["id"]), print, api_url_flag=proxy.url)
        resolve(root, other, Answer(not_created=True), print, api_url_flag=proxy.url)
        done, _ = apply_in_process(root, proxy.url)
        assert done is None, done
    state = emulator.snapshot()
    lock = load_lock(root / "casesync.lock", proxy.url)
    ages = {case["id"]: case["age"] for case in state["cases"]}
    assert ages == {
        lock.cases["cases/case-00"].case_id: "0 years",
        lock.cases["cases/case-01"].case_id: "1 years",
    }
    assert all(len(case["studies"]) == 2 for case in state["cases"])


def test_item2_a_listing_time_that_is_not_a_time_leaves_the_create_unknown(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    spoiler = Spoiler(case=["drop-after"], listing=["bad-dates"])
    with HostileProxy(emulator.base_url, spoiler) as proxy:
        error, events = apply_in_process(root, proxy.url)
        assert isinstance(error, PartialFailure), error
        (made,) = emulator.snapshot()["cases"]
        message = outcomes(events)["cases/case-00"]["message"]
        assert f"gives case {made['id']} a created_at that is not a time" in message
        assert "casesync resolve cases/case-00 --case-id N" in message
        resolve(root, "cases/case-00", Answer(case_id=made["id"]), print, api_url_flag=proxy.url)
        assert apply_in_process(root, proxy.url)[0] is None
    check_matches_manifests(root, emulator.snapshot())


def test_item2_the_one_matching_case_is_adopted(tmp_path: Path, emulator: EmulatorThread) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2, images=1)
    with HostileProxy(emulator.base_url, Spoiler(case=["drop-after"])) as proxy:
        error, events = apply_in_process(root, proxy.url)
        assert error is None, error
    notices = [e["message"] for e in events if e["event"] == "notice"]
    assert any("adopted case" in notice for notice in notices)
    check_matches_manifests(root, emulator.snapshot())


def test_item3_an_unreadable_2xx_to_a_create_is_an_unknown_outcome(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    spoiler = Spoiler(case=["garbage"], study=["garbage"], series=["garbage"])
    with HostileProxy(emulator.base_url, spoiler) as proxy:
        for _ in range(3):  # the study, then the series, stop the case until resolved
            error, events = apply_in_process(root, proxy.url)
            if error is None:
                break
            assert isinstance(error, PartialFailure), error
            assert "--study-id N" in str(events) or "--series-job J" in str(events)
            resolve_as_a_user(root, emulator, proxy.url)
        assert error is None
        assert [route for route, _ in spoiler.spoiled] == ["case", "study", "series"]
        notices = [e["message"] for e in events if e["event"] == "notice"]
        assert apply_in_process(root, proxy.url)[0] is None
    assert notices == [] or all("adopted" in n for n in notices)
    check_matches_manifests(root, emulator.snapshot())  # each once: nothing created twice


def test_item1_a_lockfile_in_a_missing_folder_is_refused_before_any_request(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CASESYNC_API_URL": emulator.base_url,
        "CASESYNC_ACCESS_TOKEN": os.environ["CASESYNC_ACCESS_TOKEN"],
    }
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "casesync", "apply", "--yes", "--lockfile", "nodir/x.lock"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "nodir does not exist" in result.stderr
        assert "--lockfile" in result.stderr and "internal error" not in result.stderr
    assert emulator.snapshot()["requests"] == {}


def test_item5_a_refused_login_mid_run_stops_cleanly_and_closes_the_create(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2, images=1)
    with HostileProxy(emulator.base_url, Spoiler(study=["401"])) as proxy:
        error, events = apply_in_process(root, proxy.url)
        assert isinstance(error, AuthError), error
        assert "casesync login" in str(error.hint)
        said = outcomes(events)  # the summary was printed
        assert "failed" in {o["status"] for o in said.values()}
        lock_path = root / "casesync.lock"
        open_intents = Ledger(root, lock_path, load_lock(lock_path, proxy.url)).recover()
        assert open_intents == []  # the refused create is closed: nothing to resolve
        assert apply_in_process(root, proxy.url)[0] is None
    check_matches_manifests(root, emulator.snapshot())


def test_item11_wait_gives_up_at_its_deadline_and_records_the_jobs(tmp_path: Path) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    with EmulatorThread(EmulatorConfig(job_seconds=86400)) as emulator:  # jobs stay at 202
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "CASESYNC_API_URL": emulator.base_url,
            "CASESYNC_ACCESS_TOKEN": emulator.issue_tokens()["access_token"],
        }
        result = subprocess.run(
            [sys.executable, "-m", "casesync", "apply", "--yes", "--format", "json", *WAIT_NONE],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        requests = emulator.snapshot()["requests"]
        polls = sum(n for name, n in requests.items() if name.startswith("GET /image_prep"))
    assert result.returncode == 4, result.stdout + result.stderr
    said = outcomes([json.loads(line) for line in result.stdout.splitlines()])["cases/case-00"]
    assert said["status"] == "processing"
    assert "still processing after --wait-timeout (0 min)" in said["message"]
    assert "1 processing" in result.stderr
    lock = load_lock(root / "casesync.lock", emulator.base_url)
    series = [s for study in lock.cases["cases/case-00"].studies for s in study.series]
    assert len(series) == 3 and all(s.status and s.series_id is None for s in series)
    assert polls == 3  # one look at each job once the deadline has passed


def test_a_hash_cache_that_missed_a_rewrite_never_sends_patient_data(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    """A clean slice is checked, then rewritten with a patient's name in a way whose stat the
    cache cannot tell apart (a same-tick write, here forged into the cache): plan and gate
    judge the old bytes, and the upload must refuse the new ones before they are whole."""
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    xr = root / "cases/case-00/xr"
    (xr / "frontal.png").unlink()
    slice_path = write(clean_ct(), xr / "frontal.dcm")
    relpath = "cases/case-00/xr/frontal.dcm"
    assert validate_project(root).errors == []  # the gate's verdict on the clean bytes is cached
    cache = FactsCache(root / ".casesync/cache/files.sqlite")
    gather_facts(root, [relpath], cache, clock_ns=lambda: time.time_ns() + 2 * RACY_NS)
    patient = clean_ct()
    patient.PatientName = "Doe^Jane"
    write(patient, slice_path)
    now = os.stat(slice_path)
    with cache.connection:
        cache.connection.execute(
            f"UPDATE {FACTS_TABLE} SET ino = ?, size = ?, mtime_ns = ?, ctime_ns = ? "
            "WHERE path = ?",
            (now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns, relpath),
        )
    cache.close()

    error, events = apply_in_process(root, emulator.base_url)
    assert isinstance(error, PartialFailure), error
    failed = outcomes(events)["cases/case-00"]
    assert failed["status"] == "failed"
    assert f"{relpath} changed since it was checked (new content, same size)" in failed["message"]
    state = emulator.snapshot()
    assert state["stored_blobs"] == 4  # the four PNGs; the slice never arrived whole
    assert all(u["puts"] == 0 for u in state["uploads"] if u["content_type"] == DICOM)
    (case,) = state["cases"]
    assert all(s["image_format"] != DICOM for st in case["studies"] for s in st["series"])
