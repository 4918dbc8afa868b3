"""What the gate reports: findings per file, and their summary per (rule, tag)."""

from __future__ import annotations

import re
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
    """One rule across many files: the tags it hit, how many files, one file to look at.

    ``reason`` is without the anonymise advice, which is in ``advice`` so a report can give it
    once at the end instead of on every line.
    """

    rule: str
    severity: Severity
    tags: tuple[str, ...]  # "Keyword (gggg,eeee)" labels, person names and IDs first
    reason: str
    count: int
    example: Path
    advice: str | None = None


# Said once for a rule whose tags have different reasons (one line covers all of them).
RULE_TEXT = {
    "not-fixed-point": "Radiopaedia's anonymiser would remove, empty or rewrite these elements, "
    "so the server would reject the series",
    "person-name": "person names; the server refuses any name",
    "age-string": "age strings; the server refuses any (put the age in the case instead)",
}
ADVICE_START = "run 'casesync anonymise"
NAME_VRS = ("PN", "AS")
NAME_RULES = ("person-name", "age-string")
PATIENT_GROUP = 0x0010
# Identifiers outside the patient group (0010,xxxx) that name a patient's visit or study.
IDENTIFIERS = frozenset(
    {
        0x00080050,  # AccessionNumber
        0x00200010,  # StudyID
        0x00380010,  # AdmissionID
        0x00400009,  # ScheduledProcedureStepID
        0x00400253,  # PerformedProcedureStepID
        0x00401001,  # RequestedProcedureID
    }
)
TAG_IN_LABEL = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4}|xxxx)\)$")


def split_advice(reason: str) -> tuple[str, str | None]:
    """``"must be empty; run 'casesync anonymise ...'"`` -> the reason, and the advice."""
    head, _, tail = reason.rpartition("; ")
    return (head, tail) if head and tail.startswith(ADVICE_START) else (reason, None)


def tag_rank(label: str | None, rule: str) -> int:
    """Who a tag can identify, most direct first: 0 the patient's name or age, 1 other names
    and ages, 2 the patient module (IDs, birth date...), 3 other IDs (accession number...),
    4 the rest (tag-less findings included)."""
    found = TAG_IN_LABEL.search(label or "")
    if found is None or found.group(2) == "xxxx":
        return 1 if rule in NAME_RULES else 4
    from pydicom.datadict import dictionary_VR  # only when there are findings to rank

    group = int(found.group(1), 16)
    tag = group << 16 | int(found.group(2), 16)
    try:
        name = rule in NAME_RULES or dictionary_VR(tag) in NAME_VRS
    except KeyError:
        name = rule in NAME_RULES
    if name:
        return 0 if group == PATIENT_GROUP else 1
    if group == PATIENT_GROUP:
        return 2
    return 3 if tag in IDENTIFIERS else 4


def summarize(reports: Sequence[FileReport]) -> list[RuleSummary]:
    """One entry per rule (per reason for findings without a tag, such as unsupported files):
    errors first, then the rules that hit person names and IDs, else in the order first seen.
    ``count`` is the number of files; tags are ordered the same way."""
    groups: dict[tuple[str, str, str | None], list[tuple[Finding, Path]]] = {}
    for report in reports:
        for finding in report.findings:
            key = (finding.rule, finding.severity, None if finding.tag else finding.reason)
            groups.setdefault(key, []).append((finding, report.path))
    return sorted((_summary(members) for members in groups.values()), key=_order)


def _summary(members: list[tuple[Finding, Path]]) -> RuleSummary:
    first = members[0][0]
    tags = sorted(
        dict.fromkeys(finding.tag for finding, _ in members if finding.tag),
        key=lambda tag: tag_rank(tag, first.rule),
    )
    split = [split_advice(finding.reason) for finding, _ in members]
    reasons = list(dict.fromkeys(text for text, _ in split))
    reason = reasons[0] if len(reasons) == 1 else RULE_TEXT.get(first.rule, " / ".join(reasons))
    advice = next((advice for _, advice in split if advice), None)
    files = list(dict.fromkeys(path for _, path in members))
    return RuleSummary(
        first.rule, first.severity, tuple(tags), reason, len(files), files[0], advice
    )


def _order(summary: RuleSummary) -> tuple[bool, int]:
    ranks = [tag_rank(tag, summary.rule) for tag in summary.tags] or [tag_rank(None, summary.rule)]
    return summary.severity != "error", min(ranks)
