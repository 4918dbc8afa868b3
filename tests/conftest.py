"""Shared fixtures. The Radiopaedia emulator runs on loopback only, on a free port."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from emulator_helpers import EmulatorFactory
from scripted import Script

from casesync.emulator import Emulator, EmulatorConfig, EmulatorThread


@pytest.fixture
async def emulator_factory() -> AsyncIterator[EmulatorFactory]:
    """``await emulator_factory(drop_rate=0.5, seed=1)``: started in the test's loop, stopped after."""
    started: list[Emulator] = []

    async def make(**overrides: Any) -> Emulator:
        config = dataclasses.replace(EmulatorConfig(), **overrides)
        emulator = Emulator(config)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        await emulator.stop()


@pytest.fixture
async def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    """A default emulator (job_seconds shortened so polls finish fast)."""
    return await emulator_factory(job_seconds=0.05)


@pytest.fixture
def emulator_thread() -> Iterator[EmulatorThread]:
    """An emulator serving from a background thread, for tests that run the CLI as a subprocess."""
    with EmulatorThread(EmulatorConfig(job_seconds=0.05)) as running:
        yield running


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    """A scripted server on loopback: ``script.on(method, path, answers...)``."""
    scripted = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    scripted.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield scripted
    await runner.cleanup()
