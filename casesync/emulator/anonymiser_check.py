"""The server's anonymiser check: is a DICOM file a fixed point of Radiopaedia's policy?

This is the emulator's own reading of phi-rules.md ("How the policy treats a file"), written
independently of casesync's PHI gate so that an agreement test can hold the two against each
other. The policy tables are the JSON shipped in ``casesync.phi``; they are never retyped here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import BytesIO

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

UID_PREFIX = "1.2.826.0.1.3680043.10.341.512."
REJECTION = (
    "Validation failed: Uploaded data Was not anonymized, Uploaded data Key {} not anonymized"
)
UNREADABLE = (
    "Validation failed: Uploaded data Was not anonymized, Uploaded data is not readable DICOM"
)

SOP_INSTANCE_UID = 0x00080018
RECOGNIZABLE_VISUAL_FEATURES = 0x00280302
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
# The anonymiser writes these itself after applying its tables, so any value of theirs survives
# (PatientIdentityRemoved = NO is refused outright below).
WRITTEN_BY_ANONYMISER = frozenset({PATIENT_IDENTITY_REMOVED, DEIDENTIFICATION_METHOD})
# The values the policy itself writes into some blank_or_fixed dates and times.
FIXED_VALUES = {"DA": "19700101", "TM": "0000"}


@dataclass(frozen=True)
class _Tables:
    keep: frozenset[int]
    blank_or_fixed: frozenset[int]
    uid_rehash: frozenset[int]


def _tag(text: str) -> int:
    match = re.fullmatch(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)", text)
    if match is None:
        raise ValueError(f"bad tag in the anonymiser policy: {text!r}")
    return int(match.group(1) + match.group(2), 16)


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    raw = resources.files("casesync.phi").joinpath("radiopaedia-anonymiser-policy.json")
    data = json.loads(raw.read_bytes())

    def tags(name: str) -> frozenset[int]:
        return frozenset(_tag(row[0]) for row in data[name])

    return _Tables(tags("keep"), tags("blank_or_fixed"), tags("uid_rehash"))


def first_violation(data: bytes) -> str | None:
    """None when the server would accept these bytes, else its rejection message.

    Only DICOM files (``DICM`` after the 128-byte preamble) are checked; PNG, JPEG and other
    images pass. The meta group is not looked at: the policy leaves it untouched. A file the
    server could not process (no pixel data, or cut short) is refused as unreadable.
    """
    if data[128:132] != b"DICM":
        return None
    try:
        dataset = dcmread(BytesIO(data))
        elements = list(dataset)
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
        return UNREADABLE
    tables = _tables()
    for element in elements:
        if _offends(element, tables):
            return REJECTION.format(f"{element.tag:08X}")
    return None if _complete_image(dataset) else UNREADABLE


def _complete_image(dataset: Dataset) -> bool:
    """pydicom reads truncated files without complaint; the server's processing would not."""
    if "PixelData" not in dataset:
        return False
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        return True
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        if str(dataset.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
            samples = 2  # 4:2:2 stores two samples per pixel, not three
        expected = dataset.Rows * dataset.Columns * samples * frames * dataset.BitsAllocated // 8
    except (AttributeError, TypeError, ValueError):
        return False
    return bool(len(dataset.PixelData) >= expected)


def _offends(element: DataElement, tables: _Tables) -> bool:
    """Whether the anonymiser would change or refuse this top-level element."""
    tag = int(element.tag)
    empty = element.is_empty
    if tag == SOP_INSTANCE_UID:
        return True  # rejected even when prefixed, as clients report (phi-rules.md)
    if not empty and element.VR in ("PN", "AS"):
        return True  # validator level 1
    if tag == RECOGNIZABLE_VISUAL_FEATURES:
        return _text(element) == "YES"
    if tag == PATIENT_IDENTITY_REMOVED:
        return _text(element) == "NO"
    if empty or tag in tables.keep or tag in WRITTEN_BY_ANONYMISER:
        return False
    if tag in tables.blank_or_fixed:
        fixed = FIXED_VALUES.get(str(element.VR))
        return fixed is None or _text(element) != fixed
    if tag in tables.uid_rehash:
        return not _text(element).startswith(UID_PREFIX)
    return True  # removed by the whitelist: private tags, sequences, overlays, the rest


def _text(element: DataElement) -> str:
    return str(element.value).strip().upper()
