"""The credentials file: one login per server, kept with mode 0600 and written atomically.

Format 2 is ``{"format_version": 2, "logins": {api_url: {client_id, client_secret,
access_token, refresh_token, expires_at}}}``; the format-1 file (one flat login with its
``api_url``) is still read, and becomes format 2 at the next write. Kept apart from the token
logic so that choosing a server (which may look at the stored logins) never imports aiohttp:
settings may import it (tests/test_layers.py lists it among the shared modules).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from casesync.errors import AuthError
from casesync.fsutil import atomic_write, read_regular
from casesync.settings import env_value

CREDENTIALS_ENV = "CASESYNC_CREDENTIALS"
LOGIN_AGAIN = "run 'casesync login' again"
FORMAT_VERSION = 2
LATEST_EXPIRY = 2**40  # unix seconds (year 36812): a larger expires_at is not a real one


@dataclass(frozen=True)
class Credentials:
    """One stored login: exactly these keys (``api_url`` keys it in the file)."""

    api_url: str
    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str
    expires_at: int  # unix seconds


FIELDS = tuple(Credentials.__dataclass_fields__)


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """``CASESYNC_CREDENTIALS``, else ``$XDG_CONFIG_HOME/casesync``, else ``~/.config/casesync``."""
    named = env_value(CREDENTIALS_ENV, env)
    if named:
        return Path(named).expanduser()
    config_home = env_value("XDG_CONFIG_HOME", env)
    base = Path(config_home) if config_home else Path.home() / ".config"
    return base / "casesync" / "credentials.json"


def read_logins(path: Path) -> dict[str, Credentials]:
    """Every stored login by API URL (none when there is no file); a readable file is refused."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return {}
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
    if isinstance(data, dict) and set(data) == set(FIELDS):  # format 1: one flat login
        entries = {str(data["api_url"]): data}
    elif isinstance(data, dict) and isinstance(data.get("logins"), dict):
        entries = {
            url: {**entry, "api_url": url} if isinstance(entry, dict) else entry
            for url, entry in data["logins"].items()
        }
    else:
        raise AuthError(
            f"{path} is not a casesync credentials file (expected a 'logins' mapping)",
            hint=LOGIN_AGAIN,
        )
    return {_key(url): _credentials(path, entry) for url, entry in entries.items()}


def _credentials(path: Path, entry: Any) -> Credentials:
    if not isinstance(entry, dict) or set(entry) != set(FIELDS):
        raise AuthError(
            f"{path} is not a casesync credentials file (expected keys {', '.join(FIELDS)})",
            hint=LOGIN_AGAIN,
        )
    expires_at = entry["expires_at"]
    whole = isinstance(expires_at, int) or (
        isinstance(expires_at, float) and expires_at.is_integer()
    )
    if isinstance(expires_at, bool) or not whole or not 0 <= expires_at <= LATEST_EXPIRY:
        raise AuthError(f"{path}: expires_at is not unix seconds", hint=LOGIN_AGAIN)
    return Credentials(**{k: str(entry[k]) for k in FIELDS[:-1]}, expires_at=int(expires_at))


def _key(api_url: str) -> str:
    return api_url.rstrip("/")


def read_credentials(path: Path, api_url: str | None = None) -> Credentials | None:
    """The login for ``api_url``; without one, the login when exactly one is stored."""
    logins = read_logins(path)
    if api_url is not None:
        return logins.get(_key(api_url))
    return next(iter(logins.values())) if len(logins) == 1 else None


def stored_api_urls(path: Path) -> list[str]:
    """The servers with a stored login (an unusable file counts as none: commands say why)."""
    try:
        return sorted(read_logins(path))
    except AuthError:
        return []


def _write(path: Path, logins: Mapping[str, Credentials]) -> None:
    """Atomically (temp file created 0600 in the same folder, fsync, rename, fsync folder)."""
    document = {
        "format_version": FORMAT_VERSION,
        "logins": {
            url: {k: v for k, v in asdict(c).items() if k != "api_url"}
            for url, c in sorted(logins.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(document, indent=2) + "\n", mode=0o600)


def write_credentials(path: Path, credentials: Credentials) -> None:
    """Store (or replace) the login for its server; the other servers' logins stay."""
    try:
        logins = read_logins(path)
    except AuthError:  # an unusable file is replaced by the new login
        logins = {}
    _write(path, {**logins, _key(credentials.api_url): credentials})


def remove_login(path: Path, api_url: str) -> None:
    """Forget the login for ``api_url``; the file goes with the last login."""
    try:
        logins = read_logins(path)
    except AuthError:
        logins = {}
    logins.pop(_key(api_url), None)
    if logins:
        _write(path, logins)
    else:
        path.unlink(missing_ok=True)
