"""A small in-test double of the streaming engine for the serve tests (the end-to-end
tests use the real engine on a replay of real snapshots).

It holds one surface per underlying (SVI slices with the values the tests then expect
to be served), publishes patches to subscribers from any thread, and can go silent.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FakeState:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data


def svi_row(expiry: str, t: float, forward: float, atm: float) -> dict[str, Any]:
    """An SVI slice whose ATM vol is exactly ``atm`` (a = atm^2 t - b sigma, rho = m = 0)."""
    b, sigma = 0.05, 0.2
    a = atm * atm * t - b * sigma
    return {
        "expiry": expiry, "t": t, "forward": forward, "model": "svi",
        "params": {"a": a, "b": b, "rho": 0.0, "m": 0.0, "sigma": sigma},
        "atm_vol": atm, "rr25": -0.01, "bf25": 0.004, "rmse_vol": 0.002, "n_used": 40,
        "status": "ok",
    }  # fmt: skip


@dataclass
class FakeEngine:
    underlyings: tuple[str, ...] = ("BTC",)
    started: bool = False
    stopped: bool = False
    recalibrations: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _subs: list[tuple[str, asyncio.Queue[Any]]] = field(default_factory=list)
    _states: dict[str, FakeState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for u in self.underlyings:
            fwd = 100_000.0 if u == "BTC" else 3_000.0
            rows = [
                svi_row("2026-01-30T08:00:00+00:00", 7 / 365, fwd, 0.50),
                svi_row("2026-02-27T08:00:00+00:00", 35 / 365, fwd * 1.002, 0.55),
                svi_row("2026-03-27T08:00:00+00:00", 63 / 365, fwd * 1.004, 0.58),
            ]
            self._states[u] = FakeState(
                {
                    "underlying": u, "snapshot_time": "2026-01-23T09:30:00+00:00",
                    "stale": False, "age_s": 0.5, "expiries": rows,
                    "surface": {"essvi": {"rho": -0.1, "phi": 0.4}},
                    "guards": {"crossed": 2, "outlier_held": 1},
                    "flagged": [{"instrument": "BTC-30JAN26-150000-C", "reason": "crossed"}],
                    "latency": {"tick_to_slice": {"count": 5, "p50_ms": 2.0, "p99_ms": 10.0, "max_ms": 12.0}},
                }
            )  # fmt: skip

    # ---- the engine interface
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def state(self, underlying: str) -> FakeState:
        return self._states[underlying]

    async def subscribe(self, underlying: str) -> Any:
        q: asyncio.Queue[Any] = asyncio.Queue()
        self._subs.append((underlying, q))
        yield self._states[underlying]
        while True:
            yield await q.get()

    def metrics(self) -> dict[str, Any]:
        return {
            "messages": {"received": 10, "applied": 8, "dropped": {"malformed": 1, "stale": 1}},
            "calibrations": {"ok": 5, "failed": 0},
            "latency": {"tick_to_slice_s": {"p50": 0.002, "p99": 0.01, "count": 5}},
        }

    def quotes(self, underlying: str, expiry: str) -> list[dict[str, Any]]:
        row = next(r for r in self._states[underlying].data["expiries"] if r["expiry"] == expiry)
        f = row["forward"]
        out = []
        for k in (-0.2, -0.1, 0.0, 0.1, 0.2):
            iv = math.sqrt((row["params"]["a"] + 0.05 * math.hypot(k, 0.2)) / row["t"])
            out.append({"strike": f * math.exp(k), "bid_iv": iv - 0.01, "ask_iv": iv + 0.01,
                        "mark_iv": iv})  # fmt: skip
        return out

    def recalibrate(self, underlying: str) -> dict[str, Any]:
        self.recalibrations.append(underlying)
        return {"expiries": len(self._states[underlying].data["expiries"])}

    # ---- test controls (any thread)
    def set_atm(self, underlying: str, index: int, atm: float, *, pad: int = 0) -> None:
        """Change one expiry's ATM vol and publish the patch (``pad``: extra bytes)."""
        with self._lock:
            d = dict(self._states[underlying].data)
            rows = list(d["expiries"])
            r = rows[index]
            rows[index] = {**svi_row(r["expiry"], r["t"], r["forward"], atm)}
            if pad:
                rows[index]["pad"] = "x" * pad
            d["expiries"] = rows
            self._states[underlying] = FakeState(d)
            patch = {"type": "patch", **rows[index], "latency_ms": 3.0}
        self._publish(underlying, patch)

    def set_stale(self, underlying: str, age_s: float) -> None:
        with self._lock:
            d = {**self._states[underlying].data, "stale": True, "age_s": age_s}
            self._states[underlying] = FakeState(d)
        self._publish(underlying, {"type": "status", "stale": True, "age_s": age_s})

    def _publish(self, underlying: str, patch: dict[str, Any]) -> None:
        assert self._loop is not None
        for u, q in list(self._subs):
            if u == underlying:
                self._loop.call_soon_threadsafe(q.put_nowait, patch)


class GateClock:
    """Market time = the newest frame the gated replay let through; sleeps are wall
    time (a clock whose sleep returned at once would make the engine's watchdog spin)."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def mark(self, t: float) -> None:
        self._now = max(self._now, float(t))

    def advance(self, seconds: float) -> None:
        self._now += float(seconds)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(seconds, 0.0), 0.2))


class GatedReplay:
    """Real snapshot frames (``volcal.stream.ReplaySource`` at speed 0) released one
    snapshot at a time by the test, then silence (a feed that went quiet, never an end):
    the test decides when the replay advances, whatever the machine's load."""

    def __init__(self, files: list[Any], currency: str = "BTC", released: int = 1) -> None:
        from volcal.stream import ReplaySource

        self.inner = ReplaySource(files, currency=currency, speed=0)
        self.clock = GateClock(self.inner.clock.now())
        self.released = released
        self.emitted = 0  # snapshots emitted so far
        self.loop: asyncio.AbstractEventLoop | None = None
        self._more: asyncio.Event | None = None

    def release(self, n: int = 1) -> None:
        """Let ``n`` more snapshots through (from any thread)."""
        assert self.loop is not None and self._more is not None
        self.loop.call_soon_threadsafe(self._bump, n)

    def _bump(self, n: int) -> None:
        self.released += n
        assert self._more is not None
        self._more.set()

    async def messages(self) -> Any:
        self.loop = asyncio.get_running_loop()
        self._more = asyncio.Event()
        seen: float | None = None
        async for recv, raw in self.inner.messages():
            if recv != seen:
                seen = recv
                while self.emitted >= self.released:
                    self._more.clear()
                    await self._more.wait()
                self.emitted += 1
            self.clock.mark(recv)
            yield recv, raw
        while True:  # silent from here on
            await asyncio.sleep(3600)


def recv_message(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of a ``/v1/stream`` connection, batches unwrapped (the server
    sends ``{"type": "batch", "messages": [...]}`` when a client has several pending)."""
    import json

    pending: list[dict[str, Any]] = ws.__dict__.setdefault("_volcal_pending", [])
    while not pending:
        m = json.loads(ws.recv(timeout=timeout))
        if m.get("type") == "batch":
            pending.extend(m["messages"])
        else:
            pending.append(m)
    return pending.pop(0)


def wait_for(pred: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``pred`` every 50 ms until it returns something truthy (returned), failing
    the test after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
