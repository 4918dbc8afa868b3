"""Teaching repositories for the apply tests, and checks of the emulator against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repofactory import write_case, write_pngs, write_project

from casesync.project.validate import validate_project

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
            assert got == wanted, spec.key
            attached.extend(u for s in remote_study["series"] for u in s["upload_ids"])
    assert len(attached) == len(set(attached)), "an upload id was attached twice"
