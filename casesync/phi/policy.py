"""Radiopaedia's anonymiser policy (format 2) and what it would do to a dataset.

The policy is data, loaded from the JSON shipped beside this module and never retyped in code:
updating the JSON is the whole upgrade (and changes ``Policy.version``, part of the gate's
cache keys). ``changes`` is the one reading of its semantics (phi-rules.md, "How the policy
treats a file"): the gate, ``anonymise`` and the emulator's server check all ask it, so they
cannot disagree about what the server would reject.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias

if TYPE_CHECKING:  # pydicom is imported where a header is read: validate and plan may need none
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.dataset import Dataset

POLICY_FILE = "radiopaedia-anonymiser-policy.json"

# The policy leaves UIDs with this prefix unchanged and hashes every other one.
UID_PREFIX = "1.2.826.0.1.3680043.10.341.512."

# The one switch: today the server rejects SOPInstanceUID in the dataset even when prefixed, so
# anonymise writes it only in the file meta header and the gate fails files that carry it.
SOP_INSTANCE_UID_IN_DATASET = False

SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
SLICE_LOCATION = 0x00201041
RECOGNIZABLE_FEATURES = 0x00280302
SLICE_LOCATION_MAX = 16

# Values of these VRs are numbers or bytes: any stored byte is a value (US 0 is not empty).
BINARY_VRS = frozenset(
    {"AT", "FD", "FL", "OB", "OD", "OF", "OL", "OV", "OW", "SL", "SS", "SV", "UL", "UN", "US", "UV"}
)

# What the server's own parser reads: the three uncompressed syntaxes and the encapsulated ones
# it lists. Anything else (deflate above all) is misread as explicit VR little endian.
DEFLATED_SYNTAXES = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"})
SERVER_READABLE_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
    | {f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91, 92, 93, 94)}
    | {"1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103"}
    | {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.6.1"}
)

# The VRs the server's parser knows; an element of any other VR (OF, OD, OL, OV, SV, UV) makes
# it fail on the whole file ("Invalid vr type OF"), even where the policy keeps the element.
SERVER_READABLE_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OW"}
    | {"PN", "SH", "SL", "SQ", "SS", "ST", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT"}
)

Action = Literal["keep", "remove", "replace", "regenerate"]
ChangeKind = Literal[
    "removed", "replaced", "regenerated", "stamped", "clipped", "refused", "unreadable"
]


class Rule(NamedTuple):
    """One tag's rule; ``value`` is the exact replacement (empty tuple: emptied)."""

    action: Action
    value: tuple[str, ...] = ()


REMOVE = Rule("remove")
UNREADABLE_VR = "VR {}: the server's parser cannot read the file at all"


class Change(NamedTuple):
    """One element the anonymiser (or the server around it) would change or refuse.

    ``reason`` never holds the element's value: only the policy's own, which is not PHI.
    """

    tag: int
    kind: ChangeKind
    reason: str


@dataclass(frozen=True)
class Policy:
    """The catch-all rules, the per-SOP-class overrides and the stamp, with integer tags."""

    source: str
    version: str
    catch_all: Mapping[int, Rule]
    overrides: Mapping[str, Mapping[int, Rule]]
    stamped: Mapping[int, str]
    uid_prefix: str = UID_PREFIX
    _merged: dict[str, Mapping[int, Rule]] = field(default_factory=dict, compare=False, repr=False)

    def rules_for(self, sop_class: str) -> Mapping[int, Rule]:
        """catch_all with ``sop_class``'s overrides laid over it (cached per class)."""
        rules = self._merged.get(sop_class)
        if rules is None:
            rules = {**self.catch_all, **self.overrides.get(sop_class, {})}
            self._merged[sop_class] = rules
        return rules


def parse_tag(text: str) -> int:
    """``"00080020"`` (the DICOM JSON model's spelling) -> ``0x00080020``."""
    if re.fullmatch(r"[0-9A-F]{8}", text) is None:
        raise ValueError(f"not a DICOM tag: {text!r}")
    return int(text, 16)


def _rule(raw: Mapping[str, object]) -> Rule:
    action = raw["action"]
    if action not in ("keep", "remove", "replace", "regenerate"):
        raise ValueError(f"unknown policy action {action!r}")
    values = raw.get("value") or []
    assert isinstance(values, list)
    value = tuple(str(item) for item in values)
    return Rule(action, () if value == ("",) else value)


def _rules(table: Mapping[str, Mapping[str, object]]) -> dict[int, Rule]:
    return {parse_tag(tag): _rule(rule) for tag, rule in table.items()}


def policy_from_json(raw: bytes) -> Policy:
    """Build a ``Policy`` from the JSON document's bytes (format 2 only)."""
    data = json.loads(raw)
    if data.get("format") != 2:
        raise ValueError(f"unsupported anonymiser policy format {data.get('format')!r}")
    if data["default"] != {"action": "remove"}:
        raise ValueError("the policy's default rule is not 'remove'")
    source = str(data["source"])
    named = re.search(r"package ([\w.-]+) (\d[\w.-]*)", source)
    name = f"{named.group(1)} {named.group(2)}" if named else "policy"
    return Policy(
        source=source,
        version=f"{name}+{hashlib.sha256(raw).hexdigest()[:8]}",
        catch_all=_rules(data["catch_all"]),
        overrides={uid: _rules(table) for uid, table in data["class_overrides"].items()},
        stamped={parse_tag(tag): str(value) for tag, value in data["stamped"].items()},
    )


@lru_cache(maxsize=1)
def load_policy() -> Policy:
    """The policy shipped with casesync (read once per process)."""
    raw = resources.files("casesync.phi").joinpath(POLICY_FILE).read_bytes()
    return policy_from_json(raw)


Element: TypeAlias = "DataElement | RawDataElement"


def element_vr(element: Element) -> str:
    """The element's VR as stored, else the dictionary's (implicit VR files), else UN."""
    return str(element.VR) if element.VR else _dictionary_vr(int(element.tag))


def _dictionary_vr(tag: int) -> str:
    """The dictionary's VR; of an ambiguous one ("OB or OW", "US or SS") the first."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def element_text(element: Element) -> str:
    """A string element's value as the anonymiser's parser sees it: trailing padding dropped."""
    if isinstance(element, tuple):  # a RawDataElement (a NamedTuple; DataElement is a class)
        raw = element.value or b""
        return raw.decode("latin-1").rstrip(" \x00") if isinstance(raw, bytes) else str(raw)
    value = element.value
    if value is None:
        return ""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    else:
        text = "\\".join(str(item) for item in value)
    return text.rstrip(" \x00")


def is_empty(element: Element, vr: str) -> bool:
    """Empty as the anonymiser compares values: binary VRs by length, strings by text.

    A US of 0, an FD of 0.0 or a PN of carets only are values, not emptiness.
    """
    if vr == "SQ":
        return element.value is None or len(element.value) == 0
    if vr in BINARY_VRS:
        value = element.value
        if value is None:
            return True
        if isinstance(value, bytes | bytearray | str | list | tuple):
            return len(value) == 0
        return False
    return not element_text(element)


def _replace_change(tag: int, element: Element, vr: str, value: tuple[str, ...]) -> str | None:
    if not value:
        return None if is_empty(element, vr) else "would be emptied"
    wanted = "\\".join(value)
    if vr in BINARY_VRS or vr == "SQ" or element_text(element) != wanted:
        return f"would be replaced with {wanted}"
    return None


def _uid_change(element: Element, vr: str, prefix: str) -> str | None:
    if is_empty(element, vr):
        return "empty UID: the anonymiser would write a new one"
    if vr in BINARY_VRS or not element_text(element).startswith(prefix):
        return "UID not in the Radiopaedia namespace: it would be regenerated"
    return None


def sop_class_of(ds: Dataset) -> str:
    """The dataset's SOPClassUID as text ('' when absent)."""
    element = ds.get_item(SOP_CLASS_UID)
    return "" if element is None else element_text(element).strip()


def changes(
    ds: Dataset, *, unread: Iterable[int] = (), policy: Policy | None = None
) -> list[Change]:
    """Every top-level element the anonymiser would change, add or refuse, in tag order.

    An empty list means ``ds`` is a fixed point and the server accepts it. ``unread`` are the
    tags of elements present whose values were skipped (pixel data): only kept or removed.
    The file meta group is never looked at, nor are items inside sequences.
    """
    policy = policy or load_policy()
    rules = policy.rules_for(sop_class_of(ds))
    found: list[Change] = []
    for tag in unread:
        vr = _dictionary_vr(tag)
        if vr not in SERVER_READABLE_VRS:
            found.append(Change(tag, "unreadable", UNREADABLE_VR.format(vr)))
        elif rules.get(tag, REMOVE).action != "keep":
            found.append(Change(tag, "removed", "would be removed"))
    for element in ds.values():  # as stored: parsing each value is the slow part
        tag = int(element.tag)
        change = _element_change(tag, element, rules.get(tag, REMOVE), policy)
        if change is not None:
            found.append(change)
    for tag, value in policy.stamped.items():
        element = ds.get_item(tag)
        if element is None or element_text(element) != value:
            found.append(Change(tag, "stamped", f"would be set to {value}"))
    return sorted(found)


def _element_change(tag: int, element: Element, rule: Rule, policy: Policy) -> Change | None:
    """What the policy (then the validator, the stamp and the clipping) does to one element."""
    if tag in policy.stamped:
        return None  # judged once, after the rules, like the anonymiser's stamp
    vr = element_vr(element)
    if vr not in SERVER_READABLE_VRS:
        return Change(tag, "unreadable", UNREADABLE_VR.format(vr))
    if tag == SOP_INSTANCE_UID and not SOP_INSTANCE_UID_IN_DATASET:
        return Change(
            tag,
            "refused",
            "the server rejects SOPInstanceUID in the dataset even inside its namespace; "
            "keep it only in the file meta header",
        )
    if rule.action == "remove":
        return Change(tag, "removed", "would be removed")
    if rule.action == "replace":
        why = _replace_change(tag, element, vr, rule.value)
        return None if why is None else Change(tag, "replaced", why)
    if rule.action == "regenerate":
        why = _uid_change(element, vr, policy.uid_prefix)
        return None if why is None else Change(tag, "regenerated", why)
    if vr in ("PN", "AS") and not is_empty(element, vr):
        what = "a person's name" if vr == "PN" else "an age"
        return Change(tag, "refused", f"{what}: the anonymiser refuses the file")
    if tag == RECOGNIZABLE_FEATURES and element_text(element).strip().upper() == "YES":
        return Change(tag, "refused", "YES: the anonymiser refuses the file")
    if tag == SLICE_LOCATION and any(
        len(part) > SLICE_LOCATION_MAX for part in element_text(element).split("\\")
    ):
        return Change(tag, "clipped", f"longer than {SLICE_LOCATION_MAX} characters: clipped")
    return None
