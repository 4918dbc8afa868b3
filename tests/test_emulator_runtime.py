"""Running the emulator: a state file across restarts, the thread runner, the CLI command."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from emulator_helpers import DICOM, Api, EmulatorFactory, compliant_dicom

from casesync.emulator import Emulator, EmulatorConfig, EmulatorThread


class ManualPause:
    """The saver's clock, driven by the test: each ``tick`` lets one period pass."""

    def __init__(self) -> None:
        self._release = asyncio.Event()
        self._waiting = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self._waiting.set()
        await self._release.wait()
        self._release.clear()

    async def tick(self) -> None:
        """Let one period pass and return once the saver is waiting for the next one."""
        await self._waiting.wait()
        self._waiting.clear()
        self._release.set()
        await self._waiting.wait()


async def test_a_restarted_emulator_keeps_its_world(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    state_file = tmp_path / "state.json"
    saver_clock = ManualPause()
    first = Emulator(EmulatorConfig(state_file=state_file), pause=saver_clock)
    await first.start()
    tokens = first.issue_tokens()
    stored, pending = compliant_dicom("stored"), compliant_dicom("pending")
    async with aiohttp.ClientSession() as session:
        api = Api(session, first.base_url, tokens["access_token"])
        case_id = await api.new_case("kept")
        study_id = await api.new_study(case_id)
        ids = await api.upload([stored])
        assert (await api.new_series(case_id, study_id, ids)).status == 202
        entry = (
            await api.call(
                "POST", "/direct_s3_uploads", json={"sha256": [hashlib.sha256(pending).hexdigest()]}
            )
        ).json()["uploads"][0]
        assert not state_file.exists()  # nothing saved before a period has passed
        await saver_clock.tick()  # one period passes: the background save runs while serving
        assert "kept" in state_file.read_text()
        await first.stop()

        second = await emulator_factory(state_file=state_file, draft_quota=None)
        api = Api(session, second.base_url, tokens["access_token"])
        listed = (await api.call("GET", "/api/v1/cases")).json()
        assert [c["id"] for c in listed] == [case_id]
        again = (
            await api.call(
                "POST", "/direct_s3_uploads", json={"sha256": [hashlib.sha256(stored).hexdigest()]}
            )
        ).json()
        assert again["uploads"][0]["status"] == "already_uploaded"
        url = urlsplit(entry["url"])  # issued by the first run: the signing key survived
        put = await api.call(
            "PUT",
            f"{second.base_url}{url.path}?{url.query}",
            auth=False,
            data=pending,
            headers={"Content-Type": DICOM},
        )
        assert put.status == 200
        assert await api.new_case("next") > case_id
        quotas = (await api.call("GET", "/api/v1/users/current")).json()["quotas"]
        assert (quotas["allowed_draft_cases"], quotas["draft_case_count"]) == (None, 2)
    state = second.snapshot()
    assert state["stored_blobs"] == 2
    assert state["cases"][0]["studies"][0]["series"][0]["upload_ids"] == ids


def test_thread_runner_serves_synchronous_callers() -> None:
    with EmulatorThread(EmulatorConfig()) as running:
        tokens = running.issue_tokens(ttl=30)
        request = urllib.request.Request(
            running.base_url + "/api/v1/users/current",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["login"] == "demo"
        running.advance_clock(31)
        assert running.snapshot()["requests"] == {"GET /api/v1/users/current": 1}
        assert running.authorization_code()


def test_the_emulator_thread_fixture(emulator_thread: EmulatorThread) -> None:
    with urllib.request.urlopen(
        emulator_thread.base_url + "/_emulator/state", timeout=5
    ) as response:
        assert json.load(response)["cases"] == []


def test_cli_prints_how_to_log_in_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    command = [
        sys.executable,
        "-m",
        "casesync",
        "emulator",
        "--port",
        "0",
        "--state",
        str(state_file),
        "--draft-quota",
        "unlimited",
        "--rate-limit",
        "50/s",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        text = "".join(lines)
        base_url = text.split("listening on ", 1)[1].split()[0]
        assert f"casesync login --api-url {base_url} --client-id casesync-demo-client" in text
        token = text.split("CASESYNC_ACCESS_TOKEN=", 1)[1].split()[0]
        request = urllib.request.Request(
            base_url + "/api/v1/users/current", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["quotas"]["allowed_draft_cases"] is None
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0
    assert json.loads(state_file.read_text())["tokens"]
