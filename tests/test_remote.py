"""``plan --refresh``: the listing read back (deleted, published, retitled cases, the quota),
and how apply handles each; plus the pure parts of ``casesync.sync.remote``: which listed case
a lost case create made (adopted only when nothing else explains it), the quota check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import add_study, teaching_repo
from sitehelpers import delete, publish, retitle
from test_e2e_apply import apply, cli, requests_since

from casesync.api.models import Quotas, RemoteCase, User
from casesync.errors import Refused
from casesync.sync.journal import CaseRecord, Intent
from casesync.sync.lockfile import Lock, LockedCase
from casesync.sync.remote import RemoteView, check_quota, judge


def locked_ids(root: Path) -> dict[str, int]:
    lock = json.loads((root / "casesync.lock").read_text())
    return {key: case["case_id"] for key, case in lock["cases"].items()}


def test_refresh_shows_deleted_published_and_retitled_and_apply_handles_each(
    tmp_path: Path, emulator_thread: Any
) -> None:
    root = teaching_repo(tmp_path / "repo", cases=3, images=2)
    assert apply(root, emulator_thread).returncode == 0
    ids = locked_ids(root)
    delete(emulator_thread, ids["cases/case-00"])
    publish(emulator_thread, ids["cases/case-01"])
    retitle(emulator_thread, ids["cases/case-02"], "Renamed on the site")
    add_study(root, "case-01", seed=900)

    offline = cli(root, emulator_thread, "plan", "-f", "json")
    assert "remote" not in offline.stdout and "Drift" not in offline.stdout

    text = cli(root, emulator_thread, "plan", "--refresh").stdout
    deleted, published, retitled = text.split("\n\n")[1:4]
    assert "(deleted on the site)" in deleted and "+ create case 'Teaching case 0'" in deleted
    assert "--recreate cases/case-00" in deleted
    assert "all files already on the server" not in deleted  # its uploads went with it
    assert "published, public" in published and "+ create" not in published
    assert "x blocked: create study 3: Ultrasound" in published
    assert "only a draft can take new imaging" in published
    assert "'Renamed on the site'" in retitled and "'Teaching case 2'" in retitled
    assert "Draft quota of demo: 1 of 10 used" in text

    document = json.loads(cli(root, emulator_thread, "plan", "--refresh", "-f", "json").stdout)
    assert document["format_version"] == 1
    by_key = {case["key"]: case for case in document["cases"]}
    remote = {key: case["remote"] for key, case in by_key.items()}
    assert [remote[k]["status"] for k in sorted(remote)] == ["deleted", "published", "draft"]
    assert remote["cases/case-02"]["title"] == "Renamed on the site"
    assert all(r["checked_at"] == document["remote_checked_at"] for r in remote.values())
    assert by_key["cases/case-00"]["recreate"] is True
    series = [a for a in by_key["cases/case-00"]["actions"] if a["action"] == "create_series"]
    assert series and all(a["files_to_upload"] == a["images"] for a in series)
    assert by_key["cases/case-01"]["actions"] == []
    assert [b["action"] for b in by_key["cases/case-01"]["blocked"]] == [
        "create_study",
        "create_series",
        "mark_upload_finished",
    ]
    assert [w["code"] for w in by_key["cases/case-02"]["warnings"]] == ["title-drift"]
    assert document["quota"]["can_create"] == ["cases/case-00"]

    markdown = cli(root, emulator_thread, "plan", "--refresh", "-f", "markdown").stdout
    drift = markdown.split("### Drift on the site")[1].split("<details>")[0]
    assert drift.count("| `cases/case-0") == 3

    before = emulator_thread.snapshot()
    skipped = apply(root, emulator_thread)
    assert skipped.returncode == 4, skipped.stdout + skipped.stderr
    assert "published: only a draft can take new imaging" in skipped.stdout
    sent = requests_since(before, emulator_thread.snapshot())
    assert not [name for name in sent if name.startswith("POST /api/v1/cases")]
    assert locked_ids(root) == ids  # the deleted case is not created again by default

    refused = apply(root, emulator_thread, "--recreate", "cases/case-02")
    assert refused.returncode == 5 and "still in your case listing" in refused.stderr

    again = apply(root, emulator_thread, "--recreate", "cases/case-00")
    assert again.returncode == 4, again.stdout + again.stderr  # case-01 is still published
    assert f"case {ids['cases/case-00']}" in again.stdout  # what the site may still hold
    now = locked_ids(root)
    assert now["cases/case-00"] not in ids.values()
    listed = {c["id"]: c for c in emulator_thread.snapshot()["cases"] if not c["deleted"]}
    assert listed[now["cases/case-00"]]["title"] == "Teaching case 0"
    assert len(listed[now["cases/case-00"]]["studies"]) == 2


def view(quota: int | None, used: int, cases: list[RemoteCase]) -> RemoteView:
    user = User("me", Quotas(quota, used, None, 0))
    return RemoteView(user, {case.id: case for case in cases}, "2026-01-01T00:00:00+00:00")


def test_quota_use_lists_which_new_cases_fit_in_order() -> None:
    use = view(10, 8, []).quota_use(["a", "b", "c"])
    assert (use.can_create, use.waiting) == (("a", "b"), ("c",))
    assert use.describe() == (
        "Draft quota of me: 8 of 10 used; the next apply can create 2 new cases (a, b), 1 wait "
        "for draft quota (c) (apply --within-quota creates those that fit)"
    )
    unlimited = view(None, 50, []).quota_use(["a", "b"])
    assert (unlimited.can_create, unlimited.waiting) == (("a", "b"), ())


def test_state_of_a_case_missing_from_the_listing_is_deleted() -> None:
    listed = RemoteCase(7, "T", "pending_review", "unlisted", "2026-01-01T00:00:00.000Z")
    remote = view(10, 0, [listed])
    assert remote.state(7).status == "pending_review" and not remote.state(7).is_draft
    assert remote.state(8).deleted and remote.state(8).title is None


def test_plain_plan_stays_offline_and_never_imports_aiohttp(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = teaching_repo(tmp_path / "repo", cases=1, images=1)
    script = (
        "import sys\n"
        "from casesync.__main__ import main\n"
        "sys.argv = ['casesync', 'plan', '--api-url', 'https://radiopaedia.org']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('aiohttp' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert "Plan: 1 case" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("False")


# --- a lost case create: which listed case, if any, it made ---

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


@pytest.mark.parametrize(
    ("allowed", "used", "waiting"), [(3, 1, ()), (2, 1, ("b",)), (None, 9, ())]
)
def test_the_quota_check_names_the_cases_that_must_wait(
    allowed: int | None, used: int, waiting: tuple[str, ...]
) -> None:
    user = User("jane", Quotas(allowed, used, None, 0))
    assert check_quota(user, ["a", "b"], within_quota=True) == waiting
    if waiting:
        with pytest.raises(Refused, match=r"2 new cases to create.*allows only 1 more"):
            check_quota(user, ["a", "b"], within_quota=False)
    else:
        assert check_quota(user, ["a", "b"], within_quota=False) == ()
