"""What the site says about this repository's cases: the listing, the quotas, lost creates.

The listing (protocol row 3) is the only view of what exists remotely: a case missing from it
was deleted, a case no longer a draft cannot take imaging, a title may have been edited on the
site. ``RemoteView`` holds one such read; the planner and ``status`` consume it. Only
``fetch_remote`` talks to the server (aiohttp is imported there, lazily). During apply,
``Remote`` reads the listing to check drafts and to settle lost case creates.

Which listed case, if any, a case create whose answer was lost has made (``judge``): the listing
cannot say who made a case, so a listed case is taken as ours only when nothing else can explain
it: the one case with the intent's title, created after the intent was written, that the lock
records for no key, while no other key of this run is creating a case with that title. Anything
less is left to the user (``casesync resolve``), with the candidates named: adopting another
case's remote case would fill it with the wrong content, and no later plan would notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from casesync.api.models import RemoteCase, User
from casesync.errors import Refused
from casesync.sync.journal import CaseMade, CaseRecord, Intent, Ledger
from casesync.sync.lockfile import Lock

if TYPE_CHECKING:
    from casesync.api.credentials import TokenSource
    from casesync.sync.report import ApplyReport, Events

DELETED = "deleted"


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


def fetch_remote(api_url: str, tokens: TokenSource) -> RemoteView:
    """``read_remote`` with the caller's credentials (for plan --refresh, status, adopt)."""
    # aiohttp only for the commands that talk to the server (start-up time)
    import asyncio

    from casesync.api.client import RadiopaediaClient

    async def run() -> RemoteView:
        async with RadiopaediaClient(api_url, tokens(api_url)) as client:
            return await read_remote(client)

    return asyncio.run(run())


CLOCK_SKEW = dt.timedelta(seconds=2)  # tolerated between our clock and the server's


@dataclass(frozen=True)
class Verdict:
    """``adopted`` is the case; or ``doubt`` says why the candidates cannot be told apart;
    neither: the create made nothing."""

    adopted: RemoteCase | None = None
    candidates: tuple[int, ...] = ()
    doubt: str = ""

    def way_out(self, intent: Intent) -> str:
        """What the user does about a doubt: look at the candidates, then resolve."""
        ids = ", ".join(str(n) for n in self.candidates)
        named = f"case {ids}" if len(self.candidates) == 1 else f"cases {ids}"
        return (
            f"{self.doubt}; look at {named} on the site, then run 'casesync resolve "
            f"{intent.case} --case-id N' with the id of the one that is this case, or "
            f"'casesync resolve {intent.case} --not-created' if none is"
        )


def judge(
    intent: Intent, listing: Iterable[RemoteCase], lock: Lock, pending: Iterable[Intent]
) -> Verdict:
    """The verdict on ``intent`` from the listing, the lock and the other unsettled creates."""
    title = _title(intent)
    known = {case.case_id for case in lock.cases.values()}
    since = intent.sent_at - CLOCK_SKEW
    dated: list[RemoteCase] = []
    undated: list[RemoteCase] = []
    for case in listing:
        if case.title != title or case.id in known:
            continue
        created = _parse_time(case.created_at)
        if created is None:
            undated.append(case)
        elif created >= since:
            dated.append(case)
    candidates = tuple(case.id for case in sorted(dated, key=lambda c: c.id) + undated)
    if not candidates:
        return Verdict()
    rivals = sorted(
        other.case for other in pending if other.case != intent.case and _title(other) == title
    )
    if rivals:
        doubt = f"{', '.join(rivals)} is also being created with the title {title!r}"
    elif undated:
        doubt = f"the case listing gives case {undated[0].id} a created_at that is not a time"
    elif len(dated) > 1:
        doubt = f"{len(dated)} cases titled {title!r} were created since the create was sent"
    else:
        return Verdict(adopted=dated[0])
    return Verdict(candidates=candidates, doubt=doubt)


def _title(intent: Intent) -> str | None:
    """The title a case create sent; None for a study or series create."""
    return intent.record.title if isinstance(intent.record, CaseRecord) else None


def _parse_time(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class CaseBlocked(Exception):
    """A create of this case has an unknown outcome; the user settles it with resolve."""

    def __init__(self, intent: Intent, way_out: str = "") -> None:
        super().__init__(f"{intent.describe()}; {way_out or intent.way_out()}")
        self.intent = intent


class CaseSkipped(Exception):
    """The case cannot take new imaging (no longer a draft, or deleted on the site)."""


def check_quota(user: User, new_keys: Sequence[str], within_quota: bool) -> tuple[str, ...]:
    """The new cases (in order) that must wait for draft quota: none when all fit; with
    ``within_quota`` those past the quota; otherwise the whole run is refused."""
    left = user.quotas.drafts_left
    if left is None or len(new_keys) <= left:
        return ()
    if within_quota:
        return tuple(new_keys[left:])
    raise Refused(
        f"{len(new_keys)} new cases to create, but the draft quota of {user.login} allows only "
        f"{left} more ({user.quotas.draft_case_count} of "
        f"{user.quotas.allowed_draft_cases} used); nothing was created",
        hint="apply fewer with --case KEY or with --within-quota, or publish or delete "
        "drafts on the site, or ask Radiopaedia to raise your quota",
    )


class Remote:
    """The case listing, fetched once per run (again when a lost create must be settled)."""

    def __init__(
        self, client: ListingClient, ledger: Ledger, events: Events, report: ApplyReport
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.events = events
        self.report = report
        self._listing: dict[int, RemoteCase] | None = None

    async def listing(self, refresh: bool = False) -> dict[int, RemoteCase]:
        if self._listing is None or refresh:
            self._listing = {c.id: c for c in await self.client.list_cases()}
        return self._listing

    async def settle_case(self, intent: Intent) -> int | None:
        """An unknown case create: the listing shows it exists (adopt it), or not, or cannot
        tell (``CaseBlocked``: the user settles it with resolve)."""
        listing = await self.listing(refresh=True)
        verdict = judge(intent, listing.values(), self.ledger.lock, self.ledger.open_intents)
        if verdict.doubt:
            raise CaseBlocked(intent, verdict.way_out(intent))
        if verdict.adopted is not None:
            case = verdict.adopted
            self.ledger.finish(intent, CaseMade(case.id, case.created_at))
            self.events.notice(
                f"case {intent.case}: the create sent at {intent.local_time()} did reach the "
                f"server: adopted case {case.id} from the case listing"
            )
            self.report.cases_created += 1
            return case.id
        self.ledger.not_created(intent, "no matching case in the case listing")
        self.events.notice(
            f"case {intent.case}: the create sent at {intent.local_time()} did not reach the "
            "server (not in the case listing); it will be created"
        )
        return None

    async def check_draft(self, key: str, case_id: int) -> None:
        """A case recorded in the lock still takes imaging only while it is a draft."""
        remote = (await self.listing()).get(case_id)
        if remote is None:
            raise CaseSkipped(
                f"case {case_id} is not in your case listing (deleted on the site?); nothing "
                f"was added; 'casesync apply --recreate {key}' creates it again"
            )
        if not remote.is_draft:
            raise CaseSkipped(
                f"case {case_id} is {remote.status.replace('_', ' ')}: only a draft can take "
                "new imaging; add it on the site"
            )
