"""Where flags, environment variables and casesync.yaml meet: one place that decides each setting.

Core modules receive plain values from here; none of them reads the environment itself.
Precedence everywhere: flag, then ``CASESYNC_*`` environment variable, then casesync.yaml,
then the default.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from casesync.errors import ConfigError

PROJECT_FILE = "casesync.yaml"
LOCK_FILE = "casesync.lock"
STATE_DIR = ".casesync"
DEFAULT_API_URL = "https://radiopaedia.org"

log = logging.getLogger("casesync")


def find_project_root(start: Path | None = None) -> Path:
    """Walk up from ``start`` (default: the current folder) to the folder with casesync.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {PROJECT_FILE} found in {here} or any parent folder",
        hint="run 'casesync init' to start a project, or pass -C DIR",
    )


def env_value(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A ``CASESYNC_*`` variable, treating an empty value as unset."""
    value = (os.environ if env is None else env).get(name, "").strip()
    return value or None


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    return (env_value(name, env) or "").lower() in ("1", "true", "yes", "on")


def debug_from_env(env: Mapping[str, str] | None = None) -> bool:
    """``CASESYNC_LOG=debug`` (or ``CASESYNC_DEBUG=1``): log every request, tokens redacted."""
    return (env_value("CASESYNC_LOG", env) or "").lower() == "debug" or env_flag(
        "CASESYNC_DEBUG", env
    )


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = env_value(name, env)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class ServerChoice:
    """The API base URL and where it came from (whoami and --debug say both)."""

    url: str
    source: str


def choose_api_url(
    flag: str | None,
    project_api_url: str | None = None,
    stored: Callable[[], Sequence[str]] | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerChoice:
    """The one rule: --api-url, CASESYNC_API_URL, casesync.yaml's api_url, the stored login
    when exactly one is stored, then https://radiopaedia.org.

    ``stored`` lists the servers with a stored login; it is called only when nothing before it
    decided (default: read the credentials file).
    """
    given = (
        (flag, "--api-url"),
        (env_value("CASESYNC_API_URL", env), "CASESYNC_API_URL"),
        (project_api_url, "api_url in casesync.yaml"),
    )
    choice = next((ServerChoice(check_api_url(u), s) for u, s in given if u), None)
    if choice is None:
        logins = list((stored or _stored_logins(env))())
        if len(logins) == 1:
            choice = ServerChoice(check_api_url(logins[0]), "the only stored login")
        else:
            choice = ServerChoice(DEFAULT_API_URL, "the default")
    log.debug("server: %s (from %s)", choice.url, choice.source)
    return choice


def _stored_logins(env: Mapping[str, str] | None) -> Callable[[], Sequence[str]]:
    def read() -> Sequence[str]:
        from casesync.api.logins import credentials_path, stored_api_urls

        return stored_api_urls(credentials_path(env))

    return read


def resolve_api_url(
    flag: str | None,
    project_api_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The API base URL by ``choose_api_url``'s rule."""
    return choose_api_url(flag, project_api_url, env=env).url


def check_api_url(url: str) -> str:
    """Require https, except for loopback hosts (the emulator); return it without a final /."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"API URL {url!r} is not an http(s) URL", hint="e.g. https://radiopaedia.org"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"API URL {url!r} uses plain http",
            hint="use https; plain http is allowed only for loopback hosts such as the emulator",
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
