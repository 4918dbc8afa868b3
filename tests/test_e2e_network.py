"""``casesync apply`` against a slow, stalling, rate-limited emulator: it finishes, and nothing
is duplicated (issue 10, items 9 and 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import check_matches_manifests, teaching_repo
from test_e2e_apply import apply, apply_until_done, make_emulator, s3_puts

__all__ = ["make_emulator"]  # the fixture, shared with the apply tests


def test_short_lived_upload_urls_and_faults_under_a_rate_limit_still_finish(
    tmp_path: Path, make_emulator: Any
) -> None:
    emulator = make_emulator(url_ttl=1, fail_rate=0.1, rate_limit=5, seed=3)
    root = teaching_repo(tmp_path / "repo", cases=1, images=8)
    result = apply(root, emulator)
    assert result.returncode == 0, result.stdout + result.stderr
    state = emulator.snapshot()
    check_matches_manifests(root, state)
    assert s3_puts(state["requests"]) >= 8
    assert "rate-limited" in {f["fault"] for f in state["faults"]}


def test_answers_that_never_end_cost_the_read_timeout_and_nothing_more(
    tmp_path: Path, make_emulator: Any
) -> None:
    emulator = make_emulator(stall_rate=0.15, seed=4)
    root = teaching_repo(tmp_path / "repo", cases=2, images=6)
    apply_until_done(
        root, emulator, env={"CASESYNC_READ_TIMEOUT": "0.5", "CASESYNC_STALL_TIMEOUT": "0.5"}
    )
    state = emulator.snapshot()
    check_matches_manifests(root, state)  # every case once, every file in place
    assert "stall" in {f["fault"] for f in state["faults"]}


def test_a_bad_timeout_flag_is_a_clear_error(tmp_path: Path) -> None:
    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    result = subprocess.run(
        [sys.executable, "-m", "casesync", "apply", "--yes", "--read-timeout", "0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--read-timeout must be a number of seconds" in result.stderr
