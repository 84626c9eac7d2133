"""Guards of the streaming engine driven frame by frame (``engine.handle``) on a real
snapshot of ../shared/data; the moves applied afterwards are test inputs."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from volcal.stream import ManualClock, StreamConfig, StreamEngine
from volcal.stream.sources import snapshot_frames, ticker_frame

SNAP = "deribit_options_snapshot_20260123T092319Z.csv"
pytestmark = pytest.mark.data


class _Silent:
    async def messages(self) -> Any:
        if False:  # pragma: no cover
            yield None


def _loaded(snapshot_dir: Path, **cfg: Any) -> tuple[StreamEngine, ManualClock, dict[str, Any]]:
    frames = list(snapshot_frames([snapshot_dir / SNAP], "BTC"))
    t = frames[0][0]
    clock = ManualClock(t + 1.0)
    base: dict[str, Any] = {"models": ("svi",), "clock": clock, "debounce_s": 0.0}
    base.update(cfg)
    eng = StreamEngine(_Silent(), StreamConfig(**base))
    for recv, f in frames:
        eng.handle(f, recv)
    eng.recalibrate()
    items = {it["instrument_name"]: it for it in frames[-1][1]["result"]}
    return eng, clock, items


def _expiry_with(eng: StreamEngine, min_used: int = 20) -> Any:
    return next(e for e in eng.state("BTC").expiries if e.status == "ok" and e.n_used >= min_used)


def test_param_jump_held_then_accepted(snapshot_dir: Path) -> None:
    # off-smile guard widened so that only the parameter guard acts
    eng, clock, items = _loaded(snapshot_dir, off_smile_min_vol=10.0, param_hold=2)
    e = _expiry_with(eng)
    eb = eng.book("BTC").expiries[e.expiry]
    ms = int(clock.now() * 1000)

    def shift(step: int) -> None:
        # test input: every quote of the expiry at 1.6x its price (the smile jumps up)
        for name in eb.instruments:
            it = items[name]
            if it["bid_price"] and it["ask_price"]:
                f = ticker_frame(
                    name,
                    ms + step,
                    1.6 * it["bid_price"],
                    1.6 * it["ask_price"],
                    it["mark_price"],
                    it["underlying_price"],
                    None,
                )
                eng.handle(f, clock.now())

    statuses = []
    for step in (1, 2, 3):
        shift(step)
        eng.recalibrate()
        statuses.append(next(x for x in eng.state("BTC").expiries if x.expiry == e.expiry))
    assert [s.status for s in statuses] == ["held", "held", "ok"]
    assert all("param_jump" in s.reasons for s in statuses)
    assert statuses[0].atm_vol == e.atm_vol  # last good fit kept while held
    assert statuses[2].atm_vol > e.atm_vol + 0.05  # the persistent move is accepted
    assert eng.state("BTC").guards["param_jump"] == 3


def test_expired_instruments_dropped_and_new_ones_picked_up(snapshot_dir: Path) -> None:
    eng, clock, items = _loaded(snapshot_dir)
    first = min(eng.book("BTC").expiries)
    n0 = eng.book("BTC").n_instruments
    # a new listing (test input: a strike the snapshot does not have) appears in the book
    new = "BTC-27MAR26-250000-C"
    assert new not in items
    eng.handle(
        ticker_frame(new, int(clock.now() * 1000), 0.0005, 0.0007, 0.0006, 90000.0, None),
        clock.now(),
    )
    assert eng.book("BTC").n_instruments == n0 + 1
    clock.set(first + 1.0)
    eng.check()
    assert first not in eng.book("BTC").expiries
    assert all(x.expiry != first for x in eng.state("BTC").expiries)
    assert eng.state("BTC").guards["expired_dropped"] == 1
    # a late tick of an expired instrument is counted, not applied
    name = next(n for n in items if n.startswith("BTC-24JAN26"))
    assert (
        eng.handle(ticker_frame(name, int(clock.now() * 1000), 0.01, 0.02, 0.015, 89000.0, None))
        == "expired_instrument"
    )
    m = eng.metrics()["messages"]
    assert m["received"] == m["applied_total"] + sum(m["dropped"].values())


def test_slow_subscriber_is_conflated(snapshot_dir: Path) -> None:
    async def main() -> None:
        eng, _clock, _items = _loaded(snapshot_dir, queue_size=3)
        sub = eng.subscribe("BTC")
        first = await sub.__anext__()
        assert first["type"] == "state" and len(first["expiries"]) > 5
        for _ in range(3):
            eng.recalibrate()  # many patches, nobody reading
        nxt = await sub.__anext__()
        assert nxt["type"] == "state" and nxt["conflated"] is True
        assert eng.state("BTC").guards["subscriber_conflated"] >= 1
        await sub.aclose()
        assert eng.metrics()["subscribers"] == 0

    asyncio.run(main())


def test_state_to_dict_is_json_safe_and_complete(snapshot_dir: Path) -> None:
    import json

    eng, _clock, _items = _loaded(snapshot_dir)
    d = eng.state("BTC").to_dict()
    json.dumps(d, allow_nan=False)
    for key in ("snapshot_time", "stale", "age_s", "expiries", "surface", "guards", "latency"):
        assert key in d
    e = next(x for x in d["expiries"] if x["status"] == "ok")
    for key in (
        "expiry",
        "t",
        "forward",
        "model",
        "params",
        "atm_vol",
        "rr25",
        "bf25",
        "rmse_vol",
        "n_used",
        "status",
    ):
        assert key in e
    assert set(e["params"]) == {"a", "b", "rho", "m", "sigma"}
    # the pillars say which 25-delta they use, as CalibrationResult slices do
    assert e["delta_convention"] == "forward"
    assert math.isclose(d["age_s"], 1.0, abs_tol=0.01)
    assert "BTC surface" in eng.state("BTC").summary()


def test_chain_view_of_one_expiry_and_quote_ages(snapshot_dir: Path) -> None:
    import numpy as np

    import volcal

    eng, clock, items = _loaded(snapshot_dir)
    e = _expiry_with(eng)
    eb = eng.book("BTC").expiries[e.expiry]
    ch = eng.chain("BTC", [e.expiry])
    assert len(ch) == eb.n and ch.expiries.size == 1
    for j, name in enumerate(ch.instrument):
        it = items[name]
        assert ch.bid[j] == (it["bid_price"] if it["bid_price"] else ch.bid[j])
        assert (ch.ask[j] == it["ask_price"]) or (it["ask_price"] is None and np.isnan(ch.ask[j]))
    # the view is an ordinary chain: the batch pipeline accepts it
    fit = volcal.calibrate(volcal.clean(ch), "svi")
    assert fit.slices[0].atm_vol == pytest.approx(e.atm_vol, abs=0.02)
    clock.advance(30.0)
    q = eng.book("BTC").quote(ch.instrument[0], clock.now())
    assert q is not None and q["age_s"] == pytest.approx(31.0, abs=0.01)


def test_iv_at_strikes_matches_the_slice(snapshot_dir: Path) -> None:
    from volcal.errors import ParameterError

    eng, _clock, _items = _loaded(snapshot_dir)
    e = _expiry_with(eng)
    label = e.to_dict()["expiry"][:10]
    out = eng.iv("BTC", label, [e.forward, 1.2 * e.forward])
    assert out["iv"][0] == pytest.approx(e.atm_vol, rel=1e-3)  # ATM-forward = the slice's ATM vol
    assert out["iv"][1] > 0 and out["status"] == "ok"
    with pytest.raises(ParameterError, match="no fitted BTC expiry"):
        eng.iv("BTC", "2031-01-01", [1.0])
    with pytest.raises(ParameterError, match="finite numbers > 0"):
        eng.iv("BTC", label, [-5.0])
    with pytest.raises(ParameterError, match="must be numbers"):
        eng.iv("BTC", label, ["abc"])


@pytest.mark.slow
def test_heston_refit_on_a_worker_process(snapshot_dir: Path) -> None:
    """Spawns a worker process (its imports and a cold Heston fit: ~15 s here)."""
    from volcal.errors import ParameterError
    from volcal.stream import ReplaySource

    with pytest.raises(ParameterError, match="model_executor"):
        StreamConfig(model_executor="gpu")
    eng = StreamEngine(
        ReplaySource([snapshot_dir / SNAP], speed=0),
        StreamConfig(models=("svi", "heston"), model_executor="process"),
    )
    asyncio.run(eng.run())
    hes = eng.state("BTC").surface["heston"]
    assert hes["status"] == "ok" and set(hes["params"]) == {"v0", "kappa", "theta", "xi", "rho"}
    assert hes["rmse_vol"] < 10.0
    assert eng.metrics()["calibrations"]["heston"]["ok"] >= 1
    assert hes["warm"] is True  # the final refit started from the first one


def test_a_crashing_fit_stops_the_engine_with_its_error(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit that raises (a bug, an input nobody foresaw) is not swallowed by a dead
    background task: the engine keeps the error and stops, as for a failed source."""
    from volcal.stream import engine as engine_mod

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fit exploded")

    monkeypatch.setattr(engine_mod, "slice_quotes", boom)

    class _Replay:
        async def messages(self) -> Any:
            for item in snapshot_frames([snapshot_dir / SNAP], "BTC"):
                yield item

    async def go() -> StreamEngine:
        eng = StreamEngine(_Replay(), StreamConfig(models=("svi",), debounce_s=0.0))
        await asyncio.wait_for(eng.run(), 60)
        return eng

    eng = asyncio.run(go())
    assert isinstance(eng.error, RuntimeError) and "fit exploded" in str(eng.error)
