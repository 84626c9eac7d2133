"""SSVI / eSSVI models: formulas, Gatheral-Jacquier conditions by hand, derivatives,
and arbitrage-free time interpolation (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from volcal.errors import ParameterError
from volcal.models.ssvi import (
    ESSVI,
    SSVI,
    essvi_total_variance,
    heston_phi,
    power_phi,
)
from volcal.surface import VolSurface, check_arbitrage


def gj_total_variance(k, theta, rho, phi):
    """Gatheral & Jacquier (2014) eq. 4.1 written out independently."""
    return 0.5 * theta * (1 + rho * phi * k + np.sqrt((phi * k + rho) ** 2 + 1 - rho**2))


def test_slice_formula_matches_gatheral_jacquier_form() -> None:
    k = np.linspace(-2, 2, 41)
    theta, rho, phi = 0.09, -0.4, 1.7
    got = essvi_total_variance(k, theta, rho, theta * phi)
    np.testing.assert_allclose(got, gj_total_variance(k, theta, rho, phi), rtol=1e-14)
    assert float(essvi_total_variance(0.0, theta, rho, theta * phi)) == pytest.approx(theta)
    # wing slopes psi (1 +- rho) / 2
    far = 1e6
    right = essvi_total_variance(far + 1, theta, rho, theta * phi) - essvi_total_variance(
        far, theta, rho, theta * phi
    )
    assert float(right) == pytest.approx(theta * phi * (1 + rho) / 2, rel=1e-6)


def test_phi_families_by_hand() -> None:
    # power law at theta = 1: eta * 1 * 2^(gamma - 1)
    assert float(power_phi(1.0, 0.8, 0.3)) == pytest.approx(0.8 * 2 ** (-0.7))
    # Heston-like: (1 - (1 - e^-x)/x)/x at x = lam theta = 2
    x = 2.0
    assert float(heston_phi(1.0, 2.0)) == pytest.approx((1 - (1 - np.exp(-x)) / x) / x)
    # small-x series joins the closed form continuously
    assert float(heston_phi(0.999e-4, 1.0)) == pytest.approx(
        float(heston_phi(1.001e-4, 1.0)), rel=1e-6
    )
    assert float(heston_phi(1e-12, 1.0)) == pytest.approx(0.5)


def test_ssvi_conditions_by_hand() -> None:
    ok = SSVI(t=(0.1, 1.0), theta=(0.01, 0.1), rho=-0.5, eta=1.3, gamma=0.4)
    assert ok.conditions()["ok"]  # eta (1 + |rho|) = 1.95 <= 2
    bad = SSVI(t=(0.1, 1.0), theta=(0.01, 0.1), rho=-0.5, eta=1.4, gamma=0.4)
    c = bad.conditions()
    assert not c["butterfly"] and c["calendar"]  # 2.1 > 2
    assert not SSVI(t=(0.1, 1.0), theta=(0.01, 0.1), rho=0.0, eta=1.0, gamma=0.6).conditions()["ok"]
    dec = SSVI(t=(0.1, 1.0), theta=(0.02, 0.01), rho=0.0, eta=1.0, gamma=0.4)
    assert not dec.conditions()["calendar"]
    hes = SSVI(t=(0.5,), theta=(0.05,), rho=0.6, phi="heston", lam=0.4)
    assert hes.conditions()["ok"]  # lam >= (1 + 0.6)/4 = 0.4
    assert not SSVI(t=(0.5,), theta=(0.05,), rho=0.6, phi="heston", lam=0.39).conditions()["ok"]


def test_essvi_conditions_by_hand() -> None:
    good = ESSVI(t=(0.1, 0.5), theta=(0.02, 0.09), rho=(-0.4, -0.3), psi=(0.1, 0.2))
    assert good.conditions()["ok"]
    # psi^2 (1 + |rho|) = 0.25 * 1.4 = 0.35 > 4 theta = 0.08: butterfly
    fly = ESSVI(t=(0.1,), theta=(0.02,), rho=(-0.4,), psi=(0.5,))
    assert not fly.conditions()["butterfly"]
    # equal theta, psi rising from 0 with rho = 0.9: both wing slopes rise, yet the
    # smiles cross at k = -1 (w = 0.571 < 1): the grid check must catch it
    cross = ESSVI(t=(0.1, 0.2), theta=(1.0, 1.0), rho=(0.0, 0.9), psi=(0.0, 0.5))
    assert float(essvi_total_variance(-1.0, 1.0, 0.9, 0.5)) == pytest.approx(0.5708, abs=1e-4)
    c = cross.conditions()
    assert c["butterfly"] and not c["calendar"]
    assert not check_arbitrage(cross).ok


def test_validation_errors() -> None:
    with pytest.raises(ParameterError):
        ESSVI(t=(0.2, 0.1), theta=(0.01, 0.02), rho=(0, 0), psi=(0.1, 0.1))
    with pytest.raises(ParameterError):
        ESSVI(t=(0.1,), theta=(0.01,), rho=(1.0,), psi=(0.1,))
    with pytest.raises(ParameterError):
        SSVI(t=(0.1,), theta=(-0.01,), rho=0.0)
    with pytest.raises(ParameterError):
        SSVI(t=(0.1,), theta=(0.01,), rho=0.0, phi="cubic")
    with pytest.raises(ParameterError):
        ESSVI(t=(0.1,), theta=(0.01,), rho=(0.0,), psi=(0.1,)).total_variance(0.0, 0.0)


@pytest.mark.parametrize(
    "model",
    [
        SSVI(t=(0.05, 0.25, 1.0), theta=(0.01, 0.04, 0.2), rho=-0.3, eta=1.2, gamma=0.45),
        SSVI(t=(0.05, 0.25, 1.0), theta=(0.01, 0.04, 0.2), rho=-0.3, phi="heston", lam=2.0),
        ESSVI(
            t=(0.05, 0.25, 1.0),
            theta=(0.01, 0.04, 0.2),
            rho=(-0.5, -0.3, -0.2),
            psi=(0.08, 0.15, 0.3),
        ),
    ],
)
def test_analytic_derivatives_match_finite_differences(model) -> None:
    k = np.array([-0.8, -0.2, 0.0, 0.3, 1.0])
    for t in (0.02, 0.1, 0.6, 2.0):  # before, between and after the nodes
        w, wk, wkk, wt = model.derivatives(k, t)
        h = 1e-5
        fd_k = (model.total_variance(k + h, t) - model.total_variance(k - h, t)) / (2 * h)
        fd_kk = (model.total_variance(k + h, t) - 2 * w + model.total_variance(k - h, t)) / h**2
        fd_t = (model.total_variance(k, t + 1e-7) - model.total_variance(k, t - 1e-7)) / 2e-7
        np.testing.assert_allclose(wk, fd_k, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(wkk, fd_kk, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(wt, fd_t, rtol=1e-5, atol=1e-9)


def test_extrapolation_keeps_end_smiles() -> None:
    e = ESSVI(t=(0.1, 0.5), theta=(0.02, 0.09), rho=(-0.4, -0.3), psi=(0.1, 0.2))
    k = np.linspace(-1, 1, 11)
    # before the first node: w scales with t, so implied vols equal the first slice's
    np.testing.assert_allclose(e.implied_vol(k, 0.02), e.implied_vol(k, 0.1), rtol=1e-12)
    # after the last: ATM vol flat, total variance still increasing
    assert float(e.implied_vol(0.0, 3.0)) == pytest.approx(float(e.implied_vol(0.0, 0.5)))
    assert np.all(e.total_variance(k, 3.0) > e.total_variance(k, 0.5))


@st.composite
def essvi_nodes(draw):
    """Random eSSVI nodes built to satisfy the node constraints of the fit."""
    n = draw(st.integers(2, 5))
    t = np.cumsum(draw(st.lists(st.floats(0.005, 0.5), min_size=n, max_size=n)))
    theta, rho, psi = [], [], []
    th_p, u_p, d_p = 0.0, 0.0, 0.0
    for _ in range(n):
        th = th_p + draw(st.floats(1e-4, 0.2))
        r = draw(st.floats(-0.95, 0.95))
        lo = max(u_p / (1 + r), d_p / (1 - r))
        hi = min(4 / (1 + abs(r)) * 0.999, np.sqrt(4 * th / (1 + abs(r))))
        assume(hi > lo)
        p = lo + draw(st.floats(0.0, 1.0)) * (hi - lo)
        theta.append(th)
        rho.append(r)
        psi.append(p)
        th_p, u_p, d_p = th, p * (1 + r), p * (1 - r)
    return ESSVI(t=tuple(t), theta=tuple(theta), rho=tuple(rho), psi=tuple(psi))


@settings(max_examples=40, deadline=None)
@given(essvi_nodes())
def test_interpolated_essvi_is_arbitrage_free_when_nodes_are(model: ESSVI) -> None:
    """Corbetta et al. (2019): the natural interpolation of admissible nodes is free of
    static arbitrage - checked on the dense grid, between and beyond the nodes."""
    assume(model.conditions()["ok"])
    rep = check_arbitrage(VolSurface.from_model(model))
    assert rep.ok, rep.summary()


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-0.95, 0.95),
    st.floats(0.05, 1.0),
    st.floats(0.05, 0.5),
    st.lists(st.floats(1e-4, 0.3), min_size=1, max_size=5),
)
def test_ssvi_power_law_inside_conditions_is_arbitrage_free(rho, frac, gamma, incs) -> None:
    """Gatheral & Jacquier (2014) Remark 4.4: eta (1 + |rho|) <= 2, gamma <= 1/2."""
    theta = tuple(np.cumsum(incs))
    t = tuple(0.1 * np.arange(1, len(theta) + 1))
    eta = frac * 2 / (1 + abs(rho))
    model = SSVI(t=t, theta=theta, rho=rho, eta=eta, gamma=gamma)
    assert model.conditions()["ok"]
    assert check_arbitrage(model).ok


def test_regression_parameter_interpolation_counterexample() -> None:
    """Nodes found by the property test: interpolating (psi, rho psi) linearly in theta
    would cross the first slice near k = -0.8 a quarter of the way; the total-variance
    interpolation used instead has no arbitrage."""
    model = ESSVI(t=(0.5, 1.0), theta=(0.125, 0.25), rho=(0.0, 0.5), psi=(0.0, 0.816496580927726))
    assert model.conditions()["ok"]
    # the parameter interpolation at a = 1/4, by hand: w(-0.8) = 0.1173 < 0.125
    assert float(essvi_total_variance(-0.8, 0.15625, 0.5, 0.2041241452)) < 0.125
    assert float(model.total_variance(-0.8, 0.625)) >= 0.125
    assert check_arbitrage(model).ok
