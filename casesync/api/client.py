"""The async Radiopaedia client: one pooled session, retries by class, one shared pacer.

What may be retried follows from what the server may have done: GET, the S3 PUT and
direct_s3_uploads are idempotent; creating a case, study or series is not, so after a timeout,
a dropped connection or a 5xx those raise ``OutcomeUnknown`` instead of trying again (a 429 or
503 means nothing was processed, so those are retried for every call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiofiles
import aiohttp

from casesync.api import wire
from casesync.api.models import (
    CaseFields,
    JobStatus,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    UploadSlot,
    User,
)
from casesync.api.pacer import NOT_PROCESSED, SERVER_ERRORS, Pacer, RetryPolicy, retry_after_seconds
from casesync.errors import ApiError, AuthError, OutcomeUnknown, OverQuota
from casesync.settings import check_api_url

log = logging.getLogger("casesync.api")

CHUNK = 256 * 1024  # bytes read from disk per step of an upload
BODY_SHOWN = 500  # characters of a response body kept in an error message
PRESIGN_BATCH = 500  # hashes per direct_s3_uploads call
REDACTED = "[redacted]"
_T = TypeVar("_T")


class TokenSource(Protocol):
    """What the client needs from ``casesync.api.credentials.TokenProvider``."""

    async def token(self) -> str: ...
    async def refresh(self, rejected_token: str) -> str: ...


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _SendFailed(Exception):
    """No answer: the connection failed or timed out. ``maybe_sent``: the server may have it."""

    def __init__(self, reason: str, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


class _UrlRefused(Exception):
    """S3 answered 403: the presigned URL expired (or its signature no longer holds)."""


def redact_url(url: str) -> str:
    """A presigned URL without its query string, which holds the signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?" + REDACTED if parts.query else "")


def trim(text: str, limit: int = BODY_SHOWN) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def _file_chunks(path: Path, count: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The file in CHUNK-sized pieces, so memory stays flat whatever its size."""
    async with aiofiles.open(path, "rb") as handle:
        while chunk := await handle.read(CHUNK):
            count(len(chunk))
            yield chunk


class RadiopaediaClient:
    """Every endpoint of protocol.md; use as ``async with RadiopaediaClient(...) as api``."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource,
        *,
        api_concurrency: int = 4,
        upload_concurrency: int = 8,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        upload_read_timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        presign_batch: int = PRESIGN_BATCH,
    ) -> None:
        self.api_url = check_api_url(api_url)
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or Pacer()
        self.presign_batch = presign_batch
        self._pool_size = api_concurrency + upload_concurrency
        self._api_slots = asyncio.Semaphore(api_concurrency)
        self._upload_slots = asyncio.Semaphore(upload_concurrency)
        self._api_timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        self._upload_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=upload_read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RadiopaediaClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size), timeout=self._api_timeout
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- endpoints ---

    async def current_user(self) -> User:
        reply = await self._api("GET", wire.CURRENT_USER, idempotent=True)
        return self._parse("GET", wire.CURRENT_USER, reply, wire.parse_user)

    async def list_cases(self) -> list[RemoteCase]:
        """Every case of the caller, following ``X-Next-Cursor`` page by page."""
        cases: list[RemoteCase] = []
        cursor = ""
        seen: set[str] = set()
        while True:
            params = {"per_page": str(wire.PER_PAGE)} | ({"cursor": cursor} if cursor else {})
            reply = await self._api("GET", wire.CASES, idempotent=True, params=params)
            cases += self._parse("GET", wire.CASES, reply, wire.parse_cases)
            cursor = reply.headers.get(wire.NEXT_CURSOR, "").strip()
            if not cursor:
                return cases
            if cursor in seen:
                raise ApiError(
                    f"GET {wire.CASES}: the server repeated a page cursor",
                    method="GET",
                    path=wire.CASES,
                    status=reply.status,
                )
            seen.add(cursor)

    async def create_case(self, fields: CaseFields) -> RemoteCase:
        body = wire.case_body(fields)
        reply = await self._api("POST", wire.CASES, idempotent=False, json_body=body)
        return self._parse_created(wire.CASES, reply, wire.parse_case)

    async def create_study(self, case_id: int, fields: StudyFields) -> RemoteStudy:
        path = wire.studies_path(case_id)
        reply = await self._api("POST", path, idempotent=False, json_body=wire.study_body(fields))
        return self._parse_created(path, reply, wire.parse_study)

    async def presign(self, sha256s: Sequence[str]) -> list[UploadSlot]:
        """Upload slots for many hashes, a few hundred per call, in the order given."""
        slots: list[UploadSlot] = []
        for start in range(0, len(sha256s), self.presign_batch):
            batch = list(sha256s[start : start + self.presign_batch])
            body = wire.presign_body(batch)
            reply = await self._api("POST", wire.PRESIGN, idempotent=True, json_body=body)
            slots += self._parse(
                "POST", wire.PRESIGN, reply, partial(wire.parse_slots, sha256s=batch)
            )
        return slots

    async def upload(
        self,
        path: Path,
        slot: UploadSlot,
        content_type: str,
        progress: Callable[[int], None] | None = None,
    ) -> UploadSlot:
        """PUT the file to its presigned URL; on a 403 get a fresh URL and try once more.

        Returns the slot whose ``upload_id`` is the one to attach: the fresh one if the first
        URL was refused. ``progress`` gets byte counts (negative when a retry starts over).
        """
        if slot.url is None:
            return slot
        try:
            await self._put(path, slot.url, content_type, progress, last_chance=False)
            return slot
        except _UrlRefused:
            log.debug("presigned URL refused for %s; asking for a fresh one", slot.sha256)
        (fresh,) = await self.presign([slot.sha256])
        if fresh.url is not None:
            await self._put(path, fresh.url, content_type, progress, last_chance=True)
        return fresh

    async def create_series(
        self, case_id: int, study_id: int, fields: SeriesFields, upload_ids: Sequence[int]
    ) -> str:
        """Start the job that turns uploads into one series; returns its job id."""
        path = wire.series_path(case_id, study_id)
        body = wire.series_body(fields, upload_ids)
        reply = await self._api("POST", path, idempotent=False, json_body=body)
        return self._parse_created(path, reply, wire.parse_job_id)

    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus:
        path = wire.job_path(case_id, study_id, job_id)
        reply = await self._api("GET", path, idempotent=True)
        return self._parse("GET", path, reply, partial(wire.parse_job, reply.status, job_id=job_id))

    async def mark_upload_finished(self, case_id: int) -> RemoteCase:
        """Idempotent in effect (it sets a state), so it is retried like a GET."""
        path = wire.mark_finished_path(case_id)
        reply = await self._api("PUT", path, idempotent=True)
        return self._parse("PUT", path, reply, wire.parse_case)

    # --- transport ---

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use RadiopaediaClient as 'async with RadiopaediaClient(...)'")
        return self._session

    async def _api(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """One API call with retries; after a 401, one token refresh and one more try."""
        refreshed = False
        while True:
            token = await self.tokens.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            send = partial(
                self._send,
                method,
                self.api_url + path,
                path,
                slots=self._api_slots,
                secret=token,
                headers=headers,
                json=json_body,
                params=params,
            )
            reply = await self._retrying(method, path, send, idempotent=idempotent)
            if reply.ok:
                return reply
            if reply.status == 401 and not refreshed and _token_refused(path, reply):
                refreshed = True
                await self.tokens.refresh(token)
                continue
            raise self._failure(method, path, reply, idempotent=idempotent)

    async def _put(
        self,
        path: Path,
        url: str,
        content_type: str,
        progress: Callable[[int], None] | None,
        *,
        last_chance: bool,
    ) -> None:
        """Stream one file to S3: Content-Type and Content-Length, never Authorization."""
        shown = redact_url(url)
        size = path.stat().st_size
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            if progress is not None:
                progress(n)

        def rewind() -> None:
            nonlocal sent
            if progress is not None and sent:
                progress(-sent)
            sent = 0

        async def send() -> Reply:
            headers = {"Content-Type": content_type, "Content-Length": str(size)}
            return await self._send(
                "PUT",
                url,
                shown,
                slots=self._upload_slots,
                secret=None,
                headers=headers,
                data=_file_chunks(path, count),
                timeout=self._upload_timeout,
            )

        reply = await self._retrying("PUT", shown, send, idempotent=True, rewind=rewind)
        if reply.ok:
            return
        rewind()
        if reply.status == 403 and not last_chance:
            raise _UrlRefused()
        raise self._failure("PUT", shown, reply, idempotent=True)

    async def _retrying(
        self,
        method: str,
        shown: str,
        send: Callable[[], Awaitable[Reply]],
        *,
        idempotent: bool,
        rewind: Callable[[], None] | None = None,
    ) -> Reply:
        """Send until an answer that is not worth retrying, within attempts and deadline."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            reply: Reply | None = None
            try:
                reply = await send()
            except _SendFailed as exc:
                if exc.maybe_sent and not idempotent:
                    raise OutcomeUnknown(
                        f"{method} {shown}: {exc.reason}; the server may or may not have done it",
                        method=method,
                        path=shown,
                        hint="not retried, to avoid a duplicate",
                    ) from None
                reason = exc.reason
            else:
                if not _worth_retrying(reply.status, idempotent):
                    if reply.ok:
                        self.pacer.succeeded()
                    return reply
                reason = f"HTTP {reply.status}"
            delay = self.retry.backoff(attempt)
            throttled = reply is not None and reply.status in NOT_PROCESSED
            if reply is not None and throttled:
                delay = retry_after_seconds(reply.headers.get("Retry-After")) or delay
            if attempt >= self.retry.attempts or (
                time.monotonic() - started + delay > self.retry.deadline
            ):
                note = f"gave up after {attempt} attempts"
                if reply is not None:
                    raise self._failure(method, shown, reply, idempotent=idempotent, note=note)
                raise ApiError(f"{method} {shown}: {reason} ({note})", method=method, path=shown)
            log.debug("%s %s: %s; retrying in %.2f s", method, shown, reason, delay)
            if rewind is not None:
                rewind()
            if throttled:
                self.pacer.throttle(delay)  # every worker waits, this one too (in _send)
            else:
                await asyncio.sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        shown: str,
        *,
        slots: asyncio.Semaphore,
        secret: str | None,
        **kwargs: Any,
    ) -> Reply:
        """One request; connection failures become ``_SendFailed``, never with the URL's query."""
        await self.pacer.wait()
        async with slots:
            started = time.monotonic()
            try:
                async with self.session.request(method, url, **kwargs) as response:
                    text = await response.text(errors="replace")
                    reply = Reply(response.status, text, response.headers)
            except aiohttp.ClientConnectorError as exc:  # never reached the server
                raise _SendFailed(_scrub(str(exc), url, shown, secret), maybe_sent=False) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = _scrub(str(exc), url, shown, secret) or type(exc).__name__
                if isinstance(exc, asyncio.TimeoutError):
                    reason = "timed out"
                log.debug("%s %s -> %s", method, shown, reason)
                raise _SendFailed(reason, maybe_sent=True) from None
        elapsed = (time.monotonic() - started) * 1000
        log.debug("%s %s -> %d (%.0f ms)", method, shown, reply.status, elapsed)
        if secret:
            reply = Reply(reply.status, reply.text.replace(secret, REDACTED), reply.headers)
        return reply

    def _failure(
        self, method: str, shown: str, reply: Reply, *, idempotent: bool, note: str = ""
    ) -> ApiError | AuthError:
        """The error for a final non-2xx answer, classified for the caller and the exit code."""
        body = trim(reply.text)
        message = f"{method} {shown}: HTTP {reply.status}: {body}"
        fields: dict[str, Any] = {
            "method": method,
            "path": shown,
            "status": reply.status,
            "body": body,
        }
        if not idempotent and reply.status in SERVER_ERRORS - NOT_PROCESSED:
            return OutcomeUnknown(message, hint="not retried, to avoid a duplicate", **fields)
        if not idempotent and 400 <= reply.status < 500 and "quota" in body.lower():
            return OverQuota(message, hint="publish or delete draft cases on the site", **fields)
        if reply.status == 401 and not _token_refused(shown, reply):
            hint = "the server answers 401 with an empty body for a case that is not yours"
            return ApiError(message, hint=hint, **fields)
        if reply.status == 401:
            return AuthError(message, hint="run 'casesync login' again")
        return ApiError(message, hint=note or None, **fields)

    def _parse(self, method: str, path: str, reply: Reply, parse: Callable[[Any], _T]) -> _T:
        try:
            return parse(json.loads(reply.text))
        except (ValueError, TypeError, RecursionError) as exc:  # WireError is a ValueError
            raise ApiError(
                f"{method} {path}: HTTP {reply.status}: unexpected answer ({exc}): "
                f"{trim(reply.text)}",
                method=method,
                path=path,
                status=reply.status,
                body=trim(reply.text),
            ) from None

    def _parse_created(self, path: str, reply: Reply, parse: Callable[[Any], _T]) -> _T:
        """A create's 2xx answer; one that cannot be read (a proxy's HTML page, a cut body)
        says the server acted but not what it made: the outcome is unknown, never "not made"."""
        try:
            return self._parse("POST", path, reply, parse)
        except ApiError as exc:
            raise OutcomeUnknown(
                f"{exc.message}; the server may have created it",
                method="POST",
                path=path,
                status=reply.status,
                body=exc.body,
                hint="not retried, to avoid a duplicate",
            ) from None


def _worth_retrying(status: int, idempotent: bool) -> bool:
    return status in NOT_PROCESSED or (idempotent and status in SERVER_ERRORS)


def _token_refused(path: str, reply: Reply) -> bool:
    """A 401 about the token, not image_preparation's empty 401 for an unknown case."""
    if not path.startswith("/image_preparation"):
        return True
    return "WWW-Authenticate" in reply.headers or bool(reply.text.strip())


def _scrub(text: str, url: str, shown: str, secret: str | None) -> str:
    text = text.replace(url, shown)
    return text.replace(secret, REDACTED) if secret else text
