"""``casesync adopt`` and ``forget``: tell casesync which remote case a manifest is, or is not.

Both only change casesync.lock, but through the journal like any create (an intent carrying
the whole lock entry, then its result), so a kill midway leaves either the old lock or the new
one, and the change shows in the journal's history like apply's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from casesync.errors import ConfigError, Refused
from casesync.project.manifest import CaseSpec
from casesync.project.validate import load_project_file
from casesync.settings import LOCK_FILE, resolve_api_url
from casesync.sync.journal import AdoptRecord, CaseMade, ForgetRecord, Forgotten, Ledger
from casesync.sync.lockfile import (
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    check_api_url_matches,
    fingerprints,
    load_lock,
)
from casesync.sync.plan import FIRST_STUDY_POSITION
from casesync.sync.remote import RemoteView
from casesync.sync.report import case_url
from casesync.sync.runlock import run_lock
from casesync.sync.workflow import prepare_plan

IMAGING = ("absent", "present")


@dataclass(frozen=True)
class AdoptSettings:
    root: Path
    key: str
    case_id: int
    imaging: str = "absent"  # absent: the plan adds the studies; present: they exist
    api_url_flag: str | None = None
    lock_path: Path | None = None


def adopt(
    settings: AdoptSettings,
    notice: Callable[[str], None],
    read: Callable[[str], RemoteView],
) -> str:
    """Record ``case_id`` (checked against the listing) as the case of manifest ``key``."""
    if settings.imaging not in IMAGING:
        raise ConfigError(f"--imaging must be one of {', '.join(IMAGING)}")
    with run_lock(settings.root, notice, "casesync adopt"):
        prepared = prepare_plan(
            settings.root, api_url_flag=settings.api_url_flag, lock_path=settings.lock_path
        )
        try:
            spec = prepared.manifest.case(settings.key)
        except KeyError:
            raise ConfigError(
                f"no case with key {settings.key} in the manifests", hint="see 'casesync plan'"
            ) from None
        ledger = Ledger(prepared.root, prepared.lock_path, prepared.lock)
        _check_free(ledger, settings.key, settings.case_id)
        remote = read(prepared.api_url).cases.get(settings.case_id)
        if remote is None:
            raise ConfigError(
                f"case {settings.case_id} is not in your case listing on {prepared.api_url}",
                hint="check the id: only your own cases (not deleted) can be adopted",
            )
        adding = settings.imaging == "absent" and bool(spec.studies)
        if adding and not remote.is_draft:
            raise Refused(
                f"case {settings.case_id} is {remote.status.replace('_', ' ')}: imaging can "
                "only be added to a draft",
                hint="use --imaging present if the case already holds this imaging",
            )
        entry = adopted_entry(spec, settings.case_id, remote.created_at, settings.imaging)
        intent = ledger.begin(settings.key, "adopt", AdoptRecord(entry))
        ledger.finish(intent, CaseMade(settings.case_id))
        ledger.compact()
    url = case_url(prepared.api_url, settings.case_id)
    if settings.imaging == "present":
        series = sum(len(study.series) for study in spec.studies)
        what = (
            f"its {len(spec.studies)} studies and {series} series are recorded as present "
            "(ids unknown); only what you add to the manifest later is created"
        )
    else:
        what = "'casesync plan' shows the studies apply will add to it"
    return f"case {settings.key} is now case {settings.case_id} ({url}): {what}"


def adopted_entry(spec: CaseSpec, case_id: int, created_at: str, imaging: str) -> LockedCase:
    """The lock entry: with ``present``, every study and series as existing, ids unknown."""
    entry = LockedCase(case_id, created_at, fingerprints(spec.sent_fields()))
    if imaging != "present":
        return entry
    entry.upload_finished = True
    for index, study in enumerate(spec.studies):
        series = [
            LockedSeries(
                content_id=s.content_id,
                key=s.key,
                fields=fingerprints(s.sent_fields()),
                files=[LockedFile(f.path, f.size, f.sha256) for f in s.files],
                adopted=True,
            )
            for s in study.series
        ]
        entry.studies.append(
            LockedStudy(
                None,
                FIRST_STUDY_POSITION + index,
                study.key,
                fingerprints(study.sent_fields()),
                series,
                adopted=True,
            )
        )
    return entry


def _check_free(ledger: Ledger, key: str, case_id: int) -> None:
    pending = [i for i in ledger.recover() if i.case == key]
    if pending:
        raise Refused(pending[0].describe(), hint=pending[0].way_out())
    locked = ledger.lock.cases.get(key)
    if locked is not None:
        raise Refused(
            f"case {key} is already recorded as case {locked.case_id}",
            hint=f"run 'casesync forget {key}' first if that is wrong",
        )
    other = next((k for k, c in ledger.lock.cases.items() if c.case_id == case_id), None)
    if other is not None:
        raise Refused(
            f"case {case_id} is already recorded for {other}",
            hint=f"run 'casesync forget {other}' first if that is wrong",
        )


@dataclass(frozen=True)
class ForgetSettings:
    root: Path
    key: str
    api_url_flag: str | None = None
    lock_path: Path | None = None


def forget(settings: ForgetSettings, notice: Callable[[str], None]) -> str:
    """Drop case ``key`` from the lock; say what the site still holds."""
    project, _ = load_project_file(settings.root)
    api_url = resolve_api_url(settings.api_url_flag, project.api_url if project else None)
    lock_path = settings.lock_path or settings.root / LOCK_FILE
    with run_lock(settings.root, notice, "casesync forget"):
        lock = load_lock(lock_path, api_url)
        check_api_url_matches(lock, api_url, lock_path)
        ledger = Ledger(settings.root, lock_path, lock)
        pending = [i for i in ledger.recover() if i.case == settings.key]
        if pending:
            raise Refused(pending[0].describe(), hint=pending[0].way_out())
        if settings.key not in lock.cases:
            raise ConfigError(f"case {settings.key} is not in {lock_path.name}: nothing to forget")
        held = forget_cases(ledger, [settings.key])
        ledger.compact()
    return f"forgot {settings.key}; {held[0]}; the next plan creates it again"


def forget_cases(ledger: Ledger, keys: Iterable[str]) -> list[str]:
    """Journal and apply the removal of each key; one line per case on what the site holds."""
    held = []
    for key in keys:
        locked = ledger.lock.cases[key]
        studies = len(locked.studies)
        series = sum(len(study.series) for study in locked.studies)
        held.append(
            f"the site may still hold case {locked.case_id} "
            f"({case_url(ledger.lock.api_url, locked.case_id)}) with {studies} "
            f"stud{'y' if studies == 1 else 'ies'} and {series} series; casesync never "
            "deletes remotely (delete it on the site if intended)"
        )
        intent = ledger.begin(key, "forget", ForgetRecord(locked.case_id))
        ledger.finish(intent, Forgotten())
    return held


def check_deleted(lock: Lock, keys: Iterable[str], remote: RemoteView) -> None:
    """``apply --recreate KEY``: each case must be in the lock and gone from the listing."""
    for key in keys:
        locked = lock.cases.get(key)
        if locked is None:
            raise ConfigError(f"--recreate {key}: it is not in the lockfile (nothing to recreate)")
        if locked.case_id in remote.cases:
            raise Refused(
                f"--recreate {key}: case {locked.case_id} is still in your case listing",
                hint="only a case deleted on the site is created again",
            )
