"""Hedge search (linear program), hedging evaluation along snapshots, and the risk CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli_json
from risk_helpers import synthetic_chain

import volcal
from volcal.cli import main
from volcal.errors import DataError, ParameterError
from volcal.risk import (
    HedgeError,
    Market,
    Portfolio,
    hedge_search,
    hedging_errors,
    parse_targets,
    portfolio_greeks,
)

CHAIN = synthetic_chain()


def _book() -> Portfolio:
    return Portfolio.from_records(
        [
            {"instrument": "BTC-27MAR26-105000-C", "size": -10.0},
            {"instrument": "BTC-27FEB26-85000-P", "size": -4.0},
            {"instrument": "BTC-26JUN26-95000-C", "size": 3.0},
        ]
    )


# ---------------------------------------------------------------------- hedge search
def test_parse_targets() -> None:
    t = parse_targets("delta=0, gamma=0.1, vega:0-30=-5, vega:30-=100", {"vega": 2.0})
    assert [x.label for x in t] == ["delta", "gamma", "vega:0-30", "vega:30-"]
    assert t[2].days_max == 30 and math.isinf(t[3].days_max) and t[3].tolerance == 2.0
    for bad in ("delta", "theta=0", "vega:30-10=0", "delta=x", ""):
        with pytest.raises(ParameterError):
            parse_targets(bad)


def test_hedge_reaches_targets_checked_by_revaluing_the_new_book() -> None:
    pf = _book()
    spec = "delta=0,gamma=0,vega:0-60=0,vega:60-=0"
    res = hedge_search(pf, CHAIN, spec)
    for tg in res.targets:
        assert abs(res.after[tg.label] - tg.value) <= tg.tolerance + 1e-7
    # independent check: the portfolio with the trades added, valued from scratch
    new = Portfolio.from_records([p.to_dict() for p in pf] + res.to_portfolio_records())
    risk = portfolio_greeks(new, CHAIN)
    assert risk.total("delta") == pytest.approx(res.after["delta"], abs=1e-6)
    gamma_1pct = sum(r["gamma_1pct"] for r in risk.by_expiry)
    assert gamma_1pct == pytest.approx(res.after["gamma"], abs=1e-6)
    short = sum(
        r["vega_usd"] for r in risk.by_expiry if r["expiry"] != "perpetual" and r["days"] < 60
    )
    assert short == pytest.approx(res.after["vega:0-60"], abs=1e-6)
    assert res.cost_usd > 0 and len(res.trades) <= 4  # a vertex: one leg per binding target
    json.dumps(res.to_dict())
    assert "Hedge search" in res.summary()


def test_single_vega_target_buys_the_cheapest_vega() -> None:
    """With one constraint the LP picks the instrument with the lowest cost per vega."""
    from volcal.black import greeks

    pf = _book()
    target = 0.0
    res = hedge_search(pf, CHAIN, {"vega": target}, tolerance={"vega": 1.0}, use_perpetual=False)
    need = abs(res.before["vega"] - target) - 1.0
    m = Market.from_chain(CHAIN)
    ok = (CHAIN.bid > 0) & (CHAIN.t * 365 >= 1.0)
    t = CHAIN.t[ok]
    vega = greeks(
        m.curve(t), CHAIN.strike[ok], t, m.iv(CHAIN.strike[ok], t), CHAIN.is_call[ok]
    ).vega
    cost = 0.5 * (CHAIN.ask[ok] - CHAIN.bid[ok]) * CHAIN.underlying_price[ok] + 0.0003 * 95_000
    best = np.min(cost / (vega * 0.01))
    assert res.cost_usd == pytest.approx(need * best, rel=1e-6)
    assert len(res.trades) == 1


def test_delta_only_target_uses_the_perpetual() -> None:
    res = hedge_search(_book(), CHAIN, "delta=0.5", tolerance={"delta": 0.0})
    assert [t["instrument"] for t in res.trades] == ["BTC-PERPETUAL"]
    assert res.after["delta"] == pytest.approx(0.5, abs=1e-9)
    assert res.cost_usd == pytest.approx(abs(0.5 - res.before["delta"]) * 0.0005 * 95_000)


def test_unreachable_targets_raise() -> None:
    with pytest.raises(HedgeError, match="not reachable"):
        hedge_search(_book(), CHAIN, "vega=100000", max_size=0.5)


# ---------------------------------------------------------------------- hedging evaluation
def test_sticky_delta_beats_sticky_strike_when_the_smile_moves_with_the_forward() -> None:
    """Synthetic snapshots 6 h apart whose smile is a fixed function of ln(K/F): the true
    dynamics is sticky moneyness, so the SVI sticky-delta hedge must do better."""
    snaps = ["2026-01-07T08:00Z", "2026-01-07T14:00Z", "2026-01-07T20:00Z"]
    index = [95_000.0, 96_000.0, 94_000.0]
    chains = [synthetic_chain(index=i, snapshot=s) for i, s in zip(index, snaps, strict=True)]
    ev = hedging_errors(chains, ("black", "svi"))
    tab = ev.table(("model",)).set_index("model")
    assert tab.loc["svi", "rms_hedged_usd"] < 0.6 * tab.loc["black", "rms_hedged_usd"]
    assert (tab["variance_reduction"] > 0.95).all()
    assert ev.n_steps == 2 and tab.loc["black", "n"] == tab.loc["svi", "n"] > 50
    by = ev.table(("model", "expiry_bucket", "moneyness_bucket"))
    assert by["n"].sum() == tab["n"].sum()
    json.dumps(ev.to_dict())


def test_hedging_evaluation_input_errors() -> None:
    with pytest.raises(DataError, match="two snapshots"):
        hedging_errors([CHAIN])
    late = synthetic_chain(snapshot="2026-01-09T08:00Z")
    with pytest.raises(DataError, match="within 12 hours"):
        hedging_errors([CHAIN, late])


@pytest.mark.data
def test_hedging_evaluation_on_real_snapshots(snapshot_dir) -> None:
    files = sorted(snapshot_dir.glob("deribit_options_snapshot_20260123T*.csv"))[:2]
    chains = [volcal.read_chain(f, "BTC") for f in files]
    ev = hedging_errors(chains, ("black", "svi"))
    tab = ev.table(("model",)).set_index("model")
    assert (tab["n"] > 100).all()
    assert (tab["variance_reduction"] > 0.5).all()
    assert np.isfinite(ev.to_frame()["hedged"]).all()


# ---------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path):
    lin = synthetic_chain("linear")
    df = pd.DataFrame(
        {
            "instrument": lin.instrument,
            "underlying": "BTC",
            "expiry": pd.to_datetime(lin.expiry).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "strike": lin.strike,
            "is_call": lin.is_call,
            "bid": lin.bid,
            "ask": lin.ask,
            "mark": lin.mark,
            "forward": lin.forward,
            "mark_iv": lin.mark_iv,
        }
    )
    chain = tmp_path / "chain.csv"
    df.to_csv(chain, index=False)
    book = tmp_path / "book.json"
    book.write_text(
        json.dumps(
            [
                {"instrument": "BTC_USDC-27MAR26-105000-C", "size": -2},
                {"instrument": "BTC_USDC-PERPETUAL", "size": 0.5},
            ]
        )
    )
    return chain, book, tmp_path


def test_cli_risk_margin_hedge(files, capsys) -> None:
    chain, book, tmp = files
    common = ["--chain", str(chain), "--snapshot", "2026-01-07T08:00Z"]
    report = tmp / "risk.html"
    assert main(["risk", str(book), *common, "--json", "--report", str(report)]) == 0
    doc = cli_json(capsys.readouterr().out)
    assert doc["scenarios"]["pnl"][2][4] == 0.0
    assert len(doc["greeks"]["positions"]) == 2
    assert "Scenario P&L" in report.read_text()
    assert main(["margin", str(book), *common, "--method", "span", "--json"]) == 0
    m = cli_json(capsys.readouterr().out)
    assert m["method"] == "span" and m["initial_usd"] > 0 and len(m["scenarios"]) == 16
    assert main(["margin", str(book), *common]) == 0
    assert "deribit portfolio margin" in capsys.readouterr().out
    assert main(["hedge", str(book), *common, "--target", "delta=0,vega=0", "--json"]) == 0
    h = cli_json(capsys.readouterr().out)
    assert abs(h["after"]["delta"]) <= 0.01 + 1e-9
    assert main(["risk", str(book), *common]) == 0
    assert "greeks by expiry" in capsys.readouterr().out


def test_cli_errors_are_one_line(files, capsys) -> None:
    chain, _, tmp = files
    bad = tmp / "bad.json"
    bad.write_text(json.dumps([{"instrument": "BTC_USDC-27MAR26-105000-C", "size": "NaN"}]))
    common = ["--chain", str(chain), "--snapshot", "2026-01-07T08:00Z"]
    assert main(["margin", str(bad), *common]) == 2
    err = capsys.readouterr().err
    assert "position 0 (BTC_USDC-27MAR26-105000-C): size is nan" in err
    assert "Traceback" not in err
    unknown = tmp / "unknown.json"
    unknown.write_text(json.dumps([{"instrument": "BTC_USDC-27MAR26-101000-C", "size": 1}]))
    assert main(["margin", str(unknown), *common]) == 2
    assert "unknown instrument" in capsys.readouterr().err
    book = tmp / "ok.json"
    book.write_text(json.dumps([{"instrument": "BTC_USDC-PERPETUAL", "size": 1}]))
    assert main(["margin", str(book), *common, "--method", "var"]) == 2
    assert main(["hedge", str(book), *common, "--target", "theta=1"]) == 2
