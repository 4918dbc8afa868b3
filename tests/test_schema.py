"""The shipped schemas against casesync itself: an independent validator (check-jsonschema, as
editors and CI use the schemas) gives the same verdict as ``casesync validate``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repofactory import SIMPLE_CASE, png_bytes, write_case, write_project

from casesync.api import vocab
from casesync.project.validate import validate_project

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"
EXAMPLES = REPO / "examples"

# (name, change to SIMPLE_CASE as (old, new), whether casesync accepts it)
CASE_VARIANTS = [
    ("as-is", ("", ""), True),
    ("system-lower", ("Gastrointestinal", "gastrointestinal"), True),
    ("system-upper", ("Gastrointestinal", "HEAD & NECK"), True),
    ("system-id", ("Gastrointestinal", "6"), True),
    ("system-id-text", ("Gastrointestinal", "'6'"), True),
    ("system-id-float", ("Gastrointestinal", "6.0"), True),
    ("system-neuro", ("Gastrointestinal", "Neuro"), False),
    ("system-unused-id", ("Gastrointestinal", "5"), False),
    ("system-bool", ("Gastrointestinal", "true"), False),
    ("certainty-name", ("Certain", "almost certain"), True),
    ("certainty-id", ("Certain", "3"), True),
    ("certainty-definite", ("Certain", "Definite"), False),
    ("certainty-9", ("Certain", "9"), False),
    ("certainty-0", ("Certain", "0"), False),
    ("modality-mr", ("X-ray", "MR"), False),
    ("modality-lower", ("X-ray", "x-ray"), False),
    ("modality-mri", ("X-ray", "MRI"), True),
    ("quiz-true", ("gender: Female", "gender: Female\nsuitable_for_quiz: true"), True),
    ("quiz-yes", ("gender: Female", "gender: Female\nsuitable_for_quiz: yes"), False),
    ("quiz-off", ("gender: Female", "gender: Female\nsuitable_for_quiz: Off"), False),
    ("quiz-text", ("gender: Female", "gender: Female\nsuitable_for_quiz: 'true'"), False),
    ("title-yes", ("title: Acute appendicitis", "title: yes"), True),
    ("gender-lower", ("gender: Female", "gender: female"), False),
    ("perspective-listed", ("images: xr", "images: xr\n        perspective: Axial"), True),
    ("perspective-free", ("images: xr", "images: xr\n        perspective: Weird view"), True),
    ("markdown", ("body: <p>Discussion</p>", "body: '*x*'\nbody_format: markdown"), True),
    ("text-format", ("body: <p>Discussion</p>", "body: '*x*'\ntext_format: markdown"), True),
    ("format-md", ("body: <p>Discussion</p>", "body: x\nbody_format: md"), False),
    ("both", ("body: <p>Discussion</p>", "body: x\nbody_file: d.md"), False),
    ("sample", ("gender: Female", "gender: Female\nsample: true"), True),
    ("unknown-field", ("gender: Female", "gender: Female\ncolour: red"), False),
    ("long-title", ("Acute appendicitis", "x" * 121), False),
]

PROJECT_VARIANTS = [
    ("defaults-ok", "version: 1\ndefaults: {suitable_for_quiz: false, system: chest}\n", True),
    ("defaults-yes", "version: 1\ndefaults: {suitable_for_quiz: yes}\n", False),
    ("defaults-neuro", "version: 1\ndefaults: {system: Neuro}\n", False),
    ("defaults-markdown", "version: 1\ndefaults: {text_format: markdown}\n", True),
]


def check_jsonschema(schema: Path, files: list[Path]) -> set[str]:
    """The files check-jsonschema finds invalid (one run for all of them)."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert tool, "check-jsonschema is a test dependency"
    run = subprocess.run(
        [tool, "--schemafile", str(schema), "-o", "JSON", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(run.stdout)
    assert run.returncode in (0, 1) and not report.get("parse_errors"), report
    return {error["filename"] for error in report.get("errors", [])}


def make_repo(root: Path, project_yaml: str, case_yaml: str) -> Path:
    write_project(root, project_yaml)
    case_dir = write_case(root, "a", case_yaml)
    (case_dir / "xr").mkdir()
    (case_dir / "xr/1.png").write_bytes(png_bytes(1))
    (case_dir / "d.md").write_text("d")
    return root


def test_case_manifests_get_the_same_verdict_from_both(tmp_path: Path) -> None:
    files: dict[str, Path] = {}
    casesync_ok: dict[str, bool] = {}
    for name, (old, new), _ in CASE_VARIANTS:
        root = make_repo(tmp_path / name, "version: 1\n", SIMPLE_CASE.replace(old, new, 1))
        files[name] = root / "cases/a/case.yaml"
        casesync_ok[name] = validate_project(root, use_cache=False).manifest is not None
    refused = check_jsonschema(SCHEMAS / "case.schema.json", list(files.values()))
    schema_ok = {name: str(path) not in refused for name, path in files.items()}
    expected = {name: ok for name, _, ok in CASE_VARIANTS}
    assert casesync_ok == expected
    assert schema_ok == expected


def test_project_files_get_the_same_verdict_from_both(tmp_path: Path) -> None:
    files: dict[str, Path] = {}
    casesync_ok: dict[str, bool] = {}
    for name, project_yaml, _ in PROJECT_VARIANTS:
        root = make_repo(tmp_path / name, project_yaml, SIMPLE_CASE)
        files[name] = root / "casesync.yaml"
        casesync_ok[name] = validate_project(root, use_cache=False).manifest is not None
    refused = check_jsonschema(SCHEMAS / "project.schema.json", list(files.values()))
    expected = {name: ok for name, _, ok in PROJECT_VARIANTS}
    assert casesync_ok == expected
    assert {name: str(path) not in refused for name, path in files.items()} == expected


def schema_target(yaml_file: Path) -> Path:
    first = yaml_file.read_text().splitlines()[0]
    found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert found, f"{yaml_file} has no $schema line"
    return (yaml_file.parent / found.group(1)).resolve()


def test_every_example_resolves_its_schema_and_passes_both(tmp_path: Path) -> None:
    yaml_files = [EXAMPLES / "casesync.yaml", *sorted(EXAMPLES.glob("cases/*/case.yaml"))]
    assert len(yaml_files) == 4
    for yaml_file in yaml_files:
        target = schema_target(yaml_file)  # committed, so present in a fresh clone
        assert target.parent == EXAMPLES / ".casesync-schemas"
        assert target.read_text() == (SCHEMAS / target.name).read_text(), target.name
        assert check_jsonschema(target, [yaml_file]) == set(), yaml_file
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    assert validate_project(root, use_cache=False).errors == []


def test_the_enumerations_are_casesyncs_vocabularies() -> None:
    case = json.loads((SCHEMAS / "case.schema.json").read_text())
    consts = lambda node: [alt["const"] for alt in node["anyOf"] if "const" in alt]  # noqa: E731
    systems = consts(case["properties"]["system"])
    assert systems == [*vocab.SYSTEMS.values(), *vocab.SYSTEMS]
    certainties = consts(case["properties"]["diagnostic_certainty"])
    assert certainties == [*vocab.DIAGNOSTIC_CERTAINTIES.values(), *vocab.DIAGNOSTIC_CERTAINTIES]
    modalities = consts(case["$defs"]["study"]["properties"]["modality"])
    assert modalities == list(vocab.MODALITIES)
    project = json.loads((SCHEMAS / "project.schema.json").read_text())
    assert project["properties"]["defaults"]["properties"]["system"] == case["properties"][
        "system"
    ] | {"description": project["properties"]["defaults"]["properties"]["system"]["description"]}


@pytest.mark.parametrize("name", sorted(vocab.SYSTEMS.values()))
def test_every_system_name_in_any_case_matches_the_schema_pattern(name: str) -> None:
    case = json.loads((SCHEMAS / "case.schema.json").read_text())
    [pattern] = [
        alt["pattern"] for alt in case["properties"]["system"]["anyOf"] if "pattern" in alt
    ]
    for written in (name, name.lower(), name.upper(), f" {name.swapcase()} "):
        assert re.search(pattern, written), written
        assert vocab.lookup_id(vocab.SYSTEMS, written) is not None


def test_a_yaml_1_1_boolean_where_a_boolean_is_due_says_how_to_fix_it(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, "version: 1\n", SIMPLE_CASE.replace("gender: Female", "suitable_for_quiz: yes")
    )
    assert [str(p) for p in validate_project(root).errors] == [
        "cases/a/case.yaml:5:20: error: suitable_for_quiz: 'yes' is not a boolean in YAML 1.2 "
        "(write true or false)"
    ]
