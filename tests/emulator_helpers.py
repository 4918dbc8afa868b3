"""Plain-aiohttp helpers for the emulator tests (deliberately not casesync's client).

The emulator and the client are built separately from protocol.md so that each checks the
other; these helpers speak the wire format directly, as protocol.md spells it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import aiohttp
from policyref import fixed_point
from pydicom import dcmread
from pydicom.data import get_testdata_file

from casesync.emulator import Emulator

EmulatorFactory = Callable[..., Awaitable[Emulator]]
UID_PREFIX = "1.2.826.0.1.3680043.10.341.512."
DICOM = "application/dicom"


@dataclass
class Reply:
    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    """A bearer token, a base URL and one session: enough to drive every endpoint."""

    session: aiohttp.ClientSession
    base_url: str
    token: str
    extra_headers: dict[str, str] = field(default_factory=dict)

    async def call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Reply:
        url = path if path.startswith("http") else self.base_url + path
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            text = await response.text()
            return Reply(response.status, text, dict(response.headers))

    async def new_case(self, title: str = "Case", **fields: Any) -> int:
        reply = await self.call(
            "POST", "/api/v1/cases", json={"title": title, "system_id": 4, **fields}
        )
        assert reply.status == 200, reply.text
        return int(reply.json()["id"])

    async def new_study(self, case_id: int, position: int = 2, modality: str = "CT") -> int:
        body = {"modality": modality, "findings": "<p>x</p>", "position": position}
        reply = await self.call("POST", f"/api/v1/cases/{case_id}/studies", json=body)
        assert reply.status == 201, reply.text
        return int(reply.json()["id"])

    async def upload(self, blobs: list[bytes], content_type: str = DICOM) -> list[int]:
        """direct_s3_uploads for every blob, then PUT the ones the server asks for."""
        hashes = [hashlib.sha256(b).hexdigest() for b in blobs]
        reply = await self.call("POST", "/direct_s3_uploads", json={"sha256": hashes})
        assert reply.status == 200, reply.text
        entries = reply.json()["uploads"]
        for blob, entry in zip(blobs, entries, strict=True):
            if "url" in entry:
                put = await self.call(
                    "PUT",
                    entry["url"],
                    auth=False,
                    data=blob,
                    headers={"Content-Type": content_type},
                )
                assert put.status == 200, put.text
        return [int(e["id"]) for e in entries]

    async def new_series(
        self, case_id: int, study_id: int, ids: list[int], image_format: str = DICOM, **series: Any
    ) -> Reply:
        body = {
            "image_format": image_format,
            "series": {"root_index": len(ids) // 2, "perspective": "Axial", **series},
            "stack_upload": {"uploaded_data": ids},
        }
        return await self.call(
            "POST", f"/image_preparation/{case_id}/studies/{study_id}/series", json=body
        )


def api_for(emulator: Emulator, session: aiohttp.ClientSession, ttl: int | None = None) -> Api:
    return Api(session, emulator.base_url, emulator.issue_tokens(ttl)["access_token"])


def compliant_dicom(
    description: str = "slice", name: str = "CT_small.dcm", **changes: Any
) -> bytes:
    """A real pydicom test file turned into a fixed point of the policy, then ``changes`` applied.

    ``changes`` maps keywords to values (None deletes), to make one specific violation.
    """
    dataset = fixed_point(dcmread(get_testdata_file(name, download=False)))
    dataset.SeriesDescription = description
    dataset.file_meta.MediaStorageSOPInstanceUID = (
        f"{UID_PREFIX}99.{zlib.crc32(description.encode())}"
    )
    for keyword, value in changes.items():
        if value is None:
            delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
