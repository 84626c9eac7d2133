"""Portfolios, instrument parsing, valuation, greeks and scenario grids."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from oracles import require
from risk_helpers import INDEX, synthetic_chain

from volcal.black import coin_greeks, greeks, price
from volcal.errors import DataError, ParameterError
from volcal.risk import (
    Market,
    Portfolio,
    parse_instrument,
    portfolio_greeks,
    scenario_grid,
)
from volcal.risk.valuation import resolve


@pytest.fixture(scope="module")
def chain():
    return synthetic_chain()


# ---------------------------------------------------------------------- parsing
def test_parse_instrument_forms() -> None:
    o = parse_instrument("BTC-27MAR26-100000-C")
    assert (o.kind, o.underlying, o.settlement, o.strike, o.is_call) == (
        "option",
        "BTC",
        "inverse",
        100000.0,
        True,
    )
    assert o.expiry == pd.Timestamp("2026-03-27T08:00Z")
    f = parse_instrument("eth-26jun26")
    assert (f.kind, f.underlying, f.expiry) == ("future", "ETH", pd.Timestamp("2026-06-26T08:00Z"))
    p = parse_instrument("BTC_USDC-PERPETUAL")
    assert (p.kind, p.settlement, p.expiry) == ("perpetual", "linear", None)
    x = parse_instrument("XRP_USDC-27MAR26-0d625-P")
    assert (x.strike, x.is_call, x.settlement) == (0.625, False, "linear")


@pytest.mark.parametrize(
    "name",
    ["BTC-27MAR26-100000-X", "BTC-32MAR26-1000-C", "BTC-27XYZ26", "BTC", "BTC-27MAR26-abc-C", ""],
)
def test_parse_instrument_rejects(name: str) -> None:
    with pytest.raises(DataError):
        parse_instrument(name)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [{"instrument": "BTC-PERPETUAL", "size": float("nan")}],
            "position 0 (BTC-PERPETUAL): size is nan",
        ),
        (
            [{"instrument": "BTC-PERPETUAL", "size": 1}, {"instrument": "BTC-27MAR26", "size": 0}],
            "position 1 (BTC-27MAR26): size is zero",
        ),
        ([{"instrument": "BTC-PERPETUAL"}], "position 0 (BTC-PERPETUAL): size is missing"),
        ([{"instrument": "BTC-PERPETUAL", "size": "two"}], "'two' is not a number"),
        ([{"instrument": "BTC-27MAR26-1-Q", "size": 1}], "position 0 (BTC-27MAR26-1-Q): unknown"),
        (
            [
                {"instrument": "BTC-PERPETUAL", "size": 1},
                {"instrument": "ETH-PERPETUAL", "size": 1},
            ],
            "position 1 (ETH-PERPETUAL): underlying ETH differs",
        ),
        ([{"size": 1}], "position 0: 'instrument' is missing"),
        ([], "no positions"),
    ],
)
def test_invalid_records_name_the_position(records, message) -> None:
    with pytest.raises(DataError) as err:
        Portfolio.from_records(records)
    assert message in str(err.value)


def test_read_json_and_csv_round_trip(tmp_path) -> None:
    recs = [
        {"instrument": "BTC-27MAR26-100000-C", "size": -1.0, "entry_price": 0.03},
        {"instrument": "BTC-PERPETUAL", "size": 0.5},
    ]
    pj = tmp_path / "book.json"
    pj.write_text(json.dumps({"name": "b", "positions": recs}))
    pc = tmp_path / "book.csv"
    pd.DataFrame(recs).to_csv(pc, index=False)
    a, b = Portfolio.read(pj), Portfolio.read(pc)
    assert a.names == b.names == ["BTC-27MAR26-100000-C", "BTC-PERPETUAL"]
    assert a.sizes.tolist() == b.sizes.tolist() == [-1.0, 0.5]
    assert a.positions[0].entry_price == b.positions[0].entry_price == 0.03
    assert math.isnan(b.positions[1].entry_price)
    assert a.to_dict()["positions"][0] == recs[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        Portfolio.read(bad)
    with pytest.raises(DataError, match="not found"):
        Portfolio.read(tmp_path / "missing.json")


def test_resolve_errors_name_the_position(chain) -> None:
    cases = [
        (
            [{"instrument": "ETH-27MAR26-3000-C", "size": 1}],
            "position 0 (ETH-27MAR26-3000-C): wrong currency",
        ),
        (
            [{"instrument": "BTC-2JAN26-90000-C", "size": 1}],
            "position 0 (BTC-2JAN26-90000-C): expired",
        ),
        (
            [
                {"instrument": "BTC-PERPETUAL", "size": 1},
                {"instrument": "BTC-27MAR26-91234-C", "size": 1},
            ],
            "position 1 (BTC-27MAR26-91234-C): unknown instrument",
        ),
    ]
    for recs, message in cases:
        with pytest.raises(DataError) as err:
            resolve(Portfolio.from_records(recs), chain)
        assert message in str(err.value)


# ---------------------------------------------------------------------- valuation
def test_option_value_reproduces_marks_and_black(chain) -> None:
    """Values at the mark vol equal the marks (coin) and Black-76 (USD)."""
    names = ["BTC-27MAR26-100000-C", "BTC-30JAN26-80000-P", "BTC-26JUN26-140000-C"]
    pf = Portfolio.from_records([{"instrument": n, "size": 2.0} for n in names])
    risk = portfolio_greeks(pf, chain)
    for i, n in enumerate(names):
        j = int(np.flatnonzero(chain.instrument == n)[0])
        f, k, t, v, c = (
            chain.underlying_price[j],
            chain.strike[j],
            chain.t[j],
            chain.mark_iv[j],
            chain.is_call[j],
        )
        assert risk.columns["value_coin"][i] == pytest.approx(2 * chain.mark[j], rel=1e-12)
        assert risk.columns["value_usd"][i] == pytest.approx(2 * price(f, k, t, v, c), rel=1e-12)
        assert risk.columns["delta"][i] == pytest.approx(2 * greeks(f, k, t, v, c).delta, rel=1e-12)
        assert risk.columns["delta_coin"][i] == pytest.approx(
            2 * coin_greeks(f, k, t, v, c).delta, rel=1e-12
        )
        assert risk.columns["vega_usd"][i] == pytest.approx(
            2 * greeks(f, k, t, v, c).vega / 100, rel=1e-12
        )


def test_option_value_against_quantlib(chain) -> None:
    """Black-76 value of one position against QuantLib's BlackCalculator."""
    ql = require("QuantLib")
    pf = Portfolio.from_records([{"instrument": "BTC-27MAR26-110000-C", "size": 1.0}])
    book = resolve(pf, chain)
    f, k, t, v = book.forward[0], book.strike[0], book.t[0], book.vol[0]
    calc = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Call, k), f, v * math.sqrt(t), 1.0)
    assert portfolio_greeks(pf, chain).total("value_usd") == pytest.approx(calc.value(), rel=1e-10)
    assert portfolio_greeks(pf, chain).total("delta") == pytest.approx(
        calc.deltaForward(), rel=1e-9
    )


def test_greeks_match_finite_differences_of_revaluation(chain) -> None:
    pf = Portfolio.from_records(
        [
            {"instrument": "BTC-27MAR26-100000-C", "size": -3.0},
            {"instrument": "BTC-27FEB26-85000-P", "size": 2.0},
            {"instrument": "BTC-27MAR26", "size": 1.5},
        ]
    )
    book = resolve(pf, chain)
    risk = portfolio_greeks(pf, chain)
    h = 1e-4
    for i in range(3):
        up = book.values_usd(1 + h, book.vol)[i]
        dn = book.values_usd(1 - h, book.vol)[i]
        mid = book.values_usd(1.0, book.vol)[i]
        f = book.forward[i]
        assert book.size[i] * (up - dn) / (2 * h * f) == pytest.approx(
            risk.columns["delta"][i], rel=1e-6, abs=1e-9
        )
        assert book.size[i] * (up - 2 * mid + dn) / (h * f) ** 2 == pytest.approx(
            risk.columns["gamma"][i], rel=1e-4, abs=1e-12
        )


def test_futures_values_and_coin_delta(chain) -> None:
    pf = Portfolio.from_records(
        [
            {"instrument": "BTC-27MAR26", "size": 2.0, "entry_price": 90_000.0},
            {"instrument": "BTC-PERPETUAL", "size": -1.0},
            {"instrument": "BTC_USDC-PERPETUAL", "size": 1.0, "entry_price": 94_000.0},
        ]
    )
    risk = portfolio_greeks(pf, chain)
    f = resolve(pf, chain).forward[0]
    assert risk.columns["value_usd"].tolist() == pytest.approx(
        [2 * (f - 90_000.0), 0.0, INDEX - 94_000.0]
    )
    # inverse future: coin value q (F - E) / F and exchange delta q E / F
    assert risk.columns["value_coin"][0] == pytest.approx(2 * (f - 90_000.0) / f)
    assert risk.columns["delta_coin"].tolist() == pytest.approx([2 * 90_000.0 / f, -1.0, 1.0])
    assert risk.columns["delta"].tolist() == [2.0, -1.0, 1.0]


def test_by_expiry_time_normalised_vega(chain) -> None:
    pf = Portfolio.from_records(
        [
            {"instrument": "BTC-30JAN26-95000-C", "size": 1.0},
            {"instrument": "BTC-30JAN26-90000-P", "size": 1.0},
            {"instrument": "BTC-26JUN26-95000-C", "size": -1.0},
        ]
    )
    risk = portfolio_greeks(pf, chain)
    rows = {r["expiry"]: r for r in risk.by_expiry}
    jan = rows["2026-01-30"]
    assert jan["n"] == 2
    assert jan["vega_usd"] == pytest.approx(risk.columns["vega_usd"][:2].sum())
    assert jan["vega_30d_usd"] == pytest.approx(jan["vega_usd"] * math.sqrt(30 / jan["days"]))
    assert jan["days"] == pytest.approx(23.0)
    assert sum(r["delta"] for r in risk.by_expiry) == pytest.approx(risk.total("delta"))
    d = risk.to_dict()
    assert d["totals"]["vega_usd"] == pytest.approx(risk.total("vega_usd"))
    json.dumps(d)
    assert "vega" in risk.summary()


def test_mark_vols_interpolate_in_total_variance(chain) -> None:
    m = Market.from_chain(chain)
    t = m.curve_t
    f = m.curve(t)
    k = 100_000.0
    v0 = float(m.iv(k, t[1])[()])
    assert v0 == pytest.approx(
        float(
            np.interp(
                np.log(k / f[1]),
                np.log(np.arange(60e3, 150001, 5e3) / f[1]),
                chain.mark_iv[
                    (chain.t == chain.t[np.argmin(np.abs(chain.t - t[1]))]) & chain.is_call
                ],
            )
        )
    )
    tm = 0.5 * (t[1] + t[2])
    km = np.log(k / float(m.curve(tm)))
    w1 = float(m.iv(float(m.curve(t[1])) * np.exp(km), t[1])[()]) ** 2 * t[1]
    w2 = float(m.iv(float(m.curve(t[2])) * np.exp(km), t[2])[()]) ** 2 * t[2]
    assert float(m.iv(k, tm)[()]) ** 2 * tm == pytest.approx(0.5 * (w1 + w2), rel=1e-12)


def test_svi_and_callable_vol_sources(chain) -> None:
    import volcal

    fit = volcal.calibrate(chain, "svi")
    m = Market.from_chain(chain, vols=fit)
    assert m.vol_label == "svi"
    smiles = fit.params
    i = 2
    kk = smiles.forwards[i] * np.array([0.8, 1.0, 1.3])
    assert m.iv(kk, smiles.t[i]) == pytest.approx(
        smiles.implied_vol(np.log(kk / smiles.forwards[i]), i), rel=1e-12
    )
    flat = Market.from_chain(chain, vols=lambda k, t: np.full(np.shape(k), 0.6))
    pf = Portfolio.from_records([{"instrument": "BTC-27MAR26-100000-C", "size": 1.0}])
    b = resolve(pf, flat)
    assert b.vol[0] == 0.6
    with pytest.raises(ParameterError):
        Market.from_chain(chain, vols="nope")


def test_unrealised_pnl_since_entry(chain) -> None:
    pf = Portfolio.from_records(
        [
            {"instrument": "BTC-27MAR26-100000-C", "size": -2.0, "entry_price": 0.05},
            {"instrument": "BTC-27MAR26-100000-P", "size": 1.0},
            {"instrument": "BTC-PERPETUAL", "size": 1.0, "entry_price": 90_000.0},
        ]
    )
    r = portfolio_greeks(pf, chain)
    j = int(np.flatnonzero(chain.instrument == "BTC-27MAR26-100000-C")[0])
    f = chain.underlying_price[j]
    assert r.columns["pnl_usd"][0] == pytest.approx(-2.0 * (chain.mark[j] - 0.05) * f, rel=1e-10)
    assert r.columns["pnl_usd"][1:].tolist() == pytest.approx([0.0, INDEX - 90_000.0])


def test_model_vol_source_black_limit_and_custom_source(chain) -> None:
    """A stochastic-model fit goes through volcal.model_iv: the Black model's smile is flat."""
    from types import SimpleNamespace

    from volcal.models import Black

    fake_fit = SimpleNamespace(model="black", params=Black(0.55))
    m = Market.from_chain(chain, vols=fake_fit)
    assert m.vol_label == "black"
    vols = m.iv(np.array([70e3, 95e3, 140e3]), 0.3)
    assert vols == pytest.approx(0.55, abs=1e-9)

    class Flat:  # a surface-like source: has model/params too, but iv() decides
        model = "svi"
        params = None

        def iv(self, strike, t):
            return np.full(np.shape(strike), 0.7)

    pf = Portfolio.from_records([{"instrument": "BTC-26JUN26-120000-C", "size": 1.0}])
    flat = Market.from_chain(chain, vols=Flat())
    assert resolve(pf, flat).vol[0] == 0.7
    assert flat.vol_label == "surface (svi)"
    with pytest.raises(ParameterError):
        Market.from_chain(chain, vols=SimpleNamespace(model="x", params=object()))


# ---------------------------------------------------------------------- scenarios
def test_scenario_grid_basics(chain) -> None:
    pf = Portfolio.from_records(
        [
            {"instrument": "BTC-27MAR26-100000-C", "size": 1.0},
            {"instrument": "BTC-PERPETUAL", "size": -0.5},
        ]
    )
    g = scenario_grid(pf, chain, [-0.2, 0.0, 0.2], [-0.05, 0.0, 0.05])
    assert g.pnl[1, 1] == 0.0
    # perpetual: linear USD P&L; option: repriced in full
    b = resolve(pf, chain)
    call_up = price(b.forward[0] * 1.2, 100_000.0, b.t[0], b.vol[0], True) - price(
        b.forward[0], 100_000.0, b.t[0], b.vol[0], True
    )
    assert g.pnl[1, 2] == pytest.approx(call_up - 0.5 * INDEX * 0.2, rel=1e-12)
    # a vol shock scales with (30/days)^0.5
    vup = price(
        b.forward[0], 100_000.0, b.t[0], b.vol[0] + 0.05 * math.sqrt(30 / (b.t[0] * 365)), True
    )
    assert g.pnl[2, 1] == pytest.approx(
        vup - price(b.forward[0], 100_000.0, b.t[0], b.vol[0], True)
    )
    assert g.worst[2] == g.pnl.min()
    assert "worst" in g.summary() and g.to_dict()["pnl"][1][1] == 0.0


def test_scenario_sticky_moneyness_differs_on_a_skew(chain) -> None:
    pf = Portfolio.from_records([{"instrument": "BTC-27MAR26-80000-P", "size": 1.0}])
    s = scenario_grid(pf, chain, [-0.2, 0.0], [0.0], sticky="strike")
    m = scenario_grid(pf, chain, [-0.2, 0.0], [0.0], sticky="moneyness")
    assert s.pnl[0, 1] == m.pnl[0, 1] == 0.0
    # after a fall the put is nearer the money: a lower vol under sticky moneyness (skew)
    assert m.pnl[0, 0] < s.pnl[0, 0]


def test_scenario_rejects_bad_grids(chain) -> None:
    pf = Portfolio.from_records([{"instrument": "BTC-PERPETUAL", "size": 1.0}])
    with pytest.raises(ParameterError):
        scenario_grid(pf, chain, [-1.5], [0.0])
    with pytest.raises(ParameterError):
        scenario_grid(pf, chain, [0.0], [np.nan])
    with pytest.raises(ParameterError):
        scenario_grid(pf, chain, [0.0], [0.0], sticky="delta")  # type: ignore[arg-type]
