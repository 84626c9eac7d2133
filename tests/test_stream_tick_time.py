"""What a published update's tick time is, and the engine's start behind its workers.

On a real snapshot of ../shared/data (the quote moves after it are test inputs):

- a patch's ``latency_ms`` is measured from the newest tick the update answers: a slice
  refit from its expiry's newest change, a forced pass (index jump) from the index tick
  for an expiry that did not change, a refit on the clock alone (no new tick) has none;
  the per-expiry patches after an arbitrage-free surface refresh carry the surface's
  newest tick (all the same), and only the expiries whose row the surface changed get
  one;
- the engine starts its worker processes and reads the source only once they are ready
  (bounded by ``worker_ready_s``; a worker not ready by then is flagged).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest
from stream_helpers import nudge

from volcal.stream import ManualClock, StreamConfig, StreamEngine
from volcal.stream.sources import snapshot_frames

SNAP = "deribit_options_snapshot_20260123T092319Z.csv"
# its first expiry (08:00 the same day) has only quotes too near expiry to fit: a row the
# arbitrage-free surface leaves out
SNAP_NEAR = "deribit_options_snapshot_20260123T035907Z.csv"
pytestmark = pytest.mark.data


class _Silent:
    def __init__(self) -> None:
        self.started_wall = math.nan  # when the engine first asked for a message

    async def messages(self) -> Any:
        self.started_wall = time.perf_counter()
        await asyncio.Event().wait()  # a live feed that sends nothing more
        yield None  # pragma: no cover


async def until(cond: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def _loaded(
    snapshot_dir: Path, snap: str = SNAP, **cfg: Any
) -> tuple[StreamEngine, ManualClock, dict[str, Any]]:
    frames = list(snapshot_frames([snapshot_dir / snap], "BTC"))
    clock = ManualClock(frames[0][0] + 1.0)
    base: dict[str, Any] = {"models": ("svi",), "clock": clock, "debounce_s": 0.0}
    base.update(cfg)
    eng = StreamEngine(_Silent(), StreamConfig(**base))
    for recv, f in frames:
        eng.handle(f, recv)
    items = {it["instrument_name"]: it for it in frames[-1][1]["result"]}
    return eng, clock, items


def _recording(mp: pytest.MonkeyPatch) -> list[tuple[float, dict[str, Any]]]:
    """Every published message with the wall time it was published."""
    from volcal.stream import engine as engine_mod

    log: list[tuple[float, dict[str, Any]]] = []
    pub = engine_mod.StreamEngine._publish

    def rec(self: Any, u: Any, d: dict[str, Any]) -> None:
        log.append((time.perf_counter(), d))
        pub(self, u, d)

    mp.setattr(engine_mod.StreamEngine, "_publish", rec)
    return log


def _ok_expiries(eng: StreamEngine) -> list[float]:
    return [e.expiry for e in eng.state("BTC").expiries if e.status == "ok" and e.n_used >= 10]


def test_forced_and_clock_refits_answer_their_own_tick(snapshot_dir: Path) -> None:
    eng, clock, items = _loaded(snapshot_dir)
    with pytest.MonkeyPatch.context() as mp:
        log = _recording(mp)

        async def main() -> None:
            eng.start()
            try:
                await until(lambda: bool(eng.state("BTC").expiries))
                await eng.wait_idle(30)
                await asyncio.sleep(0.4)  # the expiries' last changes are now >= 0.4 s old
                ok = _ok_expiries(eng)
                # an index jump (2 %) on a tick of one expiry: every expiry is refitted
                index = eng.book("BTC").index_price
                assert math.isfinite(index)
                n0 = len(log)
                w0 = nudge(eng, clock, items, ok[0], 1, index=1.02 * index)
                await eng.wait_idle(30)
                forced = [(t, d) for t, d in log[n0:] if d.get("type") == "patch" and "t" in d]
                labels = {e.to_dict()["expiry"] for e in eng.state("BTC").expiries}
                assert {d["expiry"] for _, d in forced} == labels  # every expiry refitted
                for t, d in forced:
                    # from the index tick, not from the expiry's last change 0.4 s before
                    assert 0 < d["latency_ms"] <= 1e3 * (t - w0) + 1e-6, d["expiry"]
                # a refit on the clock alone (as after a held quote's time or a cold seed):
                # no tick, so no tick latency, and nothing in the tick -> slice histogram
                n1, count = len(log), eng.metrics()["latency_ms"]["tick_to_slice"]["count"]
                eb = eng.book("BTC").expiries[ok[1]]
                eb.recheck_at = clock.now()
                eng._wake.set()
                await until(lambda: any(d.get("type") == "patch" for _, d in log[n1:]))
                again = [d for _, d in log[n1:] if d.get("type") == "patch"]
                assert again and all(d["latency_ms"] is None for d in again)
                assert eng.metrics()["latency_ms"]["tick_to_slice"]["count"] == count
            finally:
                await eng.stop()

        asyncio.run(asyncio.wait_for(main(), 120))


def test_surface_patches_carry_the_surface_tick(snapshot_dir: Path) -> None:
    eng, clock, items = _loaded(
        snapshot_dir,
        SNAP_NEAR,
        models=("svi", "svi_surface"),
        svi_surface_executor="inline",
        surface_interval_s=0.0,
    )
    with pytest.MonkeyPatch.context() as mp:
        log = _recording(mp)

        async def main() -> None:
            eng.start()
            try:
                await until(lambda: bool(eng.state("BTC").expiries))
                await eng.wait_idle(60)
                st = eng.state("BTC")
                assert st.surface["svi_surface"]["status"] == "ok"
                fitted = set(st.surface["svi_surface"]["fitted_expiries"])
                rows = {r["expiry"]: r for r in st.to_dict()["expiries"]}
                outside = {e for e, r in rows.items() if e not in fitted}
                assert fitted and outside  # (the snapshot has expiries the surface leaves out)
                ok = _ok_expiries(eng)
                for step in (1, 2):
                    n0 = len(log)
                    w0 = nudge(eng, clock, items, ok[0], step)
                    await eng.wait_idle(60)
                    label = next(
                        e.to_dict()["expiry"]
                        for e in eng.state("BTC").expiries
                        if e.expiry == ok[0]
                    )
                mine = [
                    d["latency_ms"]
                    for _, d in log[n0:]
                    if d.get("type") == "patch" and "source" not in d and d["expiry"] == label
                ]
                groups = _refreshes(log[n0:])
                assert mine and mine[0] is not None and groups
                answered = 0
                for grp in groups:
                    # only the expiries whose published row the surface changed
                    assert {d["expiry"] for _, d in grp} <= fitted
                    lat = {d["latency_ms"] for _, d in grp}
                    # one tick for all: the newest the surface was fitted from (the tick
                    # above; none for a refresh after refits on the clock alone),
                    # measured when the surface was published
                    assert len(lat) == 1, lat
                    (ms,) = lat
                    if ms is not None:
                        assert mine[0] < ms <= 1e3 * (grp[-1][0] - w0) + 1e-6
                        answered += 1
                assert answered >= 1
            finally:
                await eng.stop()

        asyncio.run(asyncio.wait_for(main(), 180))


def _refreshes(log: list[tuple[float, dict[str, Any]]]) -> list[list[tuple[float, Any]]]:
    """The per-expiry patches of each svi_surface refresh in ``log`` (those after its
    ``surface`` message)."""
    out: list[list[tuple[float, Any]]] = []
    for t, d in log:
        if d.get("type") == "surface" and d.get("model") == "svi_surface":
            out.append([])
        elif d.get("source") == "svi_surface":
            assert out, "a surface patch before its surface"
            out[-1].append((t, d))
    return [g for g in out if g]


def _fake_warm(delay: float | None) -> Any:
    async def warm(self: Any, job: Any = None) -> None:
        if delay is None:
            await asyncio.Event().wait()  # a worker that never gets ready
        await asyncio.sleep(delay)
        self.pid = 4242

    return warm


def test_engine_reads_the_source_once_its_workers_are_ready(snapshot_dir: Path) -> None:
    from volcal.stream.worker import ModelWorker

    src = _Silent()
    eng = StreamEngine(src, StreamConfig(models=("svi", "svi_surface")))

    async def main() -> None:
        t0 = time.perf_counter()
        eng.start()
        try:
            await until(lambda: src.started_wall == src.started_wall)
            assert src.started_wall - t0 >= 0.3
            w = eng.metrics()["workers"]
            assert w["ready"] is True and w["not_ready"] == [] and w["waited_s"] >= 0.3
        finally:
            await eng.stop()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ModelWorker, "warm", _fake_warm(0.3))
        mp.setattr(ModelWorker, "shutdown", lambda self: None)
        asyncio.run(asyncio.wait_for(main(), 30))


def test_a_worker_not_ready_in_time_is_flagged(snapshot_dir: Path) -> None:
    from volcal.stream.worker import ModelWorker

    src = _Silent()
    eng = StreamEngine(src, StreamConfig(models=("svi", "svi_surface"), worker_ready_s=0.2))

    async def main() -> None:
        t0 = time.perf_counter()
        eng.start()
        try:
            await until(lambda: src.started_wall == src.started_wall)
            assert 0.2 <= src.started_wall - t0 < 5.0  # bounded: read the source anyway
            w = eng.metrics()["workers"]
            assert w["ready"] is False and w["not_ready"] == ["svi_surface"]
            assert eng.metrics()["guards"]["BTC"]["worker_not_ready"] == 1
        finally:
            await eng.stop()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ModelWorker, "warm", _fake_warm(None))
        mp.setattr(ModelWorker, "shutdown", lambda self: None)
        asyncio.run(asyncio.wait_for(main(), 30))
    with pytest.raises(Exception, match="worker_ready_s"):
        StreamConfig(worker_ready_s=-1.0)
