"""The steps plan and apply share: find the project, validate it, read the lock, make the plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from casesync.errors import ValidationFailed
from casesync.project.manifest import Manifest
from casesync.project.validate import ValidationResult, validate_project
from casesync.settings import LOCK_FILE, resolve_api_url
from casesync.sync.lockfile import Lock, check_api_url_matches, load_lock
from casesync.sync.plan import Plan, make_plan


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
