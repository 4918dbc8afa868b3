"""What the gate reports: findings per file, and their summary per (rule, tag)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from casesync.phi.policy import load_policy

Severity = Literal["error", "warning"]

# Part of every cache key. Bump the leading number whenever a gate rule changes; the policy
# version follows the policy's data by itself.
RULESET_VERSION = f"gate-2;{load_policy().version}"


@dataclass(frozen=True)
class Finding:
    """One broken rule. ``reason`` says why and how to fix it, and never holds the value."""

    rule: str
    severity: Severity
    tag: str | None
    reason: str


@dataclass(frozen=True)
class FileReport:
    path: Path
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        """True when nothing blocks the upload (warnings do not)."""
        return not any(finding.severity == "error" for finding in self.findings)


@dataclass(frozen=True)
class RuleSummary:
    """One (rule, tag) across many files: how many, and one file to look at."""

    rule: str
    severity: Severity
    tag: str | None
    reason: str
    count: int
    example: Path


def summarize(reports: Sequence[FileReport]) -> list[RuleSummary]:
    """One entry per (rule, tag), errors first, in the order first seen; count = files."""
    firsts: dict[tuple[str, str | None], tuple[Finding, Path]] = {}
    counts: dict[tuple[str, str | None], int] = {}
    for report in reports:
        for key in dict.fromkeys((finding.rule, finding.tag) for finding in report.findings):
            counts[key] = counts.get(key, 0) + 1
        for finding in report.findings:
            firsts.setdefault((finding.rule, finding.tag), (finding, report.path))
    summaries = [
        RuleSummary(f.rule, f.severity, f.tag, f.reason, counts[key], example)
        for key, (f, example) in firsts.items()
    ]
    return sorted(summaries, key=lambda summary: summary.severity != "error")
