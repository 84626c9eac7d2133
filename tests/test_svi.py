"""Raw SVI: the model (Gatheral 2004; Gatheral & Jacquier 2014), the quasi-explicit
per-expiry fit (Zeliade 2009) and the smile statistics (ATM, RR25, BF25)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

import volcal
from volcal.black import price as black_price
from volcal.calibration.smile_stats import smile_stats
from volcal.errors import DataError, ParameterError
from volcal.models import SVI
from volcal.models.svi_fit import _inner, _inner_numpy, fit_svi_slice
from volcal.synthetic import synthetic_chain

# Gatheral & Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Quantitative
# Finance 14(1), section 5.1: Axel Vogt's slice, t = 1, with negative g(k) (a negative
# density) around k = 0.7 although it respects Lee's bound and positive variance.
VOGT = SVI(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)


def test_total_variance_formula() -> None:
    s = SVI(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.2)
    k = np.array([-0.5, 0.0, 0.1, 0.7])
    d = k - 0.1
    expected = 0.04 + 0.4 * (-0.4 * d + np.sqrt(d * d + 0.04))
    assert np.allclose(s.total_variance(k), expected, rtol=0, atol=1e-15)
    assert np.allclose(s.implied_vol(k, 0.5), np.sqrt(expected / 0.5))
    assert s.min_total_variance == pytest.approx(0.04 + 0.4 * 0.2 * math.sqrt(1 - 0.16))
    assert s.lee_slope == pytest.approx(0.4 * 1.4)


def test_g_matches_the_density_it_stands_for() -> None:
    # g(k) = (1 - k w'/2w)^2 - w'^2/4 (1/w + 1/4) + w''/2 is the density of k under the
    # Black prices of the smile, scaled: p(k) = g(k)/sqrt(2 pi w) exp(-d2^2/2)
    s = SVI(a=0.02, b=0.3, rho=-0.5, m=0.05, sigma=0.15)
    k = np.linspace(-0.6, 0.6, 13)
    h = 1e-4
    w = s.total_variance
    dw = (w(k + h) - w(k - h)) / (2 * h)
    d2w = (w(k + h) - 2 * w(k) + w(k - h)) / h**2
    ww = w(k)
    g_fd = (1 - k * dw / (2 * ww)) ** 2 - dw**2 / 4 * (1 / ww + 0.25) + d2w / 2
    assert np.allclose(s.g(k), g_fd, atol=1e-5)
    # the density from second differences of undiscounted call prices in strike
    t = 1.0
    strikes = np.exp(k)

    def call(x: np.ndarray) -> np.ndarray:
        return np.asarray(black_price(1.0, x, t, s.implied_vol(np.log(x), t), True))

    hk = 1e-3
    dens = (call(strikes + hk) - 2 * call(strikes) + call(strikes - hk)) / hk**2
    d2 = -k / np.sqrt(ww) - np.sqrt(ww) / 2
    dens_g = s.g(k) / np.sqrt(2 * np.pi * ww) * np.exp(-0.5 * d2 * d2) / strikes
    assert np.allclose(dens, dens_g, rtol=2e-3, atol=1e-6)


def test_vogt_slice_is_flagged_and_a_fit_is_not() -> None:
    assert VOGT.min_g() < 0
    assert not VOGT.is_arbitrage_free()
    k = np.linspace(-1.0, 1.5, 41)
    fit = fit_svi_slice(k, VOGT.implied_vol(k, 1.0), 1.0)
    assert isinstance(fit, SVI)
    assert fit.is_arbitrage_free()
    # the closest arbitrage-free smile stays close to the data (a few vol points)
    assert np.max(np.abs(fit.implied_vol(k, 1.0) - VOGT.implied_vol(k, 1.0))) < 0.03


@pytest.mark.parametrize(
    "bad",
    [
        {"b": -0.1},
        {"rho": 1.0},
        {"rho": -1.5},
        {"sigma": 0.0},
        {"a": float("nan")},
    ],
)
def test_invalid_parameters_raise(bad: dict[str, float]) -> None:
    args = {"a": 0.01, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1, **bad}
    with pytest.raises(ParameterError):
        SVI(**args)


def test_lee_bound_and_negative_variance_are_arbitrage() -> None:
    assert not SVI(a=0.01, b=1.9, rho=0.5, m=0.0, sigma=0.1).is_arbitrage_free()  # b(1+|rho|) > 2
    with pytest.raises(ParameterError, match="minimal total variance"):
        SVI(a=-0.05, b=0.1, rho=0.0, m=0.0, sigma=0.1)
    assert SVI(a=0.01, b=0.1, rho=-0.3, m=0.0, sigma=0.1).is_arbitrage_free()


def test_vector_round_trip() -> None:
    s = SVI(a=0.01, b=0.2, rho=-0.3, m=0.05, sigma=0.2)
    assert SVI.from_vector(s.to_vector()) == s
    assert json.loads(json.dumps(s.to_dict()))["rho"] == -0.3


@pytest.mark.parametrize("t", [1.0 / 365, 7.0 / 365, 0.25, 2.0])
def test_noise_free_slice_is_recovered(t: float) -> None:
    true = SVI(a=0.2 * t * 0.3, b=0.25 * math.sqrt(t), rho=-0.35, m=0.02, sigma=0.12)
    span = 6 * math.sqrt(true.total_variance(0.0))
    k = np.linspace(-span, 0.6 * span, 31)
    fit = fit_svi_slice(k, true.implied_vol(k, t), t)
    assert isinstance(fit, SVI)
    # the grid search plus Newton polish stops within a thousandth of a vol point
    assert np.max(np.abs(fit.implied_vol(k, t) - true.implied_vol(k, t))) < 1e-5
    assert np.allclose(fit.to_vector(), true.to_vector(), rtol=1e-3, atol=1e-6)


def test_compiled_inner_problem_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    k = np.sort(rng.uniform(-0.4, 0.3, 20))
    v = SVI(a=0.01, b=0.1, rho=-0.3, m=0.0, sigma=0.1).total_variance(k) + rng.normal(0, 1e-4, 20)
    wt = rng.uniform(0.5, 1.5, 20)
    wt /= wt.sum()
    m = rng.uniform(-0.3, 0.3, 50)
    s = np.exp(rng.uniform(-5, 0, 50))
    for a, b in zip(_inner(k, v, wt, m, s), _inner_numpy(k, v, wt, m, s), strict=True):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-13)


def test_fit_is_admissible_and_at_least_as_good_as_the_truth() -> None:
    """On 60 random admissible smiles with 1 % noise the fit's weighted cost never
    exceeds that of the generating smile (a candidate of the admissible set).

    The search (grid, zoom, Newton) is not a proof of global optimality: property
    search found a very narrow basin (sigma = 0.055, rho = 0) where it ends at twice the
    optimal cost; such smiles are far sharper than any quoted crypto smile.
    """
    rng = np.random.default_rng(20261124)
    t = 0.5
    k = np.linspace(-0.8, 0.5, 25)
    done = 0
    while done < 60:
        args = rng.uniform([0.001, 0.02, -0.9, -0.1, 0.03], [0.05, 0.6, 0.5, 0.1, 0.4])
        try:
            true = SVI(*args)
        except ParameterError:
            continue
        if not true.is_arbitrage_free():
            continue
        done += 1
        iv = true.implied_vol(k, t) * (1 + rng.normal(0, 0.01, k.size))
        fit, info = fit_svi_slice(k, iv, t, full_output=True)
        assert fit.is_arbitrage_free()
        wt = 1.0 / (2 * iv * t) ** 2
        wt /= wt.sum()
        cost_true = float(np.sum(wt * (true.total_variance(k) - iv * iv * t) ** 2))
        assert info.cost <= cost_true * (1 + 1e-3) + 1e-14, true


def test_bad_slice_inputs() -> None:
    k = np.linspace(-0.2, 0.2, 5)
    with pytest.raises(DataError, match="equal"):
        fit_svi_slice(k, np.ones(4) * 0.5, 0.1)
    with pytest.raises(DataError, match="finite"):
        fit_svi_slice(k, np.array([0.5, np.nan, 0.5, 0.5, 0.5]), 0.1)
    with pytest.raises(ParameterError, match="t must be"):
        fit_svi_slice(k, np.ones(5) * 0.5, 0.0)
    with pytest.raises(DataError, match="weights"):
        fit_svi_slice(k, np.ones(5) * 0.5, 0.1, weights=-np.ones(5))


def test_smile_stats_against_hand_computation() -> None:
    s = SVI(a=0.01, b=0.12, rho=-0.4, m=0.02, sigma=0.15)
    t = 0.25
    st_ = smile_stats(s, t)
    assert st_.atm_vol == pytest.approx(math.sqrt(s.total_variance(0.0) / t), rel=1e-12)

    def strike(target: float, call: bool) -> float:
        def f(k: float) -> float:
            sw = math.sqrt(s.total_variance(k))
            d1 = -k / sw + sw / 2
            return (norm.cdf(d1) if call else norm.cdf(d1) - 1) - target

        return brentq(f, -2.0, 2.0, xtol=1e-14)

    kc, kp = strike(0.25, True), strike(-0.25, False)
    vc, vp = float(s.implied_vol(kc, t)), float(s.implied_vol(kp, t))
    assert st_.k_call25 == pytest.approx(kc, abs=1e-9)
    assert st_.k_put25 == pytest.approx(kp, abs=1e-9)
    assert st_.rr25 == pytest.approx(vc - vp, abs=1e-9)
    assert st_.bf25 == pytest.approx(0.5 * (vc + vp) - st_.atm_vol, abs=1e-9)
    assert st_.rr25 < 0  # rho < 0: puts richer


def test_flat_smile_has_no_risk_reversal_or_butterfly() -> None:
    flat = SVI(a=0.02, b=0.0, rho=0.0, m=0.0, sigma=0.1)
    for conv in ("forward", "premium_adjusted"):
        st_ = smile_stats(flat, 0.5, delta=conv)
        assert st_.atm_vol == pytest.approx(0.2, rel=1e-12)
        assert abs(st_.rr25) < 1e-12 and abs(st_.bf25) < 1e-12
    fwd = smile_stats(flat, 0.5)
    pa = smile_stats(flat, 0.5, delta="premium_adjusted")
    assert pa.k_call25 < fwd.k_call25  # the premium makes the 25-delta call nearer the money
    with pytest.raises(ParameterError, match="delta"):
        smile_stats(flat, 0.5, delta="spot")


def test_fit_svi_on_a_synthetic_chain() -> None:
    chain = volcal.clean(synthetic_chain(seed=1))
    fit = volcal.calibrate(chain, "svi")
    assert fit.status == "ok"
    assert fit.rmse_vol < 1.0 and fit.inside_spread > 0.8
    d = json.loads(json.dumps(fit.to_dict()))
    for key in ("model", "rmse_vol", "inside_spread", "n_used", "elapsed_s", "slices"):
        assert key in d
    for sl in d["slices"]:
        assert {"expiry", "params", "rmse_vol", "inside_spread", "n_used"} <= set(sl)
        assert set(sl["params"]) == {"a", "b", "rho", "m", "sigma"}
    assert d["n_used"] == sum(sl["n_used"] for sl in d["slices"])
    assert fit.params.is_arbitrage_free()
