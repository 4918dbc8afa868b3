"""Render gate results for ``check-phi``: text grouped by folder, JSON per file. Never values."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from casesync.files.formats import sniff_file
from casesync.phi.findings import FileReport, summarize


def render_text(
    reports: Sequence[FileReport], group_of: Callable[[Path], str] = lambda p: str(p.parent)
) -> str:
    """One line per (group, rule, tag): severity, count of files, one example, the reason."""
    groups: dict[str, list[FileReport]] = {}
    for report in reports:
        groups.setdefault(group_of(report.path), []).append(report)
    lines = []
    for group, members in groups.items():
        for summary in summarize(members):
            tag = f" {summary.tag}" if summary.tag else ""
            lines.append(
                f"{group}: {summary.severity} [{summary.rule}]{tag}: {summary.count} file(s), "
                f"e.g. {summary.example.name}: {summary.reason}"
            )
    failed = sum(not report.passed for report in reports)
    warned = sum(report.passed and bool(report.findings) for report in reports)
    lines.append(f"{len(reports)} file(s) checked: {failed} failed, {warned} passed with warnings.")
    return "\n".join(lines) + "\n"


def render_json(reports: Sequence[FileReport]) -> str:
    """Every file with every finding (rule, severity, tag, reason)."""
    files = [
        {
            "path": str(report.path),
            "passed": report.passed,
            "findings": [vars(finding) for finding in report.findings],
        }
        for report in reports
    ]
    failed = sum(not report.passed for report in reports)
    return json.dumps({"files": files, "checked": len(reports), "failed": failed}, indent=2) + "\n"


# In folders, files that are neither images by their bytes nor named like DICOM (case.yaml,
# README.md, ...) are not checked; files named on the command line always are.
DICOM_LIKE_SUFFIXES = ("", ".dcm", ".dicom", ".ima")


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given, plus every non-hidden image-like file under each folder, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    child
                    for child in path.rglob("*")
                    if child.is_file()
                    and not any(part.startswith(".") for part in child.relative_to(path).parts)
                    and _image_like(child)
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _image_like(path: Path) -> bool:
    return path.suffix.lower() in DICOM_LIKE_SUFFIXES or sniff_file(path) is not None
