"""Token providers for tests that talk to an emulator (imported by the client and executor tests)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from casesync.api.credentials import TokenProvider
from casesync.api.oauth import Client
from casesync.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

DEMO_CLIENT = Client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


class IssuesTokens(Protocol):
    base_url: str

    def issue_tokens(self, ttl: int | None = None) -> dict[str, Any]: ...


def tokens_for(emulator: IssuesTokens, ttl: int | None = None) -> TokenProvider:
    """The demo user's fresh pair, refreshable with the demo application, kept in memory only."""
    pair = emulator.issue_tokens(ttl)
    return TokenProvider(
        emulator.base_url,
        pair["access_token"],
        source="the emulator",
        expires_at=time.time() + pair["expires_in"],
        client=DEMO_CLIENT,
        refresh_token=pair["refresh_token"],
    )
