"""Greeks in USD and coin terms against finite differences of the price, plus limits."""

from __future__ import annotations

import numpy as np
import pytest

from volcal.black import Greeks, coin_greeks, greeks, price
from volcal.errors import ParameterError

# A spread of moneyness, maturities, vols, both option types and a non-trivial discount.
F = np.array([30_000.0, 30_000.0, 2_000.0, 2_000.0, 65_000.0, 65_000.0])
K = np.array([27_000.0, 36_000.0, 2_000.0, 1_500.0, 80_000.0, 60_000.0])
T = np.array([0.05, 0.5, 1.0, 0.02, 2.0, 0.25])
VOL = np.array([0.6, 0.9, 0.45, 1.3, 0.7, 0.55])
CALL = np.array([True, True, False, False, True, False])
DF = np.exp(-0.04 * T)


def _usd(f=F, k=K, t=T, vol=VOL, df=None):  # type: ignore[no-untyped-def]
    """USD price with the discount read as exp(-r T), r = 4%, as in greeks()' theta."""
    d = np.exp(-0.04 * t) if df is None else df
    return price(f, k, t, vol, CALL, d)


def _coin(f=F, k=K, t=T, vol=VOL):  # type: ignore[no-untyped-def]
    return _usd(f, k, t, vol) / f


def _central(fun, h):  # type: ignore[no-untyped-def]
    """Central difference with one Richardson step: error O(h^4)."""

    def d(step):  # type: ignore[no-untyped-def]
        return (fun(+step) - fun(-step)) / (2.0 * step)

    return (4.0 * d(0.5 * h) - d(h)) / 3.0


def test_usd_greeks_match_finite_differences() -> None:
    g = greeks(F, K, T, VOL, CALL, DF)
    hf, hv, ht = 1e-4 * F, 1e-5, 1e-6
    delta = _central(lambda e: _usd(f=F + e), hf)
    gamma = (_usd(f=F + hf) - 2 * _usd() + _usd(f=F - hf)) / hf**2
    vega = _central(lambda e: _usd(vol=VOL + e), hv)
    theta = -_central(lambda e: _usd(t=T + e), ht)
    vanna = _central(lambda e: greeks(F, K, T, VOL + e, CALL, DF).delta, hv)
    volga = _central(lambda e: greeks(F, K, T, VOL + e, CALL, DF).vega, hv)
    np.testing.assert_allclose(g.delta, delta, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(g.gamma, gamma, rtol=1e-5)
    np.testing.assert_allclose(g.vega, vega, rtol=1e-8)
    np.testing.assert_allclose(g.theta, theta, rtol=1e-6)
    np.testing.assert_allclose(g.vanna, vanna, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(g.volga, volga, rtol=1e-6, atol=1e-8)
    assert g.units == "usd"


def test_coin_greeks_match_finite_differences_of_the_coin_price() -> None:
    gc = coin_greeks(F, K, T, VOL, CALL, DF)
    hf, hv, ht = 1e-4 * F, 1e-5, 1e-6
    dcdf = _central(lambda e: _coin(f=F + e), hf)
    d2cdf2 = (_coin(f=F + hf) - 2 * _coin() + _coin(f=F - hf)) / hf**2
    # delta_c = F dc/dF ; gamma_c = d(delta_c)/dF = dc/dF + F d2c/dF2
    np.testing.assert_allclose(gc.delta, F * dcdf, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gc.gamma, dcdf + F * d2cdf2, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(gc.vega, _central(lambda e: _coin(vol=VOL + e), hv), rtol=1e-8)
    np.testing.assert_allclose(gc.theta, -_central(lambda e: _coin(t=T + e), ht), rtol=1e-6)
    vanna = _central(lambda e: coin_greeks(F, K, T, VOL + e, CALL, DF).delta, hv)
    volga = _central(lambda e: coin_greeks(F, K, T, VOL + e, CALL, DF).vega, hv)
    np.testing.assert_allclose(gc.vanna, vanna, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(gc.volga, volga, rtol=1e-6, atol=1e-12)
    assert gc.units == "coin"


def test_coin_delta_is_usd_delta_minus_coin_price() -> None:
    """Deribit convention for inverse options (design notes): delta_coin = delta - c."""
    g, gc = greeks(F, K, T, VOL, CALL, DF), greeks(F, K, T, VOL, CALL, DF, units="coin")
    np.testing.assert_allclose(gc.delta, g.delta - price(F, K, T, VOL, CALL, DF) / F, rtol=1e-14)


def test_textbook_values() -> None:
    # Hull, "Options, Futures and Other Derivatives", Black-Scholes greeks example
    # (S=49, K=50, r=5%, sigma=20%, T=0.3846): call delta 0.522, gamma 0.066, vega 12.1,
    # theta -4.31 per year. Black-76 with F = S e^{rT}, D = e^{-rT} reproduces them
    # (theta of Black-76 equals the spot theta here because q = 0 and r is constant).
    s0, k, r, sigma, t = 49.0, 50.0, 0.05, 0.2, 0.3846
    f, d = s0 * np.exp(r * t), np.exp(-r * t)
    g = greeks(f, k, t, sigma, True, d)
    spot_delta = float(g.delta) * f / s0  # dV/dS = dV/dF * dF/dS
    spot_gamma = float(g.gamma) * (f / s0) ** 2
    assert spot_delta == pytest.approx(0.522, abs=5e-4)
    assert spot_gamma == pytest.approx(0.066, abs=5e-4)
    assert float(g.vega) == pytest.approx(12.1, abs=0.05)
    # Spot-space theta at fixed S differs from forward-space theta at fixed F by the drift
    # of the forward: Theta_S = Theta_F - r S Delta_S.
    assert float(g.theta) - r * s0 * spot_delta == pytest.approx(-4.31, abs=0.01)


def test_put_call_parity_of_greeks() -> None:
    gc = greeks(F, K, T, VOL, True, DF)
    gp = greeks(F, K, T, VOL, False, DF)
    np.testing.assert_allclose(gc.delta - gp.delta, DF, rtol=1e-14)
    for name in ("gamma", "vega", "vanna", "volga"):
        np.testing.assert_allclose(getattr(gc, name), getattr(gp, name), rtol=1e-14)


def test_zero_vol_and_expiry_limits() -> None:
    k = np.array([80.0, 100.0, 120.0])
    g = greeks(100.0, k, 0.5, 0.0, True, 0.9)
    np.testing.assert_array_equal(g.delta, [0.9, 0.45, 0.0])
    assert g.gamma[0] == 0.0 and np.isposinf(g.gamma[1]) and g.gamma[2] == 0.0
    np.testing.assert_allclose(g.vega, [0.0, 0.9 * 100.0 * np.sqrt(0.5) / np.sqrt(2 * np.pi), 0.0])
    gt = greeks(100.0, k, 0.0, 0.5, False)
    np.testing.assert_array_equal(gt.delta, [0.0, -0.5, -1.0])
    assert np.isneginf(gt.theta[1]) and gt.theta[0] == 0.0
    assert not np.isnan(np.concatenate([getattr(g, n) for n in Greeks._NAMES])).any()
    # the limit is the limit: a tiny positive vol gives (almost) the same delta away from F=K
    np.testing.assert_allclose(greeks(100.0, k[[0, 2]], 0.5, 1e-6, True, 0.9).delta, [0.9, 0.0])


def test_reports_and_validation() -> None:
    g = greeks(100.0, 100.0, 1.0, 0.2, True)
    assert "delta" in g.summary() and "usd" in g.summary()
    d = g.to_dict()
    assert d["units"] == "usd" and len(d["gamma"]) == 1
    assert greeks(100.0, 100.0, 0.0, 0.2, True).to_dict()["gamma"] == ["inf"]
    with pytest.raises(ParameterError):
        greeks(100.0, 100.0, 1.0, 0.2, True, units="eur")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        greeks(100.0, -1.0, 1.0, 0.2, True)
