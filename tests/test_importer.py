"""``casesync import``: a case folder written from the site, byte-identical, then "No changes"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import teaching_repo
from repofactory import write_project
from test_e2e_apply import apply, cli

from casesync.project.validate import validate_project


def applied_case(tmp_path: Path, emulator: Any) -> tuple[Path, int]:
    source = teaching_repo(tmp_path / "source", cases=1, images=3)
    assert apply(source, emulator).returncode == 0
    return source, emulator.snapshot()["cases"][0]["id"]


def test_import_writes_files_identical_to_the_uploads_and_plan_says_no_changes(
    tmp_path: Path, emulator_thread: Any
) -> None:
    source, case_id = applied_case(tmp_path, emulator_thread)
    target = write_project(tmp_path / "target")
    done = cli(target, emulator_thread, "import", "--case-id", str(case_id))
    assert done.returncode == 0, done.stderr
    assert "into cases/teaching-case-0: 2 studies, 3 series, 7 files" in done.stdout
    folder = target / "cases" / "teaching-case-0"
    manifest = yaml.safe_load((folder / "case.yaml").read_text())
    assert manifest["title"] == "Teaching case 0" and manifest["key"] == "teaching-case-0"
    assert "# age: 40 years" in (folder / "case.yaml").read_text()  # a placeholder to fill in
    uploaded = validate_project(source).manifest
    imported = validate_project(target).manifest
    assert uploaded is not None and imported is not None
    for theirs, ours in zip(uploaded.cases[0].studies, imported.cases[0].studies, strict=True):
        for a, b in zip(theirs.series, ours.series, strict=True):
            originals = [(source / f.path).read_bytes() for f in a.files]
            assert [(target / f.path).read_bytes() for f in b.files] == originals
    plan = cli(target, emulator_thread, "plan")
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout

    again = cli(target, emulator_thread, "import", "--case-id", str(case_id))
    assert again.returncode == 5 and "already recorded as teaching-case-0" in again.stderr


def test_import_never_overwrites_a_folder_and_leaves_nothing_behind(
    tmp_path: Path, emulator_thread: Any
) -> None:
    _, case_id = applied_case(tmp_path, emulator_thread)
    target = write_project(tmp_path / "target")
    (target / "cases" / "mine").mkdir(parents=True)
    (target / "cases" / "mine" / "notes.txt").write_text("keep me")
    done = cli(target, emulator_thread, "import", "--case-id", str(case_id), "--into", "cases/mine")
    assert done.returncode == 5 and "never overwrites" in done.stderr
    assert [p.name for p in (target / "cases").iterdir()] == ["mine"]
    assert not (target / "casesync.lock").exists()


def test_import_never_writes_through_a_symlinked_folder(
    tmp_path: Path, emulator_thread: Any
) -> None:
    _, case_id = applied_case(tmp_path, emulator_thread)
    target = write_project(tmp_path / "target")
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "cases").symlink_to(outside)
    done = cli(target, emulator_thread, "import", "--case-id", str(case_id), "--into", "cases/x")
    assert done.returncode != 0 and "symlink" in done.stderr
    assert list(outside.iterdir()) == []
    assert not (target / "casesync.lock").exists()


def test_import_all_drafts_skips_what_the_lock_holds(tmp_path: Path, emulator_thread: Any) -> None:
    source = teaching_repo(tmp_path / "source", cases=2, images=2)
    assert apply(source, emulator_thread).returncode == 0
    first = json.loads((source / "casesync.lock").read_text())["cases"]["cases/case-00"]
    (source / "casesync.lock").write_text(
        json.dumps({"version": 1, "api_url": emulator_thread.base_url, "cases": {}})
    )
    done = cli(source, emulator_thread, "import", "--all-drafts")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("imported case") == 2
    lock = json.loads((source / "casesync.lock").read_text())["cases"]
    assert lock["teaching-case-0"]["case_id"] == first["case_id"]
    none_left = cli(source, emulator_thread, "import", "--all-drafts")
    assert "already in the lockfile" in none_left.stdout


@pytest.mark.parametrize("args", [[], ["--case-id", "1", "--all-drafts"]])
def test_import_needs_exactly_one_target(
    tmp_path: Path, emulator_thread: Any, args: list[str]
) -> None:
    target = write_project(tmp_path / "target")
    done = cli(target, emulator_thread, "import", *args)
    assert done.returncode == 1 and "--case-id N or --all-drafts" in done.stderr


def test_import_of_dicom_guesses_the_modality_and_keeps_the_stack_order(
    tmp_path: Path, emulator_thread: Any
) -> None:
    import pydicom
    from phifactory import OPTIONS, bundled, write
    from repofactory import write_case

    from casesync.phi.anonymise import anonymise_dataset

    source = write_project(tmp_path / "source")
    folder = write_case(
        source,
        "ct",
        "title: \"CT: chest #2, 'quoted'\"\nsystem: Chest\nstudies:\n  - modality: CT\n    series:\n"
        "      - images: [slices/b.dcm, slices/a.dcm]\n",
    )
    (folder / "slices").mkdir()
    for number, name in ((1, "a.dcm"), (2, "b.dcm")):
        dataset = pydicom.dcmread(bundled("CT_small.dcm"))
        dataset.InstanceNumber = number
        dataset.SOPInstanceUID = f"{dataset.SOPInstanceUID}.{number}"  # one instance per slice
        anonymise_dataset(dataset, OPTIONS)
        write(dataset, folder / "slices" / name)
    applied = apply(source, emulator_thread)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    case_id = emulator_thread.snapshot()["cases"][0]["id"]
    target = write_project(tmp_path / "target")
    done = cli(target, emulator_thread, "import", "--case-id", str(case_id), "--into", "cases/ct")
    assert done.returncode == 0, done.stderr
    text = (target / "cases/ct/case.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../.casesync-schemas/")
    manifest = yaml.safe_load(text)
    [study] = manifest["studies"]
    assert manifest["title"] == "CT: chest #2, 'quoted'"  # YAML-quoted as needed
    assert study["modality"] == "CT"  # from the headers
    # InstanceNumber order is not the stack order here, so the files are listed in stack order
    assert study["series"][0]["images"] == [
        "study-1/series-1/0001.dcm",
        "study-1/series-1/0002.dcm",
    ]
    assert (target / "cases/ct/study-1/series-1/0001.dcm").read_bytes() == (
        folder / "slices/b.dcm"
    ).read_bytes()
    assert "No changes." in cli(target, emulator_thread, "plan").stdout


def test_import_refuses_files_that_fail_the_phi_gate_and_writes_nothing(tmp_path: Path) -> None:
    from io import BytesIO

    from phifactory import clean_ct
    from sitehelpers import case_with_series

    from casesync.emulator import EmulatorConfig, EmulatorThread

    patient = clean_ct()
    patient.PatientName = "Doe^Jane"
    blob = BytesIO()
    patient.save_as(blob, enforce_file_format=True)
    config = EmulatorConfig(job_seconds=0.05, anonymiser_check="off")
    with EmulatorThread(config) as emulator:
        case_id = case_with_series(emulator, "Not anonymised", [blob.getvalue()])
        target = write_project(tmp_path / "target")
        done = cli(target, emulator, "import", "--case-id", str(case_id))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "PHI gate" in done.stderr and "nothing was written" in done.stderr
    assert "cases/not-anonymised/study-1/series-1" in done.stderr
    assert "Doe" not in done.stdout + done.stderr  # never the value
    assert not any((target / "cases").rglob("*")) and not (target / "casesync.lock").exists()
