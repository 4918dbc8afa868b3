"""A tiny scripted server on loopback for the failures the emulator cannot produce on cue
(exactly one 503, a create that hangs, a body that never ends), shared by the client tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from casesync.api.credentials import TokenProvider
from casesync.api.pacer import RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=10)
TOKEN = "tok-1234567890-secret"
PNG = b"\x89PNG\r\n\x1a\n"
CASE_JSON = (
    '{"id": 7, "title": "T", "author_id": 1, "status": "draft", "visibility": "public", '
    '"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}'
)
USER_JSON = (
    '{"login": "johndoe82", "quotas": {"allowed_draft_cases": 10, "draft_case_count": 3, '
    '"allowed_unlisted_cases": null, "unlisted_case_count": 2}}'
)

Answer = tuple[int, str, dict[str, str]] | Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    size: int
    at: float


class Script:
    """Answers each (method, path) from a queue (the last answer repeats) and records requests."""

    def __init__(self) -> None:
        self.url = ""
        self.answers: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        self.seen: list[Seen] = []

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)].extend(answers)

    def count(self, method: str, path: str) -> int:
        return sum(s.method == method and s.path == path for s in self.seen)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        now = time.monotonic()
        self.seen.append(Seen(request.method, request.path, dict(request.headers), len(body), now))
        queue = self.answers[(request.method, request.path)]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer):
            return await answer(request)
        status, text, headers = answer
        return web.Response(
            status=status, text=text, headers=headers, content_type="application/json"
        )


async def hang(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(2)
    return web.Response(text=CASE_JSON)


async def drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)


def static(url: str) -> TokenProvider:
    return TokenProvider(url, TOKEN, source="the test")


async def endless(request: web.Request) -> web.StreamResponse:
    """A 200 whose body never ends: a byte every 20 ms until the client gives up."""
    await request.read()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        while request.transport is not None and not request.transport.is_closing():
            await response.write(b" ")
            await asyncio.sleep(0.02)
    return response


async def silent(request: web.Request) -> web.StreamResponse:
    """Reads nothing and never answers, until the client gives up."""
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(0.02)
    return web.Response(status=500)
