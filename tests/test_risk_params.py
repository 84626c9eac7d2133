"""Risk-parameter calibration: margin/vol shocks, collateral, kinked rates, regime updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from volcal.errors import DataError, ParameterError
from volcal.risk import (
    DepthCurve,
    KinkedRateModel,
    PriceSeries,
    SquareRootImpact,
    bounded_update,
    calibrate_margin_shock,
    calibrate_vol_shock,
    collateral_parameters,
    fit_kinked_rate,
    read_prices,
    regime_update,
)


def _series(r: np.ndarray, name: str = "sim") -> PriceSeries:
    t = np.datetime64("2015-01-01", "D") + np.arange(r.size + 1)
    return PriceSeries.from_arrays(
        t, 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)])), name=name
    )


def test_margin_shock_iid_covers_target_out_of_sample() -> None:
    s = _series(np.random.default_rng(4).normal(0, 0.03, 3000))
    res = calibrate_margin_shock(s, 0.99, "1d", method="hs", window=500)
    for side in (res.long, res.short):
        assert side.n_train + side.n_test == 2500  # 3001 prices, first origin at 500
        assert side.train_coverage >= 0.99  # m is the smallest multiplier reaching the target
        assert side.test_coverage > 0.98 and side.kupiec.pvalue > 0.05
        assert 1.0 <= side.multiplier < 1.2  # HS is already calibrated on iid data
        assert side.shock == pytest.approx(0.0675, rel=0.2)  # 1 - exp(-2.326 * 0.03)
    assert res.shock_down == res.long.shock and "margin shock" in res.summary()
    assert res.to_dict()["long"]["traffic_light"]["zone"] in ("green", "yellow")


def test_margin_shock_multiplier_is_minimal() -> None:
    s = _series(np.random.default_rng(9).standard_t(3, 2000) * 0.02)
    res = calibrate_margin_shock(s, 0.95, "1d", method="hs", window=250, min_multiplier=0.0)
    fc = res.forecasts[0]
    n = res.long.n_train
    ratio = fc.losses[:n] / fc.var[:n]
    m = res.long.multiplier
    assert np.mean(ratio <= m) >= 0.95
    assert np.mean(ratio <= np.nextafter(m, 0)) < 0.95


def test_vol_shock_and_errors() -> None:
    dv = _series(np.random.default_rng(5).normal(0, 0.05, 1500), name="dvol")
    v = calibrate_vol_shock(dv, 0.99, "1d")
    assert v.current_shock_up == pytest.approx(np.expm1(2.326 * 0.05), rel=0.2)
    assert v.test_coverage_up > 0.97 and v.n_train == 750
    with pytest.raises(ParameterError):
        calibrate_margin_shock(dv, 1.5)
    with pytest.raises(DataError, match="too few"):
        calibrate_margin_shock(dv.tail(400), 0.99, "1d", window=360)


def test_collateral_formula_by_hand() -> None:
    s = _series(np.random.default_rng(6).normal(0, 0.03, 2000))
    res = collateral_parameters(
        s, "1d", 0.01, method="hs", slippage=0.01, liquidation_bonus=0.05, buffer=0.02, ltv_gap=0.05
    )
    d = res.var
    # LT = (1 - d)(1 - s)/(1 + b) - buffer; CF = LT - gap
    assert res.liquidation_threshold == pytest.approx((1 - d) * 0.99 / 1.05 - 0.02)
    assert res.collateral_factor == pytest.approx(res.liquidation_threshold - 0.05)
    assert 0.005 < res.historical_breach_rate < 0.02 and res.eligible
    curve = DepthCurve([1e5, 1e6, 1e7], [0.001, 0.004, 0.03])
    res2 = collateral_parameters(s, "1d", method="hs", slippage=curve, liquidation_size=5.5e6)
    assert res2.slippage == pytest.approx(0.017)
    assert res2.liquidation_threshold < res.liquidation_threshold + 0.01
    with pytest.raises(ParameterError, match="deepest"):
        curve.slippage(2e7)
    with pytest.raises(ParameterError, match="liquidation_size"):
        collateral_parameters(s, "1d", slippage=curve)
    assert SquareRootImpact(1e9, 0.04).slippage(1e7) == pytest.approx(0.004)
    wild = _series(np.random.default_rng(6).normal(0, 0.6, 2000))
    bad = collateral_parameters(wild, "1d", method="hs", buffer=0.1, ltv_gap=0.2)
    assert not bad.eligible and bad.collateral_factor == 0.0 and bad.warnings


def test_kinked_rate_targets_and_fit() -> None:
    m = KinkedRateModel.from_targets(base=0.0, rate_at_optimal=0.04, rate_at_full=0.79, u_opt=0.8)
    assert (m.slope1, m.slope2) == pytest.approx((0.04, 0.75))
    # below the kink: 0.5/0.8 * 0.04 = 0.025; above: 0.04 + (0.95-0.8)/0.2 * 0.75 = 0.6025
    np.testing.assert_allclose(m.rate([0.5, 0.95]), [0.025, 0.6025])
    assert m.supply_rate(0.5, 0.1) == pytest.approx(0.025 * 0.5 * 0.9)
    rng = np.random.default_rng(0)
    u = rng.uniform(0.05, 0.99, 400)
    true = KinkedRateModel(0.005, 0.035, 0.9, 0.9)
    fit = fit_kinked_rate(u, true.rate(u) + rng.normal(0, 0.002, u.size))
    assert fit.model.u_opt == pytest.approx(0.9, abs=0.01)
    assert fit.model.slope2 == pytest.approx(0.9, rel=0.1)
    assert fit.rmse < 0.003 and fit.u_opt_fitted
    fixed = fit_kinked_rate([0.2, 0.5, 0.8, 0.95], [0.01, 0.025, 0.04, 0.4], u_opt=0.8)
    assert fixed.model.slope2 == pytest.approx(0.36 / 0.75, rel=1e-6)
    with pytest.raises(DataError, match="above"):
        fit_kinked_rate([0.1, 0.2, 0.3], [0.0, 0.1, 0.2], u_opt=0.8)
    with pytest.raises(ParameterError):
        KinkedRateModel(0.0, 0.04, 0.75, 1.0)


def test_bounded_update_and_regime() -> None:
    up = bounded_update({"a": 0.10, "b": 0.10}, {"a": 0.20, "b": 0.09}, max_step=0.25)
    assert up.new == {"a": 0.125, "b": 0.09} and up.clipped == ("a",)
    with pytest.raises(ParameterError):
        bounded_update({"a": 1.0}, {"b": 1.0})
    rng = np.random.default_rng(3)
    r = np.concatenate(
        [rng.normal(0, 0.01, 1500), rng.normal(0, 0.05, 1500), rng.normal(0, 0.05, 60)]
    )
    res = regime_update(_series(r), {"shock_down": 0.05, "shock_up": 0.05}, 0.99, "1d")
    assert res.regime == "high"
    assert res.update.proposed["shock_down"] > 0.08  # ~ 2.33 * 5 %
    assert res.update.new["shock_down"] == pytest.approx(0.0625)  # +25 % at most
    assert "high volatility" in res.summary()


@pytest.mark.data
def test_real_btc_margin_shock_two_years(raw_data: Path) -> None:
    btc = read_prices(raw_data / "btctree-btc-power" / "btc_daily.csv").between(
        "2021-01-01", "2024-12-31"
    )
    dvol = read_prices(raw_data / "joachimoliver-dvol" / "btc_dvol.csv")
    res = calibrate_margin_shock(btc, 0.99, "1d", method="hs", window=365, vol_series=dvol)
    assert res.long.n_test > 500
    assert res.long.test_coverage > 0.97 and res.long.traffic_light.zone != "red"
    assert 0.03 < res.shock_down < 0.2 and res.vol is not None and res.vol.current_shock_up > 0.05
