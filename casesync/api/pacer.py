"""When to try a request again, and one pacer that every concurrent request waits on.

rclone's model: a 429 or 503 tells the *server's* mood, so it slows every worker, not just the
one that got it; the spacing between requests then shrinks back as calls succeed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Statuses that say "nothing was processed, come back later": safe to retry even for a create.
NOT_PROCESSED = frozenset({429, 503})
# Statuses that say "something went wrong on the server": safe to retry only when idempotent.
SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``attempts`` tries and ``deadline`` seconds per call."""

    attempts: int = 6
    base_delay: float = 0.5  # first back-off, doubled each time, with full jitter
    max_delay: float = 30.0
    deadline: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


class Pacer:
    """Spaces request starts; a throttle pushes every waiter back, success recovers gradually."""

    def __init__(self, min_gap: float = 0.01, max_gap: float = 10.0) -> None:
        self.min_gap = min_gap
        self.max_gap = max_gap
        self.gap = 0.0  # seconds between two request starts; 0 while the server is happy
        self._next_start = 0.0  # monotonic time before which no request may start
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for this request's turn."""
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.gap
        if start > now:
            await asyncio.sleep(start - now)

    def throttle(self, delay: float) -> None:
        """The server asked us to slow down: nobody starts for ``delay`` s, then slower."""
        self.gap = min(self.max_gap, max(self.min_gap, self.gap * 2))
        self._next_start = max(self._next_start, time.monotonic() + delay)

    def succeeded(self) -> None:
        self.gap = 0.0 if self.gap <= self.min_gap else self.gap / 2
