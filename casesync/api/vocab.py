"""Radiopaedia's fixed vocabularies (protocol.md, "Vocabularies"), and lookups that forgive case.

The API has no endpoint that lists systems or certainties, so these tables are the source of
truth for both the client and the emulator.
"""

from __future__ import annotations

import difflib

SYSTEMS: dict[int, str] = {
    1: "Breast",
    2: "Vascular",
    3: "Central Nervous System",
    4: "Chest",
    6: "Gastrointestinal",
    7: "Head & Neck",
    8: "Hepatobiliary",
    9: "Musculoskeletal",
    11: "Urogenital",
    12: "Paediatrics",
    15: "Spine",
    16: "Cardiac",
    17: "Interventional",
    18: "Obstetrics",
    19: "Gynaecology",
    20: "Haematology",
    21: "Forensic",
    22: "Oncology",
    23: "Trauma",
    24: "Not Applicable",
}

DIAGNOSTIC_CERTAINTIES: dict[int, str] = {
    1: "Possible",
    2: "Probable",
    3: "Almost Certain",
    4: "Certain",
    5: "Not applicable",
}

MODALITIES: tuple[str, ...] = (
    "CT",
    "MRI",
    "X-ray",
    "Ultrasound",
    "Mammography",
    "DSA (angiography)",
    "Fluoroscopy",
    "Nuclear medicine",
    "Annotated image",
    "Illustration",
    "Pathology",
    "Photograph",
)

# Common ways authors write a modality, mapped to the exact string the API matches literally.
MODALITY_ALIASES: dict[str, str] = {
    "mr": "MRI",
    "mri": "MRI",
    "ct": "CT",
    "xray": "X-ray",
    "x-ray": "X-ray",
    "x ray": "X-ray",
    "radiograph": "X-ray",
    "cr": "X-ray",
    "dx": "X-ray",
    "us": "Ultrasound",
    "ultrasound": "Ultrasound",
    "mg": "Mammography",
    "mammo": "Mammography",
    "dsa": "DSA (angiography)",
    "angiography": "DSA (angiography)",
    "xa": "DSA (angiography)",
    "rf": "Fluoroscopy",
    "nm": "Nuclear medicine",
    "pet": "Nuclear medicine",
    "photo": "Photograph",
}

GENDERS: tuple[str, ...] = ("Male", "Female")

TITLE_MAX_LENGTH = 120


def lookup_id(table: dict[int, str], value: str | int) -> int | None:
    """Resolve a name (any case) or an id to an id of ``table``; None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in table else None
    wanted = value.strip().casefold()
    if wanted.isascii() and wanted.isdigit():
        return lookup_id(table, int(wanted))
    for ident, name in table.items():
        if name.casefold() == wanted:
            return ident
    return None


def suggest(value: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The closest valid choice to a near miss, for "did you mean" hints."""
    lowered = {choice.casefold(): choice for choice in choices}
    key = value.strip().casefold()
    if key in lowered:
        return lowered[key]
    if choices is MODALITIES and key in MODALITY_ALIASES:
        return MODALITY_ALIASES[key]
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None
