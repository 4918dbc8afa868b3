"""Fault injection and request counts: latency, random 500/503, rate limit, dropped
connections, creates applied but never answered, 2xx answers a proxy turned into HTML, and
answers that never end.

Every counted request draws the same seven numbers from one seeded generator, whichever faults
are switched on, so a given ``--seed`` and request sequence always meets the same faults. The
``/_emulator/*`` inspection routes are never counted nor faulted.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from casesync.emulator.state import State

ADMIN_PREFIX = "/_emulator/"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CREATES = frozenset(
    {
        "POST /api/v1/cases",
        "POST /api/v1/cases/{case_id}/studies",
        "POST /image_preparation/{case_id}/studies/{study_id}/series",
    }
)
GARBAGE = "<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>"
STALL_POLL = 0.05  # seconds between checks that the client of a stalled answer is still there


def route_name(request: web.Request) -> str:
    """``"METHOD /route/{template}"``, the key of the request counts."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else "<unmatched>"
    return f"{request.method} {template}"


class FaultInjector:
    """The middleware's memory: the generator, a sequence number and the rate-limit bucket."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.config = state.config
        self.rng = random.Random(self.config.seed)
        self.sequence = 0
        self.bucket = float(self.config.rate_limit or 0.0)
        self.refilled = time.monotonic()

    def _rate_limited(self) -> float | None:
        """Seconds until a request would be allowed, or None if this one may pass now."""
        rate = self.config.rate_limit
        if rate is None:
            return None
        now = time.monotonic()
        self.bucket = min(rate, self.bucket + (now - self.refilled) * rate)
        self.refilled = now
        if self.bucket >= 1.0:
            self.bucket -= 1.0
            return None
        return (1.0 - self.bucket) / rate

    def _record(self, sequence: int, name: str, fault: str, **extra: Any) -> None:
        self.state.faults.append({"seq": sequence, "request": name, "fault": fault, **extra})

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        name = route_name(request)
        self.state.requests[name] += 1
        self.state.in_flight += 1
        try:
            return await self._faulted(request, handler, name)
        except ConnectionResetError:  # the client left mid-body (killed, or a refused upload):
            return web.Response(status=400, text="connection lost")  # no one reads it
        finally:
            self.state.in_flight -= 1

    async def _faulted(
        self, request: web.Request, handler: Handler, name: str
    ) -> web.StreamResponse:
        sequence = self.sequence
        self.sequence += 1
        rolls = [self.rng.random() for _ in range(7)]
        fail_roll, fail_kind, drop_roll, drop_when, lost_roll, garbage_roll, stall_roll = rolls
        config = self.config
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)
        wait = self._rate_limited()
        if wait is not None:
            self._record(sequence, name, "rate-limited")
            retry_after = str(max(1, math.ceil(wait)))
            return web.json_response(
                {"error": "Too many requests"}, status=429, headers={"Retry-After": retry_after}
            )
        if fail_roll < config.fail_rate:
            status = 500 if fail_kind < 0.5 else 503
            self._record(sequence, name, f"fail-{status}")
            return web.json_response({"error": "injected failure"}, status=status)
        if drop_roll < config.drop_rate:
            return await self._drop(request, handler, sequence, name, drop_when)
        if name in CREATES and lost_roll < config.drop_after_create:
            return await self._drop(request, handler, sequence, name, 0.0, "drop-after-create")
        if stall_roll < config.stall_rate:
            self._record(sequence, name, "stall")
            return await _stall(request)
        response = await handler(request)
        if garbage_roll < config.garbage_rate and 200 <= response.status < 300:
            self._record(sequence, name, "garbage", status=response.status)
            return web.Response(status=response.status, text=GARBAGE, content_type="text/html")
        return response

    async def _drop(
        self,
        request: web.Request,
        handler: Handler,
        sequence: int,
        name: str,
        when: float,
        fault: str = "drop-after-apply",
    ) -> web.StreamResponse:
        """Close the connection; for a mutating call, half the time after the change is applied."""
        if request.method in MUTATING and when < 0.5:
            try:
                response = await handler(request)
                status = response.status
            except web.HTTPException as exc:
                status = exc.status
            self._record(sequence, name, fault, status=status)
        else:
            self._record(sequence, name, "drop-before")
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPServiceUnavailable()  # never reaches the client: the socket is closed


async def _stall(request: web.Request) -> web.StreamResponse:
    """Headers and a first byte, then nothing, for as long as the client waits."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b"[")
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(STALL_POLL)
    return response
