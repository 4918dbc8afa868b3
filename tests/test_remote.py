"""``plan --refresh``: the listing read back (deleted, published, retitled cases, the quota),
and how apply handles each; plus the pure parts of ``casesync.sync.remote``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import add_study, teaching_repo
from sitehelpers import delete, publish, retitle
from test_e2e_apply import apply, cli, requests_since

from casesync.api.models import Quotas, RemoteCase, User
from casesync.sync.remote import RemoteView


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
