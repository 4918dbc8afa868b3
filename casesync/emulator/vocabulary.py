"""The emulator's own copy of Radiopaedia's vocabularies (``vocabulary.json``).

Written from docs/protocol.md and never imported from the client's ``api/vocab.py``: a wrong
modality or system name in either one then fails a test instead of passing both sides.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _load() -> dict[str, Any]:
    raw = resources.files("casesync.emulator").joinpath("vocabulary.json").read_bytes()
    data: dict[str, Any] = json.loads(raw)
    return data


_DATA = _load()
SYSTEMS: dict[int, str] = {int(k): v for k, v in _DATA["systems"].items()}
DIAGNOSTIC_CERTAINTIES: dict[int, str] = {
    int(k): v for k, v in _DATA["diagnostic_certainties"].items()
}
MODALITIES: frozenset[str] = frozenset(_DATA["modalities"])
GENDERS: frozenset[str] = frozenset(_DATA["genders"])
