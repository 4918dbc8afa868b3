"""What every command shares: global options, the output switches, common flags, completion.

Imported by ``casesync --help`` and ``--version``: nothing here may import rich, aiohttp,
pydicom or jsonschema at module level (each command imports what it runs inside itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from casesync.settings import find_project_root

if TYPE_CHECKING:
    from rich.console import Console

    from casesync.api.credentials import TokenProvider, TokenSource
    from casesync.problems import Problem
    from casesync.settings import Timeouts


@dataclass(frozen=True)
class Output:
    """How much to print and whether styles are allowed (-q/-v, --no-color, NO_COLOR)."""

    verbosity: int = 0  # -1 quiet, 0 normal, 1 verbose
    color: bool = True
    force_terminal: bool = False

    @classmethod
    def from_flags(
        cls, quiet: bool, verbose: bool, no_color: bool, env: Mapping[str, str] | None = None
    ) -> Output:
        """NO_COLOR (any non-empty value) wins over FORCE_COLOR; --no-color over both."""
        env = os.environ if env is None else env
        color = not no_color and not env.get("NO_COLOR")
        force = color and bool(env.get("FORCE_COLOR"))
        return cls(verbosity=-1 if quiet else int(verbose), color=color, force_terminal=force)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    def console(self, *, stderr: bool = False, plain: bool = False) -> Console:
        """A rich console that emits no escape code at all unless colour is allowed.

        ``plain``: a log, not a terminal: no colour, no padding to a width, no wrapping.
        """
        from rich.console import Console

        if plain or not self.color:
            return Console(
                stderr=stderr,
                color_system=None,
                no_color=True,
                highlight=False,
                force_terminal=False if plain else None,
                soft_wrap=plain,
                width=100_000 if plain else None,
            )
        return Console(stderr=stderr, force_terminal=self.force_terminal or None)


class GlobalOptions:
    """Options given before the command name, shared by every command."""

    def __init__(self, directory: Path | None, debug: bool, output: Output) -> None:
        self.directory = directory
        self.debug = debug
        self.output = output


def options(ctx: typer.Context) -> GlobalOptions:
    found = ctx.find_root().obj
    return found if isinstance(found, GlobalOptions) else GlobalOptions(None, False, Output())


def output(ctx: typer.Context) -> Output:
    return options(ctx).output


def start_dir(ctx: typer.Context) -> Path:
    return options(ctx).directory or Path.cwd()


def project_root(ctx: typer.Context) -> Path:
    return find_project_root(start_dir(ctx))


def info(ctx: typer.Context, text: str) -> None:
    """A line that -q leaves out (what was done, what to do next); results are never quiet."""
    if not output(ctx).quiet:
        typer.echo(text)


def print_problems(problems: list[Problem], fmt: str, advice: Sequence[str] = ()) -> None:
    """The problems, then ``advice`` (the PHI gate's fix, said once for all its lines)."""
    from casesync.cli.render import render_problems

    if problems or fmt == "json":
        typer.echo(render_problems(problems, fmt, advice), nl=False)


def complete_case_keys(ctx: typer.Context, incomplete: str) -> list[str]:
    """Case keys of the project around the current folder (or -C DIR), for shell completion.

    Cheap on purpose: reads casesync.yaml's patterns and each manifest's top-level ``key:``
    line, without validating anything; a broken project completes to nothing.
    """
    from casesync.project.keys import case_keys

    directory = ctx.find_root().params.get("directory")
    try:
        root = find_project_root(Path(directory) if directory else None)
    except Exception:
        return []
    return [key for key in case_keys(root) if key.startswith(incomplete)]


def tokens_from_env(timeouts: Timeouts) -> TokenSource:
    """Tokens as ``casesync login`` and the ``CASESYNC_*`` variables give them (only cli/ and
    settings read the environment)."""

    def tokens(api_url: str) -> TokenProvider:
        from casesync.api.credentials import token_provider

        return token_provider(api_url, os.environ, timeouts=timeouts)

    return tokens


def at_least_one(value: int | None) -> int | None:
    """A count or an id: 1 or more (checked here, not with min=, so help shows no 'x>=1')."""
    if value is not None and value < 1:
        raise typer.BadParameter(f"must be at least 1, not {value}")
    return value


def not_negative(value: float) -> float:
    if value < 0:
        raise typer.BadParameter(f"must be 0 or more, not {value}")
    return value


def seconds_option(flag: str, what: str) -> Any:
    """A timeout flag (README, timeouts); its default lives in settings.Timeouts."""
    return typer.Option(
        flag, metavar="SECONDS", help=f"{what} (seconds; README, timeouts).", show_default=False
    )


TextJson = Literal["text", "json"]
ProblemFormat = Literal["text", "json", "github"]
PlanFormat = Literal["text", "json", "markdown", "github"]

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        metavar="URL",
        help="The server. Without it: CASESYNC_API_URL, else api_url in casesync.yaml, else "
        "the only stored login, else https://radiopaedia.org.",
    ),
]
LockfileOption = Annotated[
    Path | None,
    typer.Option(
        "--lockfile",
        metavar="FILE",
        help="Lockfile to use instead of casesync.lock (one per server).",
    ),
]
TextJsonOption = Annotated[
    TextJson, typer.Option("--format", "-f", metavar="FORMAT", help="Output: text or json.")
]
ProblemFormatOption = Annotated[
    ProblemFormat,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="Output: text, json, or github (annotations on the pull request's diff).",
    ),
]
