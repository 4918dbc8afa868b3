"""``casesync demo``: the whole flow on the shipped examples, against an in-process emulator.

A newcomer sees validate, plan, apply and a second, empty plan in one command, with nothing
leaving loopback and no account needed. The examples ship as package data
(``casesync.examples``) so an installed casesync finds them too.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casesync.cli.render import render_plan
from casesync.emulator import EmulatorConfig, EmulatorThread
from casesync.errors import Refused
from casesync.sync.apply import ApplySettings, run_apply
from casesync.sync.lockfile import load_lock
from casesync.sync.report import Events
from casesync.sync.workflow import prepare_plan
from casesync.wording import plural

if TYPE_CHECKING:
    from casesync.api.credentials import TokenProvider, TokenSource

# What a teaching repository holds; the package's tools/ and ci/ are not part of it.
EXAMPLE_ITEMS = ("casesync.yaml", "README.md", ".gitignore", ".casesync-schemas", "cases")

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoSettings:
    keep: Path | None = None  # copy the examples here and leave them
    serve: bool = False  # keep the emulator running until Ctrl-C


def examples_source() -> Path:
    return Path(str(resources.files("casesync.examples")))


def copy_examples(target: Path) -> None:
    """Copy the example repository into ``target`` (new or empty)."""
    if target.exists() and any(target.iterdir()):
        raise Refused(f"{target} is not empty", hint="give --keep a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    source = examples_source()
    for name in EXAMPLE_ITEMS:
        if (source / name).is_dir():
            ignore = shutil.ignore_patterns(".casesync", "__pycache__")
            shutil.copytree(source / name, target / name, ignore=ignore)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)


def demo_tokens(emulator: EmulatorThread) -> TokenSource:
    """The demo user's fresh access token, handed to apply (the environment is left alone).

    A token the emulator issued itself: no login page, nothing written to disk.
    """
    access_token = emulator.issue_tokens()["access_token"]

    def tokens(api_url: str) -> TokenProvider:
        from casesync.api.credentials import TokenProvider

        return TokenProvider(api_url, access_token, source="the demo emulator")

    return tokens


def run_demo(settings: DemoSettings, events: Events, say: Say) -> None:
    """Copy, serve, log in, validate, plan, apply, plan again, show, clean up."""
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="casesync-demo-")))
        project = settings.keep.resolve() if settings.keep else scratch / "examples"
        copy_examples(project)
        emulator = stack.enter_context(EmulatorThread(EmulatorConfig(job_seconds=0.5)))
        base_url = emulator.base_url
        say(f"casesync demo: the example cases in {project}")
        say(f"against an emulated Radiopaedia at {base_url} (loopback only, demo user)\n")

        say("$ casesync validate")
        prepared = prepare_plan(project, api_url_flag=base_url)
        files = len(prepared.validation.facts)
        cases = len(prepared.manifest.cases)
        verb = "is" if cases + files == 1 else "are"
        say(f"OK: {plural(cases, 'case')} and {plural(files, 'file')} {verb} valid.\n")

        say("$ casesync plan")
        say(render_plan(prepared.plan, "text"))
        say("$ casesync apply --yes")
        to_apply = ApplySettings(root=project, api_url_flag=base_url, yes=True)
        run_apply(to_apply, events, lambda: True, demo_tokens(emulator))

        say("\n$ casesync plan   # again: everything is recorded in casesync.lock")
        say(render_plan(prepare_plan(project, api_url_flag=base_url).plan, "text"))
        say(describe_remote(emulator.snapshot(), base_url))
        lock = load_lock(prepared.lock_path, base_url)
        files = sum(len(s.files) for c in lock.cases.values() for t in c.studies for s in t.series)
        say(
            f"Lockfile: {prepared.lock_path} ({plural(len(lock.cases), 'case')}, "
            f"{plural(files, 'file')} recorded)"
        )
        if settings.serve:
            banner = serve_banner(base_url, emulator.issue_tokens()["access_token"], project)
            _serve_until_ctrl_c(lambda: say(banner))
        if settings.keep:
            say(f"Kept the project in {project}.")
        else:
            say("Removed the demo folder; 'casesync demo --keep DIR' keeps it.")


def describe_remote(snapshot: dict[str, Any], base_url: str) -> str:
    """The cases as the emulator holds them, with their studies and series."""
    lines = [
        f"\nOn the emulator (each case's page is at {base_url}/cases/ID; "
        f"{base_url}/_emulator/state shows everything):"
    ]
    for case in snapshot["cases"]:
        series = [s for study in case["studies"] for s in study["series"]]
        images = sum(len(s["upload_ids"]) for s in series)
        finished = ", upload finished" if case["upload_finished"] else ""
        lines.append(
            f"  case {case['id']}: {case['title']} ({case['status']}{finished}): "
            f"{plural(len(case['studies']), 'study')}, {plural(len(series), 'series')}, "
            f"{plural(images, 'image')}"
        )
    return "\n".join(lines)


def serve_banner(base_url: str, access_token: str, project: Path) -> str:
    return "\n".join(
        [
            "",
            f"The emulator keeps running at {base_url}. In another terminal:",
            f"  cd {project}",
            f"  export CASESYNC_API_URL={base_url}",
            f"  export CASESYNC_ACCESS_TOKEN={access_token}",
            "  casesync plan",
            f"  curl {base_url}/_emulator/state",
            "Press Ctrl-C to stop.",
        ]
    )


def _serve_until_ctrl_c(announce: Callable[[], None]) -> None:
    """Announce, then wait; a Ctrl-C that arrives right after the announcement is caught too."""
    try:
        announce()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
