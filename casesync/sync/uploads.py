"""A series' files to the server: presigned just in time, in batches, each file PUT once.

A batch is presigned just before its PUTs and at most two batches are in flight, so a URL
waits at most one batch of uploads (presigned URLs may expire quickly; the client asks for a
fresh one when S3 refuses it). The same bytes in two series are uploaded once: the second
series waits for the first upload, then the server reports the file as already there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from casesync.api.models import Planned, UploadSlot
from casesync.project.manifest import ImageFile, SeriesSpec
from casesync.sync.report import ApplyReport, Events, Step
from casesync.wording import plural


class Progress(Protocol):
    def __call__(self, count: int, /) -> None: ...


class UploadClient(Protocol):
    """What uploads need from ``casesync.api.client.RadiopaediaClient``."""

    async def presign(self, sha256s: Sequence[str]) -> list[UploadSlot]: ...
    async def upload(
        self,
        planned: Planned,
        slot: UploadSlot,
        content_type: str,
        progress: Progress | None = None,
    ) -> UploadSlot: ...


class Uploader:
    """One pool for the whole run: counts go to ``report``, bytes to ``events.uploaded``."""

    def __init__(
        self,
        client: UploadClient,
        root: Path,
        events: Events,
        report: ApplyReport,
        *,
        batch: int,
        check_stop: Callable[[], None],
        planned: frozenset[str] = frozenset(),
    ) -> None:
        self.client = client
        self.root = root
        self.events = events
        self.report = report
        self.batch = batch
        self.check_stop = check_stop
        self.planned = planned  # the hashes the plan counted as "to upload"
        self._claims: dict[str, asyncio.Future[None]] = {}  # sha256 -> its upload finished
        self._window = asyncio.Semaphore(2)

    async def series(
        self, key: str, study_index: int, series_index: int, series: SeriesSpec, counted: int = 0
    ) -> dict[str, int]:
        """Upload ids by hash for every file of the series, uploading what is missing;
        ``counted``: the files the plan said this series uploads (its done line says them)."""
        unique: dict[str, ImageFile] = {}
        for file in series.files:
            unique.setdefault(file.sha256, file)
        hashes = list(unique)
        batches = [hashes[i : i + self.batch] for i in range(0, len(hashes), self.batch)]
        step = Step.upload(study_index, series_index)
        self.events.step(key, step, "started")
        results = await asyncio.gather(
            *(self._batch([unique[h] for h in batch], series.image_format) for batch in batches)
        )
        ids = {sha: upload_id for part in results for sha, upload_id in part.items()}
        self.events.step(key, step, "done", upload_detail(counted, len(ids)))
        return ids

    async def _batch(self, files: list[ImageFile], content_type: str) -> dict[str, int]:
        async with self._window:
            self.check_stop()
            mine = [f for f in files if f.sha256 not in self._claims]
            theirs = [f for f in files if f.sha256 in self._claims]
            loop = asyncio.get_running_loop()
            claims = {f.sha256: loop.create_future() for f in mine}
            self._claims.update(claims)
            try:
                ids = await self._presign_and_put(mine, content_type)
            finally:
                for future in claims.values():
                    future.set_result(None)
            if theirs:  # the same bytes in another series: wait, then the server has them
                await asyncio.gather(*(self._claims[f.sha256] for f in theirs))
                ids.update(await self._presign_and_put(theirs, content_type))
            return ids

    async def _presign_and_put(self, files: list[ImageFile], content_type: str) -> dict[str, int]:
        if not files:
            return {}
        slots = await self.client.presign([f.sha256 for f in files])
        by_hash = {f.sha256: f for f in files}
        done = await asyncio.gather(*(self._put(by_hash[s.sha256], s, content_type) for s in slots))
        return dict(done)

    async def _put(self, file: ImageFile, slot: UploadSlot, content_type: str) -> tuple[str, int]:
        if slot.already_uploaded:
            if file.sha256 in self.planned:  # sent by a run that was stopped
                self.report.files_resumed += 1
            else:
                self.report.files_present += 1
            return file.sha256, slot.upload_id
        self.check_stop()
        planned = Planned(self.root / file.path, file.sha256, file.size, file.path)
        final = await self.client.upload(planned, slot, content_type, self.events.uploaded)
        self.report.files_uploaded += 1
        self.report.bytes_uploaded += file.size
        return file.sha256, final.upload_id


def upload_detail(planned: int, files: int) -> str:
    """What a series upload did, in the plan's terms: the files it counted, then the rest."""
    sent = f"{plural(planned, 'file')} uploaded"
    rest = files - planned
    return sent if rest <= 0 else f"{sent}, {rest} already on the server"
