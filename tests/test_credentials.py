"""Credentials order, the credentials file, rotation, login/logout/whoami, against the emulator."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from authfactory import DEMO_CLIENT
from repofactory import write_project
from typer.testing import CliRunner

import casesync.api.credentials
import casesync.cli.commands_auth
from casesync.api.client import RadiopaediaClient
from casesync.api.credentials import (
    Credentials,
    TokenProvider,
    credentials_from_grant,
    credentials_path,
    describe_user,
    login,
    logout,
    read_credentials,
    token_provider,
    write_credentials,
)
from casesync.api.logins import read_logins
from casesync.api.models import Quotas, User
from casesync.api.oauth import OOB_REDIRECT_URI, TokenGrant, authorize_url, refresh_grant
from casesync.cli.app import app
from casesync.emulator import Emulator, EmulatorThread
from casesync.errors import AuthError, ConfigError, ExitCode

KEYS = {"api_url", "client_id", "client_secret", "access_token", "refresh_token", "expires_at"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored(emulator: Emulator, path: Path, ttl: int | None = None) -> Credentials:
    """A login for the demo user in ``path``, as ``casesync login`` leaves it."""
    pair = emulator.issue_tokens(ttl)
    credentials = Credentials(
        emulator.base_url,
        DEMO_CLIENT.client_id,
        DEMO_CLIENT.client_secret,
        pair["access_token"],
        pair["refresh_token"],
        int(time.time()) + pair["expires_in"],
    )
    write_credentials(path, credentials)
    return credentials


def file_env(path: Path) -> dict[str, str]:
    return {"CASESYNC_CREDENTIALS": str(path)}


# --- where credentials come from ---


def test_credentials_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    named = tmp_path / "elsewhere.json"
    env = {"CASESYNC_CREDENTIALS": str(named), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert credentials_path(env) == named
    assert credentials_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == (
        tmp_path / "xdg" / "casesync" / "credentials.json"
    )
    assert credentials_path({}) == tmp_path / "home" / ".config" / "casesync" / "credentials.json"


async def test_env_access_token_comes_first_and_is_never_refreshed(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = tmp_path / "credentials.json"
    stored(emulator, path)
    env = {
        **file_env(path),
        "CASESYNC_ACCESS_TOKEN": "env-token-abc",
        "CASESYNC_REFRESH_TOKEN": "r",
    }
    tokens = token_provider(emulator.base_url, env)
    assert await tokens.token() == "env-token-abc"
    with pytest.raises(AuthError) as caught:
        await tokens.refresh("env-token-abc")
    assert "CASESYNC_ACCESS_TOKEN" in str(caught.value)
    assert "env-token-abc" not in str(caught.value)


def test_a_refresh_token_without_its_client_is_a_config_error(tmp_path: Path) -> None:
    env = {
        **file_env(tmp_path / "c.json"),
        "CASESYNC_REFRESH_TOKEN": "r",
        "CASESYNC_CLIENT_ID": "i",
    }
    with pytest.raises(ConfigError, match="CASESYNC_CLIENT_SECRET is not"):
        token_provider("https://radiopaedia.org", env)


def test_no_credentials_says_how_to_log_in(tmp_path: Path) -> None:
    with pytest.raises(AuthError) as caught:
        token_provider("https://radiopaedia.org", file_env(tmp_path / "none.json"))
    assert "not logged in to https://radiopaedia.org" in str(caught.value)
    assert caught.value.hint is not None and "casesync login" in caught.value.hint


# --- the credentials file ---


def test_a_file_others_can_read_is_refused_with_the_fix(tmp_path: Path, emulator: Emulator) -> None:
    path = tmp_path / "credentials.json"
    stored(emulator, path)
    path.chmod(0o644)
    with pytest.raises(AuthError) as caught:
        token_provider(emulator.base_url, file_env(path))
    assert f"chmod 600 {path}" in str(caught.value)


def test_a_fifo_as_the_credentials_file_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "credentials.fifo"
    os.mkfifo(path, 0o600)  # nobody ever writes to it: a blocking read would hang
    with pytest.raises(ConfigError, match=r"credentials\.fifo"):
        read_credentials(path)


def test_a_file_with_other_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"token": "x"}))
    path.chmod(0o600)
    with pytest.raises(AuthError, match="not a casesync credentials file"):
        read_credentials(path)


def test_a_file_for_another_server_is_not_used(tmp_path: Path, emulator: Emulator) -> None:
    path = tmp_path / "credentials.json"
    stored(emulator, path)
    with pytest.raises(AuthError) as caught:
        token_provider("https://radiopaedia.org", file_env(path))
    assert f"{path} holds a login for {emulator.base_url} only" in str(caught.value)
    assert "login --api-url https://radiopaedia.org" in str(caught.value)


async def test_login_with_the_code_from_the_authorize_page(
    tmp_path: Path, emulator: Emulator
) -> None:
    url = authorize_url(emulator.base_url, DEMO_CLIENT.client_id)
    async with aiohttp.ClientSession() as session, session.get(url) as page:
        found = re.search(r'id="authorization_code">([^<]+)<', await page.text())
    assert found is not None
    path = tmp_path / "config" / "casesync" / "credentials.json"
    await login(emulator.base_url, DEMO_CLIENT, found.group(1), OOB_REDIRECT_URI, path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    document = json.loads(path.read_text())
    assert document["format_version"] == 2 and set(document["logins"]) == {emulator.base_url}
    assert set(document["logins"][emulator.base_url]) == KEYS - {"api_url"}
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left
    tokens = token_provider(emulator.base_url, file_env(path))
    async with RadiopaediaClient(emulator.base_url, tokens) as client:
        assert (await client.current_user()).login == "demo"
    stored = read_credentials(path)
    assert stored is not None
    done = await logout(path, emulator.base_url)
    assert done.had_login and done.revoked and not path.exists()
    assert not (await logout(path, emulator.base_url)).had_login
    async with aiohttp.ClientSession() as session:  # the pair is dead on the server too
        headers = {"Authorization": f"Bearer {stored.access_token}"}
        async with session.get(emulator.base_url + "/api/v1/users/current", headers=headers) as r:
            assert r.status == 401
    with pytest.raises(AuthError, match="invalid_grant"):
        await refresh_grant(emulator.base_url, DEMO_CLIENT, stored.refresh_token)


async def test_logout_without_revocation_on_the_server_still_forgets_and_says_so(
    tmp_path: Path, aiohttp_server_without_revoke: str
) -> None:
    path = tmp_path / "credentials.json"
    grant = TokenGrant("access-1", "refresh-1", int(time.time()) + 3600)
    write_credentials(
        path, credentials_from_grant(aiohttp_server_without_revoke, DEMO_CLIENT, grant)
    )
    done = await logout(path, aiohttp_server_without_revoke)
    assert done.had_login and not done.revoked and not path.exists()
    assert "does not support token revocation" in done.why_not_revoked


@pytest.fixture
async def aiohttp_server_without_revoke() -> AsyncIterator[str]:
    """A server that knows nothing of /oauth/revoke (every path answers 404)."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_a_used_code_is_refused_with_the_way_out(tmp_path: Path, emulator: Emulator) -> None:
    code = emulator.authorization_code()
    path = tmp_path / "credentials.json"
    await login(emulator.base_url, DEMO_CLIENT, code, OOB_REDIRECT_URI, path)
    with pytest.raises(AuthError) as caught:
        await login(emulator.base_url, DEMO_CLIENT, code, OOB_REDIRECT_URI, path)
    assert "invalid_grant" in str(caught.value) and "run 'casesync login' again" in str(
        caught.value
    )
    assert caught.value.exit_code == ExitCode.ERROR
    assert code not in str(caught.value) and DEMO_CLIENT.client_secret not in str(caught.value)


# --- rotation ---


async def test_the_rotated_pair_is_stored_before_use_and_the_old_one_dies(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.json"
    old = stored(emulator, path)
    users_seen_at_write: list[int] = []
    real_write = casesync.api.credentials.write_credentials

    def recording_write(target: Path, credentials: Credentials) -> None:
        users_seen_at_write.append(emulator.snapshot()["requests"]["GET /api/v1/users/current"])
        real_write(target, credentials)

    monkeypatch.setattr(casesync.api.credentials, "write_credentials", recording_write)
    emulator.advance_clock(86400 + 60)  # the stored access token has expired on the server
    tokens = token_provider(emulator.base_url, file_env(path))
    async with RadiopaediaClient(emulator.base_url, tokens) as client:
        assert (await client.current_user()).login == "demo"
    assert users_seen_at_write == [1]  # written after the 401, before the second request
    assert emulator.snapshot()["requests"]["GET /api/v1/users/current"] == 2
    new = read_credentials(path)
    assert new is not None and mode(path) == 0o600
    assert new.refresh_token != old.refresh_token and new.access_token != old.access_token
    with pytest.raises(AuthError, match="invalid_grant"):
        await refresh_grant(emulator.base_url, DEMO_CLIENT, old.refresh_token)
    assert (await refresh_grant(emulator.base_url, DEMO_CLIENT, new.refresh_token)).access_token


async def test_a_stored_token_near_expiry_is_refreshed_before_use(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = tmp_path / "credentials.json"
    old = stored(emulator, path, ttl=200)  # under five minutes left
    tokens = token_provider(emulator.base_url, file_env(path))
    fresh = await tokens.token()
    new = read_credentials(path)
    assert new is not None and fresh == new.access_token != old.access_token
    assert new.expires_at > time.time() + 3600
    assert emulator.snapshot()["requests"] == {"POST /oauth/token": 1}


async def test_a_refresh_token_from_the_environment_is_rotated_into_the_file(
    tmp_path: Path, emulator: Emulator
) -> None:
    pair = emulator.issue_tokens()
    path = tmp_path / "credentials.json"
    env = {
        **file_env(path),
        "CASESYNC_CLIENT_ID": DEMO_CLIENT.client_id,
        "CASESYNC_CLIENT_SECRET": DEMO_CLIENT.client_secret,
        "CASESYNC_REFRESH_TOKEN": pair["refresh_token"],
    }
    notices: list[str] = []
    tokens = token_provider(emulator.base_url, env, notice=notices.append)
    first = await tokens.token()
    await tokens.refresh(first)  # a second rotation in the same run: still one notice
    new = read_credentials(path)
    assert new is not None and mode(path) == 0o600 and new.access_token == await tokens.token()
    (line,) = notices
    assert "\n" not in line and "CASESYNC_REFRESH_TOKEN" in line and str(path) in line
    assert pair["refresh_token"] not in line and new.refresh_token not in line

    stale = token_provider(emulator.base_url, env, notice=notices.append)
    with pytest.raises(AuthError) as caught:
        await stale.token()  # the CI secret was not updated
    assert str(path) in str(caught.value) and "casesync login" in str(caught.value)
    assert pair["refresh_token"] not in str(caught.value)


# --- whoami and the CLI ---


def test_describe_user_shows_used_allowed_and_unlimited() -> None:
    user = User("johndoe82", Quotas(10, 3, None, 2))
    assert describe_user(user, "https://radiopaedia.org", "text") == (
        "johndoe82 on https://radiopaedia.org\n"
        "  draft cases: 3 / 10\n"
        "  unlisted cases: 2 / unlimited\n"
    )
    document = json.loads(describe_user(user, "https://radiopaedia.org", "json"))
    assert document["quotas"] == {
        "draft_cases": {"used": 3, "allowed": 10, "unlimited": False},
        "unlisted_cases": {"used": 2, "allowed": None, "unlimited": True},
    }


def cli_env(path: Path) -> dict[str, Any]:
    unset = ("CASESYNC_ACCESS_TOKEN", "CASESYNC_REFRESH_TOKEN", "CASESYNC_API_URL")
    return {**file_env(path), **dict.fromkeys(unset), "CASESYNC_CLIENT_ID": None}


def test_cli_login_whoami_logout(tmp_path: Path, emulator_thread: EmulatorThread) -> None:
    runner = CliRunner()
    path = tmp_path / "credentials.json"
    env = {**cli_env(path), "CASESYNC_CLIENT_SECRET": DEMO_CLIENT.client_secret}
    url = emulator_thread.base_url
    answers = f"{DEMO_CLIENT.client_id}\n{emulator_thread.authorization_code()}\n"
    result = runner.invoke(app, ["login", "--api-url", url], input=answers, env=env)
    assert result.exit_code == 0, result.output
    assert "/oauth/authorize?client_id=casesync-demo-client" in result.output
    assert DEMO_CLIENT.client_secret not in result.output and mode(path) == 0o600

    project = write_project(tmp_path / "repo", f"version: 1\napi_url: {url}\n")
    result = runner.invoke(app, ["-C", str(project), "whoami"], env=env)  # api_url from the project
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"demo on {url} (from api_url in casesync.yaml)\n  draft cases: 0 / 10\n"
    )
    result = runner.invoke(app, ["whoami", "--api-url", url, "--format", "json"], env=env)
    assert json.loads(result.output)["login"] == "demo"

    result = runner.invoke(app, ["whoami"], env=env)  # outside the project: the only login
    assert result.output.startswith(f"demo on {url} (from the only stored login)\n")
    assert runner.invoke(app, ["logout"], env=env).output == (
        f"revoked the token on {url}\nlogged out of {url} ({path})\n"
    )
    result = runner.invoke(app, ["whoami", "--api-url", url], env=env)
    assert isinstance(result.exception, AuthError) and "not logged in" in str(result.exception)


def test_cli_login_asks_for_a_hidden_secret(
    tmp_path: Path, emulator_thread: EmulatorThread
) -> None:
    path = tmp_path / "credentials.json"
    code = emulator_thread.authorization_code()
    args = ["login", "--api-url", emulator_thread.base_url, "--client-id", DEMO_CLIENT.client_id]
    result = CliRunner().invoke(
        app, [*args, "--code", code], input=f"{DEMO_CLIENT.client_secret}\n", env=cli_env(path)
    )
    assert result.exit_code == 0, result.output
    assert "Client secret:" in result.output and DEMO_CLIENT.client_secret not in result.output
    assert read_credentials(path) is not None


# --- short lifetimes and absurd numbers ---


async def test_a_short_lived_token_is_refreshed_at_a_third_of_its_lifetime(
    emulator_factory: Any,
) -> None:
    emulator = await emulator_factory(token_ttl=120)
    pair = emulator.issue_tokens()
    now = [time.time()]
    tokens = TokenProvider(
        emulator.base_url,
        pair["access_token"],
        source="the test",
        expires_at=now[0] + 120,
        client=DEMO_CLIENT,
        refresh_token=pair["refresh_token"],
        clock=lambda: now[0],
    )
    async with RadiopaediaClient(emulator.base_url, tokens) as client:
        for _ in range(24):
            await client.current_user()
        assert emulator.snapshot()["requests"]["POST /oauth/token"] == 1  # lifetime unknown
        assert tokens.margin == 40  # learned from the answer: 120 s / 3
        now[0] += 70  # 50 s left of the new token: more than a third
        await client.current_user()
        assert emulator.snapshot()["requests"]["POST /oauth/token"] == 1
        now[0] += 20  # 30 s left
        await client.current_user()
    assert emulator.snapshot()["requests"]["POST /oauth/token"] == 2


@pytest.mark.parametrize("value", ["1e400", "-1", "NaN", "1.5", '"soon"', "true"])
def test_an_absurd_expires_at_in_the_file_is_a_clear_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "credentials.json"
    fields = {k: "x" for k in KEYS - {"expires_at"}}
    path.write_text(json.dumps(fields)[:-1] + f', "expires_at": {value}}}')
    path.chmod(0o600)
    with pytest.raises(AuthError, match="expires_at is not unix seconds"):
        read_credentials(path)


# --- several servers in one credentials file ---


def test_a_format_1_file_is_still_read_and_becomes_format_2(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = tmp_path / "credentials.json"
    old = stored(emulator, tmp_path / "scratch.json")
    path.write_text(json.dumps(dataclasses.asdict(old)))  # the flat form casesync 0.1 wrote
    path.chmod(0o600)
    assert read_credentials(path) == old == read_credentials(path, emulator.base_url + "/")
    other = dataclasses.replace(old, api_url="https://radiopaedia.org", access_token="b")
    write_credentials(path, other)
    assert json.loads(path.read_text())["format_version"] == 2 and mode(path) == 0o600
    assert read_logins(path) == {emulator.base_url: old, "https://radiopaedia.org": other}
    assert read_credentials(path) is None  # two logins: none is "the" login


async def test_logins_for_two_servers_live_side_by_side(
    tmp_path: Path, emulator: Emulator, aiohttp_server_without_revoke: str
) -> None:
    path = tmp_path / "credentials.json"
    first = stored(emulator, path)
    grant = TokenGrant("access-2", "refresh-2", int(time.time()) + 3600)
    write_credentials(
        path, credentials_from_grant(aiohttp_server_without_revoke, DEMO_CLIENT, grant)
    )
    assert token_provider(emulator.base_url, file_env(path)).source == str(path)
    assert await token_provider(aiohttp_server_without_revoke, file_env(path)).token() == "access-2"
    done = await logout(path, aiohttp_server_without_revoke)
    assert done.had_login and set(read_logins(path)) == {emulator.base_url}
    assert read_credentials(path) == first and mode(path) == 0o600


def test_cli_login_in_a_project_without_a_server_says_how_to_name_it(
    tmp_path: Path, emulator_thread: EmulatorThread
) -> None:
    path = tmp_path / "credentials.json"
    project = write_project(tmp_path / "repo", "version: 1\n")
    url = emulator_thread.base_url
    args = ["-C", str(project), "login", "--api-url", url, "--client-id", DEMO_CLIENT.client_id]
    env = {**cli_env(path), "CASESYNC_CLIENT_SECRET": DEMO_CLIENT.client_secret}
    code = emulator_thread.authorization_code()
    result = CliRunner().invoke(app, [*args, "--code", code], env=env)
    assert result.exit_code == 0, result.output
    assert f"add the line 'api_url: {url}' to {project / 'casesync.yaml'}" in result.output
    assert (project / "casesync.yaml").read_text() == "version: 1\n"  # no terminal: not written


def test_cli_login_in_a_project_writes_the_server_when_the_user_says_yes(
    tmp_path: Path, emulator_thread: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(casesync.cli.commands_auth, "interactive", lambda: True)
    project = write_project(tmp_path / "repo", "version: 1  # no newline at the end")
    url = emulator_thread.base_url
    code = emulator_thread.authorization_code()
    args = ["-C", str(project), "login", "--api-url", url, "--client-id", DEMO_CLIENT.client_id]
    env = {**cli_env(tmp_path / "credentials.json")}
    env["CASESYNC_CLIENT_SECRET"] = DEMO_CLIENT.client_secret
    result = CliRunner().invoke(app, [*args, "--code", code], input="y\n", env=env)
    assert result.exit_code == 0, result.output
    assert "so this project uses it? [y/N]" in result.output
    text = (project / "casesync.yaml").read_text()
    assert text == f"version: 1  # no newline at the end\napi_url: {url}\n"
    whoami = CliRunner().invoke(app, ["-C", str(project), "whoami"], env=env)
    assert whoami.output.startswith(f"demo on {url} (from api_url in casesync.yaml)")
