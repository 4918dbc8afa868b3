"""The plan: a pure diff of the validated manifest against casesync.lock.

No network, no disk: ``make_plan(manifest, lock)`` returns typed actions in a stable order,
plus warnings for what the API cannot do (it has no update or delete endpoints) and the PHI
gate's warnings on every series it would upload (validation attached them to the series).
Renderers and the executor both consume the same ``Plan``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from casesync.sync.lockfile import fingerprints

if TYPE_CHECKING:  # types only: a plan read back from the memo needs none of these modules
    from casesync.project.manifest import CaseSpec, Manifest, SeriesSpec, StudySpec
    from casesync.sync.lockfile import Lock, LockedCase, LockedSeries, LockedStudy
    from casesync.sync.remote import QuotaUse, RemoteState, RemoteView

PLAN_FORMAT_VERSION = 1
FIRST_STUDY_POSITION = 2  # position 1 is the case discussion
DRIFT_CODES = ("case-deleted", "title-drift")  # plan warnings that come from the listing


@dataclass(frozen=True)
class CreateCase:
    title: str


@dataclass(frozen=True)
class CreateStudy:
    study_index: int  # index in the manifest's studies
    modality: str
    caption: str | None
    position: int


@dataclass(frozen=True)
class CreateSeries:
    study_index: int
    series_index: int
    study_id: int | None  # remote id when the study already exists
    image_count: int
    image_format: str
    root_index: int
    perspective: str | None
    specifics: str | None
    upload_files: int  # files whose bytes are not known to be on the server
    upload_bytes: int
    # their hashes: apply's log and summary count these, so all three tell the same number
    upload_hashes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MarkUploadFinished:
    pass


Action = CreateCase | CreateStudy | CreateSeries | MarkUploadFinished


@dataclass(frozen=True)
class PlanWarning:
    code: str  # case-changed, study-changed, series-changed, series-replaced, phi-<rule>, ...
    message: str
    fields: tuple[str, ...] = ()  # the changed fields; for phi-<rule>, the DICOM tags


@dataclass(frozen=True)
class Blocked:
    """An action apply cannot carry out, and why (it skips it and says so)."""

    action: Action
    reason: str


@dataclass(frozen=True)
class CasePlan:
    key: str
    title: str
    case_id: int | None  # remote id when the case already exists
    actions: tuple[Action, ...]
    warnings: tuple[PlanWarning, ...]
    study_ids: dict[int, int] = field(default_factory=dict)  # manifest index -> remote id
    blocked: tuple[Blocked, ...] = ()
    remote: RemoteState | None = None  # what the listing said (plan --refresh)
    recreate: bool = False  # deleted on the site: apply creates it again only with --recreate


@dataclass(frozen=True)
class Plan:
    api_url: str
    cases: tuple[CasePlan, ...]
    warnings: tuple[PlanWarning, ...]  # about cases no longer in the repository
    inputs_digest: str  # binds `apply --plan` to exactly what the plan was computed from
    checked_at: str | None = None  # when the listing was read (plan --refresh)
    quota: QuotaUse | None = None  # draft quota against the new cases (plan --refresh)

    @property
    def has_changes(self) -> bool:
        return any(case.actions for case in self.cases)

    def count(self, kind: type) -> int:
        return sum(isinstance(a, kind) for case in self.cases for a in case.actions)

    @property
    def upload_files(self) -> int:
        return sum(
            a.upload_files for c in self.cases for a in c.actions if isinstance(a, CreateSeries)
        )

    @property
    def upload_bytes(self) -> int:
        return sum(
            a.upload_bytes for c in self.cases for a in c.actions if isinstance(a, CreateSeries)
        )

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + sum(len(case.warnings) for case in self.cases)


def make_plan(
    manifest: Manifest, lock: Lock, api_url: str, remote: RemoteView | None = None
) -> Plan:
    """Diff every case of the manifest against the lock (and the listing, when read)."""
    known = lock.uploaded_hashes()
    planned: set[str] = set()  # a file shared by two new series is uploaded once
    cases = tuple(_plan_case(spec, lock, known, planned, remote) for spec in manifest.cases)
    manifest_keys = {spec.key for spec in manifest.cases}
    removed = tuple(
        PlanWarning(
            "case-removed",
            f"case {key!r} (id {locked.case_id}) is no longer in the repository; "
            "casesync never deletes remotely (delete it on the site if intended)",
        )
        for key, locked in sorted(lock.cases.items())
        if key not in manifest_keys
    )
    digest = inputs_digest(manifest, lock, api_url)
    if remote is None:
        return Plan(api_url, cases, removed, digest)
    new = [c.key for c in cases if any(isinstance(a, CreateCase) for a in c.actions)]
    return Plan(api_url, cases, removed, digest, remote.checked_at, remote.quota_use(new))


def _plan_case(
    spec: CaseSpec, lock: Lock, known: set[str], planned: set[str], remote: RemoteView | None
) -> CasePlan:
    """The case's actions; with the listing, what the site's state blocks or changes."""
    locked = lock.cases.get(spec.key)
    if remote is None or locked is None:
        return _diff_case(spec, locked, known, planned)
    state = remote.state(locked.case_id)
    if state.deleted:  # as 'apply --recreate' plans it: from the lock without this case
        fresh = _diff_case(spec, None, lock.uploaded_hashes(excluding={spec.key}), planned)
        gone = PlanWarning(
            "case-deleted",
            f"case {locked.case_id} was deleted on the site: apply creates it again only with "
            f"--recreate {spec.key}",
        )
        return replace(fresh, warnings=(gone, *fresh.warnings), remote=state, recreate=True)
    plan = _diff_case(spec, locked, known, planned)
    warnings = list(plan.warnings)
    if state.title is not None and state.title != spec.fields.title:
        warnings.insert(
            0,
            PlanWarning(
                "title-drift",
                f"the title on the site is {state.title!r}, the manifest says "
                f"{spec.fields.title!r}: edit it on the site, or change the manifest",
                ("title",),
            ),
        )
    blocked = plan.blocked
    if not state.is_draft and plan.actions:
        reason = (
            f"case {plan.case_id} is {state.status.replace('_', ' ')} on the site: only a draft "
            "can take new imaging (add it on the site)"
        )
        blocked = tuple(Blocked(a, reason) for a in plan.actions) + blocked
        return replace(plan, actions=(), blocked=blocked, warnings=tuple(warnings), remote=state)
    return replace(plan, warnings=tuple(warnings), remote=state)


def _diff_case(
    spec: CaseSpec, locked: LockedCase | None, known: set[str], planned: set[str]
) -> CasePlan:
    actions: list[Action] = []
    warnings: list[PlanWarning] = []
    blocked: list[Blocked] = []
    if locked is None:
        actions.append(CreateCase(spec.fields.title))
    else:
        warnings += _changed_warning(
            "case-changed",
            "changed after creation",
            locked.fields,
            spec.sent_fields(),
            "the API cannot update a case: change it on the site",
        )
    locked_studies = locked.studies if locked else []
    matches = match_studies(spec.studies, locked_studies)
    taken_positions = {study.position for study in locked_studies}
    series_created = False
    for s_index, study in enumerate(spec.studies):
        locked_study = matches.get(s_index)
        if locked_study is None:
            position = FIRST_STUDY_POSITION + s_index
            if position in taken_positions:
                warnings.append(
                    PlanWarning(
                        "study-order",
                        f"new study {s_index + 1} takes position {position}, already used; "
                        "check the study order on the site",
                    )
                )
            actions.append(CreateStudy(s_index, study.modality, study.caption, position))
        else:
            warnings += _changed_warning(
                "study-changed",
                f"study {s_index + 1} changed after creation",
                locked_study.fields,
                study.sent_fields(),
                "change it on the site",
            )
        series_actions, series_warnings = _plan_series(s_index, study, locked_study, known, planned)
        warnings.extend(series_warnings)
        if locked_study is not None and locked_study.study_id is None:
            reason = (
                f"study {s_index + 1} was adopted without its id on the site, so casesync "
                "cannot add series to it: add them on the site"
            )
            blocked += [Blocked(action, reason) for action in series_actions]
            continue
        actions.extend(series_actions)
        series_created = series_created or bool(series_actions)
    for locked_study in locked_studies:
        if locked_study not in matches.values():
            warnings.append(
                PlanWarning(
                    "study-removed",
                    f"study {locked_study.study_id} is no longer in the manifest; it stays on "
                    "the site (delete it there if intended)",
                )
            )
    if series_created or (locked is not None and not locked.upload_finished and spec.studies):
        actions.append(MarkUploadFinished())
    study_ids = {i: study.study_id for i, study in matches.items() if study.study_id is not None}
    return CasePlan(
        spec.key,
        spec.fields.title,
        locked.case_id if locked else None,
        tuple(actions),
        tuple(warnings),
        study_ids,
        tuple(blocked),
    )


def _plan_series(
    s_index: int,
    study: StudySpec,
    locked_study: LockedStudy | None,
    known: set[str],
    planned: set[str],
) -> tuple[list[Action], list[PlanWarning]]:
    actions: list[Action] = []
    warnings: list[PlanWarning] = []
    locked_series = locked_study.series if locked_study else []
    matched: set[int] = set()
    for r_index, series in enumerate(study.series):
        found = _match_series(series, locked_series, matched)
        if found is not None:
            matched.add(id(found))
            if found.content_id != series.content_id:
                warnings.append(
                    PlanWarning(
                        "series-replaced",
                        f"study {s_index + 1} series {r_index + 1}: images changed; a new series "
                        "will be created and the old one stays on the site",
                    )
                )
            else:
                warnings += _changed_warning(
                    "series-changed",
                    f"study {s_index + 1} series {r_index + 1} changed after creation",
                    found.fields,
                    series.sent_fields(),
                    "change it on the site",
                )
                continue
        new = [f for f in series.files if f.sha256 not in known and f.sha256 not in planned]
        unique = {f.sha256: f.size for f in new}
        planned.update(unique)
        actions.append(
            CreateSeries(
                study_index=s_index,
                series_index=r_index,
                study_id=locked_study.study_id if locked_study else None,
                image_count=len(series.files),
                image_format=series.image_format,
                root_index=series.root_index,
                perspective=series.perspective,
                specifics=series.specifics,
                upload_files=len(unique),
                upload_bytes=sum(unique.values()),
                upload_hashes=frozenset(unique),
            )
        )
        warnings += [  # what the PHI gate warned about the files this series sends
            PlanWarning(
                note.code, f"study {s_index + 1} series {r_index + 1}: {note.message}", note.tags
            )
            for note in series.notes
        ]
    for old in locked_series:
        if id(old) not in matched:
            warnings.append(
                PlanWarning(
                    "series-removed",
                    f"study {s_index + 1}: series {old.series_id or old.job_id} matches no series "
                    "in the manifest any more (images changed or removed); it stays on the site",
                )
            )
    return actions, warnings


def _match_series(
    series: SeriesSpec, candidates: list[LockedSeries], taken: set[int]
) -> LockedSeries | None:
    free = [c for c in candidates if id(c) not in taken]
    if series.key is not None:
        return next((c for c in free if c.key == series.key), None)
    return next((c for c in free if c.key is None and c.content_id == series.content_id), None)


def match_studies(
    studies: tuple[StudySpec, ...], locked: list[LockedStudy]
) -> dict[int, LockedStudy]:
    """Pair manifest studies with locked ones: by key, then metadata, then shared series."""
    matches: dict[int, LockedStudy] = {}
    free = list(locked)

    def take(index: int, candidate: LockedStudy) -> None:
        matches[index] = candidate
        free.remove(candidate)

    for index, study in enumerate(studies):
        if study.key is not None:
            found = next((c for c in free if c.key == study.key), None)
            if found:
                take(index, found)
    for index, study in enumerate(studies):
        if index in matches or study.key is not None:
            continue
        wanted = fingerprints(study.sent_fields())
        found = next((c for c in free if c.key is None and c.fields == wanted), None)
        if found:
            take(index, found)
    for index, study in enumerate(studies):
        if index in matches or study.key is not None:
            continue
        contents = {series.content_id for series in study.series}
        found = next(
            (c for c in free if c.key is None and contents & {s.content_id for s in c.series}),
            None,
        )
        if found:
            take(index, found)
    return matches


def _changed_warning(
    code: str, what: str, recorded: dict[str, str], current: dict[str, object], remedy: str
) -> list[PlanWarning]:
    """A warning naming the fields whose value differs from what was sent (none: no warning)."""
    changed = _changed(recorded, current)
    if not changed:
        return []
    return [PlanWarning(code, f"{what}: {', '.join(changed)} ({remedy})", changed)]


def _changed(recorded: dict[str, str], current: dict[str, object]) -> tuple[str, ...]:
    now = fingerprints(current)
    return tuple(name for name in sorted(now) if name in recorded and recorded[name] != now[name])


def inputs_digest(manifest: Manifest, lock: Lock, api_url: str) -> str:
    """A checksum over everything a plan is computed from: manifests, file hashes, lock, API."""
    digest = hashlib.sha256()
    digest.update(api_url.encode())
    digest.update(lock.digest().encode())
    for case in manifest.cases:
        digest.update(json.dumps([case.key, case.sent_fields()], sort_keys=True).encode())
        for study in case.studies:
            digest.update(json.dumps([study.key, study.sent_fields()], sort_keys=True).encode())
            for series in study.series:
                identity = [series.key, series.content_id, series.image_format]
                digest.update(json.dumps([*identity, series.sent_fields()]).encode())
    return "sha256:" + digest.hexdigest()
