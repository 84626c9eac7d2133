"""Every HTML report draws what it claims: the figures are read back out of the page
(plotly's embedded JSON) and each curve is checked against the fit it labels.

Issue: the smile panels of the calibration and comparison reports drew the first
expiry's SVI/SABR curve in every panel (a slice index was passed as a maturity).
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import cli_json
from report_helpers import array, axis_key, axis_titles, figures, n_plotly_bundles

import volcal
from volcal.synthetic import synthetic_chain


@pytest.fixture(scope="module")
def chain():
    return volcal.clean(synthetic_chain(seed=3))


def _traces_by_axis(fig):
    """{subplot number (1-based): [traces]} of a make_subplots figure."""
    out: dict[int, list] = {}
    for tr in fig["data"]:
        ref = tr.get("xaxis") or "x"
        out.setdefault(int(ref[1:] or 1), []).append(tr)
    return out


def _check_axes_titled(fig):
    """Every axis that carries a trace has a title naming its quantity and unit."""
    titles = axis_titles(fig["layout"])
    for tr in fig["data"]:
        if tr.get("type") in ("heatmap", "surface", None) and "xaxis" not in tr:
            pass
        for letter in ("x", "y"):
            key = axis_key(tr.get(f"{letter}axis"), letter)
            assert titles.get(key), f"{key} of trace {tr.get('name')!r} has no title"


def _check_curve(trace, k, expected_vol, tol_vp):
    x, y = array(trace["x"]), array(trace["y"])
    assert np.all(np.diff(x) > 0)
    drawn = np.interp(k, x, y)
    err = np.max(np.abs(drawn - 100 * expected_vol))
    assert err < tol_vp, f"{trace.get('name')}: curve is {err:.3f} vol points off the fit"


def _check_bars(trace, q, m):
    """The bid-ask bars of a slice span exactly the quotes' bid and ask vols."""
    y = array(trace["y"])
    hi = y + array(trace["error_y"]["array"])
    lo = y - array(trace["error_y"]["arrayminus"])
    ask = np.where(np.isfinite(q.iv_ask[m]), q.iv_ask[m], q.iv_mid[m])
    np.testing.assert_allclose(lo, 100 * q.iv_bid[m], atol=1e-9)
    np.testing.assert_allclose(hi, 100 * ask, atol=1e-9)


@pytest.mark.parametrize(
    ("model", "tol"), [("svi", 0.02), ("sabr", 0.02), ("ssvi", 0.02), ("merton", 0.1)]
)
def test_calibration_report_draws_each_expirys_own_fit(chain, model, tol):
    from volcal.report.chain import build_calibration_report

    fit = volcal.calibrate(chain, model)
    page = build_calibration_report(chain, fit)
    assert n_plotly_bundles(page) == 1
    smiles, residuals = figures(page)
    q = fit.quotes
    by_axis = _traces_by_axis(smiles)
    titles = [a["text"] for a in smiles["layout"]["annotations"]]
    assert len(by_axis) == q.n_slices
    for i in range(q.n_slices):
        m = q.slice_index == i
        traces = by_axis[i + 1]
        assert titles[i].startswith(fit.slices[i].expiry[:10])
        (curve,) = [t for t in traces if t["name"] == f"{model} fit"]
        _check_curve(curve, q.k[m], fit.model_iv[m], tol)
        (bars,) = [t for t in traces if t["name"] == "bid-ask vol"]
        _check_bars(bars, q, m)
    _check_axes_titled(smiles)
    _check_axes_titled(residuals)
    # residual panel: (model - mid) / half-spread of every quote, one trace per expiry
    half = 0.5 * (q.iv_ask - q.iv_bid)
    for i, tr in enumerate(residuals["data"]):
        m = q.slice_index == i
        np.testing.assert_allclose(array(tr["y"]), fit.residuals[m] / half[m], rtol=1e-9)


def test_compare_report_draws_every_models_own_fit(chain):
    from volcal.report.compare import build_compare_report

    cmp = volcal.compare_models(chain, ["svi", "sabr", "merton"])
    page = build_compare_report(chain, cmp)
    assert n_plotly_bundles(page) == 1
    (fig,) = figures(page)
    by_axis = _traces_by_axis(fig)
    fits = {f.model: f.result for f in cmp.fits}
    ref = cmp.fits[0].result
    for i, s in enumerate(ref.slices):
        traces = by_axis[i + 1]
        for model, res in fits.items():
            (curve,) = [t for t in traces if t["name"] == model]
            j = [x.expiry for x in res.slices].index(s.expiry)
            m = res.quotes.slice_index == j
            _check_curve(curve, res.quotes.k[m], res.model_iv[m], 0.1)
    _check_axes_titled(fig)


def test_surface_report_heatmap_spans_the_quoted_region_only(chain, tmp_path):
    from volcal.report.surface import write_surface_report

    fit = volcal.calibrate(chain, "ssvi")
    surf = fit.surface()
    conv = volcal.surface_conventions(surf)
    arb = volcal.check_arbitrage(surf)
    page = write_surface_report(tmp_path / "s.html", fit, conv, arb).read_text()
    assert n_plotly_bundles(page) == 1
    figs = figures(page)
    heat = figs[0]
    (hm,) = heat["data"]
    assert hm["type"] == "heatmap"
    x, days, z = array(hm["x"]), array(hm["y"]), np.asarray(hm["z"], dtype=float)
    q = fit.quotes
    # maturities: from the first to the last quoted expiry; standardised moneyness
    # x = k / sqrt(t): the quoted range
    assert days.min() >= 365 * q.t_slices.min() * (1 - 1e-9)
    assert days.max() <= 365 * q.t_slices.max() * (1 + 1e-9)
    zq = q.k / np.sqrt(q.t)
    assert x.min() >= zq.min() - 1e-12 and x.max() <= zq.max() + 1e-12
    # every drawn cell lies inside the quoted range of the expiries around it, and is
    # the surface's own vol there
    zmin = np.array([zq[q.slice_index == i].min() for i in range(q.n_slices)])
    zmax = np.array([zq[q.slice_index == i].max() for i in range(q.n_slices)])
    ts = np.asarray(q.t_slices)
    for r, d in enumerate(days):
        t = d / 365.0
        j = np.searchsorted(ts, t * (1 - 1e-12), side="right")
        lo = min(zmin[max(j - 1, 0)], zmin[min(j, len(ts) - 1)])
        hi = max(zmax[max(j - 1, 0)], zmax[min(j, len(ts) - 1)])
        drawn = np.isfinite(z[r])
        assert np.all(x[drawn] >= lo - 1e-9) and np.all(x[drawn] <= hi + 1e-9)
        np.testing.assert_allclose(
            z[r][drawn], 100 * surf.implied_vol(x[drawn] * np.sqrt(t), t), rtol=1e-9
        )
    assert np.isfinite(z).mean() > 0.5
    # every smile panel: the surface's vol at the slice's maturity through the quotes
    smiles = figs[2]
    by_axis = _traces_by_axis(smiles)
    for i in range(q.n_slices):
        m = q.slice_index == i
        (curve,) = [t for t in by_axis[i + 1] if t["mode"] == "lines"]
        _check_curve(curve, q.k[m], fit.model_iv[m], 0.02)
    for f in figs:
        if f["data"][0]["type"] != "surface":
            _check_axes_titled(f)


@pytest.fixture
def risk_files(tmp_path):
    import json

    import pandas as pd
    from risk_helpers import synthetic_chain as risk_chain

    lin = risk_chain("linear")
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
    book.write_text(json.dumps([{"instrument": "BTC_USDC-27MAR26-105000-C", "size": -2}]))
    return chain, book, tmp_path


def test_risk_report_heatmap_is_the_scenario_grid(risk_files, capsys):

    from volcal.cli import main

    chain, book, tmp = risk_files
    rep = tmp / "risk.html"
    args = ["risk", str(book), "--chain", str(chain), "--snapshot", "2026-01-07T08:00Z"]
    assert main([*args, "--json", "--report", str(rep)]) == 0
    doc = cli_json(capsys.readouterr().out)
    page = rep.read_text()
    assert n_plotly_bundles(page) == 1
    (fig,) = figures(page)
    (hm,) = fig["data"]
    sc = doc["scenarios"]
    np.testing.assert_allclose(np.asarray(hm["z"], dtype=float), np.asarray(sc["pnl"]))
    assert hm["x"] == [f"{m:+.0%}" for m in sc["spot_moves"]]
    assert hm["colorbar"]["title"]["text"] == "P&L USD"
    _check_axes_titled(fig)


def test_backtest_report_draws_the_forecasts(tmp_path):
    from volcal.report.riskparams import write_backtest_report
    from volcal.risk.backtest import backtest_var
    from volcal.risk.series import PriceSeries

    rng = np.random.default_rng(21)
    n = 700
    t = np.datetime64("2020-01-01", "D") + np.arange(n)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    s = PriceSeries.from_arrays(t, p, name="X")
    res = backtest_var(s, 0.01, "hs", window=250)
    page = write_backtest_report(tmp_path / "bt.html", [res]).read_text()
    assert n_plotly_bundles(page) == 1
    (fig,) = figures(page)
    loss, var, exc = fig["data"]
    f = res.forecasts
    np.testing.assert_allclose(array(loss["y"]), -np.expm1(-f.losses), rtol=1e-12)
    np.testing.assert_allclose(array(var["y"]), -np.expm1(-f.var), rtol=1e-12)
    hit = -np.expm1(-f.losses) > -np.expm1(-f.var)
    assert len(array(exc["y"])) == int(hit.sum()) == res.exceptions
    _check_axes_titled(fig)


def test_margin_report_draws_the_calibrated_shock_rule(tmp_path):
    from volcal.report.riskparams import write_margin_report
    from volcal.risk.params import calibrate_margin_shock
    from volcal.risk.series import PriceSeries

    rng = np.random.default_rng(21)
    n = 700
    t = np.datetime64("2020-01-01", "D") + np.arange(n)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    res = calibrate_margin_shock(PriceSeries.from_arrays(t, p, name="X"), 0.99, "1d", window=250)
    page = write_margin_report(tmp_path / "m.html", res).read_text()
    assert n_plotly_bundles(page) == 1
    figs = figures(page)
    assert len(figs) == 2
    for fig, fc, side in zip(figs, res.forecasts, (res.long, res.short), strict=True):
        loss, rule, exc = fig["data"]
        m = side.multiplier
        if fc.side == "long":
            want_loss, want_rule = -np.expm1(-fc.losses), -np.expm1(-m * fc.var)
        else:
            want_loss, want_rule = np.expm1(fc.losses), np.expm1(m * fc.var)
        np.testing.assert_allclose(array(loss["y"]), want_loss, rtol=1e-12)
        # the drawn rule is the calibrated one: the multiplier times the VaR forecast
        np.testing.assert_allclose(array(rule["y"]), want_rule, rtol=1e-12)
        assert len(array(exc["y"])) == int((want_loss > want_rule).sum())
        _check_axes_titled(fig)
