"""Warm-start recalibration: compiled COS payoff, ATM from the calibration grid, stopping
rule, Jacobian reuse - fast, and the same fit as a fully converged solve."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import require
from scipy.stats import norm

import volcal
from volcal.calibration import calibrate
from volcal.calibration._cos_numba import cos_payoff
from volcal.calibration.engine import Tracker
from volcal.calibration.fourier import CosSurface, _cos_payoff
from volcal.calibration.synthetic import synthetic_quotes
from volcal.models import Bates, Black, Heston, Merton

T_GRID = [0.02, 0.05, 0.1, 0.25, 0.5, 1.0]
K_GRID = np.linspace(-2.0, 2.0, 13)
HESTON = Heston(v0=0.36, kappa=3.0, theta=0.5, xi=1.8, rho=-0.3)


def _direct_payoff(k, is_call, a, b, n_terms):
    """Textbook COS coefficients (Fang & Oosterlee 2008, eq. 22-23) with direct cos/sin."""
    u = np.arange(n_terms)[None, :] * np.pi / (b - a)[:, None]
    c = np.clip(k, a, b)[:, None]
    aa, bb = a[:, None], b[:, None]
    arg = u * (c - aa)
    cs, sn = np.cos(arg), np.sin(arg)
    us = np.where(u == 0, 1.0, u)
    psi_ac = np.where(u == 0, c - aa, sn / us)
    psi_cb = np.where(u == 0, bb - c, -sn / us)
    sign = np.where(np.arange(n_terms) % 2 == 0, 1.0, -1.0)[None, :]
    chi_ac = (cs * np.exp(c) - np.exp(aa) + u * sn * np.exp(c)) / (1 + u * u)
    chi_cb = (sign * np.exp(bb) - cs * np.exp(c) - u * sn * np.exp(c)) / (1 + u * u)
    ek = np.exp(k)[:, None]
    v = (
        np.where(is_call[:, None], chi_cb - ek * psi_cb, ek * psi_ac - chi_ac)
        * (2 / (b - a))[:, None]
    )
    v[:, 0] *= 0.5
    return v


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=20),
    st.floats(-9.0, -1.0),
    st.floats(1.0, 9.0),
    st.sampled_from([16, 100, 256]),
)
def test_compiled_and_numpy_payoffs_match_the_textbook_formula(ks, a0, b0, n_terms):
    k = np.array(ks)
    a, b = np.full(k.size, a0), np.full(k.size, b0)
    is_call = k >= 0.0
    ref = _direct_payoff(k, is_call, a, b, n_terms)
    scale = np.exp(max(b0, 0.0)) + np.exp(np.max(k))  # size of the largest terms
    for v in (_cos_payoff(k, is_call, a, b, n_terms), cos_payoff(k, is_call, a, b, n_terms)):
        assert v.shape == (k.size, n_terms)
        assert np.max(np.abs(v - ref)) < 1e-13 * scale * n_terms**0.5


def test_atm_prices_from_the_calibration_grid_give_black_atm_vol():
    """For Black the k = 0 call is 2 N(sigma sqrt(T)/2) - 1 (undiscounted, unit forward)."""
    t = np.array([0.01, 0.1, 1.0, 3.0])
    k = np.array([-0.1, 0.2, -0.5, 1.0])
    surf = CosSurface(k, k >= 0, np.arange(4), t, np.full(4, 1.0))
    grid = surf.grid_values(Black(0.8))
    p, atm = surf.prices_from_grid(grid), surf.atm_from_grid(grid)
    np.testing.assert_allclose(atm, 2 * norm.cdf(0.4 * np.sqrt(t)) - 1, rtol=1e-10)
    np.testing.assert_allclose(p, surf.prices(Black(0.8)), rtol=0, atol=0)
    ref = volcal.price(Black(0.8), 1.0, np.exp(k), t, k >= 0)
    np.testing.assert_allclose(p, ref, rtol=1e-9)
    # any further strike on the same grid: the same numbers as the quotes' own rows
    again = surf.rows_from_grid(grid, k, k >= 0, np.arange(4))
    np.testing.assert_allclose(again, p, rtol=0, atol=1e-10)  # summation order only


@pytest.mark.parametrize("model", ["heston", "bates"])
def test_warm_start_reaches_the_converged_fit(model):
    """A warm start stops at a relative cost decrease of 1e-6; the fit must equal the
    fully converged one (cold start, tolerance 1e-10) to a tiny fraction of a vol point."""
    true = HESTON if model == "heston" else Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12)
    q = synthetic_quotes(true, T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=7)
    cold = calibrate(q, model)
    moved = {n: 1.1 * getattr(cold.params, n) for n in ("v0", "kappa", "theta", "xi")}
    warm = calibrate(q, model, start=cold.params.replace(**moved))
    assert warm.status == "ok" and warm.extra["warm_start"] and not warm.extra["global_search"]
    assert warm.rmse_vol <= cold.rmse_vol * (1 + 1e-4)
    assert warm.rmse_vol >= cold.rmse_vol * (1 - 1e-4)  # cold is the optimum
    assert warm.nfev < cold.nfev
    # standard errors from the reused Jacobian agree with the converged ones
    assert warm.stderr is not None and cold.stderr is not None
    for n in ("v0", "kappa", "rho"):
        assert warm.stderr[n] == pytest.approx(cold.stderr[n], rel=0.05)


def test_tracker_keeps_the_jacobian_of_the_best_point_only():
    def f(y):
        return np.array([y[0] - 1.0, 2.0 * (y[0] - 1.0)])

    def fj(y):
        return f(y), np.array([[1.0], [2.0]])

    tr = Tracker(f, fj, deadline=np.inf)
    tr.jac(np.array([3.0]))
    assert tr.best_rj is not None
    tr.fun(np.array([2.0]))  # better point without a Jacobian
    assert tr.best_rj is None
    tr.jac(np.array([2.0]))
    assert tr.best_rj is not None and tr.best_rj[0][0] == 1.0
    tr.jac(np.array([5.0]))  # worse point: the best one's Jacobian is kept
    assert tr.best_rj is not None and tr.best_rj[0][0] == 1.0
    tr.eager_jac = True
    r = tr.fun(np.array([1.5]))
    assert r[0] == 0.5 and tr.best_rj is not None and tr.best_rj[0][0] == 0.5


@pytest.mark.data
def test_warm_series_on_real_snapshots_matches_converged_fits(snapshot_dir, monkeypatch):
    """Two consecutive 2026-01-23 BTC snapshots: warm from the first fit, the second
    fit equals a fully converged solve from the same start."""
    import importlib

    names = [
        "deribit_options_snapshot_20260123T035907Z.csv",
        "deribit_options_snapshot_20260123T092319Z.csv",
    ]
    chains = [volcal.clean(volcal.read_chain(snapshot_dir / n, currency="BTC")) for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", volcal.errors.CalibrationWarning)
        first = calibrate(chains[0], "heston")
        warm = calibrate(chains[1], "heston", start=first)
        # the same local solve with the cold tolerance
        monkeypatch.setattr(
            importlib.import_module("volcal.calibration.calibrate"), "_WARM_FTOL", 1e-10
        )
        full = calibrate(chains[1], "heston", start=first)
    assert warm.status == "ok"

    def cost(fit):  # the weighted objective the solver minimises
        return float(np.sum(fit.weights * fit.residuals**2))

    # the stopping rule ends when the cost falls by < 1e-6 per step: the objective is
    # within 1e-5 of the converged one; the unweighted RMSE within 0.1% (flat directions)
    assert cost(warm) == pytest.approx(cost(full), rel=1e-5)
    assert warm.rmse_vol == pytest.approx(full.rmse_vol, rel=1e-3)
    assert warm.nfev < full.nfev


# ------------------------------------------------------------------ grid accuracy
def _short_jump_quotes():
    """Merton with 30% jumps, a one-day expiry quoted within +-6% of the forward: the
    market-based interval misses the jumps (found on real chains, 8 vol points off)."""
    true = Merton(sigma=0.45, lam=0.5, mu_j=-0.3, sigma_j=0.4)
    return true, synthetic_quotes(true, [1 / 365, 7 / 365, 0.25], np.linspace(-2, 2, 11))


def test_market_interval_misses_jumps_and_the_cumulant_rule_fixes_it():
    true, q = _short_jump_quotes()
    ref = volcal.price(true, 1.0, np.exp(q.k), q.t, q.is_call, method="lewis")
    vref = _iv(q, ref)
    args = (q.k, q.is_call, q.slice_index, q.t_slices, np.full(q.n_slices, 0.6))
    narrow = CosSurface(*args)
    assert narrow.too_narrow(true)
    wide = CosSurface(*args, model=true, max_terms=4096)
    assert not wide.too_narrow(true)
    assert wide.n_terms > narrow.n_terms  # node spacing kept
    assert np.max(np.abs(_iv(q, narrow.prices(true)) - vref)) > 0.01  # > 1 vol point off
    # the cumulant rule alone leaves rare large jumps slightly cut (0.04 vol point on the
    # one-day 2-sd put); twice that range at the same spacing is exact - what the
    # calibration's accuracy check (range, then terms) does
    assert np.max(np.abs(_iv(q, wide.prices(true)) - vref)) < 5e-4
    finer = wide.refined(2.0, 2)
    assert finer.n_terms == 2 * wide.n_terms
    assert np.max(np.abs(_iv(q, finer.prices(true)) - vref)) < 2e-6
    np.testing.assert_allclose(wide.refined(1.0, 2).half_width, wide.half_width)


def _iv(q, p):
    return volcal.implied_vol(p, 1.0, np.exp(q.k), q.t, q.is_call, full_output=True).vol


def test_calibration_replans_its_grid_for_a_fitted_jump_model():
    """Cold start from the data-driven guess (small jumps): the fit moves to 30% jumps,
    the grid is re-planned and the reported vols are the library pricer's."""
    _, q = _short_jump_quotes()
    fit = calibrate(q, "merton")
    assert fit.status == "ok"
    assert fit.extra["cos_replans"] >= 1
    lib = volcal.model_iv(fit.params, 1.0, np.exp(q.k), q.t)
    assert np.max(np.abs(lib - fit.model_iv)) < 5e-4  # 0.05 vol point
    assert fit.rmse_vol < 1e-3


@pytest.mark.parametrize("model", ["heston", "bates"])
def test_rr25_bf25_of_stochastic_fits_follow_the_smile_stats_conventions(model):
    from volcal.calibration.smile_stats import smile_stats

    true = HESTON if model == "heston" else Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12)
    q = synthetic_quotes(true, T_GRID, K_GRID, spread_vol=0.02)
    fit = calibrate(q, model, start=true)

    class Smile:  # the fitted model's smile through the library pricer
        def implied_vol(self, k, t):
            with warnings.catch_warnings():  # no vol far out on the scan grid: NaN
                warnings.simplefilter("ignore", volcal.errors.DataWarning)
                return volcal.model_iv(fit.params, 1.0, np.exp(np.asarray(k, dtype=float)), t)

    for s in fit.slices:
        ref = smile_stats(Smile(), s.t)
        assert s.atm_vol == pytest.approx(ref.atm_vol, abs=1e-7)
        assert s.rr25 == pytest.approx(ref.rr25, abs=1e-6)
        assert s.bf25 == pytest.approx(ref.bf25, abs=1e-6)
    assert fit.slices[0].rr25 < 0  # rho < 0: puts richer


def _ql_bates(m, days, k):
    ql = require("QuantLib")
    today = ql.Date(1, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, ql.Actual365Fixed()))
    proc = ql.BatesProcess(
        curve, curve, ql.QuoteHandle(ql.SimpleQuote(1.0)), *[float(x) for x in m.to_vector()]
    )
    engine = ql.BatesEngine(ql.BatesModel(proc), 1e-12, 1_000_000)
    ref = []
    for kk in k:
        kind = ql.Option.Call if kk >= 0 else ql.Option.Put
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(kind, float(np.exp(kk))), ql.EuropeanExercise(today + days)
        )
        opt.setPricingEngine(engine)
        ref.append(opt.NPV())
    t = days / 365
    return volcal.implied_vol(np.array(ref), 1.0, np.exp(k), t, k >= 0, full_output=True).vol


def test_fat_right_tail_at_the_range_cap_is_priced_by_parity():
    """Bates with vol of vol 10 (its bound), as fitted to a real ETH chain (2026-06-10):
    the moment explosion is close to 1, so a 198-day call 6.6x out of the money takes
    value from beyond any usable range. At the cap calls are priced by parity from the
    put coefficients (the direct route gave 0.90 for QuantLib's 0.78)."""
    m = Bates(0.3228, 11.15, 0.2561, 10.0, -0.4326, 25.23, -0.0315, 0.0840)
    days, k = 198, np.array([1.891, 1.2, 0.3, -0.5])
    t = days / 365
    iv_ref = _ql_bates(m, days, k)
    surf = CosSurface(k, k >= 0, np.zeros(4, dtype=int), np.array([t]), np.array([1.0]), model=m)
    assert surf.parity[0] and surf.half_width[0] == pytest.approx(8.0)
    iv = volcal.implied_vol(surf.prices(m), 1.0, np.exp(k), t, k >= 0, full_output=True).vol
    np.testing.assert_allclose(iv, iv_ref, atol=2e-4)  # 0.02 vol point


def test_mass_beyond_the_largest_range_is_reported_not_hidden():
    """The same fit from its first pass (kappa 5.5): mass lies beyond +-8 in log-moneyness
    on both sides, parity cannot help; the grid check says the accuracy is unverified."""
    from volcal.calibration.calibrate import _check_grid

    m = Bates(0.3045, 5.506, 0.2833, 10.0, -0.5781, 34.0, -0.0210, 0.0791)
    q = synthetic_quotes(Heston(0.3, 5.0, 0.28, 2.0, -0.5), [198 / 365], np.linspace(-2, 2, 9))
    surf = CosSurface(q.k, q.is_call, q.slice_index, q.t_slices, np.array([1.0]), model=m)
    assert surf.parity[0]
    new, err = _check_grid(surf, m, q)
    assert new is None and np.isinf(err)
