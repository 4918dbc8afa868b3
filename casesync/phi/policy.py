"""Radiopaedia's anonymiser policy, loaded from the JSON shipped beside this module.

The tables are data transcribed from radiopaedia/dicom-anonymiser; they are never retyped in
code, so updating the JSON is the whole upgrade (and changes ``Policy.version``, which is part
of the gate's cache keys).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

POLICY_FILE = "radiopaedia-anonymiser-policy.json"

# The policy leaves UIDs with this prefix unchanged and hashes every other one.
UID_PREFIX = "1.2.826.0.1.3680043.10.341.512."

# The one switch: today the server rejects SOPInstanceUID in the dataset even when prefixed, so
# anonymise writes it only in the file meta header and the gate fails files that carry it.
SOP_INSTANCE_UID_IN_DATASET = False

SOP_INSTANCE_UID = 0x00080018
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063

# The anonymiser writes these two itself after applying the tables, so they are part of its
# output (and so of a fixed point) even though the tables do not list them.
WRITTEN_BY_ANONYMISER = frozenset({PATIENT_IDENTITY_REMOVED, DEIDENTIFICATION_METHOD})


@dataclass(frozen=True)
class Policy:
    """The policy's tag tables as integer tags, plus what identifies this version of them."""

    source: str
    version: str
    keep: frozenset[int]
    blank_or_fixed: frozenset[int]
    uid_rehash: frozenset[int]
    sequences_removed: frozenset[int]
    uid_prefix: str = UID_PREFIX


def parse_tag(text: str) -> int:
    """``"(0008,0020)"`` -> ``0x00080020``."""
    match = re.fullmatch(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)", text.strip())
    if match is None:
        raise ValueError(f"not a DICOM tag: {text!r}")
    return int(match.group(1) + match.group(2), 16)


def policy_from_json(raw: bytes) -> Policy:
    """Build a ``Policy`` from the JSON document's bytes."""
    data = json.loads(raw)

    def tags(table: str) -> frozenset[int]:
        return frozenset(parse_tag(row[0]) for row in data[table])

    source = str(data["source"])
    # "radiopaedia/dicom-anonymiser v0.5.2 (commit ...)" -> "dicom-anonymiser v0.5.2".
    named = re.match(r"(?:[\w.-]+/)?([\w.-]+) (v[\w.-]+)", source)
    name = f"{named.group(1)} {named.group(2)}" if named else "policy"
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return Policy(
        source=source,
        version=f"{name}+{digest}",
        keep=tags("keep"),
        blank_or_fixed=tags("blank_or_fixed"),
        uid_rehash=tags("uid_rehash"),
        sequences_removed=tags("sequences_removed"),
    )


@lru_cache(maxsize=1)
def load_policy() -> Policy:
    """The policy shipped with casesync (read once per process)."""
    raw = resources.files("casesync.phi").joinpath(POLICY_FILE).read_bytes()
    return policy_from_json(raw)
