"""The shipped examples: every case validates cleanly, and the images are what the script makes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from casesync.project.validate import validate_project

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def make_examples() -> Iterator[ModuleType]:
    sys.path.insert(0, str(EXAMPLES / "tools"))
    try:
        import make_examples

        yield make_examples
    finally:
        sys.path.remove(str(EXAMPLES / "tools"))


def test_every_example_validates_without_errors_or_warnings(tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    result = validate_project(root)
    assert [str(p) for p in result.problems] == []
    assert result.manifest is not None
    assert {case.key for case in result.manifest.cases} == {
        "vertebral-haemangioma",
        "vestibular-schwannoma",
        "coin-ingestion",
    }
    modalities = {s.modality for c in result.manifest.cases for s in c.studies}
    assert modalities == {"CT", "MRI", "X-ray", "Photograph"}
    assert result.phi_reports == []  # not even a warning
    assert len(result.facts) == 46


def test_committed_images_are_what_make_examples_writes(
    tmp_path: Path, make_examples: object
) -> None:
    """Fails when anonymise or the generator changed: rerun examples/tools/make_examples.py."""
    make_examples.build(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(EXAMPLES / "cases")
        for p in (EXAMPLES / "cases").rglob("*")
        if p.is_file() and p.name != "case.yaml"
    )
    assert written == committed
    for relpath in written:
        assert (tmp_path / relpath).read_bytes() == (EXAMPLES / "cases" / relpath).read_bytes(), (
            relpath
        )


def test_examples_stay_small() -> None:
    total = sum(
        p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file() and ".casesync" not in p.parts
    )
    assert total < 5_000_000
