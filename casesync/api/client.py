"""The async Radiopaedia client: one pooled session, retries by class, one shared pacer.

What may be retried follows from what the server may have done: GET, the S3 PUT and
direct_s3_uploads are idempotent; creating a case, study or series is not, so after a timeout,
a dropped connection or a 5xx those raise ``OutcomeUnknown`` instead of trying again (a 429 or
503 means nothing was processed, so those are retried for every call).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import aiofiles
import aiohttp

from casesync.api import wire
from casesync.api.models import (
    CaseFields,
    JobStatus,
    OriginalSeries,
    RemoteCase,
    RemoteStudy,
    SeriesFields,
    StudyFields,
    UploadSlot,
    User,
)
from casesync.api.pacer import NOT_PROCESSED, SERVER_ERRORS, Pacer, RetryPolicy, retry_after_seconds
from casesync.api.transport import (
    CHUNK,
    REDACTED,
    Reply,
    SendFailed,
    Stalled,
    UrlRefused,
    Watchdog,
    check_upload_url,
    file_chunks,
    redact_url,
    scrub,
    throttled,
    trim,
)
from casesync.errors import ApiError, AuthError, OutcomeUnknown, OverQuota
from casesync.settings import Timeouts, check_api_url, transport_allowed

log = logging.getLogger("casesync.api")

PRESIGN_BATCH = 500  # hashes per direct_s3_uploads call
MAX_PAGES = 1000  # listing pages followed at most (100,000 cases)
URL_REFRESHES = 3  # fresh presigned URLs asked for one file after S3 refused the last one
_T = TypeVar("_T")


class TokenSource(Protocol):
    """What the client needs from ``casesync.api.credentials.TokenProvider``."""

    async def token(self) -> str: ...
    async def refresh(self, rejected_token: str) -> str: ...


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
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy(deadline=self.timeouts.deadline)
        self.pacer = pacer or Pacer()
        self.presign_batch = presign_batch
        self.max_pages = max_pages
        self._pool_size = api_concurrency + upload_concurrency
        self._api_slots = asyncio.Semaphore(api_concurrency)
        self._upload_slots = asyncio.Semaphore(upload_concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RadiopaediaClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size), timeout=self._timeout(None)
        )
        return self

    def _timeout(self, remaining: float | None) -> aiohttp.ClientTimeout:
        """An API attempt: the whole answer (connecting included) within the read timeout,
        and never past the call's deadline."""
        read = self.timeouts.read if remaining is None else min(self.timeouts.read, remaining)
        read = max(0.001, read)
        return aiohttp.ClientTimeout(total=read, sock_connect=min(self.timeouts.connect, read))

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
        user, _ = await self._fetch("GET", wire.CURRENT_USER, _plain(wire.parse_user))
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
            page, reply = await self._fetch("GET", wire.CASES, parse, params=params)
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
            parse = _plain(partial(wire.parse_slots, sha256s=batch))
            part, _ = await self._fetch("POST", wire.PRESIGN, parse, json_body=body)
            slots += part
        return slots

    async def upload(
        self,
        path: Path,
        slot: UploadSlot,
        content_type: str,
        progress: Callable[[int], None] | None = None,
    ) -> UploadSlot:
        """PUT the file to its presigned URL; on a 403 get a fresh URL (a few times).

        Returns the slot whose ``upload_id`` is the one to attach: the fresh one if the first
        URL was refused. ``progress`` gets byte counts (negative when a retry starts over).
        Only https URLs are used (http only on loopback): file bytes never travel in clear.
        """
        current = slot
        for refresh in range(URL_REFRESHES + 1):
            if current.url is None:
                return current
            check_upload_url(current.url)
            try:
                last = refresh == URL_REFRESHES
                await self._put(
                    path,
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
        reply = await self._api("POST", path, idempotent=False, json_body=body)
        return self._parse_created(path, reply, wire.parse_job_id)

    async def job_status(self, case_id: int, study_id: int, job_id: str) -> JobStatus:
        path = wire.job_path(case_id, study_id, job_id)
        job, _ = await self._fetch("GET", path, partial(wire.parse_job, job_id=job_id))
        return job

    async def mark_upload_finished(self, case_id: int) -> RemoteCase:
        """Idempotent in effect (it sets a state), so it is retried like a GET."""
        path = wire.mark_finished_path(case_id)
        case, _ = await self._fetch("PUT", path, _plain(wire.parse_case))
        return case

    async def originals(self, case_id: int) -> list[OriginalSeries]:
        """Row 11 (inferred): the original files of every series of the case, as GET URLs.

        The only caller of ``wire.originals_path`` and ``wire.parse_originals``: any answer of
        another shape fails here, with a message saying the endpoint's form was assumed.
        """
        path = wire.originals_path(case_id)
        reply = await self._api("GET", path, idempotent=True)
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
        """Stream a presigned GET URL into ``dest`` (no Authorization); its sha256 and size."""
        shown = redact_url(url)
        if not transport_allowed(url):
            raise ApiError(f"GET {shown}: a download URL that is not https", method="GET")
        result: list[tuple[str, int]] = []

        async def send(remaining: float) -> Reply:
            async with self._upload_slots:
                started = await self.pacer.wait()
                timeout = aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeouts.connect, sock_read=self.timeouts.stall
                )
                try:
                    async with self.session.get(url, timeout=timeout) as response:
                        if response.status != 200:
                            text = await response.text(errors="replace")
                            return Reply(response.status, text, response.headers, started)
                        result[:] = [await _stream_to(response, dest)]
                        return Reply(response.status, "", response.headers, started)
                except aiohttp.ClientConnectorError as exc:
                    raise SendFailed(scrub(str(exc), url, shown, None), maybe_sent=False) from None
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    reason = scrub(str(exc), url, shown, None) or type(exc).__name__
                    raise SendFailed(reason, maybe_sent=True) from None

        reply = await self._retrying("GET", shown, send, idempotent=True)
        if not reply.ok or not result:
            raise self._failure("GET", shown, reply, idempotent=True)
        return result[0]

    # --- transport ---

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use RadiopaediaClient as 'async with RadiopaediaClient(...)'")
        return self._session

    async def _fetch(
        self,
        method: str,
        path: str,
        parse: Callable[[int, Any], _T],
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[_T, Reply]:
        """An idempotent call whose answer must be readable: a 2xx that is not the JSON
        protocol.md describes (a proxy's HTML page) is asked for again, a bounded number of
        times."""
        for attempt in range(1, self.retry.attempts + 1):
            reply = await self._api(
                method, path, idempotent=True, json_body=json_body, params=params
            )
            try:
                return self._parse(method, path, reply, partial(parse, reply.status)), reply
            except ApiError as exc:
                if attempt == self.retry.attempts:
                    exc.hint = f"gave up after {attempt} unreadable answers"
                    raise
                log.debug("%s %s: unreadable answer; asking again", method, path)
                await self.pacer.sleep(self.retry.backoff(attempt))
        raise AssertionError("unreachable: the last attempt raises")

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

            async def send(
                remaining: float, token: str = token, headers: dict[str, str] = headers
            ) -> Reply:
                return await self._send(
                    method,
                    self.api_url + path,
                    path,
                    slots=self._api_slots,
                    secret=token,
                    headers=headers,
                    json=json_body,
                    params=params,
                    timeout=self._timeout(remaining),
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
        fresh: bool = False,
    ) -> None:
        """Stream one file to S3: Content-Type and Content-Length, never Authorization."""
        shown = redact_url(url)
        size = path.stat().st_size
        sent = 0

        def rewind() -> None:
            nonlocal sent
            if progress is not None and sent:
                progress(-sent)
            sent = 0

        async def send(remaining: float) -> Reply:
            watchdog = Watchdog(self.timeouts.stall)

            def count(n: int) -> None:
                nonlocal sent
                sent += n
                watchdog.progressed()
                if progress is not None:
                    progress(n)

            headers = {"Content-Type": content_type, "Content-Length": str(size)}
            return await self._send(
                "PUT",
                url,
                shown,
                slots=None if fresh else self._upload_slots,
                secret=None,
                watchdog=watchdog,
                headers=headers,
                data=file_chunks(path, count),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect),
            )

        try:
            reply = await self._retrying("PUT", shown, send, idempotent=True, rewind=rewind)
        except ApiError:
            rewind()  # the progress shown must not count bytes that never arrived
            raise
        if reply.ok:
            return
        rewind()
        if reply.status == 403 and not last_chance:
            raise UrlRefused()
        raise self._failure("PUT", shown, reply, idempotent=True)

    async def _retrying(
        self,
        method: str,
        shown: str,
        send: Callable[[float], Awaitable[Reply]],
        *,
        idempotent: bool,
        rewind: Callable[[], None] | None = None,
    ) -> Reply:
        """Send until an answer not worth retrying, within ``attempts`` failures and the deadline.

        A throttle (429, or 503 with Retry-After) goes to the pacer, which spaces every
        worker's requests; it costs no attempt, only time.
        """
        clock = self.pacer.clock
        started = clock()
        failures = 0
        while True:
            reply: Reply | None = None
            try:
                reply = await send(self.retry.deadline - (clock() - started))
            except SendFailed as exc:
                if exc.maybe_sent and not idempotent:
                    raise OutcomeUnknown(
                        f"{method} {shown}: {exc.reason}; the server may or may not have done it",
                        method=method,
                        path=shown,
                        hint="not retried, to avoid a duplicate",
                    ) from None
                reason = exc.reason
            else:
                if not throttled(reply):
                    self.pacer.accepted()
                if not _worth_retrying(reply.status, idempotent):
                    return reply
                reason = f"HTTP {reply.status}"
            paced = reply is not None and throttled(reply)
            if reply is not None and paced:
                retry_after = retry_after_seconds(reply.headers.get("Retry-After"))
                self.pacer.throttled(reply.started, retry_after)
                delay = retry_after or 0.0
            else:
                failures += 1
                delay = self.retry.backoff(failures)
            if failures >= self.retry.attempts or clock() - started + delay > self.retry.deadline:
                note = f"gave up after {failures} attempts, {clock() - started:.0f} s"
                if reply is not None:
                    raise self._failure(method, shown, reply, idempotent=idempotent, note=note)
                raise ApiError(f"{method} {shown}: {reason} ({note})", method=method, path=shown)
            log.debug("%s %s: %s; retrying in %.2f s", method, shown, reason, delay)
            if rewind is not None:
                rewind()
            if not paced:
                await self.pacer.sleep(delay)  # a throttle waits in the pacer instead

    async def _send(
        self,
        method: str,
        url: str,
        shown: str,
        *,
        slots: asyncio.Semaphore | None,
        secret: str | None,
        watchdog: Watchdog | None = None,
        **kwargs: Any,
    ) -> Reply:
        """One request; no answer becomes ``SendFailed``, never with the URL's query."""
        async with slots or contextlib.nullcontext():
            started = await self.pacer.wait(urgent=slots is None)
            began = time.monotonic()

            async def exchange() -> Reply:
                async with self.session.request(method, url, **kwargs) as response:
                    text = await response.text(errors="replace")
                    return Reply(response.status, text, response.headers, started)

            try:
                if watchdog is None:
                    reply = await exchange()
                else:
                    watchdog.progressed()  # waiting for a slot was not a stall
                    reply = await watchdog.guard(exchange())
            except aiohttp.ClientConnectorError as exc:  # never reached the server
                raise SendFailed(scrub(str(exc), url, shown, secret), maybe_sent=False) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = scrub(str(exc), url, shown, secret) or type(exc).__name__
                if isinstance(exc, Stalled):
                    reason = f"no progress for {self.timeouts.stall:g} s (stall timeout)"
                elif isinstance(exc, asyncio.TimeoutError):
                    reason = f"no complete answer within {self.timeouts.read:g} s (read timeout)"
                log.debug("%s %s -> %s", method, shown, reason)
                raise SendFailed(reason, maybe_sent=True) from None
        elapsed = (time.monotonic() - began) * 1000
        log.debug("%s %s -> %d (%.0f ms)", method, shown, reply.status, elapsed)
        if secret:
            text = reply.text.replace(secret, REDACTED)
            reply = Reply(reply.status, text, reply.headers, started)
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


async def _stream_to(response: aiohttp.ClientResponse, dest: Path) -> tuple[str, int]:
    """Write the body to ``dest`` chunk by chunk, hashing as it goes; memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    async with aiofiles.open(dest, "wb") as handle:
        async for chunk in response.content.iter_chunked(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            await handle.write(chunk)
    return digest.hexdigest(), size


def _worth_retrying(status: int, idempotent: bool) -> bool:
    return status in NOT_PROCESSED or (idempotent and status in SERVER_ERRORS)


def _plain(parse: Callable[[Any], _T]) -> Callable[[int, Any], _T]:
    """A parser of the JSON alone, for answers whose status says nothing more."""
    return lambda _status, data: parse(data)


def _token_refused(path: str, reply: Reply) -> bool:
    """A 401 about the token, not image_preparation's empty 401 for an unknown case."""
    if not path.startswith("/image_preparation"):
        return True
    return "WWW-Authenticate" in reply.headers or bool(reply.text.strip())
