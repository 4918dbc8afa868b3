"""The client's and the emulator's vocabularies are written separately; both must match the protocol."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from casesync.api import vocab as client
from casesync.emulator import vocabulary as emulator

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def _section(title: str) -> str:
    text = PROTOCOL.read_text(encoding="utf-8")
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _numbered(paragraph_start: str) -> dict[int, str]:
    paragraph = _section("Vocabularies").split(paragraph_start, 1)[1].split("\n\n", 1)[0]
    paragraph = paragraph.split("(", 1)[0] if paragraph_start.startswith("Systems") else paragraph
    pairs = re.findall(r"(\d+) ([A-Z][^,.\d]*[a-zA-Z])", paragraph.replace("\n", " "))
    return {int(number): name.strip() for number, name in pairs}


def protocol_systems() -> dict[int, str]:
    return _numbered("Systems (`system_id`):")


def protocol_certainties() -> dict[int, str]:
    return _numbered("Diagnostic certainty (`diagnostic_certainty_id`):")


def protocol_modalities() -> list[str]:
    paragraph = _section("Vocabularies").split("Study modalities", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"`([^`]+)`", paragraph.split(":", 1)[1])


def test_the_protocol_parses_into_the_published_lists() -> None:
    assert len(protocol_systems()) == 20 and protocol_systems()[7] == "Head & Neck"
    assert protocol_certainties() == {
        1: "Possible",
        2: "Probable",
        3: "Almost Certain",
        4: "Certain",
        5: "Not applicable",
    }
    assert len(protocol_modalities()) == 12 and "DSA (angiography)" in protocol_modalities()


@pytest.mark.parametrize("side", [client, emulator], ids=["client", "emulator"])
def test_each_side_matches_the_protocol(side: object) -> None:
    assert protocol_systems() == side.SYSTEMS  # type: ignore[attr-defined]
    assert protocol_certainties() == side.DIAGNOSTIC_CERTAINTIES  # type: ignore[attr-defined]
    assert set(side.MODALITIES) == set(protocol_modalities())  # type: ignore[attr-defined]


def test_the_emulator_does_not_import_the_client_vocabulary() -> None:
    sources = (Path(emulator.__file__).parent).glob("*.py")
    offenders = [p.name for p in sources if "api.vocab" in p.read_text(encoding="utf-8")]
    assert offenders == []
