"""The quick header reader against pydicom, on every file pydicom ships."""

import os
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from casesync.files.dicomheader import read_slice_keys
from casesync.files.hashing import CHUNK_BYTES, compute_facts, dicom_slice_keys

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False)).parent


def bundled_files() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def quick(path: Path) -> tuple[int | None, float | None, str | None] | None:
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


# --- where the quick reader must defer to pydicom, or agree with it ---

DEFLATED = "1.2.840.10008.1.2.1.99"
JPIP_DEFLATED = "1.2.840.10008.1.2.4.95"  # same length as DEFLATED: patched in place below


def ct_with_instance(tmp_path: Path, instance: str = "42") -> Path:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.InstanceNumber = instance
    dataset.save_as(tmp_path / "ct.dcm")
    return tmp_path / "ct.dcm"


def element(data: bytes, tag: bytes) -> tuple[int, int]:
    """Start and end of the explicit-VR element with a short VR whose tag bytes are ``tag``."""
    start = data.index(tag)
    (length,) = struct.unpack_from("<H", data, start + 6)
    return start, start + 8 + length


INSTANCE_TAG = b"\x20\x00\x13\x00IS"
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


def test_elements_out_of_order_are_left_to_pydicom(tmp_path: Path) -> None:
    """InstanceNumber moved after group 0028: pydicom still finds it, so the reader defers."""
    data = ct_with_instance(tmp_path).read_bytes()
    start, end = element(data, INSTANCE_TAG)
    moved = data[:start] + data[end:]
    pixels = moved.rindex(PIXEL_DATA_TAG)
    moved = moved[:pixels] + data[start:end] + moved[pixels:]
    (tmp_path / "moved.dcm").write_bytes(moved)
    assert quick(tmp_path / "moved.dcm") is None
    assert dicom_slice_keys(tmp_path / "moved.dcm")[0] == 42
    assert compute_facts(tmp_path / "moved.dcm").instance_number == 42


def test_a_repeated_element_is_left_to_pydicom(tmp_path: Path) -> None:
    data = ct_with_instance(tmp_path).read_bytes()
    _, end = element(data, INSTANCE_TAG)
    twice = data[:end] + INSTANCE_TAG + struct.pack("<H", 2) + b"7 " + data[end:]
    (tmp_path / "twice.dcm").write_bytes(twice)
    assert quick(tmp_path / "twice.dcm") is None
    assert compute_facts(tmp_path / "twice.dcm").instance_number == 7  # pydicom keeps the last


def test_nested_sequences_of_undefined_length_are_skipped(tmp_path: Path) -> None:
    """A sequence after group 0020 no longer sends the file to pydicom, and an InstanceNumber
    inside one of its items is not taken for the file's own."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.InstanceNumber = 5
    inner = Dataset()
    inner.InstanceNumber = 99
    item = Dataset()
    item.ReferencedSeriesSequence = Sequence([inner])
    dataset.RequestAttributesSequence = Sequence([item])  # (0040,0275)
    dataset["RequestAttributesSequence"].is_undefined_length = True
    item["ReferencedSeriesSequence"].is_undefined_length = True
    dataset.save_as(tmp_path / "seq.dcm")
    data = (tmp_path / "seq.dcm").read_bytes()
    assert b"\xfe\xff\xdd\xe0" in data  # really written with undefined lengths
    assert quick(tmp_path / "seq.dcm") == dicom_slice_keys(tmp_path / "seq.dcm")
    assert quick(tmp_path / "seq.dcm")[:2] == (5, pytest.approx(-75.699997))


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about these IS values
@pytest.mark.parametrize("written", ["1.0", "1e0", " 1 ", "1.5", "1\\2", "abc"])
def test_instance_number_has_one_answer_on_both_paths(tmp_path: Path, written: str) -> None:
    """'1.0' is 1 whether the quick reader or the pydicom fallback reads it; '1.5' is None."""
    data = ct_with_instance(tmp_path, "1").read_bytes()
    start, end = element(data, INSTANCE_TAG)
    value = written.encode() + b" " * (len(written) % 2)
    patched = data[:start] + INSTANCE_TAG + struct.pack("<H", len(value)) + value + data[end:]
    (tmp_path / "n.dcm").write_bytes(patched)
    fast = quick(tmp_path / "n.dcm")
    assert fast is not None
    expected = 1 if written.strip() in ("1.0", "1e0", "1") else None
    assert fast[0] == dicom_slice_keys(tmp_path / "n.dcm")[0] == expected


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("syntax", [DEFLATED, JPIP_DEFLATED])
def test_deflated_datasets_are_left_to_pydicom(tmp_path: Path, syntax: str) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.InstanceNumber = 42
    del dataset.PixelData  # JPIP files reference their pixels; a deflated header is enough here
    dataset.file_meta.TransferSyntaxUID = DEFLATED
    dataset.save_as(tmp_path / "d.dcm", enforce_file_format=True)
    data = (tmp_path / "d.dcm").read_bytes().replace(DEFLATED.encode(), syntax.encode(), 1)
    (tmp_path / "d.dcm").write_bytes(data)
    assert quick(tmp_path / "d.dcm") is None
    assert compute_facts(tmp_path / "d.dcm")[3:] == dicom_slice_keys(tmp_path / "d.dcm")


def test_a_jpip_deflate_file_is_never_read_as_plain(tmp_path: Path) -> None:
    """Declared JPIP deflate: the reader must not parse the dataset bytes as they stand."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    del dataset.PixelData
    dataset.file_meta.TransferSyntaxUID = JPIP_DEFLATED  # pydicom writes it uncompressed
    dataset.save_as(tmp_path / "plain.dcm", enforce_file_format=True)
    assert (tmp_path / "plain.dcm").read_bytes().count(JPIP_DEFLATED.encode()) == 1
    assert quick(tmp_path / "plain.dcm") is None
