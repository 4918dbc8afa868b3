"""OAuth on the emulator: authorize, code exchange, rotation, expiry, bearer checks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from emulator_helpers import Api, EmulatorFactory, Reply

from casesync.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOGIN, Emulator

OOB = "urn:ietf:wg:oauth:2.0:oob"
FORM = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def token_call(emulator: Emulator, session: aiohttp.ClientSession, **fields: str) -> Reply:
    api = Api(session, emulator.base_url, "")
    return await api.call("POST", "/oauth/token", auth=False, data={**FORM, **fields})


async def whoami(emulator: Emulator, session: aiohttp.ClientSession, token: str) -> Reply:
    return await Api(session, emulator.base_url, token).call("GET", "/api/v1/users/current")


async def test_oob_authorize_shows_a_code_that_logs_in_once(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    query = {"client_id": DEMO_CLIENT_ID, "redirect_uri": OOB, "response_type": "code"}
    async with session.get(emulator.base_url + "/oauth/authorize", params=query) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    code = re.search(r'<code id="authorization_code">([^<]+)</code>', page)
    assert code is not None
    reply = await token_call(
        emulator, session, grant_type="authorization_code", code=code.group(1), redirect_uri=OOB
    )
    assert reply.status == 200, reply.text
    tokens = reply.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 86400
    assert isinstance(tokens["created_at"], int)
    assert (await whoami(emulator, session, tokens["access_token"])).json()["login"] == DEMO_LOGIN
    again = await token_call(
        emulator, session, grant_type="authorization_code", code=code.group(1), redirect_uri=OOB
    )
    assert again.status == 400
    assert again.json()["error"] == "invalid_grant"


async def test_https_redirect_gets_the_code_and_state(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    redirect = "https://example.org/callback"
    query = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": redirect,
        "response_type": "code",
        "state": "xyz",
    }
    async with session.get(
        emulator.base_url + "/oauth/authorize", params=query, allow_redirects=False
    ) as response:
        assert response.status == 302
        location = response.headers["Location"]
    assert location.startswith(redirect + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["xyz"]
    wrong_uri = await token_call(
        emulator, session, grant_type="authorization_code", code=params["code"][0], redirect_uri=OOB
    )
    assert wrong_uri.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({"client_id": "nope", "redirect_uri": OOB}, 401, "invalid_client"),
        (
            {"client_id": DEMO_CLIENT_ID, "redirect_uri": "http://example.org/cb"},
            400,
            "invalid_redirect_uri",
        ),
    ],
)
async def test_authorize_refuses_unknown_clients_and_plain_http(
    emulator: Emulator,
    session: aiohttp.ClientSession,
    query: dict[str, str],
    status: int,
    error: str,
) -> None:
    params = {"response_type": "code", **query}
    async with session.get(emulator.base_url + "/oauth/authorize", params=params) as response:
        assert response.status == status
        assert (await response.json())["error"] == error


async def test_refresh_rotates_and_kills_the_old_pair(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    old = emulator.issue_tokens()
    reply = await token_call(
        emulator, session, grant_type="refresh_token", refresh_token=old["refresh_token"]
    )
    assert reply.status == 200, reply.text
    new = reply.json()
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert (await whoami(emulator, session, new["access_token"])).status == 200
    assert (await whoami(emulator, session, old["access_token"])).status == 401
    reused = await token_call(
        emulator, session, grant_type="refresh_token", refresh_token=old["refresh_token"]
    )
    assert reused.status == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_token_endpoint_checks_client_grant_type_and_encoding(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    tokens = emulator.issue_tokens()
    bad_secret = await token_call(
        emulator,
        session,
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        client_secret="x",
    )
    assert bad_secret.status == 401
    assert bad_secret.json()["error"] == "invalid_client"
    unknown = await token_call(emulator, session, grant_type="password")
    assert unknown.json()["error"] == "unsupported_grant_type"
    as_json = await Api(session, emulator.base_url, "").call(
        "POST", "/oauth/token", auth=False, json={**FORM, "grant_type": "refresh_token"}
    )
    assert as_json.status == 400
    assert as_json.json()["error"] == "invalid_request"
    # the refresh token survived the failed attempts
    ok = await token_call(
        emulator, session, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert ok.status == 200


async def test_token_ttl_and_expiry(
    emulator_factory: EmulatorFactory, session: aiohttp.ClientSession
) -> None:
    emulator = await emulator_factory(token_ttl=60)
    tokens = emulator.issue_tokens()
    assert tokens["expires_in"] == 60
    assert (await whoami(emulator, session, tokens["access_token"])).status == 200
    emulator.advance_clock(61)
    expired = await whoami(emulator, session, tokens["access_token"])
    assert expired.status == 401
    assert "expired" in expired.text
    refreshed = await token_call(
        emulator, session, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert (await whoami(emulator, session, refreshed.json()["access_token"])).status == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic abc"])
async def test_api_calls_need_a_valid_bearer_token(
    emulator: Emulator, session: aiohttp.ClientSession, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    api = Api(session, emulator.base_url, "")
    for method, path in [
        ("GET", "/api/v1/users/current"),
        ("GET", "/api/v1/cases"),
        ("POST", "/api/v1/cases"),
        ("POST", "/direct_s3_uploads"),
    ]:
        reply = await api.call(method, path, auth=False, headers=headers, json={})
        assert reply.status == 401, (method, path)
        assert "Bearer" in reply.headers["WWW-Authenticate"]
