"""Render gate results: ``check-phi`` text grouped by folder, lines for validate's series, JSON
per file. One line per (group, rule), person names and IDs first, the anonymise advice once at
the end. Never values."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from casesync.files.formats import sniff_file
from casesync.phi.findings import FileReport, RuleSummary, summarize

# Tags named on one line; the rest are counted (JSON output lists every one).
SHOWN_TAGS = 6


def tag_list(tags: Sequence[str]) -> str:
    """``"A (0010,0010), B (0010,0020) and 3 more"``."""
    shown = ", ".join(tags[:SHOWN_TAGS])
    return shown + (f" and {len(tags) - SHOWN_TAGS} more" if len(tags) > SHOWN_TAGS else "")


def advice_lines(summaries: Iterable[RuleSummary]) -> list[str]:
    """The fix the lines share, said once instead of on each of them."""
    advice = dict.fromkeys(summary.advice for summary in summaries if summary.advice)
    return [f"to fix the errors above: {text}" for text in advice if text]


def series_line(summary: RuleSummary, files: int, example: str) -> str:
    """How validate names one rule of one series (the location is the series' own)."""
    tags = f" {tag_list(summary.tags)}" if summary.tags else ""
    return (
        f"PHI gate [{summary.rule}]{tags}: {summary.reason}; "
        f"{summary.count} of {files} files, e.g. {example}"
    )


def render_text(
    reports: Sequence[FileReport], group_of: Callable[[Path], str] = lambda p: str(p.parent)
) -> str:
    """One line per (group, rule): severity, tags, count of files, one example, the reason."""
    groups: dict[str, list[FileReport]] = {}
    for report in reports:
        groups.setdefault(group_of(report.path), []).append(report)
    lines = []
    every: list[RuleSummary] = []
    for group, members in groups.items():
        summaries = summarize(members)
        every += summaries
        for summary in summaries:
            tags = f" {tag_list(summary.tags)}" if summary.tags else ""
            lines.append(
                f"{group}: {summary.severity} [{summary.rule}]{tags}: {summary.count} file(s), "
                f"e.g. {summary.example.name}: {summary.reason}"
            )
    lines += advice_lines(every)
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
