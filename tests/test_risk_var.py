"""VaR/ES estimators (HS, FHS with GARCH, EVT) and rolling forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from volcal.errors import DataError, ParameterError
from volcal.risk import PriceSeries, backtest_var, read_prices, rolling_var, value_at_risk
from volcal.risk.var import fhs_var_es, fit_garch, fit_gpd, hs_var_es


def _series(r: np.ndarray, start: str = "2015-01-01", name: str = "sim") -> PriceSeries:
    t = np.datetime64(start, "D") + np.arange(r.size + 1)
    return PriceSeries.from_arrays(
        t, 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)])), name=name
    )


def _garch_path(n: int, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s2 = omega / (1 - alpha - beta)
    out = np.empty(n)
    for i in range(n):
        out[i] = np.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * out[i] ** 2 + beta * s2
    return out


def test_hs_order_statistic_and_es() -> None:
    # 1..100 at p = 0.05: smallest x with F_n(x) >= 0.95 is 95; ES = mean(95..100) = 97.5
    assert hs_var_es(np.arange(1.0, 101.0), 0.05) == (95.0, 97.5)
    with pytest.raises(DataError):
        hs_var_es(np.arange(10.0), 0.01)


def test_gpd_recovers_pareto_tail_and_pot_quantile() -> None:
    rng = np.random.default_rng(7)
    x = rng.pareto(4.0, 40_000) + 1.0  # Pareto(alpha=4): xi = 1/4, P(X > x) = x^-4
    fit = fit_gpd(x, threshold=0.95)
    assert fit.converged and fit.xi == pytest.approx(0.25, abs=0.05)
    var, es = fit.var_es(0.001)
    assert var == pytest.approx(0.001 ** (-1 / 4), rel=0.05)  # 5.623
    assert es == pytest.approx(4 / 3 * 0.001 ** (-1 / 4), rel=0.08)  # alpha/(alpha-1) VaR
    with pytest.raises(ParameterError):
        fit.var_es(0.2)


def test_static_var_normal_returns_all_methods() -> None:
    rng = np.random.default_rng(11)
    s = _series(rng.normal(0.0, 0.02, 4000))
    z = norm.ppf(0.99)
    for method, tol in (("hs", 0.08), ("fhs", 0.08), ("evt", 0.08)):
        res = value_at_risk(s, 0.01, method)
        assert res.var == pytest.approx(0.02 * z, rel=tol), method
        assert res.es > res.var
        assert res.to_dict()["method"] == method and res.summary()
    # multi-step FHS on iid returns scales with sqrt(k) (bootstrap simulation)
    r4 = value_at_risk(s, 0.01, "fhs", horizon="4d", n_sims=20_000)
    assert r4.var == pytest.approx(0.02 * z * 2.0, rel=0.08)
    short = value_at_risk(s, 0.01, "hs", side="short")
    assert short.var_fraction == pytest.approx(np.expm1(short.var))


def test_garch_fit_recovers_parameters() -> None:
    r = _garch_path(4000, 2e-5, 0.1, 0.85, seed=3)
    fit = fit_garch(r)
    assert fit.converged
    assert fit.alpha == pytest.approx(0.1, abs=0.04)
    assert fit.beta == pytest.approx(0.85, abs=0.06)
    assert fit.omega / (1 - fit.alpha - fit.beta) == pytest.approx(4e-4, rel=0.25)
    v1, e1 = fhs_var_es(fit, 0.01)
    # loss order statistic k = ceil(0.99 n) is the (n - k + 1)-th smallest residual
    n = fit.z.size
    zk = np.sort(fit.z)[n - int(np.ceil(0.99 * n))]
    assert v1 == pytest.approx(-(fit.mu + fit.sigma_next * zk), rel=1e-12)
    assert e1 >= v1


def test_fhs_refuses_gappy_window() -> None:
    rng = np.random.default_rng(1)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    t = np.datetime64("2020-01-01", "D") + np.arange(300)
    keep = np.ones(300, dtype=bool)
    keep[150:153] = False
    s = PriceSeries.from_arrays(t[keep], p[keep])
    with pytest.raises(DataError, match="gap"):
        value_at_risk(s, 0.01, "fhs")
    # 300 grid days, 299 one-day returns; the 4 touching the 3 missing days are excluded
    assert value_at_risk(s, 0.01, "hs").n_obs == 299 - 4
    fc = rolling_var(s, 0.05, "hs", window=100)
    assert fc.n_skipped > 0  # windows touching the gap are skipped, counted


def test_rolling_forecasts_are_out_of_sample_and_calibrated() -> None:
    r = _garch_path(2600, 2e-5, 0.1, 0.85, seed=5)
    s = _series(r)
    # volatility clustering: FHS follows it and passes; plain HS clusters its exceptions
    fhs = backtest_var(s, 0.01, "fhs", window=500, refit_every=50)
    assert fhs.n == 2100 and fhs.forecasts.n_fits == 42
    assert fhs.kupiec.pvalue > 0.05 and fhs.christoffersen.pvalue > 0.05
    hs = backtest_var(s, 0.01, "hs", window=500)
    assert hs.exceptions > fhs.exceptions
    # iid returns: HS and EVT are calibrated
    iid = _series(np.random.default_rng(8).normal(0, 0.02, 2600))
    for method in ("hs", "evt"):
        bt = backtest_var(iid, 0.01, method, window=500, refit_every=25)
        assert bt.kupiec.pvalue > 0.05, (method, bt.exceptions)
        assert bt.row()["zone"] == "green"
    # the forecast for day t uses only data up to t - 1: shifting the realised series by one
    # day changes nothing before it
    fc = rolling_var(s, 0.01, "hs", window=500)
    fc2 = rolling_var(_series(np.concatenate([r[:-1], [0.5]])), 0.01, "hs", window=500)
    np.testing.assert_array_equal(fc.var, fc2.var)
    assert fc.exceptions[-1] != fc2.exceptions[-1] or fc2.realised[-1] == pytest.approx(0.5)


def test_rolling_multi_step_is_non_overlapping() -> None:
    rng = np.random.default_rng(2)
    s = _series(rng.normal(0, 0.02, 1200))
    fc = rolling_var(s, 0.01, "hs", window=300, horizon="3d")
    gaps = np.diff(fc.times).astype("timedelta64[D]").astype(int)
    assert np.all(gaps == 3)
    with pytest.raises(DataError, match="too few"):
        rolling_var(s.tail(310), 0.01, "hs", window=300, horizon="5d")
    with pytest.raises(ParameterError):
        rolling_var(s, 0.01, "garch")


@pytest.mark.data
def test_real_btc_daily_and_eth_hourly(raw_data: Path) -> None:
    btc = read_prices(raw_data / "btctree-btc-power" / "btc_daily.csv").between(
        "2022-01-01", "2024-06-30"
    )
    bt = backtest_var(btc, 0.01, "fhs", window=365, refit_every=30)
    assert bt.n > 500 and 0 <= bt.exceptions < 20
    assert bt.traffic_light.zone in ("green", "yellow", "red")
    eth = read_prices(raw_data / "emanuelgoldman-binance-1h" / "ETHUSDT_1h.csv").between(
        "2023-01-01", "2023-04-30"
    )
    hs = backtest_var(eth, 0.01, "hs", window=720)
    assert hs.n > 2000 and hs.exceptions / hs.n < 0.03
    day = value_at_risk(eth, 0.01, "evt", horizon="1d")
    hour = value_at_risk(eth, 0.01, "evt", horizon="1h")
    assert 2.0 < day.var / hour.var < 8.0
