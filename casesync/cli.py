"""Command-line wiring only: parse flags, build settings, call core functions, print results.

Business logic lives in the core modules; every error travels as a ``CasesyncError`` to
``__main__``, which owns messages and exit codes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from casesync import __version__

app = typer.Typer(
    name="casesync",
    help="Case-as-code for Radiopaedia.org: validate, plan and apply teaching cases kept in git.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


class GlobalOptions:
    """Options given before the command name, shared by every command."""

    def __init__(self, directory: Path | None, debug: bool) -> None:
        self.directory = directory
        self.debug = debug


def _version(value: bool) -> None:
    if value:
        typer.echo(f"casesync {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option("-C", help="Run as if started in DIR (like git -C)."),
    ] = None,
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
    ctx.obj = GlobalOptions(directory, debug)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
