"""How the client's calls travel: one pooled session, retries by class, one shared pacer.

What may be retried follows from what the server may have done: GET, the S3 PUT and
direct_s3_uploads are idempotent; creating a case, study or series is not, so after a timeout,
a dropped connection or a 5xx those raise ``OutcomeUnknown`` instead of trying again (a 429 or
503 means nothing was processed, so those are retried for every call).

Kept apart from ``client.py`` (which endpoint, with what body) so each stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiofiles
import aiohttp

from casesync.api import wire
from casesync.api.models import Planned
from casesync.api.pacer import NOT_PROCESSED, SERVER_ERRORS, Pacer, RetryPolicy, retry_after_seconds
from casesync.api.transport import (
    CHUNK,
    REDACTED,
    CheckedBody,
    Reply,
    SendFailed,
    Stalled,
    UrlRefused,
    Watchdog,
    redact_url,
    scrub,
    throttled,
    trim,
)
from casesync.errors import ApiError, AuthError, FileChanged, OutcomeUnknown, OverQuota
from casesync.settings import Timeouts

log = logging.getLogger("casesync.api")

_T = TypeVar("_T")


class TokenSource(Protocol):
    """What the requests need from ``casesync.api.credentials.TokenProvider``."""

    async def token(self) -> str: ...
    async def refresh(self, rejected_token: str) -> str: ...


class Requester:
    """Sends ``RadiopaediaClient``'s requests within its slots, the pacer and the retry policy,
    and turns the answers into values or casesync errors; it knows no endpoint."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource,
        *,
        api_concurrency: int,
        upload_concurrency: int,
        timeouts: Timeouts | None,
        retry: RetryPolicy | None,
        pacer: Pacer | None,
    ) -> None:
        self.api_url = api_url
        self.tokens = tokens
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy(deadline=self.timeouts.deadline)
        self.pacer = pacer or Pacer()
        self._pool_size = api_concurrency + upload_concurrency
        self._api_slots = asyncio.Semaphore(api_concurrency)
        self._upload_slots = asyncio.Semaphore(upload_concurrency)
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Start the pooled session (in the event loop: ``RadiopaediaClient.__aenter__``)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size), timeout=self._timeout(None)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, remaining: float | None) -> aiohttp.ClientTimeout:
        """An API attempt: the whole answer (connecting included) within the read timeout,
        and never past the call's deadline."""
        read = self.timeouts.read if remaining is None else min(self.timeouts.read, remaining)
        read = max(0.001, read)
        return aiohttp.ClientTimeout(total=read, sock_connect=min(self.timeouts.connect, read))

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use RadiopaediaClient as 'async with RadiopaediaClient(...)'")
        return self._session

    async def fetch(
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
            reply = await self.call(
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

    async def call(
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
            refused = reply.status == 401 and wire.token_refused(path, reply.headers, reply.text)
            if refused and not refreshed:
                refreshed = True
                await self.tokens.refresh(token)
                continue
            raise self._failure(method, path, reply, idempotent=idempotent)

    async def put_file(
        self,
        planned: Planned,
        url: str,
        content_type: str,
        progress: Callable[[int], None] | None,
        *,
        last_chance: bool,
        fresh: bool = False,
    ) -> None:
        """Stream one file to S3: Content-Type and Content-Length, never Authorization; only
        the planned bytes (``FileChanged`` otherwise, never retried)."""
        shown = redact_url(url)
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

            body = CheckedBody(planned, count)
            headers = {"Content-Type": content_type, "Content-Length": str(planned.size)}
            try:
                reply = await self._send(
                    "PUT",
                    url,
                    shown,
                    slots=None if fresh else self._upload_slots,
                    secret=None,
                    watchdog=watchdog,
                    headers=headers,
                    data=body.chunks(),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect),
                )
            except SendFailed:
                body.raise_if_changed()
                raise
            body.raise_if_changed()
            return reply

        try:
            reply = await self._retrying("PUT", shown, send, idempotent=True, rewind=rewind)
        except (ApiError, FileChanged):
            rewind()  # the progress shown must not count bytes that never arrived
            raise
        if reply.ok:
            return
        rewind()
        if reply.status == 403 and not last_chance:
            raise UrlRefused()
        raise self._failure("PUT", shown, reply, idempotent=True)

    async def get_file(self, url: str, dest: Path) -> tuple[str, int]:
        """Stream a presigned GET URL into ``dest`` (no Authorization); its sha256 and size."""
        shown = redact_url(url)
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
        if reply.status == 401 and not wire.token_refused(shown, reply.headers, reply.text):
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

    def parse_created(self, path: str, reply: Reply, parse: Callable[[Any], _T]) -> _T:
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
