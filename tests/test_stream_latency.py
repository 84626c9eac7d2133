"""Latency scheduling of the streaming engine on a real snapshot of ../shared/data: the
debounce token bucket, the eSSVI refresh run in steps off the slices' way (slices
first, superseded refreshes dropped and counted), the GC freeze at start. The quote
moves applied after the snapshot are test inputs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from volcal.stream import ManualClock, StreamConfig, StreamEngine
from volcal.stream.sources import snapshot_frames, ticker_frame

SNAP = "deribit_options_snapshot_20260123T092319Z.csv"
pytestmark = pytest.mark.data


class _Silent:
    async def messages(self) -> Any:
        await asyncio.Event().wait()  # a live feed that sends nothing more
        yield None  # pragma: no cover


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def _loaded(snapshot_dir: Path, **cfg: Any) -> tuple[StreamEngine, ManualClock, dict[str, Any]]:
    """An engine holding the real snapshot in its book (not fitted yet)."""
    frames = list(snapshot_frames([snapshot_dir / SNAP], "BTC"))
    clock = ManualClock(frames[0][0] + 1.0)
    base: dict[str, Any] = {"models": ("svi",), "clock": clock, "gc_freeze": False}
    base.update(cfg)
    eng = StreamEngine(_Silent(), StreamConfig(**base))
    for recv, f in frames:
        eng.handle(f, recv)
    items = {it["instrument_name"]: it for it in frames[-1][1]["result"]}
    return eng, clock, items


def _liquid_expiry(eng: StreamEngine) -> Any:
    return next(e for e in eng.state("BTC").expiries if e.status == "ok" and e.n_used >= 15)


def _nudge(
    eng: StreamEngine, clock: ManualClock, items: dict[str, Any], expiry: float, step: int
) -> None:
    """Test input: one quote of ``expiry`` moved by a tick (its bid up 0.01%)."""
    eb = eng.book("BTC").expiries[expiry]
    name = next(n for n in eb.instruments if items[n]["bid_price"] and items[n]["ask_price"])
    it = items[name]
    f = ticker_frame(
        name,
        int(clock.now() * 1000) + step,
        it["bid_price"] * (1 + 1e-4 * step),
        it["ask_price"],
        it["mark_price"],
        it["underlying_price"],
        None,
    )
    assert eng.handle(f, clock.now()) == "applied:ticker"


def _fits(eng: StreamEngine, expiry: float) -> int:
    return next(e.n_fits for e in eng.state("BTC").expiries if e.expiry == expiry)


@pytest.mark.parametrize("burst", [1, 3])
def test_debounce_token_bucket(snapshot_dir: Path, burst: int) -> None:
    """debounce 30 s: with a bucket of 3 the two changes after the first fit are
    refitted at once and the third waits; with 1, the first change already waits."""
    eng, clock, items = _loaded(snapshot_dir, debounce_s=30.0, debounce_burst=burst)

    async def main() -> None:
        eng.start()
        try:
            await until(lambda: bool(eng.state("BTC").expiries))
            await until(lambda: not any(eb.dirty for eb in eng.book("BTC").expiries.values()))
            e = _liquid_expiry(eng).expiry
            n0 = _fits(eng, e)
            for step in range(1, burst):
                _nudge(eng, clock, items, e, step)
                await until(lambda s=step: _fits(eng, e) == n0 + s, timeout=5.0)
            _nudge(eng, clock, items, e, burst)
            await asyncio.sleep(0.5)
            assert _fits(eng, e) == n0 + burst - 1  # paced: waits for its interval
            assert eng.book("BTC").expiries[e].dirty
        finally:
            await eng.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
