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
from stream_helpers import nudge

from volcal.stream import ManualClock, StreamConfig, StreamEngine
from volcal.stream.sources import snapshot_frames

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
                nudge(eng, clock, items, e, step)
                await until(lambda s=step: _fits(eng, e) == n0 + s, timeout=5.0)
            nudge(eng, clock, items, e, burst)
            await asyncio.sleep(0.5)
            assert _fits(eng, e) == n0 + burst - 1  # paced: waits for its interval
            assert eng.book("BTC").expiries[e].dirty
        finally:
            await eng.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def _slow_steps(log: list[set[float]], step_s: float) -> Any:
    """essvi_steps with every step made ``step_s`` slower (a stand-in for a loaded
    core); the ``fitted`` set of each refresh is logged."""
    from volcal.stream import fit

    def steps(*args: Any, **kwargs: Any) -> Any:
        log.append(set(args[3] if len(args) > 3 else kwargs["fitted"]))
        gen = fit.essvi_steps(*args, **kwargs)
        while True:
            time.sleep(step_s)
            try:
                i = next(gen)
            except StopIteration as stop:
                return stop.value
            yield i

    return steps


def test_a_slow_surface_refresh_never_delays_slice_updates(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``surface_executor="steps"``: a refresh of 10+ steps of 100 ms each (over a
    second) is running while a quote of another expiry moves: that slice is refitted and published within about one
    step, long before the refresh ends; its update waits for the next refresh."""
    from volcal.stream import engine as engine_mod

    log: list[set[float]] = []
    monkeypatch.setattr(engine_mod, "essvi_steps", _slow_steps(log, 0.1))
    eng, clock, items = _loaded(
        snapshot_dir,
        models=("svi", "essvi"),
        debounce_s=0.0,
        surface_interval_s=0.0,
        surface_executor="steps",
    )

    async def main() -> None:
        eng.start()
        try:
            await until(lambda: bool(eng.state("BTC").expiries))
            await eng.wait_idle(30)
            ok = [x.expiry for x in eng.state("BTC").expiries if x.status == "ok"]
            b = ok[len(ok) // 2]
            for e in ok:  # every other slice moves: a (slow) refresh of all of them
                if e != b:
                    nudge(eng, clock, items, e, 1)
            await until(eng._essvi_running)
            started = time.perf_counter()
            n_b = _fits(eng, b)
            nudge(eng, clock, items, b, 2)
            await until(lambda: _fits(eng, b) == n_b + 1)
            waited = time.perf_counter() - started
            assert eng._essvi_running(), "the slice waited for the whole refresh"
            assert waited < 0.5  # the refresh alone takes over 10 x 100 ms
            est = next(x for x in eng.state("BTC").expiries if x.expiry == b)
            assert est.latency_ms is not None and est.latency_ms < 150
            assert b not in log[-1]  # ... and its update waits for the next refresh
            await eng.wait_idle(30)
            assert b in log[-1]
        finally:
            await eng.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_surface_coalescing_drops_only_superseded_updates(snapshot_dir: Path) -> None:
    """Three updates of one slice while a refresh runs (held open by the test): the
    first two are superseded (counted), the newest is taken by the next refresh;
    every update is accounted for (slice_updates = superseded + taken + pending)."""
    eng, clock, items = _loaded(
        snapshot_dir,
        models=("svi", "essvi"),
        debounce_s=0.0,
        surface_interval_s=0.0,
        surface_executor="steps",
    )
    log: list[set[float]] = []
    gate = asyncio.Event()
    hold_at: list[int] = []
    real = eng._fit_essvi_steps

    async def job(u: Any, now: float, newest: float, fitted: set[float]) -> None:
        log.append(set(fitted))
        if len(log) in hold_at:
            await gate.wait()  # this refresh runs until the test lets it finish
        await real(u, now, newest, fitted)

    eng._fit_essvi_steps = job  # type: ignore[method-assign]

    def queue() -> dict[str, int]:
        q: dict[str, int] = eng.metrics()["surface_queue"]["BTC"]
        assert q["slice_updates"] == q["superseded"] + q["taken"] + q["pending"]
        return q

    async def main() -> None:
        eng.start()
        try:
            await until(lambda: bool(eng.state("BTC").expiries))
            await eng.wait_idle(30)
            ok = [x.expiry for x in eng.state("BTC").expiries if x.status == "ok"]
            a, b = ok[0], ok[-1]
            hold_at.append(len(log) + 1)
            nudge(eng, clock, items, a, 1)
            await until(lambda: len(log) == hold_at[0])
            assert eng._essvi_running() and b not in log[-1]
            q0 = queue()
            for step in (2, 3, 4):
                n_b = _fits(eng, b)
                nudge(eng, clock, items, b, step)
                await until(lambda n=n_b: _fits(eng, b) == n + 1)
            assert eng._essvi_running() and len(log) == hold_at[0]  # still the same one
            q1 = queue()
            assert q1["slice_updates"] - q0["slice_updates"] == 3
            assert q1["superseded"] - q0["superseded"] == 2
            assert q1["pending"] == 1
            gate.set()
            await eng.wait_idle(30)
            q2 = queue()
            assert q2["pending"] == 0 and q2["superseded"] == q1["superseded"]
            assert len(log) == hold_at[0] + 1 and log[-1] == {b}  # one refresh took it
        finally:
            gate.set()
            await eng.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_warm_stepped_refresh_matches_the_cold_one(snapshot_dir: Path) -> None:
    """The engine's refresh (warm-started at the previous nodes, here in steps) against
    a cold one-shot refresh of the same slices: the same fit quality (RMSE to 1e-4
    relative), nodes close, calendar-consistent, no-arbitrage check passing."""
    from volcal.stream.fit import essvi_refresh, essvi_steps

    eng, clock, _ = _loaded(snapshot_dir, models=("svi", "essvi"), debounce_s=0.0)
    eng.recalibrate()  # synchronous: fits every slice and the surface once
    u = eng._u["BTC"]
    inp = eng._essvi_inputs(u, clock.now(), set(u.slices))
    assert inp is not None and len(inp["expiries"]) >= 8
    cold = essvi_refresh(**{**inp, "check": True})
    steps = essvi_steps(**{**inp, "check": True}, warm=True)
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as stop:
            warm = stop.value
            break
    assert seen[-1] == -1 and seen[:-1] == list(range(1, len(seen)))
    assert warm.n_refit == cold.n_refit == len(inp["expiries"])
    assert warm.rmse_vol == pytest.approx(cold.rmse_vol, rel=1e-4)
    assert warm.conditions_ok and cold.conditions_ok
    for e in inp["expiries"]:
        assert warm.nodes[e] == pytest.approx(cold.nodes[e], rel=2e-2, abs=2e-3)


def test_gc_freeze_at_start(snapshot_dir: Path) -> None:
    import gc

    gc.unfreeze()
    eng, _, _ = _loaded(snapshot_dir, gc_freeze=True)

    async def main() -> None:
        assert gc.get_freeze_count() == 0
        eng.start()
        try:
            assert gc.get_freeze_count() > 10_000  # the start-up heap
        finally:
            await eng.stop()
            gc.unfreeze()

    asyncio.run(main())


def test_iv_memo_equals_fresh_inversion(snapshot_dir: Path) -> None:
    """The slice refit inverts only the quotes that changed: at a later clock time and
    after a quote moved, the memoised cleaning equals a fresh one (vols to 1e-13
    relative, the same quotes used and flagged), and only the moved quote's prices
    (and those without a vol) were inverted again."""
    import numpy as np

    from volcal.stream.fit import IvMemo, slice_quotes

    eng, clock, items = _loaded(snapshot_dir)
    eng.recalibrate()
    e = _liquid_expiry(eng)
    eb = eng.book("BTC").expiries[e.expiry]
    smile = eng._u["BTC"].slices[e.expiry].svi
    kw: dict[str, Any] = {
        "policy": eng.config.policy,
        "stale_quote_s": 900.0,
        "smile": smile,
        "off_smile_spreads": 4.0,
        "off_smile_min_vol": 0.03,
        "off_smile_persist_s": 5.0,
    }
    memo = IvMemo()
    slice_quotes(eb, clock.now(), off_since={}, iv_memo=memo, **kw)
    first = memo.inverted
    failed = int((~np.isfinite(memo.s) & np.isfinite(memo.p)).sum())  # no vol: tried again
    assert first > 0 and memo.reused == 0
    clock.advance(90.0)
    nudge(eng, clock, items, e.expiry, 3)  # one quote moves
    got = slice_quotes(eb, clock.now(), off_since={}, iv_memo=memo, **kw)
    want = slice_quotes(eb, clock.now(), off_since={}, **kw)
    assert 1 <= memo.inverted - first - failed <= 3 and memo.reused >= first - failed - 3
    assert got.quotes is not None and want.quotes is not None
    assert list(got.quotes.instrument) == list(want.quotes.instrument)
    assert got.flagged == want.flagged and got.excluded == want.excluded
    for f in ("iv_mid", "iv_bid", "iv_ask", "vega"):
        np.testing.assert_allclose(getattr(got.quotes, f), getattr(want.quotes, f), rtol=1e-13)


def test_model_worker_reports_the_time_on_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """ModelWorker.calibrate keeps the refit's own wall time (measured where it runs)
    apart from the round trip; a stand-in refit of 50 ms on the thread worker."""
    import volcal.calibration
    from volcal.stream.worker import ModelWorker

    def slow(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        time.sleep(0.05)
        return args

    monkeypatch.setattr(volcal.calibration, "calibrate", slow)
    w = ModelWorker("thread")

    async def main() -> float:
        t0 = time.perf_counter()
        assert await w.calibrate(1, 2) == (1, 2)
        return time.perf_counter() - t0

    try:
        round_trip = asyncio.run(main())
    finally:
        w.shutdown()
    assert 0.05 <= w.last_on_worker_s <= round_trip


def test_surface_quality_equals_fit_quality_of_the_merged_quotes(snapshot_dir: Path) -> None:
    """The eSSVI refresh's RMSE / inside-spread / quote count from the five columns it
    reads equal ``fit_quality(merge_quotes(...))`` exactly, on the real snapshot."""
    from volcal.calibration.result import fit_quality
    from volcal.stream.fit import merge_quotes, surface_quality

    eng, clock, _ = _loaded(snapshot_dir, models=("svi", "essvi"))
    eng.recalibrate()
    u = eng._u["BTC"]
    model = u.results["essvi_model"]
    inp = eng._essvi_inputs(u, clock.now(), set())
    assert inp is not None and len(inp["quotes"]) >= 5
    q_all = merge_quotes(inp["quotes"])
    rmse, inside = fit_quality(q_all, model.implied_vol(q_all.k, q_all.t))
    assert surface_quality(model, inp["quotes"]) == (rmse, inside, len(q_all))
    assert eng.state("BTC").surface["essvi"]["n_used"] == len(q_all)


def test_slice_median_equals_numpy_median() -> None:
    """The slice cleaning's median equals np.median bit for bit (odd and even sizes,
    ties, the forward-like magnitudes of a book)."""
    import numpy as np

    from volcal.stream.fit import _median

    rng = np.random.default_rng(7)
    for n in range(1, 40):
        for a in (
            rng.lognormal(11.0, 0.3, n),
            np.round(rng.uniform(9e4, 1e5, n), 1),
            np.full(n, 97_123.5),
        ):
            assert _median(a) == float(np.median(a)) == float(np.nanmedian(np.r_[a, np.nan]))


def test_no_surface_refresh_in_the_turn_of_a_slice_chunk(snapshot_dir: Path) -> None:
    """A running engine never blocks its loop for a chunk of slice refits AND an eSSVI
    refresh at once: every refresh starts on a later loop turn than the last chunk
    (turns counted by a task that runs between them)."""
    from volcal.stream import engine as engine_mod

    eng, clock, items = _loaded(
        snapshot_dir, models=("svi", "essvi"), debounce_s=0.0, surface_interval_s=0.0
    )
    turn = [0]
    log: list[tuple[str, int]] = []
    rec, fit = engine_mod.StreamEngine._recalibrate, engine_mod.StreamEngine._fit_essvi

    def rec_logged(self: Any, *a: Any, **k: Any) -> Any:
        log.append(("slices", turn[0]))
        return rec(self, *a, **k)

    def fit_logged(self: Any, *a: Any, **k: Any) -> Any:
        log.append(("surface", turn[0]))
        return fit(self, *a, **k)

    async def main() -> None:
        async def count() -> None:
            while True:
                turn[0] += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count())
        eng.start()
        try:
            await until(lambda: bool(eng.state("BTC").expiries))
            await eng.wait_idle(30)
            ok = [x.expiry for x in eng.state("BTC").expiries if x.status == "ok"]
            for rnd in range(3):
                for e in ok:
                    nudge(eng, clock, items, e, 10 + rnd)
                await asyncio.sleep(0)
                await eng.wait_idle(30)
        finally:
            await eng.stop()
            counter.cancel()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_mod.StreamEngine, "_recalibrate", rec_logged)
        mp.setattr(engine_mod.StreamEngine, "_fit_essvi", fit_logged)
        asyncio.run(asyncio.wait_for(main(), 90))
    chunks = {t for kind, t in log if kind == "slices"}
    surfaces = [t for kind, t in log if kind == "surface"]
    assert len(chunks) >= 3 and len(surfaces) >= 2
    assert not chunks & set(surfaces), "a refresh ran in the turn of a slice chunk"
