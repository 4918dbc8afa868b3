"""The emulator as an object: routes, start/stop, state-file saving, and a thread runner.

Tests start it inside their own event loop (``Emulator``); synchronous tests that run the real
CLI as a subprocess start it in a background thread (``EmulatorThread``); ``casesync emulator``
serves it until Ctrl-C (``serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from casesync.emulator import admin, api, oauth, s3, site
from casesync.emulator.blobs import BlobStore
from casesync.emulator.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    OOB_REDIRECT_URI,
    EmulatorConfig,
)
from casesync.emulator.faults import FaultInjector
from casesync.emulator.state import STATE, State, read_state_file, write_state_file
from casesync.errors import ConfigError

SAVE_INTERVAL = 0.2  # seconds between state-file writes while requests keep changing things
MAX_JSON_BODY = 32 * 1024 * 1024  # direct_s3_uploads with many thousands of hashes

_T = TypeVar("_T")


def build_app(state: State) -> web.Application:
    """Every route of protocol.md plus the inspection routes."""
    app = web.Application(
        middlewares=[FaultInjector(state).middleware], client_max_size=MAX_JSON_BODY
    )
    app[STATE] = state
    app.add_routes(
        [
            web.get("/oauth/authorize", oauth.authorize),
            web.post("/oauth/token", oauth.token),
            web.post("/oauth/revoke", oauth.revoke),
            web.get("/api/v1/users/current", api.current_user),
            web.get("/api/v1/cases", api.list_cases),
            web.post("/api/v1/cases", api.create_case),
            web.post("/api/v1/cases/{case_id}/studies", api.create_study),
            web.post("/api/v1/cases/{case_id}/studies/{study_id}/images", api.add_image),
            web.put("/api/v1/cases/{case_id}/mark_upload_finished", api.mark_upload_finished),
            web.post("/direct_s3_uploads", s3.direct_s3_uploads),
            web.put("/s3/{key:.+}", s3.put_object),
            web.get("/s3/{key:.+}", s3.get_object),
            web.get("/api/v1/cases/{case_id}/originals", api.originals),
            web.post("/image_preparation/{case_id}/studies/{study_id}/series", api.create_series),
            web.get(
                "/image_preparation/{case_id}/studies/{study_id}/upload/{job_id}", api.poll_job
            ),
            web.get("/cases/{case_id}", site.case_page),
        ]
    )
    app.add_routes(admin.ROUTES)
    return app


class Emulator:
    """One emulated Radiopaedia, started and stopped in the caller's event loop."""

    def __init__(
        self, config: EmulatorConfig, *, pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.config = config
        self._pause = pause  # how the background saver waits; tests pass a clock they drive
        path = config.state_file
        blobs = BlobStore(path.with_name(path.name + ".blobs") if path is not None else None)
        self.state = State(config, blobs)
        if path is not None:
            read_state_file(self.state, path)
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Listen (port 0 = a free one) and return the base URL."""
        self._runner = web.AppRunner(build_app(self.state), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"the emulator cannot listen on {self.config.host}:{self.config.port}: "
                f"{exc.strerror or exc}",
                hint="choose another --port (--port 0 picks a free one), or stop what uses it",
            ) from None
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if self.config.state_file is not None:
            self._saver = asyncio.create_task(self._save_periodically())
        return self.base_url

    async def stop(self) -> None:
        """Stop serving and save the state file; a second call does nothing."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.save()

    def save(self) -> None:
        """Write the state file now (if there is one)."""
        if self.config.state_file is not None:
            self.state.dirty = False
            write_state_file(self.config.state_file, json.dumps(self.state.dump(), indent=1))

    async def _save_periodically(self) -> None:
        while True:
            await self._pause(SAVE_INTERVAL)
            if self.state.dirty and self.config.state_file is not None:
                self.state.dirty = False
                text = json.dumps(self.state.dump(), indent=1)
                await asyncio.to_thread(write_state_file, self.config.state_file, text)

    def issue_tokens(self, ttl: int | None = None) -> dict[str, Any]:
        """A fresh token pair for the demo user, as /oauth/token would answer."""
        return oauth.token_body(self.state.issue_token(self.state.demo_user.id, ttl))

    def authorization_code(self) -> str:
        """A fresh code for the demo user, bound to the out-of-band redirect URI."""
        return self.state.new_grant(self.state.demo_user.id, OOB_REDIRECT_URI).code

    def snapshot(self) -> dict[str, Any]:
        """The same document as ``GET /_emulator/state``."""
        return admin.snapshot(self.state)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (tokens, URLs and jobs expire without waiting)."""
        self.state.clock_offset += seconds


class EmulatorThread:
    """An emulator serving from a background thread with its own loop, for synchronous tests.

    Calls into the emulator run on that loop (``call``), so they never race with requests.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.emulator = Emulator(config)
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        self.base_url = self._run(self.emulator.start())
        return self.base_url

    def stop(self) -> None:
        self._run(self.emulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: Awaitable[_T]) -> _T:
        async def wrapped() -> _T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout=30)

    def call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the emulator's loop and return its result."""

        async def wrapped() -> _T:
            return function()

        return self._run(wrapped())

    def issue_tokens(self, ttl: int | None = None) -> dict[str, Any]:
        return self.call(lambda: self.emulator.issue_tokens(ttl))

    def authorization_code(self) -> str:
        return self.call(self.emulator.authorization_code)

    def snapshot(self) -> dict[str, Any]:
        return self.call(self.emulator.snapshot)

    def advance_clock(self, seconds: float) -> None:
        self.call(lambda: self.emulator.advance_clock(seconds))

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def banner(base_url: str, tokens: dict[str, Any]) -> str:
    """What ``casesync emulator`` prints at start: where it is and how to log in."""
    return "\n".join(
        [
            f"Radiopaedia emulator listening on {base_url}",
            "",
            "Log in (the demo user approves at once; open the printed URL to see the code):",
            f"  casesync login --api-url {base_url} --client-id {DEMO_CLIENT_ID} "
            f"--client-secret {DEMO_CLIENT_SECRET}",
            "",
            "Or skip the login for a quick try:",
            f"  export CASESYNC_API_URL={base_url}",
            f"  export CASESYNC_ACCESS_TOKEN={tokens['access_token']}",
            "",
            f"Inspect: {base_url}/_emulator/state    Stop: Ctrl-C",
        ]
    )


async def serve(config: EmulatorConfig, announce: Callable[[str], None]) -> None:
    """Start, announce, and serve until cancelled (Ctrl-C); the state file is saved on exit."""
    emulator = Emulator(config)
    base_url = await emulator.start()
    try:
        announce(banner(base_url, emulator.issue_tokens()))
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
