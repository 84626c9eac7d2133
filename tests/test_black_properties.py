"""Hypothesis properties of Black-76 and its inverse, plus QuantLib as an independent oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import require

from volcal.black import IVStatus, implied_vol, price, vega

EPS = np.finfo(float).eps
SETTINGS = settings(max_examples=150, deadline=None)

forwards = st.floats(1.0, 1e6)
sds = st.floats(-10.0, 10.0)  # strike distance from the forward, in standard deviations
times = st.floats(1.0 / 8760.0, 10.0)
vols = st.floats(1e-4, 5.0)
discounts = st.floats(0.5, 1.0)


def _strike(f: float, sd: float, t: float, vol: float) -> float:
    return float(f * np.exp(sd * vol * np.sqrt(t)))


@SETTINGS
@given(forwards, sds, times, vols, discounts)
def test_put_call_parity(f: float, sd: float, t: float, vol: float, d: float) -> None:
    k = _strike(f, sd, t, vol)
    c, p = price(f, k, t, vol, [True, False], d)
    assert abs((c - p) - d * (f - k)) <= 8 * EPS * d * max(f, k)


@SETTINGS
@given(forwards, times, vols, st.booleans())
def test_monotone_and_convex_in_strike(f: float, t: float, vol: float, is_call: bool) -> None:
    s = vol * np.sqrt(t)
    k = f * np.exp(np.linspace(-4.0, 4.0, 81) * s)
    v = price(f, k, t, vol, is_call)
    tol = 8 * EPS * np.maximum(f, k)
    dv = np.diff(v)
    if is_call:
        assert np.all(dv <= tol[1:])
    else:
        assert np.all(dv >= -tol[1:])
    # convexity on the (uneven) grid: slopes are non-decreasing, up to the rounding of
    # each price (a few ulp of max(F, K)) divided by the strike step
    slopes = dv / np.diff(k)
    slope_err = 8 * EPS * np.maximum(f, k[1:]) / np.diff(k)
    assert np.all(np.diff(slopes) >= -(slope_err[1:] + slope_err[:-1]))


@SETTINGS
@given(forwards, sds, times, vols, discounts)
def test_implied_vol_round_trip_out_of_the_money(
    f: float, sd: float, t: float, vol: float, d: float
) -> None:
    k = _strike(f, sd, t, vol)
    is_call = k >= f
    p = float(price(f, k, t, vol, is_call, d))
    res = implied_vol(p, f, k, t, is_call, d, full_output=True)
    if p == 0.0:
        assert int(res.status) == IVStatus.AT_INTRINSIC
        return
    assert int(res.status) == IVStatus.OK
    info = 4 * EPS * p / max(float(vega(f, k, t, vol, d)), 1e-300)
    assert abs(float(res.vol) - vol) <= 1e-12 + info


@SETTINGS
@given(forwards, st.floats(-3.0, 3.0), times, st.floats(0.01, 3.0), st.booleans())
def test_implied_vol_round_trip_either_side(
    f: float, sd: float, t: float, vol: float, is_call: bool
) -> None:
    """Within 3 sd, ITM inputs through parity also come back to the true vol."""
    k = _strike(f, sd, t, vol)
    p = float(price(f, k, t, vol, is_call))
    res = implied_vol(p, f, k, t, is_call, full_output=True)
    assert int(res.status) == IVStatus.OK
    info = 4 * EPS * p / float(vega(f, k, t, vol))
    assert abs(float(res.vol) - vol) <= 1e-12 + info


@SETTINGS
@given(forwards, sds, times, st.floats(1e-4, 4.0), st.floats(1.0001, 1.5), st.booleans())
def test_price_increases_with_vol(
    f: float, sd: float, t: float, vol: float, bump: float, is_call: bool
) -> None:
    k = _strike(f, sd, t, vol)
    lo, hi = price(f, k, t, [vol, vol * bump], is_call)
    assert hi >= lo


def test_agrees_with_quantlib_implied_std_dev() -> None:
    ql = require("QuantLib")
    rng = np.random.default_rng(11)
    n = 300
    f = rng.uniform(1_000.0, 100_000.0, n)
    t = rng.uniform(1.0 / 8760.0, 3.0, n)
    vol = rng.uniform(0.05, 3.0, n)
    k = f * np.exp(rng.uniform(-3.0, 3.0, n) * vol * np.sqrt(t))
    call = k >= f
    df = np.exp(-0.03 * t)
    p = price(f, k, t, vol, call, df)
    ours = implied_vol(p, f, k, t, call, df) * np.sqrt(t)
    theirs = np.array(
        [
            ql.blackFormulaImpliedStdDev(
                ql.Option.Call if c else ql.Option.Put,
                ki,
                fi,
                pi,
                d,
                0.0,
                ql.nullDouble(),
                1e-14,
                1000,
            )
            for c, ki, fi, pi, d in zip(call, k, f, p, df, strict=True)
        ]
    )
    # QuantLib's solver stops at its accuracy on the price, so compare in std-dev units
    # loosely and check ours against the truth tightly.
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours, vol * np.sqrt(t), rtol=1e-13, atol=1e-14)
