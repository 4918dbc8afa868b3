"""The wire format of protocol.md: paths, request bodies, and typed results from JSON.

Kept apart from the transport (``requester.py``) so the traps are easy to check in one place:
``uploaded_data`` is a JSON array, the series field is ``root_index``, the job's key is
``seriesId``, the case listing is a bare array, image_preparation's empty 401 is no token
problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from casesync.api.models import (
    CaseFields,
    JobStatus,
    OriginalSeries,
    Quotas,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    UploadSlot,
    User,
)

CURRENT_USER = "/api/v1/users/current"
CASES = "/api/v1/cases"
PRESIGN = "/direct_s3_uploads"
PER_PAGE = 100  # the server's maximum
NEXT_CURSOR = "X-Next-Cursor"
ALREADY_UPLOADED = "already_uploaded"


class WireError(ValueError):
    """A 2xx answer whose JSON is not what protocol.md describes."""


def studies_path(case_id: int) -> str:
    return f"{CASES}/{case_id}/studies"


def mark_finished_path(case_id: int) -> str:
    return f"{CASES}/{case_id}/mark_upload_finished"


def originals_path(case_id: int) -> str:
    """Row 11, INFERRED from the UI code of Radiopaedia's own uploader (see parse_originals)."""
    return f"{CASES}/{case_id}/originals"


def series_path(case_id: int, study_id: int) -> str:
    return f"/image_preparation/{case_id}/studies/{study_id}/series"


def job_path(case_id: int, study_id: int, job_id: str) -> str:
    return f"/image_preparation/{case_id}/studies/{study_id}/upload/{job_id}"


def token_refused(path: str, headers: Mapping[str, str], body: str) -> bool:
    """A 401 about the token, not image_preparation's empty 401 for an unknown case."""
    if not path.startswith("/image_preparation"):
        return True
    return "WWW-Authenticate" in headers or bool(body.strip())


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def case_body(fields: CaseFields) -> dict[str, Any]:
    return _without_none(
        {
            "title": fields.title,
            "system_id": fields.system_id,
            "diagnostic_certainty_id": fields.diagnostic_certainty_id,
            "suitable_for_quiz": fields.suitable_for_quiz,
            "presentation": fields.presentation,
            "age": fields.age,
            "gender": fields.gender,
            "body": fields.body,
        }
    )


def study_body(fields: StudyFields) -> dict[str, Any]:
    return _without_none(
        {
            "modality": fields.modality,
            "position": fields.position,
            "caption": fields.caption,
            "findings": fields.findings,
        }
    )


def series_body(fields: SeriesFields, upload_ids: Sequence[int]) -> dict[str, Any]:
    """``uploaded_data`` as an array (the object form answers 500); ``root_index``, not idx."""
    series = _without_none(
        {
            "root_index": fields.root_index,
            "perspective": fields.perspective,
            "specifics": fields.specifics,
        }
    )
    return {
        "image_format": fields.image_format,
        "series": series,
        "stack_upload": {"uploaded_data": [int(i) for i in upload_ids]},
    }


def presign_body(sha256s: Sequence[str]) -> dict[str, Any]:
    return {"sha256": list(sha256s)}


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WireError(f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def _int(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise WireError(f"{what} has no integer {key!r}")
    return int(value)


MOST_CASES = 10**9  # a quota number beyond this is not a real one (1e400, NaN, ...)


def _count(quotas: dict[str, Any], key: str, *, unlimited: bool) -> int | None:
    """A quota number: a whole number from 0 up; ``null`` means unlimited for allowances."""
    value = quotas.get(key)
    if value is None:
        return None if unlimited else 0
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value <= MOST_CASES:
        raise WireError(f"quotas.{key} is not a plausible count: {str(value)[:40]}")
    return int(value)


def parse_user(data: Any) -> User:
    body = _object(data, "the current user")
    quotas = _object(body.get("quotas"), "quotas")
    return User(
        login=str(body.get("login", "")),
        quotas=Quotas(
            allowed_draft_cases=_count(quotas, "allowed_draft_cases", unlimited=True),
            draft_case_count=_count(quotas, "draft_case_count", unlimited=False) or 0,
            allowed_unlisted_cases=_count(quotas, "allowed_unlisted_cases", unlimited=True),
            unlisted_case_count=_count(quotas, "unlisted_case_count", unlimited=False) or 0,
        ),
    )


def parse_case(data: Any) -> RemoteCase:
    body = _object(data, "a case")
    return RemoteCase(
        id=_int(body, "id", "a case"),
        title=str(body.get("title", "")),
        status=str(body.get("status", "")),
        visibility=str(body.get("visibility", "")),
        created_at=str(body.get("created_at", "")),
    )


def parse_cases(data: Any) -> list[RemoteCase]:
    if not isinstance(data, list):
        raise WireError("expected a bare JSON array of cases")
    return [parse_case(item) for item in data]


def parse_study(data: Any) -> RemoteStudy:
    body = _object(data, "a study")
    return RemoteStudy(
        id=_int(body, "id", "a study"),
        case_id=_int(body, "case_id", "a study"),
        modality=str(body.get("modality", "")),
    )


def parse_slots(data: Any, sha256s: Sequence[str]) -> list[UploadSlot]:
    """One slot per hash, in request order: a URL to PUT to, or ``already_uploaded``."""
    entries = _object(data, "direct_s3_uploads").get("uploads")
    if not isinstance(entries, list) or len(entries) != len(sha256s):
        raise WireError(f"expected {len(sha256s)} upload entries")
    slots = []
    for sha256, item in zip(sha256s, entries, strict=True):
        entry = _object(item, "an upload entry")
        upload_id = _int(entry, "id", "an upload entry")
        url = entry.get("url")
        if entry.get("status") == ALREADY_UPLOADED:
            slots.append(UploadSlot(upload_id, sha256, None))
        elif isinstance(url, str) and url:
            slots.append(UploadSlot(upload_id, sha256, url))
        else:
            raise WireError(f"upload {upload_id} has neither a URL nor {ALREADY_UPLOADED!r}")
    return slots


def parse_job_id(data: Any) -> str:
    job_id = _object(data, "image_preparation").get("job_id")
    if job_id in (None, ""):
        raise WireError("image_preparation answered without a job_id")
    return str(job_id)


def parse_job(status: int, data: Any, job_id: str) -> JobStatus:
    """202 = still processing; 200 with ``series.seriesId`` = done; 200 without = failed."""
    body = _object(data, "a job")
    if status == 202:
        return JobStatus(job_id, done=False, status=_text(body.get("status")))
    series = body.get("series")
    if not isinstance(series, dict) or series.get("seriesId") in (None, ""):
        return JobStatus(job_id, done=True)
    return JobStatus(
        job_id,
        done=True,
        series_id=_int(series, "seriesId", "a job's series"),
        status=_text(series.get("status")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


ORIGINALS_KEY = "original_file_urls_by_study"


def parse_originals(data: Any) -> list[OriginalSeries]:
    """``{"original_file_urls_by_study": {"<study_id>": [{"series_id", "files": [url]}]}}``.

    Known only from one official client's UI code, never confirmed against the server: every
    other shape is refused with a message saying so, rather than guessed at.
    """
    by_study = _object(data, "the originals").get(ORIGINALS_KEY)
    if not isinstance(by_study, dict):
        raise WireError(f"expected an object {ORIGINALS_KEY!r} (the shape casesync assumes)")
    found: list[OriginalSeries] = []
    for study_key, series_list in by_study.items():
        if not str(study_key).isdigit() or not isinstance(series_list, list):
            raise WireError(f"{ORIGINALS_KEY}: study {study_key!r} is not an id with a list")
        for item in series_list:
            entry = _object(item, "an original series")
            files = entry.get("files")
            if not isinstance(files, list) or not all(isinstance(u, str) and u for u in files):
                raise WireError("an original series has no list of file URLs 'files'")
            series_id = entry.get("series_id")
            found.append(
                OriginalSeries(
                    int(study_key),
                    None if series_id is None else _int(entry, "series_id", "a series"),
                    tuple(files),
                )
            )
    return found
