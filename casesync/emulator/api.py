"""The /api/v1 and /image_preparation endpoints of protocol.md, traps included.

Each handler mirrors one row of protocol.md's endpoint table; the comments name the row so a
reader can check the emulator against the record.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

from aiohttp import web

from casesync.emulator import s3
from casesync.emulator.anonymiser_check import first_violation
from casesync.emulator.oauth import require_user
from casesync.emulator.state import STATE, Case, Series, State, Study, User, iso
from casesync.emulator.vocabulary import MODALITIES

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
IMAGE_TYPES = ("application/zip", "image/jpeg", "image/bmp", "image/png", "image/gif", "video/mp4")
SNIFFERS: dict[str, tuple[bytes, int]] = {  # image_format -> (magic, offset)
    "application/dicom": (b"DICM", 128),
    "image/png": (b"\x89PNG\r\n\x1a\n", 0),
    "image/jpeg": (b"\xff\xd8\xff", 0),
    "image/gif": (b"GIF8", 0),
    "image/bmp": (b"BM", 0),
}


def _error(status: int, message: Any) -> web.Response:
    return web.json_response({"errors": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body is not JSON"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "body must be a JSON object"}', content_type="application/json"
        )
    return body


def _case_or_404(state: State, user: User, request: web.Request) -> Case:
    case = state.owned_case(user, request.match_info["case_id"])
    if case is None:
        raise web.HTTPNotFound(text='{"error": "Not found"}', content_type="application/json")
    return case


async def current_user(request: web.Request) -> web.Response:
    """Row 1: login and live quota counts."""
    user = require_user(request)
    return web.json_response({"login": user.login, "quotas": request.app[STATE].quotas(user)})


async def create_case(request: web.Request) -> web.Response:
    """Row 2: unknown keys dropped; over quota refused; system_id stored but never shown."""
    state = request.app[STATE]
    user = require_user(request)
    body = await _json_object(request)
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        return _error(422, {"title": ["can't be blank"]})
    if body.get("system_id") in (None, ""):
        return _error(422, {"system": ["must exist"]})
    quota = user.allowed_draft_cases
    drafts = state.quotas(user)["draft_case_count"]
    if quota is not None and drafts >= quota:
        return _error(
            422, {"base": [f"You have reached your draft case quota ({drafts} of {quota})"]}
        )
    now = state.now()
    case = Case(
        id=state.next_id("case"),
        author_id=user.id,
        title=title,
        system_id=body.get("system_id"),
        diagnostic_certainty_id=body.get("diagnostic_certainty_id"),
        suitable_for_quiz=body.get("suitable_for_quiz"),
        presentation=body.get("presentation"),
        age=body.get("age"),
        gender=body.get("gender"),
        body=body.get("body"),
        created_at=now,
        updated_at=now,
    )
    state.cases[case.id] = case
    state.dirty = True
    return web.json_response(case.public())


def _encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{case_id}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "invalid cursor"}', content_type="application/json"
        ) from None
    prefix, _, value = text.partition(":")
    if prefix != "after" or not value.isdigit():
        raise web.HTTPBadRequest(
            text='{"error": "invalid cursor"}', content_type="application/json"
        )
    return int(value)


async def list_cases(request: web.Request) -> web.Response:
    """Row 3: a bare array; the next page's cursor travels in ``X-Next-Cursor``."""
    state = request.app[STATE]
    user = require_user(request)
    per_page_text = request.query.get("per_page", str(DEFAULT_PER_PAGE))
    if not per_page_text.isdigit() or int(per_page_text) < 1:
        return _error(400, "per_page must be a positive integer")
    per_page = min(int(per_page_text), MAX_PER_PAGE)
    cursor = request.query.get("cursor")
    after = _decode_cursor(cursor) if cursor else 0
    cases = sorted((c for c in state.live_cases(user.id) if c.id > after), key=lambda c: c.id)
    page = cases[:per_page]
    headers = {}
    if len(cases) > per_page:
        headers["X-Next-Cursor"] = _encode_cursor(page[-1].id)
    return web.json_response([c.public() for c in page], headers=headers)


async def create_study(request: web.Request) -> web.Response:
    """Row 4: modality matched literally; the position is recorded as given."""
    state = request.app[STATE]
    user = require_user(request)
    case = _case_or_404(state, user, request)
    body = await _json_object(request)
    if case.status != "draft":
        return _error(422, {"case": ["imaging can only be added to a draft case"]})
    modality = body.get("modality")
    if modality not in MODALITIES:
        return _error(422, {"modality": ["is not included in the list"]})
    position = body.get("position")
    if position is None:
        positions = [state.studies[i].position for i in case.study_ids]
        position = max((p for p in positions if isinstance(p, int)), default=1) + 1
    now = state.now()
    study = Study(
        id=state.next_id("study"),
        case_id=case.id,
        modality=modality,
        findings=body.get("findings"),
        caption=body.get("caption"),
        position=position,
        created_at=now,
        updated_at=now,
    )
    state.studies[study.id] = study
    case.study_ids.append(study.id)
    state.dirty = True
    return web.json_response(study.public(), status=201)


async def mark_upload_finished(request: web.Request) -> web.Response:
    """Row 9: the case leaves "uploading"; it stays a draft."""
    state = request.app[STATE]
    user = require_user(request)
    case = _case_or_404(state, user, request)
    case.upload_finished = True
    case.mark_upload_finished_calls += 1
    case.updated_at = state.now()
    state.dirty = True
    return web.json_response(case.public())


async def originals(request: web.Request) -> web.Response:
    """Row 11, INFERRED: known only from the UI code of Radiopaedia's self-hosted uploader.

    The original files of every series of the case, per study, in stack order, as presigned
    GET URLs. Failed series are left out; a series still processing is listed (its files were
    uploaded before it was created).
    """
    state = request.app[STATE]
    user = require_user(request)
    case = _case_or_404(state, user, request)
    by_study: dict[str, list[dict[str, Any]]] = {}
    for study_id in case.study_ids:
        study = state.studies[study_id]
        by_study[str(study.id)] = [
            {
                "series_id": series.series_id,
                "files": [s3.presigned_get_url(request, sha) for sha in series.sha256s],
            }
            for series in (state.series[job] for job in study.job_ids)
            if not series.failed
        ]
    return web.json_response({"original_file_urls_by_study": by_study})


def _preparation_target(request: web.Request) -> tuple[State, User, Case, Study | None]:
    """The case and study an image_preparation URL names.

    A case the server does not know (or not the caller's) is answered 401 with an empty body.
    """
    state = request.app[STATE]
    user = require_user(request)
    case = state.owned_case(user, request.match_info["case_id"])
    if case is None:
        raise web.HTTPUnauthorized(text="")
    return state, user, case, state.study_of(case, request.match_info["study_id"])


async def create_series(request: web.Request) -> web.Response:
    """Row 7: one series per call, checked like the real server (incl. its anonymiser)."""
    state, user, case, study = _preparation_target(request)
    if study is None:
        return _error(404, "study not found")
    body = await _json_object(request)
    stack = body.get("stack_upload")
    series = body.get("series")
    image_format = body.get("image_format")
    if not isinstance(stack, dict) or "uploaded_data" not in stack or not isinstance(series, dict):
        return _error(400, "param is missing or the value is empty: series, stack_upload")
    uploaded = stack["uploaded_data"]
    if isinstance(uploaded, dict):
        return web.json_response({"status": 500, "error": "Internal Server Error"}, status=500)
    if not isinstance(image_format, str) or image_format not in SNIFFERS:
        return _error(422, {"image_format": ["is not a supported format"]})
    if case.status != "draft":
        return _error(422, {"case": ["imaging can only be added to a draft case"]})
    problem = await _check_uploads(state, user, uploaded, image_format)
    if problem is not None:
        return _error(422, problem)
    ids = [int(u) for u in uploaded]
    root_index = series.get("root_index", 0)
    if not isinstance(root_index, int) or not 0 <= root_index < len(ids):
        return _error(422, {"root_index": [f"must be between 0 and {len(ids) - 1}"]})
    now = state.now()
    record = Series(
        job_id=secrets.token_hex(12),
        series_id=state.next_id("series"),
        case_id=case.id,
        study_id=study.id,
        root_index=root_index,
        perspective=series.get("perspective"),
        specifics=series.get("specifics"),
        image_format=image_format,
        upload_ids=ids,
        sha256s=[state.uploads[i].sha256 for i in ids],
        created_at=now,
        ready_at=now + state.config.job_seconds,
    )
    state.series[record.job_id] = record
    study.job_ids.append(record.job_id)
    state.dirty = True
    return web.json_response({"job_id": record.job_id}, status=202)


async def _check_uploads(state: State, user: User, uploaded: Any, image_format: str) -> Any:
    """The first reason to refuse these upload ids, or None."""
    if not isinstance(uploaded, list) or not uploaded:
        return {"uploaded_data": ["can't be blank"]}
    magic, offset = SNIFFERS[image_format]
    for item in uploaded:
        upload = state.uploads.get(int(item)) if str(item).isdigit() else None
        if upload is None or upload.user_id != user.id:
            return f"Validation failed: Uploaded data {item} not found"
        data = await state.blobs.get(upload.sha256)
        if data is None:
            return f"Validation failed: Uploaded data {item} has not been uploaded"
        if data[offset : offset + len(magic)] != magic:
            return f"Validation failed: Uploaded data {item} is not {image_format}"
        if state.config.anonymiser_check == "strict" and image_format == "application/dicom":
            verdict = await _anonymiser_verdict(state, upload.sha256, data)
            if verdict is not None:
                return verdict
    return None


async def _anonymiser_verdict(state: State, sha256: str, data: bytes) -> str | None:
    """The anonymiser check, off the event loop and once per distinct content."""
    if sha256 not in state.anonymiser_verdicts:
        state.anonymiser_verdicts[sha256] = await asyncio.to_thread(first_violation, data)
    return state.anonymiser_verdicts[sha256]


async def poll_job(request: web.Request) -> web.Response:
    """Row 8: 202 while processing, then 200 with ``series.seriesId`` (no series = failed)."""
    state, _, _, study = _preparation_target(request)
    job_id = request.match_info["job_id"]
    record = state.series.get(job_id)
    if study is None or record is None or record.study_id != study.id:
        return _error(404, "job not found")
    if state.now() < record.ready_at:
        return web.json_response({"status": "pending-upload", "job_id": job_id}, status=202)
    if record.failed:
        return web.json_response({"study": study.public()})
    done = "completed-dicom-processing" if record.image_format == "application/dicom" else "ready"
    return web.json_response(
        {"study": study.public(), "series": {"seriesId": record.series_id, "status": done}}
    )


async def add_image(request: web.Request) -> web.Response:
    """Row 10 (deprecated): a raw image or zip body attached to a study."""
    state = request.app[STATE]
    user = require_user(request)
    case = _case_or_404(state, user, request)
    study = state.study_of(case, request.match_info["study_id"])
    if study is None:
        return _error(404, "study not found")
    if request.content_type not in IMAGE_TYPES:
        return _error(415, f"Content-Type must be one of {', '.join(IMAGE_TYPES)}")
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
    now = state.now()
    image = {
        "id": state.next_id("image"),
        "filename": f"upload.{request.content_type.rsplit('/', 1)[-1]}",
        "contributor_id": user.id,
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    study.images.append({**image, "content_type": request.content_type, "size": size})
    state.dirty = True
    return web.json_response(image)
