"""The reference client: the API documentation's curl flow, written plainly, one request at a time.

This is what a user would otherwise write: for each case folder create the case and a study,
then for each file hash it, ask ``/direct_s3_uploads`` for a URL and PUT the bytes, then attach
the series and mark the upload finished. No concurrency, no batching, no resume.

    CASESYNC_API_URL=... CASESYNC_ACCESS_TOKEN=... python sequential_client.py REPO

REPO is a benchmark repository from ``run.py``: ``cases/<name>/slices/*.dcm``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

SYSTEM_CHEST = 4


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request) as response:
            text = response.read()
        return json.loads(text) if text else None


def put_file(url: str, data: bytes) -> None:
    """The presigned PUT: no Authorization header (S3 rejects a second auth mechanism)."""
    request = urllib.request.Request(
        url, method="PUT", data=data, headers={"Content-Type": "application/dicom"}
    )
    with urllib.request.urlopen(request) as response:
        response.read()


def upload_case(api: Api, case_dir: Path) -> int:
    """Create one case with one CT study of one series; return the bytes uploaded."""
    case = api.call("POST", "/api/v1/cases", {"title": case_dir.name, "system_id": SYSTEM_CHEST})
    study = api.call(
        "POST", f"/api/v1/cases/{case['id']}/studies", {"modality": "CT", "position": 2}
    )
    upload_ids = []
    sent = 0
    files = sorted((case_dir / "slices").iterdir())
    for path in files:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (entry,) = api.call("POST", "/direct_s3_uploads", {"sha256": [digest]})["uploads"]
        if "url" in entry:
            put_file(entry["url"], data)
            sent += len(data)
        upload_ids.append(entry["id"])
    api.call(
        "POST",
        f"/image_preparation/{case['id']}/studies/{study['id']}/series",
        {
            "image_format": "application/dicom",
            "series": {"root_index": len(files) // 2, "perspective": "Axial"},
            "stack_upload": {"uploaded_data": upload_ids},
        },
    )
    api.call("PUT", f"/api/v1/cases/{case['id']}/mark_upload_finished")
    return sent


def main() -> None:
    repo = Path(sys.argv[1])
    api = Api(os.environ["CASESYNC_API_URL"], os.environ["CASESYNC_ACCESS_TOKEN"])
    sent = sum(upload_case(api, case_dir) for case_dir in sorted((repo / "cases").iterdir()))
    print(json.dumps({"bytes_uploaded": sent}))


if __name__ == "__main__":
    main()
