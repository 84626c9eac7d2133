"""Portfolio margin: hand-computed cases and the properties a margin rule must have."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_helpers import INDEX, synthetic_chain

from volcal.black import price
from volcal.errors import DataError, ParameterError
from volcal.risk import DeribitConfig, Portfolio, SpanConfig, margin, portfolio_greeks
from volcal.risk.valuation import resolve

INV = synthetic_chain("inverse")
LIN = synthetic_chain("linear")


def pf(*recs: tuple[str, float]) -> Portfolio:
    return Portfolio.from_records([{"instrument": n, "size": s} for n, s in recs])


# ---------------------------------------------------------------------- hand-computed
def test_span_long_inverse_perpetual_by_hand() -> None:
    """Coin P&L of a long inverse perpetual for a move m is q (1 - 1/(1+m)); the -1 x scan
    move (-16%) beats the -2 x scan extreme at 35%: 1/0.84 - 1 > 0.35 (1/0.68 - 1)."""
    res = margin(pf(("BTC-PERPETUAL", 2.0)), INV, "span")
    expected = 2.0 * INDEX * (1 / 0.84 - 1)
    assert res.initial == pytest.approx(expected, rel=1e-12)
    assert res.maintenance == pytest.approx(expected / 1.1, rel=1e-12)
    assert res.worst["spot_move"] == pytest.approx(-0.16)
    assert len(res.labels) == 16
    assert res.initial_coin == pytest.approx(2.0 * (1 / 0.84 - 1))


def test_span_linear_perpetual_by_hand() -> None:
    res = margin(pf(("BTC_USDC-PERPETUAL", -1.5)), LIN, "span")
    assert res.initial == pytest.approx(1.5 * INDEX * 0.16, rel=1e-12)
    assert res.worst["spot_move"] == pytest.approx(0.16)


def test_deribit_perpetuals_by_hand() -> None:
    """Linear: the +-16% range binds (extended -66% counts 0.5/(1 + 3 x 0.5) = 20%: 0.132).
    Inverse: the extended -66% move binds, 0.2 x (1/0.34 - 1) = 0.388 coin per coin."""
    lin = margin(pf(("BTC_USDC-PERPETUAL", 1.0)), LIN, "deribit")
    assert lin.initial == pytest.approx(0.16 * INDEX, rel=1e-12)
    inv = margin(pf(("BTC-PERPETUAL", 1.0)), INV, "deribit")
    assert inv.initial == pytest.approx(0.2 * (1 / 0.34 - 1) * INDEX, rel=1e-12)
    assert inv.maintenance == pytest.approx(0.8 * inv.initial, rel=1e-12)
    assert inv.worst["label"] == "extended spot -66%, vol up"
    assert len(inv.labels) == 27 + 8 + 2


def test_deribit_calendar_spread_needs_the_delta_shock() -> None:
    """Long March / short June linear futures: parallel moves only see the carry
    difference; the delta (roll) shock tilts each forward by 0.075 x T."""
    p = pf(("BTC_USDC-27MAR26", 1.0), ("BTC_USDC-26JUN26", -1.0))
    book = resolve(p, LIN)
    (fm, fj), (tm, tj) = book.forward, book.t
    cfg = DeribitConfig()
    candidates = [0.16 * (fj - fm)]  # +16%, long the cheaper leg
    for m in cfg.extended_moves:
        w = 0.5 / (1 + 3.0 * max(abs(m) - 0.16, 0.0))
        candidates.append(w * m * (fj - fm))
    candidates.append(fj * min(0.1, 0.075 * tj) - fm * min(0.1, 0.075 * tm))
    res = margin(p, LIN, "deribit")
    assert res.initial == pytest.approx(max(candidates), rel=1e-12)
    assert res.worst["label"].startswith("delta shock")
    assert margin(p, LIN, "span").initial == pytest.approx(0.16 * (fj - fm), rel=1e-12)


def test_span_short_call_by_hand() -> None:
    """The 16 SPAN scenarios of a short linear call, repriced with Black-76 here."""
    p = pf(("BTC_USDC-27MAR26-110000-C", -2.0))
    b = resolve(p, LIN)
    f, k, t, v = b.forward[0], b.strike[0], b.t[0], b.vol[0]
    base = price(f, k, t, v, True)
    losses = []
    for frac in (0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1, -1):
        for dv in (0.1, -0.1):
            losses.append(2.0 * (price(f * (1 + frac * 0.16), k, t, v + dv, True) - base))
    for m in (0.32, -0.32):
        losses.append(0.35 * 2.0 * (price(f * (1 + m), k, t, v, True) - base))
    res = margin(p, LIN, "span")
    assert res.loss == pytest.approx(np.array(losses), rel=1e-12)
    assert res.initial == pytest.approx(max(max(losses), 2 * 0.01 * INDEX), rel=1e-12)
    assert res.worst["label"].startswith("11:")  # +1 x scan, vol up


def test_deribit_short_put_by_hand() -> None:
    """Deribit vol shocks: sigma (1 + 0.5 (30/d)^p) (at least 50%) and sigma (1 - 0.25
    (30/d)^p), p = 0.13 beyond 30 days."""
    p = pf(("BTC_USDC-27MAR26-80000-P", -1.0))
    b = resolve(p, LIN)
    f, k, t, v = b.forward[0], b.strike[0], b.t[0], b.vol[0]
    d = t * 365
    assert d > 30
    s = (30 / d) ** 0.13
    up, down = max(v * (1 + 0.5 * s), 0.5), v * (1 - 0.25 * s)
    base = price(f, k, t, v, False)
    cands = [
        price(f * (1 + m), k, t, vol, False) - base
        for m in np.linspace(-0.16, 0.16, 9)
        for vol in (up, v, down)
    ]
    for m in (-0.66, -0.33, 0.5, 1, 2, 3, 4, 5):
        w = 0.5 / (1 + 3 * max(abs(m) - 0.16, 0))
        cands.append(w * (price(f * (1 + m), k, t, up, False) - base))
    tilt = min(0.1, 0.075 * t)
    cands += [
        price(f * (1 + tilt), k, t, v, False) - base,
        price(f * (1 - tilt), k, t, v, False) - base,
    ]
    res = margin(p, LIN, "deribit")
    assert res.scenario_risk == pytest.approx(max(cands), rel=1e-12)
    assert res.initial == pytest.approx(max(max(cands), 0.01 * INDEX), rel=1e-12)


def test_short_option_minimum_is_per_net_strike() -> None:
    """A short call against a long put of the same strike is not net short at the strike
    (Deribit minimum); SPAN's minimum counts every short option."""
    tiny = DeribitConfig(min_short_option=5.0)  # large, so that it binds
    short = margin(pf(("BTC-27MAR26-150000-C", -1.0)), INV, "deribit", tiny)
    assert short.minimum == pytest.approx(5.0 * INDEX)
    assert short.initial == short.minimum
    hedged = pf(("BTC-27MAR26-150000-C", -1.0), ("BTC-27MAR26-150000-P", 1.0))
    assert margin(hedged, INV, "deribit", tiny).minimum == 0.0
    span = margin(hedged, INV, "span", SpanConfig(short_option_minimum=5.0))
    assert span.minimum == pytest.approx(5.0 * INDEX)


def test_result_views_and_errors() -> None:
    res = margin(pf(("BTC-27MAR26-100000-C", -1.0), ("BTC-PERPETUAL", 0.5)), INV)
    assert res.contributions.sum() == pytest.approx(res.scenario_risk)
    d = res.to_dict()
    json.dumps(d)
    assert d["initial_usd"] == res.initial and len(d["scenarios"]) == 37
    assert "worst scenario" in res.summary()
    with pytest.raises(ParameterError):
        margin(pf(("BTC-PERPETUAL", 1.0)), INV, "cme")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        margin(pf(("BTC-PERPETUAL", 1.0)), INV, "span", DeribitConfig())
    with pytest.raises(ParameterError):
        DeribitConfig(price_range=-0.1)
    with pytest.raises(ParameterError):
        SpanConfig(price_scan=0.6)
    with pytest.raises(DataError, match="position 0"):
        margin(pf(("ETH-PERPETUAL", 1.0)), INV)
    with pytest.raises(DataError, match="OptionChain or a Market"):
        margin(pf(("BTC-PERPETUAL", 1.0)), "chain.csv")


# ---------------------------------------------------------------------- properties
_OPTIONS = [
    f"BTC-{e}-{k}-{cp}"
    for e in ("30JAN26", "27FEB26", "27MAR26", "26JUN26")
    for k in (70000, 85000, 95000, 105000, 130000)
    for cp in ("C", "P")
]
_ALL = [*_OPTIONS, "BTC-27MAR26", "BTC-26JUN26", "BTC-PERPETUAL"]
_size = st.floats(0.1, 5.0).map(lambda x: round(x, 2))
_signed = st.tuples(_size, st.booleans()).map(lambda p: p[0] if p[1] else -p[0])


def _book(draw_list: list[tuple[int, float]], names: list[str]) -> Portfolio:
    return pf(*((names[i], s) for i, s in draw_list))


_FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(
    st.lists(st.tuples(st.integers(0, len(_OPTIONS) - 1), _size), min_size=1, max_size=6),
    st.sampled_from(["deribit", "span"]),
)
def test_long_options_never_need_more_than_their_value(recs, method) -> None:
    p = _book(recs, _OPTIONS)
    res = margin(p, INV, method)
    value = portfolio_greeks(p, INV).total("value_coin") * INDEX
    assert res.minimum == 0.0
    assert res.initial <= value * (1 + 1e-12) + 1e-9


@_FAST
@given(
    st.lists(st.tuples(st.integers(0, len(_ALL) - 1), _signed), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, len(_ALL) - 1), _signed), min_size=1, max_size=5),
    st.sampled_from(["deribit", "span"]),
)
def test_margin_is_subadditive(a, b, method) -> None:
    pa, pb = _book(a, _ALL), _book(b, _ALL)
    both = margin(pa + pb, INV, method).initial
    assert both <= margin(pa, INV, method).initial + margin(pb, INV, method).initial + 1e-6


@_FAST
@given(
    st.lists(st.tuples(st.integers(0, len(_ALL) - 1), _signed), min_size=1, max_size=6),
    st.sampled_from(["deribit", "span"]),
    st.floats(0.1, 10.0),
)
def test_margin_is_positively_homogeneous_and_offsets_cancel(recs, method, lam) -> None:
    p = _book(recs, _ALL)
    base = margin(p, INV, method)
    assert margin(p.scaled(lam), INV, method).initial == pytest.approx(lam * base.initial, rel=1e-9)
    assert base.maintenance <= base.initial
    flat = margin(p + p.scaled(-1.0), INV, method)
    assert flat.scenario_risk == pytest.approx(0.0, abs=1e-6)
    if method == "deribit":
        assert flat.initial == pytest.approx(0.0, abs=1e-6)


def test_offsetting_positions_need_less_than_the_sum() -> None:
    """A call spread and a delta-hedged short call need less than their legs alone."""
    for method in ("deribit", "span"):
        short = pf(("BTC-27MAR26-95000-C", -1.0))
        long_ = pf(("BTC-27MAR26-105000-C", 1.0))
        spread = margin(short + long_, INV, method).initial
        assert spread < margin(short, INV, method).initial + margin(long_, INV, method).initial
        assert spread < margin(short, INV, method).initial
        delta = portfolio_greeks(short, INV).total("delta")
        hedge = pf(("BTC-27MAR26", -delta))
        hedged = margin(short + hedge, INV, method).initial
        assert hedged < margin(short, INV, method).initial + margin(hedge, INV, method).initial
        assert math.isfinite(hedged)


@pytest.mark.data
def test_margin_on_a_real_chain_agrees_across_vol_sources(snapshot_dir) -> None:
    """Mark vols and an SVI fit of the same Deribit chain give nearly the same margin."""
    import volcal
    from volcal.risk import Market

    chain = volcal.read_chain(snapshot_dir / "deribit_options_snapshot_20260123T035907Z.csv", "BTC")
    book = pf(
        ("BTC-27MAR26-100000-C", -5.0),
        ("BTC-27MAR26-110000-C", 5.0),
        ("BTC-27FEB26-80000-P", -3.0),
        ("BTC-26JUN26-90000-P", 2.0),
        ("BTC-27MAR26", -1.5),
    )
    svi = Market.from_chain(chain, vols="svi")
    for method in ("deribit", "span"):
        a, b = margin(book, chain, method), margin(book, svi, method)
        assert a.initial > 0
        assert b.initial == pytest.approx(a.initial, rel=0.02)
