"""The async Radiopaedia client: every endpoint of protocol.md, as one typed method each.

Paths, bodies and parsers are ``wire.py``; how a call is sent, retried and its failure
classified is ``requester.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from casesync.api import wire
from casesync.api.models import (
    CaseFields,
    JobStatus,
    OriginalSeries,
    Planned,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    UploadSlot,
    User,
)
from casesync.api.pacer import Pacer, RetryPolicy
from casesync.api.requester import Requester, TokenSource
from casesync.api.transport import Reply, UrlRefused, check_upload_url, redact_url, trim
from casesync.errors import ApiError
from casesync.settings import Timeouts, check_api_url, transport_allowed

log = logging.getLogger("casesync.api")

PRESIGN_BATCH = 500  # hashes per direct_s3_uploads call
MAX_PAGES = 1000  # listing pages followed at most (100,000 cases)
URL_REFRESHES = 3  # fresh presigned URLs asked for one file after S3 refused the last one
_T = TypeVar("_T")


class RadiopaediaClient:
    """Every endpoint of protocol.md; use as ``async with RadiopaediaClient(...) as api``."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource,
        *,
        api_concurrency: int = 4,
        upload_concurrency: int = 8,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        presign_batch: int = PRESIGN_BATCH,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.api_url = check_api_url(api_url)
        self.tokens = tokens
        self.presign_batch = presign_batch
        self.max_pages = max_pages
        self._requester = Requester(
            self.api_url,
            tokens,
            api_concurrency=api_concurrency,
            upload_concurrency=upload_concurrency,
            timeouts=timeouts,
            retry=retry,
            pacer=pacer,
        )

    async def __aenter__(self) -> RadiopaediaClient:
        self._requester.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._requester.close()

    async def current_user(self) -> User:
        user, _ = await self._requester.fetch("GET", wire.CURRENT_USER, _plain(wire.parse_user))
        return user

    async def list_cases(self) -> list[RemoteCase]:
        """Every case of the caller, following ``X-Next-Cursor``; stops at a repeated cursor
        or after ``max_pages`` pages, so a server that pages forever cannot hang a run."""
        cases: list[RemoteCase] = []
        cursor = ""
        seen: set[str] = set()
        for _ in range(self.max_pages):
            params = {"per_page": str(wire.PER_PAGE)} | ({"cursor": cursor} if cursor else {})
            parse = _plain(wire.parse_cases)
            page, reply = await self._requester.fetch("GET", wire.CASES, parse, params=params)
            cases += page
            cursor = reply.headers.get(wire.NEXT_CURSOR, "").strip()
            if not cursor:
                return cases
            if cursor in seen:
                raise self._listing_error("the server repeated a page cursor", reply)
            seen.add(cursor)
        raise self._listing_error(
            f"still more pages after {self.max_pages} pages ({len(cases)} cases)", reply
        )

    def _listing_error(self, what: str, reply: Reply) -> ApiError:
        return ApiError(
            f"GET {wire.CASES}: {what}; stopped reading the case listing",
            method="GET",
            path=wire.CASES,
            status=reply.status,
            hint="the server's paging looks broken; try again later",
        )

    async def create_case(self, fields: CaseFields) -> RemoteCase:
        body = wire.case_body(fields)
        reply = await self._requester.call("POST", wire.CASES, idempotent=False, json_body=body)
        return self._requester.parse_created(wire.CASES, reply, wire.parse_case)

    async def create_study(self, case_id: int, fields: StudyFields) -> RemoteStudy:
        path = wire.studies_path(case_id)
        body = wire.study_body(fields)
        reply = await self._requester.call("POST", path, idempotent=False, json_body=body)
        return self._requester.parse_created(path, reply, wire.parse_study)

    async def presign(self, sha256s: Sequence[str]) -> list[UploadSlot]:
        """Upload slots for many hashes, a few hundred per call, in the order given."""
        slots: list[UploadSlot] = []
        for start in range(0, len(sha256s), self.presign_batch):
            batch = list(sha256s[start : start + self.presign_batch])
            body = wire.presign_body(batch)
            parse = _plain(partial(wire.parse_slots, sha256s=batch))
            part, _ = await self._requester.fetch("POST", wire.PRESIGN, parse, json_body=body)
            slots += part
        return slots

    async def upload(
        self,
        planned: Planned,
        slot: UploadSlot,
        content_type: str,
        progress: Callable[[int], None] | None = None,
    ) -> UploadSlot:
        """PUT the planned bytes to the presigned URL; on a 403 get a fresh URL (a few times).

        A file whose bytes are no longer the planned ones raises ``FileChanged``. Returns the
        slot whose ``upload_id`` is the one to attach: the fresh one if the first URL was
        refused. ``progress`` gets byte counts (negative when a retry starts over).
        Only https URLs are used (http only on loopback): file bytes never travel in clear.
        """
        current = slot
        for refresh in range(URL_REFRESHES + 1):
            if current.url is None:
                return current
            check_upload_url(current.url)
            try:
                last = refresh == URL_REFRESHES
                await self._requester.put_file(
                    planned,
                    current.url,
                    content_type,
                    progress,
                    last_chance=last,
                    fresh=current != slot,
                )
                return current
            except UrlRefused:
                log.debug("presigned URL refused for %s; asking for a fresh one", slot.sha256)
            (current,) = await self.presign([slot.sha256])
        raise AssertionError("unreachable: the last chance raises")

    async def create_series(
        self, case_id: int, study_id: int, fields: SeriesFields, upload_ids: Sequence[int]
    ) -> str:
        """Start the job that turns uploads into one series; returns its job id."""
        path = wire.series_path(case_id, study_id)
        body = wire.series_body(fields, upload_ids)
        reply = await self._requester.call("POST", path, idempotent=False, json_body=body)
        return self._requester.parse_created(path, reply, wire.parse_job_id)

    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus:
        path = wire.job_path(case_id, study_id, job_id)
        job, _ = await self._requester.fetch("GET", path, partial(wire.parse_job, job_id=job_id))
        return job

    async def mark_upload_finished(self, case_id: int) -> RemoteCase:
        """Idempotent in effect (it sets a state), so it is retried like a GET."""
        path = wire.mark_finished_path(case_id)
        case, _ = await self._requester.fetch("PUT", path, _plain(wire.parse_case))
        return case

    async def originals(self, case_id: int) -> list[OriginalSeries]:
        """Row 11 (inferred): the original files of every series of the case, as GET URLs.

        The only caller of ``wire.originals_path`` and ``wire.parse_originals``: any answer of
        another shape fails here, with a message saying the endpoint's form was assumed.
        """
        path = wire.originals_path(case_id)
        reply = await self._requester.call("GET", path, idempotent=True)
        try:
            return wire.parse_originals(json.loads(reply.text))
        except ValueError as exc:
            raise ApiError(
                f"GET {path}: the answer is not the shape casesync assumes for the originals "
                f"endpoint ({exc}): {trim(reply.text)}",
                method="GET",
                path=path,
                status=reply.status,
                hint="this endpoint is undocumented (README, 'What was assumed about the "
                "originals endpoint'); nothing was written",
            ) from None

    async def download(self, url: str, dest: Path) -> tuple[str, int]:
        """The file at a presigned GET URL, saved to ``dest``; its sha256 and size."""
        if not transport_allowed(url):
            raise ApiError(f"GET {redact_url(url)}: a download URL that is not https", method="GET")
        return await self._requester.get_file(url, dest)


def _plain(parse: Callable[[Any], _T]) -> Callable[[int, Any], _T]:
    """A parser of the JSON alone, for answers whose status says nothing more."""
    return lambda _status, data: parse(data)
