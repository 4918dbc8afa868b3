"""The format-2 policy as data, and golden answers of ``changes`` per SOP class."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from pydicom.dataset import Dataset

from casesync.phi.policy import (
    UID_PREFIX,
    Change,
    changes,
    load_policy,
    parse_tag,
    policy_from_json,
)

CT, MR, NM = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.20"
US, US_MULTI = "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1"
SC = "1.2.840.10008.5.1.4.1.1.7"  # not in the overrides: the catch-all alone
STAMP = "Radiopaedia Dicom Anonymizer. github.com/radiopaedia/dicom-anonymiser"


def raw_policy() -> bytes:
    return (
        resources.files("casesync.phi").joinpath("radiopaedia-anonymiser-policy.json").read_bytes()
    )


def test_the_shipped_policy_is_format_2_with_overrides() -> None:
    policy = load_policy()
    assert len(policy.catch_all) == 272 and len(policy.overrides) == 12
    assert policy.catch_all[0x7FE00010].action == "keep"  # PixelData
    assert policy.catch_all[0x00080021].value == ("19700101",)  # SeriesDate
    assert policy.catch_all[0x00100020].value == ()  # PatientID: emptied
    assert policy.rules_for(CT)[0x00080070].value == ()  # Manufacturer, CT override
    assert policy.rules_for(SC)[0x00080070].value == ("REMOVED",)
    assert policy.rules_for(NM)[0x00181242].action == "keep"
    assert policy.stamped == {0x00120062: "YES", 0x00120063: STAMP}


def test_version_names_the_package_and_hashes_the_content() -> None:
    policy = policy_from_json(raw_policy())
    assert policy.version.startswith("dicomanon 0.5.2+")
    changed = json.loads(raw_policy())
    del changed["catch_all"]["00080005"]
    assert policy_from_json(json.dumps(changed).encode()).version != policy.version
    assert policy.uid_prefix == UID_PREFIX == "1.2.826.0.1.3680043.10.341.512."


def test_other_formats_and_actions_are_refused() -> None:
    data = json.loads(raw_policy())
    with pytest.raises(ValueError, match="format"):
        policy_from_json(json.dumps({**data, "format": 1}).encode())
    data["catch_all"]["00080005"]["action"] = "scramble"
    with pytest.raises(ValueError, match="scramble"):
        policy_from_json(json.dumps(data).encode())


@pytest.mark.parametrize("text", ["0010,0010", "(0010,0010)", "0010001G", "1010"])
def test_bad_tags_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tag(text)


def dataset(sop_class: str, **values: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.PatientIdentityRemoved = "YES"
    ds.add_new(0x00120063, "LO", STAMP)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def kinds(ds: Dataset) -> dict[int, tuple[str, str]]:
    return {c.tag: (c.kind, c.reason) for c in changes(ds)}


GOLDEN = [
    # (class, element values, expected {tag: (kind, reason)})
    (
        SC,
        {"SeriesDate": "", "ContentTime": "101500", "Manufacturer": ""},
        {
            0x00080021: ("replaced", "would be replaced with 19700101"),
            0x00080033: ("replaced", "would be replaced with 0000"),
            0x00080070: ("replaced", "would be replaced with REMOVED"),
        },
    ),
    (
        SC,
        {
            "SeriesDate": "19700101",
            "ContentTime": "0000",
            "Manufacturer": "REMOVED",
            "ManufacturerModelName": "REMOVED",
            "DeviceSerialNumber": "REMOVED",
            "SoftwareVersions": "REMOVED",
            "ImageType": ["DERIVED", "SECONDARY"],
        },
        {},
    ),
    (
        CT,
        {"Manufacturer": "REMOVED", "StudyDate": "19700101", "ImageType": "ORIGINAL"},
        {
            0x00080020: ("replaced", "would be emptied"),
            0x00080070: ("replaced", "would be emptied"),
        },
    ),
    (CT, {"Manufacturer": "", "StudyDate": "", "PatientID": ""}, {}),
    (
        MR,
        {"Manufacturer": "GE", "InstitutionName": ""},
        {
            0x00080070: ("replaced", "would be emptied"),
            0x00080080: ("removed", "would be removed"),
        },
    ),
    (
        US,
        {"ImageType": ["ORIGINAL", "PRIMARY"], "Manufacturer": ""},
        {
            0x00080008: ("replaced", "would be emptied"),
        },
    ),
    (US_MULTI, {"ImageType": "", "NumberOfFrames": "3"}, {}),
    (US_MULTI, {"ImageType": "DERIVED"}, {0x00080008: ("replaced", "would be emptied")}),
    (NM, {"ActualFrameDuration": "100", "Manufacturer": ""}, {}),  # NM keeps it
    (CT, {"ActualFrameDuration": "100"}, {0x00181242: ("replaced", "would be emptied")}),
    (MR, {"SOPClassUID": CT}, {}),  # then CT's policy applies, and SOPClassUID matches
]


@pytest.mark.parametrize(("sop_class", "values", "expected"), GOLDEN)
def test_golden_changes_per_sop_class(
    sop_class: str, values: dict[str, object], expected: dict[int, tuple[str, str]]
) -> None:
    assert kinds(dataset(sop_class, **values)) == expected


def test_emptiness_by_vr_binary_zero_and_carets_are_values() -> None:
    ds = dataset(CT)
    ds.add_new(0x00101030, "DS", "")  # PatientWeight, replaced with []: empty is fine
    ds.add_new(0x00101020, "DS", "0")  # PatientSize: 0 is a value
    ds.add_new(0x00080090, "PN", "^^^^")  # ReferringPhysicianName: carets are a value
    ds.add_new(0x00181242, "IS", None)  # ActualFrameDuration, empty
    assert set(kinds(ds)) == {0x00101020, 0x00080090}
    for vr, value in (("US", 0), ("FD", 0.0), ("SS", 0x2020), ("UL", 92), ("OB", b"\0")):
        other = dataset(CT)
        other.add_new(0x00091001, vr, value)  # private: removed, whatever it holds
        other.add_new(0x003A0300, "SQ", [])  # replaced with []: an empty sequence is fine
        assert kinds(other) == {0x00091001: ("removed", "would be removed")}, vr


def test_uids_stamp_and_clipping() -> None:
    ds = dataset(CT, StudyInstanceUID=UID_PREFIX + "1", SeriesInstanceUID="1.2.3")
    ds.FrameOfReferenceUID = ""
    ds.SliceLocation = "-12.345678901234567"
    ds.PatientIdentityRemoved = "NO"
    del ds[0x00120063]
    ds.SOPInstanceUID = UID_PREFIX + "2"
    found = {c.tag: c.kind for c in changes(ds)}
    assert found == {
        0x0020000E: "regenerated",
        0x00200052: "regenerated",  # an empty UID is not a fixed point
        0x00201041: "clipped",
        0x00120062: "stamped",
        0x00120063: "stamped",
        0x00080018: "refused",  # the server rejects it in the dataset, even prefixed
    }


def test_level_one_refusals_and_unread_pixel_tags() -> None:
    ds = dataset(SC, RecognizableVisualFeatures="YES", BurnedInAnnotation="YES")
    assert changes(ds, unread=[0x7FE00010, 0x7FE00008]) == [
        Change(0x00280302, "refused", "YES: the anonymiser refuses the file"),
        Change(0x7FE00008, "unreadable", "VR OF: the server's parser cannot read the file at all"),
    ]


def test_vrs_the_servers_parser_does_not_know_are_unreadable_even_when_kept() -> None:
    ds = dataset(MR)
    ds.add_new(0x56000010, "OF", b"\0\0\0\0")  # FirstOrderPhaseCorrectionAngle: kept
    ds.add_new(0x00660022, "OD", b"")  # an empty OD too: "Invalid vr type OD"
    assert {c.tag: c.kind for c in changes(ds)} == {
        0x56000010: "unreadable",
        0x00660022: "unreadable",
    }
    assert load_policy().catch_all[0x56000010].action == "keep"
