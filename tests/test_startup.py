"""What the quick commands import: heavy or POSIX-only modules only where they are used.

Each command runs in a fresh interpreter that prints, at exit, which of the watched modules it
loaded; the assertions are on ``sys.modules``, never on elapsed time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WATCHED = (
    "aiohttp",
    "aiofiles",
    "asyncio",
    "pydicom",
    "jsonschema",
    "rich",
    "casesync.emulator",
    "casesync.phi.anonymise",
    "casesync.phi.gate",
    "casesync.sync.apply",
    "casesync.sync.executor",
    "casesync.sync.runlock",
    "casesync.api.client",
    "markdown_it",
    "nh3",
    "pydantic",
)
PROBE = """
import atexit, json, sys
watched = json.loads(sys.argv[1])
if sys.argv[2] == "no-fcntl":
    sys.modules["fcntl"] = None  # as on Windows: 'import fcntl' raises ImportError
atexit.register(lambda: print("LOADED " + json.dumps([m for m in watched if m in sys.modules])))
sys.argv = ["casesync", *sys.argv[3:]]
from casesync.__main__ import main
main()
"""


def run(cwd: Path, *args: str, fcntl: bool = True) -> tuple[int, str, set[str]]:
    """Exit status, output and the watched modules a ``casesync ARGS`` process loaded."""
    mode = "fcntl" if fcntl else "no-fcntl"
    command = [sys.executable, "-c", PROBE, json.dumps(WATCHED), mode, *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    output, _, loaded = done.stdout.rpartition("LOADED ")
    return done.returncode, output + done.stderr, set(json.loads(loaded))


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped examples (DICOM and PNG), validated once so every cache is warm."""
    root = tmp_path_factory.mktemp("startup") / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    status, output, loaded = run(root, "validate")
    assert status == 0, output
    assert {"pydicom", "jsonschema"} <= loaded  # the cold run parses DICOM and checks schemas
    return root


def test_version_imports_no_command(tmp_path: Path) -> None:
    status, output, loaded = run(tmp_path, "--version")
    assert status == 0, output
    assert output.startswith("casesync ")
    assert loaded == set()


def test_validate_help_imports_no_command(tmp_path: Path) -> None:
    status, output, loaded = run(tmp_path, "validate", "--help")
    assert status == 0, output
    assert "--format" in output
    # plain help (rich_markup_mode=None): not even rich; and no pydantic, which typer 0.29 would
    # import to check option values
    assert loaded == set()


def test_a_repeated_plan_reads_no_dicom_header_and_checks_no_schema(examples: Path) -> None:
    status, output, loaded = run(examples, "plan")
    assert status == 0, output
    assert "coin-ingestion" in output
    assert loaded == set()


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_work_without_fcntl(examples: Path, command: str) -> None:
    status, output, loaded = run(examples, command, fcntl=False)
    assert status == 0, output
    assert "casesync.sync.runlock" not in loaded


def test_apply_without_fcntl_says_posix_only(examples: Path) -> None:
    status, output, _ = run(
        examples, "apply", "--yes", "--api-url", "http://127.0.0.1:9", fcntl=False
    )
    assert status == 1, output
    assert "need a POSIX system" in output
    assert "Traceback" not in output
