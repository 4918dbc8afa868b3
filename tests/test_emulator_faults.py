"""Fault injection on the emulator: off by default, reproducible with a seed, never on /_emulator."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from emulator_helpers import Api, EmulatorFactory, api_for
from typer.testing import CliRunner

from casesync.cli.app import app
from casesync.emulator import Emulator


async def outcomes(emulator: Emulator, count: int) -> list[str]:
    """Alternate reads and creates, one at a time; "dropped" when the connection was closed."""
    results = []
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        for n in range(count):
            try:
                if n % 2:
                    reply = await api.call(
                        "POST", "/api/v1/cases", json={"title": f"c{n}", "system_id": 4}
                    )
                else:
                    reply = await api.call("GET", "/api/v1/users/current")
                results.append(str(reply.status))
            except aiohttp.ClientError:
                results.append("dropped")
    return results


def fault_log(emulator: Emulator) -> list[tuple[int, str, str]]:
    return [(f["seq"], f["request"], f["fault"]) for f in emulator.snapshot()["faults"]]


async def test_no_faults_by_default(emulator: Emulator) -> None:
    assert set(await outcomes(emulator, 18)) == {"200"}
    assert emulator.snapshot()["faults"] == []


async def test_the_same_seed_gives_the_same_faults(emulator_factory: EmulatorFactory) -> None:
    knobs = {"fail_rate": 0.25, "drop_rate": 0.2, "draft_quota": None}
    first = await emulator_factory(seed=7, **knobs)
    second = await emulator_factory(seed=7, **knobs)
    other = await emulator_factory(seed=8, **knobs)
    runs = [await outcomes(e, 60) for e in (first, second, other)]
    assert runs[0] == runs[1]
    assert fault_log(first) == fault_log(second)
    assert {"200", "dropped"} <= set(runs[0])
    assert {"500", "503"} & set(runs[0])
    assert runs[2] != runs[0]
    assert len(first.snapshot()["cases"]) == len(second.snapshot()["cases"])


async def test_a_dropped_create_may_have_happened(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(drop_rate=1.0, seed=3, draft_quota=None)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        for n in range(20):
            try:
                await api.call("POST", "/api/v1/cases", json={"title": f"c{n}", "system_id": 4})
            except aiohttp.ClientError:
                continue
            raise AssertionError("every connection should have been dropped")
    faults = emulator.snapshot()["faults"]
    applied = [f for f in faults if f["fault"] == "drop-after-apply"]
    assert {f["fault"] for f in faults} == {"drop-before", "drop-after-apply"}
    assert all(f["status"] == 200 for f in applied)
    assert len(emulator.snapshot()["cases"]) == len(applied)


async def test_fail_rate_never_touches_the_inspection_routes(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = await emulator_factory(fail_rate=1.0, drop_rate=1.0, latency_ms=500, rate_limit=1)
    async with aiohttp.ClientSession() as session:
        api = Api(session, emulator.base_url, "")
        for _ in range(5):
            assert (await api.call("GET", "/_emulator/state", auth=False)).status == 200
            assert (await api.call("POST", "/_emulator/tokens", auth=False, json={})).status == 200
    assert emulator.snapshot()["requests"] == {}


async def test_every_endpoint_can_fail(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(fail_rate=1.0)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        for method, path in [
            ("GET", "/api/v1/users/current"),
            ("POST", "/oauth/token"),
            ("POST", "/direct_s3_uploads"),
            ("PUT", "/s3/uploads/1/ab?expires=1&signature=x"),
            ("GET", "/image_preparation/1/studies/2/upload/3"),
        ]:
            assert (await api.call(method, path)).status in (500, 503), path


async def test_rate_limit_answers_429_with_retry_after(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(rate_limit=5)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        replies = [await api.call("GET", "/api/v1/users/current") for _ in range(12)]
    statuses = [r.status for r in replies]
    assert statuses[:5] == [200] * 5
    limited = [r for r in replies if r.status == 429]
    assert len(limited) >= 5
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert "rate-limited" in {f["fault"] for f in emulator.snapshot()["faults"]}


async def test_latency_is_added_to_every_request(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(latency_ms=150)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        started = time.monotonic()
        assert (await api.call("GET", "/api/v1/users/current")).status == 200
    assert time.monotonic() - started >= 0.15


async def test_drop_after_create_makes_the_case_and_never_answers(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = await emulator_factory(drop_after_create=1.0, seed=5, draft_quota=None)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        assert (await api.call("GET", "/api/v1/users/current")).status == 200  # not a create
        for n in range(3):
            with pytest.raises(aiohttp.ClientError):
                await api.call("POST", "/api/v1/cases", json={"title": f"c{n}", "system_id": 4})
    state = emulator.snapshot()
    assert [c["title"] for c in state["cases"]] == ["c0", "c1", "c2"]
    assert [f["fault"] for f in state["faults"]] == ["drop-after-create"] * 3


async def test_garbage_rate_sends_a_proxy_page_with_the_2xx(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = await emulator_factory(garbage_rate=1.0, seed=5)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        user = await api.call("GET", "/api/v1/users/current")
        created = await api.call("POST", "/api/v1/cases", json={"title": "c", "system_id": 4})
        refused = await api.call("POST", "/api/v1/cases", json={"title": ""})
    assert (user.status, created.status) == (200, 200)
    assert user.text.startswith("<html>") and created.text.startswith("<html>")
    assert refused.status == 422 and "blank" in refused.text  # errors are left alone
    assert len(emulator.snapshot()["cases"]) == 1  # the server did act
    assert [f["fault"] for f in emulator.snapshot()["faults"]] == ["garbage", "garbage"]


async def test_stall_starts_an_answer_that_never_ends(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(stall_rate=1.0, seed=5)
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = api_for(emulator, session)
        with pytest.raises(asyncio.TimeoutError):
            await api.call("GET", "/api/v1/users/current")
    assert [f["fault"] for f in emulator.snapshot()["faults"]] == ["stall"]


async def test_the_new_faults_follow_the_seed(emulator_factory: EmulatorFactory) -> None:
    knobs = {"drop_after_create": 0.3, "garbage_rate": 0.3, "draft_quota": None}
    first = await emulator_factory(seed=11, **knobs)
    second = await emulator_factory(seed=11, **knobs)
    assert await outcomes(first, 40) == await outcomes(second, 40)
    assert fault_log(first) == fault_log(second)
    assert {"garbage", "drop-after-create"} <= {f for _, _, f in fault_log(first)}


@pytest.mark.parametrize("flag", ["--drop-after-create", "--garbage-rate", "--stall"])
def test_the_new_fault_flags_are_rates(flag: str) -> None:
    result = CliRunner().invoke(app, ["emulator", "--port", "0", flag, "1.5"])
    assert result.exit_code == 2 and "must be between 0 and 1" in result.output
