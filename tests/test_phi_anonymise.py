"""anonymise: output passes the gate, pixels untouched, UIDs keyed and consistent, deterministic."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pydicom
import pytest
from phifactory import (
    KEY,
    OPTIONS,
    SECONDARY_CAPTURE,
    bundled,
    jpeg_with_exif_artist,
    png_with_text,
    pydicom_data_dir,
    write,
)
from policyref import would_change
from pydicom.encaps import generate_frames

from casesync.__main__ import main
from casesync.emulator.anonymiser_check import first_violation
from casesync.errors import Refused
from casesync.phi.anonymise import anonymise_dataset, anonymise_tree, load_or_create_key
from casesync.phi.gate import check_file, check_files
from casesync.phi.images import png_chunks
from casesync.phi.policy import UID_PREFIX, load_policy


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every bundled file, anonymised once for the module: (source, output)."""
    out = tmp_path_factory.mktemp("anon") / "out"
    report = anonymise_tree(pydicom_data_dir(), out, KEY)
    assert report.written > 80 and report.unchanged == 0
    return pydicom_data_dir(), out


def outputs(out: Path) -> list[Path]:
    return sorted(path for path in out.rglob("*") if path.is_file())


def test_every_written_file_passes_the_gate(corpus: tuple[Path, Path]) -> None:
    _, out = corpus
    failed = [report.path for report in check_files(outputs(out)) if not report.passed]
    assert failed == []


def test_pixel_data_is_byte_identical(corpus: tuple[Path, Path]) -> None:
    src, out = corpus
    for path in outputs(out):
        before = pydicom.dcmread(src / path.relative_to(out))
        after = pydicom.dcmread(path)
        assert after.PixelData == before.PixelData, path


def test_uids_are_keyed_consistent_and_sop_instance_only_in_meta(
    corpus: tuple[Path, Path],
) -> None:
    src, out = corpus
    mapping: dict[str, set[str]] = {}
    series = sorted((out / "dicomdirtests").rglob("*"))
    for path in (p for p in series if p.is_file()):
        before = pydicom.dcmread(src / path.relative_to(out), stop_before_pixels=True)
        after = pydicom.dcmread(path, stop_before_pixels=True)
        assert "SOPInstanceUID" not in after
        assert after.file_meta.MediaStorageSOPInstanceUID.startswith(UID_PREFIX)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            assert after[keyword].value.startswith(UID_PREFIX)
            mapping.setdefault(before[keyword].value, set()).add(after[keyword].value)
        assert after.PatientIdentityRemoved == "YES"
        assert after.DeidentificationMethod == load_policy().stamped[0x00120063]
    assert len(mapping) > 5 and all(len(new) == 1 for new in mapping.values())
    assert len({next(iter(new)) for new in mapping.values()}) == len(mapping)


def test_anonymising_twice_is_byte_identical_and_reruns_are_no_ops(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(pydicom_data_dir() / "dicomdirtests" / "98892003", src / "a")
    shutil.copy(bundled("CT_small.dcm"), src / "ct.dcm")
    first = anonymise_tree(src, tmp_path / "one", KEY)
    anonymise_tree(src, tmp_path / "two", KEY)
    files = outputs(tmp_path / "one")
    assert len(files) == first.written == 18
    for path in files:
        assert (
            path.read_bytes()
            == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()
        )
    again = anonymise_tree(src, tmp_path / "one", KEY)
    assert (again.written, again.unchanged) == (0, 18)
    other = anonymise_tree(src, tmp_path / "three", b"x" * 32)
    assert other.written == 18
    assert (tmp_path / "three" / "ct.dcm").read_bytes() != (
        tmp_path / "one" / "ct.dcm"
    ).read_bytes()


def test_refuses_to_write_into_src_or_over_different_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(bundled("MR_small.dcm"), src / "mr.dcm")
    with pytest.raises(Refused):
        anonymise_tree(src, src / "out", KEY)
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "mr.dcm").write_bytes(b"something else")
    with pytest.raises(Refused):
        anonymise_tree(src, tmp_path / "dst", KEY)
    assert (tmp_path / "dst" / "mr.dcm").read_bytes() == b"something else"


def test_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / ".casesync" / "anonymise.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_series_description_switch(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(pydicom_data_dir() / "dicomdirtests/98892003/MR2/4950", src / "mr")
    anonymise_tree(src, tmp_path / "keep", KEY)
    anonymise_tree(src, tmp_path / "drop", KEY, keep_series_description=False)
    source = pydicom.dcmread(src / "mr").SeriesDescription
    assert pydicom.dcmread(tmp_path / "keep" / "mr").SeriesDescription == source
    assert "SeriesDescription" not in pydicom.dcmread(tmp_path / "drop" / "mr")


def test_split_frames_writes_one_passing_file_per_frame(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(bundled("SC_rgb_rle_2frame.dcm"), src / "sc.dcm")
    anonymise_tree(src, tmp_path / "out", KEY, split_frames=True)
    frames = list(generate_frames(pydicom.dcmread(src / "sc.dcm").PixelData, number_of_frames=2))
    written = outputs(tmp_path / "out")
    assert [path.name for path in written] == ["sc-f0001.dcm", "sc-f0002.dcm"]
    for path, frame in zip(written, frames, strict=True):
        ds = pydicom.dcmread(path)
        assert ds.NumberOfFrames == 1
        assert next(generate_frames(ds.PixelData, number_of_frames=1)) == frame
        assert check_file(path).passed


def test_png_and_jpeg_metadata_is_stripped_losslessly(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(png_with_text("Author", "Dr Jane Doe"))
    (src / "b.jpg").write_bytes(jpeg_with_exif_artist("Jane Doe"))
    report = anonymise_tree(src, tmp_path / "out", KEY)
    assert report.non_dicom == 2
    png, jpeg = (tmp_path / "out" / "a.png").read_bytes(), (tmp_path / "out" / "b.jpg").read_bytes()
    assert b"Jane" not in png + jpeg
    source_chunks = [chunk for kind, _, chunk in png_chunks((src / "a.png").read_bytes())]
    assert [chunk for _, _, chunk in png_chunks(png)] == source_chunks[:1] + source_chunks[2:]
    assert jpeg == b"\xff\xd8\xff\xda\x00\x02SCANDATA\xff\xd9"
    assert all(not check_file(path).findings for path in outputs(tmp_path / "out"))


def test_cli_check_phi_exit_codes_and_anonymise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(bundled("MR_small.dcm"), src / "mr.dcm")
    with pytest.raises(SystemExit) as failed:
        main(["check-phi", str(src)])
    assert failed.value.code == 3
    assert "[person-name] PatientName (0010,0010), " in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["anonymise", str(src), str(tmp_path / "out" / "dst")])
    assert done.value.code == 0
    assert (tmp_path / "out" / ".casesync" / "anonymise.key").is_file()  # beside DST
    with pytest.raises(SystemExit) as passed:
        main(["check-phi", "--format", "json", str(tmp_path / "out" / "dst")])
    assert passed.value.code == 0
    assert '"failed": 0' in capsys.readouterr().out


def test_output_does_not_depend_on_the_pydicom_version(tmp_path: Path) -> None:
    """The meta header names casesync, not pydicom's release, so upgrades keep the hashes."""
    import pydicom
    from pydicom.data import get_testdata_file

    from casesync.phi.anonymise import IMPLEMENTATION_CLASS_UID, anonymise_tree

    src = tmp_path / "src"
    src.mkdir()
    (src / "ct.dcm").write_bytes(
        Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    )
    anonymise_tree(src, tmp_path / "dst", b"k" * 32)
    meta = pydicom.dcmread(tmp_path / "dst" / "ct.dcm").file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == "CASESYNC_1"
    assert pydicom.__version__ not in (tmp_path / "dst" / "ct.dcm").read_bytes().decode("latin-1")


def test_check_phi_on_a_case_folder_skips_manifests_but_not_dicom_named_files(
    tmp_path: Path,
) -> None:
    from casesync.phi.report import expand_paths

    (tmp_path / "case.yaml").write_text("title: x\n")
    (tmp_path / "notes.md").write_text("# notes\n")
    (tmp_path / "broken.dcm").write_text("not dicom")
    (tmp_path / "IM0001").write_bytes(b"\x00" * 10)
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    assert [p.name for p in expand_paths([tmp_path])] == ["IM0001", "broken.dcm", "photo.jpg"]
    assert [p.name for p in expand_paths([tmp_path / "case.yaml"])] == ["case.yaml"]


@pytest.mark.parametrize(
    "sop_class", [*load_policy().overrides, SECONDARY_CAPTURE, "1.2.840.10008.5.1.4.1.1.4.1"]
)
def test_output_is_a_fixed_point_for_every_class_in_the_policy(
    sop_class: str, tmp_path: Path
) -> None:
    """Every class with overrides (and the catch-all), from a CT full of values the policy hits."""
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "GE", "LightSpeed", "1.0"
    ds.ImageType, ds.ActualFrameDuration = ["ORIGINAL", "PRIMARY", "AXIAL"], "100"
    ds.SeriesDate, ds.SeriesTime, ds.FrameOfReferenceUID = "20200101", "101500", ""
    ds.SliceLocation = "-123.45678901234567"
    anonymise_dataset(ds, OPTIONS)
    path = write(ds, tmp_path / "out.dcm")
    assert check_file(path).passed
    assert first_violation(path.read_bytes()) is None
    assert would_change(pydicom.dcmread(path)) == []
    assert str(pydicom.dcmread(path).SliceLocation) == "-123.45678901234"
