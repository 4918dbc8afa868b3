"""The OAuth side of protocol.md: the authorize URL and the form-encoded /oauth/token calls.

A token call is retried like any idempotent call when it cannot have been processed: it never
reached the server, or the server answered 5xx/429. A call that was sent and never answered is
not retried: for a refresh the old pair may already be dead and the new one lost with the
answer, so the user is told so. The new pair is handed back as soon as its two tokens can be
read, so that the caller saves it before anything else (an absurd lifetime) can fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from casesync.api.pacer import SERVER_ERRORS, RetryPolicy, retry_after_seconds
from casesync.api.transport import trim
from casesync.errors import ApiError, AuthError
from casesync.settings import Timeouts

log = logging.getLogger("casesync.api")

AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"
TOKEN_RETRY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=10.0, deadline=120.0)
LONGEST_LIFETIME = 10 * 365 * 86400  # seconds; a longer lifetime is not a real answer
LOGIN_AGAIN = "run 'casesync login' again"


@dataclass(frozen=True)
class TokenGrant:
    """What /oauth/token answered: a new access/refresh pair."""

    access_token: str
    refresh_token: str
    expires_at: int  # unix seconds
    lifetime: int | None = None  # seconds the access token lives, when the answer said


class UnusableGrant(AuthError):
    """The answer holds a new pair (keep it: the old one is dead) but an absurd lifetime."""

    def __init__(self, message: str, grant: TokenGrant) -> None:
        super().__init__(message, hint="the server's answer is broken; try again later")
        self.grant = grant


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


async def exchange_code(
    api_url: str,
    client: Client,
    code: str,
    redirect_uri: str,
    timeouts: Timeouts | None = None,
    retry: RetryPolicy = TOKEN_RETRY,
) -> TokenGrant:
    """grant_type=authorization_code: the code from the authorize page becomes a token pair."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    return await _token_call(api_url, client, form, timeouts or Timeouts(), retry)


async def refresh_grant(
    api_url: str,
    client: Client,
    refresh_token: str,
    timeouts: Timeouts | None = None,
    retry: RetryPolicy = TOKEN_RETRY,
) -> TokenGrant:
    """grant_type=refresh_token: rotate the pair (the old one stops working at once)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_call(api_url, client, form, timeouts or Timeouts(), retry)


async def _token_call(
    api_url: str, client: Client, form: dict[str, str], timeouts: Timeouts, retry: RetryPolicy
) -> TokenGrant:
    data = {"client_id": client.client_id, "client_secret": client.client_secret, **form}
    timeout = aiohttp.ClientTimeout(total=timeouts.read, sock_connect=timeouts.connect)
    refresh = form["grant_type"] == "refresh_token"
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, retry.attempts + 1):
            last = attempt == retry.attempts
            delay = retry.backoff(attempt)
            try:
                async with session.post(
                    api_url + TOKEN, data=data, headers={"Accept": "application/json"}
                ) as response:
                    status, text = response.status, await response.text(errors="replace")
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            except aiohttp.ClientConnectorError as exc:  # never reached the server: safe again
                if last:
                    raise AuthError(
                        f"POST {TOKEN}: cannot reach the server ({type(exc).__name__})",
                        hint="check the network and the API URL, then try again",
                    ) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise _lost_answer(refresh, exc) from None
            else:
                log.debug("POST %s (%s) -> %d", TOKEN, form["grant_type"], status)
                if last or not (status in SERVER_ERRORS or status == 429):
                    return _grant(status, text, data)
                delay = min(retry.max_delay, retry_after or delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _lost_answer(refresh: bool, exc: BaseException) -> AuthError:
    """A token request that was sent and never answered: a refresh may have rotated the pair."""
    reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
    if refresh:
        return AuthError(
            f"POST {TOKEN}: the token refresh was sent but its answer was lost ({reason}); "
            "the server may have rotated the token pair, and the new pair is lost with it",
            hint=f"if the next run is refused, {LOGIN_AGAIN}",
        )
    return AuthError(
        f"POST {TOKEN}: the login was sent but its answer was lost ({reason})", hint=LOGIN_AGAIN
    )


async def revoke(
    api_url: str, client: Client, token: str, timeouts: Timeouts | None = None
) -> bool:
    """RFC 7009 revocation (Doorkeeper's route): kills the pair the token belongs to.

    True when the server revoked it; False when the server has no such route (404/405), which
    protocol.md says to treat as "revocation not supported". Any other answer is an error.
    """
    data = {"token": token, "client_id": client.client_id, "client_secret": client.client_secret}
    timeouts = timeouts or Timeouts()
    timeout = aiohttp.ClientTimeout(total=timeouts.read, sock_connect=timeouts.connect)
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


def _grant(status: int, text: str, sent: dict[str, str]) -> TokenGrant:
    """The pair from a 200; the body is shown in errors only without what we sent."""
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_grant":
        raise AuthError(
            f"POST {TOKEN}: HTTP {status}: invalid_grant: the code or refresh token is "
            "invalid, expired or already used",
            hint=LOGIN_AGAIN,
        )
    if status != 200 or not isinstance(body, dict):
        raise AuthError(f"POST {TOKEN}: HTTP {status}: {trim(_scrubbed(text, sent))}")
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise AuthError(f"POST {TOKEN}: HTTP {status}: the answer lacks a token pair")
    now = int(time.time())
    stated = body.get("created_at")
    created = now if stated is None else _seconds(stated, 0, now + LONGEST_LIFETIME)
    lifetime = _seconds(body.get("expires_in"), 1, LONGEST_LIFETIME)
    if created is None or lifetime is None:
        field = "created_at" if created is None else "expires_in"
        raise UnusableGrant(
            f"POST {TOKEN}: HTTP {status}: {field} is not a plausible number of seconds",
            TokenGrant(access, refresh, expires_at=now),  # treated as expiring: refreshed next
        )
    return TokenGrant(access, refresh, expires_at=created + lifetime, lifetime=lifetime)


def _seconds(value: Any, low: int, high: int) -> int | None:
    """A whole number of seconds within [low, high]; None for NaN, 1e400, text, booleans..."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or not low <= number <= high:
        return None
    return int(number)
