"""Which listed case a lost case create made (adopted only when nothing else explains it),
and the draft quota check."""

from __future__ import annotations

import pytest

from casesync.api.models import Quotas, RemoteCase, User
from casesync.errors import Refused
from casesync.sync.journal import CaseRecord, Intent
from casesync.sync.lockfile import Lock, LockedCase
from casesync.sync.plan import CasePlan, CreateCase, MarkUploadFinished
from casesync.sync.remote import check_quota, judge

SENT = "2026-03-01T10:00:00.000+00:00"


def intent(key: str = "a", title: str = "T") -> Intent:
    return Intent("r-" + key, key, "case", SENT, CaseRecord(title, {}))


def listed(case_id: int, created_at: str = "2026-03-01T10:00:01Z", title: str = "T") -> RemoteCase:
    return RemoteCase(case_id, title, "draft", "public", created_at)


def lock(*case_ids: int) -> Lock:
    return Lock("http://x", {f"k{n}": LockedCase(case_id=n) for n in case_ids})


def test_the_one_case_made_after_the_intent_is_adopted() -> None:
    older = listed(1, "2026-03-01T09:00:00Z")
    other_title = listed(2, title="U")
    verdict = judge(intent(), [older, other_title, listed(3)], lock(), [])
    assert verdict.adopted == listed(3) and not verdict.doubt


def test_nothing_listed_means_not_created() -> None:
    verdict = judge(intent(), [listed(1, "2026-03-01T09:59:00Z"), listed(7)], lock(7), [])
    assert (verdict.adopted, verdict.candidates, verdict.doubt) == (None, (), "")


def test_a_few_seconds_of_clock_skew_are_tolerated() -> None:
    assert judge(intent(), [listed(4, "2026-03-01T09:59:59Z")], lock(), []).adopted is not None


@pytest.mark.parametrize(
    ("listing", "pending", "doubt", "ids"),
    [
        ([listed(3), listed(5)], [], "2 cases titled 'T' were created since", (3, 5)),
        ([listed(3)], [intent("b")], "b is also being created with the title 'T'", (3,)),
        ([listed(3, "yesterday")], [], "gives case 3 a created_at that is not a time", (3,)),
        ([listed(3), listed(4, "")], [], "gives case 4 a created_at", (3, 4)),
    ],
    ids=["two-candidates", "rival-key", "not-a-time", "one-undated"],
)
def test_anything_else_is_left_to_the_user_with_the_candidates(
    listing: list[RemoteCase], pending: list[Intent], doubt: str, ids: tuple[int, ...]
) -> None:
    verdict = judge(intent(), listing, lock(), [intent(), *pending])
    assert verdict.adopted is None and verdict.candidates == ids
    assert doubt in verdict.doubt
    way_out = verdict.way_out(intent())
    assert ", ".join(map(str, ids)) + " on the site" in way_out
    assert "'casesync resolve a --case-id N'" in way_out and "--not-created" in way_out


def test_a_rival_with_another_title_is_no_rival() -> None:
    verdict = judge(intent(), [listed(3)], lock(), [intent("b", title="Other")])
    assert verdict.adopted == listed(3)


def new_case(key: str) -> CasePlan:
    return CasePlan(key, key.upper(), None, (CreateCase(key.upper()),), ())


@pytest.mark.parametrize(
    ("allowed", "used", "refused"), [(3, 1, False), (2, 1, True), (None, 9, False)]
)
def test_the_quota_counts_only_cases_still_to_create(
    allowed: int | None, used: int, refused: bool
) -> None:
    user = User("jane", Quotas(allowed, used, None, 0))
    done = CasePlan("k1", "K1", 1, (MarkUploadFinished(),), ())
    cases = [new_case("a"), new_case("b"), done, new_case("k7")]  # k7 is locked already
    if refused:
        with pytest.raises(Refused, match=r"2 new cases to create.*allows only 1 more"):
            check_quota(user, cases, lock(7))
    else:
        check_quota(user, cases, lock(7))
