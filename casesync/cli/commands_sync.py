"""The commands that talk to a server: apply and resolve; and the emulator and demo to try them.

Each command imports what it runs inside itself, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from casesync.cli.options import (
    ApiUrlOption,
    LockfileOption,
    Output,
    TextJsonOption,
    at_least_one,
    complete_case_keys,
    not_negative,
    output,
    print_problems,
    project_root,
    seconds_option,
    tokens_from_env,
)
from casesync.errors import ConfigError
from casesync.settings import env_int, resolve_timeouts

if TYPE_CHECKING:
    from casesync.sync.report import Events

commands = typer.Typer()


def apply_events(fmt: str, out: Output) -> Events:
    """JSON lines, live bars on a terminal, or plain unpadded lines for a log."""
    from casesync.cli.progress import JsonEvents, PlainEvents, RichEvents

    if fmt == "json":
        return JsonEvents(sys.stdout)
    if sys.stdout.isatty() or out.force_terminal:
        return RichEvents(out.console(), out.verbosity)
    return PlainEvents(out.console(plain=True), out.verbosity)


@commands.command()
def apply(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", envvar="CASESYNC_YES", help="Apply without asking.")
    ] = False,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            metavar="FILE",
            help="Apply only if this reviewed plan (plan --out) is current.",
        ),
    ] = None,
    case: Annotated[
        list[str] | None,
        typer.Option(
            "--case",
            metavar="KEY",
            help="Only this case (repeatable).",
            autocompletion=complete_case_keys,
        ),
    ] = None,
    upload_concurrency: Annotated[
        int,
        typer.Option(
            metavar="N",
            envvar="CASESYNC_UPLOAD_CONCURRENCY",
            callback=at_least_one,
            help="Uploads in flight (at least 1).",
        ),
    ] = 8,
    api_concurrency: Annotated[
        int,
        typer.Option(
            metavar="N",
            envvar="CASESYNC_API_CONCURRENCY",
            callback=at_least_one,
            help="API calls in flight (at least 1).",
        ),
    ] = 4,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for every series to finish processing.")
    ] = False,
    wait_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            envvar="CASESYNC_WAIT_TIMEOUT",
            callback=not_negative,
            help="Seconds --wait waits at most; jobs still processing are recorded as such.",
        ),
    ] = 1800,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failed case.")
    ] = False,
    within_quota: Annotated[
        bool,
        typer.Option(
            "--within-quota",
            help="Create the new cases the draft quota allows (in order), finish the rest; "
            "the others wait (exit 4).",
        ),
    ] = False,
    recreate: Annotated[
        list[str] | None,
        typer.Option(
            "--recreate",
            metavar="KEY",
            help="Create again this case, deleted on the site (repeatable).",
            autocompletion=complete_case_keys,
        ),
    ] = None,
    fmt: TextJsonOption = "text",
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
    connect_timeout: Annotated[
        float | None, seconds_option("--connect-timeout", "Connecting, 10")
    ] = None,
    read_timeout: Annotated[
        float | None, seconds_option("--read-timeout", "A whole API answer, 60")
    ] = None,
    stall_timeout: Annotated[
        float | None, seconds_option("--stall-timeout", "An upload with no progress, 60")
    ] = None,
    deadline: Annotated[
        float | None, seconds_option("--deadline", "One call, retries included, 300")
    ] = None,
) -> None:
    """Create what is missing on Radiopaedia and upload only the bytes it lacks."""
    from casesync.sync.apply import ApplySettings, run_apply
    from casesync.sync.executor import ApplyOptions
    from casesync.sync.workflow import InvalidProject

    flags = {"connect": connect_timeout, "read": read_timeout, "stall": stall_timeout}
    settings = ApplySettings(
        root=project_root(ctx),
        api_url_flag=api_url,
        lock_path=lockfile,
        cases=tuple(case or ()),
        recreate=tuple(recreate or ()),
        plan_file=plan_file,
        yes=yes,
        interactive=sys.stdin.isatty() and sys.stdout.isatty(),
        grace_seconds=env_int("CASESYNC_GRACE_SECONDS", 30),
        timeouts=resolve_timeouts(flags | {"deadline": deadline}),
        options=ApplyOptions(
            upload_concurrency=upload_concurrency,
            api_concurrency=api_concurrency,
            wait=wait,
            wait_timeout=wait_timeout,
            fail_fast=fail_fast,
            poll_seconds=env_int("CASESYNC_POLL_SECONDS", 5),
            within_quota=within_quota,
        ),
    )
    events = apply_events(fmt, output(ctx))
    try:
        run_apply(
            settings,
            events,
            lambda: typer.confirm("Apply?", default=False),
            tokens_from_env(settings.timeouts),
        )
    except InvalidProject as exc:
        print_problems(exc.result.problems, fmt, exc.result.advice)
        raise


@commands.command()
def resolve(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY", help="The case key apply reported.", autocompletion=complete_case_keys
        ),
    ],
    case_id: Annotated[
        int | None,
        typer.Option(
            "--case-id",
            metavar="ID",
            callback=at_least_one,
            help="The case exists: its id on the site.",
        ),
    ] = None,
    study_id: Annotated[
        int | None,
        typer.Option(
            "--study-id",
            metavar="ID",
            callback=at_least_one,
            help="The study exists: its id on the site.",
        ),
    ] = None,
    series_job: Annotated[
        str | None,
        typer.Option("--series-job", metavar="JOB", help="The series exists: its job id."),
    ] = None,
    not_created: Annotated[
        bool, typer.Option("--not-created", help="It is not on the site: create it again.")
    ] = False,
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """Settle a create apply sent without getting an answer (apply says when)."""
    from casesync.sync.resolve import Answer
    from casesync.sync.resolve import resolve as resolve_unknown

    answer = Answer(case_id, study_id, series_job, not_created)
    if (answer.kind is not None) + not_created != 1:
        raise ConfigError(
            "say what you found",
            hint="give one of --case-id, --study-id, --series-job, --not-created",
        )
    root = project_root(ctx)
    typer.echo(
        resolve_unknown(root, key, answer, typer.echo, api_url_flag=api_url, lock_path=lockfile)
    )


@commands.command()
def emulator(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port (0 = any free port).")] = 8787,
    state: Annotated[
        Path | None,
        typer.Option("--state", metavar="FILE", help="Keep cases, tokens and uploads in FILE."),
    ] = None,
    token_ttl: Annotated[
        int, typer.Option(metavar="SECONDS", help="Access token lifetime.")
    ] = 86400,
    draft_quota: Annotated[
        str, typer.Option(metavar="N", help="Draft cases allowed per user, or 'unlimited'.")
    ] = "10",
    anonymiser_check: Annotated[
        Literal["strict", "off"],
        typer.Option(
            metavar="MODE", help="strict: reject DICOM that is not anonymised; off: accept it."
        ),
    ] = "strict",
    job_seconds: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long a series job stays pending.")
    ] = 0.2,
    latency_ms: Annotated[
        float, typer.Option(metavar="MS", help="Delay added to every request.")
    ] = 0,
    fail_rate: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of requests answered 500/503 at random (0-1)."),
    ] = 0.0,
    rate_limit: Annotated[
        str | None,
        typer.Option(metavar="N/s", help="Answer 429 beyond N requests per second ('20/s')."),
    ] = None,
    url_ttl: Annotated[int, typer.Option(metavar="SECONDS", help="Presigned URL lifetime.")] = 900,
    drop_rate: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of connections closed mid-request (0-1)."),
    ] = 0.0,
    drop_after_create: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of creates made, then left unanswered (0-1)."),
    ] = 0.0,
    garbage_rate: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Share of 2xx answers sent as an HTML page (0-1)."),
    ] = 0.0,
    stall: Annotated[
        float, typer.Option(metavar="SHARE", help="Share of answers that never end (0-1).")
    ] = 0.0,
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="Seed for reproducible faults.")
    ] = None,
) -> None:
    """Run an emulator of the Radiopaedia API on this machine (until Ctrl-C)."""
    import asyncio

    from casesync.emulator.config import EmulatorConfig, parse_quota, parse_rate
    from casesync.emulator.server import serve

    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            token_ttl=token_ttl,
            draft_quota=parse_quota(draft_quota),
            anonymiser_check=anonymiser_check,
            job_seconds=job_seconds,
            latency_ms=latency_ms,
            fail_rate=fail_rate,
            rate_limit=None if rate_limit is None else parse_rate(rate_limit),
            url_ttl=url_ttl,
            drop_rate=drop_rate,
            drop_after_create=drop_after_create,
            garbage_rate=garbage_rate,
            stall_rate=stall,
            seed=seed,
            state_file=state,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        asyncio.run(serve(config, lambda text: typer.echo(text)))
    except KeyboardInterrupt:
        typer.echo("emulator stopped", err=True)


@commands.command()
def demo(
    ctx: typer.Context,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            metavar="DIR",
            help="Copy the examples to DIR (new or empty) and leave them there.",
        ),
    ] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve", help="Keep the emulator running afterwards, until Ctrl-C.")
    ] = False,
) -> None:
    """Try casesync in one command: the examples, validated, planned and applied to an emulator."""
    from casesync.cli.demo import DemoSettings, run_demo

    run_demo(DemoSettings(keep, serve_after), apply_events("text", output(ctx)), typer.echo)
