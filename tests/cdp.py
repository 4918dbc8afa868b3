"""A small Chrome DevTools protocol client for the browser test: headless Chromium, loopback only.

Chromium is started with a throwaway profile and every background service off; it prints the
DevTools websocket address on stderr ("DevTools listening on ws://..."), which aiohttp connects
to. Commands go to one page target through a flattened session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
TIMEOUT = 30.0


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab: ``send`` a command, ``wait_for`` an event; events are kept in ``events``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:
            reply = await self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    async def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        while True:
            event = await self._receive()
            if event.get("method") == method:
                return event
            self.events.append(event)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str) -> Any:
        """Evaluate until truthy (the page reacts to input asynchronously); fails after TIMEOUT."""
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while not (value := await self.evaluate(expression)):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"still false after {TIMEOUT}s: {expression}")
            await asyncio.sleep(0.02)
        return value

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = await self.ws.receive_json(timeout=TIMEOUT)
        return message


@contextlib.asynccontextmanager
async def chromium_page(profile: Path, width: int, height: int) -> AsyncIterator[Page]:
    """Start headless Chromium, open a tab of ``width`` x ``height``, close everything after."""
    binary = chromium_path()
    assert binary is not None
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    drain: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(_devtools_url(process), TIMEOUT)
        drain = asyncio.create_task(_drain(process))  # a full stderr pipe would block chromium
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            page = Page(ws)
            target = await page.send("Target.createTarget", url="about:blank")
            attached = await page.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page.session = attached["sessionId"]
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield page
            page.session = None
            await page.send("Browser.close")
        await asyncio.wait_for(process.wait(), TIMEOUT)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)  # our own child's group, started above
            await process.wait()
        if drain is not None:
            await drain


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.read(65536):
        pass


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    while line := await process.stderr.readline():
        found = re.search(rb"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1).decode()
    raise RuntimeError("chromium exited without a DevTools address")
