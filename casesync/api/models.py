"""Typed requests and results of the Radiopaedia API, independent of how they travel.

The core (manifest, planner, executor) speaks only these dataclasses; ``wire.py`` turns them
into and out of JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


@dataclass(frozen=True)
class CaseFields:
    """What ``POST /api/v1/cases`` is sent for one case."""

    title: str
    system_id: int
    diagnostic_certainty_id: int | None = None
    suitable_for_quiz: bool | None = None
    presentation: str | None = None
    age: str | None = None
    gender: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class StudyFields:
    """What ``POST /api/v1/cases/:id/studies`` is sent for one study."""

    modality: str
    position: int
    caption: str | None = None
    findings: str | None = None


@dataclass(frozen=True)
class SeriesFields:
    """What ``image_preparation`` is sent for one series, besides the upload ids."""

    image_format: str  # MIME type of every slice: application/dicom, image/png, ...
    root_index: int
    perspective: str | None = None
    specifics: str | None = None


@dataclass(frozen=True)
class Quotas:
    """Allowances are None when unlimited."""

    allowed_draft_cases: int | None
    draft_case_count: int
    allowed_unlisted_cases: int | None
    unlisted_case_count: int

    @property
    def drafts_left(self) -> int | None:
        if self.allowed_draft_cases is None:
            return None
        return max(0, self.allowed_draft_cases - self.draft_case_count)


@dataclass(frozen=True)
class User:
    login: str
    quotas: Quotas


@dataclass(frozen=True)
class RemoteCase:
    id: int
    title: str
    status: str  # draft | pending_review | published
    visibility: str  # public | unlisted
    created_at: str  # ISO-8601, as the server wrote it

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"


@dataclass(frozen=True)
class RemoteStudy:
    id: int
    case_id: int
    modality: str


class Planned(NamedTuple):
    """What an upload must send: the bytes validation and the PHI gate judged."""

    path: Path
    sha256: str
    size: int
    display: str  # the path shown in messages (relative to the repository)


@dataclass(frozen=True)
class UploadSlot:
    """One entry of ``direct_s3_uploads``: a URL to PUT to, or the bytes are already there."""

    upload_id: int
    sha256: str
    url: str | None = field(repr=False)  # None when already_uploaded; repr hides its signature

    @property
    def already_uploaded(self) -> bool:
        return self.url is None


@dataclass(frozen=True)
class JobStatus:
    """The state of a series job. ``done`` with ``failed`` means it failed silently."""

    job_id: str
    done: bool
    series_id: int | None = None
    status: str | None = None  # pending-trim ... completed-dicom-processing | ready

    @property
    def failed(self) -> bool:
        return self.done and self.series_id is None

    @property
    def succeeded(self) -> bool:
        return self.done and self.status in ("completed-dicom-processing", "ready")


@dataclass(frozen=True)
class OriginalSeries:
    """One series of ``GET /api/v1/cases/:id/originals``: its files as presigned GET URLs."""

    study_id: int
    series_id: int | None
    urls: tuple[str, ...] = field(repr=False)  # in stack order; the query holds a signature
