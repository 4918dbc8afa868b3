"""Help like git's: golden --help per command (UPDATE_GOLDEN=1 rewrites them after a reviewed
change), no type placeholders, declared choices and case keys offered by shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer
from repofactory import SIMPLE_CASE, simple_repo, write_case
from typer.testing import CliRunner

from casesync.cli.app import app
from casesync.cli.helptext import EPILOGS, CasesyncGroup, epilog
from casesync.errors import ExitCode

GOLDEN = Path(__file__).parent / "golden" / "help"
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["casesync", *COMMANDS])
def test_help_matches_the_golden_file(command: str) -> None:
    text = help_text() if command == "casesync" else help_text(command)
    golden = GOLDEN / f"{command}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_values_and_ends_with_examples_and_exit_codes(command: str) -> None:
    text = help_text(command)
    for placeholder in ("<bool>", "<str>", "<int", "<list", "<path>", "x>=", "<float>"):
        assert placeholder not in text, f"{command} --help shows {placeholder}"
    assert "Exit codes:\n    0    success\n    1    error" in text
    if command in EPILOGS:
        assert "Examples:\n    casesync " in text


def test_every_exit_code_a_command_lists_is_documented() -> None:
    for name, (_, codes) in EPILOGS.items():
        for code in codes:
            assert f"  {int(code):<3}  " in epilog(name), name
    assert set(EPILOGS["apply"][1]) >= {ExitCode.PARTIAL, ExitCode.REFUSED}


def test_validate_offers_only_its_own_formats() -> None:
    text = help_text("validate")
    assert "text, json, or github" in text and "markdown" not in text


def test_a_format_outside_the_choices_is_a_usage_error_naming_them() -> None:
    result = CliRunner().invoke(app, ["validate", "--format", "markdown"])
    assert result.exit_code == 2
    assert "'text', 'json', 'github'" in result.output


def test_bare_casesync_prints_the_overview_and_succeeds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "casesync"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: casesync [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:\n  init" in done.stdout and done.stderr == ""


def complete(cwd: Path, *words: str) -> list[str]:
    """What bash completion offers after ``words`` (the last one is being typed)."""
    env = {
        **os.environ,
        "_CASESYNC_COMPLETE": "complete_bash",
        "COMP_WORDS": " ".join(["casesync", *words]),
        "COMP_CWORD": str(len(words)),
    }
    done = subprocess.run(
        [sys.executable, "-m", "casesync"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,  # a hang is the failure
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_completion_offers_declared_choices(tmp_path: Path) -> None:
    assert complete(tmp_path, "plan", "--format", "") == ["text", "json", "markdown", "github"]
    assert complete(tmp_path, "validate", "-f", "") == ["text", "json", "github"]
    assert complete(tmp_path, "schema", "") == ["case", "project", "lock"]
    assert complete(tmp_path, "emulator", "--anonymiser-check", "") == ["strict", "off"]


def test_completion_offers_the_projects_case_keys(tmp_path: Path) -> None:
    root = simple_repo(tmp_path / "repo")
    write_case(root, "named", "key: mri-knee-02\n" + SIMPLE_CASE)
    keys = complete(root / "cases", "apply", "--case", "")  # from a subfolder, too
    assert keys == ["cases/case-00", "mri-knee-02"]  # the folder when there is no key:
    assert complete(root, "resolve", "mri") == ["mri-knee-02"]
    assert complete(tmp_path, "-C", "repo", "apply", "--case", "mri") == ["mri-knee-02"]
    assert complete(tmp_path, "apply", "--case", "") == []  # no project: nothing, no error


def test_completion_lists_the_case_keys_past_symlink_loops(tmp_path: Path) -> None:
    root = simple_repo(tmp_path / "repo")
    for name in ("loop", "loop2"):
        (root / "cases" / "case-00" / name).symlink_to("..")
    assert complete(root, "apply", "--case", "") == ["cases/case-00"]


def test_a_value_option_without_a_metavar_gets_one_from_its_type_or_name() -> None:
    sub = typer.Typer(cls=CasesyncGroup, rich_markup_mode=None)

    @sub.command()
    def run(
        src: Annotated[Path, typer.Argument()],
        count: Annotated[int, typer.Option()] = 1,
        ratio: Annotated[float, typer.Option()] = 1.0,
        out: Annotated[Path, typer.Option()] = Path("."),
        case_id: Annotated[str, typer.Option()] = "",
    ) -> None:
        """A command whose options name no metavar."""

    @sub.command()
    def other() -> None:
        """A second command, so that ``run`` stays a subcommand."""

    text = CliRunner().invoke(sub, ["run", "--help"], terminal_width=80).output
    for shown in ("--count N", "--ratio NUMBER", "--out PATH", "--case-id ID", "[OPTIONS] PATH"):
        assert shown in text, text
