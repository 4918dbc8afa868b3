"""The OAuth side of protocol.md: the authorize URL and the form-encoded /oauth/token calls.

A refresh is not idempotent (the old refresh token dies when the new one is issued), so a
token call is retried only when it cannot have reached the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from casesync.api.client import trim
from casesync.errors import ApiError, AuthError

log = logging.getLogger("casesync.api")

AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"
CONNECT_ATTEMPTS = 3


@dataclass(frozen=True)
class TokenGrant:
    """What /oauth/token answered: a new access/refresh pair."""

    access_token: str
    refresh_token: str
    expires_at: int  # unix seconds


@dataclass(frozen=True)
class Client:
    """The registered application (APPLICATION_ID and its secret)."""

    client_id: str
    client_secret: str


def authorize_url(api_url: str, client_id: str, redirect_uri: str = OOB_REDIRECT_URI) -> str:
    query = urlencode(
        {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"}
    )
    return f"{api_url}{AUTHORIZE}?{query}"


async def exchange_code(api_url: str, client: Client, code: str, redirect_uri: str) -> TokenGrant:
    """grant_type=authorization_code: the code from the authorize page becomes a token pair."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    return await _token_call(api_url, client, form)


async def refresh_grant(api_url: str, client: Client, refresh_token: str) -> TokenGrant:
    """grant_type=refresh_token: rotate the pair (the old one stops working at once)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_call(api_url, client, form)


async def _token_call(api_url: str, client: Client, form: dict[str, str]) -> TokenGrant:
    data = {"client_id": client.client_id, "client_secret": client.client_secret, **form}
    timeout = aiohttp.ClientTimeout(total=30, connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                async with session.post(
                    api_url + TOKEN, data=data, headers={"Accept": "application/json"}
                ) as response:
                    status, text = response.status, await response.text(errors="replace")
                break
            except aiohttp.ClientConnectorError as exc:  # never reached the server: safe again
                if attempt == CONNECT_ATTEMPTS:
                    raise ApiError(f"POST {TOKEN}: {exc}", method="POST", path=TOKEN) from None
                await asyncio.sleep(0.5 * attempt)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise AuthError(
                    f"POST {TOKEN}: {type(exc).__name__}: no answer to the token request",
                    hint="if the next run is refused, run 'casesync login' again",
                ) from None
    log.debug("POST %s (%s) -> %d", TOKEN, form["grant_type"], status)
    return _grant(status, _scrubbed(text, data))


async def revoke(api_url: str, client: Client, token: str) -> bool:
    """RFC 7009 revocation (Doorkeeper's route): kills the pair the token belongs to.

    True when the server revoked it; False when the server has no such route (404/405), which
    protocol.md says to treat as "revocation not supported". Any other answer is an error.
    """
    data = {"token": token, "client_id": client.client_id, "client_secret": client.client_secret}
    timeout = aiohttp.ClientTimeout(total=30, connect=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                api_url + REVOKE, data=data, headers={"Accept": "application/json"}
            ) as response,
        ):
            status, text = response.status, await response.text(errors="replace")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise ApiError(f"POST {REVOKE}: {type(exc).__name__}", method="POST", path=REVOKE) from None
    log.debug("POST %s -> %d", REVOKE, status)
    if status in (404, 405):
        return False
    if status != 200:
        raise ApiError(
            f"POST {REVOKE}: HTTP {status}: {trim(_scrubbed(text, data))}",
            method="POST",
            path=REVOKE,
        )
    return True


def _scrubbed(text: str, sent: dict[str, str]) -> str:
    """The body without any secret we sent (a server may echo them)."""
    for key in ("client_secret", "refresh_token", "code", "token"):
        if sent.get(key):
            text = text.replace(sent[key], "[redacted]")
    return text


def _grant(status: int, text: str) -> TokenGrant:
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_grant":
        raise AuthError(
            f"POST {TOKEN}: HTTP {status}: invalid_grant: the code or refresh token is "
            "invalid, expired or already used",
            hint="run 'casesync login' again",
        )
    if status != 200 or not isinstance(body, dict):
        raise AuthError(f"POST {TOKEN}: HTTP {status}: {trim(text)}")
    try:
        created = int(body.get("created_at") or time.time())
        return TokenGrant(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=created + int(body["expires_in"]),
        )
    except (KeyError, TypeError, ValueError):
        raise AuthError(f"POST {TOKEN}: HTTP {status}: the answer lacks a token pair") from None
