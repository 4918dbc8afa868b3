"""Where flags, environment variables and casesync.yaml meet: one place that decides each setting.

Core modules receive plain values from here; none of them reads the environment itself.
Precedence everywhere: flag, then ``CASESYNC_*`` environment variable, then casesync.yaml,
then the default.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from casesync.errors import ConfigError

# The Markdown plan's default size: a GitHub comment holds 65,536 characters; leave room.
MARKDOWN_BUDGET = 60_000

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
    log.info("server: %s (from %s)", choice.url, choice.source)  # -v and --debug show it
    return choice


def api_url_inputs(flag: str | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ``choose_api_url`` reads besides casesync.yaml: a plan memo keys on these (and on
    the stat of the credentials file named here)."""
    from casesync.api.logins import credentials_path

    return {
        "--api-url": flag or "",
        "CASESYNC_API_URL": env_value("CASESYNC_API_URL", env) or "",
        "credentials": str(credentials_path(env)),
    }


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
    """Require https (http only for loopback hosts), and nothing but scheme, host, port, path.

    Credentials in the URL would be printed and sent; a query or fragment would end up in the
    middle of every request path. Returns the URL without a final /.
    """
    shown = display_url(url)
    example = "e.g. https://radiopaedia.org"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"API URL {shown!r} cannot be parsed", hint=example) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"API URL {shown!r} is not an http(s) URL", hint=example)
    if "@" in parts.netloc:
        raise ConfigError(
            f"API URL {shown!r} holds a user name or password",
            hint="remove them: casesync logs in with 'casesync login', never with URL credentials",
        )
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise ConfigError(
            f"API URL {shown!r} has a query string or fragment", hint=f"remove it; {example}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"API URL {shown!r} uses plain http",
            hint="use https; plain http is allowed only for loopback hosts such as the emulator",
        )
    return url.rstrip("/")


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//[^?#]*@")


def display_url(url: str) -> str:
    """The URL as it may be printed: without any user name or password in it."""
    return _USERINFO.sub(lambda m: (m.group(1) or "") + "//", url.strip())


def transport_allowed(url: str) -> bool:
    """A URL that may be used: https anywhere, http only on a loopback host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and bool(parts.hostname) and is_loopback(parts.hostname or "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Timeouts:
    """Seconds. Every HTTP request has them, so no answer can hang a run (README, timeouts).

    ``read``: an API answer must be complete this long after it was sent (connecting
    included); ``stall``: an upload
    that makes no progress this long fails the attempt (and is retried); ``deadline``: no call,
    retries included, lasts longer than this.
    """

    connect: float = 10.0
    read: float = 60.0
    stall: float = 60.0
    deadline: float = 300.0


TIMEOUT_NAMES = {  # Timeouts field -> (flag, environment variable)
    "connect": ("--connect-timeout", "CASESYNC_CONNECT_TIMEOUT"),
    "read": ("--read-timeout", "CASESYNC_READ_TIMEOUT"),
    "stall": ("--stall-timeout", "CASESYNC_STALL_TIMEOUT"),
    "deadline": ("--deadline", "CASESYNC_DEADLINE"),
}


def resolve_timeouts(
    flags: Mapping[str, float | None] | None = None, env: Mapping[str, str] | None = None
) -> Timeouts:
    """Each timeout from its flag, then its ``CASESYNC_*`` variable, then the default."""
    chosen: dict[str, float] = {}
    for name, (flag_name, variable) in TIMEOUT_NAMES.items():
        flag = (flags or {}).get(name)
        raw = env_value(variable, env)
        if flag is not None:
            chosen[name] = _positive_seconds(flag, flag_name)
        elif raw is not None:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{variable}={raw!r} is not a number of seconds") from None
            chosen[name] = _positive_seconds(value, variable)
    return Timeouts(**chosen)


def _positive_seconds(value: float, name: str) -> float:
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise ConfigError(f"{name} must be a number of seconds between 0 and 86400, not {value}")
    return float(value)
