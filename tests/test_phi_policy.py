"""The policy is loaded from the JSON shipped in the package, as data."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from casesync.phi.policy import UID_PREFIX, load_policy, parse_tag, policy_from_json


def test_tables_load_as_int_tag_sets() -> None:
    policy = load_policy()
    assert (len(policy.keep), len(policy.blank_or_fixed)) == (237, 22)
    assert len(policy.uid_rehash) == 4 and len(policy.sequences_removed) == 9
    assert 0x7FE00010 in policy.keep  # PixelData
    assert 0x00100020 in policy.blank_or_fixed  # PatientID
    assert policy.uid_rehash == {0x00080018, 0x0020000D, 0x0020000E, 0x00200052}
    assert 0x00100010 not in policy.keep  # PatientName is removed


def test_version_names_the_source_and_hashes_the_content() -> None:
    raw = (
        resources.files("casesync.phi").joinpath("radiopaedia-anonymiser-policy.json").read_bytes()
    )
    policy = policy_from_json(raw)
    assert policy.version.startswith("dicom-anonymiser v0.5.2+")
    changed = json.loads(raw)
    changed["keep"] = changed["keep"][:-1]
    assert policy_from_json(json.dumps(changed).encode()).version != policy.version
    assert policy.uid_prefix == UID_PREFIX == "1.2.826.0.1.3680043.10.341.512."


def test_policy_is_frozen() -> None:
    policy = load_policy()
    with pytest.raises(AttributeError):
        policy.version = "other"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["0010,0010", "(0010,001G)", "(10,10)"])
def test_bad_tags_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tag(text)
