"""Renderers over a ``Plan`` and over validation problems: text, JSON and Markdown.

They return strings and never touch the disk or the network. The JSON form is versioned
(``format_version``) and documented in the README; the Markdown form carries a hidden marker
so a CI job can update one pull-request comment in place.
"""

from __future__ import annotations

import html
import json
from typing import Any

from casesync.project.yamlload import Problem
from casesync.sync.plan import (
    PLAN_FORMAT_VERSION,
    Action,
    CasePlan,
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    Plan,
    PlanWarning,
)

MARKDOWN_MARKER = "<!-- casesync-plan -->"
PLAN_FORMATS = ("text", "json", "markdown")


def human_bytes(count: int) -> str:
    """1.4 GB style (decimal units, like most upload tools)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


IRREGULAR_PLURALS = {"study": "studies", "series": "series"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else IRREGULAR_PLURALS.get(word, word + 's')}"


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        text = "No changes. The remote cases match the manifests."
        return (
            text if not plan.warning_count else f"{text} {_plural(plan.warning_count, 'warning')}."
        )
    return (
        f"Plan: {_plural(plan.count(CreateCase), 'case')}, "
        f"{_plural(plan.count(CreateStudy), 'study')}, "
        f"{_plural(plan.count(CreateSeries), 'series')} to create, "
        f"{_plural(plan.upload_files, 'file')} ({human_bytes(plan.upload_bytes)}) to upload, "
        f"{_plural(plan.warning_count, 'warning')}."
    )


def describe_action(action: Action) -> str:
    if isinstance(action, CreateCase):
        return f"create case {action.title!r}"
    if isinstance(action, CreateStudy):
        caption = f" {action.caption!r}" if action.caption else ""
        where = f"(position {action.position})"
        return f"create study {action.study_index + 1}: {action.modality}{caption} {where}"
    if isinstance(action, CreateSeries):
        label = ", ".join(x for x in (action.perspective, action.specifics) if x) or "series"
        upload = (
            f"upload {_plural(action.upload_files, 'file')} ({human_bytes(action.upload_bytes)})"
            if action.upload_files
            else "all files already on the server"
        )
        return (
            f"create series {action.study_index + 1}.{action.series_index + 1}: {label}: "
            f"{_plural(action.image_count, 'image')} ({action.image_format}), "
            f"root {action.root_index}; {upload}"
        )
    assert isinstance(action, MarkUploadFinished)
    return "mark upload finished"


def render_text(plan: Plan) -> str:
    lines = [f"casesync plan for {plan.api_url}", ""]
    for case in plan.cases:
        if not case.actions and not case.warnings:
            continue
        symbol = "+" if case.case_id is None else "~"
        remote = "" if case.case_id is None else f" (id {case.case_id})"
        lines.append(f"{symbol} case {case.key}{remote}: {case.title}")
        lines.extend(f"    + {describe_action(action)}" for action in case.actions)
        lines.extend(f"    ! {warning.message}" for warning in case.warnings)
        lines.append("")
    lines.extend(f"! {warning.message}" for warning in plan.warnings)
    if plan.warnings:
        lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The stable JSON document (format_version 1) for scripts and ``apply --plan``."""
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "api_url": plan.api_url,
        "inputs_digest": plan.inputs_digest,
        "has_changes": plan.has_changes,
        "summary": {
            "cases_to_create": plan.count(CreateCase),
            "studies_to_create": plan.count(CreateStudy),
            "series_to_create": plan.count(CreateSeries),
            "files_to_upload": plan.upload_files,
            "bytes_to_upload": plan.upload_bytes,
            "warnings": plan.warning_count,
        },
        "cases": [_case_dict(case) for case in plan.cases],
        "warnings": [_warning_dict(w) for w in plan.warnings],
    }


def _case_dict(case: CasePlan) -> dict[str, Any]:
    return {
        "key": case.key,
        "title": case.title,
        "case_id": case.case_id,
        "actions": [_action_dict(action) for action in case.actions],
        "warnings": [_warning_dict(w) for w in case.warnings],
    }


def _action_dict(action: Action) -> dict[str, Any]:
    if isinstance(action, CreateCase):
        return {"action": "create_case", "title": action.title}
    if isinstance(action, CreateStudy):
        return {
            "action": "create_study",
            "study": action.study_index + 1,
            "modality": action.modality,
            "caption": action.caption,
            "position": action.position,
        }
    if isinstance(action, CreateSeries):
        return {
            "action": "create_series",
            "study": action.study_index + 1,
            "series": action.series_index + 1,
            "study_id": action.study_id,
            "images": action.image_count,
            "image_format": action.image_format,
            "root_index": action.root_index,
            "perspective": action.perspective,
            "specifics": action.specifics,
            "files_to_upload": action.upload_files,
            "bytes_to_upload": action.upload_bytes,
        }
    return {"action": "mark_upload_finished"}


def _warning_dict(warning: PlanWarning) -> dict[str, Any]:
    return {"code": warning.code, "message": warning.message, "fields": list(warning.fields)}


def render_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True) + "\n"


def _md(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


MARKDOWN_BUDGET = 60_000  # a GitHub comment holds 65,536 characters; leave room for the rest
_COLLAPSED_NOTE = (
    "The plan is too long for one comment: the cases below are summarised. "
    "The full plan is in the job log (and in the JSON plan)."
)


def render_markdown(plan: Plan, max_chars: int = MARKDOWN_BUDGET) -> str:
    """The plan for a pull-request comment, at most ``max_chars`` characters long.

    Cases are shown in full while they fit; the rest collapse into one summary table (key,
    title, counts), itself cut short with a count of what is left out if even that is too long.
    """
    head = [MARKDOWN_MARKER, f"**{_md(summary_line(plan))}**", ""]
    tail = [f"- ⚠️ {_md(w.message)}" for w in plan.warnings]
    shown = [case for case in plan.cases if case.actions or case.warnings]
    # room kept for the summary table's header and note, so collapsing always fits
    reserve = len(_COLLAPSED_NOTE) + 200
    budget = max_chars - _length(head) - _length(tail) - reserve
    body: list[str] = []
    for index, case in enumerate(shown):
        section = _case_section(case)
        if _length(body) + _length(section) > budget:
            body += _collapsed_table(shown[index:], budget + reserve - _length(body))
            break
        body += section
    return "\n".join(head + body + tail).rstrip() + "\n"


def _length(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _case_section(case: CasePlan) -> list[str]:
    state = "new case" if case.case_id is None else f"case {case.case_id}"
    return [
        "<details>",
        f"<summary><code>{_md(case.key)}</code> {_md(case.title)} ({state}: "
        f"{len(case.actions)} to do, {_plural(len(case.warnings), 'warning')})</summary>",
        "",
        "| | Action |",
        "|---|---|",
        *(f"| + | {_md(describe_action(a))} |" for a in case.actions),
        *(f"| ⚠️ | {_md(w.message)} |" for w in case.warnings),
        "",
        "</details>",
        "",
    ]


def _collapsed_table(cases: list[CasePlan], room: int) -> list[str]:
    lines = [
        f"**{_plural(len(cases), 'more case')}.** {_COLLAPSED_NOTE}",
        "",
        "| Case | Title | Studies | Series | Files | Warnings |",
        "|---|---|---|---|---|---|",
    ]
    for index, case in enumerate(cases):
        row = (
            f"| `{_md(case.key)}` | {_md(case.title)} | "
            f"{sum(isinstance(a, CreateStudy) for a in case.actions)} | "
            f"{sum(isinstance(a, CreateSeries) for a in case.actions)} | "
            f"{sum(a.upload_files for a in case.actions if isinstance(a, CreateSeries))} | "
            f"{len(case.warnings)} |"
        )
        left = len(cases) - index
        if _length(lines) + len(row) + 1 + 80 > room:
            lines.append(f"| … | and {_plural(left, 'more case')} | | | | |")
            break
        lines.append(row)
    return [*lines, ""]


def render_plan(plan: Plan, fmt: str, max_chars: int = MARKDOWN_BUDGET) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan, max_chars)
    return render_text(plan)


def render_problems_text(problems: list[Problem]) -> str:
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    lines = [str(p) for p in problems]
    lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}.")
    return "\n".join(lines) + "\n"


def render_problems_json(problems: list[Problem]) -> str:
    document = {
        "format_version": 1,
        "valid": not any(p.severity == "error" for p in problems),
        "problems": [
            {
                "file": p.file,
                "line": p.line,
                "col": p.col,
                "severity": p.severity,
                "message": p.message,
                "hint": p.hint,
            }
            for p in problems
        ],
    }
    return json.dumps(document, indent=2) + "\n"
