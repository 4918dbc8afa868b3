"""Differential fuzz: single-element mutants of clean files, gate against the policy's model.

Each mutant sets one public tag from pydicom's dictionary to a value typical of its VR
(zeros, empty, carets, dates, UIDs with and without the prefix). Whenever applying the policy
(tests/policyref.py, written without casesync.phi.policy) would change the file, the gate must
not pass it and the emulator's server check must reject it. Seeded, so failures reproduce.
"""

from __future__ import annotations

import random
import struct
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from phifactory import OPTIONS, bundled
from policyref import UID_PREFIX, policy, would_change
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from casesync.emulator.anonymiser_check import first_violation
from casesync.phi.anonymise import anonymise_dataset
from casesync.phi.gate import check_file

SEED, MUTANTS = 20260613, 480
# CT, MR, US and US multi-frame (class overrides), SC (the catch-all alone); all explicit VR
# little endian datasets, like the raw elements the mutants add
BASES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "examples_palette.dcm",
    "examples_ybr_color.dcm",
    "SC_rgb_small_odd.dcm",
)
NAME = ["", "^^^^", "=^=", "Doe^John"]
TEXT = ["", " ", "REMOVED", "Doe^John", "19700101", "0000", "^^^^", "0"]
STRING_VALUES = {
    "DA": ["", "19700101", "20240115"],
    "TM": ["", "0000", "101500"],
    "DT": ["", "19700101", "20240115101500"],
    "UI": ["", UID_PREFIX + "5.5", "1.2.840.113619.2.1", "2.25.1"],
    "PN": NAME,
    "AS": ["", "034Y"],
    "CS": ["", "YES", "NO", "REMOVED", "ORIGINAL\\PRIMARY"],
    "DS": ["", " ", "0", "1", "-123.45678901234567"],
    "IS": ["", "0", "1"],
}
NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "SV": "q", "UV": "Q", "AT": "HH"}
BYTES = ("OB", "OW", "OD", "OF", "OL", "OV", "UN")


def candidate_tags(listed: bool) -> list[tuple[int, str]]:
    """Public tags of the dataset (not meta, not pixels); only those the policy lists, or all."""
    tags = []
    catch_all = {int(tag, 16) for tag in policy()["catch_all"]}
    for tag, entry in sorted(DicomDictionary.items()):
        vr = str(entry[0]).split(" or ")[0]
        if 0x0008 <= tag >> 16 < 0x7FE0 and vr != "NONE" and (tag in catch_all or not listed):
            tags.append((tag, vr))
    return tags


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    value += (b"\x00" if vr == "UI" else b" ") * (len(value) % 2) if vr not in BYTES else b""
    if vr in BYTES and len(value) % 2:
        value += b"\x00"
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def mutant_element(rng: random.Random, tag: int, vr: str) -> RawDataElement | DataElement:
    if vr == "SQ":
        item = Dataset()
        if rng.random() < 0.5:
            item.PatientName = "Doe^John"
        else:
            item.CodeValue = "T-D4000"
        return DataElement(tag, "SQ", Sequence(rng.choice([[], [item]])))
    if vr in NUMBERS:
        if vr == "AT":
            return raw(tag, vr, struct.pack("<HH", *rng.choice([(0, 0), (0x0010, 0x0010)])))
        return raw(tag, vr, struct.pack("<" + NUMBERS[vr], rng.choice([0, 1, 0x2020, 92])))
    if vr in ("FL", "FD"):
        return raw(tag, vr, struct.pack("<f" if vr == "FL" else "<d", rng.choice([0.0, 1.5])))
    if vr in BYTES:
        return raw(tag, vr, rng.choice([b"", b"\x00\x00", b"  \x00\x00"]))
    return raw(tag, vr, rng.choice(STRING_VALUES.get(vr, TEXT)).encode("latin-1"))


def clean_bases() -> list[bytes]:
    bases = []
    for name in BASES:
        ds = pydicom.dcmread(bundled(name))
        anonymise_dataset(ds, OPTIONS)
        assert not ds.original_encoding[0] and ds.original_encoding[1]
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        bases.append(out.getvalue())
    return bases


def test_the_gate_never_passes_a_file_the_policy_would_change(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    tags = (candidate_tags(listed=True), candidate_tags(listed=False))
    bases = clean_bases()
    misses, server_misses, passes, changed = [], [], 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number in range(MUTANTS):
            base = rng.randrange(len(bases))
            tag, vr = rng.choice(tags[number % 2])  # half of them among the policy's tags
            ds = pydicom.dcmread(BytesIO(bases[base]))
            ds[tag] = mutant_element(rng, tag, vr)
            path = tmp_path / f"m{number:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            expected = would_change(pydicom.dcmread(path))
            passed = check_file(path).passed
            passes += passed
            changed += bool(expected)
            if expected and passed:
                misses.append(f"{BASES[base]} {tag:08X} {vr}: {expected}")
            if expected and first_violation(path.read_bytes()) is None:
                server_misses.append(f"{BASES[base]} {tag:08X} {vr}: {expected}")
    assert misses == []
    assert server_misses == []
    # the mutants are varied enough to mean something: many changed, some kept and passing
    assert changed > MUTANTS // 2 and passes > MUTANTS // 10


@pytest.mark.parametrize("name", BASES)
def test_the_bases_are_clean(name: str, tmp_path: Path) -> None:
    data = clean_bases()[BASES.index(name)]
    (tmp_path / name).write_bytes(data)
    assert check_file(tmp_path / name, burned_in_reviewed=True).passed
    assert would_change(pydicom.dcmread(tmp_path / name)) == []
