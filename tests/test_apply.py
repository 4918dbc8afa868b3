"""``apply --within-quota``: drafts go out in waves as the draft quota allows."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import teaching_repo
from sitehelpers import publish
from test_e2e_apply import apply, cli

from casesync.emulator import EmulatorConfig, EmulatorThread


def test_within_quota_creates_what_fits_then_the_rest_after_publishing(tmp_path: Path) -> None:
    root = teaching_repo(tmp_path / "repo", cases=5, images=1)
    with EmulatorThread(EmulatorConfig(job_seconds=0.05, draft_quota=3)) as emulator:
        refused = apply(root, emulator)
        assert refused.returncode == 5 and "--within-quota" in refused.stderr
        assert emulator.snapshot()["cases"] == []

        planned = cli(root, emulator, "plan", "--refresh", "-f", "json")
        quota = json.loads(planned.stdout)["quota"]
        assert quota["can_create"] == [f"cases/case-0{n}" for n in range(3)]
        assert quota["waiting_for_quota"] == ["cases/case-03", "cases/case-04"]

        first = apply(root, emulator, "--within-quota")
        assert first.returncode == 4, first.stdout + first.stderr
        created = emulator.snapshot()["cases"]
        assert [c["title"] for c in created] == [f"Teaching case {n}" for n in range(3)]
        waiting = [line for line in first.stdout.splitlines() if "waiting for draft quota" in line]
        assert [line.split()[1] for line in waiting] == ["cases/case-03", "cases/case-04"]
        assert "2 waiting" in first.stderr

        status = cli(root, emulator, "status")
        assert "Draft quota of demo: 3 of 3 used" in status.stdout
        assert status.stdout.count("! waiting for draft quota") == 2

        publish(emulator, created[0]["id"])
        publish(emulator, created[1]["id"])
        second = apply(root, emulator, "--within-quota")
        assert second.returncode == 0, second.stdout + second.stderr
        titles = sorted(c["title"] for c in emulator.snapshot()["cases"])
        assert titles == [f"Teaching case {n}" for n in range(5)]
        assert "No changes" in cli(root, emulator, "plan").stdout
