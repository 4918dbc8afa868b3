"""What an emulator run is configured with, and the demo identities it ships with.

The demo application and user are fixed so that docs, tests and CI recipes can name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEMO_CLIENT_ID = "casesync-demo-client"
DEMO_CLIENT_SECRET = "casesync-demo-secret"
DEMO_LOGIN = "demo"
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

ANONYMISER_CHECK_MODES = ("strict", "off")
RATES = ("fail_rate", "drop_rate", "drop_after_create", "garbage_rate", "stall_rate")


@dataclass
class EmulatorConfig:
    """Every knob of ``casesync emulator``; all fault injection is off by default."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    token_ttl: int = 86400
    draft_quota: int | None = 10  # None = unlimited
    anonymiser_check: str = "strict"
    job_seconds: float = 0.2
    latency_ms: float = 0
    fail_rate: float = 0.0
    rate_limit: float | None = None  # requests per second
    url_ttl: int = 900
    drop_rate: float = 0.0
    drop_after_create: float = 0.0  # share of creates applied, then left unanswered
    garbage_rate: float = 0.0  # share of 2xx answers replaced by a proxy's HTML page
    stall_rate: float = 0.0  # share of answers that start and never end
    seed: int | None = None
    state_file: Path | None = None

    def __post_init__(self) -> None:
        if self.anonymiser_check not in ANONYMISER_CHECK_MODES:
            raise ValueError(f"anonymiser_check must be one of {ANONYMISER_CHECK_MODES}")
        for name in RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        if self.state_file is not None:
            self.state_file = Path(self.state_file)


def parse_quota(text: str) -> int | None:
    """``--draft-quota``: a count, or ``unlimited``/``null`` (the API's ``null`` allowance)."""
    if text.strip().lower() in ("unlimited", "null", "none"):
        return None
    value = int(text)
    if value < 0:
        raise ValueError("a quota cannot be negative")
    return value


def parse_rate(text: str) -> float:
    """``--rate-limit``: requests per second, written ``20`` or ``20/s``."""
    value = float(text.strip().removesuffix("/s"))
    if value <= 0:
        raise ValueError("a rate limit must be positive")
    return value
