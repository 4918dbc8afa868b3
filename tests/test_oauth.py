"""The token endpoint: retried like any idempotent call while nothing can have happened, never
after a refresh was sent and its answer lost, and absurd lifetimes refused after the new pair
is saved (a refresh rotates the pair: losing the new one locks the user out)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from authfactory import DEMO_CLIENT
from scripted import Script, drop, endless

from casesync.api.credentials import TokenProvider, login, read_credentials
from casesync.api.oauth import RetryPolicy, UnusableGrant, exchange_code, refresh_grant
from casesync.errors import AuthError
from casesync.settings import Timeouts

QUICK = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02, deadline=10)
PAIR = '{"access_token": "new-access", "refresh_token": "new-refresh", "token_type": "Bearer"'
GOOD = (200, PAIR + ', "expires_in": 7200, "created_at": 1700000000}', {})


def provider(url: str, store: Path) -> TokenProvider:
    return TokenProvider(
        url, "old-access", source="the test", client=DEMO_CLIENT, refresh_token="old", store=store
    )


async def test_5xx_and_429_from_the_token_endpoint_are_retried(script: Script) -> None:
    script.on(
        "POST",
        "/oauth/token",
        (503, "maintenance", {}),
        (500, "boom", {}),
        (429, "{}", {"Retry-After": "0"}),
        GOOD,
    )
    grant = await refresh_grant(script.url, DEMO_CLIENT, "old", retry=QUICK)
    assert (grant.access_token, grant.expires_at, grant.lifetime) == (
        "new-access",
        1700007200,
        7200,
    )
    assert script.count("POST", "/oauth/token") == 4


async def test_a_token_endpoint_that_keeps_failing_ends_clearly(script: Script) -> None:
    script.on("POST", "/oauth/token", (502, "<html>bad gateway</html>", {}))
    with pytest.raises(AuthError, match="HTTP 502"):
        await refresh_grant(script.url, DEMO_CLIENT, "old", retry=QUICK)
    assert script.count("POST", "/oauth/token") == QUICK.attempts


async def test_a_token_endpoint_never_reached_is_retried_then_fails_plainly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(AuthError, match="cannot reach the server"):
        await refresh_grant(url, DEMO_CLIENT, "old", retry=QUICK)


@pytest.mark.parametrize("answer", [drop, endless], ids=["dropped", "endless"])
async def test_a_refresh_whose_answer_is_lost_is_not_repeated_and_says_so(
    script: Script, answer: object
) -> None:
    script.on("POST", "/oauth/token", answer)  # type: ignore[arg-type]
    timeouts = Timeouts(read=0.3)
    with pytest.raises(AuthError) as caught:
        await refresh_grant(script.url, DEMO_CLIENT, "old", timeouts, retry=QUICK)
    assert "the token refresh was sent but its answer was lost" in str(caught.value)
    assert "casesync login" in str(caught.value)
    assert "old" not in str(caught.value).split("(")[0].split()  # no token in the message
    assert script.count("POST", "/oauth/token") == 1


@pytest.mark.parametrize(
    "numbers",
    [
        '"expires_in": 1e400',
        '"expires_in": -5',
        '"expires_in": NaN',
        '"expires_in": "soon"',
        '"expires_in": 7200, "created_at": 1e400',
    ],
)
async def test_an_absurd_lifetime_is_refused_after_the_new_pair_is_saved(
    script: Script, tmp_path: Path, numbers: str
) -> None:
    script.on("POST", "/oauth/token", (200, PAIR + ", " + numbers + "}", {}))
    store = tmp_path / "credentials.json"
    tokens = provider(script.url, store)
    with pytest.raises(UnusableGrant) as caught:
        await tokens.refresh("old-access")
    assert "is not a plausible number of seconds" in str(caught.value)
    saved = read_credentials(store)
    assert saved is not None
    assert (saved.access_token, saved.refresh_token) == ("new-access", "new-refresh")


async def test_a_login_with_an_absurd_lifetime_keeps_the_pair(
    script: Script, tmp_path: Path
) -> None:
    script.on("POST", "/oauth/token", (200, PAIR + ', "expires_in": 1e400}', {}))
    store = tmp_path / "credentials.json"
    with pytest.raises(AuthError, match="expires_in"):
        await login(script.url, DEMO_CLIENT, "code", "urn:ietf:wg:oauth:2.0:oob", store)
    assert json.loads(store.read_text())["refresh_token"] == "new-refresh"


async def test_a_code_exchange_is_retried_on_503(script: Script) -> None:
    script.on("POST", "/oauth/token", (503, "", {}), GOOD)
    grant = await exchange_code(
        script.url, DEMO_CLIENT, "c", "urn:ietf:wg:oauth:2.0:oob", retry=QUICK
    )
    assert grant.refresh_token == "new-refresh"


async def test_an_error_body_never_shows_what_was_sent(script: Script) -> None:
    script.on("POST", "/oauth/token", (400, '{"error": "x", "got": "refresh-SECRET-1"}', {}))
    with pytest.raises(AuthError) as caught:
        await refresh_grant(script.url, DEMO_CLIENT, "refresh-SECRET-1", retry=QUICK)
    assert "refresh-SECRET-1" not in str(caught.value) and "[redacted]" in str(caught.value)
