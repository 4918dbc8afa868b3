"""``/_emulator/*``: what tests and users inspect, and the site-side actions the API lacks.

Publishing or deleting a case happens on Radiopaedia's website, never through the API; tests need
to cause both, so they get admin routes here. None of these routes is faulted or counted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from casesync.emulator.oauth import token_body
from casesync.emulator.state import STATE, State, iso

CASE_STATUSES = ("draft", "pending_review", "published")
VISIBILITIES = ("public", "unlisted")


def snapshot(state: State) -> dict[str, Any]:
    """Everything observable, nested case -> studies -> series; no secrets."""
    now = state.now()
    cases = []
    for case in state.cases.values():
        row = dataclasses.asdict(case)
        row.pop("study_ids")
        row["created_at"], row["updated_at"] = iso(case.created_at), iso(case.updated_at)
        row["studies"] = [_study(state, state.studies[i], now) for i in case.study_ids]
        cases.append(row)
    return {
        "now": iso(now),
        "users": [
            {"id": u.id, "login": u.login, "quotas": state.quotas(u)} for u in state.users.values()
        ],
        "cases": cases,
        "uploads": [dataclasses.asdict(u) for u in state.uploads.values()],
        "stored_blobs": len(state.blobs),
        "requests": dict(sorted(state.requests.items())),
        "in_flight": state.in_flight,
        "faults": list(state.faults),
    }


def _study(state: State, study: Any, now: float) -> dict[str, Any]:
    row = dataclasses.asdict(study)
    row.pop("job_ids")
    row["created_at"], row["updated_at"] = iso(study.created_at), iso(study.updated_at)
    row["series"] = []
    for job_id in study.job_ids:
        series = dataclasses.asdict(state.series[job_id])
        series["done"] = now >= series["ready_at"]
        row["series"].append(series)
    return row


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(snapshot(request.app[STATE]))


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _case(state: State, request: web.Request) -> Any:
    case_id = request.match_info["case_id"]
    case = state.cases.get(int(case_id)) if case_id.isdigit() else None
    if case is None or case.deleted:
        raise web.HTTPNotFound(text="no such case")
    return case


async def set_case_status(request: web.Request) -> web.Response:
    """``{"status": "published", "visibility": "unlisted"}``: what the site's editors do."""
    state = request.app[STATE]
    case = _case(state, request)
    body = await _body(request)
    status = body.get("status", case.status)
    visibility = body.get("visibility", case.visibility)
    if status not in CASE_STATUSES or visibility not in VISIBILITIES:
        raise web.HTTPBadRequest(text=f"status in {CASE_STATUSES}, visibility in {VISIBILITIES}")
    case.status, case.visibility, case.updated_at = status, visibility, state.now()
    state.dirty = True
    return web.json_response(case.public())


async def retitle_case(request: web.Request) -> web.Response:
    """``{"title": "..."}``: an editor changed the title on the site (the API cannot)."""
    state = request.app[STATE]
    case = _case(state, request)
    title = (await _body(request)).get("title")
    if not isinstance(title, str) or not title.strip():
        raise web.HTTPBadRequest(text="title must be a non-empty string")
    case.title, case.updated_at = title, state.now()
    state.dirty = True
    return web.json_response(case.public())


async def delete_case(request: web.Request) -> web.Response:
    """The author deleted the case on the site: it leaves the listing and every endpoint."""
    state = request.app[STATE]
    case = _case(state, request)
    case.deleted = True
    state.dirty = True
    return web.json_response({"deleted": case.id})


async def advance_clock(request: web.Request) -> web.Response:
    """``{"seconds": N}``: expire tokens, URLs and jobs without waiting."""
    state = request.app[STATE]
    seconds = (await _body(request)).get("seconds")
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise web.HTTPBadRequest(text="seconds must be a non-negative number")
    state.clock_offset += float(seconds)
    state.dirty = True
    return web.json_response({"now": iso(state.now())})


async def issue_tokens(request: web.Request) -> web.Response:
    """``{"login": "other", "ttl": 60}``: tokens without the OAuth dance (any user, created)."""
    state = request.app[STATE]
    body = await _body(request)
    user = state.add_user(str(body.get("login") or state.demo_user.login))
    ttl = body.get("ttl")
    token = state.issue_token(user.id, ttl if isinstance(ttl, int) else None)
    return web.json_response(token_body(token))


async def fail_job(request: web.Request) -> web.Response:
    """Make a series job fail silently (its poll answers 200 without ``series``)."""
    state = request.app[STATE]
    series = state.series.get(request.match_info["job_id"])
    if series is None:
        raise web.HTTPNotFound(text="no such job")
    series.failed = True
    state.dirty = True
    return web.json_response({"failed": series.job_id})


ROUTES = [
    web.get("/_emulator/state", get_state),
    web.post("/_emulator/cases/{case_id}/status", set_case_status),
    web.post("/_emulator/cases/{case_id}/title", retitle_case),
    web.delete("/_emulator/cases/{case_id}", delete_case),
    web.post("/_emulator/clock", advance_clock),
    web.post("/_emulator/tokens", issue_tokens),
    web.post("/_emulator/jobs/{job_id}/fail", fail_job),
]
