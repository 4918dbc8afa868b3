"""Renderers over a ``Plan`` and over validation problems: text, JSON and Markdown.

They return strings and never touch the disk or the network. The JSON form is versioned
(``format_version``) and documented in the README; the Markdown form carries a hidden marker
so a CI job can update one pull-request comment in place.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from casesync.problems import Problem
from casesync.settings import MARKDOWN_BUDGET
from casesync.sync.plan import (
    DRIFT_CODES,
    PLAN_FORMAT_VERSION,
    Action,
    Blocked,
    CasePlan,
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    Plan,
    PlanWarning,
)
from casesync.wording import github_command, plural, with_hint

if TYPE_CHECKING:  # status imports the planner and the executor: only its type is needed
    from casesync.sync.remote import QuotaUse, RemoteState
    from casesync.sync.status import StatusReport

MARKDOWN_MARKER = "<!-- casesync-plan -->"
PLAN_FORMATS = ("text", "json", "markdown", "github")


def human_bytes(count: int) -> str:
    """1.4 GB style (decimal units, like most upload tools)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _blocked_count(plan: Plan) -> int:
    return sum(len(case.blocked) for case in plan.cases)


def summary_line(plan: Plan) -> str:
    blocked = _blocked_count(plan)
    if not plan.has_changes:
        text = "No changes. The remote cases match the manifests."
        if blocked:
            text = f"No changes apply can make: {plural(blocked, 'action')} blocked."
        return (
            text if not plan.warning_count else f"{text} {plural(plan.warning_count, 'warning')}."
        )
    return (
        f"Plan: {plural(plan.count(CreateCase), 'case')}, "
        f"{plural(plan.count(CreateStudy), 'study')}, "
        f"{plural(plan.count(CreateSeries), 'series')} to create, "
        f"{plural(plan.upload_files, 'file')} ({human_bytes(plan.upload_bytes)}) to upload, "
        f"{plural(plan.warning_count, 'warning')}"
        + (f", {plural(blocked, 'action')} blocked." if blocked else ".")
    )


def describe_remote(case: CasePlan) -> str:
    """``published, public`` or ``deleted on the site``; empty when the listing was not read."""
    if case.remote is None:
        return ""
    if case.remote.deleted:
        return "deleted on the site"
    return describe_remote_state(case.remote)


def _blocked_lines(blocked: tuple[Blocked, ...]) -> list[str]:
    """Each blocked action, then each distinct reason once."""
    lines = [f"    x blocked: {describe_action(b.action)}" for b in blocked]
    reasons = dict.fromkeys(b.reason for b in blocked)
    return lines + [f"      ({reason})" for reason in reasons]


def describe_action(action: Action) -> str:
    if isinstance(action, CreateCase):
        return f"create case {action.title!r}"
    if isinstance(action, CreateStudy):
        caption = f" {action.caption!r}" if action.caption else ""
        where = f"(position {action.position})"
        return f"create study {action.study_index + 1}: {action.modality}{caption} {where}"
    if isinstance(action, CreateSeries):
        label = ", ".join(x for x in (action.perspective, action.specifics) if x)
        upload = (
            f"upload {plural(action.upload_files, 'file')} ({human_bytes(action.upload_bytes)})"
            if action.upload_files
            else "all files already on the server"
        )
        return (
            f"create series {action.study_index + 1}.{action.series_index + 1}: "
            f"{label + ': ' if label else ''}"
            f"{plural(action.image_count, 'image')} ({action.image_format}), "
            f"root {action.root_index}; {upload}"
        )
    assert isinstance(action, MarkUploadFinished)
    return "mark upload finished"


def render_text(plan: Plan) -> str:
    lines = [f"casesync plan for {plan.api_url}", ""]
    for case in plan.cases:
        if not case.actions and not case.warnings and not case.blocked:
            continue
        symbol = "+" if case.case_id is None else "~"
        about = [f"id {case.case_id}"] if case.case_id is not None else []
        about += [describe_remote(case)] if case.remote is not None else []
        remote = f" ({'; '.join(about)})" if about else ""
        lines.append(f"{symbol} case {case.key}{remote}: {case.title}")
        lines.extend(f"    + {describe_action(action)}" for action in case.actions)
        lines.extend(_blocked_lines(case.blocked))
        lines.extend(f"    ! {warning.message}" for warning in case.warnings)
        lines.append("")
    lines.extend(f"! {warning.message}" for warning in plan.warnings)
    if plan.warnings:
        lines.append("")
    if plan.checked_at is not None:
        lines.append(f"Checked against the site at {plan.checked_at}.")
    if plan.quota is not None:
        lines.append(plan.quota.describe() + ".")
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
        "cases": [_case_dict(case, plan.checked_at is not None) for case in plan.cases],
        "warnings": [_warning_dict(w) for w in plan.warnings],
    } | (_refresh_dict(plan) if plan.checked_at is not None else {})


def _refresh_dict(plan: Plan) -> dict[str, Any]:
    """Keys added by ``plan --refresh`` (format_version 1: new keys only, none changed)."""
    quota = plan.quota
    return {
        "remote_checked_at": plan.checked_at,
        "quota": None if quota is None else quota_dict(quota),
    }


def quota_dict(quota: QuotaUse) -> dict[str, Any]:
    return {
        "login": quota.login,
        "draft_case_count": quota.used,
        "allowed_draft_cases": quota.allowed,
        "can_create": list(quota.can_create),
        "waiting_for_quota": list(quota.waiting),
    }


def _case_dict(case: CasePlan, refreshed: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "key": case.key,
        "title": case.title,
        "case_id": case.case_id,
        "actions": [_action_dict(action) for action in case.actions],
        "warnings": [_warning_dict(w) for w in case.warnings],
    }
    if case.blocked:
        document["blocked"] = [_action_dict(b.action) | {"reason": b.reason} for b in case.blocked]
    if refreshed:
        remote = case.remote
        document["recreate"] = case.recreate
        document["remote"] = (
            None
            if remote is None
            else {
                "status": remote.status,
                "visibility": remote.visibility,
                "title": remote.title,
                "checked_at": remote.checked_at,
            }
        )
    return document


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


_COLLAPSED_NOTE = (
    "The plan is too long for one comment: the cases below are summarised. "
    "The full plan is in the job log (and in the JSON plan)."
)


def render_markdown(plan: Plan, max_chars: int = MARKDOWN_BUDGET) -> str:
    """The plan for a pull-request comment, at most ``max_chars`` characters long.

    Cases are shown in full while they fit; the rest collapse into one summary table (key,
    title, counts), itself cut short with a count of what is left out if even that is too long.
    """
    head = [MARKDOWN_MARKER, f"**{_md(summary_line(plan))}**", "", *_drift_section(plan)]
    tail = [f"- ⚠️ {_md(w.message)}" for w in plan.warnings]
    shown = [case for case in plan.cases if case.actions or case.warnings or case.blocked]
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


def _drift_section(plan: Plan) -> list[str]:
    """``plan --refresh``: what changed on the site, in its own section (nothing otherwise)."""
    if plan.checked_at is None:
        return []
    rows = []
    for case in plan.cases:
        found = [w.message for w in case.warnings if w.code in DRIFT_CODES]
        found += list(dict.fromkeys(b.reason for b in case.blocked))
        if found:
            rows.append(
                f"| `{_md(case.key)}` | {_md(describe_remote(case))} | {_md('; '.join(found))} |"
            )
    lines = ["### Drift on the site", ""]
    if rows:
        lines += ["| Case | On the site | What it means |", "|---|---|---|", *rows]
    else:
        lines.append("None: every recorded case is on the site as the manifests expect.")
    lines.append("")
    if plan.quota is not None:
        lines += [_md(plan.quota.describe()) + ".", ""]
    return lines


def _length(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _case_section(case: CasePlan) -> list[str]:
    state = "new case" if case.case_id is None else f"case {case.case_id}"
    return [
        "<details>",
        f"<summary><code>{_md(case.key)}</code> {_md(case.title)} ({state}: "
        f"{len(case.actions)} to do, {plural(len(case.warnings), 'warning')})</summary>",
        "",
        "| | Action |",
        "|---|---|",
        *(f"| + | {_md(describe_action(a))} |" for a in case.actions),
        *(
            f"| ⛔ | blocked: {_md(describe_action(b.action))} ({_md(b.reason)}) |"
            for b in case.blocked
        ),
        *(f"| ⚠️ | {_md(w.message)} |" for w in case.warnings),
        "",
        "</details>",
        "",
    ]


def _collapsed_table(cases: list[CasePlan], room: int) -> list[str]:
    lines = [
        f"**{plural(len(cases), 'more case')}.** {_COLLAPSED_NOTE}",
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
            lines.append(f"| … | and {plural(left, 'more case')} | | | | |")
            break
        lines.append(row)
    return [*lines, ""]


def render_plan(plan: Plan, fmt: str, max_chars: int = MARKDOWN_BUDGET) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan, max_chars)
    if fmt == "github":  # the text plan for the log, its warnings as annotations
        notes: list[tuple[PlanWarning, str | None]] = [(w, None) for w in plan.warnings]
        notes += [(w, case.key) for case in plan.cases for w in case.warnings]
        return render_text(plan) + "".join(
            github_command("warning", w.message, title=w.code, case=key) for w, key in notes
        )
    return render_text(plan)


def render_problems(problems: list[Problem], fmt: str, advice: Sequence[str] = ()) -> str:
    """Validation problems as text (with a count), JSON, or GitHub annotations; ``advice`` is
    what many of them share, said once (as a notice in GitHub's form)."""
    if fmt == "json":
        return render_problems_json(problems, advice)
    if fmt == "github":
        return "".join(
            github_command(
                p.severity if p.severity in ("error", "warning") else "notice",
                with_hint(p.message, p.hint),
                file=p.file,
                line=p.line,
                col=p.col,
                title=p.code,
            )
            for p in problems
        ) + "".join(github_command("notice", text) for text in advice)
    return render_problems_text(problems, advice)


def render_problems_text(problems: list[Problem], advice: Sequence[str] = ()) -> str:
    """One line per problem, its code last as mypy puts it (README "Problem codes"), then
    ``advice`` (what many of them share) once, then the counts."""
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    lines = [f"{p}  [{p.code}]" for p in problems]
    lines += advice
    lines.append(f"{plural(errors, 'error')}, {plural(warnings, 'warning')}.")
    return "\n".join(lines) + "\n"


def render_problems_json(problems: list[Problem], advice: Sequence[str] = ()) -> str:
    document = {
        "format_version": 1,
        "valid": not any(p.severity == "error" for p in problems),
        "problems": [
            {
                "file": p.file,
                "line": p.line,
                "col": p.col,
                "severity": p.severity,
                "code": p.code,
                "message": p.message,
                "hint": p.hint,
            }
            for p in problems
        ],
        "advice": list(advice),
    }
    return json.dumps(document, indent=2) + "\n"


def render_status(report: StatusReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(status_to_dict(report), indent=2, sort_keys=True) + "\n"
    lines = [f"casesync status for {report.api_url} (listing read at {report.checked_at})", ""]
    for case in report.cases:
        remote = case.remote
        if remote is None:
            where = "not on the site yet"
        elif remote.deleted:
            where = f"case {case.case_id}: deleted on the site"
        else:
            where = f"case {case.case_id} {case.url}: {describe_remote_state(remote)}"
        lines.append(f"{'!' if case.needs_attention else ' '} {case.key}: {where}; {case.local}")
        if case.processing:
            jobs = ", ".join(f"{j.job_id} ({j.status or 'processing'})" for j in case.processing)
            lines.append(f"    series still processing: {jobs}")
        lines.extend(f"    ! {note}" for note in case.notes)
    lines.append("")
    if report.quota is not None:
        lines.append(report.quota.describe() + ".")
    if any(case.processing for case in report.cases) and not report.jobs_polled:
        lines.append("Processing states are as last recorded; --jobs asks the server.")
    attention = sum(case.needs_attention for case in report.cases)
    lines.append(
        f"{plural(len(report.cases), 'case')}, {attention} need"
        f"{'s' if attention == 1 else ''} attention."
    )
    return "\n".join(lines) + "\n"


def describe_remote_state(remote: RemoteState) -> str:
    return f"{remote.status.replace('_', ' ')}, {remote.visibility}"


def status_to_dict(report: StatusReport) -> dict[str, Any]:
    quota = report.quota
    return {
        "format_version": 1,
        "api_url": report.api_url,
        "checked_at": report.checked_at,
        "jobs_polled": report.jobs_polled,
        "needs_attention": report.needs_attention,
        "quota": None if quota is None else quota_dict(quota),
        "cases": [
            {
                "key": case.key,
                "case_id": case.case_id,
                "url": case.url,
                "status": None if case.remote is None else case.remote.status,
                "visibility": None if case.remote is None else case.remote.visibility,
                "title_on_site": None if case.remote is None else case.remote.title,
                "local": case.local,
                "processing": [
                    {"study_id": j.study_id, "job_id": j.job_id, "status": j.status}
                    for j in case.processing
                ],
                "notes": list(case.notes),
                "needs_attention": case.needs_attention,
            }
            for case in report.cases
        ],
    }
