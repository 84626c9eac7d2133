"""Black-76 prices: published values, exact limits, high-precision oracle, QuantLib."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from oracles import require

from volcal.black import normalised_price, price, vega
from volcal.errors import ParameterError


def test_fang_oosterlee_2008_table_2() -> None:
    # Fang & Oosterlee (2008), "A novel pricing method for European options based on
    # Fourier-cosine series expansions", SIAM J. Sci. Comput. 31(2), Table 2 (Black-Scholes
    # reference values): S=100, r=0.1, q=0, T=0.1, sigma=0.25. S is spot, so the Black-76
    # inputs are F = S e^{rT} and D = e^{-rT}.
    s0, r, t, sigma = 100.0, 0.1, 0.1, 0.25
    forward, discount = s0 * np.exp(r * t), np.exp(-r * t)
    got = price(forward, np.array([80.0, 100.0]), t, sigma, True, discount)
    np.testing.assert_allclose(got, [20.799226309, 3.659968453], rtol=0, atol=5e-10)


def _mp_black(f: float, k: float, t: float, vol: float, call: bool) -> float:
    """Black-76 in 60-digit arithmetic (mpmath) as an oracle."""
    with mp.workdps(60):
        ff, kk, s = mp.mpf(f), mp.mpf(k), mp.mpf(vol) * mp.sqrt(mp.mpf(t))
        d1 = mp.log(ff / kk) / s + s / 2
        d2 = d1 - s
        if call:
            v = ff * mp.ncdf(d1) - kk * mp.ncdf(d2)
        else:
            v = kk * mp.ncdf(-d2) - ff * mp.ncdf(-d1)
        return float(v)


@pytest.mark.parametrize("sd", [-10.0, -6.0, -3.0, -0.5, 0.0, 0.5, 3.0, 6.0, 10.0])
@pytest.mark.parametrize(
    ("t", "vol"), [(1.0 / 8760.0, 1e-4), (1.0 / 8760.0, 5.0), (0.25, 0.8), (3.0, 5.0)]
)
def test_otm_price_full_relative_accuracy_in_the_wings(sd: float, t: float, vol: float) -> None:
    """Deep OTM values keep full relative accuracy (no cancellation), checked against mpmath.

    The only loss allowed is the conditioning of the price in x = ln(F/K): a relative
    rounding eps of x moves the price by ~(1 + sd^2) eps relative.
    """
    f = 50_000.0
    k = f * np.exp(sd * vol * np.sqrt(t))
    call = k >= f
    got = float(price(f, k, t, vol, call))
    ref = _mp_black(f, k, t, vol, call)
    assert ref > 0.0
    assert abs(got - ref) <= 4.0 * np.finfo(float).eps * (1.0 + sd * sd) * ref


def test_normalised_price_matches_mpmath_and_parity() -> None:
    # every evaluation region of the out-of-the-money side: asymptotic expansion
    # (-30, 0.01), (-5, 0.3); small-s expansion (-0.01, 0.1), (0, 1e-3); plain Phi
    # difference (-0.3, 3); scaled erfc (-5, 0.5), (-5, 2); and in-the-money mirrors
    x = np.array([-30.0, -5.0, -0.01, 0.0, -0.3, -5.0, -5.0, 0.3, 5.0, 5.0])
    s = np.array([0.01, 0.3, 0.1, 1e-3, 3.0, 0.5, 2.0, 0.2, 12.0, 0.3])
    for theta in (1.0, -1.0):
        got = normalised_price(x, s, theta)
        for xi, si, gi in zip(x, s, got, strict=True):
            with mp.workdps(60):
                xm, sm = mp.mpf(xi), mp.mpf(si)
                ref = theta * (
                    mp.exp(xm / 2) * mp.ncdf(theta * (xm / sm + sm / 2))
                    - mp.exp(-xm / 2) * mp.ncdf(theta * (xm / sm - sm / 2))
                )
            assert abs(gi - float(ref)) <= 1e-14 * max(float(ref), 1e-300) + 1e-300
    # normalised parity: b_call - b_put = e^{x/2} - e^{-x/2}
    diff = normalised_price(x, s, 1.0) - normalised_price(x, s, -1.0)
    np.testing.assert_allclose(diff, 2.0 * np.sinh(x / 2.0), rtol=1e-14, atol=1e-15)


def test_exact_limits_are_discounted_intrinsic() -> None:
    f, k = 100.0, np.array([80.0, 100.0, 120.0])
    for t, vol in [(0.0, 0.5), (1.0, 0.0), (0.0, 0.0)]:
        np.testing.assert_array_equal(price(f, k, t, vol, True, 0.9), 0.9 * np.maximum(f - k, 0.0))
        np.testing.assert_array_equal(price(f, k, t, vol, False, 0.9), 0.9 * np.maximum(k - f, 0.0))


def test_bounds_and_huge_vol() -> None:
    # As vol -> infinity a call tends to D F and a put to D K.
    p = price(100.0, 80.0, 1.0, np.array([50.0, 1e3]), [True, False], 0.5)
    np.testing.assert_allclose(p, [50.0, 40.0], rtol=1e-15)


def test_vega_matches_finite_difference_and_limits() -> None:
    f, k, t, vol = 100.0, np.array([70.0, 100.0, 140.0]), 0.7, 0.45
    h = 1e-5
    fd = (price(f, k, t, vol + h, True) - price(f, k, t, vol - h, True)) / (2 * h)
    np.testing.assert_allclose(vega(f, k, t, vol), fd, rtol=1e-8)
    # vol = 0: zero away from the money, D F sqrt(T)/sqrt(2 pi) at the money
    np.testing.assert_allclose(vega(f, k, t, 0.0), [0.0, f * np.sqrt(t) / np.sqrt(2 * np.pi), 0.0])


@pytest.mark.parametrize(
    "bad",
    [
        {"forward": -1.0},
        {"forward": np.nan},
        {"strike": 0.0},
        {"t": -0.1},
        {"vol": -0.2},
        {"vol": np.inf},
        {"discount": 0.0},
    ],
)
def test_invalid_pricing_inputs_raise(bad: dict[str, float]) -> None:
    args = {"forward": 100.0, "strike": 100.0, "t": 1.0, "vol": 0.2, "discount": 1.0} | bad
    with pytest.raises(ParameterError, match=next(iter(bad))):
        price(args["forward"], args["strike"], args["t"], args["vol"], True, args["discount"])


def test_agrees_with_quantlib_black_formula() -> None:
    ql = require("QuantLib")
    rng = np.random.default_rng(7)
    n = 300
    f = rng.uniform(1_000.0, 100_000.0, n)
    t = rng.uniform(1.0 / 8760.0, 3.0, n)
    vol = rng.uniform(0.05, 3.0, n)
    k = f * np.exp(rng.uniform(-3.0, 3.0, n) * vol * np.sqrt(t))
    call = rng.random(n) < 0.5
    df = np.exp(-0.05 * t)
    got = price(f, k, t, vol, call, df)
    ref = np.array(
        [
            ql.blackFormula(ql.Option.Call if c else ql.Option.Put, ki, fi, v * np.sqrt(ti), d)
            for c, ki, fi, v, ti, d in zip(call, k, f, vol, t, df, strict=True)
        ]
    )
    # QuantLib evaluates the textbook formula (cancellation in the wings), so compare to
    # its own precision: relative 1e-12 or 1e-12 of the forward.
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * f.max())


def test_broadcasting_shapes() -> None:
    p = price(100.0, np.array([[90.0], [110.0]]), 1.0, np.array([0.2, 0.3, 0.4]), [[True], [False]])
    assert p.shape == (2, 3)
    with pytest.raises(ParameterError):
        price(100.0, np.ones(3), 1.0, np.ones(4), True)
