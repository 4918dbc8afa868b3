"""The PHI gate end to end: an un-anonymised series stops apply before any request; after
``casesync anonymise`` and a manifest change, the same repo applies and the server accepts it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from repofactory import SIMPLE_CASE, write_case, write_project
from test_e2e_apply import cli, cli_env

from casesync.emulator import EmulatorConfig, EmulatorThread


def raw_ct_repo(root: Path) -> Path:
    write_project(root)
    case_dir = write_case(
        root, "ct-01", SIMPLE_CASE.replace("X-ray", "CT").replace("images: xr", "images: raw")
    )
    (case_dir / "raw").mkdir()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    original_uid = source.SOPInstanceUID
    for number in (1, 2, 3):
        source.InstanceNumber = number
        source.SOPInstanceUID = f"{original_uid}.{number}"  # one instance per slice
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        source.save_as(case_dir / "raw" / f"{number}.dcm")
    return case_dir


def test_un_anonymised_series_sends_nothing_until_anonymised(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    case_dir = raw_ct_repo(root)
    with EmulatorThread(EmulatorConfig(job_seconds=0.05)) as emulator:
        refused = cli(root, emulator, "apply", "--yes")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "PHI gate [" in refused.stdout
        assert "CompressedSamples" not in refused.stdout + refused.stderr  # never the value
        sent = emulator.snapshot()["requests"]
        assert set(sent) <= {"GET /api/v1/users/current"}, sent

        anonymised = subprocess.run(
            [sys.executable, "-m", "casesync", "anonymise", "cases/ct-01/raw", "cases/ct-01/ct"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(root, emulator),
        )
        assert anonymised.returncode == 0, anonymised.stderr
        assert (root / ".casesync" / "anonymise.key").stat().st_mode & 0o777 == 0o600
        shutil.rmtree(case_dir / "raw")
        manifest = case_dir / "case.yaml"
        manifest.write_text(manifest.read_text().replace("images: raw", "images: ct"))

        applied = cli(root, emulator, "apply", "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        [case] = emulator.snapshot()["cases"]
        [study] = case["studies"]
        [series] = study["series"]
        assert len(series["upload_ids"]) == 3 and series["image_format"] == "application/dicom"
        assert case["upload_finished"] is True
