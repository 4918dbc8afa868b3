"""``casesync resolve``: the user settles a create whose outcome apply could not know.

No endpoint lists studies or series, so after a lost answer only the user can look at the
case on the site and say what is there: adopt the id they see, or confirm nothing was made.
The answer goes through the same ledger as apply's own results, so the lock is updated the
same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from casesync.errors import ConfigError
from casesync.project.validate import load_project_file
from casesync.settings import LOCK_FILE, resolve_api_url
from casesync.sync.journal import CaseMade, Ledger, Made, SeriesMade, StudyMade
from casesync.sync.lockfile import check_api_url_matches, load_lock
from casesync.sync.runlock import run_lock

FLAG_OF_KIND = {"case": "--case-id", "study": "--study-id", "series": "--series-job"}


@dataclass(frozen=True)
class Answer:
    """Exactly one of these is set (the CLI checks it)."""

    case_id: int | None = None
    study_id: int | None = None
    series_job: str | None = None
    not_created: bool = False

    @property
    def kind(self) -> str | None:
        if self.case_id is not None:
            return "case"
        if self.study_id is not None:
            return "study"
        if self.series_job is not None:
            return "series"
        return None

    @property
    def made(self) -> Made:
        """What the user saw on the site, as the journal records a create's answer."""
        if self.case_id is not None:
            return CaseMade(self.case_id)
        if self.study_id is not None:
            return StudyMade(self.study_id)
        return SeriesMade(str(self.series_job))

    @property
    def shown(self) -> str:
        return str(next(v for v in (self.case_id, self.study_id, self.series_job) if v is not None))


def resolve(
    root: Path,
    key: str,
    answer: Answer,
    notice: Callable[[str], None],
    *,
    api_url_flag: str | None = None,
    lock_path: Path | None = None,
) -> str:
    """Settle the oldest unknown create of case ``key``; return what was recorded."""
    if answer.series_job is not None and not answer.series_job.strip():
        raise ConfigError("--series-job is empty", hint="give the job id the site shows")
    project, _ = load_project_file(root)
    api_url = resolve_api_url(api_url_flag, project.api_url if project else None)
    lock_path = lock_path or root / LOCK_FILE
    with run_lock(root, notice, "casesync resolve"):
        lock = load_lock(lock_path, api_url)
        check_api_url_matches(lock, api_url, lock_path)
        ledger = Ledger(root, lock_path, lock)
        pending = sorted((i for i in ledger.recover() if i.case == key), key=lambda i: i.at)
        if not pending:
            raise ConfigError(f"case {key} has no create with an unknown outcome: nothing to do")
        intent = pending[0]
        if answer.kind not in (None, intent.kind):
            raise ConfigError(
                f"the unknown create of case {key} is a {intent.kind} ({intent.label}), "
                f"not a {answer.kind}",
                hint=f"use {FLAG_OF_KIND[intent.kind]} or --not-created",
            )
        if answer.not_created:
            ledger.not_created(intent, "the user found it was not created")
            done = f"{intent.describe()}: recorded as not created; apply will create it"
        else:
            ledger.finish(intent, answer.made)
            done = (
                f"{intent.describe()}: recorded as {intent.kind} {answer.shown}; apply will go on"
            )
        ledger.compact()
    left = len(pending) - 1
    return done + (f" ({left} more unknown for this case)" if left else "")
