"""The shared pacer, on a fake clock: it learns the server's rate from 429s instead of doubling
its back-off on every one, and recovers gradually. Nothing here sleeps."""

from __future__ import annotations

import asyncio

import pytest

from casesync.api.pacer import Pacer


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class Bucket:
    """The emulator's rate limit: ``rate`` per second, bursts of ``rate``; 429 beyond."""

    def __init__(self, clock: FakeClock, rate: float) -> None:
        self.clock, self.rate = clock, rate
        self.tokens, self.at = rate, 0.0

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def paced(clock: FakeClock) -> Pacer:
    return Pacer(clock=clock, sleep=clock.sleep)


async def test_no_spacing_while_the_server_is_happy() -> None:
    clock = FakeClock()
    pacer = paced(clock)
    starts = [await pacer.wait() for _ in range(20)]
    assert starts == [0.0] * 20 and pacer.interval() == 0.0


async def test_a_burst_of_429s_is_one_episode_and_sets_the_servers_rate() -> None:
    clock = FakeClock()
    pacer = paced(clock)
    for _ in range(5):
        pacer.accepted()  # the server took five requests in the last second
    for _ in range(7):  # seven requests sent at the same moment were refused
        pacer.throttled(0.0, retry_after=1.0)
    assert pacer.interval() == pytest.approx(0.2)  # one step, not 2**7 times the back-off
    starts = [await pacer.wait() for _ in range(4)]
    assert starts == pytest.approx([1.0, 1.2, 1.4, 1.6], rel=0.01)  # Retry-After, then the rate


async def test_a_429_without_retry_after_pauses_one_interval() -> None:
    clock = FakeClock()
    pacer = paced(clock)
    pacer.accepted()
    pacer.throttled(0.0, retry_after=None)
    assert await pacer.wait() == pytest.approx(1.0)


async def test_a_429_under_the_new_spacing_slows_down_further() -> None:
    clock = FakeClock()
    pacer = paced(clock)
    for _ in range(10):
        pacer.accepted()
    pacer.throttled(0.0, retry_after=0.0)
    first = pacer.interval()
    clock.now = 5.0  # a request sent well after the first episode is refused too
    for _ in range(10):
        pacer.accepted()
    decayed = pacer.interval()
    assert decayed < first
    pacer.throttled(4.9, retry_after=0.0)
    assert pacer.interval() == pytest.approx(1.5 * decayed)


async def test_the_spacing_recovers_gradually_after_the_pause() -> None:
    clock = FakeClock()
    pacer = paced(clock)
    pacer.throttled(0.0, retry_after=30.0)  # nothing accepted lately: one per second
    clock.now = 30.0  # the pause the server asked for does not count as calm
    assert pacer.interval() == pytest.approx(1.0)
    clock.now = 30.0 + pacer.half_life
    assert pacer.interval() == pytest.approx(0.5)
    clock.now = 30.0 + 20 * pacer.half_life
    assert pacer.interval() == 0.0


async def test_twelve_workers_against_five_per_second_meet_few_429s() -> None:
    """70 requests (a 46-file apply) from 12 workers: close to 14 s, not minutes."""
    clock = FakeClock()
    pacer = paced(clock)
    bucket = Bucket(clock, rate=5.0)
    refused = 0
    queue = list(range(70))

    async def worker() -> None:
        nonlocal refused
        while queue:
            queue.pop()
            while True:
                started = await pacer.wait()
                if bucket.allow():
                    pacer.accepted()
                    break
                refused += 1
                pacer.throttled(started, retry_after=1.0)

    await asyncio.gather(*(worker() for _ in range(12)))
    assert refused <= 12  # the first burst, and at most one more episode
    assert clock.now < 20.0  # fake time: 70 requests at 5/s need 13 s after a burst of 5


async def test_an_urgent_request_goes_first_but_never_into_a_pause() -> None:
    clock = FakeClock()
    asked: list[float] = []

    async def note(seconds: float) -> None:  # time stands still: only the reservations count
        asked.append(seconds)

    pacer = Pacer(clock=clock, sleep=note)
    for _ in range(5):
        pacer.accepted()
    pacer.throttled(0.0, retry_after=1.0)
    clock.now = 0.5
    queued = [await pacer.wait() for _ in range(3)]
    assert queued == pytest.approx([1.0, 1.2, 1.4], rel=0.01)
    assert await pacer.wait(urgent=True) == 1.0  # before the queue, not before the pause ends
    assert await pacer.wait() == pytest.approx(1.8, rel=0.01)  # the rest moved back one step
