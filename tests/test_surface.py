"""VolSurface, check_arbitrage, conventions and the 30-day vol index on hand-made inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import require
from scipy.optimize import brentq
from scipy.stats import norm
from surface_helpers import chain_from

import volcal
from volcal.black import coin_greeks
from volcal.black import price as black_price
from volcal.calibration.smile_stats import smile_stats
from volcal.errors import DataError, MethodError, ParameterError
from volcal.models import SVI, SVISmiles
from volcal.models.ssvi import ESSVI, SSVI
from volcal.surface import VolSurface, check_arbitrage, surface_conventions, vol_index
from volcal.surface.vix import expiry_variance

ESS = ESSVI(
    t=(0.02, 0.1, 0.3, 1.0),
    theta=(0.004, 0.02, 0.07, 0.25),
    rho=(-0.2, -0.3, -0.35, -0.3),
    psi=(0.04, 0.09, 0.17, 0.33),
)


def flat(sigma: float = 0.5) -> VolSurface:
    t = (0.05, 0.25, 1.0)
    return VolSurface.from_model(
        ESSVI(t=t, theta=tuple(sigma**2 * x for x in t), rho=(0.0,) * 3, psi=(0.0,) * 3),
        forwards=(100.0, 101.0, 104.0),
    )


# --------------------------------------------------------------------------- VolSurface
def test_flat_surface_local_vol_and_density_are_black() -> None:
    s = flat(0.5)
    k = np.linspace(-1.0, 1.0, 9)
    for t in (0.01, 0.1, 0.6, 3.0):
        np.testing.assert_allclose(s.implied_vol(k, t), 0.5, rtol=1e-14)
        np.testing.assert_allclose(s.local_vol(k, t), 0.5, rtol=1e-12)
        sd = 0.5 * math.sqrt(t)
        lognormal = norm.pdf(k, loc=-0.5 * sd * sd, scale=sd)
        np.testing.assert_allclose(s.density(k, t), lognormal, rtol=1e-10)


def test_forward_interpolation_and_strike_queries() -> None:
    s = flat(0.5)
    assert float(s.forward(0.15)) == pytest.approx(100.5)
    assert float(s.forward(0.01)) == 100.0 and float(s.forward(5.0)) == 104.0
    np.testing.assert_allclose(s.iv([50.0, 100.0, 300.0], 0.15), 0.5)
    with pytest.raises(ParameterError):
        s.iv(-1.0, 0.1)
    with pytest.raises(ParameterError):
        s.iv(100.0, 0.0)


def test_price_and_greeks_match_quantlib_black() -> None:
    ql = require("QuantLib")
    s = VolSurface.from_model(ESS, forwards=(9.0e4, 9.1e4, 9.3e4, 9.7e4))
    for strike, t, call in ((80e3, 0.2, False), (1.0e5, 0.5, True), (9.5e4, 0.05, True)):
        f = float(s.forward(t))
        vol = float(s.iv(strike, t))
        opt = ql.Option.Call if call else ql.Option.Put
        ref = ql.blackFormula(opt, strike, f, vol * math.sqrt(t), 0.97)
        assert float(s.price(strike, t, call, discount=0.97)) == pytest.approx(ref, rel=1e-12)
        assert float(s.price(strike, t, call, units="coin")) == pytest.approx(
            ql.blackFormula(opt, strike, f, vol * math.sqrt(t)) / f, rel=1e-12
        )
        g = s.greeks(strike, t, call, units="coin")
        ref_g = coin_greeks(f, strike, t, vol, call)
        assert float(g.delta) == pytest.approx(float(ref_g.delta), rel=1e-14)
    with pytest.raises(ParameterError):
        s.price(1e5, 0.5, True, units="eur")


def test_local_vol_matches_dupire_in_prices() -> None:
    """Dupire (1994) in call prices per unit forward, by finite differences, against the
    total-variance formula - between, before and after the expiries."""
    s = VolSurface.from_model(ESS)
    for t in (0.01, 0.05, 0.2, 0.65, 1.5):
        for k in (-0.3, -0.05, 0.0, 0.1, 0.4):
            x = math.exp(k)
            hx, ht = 1e-3 * x, 1e-5

            def c(xx: float, tt: float) -> float:
                return float(s.price(xx, tt, True, units="forward"))

            ct = (c(x, t + ht) - c(x, t - ht)) / (2 * ht)
            cxx = (c(x + hx, t) - 2 * c(x, t) + c(x - hx, t)) / hx**2
            dupire = math.sqrt(2 * ct / (x * x * cxx))
            assert float(s.local_vol(k, t)) == pytest.approx(dupire, rel=2e-4)


def test_density_is_breeden_litzenberger_and_integrates_to_one() -> None:
    s = VolSurface.from_model(ESS)
    for t in (0.03, 0.3):
        k = np.linspace(-0.6, 0.6, 7)
        x = np.exp(k)
        h = 2e-4
        cxx = (
            s.price(x * (1 + h), t, True, units="forward")
            - 2 * s.price(x, t, True, units="forward")
            + s.price(x * (1 - h), t, True, units="forward")
        ) / (x * h) ** 2
        np.testing.assert_allclose(s.density(k, t), cxx * x, rtol=2e-5)
        kk = np.linspace(-6, 6, 24001)
        assert np.trapezoid(s.density(kk, t), kk) == pytest.approx(1.0, abs=1e-6)


def test_vectorised_queries_broadcast() -> None:
    s = VolSurface.from_model(ESS)
    k = np.linspace(-0.5, 0.5, 11)[None, :]
    t = np.array([0.01, 0.2, 2.0])[:, None]
    iv = s.implied_vol(k, t)
    assert iv.shape == (3, 11)
    assert float(iv[1, 3]) == pytest.approx(float(s.implied_vol(k[0, 3], 0.2)), rel=1e-14)


def smiles(scales: list[float]) -> SVISmiles:
    base = SVI(a=0.002, b=0.02, rho=-0.3, m=0.02, sigma=0.1)
    sm = tuple(SVI(base.a * c, base.b * c, base.rho, base.m, base.sigma) for c in scales)
    t = tuple(0.05 * (i + 1) for i in range(len(scales)))
    return SVISmiles(tuple(f"e{i}" for i in range(len(scales))), t, (1.0,) * len(t), sm)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.05, 2.0), min_size=2, max_size=5),
    st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=10),
    st.floats(0.001, 0.4),
    st.floats(0.0, 0.2),
)
def test_slice_interpolation_keeps_calendar_monotonicity(incs, ks, t0, dt) -> None:
    """Non-crossing per-expiry smiles give a total variance that never falls with t."""
    s = VolSurface.from_model(smiles(list(np.cumsum(incs))))
    k = np.asarray(ks)
    w0 = s.total_variance(k, t0)
    w1 = s.total_variance(k, t0 + dt)
    assert np.all(w1 >= w0 - 1e-15)
    assert np.all(s.derivatives(k, t0)[3] >= 0)


def test_slice_backend_hits_the_fitted_smiles() -> None:
    sm = smiles([1.0, 2.0, 3.5])
    s = VolSurface.from_model(sm)
    k = np.linspace(-1, 1, 7)
    for i, t in enumerate(sm.t):
        np.testing.assert_allclose(s.total_variance(k, t), sm.smiles[i].total_variance(k))
    _w, wk, wkk, _ = s.derivatives(k, 0.075)
    np.testing.assert_allclose(wk, 0.5 * (sm.smiles[0].dw(k) + sm.smiles[1].dw(k)))
    np.testing.assert_allclose(wkk, 0.5 * (sm.smiles[0].d2w(k) + sm.smiles[1].d2w(k)))


def test_what_cannot_be_a_surface_is_refused_with_a_clear_error() -> None:
    # a Fourier model is a surface once its expiries are known (tests/test_volsurface_models.py)
    with pytest.raises(ParameterError, match="needs the expiries t"):
        VolSurface.from_model(volcal.models.Heston(0.04, 1.0, 0.04, 0.5, -0.5))
    with pytest.raises(MethodError, match="a fitted model or smiles"):
        VolSurface.from_model({"sigma": 0.5})


# --------------------------------------------------------------------------- arbitrage
def test_vogt_slice_is_flagged() -> None:
    """Axel Vogt's SVI (Gatheral & Jacquier 2014, section 2.2, eq. 2.3): free of
    calendar issues as one slice, satisfies Lee's bound, but g(k) < 0 - a negative
    density - in the right wing (their Fig. 1, around k ~ 1)."""
    vogt = SVI(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
    rep = check_arbitrage(vogt, t=1.0)
    assert not rep.ok
    assert {v.kind for v in rep.violations} == {"butterfly"}
    v = rep.violations[0]
    assert v.k_lo < 1.0 < v.k_hi and v.worst < 0
    assert float(vogt.g(1.0)) < 0 and rep.to_dict()["ok"] is False
    assert "butterfly" in rep.summary()
    good = SVI(a=0.04, b=0.1, rho=-0.3, m=0.0, sigma=0.2)
    assert check_arbitrage(good, t=0.5).ok


def test_lee_bound_violation_is_a_wing_violation() -> None:
    rep = check_arbitrage(SVI(a=0.01, b=1.8, rho=0.5, m=0.0, sigma=0.3), t=1.0)
    assert any(v.kind == "wing" for v in rep.violations)


def test_smile_errors() -> None:
    with pytest.raises(ParameterError, match="t="):
        check_arbitrage(SVI(0.01, 0.1, 0.0, 0.0, 0.1))
    with pytest.raises(MethodError):
        check_arbitrage(object(), t=1.0)


def test_crossing_smiles_are_calendar_violations_where_they_cross() -> None:
    sm = smiles([2.0, 1.0])  # the later smile lies below the earlier one everywhere
    rep = check_arbitrage(sm)
    assert not rep.ok and rep.calendar and not rep.butterfly
    assert all(v.kind == "calendar" for v in rep.violations)
    assert any(0.05 < v.t <= 0.1 for v in rep.calendar)


def chain_of(prices: dict[float, list[tuple[float, float]]]) -> volcal.OptionChain:
    """Linear chain, forward 100, calls only, one (strike, price) list per year-fraction."""
    exp, strike, px = [], [], []
    snap = "2026-01-01T08:00Z"
    for t, quotes in prices.items():
        e = np.datetime64("2026-01-01T08:00") + np.timedelta64(round(t * 365 * 86400), "s")
        for k, p in quotes:
            exp.append(e)
            strike.append(k)
            px.append(p)
    px = np.asarray(px)
    return volcal.OptionChain.from_arrays(
        underlying="X", snapshot=snap, expiry=np.array(exp, dtype=object), strike=strike,
        is_call=True, bid=px - 0.01, ask=px + 0.01, forward=100.0, settlement="linear",
    )  # fmt: skip


def black_calls(strikes: list[float], vol: float, t: float) -> list[tuple[float, float]]:
    return [(k, float(black_price(100.0, k, t, vol, True))) for k in strikes]


def test_chain_checks_by_hand() -> None:
    ks = [100.0, 105.0, 110.0, 115.0, 120.0]
    clean = chain_of({0.1: black_calls(ks, 0.5, 0.1), 0.2: black_calls(ks, 0.5, 0.2)})
    assert check_arbitrage(clean).ok
    # a dent at 110 breaks convexity; a later expiry at lower vol is a calendar spread
    dented = black_calls(ks, 0.5, 0.1)
    dented[2] = (110.0, dented[2][1] + 1.0)
    bad = chain_of({0.1: dented, 0.2: black_calls(ks, 0.3, 0.2)})
    rep = check_arbitrage(bad)
    kinds = {v.kind for v in rep.violations}
    assert {"butterfly", "calendar"} <= kinds
    fly = [v for v in rep.butterfly if v.kind == "butterfly"]
    assert any(
        abs(v.k_lo - math.log(1.05)) < 1e-9 or abs(v.k_lo - math.log(1.1)) < 1e-9 for v in fly
    )


# --------------------------------------------------------------------------- conventions
def test_flat_surface_conventions_by_hand() -> None:
    s = flat(0.5)
    c = surface_conventions(s, delta="forward")
    np.testing.assert_allclose(c.atm, 0.5)
    np.testing.assert_allclose(c.rr25, 0.0, atol=1e-12)
    np.testing.assert_allclose(c.bf10, 0.0, atol=1e-12)
    # 25-delta call, forward delta N(d1) = 0.25: k = s (s/2 - N^-1(0.25)), s = vol sqrt(t)
    sd = 0.5 * np.sqrt(c.t)
    np.testing.assert_allclose(c.k[:, 3], sd * (sd / 2 - norm.ppf(0.25)), atol=1e-10)
    np.testing.assert_allclose(c.k[:, 1], sd * (sd / 2 + norm.ppf(0.25)), atol=1e-10)
    pa = surface_conventions(s)  # premium adjusted: e^k N(d2) = 0.25
    t = pa.t[2]
    sd = 0.5 * math.sqrt(t)
    k25 = brentq(lambda k: math.exp(k) * norm.cdf(-k / sd - sd / 2) - 0.25, 0.0, 2.0)
    assert pa.k[2, 3] == pytest.approx(k25, abs=1e-10)
    assert pa.tenor_days == (1, 7, 30, 60, 90, 180, 365)
    assert list(pa.extrapolated) == [True, True, False, False, False, False, False]  # 18 d first


@pytest.mark.parametrize("delta", ["forward", "premium_adjusted"])
def test_conventions_agree_with_scalar_smile_stats(delta: str) -> None:
    s = VolSurface.from_model(ESS)
    c = surface_conventions(s, tenors=(30, 90), delta=delta)
    for i, t in enumerate(c.t):
        for level, rr, bf in ((0.25, c.rr25, c.bf25), (0.10, c.rr10, c.bf10)):
            ref = smile_stats(s, float(t), delta=delta, level=level)
            assert rr[i] == pytest.approx(ref.rr25, abs=1e-10)
            assert bf[i] == pytest.approx(ref.bf25, abs=1e-10)
    d = c.to_dict()
    assert d["tenors"][0]["days"] == 30 and set(d["tenors"][0]["vols"]) == {
        "10P", "25P", "ATM", "25C", "10C"}  # fmt: skip
    assert "RR25" in c.summary() and len(c.to_frame()) == 2


def test_conventions_errors() -> None:
    with pytest.raises(ParameterError):
        surface_conventions(flat(), delta="spot")
    with pytest.raises(ParameterError):
        surface_conventions(flat(), tenors=(0,))


# --------------------------------------------------------------------------- vol index
def test_expiry_variance_by_hand() -> None:
    """White-paper sum on five strikes, with the zero-bid truncation."""
    k = np.array([80.0, 90.0, 100.0, 100.0, 110.0, 120.0])
    call = np.array([False, False, False, True, True, True])
    q = np.array([1.0, 3.0, 6.0, 7.0, 4.0, 2.0])
    bid = np.ones(6)
    f, t = 101.0, 0.25
    var, k0, n = expiry_variance(k, call, bid, q, f, t)
    dk = np.array([10.0, 10.0, 10.0, 10.0, 10.0])
    ks = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    qs = np.array([1.0, 3.0, 6.5, 4.0, 2.0])
    ref = 2 / t * np.sum(dk / ks**2 * qs) - (f / 100.0 - 1) ** 2 / t
    assert (k0, n) == (100.0, 5) and var == pytest.approx(ref, rel=1e-14)
    # two consecutive zero bids below K0 cut off every lower strike
    k2 = np.concatenate([[60.0, 65.0, 70.0, 75.0], k])
    c2 = np.concatenate([[False] * 4, call])
    b2 = np.concatenate([[1.0, 1.0, 0.0, 0.0], bid])
    q2 = np.concatenate([[0.1, 0.2, 0.3, 0.4], q])
    assert expiry_variance(k2, c2, b2, q2, f, t)[2] == 5


def test_vol_index_of_a_flat_chain_is_the_flat_vol() -> None:
    from volcal.synthetic import synthetic_chain

    ch = synthetic_chain(
        volcal.models.Black(0.6), days=(7, 28, 35, 56), n_strikes=121, n_sd=7.0, noise=0.0,
        spread_vol=0.001,
    )  # fmt: skip
    idx = vol_index(ch)
    assert idx.value == pytest.approx(60.0, abs=0.1)  # discretisation of the strike sum
    assert 23 < 365 * idx.t_near <= 30 < 365 * idx.t_next
    assert vol_index(ch, price="mark").value == pytest.approx(60.0, abs=0.1)
    with pytest.raises(DataError, match="bracket"):
        vol_index(ch, days=365)
    with pytest.raises(ParameterError):
        vol_index(ch, price="last")


def test_vol_index_of_heston_is_its_variance_swap_rate() -> None:
    """Heston's expected average variance over T is theta + (v0 - theta)(1 - e^-kT)/(kT)
    (the fair variance-swap strike), which the VIX sum replicates."""
    from volcal.synthetic import synthetic_chain

    h = volcal.models.Heston(v0=0.55**2, kappa=3.0, theta=0.6**2, xi=1.2, rho=-0.25)
    with warnings.catch_warnings():  # the generator's mark vols of zero-price far wings
        warnings.simplefilter("ignore", volcal.errors.DataWarning)
        ch = synthetic_chain(
            h, days=(7, 28, 35, 56), n_strikes=161, n_sd=8.0, noise=0.0, spread_vol=0.001
        )
    t = 30 / 365
    ref = 100 * math.sqrt(h.theta + (h.v0 - h.theta) * (1 - math.exp(-h.kappa * t)) / (h.kappa * t))
    assert vol_index(ch).value == pytest.approx(ref, abs=0.15)


def test_ssvi_surface_is_volsurface_of_the_model() -> None:
    m = SSVI(t=(0.1, 0.5), theta=(0.02, 0.09), rho=-0.3, eta=1.0, gamma=0.4)
    s = VolSurface.from_model(m)
    k = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(s.implied_vol(k, 0.3), m.implied_vol(k, 0.3))
    assert s.to_dict()["model"] == "ssvi" and "VolSurface" in s.summary()


# --------------------------------------------------------------------------- fits
def test_essvi_fit_recovers_a_known_surface() -> None:
    days = (3, 10, 30, 60, 120, 240)
    truth = ESSVI(
        t=tuple(d / 365 for d in days),
        theta=(0.0015, 0.005, 0.016, 0.034, 0.07, 0.15),
        rho=(-0.1, -0.2, -0.25, -0.3, -0.3, -0.35),
        psi=(0.03, 0.055, 0.1, 0.14, 0.2, 0.29),
    )
    assert truth.conditions()["ok"]
    fit = volcal.calibrate(chain_from(truth, days), "essvi")
    assert fit.status == "ok" and fit.rmse_vol < 0.02
    np.testing.assert_allclose(fit.params.theta, truth.theta, rtol=2e-3)
    np.testing.assert_allclose(fit.params.rho, truth.rho, atol=5e-3)
    np.testing.assert_allclose(fit.params.psi, truth.psi, rtol=5e-3)
    s0 = fit.slices[2]
    assert s0.params["theta"] == pytest.approx(truth.theta[2], rel=2e-3)
    assert s0.atm_vol == pytest.approx(math.sqrt(truth.theta[2] / truth.t[2]), rel=1e-3)


@pytest.mark.parametrize("phi", ["power", "heston"])
def test_ssvi_fit_recovers_a_known_surface(phi: str) -> None:
    from volcal.calibration.ssvi import fit_ssvi

    days = (3, 10, 30, 60, 120, 240)
    kw = {"eta": 0.9, "gamma": 0.35} if phi == "power" else {"lam": 3.0}
    truth = SSVI(
        t=tuple(d / 365 for d in days),
        theta=(0.0015, 0.005, 0.016, 0.034, 0.07, 0.15),
        rho=-0.3,
        phi=phi,
        **kw,
    )
    fit = fit_ssvi(chain_from(truth, days), phi=phi)
    assert fit.status == "ok" and fit.rmse_vol < 0.02 and fit.params.conditions()["ok"]
    assert fit.params.rho == pytest.approx(-0.3, abs=2e-3)
    for name, value in kw.items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=1e-2)
    np.testing.assert_allclose(fit.params.theta, truth.theta, rtol=2e-3)
    with pytest.raises(ParameterError):
        fit_ssvi(chain_from(truth, days), phi="cubic")
