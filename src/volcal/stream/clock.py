"""Clocks of the streaming engine: the market-time axis every age and staleness is read on.

The engine never calls ``time.time()`` itself: it reads a :class:`Clock`, so a test can
drive a 60-second silence in microseconds (:class:`ManualClock`) and a replay can run
its recorded time at a speed factor (:class:`ReplayClock`). Pacing of the computations
(the per-expiry debounce, the model cadences) is wall time (``time.monotonic``): it
protects the CPU, not the market axis.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "ReplayClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Market time in UTC epoch seconds, and a sleep on that axis."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's UTC clock (live feeds)."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class ManualClock:
    """A clock that moves only when told (tests): ``advance(dt)`` wakes the sleepers due.

    >>> c = ManualClock(1_700_000_000.0)
    >>> c.advance(60.0); c.now()
    1700000060.0
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        """Move to ``t`` (never backwards) and wake the sleepers due."""
        self._now = max(self._now, float(t))
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        self.set(self._now + float(seconds))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut


class ReplayClock:
    """Recorded time played at ``speed`` x real time from ``start`` (``speed=0``: as
    fast as possible).

    The replay tells the clock the time of the frame it is about to deliver
    (:meth:`due`): market time never runs ahead of that frame, so a replay that falls
    behind its schedule (a slow machine) does not look like a silent feed, while a
    recorded silence (the replay waiting for its next frame) does.
    """

    def __init__(self, start: float, speed: float) -> None:
        self.start = float(start)
        self.speed = float(speed)
        self._wall0 = time.monotonic()
        self._last = float(start)
        self._next = float(start)
        self._done = False

    def now(self) -> float:
        if self.speed <= 0:
            return self._last
        t = self.start + (time.monotonic() - self._wall0) * self.speed
        return t if self._done else max(self._last, min(t, self._next))

    def begin(self, t: float) -> None:
        """The replay delivers its first frame, recorded at ``t``, now: recorded time is
        played from this wall instant (not from the clock's creation), so the time spent
        before the first frame (reading the files, the engine waiting for its workers)
        does not make the replay start behind its schedule and burst."""
        if self.speed > 0:
            self._wall0 = time.monotonic() - (t - self.start) / self.speed

    def due(self, t: float) -> None:
        """The replay's next frame is recorded at ``t``."""
        self._next = t

    def mark(self, t: float) -> None:
        """The replay emitted a message recorded at ``t``."""
        self._last = max(self._last, t)

    def finish(self) -> None:
        """The replay has no more frames: time runs freely."""
        self._done = True

    def wall_delay(self, t: float) -> float:
        """Wall seconds until recorded time ``t`` is due."""
        if self.speed <= 0:
            return 0.0
        return (t - self.start) / self.speed - (time.monotonic() - self._wall0)

    #: wall-clock pause of a ``sleep`` at ``speed=0``: market time has no pace there, and
    #: a sleeper that returned at once (the engine's watchdog) would spin a core until the
    #: process ends
    IDLE_S = 0.05

    async def sleep(self, seconds: float) -> None:
        if self.speed <= 0:
            await asyncio.sleep(min(max(seconds, 0.0), self.IDLE_S))
            return
        await asyncio.sleep(max(seconds, 0.0) / self.speed)
