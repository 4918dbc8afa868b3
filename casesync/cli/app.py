"""Command-line wiring only: the global options, and the commands of cli/commands_*.py.

Business logic lives in the core modules; every error travels as a ``CasesyncError`` to
``__main__``, which owns messages and exit codes. Every command imports what it runs inside
its own function: ``--version``, ``--help`` and ``validate`` never pay for aiohttp, pydicom,
rich or the apply engine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from casesync import __version__
from casesync.cli import commands_auth, commands_project, commands_site, commands_sync
from casesync.cli.helptext import CasesyncGroup
from casesync.cli.options import GlobalOptions, Output
from casesync.settings import debug_from_env

app = typer.Typer(
    name="casesync",
    cls=CasesyncGroup,
    help="Case-as-code for Radiopaedia.org: validate, plan and apply teaching cases kept in git.",
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help, like git's: no boxes, no styles, no <bool>
    epilog="\b\nStart with 'casesync demo', or 'casesync init' in a new folder.\n"
    "'casesync COMMAND --help' shows a command's options, examples and exit codes.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"casesync {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("-C", metavar="DIR", help="Run as if started in DIR (like git -C)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only results, warnings and errors.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print every step, and what was decided.")
    ] = False,
    no_color: Annotated[
        bool,
        typer.Option("--no-color", help="No colours or styles (also NO_COLOR=1; FORCE_COLOR=1)."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="CASESYNC_DEBUG", help="Log every request (tokens redacted)."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """casesync: validate, plan and apply Radiopaedia teaching cases kept in git."""
    debug = debug or debug_from_env()
    ctx.obj = GlobalOptions(directory, debug, Output.from_flags(quiet, verbose, no_color))
    if debug or verbose:
        level = logging.DEBUG if debug else logging.INFO
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    if ctx.invoked_subcommand is None:  # bare `casesync`: the overview, and success
        typer.echo(ctx.get_help())
        raise typer.Exit()


for _group in (
    commands_project.commands,
    commands_sync.commands,
    commands_site.commands,
    commands_auth.commands,
):
    app.registered_commands.extend(_group.registered_commands)
