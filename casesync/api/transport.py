"""How one request travels: answers, timeouts, the upload watchdog, and what is never shown.

Kept apart from ``client.py`` (what to call) and ``requester.py`` (when to retry) so each
stays short; nothing here knows the Radiopaedia endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import aiofiles

from casesync.errors import ApiError
from casesync.settings import display_url, transport_allowed

_T = TypeVar("_T")

CHUNK = 256 * 1024  # bytes read from disk per step of an upload
BODY_SHOWN = 500  # characters of a response body kept in an error message
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]
    started: float = 0.0  # the pacer's clock when the request left

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class SendFailed(Exception):
    """No answer: the connection failed or timed out. ``maybe_sent``: the server may have it."""

    def __init__(self, reason: str, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


class UrlRefused(Exception):
    """S3 answered 403: the presigned URL expired (or its signature no longer holds)."""


class Stalled(asyncio.TimeoutError):
    """An upload made no progress for the stall timeout."""


class Watchdog:
    """Fails a transfer that makes no progress for ``limit`` seconds (sending or answering)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._loop = asyncio.get_running_loop()
        self.last = self._loop.time()

    def progressed(self) -> None:
        self.last = self._loop.time()

    async def guard(self, work: Awaitable[_T]) -> _T:
        task = asyncio.ensure_future(work)
        try:
            while True:
                left = self.last + self.limit - self._loop.time()
                if left <= 0:
                    raise Stalled()
                done, _ = await asyncio.wait({task}, timeout=left)
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def redact_url(url: str) -> str:
    """A presigned URL without its query string (the signature) nor any user info."""
    parts = urlsplit(display_url(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?" + REDACTED if parts.query else "")


def trim(text: str, limit: int = BODY_SHOWN) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def file_chunks(path: Path, count: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The file in CHUNK-sized pieces, so memory stays flat whatever its size."""
    async with aiofiles.open(path, "rb") as handle:
        while chunk := await handle.read(CHUNK):
            count(len(chunk))
            yield chunk


def throttled(reply: Reply) -> bool:
    """The server asks everyone to slow down: a 429, or a 503 with Retry-After."""
    return reply.status == 429 or (reply.status == 503 and "Retry-After" in reply.headers)


def scrub(text: str, url: str, shown: str, secret: str | None) -> str:
    text = text.replace(url, shown)
    return text.replace(secret, REDACTED) if secret else text


def check_upload_url(url: str) -> None:
    """Never send file bytes in clear: a presigned URL must be https (http only on loopback)."""
    if not transport_allowed(url):
        shown = redact_url(url)
        raise ApiError(
            f"PUT {shown}: the server handed out an upload URL that is not https; nothing was sent",
            method="PUT",
            path=shown,
            hint="file bytes are only sent over https (plain http only to loopback hosts)",
        )
