"""``casesync apply`` as a plain function: lock the repo, settle the journal, plan, confirm, run.

The CLI only gathers ``ApplySettings`` and says where tokens come from (``TokenSource``: the
environment or the login file for the CLI, the emulator's own token for the demo); this module
never reads the environment. Everything that decides what happens is here, and the async work
is delegated to the executor. Signals: the first SIGINT/SIGTERM stops new work and
lets requests in flight finish (bounded grace), the second exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from casesync.errors import (
    CasesyncError,
    ConfigError,
    ExitCode,
    Interrupted,
    PartialFailure,
    Refused,
)
from casesync.fsutil import read_regular
from casesync.project.manifest import Manifest
from casesync.settings import Timeouts
from casesync.sync.executor import ApplyOptions, Executor
from casesync.sync.journal import Ledger
from casesync.sync.lockfile import check_writable
from casesync.sync.plan import Plan, make_plan
from casesync.sync.report import ApplyReport, Events
from casesync.sync.runlock import run_lock
from casesync.sync.workflow import PreparedPlan, prepare_plan

if TYPE_CHECKING:
    from casesync.api.credentials import TokenProvider, TokenSource


@dataclass(frozen=True)
class ApplySettings:
    root: Path
    api_url_flag: str | None = None
    lock_path: Path | None = None
    cases: tuple[str, ...] = ()
    recreate: tuple[str, ...] = ()  # cases deleted on the site, to be created again
    plan_file: Path | None = None
    yes: bool = False
    interactive: bool = False  # a person can answer "Apply? [y/N]"
    grace_seconds: float = 30.0
    timeouts: Timeouts = field(default_factory=Timeouts)  # every HTTP request's bounds
    options: ApplyOptions = field(default_factory=ApplyOptions)  # what the executor needs


def run_apply(
    settings: ApplySettings, events: Events, confirm: Callable[[], bool], tokens: TokenSource
) -> ApplyReport:
    """Apply the plan; raise PartialFailure (4), Refused (5) or Interrupted (130) as due."""
    with run_lock(settings.root, events.notice), contextlib.closing(events):
        prepared, ledger, plan = settle_and_plan(
            settings.root, settings.api_url_flag, settings.lock_path
        )
        if settings.plan_file is not None:  # before --recreate: the plan reviewed showed it
            _check_reviewed_plan(settings.plan_file, plan)
        if settings.recreate:
            plan = _recreate_plan(settings.recreate, prepared, ledger, tokens)
        plan = _select(plan, settings.cases)
        _refuse_samples(prepared.manifest, plan)
        events.plan(plan)
        if plan.has_changes and not settings.yes:
            if not settings.interactive:
                raise Refused(
                    "apply needs confirmation and there is no terminal to ask",
                    hint="pass --yes (or set CASESYNC_YES=1) to apply without a prompt",
                )
            if not confirm():
                raise Refused("apply cancelled: nothing was sent")
        if settings.recreate:  # confirmed: now the old ids leave the lock (journaled)
            from casesync.sync.adopt import forget_cases

            for line in forget_cases(ledger, settings.recreate):
                events.notice(f"--recreate: {line}")
        report, fatal = asyncio.run(
            _execute(settings, tokens(prepared.api_url), prepared.manifest, plan, ledger, events)
        )
        ledger.compact()  # keeps every result the saved lockfile lacks
        events.summary(report, prepared.api_url)
    _raise_for(report, ledger, fatal)
    return report


def settle_and_plan(
    root: Path, api_url_flag: str | None, lock_path: Path | None
) -> tuple[PreparedPlan, Ledger, Plan]:
    """Validate, fold journaled results into the lock, and plan from the lock as it now is.

    A lockfile that could not be saved after a create would lose its id, so an unwritable
    lockfile folder is refused here, before anything is sent.
    """
    prepared = prepare_plan(root, api_url_flag=api_url_flag, lock_path=lock_path)
    check_writable(prepared.lock_path)
    ledger = Ledger(prepared.root, prepared.lock_path, prepared.lock)
    ledger.recover()
    return prepared, ledger, make_plan(prepared.manifest, ledger.lock, prepared.api_url)


def _recreate_plan(
    keys: tuple[str, ...], prepared: PreparedPlan, ledger: Ledger, tokens: TokenSource
) -> Plan:
    """The plan with the cases the listing shows deleted created anew (refused for others).

    The lock itself changes only once the plan is confirmed.
    """
    from casesync.sync.adopt import check_deleted
    from casesync.sync.remote import fetch_remote

    check_deleted(ledger.lock, keys, fetch_remote(prepared.api_url, tokens))
    without = dataclasses.replace(
        ledger.lock, cases={k: c for k, c in ledger.lock.cases.items() if k not in keys}
    )
    return make_plan(prepared.manifest, without, prepared.api_url)


def _check_reviewed_plan(path: Path, fresh: Plan) -> None:
    try:
        reviewed = json.loads(read_regular(path, None))["inputs_digest"]  # a FIFO: refused
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the plan {path} ({exc})") from None
    if reviewed != fresh.inputs_digest:
        raise Refused(
            f"the plan {path} was computed from other inputs (manifests, files, lockfile or "
            "API URL changed since)",
            hint="run 'casesync plan --out plan.json' again and review it",
        )


def _refuse_samples(manifest: Manifest, plan: Plan) -> None:
    """casesync init's sample must never reach the site: the API cannot delete a case."""
    wanted = {case.key for case in plan.cases}
    samples = [case for case in manifest.cases if case.sample and case.key in wanted]
    if samples:
        where = ", ".join(f"{case.key} ({case.location.file})" for case in samples)
        raise Refused(
            f"refusing to apply casesync init's sample case: {where}; "
            "once created it could never be deleted",
            hint="make it your own case and remove the line 'sample: true', or delete the "
            "folder (or apply other cases with --case KEY)",
        )


def _select(plan: Plan, keys: tuple[str, ...]) -> Plan:
    if not keys:
        return plan
    known = {case.key for case in plan.cases}
    missing = [key for key in keys if key not in known]
    if missing:
        raise ConfigError(f"no case with key {', '.join(missing)}", hint="see 'casesync plan'")
    return dataclasses.replace(plan, cases=tuple(c for c in plan.cases if c.key in keys))


async def _execute(
    settings: ApplySettings,
    tokens: TokenProvider,
    manifest: Manifest,
    plan: Plan,
    ledger: Ledger,
    events: Events,
) -> tuple[ApplyReport, CasesyncError | None]:
    """Run the executor under the two-stage signal handling; also return what stopped it."""
    # aiohttp is imported only by the commands that talk to the server (startup time)
    from casesync.api.client import RadiopaediaClient

    loop = asyncio.get_running_loop()
    async with RadiopaediaClient(
        tokens.api_url,
        tokens,
        api_concurrency=settings.options.api_concurrency,
        upload_concurrency=settings.options.upload_concurrency,
        timeouts=settings.timeouts,
    ) as client:
        executor = Executor(client, manifest, plan, ledger, events, settings.options)
        work = asyncio.ensure_future(executor.run())
        received: list[int] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            if len(received) > 1:
                _exit_now(ledger)
            executor.report.interrupted = True
            executor.request_stop("interrupted")
            events.notice(
                "stopping: no new work is started, requests in flight may finish "
                f"(up to {settings.grace_seconds:.0f} s); signal again to quit at once"
            )
            loop.call_later(settings.grace_seconds, work.cancel)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await work, executor.fatal
        except asyncio.CancelledError:  # the grace time ran out
            return executor.report, executor.fatal
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


def _exit_now(ledger: Ledger) -> NoReturn:
    """Second signal: the journal is already on disk; say which creates are now unknown."""
    lines = ["casesync: stopped at once."]
    lines += [f"  {intent.describe()}" for intent in ledger.open_intents]
    if ledger.open_intents:
        lines.append(
            "  run 'casesync apply' again: it settles cases itself; use 'casesync "
            "resolve' for studies and series it reports"
        )
    os.write(sys.stderr.fileno(), ("\n".join(lines) + "\n").encode())
    os._exit(int(ExitCode.INTERRUPTED))


def _raise_for(report: ApplyReport, ledger: Ledger, fatal: CasesyncError | None) -> None:
    error = ledger.write_error or fatal  # the lockfile first: the run stopped for it
    if error is not None:
        raise error
    unknown = ledger.open_intents
    if report.interrupted:
        detail = "".join(f"; {intent.describe()}" for intent in unknown)
        raise Interrupted(
            f"apply was interrupted{detail}",
            hint="everything finished so far is recorded; run 'casesync apply' again to resume",
        )
    if report.problems:
        counts: dict[str, int] = {}
        for outcome in report.problems:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        raise PartialFailure(
            f"apply finished with problems: {summary} (see the table above)",
            hint="fix what is reported and run 'casesync apply' again; finished work is kept",
        )
