"""Warm-start recalibration and the engine under it: compiled strike sums, ATM vols,
stopping rule, Jacobian reuse - fast, and the same fit as a fully converged solve."""

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
from volcal.calibration.engine import Tracker
from volcal.calibration.synthetic import synthetic_quotes
from volcal.errors import MethodError
from volcal.models import Bates, Black, Heston, Merton
from volcal.pricing import COSPricer

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
def test_compiled_strike_sums_match_the_textbook_payoff_coefficients(ks, a0, b0, n_terms):
    """The engine never forms the strikes x terms payoff matrix: its rotation recurrence
    must give the same sums as the textbook coefficients with direct cos/sin."""
    from volcal.pricing._fourier_numba import cos_sums

    k = np.array(ks)
    a, b = np.full(1, a0), np.full(1, b0)
    is_call = k >= 0.0
    coef = np.random.default_rng(len(ks)).normal(size=(1, 1, n_terms))
    ref = _direct_payoff(k, is_call, np.full(k.size, a0), np.full(k.size, b0), n_terms) @ coef[0, 0]
    got = cos_sums(coef, np.array([n_terms]), a, b, k, np.zeros(k.size, dtype=np.int64), is_call)
    scale = np.exp(max(b0, 0.0)) + np.exp(np.max(k))  # size of the largest terms
    assert np.max(np.abs(got[0] - ref)) < 1e-13 * scale * n_terms


def test_atm_vols_of_a_fit_are_the_model_atm_vols():
    """For Black the k = 0 call is 2 N(sigma sqrt(T)/2) - 1 (undiscounted, unit forward):
    the engine reproduces it, and a Black fit reports it as every expiry's ATM vol."""
    t = np.array([0.01, 0.1, 1.0, 3.0])
    p = COSPricer().price(Black(0.8), 1.0, 1.0, t, True)
    np.testing.assert_allclose(p, 2 * norm.cdf(0.4 * np.sqrt(t)) - 1, rtol=1e-12)
    q = synthetic_quotes(Black(0.8), list(t), np.linspace(-1.5, 1.5, 7))
    fit = calibrate(q, "black")
    assert fit.params.sigma == pytest.approx(0.8, rel=1e-10)
    for s in fit.slices:
        assert s.atm_vol == pytest.approx(0.8, rel=1e-9)


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


def test_coarse_first_steps_of_a_warm_heston_fit_keep_its_minimum(monkeypatch):
    """A warm Heston fit prices its first steps with the coarse error bounds
    (``njev_coarse``) and ends on the minimum of the fit that prices every step with
    the objective's bounds, to far below the warm tolerance."""
    import importlib

    cal = importlib.import_module("volcal.calibration.calibrate")
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=3)
    start = HESTON.replace(v0=0.4, kappa=2.5, xi=2.0)
    fit = calibrate(q, "heston", start=start)
    # coarse bounds equal to the objective's: every evaluation at the full accuracy
    monkeypatch.setattr(cal, "_COARSE_PHI_TOL", cal._OBJ_PHI_TOL)
    monkeypatch.setattr(cal, "_COARSE_TAIL_TOL", cal._OBJ_TAIL_TOL)
    monkeypatch.setattr(cal, "_COARSE_WING_RTOL", cal._OBJ_WING_RTOL)
    ref = calibrate(q, "heston", start=start)
    assert fit.status == ref.status == "ok"
    assert fit.extra["njev_coarse"] >= 1
    assert fit.extra["njev"] <= ref.extra["njev"] + 1

    def cost(f):
        return float(np.sum(f.weights * f.residuals**2))

    assert cost(fit) == pytest.approx(cost(ref), rel=1e-6)
    np.testing.assert_allclose(fit.params.to_vector(), ref.params.to_vector(), rtol=1e-3)
    lib = volcal.model_iv(fit.params, q.forward, q.strike, q.t)
    np.testing.assert_allclose(fit.model_iv, lib, rtol=0, atol=1e-10)


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
    """Merton with 30% jumps, a one-day expiry quoted within +-6% of the forward: a range
    set from the quotes misses the jumps (found on real chains, 8 vol points off)."""
    true = Merton(sigma=0.45, lam=0.5, mu_j=-0.3, sigma_j=0.4)
    return true, synthetic_quotes(true, [1 / 365, 7 / 365, 0.25], np.linspace(-2, 2, 11))


def test_engine_range_covers_short_dated_jumps():
    """The per-expiry plan (cumulants and Chernoff tail bounds of the model itself) prices
    the one-day jump smile like Merton's Poisson series, to 1e-9 in vol."""
    true, q = _short_jump_quotes()
    ref = volcal.price(true, 1.0, np.exp(q.k), q.t, q.is_call, method="closed")
    got = volcal.price(true, 1.0, np.exp(q.k), q.t, q.is_call, method="cos")
    np.testing.assert_allclose(_iv(q, got), _iv(q, ref), atol=1e-9)


def _iv(q, p):
    return volcal.implied_vol(p, 1.0, np.exp(q.k), q.t, q.is_call, full_output=True).vol


def test_cold_jump_fit_reports_the_library_vols():
    """Cold start from the data-driven guess (small jumps): the fit moves to 30% jumps;
    every evaluation plans for its own model, so the reported vols are the library's."""
    _, q = _short_jump_quotes()
    fit = calibrate(q, "merton")
    assert fit.status == "ok"
    lib = volcal.model_iv(fit.params, q.forward, q.strike, q.t)
    np.testing.assert_allclose(fit.model_iv, lib, rtol=0, atol=1e-10)
    assert fit.rmse_vol < 1e-3


@pytest.mark.parametrize("model", ["heston", "bates"])
def test_rr25_bf25_of_stochastic_fits_follow_the_smile_stats_conventions(model):
    from volcal.calibration.smile_stats import smile_stats

    true = HESTON if model == "heston" else Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12)
    q = synthetic_quotes(true, T_GRID, K_GRID, spread_vol=0.02)
    fit = calibrate(q, model, start=true, pillars=True)
    assert all(np.isfinite(s.rr25) for s in fit.slices)
    assert all(np.isnan(s.rr25) for s in calibrate(q, model, start=true).slices)

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


def test_fat_right_tail_of_a_real_bates_fit_matches_quantlib():
    """Bates with vol of vol 10, as fitted to a real ETH chain (2026-06-10): the moment
    explosion is close to 1, so a 198-day call 6.6x out of the money takes value from far
    out in the tail (a capped range gave 0.90 for QuantLib's 0.78). The library's
    vols - what a fit reports - agree with QuantLib's BatesEngine to 0.02 vol point."""
    m = Bates(0.3228, 11.15, 0.2561, 10.0, -0.4326, 25.23, -0.0315, 0.0840)
    days, k = 198, np.array([1.891, 1.2, 0.3, -0.5])
    t = days / 365
    iv_ref = _ql_bates(m, days, k)
    iv = volcal.model_iv(m, 1.0, np.exp(k), t)
    np.testing.assert_allclose(iv, iv_ref, atol=2e-4)


def test_a_grid_that_cannot_meet_the_error_bound_is_an_error():
    """Never a silently capped grid: a cap on N the error bound exceeds raises."""
    m = Bates(0.3045, 5.506, 0.2833, 10.0, -0.5781, 34.0, -0.0210, 0.0791)
    with pytest.raises(MethodError, match="n_max"):
        COSPricer(n_max=64).price(m, 1.0, 1.2, 198 / 365, True)
    q = synthetic_quotes(HESTON, T_GRID, K_GRID)
    with pytest.raises(MethodError, match="n_max=16"):
        calibrate(q, "heston", n_terms=16)
