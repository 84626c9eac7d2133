"""The streaming engine's worker processes (``volcal.stream.worker``): a refit there
gives the same numbers as in the engine's own process, and a failure there is counted,
guarded and published, never lost. Inputs: a real snapshot of ../shared/data."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from volcal.stream import ReplaySource, StreamConfig, StreamEngine
from volcal.stream.fit import essvi_refresh, merge_quotes
from volcal.stream.worker import ModelWorker, ModelWorkerError

SNAP = "deribit_options_snapshot_20260123T092319Z.csv"
pytestmark = pytest.mark.data


def _engine(snapshot_dir: Path, **cfg: Any) -> StreamEngine:
    base: dict[str, Any] = {"models": ("svi", "essvi")}
    base.update(cfg)
    eng = StreamEngine(ReplaySource([snapshot_dir / SNAP], speed=0), StreamConfig(**base))
    asyncio.run(eng.run())
    return eng


def test_config_refuses_unknown_executors() -> None:
    from volcal.errors import ParameterError

    assert StreamConfig().model_executor == "process"  # the default: its own process
    with pytest.raises(ParameterError, match="surface_executor"):
        StreamConfig(surface_executor="gpu")
    with pytest.raises(ParameterError, match="model_executor"):
        ModelWorker("gpu")


def test_heston_refit_on_the_worker_process_equals_in_process(snapshot_dir: Path) -> None:
    """Same quotes, same prior, same evaluation budget: the worker's parameters are the
    in-process ones to the last digit (deterministic calibration, pickled inputs)."""
    from volcal.calibration import calibrate

    eng = _engine(snapshot_dir)
    u = eng._u["BTC"]
    sets = [
        s.inp.quotes
        for s in u.slices.values()
        if s.inp is not None
        and s.inp.quotes is not None
        and len(s.inp.quotes) >= 5
        and s.inp.t >= 2 / 365
    ]
    q = merge_quotes(sets)
    kw: dict[str, Any] = {"max_nfev": 40, "max_time": 120.0}
    here = calibrate(q, "heston", **kw)

    async def there() -> Any:
        w = ModelWorker("process")
        try:
            await w.warm()
            assert w.pid is not None and w.pid != os.getpid()
            return await w.calibrate(q, "heston", **kw)
        finally:
            w.shutdown()

    res = asyncio.run(there())
    a, b = here.params.to_dict(), res.params.to_dict()
    names = ("v0", "kappa", "theta", "xi", "rho")
    assert a["model"] == b["model"]
    for k in names:
        assert b[k] == pytest.approx(a[k], rel=1e-12, abs=1e-14), k
    assert res.rmse_vol == pytest.approx(here.rmse_vol, rel=1e-12)
    assert res.nfev == here.nfev


def test_a_dead_worker_process_is_an_error_and_is_replaced() -> None:
    async def go() -> tuple[ModelWorker, int]:
        w = ModelWorker("process")
        try:
            with pytest.raises(ModelWorkerError, match="worker process died"):
                await w.run(os._exit, 3)  # the worker dies mid-job
            assert w.failures == 1
            pid = await w.run(os.getpid)  # the next job starts a new worker
            return w, pid
        finally:
            w.shutdown()

    w, pid = asyncio.run(go())
    assert pid != os.getpid() and w.started == 2


def test_a_failing_model_refit_is_counted_guarded_and_published(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def died(self: ModelWorker, *args: Any, **kwargs: Any) -> Any:
        raise ModelWorkerError("the model worker process died (test)")

    async def no_warm(self: ModelWorker) -> None:
        return None

    monkeypatch.setattr(ModelWorker, "calibrate", died)
    monkeypatch.setattr(ModelWorker, "warm", no_warm)
    seen: list[dict[str, Any]] = []

    async def go() -> StreamEngine:
        eng = StreamEngine(
            ReplaySource([snapshot_dir / SNAP], speed=0),
            StreamConfig(models=("svi", "heston")),
        )

        async def watch() -> None:
            async for p in eng.subscribe("BTC"):
                if p.get("type") == "surface" and p.get("model") == "heston":
                    seen.append(p)

        w = asyncio.create_task(watch())
        await asyncio.wait_for(eng.run(), 120)
        w.cancel()
        return eng

    eng = asyncio.run(go())
    m = eng.metrics()
    assert m["calibrations"]["heston"].get("failed", 0) >= 1
    assert "ok" not in m["calibrations"]["heston"]
    assert m["guards"]["BTC"]["model_worker_died"] >= 1
    hes = eng.state("BTC").surface["heston"]
    assert hes["status"] == "failed" and "worker process died" in hes["message"]
    assert seen and seen[-1]["status"] == "failed"
    # the slices were not affected
    assert m["calibrations"]["svi"]["ok"] > 0


def test_essvi_refresh_on_the_worker_process_equals_inline(snapshot_dir: Path) -> None:
    eng = _engine(snapshot_dir)
    u = eng._u["BTC"]
    now = eng.clock.now()
    inp = eng._essvi_inputs(u, now, set(u.slices))
    assert inp is not None and len(inp["expiries"]) >= 5
    here = essvi_refresh(**inp)

    async def there() -> Any:
        w = ModelWorker("process")
        try:
            return await w.run(essvi_refresh, **inp)
        finally:
            w.shutdown()

    res = asyncio.run(there())
    assert res.error is None and here.error is None
    assert res.expiries == here.expiries and res.n_refit == here.n_refit == len(inp["expiries"])
    for e in here.expiries:
        np.testing.assert_allclose(res.nodes[e], here.nodes[e], rtol=1e-12)
        np.testing.assert_allclose(res.conv[e], here.conv[e], rtol=1e-12)
    assert res.rmse_vol == pytest.approx(here.rmse_vol, rel=1e-12)
    # the engine's own inline refresh of the same slices published the same surface
    pub = eng.state("BTC").surface["essvi"]
    assert pub["status"] == "ok"
    assert len(pub["params"]["theta"]) == len(here.expiries)


def test_engine_with_the_surface_on_a_worker_process(snapshot_dir: Path) -> None:
    """The whole engine with eSSVI on the worker: a surface is published, counted, and
    the replay's messages are all accounted for."""
    inline = _engine(snapshot_dir)
    eng = _engine(snapshot_dir, surface_executor="process")
    s_in, s_w = inline.state("BTC").surface["essvi"], eng.state("BTC").surface["essvi"]
    assert s_w["status"] == "ok" and eng.metrics()["calibrations"]["essvi"]["ok"] >= 1
    assert s_w["params"]["expiry"] == s_in["params"]["expiry"]
    assert s_w["rmse_vol"] == pytest.approx(s_in["rmse_vol"], abs=0.002)
    m = eng.metrics()["messages"]
    assert m["received"] == m["applied_total"] + sum(m["dropped"].values())
    assert eng.metrics()["surface_worker"]["kind"] == "process"


def test_svi_pillars_equal_smile_stats_on_real_slices(snapshot_dir: Path) -> None:
    """The engine's closed-form ATM / RR25 / BF25 are smile_stats' to rounding on every
    live slice of a real snapshot (smile_stats is the reference: scan + bisection)."""
    from volcal.calibration.smile_stats import smile_stats, svi_pillars

    eng = _engine(snapshot_dir, models=("svi",))
    n = 0
    for s in eng._u["BTC"].slices.values():
        if s.svi is None or s.inp is None or not s.inp.t > 0:
            continue
        ref, got = smile_stats(s.svi, s.inp.t), svi_pillars(s.svi, s.inp.t)
        assert got is not None
        for f in ("atm_vol", "rr25", "bf25", "k_call25", "k_put25"):
            assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-10, abs=1e-12), f
        n += 1
    assert n >= 8


@pytest.mark.parametrize(
    "params",
    [
        {"a": 0.04, "b": 0.1, "rho": -0.3, "m": 0.05, "sigma": 0.2},
        {"a": 0.001, "b": 0.05, "rho": 0.6, "m": -0.1, "sigma": 0.05},
        {"a": 0.2, "b": 0.4, "rho": -0.9, "m": 0.3, "sigma": 0.5},
        {"a": 0.0, "b": 0.0001, "rho": 0.0, "m": 0.0, "sigma": 1.0},  # flat: 1 vol point
    ],
)
@pytest.mark.parametrize("t", [2 / 365, 0.1, 1.5])
def test_svi_pillars_equal_smile_stats_or_defer(params: dict[str, float], t: float) -> None:
    from volcal.calibration.smile_stats import smile_stats, svi_pillars
    from volcal.models.svi import SVI

    svi = SVI(**params)
    got = svi_pillars(svi, t)
    if got is None:  # not monotone on the scan grid: the engine uses smile_stats
        return
    ref = smile_stats(svi, t)
    for f in ("atm_vol", "rr25", "bf25", "k_call25", "k_put25"):
        assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-10, abs=1e-12), f


SNAP2 = "deribit_options_snapshot_20260123T153525Z.csv"


def _two_snapshots(snapshot_dir: Path, **cfg: Any) -> StreamEngine:
    """The engine fits the first real snapshot, then the second one (released by the
    test once the first is fitted): every slice is refitted warm at least once."""
    from serve_helpers import GatedReplay

    src = GatedReplay([snapshot_dir / SNAP, snapshot_dir / SNAP2], released=1)
    eng = StreamEngine(src, StreamConfig(**{"models": ("svi",), "debounce_s": 0.0, **cfg}))

    async def go() -> None:
        eng.start()
        await asyncio.sleep(0.2)
        await eng.wait_idle(60)
        src._bump(1)
        await asyncio.sleep(0.2)
        await eng.wait_idle(60)
        await eng.stop()

    asyncio.run(asyncio.wait_for(go(), 120))
    return eng


def test_cold_refits_run_on_the_slice_worker_and_seed_the_slice(snapshot_dir: Path) -> None:
    """cold_every=1: every refit after the first asks for a cold fit; it runs on the
    slice worker (a process), and every slice of the second snapshot is still fitted."""
    eng = _two_snapshots(snapshot_dir, cold_every=1)
    m = eng.metrics()
    assert m["slice_worker"]["kind"] == "process" and m["slice_worker"]["started"] == 1
    assert m["slice_worker"]["failures"] == 0
    assert m["calibrations"]["svi"]["ok"] > 0 and "cold_failed" not in m["calibrations"]["svi"]
    st = eng.state("BTC")
    assert sum(e.status == "ok" for e in st.expiries) >= 8
    assert max(e.n_fits for e in st.expiries) >= 2


def test_a_failed_warm_search_holds_the_slice_until_its_cold_fit_is_back(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from volcal.stream import engine as engine_mod
    from volcal.stream.fit import warm_svi

    def no_warm(q: Any, prev: Any, *, cold: bool = False, cold_fallback: bool = True) -> Any:
        if not cold_fallback:
            return None  # the warm search "fails" every time
        return warm_svi(q, prev, cold=cold)

    monkeypatch.setattr(engine_mod, "warm_svi", no_warm)
    eng = _two_snapshots(snapshot_dir)
    g = eng.metrics()["guards"]["BTC"]
    cal = eng.metrics()["calibrations"]["svi"]
    assert g["cold_refit_pending"] >= 5 and cal["held"] >= g["cold_refit_pending"]
    # the seeds came back; the warm search from them "failed" too, so the cold fit ran
    # in the loop (the bounded fallback) and the slices were refitted, none left held
    st = eng.state("BTC")
    assert sum(e.status == "ok" for e in st.expiries) >= 8
    assert not any("cold_refit_pending" in e.reasons for e in st.expiries)


def test_a_failing_cold_refit_is_counted_and_guarded(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(self: ModelWorker, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise ModelWorkerError("the model worker process died (test)")

    monkeypatch.setattr(ModelWorker, "run", boom)
    eng = _two_snapshots(snapshot_dir, cold_every=1)
    m = eng.metrics()
    assert m["calibrations"]["svi"]["cold_failed"] >= 5
    assert m["guards"]["BTC"]["cold_refit_failed"] == m["calibrations"]["svi"]["cold_failed"]
    assert m["calibrations"]["svi"]["ok"] > 0  # the warm fits went on


def test_essvi_node_pillars_equal_slice_conventions(snapshot_dir: Path) -> None:
    """The eSSVI conventions per node in closed form (the node's slice as raw SVI) are
    the surface's own slice_conventions to rounding, on the real surface's nodes."""
    from volcal.calibration.ssvi import slice_conventions
    from volcal.models.ssvi import ESSVI
    from volcal.stream.fit import node_pillars

    eng = _engine(snapshot_dir)
    model = eng._u["BTC"].results["essvi_model"]
    assert isinstance(model, ESSVI) and len(model.t) >= 8
    atm, rr, bf = slice_conventions(model, np.asarray(model.t), "forward")
    for i, t in enumerate(model.t):
        got = node_pillars((model.theta[i], model.rho[i], model.psi[i]), t)
        assert got is not None
        np.testing.assert_allclose(got, (atm[i], rr[i], bf[i]), rtol=1e-9, atol=1e-12)
    assert node_pillars((0.04, 1.0, 0.2), 0.5) is None  # degenerate: |rho| = 1


def _spin_then_sleep(spin_s: float, sleep_s: float) -> str:
    import time

    end = time.thread_time() + spin_s
    while time.thread_time() < end:
        pass
    time.sleep(sleep_s)
    return "done"


def test_worker_reports_the_cpu_of_a_fit_apart_from_its_wall_time() -> None:
    """The fit's CPU on the worker (``last_on_worker_cpu_s``) excludes the time it waits
    (for a core, or here asleep); the wall (``last_on_worker_s``) includes it."""
    from volcal.stream.worker import ModelWorker, timed_cpu

    res, wall, cpu = timed_cpu(_spin_then_sleep, 0.02, 0.1)
    assert res == "done" and wall >= 0.12 and 0.02 <= cpu < 0.1
    w = ModelWorker("thread")
    import volcal.calibration as cal

    orig = cal.calibrate
    cal.calibrate = lambda *a, **k: _spin_then_sleep(0.02, 0.1)  # type: ignore[assignment]
    try:
        assert asyncio.run(w.calibrate("q", "svi_surface")) == "done"
    finally:
        cal.calibrate = orig
        w.shutdown()
    assert w.last_on_worker_s >= 0.12
    assert 0.02 <= w.last_on_worker_cpu_s < 0.1
