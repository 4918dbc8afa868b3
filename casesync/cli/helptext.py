"""Help like git's: real metavars, two or three examples and the exit codes of each command.

``CasesyncGroup`` finishes every command it holds (including commands added later, wherever
they are registered), so the rules below apply without per-command code.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperGroup, TyperOption

from casesync.errors import ExitCode

EXIT_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "error (configuration, network, login, usage)",
    ExitCode.CHANGES_PRESENT: "changes present (with --detailed-exitcode)",
    ExitCode.INVALID: "invalid manifests or files, or the PHI gate failed",
    ExitCode.PARTIAL: "some cases failed or were skipped; rerun to resume",
    ExitCode.REFUSED: "refused (lock held, stale plan, over quota, no confirmation)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, or no answer at a prompt)",
}
_OK_ERROR = (ExitCode.OK, ExitCode.ERROR)
_PROJECT = (*_OK_ERROR, ExitCode.INVALID)

# command -> (examples, exit codes); a command missing here gets only 0 and 1.
EPILOGS: dict[str, tuple[tuple[str, ...], tuple[ExitCode, ...]]] = {
    "init": (("casesync init", "casesync -C ~/teaching-cases init"), _OK_ERROR),
    "validate": (
        ("casesync validate", "casesync validate --format json", "casesync validate -f github"),
        _PROJECT,
    ),
    "plan": (
        (
            "casesync plan",
            "casesync plan --out plan.json --detailed-exitcode",
            "casesync plan --format markdown --max-chars 60000 > plan.md",
        ),
        (*_PROJECT, ExitCode.CHANGES_PRESENT),
    ),
    "preview": (("casesync preview --open", "casesync preview ct-brain-01"), _PROJECT),
    "schema": (("casesync schema case > case.schema.json", "casesync schema lock"), _OK_ERROR),
    "check-phi": (
        ("casesync check-phi cases/", "casesync check-phi --format github scans/ct.dcm"),
        _PROJECT,
    ),
    "anonymise": (
        ("casesync anonymise raw/ cases/ct-01/ct", "casesync anonymise --split-frames us/ out/"),
        _PROJECT,
    ),
    "apply": (
        (
            "casesync apply",
            "casesync apply --plan plan.json --yes",
            "casesync apply --case ct-brain-01 --wait",
        ),
        (
            *_PROJECT,
            ExitCode.PARTIAL,
            ExitCode.REFUSED,
            ExitCode.INTERRUPTED,
        ),
    ),
    "resolve": (
        (
            "casesync resolve ct-brain-01 --case-id 12345",
            "casesync resolve ct-brain-01 --not-created",
        ),
        (*_OK_ERROR, ExitCode.REFUSED),
    ),
    "emulator": (
        ("casesync emulator --port 8787", "casesync emulator --fail-rate 0.1 --seed 1"),
        (*_OK_ERROR, ExitCode.INTERRUPTED),
    ),
    "demo": (("casesync demo", "casesync demo --keep /tmp/casesync-demo --serve"), _OK_ERROR),
    "status": (
        (
            "casesync status",
            "casesync status --jobs --detailed-exitcode",
            "casesync status -f json",
        ),
        (*_PROJECT, ExitCode.CHANGES_PRESENT),
    ),
    "adopt": (
        (
            "casesync adopt ct-brain-01 --case-id 12345",
            "casesync adopt ct-brain-01 --case-id 12345 --imaging present",
        ),
        (*_PROJECT, ExitCode.REFUSED),
    ),
    "forget": (
        ("casesync forget ct-brain-01", "casesync forget ct-brain-01 --yes"),
        (*_PROJECT, ExitCode.REFUSED),
    ),
    "import": (
        ("casesync import --case-id 12345", "casesync import --all-drafts"),
        (*_PROJECT, ExitCode.REFUSED),
    ),
    "login": (
        ("casesync login", "casesync login --api-url http://127.0.0.1:8787"),
        (*_OK_ERROR, ExitCode.INTERRUPTED),
    ),
    "logout": (("casesync logout",), _OK_ERROR),
    "whoami": (("casesync whoami", "casesync whoami --format json"), _OK_ERROR),
}


def epilog(name: str) -> str:
    """Examples and exit codes, kept verbatim by click (the \\b lines stop re-wrapping)."""
    examples, codes = EPILOGS.get(name, ((), _OK_ERROR))
    parts = []
    if examples:
        parts.append("\b\nExamples:\n" + "\n".join(f"  {line}" for line in examples))
    rows = "\n".join(f"  {int(code):<3}  {EXIT_MEANINGS[code]}" for code in sorted(codes))
    parts.append(f"\b\nExit codes:\n{rows}")
    return "\n\n".join(parts)


# metavars by the parameter's click type when the command did not name one
_TYPE_METAVARS = {"int": "N", "float": "NUMBER", "path": "PATH"}


def default_metavar(param: TyperOption | TyperArgument) -> str:
    """An int -> N, a float -> NUMBER, a path -> PATH, else the last word of the name in
    capitals (``--case-id`` -> ID, ``--format`` -> FORMAT)."""
    return _TYPE_METAVARS.get(param.type.name) or (param.name or "value").rsplit("_", 1)[-1].upper()


class NamedArgument(TyperArgument):
    """An argument shown by its metavar alone, as git does: ``SRC DST`` in the usage line
    (typer writes ``{SRC}``) and no ``<str>`` beside it in the list."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "value").upper()
        return [name if self.required or name.startswith("[") else f"[{name}]"]


def finish(command: Any) -> None:
    """The standard epilog when the command has none, and a metavar on every value option."""
    if not command.epilog and command.name:
        command.epilog = epilog(command.name)
    for param in command.params:
        if isinstance(param, TyperOption) and param.is_flag:
            continue
        if isinstance(param, TyperOption | TyperArgument) and param.metavar is None:
            param.metavar = default_metavar(param)
        if type(param) is TyperArgument:  # pinned typer (pyproject): same object, one override
            param.__class__ = NamedArgument


class CasesyncGroup(TyperGroup):
    """The top-level group: finishes every command it holds, whoever registered it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            finish(command)
