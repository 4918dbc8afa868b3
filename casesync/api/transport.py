"""How one request travels: answers, timeouts, the upload watchdog, and what is never shown.

Kept apart from ``client.py`` (what to call) and ``requester.py`` (when to retry) so each
stays short; nothing here knows the Radiopaedia endpoints.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, TypeVar
from urllib.parse import urlsplit

from casesync.api.models import Planned
from casesync.errors import ApiError, FileChanged
from casesync.fsutil import NotRegularFile, open_regular
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


class CheckedBody:
    """An upload body that is exactly the planned bytes, in CHUNK-sized pieces.

    A file rewritten since it was checked (by a user, or within the timestamp tick the hash
    cache cannot see) must not reach the server: a file over one chunk is hashed whole before
    its first byte goes out, and every file's last chunk is held back until the running hash
    matches, so one that changes while it streams never completes an object on the server.
    Memory stays flat whatever the size.
    """

    def __init__(self, planned: Planned, count: Callable[[int], None]) -> None:
        self.planned = planned
        self.count = count
        self.changed: FileChanged | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(open_regular, self.planned.path, self.planned.display)
        except (OSError, NotRegularFile) as exc:  # gone, or swapped for a FIFO or a folder
            self._refuse(f"now: {exc.strerror if isinstance(exc, OSError) else exc.message}")
        try:
            if self.planned.size > CHUNK:
                self._check(*await asyncio.to_thread(_digest, handle))
                await asyncio.to_thread(handle.seek, 0)
            digest = hashlib.sha256()
            total = 0
            held = await asyncio.to_thread(handle.read, CHUNK)
            while held:
                following = await asyncio.to_thread(handle.read, CHUNK)
                digest.update(held)
                total += len(held)
                if total + len(following) > self.planned.size:
                    self._refuse(f"more than {self.planned.size} bytes")
                if not following:
                    self._check(digest.hexdigest(), total)
                self.count(len(held))
                yield held
                held = following
            if total == 0:
                self._check(digest.hexdigest(), 0)
        finally:
            handle.close()

    def _check(self, sha256: str, size: int) -> None:
        if size != self.planned.size:
            self._refuse(f"{size} bytes, not {self.planned.size}")
        if sha256 != self.planned.sha256:
            self._refuse("new content, same size")

    def _refuse(self, found: str) -> NoReturn:
        self.changed = FileChanged(self.planned.display, found)
        raise self.changed

    def raise_if_changed(self) -> None:
        """After the request: a body cut short by the check is this error, not a network one."""
        if self.changed is not None:
            raise self.changed


def _digest(handle: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


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
