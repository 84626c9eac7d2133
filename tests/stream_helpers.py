"""Shared test input for the streaming engine tests: one quote of an expiry moved."""

from __future__ import annotations

import time
from typing import Any

from volcal.stream import ManualClock, StreamEngine
from volcal.stream.sources import ticker_frame


def nudge(
    eng: StreamEngine,
    clock: ManualClock,
    items: dict[str, Any],
    expiry: float,
    step: int,
    index: float | None = None,
) -> float:
    """One quote of ``expiry`` moved (its bid up 0.01 % per step), with an index price
    when given, applied to ``eng``. Returns the wall time just before it was applied."""
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
        index,
    )
    w0 = time.perf_counter()
    assert eng.handle(f, clock.now()) == "applied:ticker"
    return w0
