"""Shared fixtures. The Radiopaedia emulator runs on loopback only, on a free port."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from emulator_helpers import EmulatorFactory

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
