"""The validation pipeline: YAML -> schema -> files -> PHI gate -> meaning -> ``Manifest``.

Every problem of every file is collected in one run and reported sorted by file and line. No
network access happens here, ever; plan and apply run this first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casesync.api import vocab
from casesync.files.hashing import FactsCache, FileFacts, gather_facts
from casesync.fsutil import resolves_inside, state_folder
from casesync.phi.findings import FileReport
from casesync.problems import Problem
from casesync.project.casebuild import build_case, check_unique_keys, lookup
from casesync.project.discover import find_case_manifests, outside_problem
from casesync.project.doccache import DocumentCache, load_checked
from casesync.project.keys import DEFAULT_CASE_GLOBS
from casesync.project.manifest import Manifest, Project
from casesync.project.phicheck import phi_gate
from casesync.project.schema import schema_problems
from casesync.project.seriesfiles import DraftSeries, build_series, select_files
from casesync.project.yamlload import LoadedYaml, YamlError
from casesync.settings import PROJECT_FILE


@dataclass
class ValidationResult:
    manifest: Manifest | None  # None when any error was found
    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, FileFacts] = field(default_factory=dict)
    phi_reports: list[FileReport] = field(default_factory=list)  # files with findings
    advice: list[str] = field(default_factory=list)  # said once, after every problem

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def validate_project(
    root: Path,
    *,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
    phi_errors_block: bool = True,
) -> ValidationResult:
    """Validate the project at ``root`` (which holds casesync.yaml) and build its Manifest.

    ``phi_errors_block=False`` is for the local preview only (it sends nothing): the PHI gate's
    errors are still reported, but a manifest is built despite them, so the review page can show
    the very slices a person must look at before marking a series reviewed.
    """
    root = root.resolve()
    problems: list[Problem] = []
    doc_cache = (
        DocumentCache(state_folder(root, "cache") / "manifests.sqlite") if use_cache else None
    )
    try:
        project = _load_project(root, problems, doc_cache)
        case_docs = _load_case_documents(root, project, problems, doc_cache) if project else []
    finally:
        if doc_cache:
            doc_cache.close()
    drafts: list[DraftSeries] = []
    for loaded, _ in case_docs:
        drafts.extend(_select_series_files(root, loaded, problems))
    relpaths = [relpath for draft in drafts for relpath in draft.relpaths]
    cache = FactsCache(state_folder(root, "cache") / "files.sqlite") if use_cache else None
    unreadable: set[str] = set()
    try:
        facts = gather_facts(root, relpaths, cache, progress=progress, unreadable=unreadable)
    finally:
        if cache:
            cache.close()
    if unreadable:
        for draft in drafts:
            _drop_unreadable(draft, unreadable, problems)
    series_specs = {
        (draft.loaded.file, draft.path): build_series(draft, facts, problems) for draft in drafts
    }
    before_gate = len(problems)
    reports, advice = phi_gate(root, series_specs, problems, use_cache)
    tolerated = set() if phi_errors_block else {id(p) for p in problems[before_gate:]}
    cases = [
        case
        for loaded, schema_ok in case_docs
        if (case := build_case(root, loaded, schema_ok, series_specs, problems)) is not None
    ]
    check_unique_keys(cases, problems)
    problems.sort(key=Problem.sort_key)
    has_errors = any(p.severity == "error" and id(p) not in tolerated for p in problems)
    manifest = None if has_errors or project is None else Manifest(project, tuple(cases))
    return ValidationResult(manifest, problems, facts, reports, advice)


def load_project_file(root: Path) -> tuple[Project | None, list[Problem]]:
    """Just casesync.yaml (for commands that need the api_url but not the cases)."""
    problems: list[Problem] = []
    return _load_project(root.resolve(), problems, None), problems


def _check_project(loaded: LoadedYaml) -> list[Problem]:
    if loaded.data is None:
        loaded.data = {}
    return schema_problems("project", loaded)


def _load_project(
    root: Path, problems: list[Problem], doc_cache: DocumentCache | None
) -> Project | None:
    if not resolves_inside(root, root / PROJECT_FILE):
        problems.append(outside_problem(PROJECT_FILE))
        return None
    try:
        loaded, found = load_checked(
            root / PROJECT_FILE, PROJECT_FILE, "project", {}, _check_project, doc_cache
        )
    except YamlError as exc:
        problems.append(exc.problem)
        return None
    problems.extend(loaded.problems)
    problems.extend(found)
    if found or not isinstance(loaded.data, dict):
        return None
    data = loaded.data
    defaults = data.get("defaults", {})
    found_before = len(problems)
    lookup(loaded, defaults, "system", vocab.SYSTEMS, problems, ("defaults",))
    lookup(
        loaded,
        defaults,
        "diagnostic_certainty",
        vocab.DIAGNOSTIC_CERTAINTIES,
        problems,
        ("defaults",),
    )
    if len(problems) > found_before:
        return None
    return Project(
        root=root,
        api_url=data.get("api_url"),
        case_globs=tuple(data.get("cases", DEFAULT_CASE_GLOBS)),
        defaults=dict(data.get("defaults", {})),
    )


def _load_case_documents(
    root: Path, project: Project, problems: list[Problem], doc_cache: DocumentCache | None
) -> list[tuple[LoadedYaml, bool]]:
    """Every case manifest that parsed, with whether it also passed the schema.

    A manifest is read only if it resolves inside the root: one outside (through a symlink, an
    absolute pattern or '..') is reported without being opened, so none of it is ever echoed.
    """
    paths = find_case_manifests(root, project.case_globs, problems)
    documents: list[tuple[LoadedYaml, bool]] = []
    for path in paths:
        display = path.relative_to(root).as_posix()
        if not resolves_inside(root, path):
            problems.append(outside_problem(display))
            continue
        try:
            loaded, found = load_checked(
                path, display, "case", project.defaults, _check_case, doc_cache
            )
        except YamlError as exc:
            problems.append(exc.problem)
            continue
        problems.extend(loaded.problems)
        problems.extend(found)
        if isinstance(loaded.data, dict):
            documents.append((loaded, not found))
    return documents


def _check_case(loaded: LoadedYaml) -> list[Problem]:
    return schema_problems("case", loaded)


def _select_series_files(
    root: Path, loaded: LoadedYaml, problems: list[Problem]
) -> list[DraftSeries]:
    case_dir = (root / loaded.file).parent
    drafts = []
    for s_index, r_index, series in _well_formed_series(loaded.data):
        path = ("studies", s_index, "series", r_index)
        selection = select_files(root, case_dir, series["images"])
        for what, how in selection.errors:
            problems.append(loaded.problem((*path, "images"), what, how, code="images-path"))
        drafts.append(
            DraftSeries(
                loaded, path, series, case_dir, selection.relpaths, selection.explicit_order
            )
        )
    return drafts


def _drop_unreadable(draft: DraftSeries, unreadable: set[str], problems: list[Problem]) -> None:
    for relpath in draft.relpaths:
        if relpath in unreadable:
            name = relpath.rsplit("/", 1)[-1]
            what = f"{name} is not readable"
            problems.append(
                draft.loaded.problem(
                    (*draft.path, "images"), what, "fix its permissions", code="file-unreadable"
                )
            )
    draft.relpaths = [relpath for relpath in draft.relpaths if relpath not in unreadable]


def _well_formed_series(data: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    """The series entries whose shape allows file checks, even if the schema found problems
    elsewhere in the document, so one run reports as much as it can."""
    found = []
    studies = data.get("studies")
    for s_index, study in enumerate(studies if isinstance(studies, list) else []):
        series_list = study.get("series") if isinstance(study, dict) else None
        for r_index, series in enumerate(series_list if isinstance(series_list, list) else []):
            images = series.get("images") if isinstance(series, dict) else None
            if isinstance(images, str) or (
                isinstance(images, list) and images and all(isinstance(i, str) for i in images)
            ):
                found.append((s_index, r_index, series))
    return found
