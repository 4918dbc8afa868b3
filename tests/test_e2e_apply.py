"""``casesync apply`` and ``resolve`` as a user runs them: the real CLI against the emulator."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import add_study, check_matches_manifests, teaching_repo, user_answers
from phifactory import clean_ct, write
from repofactory import write_pngs

from casesync.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, EmulatorThread
from casesync.sync.resolve import resolve
from casesync.sync.runlock import read_owner

MUTATING = ("POST ", "PUT ", "PATCH ", "DELETE ")


@pytest.fixture
def make_emulator() -> Iterator[Any]:
    """``make_emulator(latency_ms=20, ...)``: an emulator thread with faults, stopped after."""
    started: list[EmulatorThread] = []

    def make(**overrides: Any) -> EmulatorThread:
        running = EmulatorThread(EmulatorConfig(job_seconds=0.05, **overrides))
        running.start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def cli(
    root: Path, emulator: EmulatorThread, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "casesync", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(root, emulator) | env,
    )


def cli_env(root: Path, emulator: EmulatorThread) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(root.parent),
        "CASESYNC_API_URL": emulator.base_url,
        "CASESYNC_ACCESS_TOKEN": emulator.issue_tokens()["access_token"],
        "CASESYNC_POLL_SECONDS": "1",
    }


def start_apply(
    root: Path, emulator: EmulatorThread, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """apply in the background, its output discarded unless ``popen`` says otherwise."""
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} | popen
    return subprocess.Popen(
        [sys.executable, "-m", "casesync", "apply", "--yes"],
        cwd=root,
        env=env or cli_env(root, emulator),
        text=True,
        **streams,
    )


def apply(
    root: Path, emulator: EmulatorThread, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return cli(root, emulator, "apply", "--yes", *args, **(env or {}))


def mutating(state: dict[str, Any]) -> dict[str, int]:
    return {name: n for name, n in state["requests"].items() if name.startswith(MUTATING)}


def requests_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    names = set(before["requests"]) | set(after["requests"])
    delta = {n: after["requests"].get(n, 0) - before["requests"].get(n, 0) for n in names}
    return {name: count for name, count in sorted(delta.items()) if count}


def s3_puts(requests: dict[str, int]) -> int:
    return sum(n for name, n in requests.items() if name.startswith("PUT /s3/"))


def settled_snapshot(emulator: EmulatorThread, timeout: float = 60.0) -> dict[str, Any]:
    """The site as a user sees it once the server has finished what it was sent.

    A killed apply's last create may still be in progress on the server (received, not yet
    acted on); a user who looked at that moment would wrongly answer "not created".
    """
    deadline = time.monotonic() + timeout
    while (state := emulator.snapshot())["in_flight"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"the emulator still has {state['in_flight']} requests in flight")
        time.sleep(0.005)
    return state


def settle_unknowns(root: Path, emulator: EmulatorThread, via_cli: bool = True) -> int:
    """Do what a user does after apply reports an unknown create: look, then resolve."""
    answers = user_answers(root, settled_snapshot(emulator), emulator.base_url)
    for key, kind, answer in answers:
        if via_cli:
            flag = {"study": "--study-id", "series": "--series-job"}[kind]
            value = answer.study_id or answer.series_job
            args = ["--not-created"] if answer.not_created else [flag, str(value)]
            done = cli(root, emulator, "resolve", key, *args)
            assert done.returncode == 0, done.stderr
        else:  # the same function, without a process start per answer
            resolve(root, key, answer, print, api_url_flag=emulator.base_url)
    return len(answers)


def apply_until_done(
    root: Path, emulator: EmulatorThread, rounds: int = 12, env: dict[str, str] | None = None
) -> None:
    for _ in range(rounds):
        result = apply(root, emulator, env=env)
        if result.returncode == 0:
            return
        assert result.returncode == 4, result.stdout + result.stderr
        settle_unknowns(root, emulator)
    raise AssertionError(f"apply did not finish in {rounds} rounds: {result.stdout}")


def test_fresh_apply_then_rerun_sends_nothing(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=3)
    result = apply(root, emulator_thread)
    assert result.returncode == 0, result.stdout + result.stderr
    state = emulator_thread.snapshot()
    check_matches_manifests(root, state)
    assert (
        "casesync apply: 3 cases, 6 studies, 9 series created; 24 files uploaded" in result.stdout
    )
    assert f"{emulator_thread.base_url}/cases/" in result.stdout
    assert not (root / ".casesync" / "journal.jsonl").exists()

    again = apply(root, emulator_thread)
    assert again.returncode == 0, again.stderr
    assert "No changes" in again.stdout
    assert mutating(emulator_thread.snapshot()) == mutating(state)


def test_only_new_work_is_sent(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2)
    assert apply(root, emulator_thread).returncode == 0
    before = emulator_thread.snapshot()
    write_pngs(root / "cases/case-00/xr", ["lateral.png"], seed=5000)
    add_study(root, "case-01", seed=6000)

    result = apply(root, emulator_thread)
    assert result.returncode == 0, result.stdout + result.stderr
    after = emulator_thread.snapshot()
    sent = mutating({"requests": requests_since(before, after)})
    assert sent.pop("POST /api/v1/cases/{case_id}/studies") == 1
    assert sent.pop("POST /image_preparation/{case_id}/studies/{study_id}/series") == 2
    assert s3_puts(sent) == 3  # lateral.png, u1.png, u2.png
    assert "POST /api/v1/cases" not in sent
    check_new = [s for c in after["cases"] for s in c["studies"]]
    assert len(check_new) == 5


def test_the_same_image_in_two_series_is_uploaded_once(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1)
    case = root / "cases/case-00"
    shutil.copy(case / "ct-axial/a1.png", case / "ct-coronal/c0.png")
    result = apply(root, emulator_thread)
    assert result.returncode == 0, result.stdout + result.stderr
    state = emulator_thread.snapshot()
    assert s3_puts(state["requests"]) == 4 + 3 + 1  # 9 slices, but a1.png is also coronal c0
    check_matches_manifests(root, state)


def test_faults_do_not_duplicate_anything(tmp_path: Path, make_emulator: Any) -> None:
    emulator = make_emulator(fail_rate=0.1, drop_rate=0.05, rate_limit=25, seed=7)
    root = teaching_repo(tmp_path / "repo", cases=6)
    apply_until_done(root, emulator)
    state = emulator.snapshot()
    check_matches_manifests(root, state)
    faults = {f["fault"] for f in state["faults"]}
    assert "rate-limited" in faults
    assert faults & {"fail-500", "fail-503"}
    assert any(fault.startswith("drop") for fault in faults)


def test_expired_upload_urls_are_presigned_again(tmp_path: Path, make_emulator: Any) -> None:
    emulator = make_emulator(latency_ms=100)
    root = teaching_repo(tmp_path / "repo", cases=1, images=12)
    run = start_apply(root, emulator, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not s3_puts(emulator.snapshot()["requests"]):
        time.sleep(0.01)
    emulator.advance_clock(901)  # every URL handed out so far is now expired
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    state = emulator.snapshot()
    check_matches_manifests(root, state)
    assert s3_puts(state["requests"]) > 12 + 3 + 1  # some PUTs met an expired URL and were redone


def test_a_token_expiring_mid_run_is_refreshed_once_and_kept(
    tmp_path: Path, make_emulator: Any
) -> None:
    emulator = make_emulator(latency_ms=50)
    root = teaching_repo(tmp_path / "repo", cases=2, images=8)
    grant = emulator.issue_tokens(ttl=600)
    credentials = tmp_path / "credentials.json"
    pair = {"access_token": grant["access_token"], "refresh_token": grant["refresh_token"]}
    stored = {"api_url": emulator.base_url, "client_id": DEMO_CLIENT_ID}
    stored |= {"client_secret": DEMO_CLIENT_SECRET, "expires_at": int(time.time()) + 86400}
    credentials.write_text(json.dumps(stored | pair))
    credentials.chmod(0o600)
    env = cli_env(root, emulator) | {"CASESYNC_CREDENTIALS": str(credentials)}
    del env["CASESYNC_ACCESS_TOKEN"]

    run = start_apply(root, emulator, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not s3_puts(emulator.snapshot()["requests"]):
        time.sleep(0.01)
    emulator.advance_clock(601)  # the access token expires on the server mid-run
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    state = emulator.snapshot()
    check_matches_manifests(root, state)
    assert state["requests"]["POST /oauth/token"] == 1
    kept = json.loads(credentials.read_text())["logins"][emulator.base_url]
    assert kept["refresh_token"] != pair["refresh_token"]
    assert kept["access_token"] != pair["access_token"]


def test_over_quota_is_refused_before_any_create(tmp_path: Path, make_emulator: Any) -> None:
    emulator = make_emulator(draft_quota=2)
    root = teaching_repo(tmp_path / "repo", cases=3)
    result = apply(root, emulator)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "allows only 2 more" in result.stderr
    assert mutating(emulator.snapshot()) == {}


def test_a_second_apply_is_refused_with_the_owner(tmp_path: Path, make_emulator: Any) -> None:
    emulator = make_emulator(latency_ms=500)  # the first apply outlasts a second one starting
    root = teaching_repo(tmp_path / "repo", cases=2)
    first = start_apply(root, emulator)
    try:
        while read_owner(root / ".casesync" / "apply.lock") is None:
            assert first.poll() is None, "the first apply ended before taking the lock"
            time.sleep(0.02)
        second = apply(root, emulator)
        assert second.returncode == 5
        assert f"pid {first.pid}" in second.stderr
        assert "apply --yes" in second.stderr
    finally:
        assert first.wait(timeout=120) == 0
    check_matches_manifests(root, emulator.snapshot())


@pytest.mark.parametrize(
    ("signals", "said"),
    [
        ([signal.SIGTERM], "run 'casesync apply' again to resume"),
        ([signal.SIGINT, signal.SIGINT], "stopped at once"),
    ],
)
def test_signals_stop_apply_and_it_resumes(
    tmp_path: Path, make_emulator: Any, signals: list[int], said: str
) -> None:
    emulator = make_emulator(latency_ms=200)
    root = teaching_repo(tmp_path / "repo", cases=4)
    run = start_apply(root, emulator, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not emulator.snapshot()["requests"].get("POST /api/v1/cases"):
        time.sleep(0.01)
    for signum in signals:
        run.send_signal(signum)
        time.sleep(0.05)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, out + err
    assert said in err
    apply_until_done(root, emulator)
    check_matches_manifests(root, emulator.snapshot())


def test_kill_at_random_moments_never_duplicates(tmp_path: Path, make_emulator: Any) -> None:
    emulator = make_emulator(latency_ms=15, draft_quota=None)
    root = teaching_repo(tmp_path / "repo", cases=20, images=3)
    chance = random.Random(4)
    killed = settled = 0
    for _ in range(25):
        # a random moment inside the work: after 1 to 25 more changes reached the server
        target = sum(mutating(emulator.snapshot()).values()) + chance.randint(1, 25)
        run = start_apply(root, emulator)
        while run.poll() is None and sum(mutating(emulator.snapshot()).values()) < target:
            time.sleep(0.002)
        time.sleep(chance.uniform(0, 0.02))
        run.send_signal(signal.SIGKILL)
        killed += run.wait() == -signal.SIGKILL
        settled += settle_unknowns(root, emulator, via_cli=False)
    assert killed >= 20
    print(f"{killed} kills, {settled} unknown creates settled")
    apply_until_done(root, emulator)
    check_matches_manifests(root, emulator.snapshot())


def test_without_a_terminal_apply_needs_yes(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1)
    result = cli(root, emulator_thread, "apply")
    assert result.returncode == 5
    assert "--yes" in result.stderr
    assert mutating(emulator_thread.snapshot()) == {}


def test_a_reviewed_plan_must_still_be_current(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2)
    planned = cli(root, emulator_thread, "plan", "--out", "plan.json")
    assert planned.returncode == 0, planned.stderr
    write_pngs(root / "cases/case-00/xr", ["lateral.png"], seed=5000)
    stale = apply(root, emulator_thread, "--plan", "plan.json")
    assert stale.returncode == 5
    assert "plan.json was computed from other inputs" in stale.stderr
    assert mutating(emulator_thread.snapshot()) == {}

    assert cli(root, emulator_thread, "plan", "--out", "plan.json").returncode == 0
    current = apply(root, emulator_thread, "--plan", "plan.json")
    assert current.returncode == 0, current.stdout + current.stderr


def test_only_the_cases_asked_for(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=3)
    result = apply(root, emulator_thread, "--case", "cases/case-01")
    assert result.returncode == 0, result.stderr
    titles = [c["title"] for c in emulator_thread.snapshot()["cases"]]
    assert titles == ["Teaching case 1"]
    unknown = apply(root, emulator_thread, "--case", "cases/nope")
    assert unknown.returncode == 1
    assert "no case with key cases/nope" in unknown.stderr


def test_json_events_one_per_line(tmp_path: Path, emulator_thread: Any) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2)
    result = apply(root, emulator_thread, "--format", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "plan"
    assert events[0]["plan"]["summary"]["cases_to_create"] == 2
    assert events[-1]["event"] == "summary"
    assert events[-1]["cases_created"] == 2
    done = {(e["case"], e["step"]) for e in events if e["event"] == "step" and e["state"] == "done"}
    assert ("cases/case-00", "create study 2 series 1") in done
    assert all(e["url"].startswith(emulator_thread.base_url) for e in events[-1]["outcomes"])


def test_nothing_is_sent_when_any_case_fails_the_phi_gate(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=2)
    patient = clean_ct()
    patient.PatientName = "Doe^Jane"
    xr = root / "cases/case-01/xr"
    (xr / "frontal.png").unlink()
    write(patient, xr / "frontal.dcm")
    result = apply(root, emulator_thread)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cases/case-01/xr/frontal.dcm" in result.stdout
    assert emulator_thread.snapshot()["requests"] == {}


def test_plan_log_and_summary_count_the_same_files_after_a_killed_run(
    tmp_path: Path, make_emulator: Any
) -> None:
    emulator = make_emulator(latency_ms=40)
    root = teaching_repo(tmp_path / "repo", cases=1, images=6)
    slow = cli_env(root, emulator) | {"CASESYNC_UPLOAD_CONCURRENCY": "1"}
    run = start_apply(root, emulator, env=slow)
    while run.poll() is None and not emulator.snapshot()["stored_blobs"]:
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    # the kill may catch a study create in flight: that one is settled as a user would
    settle_unknowns(root, emulator, via_cli=False)
    site = settled_snapshot(emulator)
    sent_before = site["stored_blobs"]
    series = [s for case in site["cases"] for study in case["studies"] for s in study["series"]]
    on_site = sum(len(s["upload_ids"]) for s in series)  # 0 unless the kill came late
    planned = cli(root, emulator, "plan")
    to_upload = int(re.search(r"(\d+) files? \([^)]*\) to upload", planned.stdout)[1])  # type: ignore[index]
    resumed = apply(root, emulator)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    logged = sum(
        map(
            int,
            re.findall(r"upload study \d+ series \d+ done \((\d+) files? uploaded", resumed.stdout),
        )
    )
    summary = re.search(r"(\d+) files? uploaded \((\d+) sent by an earlier run", resumed.stdout)
    assert summary is not None, resumed.stdout
    assert to_upload == logged == int(summary[1]) == 10 - on_site  # 6 + 3 + 1 images
    assert int(summary[2]) == sent_before - on_site >= 1
