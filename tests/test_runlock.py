import json
import subprocess
import sys
from pathlib import Path

import pytest

from casesync.errors import ExitCode, Refused
from casesync.runlock import read_owner, run_lock


def test_a_second_holder_is_refused_with_the_owner(tmp_path: Path) -> None:
    notices: list[str] = []
    with (
        run_lock(tmp_path, notices.append, "casesync apply --yes") as me,
        pytest.raises(Refused) as refused,
        run_lock(tmp_path, notices.append),
    ):
        pass
    assert refused.value.exit_code == ExitCode.REFUSED
    assert f"pid {me.pid}" in str(refused.value)
    assert "casesync apply --yes" in str(refused.value)
    assert notices == []


def test_the_lock_is_released_after_the_block(tmp_path: Path) -> None:
    with run_lock(tmp_path, print):
        assert read_owner(tmp_path / ".casesync" / "apply.lock") is not None
    assert read_owner(tmp_path / ".casesync" / "apply.lock") is None
    with run_lock(tmp_path, print):
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    with run_lock(tmp_path, print) as me:
        path = tmp_path / ".casesync" / "apply.lock"
        owner = json.loads(path.read_text())
    owner["pid"] = int(dead.stdout)
    owner["command"] = "casesync apply (killed)"
    owner["host"] = me.host
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(owner))

    notices: list[str] = []
    with run_lock(tmp_path, notices.append):
        pass
    assert len(notices) == 1
    assert "casesync apply (killed)" in notices[0]


def test_a_lock_from_another_host_is_never_taken_over(tmp_path: Path) -> None:
    path = tmp_path / ".casesync" / "apply.lock"
    path.parent.mkdir()
    owner = {"pid": 1, "host": "ci-runner-7", "command": "casesync apply", "started_at": "t"}
    path.write_text(json.dumps(owner))
    with pytest.raises(Refused, match="ci-runner-7"), run_lock(tmp_path, print):
        pass
