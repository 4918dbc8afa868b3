"""Every request is bounded: an API answer that never ends, an upload that stalls, against a
hostile server on loopback (small timeouts; nothing waits to prove that nothing happened)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import planned
from scripted import USER_JSON, Script, endless, silent, static

from casesync.api.client import RadiopaediaClient
from casesync.api.models import UploadSlot
from casesync.api.pacer import RetryPolicy
from casesync.api.transport import CHUNK, CheckedBody, Stalled, Watchdog, redact_url
from casesync.errors import ApiError, FileChanged
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
            await client.upload(planned(path), slot, "image/png", sent.append)
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
            await client.upload(
                planned(path), UploadSlot(5, "ab" * 32, url), "image/png", sent.append
            )
    assert "not https; nothing was sent" in str(caught.value)
    assert "sig=1" not in str(caught.value)
    assert sent == []  # not a byte was read for sending


def test_redacted_urls_keep_neither_signature_nor_user_info() -> None:
    shown = redact_url("https://user:pw@bucket.s3.example/key?X-Amz-Signature=abc")
    assert shown == "https://bucket.s3.example/key?[redacted]"


# --- the upload body is the planned bytes or nothing ---


async def drain(body: CheckedBody, received: list[bytes]) -> None:
    async for chunk in body.chunks():
        received.append(chunk)


def test_an_unchanged_file_is_sent_whole_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.dcm"
    path.write_bytes(os.urandom(CHUNK * 3 + 17))
    counted: list[int] = []
    received: list[bytes] = []
    asyncio.run(drain(CheckedBody(planned(path), counted.append), received))
    assert b"".join(received) == path.read_bytes()
    assert [len(c) for c in received] == [CHUNK, CHUNK, CHUNK, 17] == counted


@pytest.mark.parametrize("size", [0, 100, CHUNK, CHUNK * 2 + 5])
@pytest.mark.parametrize(
    "change",
    [
        lambda data: bytes([data[0] ^ 1]) + data[1:] if data else b"x",
        lambda data: data + b"tail",
        lambda data: data[:-1] if data else b"xy",
    ],
    ids=["new-content", "longer", "shorter"],
)
def test_a_file_changed_before_its_upload_sends_not_one_byte(
    tmp_path: Path, size: int, change: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "slice.dcm"
    path.write_bytes(os.urandom(size))
    checked = planned(path)
    path.write_bytes(change(path.read_bytes()))
    body = CheckedBody(checked, lambda n: None)
    received: list[bytes] = []
    with pytest.raises(FileChanged) as caught:
        asyncio.run(drain(body, received))
    assert received == []
    assert body.changed is caught.value
    assert "slice.dcm changed since it was checked" in str(caught.value)


def test_a_file_changed_while_it_streams_never_sends_its_last_chunk(tmp_path: Path) -> None:
    path = tmp_path / "series.dcm"
    data = os.urandom(CHUNK * 3)
    path.write_bytes(data)
    body = CheckedBody(planned(path), lambda n: None)
    received: list[bytes] = []

    async def rewrite_after_the_first_chunk() -> None:
        async for chunk in body.chunks():
            received.append(chunk)
            if len(received) == 1:
                with path.open("r+b") as handle:  # in place: same inode, same size
                    handle.seek(len(data) - 1)
                    handle.write(bytes([data[-1] ^ 1]))

    with pytest.raises(FileChanged, match="new content, same size"):
        asyncio.run(rewrite_after_the_first_chunk())
    assert b"".join(received) == data[: CHUNK * 2]  # the last chunk stayed home


@pytest.mark.parametrize("replacement", ["gone", "fifo", "folder"])
def test_a_file_swapped_for_something_unreadable_is_refused(
    tmp_path: Path, replacement: str
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    checked = planned(path)
    path.unlink()
    if replacement == "fifo":
        os.mkfifo(path)
    elif replacement == "folder":
        path.mkdir()
    with pytest.raises(FileChanged, match=r"a\.png changed since it was checked \(now: "):
        asyncio.run(drain(CheckedBody(checked, lambda n: None), []))


async def test_a_changed_file_is_one_put_cut_short_and_never_retried(
    tmp_path: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies: list[CheckedBody] = []
    made = CheckedBody.__init__

    def counted(self: CheckedBody, *args: Any) -> None:
        made(self, *args)
        bodies.append(self)

    monkeypatch.setattr(CheckedBody, "__init__", counted)
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(CHUNK * 2))
    checked = planned(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(CHUNK * 2))
    script.on("PUT", "/bucket/key", (200, "", {}))
    slot = UploadSlot(5, checked.sha256, f"{script.url}/bucket/key?X-Amz-Signature=abc")
    sent: list[int] = []
    async with RadiopaediaClient(
        script.url, static(script.url), retry=THREE, timeouts=SMALL
    ) as client:
        with pytest.raises(FileChanged) as caught:
            await client.upload(checked, slot, "image/png", sent.append)
    assert "a.png changed since it was checked (new content, same size)" in str(caught.value)
    assert "casesync plan" in str(caught.value)
    assert len(bodies) == 1  # one attempt, not retried
    assert script.seen == []  # S3 never received a whole body
    assert sum(sent) == 0
