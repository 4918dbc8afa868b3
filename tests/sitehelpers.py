"""What happens on the site, outside the API: publish, retitle or delete a case on the emulator.

Its admin routes are plain loopback HTTP; urllib keeps these helpers free of any event loop, so
tests that run the CLI as a subprocess against ``emulator_thread`` can call them directly.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from typing import Any

from casesync.emulator import EmulatorThread


def site(
    emulator: EmulatorThread,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    token: str | None = None,
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(emulator.base_url + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        return json.loads(response.read())


def publish(emulator: EmulatorThread, case_id: int) -> None:
    site(emulator, "POST", f"/_emulator/cases/{case_id}/status", {"status": "published"})


def retitle(emulator: EmulatorThread, case_id: int, title: str) -> None:
    site(emulator, "POST", f"/_emulator/cases/{case_id}/title", {"title": title})


def delete(emulator: EmulatorThread, case_id: int) -> None:
    site(emulator, "DELETE", f"/_emulator/cases/{case_id}")


def create_case(emulator: EmulatorThread, title: str) -> int:
    """A draft made on the site by hand (here through the API, as the demo user)."""
    token = emulator.issue_tokens()["access_token"]
    body = {"title": title, "system_id": 4}
    return int(site(emulator, "POST", "/api/v1/cases", body, token)["id"])


def case_with_series(emulator: EmulatorThread, title: str, blobs: list[bytes]) -> int:
    """A case with one DICOM series made outside casesync (so casesync's gate never saw it)."""
    token = emulator.issue_tokens()["access_token"]
    case_id = create_case(emulator, title)
    study = site(emulator, "POST", f"/api/v1/cases/{case_id}/studies", {"modality": "CT"}, token)
    hashes = [hashlib.sha256(blob).hexdigest() for blob in blobs]
    slots = site(emulator, "POST", "/direct_s3_uploads", {"sha256": hashes}, token)["uploads"]
    for blob, slot in zip(blobs, slots, strict=True):
        put = urllib.request.Request(
            slot["url"], blob, {"Content-Type": "application/dicom"}, method="PUT"
        )
        urllib.request.urlopen(put, timeout=10).close()  # no Authorization, like S3 wants
    body = {
        "image_format": "application/dicom",
        "series": {"root_index": 0},
        "stack_upload": {"uploaded_data": [slot["id"] for slot in slots]},
    }
    site(
        emulator, "POST", f"/image_preparation/{case_id}/studies/{study['id']}/series", body, token
    )
    return case_id
