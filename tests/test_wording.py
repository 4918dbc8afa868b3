"""Plurals, hints and GitHub workflow commands: the small rules every message follows."""

from __future__ import annotations

import pytest

from casesync.errors import ConfigError
from casesync.wording import github_command, plural, with_hint


@pytest.mark.parametrize(
    ("count", "word", "said"),
    [
        (1, "file", "1 file"),
        (0, "file", "0 files"),
        (2, "study", "2 studies"),
        (1, "study", "1 study"),
        (3, "series", "3 series"),
        (1, "image", "1 image"),
    ],
)
def test_plural(count: int, word: str, said: str) -> None:
    assert plural(count, word) == said


def test_a_hint_with_its_own_parentheses_never_doubles_them() -> None:
    described = "Case title as shown on Radiopaedia (at most 120 characters)."
    text = with_hint("title: is 130 characters, over the limit of 120", described)
    assert text.endswith("; Case title as shown on Radiopaedia (at most 120 characters)")
    assert ").)" not in text and "))" not in text
    assert with_hint("unknown modality", "did you mean 'CT'?") == (
        "unknown modality (did you mean 'CT'?)"
    )
    assert with_hint("unknown modality 'Xray' (matched literally)", "did you mean 'X-ray'?") == (
        "unknown modality 'Xray' (matched literally); did you mean 'X-ray'?"
    )
    assert (
        str(ConfigError("bad", hint="see the README (Install).")) == "bad; see the README (Install)"
    )


def test_github_commands_escape_data_and_properties() -> None:
    line = github_command(
        "error",
        "100% wrong\nsecond line\r",
        file="cases/a,b:c/case.yaml",
        line=3,
        col=7,
        title="schema-max-length",
    )
    assert line == (
        "::error file=cases/a%2Cb%3Ac/case.yaml,line=3,col=7,title=schema-max-length"
        "::100%25 wrong%0Asecond line%0D\n"
    )
    assert github_command("warning", "x", case="ct-01") == "::warning::ct-01: x\n"
