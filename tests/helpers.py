"""Teaching repositories for the apply tests, and checks of the emulator against them."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from repofactory import write_case, write_pngs, write_project

from casesync.api.credentials import TokenProvider, token_provider
from casesync.api.models import Planned
from casesync.cli.progress import JsonEvents
from casesync.errors import CasesyncError
from casesync.project.validate import validate_project
from casesync.sync.apply import ApplySettings, run_apply
from casesync.sync.executor import ApplyOptions
from casesync.sync.journal import Ledger, SeriesRecord, StudyRecord
from casesync.sync.lockfile import load_lock
from casesync.sync.resolve import Answer

CASE_YAML = """
title: Teaching case {index}
system: Gastrointestinal
diagnostic_certainty: Certain
age: {index} years
gender: Female
body: <p>Discussion {index}</p>
studies:
  - modality: CT
    caption: CT abdomen
    findings: <p>Finding {index}</p>
    series:
      - images: ct-axial
        perspective: Axial
        specifics: C+ portal venous phase
      - images: ct-coronal
        perspective: Coronal
        root: first
  - modality: X-ray
    caption: Frontal
    series:
      - images: xr
"""


def teaching_repo(root: Path, cases: int = 3, images: int = 4) -> Path:
    """``cases`` cases, each with a CT study (two series) and an X-ray study (one series)."""
    write_project(root)
    for index in range(cases):
        case_dir = write_case(root, f"case-{index:02d}", CASE_YAML.format(index=index))
        seed = index * 1000
        write_pngs(case_dir / "ct-axial", [f"a{n}.png" for n in range(1, images + 1)], seed)
        write_pngs(case_dir / "ct-coronal", [f"c{n}.png" for n in range(1, 4)], seed + 100)
        write_pngs(case_dir / "xr", ["frontal.png"], seed + 200)
    return root


def add_study(root: Path, case: str, seed: int) -> None:
    """Append an ultrasound study with one two-image series to ``cases/<case>``."""
    case_file = root / "cases" / case / "case.yaml"
    extra = "  - modality: Ultrasound\n    caption: Added later\n    series:\n      - images: us\n"
    case_file.write_text(case_file.read_text().rstrip("\n") + "\n" + extra)
    write_pngs(root / "cases" / case / "us", ["u1.png", "u2.png"], seed)


def check_matches_manifests(root: Path, state: dict[str, Any]) -> None:
    """The emulator holds exactly the manifests: once each, with fields, positions, order."""
    manifest = validate_project(root).manifest
    assert manifest is not None
    cases = [c for c in state["cases"] if not c.get("deleted")]
    assert sorted(c["title"] for c in cases) == sorted(c.fields.title for c in manifest.cases)
    attached: list[int] = []
    for spec in manifest.cases:
        (case,) = [c for c in cases if c["title"] == spec.fields.title]
        assert case["upload_finished"], spec.key
        assert case["age"] == spec.fields.age
        assert case["system_id"] == spec.fields.system_id
        studies = sorted(case["studies"], key=lambda s: s["position"])
        assert [(s["modality"], s["caption"], s["position"]) for s in studies] == [
            (study.modality, study.caption, 2 + n) for n, study in enumerate(spec.studies)
        ], spec.key
        for study, remote_study in zip(spec.studies, studies, strict=True):
            wanted = [
                ([f.sha256 for f in s.files], s.root_index, s.perspective, s.specifics)
                for s in study.series
            ]
            got = [
                (s["sha256s"], s["root_index"], s["perspective"], s["specifics"])
                for s in remote_study["series"]
            ]
            assert got == wanted, f"{spec.key}: got {_brief(got)}, wanted {_brief(wanted)}"
            attached.extend(u for s in remote_study["series"] for u in s["upload_ids"])
    assert len(attached) == len(set(attached)), "an upload id was attached twice"


def _brief(series: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A series as (file count, first hashes, root, perspective, specifics): short enough to read."""
    return [([h[:6] for h in hashes], *rest) for hashes, *rest in series]


def user_answers(root: Path, state: dict[str, Any], api_url: str) -> list[tuple[str, str, Answer]]:
    """What a user would answer ``casesync resolve`` for each unknown study or series create,
    after looking at the site (``state``): ``(case key, kind, answer)``, oldest first."""
    studies = {s["id"]: s for c in state["cases"] for s in c["studies"]}
    lock_path = root / "casesync.lock"
    answers = []
    for intent in Ledger(root, lock_path, load_lock(lock_path, api_url)).recover():
        record = intent.record
        if isinstance(record, StudyRecord):
            case = next(c for c in state["cases"] if c["id"] == record.case_id)
            found = [s["id"] for s in case["studies"] if s["position"] == record.position]
            answer = Answer(study_id=found[0]) if found else Answer(not_created=True)
        elif isinstance(record, SeriesRecord):
            ids = [f.upload_id for f in record.files]
            series = studies[record.study_id]["series"]
            jobs = [s["job_id"] for s in series if s["upload_ids"] == ids]
            answer = Answer(series_job=jobs[0]) if jobs else Answer(not_created=True)
        else:
            continue  # apply settles cases itself from the listing
        answers.append((intent.case, intent.kind, answer))
    return answers


def env_tokens(api_url: str) -> TokenProvider:
    """Tokens as the CLI finds them: from the CASESYNC_* variables the test set."""
    return token_provider(api_url, os.environ)


def apply_in_process(
    root: Path, api_url: str, **options: Any
) -> tuple[CasesyncError | None, list[dict[str, Any]]]:
    """``casesync apply --yes --format json`` as a function (no settle wait): the error it
    ends with (only a CasesyncError may come out) and its events."""
    out = io.StringIO()
    settings = ApplySettings(
        root=root,
        api_url_flag=api_url,
        yes=True,
        options=ApplyOptions(**{"settle_seconds": 0, "poll_seconds": 0.01} | options),
    )
    error = None
    try:
        run_apply(settings, JsonEvents(out), lambda: True, env_tokens)
    except CasesyncError as exc:
        error = exc
    return error, [json.loads(line) for line in out.getvalue().splitlines()]


def planned(path: Path) -> Planned:
    """An upload of ``path`` as it is now (the bytes a plan just checked)."""
    data = path.read_bytes()
    return Planned(path, hashlib.sha256(data).hexdigest(), len(data), path.name)
