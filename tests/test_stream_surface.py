"""The streaming engine publishes the arbitrage-free SVI surface by default.

On a replay of real Deribit snapshots (../shared/data) the published per-expiry slices
(``fit="surface"``, model ``svi_surface``, refitted on the engine's worker process) are
free of static arbitrage on the dense grid of :func:`volcal.check_arbitrage` (the
checker the svi_surface tests use), the free slices stay available next to them (and
on the same data are not arbitrage-free together, so the check can fail), the
websocket patches carry the same rows, the store records the svi_surface
calibrations, and a failing or uncertified surface fit falls back to the free slices
with its reason code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from volcal.errors import ParameterError
from volcal.models.svi import SVI, SVISurface
from volcal.stream import ReplaySource, StreamConfig, StreamEngine
from volcal.stream.sink import StoreWriter, ThreadedSink
from volcal.stream.state import free_view
from volcal.surface import VolSurface, check_arbitrage

pytestmark = pytest.mark.data

SNAPS = (
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
)


def _run(eng: StreamEngine) -> list[dict[str, Any]]:
    """Run the engine over its (finite) source; every message a subscriber got."""

    async def main() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []

        async def listen() -> None:
            async for m in eng.subscribe("BTC"):
                got.append(m)

        task = asyncio.create_task(listen())
        await asyncio.sleep(0)
        await eng.run()
        await asyncio.wait_for(task, 10.0)
        return got

    return asyncio.run(main())


class _Recording(ThreadedSink):
    """The store's threaded sink, remembering the model of every record submitted."""

    def __init__(self, writer: Any) -> None:
        super().__init__(writer)
        self.models: list[str] = []

    def submit(self, record: Any) -> bool:
        self.models.append(record.model)
        return super().submit(record)


@pytest.fixture(scope="module")
def replayed(snapshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("store") / "volcal.duckdb"
    sink = _Recording(StoreWriter(store))
    eng = StreamEngine(
        ReplaySource([snapshot_dir / s for s in SNAPS], currency="BTC", speed=0),
        # the default models without the Fourier ones (their worker is not under test)
        StreamConfig(models=("svi", "svi_surface", "essvi"), sink=sink, store_interval_s=0.0),
    )
    msgs = _run(eng)
    sink.close()
    latest = StoreWriter(store).latest("BTC", "svi_surface")
    return {
        "engine": eng,
        "state": eng.state("BTC").to_dict(),
        "msgs": msgs,
        "stored": latest,
        "submitted": sink.models,
    }


def _surface_of(rows: list[dict[str, Any]]) -> SVISurface:
    rows = sorted(rows, key=lambda r: r["t"])
    return SVISurface(
        expiries=tuple(r["expiry"] for r in rows),
        t=tuple(r["t"] for r in rows),
        forwards=tuple(r["forward"] for r in rows),
        smiles=tuple(SVI(**r["params"]) for r in rows),
    )


def test_default_config_and_serve_models_include_the_surface() -> None:
    assert "svi_surface" in StreamConfig().models
    assert StreamConfig().svi_surface_executor == "process"
    with pytest.raises(ParameterError, match="svi_surface_executor"):
        StreamConfig(svi_surface_executor="thread")


def test_published_slices_are_the_arbitrage_free_surface(replayed: dict[str, Any]) -> None:
    st, eng = replayed["state"], replayed["engine"]
    rows = [r for r in st["expiries"] if r["status"] == "ok"]
    assert len(rows) >= 8
    for r in rows:
        assert r["fit"] == "surface" and r["fit_reason"] is None, r
        assert r["model"] == "svi_surface" and r["free"]["model"] == "svi"
        c = r["constraint"]
        assert c["moved"] == (c["how"] != "free")
        if not c["moved"]:  # the free fit was admissible: the same smile, cost 0
            assert c["cost_vol"] == 0.0
    assert any(r["constraint"]["moved"] for r in rows)  # the conditions bind on this day
    # the published slices together: no static arbitrage on the dense grid
    rep = check_arbitrage(VolSurface.from_model(_surface_of(rows)))
    assert rep.ok, rep
    # the free slices of the same expiries are not arbitrage-free together (the check
    # above can fail: it is not vacuous on this data)
    free_rows = [free_view(r) for r in rows]
    assert not check_arbitrage(VolSurface.from_model(_surface_of(free_rows))).ok
    # the rows are the engine's last svi_surface fit, slice for slice
    res = eng._u["BTC"].results["svi_surface"]
    by_label = {s.expiry: s for s in res.slices}
    for r in rows:
        sf = by_label[r["expiry"]]
        assert r["params"] == pytest.approx(dict(sf.params), rel=0, abs=0)
        assert r["atm_vol"] == sf.atm_vol and r["rr25"] == sf.rr25 and r["bf25"] == sf.bf25
    surf = st["surface"]["svi_surface"]
    assert surf["status"] in ("ok", "degraded") and surf["certified"] is True
    assert surf["constraint_cost_vol"] == pytest.approx(res.extra["constraint_cost_vol"])
    lat = eng.metrics()["latency_ms"]
    assert lat["tick_to_svi_surface"]["count"] >= 1 and lat["svi_surface_compute"]["count"] >= 1
    # the fit's CPU on its worker, one per refresh on the worker (never above its wall)
    cpu, wall = lat["svi_surface_on_worker_cpu"], lat["svi_surface_on_worker"]
    assert cpu["count"] == wall["count"] >= 1 and cpu["p50_ms"] <= wall["p50_ms"] * 1.05 + 1
    assert eng.metrics()["svi_surface_worker"]["kind"] == "process"
    assert eng.metrics()["calibrations"]["svi_surface"].get("ok", 0) >= 1


def test_free_slices_stay_available(replayed: dict[str, Any]) -> None:
    st, eng = replayed["state"], replayed["engine"]
    u = eng._u["BTC"]
    moved = next(r for r in st["expiries"] if r["fit"] == "surface" and r["constraint"]["moved"])
    free = free_view(moved)
    assert free["fit"] == "free" and free["fit_reason"] == "requested" and "free" not in free
    sl = next(
        s
        for s in u.slices.values()
        if s.est is not None and s.est.to_dict()["expiry"] == moved["expiry"]
    )
    assert sl.svi is not None
    assert free["params"] == {n: float(getattr(sl.svi, n)) for n in SVI.param_names}
    assert free["params"] != moved["params"]
    # /v1/iv's engine call: the surface's slice by default, the free one on request
    k = np.array([0.8, 1.0, 1.25]) * moved["forward"]
    a = eng.iv("BTC", moved["expiry"], k)
    b = eng.iv("BTC", moved["expiry"], k, fit="free")
    assert a["fit"] == "surface" and a["model"] == "svi_surface" and a["fit_reason"] is None
    assert b["fit"] == "free" and b["model"] == "svi" and b["fit_reason"] == "requested"
    t = a["t"]
    x = np.log(k / moved["forward"])
    want_a = np.sqrt(SVI(**moved["params"]).total_variance(x) / t)
    want_b = np.sqrt(sl.svi.total_variance(x) / t)
    assert a["iv"] == pytest.approx(want_a.tolist(), rel=1e-12)
    assert b["iv"] == pytest.approx(want_b.tolist(), rel=1e-12)
    assert a["iv"] != b["iv"]
    with pytest.raises(ParameterError, match="fit must be"):
        eng.iv("BTC", moved["expiry"], k, fit="best")


def test_patches_carry_the_surface_rows(replayed: dict[str, Any]) -> None:
    msgs, st = replayed["msgs"], replayed["state"]
    patches = [m for m in msgs if m.get("type") == "patch" and "fit" in m]
    # before the first surface fit: the free slices, said so
    assert patches[0]["fit"] == "free" and patches[0]["fit_reason"] == "surface_pending"
    assert any(m.get("type") == "surface" and m.get("model") == "svi_surface" for m in msgs)
    last: dict[str, dict[str, Any]] = {}
    for m in patches:
        last[m["expiry"]] = m
    for r in st["expiries"]:
        p = last[r["expiry"]]
        for key in ("model", "params", "atm_vol", "rr25", "bf25", "rmse_vol", "fit", "free"):
            assert p[key] == r[key], (key, r["expiry"])


def test_store_records_the_svi_surface_calibrations(replayed: dict[str, Any]) -> None:
    stored = replayed["stored"]
    assert stored is not None and stored["model"] == "svi_surface"
    eng = replayed["engine"]
    n_fits = sum(eng.metrics()["calibrations"]["svi_surface"].values())
    # store_interval_s=0: every good surface fit is submitted, as the svi ones are
    assert replayed["submitted"].count("svi_surface") == n_fits >= 1
    assert "svi" in replayed["submitted"]
    assert stored["snapshot_time"] is not None and 0 < float(stored["rmse_vol"]) < 2.0
    # (latest() of several fits at one snapshot time may be any of them)
    assert stored["slices"] and all(
        set(json.loads(sl["params"])) == set(SVI.param_names) for sl in stored["slices"]
    )


def _inline_engine(snapshot_dir: Path) -> StreamEngine:
    return StreamEngine(
        ReplaySource([snapshot_dir / SNAPS[0]], currency="BTC", speed=0),
        StreamConfig(models=("svi", "svi_surface"), svi_surface_executor="inline"),
    )


def test_failing_surface_fit_falls_back_with_its_reason(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import volcal.stream.engine as engine_mod

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ArithmeticError("injected failure")

    monkeypatch.setattr(engine_mod, "calibrate_quiet", boom)
    eng = _inline_engine(snapshot_dir)
    _run(eng)
    st = eng.state("BTC").to_dict()
    rows = [r for r in st["expiries"] if r["status"] == "ok"]
    assert rows
    for r in rows:
        assert r["fit"] == "free" and r["fit_reason"] == "surface_failed" and r["model"] == "svi"
        assert r["constraint"] is None and r["params"] == r["free"]["params"]
    surf = st["surface"]["svi_surface"]
    assert surf["status"] == "failed" and "injected failure" in surf["message"]
    assert st["guards"]["svi_surface_failed"] >= 1
    assert eng.metrics()["calibrations"]["svi_surface"]["failed"] >= 1


def test_uncertified_surface_falls_back_with_its_reason(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import volcal.stream.engine as engine_mod

    real = engine_mod.calibrate_quiet

    def uncertified(*args: Any, **kwargs: Any) -> Any:
        res = real(*args, **kwargs)
        passes = {**res.extra["passes"], "certified": False}
        return dataclasses.replace(res, extra={**res.extra, "passes": passes})

    monkeypatch.setattr(engine_mod, "calibrate_quiet", uncertified)
    eng = _inline_engine(snapshot_dir)
    _run(eng)
    st = eng.state("BTC").to_dict()
    rows = [r for r in st["expiries"] if r["status"] == "ok"]
    assert rows and all(r["fit_reason"] == "surface_uncertified" for r in rows)
    assert st["surface"]["svi_surface"]["reason"] == "surface_uncertified"
    assert eng.metrics()["calibrations"]["svi_surface"]["uncertified"] >= 1


def test_without_the_surface_model_the_rows_say_so(snapshot_dir: Path) -> None:
    eng = StreamEngine(
        ReplaySource([snapshot_dir / SNAPS[0]], currency="BTC", speed=0),
        StreamConfig(models=("svi",)),
    )
    _run(eng)
    rows = eng.state("BTC").to_dict()["expiries"]
    assert rows and all(r["fit"] == "free" and r["fit_reason"] == "surface_off" for r in rows)
    assert all(r["model"] == "svi" for r in rows)
    assert "svi_surface" not in eng.metrics()["calibrations"]
    assert math.isfinite(rows[0]["free"]["atm_vol"])


def test_an_expiry_new_to_the_surface_starts_from_its_free_slice(
    replayed: dict[str, Any],
) -> None:
    """The warm start of a refresh is the previous surface; an expiry that surface did
    not have starts from the engine's free slice (not a cold search, whose fallback
    took hundreds of ms)."""
    from types import SimpleNamespace

    from volcal.market.chain import expiry_label
    from volcal.models.svi import SVISmiles

    eng = replayed["engine"]
    u = eng._u["BTC"]
    prev = u.results["svi_surface"]
    full = prev.params
    drop = full.expiries[1]  # as if the previous surface had not fitted this expiry
    keep = [i for i, e in enumerate(full.expiries) if e != drop]
    partial = SVISmiles(
        expiries=tuple(full.expiries[i] for i in keep),
        t=tuple(full.t[i] for i in keep),
        forwards=tuple(full.forwards[i] for i in keep),
        smiles=tuple(full.smiles[i] for i in keep),
    )
    try:
        u.results["svi_surface"] = SimpleNamespace(params=partial)
        inp = eng._svs_inputs(u)
        assert inp is not None
        _, start, _ = inp
        q = inp[0]
        with_quotes = [s for _, s in eng._fitted_slices(u) if s.inp and s.inp.quotes]
        free = {expiry_label(x): s.svi for x, s in zip(q.expiries, with_quotes, strict=True)}
        assert drop in start.expiries
        assert start.smiles[start.expiries.index(drop)] is free[drop]
        for lab in partial.expiries:  # the others: the previous surface's smiles
            assert (
                start.smiles[start.expiries.index(lab)]
                is partial.smiles[partial.expiries.index(lab)]
            )
        assert list(start.t) == sorted(start.t)
        # with the whole previous surface the start is that surface itself
        u.results["svi_surface"] = prev
        assert eng._svs_inputs(u)[1] is full
    finally:
        u.results["svi_surface"] = prev
