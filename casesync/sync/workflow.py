"""The steps plan and apply share: find the project, validate it, read the lock, make the plan."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from casesync.errors import ValidationFailed
from casesync.settings import LOCK_FILE, api_url_inputs, resolve_api_url
from casesync.sync import planmemo
from casesync.sync.plan import Plan

if TYPE_CHECKING:  # validation, the lockfile and the diff load only when the memo misses
    from casesync.project.manifest import Manifest
    from casesync.project.validate import ValidationResult
    from casesync.sync.lockfile import Lock

log = logging.getLogger("casesync")


class InvalidProject(ValidationFailed):
    """Validation found errors; ``result`` holds every problem for the renderer."""

    def __init__(self, result: ValidationResult) -> None:
        count = len(result.errors)
        super().__init__(
            f"validation failed with {count} error{'s' if count != 1 else ''}",
            hint="fix the problems listed above; nothing was sent to the server",
        )
        self.result = result


@dataclass(frozen=True)
class PreparedPlan:
    root: Path
    api_url: str
    lock_path: Path
    validation: ValidationResult
    manifest: Manifest
    lock: Lock
    plan: Plan


def prepare_plan(
    root: Path,
    *,
    api_url_flag: str | None = None,
    lock_path: Path | None = None,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
) -> PreparedPlan:
    """Validate, read the lock, and diff: everything offline, no credentials needed."""
    from casesync.project.validate import validate_project
    from casesync.sync.lockfile import check_api_url_matches, load_lock
    from casesync.sync.plan import make_plan

    validation = validate_project(root, use_cache=use_cache, progress=progress)
    if validation.manifest is None:
        raise InvalidProject(validation)
    manifest = validation.manifest
    api_url = resolve_api_url(api_url_flag, manifest.project.api_url)
    lock_path = lock_path or manifest.project.root / LOCK_FILE
    lock = load_lock(lock_path, api_url)
    check_api_url_matches(lock, api_url, lock_path)
    plan = make_plan(manifest, lock, api_url)
    return PreparedPlan(manifest.project.root, api_url, lock_path, validation, manifest, lock, plan)


def plan_only(
    root: Path,
    *,
    api_url_flag: str | None = None,
    lock_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> Plan:
    """The plan alone (what ``casesync plan`` shows): the memo when nothing it was computed
    from has changed since, else ``prepare_plan``, whose plan becomes the memo."""
    root = root.resolve()
    lock_file = Path(os.path.abspath(lock_path or root / LOCK_FILE))
    inputs = api_url_inputs(api_url_flag)
    settings = {**inputs, "lockfile": str(lock_file)}
    current = planmemo.snapshot(root, (lock_file, Path(inputs["credentials"])), settings, clock)
    if current is not None:
        remembered = planmemo.load(root, current)
        if remembered is not None:
            log.info(
                "server: %s (nothing changed since the last plan, which is reused)",
                remembered.api_url,
            )
            return remembered
    prepared = prepare_plan(root, api_url_flag=api_url_flag, lock_path=lock_path, progress=progress)
    if current is not None:
        planmemo.save(root, current, prepared.plan)
    return prepared.plan
