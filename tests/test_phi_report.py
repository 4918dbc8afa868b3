"""How gate results read: one line per (group, rule), names and IDs first, the advice once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
from phifactory import bundled

from casesync.phi.findings import FileReport, Finding, split_advice, summarize, tag_rank
from casesync.phi.gate import check_file, check_files
from casesync.phi.report import SHOWN_TAGS, render_json, render_text, tag_list

ADVICE = "run 'casesync anonymise SRC DST' and point the manifest at DST"


def raw_ct_values() -> list[str]:
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    return [str(ds.PatientName), str(ds.PatientID), str(ds.InstitutionName), str(ds.StudyDate)]


def test_a_raw_file_gives_one_line_per_rule_names_first_and_the_advice_once(
    tmp_path: Path,
) -> None:
    shutil.copy(bundled("CT_small.dcm"), tmp_path / "ct.dcm")
    findings = check_file(tmp_path / "ct.dcm").findings
    rules = {(finding.rule, finding.severity) for finding in findings}
    text = render_text(check_files([tmp_path / "ct.dcm"]))
    lines = text.splitlines()
    assert len(lines) == len(rules) + 2  # one per rule, the advice, the count
    assert len(lines) < len({(f.rule, f.tag) for f in findings}) // 2  # not one per tag
    assert lines[0].startswith(f"{tmp_path}: error [person-name] PatientName (0010,0010)")
    assert lines[1].startswith(f"{tmp_path}: error [age-string] PatientAge (0010,1010)")
    assert " [not-fixed-point] PatientID (0010,0020), " in lines[2]
    assert lines[-2] == f"to fix the errors above: {ADVICE}"
    assert text.count("casesync anonymise SRC DST") == 1
    assert lines[-1] == "1 file(s) checked: 1 failed, 0 passed with warnings."
    severities = [line.split(": ", 1)[1].split(" ")[0] for line in lines[:-2]]
    assert severities == sorted(severities)  # errors, then warnings
    assert not [value for value in raw_ct_values() if value and value in text]


def test_json_still_lists_every_file_and_every_finding(tmp_path: Path) -> None:
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(bundled("CT_small.dcm"), tmp_path / name)
    reports = check_files([tmp_path / "a.dcm", tmp_path / "b.dcm"])
    document = json.loads(render_json(reports))
    assert [entry["path"] for entry in document["files"]] == [str(r.path) for r in reports]
    assert [len(entry["findings"]) for entry in document["files"]] == [
        len(r.findings) for r in reports
    ]
    assert not [value for value in raw_ct_values() if value and value in json.dumps(document)]


def finding(rule: str, tag: str | None, reason: str = "why", severity: str = "error") -> Finding:
    return Finding(rule, severity, tag, reason)  # type: ignore[arg-type]


def test_summaries_put_names_then_ids_first_and_count_files() -> None:
    one = FileReport(
        Path("s/1.dcm"),
        (
            finding("lo-value", "ContrastBolusAgent (0018,0010)", severity="warning"),
            finding("not-fixed-point", "StudyDate (0008,0020)", f"must be empty; {ADVICE}"),
            finding("not-fixed-point", "AccessionNumber (0008,0050)", f"must be empty; {ADVICE}"),
            finding("not-fixed-point", "PatientID (0010,0020)", f"must be empty; {ADVICE}"),
            finding("person-name", "ReferringPhysicianName (0008,0090)", "a name"),
            finding("person-name", "PatientName (0010,0010)", "a name"),
        ),
    )
    two = FileReport(
        Path("s/2.dcm"), (finding("not-fixed-point", "Private tags (0009,xxxx)", "removed"),)
    )
    summaries = summarize([one, two])
    assert [s.rule for s in summaries] == ["person-name", "not-fixed-point", "lo-value"]
    names, fixed, _ = summaries
    assert names.tags == ("PatientName (0010,0010)", "ReferringPhysicianName (0008,0090)")
    assert fixed.tags[:2] == ("PatientID (0010,0020)", "AccessionNumber (0008,0050)")
    assert fixed.tags[2:] == ("StudyDate (0008,0020)", "Private tags (0009,xxxx)")
    assert (fixed.count, fixed.example, fixed.advice) == (2, Path("s/1.dcm"), ADVICE)
    assert ADVICE not in fixed.reason and "must be empty" not in fixed.reason  # reasons differ
    assert (names.count, names.reason, names.advice) == (1, "a name", None)


def test_findings_without_a_tag_are_grouped_by_reason() -> None:
    reports = [
        FileReport(Path("a"), (finding("unsupported-object", None, "a DICOMDIR"),)),
        FileReport(Path("b"), (finding("unsupported-object", None, "truncated"),)),
        FileReport(Path("c"), (finding("unsupported-object", None, "truncated"),)),
    ]
    summaries = summarize(reports)
    assert [(s.reason, s.count, s.example) for s in summaries] == [
        ("a DICOMDIR", 1, Path("a")),
        ("truncated", 2, Path("b")),
    ]


def test_tag_ranks() -> None:
    assert tag_rank("PatientName (0010,0010)", "not-fixed-point") == 0  # a PN is a name
    assert tag_rank("OperatorsName (0008,1070)", "person-name") == 1
    assert tag_rank("PatientBirthDate (0010,0030)", "not-fixed-point") == 2
    assert tag_rank("StudyID (0020,0010)", "not-fixed-point") == 3
    assert tag_rank("StudyDate (0008,0020)", "not-fixed-point") == 4
    assert tag_rank("Private tags (0011,xxxx)", "not-fixed-point") == 4
    assert tag_rank(None, "preamble") == 4


def test_split_advice_and_tag_list() -> None:
    assert split_advice(f"a; b; {ADVICE}") == ("a; b", ADVICE)
    assert split_advice("anonymise drops it") == ("anonymise drops it", None)
    tags = [f"T{n}" for n in range(SHOWN_TAGS + 3)]
    assert tag_list(tags) == ", ".join(tags[:SHOWN_TAGS]) + " and 3 more"
    assert tag_list(tags[:2]) == "T0, T1"
