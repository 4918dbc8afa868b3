"""Credentials: where they come from, how they are kept, and the token provider the client uses.

Order: ``CASESYNC_ACCESS_TOKEN`` (as is, never refreshed); ``CASESYNC_CLIENT_ID`` +
``CASESYNC_CLIENT_SECRET`` + ``CASESYNC_REFRESH_TOKEN`` (CI); the credentials file written by
``casesync login``. Refresh tokens rotate, so a new pair is on disk before it is used: losing
it would lock the user out until they log in again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from casesync.api import oauth
from casesync.api.client import RadiopaediaClient
from casesync.api.logins import (
    LOGIN_AGAIN,
    Credentials,
    credentials_path,
    read_credentials,
    read_logins,
    remove_login,
    write_credentials,
)
from casesync.api.models import User
from casesync.api.oauth import Client, TokenGrant, UnusableGrant, exchange_code, refresh_grant
from casesync.errors import ApiError, AuthError, ConfigError
from casesync.settings import Timeouts, env_value

ACCESS_ENV = "CASESYNC_ACCESS_TOKEN"
CLIENT_ID_ENV = "CASESYNC_CLIENT_ID"
CLIENT_SECRET_ENV = "CASESYNC_CLIENT_SECRET"
REFRESH_ENV = "CASESYNC_REFRESH_TOKEN"
REFRESH_MARGIN = 300  # seconds: refresh before the server would start refusing the token
__all__ = ["Credentials", "credentials_path", "read_credentials", "write_credentials"]

Notice = Callable[[str], None]
# the API URL (known once the project is read) -> the tokens to call it with; the CLI decides
# where they come from (environment, login file, the demo's emulator)
TokenSource = Callable[[str], "TokenProvider"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def credentials_from_grant(api_url: str, client: Client, grant: TokenGrant) -> Credentials:
    """The login to store for ``api_url`` after a token answer."""
    return Credentials(
        api_url,
        client.client_id,
        client.client_secret,
        grant.access_token,
        grant.refresh_token,
        grant.expires_at,
    )


class TokenProvider:
    """Hands the client a valid access token; refreshes at most one at a time.

    ``refresh`` after a 401 is single-flight: concurrent callers that were refused the same
    token wait for one /oauth/token call and then all get the new token.
    """

    def __init__(
        self,
        api_url: str,
        access_token: str,
        *,
        source: str,
        expires_at: float | None = None,
        client: Client | None = None,
        refresh_token: str | None = None,
        store: Path | None = None,
        from_env: bool = False,
        notice: Notice = _stderr,
        clock: Callable[[], float] = time.time,
        lifetime: float | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.api_url = api_url
        self.source = source  # where the credentials came from, for messages
        self.timeouts = timeouts or Timeouts()
        self._access = access_token
        self._expires_at = expires_at
        self._lifetime = lifetime  # seconds an access token lives, once an answer said
        self._client = client
        self._refresh_token = refresh_token
        self._store = store
        self._from_env = from_env
        self._notice = notice
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def can_refresh(self) -> bool:
        return self._client is not None and self._refresh_token is not None

    @property
    def margin(self) -> float:
        """Refresh when less than this is left: five minutes, or a third of a shorter lifetime
        (a two-minute token would otherwise be refreshed before every call)."""
        if self._lifetime is None:
            return REFRESH_MARGIN
        return min(REFRESH_MARGIN, self._lifetime / 3)

    async def token(self) -> str:
        """The access token, refreshed first if little of its lifetime is left."""
        expires_at = self._expires_at
        if self.can_refresh and (expires_at is None or expires_at - self._clock() < self.margin):
            return await self.refresh(self._access)
        return self._access

    async def refresh(self, rejected_token: str) -> str:
        """A new access token; one /oauth/token call however many callers were refused."""
        async with self._lock:
            if self._access and self._access != rejected_token:
                return self._access  # another caller already refreshed past it
            if self._client is None or self._refresh_token is None:
                raise AuthError(
                    f"the server refused the access token from {self.source}",
                    hint=f"set a fresh {ACCESS_ENV}, or unset it and {LOGIN_AGAIN}"
                    if self.source == ACCESS_ENV
                    else LOGIN_AGAIN,
                )
            try:
                grant = await refresh_grant(
                    self.api_url, self._client, self._refresh_token, self.timeouts
                )
            except UnusableGrant as exc:  # the old pair is dead: keep the new one, then fail
                await self._keep(exc.grant)
                raise
            except AuthError as exc:
                if self._from_env and self._store is not None and "invalid_grant" in str(exc):
                    exc.hint = (
                        f"{REFRESH_ENV} may be an old, already rotated token: the newest pair "
                        f"is in {self._store}; otherwise {LOGIN_AGAIN}"
                    )
                raise
            return await self._keep(grant)

    async def _keep(self, grant: TokenGrant) -> str:
        """Save the rotated pair first (nothing else may fail before), then use it."""
        assert self._client is not None
        credentials = credentials_from_grant(self.api_url, self._client, grant)
        if self._store is not None:  # on disk before the new token is used
            await asyncio.to_thread(write_credentials, self._store, credentials)
        self._access = grant.access_token
        self._refresh_token = grant.refresh_token
        self._expires_at = grant.expires_at
        self._lifetime = grant.lifetime or self._lifetime
        if self._from_env:
            self._notice(
                f"casesync: the refresh token rotated; {REFRESH_ENV} no longer works: update "
                f"the stored CI secret from {self._store} (see README, CI)"
            )
            self._from_env = False  # one notice per run
        return self._access


def token_provider(
    api_url: str,
    env: Mapping[str, str],
    *,
    notice: Notice = _stderr,
    timeouts: Timeouts | None = None,
) -> TokenProvider:
    """The first source of credentials, in the documented order, for ``api_url``.

    ``env`` is the CLI's environment, passed in: only the CLI and settings read the process's.
    """
    access = env_value(ACCESS_ENV, env)
    if access:
        return TokenProvider(api_url, access, source=ACCESS_ENV, timeouts=timeouts)
    path = credentials_path(env)
    refresh = env_value(REFRESH_ENV, env)
    if refresh:
        client_id, secret = env_value(CLIENT_ID_ENV, env), env_value(CLIENT_SECRET_ENV, env)
        if not client_id or not secret:
            missing = CLIENT_ID_ENV if not client_id else CLIENT_SECRET_ENV
            raise ConfigError(f"{REFRESH_ENV} is set but {missing} is not", hint="set all three")
        return TokenProvider(
            api_url,
            "",
            source=REFRESH_ENV,
            client=Client(client_id, secret),
            refresh_token=refresh,
            store=path,
            from_env=True,
            notice=notice,
            timeouts=timeouts,
        )
    logins = read_logins(path)
    stored = logins.get(api_url.rstrip("/"))
    if stored is None and logins:
        others = ", ".join(logins)
        raise AuthError(
            f"not logged in to {api_url}: {path} holds a login for {others} only",
            hint=f"run 'casesync login --api-url {api_url}', or choose the server with "
            "--api-url, CASESYNC_API_URL or api_url in casesync.yaml",
        )
    if stored is None:
        raise AuthError(
            f"not logged in to {api_url}", hint=f"run 'casesync login', or set {ACCESS_ENV}"
        )
    return TokenProvider(
        api_url,
        stored.access_token,
        source=str(path),
        expires_at=stored.expires_at,
        client=Client(stored.client_id, stored.client_secret),
        refresh_token=stored.refresh_token,
        store=path,
        timeouts=timeouts,
    )


# --- login, logout, whoami ---


async def login(
    api_url: str,
    client: Client,
    code: str,
    redirect_uri: str,
    path: Path,
    timeouts: Timeouts | None = None,
) -> Credentials:
    """Exchange the code from the authorize page and store the pair (mode 0600)."""
    try:
        grant = await exchange_code(api_url, client, code.strip(), redirect_uri, timeouts)
    except UnusableGrant as exc:  # the code is spent: keep what it bought, then say so
        write_credentials(path, credentials_from_grant(api_url, client, exc.grant))
        raise
    credentials = credentials_from_grant(api_url, client, grant)
    write_credentials(path, credentials)
    return credentials


@dataclass(frozen=True)
class Logout:
    """What logout did: whether there was a login, and what the server said of its token."""

    had_login: bool
    revoked: bool = False
    why_not_revoked: str = ""


async def logout(path: Path, api_url: str, timeouts: Timeouts | None = None) -> Logout:
    """Revoke the login for ``api_url`` on its server where supported, then forget it.

    The login goes even when revocation fails: logging out must never be blocked by a server
    that is down; the caller says the token stays valid until it expires.
    """
    try:
        credentials = read_credentials(path, api_url)
    except AuthError as exc:  # unreadable or too open: nothing to revoke with, remove it anyway
        path.unlink(missing_ok=True)
        return Logout(had_login=True, why_not_revoked=exc.message)
    if credentials is None:
        return Logout(had_login=False)
    try:
        revoked = await oauth.revoke(
            credentials.api_url,
            Client(credentials.client_id, credentials.client_secret),
            credentials.refresh_token,
            timeouts,
        )
        why = "" if revoked else f"{credentials.api_url} does not support token revocation"
    except ApiError as exc:
        revoked, why = False, str(exc)
    remove_login(path, api_url)
    return Logout(had_login=True, revoked=revoked, why_not_revoked=why)


async def current_user(api_url: str, tokens: TokenProvider) -> User:
    async with RadiopaediaClient(api_url, tokens, timeouts=tokens.timeouts) as client:
        return await client.current_user()


def describe_user(user: User, api_url: str, fmt: str, source: str = "") -> str:
    """whoami's answer: login and quotas as used / allowed (or unlimited)."""
    quotas = user.quotas
    rows = {
        "draft_cases": (quotas.draft_case_count, quotas.allowed_draft_cases),
        "unlisted_cases": (quotas.unlisted_case_count, quotas.allowed_unlisted_cases),
    }
    if fmt == "json":
        document = {
            "api_url": api_url,
            "api_url_from": source,
            "login": user.login,
            "quotas": {
                name: {"used": used, "allowed": allowed, "unlimited": allowed is None}
                for name, (used, allowed) in rows.items()
            },
        }
        return json.dumps(document, indent=2) + "\n"
    lines = [f"{user.login} on {api_url}" + (f" (from {source})" if source else "")]
    for name, (used, allowed) in rows.items():
        limit = "unlimited" if allowed is None else str(allowed)
        lines.append(f"  {name.replace('_', ' ')}: {used} / {limit}")
    return "\n".join(lines) + "\n"
