"""Command-line wiring only: parse flags, build settings, call core functions, print results.

Business logic lives in the core modules; every error travels as a ``CasesyncError`` to
``__main__``, which owns messages and exit codes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from casesync import __version__
from casesync.cli.render import MARKDOWN_BUDGET  # a default shown in --help
from casesync.errors import ConfigError, ExitCode
from casesync.settings import debug_from_env, env_int, find_project_root, resolve_timeouts

if TYPE_CHECKING:
    from casesync.api.credentials import TokenProvider, TokenSource
    from casesync.project.yamlload import Problem
    from casesync.settings import Timeouts
    from casesync.sync.report import Events

# Every command imports what it runs inside its own function: `--version`, `--help` and
# `validate` never pay for aiohttp, pydicom, rich or the apply engine (and on Windows they never
# import the POSIX-only run lock).


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
    debug = debug or debug_from_env()
    ctx.obj = GlobalOptions(directory, debug)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")


# --- project: init, validate, plan, schema ---


def _options(ctx: typer.Context) -> GlobalOptions:
    options = ctx.find_root().obj
    assert isinstance(options, GlobalOptions)
    return options


def _start_dir(ctx: typer.Context) -> Path:
    return _options(ctx).directory or Path.cwd()


def _project_root(ctx: typer.Context) -> Path:
    return find_project_root(_start_dir(ctx))


FormatOption = Annotated[
    str,
    typer.Option("--format", "-f", help="Output format: text, json or markdown (plan only)."),
]
ApiUrlOption = Annotated[
    str | None,
    typer.Option("--api-url", help="Radiopaedia API base URL (env CASESYNC_API_URL)."),
]
LockfileOption = Annotated[
    Path | None,
    typer.Option("--lockfile", help="Lockfile to use instead of casesync.lock (one per server)."),
]


def _seconds(flag: str, what: str) -> object:
    return typer.Option(flag, help=f"{what} (seconds; README, timeouts).", show_default=False)


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(allowed)}")


def _print_problems(problems: list[Problem], fmt: str, advice: Sequence[str] = ()) -> None:
    """The problems, then ``advice`` (the PHI gate's fix, said once for all its lines)."""
    from casesync.cli.render import render_problems_json, render_problems_text

    if fmt == "json":
        typer.echo(render_problems_json(problems, advice), nl=False)
    elif problems:
        typer.echo(render_problems_text(problems, advice), nl=False)


@app.command()
def init(ctx: typer.Context) -> None:
    """Start a project here: casesync.yaml, a sample case, and .gitignore entries."""
    from casesync.cli.scaffold import init_project

    root = _start_dir(ctx).resolve()
    written = init_project(root)
    for name in written:
        typer.echo(f"wrote {name}")
    if not written:
        typer.echo("nothing to do: the project is already set up")
    typer.echo(
        "next: commit .casesync-schemas/ (editor help), make the sample in cases/ your own "
        "(remove 'sample: true'), then run 'casesync validate' and 'casesync plan'"
    )


@app.command()
def validate(ctx: typer.Context, fmt: FormatOption = "text") -> None:
    """Check manifests and every referenced file (paths, formats, PHI). Never uses the network."""
    from casesync.cli.progress import hashing_progress
    from casesync.cli.scaffold import refresh_editor_schemas
    from casesync.project.validate import validate_project
    from casesync.sync.workflow import InvalidProject

    _check_format(fmt, ("text", "json"))
    root = _project_root(ctx)
    refresh_editor_schemas(root)
    with hashing_progress() as progress:
        result = validate_project(root, progress=progress)
    _print_problems(result.problems, fmt, result.advice)
    if result.manifest is None:
        raise InvalidProject(result)
    if fmt == "text":
        files = len(result.facts)
        cases = len(result.manifest.cases)
        typer.echo(f"OK: {cases} case{'s' * (cases != 1)} and {files} files are valid.")


@app.command()
def plan(
    ctx: typer.Context,
    fmt: FormatOption = "text",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the plan as JSON, for 'apply --plan'."),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0 with no changes, 2 with changes."),
    ] = False,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars",
            min=1000,
            help="Markdown only: collapse the cases that do not fit into one summary table.",
        ),
    ] = MARKDOWN_BUDGET,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Also read the case listing (needs login): deleted, published, retitled cases "
            "and the draft quota.",
        ),
    ] = False,
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
) -> None:
    """Show what apply would create and upload, from the manifests and casesync.lock alone."""
    from casesync.cli.progress import hashing_progress
    from casesync.cli.render import PLAN_FORMATS, render_json, render_plan
    from casesync.fsutil import atomic_write
    from casesync.sync.workflow import InvalidProject, prepare_plan

    _check_format(fmt, PLAN_FORMATS)
    root = _project_root(ctx)
    if out is not None:
        _check_out_file(out)
    try:
        with hashing_progress() as progress:
            prepared = prepare_plan(
                root, api_url_flag=api_url, lock_path=lockfile, progress=progress
            )
    except InvalidProject as exc:
        _print_problems(exc.result.problems, "json" if fmt == "json" else "text", exc.result.advice)
        raise
    plan_ = prepared.plan
    if refresh:
        from casesync.sync.plan import make_plan
        from casesync.sync.remote import fetch_remote

        remote = fetch_remote(prepared.api_url, _tokens_from_env(resolve_timeouts()))
        plan_ = make_plan(prepared.manifest, prepared.lock, prepared.api_url, remote)
    typer.echo(render_plan(plan_, fmt, max_chars), nl=False)
    if out is not None:
        try:
            atomic_write(out, render_json(plan_))
        except OSError as exc:
            raise ConfigError(
                f"cannot write the plan to {out}: {exc.strerror}", hint=OUT_HINT
            ) from None
    if detailed_exitcode and plan_.has_changes:
        raise typer.Exit(int(ExitCode.CHANGES_PRESENT))


OUT_HINT = "give --out a file name in an existing folder"


def _check_out_file(out: Path) -> None:
    """Fail before the work, not after: ``--out`` must name a file in an existing folder."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder", hint=OUT_HINT)
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist", hint=OUT_HINT)


@app.command()
def preview(
    ctx: typer.Context,
    keys: Annotated[list[str] | None, typer.Argument(help="Case keys (default: all).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default .casesync/preview).")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the index page in a web browser.")
    ] = False,
) -> None:
    """Write the cases as a local HTML site: stacks to scroll, a review page per series."""
    import webbrowser

    from casesync.cli.progress import hashing_progress
    from casesync.preview.build import build_preview  # numpy and Pillow: only for this command
    from casesync.sync.workflow import InvalidProject

    try:
        with hashing_progress() as progress:
            result = build_preview(_project_root(ctx), tuple(keys or ()), out, progress)
    except InvalidProject as exc:
        _print_problems(exc.result.problems, "text", exc.result.advice)
        raise
    _print_problems(result.validation.problems, "text", result.validation.advice)
    typer.echo(
        f"Preview of {result.cases} case{'s' * (result.cases != 1)} ({result.slices} slices): "
        f"{result.pages_written} pages and {result.images_written} images written, "
        f"{result.images_reused} images reused.\nOpen {result.index.as_uri()}"
    )
    if open_browser:
        webbrowser.open(result.index.as_uri())


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="case, project or lock")],
) -> None:
    """Print a JSON Schema (for editors and other tools)."""
    from casesync.project.schema import schema_text

    typer.echo(schema_text(name), nl=False)


# --- PHI ---


@app.command("check-phi")
def check_phi(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to check.", exists=True)],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text or json.")
    ] = "text",
) -> None:
    """Run the PHI gate on any files or folders (no project needed); exit 3 if any file fails."""
    from casesync.phi import cli as phi_cli

    _check_format(fmt, ("text", "json"))
    cache_path = phi_cli.project_cache_path(_start_dir(ctx))
    typer.echo(phi_cli.check_phi(paths, fmt, cache_path), nl=False)


@app.command()
def anonymise(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="Folder (or file) to de-identify.", exists=True)],
    dst: Annotated[Path, typer.Argument(help="Output folder, outside SRC; mirrors SRC.")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Secret key for output UIDs. Default: .casesync/anonymise.key in the project "
            "around the current folder, else in DST's parent folder. Created once (mode 0600); "
            "keep it secret (it links output to source) and keep it stable (a new key means new "
            "UIDs, so everything would be uploaded again).",
        ),
    ] = None,
    keep_series_description: Annotated[
        bool,
        typer.Option(help="Keep SeriesDescription (the policy keeps it; check it names no one)."),
    ] = True,
    split_frames: Annotated[
        bool, typer.Option("--split-frames", help="Write one file per frame of multi-frame files.")
    ] = False,
) -> None:
    """Write a de-identified, deterministic copy of SRC under DST; never modifies SRC."""
    from casesync.phi import cli as phi_cli

    key_path = key_file or phi_cli.default_key_path(_start_dir(ctx), dst)
    typer.echo(
        phi_cli.anonymise(src, dst, key_path, keep_series_description, split_frames), nl=False
    )


# --- apply ---


def _tokens_from_env(timeouts: Timeouts) -> TokenSource:
    """Tokens as ``casesync login`` and the ``CASESYNC_*`` variables give them."""

    def tokens(api_url: str) -> TokenProvider:
        from casesync.api.credentials import token_provider

        return token_provider(api_url, os.environ, timeouts=timeouts)

    return tokens


def _apply_events(fmt: str) -> Events:
    from rich.console import Console

    from casesync.cli.progress import JsonEvents, PlainEvents, RichEvents

    if fmt == "json":
        return JsonEvents(sys.stdout)
    if sys.stdout.isatty():
        return RichEvents(Console())
    return PlainEvents(Console(width=200, no_color=True, soft_wrap=True))


@app.command()
def apply(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", envvar="CASESYNC_YES", help="Apply without asking.")
    ] = False,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Apply only if this reviewed plan (plan --out) is current."),
    ] = None,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="Only this case key (repeatable).")
    ] = None,
    upload_concurrency: Annotated[
        int,
        typer.Option(min=1, envvar="CASESYNC_UPLOAD_CONCURRENCY", help="Uploads in flight."),
    ] = 8,
    api_concurrency: Annotated[
        int, typer.Option(min=1, envvar="CASESYNC_API_CONCURRENCY", help="API calls in flight.")
    ] = 4,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for every series to finish processing.")
    ] = False,
    wait_timeout: Annotated[
        float,
        typer.Option(
            min=0,
            envvar="CASESYNC_WAIT_TIMEOUT",
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
        typer.Option("--recreate", help="Create again this case, deleted on the site."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: text or json.")] = "text",
    api_url: ApiUrlOption = None,
    lockfile: LockfileOption = None,
    connect_timeout: Annotated[
        float | None, _seconds("--connect-timeout", "Connecting, 10")
    ] = None,
    read_timeout: Annotated[
        float | None, _seconds("--read-timeout", "A whole API answer, 60")
    ] = None,
    stall_timeout: Annotated[
        float | None, _seconds("--stall-timeout", "An upload with no progress, 60")
    ] = None,
    deadline: Annotated[
        float | None, _seconds("--deadline", "One call, retries included, 300")
    ] = None,
) -> None:
    """Create what is missing on Radiopaedia and upload only the bytes it lacks."""
    from casesync.sync.apply import ApplySettings, run_apply
    from casesync.sync.executor import ApplyOptions
    from casesync.sync.workflow import InvalidProject

    _check_format(fmt, ("text", "json"))
    flags = {"connect": connect_timeout, "read": read_timeout, "stall": stall_timeout}
    settings = ApplySettings(
        root=_project_root(ctx),
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
    try:
        run_apply(
            settings,
            _apply_events(fmt),
            lambda: typer.confirm("Apply?", default=False),
            _tokens_from_env(settings.timeouts),
        )
    except InvalidProject as exc:
        _print_problems(exc.result.problems, fmt, exc.result.advice)
        raise


@app.command()
def resolve(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The case key apply reported.")],
    case_id: Annotated[
        int | None,
        typer.Option("--case-id", min=1, help="The case exists: its id on the site."),
    ] = None,
    study_id: Annotated[
        int | None,
        typer.Option("--study-id", min=1, help="The study exists: its id on the site."),
    ] = None,
    series_job: Annotated[
        str | None, typer.Option("--series-job", help="The series exists: its job id.")
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
    root = _project_root(ctx)
    notice = typer.echo
    typer.echo(resolve_unknown(root, key, answer, notice, api_url_flag=api_url, lock_path=lockfile))


# --- the site: status, adopt, forget, import ---


@app.command()
def status(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output: text or json.")] = "text",
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

    _check_format(fmt, ("text", "json"))
    tokens = _tokens_from_env(resolve_timeouts())
    report = read_status(
        _project_root(ctx),
        api_url_flag=api_url,
        lock_path=lockfile,
        jobs=jobs,
        read=partial(fetch_remote, tokens=tokens),
        poll=partial(poll_with_client, tokens),
    )
    typer.echo(render_status(report, fmt), nl=False)
    if detailed_exitcode and report.needs_attention:
        raise typer.Exit(int(ExitCode.CHANGES_PRESENT))


@app.command()
def adopt(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The manifest's case key.")],
    case_id: Annotated[int, typer.Option("--case-id", help="The case's id on the site.")],
    imaging: Annotated[
        str,
        typer.Option(
            "--imaging",
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

    settings = AdoptSettings(_project_root(ctx), key, case_id, imaging, api_url, lockfile)
    read = partial(fetch_remote, tokens=_tokens_from_env(resolve_timeouts()))
    typer.echo(adopt_case(settings, typer.echo, read))


@app.command()
def forget(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The case key to drop from casesync.lock.")],
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
    typer.echo(forget_case(ForgetSettings(_project_root(ctx), key, api_url, lockfile), typer.echo))


@app.command("import")
def import_case(
    ctx: typer.Context,
    case_id: Annotated[
        int | None, typer.Option("--case-id", help="The case's id on the site.")
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option("--into", help="New case folder (default cases/<title as a slug>)."),
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

    settings = ImportSettings(_project_root(ctx), case_id, into, all_drafts, api_url, lockfile)
    import_cases(settings, typer.echo, _tokens_from_env(resolve_timeouts()))


# --- emulator ---


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8787,
    state: Annotated[
        Path | None, typer.Option("--state", help="Keep cases, tokens and uploads in FILE.")
    ] = None,
    token_ttl: Annotated[int, typer.Option(help="Access token lifetime, seconds.")] = 86400,
    draft_quota: Annotated[
        str, typer.Option(help="Draft cases allowed per user, or 'unlimited'.")
    ] = "10",
    anonymiser_check: Annotated[
        str, typer.Option(help="'strict' rejects DICOM that is not anonymised; 'off'.")
    ] = "strict",
    job_seconds: Annotated[float, typer.Option(help="How long a series job stays pending.")] = 0.2,
    latency_ms: Annotated[float, typer.Option(help="Delay added to every request.")] = 0,
    fail_rate: Annotated[
        float, typer.Option(help="Share of requests answered 500/503 at random (0-1).")
    ] = 0.0,
    rate_limit: Annotated[
        str | None, typer.Option(help="Answer 429 beyond N requests per second ('20/s').")
    ] = None,
    url_ttl: Annotated[int, typer.Option(help="Presigned URL lifetime, seconds.")] = 900,
    drop_rate: Annotated[
        float, typer.Option(help="Share of connections closed mid-request (0-1).")
    ] = 0.0,
    drop_after_create: Annotated[
        float, typer.Option(help="Share of creates made, then left unanswered (0-1).")
    ] = 0.0,
    garbage_rate: Annotated[
        float, typer.Option(help="Share of 2xx answers sent as an HTML page (0-1).")
    ] = 0.0,
    stall: Annotated[float, typer.Option(help="Share of answers that never end (0-1).")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
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


# --- demo ---


@app.command()
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep", help="Copy the examples to DIR (new or empty) and leave them there."
        ),
    ] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve", help="Keep the emulator running afterwards, until Ctrl-C.")
    ] = False,
) -> None:
    """Try casesync in one command: the examples, validated, planned and applied to an emulator."""
    from casesync.cli.demo import DemoSettings, run_demo

    run_demo(DemoSettings(keep, serve_after), _apply_events("text"), typer.echo)


# --- auth ---


def _auth_api_url(ctx: typer.Context, flag: str | None) -> str:
    """--api-url, CASESYNC_API_URL, then casesync.yaml when run inside a project."""
    from casesync.settings import resolve_api_url

    return resolve_api_url(flag, _project_api_url(ctx))


def _project_api_url(ctx: typer.Context) -> str | None:
    """Only casesync.yaml's api_url: login and whoami also work outside a project."""
    from casesync.project.validate import load_project_file

    try:
        root = find_project_root(_start_dir(ctx))
    except ConfigError:
        return None
    project, _ = load_project_file(root)
    return project.api_url if project is not None else None


@app.command()
def login(
    ctx: typer.Context,
    api_url: ApiUrlOption = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", envvar="CASESYNC_CLIENT_ID", help="The application's APPLICATION_ID."
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret",
            envvar="CASESYNC_CLIENT_SECRET",
            help="The application's secret (prompted, hidden, when missing).",
        ),
    ] = None,
    redirect_uri: Annotated[
        str,
        typer.Option("--redirect-uri", help="Where the site sends the code (https or oob)."),
    ] = "urn:ietf:wg:oauth:2.0:oob",
    code: Annotated[
        str | None, typer.Option("--code", help="The authorization code (prompted when missing).")
    ] = None,
) -> None:
    """Log in with OAuth: open the printed URL, approve, paste the code; stored with mode 0600."""
    import asyncio

    from casesync.api import credentials as auth
    from casesync.api.oauth import Client, authorize_url

    url = _auth_api_url(ctx, api_url)
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


@app.command()
def logout() -> None:
    """Revoke the stored token on its server (where supported) and remove the credentials file."""
    import asyncio

    from casesync.api import credentials as auth

    path = auth.credentials_path(os.environ)
    done = asyncio.run(auth.logout(path, resolve_timeouts()))
    if not done.had_login:
        typer.echo(f"not logged in: no {path}")
        return
    if done.revoked:
        typer.echo("revoked the token on the server")
    else:
        typer.echo(
            f"could not revoke the token ({done.why_not_revoked}); it stays valid until it "
            "expires (at most 24 hours)",
            err=True,
        )
    typer.echo(f"removed {path}")


@app.command()
def whoami(ctx: typer.Context, api_url: ApiUrlOption = None, fmt: FormatOption = "text") -> None:
    """Show the login and its quotas (draft and unlisted cases: used / allowed)."""
    import asyncio

    from casesync.api import credentials as auth

    _check_format(fmt, ("text", "json"))
    url = _auth_api_url(ctx, api_url)
    tokens = auth.token_provider(url, os.environ, timeouts=resolve_timeouts())
    user = asyncio.run(auth.current_user(url, tokens))
    typer.echo(auth.describe_user(user, url, fmt), nl=False)
