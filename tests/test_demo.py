"""``casesync demo`` as a newcomer runs it: a subprocess, no network beyond loopback, no account."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from casesync.api.credentials import current_user
from casesync.cli.demo import demo_tokens
from casesync.emulator import EmulatorThread
from casesync.sync.lockfile import load_lock
from casesync.sync.workflow import prepare_plan


def demo(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}  # no credentials, no API URL
    return subprocess.run(
        [sys.executable, "-m", "casesync", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=home,
    )


def test_demo_applies_the_examples_and_ends_with_no_changes(tmp_path: Path) -> None:
    result = demo(home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    first_plan, second_plan = out.split("$ casesync plan")[1:]
    assert "Plan: 3 cases, 4 studies, 5 series to create, 46 files" in first_plan
    assert "No changes. The remote cases match the manifests." in second_plan
    assert re.search(
        r"case \d+: Vertebral haemangioma \(draft, upload finished\): 1 study, 1 series, 20 images",
        out,
    )
    assert "(3 cases, 46 files recorded)" in out
    assert out.rstrip().endswith("'casesync demo --keep DIR' keeps it.")
    assert not list(tmp_path.glob("casesync-demo-*"))  # nothing left in the cwd either


def test_keep_leaves_a_project_whose_lockfile_matches(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    result = demo("--keep", str(kept), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Kept the project in {kept}" in result.stdout
    lock_path = kept / "casesync.lock"
    assert lock_path.is_file()
    lock = json.loads(lock_path.read_text())
    api_url = lock["api_url"]
    assert api_url.startswith("http://127.0.0.1:")
    assert len(load_lock(lock_path, api_url).cases) == 3
    assert not prepare_plan(kept, api_url_flag=api_url).plan.has_changes
    assert not (kept / "tools").exists() and not (kept / "__init__.py").exists()


def test_keep_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = demo("--keep", str(tmp_path / "busy"), home=tmp_path)
    assert result.returncode == 5
    assert "is not empty" in result.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_serve_keeps_the_emulator_until_ctrl_c(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "casesync", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    url = next(line.split()[-1] for line in lines if line.startswith("  curl "))
    with urllib.request.urlopen(url, timeout=30) as response:
        state = json.load(response)
    assert len(state["cases"]) == 3
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "Removed the demo folder" in rest


def test_the_demo_hands_apply_its_own_token_and_leaves_the_environment_alone(
    emulator_thread: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASESYNC_ACCESS_TOKEN", "someone-elses")
    tokens = demo_tokens(emulator_thread)(emulator_thread.base_url)
    user = asyncio.run(current_user(emulator_thread.base_url, tokens))
    assert user.login == "demo"
    assert os.environ["CASESYNC_ACCESS_TOKEN"] == "someone-elses"
