"""When to try a request again, and one pacer that every concurrent request waits on.

rclone's model: a 429 tells the *server's* mood, so it slows every worker, not just the one
that got it. Unlike a plain exponential back-off, the pacer learns the spacing the server
tolerates: a burst of 429s answering requests sent under the same spacing counts once, the new
spacing is estimated from how many requests the server accepted in the last second, and it
recovers gradually (halving every ``half_life`` seconds without a 429). Clock and sleep are
injected so that tests never wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Statuses that say "nothing was processed, come back later": safe to retry even for a create.
NOT_PROCESSED = frozenset({429, 503})
# Statuses that say "something went wrong on the server": safe to retry only when idempotent.
SERVER_ERRORS = frozenset({500, 502, 503, 504})

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``attempts`` failed tries and ``deadline`` seconds per call.

    Throttled answers (429, or 503 with Retry-After) are paced by the ``Pacer`` and count only
    against the deadline: nothing was processed, and the pacer keeps them rare.
    """

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
        return min(float(text), 3600.0)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    current = time.time() if now is None else now
    return min(3600.0, max(0.0, moment.timestamp() - current))


class Pacer:
    """Spaces request starts by a learned interval; a 429 pauses everyone once per episode."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_interval: float = 30.0,
        half_life: float = 20.0,
        window: float = 1.0,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.max_interval = max_interval
        self.half_life = half_life  # seconds without a 429 that halve the interval
        self.window = window  # seconds of accepted requests the server's rate is read from
        self._learned = 0.0  # the interval set by the last episode
        self._episode = -math.inf  # clock time of the last episode: older 429s are stale
        self._calm_since = -math.inf  # end of the last pause: the interval decays from here
        self._next_start = -math.inf
        self._accepted: deque[float] = deque()  # clock times of recent accepted answers

    def interval(self, now: float | None = None) -> float:
        """Seconds between two request starts now: the learned one, decayed since."""
        if self._learned == 0.0:
            return 0.0
        now = self.clock() if now is None else now
        calm = max(0.0, now - self._calm_since)
        decayed = self._learned * 0.5 ** (calm / self.half_life)
        return decayed if decayed >= 0.001 else 0.0

    async def wait(self, urgent: bool = False) -> float:
        """Wait for this request's turn; returns its start time (give it to ``throttled``).

        An ``urgent`` request (an upload to a URL that expires soon) goes before the queue,
        never into a pause; the requests reserved after it move back by one interval.
        """
        now = self.clock()
        if urgent:
            start = max(now, self._calm_since)
            self._next_start = max(self._next_start, start) + self.interval(start)
        else:
            start = max(now, self._next_start)
            self._next_start = start + self.interval(start)
        if start > now:
            await self.sleep(start - now)
        return start

    def accepted(self) -> None:
        """The server processed a request (any answer but a throttle)."""
        now = self.clock()
        self._accepted.append(now)
        while self._accepted and self._accepted[0] < now - self.window:
            self._accepted.popleft()

    def throttled(self, started: float, retry_after: float | None) -> None:
        """A 429 for a request started at ``started``: learn a new interval, pause once."""
        if started <= self._episode:
            return  # sent under the old spacing: this episode already counted it
        now = self.clock()
        recent = sum(1 for t in self._accepted if t >= now - self.window)
        estimate = self.window / max(1, recent)
        self._learned = min(self.max_interval, max(estimate, 1.5 * self.interval(now)))
        self._episode = now
        pause = retry_after if retry_after is not None else self._learned
        self._calm_since = now + pause
        self._next_start = max(self._next_start, self._calm_since)
