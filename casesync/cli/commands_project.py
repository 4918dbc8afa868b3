"""The project commands: init, validate, plan, preview, schema, check-phi, anonymise.

Each command imports what it runs inside itself, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from casesync.cli.options import (
    ApiUrlOption,
    LockfileOption,
    PlanFormat,
    ProblemFormatOption,
    complete_case_keys,
    info,
    output,
    print_problems,
    project_root,
    start_dir,
    tokens_from_env,
)
from casesync.errors import ConfigError, ExitCode
from casesync.settings import MARKDOWN_BUDGET, resolve_timeouts

commands = typer.Typer()


@commands.command()
def init(ctx: typer.Context) -> None:
    """Start a project here: casesync.yaml, a sample case, and .gitignore entries."""
    from casesync.cli.scaffold import init_project

    written = init_project(start_dir(ctx).resolve())
    for name in written:
        info(ctx, f"wrote {name}")
    if not written:
        info(ctx, "nothing to do: the project is already set up")
    info(
        ctx,
        "next: commit .casesync-schemas/ (editor help), make the sample in cases/ your own "
        "(remove 'sample: true'), then run 'casesync validate' and 'casesync plan'",
    )


@commands.command()
def validate(ctx: typer.Context, fmt: ProblemFormatOption = "text") -> None:
    """Check manifests and every referenced file (paths, formats, PHI). Never uses the network."""
    from casesync.cli.progress import hashing_progress
    from casesync.cli.scaffold import refresh_editor_schemas
    from casesync.project.validate import validate_project
    from casesync.sync.workflow import InvalidProject
    from casesync.wording import plural

    root = project_root(ctx)
    refresh_editor_schemas(root)
    with hashing_progress(output(ctx)) as progress:
        result = validate_project(root, progress=progress)
    print_problems(result.problems, fmt, result.advice)
    if result.manifest is None:
        raise InvalidProject(result)
    if fmt == "text":
        cases, files = len(result.manifest.cases), len(result.facts)
        verb = "is" if cases + files == 1 else "are"
        info(ctx, f"OK: {plural(cases, 'case')} and {plural(files, 'file')} {verb} valid.")


@commands.command()
def plan(
    ctx: typer.Context,
    fmt: Annotated[
        PlanFormat,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="Output: text, json, markdown (a pull-request comment) or github (annotations).",
        ),
    ] = "text",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Also write the plan as JSON, for 'apply --plan'."
        ),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0 with no changes, 2 with changes."),
    ] = False,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars",
            metavar="N",
            help="Markdown only: beyond N characters (at least 1000), the remaining cases "
            "collapse into one summary table.",
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
    from casesync.cli.render import render_json, render_plan
    from casesync.fsutil import atomic_write
    from casesync.sync.workflow import InvalidProject, plan_only, prepare_plan

    if max_chars < 1000:
        raise typer.BadParameter(
            f"must be at least 1000, not {max_chars}", param_hint="--max-chars"
        )
    root = project_root(ctx)
    if out is not None:
        _check_out_file(out)
    problems_format = "text" if fmt == "markdown" else fmt
    try:
        with hashing_progress(output(ctx)) as progress:
            if refresh:  # the listing is diffed against the manifest and the lock themselves
                prepared = prepare_plan(
                    root, api_url_flag=api_url, lock_path=lockfile, progress=progress
                )
            else:
                plan_ = plan_only(root, api_url_flag=api_url, lock_path=lockfile, progress=progress)
    except InvalidProject as exc:
        print_problems(exc.result.problems, problems_format, exc.result.advice)
        raise
    if refresh:
        from casesync.sync.plan import make_plan
        from casesync.sync.remote import fetch_remote

        remote = fetch_remote(prepared.api_url, tokens_from_env(resolve_timeouts()))
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


@commands.command()
def preview(
    ctx: typer.Context,
    keys: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY]...",
            help="Case keys (default: all).",
            autocompletion=complete_case_keys,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Output folder (default .casesync/preview)."),
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
    from casesync.wording import plural

    try:
        with hashing_progress(output(ctx)) as progress:
            result = build_preview(project_root(ctx), tuple(keys or ()), out, progress)
    except InvalidProject as exc:
        print_problems(exc.result.problems, "text", exc.result.advice)
        raise
    print_problems(result.validation.problems, "text", result.validation.advice)
    typer.echo(
        f"Preview of {plural(result.cases, 'case')} ({plural(result.slices, 'slice')}): "
        f"{plural(result.pages_written, 'page')} and {plural(result.images_written, 'image')} "
        f"written, {plural(result.images_reused, 'image')} reused.\n"
        f"Open {result.index.as_uri()}"
    )
    if open_browser:
        webbrowser.open(result.index.as_uri())


@commands.command()
def schema(
    name: Annotated[
        Literal["case", "project", "lock"],
        typer.Argument(metavar="NAME", help="Which schema: case, project or lock."),
    ],
) -> None:
    """Print a JSON Schema (for editors and other tools)."""
    from casesync.project.schema import schema_text

    typer.echo(schema_text(name), nl=False)


@commands.command("check-phi")
def check_phi(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="Files or folders to check.", exists=True),
    ],
    fmt: ProblemFormatOption = "text",
) -> None:
    """Run the PHI gate on any files or folders (no project needed); exit 3 if any file fails."""
    from casesync.phi import cli as phi_cli

    cache_path = phi_cli.project_cache_path(start_dir(ctx))
    typer.echo(phi_cli.check_phi(paths, fmt, cache_path), nl=False)


@commands.command()
def anonymise(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(metavar="SRC", help="Folder (or file) to de-identify.", exists=True),
    ],
    dst: Annotated[
        Path, typer.Argument(metavar="DST", help="Output folder, outside SRC; mirrors SRC.")
    ],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            metavar="FILE",
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

    key_path = key_file or phi_cli.default_key_path(start_dir(ctx), dst)
    typer.echo(
        phi_cli.anonymise(src, dst, key_path, keep_series_description, split_frames), nl=False
    )
