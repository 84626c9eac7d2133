"""The compiled shortcuts of the calibration objective and the COS plan give what the
plain computations give: the fused exact-vol residuals (Black inversion, vega, fallback
to scaled price errors), the deep-wing contour prices without their derivatives, and
the number of terms per expiry (the smallest multiple of 8 that meets the error bound
at or below the ladder's rung)."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

from volcal.black import implied_vol
from volcal.black.pricing import unit_vega
from volcal.calibration._objective_numba import MAX_ITERATIONS, exact_residuals
from volcal.calibration.synthetic import synthetic_quotes
from volcal.models import Bates, Heston, Merton
from volcal.pricing import COSPricer
from volcal.pricing._layout import make_surface

CUI = Heston(v0=0.08, kappa=3.0, theta=0.1, xi=0.25, rho=-0.8)  # Cui et al. (2017)


def _numpy_residuals(p, k, t, call, iv_mid, mid, sw, scale):
    """The NumPy formulation the compiled residuals replace."""
    iv = np.asarray(implied_vol(p, 1.0, np.exp(k), t, call, full_output=True).vol, dtype=np.float64)
    ok = np.isfinite(iv)
    with np.errstate(all="ignore"):
        veg = unit_vega(k, t, np.where(ok, iv, iv_mid))
    ok &= veg > 1e-14
    dr = np.where(ok, sw / np.where(ok, veg, 1.0), sw / scale)
    r = np.where(ok, sw * (iv - iv_mid), sw * (p - mid) / scale)
    return r, dr


def test_fused_exact_residuals_match_the_numpy_formulation():
    """Model prices near the quotes, one above the Black upper bound (no implied vol) and
    one deep wing with a vega below 1e-14: residuals and d residual / d price agree to
    rounding, the two special quotes fall back to the scaled price error."""
    q = synthetic_quotes(CUI, [0.05, 0.25, 1.0, 2.0], np.linspace(-3.0, 3.0, 7))
    rng = np.random.default_rng(3)
    p = q.mid * (1.0 + 0.05 * rng.standard_normal(len(q)))
    p[0] = 2.0  # above the upper bound of a put per unit forward (K/F < 2)
    k = np.array(q.k, dtype=np.float64)
    t = np.array(q.t, dtype=np.float64)
    call = np.array(q.is_call, dtype=np.bool_)
    iv_mid = np.array(q.iv_mid, dtype=np.float64)
    mid = np.array(q.mid, dtype=np.float64)
    sw = rng.uniform(0.5, 1.5, len(q))
    scale = np.maximum(np.array(q.vega), 1e-12)
    # a quote whose vega at its model vol is below 1e-14 (42 standard deviations out)
    k[1], iv_mid[1], p[1] = 6.0, 0.05, 1e-300
    ones = np.ones(len(q))
    r, dr = exact_residuals(p, ones, np.exp(k), k, t, call, iv_mid, mid, sw, scale, MAX_ITERATIONS)
    r_ref, dr_ref = _numpy_residuals(p, k, t, call, iv_mid, mid, sw, scale)
    np.testing.assert_allclose(r, r_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(dr, dr_ref, rtol=1e-14, atol=0)
    for i in (0, 1):  # the fallbacks
        assert r[i] == pytest.approx(sw[i] * (p[i] - mid[i]) / scale[i], rel=1e-15)
        assert dr[i] == pytest.approx(sw[i] / scale[i], rel=1e-15)


def test_wing_prices_without_their_derivatives_keep_the_prices():
    """wing_grad=False: the deep-wing prices are the contour's, bit for bit, and the
    derivatives there (from the COS series) agree with the contour's to 1e-4."""
    q = synthetic_quotes(CUI, [0.25, 0.5, 1.0, 2.0], np.linspace(-1.0, 1.0, 5))
    s = make_surface(q.forward, q.strike, q.t, q.k >= 0, 1.0, where="test")
    wing = q.mid < 1e-5 * np.maximum(1.0, np.exp(q.k))
    assert wing.sum() >= 3
    full = COSPricer(phi_tol=1e-10, tail_tol=1e-11, wing_rtol=1e-9)
    lean = COSPricer(phi_tol=1e-10, tail_tol=1e-11, wing_rtol=1e-9, wing_grad=False)
    _, u_full = full.units(s, CUI, grad=True, wing_mask=wing)
    _, u_lean = lean.units(s, CUI, grad=True, wing_mask=wing)
    np.testing.assert_array_equal(u_lean[0], u_full[0])
    np.testing.assert_array_equal(u_lean[1:, ~wing], u_full[1:, ~wing])
    scale = np.max(np.abs(u_full[1:, wing]), axis=0)
    assert np.max(np.abs(u_lean[1:, wing] - u_full[1:, wing]) / scale) < 1e-4


def _tail(model, t, a, b, kmax, n):
    """The plan's bound on the neglected terms at N terms (module docs of cos.py)."""
    from volcal.pricing._fourier_numba import log_cf

    mid = {Heston: 4, Bates: 5, Merton: 1}[type(model)]
    u = (n - 1) * math.pi / (b - a)
    phi = abs(cmath.exp(log_cf(mid, model.to_vector(), u + 0j, t)))
    return phi * max(1.0, math.exp(kmax)) * 2.0 / math.pi / u


@pytest.mark.parametrize(
    "model",
    [
        CUI,
        Heston(v0=0.12, kappa=14.9, theta=0.26, xi=5.7, rho=-0.27),  # a real BTC fit
        Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12),
        Merton(0.5, 3.0, -0.05, 0.15),
    ],
)
@pytest.mark.parametrize("phi_tol", [1e-10, 1e-14])
def test_terms_per_expiry_are_the_smallest_multiple_of_8_meeting_the_bound(model, phi_tol):
    """Compiled plan: every N meets the bound, N - 8 does not (unless N is the floor n);
    the NumPy plan of a generic model gives the same N."""
    q = synthetic_quotes(CUI, [0.01, 0.1, 0.5, 1.0, 3.0], np.linspace(-3.0, 3.0, 7))
    s = make_surface(q.forward, q.strike, q.t, q.k >= 0, 1.0, where="test")
    pr = COSPricer(phi_tol=phi_tol, tail_tol=1e-11)
    plan = pr.plan_surface(s, model)
    kl = s.k[s.live]
    for i, t in enumerate(plan.t):
        kmax = float(np.max(kl[s.t_index == i]))
        n = int(plan.n[i])
        assert n % 8 == 0 and n >= pr.n
        assert _tail(model, t, plan.a[i], plan.b[i], kmax, n) <= phi_tol
        if n > pr.n:
            assert _tail(model, t, plan.a[i], plan.b[i], kmax, n - 8) > phi_tol
    n_gen, _ = pr._generic_n(
        model,
        plan.t,
        plan.a,
        plan.b,
        np.array([np.max(kl[s.t_index == i]) for i in range(plan.t.size)]),
    )
    np.testing.assert_array_equal(n_gen, plan.n)


@pytest.mark.parametrize(
    "model",
    [
        CUI,
        Heston(v0=0.12, kappa=14.9, theta=0.26, xi=5.7, rho=-0.27),
        Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12),
        Merton(0.5, 3.0, -0.05, 0.15),
    ],
)
def test_result_vols_are_the_library_model_iv_bit_for_bit(model):
    """The result's direct path (_library_iv) is volcal.model_iv itself: forwards other
    than 1, deep wings on the contour, ATM options appended."""
    import volcal
    from volcal.calibration.calibrate import _library_iv

    q = synthetic_quotes(model, [0.02, 0.1, 0.5, 1.0, 2.0], np.linspace(-3.0, 3.0, 13))
    fwd = np.concatenate([q.forward, np.ones(q.n_slices)]) * 95_000.0
    strike = np.concatenate([q.strike, np.ones(q.n_slices)]) * 95_000.0
    t = np.concatenate([q.t, q.t_slices])
    got = _library_iv(model, fwd, strike, t)
    np.testing.assert_array_equal(got, volcal.model_iv(model, fwd, strike, t))


def test_chernoff_scan_started_near_its_optimum_is_the_full_scan():
    """Heston and Bates: the tail bound of the scan started a factor 2 below the Gaussian
    optimum equals the scan from s = 0.02 bit for bit, over random parameters (vol of
    variance to 6, maturities of a day to 3 years, both tails, two tolerances)."""
    from volcal.pricing._fourier_numba import _chernoff, cumulants

    rng = np.random.default_rng(11)
    for _ in range(150):
        v0, kappa, theta = rng.uniform(0.01, 1.0), rng.uniform(0.5, 20.0), rng.uniform(0.01, 1)
        xi, rho = rng.uniform(0.1, 6.0), rng.uniform(-0.95, 0.5)
        if rng.random() < 0.3:
            p, mid = np.array([v0, kappa, theta, xi, rho, 2.0, -0.08, 0.12]), 5
        else:
            p, mid = np.array([v0, kappa, theta, xi, rho]), 4
        t = float(np.exp(rng.uniform(np.log(1 / 365), np.log(3.0))))
        c2 = cumulants(mid, p, t)[1]
        for log_tol in (np.log(1e-11) - 0.5, np.log(1e-15)):
            for sign in (1.0, -1.0):
                fast = _chernoff(mid, p, t, log_tol, sign, c2)
                full = _chernoff(mid, p, t, log_tol, sign)
                assert fast == full or (np.isinf(fast) and np.isinf(full))
