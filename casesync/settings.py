"""Where flags, environment variables and casesync.yaml meet: one place that decides each setting.

Core modules receive plain values from here; none of them reads the environment itself.
Precedence everywhere: flag, then ``CASESYNC_*`` environment variable, then casesync.yaml,
then the default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from casesync.errors import ConfigError

PROJECT_FILE = "casesync.yaml"
LOCK_FILE = "casesync.lock"
STATE_DIR = ".casesync"
DEFAULT_API_URL = "https://radiopaedia.org"


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


def cache_dir(root: Path) -> Path:
    """``.casesync/cache`` of the project at ``root``: the hash and PHI caches."""
    return root / STATE_DIR / "cache"


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


def resolve_api_url(
    flag: str | None,
    project_api_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The API base URL: --api-url, then CASESYNC_API_URL, then casesync.yaml, then default."""
    url = flag or env_value("CASESYNC_API_URL", env) or project_api_url or DEFAULT_API_URL
    return check_api_url(url)


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
