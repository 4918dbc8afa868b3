"""Credentials: where they come from, how they are kept, and the token provider the client uses.

Order: ``CASESYNC_ACCESS_TOKEN`` (as is, never refreshed); ``CASESYNC_CLIENT_ID`` +
``CASESYNC_CLIENT_SECRET`` + ``CASESYNC_REFRESH_TOKEN`` (CI); the credentials file written by
``casesync login``. Refresh tokens rotate, so a new pair is on disk before it is used: losing
it would lock the user out until they log in again.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from casesync.api import oauth
from casesync.api.client import RadiopaediaClient
from casesync.api.models import User
from casesync.api.oauth import Client, TokenGrant, UnusableGrant, exchange_code, refresh_grant
from casesync.errors import ApiError, AuthError, ConfigError
from casesync.fsutil import atomic_write, read_regular
from casesync.settings import Timeouts, env_value

ACCESS_ENV = "CASESYNC_ACCESS_TOKEN"
CLIENT_ID_ENV = "CASESYNC_CLIENT_ID"
CLIENT_SECRET_ENV = "CASESYNC_CLIENT_SECRET"
REFRESH_ENV = "CASESYNC_REFRESH_TOKEN"
CREDENTIALS_ENV = "CASESYNC_CREDENTIALS"
REFRESH_MARGIN = 300  # seconds: refresh before the server would start refusing the token
LATEST_EXPIRY = 2**40  # unix seconds (year 36812): a larger expires_at is not a real one
LOGIN_AGAIN = "run 'casesync login' again"

Notice = Callable[[str], None]
# the API URL (known once the project is read) -> the tokens to call it with; the CLI decides
# where they come from (environment, login file, the demo's emulator)
TokenSource = Callable[[str], "TokenProvider"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class Credentials:
    """The credentials file: exactly these keys."""

    api_url: str
    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str
    expires_at: int  # unix seconds

    @classmethod
    def from_grant(cls, api_url: str, client: Client, grant: TokenGrant) -> Credentials:
        return cls(
            api_url,
            client.client_id,
            client.client_secret,
            grant.access_token,
            grant.refresh_token,
            grant.expires_at,
        )

    @property
    def client(self) -> Client:
        return Client(self.client_id, self.client_secret)


def credentials_path(env: Mapping[str, str]) -> Path:
    """``CASESYNC_CREDENTIALS``, else ``$XDG_CONFIG_HOME/casesync``, else ``~/.config/casesync``."""
    named = env_value(CREDENTIALS_ENV, env)
    if named:
        return Path(named).expanduser()
    config_home = env_value("XDG_CONFIG_HOME", env)
    base = Path(config_home) if config_home else Path.home() / ".config"
    return base / "casesync" / "credentials.json"


def read_credentials(path: Path) -> Credentials | None:
    """The stored login, or None if there is none; a file others can read is refused."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise AuthError(
            f"{path} can be read by other users (mode {mode:04o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    try:
        # a FIFO or device named by CASESYNC_CREDENTIALS must not hang or flood the process
        data: Any = json.loads(read_regular(path, 1 << 16, str(path)).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read {path}: {exc}", hint=LOGIN_AGAIN) from None
    fields = tuple(Credentials.__dataclass_fields__)
    if not isinstance(data, dict) or set(data) != set(fields):
        raise AuthError(
            f"{path} is not a casesync credentials file (expected keys {', '.join(fields)})",
            hint=LOGIN_AGAIN,
        )
    expires_at = data[fields[-1]]
    whole = isinstance(expires_at, int) or (
        isinstance(expires_at, float) and expires_at.is_integer()
    )
    if isinstance(expires_at, bool) or not whole or not 0 <= expires_at <= LATEST_EXPIRY:
        raise AuthError(f"{path}: expires_at is not unix seconds", hint=LOGIN_AGAIN)
    return Credentials(**{k: str(data[k]) for k in fields[:-1]}, expires_at=int(expires_at))


def write_credentials(path: Path, credentials: Credentials) -> None:
    """Atomically (temp file created 0600 in the same folder, fsync, rename, fsync folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(asdict(credentials), indent=2) + "\n", mode=0o600)


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
        credentials = Credentials.from_grant(self.api_url, self._client, grant)
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
    stored = read_credentials(path)
    if stored is None:
        raise AuthError(
            f"not logged in to {api_url}", hint=f"run 'casesync login', or set {ACCESS_ENV}"
        )
    if stored.api_url.rstrip("/") != api_url.rstrip("/"):
        raise AuthError(
            f"{path} holds a login for {stored.api_url}, not {api_url}, so it is not used",
            hint=f"run 'casesync login --api-url {api_url}'",
        )
    return TokenProvider(
        api_url,
        stored.access_token,
        source=str(path),
        expires_at=stored.expires_at,
        client=stored.client,
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
        write_credentials(path, Credentials.from_grant(api_url, client, exc.grant))
        raise
    credentials = Credentials.from_grant(api_url, client, grant)
    write_credentials(path, credentials)
    return credentials


@dataclass(frozen=True)
class Logout:
    """What logout did: whether there was a login, and what the server said of its token."""

    had_login: bool
    revoked: bool = False
    why_not_revoked: str = ""


async def logout(path: Path, timeouts: Timeouts | None = None) -> Logout:
    """Revoke the stored pair on its server where that is supported, then remove the file.

    The file goes even when revocation fails: logging out must never be blocked by a server
    that is down; the caller says the token stays valid until it expires.
    """
    try:
        credentials = read_credentials(path)
    except AuthError as exc:  # unreadable or too open: nothing to revoke with, remove it anyway
        path.unlink(missing_ok=True)
        return Logout(had_login=True, why_not_revoked=exc.message)
    if credentials is None:
        return Logout(had_login=False)
    try:
        revoked = await oauth.revoke(
            credentials.api_url, credentials.client, credentials.refresh_token, timeouts
        )
        why = "" if revoked else f"{credentials.api_url} does not support token revocation"
    except ApiError as exc:
        revoked, why = False, str(exc)
    path.unlink(missing_ok=True)
    return Logout(had_login=True, revoked=revoked, why_not_revoked=why)


async def current_user(api_url: str, tokens: TokenProvider) -> User:
    async with RadiopaediaClient(api_url, tokens, timeouts=tokens.timeouts) as client:
        return await client.current_user()


def describe_user(user: User, api_url: str, fmt: str) -> str:
    """whoami's answer: login and quotas as used / allowed (or unlimited)."""
    quotas = user.quotas
    rows = {
        "draft_cases": (quotas.draft_case_count, quotas.allowed_draft_cases),
        "unlisted_cases": (quotas.unlisted_case_count, quotas.allowed_unlisted_cases),
    }
    if fmt == "json":
        document = {
            "api_url": api_url,
            "login": user.login,
            "quotas": {
                name: {"used": used, "allowed": allowed, "unlimited": allowed is None}
                for name, (used, allowed) in rows.items()
            },
        }
        return json.dumps(document, indent=2) + "\n"
    lines = [f"{user.login} on {api_url}"]
    for name, (used, allowed) in rows.items():
        limit = "unlimited" if allowed is None else str(allowed)
        lines.append(f"  {name.replace('_', ' ')}: {used} / {limit}")
    return "\n".join(lines) + "\n"
