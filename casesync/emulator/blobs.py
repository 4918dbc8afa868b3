"""Uploaded bytes, addressed by SHA-256: in memory, or in a folder beside the state file.

Files are written and read in a worker thread so that big bodies never block the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from casesync.fsutil import atomic_write


class BlobStore:
    """Content-addressed storage; ``directory=None`` keeps everything in memory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, bytes] = {}
        self._on_disk: set[str] = set()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._on_disk = {p.name for p in directory.iterdir() if len(p.name) == 64}

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self._memory or sha256 in self._on_disk

    def __len__(self) -> int:
        return len(self._memory) + len(self._on_disk)

    async def put(self, sha256: str, data: bytes) -> None:
        if self.directory is None:
            self._memory[sha256] = data
            return
        await asyncio.to_thread(atomic_write, self.directory / sha256, data)
        self._on_disk.add(sha256)

    async def get(self, sha256: str) -> bytes | None:
        if sha256 in self._memory:
            return self._memory[sha256]
        if self.directory is None or sha256 not in self._on_disk:
            return None
        return await asyncio.to_thread((self.directory / sha256).read_bytes)
