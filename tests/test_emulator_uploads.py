"""Uploads on the emulator: presigned URLs, the S3 PUT, series creation and the job poll."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from emulator_helpers import DICOM, Api, EmulatorFactory, api_for, compliant_dicom
from pydicom.data import get_testdata_file
from repofactory import png_bytes

from casesync.emulator import Emulator


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield api_for(emulator, session)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def issue(api: Api, *blobs: bytes) -> list[dict[str, object]]:
    reply = await api.call("POST", "/direct_s3_uploads", json={"sha256": [sha(b) for b in blobs]})
    assert reply.status == 200, reply.text
    entries: list[dict[str, object]] = reply.json()["uploads"]
    return entries


async def put(api: Api, url: object, data: bytes, **headers: str) -> int:
    assert isinstance(url, str)
    reply = await api.call(
        "PUT", url, auth=False, data=data, headers={"Content-Type": DICOM, **headers}
    )
    return reply.status


async def test_direct_s3_uploads_one_entry_per_hash_new_ids_every_call(
    emulator: Emulator, api: Api
) -> None:
    a, b = compliant_dicom("a"), compliant_dicom("b")
    first = await issue(api, a, b, a)
    assert [set(e) for e in first] == [{"id", "url"}] * 3
    ids = [e["id"] for e in first]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 3
    url = urlsplit(str(first[0]["url"]))
    assert f"{url.scheme}://{url.netloc}" == emulator.base_url
    assert url.path.startswith("/s3/")
    assert "expires=" in url.query and "signature=" in url.query
    assert await put(api, first[0]["url"], a) == 200
    second = await issue(api, b, a)
    assert "url" in second[0]
    assert second[1] == {"id": second[1]["id"], "status": "already_uploaded"}
    assert not {e["id"] for e in second} & set(ids)
    state = emulator.snapshot()
    assert state["stored_blobs"] == 1
    assert [u["status"] for u in state["uploads"]][-2:] == ["url_issued", "already_uploaded"]


@pytest.mark.parametrize("body", [{}, {"sha256": "abc"}, {"sha256": ["xyz"]}, {"sha256": [1]}])
async def test_direct_s3_uploads_rejects_bad_hashes(api: Api, body: dict[str, object]) -> None:
    assert (await api.call("POST", "/direct_s3_uploads", json=body)).status == 400


async def test_s3_put_refuses_an_authorization_header(emulator: Emulator, api: Api) -> None:
    data = compliant_dicom()
    [entry] = await issue(api, data)
    assert await put(api, entry["url"], data, Authorization=f"Bearer {api.token}") == 400
    assert emulator.snapshot()["stored_blobs"] == 0


async def test_s3_put_checks_the_signature(emulator: Emulator, api: Api) -> None:
    data = compliant_dicom()
    [entry] = await issue(api, data)
    url = str(entry["url"])
    assert await put(api, url.replace("signature=", "signature=0"), data) == 403
    [other] = await issue(api, compliant_dicom("other"))
    other_key = urlsplit(str(other["url"])).path
    assert await put(api, emulator.base_url + other_key + "?" + urlsplit(url).query, data) == 403
    assert emulator.snapshot()["stored_blobs"] == 0


async def test_s3_put_refuses_bytes_that_do_not_match_the_hash(
    emulator: Emulator, api: Api
) -> None:
    data = compliant_dicom()
    [entry] = await issue(api, data)
    assert await put(api, entry["url"], data + b"\x00") == 400
    assert emulator.snapshot()["stored_blobs"] == 0
    assert await put(api, entry["url"], data) == 200


async def test_presigned_urls_expire(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(url_ttl=30)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session, ttl=3600)
        data = compliant_dicom()
        [entry] = await issue(api, data)
        emulator.advance_clock(31)
        assert await put(api, entry["url"], data) == 403
        [fresh] = await issue(api, data)
        assert await put(api, fresh["url"], data) == 200


async def test_a_big_body_is_streamed_and_stored(emulator: Emulator, api: Api) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40000  # ~10 MB
    [entry] = await issue(api, data)
    assert await put(api, entry["url"], data, **{"Content-Type": "image/png"}) == 200
    assert emulator.snapshot()["uploads"][0]["content_type"] == "image/png"


async def make_target(api: Api) -> tuple[int, int]:
    case_id = await api.new_case()
    return case_id, await api.new_study(case_id)


async def poll(
    api: Api, case_id: int, study_id: int, job_id: str
) -> list[tuple[int, dict[str, object]]]:
    path = f"/image_preparation/{case_id}/studies/{study_id}/upload/{job_id}"
    replies = []
    while True:
        reply = await api.call("GET", path)
        replies.append((reply.status, reply.json()))
        if reply.status != 202:
            return replies
        await asyncio.sleep(0.02)


async def test_a_dicom_series_from_upload_to_series_id(emulator: Emulator, api: Api) -> None:
    case_id, study_id = await make_target(api)
    blobs = [compliant_dicom(f"slice {n}") for n in range(5)]
    ids = await api.upload(blobs)
    reply = await api.new_series(case_id, study_id, ids, specifics="C+ portal venous phase")
    assert reply.status == 202, reply.text
    job_id = reply.json()["job_id"]
    assert isinstance(job_id, str)
    replies = await poll(api, case_id, study_id, job_id)
    assert replies[0] == (202, {"status": "pending-upload", "job_id": job_id})
    status, done = replies[-1]
    assert status == 200
    assert done["series"] == {
        "seriesId": done["series"]["seriesId"],
        "status": "completed-dicom-processing",
    }  # type: ignore[index]
    assert done["study"]["id"] == study_id  # type: ignore[index]
    [series] = emulator.snapshot()["cases"][0]["studies"][0]["series"]
    assert series["job_id"] == job_id
    assert series["series_id"] == done["series"]["seriesId"]  # type: ignore[index]
    assert series["upload_ids"] == ids
    assert series["sha256s"] == [sha(b) for b in blobs]
    assert (series["root_index"], series["perspective"], series["specifics"]) == (
        2,
        "Axial",
        "C+ portal venous phase",
    )
    assert series["image_format"] == DICOM


async def test_an_image_series_ends_ready(api: Api) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([png_bytes(1), png_bytes(2)], "image/png")
    reply = await api.new_series(case_id, study_id, ids, image_format="image/png")
    assert reply.status == 202, reply.text
    status, done = (await poll(api, case_id, study_id, reply.json()["job_id"]))[-1]
    assert (status, done["series"]["status"]) == (200, "ready")  # type: ignore[index]


async def test_a_failed_job_answers_200_without_series(api: Api) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([compliant_dicom()])
    job_id = (await api.new_series(case_id, study_id, ids)).json()["job_id"]
    assert (await api.call("POST", f"/_emulator/jobs/{job_id}/fail")).status == 200
    status, done = (await poll(api, case_id, study_id, job_id))[-1]
    assert status == 200
    assert "series" not in done and "study" in done


async def test_object_form_of_uploaded_data_is_a_500(api: Api) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([compliant_dicom()])
    body = {
        "image_format": DICOM,
        "series": {"root_index": 0},
        "stack_upload": {"uploaded_data": {"0": ids[0]}},
    }
    reply = await api.call(
        "POST", f"/image_preparation/{case_id}/studies/{study_id}/series", json=body
    )
    assert reply.status == 500


async def test_an_unknown_case_is_401_with_an_empty_body(emulator: Emulator, api: Api) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([compliant_dicom()])
    reply = await api.new_series(999999, study_id, ids)
    assert (reply.status, reply.text) == (401, "")
    poll_reply = await api.call("GET", f"/image_preparation/999999/studies/{study_id}/upload/abc")
    assert (poll_reply.status, poll_reply.text) == (401, "")
    stranger = Api(
        api.session,
        emulator.base_url,
        (await api.call("POST", "/_emulator/tokens", json={"login": "x"})).json()["access_token"],
    )
    reply = await stranger.new_series(case_id, study_id, ids)
    assert (reply.status, reply.text) == (401, "")


async def test_upload_ids_must_be_the_callers_and_complete(emulator: Emulator, api: Api) -> None:
    case_id, study_id = await make_target(api)
    stranger = Api(
        api.session,
        emulator.base_url,
        (await api.call("POST", "/_emulator/tokens", json={"login": "x"})).json()["access_token"],
    )
    theirs = await stranger.upload([compliant_dicom("theirs")])
    assert (await api.new_series(case_id, study_id, theirs)).status == 422
    [issued] = await issue(api, compliant_dicom("never sent"))
    reply = await api.new_series(case_id, study_id, [int(str(issued["id"]))])
    assert reply.status == 422
    assert "uploaded" in reply.text
    assert (await api.new_series(case_id, study_id, [123])).status == 422
    assert (await api.new_series(case_id, study_id, [])).status == 422


async def test_an_already_uploaded_id_may_be_attached(api: Api) -> None:
    case_id, study_id = await make_target(api)
    data = compliant_dicom()
    await api.upload([data])
    [entry] = await issue(api, data)
    assert entry["status"] == "already_uploaded"
    assert (await api.new_series(case_id, study_id, [int(str(entry["id"]))])).status == 202


@pytest.mark.parametrize("root_index", [-1, 3, "1", None])
async def test_root_index_must_be_in_range(api: Api, root_index: object) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([compliant_dicom(f"s{n}") for n in range(3)])
    reply = await api.new_series(case_id, study_id, ids, root_index=root_index)
    assert reply.status == 422


async def test_one_image_format_per_series(api: Api) -> None:
    case_id, study_id = await make_target(api)
    dicom_ids = await api.upload([compliant_dicom()])
    png_ids = await api.upload([png_bytes(3)], "image/png")
    assert (await api.new_series(case_id, study_id, dicom_ids + png_ids)).status == 422
    assert (
        await api.new_series(case_id, study_id, dicom_ids + png_ids, image_format="image/png")
    ).status == 422
    assert (
        await api.new_series(case_id, study_id, png_ids, image_format="video/x-unknown")
    ).status == 422


async def test_the_anonymiser_check_rejects_a_real_scanner_file(
    emulator: Emulator, api: Api
) -> None:
    case_id, study_id = await make_target(api)
    raw = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    ids = await api.upload([compliant_dicom("fine"), raw])
    reply = await api.new_series(case_id, study_id, ids)
    assert reply.status == 422
    assert (
        "Validation failed: Uploaded data Was not anonymized, Uploaded data Key 00080012 not anonymized"
        in reply.text
    )
    assert emulator.snapshot()["cases"][0]["studies"][0]["series"] == []


async def test_the_anonymiser_check_can_be_switched_off(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(anonymiser_check="off")
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        case_id, study_id = await make_target(api)
        raw = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
        assert (await api.new_series(case_id, study_id, await api.upload([raw]))).status == 202


async def test_series_only_on_draft_cases(api: Api) -> None:
    case_id, study_id = await make_target(api)
    ids = await api.upload([compliant_dicom()])
    await api.call("POST", f"/_emulator/cases/{case_id}/status", json={"status": "published"})
    assert (await api.new_series(case_id, study_id, ids)).status == 422


async def test_request_counts_use_route_templates(emulator: Emulator, api: Api) -> None:
    await make_target(api)
    await api.upload([compliant_dicom("a"), compliant_dicom("b")])
    await api.call("GET", "/_emulator/state")
    counts = emulator.snapshot()["requests"]
    assert counts == {
        "POST /api/v1/cases": 1,
        "POST /api/v1/cases/{case_id}/studies": 1,
        "POST /direct_s3_uploads": 1,
        "PUT /s3/{key}": 2,
    }


async def test_a_put_cut_short_stores_nothing_and_logs_no_traceback(
    emulator: Emulator, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that leaves mid-body (casesync refusing a changed file, or a killed apply)."""
    data = compliant_dicom()
    [entry] = await issue(api, data)
    assert isinstance(entry["url"], str)
    url = urlsplit(entry["url"])
    _, writer = await asyncio.open_connection(url.hostname, url.port)
    head = f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += f"Content-Type: {DICOM}\r\nContent-Length: {len(data)}\r\n\r\n"
    writer.write(head.encode() + data[: len(data) // 2])
    await writer.drain()
    while not emulator.snapshot()["in_flight"]:
        await asyncio.sleep(0.005)
    writer.close()
    await writer.wait_closed()
    while emulator.snapshot()["in_flight"]:
        await asyncio.sleep(0.005)
    assert emulator.snapshot()["stored_blobs"] == 0
    assert emulator.snapshot()["uploads"][0]["puts"] == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await put(api, entry["url"], data) == 200  # the same URL still takes the whole body
