"""A plain reference model of Radiopaedia's anonymiser, for tests only.

Written from the format-2 policy JSON and phi-rules.md without casesync.phi.policy, so the
tests can hold casesync's reading of the policy (gate, anonymise, emulator) against it: apply
the rules to a parsed pydicom dataset the way the anonymiser does, then compare.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

UID_PREFIX = "1.2.826.0.1.3680043.10.341.512."
UNKNOWN_VRS = ("OD", "OF", "OL", "OV", "SV", "UV")
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95")


class Refused(Exception):
    """The anonymiser throws (validator level 1)."""


@cache
def policy() -> dict[str, Any]:
    raw = resources.files("casesync.phi").joinpath("radiopaedia-anonymiser-policy.json")
    return dict(json.loads(raw.read_bytes()))


def rules_for(sop_class: str) -> dict[int, dict[str, Any]]:
    data = policy()
    merged = {**data["catch_all"], **data["class_overrides"].get(sop_class, {})}
    return {int(tag, 16): rule for tag, rule in merged.items()}


def normal(element: DataElement) -> object:
    """A comparable form of a value; every kind of emptiness is the same."""
    value = element.value
    if element.VR == "SQ":
        return "EMPTY" if not value else ("SQ", len(value))
    if value is None or value == "" or value == b"" or value == [] or value == [""]:
        return "EMPTY"
    if isinstance(value, bytes):
        return value
    if isinstance(value, str | int | float) or not hasattr(value, "__iter__"):
        return str(value).rstrip(" \x00") or "EMPTY"
    items = [str(item).rstrip(" \x00") for item in value]
    return "EMPTY" if items in ([], [""]) else tuple(items)


def apply(ds: Dataset) -> Dataset:
    """What the anonymiser returns for ``ds`` (top level, meta untouched); raises Refused."""
    rules = rules_for(str(ds.get("SOPClassUID", "")))
    out = Dataset()
    for element in ds:
        rule = rules.get(int(element.tag), {"action": "remove"})
        if rule["action"] == "keep":
            out.add(copy.deepcopy(element))
        elif rule["action"] == "replace":
            values = rule["value"]
            value: object = [] if element.VR == "SQ" else "\\".join(values)
            out.add(DataElement(element.tag, element.VR, value))
        elif rule["action"] == "regenerate":
            old = str(element.value or "")
            if not old or not old.startswith(UID_PREFIX):
                old = UID_PREFIX + str(int(hashlib.sha512(old.encode()).hexdigest()[:12], 16))
            out.add(DataElement(element.tag, "UI", old))
    for element in out:
        if element.VR in ("PN", "AS") and normal(element) != "EMPTY":
            raise Refused(f"{element.tag} {element.VR}")
    if str(out.get("RecognizableVisualFeatures", "")).strip().upper() == "YES":
        raise Refused("recognizable visual features")
    for tag, value in policy()["stamped"].items():
        vr = "CS" if tag == "00120062" else "LO"
        out.add(DataElement(int(tag, 16), vr, value))
    if "SliceLocation" in out:
        text = str(out["SliceLocation"].value)
        if len(text) > 16 and "e" not in text.lower():
            out["SliceLocation"].value = text[:16]
    return out


def would_change(ds: Dataset) -> list[str]:
    """Tags (GGGGEEEE) the anonymiser, or the server around it, would change; [] = accepted."""
    if ds.file_meta.get("TransferSyntaxUID") in DEFLATED:
        return ["unreadable"]  # the server's parser cannot read deflate
    if any(element.VR in UNKNOWN_VRS for element in ds):
        return ["unreadable"]  # "Invalid vr type OF": its parser knows no OD, OF, OL, OV, SV, UV
    try:
        after = apply(ds)
    except Refused:
        return ["refused"]
    changed = [f"{int(t):08X}" for t in set(ds.keys()) ^ set(after.keys())]
    for element in ds:
        if element.tag in after and normal(element) != normal(after[element.tag]):
            changed.append(f"{int(element.tag):08X}")
    if "SOPInstanceUID" in ds:  # the server refuses it in the dataset even when prefixed
        changed.append("00080018")
    return sorted(set(changed))


def fixed_point(ds: Dataset) -> Dataset:
    """``ds`` as the anonymiser would leave it, SOPInstanceUID moved to the meta header only."""
    out = apply(ds)
    out.file_meta = copy.deepcopy(ds.file_meta)
    instance = str(ds.get("SOPInstanceUID", "") or ds.file_meta.MediaStorageSOPInstanceUID)
    if "SOPInstanceUID" in out:
        del out.SOPInstanceUID
    digest = int(hashlib.sha512(instance.encode()).hexdigest()[:12], 16)
    out.file_meta.MediaStorageSOPInstanceUID = f"{UID_PREFIX}9.{digest}"
    out.preamble = b"\x00" * 128
    return out
