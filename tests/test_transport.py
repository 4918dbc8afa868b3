"""Every request is bounded: an API answer that never ends, an upload that stalls, against a
hostile server on loopback (small timeouts; nothing waits to prove that nothing happened)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scripted import USER_JSON, Script, endless, silent, static

from casesync.api.client import RadiopaediaClient
from casesync.api.models import UploadSlot
from casesync.api.pacer import RetryPolicy
from casesync.api.transport import Stalled, Watchdog, redact_url
from casesync.errors import ApiError
from casesync.settings import Timeouts

THREE = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, deadline=60)
SMALL = Timeouts(connect=2, read=0.3, stall=0.3, deadline=60)


async def test_an_api_answer_that_never_ends_fails_after_the_read_timeout(script: Script) -> None:
    script.on("GET", "/api/v1/users/current", endless)
    async with RadiopaediaClient(
        script.url, static(script.url), retry=THREE, timeouts=SMALL
    ) as client:
        with pytest.raises(ApiError) as caught:
            await client.current_user()
    message = str(caught.value)
    assert "no complete answer within 0.3 s (read timeout)" in message
    assert "gave up after 3 attempts" in message
    assert script.count("GET", "/api/v1/users/current") == 3


async def test_the_deadline_bounds_every_attempt_together(script: Script) -> None:
    script.on("GET", "/api/v1/users/current", endless)
    many = RetryPolicy(attempts=1000, base_delay=0.01, max_delay=0.02, deadline=1.0)
    timeouts = Timeouts(connect=2, read=0.3, stall=0.3, deadline=1.0)
    async with RadiopaediaClient(
        script.url, static(script.url), retry=many, timeouts=timeouts
    ) as client:
        with pytest.raises(ApiError, match="read timeout"):
            await client.current_user()
    assert 2 <= script.count("GET", "/api/v1/users/current") < 1000


async def test_a_stalled_answer_is_retried_and_the_next_one_read(script: Script) -> None:
    script.on("GET", "/api/v1/users/current", silent, (200, USER_JSON, {}))
    async with RadiopaediaClient(
        script.url, static(script.url), retry=THREE, timeouts=SMALL
    ) as client:
        assert (await client.current_user()).login == "johndoe82"
    assert script.count("GET", "/api/v1/users/current") == 2


async def test_an_upload_that_stalls_fails_the_attempt_and_is_retried(
    tmp_path: Path, script: Script
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
    script.on("PUT", "/bucket/key", silent)
    slot = UploadSlot(5, "ab" * 32, f"{script.url}/bucket/key?X-Amz-Signature=abc")
    sent: list[int] = []
    async with RadiopaediaClient(
        script.url, static(script.url), retry=THREE, timeouts=SMALL
    ) as client:
        with pytest.raises(ApiError) as caught:
            await client.upload(path, slot, "image/png", sent.append)
    assert "no progress for 0.3 s (stall timeout)" in str(caught.value)
    assert "X-Amz-Signature" not in str(caught.value)
    assert script.count("PUT", "/bucket/key") == 3
    assert sum(sent) == 0  # every attempt's bytes were taken back


async def test_the_watchdog_lets_a_transfer_that_progresses_finish() -> None:
    watchdog = Watchdog(0.2)

    async def progressing() -> str:
        for _ in range(10):  # 0.5 s in all, never 0.2 s without progress
            await asyncio.sleep(0.05)
            watchdog.progressed()
        return "done"

    assert await watchdog.guard(progressing()) == "done"
    idle = Watchdog(0.05)
    with pytest.raises(Stalled):
        await idle.guard(asyncio.Event().wait())


@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.1/bucket/key?sig=1", "ftp://127.0.0.1/key", "http:///nohost"],
)
async def test_file_bytes_go_only_to_https_or_loopback(
    tmp_path: Path, script: Script, url: str
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    sent: list[int] = []
    async with RadiopaediaClient(
        script.url, static(script.url), retry=THREE, timeouts=SMALL
    ) as client:
        with pytest.raises(ApiError) as caught:
            await client.upload(path, UploadSlot(5, "ab" * 32, url), "image/png", sent.append)
    assert "not https; nothing was sent" in str(caught.value)
    assert "sig=1" not in str(caught.value)
    assert sent == []  # not a byte was read for sending


def test_redacted_urls_keep_neither_signature_nor_user_info() -> None:
    shown = redact_url("https://user:pw@bucket.s3.example/key?X-Amz-Signature=abc")
    assert shown == "https://bucket.s3.example/key?[redacted]"
