"""A loopback proxy in front of the emulator that spoils chosen answers, for apply tests.

It forwards every request, except that the calls a ``Spoiler`` picks are spoiled: dropped
before they reach the emulator, dropped after the emulator acted, answered with a proxy's HTML
page after the emulator acted, refused with a 401, or (for the case listing) given creation
times that are not times. It serves from its own thread, so apply can run in the test's thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

_T = TypeVar("_T")
ROUTES = {
    "case": re.compile(r"POST /api/v1/cases$"),
    "study": re.compile(r"POST /api/v1/cases/\d+/studies$"),
    "series": re.compile(r"POST /image_preparation/\d+/studies/\d+/series$"),
    "listing": re.compile(r"GET /api/v1/cases$"),
}
PASSED_HEADERS = ("Content-Type", "X-Next-Cursor", "Retry-After", "WWW-Authenticate")
HTML_PAGE = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


class Spoiler:
    """``Spoiler(case=["drop-after"], study=[None, "garbage"])``: per route, the action for
    each successive call (None passes it on); calls past the list pass."""

    def __init__(self, **plans: list[str | None]) -> None:
        self.plans = {route: list(actions) for route, actions in plans.items()}
        self.spoiled: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str) -> str | None:
        route = next((name for name, rx in ROUTES.items() if rx.match(f"{method} {path}")), "")
        queue = self.plans.get(route)
        action = queue.pop(0) if queue else None
        if action is not None:
            self.spoiled.append((route, action))
        return action


class HostileProxy:
    def __init__(self, upstream: str, spoiler: Spoiler) -> None:
        self.upstream = upstream
        self.spoiler = spoiler
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> HostileProxy:
        self._thread.start()
        self.url = self._run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: Awaitable[_T]) -> _T:
        async def wrapped() -> _T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout=30)

    async def _start(self) -> str:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = self.spoiler(request.method, request.path)
        if action == "drop-before":
            return _drop(request)
        if action == "401":
            return web.json_response(
                {"error": "invalid_token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k in ("Authorization", "Accept")}
        if request.content_type:
            headers["Content-Type"] = request.content_type
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as answer:
            status, payload = answer.status, await answer.read()
            passed = {k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}
        if action == "drop-after":
            return _drop(request)
        if action == "garbage":
            return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
        if action == "bad-dates":
            cases: list[dict[str, Any]] = json.loads(payload)
            payload = json.dumps([case | {"created_at": "yesterday"} for case in cases]).encode()
        return web.Response(status=status, body=payload, headers=passed)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection: the client gets no answer at all."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)  # never reaches the client
