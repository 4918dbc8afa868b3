"""The commands about cases already on the site: status, adopt, forget, import.

Each command imports what it runs inside itself, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import typer

from casesync.cli.options import (
    ApiUrlOption,
    LockfileOption,
    TextJsonOption,
    at_least_one,
    complete_case_keys,
    project_root,
    tokens_from_env,
)
from casesync.errors import ExitCode
from casesync.settings import resolve_timeouts

commands = typer.Typer()


@commands.command()
def status(
    ctx: typer.Context,
    fmt: TextJsonOption = "text",
    jobs: Annotated[
        bool, typer.Option("--jobs", help="Ask the server about series still processing.")
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 2 when any case needs attention."),
    ] = False,
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """One row per case: remote id and URL, status on the site, local state, processing."""
    from casesync.cli.render import render_status
    from casesync.sync.remote import fetch_remote
    from casesync.sync.status import poll_with_client
    from casesync.sync.status import status as read_status

    tokens = tokens_from_env(resolve_timeouts())
    report = read_status(
        project_root(ctx),
        api_url_flag=api_url,
        lock_path=lockfile,
        jobs=jobs,
        read=partial(fetch_remote, tokens=tokens),
        poll=partial(poll_with_client, tokens),
    )
    typer.echo(render_status(report, fmt), nl=False)
    if detailed_exitcode and report.needs_attention:
        raise typer.Exit(int(ExitCode.CHANGES_PRESENT))


@commands.command()
def adopt(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY", help="The manifest's case key.", autocompletion=complete_case_keys
        ),
    ],
    case_id: Annotated[
        int,
        typer.Option(
            "--case-id", metavar="ID", callback=at_least_one, help="The case's id on the site."
        ),
    ],
    imaging: Annotated[
        Literal["absent", "present"],
        typer.Option(
            "--imaging",
            metavar="WHICH",
            help="absent: apply adds the manifest's studies; present: the case already holds "
            "them (recorded as adopted, only later additions are created).",
        ),
    ] = "absent",
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """Record an existing case on the site as the case of manifest KEY (nothing is sent)."""
    from casesync.sync.adopt import AdoptSettings
    from casesync.sync.adopt import adopt as adopt_case
    from casesync.sync.remote import fetch_remote

    settings = AdoptSettings(project_root(ctx), key, case_id, imaging, api_url, lockfile)
    read = partial(fetch_remote, tokens=tokens_from_env(resolve_timeouts()))
    typer.echo(adopt_case(settings, typer.echo, read))


@commands.command()
def forget(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="The case key to drop from casesync.lock.",
            autocompletion=complete_case_keys,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Forget without asking.")] = False,
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """Drop a case from casesync.lock (the next plan creates it again); nothing is deleted."""
    from casesync.errors import Refused
    from casesync.sync.adopt import ForgetSettings
    from casesync.sync.adopt import forget as forget_case

    if not yes:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise Refused("forget needs confirmation", hint="pass --yes")
        if not typer.confirm(f"Forget {key}? The next apply creates it again.", default=False):
            raise Refused("forget cancelled: nothing changed")
    typer.echo(forget_case(ForgetSettings(project_root(ctx), key, api_url, lockfile), typer.echo))


@commands.command("import")
def import_case(
    ctx: typer.Context,
    case_id: Annotated[
        int | None,
        typer.Option(
            "--case-id", metavar="ID", callback=at_least_one, help="The case's id on the site."
        ),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into", metavar="DIR", help="New case folder (default cases/<title as a slug>)."
        ),
    ] = None,
    all_drafts: Annotated[
        bool,
        typer.Option("--all-drafts", help="Import every draft that casesync.lock does not hold."),
    ] = False,
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """Write a new case folder from a case on the site: case.yaml, its files, the lock entry."""
    from casesync.sync.importer import ImportSettings, import_cases

    settings = ImportSettings(project_root(ctx), case_id, into, all_drafts, api_url, lockfile)
    import_cases(settings, typer.echo, tokens_from_env(resolve_timeouts()))
