"""A process pool for per-file work (pydicom parsing is CPU-bound, so threads do not help)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import TypeVar

A = TypeVar("A")
T = TypeVar("T")

# Below this many items, starting worker processes costs more than it saves.
SERIAL_BELOW = 64


class FilePool:
    """Map a function over items: in worker processes for big batches, inline for small ones.

    forkserver, not fork: callers may hold threads (asyncio, sqlite) that fork can deadlock.
    """

    def __init__(self, workers: int, size: int) -> None:
        self.workers = workers
        self.executor = None
        if workers > 1 and size >= SERIAL_BELOW:
            context = get_context("forkserver")
            # Workers fork from a server that has already imported pydicom and the gate.
            context.set_forkserver_preload(["casesync.phi.gate", "casesync.phi.anonymise"])
            self.executor = ProcessPoolExecutor(workers, mp_context=context)

    def __enter__(self) -> FilePool:
        return self

    def __exit__(self, *_: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def imap(self, function: Callable[[A], T], items: Sequence[A]) -> Iterator[T]:
        """Results in the order of ``items``, as they become available."""
        if self.executor is None or len(items) < SERIAL_BELOW:
            return (function(item) for item in items)
        chunk = max(1, min(128, len(items) // (self.workers * 8)))
        return self.executor.map(function, items, chunksize=chunk)

    def map(self, function: Callable[[A], T], items: Sequence[A]) -> list[T]:
        return list(self.imap(function, items))
