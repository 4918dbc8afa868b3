"""The quick header reader against pydicom, on every file pydicom ships."""

import os
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ImplicitVRLittleEndian

from casesync.files.dicomheader import read_slice_keys
from casesync.files.hashing import CHUNK_BYTES, dicom_slice_keys

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False)).parent


def bundled_files() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def quick(path: Path) -> tuple[int | None, float | None] | None:
    head = path.read_bytes()[:CHUNK_BYTES]
    return read_slice_keys(head, whole_file=path.stat().st_size <= CHUNK_BYTES)


def test_agrees_with_pydicom_wherever_it_answers() -> None:
    answered = 0
    for path in bundled_files():
        mine = quick(path)
        if mine is None:
            continue
        answered += 1
        theirs = dicom_slice_keys(path)
        assert mine[0] == theirs[0], path.name
        assert mine[1] == pytest.approx(theirs[1]) if theirs[1] is not None else mine[1] is None
        assert mine[2] == theirs[2], path.name
    assert answered >= 20  # most bundled files take the quick path


def test_reads_the_slices_casesync_itself_writes(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.InstanceNumber = 42
    dataset.ImagePositionPatient = [1.5, -2.0, 7.25]
    dataset.save_as(tmp_path / "a.dcm")
    assert quick(tmp_path / "a.dcm") == (42, 7.25, dataset.file_meta.MediaStorageSOPInstanceUID)


def test_the_sop_instance_uid_comes_from_the_meta_header_first(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    dataset.SOPInstanceUID = "1.2.3.5"
    dataset.save_as(tmp_path / "a.dcm")
    assert quick(tmp_path / "a.dcm")[2] == "1.2.3.4"
    assert dicom_slice_keys(tmp_path / "a.dcm")[2] == "1.2.3.4"
    del dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.save_as(tmp_path / "b.dcm", enforce_file_format=False)
    assert dicom_slice_keys(tmp_path / "b.dcm")[2] == "1.2.3.5"


def test_implicit_vr_files_are_read(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    dataset.InstanceNumber = 3
    dataset.save_as(tmp_path / "implicit.dcm", enforce_file_format=True)
    assert quick(tmp_path / "implicit.dcm") == dicom_slice_keys(tmp_path / "implicit.dcm")
    assert quick(tmp_path / "implicit.dcm") is not None


def test_gives_up_rather_than_guess(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    assert read_slice_keys(source[:400], whole_file=False) is None  # cut before group 0020
    assert read_slice_keys(b"\0" * 128 + b"NOPE" + source[132:], whole_file=True) is None
    big_endian = Path(get_testdata_file("MR_small_bigendian.dcm", download=False))
    assert quick(big_endian) is None


def test_absent_elements_in_a_whole_file_are_none(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for keyword in ("InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient"):
        dataset.pop(keyword, None)
    dataset.save_as(tmp_path / "bare.dcm")
    assert os.path.getsize(tmp_path / "bare.dcm") < CHUNK_BYTES
    assert quick(tmp_path / "bare.dcm") == (
        None,
        None,
        dataset.file_meta.MediaStorageSOPInstanceUID,
    )
