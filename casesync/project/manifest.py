"""The validated, typed form of a teaching repository: project, cases, studies, series.

Everything here is plain data; ``validate.py`` assembles it from YAML and files
(``seriesfiles.py`` builds the series, ``casebuild.py`` the cases), the planner diffs it
against the lockfile, and the executor sends it. Identity rules (README "What counts as the
same case, study or series"):

- case: its ``key``, else the case folder relative to the project root;
- study: its ``key``, else matched against the lockfile by metadata, then by shared series;
- series: its ``key``, else its ordered content hashes (``content_id``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from casesync.api.models import CaseFields, SeriesFields, StudyFields


@dataclass(frozen=True)
class Location:
    file: str  # relative to the project root
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ImageFile(NamedTuple):
    """One slice (a tuple: built once per file on every plan)."""

    path: str  # posix, relative to the project root (symlinks resolved)
    sha256: str
    size: int


@dataclass(frozen=True)
class SeriesNote:
    """A warning validation raised on a series' files (the PHI gate's), for every plan that
    would upload them: a person decides from the plan, so the plan must say it."""

    code: str  # phi-<rule>
    message: str
    tags: tuple[str, ...] = ()  # DICOM tags as "Keyword (gggg,eeee)"


@dataclass(frozen=True)
class SeriesSpec:
    files: tuple[ImageFile, ...]  # in slice order
    image_format: str
    root_index: int
    perspective: str | None
    specifics: str | None
    key: str | None
    burned_in_reviewed: bool
    location: Location
    notes: tuple[SeriesNote, ...] = field(default=(), compare=False)  # not part of identity

    @cached_property
    def content_id(self) -> str:
        """The series' default identity: a digest of its ordered file hashes."""
        return series_content_id([file.sha256 for file in self.files])

    @property
    def total_bytes(self) -> int:
        return sum(file.size for file in self.files)

    def fields(self) -> SeriesFields:
        return SeriesFields(self.image_format, self.root_index, self.perspective, self.specifics)

    def sent_fields(self) -> dict[str, object]:
        """The metadata whose change after creation the plan reports."""
        return {
            "perspective": self.perspective,
            "specifics": self.specifics,
            "root_index": self.root_index,
        }


@dataclass(frozen=True)
class StudySpec:
    modality: str
    caption: str | None
    findings: str | None
    series: tuple[SeriesSpec, ...]
    key: str | None
    location: Location

    def fields(self, position: int) -> StudyFields:
        return StudyFields(self.modality, position, self.caption, self.findings)

    def sent_fields(self) -> dict[str, object]:
        return {"modality": self.modality, "caption": self.caption, "findings": self.findings}


@dataclass(frozen=True)
class CaseSpec:
    key: str
    fields: CaseFields
    studies: tuple[StudySpec, ...]
    location: Location
    sample: bool = False  # casesync init's sample, marked 'sample: true': apply refuses it

    def sent_fields(self) -> dict[str, object]:
        f = self.fields
        return {
            "title": f.title,
            "system_id": f.system_id,
            "diagnostic_certainty_id": f.diagnostic_certainty_id,
            "suitable_for_quiz": f.suitable_for_quiz,
            "presentation": f.presentation,
            "age": f.age,
            "gender": f.gender,
            "body": f.body,
        }


@dataclass(frozen=True)
class Project:
    root: Path
    api_url: str | None
    case_globs: tuple[str, ...]
    defaults: dict[str, object]


@dataclass(frozen=True)
class Manifest:
    project: Project
    cases: tuple[CaseSpec, ...]

    def case(self, key: str) -> CaseSpec:
        for case in self.cases:
            if case.key == key:
                return case
        raise KeyError(key)


def series_content_id(sha256s: list[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(sha256s).encode()).hexdigest()
