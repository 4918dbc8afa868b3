"""Which listed case, if any, a case create whose answer was lost has made.

The case listing is the only witness of a lost case create, and it cannot say who made a case.
A listed case is taken as ours only when nothing else can explain it: the one case with the
intent's title, created after the intent was written, that the lock records for no key, while
no other key of this run is creating a case with that title. Anything less is left to the user
(``casesync resolve``), with the candidates named: adopting another case's remote case would
fill it with the wrong content, and no later plan would notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from casesync.api.models import RemoteCase
from casesync.sync.journal import Intent
from casesync.sync.lockfile import Lock

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
    title = intent.record["title"]
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
        other.case
        for other in pending
        if other.kind == "case" and other.case != intent.case and other.record["title"] == title
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


def _parse_time(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
