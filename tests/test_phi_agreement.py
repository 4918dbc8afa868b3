"""The gate and the emulator's server-side check, run over one corpus, must agree.

The emulator's check (casesync/emulator/anonymiser_check.py) asks the same policy module as
the gate; the gate adds the identity rules of phi-rules.md around it. Where the gate is deliberately stricter than the server, the rule is listed in
GATE_STRICTER with the reason, and nothing else may differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from phifactory import KEY, pydicom_data_dir, rule_hitting_files

from casesync.emulator.anonymiser_check import first_violation
from casesync.phi.anonymise import anonymise_tree
from casesync.phi.gate import FileReport, check_files

GATE_STRICTER = {
    "preamble": "the server's anonymiser reads the dataset, never the 128-byte preamble",
    "meta-uid": "the policy leaves the file meta group alone, so the server never checks it",
    "private-meta": "as meta-uid: the server never reads the file meta group",
    "burned-in-annotation": "the server's documented refusals do not include it; we ask for "
    "'burned_in_annotation: reviewed' because the header cannot see burned-in names",
    "unsupported-object": "the server only checks files with a DICM marker, and some non-image "
    "objects have no offending top-level element; we never upload them",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """(every file checked, the files anonymise wrote)."""
    root = tmp_path_factory.mktemp("agreement")
    built = root / "built"
    built.mkdir()
    rule_files = rule_hitting_files(built)
    anonymise_tree(pydicom_data_dir(), root / "anon", KEY)
    anonymise_tree(built, root / "anon-built", KEY)
    written = sorted(p for p in root.glob("anon*/**/*") if p.is_file())
    originals = sorted(p for p in pydicom_data_dir().rglob("*") if p.is_file())
    return originals + rule_files + written, written


def test_the_server_accepts_everything_anonymise_writes(
    corpus: tuple[list[Path], list[Path]],
) -> None:
    _, written = corpus
    assert len(written) > 90
    rejected = {str(p): first_violation(p.read_bytes()) for p in written}
    assert {path: why for path, why in rejected.items() if why} == {}


def test_gate_and_server_agree_except_where_the_gate_is_stricter(
    corpus: tuple[list[Path], list[Path]],
) -> None:
    files, _ = corpus
    disagreements = []
    stricter_used = set()
    for report in check_files(files):
        server = first_violation(report.path.read_bytes())
        errors = _error_rules(report)
        if server is not None and report.passed:
            disagreements.append(f"{report.path}: server rejects ({server}), gate passes")
        elif server is None and not report.passed:
            unexplained = errors - GATE_STRICTER.keys()
            stricter_used |= errors & GATE_STRICTER.keys()
            if unexplained:
                disagreements.append(f"{report.path}: gate fails {unexplained}, server accepts")
    assert disagreements == []
    assert stricter_used == GATE_STRICTER.keys()  # every listed difference is real


def _error_rules(report: FileReport) -> set[str]:
    return {finding.rule for finding in report.findings if finding.severity == "error"}
