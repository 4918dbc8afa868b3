"""The server's anonymiser check, on real pydicom test files and on files made compliant."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from emulator_helpers import UID_PREFIX, compliant_dicom
from pydicom import dcmread
from pydicom.data import get_testdata_file
from repofactory import png_bytes

from casesync.emulator import first_violation

PREFIX = "Validation failed: Uploaded data Was not anonymized, Uploaded data Key "


def rejected_key(data: bytes) -> str:
    message = first_violation(data)
    assert message is not None and message.startswith(PREFIX), message
    assert message.endswith(" not anonymized")
    return message[len(PREFIX) : -len(" not anonymized")]


def with_element(data: bytes, tag: int, vr: str, value: object) -> bytes:
    dataset = dcmread(BytesIO(data))
    dataset.add_new(tag, vr, value)
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("CT_small.dcm", "00080012"),  # InstanceCreationDate: removed by the whitelist
        ("MR_small.dcm", "00080012"),
        ("rtplan.dcm", "00080012"),
        ("examples_overlay.dcm", "00080018"),  # SOPInstanceUID in the dataset
    ],
)
def test_real_test_files_are_rejected_naming_the_first_tag(name: str, key: str) -> None:
    data = Path(get_testdata_file(name, download=False)).read_bytes()
    assert rejected_key(data) == key


def test_a_fixed_point_of_the_policy_is_accepted() -> None:
    assert first_violation(compliant_dicom()) is None
    assert first_violation(compliant_dicom(name="MR_small.dcm")) is None


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"SOPInstanceUID": UID_PREFIX + "1.2"}, "00080018"),  # rejected even when prefixed
        ({"StudyInstanceUID": "1.2.840.1234.5"}, "0020000D"),  # not in the Radiopaedia namespace
        ({"StudyDate": "20200101"}, "00080020"),  # replaced with an empty value
        ({"StudyDate": "19700101"}, "00080020"),  # the catch-all's date, but not StudyDate's
        ({"StudyTime": "101500"}, "00080030"),
        ({"SeriesDate": "20200101"}, "00080021"),  # replaced with 19700101
        ({"ContentTime": ""}, "00080033"),  # empty, but the anonymiser writes 0000
        ({"Manufacturer": "REMOVED"}, "00080070"),  # CT's override: emptied, not REMOVED
        ({"PatientName": "Doe^John"}, "00100010"),
        ({"PatientName": ""}, "00100010"),  # removed: present and empty is still a change
        ({"PatientAge": "034Y"}, "00101010"),
        ({"RecognizableVisualFeatures": "YES"}, "00280302"),
        ({"PatientIdentityRemoved": "NO"}, "00120062"),
        ({"PatientIdentityRemoved": None}, "00120062"),  # the anonymiser stamps it
        ({"DeidentificationMethod": "casesync"}, "00120063"),  # not the anonymiser's stamp
        ({"InstitutionName": "General Hospital"}, "00080080"),
        ({"InstitutionName": ""}, "00080080"),
        ({"FrameOfReferenceUID": ""}, "00200052"),  # an empty UID is hashed into a new one
        ({"SliceLocation": "-123.45678901234567"}, "00201041"),  # clipped to 16 characters
    ],
)
def test_each_kind_of_violation_names_its_tag(changes: dict[str, str | None], key: str) -> None:
    assert rejected_key(compliant_dicom(**changes)) == key


@pytest.mark.parametrize(
    "changes",
    [
        {"SeriesDate": "19700101", "ContentTime": "0000"},  # the policy's own values
        {"StudyDate": "", "PatientID": None},  # emptied or absent
        {"ManufacturerModelName": "REMOVED"},
        {"Manufacturer": ""},  # CT's override
        {"FrameOfReferenceUID": UID_PREFIX + "7.7"},
        {"SeriesDescription": "Axial C+ portal venous"},  # kept
        {"SliceLocation": "-123.4567890123"},
    ],
)
def test_values_the_policy_leaves_alone_are_accepted(changes: dict[str, str | None]) -> None:
    assert first_violation(compliant_dicom(**changes)) is None


def test_private_tags_overlays_and_sequences_are_rejected() -> None:
    base = compliant_dicom()
    assert rejected_key(with_element(base, 0x00091001, "LO", "vendor")) == "00091001"
    assert rejected_key(with_element(base, 0x60003000, "OW", b"\x00\x01")) == "60003000"
    item = dcmread(BytesIO(base))
    item.clear()
    sequence = with_element(base, 0x00082218, "SQ", [item])  # AnatomicRegionSequence
    item.CodeValue = "T-D4000"
    assert rejected_key(sequence) == "00082218"


def test_the_meta_group_is_not_checked() -> None:
    # The policy leaves group 0002 untouched; the client's gate, not the server, polices it.
    data = compliant_dicom()
    dataset = dcmread(BytesIO(data))
    dataset.file_meta.SourceApplicationEntityTitle = "SCANNER1"
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    assert first_violation(out.getvalue()) is None


def test_images_are_not_checked_and_broken_dicom_is_refused() -> None:
    assert first_violation(png_bytes(1)) is None
    assert first_violation(b"\xff\xd8\xff\xe0" + b"\x00" * 300) is None
    complete = compliant_dicom()
    for cut in (200, 1000, len(complete) - 100):  # in the meta group, the dataset, the pixels
        message = first_violation(complete[:cut])
        assert message is not None and message.startswith("Validation failed: Uploaded data")


def test_uncompressed_422_is_complete_at_two_samples_per_pixel() -> None:
    source = dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm", download=False))
    data = compliant_dicom()
    dataset = dcmread(BytesIO(data))
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored"):
        setattr(dataset, keyword, source[keyword].value)
    dataset.HighBit, dataset.PlanarConfiguration = source.HighBit, 0
    dataset.PhotometricInterpretation = "YBR_FULL_422"
    dataset.PixelData = source.PixelData
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    assert first_violation(out.getvalue()) is None
    dataset.PixelData = source.PixelData[:-2]
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    assert first_violation(out.getvalue()) is not None
