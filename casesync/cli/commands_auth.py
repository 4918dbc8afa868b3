"""Logging in: login, logout, whoami; and the server each command talks to.

Each command imports what it runs inside itself, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from casesync.cli.options import ApiUrlOption, TextJsonOption, info, start_dir
from casesync.errors import ConfigError
from casesync.settings import (
    PROJECT_FILE,
    ServerChoice,
    choose_api_url,
    find_project_root,
    resolve_timeouts,
)

commands = typer.Typer()


def _project(ctx: typer.Context) -> tuple[Path | None, str | None]:
    """The project around the current folder (if any) and its api_url: these commands also
    work outside a project."""
    from casesync.project.validate import load_project_file

    try:
        root = find_project_root(start_dir(ctx))
    except ConfigError:
        return None, None
    project, _ = load_project_file(root)
    return root, project.api_url if project is not None else None


def _server(ctx: typer.Context, flag: str | None) -> tuple[ServerChoice, Path | None, bool]:
    """The chosen server, the project root, and whether casesync.yaml names a server."""
    root, project_url = _project(ctx)
    return choose_api_url(flag, project_url), root, project_url is not None


@commands.command()
def login(
    ctx: typer.Context,
    api_url: ApiUrlOption = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            metavar="ID",
            envvar="CASESYNC_CLIENT_ID",
            help="The application's APPLICATION_ID.",
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret",
            metavar="SECRET",
            envvar="CASESYNC_CLIENT_SECRET",
            help="The application's secret (prompted, hidden, when missing).",
        ),
    ] = None,
    redirect_uri: Annotated[
        str,
        typer.Option(
            "--redirect-uri", metavar="URI", help="Where the site sends the code (https or oob)."
        ),
    ] = "urn:ietf:wg:oauth:2.0:oob",
    code: Annotated[
        str | None,
        typer.Option(
            "--code", metavar="CODE", help="The authorization code (prompted when missing)."
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Answer no question beyond the login itself (casesync.yaml stays)."
        ),
    ] = False,
) -> None:
    """Log in with OAuth: open the printed URL, approve, paste the code; stored with mode 0600.

    One login is kept per server. Inside a project whose casesync.yaml names no server,
    login offers to write the server there, so every command of the project uses it.
    """
    import asyncio

    from casesync.api import credentials as auth
    from casesync.api.oauth import Client, authorize_url

    choice, root, named = _server(ctx, api_url)
    url = choice.url
    client_id = client_id or typer.prompt("Client ID (APPLICATION_ID)")
    client_secret = client_secret or typer.prompt("Client secret", hide_input=True)
    if code is None:
        typer.echo("Open this URL in a browser, approve casesync, then paste the code shown:")
        typer.echo(f"  {authorize_url(url, client_id, redirect_uri)}")
        code = typer.prompt("Authorization code")
    path = auth.credentials_path(os.environ)
    client = Client(client_id, client_secret)
    asyncio.run(auth.login(url, client, code, redirect_uri, path, resolve_timeouts()))
    typer.echo(f"logged in to {url}; credentials saved in {path} (mode 0600)")
    if root is not None and not named:
        _offer_to_name_the_server(ctx, root, url, ask=not yes and interactive())


def interactive() -> bool:
    """A person can answer a question (login itself may have read its code from a pipe)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _offer_to_name_the_server(ctx: typer.Context, root: Path, url: str, ask: bool) -> None:
    """Write ``api_url`` into casesync.yaml when the user says so (default no)."""
    question = f"Write 'api_url: {url}' to {root / PROJECT_FILE}, so this project uses it?"
    if ask and typer.confirm(question, default=False):
        project_file = root / PROJECT_FILE
        text = project_file.read_text(encoding="utf-8")
        separator = "" if not text or text.endswith("\n") else "\n"
        project_file.write_text(f"{text}{separator}api_url: {url}\n", encoding="utf-8")
        typer.echo(f"wrote api_url: {url} to {project_file}")
        return
    info(
        ctx,
        f"{PROJECT_FILE} names no server; to make this project use {url}, add the line "
        f"'api_url: {url}' to {root / PROJECT_FILE}",
    )


@commands.command()
def logout(ctx: typer.Context, api_url: ApiUrlOption = None) -> None:
    """Revoke the token of the chosen server (where supported) and forget its login."""
    import asyncio

    from casesync.api import credentials as auth

    choice, _, _ = _server(ctx, api_url)
    path = auth.credentials_path(os.environ)
    done = asyncio.run(auth.logout(path, choice.url, resolve_timeouts()))
    if not done.had_login:
        typer.echo(f"not logged in to {choice.url}: {path} holds no login for it")
        return
    if done.revoked:
        info(ctx, f"revoked the token on {choice.url}")
    else:
        typer.echo(
            f"could not revoke the token ({done.why_not_revoked}); it stays valid until it "
            "expires (at most 24 hours)",
            err=True,
        )
    typer.echo(f"logged out of {choice.url} ({path})")


@commands.command()
def whoami(ctx: typer.Context, api_url: ApiUrlOption = None, fmt: TextJsonOption = "text") -> None:
    """Show the server (and why that one), the login and its quotas (used / allowed)."""
    import asyncio

    from casesync.api import credentials as auth

    choice, _, _ = _server(ctx, api_url)
    tokens = auth.token_provider(choice.url, os.environ, timeouts=resolve_timeouts())
    user = asyncio.run(auth.current_user(choice.url, tokens))
    typer.echo(auth.describe_user(user, choice.url, fmt, choice.source), nl=False)
