"""``casesync import``: write a case folder from a case that exists on the site.

The API tells little about an existing case: the listing gives its title, the originals
endpoint (inferred, see ``RadiopaediaClient.originals``) its studies and series as files. So
``case.yaml`` gets the title, a modality guessed from the DICOM headers, and every other field
as a commented placeholder; the files are streamed to disk, hashed, and run through the PHI
gate; the lock records the case as it is, so ``plan`` then says "No changes". Everything is
written into a hidden folder first and renamed into place at the end: an existing folder is
never touched, a failed import leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from casesync.api.models import OriginalSeries, RemoteCase
from casesync.errors import ConfigError, Refused, ValidationFailed
from casesync.files.formats import DICOM
from casesync.files.hashing import FileFacts, compute_facts
from casesync.fsutil import atomic_write, ensure_dir, refuse_symlink
from casesync.project.manifest import series_content_id
from casesync.project.schema import schema_header
from casesync.project.seriesfiles import order_slices
from casesync.project.validate import load_project_file
from casesync.settings import LOCK_FILE, resolve_api_url
from casesync.sync.journal import AdoptRecord, CaseMade, Ledger
from casesync.sync.lockfile import (
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    check_api_url_matches,
    fingerprints,
    load_lock,
)
from casesync.sync.plan import FIRST_STUDY_POSITION
from casesync.sync.report import case_url
from casesync.sync.runlock import run_lock

if TYPE_CHECKING:
    from casesync.api.client import RadiopaediaClient
    from casesync.api.credentials import TokenProvider, TokenSource

EXTENSIONS = {DICOM: ".dcm", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}
MODALITIES = {  # DICOM Modality (0008,0060) -> Radiopaedia study modality
    "CT": "CT",
    "MR": "MRI",
    "CR": "X-ray",
    "DX": "X-ray",
    "US": "Ultrasound",
    "MG": "Mammography",
    "XA": "DSA (angiography)",
    "RF": "Fluoroscopy",
    "NM": "Nuclear medicine",
    "PT": "Nuclear medicine",
}
FALLBACK_MODALITY = "Annotated image"
PLACEHOLDER_SYSTEM = "Not Applicable"


@dataclass(frozen=True)
class ImportSettings:
    root: Path
    case_id: int | None = None
    into: Path | None = None  # the new case folder, relative to the project root
    all_drafts: bool = False  # every draft in the listing that the lock does not hold
    api_url_flag: str | None = None
    lock_path: Path | None = None


@dataclass
class _Series:
    study_id: int
    series_id: int | None
    folder: str  # relative to the case folder
    files: list[tuple[str, FileFacts]] = field(default_factory=list)  # name, facts; stack order


def import_cases(
    settings: ImportSettings, notice: Callable[[str], None], tokens: TokenSource
) -> list[str]:
    """Import one case (``case_id``) or every unrecorded draft; one line per case imported."""
    if (settings.case_id is None) == (not settings.all_drafts):
        raise ConfigError("say what to import", hint="give --case-id N or --all-drafts")
    if settings.all_drafts and settings.into is not None:
        raise ConfigError("--into names one folder: it cannot go with --all-drafts")
    root = settings.root
    project, _ = load_project_file(root)
    api_url = resolve_api_url(settings.api_url_flag, project.api_url if project else None)
    lock_path = settings.lock_path or root / LOCK_FILE
    with run_lock(root, notice, "casesync import"):
        lock = load_lock(lock_path, api_url)
        check_api_url_matches(lock, api_url, lock_path)
        ledger = Ledger(root, lock_path, lock)
        ledger.recover()
        done = asyncio.run(_run(settings, tokens(api_url), ledger, notice))
        ledger.compact()
    return done


async def _run(
    settings: ImportSettings, tokens: TokenProvider, ledger: Ledger, notice: Callable[[str], None]
) -> list[str]:
    from casesync.api.client import RadiopaediaClient  # aiohttp: only when importing

    recorded = {case.case_id: key for key, case in ledger.lock.cases.items()}
    async with RadiopaediaClient(tokens.api_url, tokens) as client:
        listing = {case.id: case for case in await client.list_cases()}
        if settings.all_drafts:
            targets = [c for c in listing.values() if c.is_draft and c.id not in recorded]
            if not targets:
                notice("every draft in your case listing is already in the lockfile")
        else:
            assert settings.case_id is not None
            found = listing.get(settings.case_id)
            if found is None:
                raise ConfigError(
                    f"case {settings.case_id} is not in your case listing on {tokens.api_url}",
                    hint="only your own cases (not deleted) can be imported",
                )
            if found.id in recorded:
                raise Refused(f"case {found.id} is already recorded as {recorded[found.id]}")
            targets = [found]
        lines = []
        for case in sorted(targets, key=lambda c: c.id):
            folder = _folder(settings.root, settings.into or Path("cases") / _slug(case))
            key = _key(folder, ledger)
            lines.append(await _import_one(client, case, settings.root, folder, key, ledger))
            notice(lines[-1])
    return lines


def _slug(case: RemoteCase) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", case.title.lower()).strip("-")[:60].strip("-")
    return words or f"case-{case.id}"


def _folder(root: Path, folder: Path) -> Path:
    """The new case folder relative to the project root; it must be inside it."""
    absolute = Path(os.path.normpath(root / folder))
    if not absolute.is_relative_to(root) or absolute == root:
        raise ConfigError(f"--into {folder}: give a new folder inside the project")
    return absolute.relative_to(root)


def _key(folder: Path, ledger: Ledger) -> str:
    key = folder.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key):
        raise ConfigError(f"{folder}: the folder name must start with a letter or digit")
    if key in ledger.lock.cases:
        raise Refused(f"case key {key} is already in the lockfile", hint="choose another --into")
    return key


async def _import_one(
    client: RadiopaediaClient,
    case: RemoteCase,
    root: Path,
    folder: Path,
    key: str,
    ledger: Ledger,
) -> str:
    target = root / folder
    if os.path.lexists(target):
        raise Refused(f"{folder} already exists: import never overwrites a folder")
    ensure_dir(root, target.parent)  # no symlink on the way can lead the files out of the repo
    staging = target.parent / f".{target.name}.import"
    refuse_symlink(staging)
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of a killed import
    staging.mkdir()
    try:
        series = await _download(client, await client.originals(case.id), staging)
        _check_phi(staging, series, folder)
        header = schema_header(target / "case.yaml", root, "case")  # for editors
        atomic_write(staging / "case.yaml", header + case_yaml(case, key, series, staging))
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    entry = _lock_entry(case, folder, series)
    intent = ledger.begin(key, "import", AdoptRecord(entry))
    ledger.finish(intent, CaseMade(case.id))
    files = sum(len(s.files) for s in series)
    return (
        f"imported case {case.id} ({case_url(client.api_url, case.id)}) into {folder}: "
        f"{len({s.study_id for s in series})} studies, {len(series)} series, {files} files; "
        f"fill in the placeholders in {folder}/case.yaml"
    )


async def _download(
    client: RadiopaediaClient, originals: list[OriginalSeries], staging: Path
) -> list[_Series]:
    """Every file of every series, streamed to disk (the client bounds the concurrency)."""
    studies = list(dict.fromkeys(o.study_id for o in originals))
    series: list[_Series] = []
    for original in originals:
        study_number = studies.index(original.study_id) + 1
        count = sum(s.study_id == original.study_id for s in series) + 1
        where = f"study-{study_number}/series-{count}"
        item = _Series(original.study_id, original.series_id, where)
        (staging / item.folder).mkdir(parents=True)
        series.append(item)
        width = max(4, len(str(len(original.urls))))
        parts = [staging / item.folder / f"{n:0{width}d}" for n in range(1, len(original.urls) + 1)]
        pairs = zip(original.urls, parts, strict=True)
        await asyncio.gather(*(client.download(url, part) for url, part in pairs))
        for part in parts:
            facts = compute_facts(part)
            named = part.with_suffix(EXTENSIONS.get(facts.format or "", ".bin"))
            part.rename(named)
            item.files.append((named.name, facts))
    return series


def _check_phi(staging: Path, series: list[_Series], folder: Path) -> None:
    from casesync.phi.gate import check_files
    from casesync.phi.report import render_text

    paths = [staging / s.folder / name for s in series for name, _ in s.files]
    failed = [report for report in check_files(paths) if not report.passed]
    if failed:
        text = render_text(failed, lambda p: str(folder / p.parent.relative_to(staging)))
        raise ValidationFailed(
            f"the files of this case do not pass the PHI gate; nothing was written:\n{text}",
            hint="de-identify them on the site first, or import them by hand",
        )


def _images(item: _Series) -> str | list[str]:
    """The folder when validation would order it as the stack, else the files in order."""
    names = [name for name, _ in item.files]
    relpaths = [f"{item.folder}/{name}" for name in names]
    facts = {f"{item.folder}/{name}": facts for name, facts in item.files}
    if order_slices(relpaths, facts) == relpaths:
        return item.folder
    return relpaths


def _modality(item: _Series, staging: Path | None) -> tuple[str, str]:
    """A modality for the study, and a comment saying where it came from."""
    if item.files and item.files[0][1].format == DICOM and staging is not None:
        from pydicom import dcmread  # only for imports with DICOM

        dataset = dcmread(staging / item.folder / item.files[0][0], stop_before_pixels=True)
        found = MODALITIES.get(str(getattr(dataset, "Modality", "")))
        if found:
            return found, "from the DICOM headers: check it on the site"
    return FALLBACK_MODALITY, "placeholder: set the modality shown on the site"


def case_yaml(
    case: RemoteCase, key: str, series: list[_Series], staging: Path | None = None
) -> str:
    """The manifest: title from the listing, the rest as placeholders to fill in."""
    today = dt.date.today().isoformat()
    lines = [
        f"# Imported by 'casesync import' from case {case.id} on {today}. The API tells only",
        "# the title and the images: fill in the rest as it is on the site (uncomment a line",
        "# to use it). Fields of an existing case are never sent again: edit them on the site.",
        f"key: {key}",
        f"title: {_scalar(case.title)}",
        f"system: {PLACEHOLDER_SYSTEM}  # placeholder: set the system shown on the site",
        "# diagnostic_certainty: Certain",
        "# suitable_for_quiz: false",
        "# presentation: Presenting complaint",
        "# age: 40 years",
        "# gender: Female",
        "# body: <p>Discussion</p>",
        "studies:",
    ]
    for study_id in dict.fromkeys(s.study_id for s in series):
        members = [s for s in series if s.study_id == study_id]
        modality, why = _modality(members[0], staging)
        lines += [
            f"  - modality: {_scalar(modality)}  # {why}",
            "    # caption: Caption",
            "    # findings: <p>Findings</p>",
            "    series:",
        ]
        for item in members:
            images = _images(item)
            lines.append(f"      - images: {_scalar(images)}")
            lines += ["        # perspective: Axial", "        # specifics: non-contrast"]
    return "\n".join(lines) + "\n"


def _scalar(value: str | list[str]) -> str:
    """One YAML value on one line (quoted when needed)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 16)
    return text.removesuffix("\n...\n").strip()


def _lock_entry(case: RemoteCase, folder: Path, series: list[_Series]) -> LockedCase:
    """The case as the site holds it; only the title is recorded as a field (nothing else is
    known), so later manifest edits of the placeholders raise no 'changed' warnings."""
    entry = LockedCase(case.id, case.created_at, fingerprints({"title": case.title}), True)
    for index, study_id in enumerate(dict.fromkeys(s.study_id for s in series)):
        study = LockedStudy(study_id, FIRST_STUDY_POSITION + index)
        for item in (s for s in series if s.study_id == study_id):
            hashes = [facts.sha256 for _, facts in item.files]
            files = [
                LockedFile(f"{folder.as_posix()}/{item.folder}/{name}", facts.size, facts.sha256)
                for name, facts in item.files
            ]
            study.series.append(
                LockedSeries(series_content_id(hashes), series_id=item.series_id, files=files)
            )
        entry.studies.append(study)
    return entry
