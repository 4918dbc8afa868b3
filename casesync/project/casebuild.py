"""Typed cases from the case manifests that parsed: the checks the schema cannot make.

The schema sees only shapes; here the meaning is checked (system, certainty and modality names,
an age that is not a date, a key, one case per key) and ``CaseSpec`` and ``StudySpec`` are
built around the series already built from the files (``seriesfiles.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from casesync.api import vocab
from casesync.api.models import CaseFields
from casesync.problems import Problem
from casesync.project.manifest import CaseSpec, Location, SeriesSpec, StudySpec
from casesync.project.textfields import case_text_format, text_value
from casesync.project.yamlload import LoadedYaml

DATE_LIKE = re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\s*\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\s*$")


def build_case(
    root: Path,
    loaded: LoadedYaml,
    schema_ok: bool,
    series_specs: dict[tuple[str, tuple[str | int, ...]], SeriesSpec | None],
    problems: list[Problem],
) -> CaseSpec | None:
    """Check what the schema cannot (vocabularies, age, key), then build the typed case."""
    data = loaded.data
    system_id = lookup(loaded, data, "system", vocab.SYSTEMS, problems)
    certainty_id = lookup(
        loaded, data, "diagnostic_certainty", vocab.DIAGNOSTIC_CERTAINTIES, problems
    )
    age = _check_age(loaded, data, problems)
    studies = data.get("studies") if isinstance(data.get("studies"), list) else []
    for s_index, study in enumerate(studies):
        modality = study.get("modality") if isinstance(study, dict) else None
        if isinstance(modality, str) and modality not in vocab.MODALITIES:
            near = vocab.suggest(modality, vocab.MODALITIES)
            problems.append(
                loaded.problem(
                    ("studies", s_index, "modality"),
                    f"unknown modality {modality!r} (matched literally)",
                    f"did you mean {near!r}?"
                    if near
                    else f"use one of {', '.join(vocab.MODALITIES)}",
                    code="unknown-modality",
                )
            )
    key = data.get("key") or Path(loaded.file).parent.as_posix()
    if key == ".":
        problems.append(
            loaded.problem(
                (),
                "a case manifest at the project root needs a key",
                "add key: ...",
                code="missing-key",
            )
        )
    text_format = case_text_format(data)
    errors_before = len(problems)
    presentation = text_value(root, loaded, (), "presentation", text_format, problems)
    body = text_value(root, loaded, (), "body", text_format, problems)
    study_specs = [
        _build_study(root, loaded, i, study, series_specs, text_format, problems)
        for i, study in enumerate(studies)
    ]
    sample = data.get("sample") is True
    if sample:
        problems.append(_sample_warning(loaded))
    if not schema_ok or system_id is None or key == "." or None in study_specs:
        return None  # its problems are reported; the manifest is not built anyway
    if any(p.severity == "error" for p in problems[errors_before:]):
        return None
    fields = CaseFields(
        title=data["title"],
        system_id=system_id,
        diagnostic_certainty_id=certainty_id,
        suitable_for_quiz=data.get("suitable_for_quiz"),
        presentation=presentation,
        age=age,
        gender=data.get("gender"),
        body=body,
    )
    line, col = loaded.where_key(("key",)) if "key" in data else (1, 1)
    return CaseSpec(
        key,
        fields,
        tuple(s for s in study_specs if s),
        Location(loaded.file, line, col),
        sample=sample,
    )


def _sample_warning(loaded: LoadedYaml) -> Problem:
    line, col = loaded.where_key(("sample",))
    return Problem(
        loaded.file,
        line,
        col,
        "this is casesync init's sample case: apply refuses it "
        "(the API cannot delete a case once created)",
        "make it your own case and remove 'sample: true', or delete the folder",
        "warning",
        code="sample-case",
    )


def _build_study(
    root: Path,
    loaded: LoadedYaml,
    s_index: int,
    study: dict[str, Any],
    series_specs: dict[tuple[str, tuple[str | int, ...]], SeriesSpec | None],
    text_format: str,
    problems: list[Problem],
) -> StudySpec | None:
    """The typed study, or None when any of its series could not be built."""
    if not isinstance(study, dict):
        return None
    findings = text_value(root, loaded, ("studies", s_index), "findings", text_format, problems)
    if not isinstance(study.get("series"), list):
        return None
    series = [
        series_specs.get((loaded.file, ("studies", s_index, "series", r_index)))
        for r_index in range(len(study["series"]))
    ]
    built = [s for s in series if s is not None]
    if len(built) != len(series):
        return None
    line, col = loaded.where(("studies", s_index))
    return StudySpec(
        modality=study["modality"],
        caption=study.get("caption"),
        findings=findings,
        series=tuple(built),
        key=study.get("key"),
        location=Location(loaded.file, line, col),
    )


def lookup(
    loaded: LoadedYaml,
    data: dict[str, Any],
    name: str,
    table: dict[int, str],
    problems: list[Problem],
    at: tuple[str, ...] = (),
) -> int | None:
    """The id of a system or certainty written by name or id (in ``data``, found at ``at``)."""
    value = data.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema counts 6.0 as the integer 6; so must this
    if not isinstance(value, str | int):
        return None  # absent or mistyped: the schema reports it
    ident = vocab.lookup_id(table, value)
    if ident is None:
        near = vocab.suggest(str(value), list(table.values()))
        names = ", ".join(f"{v} ({k})" for k, v in table.items())
        problems.append(
            loaded.problem(
                (*at, name),
                f"unknown {name.replace('_', ' ')} {value!r}",
                f"did you mean {near!r}?" if near else f"use one of: {names}",
                code=f"unknown-{name.replace('_', '-')}",
            )
        )
    return ident


def _check_age(loaded: LoadedYaml, data: dict[str, Any], problems: list[Problem]) -> str | None:
    age = data.get("age")
    if age is None:
        return None
    if isinstance(age, dt.date) or (isinstance(age, str) and DATE_LIKE.search(age)):
        problems.append(
            loaded.problem(
                ("age",),
                "age looks like a date (a date of birth identifies the patient)",
                "write the age as text, e.g. '34 years'",
                code="age-is-a-date",
            )
        )
        return None
    return str(age)


def check_unique_keys(cases: list[CaseSpec], problems: list[Problem]) -> None:
    """A key is the case's identity in casesync.lock: two cases with one key would be one."""
    seen: dict[str, CaseSpec] = {}
    for case in cases:
        if case.key in seen:
            first = seen[case.key].location
            problems.append(
                Problem(
                    case.location.file,
                    case.location.line,
                    case.location.col,
                    f"case key {case.key!r} is also used by {first.file}",
                    "give each case a unique key",
                    code="duplicate-case-key",
                )
            )
        else:
            seen[case.key] = case
