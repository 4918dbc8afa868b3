"""What the site says about this repository's cases: one read of the listing and the quotas.

The listing (protocol row 3) is the only view of what exists remotely: a case missing from it
was deleted, a case no longer a draft cannot take imaging, a title may have been edited on the
site. ``RemoteView`` holds one such read; the planner and ``status`` consume it. Only
``fetch_remote`` talks to the server (aiohttp is imported there, lazily).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from casesync.api.models import RemoteCase, User

DELETED = "deleted"
DRIFT_CODES = ("case-deleted", "title-drift")  # plan warnings that come from the listing


class ListingClient(Protocol):
    async def current_user(self) -> User: ...
    async def list_cases(self) -> list[RemoteCase]: ...


@dataclass(frozen=True)
class RemoteState:
    """One locked case as the listing shows it (``status`` is ``deleted`` when missing)."""

    status: str  # draft | pending_review | published | deleted
    visibility: str | None
    title: str | None
    checked_at: str

    @property
    def deleted(self) -> bool:
        return self.status == DELETED

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"


@dataclass(frozen=True)
class QuotaUse:
    """Draft quota against the new cases of a plan, in the order apply would create them."""

    login: str
    used: int
    allowed: int | None  # None: unlimited
    can_create: tuple[str, ...]  # case keys the next apply can create
    waiting: tuple[str, ...]  # case keys waiting for draft quota

    def describe(self) -> str:
        allowed = "unlimited" if self.allowed is None else str(self.allowed)
        text = f"Draft quota of {self.login}: {self.used} of {allowed} used"
        if self.can_create or self.waiting:
            text += f"; the next apply can create {len(self.can_create)} new case"
            text += "s" * (len(self.can_create) != 1) + _names(self.can_create)
            if self.waiting:
                text += f", {len(self.waiting)} wait for draft quota{_names(self.waiting)}"
                text += " (apply --within-quota creates those that fit)"
        return text


def _names(keys: tuple[str, ...], shown: int = 5) -> str:
    if not keys:
        return ""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f" ({', '.join(keys[:shown])}{more})"


@dataclass(frozen=True)
class RemoteView:
    """One read of the listing and of the current user, with when it was made."""

    user: User
    cases: dict[int, RemoteCase]
    checked_at: str  # ISO-8601 UTC

    def state(self, case_id: int) -> RemoteState:
        case = self.cases.get(case_id)
        if case is None:
            return RemoteState(DELETED, None, None, self.checked_at)
        return RemoteState(case.status, case.visibility, case.title, self.checked_at)

    def quota_use(self, new_keys: Sequence[str]) -> QuotaUse:
        quotas = self.user.quotas
        left = quotas.drafts_left
        fit = len(new_keys) if left is None else min(left, len(new_keys))
        return QuotaUse(
            self.user.login,
            quotas.draft_case_count,
            quotas.allowed_draft_cases,
            tuple(new_keys[:fit]),
            tuple(new_keys[fit:]),
        )


async def read_remote(client: ListingClient) -> RemoteView:
    """The current user (quotas) and the whole listing, read once."""
    import asyncio  # plan imports this module; only the commands that talk to a server run this

    user, cases = await asyncio.gather(client.current_user(), client.list_cases())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return RemoteView(user, {case.id: case for case in cases}, now)


def fetch_remote(api_url: str) -> RemoteView:
    """``read_remote`` with the stored credentials (for plan --refresh, status, adopt)."""
    # aiohttp only for the commands that talk to the server (start-up time)
    import asyncio

    from casesync.api.client import RadiopaediaClient
    from casesync.api.credentials import token_provider

    async def run() -> RemoteView:
        async with RadiopaediaClient(api_url, token_provider(api_url)) as client:
            return await read_remote(client)

    return asyncio.run(run())
