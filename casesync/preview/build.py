"""``casesync preview``: the cases as they would appear, as a static site on this machine.

The manifests are validated exactly as ``plan`` validates them (same problems, same exit code);
nothing is sent anywhere. Layout of the output folder::

    index.html                     the list of cases
    <case>/index.html              one case: text, studies, a scrollable stack per series
    <case>/review-<s>-<n>.html     every slice of one series at full size, for burned-in text
    img/                           slices, named by content (written once, reused by later runs)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from casesync.api.vocab import DIAGNOSTIC_CERTAINTIES, SYSTEMS, suggest
from casesync.errors import ConfigError
from casesync.files import formats
from casesync.fsutil import ensure_dir
from casesync.preview import pages, pixels
from casesync.preview.images import IMG_DIR, ImageStore
from casesync.preview.output import write_if_changed
from casesync.project.manifest import CaseSpec, SeriesSpec, StudySpec
from casesync.project.validate import ValidationResult, validate_project
from casesync.settings import STATE_DIR
from casesync.sync.workflow import InvalidProject

DEFAULT_OUT = Path(STATE_DIR) / "preview"


@dataclass(frozen=True)
class PreviewResult:
    index: Path
    validation: ValidationResult
    cases: int
    slices: int
    images_written: int
    images_reused: int
    pages_written: int


def build_preview(
    root: Path,
    keys: Sequence[str] = (),
    out: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> PreviewResult:
    """Validate, then write the site; raise ``InvalidProject`` as plan does on any error.

    PHI-gate errors do not stop the preview (it stays on this machine): a series flagged for
    burned-in annotation is exactly the one whose review page a person needs.
    """
    validation = validate_project(root, progress=progress, phi_errors_block=False)
    if validation.manifest is None:
        raise InvalidProject(validation)
    cases = _select(validation.manifest.cases, keys)
    root = validation.manifest.project.root
    base, out = (root, root / DEFAULT_OUT) if out is None else _explicit(out)
    ensure_dir(base, out / IMG_DIR)
    store = ImageStore(out / IMG_DIR)
    views: list[tuple[pages.CaseView, str]] = []
    slugs: set[str] = {IMG_DIR}
    for case in cases:
        slug = _slug(case.key, slugs)
        views.append((_case_view(root, case, slug, store), slug))
    written = 0
    for view, slug in views:
        ensure_dir(base, out / slug)
        written += write_if_changed(out / slug / "index.html", pages.case_page(view).encode())
        for study in view.studies:
            for series in study.series:
                page = pages.review_page(view, study, series)
                written += write_if_changed(out / slug / series.review_href, page.encode())
    index = out / "index.html"
    written += write_if_changed(index, pages.index_page([view for view, _ in views]).encode())
    slices = sum(len(s.slices) for view, _ in views for st in view.studies for s in st.series)
    return PreviewResult(
        index, validation, len(views), slices, store.written, store.reused, written
    )


def _explicit(out: Path) -> tuple[Path, Path]:
    """The folder the user named: its parent is theirs to choose; only ``out`` down is checked."""
    parent = out.absolute().parent.resolve()
    return parent, parent / out.name


def _select(cases: tuple[CaseSpec, ...], keys: Sequence[str]) -> list[CaseSpec]:
    if not keys:
        return list(cases)
    known = {case.key: case for case in cases}
    for key in keys:
        if key not in known:
            close = suggest(key, list(known))
            raise ConfigError(
                f"no case with key {key!r}",
                hint=f"did you mean {close!r}?" if close else f"known keys: {', '.join(known)}",
            )
    return [known[key] for key in dict.fromkeys(keys)]


def _slug(key: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.") or "case"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def _case_view(root: Path, case: CaseSpec, slug: str, store: ImageStore) -> pages.CaseView:
    fields = case.fields
    meta = [f"System: {SYSTEMS.get(fields.system_id, fields.system_id)}"]
    if fields.diagnostic_certainty_id is not None:
        certainty = DIAGNOSTIC_CERTAINTIES.get(fields.diagnostic_certainty_id)
        meta.append(f"Diagnostic certainty: {certainty}")
    meta += [f"Age: {fields.age}"] if fields.age else []
    meta += [f"Gender: {fields.gender}"] if fields.gender else []
    if fields.suitable_for_quiz is not None:
        meta.append("Suitable for quiz" if fields.suitable_for_quiz else "Not for quiz")
    studies = [
        _study_view(root, study, number, store)
        for number, study in enumerate(case.studies, start=1)
    ]
    return pages.CaseView(
        case.key,
        f"{slug}/index.html",
        fields.title,
        meta,
        fields.presentation,
        fields.body,
        studies,
    )


def _study_view(root: Path, study: StudySpec, number: int, store: ImageStore) -> pages.StudyView:
    series = [
        _series_view(root, study, spec, f"review-{number}-{position}.html", store)
        for position, spec in enumerate(study.series, start=1)
    ]
    return pages.StudyView(study.modality, study.caption, study.findings, series)


def _series_view(
    root: Path, study: StudySpec, spec: SeriesSpec, review_href: str, store: ImageStore
) -> pages.SeriesView:
    windows: tuple[pixels.Window, ...] = (pixels.FILE_WINDOW,)
    if spec.image_format == formats.DICOM and study.modality == "CT":
        windows += pixels.CT_PRESETS
    label = ", ".join(part for part in (spec.perspective, spec.specifics) if part) or "Series"
    return pages.SeriesView(
        label,
        store.series(root, spec, windows),
        spec.root_index,
        windows,
        spec.image_format == formats.MP4,
        review_href,
    )
