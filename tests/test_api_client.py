"""The API client against the emulator on loopback, and against a tiny scripted server for the
failures the emulator cannot produce on cue (exactly one 503, a create that hangs)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from authfactory import DEMO_CLIENT, tokens_for
from emulator_helpers import DICOM, EmulatorFactory, compliant_dicom
from helpers import planned
from scripted import CASE_JSON, FAST, PNG, TOKEN, USER_JSON, Answer, Script, drop, hang, static

from casesync.api.client import RadiopaediaClient
from casesync.api.credentials import TokenProvider
from casesync.api.models import CaseFields, SeriesFields, StudyFields, UploadSlot
from casesync.api.pacer import Pacer, retry_after_seconds
from casesync.emulator import Emulator
from casesync.errors import ApiError, AuthError, OutcomeUnknown, OverQuota
from casesync.settings import Timeouts


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[RadiopaediaClient]:
    async with RadiopaediaClient(emulator.base_url, tokens_for(emulator), retry=FAST) as client:
        yield client


def write(path: Path, data: bytes) -> tuple[Path, str]:
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def wait_done(api: RadiopaediaClient, case_id: int, study_id: int, job_id: str) -> Any:
    for _ in range(100):
        job = await api.job_status(case_id, study_id, job_id)
        if job.done:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError("the job never finished")


# --- the emulator: every endpoint ---


async def test_every_endpoint_creates_a_case_with_a_dicom_series(
    tmp_path: Path, emulator: Emulator, api: RadiopaediaClient
) -> None:
    user = await api.current_user()
    assert (user.login, user.quotas.allowed_draft_cases, user.quotas.draft_case_count) == (
        "demo",
        10,
        0,
    )
    case = await api.create_case(CaseFields("Pneumothorax", 4, age="30 years", gender="Male"))
    study = await api.create_study(case.id, StudyFields("CT", 2, caption="CT chest"))
    files = [write(tmp_path / f"{n}.dcm", compliant_dicom(f"slice {n}")) for n in range(3)]
    slots = await api.presign([sha for _, sha in files])
    assert [s.sha256 for s in slots] == [sha for _, sha in files]
    sent: list[int] = []
    uploaded = [
        await api.upload(planned(p), s, DICOM, sent.append)
        for (p, _), s in zip(files, slots, strict=True)
    ]
    assert sum(sent) == sum(p.stat().st_size for p, _ in files)
    ids = [s.upload_id for s in uploaded]
    job_id = await api.create_series(
        case.id, study.id, SeriesFields(DICOM, 1, "Axial", "lung window"), ids
    )
    job = await wait_done(api, case.id, study.id, job_id)
    assert job.succeeded and job.status == "completed-dicom-processing"
    finished = await api.mark_upload_finished(case.id)
    assert finished.id == case.id and finished.is_draft
    assert [c.title for c in await api.list_cases()] == ["Pneumothorax"]

    (remote,) = emulator.snapshot()["cases"]
    assert remote["upload_finished"] and remote["age"] == "30 years"
    (remote_study,) = remote["studies"]
    assert (remote_study["modality"], remote_study["position"]) == ("CT", 2)
    (series,) = remote_study["series"]
    assert series["upload_ids"] == ids and series["root_index"] == 1
    assert series["specifics"] == "lung window"
    assert {u["content_type"] for u in emulator.snapshot()["uploads"]} == {DICOM}
    # the emulator answers 400 to a PUT carrying Authorization: these passing proves none did


async def test_already_uploaded_bytes_are_not_sent_again(
    tmp_path: Path, emulator: Emulator, api: RadiopaediaClient
) -> None:
    path, sha = write(tmp_path / "a.png", PNG + b"a")
    (first,) = await api.presign([sha])
    await api.upload(planned(path), first, "image/png")
    (again,) = await api.presign([sha])
    assert again.already_uploaded and again.upload_id != first.upload_id
    assert await api.upload(planned(path), again, "image/png") == again
    assert emulator.snapshot()["requests"]["PUT /s3/{key}"] == 1


async def test_presign_batches_many_hashes_per_call_in_order(
    tmp_path: Path, emulator: Emulator
) -> None:
    hashes = [hashlib.sha256(bytes([n])).hexdigest() for n in range(5)]
    async with RadiopaediaClient(
        emulator.base_url, tokens_for(emulator), presign_batch=2
    ) as client:
        slots = await client.presign(hashes)
    assert [s.sha256 for s in slots] == hashes
    assert len({s.upload_id for s in slots}) == 5
    assert emulator.snapshot()["requests"]["POST /direct_s3_uploads"] == 3


async def test_list_cases_follows_the_cursor(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(draft_quota=None)
    async with RadiopaediaClient(emulator.base_url, tokens_for(emulator)) as client:
        await asyncio.gather(*(client.create_case(CaseFields(f"c{n}", 4)) for n in range(205)))
        cases = await client.list_cases()
    assert sorted(c.title for c in cases) == sorted(f"c{n}" for n in range(205))
    assert emulator.snapshot()["requests"]["GET /api/v1/cases"] == 3


async def test_an_expired_url_is_presigned_again(
    tmp_path: Path, emulator: Emulator, api: RadiopaediaClient
) -> None:
    path, sha = write(tmp_path / "a.png", PNG + b"expiring")
    (slot,) = await api.presign([sha])
    emulator.advance_clock(901)  # the URL's 15 minutes are up
    sent: list[int] = []
    fresh = await api.upload(planned(path), slot, "image/png", sent.append)
    assert fresh.upload_id != slot.upload_id and fresh.url is not None
    assert sum(sent) == path.stat().st_size  # the refused attempt was taken back
    uploads = {u["id"]: u for u in emulator.snapshot()["uploads"]}
    assert uploads[fresh.upload_id]["puts"] == 1 and uploads[slot.upload_id]["puts"] == 0


async def test_over_quota_is_its_own_error(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(draft_quota=1)
    async with RadiopaediaClient(emulator.base_url, tokens_for(emulator)) as client:
        await client.create_case(CaseFields("first", 4))
        with pytest.raises(OverQuota) as caught:
            await client.create_case(CaseFields("second", 4))
    assert caught.value.status == 422 and "quota" in str(caught.value)


async def test_errors_carry_method_path_status_and_body_but_no_token(
    emulator: Emulator, api: RadiopaediaClient
) -> None:
    case = await api.create_case(CaseFields("T", 4))
    with pytest.raises(ApiError) as caught:
        await api.create_study(case.id, StudyFields("Xray", 2))
    error = caught.value
    path = f"/api/v1/cases/{case.id}/studies"
    assert (error.method, error.path, error.status) == ("POST", path, 422)
    assert f"POST {path}: HTTP 422" in str(error) and "is not included in the list" in str(error)
    assert await api.tokens.token() not in str(error)


async def test_series_on_an_unknown_case_is_not_an_auth_problem(
    emulator: Emulator, api: RadiopaediaClient
) -> None:
    with pytest.raises(ApiError) as caught:
        await api.create_series(99, 1, SeriesFields("image/png", 0), [1])
    assert not isinstance(caught.value, AuthError) and caught.value.status == 401
    assert "POST /oauth/token" not in emulator.snapshot()["requests"]  # no pointless refresh


async def test_debug_log_names_every_request_and_hides_secrets(
    tmp_path: Path, emulator: Emulator, api: RadiopaediaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="casesync.api")
    path, sha = write(tmp_path / "a.png", PNG + b"log")
    (slot,) = await api.presign([sha])
    await api.upload(planned(path), slot, "image/png")
    with pytest.raises(ApiError):
        await api.create_case(CaseFields("", 4))
    assert slot.url is not None
    signature = slot.url.split("signature=")[1]
    assert "POST /direct_s3_uploads -> 200" in caplog.text
    assert "POST /api/v1/cases -> 422" in caplog.text
    assert "?[redacted] -> 200" in caplog.text
    assert signature not in caplog.text and signature not in repr(slot)
    assert await api.tokens.token() not in caplog.text


# --- tokens: refresh on 401 and before expiry, single-flight ---


async def test_sixteen_requests_refused_at_once_cause_one_refresh(emulator: Emulator) -> None:
    tokens = tokens_for(emulator)
    emulator.advance_clock(86400 + 60)  # the server now refuses the access token
    async with RadiopaediaClient(emulator.base_url, tokens, api_concurrency=16) as client:
        users = await asyncio.gather(*(client.current_user() for _ in range(16)))
    assert {u.login for u in users} == {"demo"}
    requests = emulator.snapshot()["requests"]
    assert requests["POST /oauth/token"] == 1
    assert requests["GET /api/v1/users/current"] == 32  # 16 refused, 16 with the new token


async def test_a_token_about_to_expire_is_refreshed_once_before_use(
    emulator: Emulator,
) -> None:
    pair = emulator.issue_tokens(120)  # under the five-minute margin
    tokens = TokenProvider(
        emulator.base_url,
        pair["access_token"],
        source="the test",
        expires_at=time.time() + 120,
        client=DEMO_CLIENT,
        refresh_token=pair["refresh_token"],
    )
    async with RadiopaediaClient(emulator.base_url, tokens) as client:
        await asyncio.gather(*(client.current_user() for _ in range(16)))
    requests = emulator.snapshot()["requests"]
    assert requests["POST /oauth/token"] == 1
    assert requests["GET /api/v1/users/current"] == 16  # none was refused
    assert await tokens.token() != pair["access_token"]


# --- the scripted server: retries by class ---


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(formatdate(1000.0 + 7, usegmt=True), now=1000.0) == 7.0
    assert retry_after_seconds(formatdate(1000.0 - 7, usegmt=True), now=1000.0) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


async def test_429_waits_for_retry_after_and_slows_every_worker(script: Script) -> None:
    script.on(
        "GET", "/api/v1/users/current", (429, "{}", {"Retry-After": "1"}), (200, USER_JSON, {})
    )
    script.on("GET", "/api/v1/cases", (200, "[]", {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:

        async def later() -> None:
            await asyncio.sleep(0.2)  # after the 429 arrived
            await client.list_cases()

        user, _ = await asyncio.gather(client.current_user(), later())
    assert user.login == "johndoe82"
    first, *others = script.seen
    assert sorted(s.path for s in others) == ["/api/v1/cases", "/api/v1/users/current"]
    assert all(s.at - first.at >= 0.95 for s in others)  # the list call waited too


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_503_then_success_is_retried_even_for_a_create(script: Script, method: str) -> None:
    answer = (200, USER_JSON if method == "GET" else CASE_JSON, {})
    path = "/api/v1/users/current" if method == "GET" else "/api/v1/cases"
    script.on(method, path, (503, '{"error": "maintenance"}', {}), answer)
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        if method == "GET":
            assert (await client.current_user()).login == "johndoe82"
        else:
            assert (await client.create_case(CaseFields("T", 4))).id == 7
    assert script.count(method, path) == 2


async def test_idempotent_calls_give_up_after_bounded_attempts(script: Script) -> None:
    script.on("GET", "/api/v1/cases", (502, "<html>Bad gateway " + "x" * 2000 + "</html>", {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_cases()
    assert script.count("GET", "/api/v1/cases") == FAST.attempts
    message = str(caught.value)
    assert "GET /api/v1/cases: HTTP 502: <html>Bad gateway" in message
    assert f"gave up after {FAST.attempts} attempts" in message and len(message) < 700


class CountingPacer(Pacer):
    """The real pacer, counting the requests it lets through."""

    sent = 0

    async def wait(self, urgent: bool = False) -> float:
        self.sent += 1
        return await super().wait(urgent)


@pytest.mark.parametrize("failure", [hang, drop], ids=["timeout", "dropped"])
async def test_a_create_without_an_answer_is_outcome_unknown_and_not_repeated(
    script: Script, failure: Answer
) -> None:
    script.on("POST", "/api/v1/cases", failure)
    pacer = CountingPacer()  # every request the client sends passes the pacer
    async with RadiopaediaClient(
        script.url, static(script.url), retry=FAST, timeouts=Timeouts(read=0.3), pacer=pacer
    ) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await client.create_case(CaseFields("T", 4))
    assert (caught.value.method, caught.value.path) == ("POST", "/api/v1/cases")
    assert pacer.sent == 1  # counted by the client itself: no waiting for a retry to show up
    assert script.count("POST", "/api/v1/cases") == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_create_answered_5xx_is_outcome_unknown(script: Script, status: int) -> None:
    path = "/image_preparation/7/studies/8/series"
    script.on("POST", path, (status, '{"error": "boom"}', {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await client.create_series(7, 8, SeriesFields("image/png", 0), [1])
    assert caught.value.status == status and "boom" in str(caught.value)
    assert script.count("POST", path) == 1


async def test_the_s3_put_streams_with_length_and_no_authorization(
    tmp_path: Path, script: Script
) -> None:
    data = PNG + bytes(range(256)) * 3000  # several read chunks
    path, sha = write(tmp_path / "big.png", data)
    script.on("PUT", "/bucket/key", (500, "", {}), (200, "", {}))
    slot = UploadSlot(5, sha, f"{script.url}/bucket/key?X-Amz-Signature=abc")
    sent: list[int] = []
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        assert await client.upload(planned(path), slot, "image/png", sent.append) == slot
    assert sum(sent) == len(data)  # the failed first try was taken back
    for put in script.seen:
        assert put.size == len(data) and put.headers["Content-Length"] == str(len(data))
        assert put.headers["Content-Type"] == "image/png"
        assert "Authorization" not in put.headers and "Transfer-Encoding" not in put.headers


async def test_a_refused_static_token_ends_with_an_auth_error(script: Script) -> None:
    script.on("GET", "/api/v1/users/current", (401, '{"error": "The access token expired"}', {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(AuthError) as caught:
            await client.current_user()
    assert TOKEN not in str(caught.value) and "refused the access token" in str(caught.value)


async def test_a_create_that_never_connected_is_retried_then_fails_plainly() -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with RadiopaediaClient(url, static(url), retry=FAST) as client:
        with pytest.raises(ApiError) as caught:
            await client.create_case(CaseFields("T", 4))
    assert not isinstance(caught.value, OutcomeUnknown)  # nothing reached a server
    assert f"gave up after {FAST.attempts} attempts" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    ["<html><h1>502 Bad Gateway</h1></html>", '{"id": 7, "tit', '{"title": "no id"}', "[" * 5000],
    ids=["html", "cut", "no-id", "deep"],
)
@pytest.mark.parametrize("create", ["case", "study", "series"])
async def test_a_2xx_to_a_create_that_cannot_be_read_is_outcome_unknown(
    script: Script, create: str, body: str
) -> None:
    """The server acted but its answer is unreadable: never "not created" (a duplicate)."""
    paths = {
        "case": "/api/v1/cases",
        "study": "/api/v1/cases/7/studies",
        "series": "/image_preparation/7/studies/8/series",
    }
    script.on("POST", paths[create], (200, body, {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        calls = {
            "case": lambda: client.create_case(CaseFields("T", 4)),
            "study": lambda: client.create_study(7, StudyFields("CT", 2)),
            "series": lambda: client.create_series(7, 8, SeriesFields("image/png", 0), [1]),
        }
        with pytest.raises(OutcomeUnknown, match="may have created it") as caught:
            await calls[create]()
    assert caught.value.status == 200
    assert script.count("POST", paths[create]) == 1


# --- the listing never loops, unreadable answers are asked for again ---


async def test_a_listing_that_pages_forever_stops_at_the_page_limit(script: Script) -> None:
    pages = iter(range(10**6))

    async def forever(request: web.Request) -> web.StreamResponse:
        return web.json_response([], headers={"X-Next-Cursor": f"c{next(pages)}"})

    script.on("GET", "/api/v1/cases", forever)
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST, max_pages=5) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_cases()
    assert "still more pages after 5 pages" in str(caught.value)
    assert script.count("GET", "/api/v1/cases") == 5


async def test_a_listing_that_repeats_a_cursor_stops(script: Script) -> None:
    script.on("GET", "/api/v1/cases", (200, f"[{CASE_JSON}]", {"X-Next-Cursor": "same"}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(ApiError, match="repeated a page cursor"):
            await client.list_cases()
    assert script.count("GET", "/api/v1/cases") == 2


PROXY_PAGE = (200, "<html><body>502 Bad Gateway</body></html>", {})


async def test_an_unreadable_2xx_to_a_read_is_asked_for_again(script: Script) -> None:
    script.on("GET", "/api/v1/users/current", PROXY_PAGE, (200, USER_JSON, {}))
    script.on("PUT", "/api/v1/cases/7/mark_upload_finished", PROXY_PAGE, (200, CASE_JSON, {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        assert (await client.current_user()).login == "johndoe82"
        assert (await client.mark_upload_finished(7)).id == 7
    assert script.count("GET", "/api/v1/users/current") == 2
    assert script.count("PUT", "/api/v1/cases/7/mark_upload_finished") == 2


async def test_unreadable_answers_to_a_read_give_up_after_bounded_attempts(
    script: Script,
) -> None:
    script.on("POST", "/direct_s3_uploads", PROXY_PAGE)
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(ApiError) as caught:
            await client.presign(["ab" * 32])
    assert "unexpected answer" in str(caught.value) and "502 Bad Gateway" in str(caught.value)
    assert f"gave up after {FAST.attempts} unreadable answers" in str(caught.value)
    assert script.count("POST", "/direct_s3_uploads") == FAST.attempts


@pytest.mark.parametrize("number", ["1e400", "-1", "NaN", "2.5", "true"])
async def test_absurd_quota_numbers_are_a_clear_error(script: Script, number: str) -> None:
    body = USER_JSON.replace('"draft_case_count": 3', f'"draft_case_count": {number}')
    script.on("GET", "/api/v1/users/current", (200, body, {}))
    async with RadiopaediaClient(script.url, static(script.url), retry=FAST) as client:
        with pytest.raises(ApiError, match=r"quotas.draft_case_count is not a plausible count"):
            await client.current_user()
