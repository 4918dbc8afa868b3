"""Cases and studies on the emulator: create, quotas, listing with cursors, what does not exist."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from emulator_helpers import Api, EmulatorFactory, api_for, compliant_dicom

from casesync.emulator import Emulator

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield api_for(emulator, session)


async def test_create_case_drops_unknown_keys_and_hides_system_id(
    emulator: Emulator, api: Api
) -> None:
    body = {
        "title": "Pneumothorax",
        "system_id": 4,
        "diagnostic_certainty_id": 4,
        "age": "34 years",
        "gender": "Female",
        "presentation": "Chest pain",
        "body": "<p>discussion</p>",
        "colour": "blue",
    }
    reply = await api.call("POST", "/api/v1/cases", json=body)
    assert reply.status == 200, reply.text
    case = reply.json()
    assert set(case) == {
        "id",
        "title",
        "author_id",
        "status",
        "visibility",
        "created_at",
        "updated_at",
    }
    assert (case["title"], case["status"], case["visibility"]) == (
        "Pneumothorax",
        "draft",
        "public",
    )
    assert ISO_MS_Z.fullmatch(case["created_at"])
    [stored] = emulator.snapshot()["cases"]
    assert stored["system_id"] == 4
    assert stored["age"] == "34 years"
    assert "colour" not in stored


@pytest.mark.parametrize(
    "body", [{"system_id": 4}, {"title": "  ", "system_id": 4}, {"title": "No system"}]
)
async def test_create_case_needs_title_and_system(api: Api, body: dict[str, object]) -> None:
    reply = await api.call("POST", "/api/v1/cases", json=body)
    assert reply.status == 422
    assert "errors" in reply.json()


async def test_draft_quota_is_enforced_and_reported_live(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(draft_quota=2)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        first = await api.new_case("one")
        await api.new_case("two")
        quotas = (await api.call("GET", "/api/v1/users/current")).json()["quotas"]
        assert (quotas["draft_case_count"], quotas["allowed_draft_cases"]) == (2, 2)
        refused = await api.call("POST", "/api/v1/cases", json={"title": "three", "system_id": 4})
        assert 400 <= refused.status < 500
        assert "quota" in refused.text
        published = await api.call(
            "POST", f"/_emulator/cases/{first}/status", json={"status": "published"}
        )
        assert published.status == 200
        assert (
            await api.call("POST", "/api/v1/cases", json={"title": "three", "system_id": 4})
        ).status == 200
    assert len(emulator.snapshot()["cases"]) == 3


async def test_unlimited_quota(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(draft_quota=None)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        for n in range(12):
            await api.new_case(f"case {n}")
        quotas = (await api.call("GET", "/api/v1/users/current")).json()["quotas"]
    assert quotas["allowed_draft_cases"] is None
    assert quotas["draft_case_count"] == 12


async def test_listing_is_a_bare_array_paged_by_cursor(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(draft_quota=None)
    async with aiohttp.ClientSession() as session:
        api = api_for(emulator, session)
        created = [await api.new_case(f"case {n}") for n in range(205)]
        other = await api.call("POST", "/_emulator/tokens", json={"login": "someone-else"})
        stranger = Api(session, emulator.base_url, other.json()["access_token"])
        await stranger.new_case("not yours")
        seen: list[int] = []
        sizes: list[int] = []
        cursor = ""
        while True:
            params = {"per_page": "500"} | ({"cursor": cursor} if cursor else {})
            reply = await api.call("GET", "/api/v1/cases", params=params)
            assert reply.status == 200
            page = reply.json()
            assert isinstance(page, list)
            sizes.append(len(page))
            seen += [case["id"] for case in page]
            cursor = reply.headers.get("X-Next-Cursor", "")
            if not cursor:
                break
    assert sizes == [100, 100, 5]  # per_page is capped at 100
    assert seen == created


async def test_listing_rejects_bad_paging(api: Api) -> None:
    assert (await api.call("GET", "/api/v1/cases", params={"per_page": "0"})).status == 400
    assert (await api.call("GET", "/api/v1/cases", params={"cursor": "garbage!"})).status == 400


async def test_a_case_deleted_on_the_site_leaves_the_listing(emulator: Emulator, api: Api) -> None:
    keep = await api.new_case("keep")
    gone = await api.new_case("gone")
    assert (await api.call("DELETE", f"/_emulator/cases/{gone}")).status == 200
    listed = [c["id"] for c in (await api.call("GET", "/api/v1/cases")).json()]
    assert listed == [keep]
    assert (
        await api.call("POST", f"/api/v1/cases/{gone}/studies", json={"modality": "CT"})
    ).status == 404
    quotas = (await api.call("GET", "/api/v1/users/current")).json()["quotas"]
    assert quotas["draft_case_count"] == 1
    assert [c["deleted"] for c in emulator.snapshot()["cases"]] == [False, True]


async def test_studies_record_positions_as_given(emulator: Emulator, api: Api) -> None:
    case_id = await api.new_case()
    body = {"modality": "MRI", "findings": "<p>f</p>", "caption": "c", "position": 3, "extra": 1}
    reply = await api.call("POST", f"/api/v1/cases/{case_id}/studies", json=body)
    assert reply.status == 201
    study = reply.json()
    assert set(study) == {
        "id",
        "case_id",
        "modality",
        "findings",
        "caption",
        "created_at",
        "updated_at",
    }
    assert (study["case_id"], study["modality"], study["caption"]) == (case_id, "MRI", "c")
    await api.new_study(case_id, position=2, modality="X-ray")
    [case] = emulator.snapshot()["cases"]
    assert [(s["position"], s["modality"]) for s in case["studies"]] == [(3, "MRI"), (2, "X-ray")]
    assert "extra" not in case["studies"][0]


@pytest.mark.parametrize("modality", ["ct", "MR", "Xray", None])
async def test_studies_match_modality_literally(api: Api, modality: str | None) -> None:
    case_id = await api.new_case()
    reply = await api.call("POST", f"/api/v1/cases/{case_id}/studies", json={"modality": modality})
    assert reply.status == 422


async def test_imaging_only_on_drafts_and_only_on_own_cases(api: Api, emulator: Emulator) -> None:
    case_id = await api.new_case()
    other = Api(
        api.session,
        emulator.base_url,
        (await api.call("POST", "/_emulator/tokens", json={"login": "x"})).json()["access_token"],
    )
    assert (
        await other.call("POST", f"/api/v1/cases/{case_id}/studies", json={"modality": "CT"})
    ).status == 404
    await api.call("POST", f"/_emulator/cases/{case_id}/status", json={"status": "published"})
    reply = await api.call("POST", f"/api/v1/cases/{case_id}/studies", json={"modality": "CT"})
    assert reply.status == 422
    assert "draft" in reply.text


async def test_mark_upload_finished(emulator: Emulator, api: Api) -> None:
    case_id = await api.new_case()
    reply = await api.call("PUT", f"/api/v1/cases/{case_id}/mark_upload_finished")
    assert reply.status == 200
    assert reply.json()["id"] == case_id
    assert reply.json()["status"] == "draft"
    [case] = emulator.snapshot()["cases"]
    assert (case["upload_finished"], case["mark_upload_finished_calls"]) == (True, 1)
    assert (await api.call("PUT", "/api/v1/cases/999/mark_upload_finished")).status == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_there_is_no_update_or_delete(api: Api, method: str) -> None:
    case_id = await api.new_case()
    study_id = await api.new_study(case_id)
    for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/studies/{study_id}"):
        reply = await api.call(method, path, json={"title": "changed"})
        assert reply.status == 404, (method, path)


async def test_deprecated_image_endpoint(emulator: Emulator, api: Api) -> None:
    case_id = await api.new_case()
    study_id = await api.new_study(case_id, modality="Photograph")
    path = f"/api/v1/cases/{case_id}/studies/{study_id}/images"
    reply = await api.call(
        "POST", path, data=b"\xff\xd8\xff" + b"0" * 50, headers={"Content-Type": "image/jpeg"}
    )
    assert reply.status == 200
    assert set(reply.json()) == {"id", "filename", "contributor_id", "created_at", "updated_at"}
    refused = await api.call("POST", path, data=b"x", headers={"Content-Type": "text/plain"})
    assert refused.status == 415
    [case] = emulator.snapshot()["cases"]
    assert case["studies"][0]["images"][0]["size"] == 53


async def test_the_case_page_shows_what_was_created(emulator: Emulator) -> None:
    token = emulator.issue_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        made = await session.post(
            f"{emulator.base_url}/api/v1/cases",
            json={"title": "Knee <MRI>", "system_id": 9, "body": "<p>Discussion</p>"},
        )
        case = await made.json()
        await session.post(
            f"{emulator.base_url}/api/v1/cases/{case['id']}/studies",
            json={"modality": "MRI", "position": 2, "caption": "Sagittal PD"},
        )
        page = await session.get(f"{emulator.base_url}/cases/{case['id']}")
        text = await page.text()
        missing = await session.get(f"{emulator.base_url}/cases/999999")
    assert page.status == 200 and page.content_type == "text/html"
    assert "Knee &lt;MRI&gt;" in text and "<p>Discussion</p>" in text
    assert "Study 2 &middot; MRI: Sagittal PD" in text and "Musculoskeletal" in text
    assert missing.status == 404


async def test_originals_lists_each_series_files_in_stack_order_as_signed_urls(
    emulator: Emulator, api: Api
) -> None:
    case_id = await api.new_case("with originals")
    study_id = await api.new_study(case_id)
    slices = [compliant_dicom(f"slice {n}") for n in range(3)]
    assert (await api.new_series(case_id, study_id, await api.upload(slices))).status == 202
    failed = await api.new_series(case_id, study_id, await api.upload([compliant_dicom("x")]))
    await api.call("POST", f"/_emulator/jobs/{failed.json()['job_id']}/fail", auth=False)

    reply = await api.call("GET", f"/api/v1/cases/{case_id}/originals")
    assert reply.status == 200, reply.text
    by_study = reply.json()["original_file_urls_by_study"]
    assert list(by_study) == [str(study_id)]
    [series] = by_study[str(study_id)]  # the failed series is left out
    assert isinstance(series["series_id"], int) and len(series["files"]) == 3
    fetched = []
    for url in series["files"]:
        async with api.session.get(url) as response:
            assert response.status == 200
            fetched.append(await response.read())
    assert fetched == slices

    with_token = await api.call("GET", series["files"][0])  # S3 refuses a second auth mechanism
    assert with_token.status == 400
    forged = series["files"][0].replace("originals/", "originals/0")
    assert (await api.call("GET", forged, auth=False)).status == 403
    emulator.advance_clock(emulator.config.url_ttl + 1)
    assert (await api.call("GET", series["files"][0], auth=False)).status == 403


async def test_originals_of_another_users_case_is_not_found(api: Api) -> None:
    case_id = await api.new_case("mine")
    other = (
        await api.call("POST", "/_emulator/tokens", auth=False, json={"login": "other"})
    ).json()
    stranger = Api(api.session, api.base_url, other["access_token"])
    assert (await stranger.call("GET", f"/api/v1/cases/{case_id}/originals")).status == 404


async def test_a_case_retitled_on_the_site_shows_the_new_title_in_the_listing(api: Api) -> None:
    case_id = await api.new_case("Old title")
    reply = await api.call(
        "POST", f"/_emulator/cases/{case_id}/title", auth=False, json={"title": "New title"}
    )
    assert reply.status == 200 and reply.json()["title"] == "New title"
    listed = (await api.call("GET", "/api/v1/cases")).json()
    assert [c["title"] for c in listed if c["id"] == case_id] == ["New title"]
    bad = await api.call(
        "POST", f"/_emulator/cases/{case_id}/title", auth=False, json={"title": ""}
    )
    assert bad.status == 400
