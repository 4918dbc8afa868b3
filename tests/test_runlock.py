import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from casesync.errors import ConfigError, ExitCode, Refused, StateWriteError
from casesync.sync.runlock import read_owner, run_lock


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


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / ".casesync" / "apply.lock"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    with pytest.raises(Refused, match=f"pid {holder.pid}"), run_lock(tmp_path, print):
        pass
    holder.kill()
    holder.wait()

    notices: list[str] = []
    with run_lock(tmp_path, notices.append):
        pass
    assert len(notices) == 1
    assert f"pid {holder.pid}" in notices[0]
    assert "casesync apply (killed)" in notices[0]


HOLD_LOCK = """
import sys, time
from pathlib import Path
from casesync.sync.runlock import run_lock
with run_lock(Path(sys.argv[1]), print, "casesync apply (killed)"):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_without_fcntl_the_lock_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: import fcntl fails
    with (
        pytest.raises(ConfigError, match="need a POSIX system") as error,
        run_lock(tmp_path, print),
    ):
        pass
    assert error.value.exit_code == ExitCode.ERROR
    assert not (tmp_path / ".casesync" / "apply.lock").exists()


def test_a_full_disk_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with (
        pytest.raises(StateWriteError, match="No space left on device") as failed,
        run_lock(tmp_path, print),
    ):
        raise AssertionError("the block must not run")
    assert "apply.lock" in failed.value.message
    assert "nothing was sent" in str(failed.value.hint)


def test_a_state_folder_that_cannot_be_made_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / ".casesync").write_text("a file where the folder should be")
    not_a_folder = pytest.raises(ConfigError, match=r"\.casesync is not a folder")
    with not_a_folder, run_lock(tmp_path, print):
        raise AssertionError("the block must not run")
