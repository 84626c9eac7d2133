"""Tests of the Monte Carlo pricer (volcal.pricing.mc).

Reference values:

* Black-76 closed form; Fang & Oosterlee (2008), Table 2 (S=100, r=0.1, T=0.1, sigma=0.25).
* Merton (1976) series; published value 11.661674787504 (S=K=100, T=1, r=0.05, sigma=0.2,
  lam=0.5, mu_j=-0.1, sigma_j=0.15), as listed in the project's REFERENCES.
* Kou (2002) double-exponential: 7.27993383 (S=100, K=110, T=1, r=0, sigma=0.2, lam=0.2,
  p=0.5, eta1=3, eta2=2).
* Variance gamma, Fang & Oosterlee (2008) §5.4: 10.993703187 (T=0.1), 19.099354724 (T=1)
  for S=100, K=90, r=0.1, sigma=0.12, theta=-0.14, nu=0.2.
* Heston, Lewis (2001) reference values (S=100, T=1, r=0.01, q=0.02, v0=0.04, kappa=4,
  theta=0.25, xi=1, rho=-0.5).
* Everything else: the models' characteristic functions priced with Lewis' (2001)
  single integral (scipy quad), an independent method from the simulation.

Every comparison allows 4 standard errors plus 1e-5 * F (for options so far out of the
money that no path pays, the estimate is 0 with standard error 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, dataclass, make_dataclass

import numpy as np
import pytest
from scipy.integrate import quad, quad_vec
from scipy.special import gammaincinv
from scipy.stats import norm

import volcal
from volcal._typing import ArrayLike
from volcal.errors import MethodError, ParameterError, VolcalWarning
from volcal.models import SVCJ, Bates, Black, Heston, Kou, Merton, VarianceGamma
from volcal.pricing import mc
from volcal.pricing.mc import MCResult, mc_price, simulate_log_forward

F0 = 100.0
MATURITIES = np.array([7 / 365, 30 / 365, 0.5, 2.0])
# crypto-like parameters: vols 50-90 %, vol-of-vol 1.5-3 with Feller violated
MODELS = {
    "Black": Black(sigma=0.8),
    "Merton": Merton(sigma=0.6, lam=3.0, mu_j=-0.05, sigma_j=0.15),
    "Kou": Kou(sigma=0.5, lam=4.0, p=0.4, eta1=8.0, eta2=6.0),
    "VarianceGamma": VarianceGamma(sigma=0.7, nu=0.3, theta_vg=-0.2),
    "Heston": Heston(v0=0.5, kappa=3.0, theta=0.4, xi=3.0, rho=-0.1),
    "Bates": Bates(
        v0=0.4, kappa=2.0, theta=0.36, xi=2.0, rho=-0.2, lam=2.0, mu_j=-0.05, sigma_j=0.2
    ),
    "SVCJ": SVCJ(
        v0=0.4,
        kappa=3.0,
        theta=0.36,
        xi=1.5,
        rho=-0.2,
        lam=2.0,
        mu_s=-0.05,
        sigma_s=0.15,
        mu_v=0.2,
        rho_j=-0.5,
    ),
}


def black76(f: float, k: np.ndarray, t: np.ndarray, sigma: float, call: np.ndarray) -> np.ndarray:
    sd = sigma * np.sqrt(t)
    d1 = np.log(f / k) / sd + 0.5 * sd
    c = f * norm.cdf(d1) - k * norm.cdf(d1 - sd)
    return np.where(call, c, c - (f - k))


def lewis(model: object, f: float, k: float, t: float, call: bool) -> float:
    """Lewis (2001): C = F - sqrt(FK)/pi * int_0^inf Re[e^{-iu ln(K/F)} phi(u - i/2)]/(u^2+1/4)."""
    lk = math.log(k / f)

    def integrand(u: float) -> float:
        phi = model.char_func(np.array(u - 0.5j), t)  # type: ignore[attr-defined]
        return float((np.exp(-1j * u * lk) * phi).real / (u * u + 0.25))

    val = quad(integrand, 0.0, np.inf, limit=1000, epsabs=1e-12, epsrel=1e-11)[0]
    c = f - math.sqrt(f * k) / math.pi * val
    return c if call else c - (f - k)


def vg_mixture(
    model: VarianceGamma, f: float, k: ArrayLike, t: ArrayLike, call: ArrayLike
) -> np.ndarray:
    """Madan, Carr & Chang (1998): given the gamma clock G = g, X is normal, so the
    price is E_G[Black(F e^{omega t + theta g + sigma^2 g / 2}, K, sigma^2 g)], integrated
    over the gamma quantile p in (0, 1) (robust where the VG characteristic function
    decays slowly); vectorized over options with ``quad_vec``."""
    sig, nu, th = model.sigma, model.nu, model.theta_vg
    omega = math.log(1.0 - th * nu - 0.5 * sig**2 * nu) / nu
    k, t, call = np.broadcast_arrays(
        np.asarray(k, float), np.asarray(t, float), np.asarray(call, bool)
    )
    intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))

    def h(p: float) -> np.ndarray:
        g = nu * gammaincinv(t / nu, p)
        gs = np.maximum(g, 1e-300)
        fg = f * np.exp(omega * t + th * gs + 0.5 * sig**2 * gs)
        return np.where(g > 0.0, black76(fg, k, gs, sig, call), intrinsic)

    return quad_vec(h, 0.0, 1.0, epsabs=1e-10, epsrel=1e-9, limit=2000)[0]


def semi_analytic(
    model: object, f: float, k: np.ndarray, t: np.ndarray, call: np.ndarray
) -> np.ndarray:
    if isinstance(model, VarianceGamma):
        return vg_mixture(model, f, k, t, call)
    return np.array([lewis(model, f, kk, tt, cc) for kk, tt, cc in zip(k, t, call, strict=True)])


def otm_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strikes at -2, -1, 0, +1, +2 standard deviations (80 % vol) for every maturity;
    puts below the forward, calls at and above (out-of-the-money options)."""
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    t = np.repeat(MATURITIES, z.size)
    k = F0 * np.exp(np.tile(z, MATURITIES.size) * 0.8 * np.sqrt(t))
    return k, t, k >= F0


def assert_within(res: MCResult, ref: np.ndarray, nse: float = 4.0) -> None:
    err = np.abs(res.price - ref)
    tol = nse * res.stderr + 1e-5 * F0
    bad = err > tol
    assert not bad.any(), (
        f"{res.model}: {bad.sum()} options off; worst z = "
        f"{float(np.max(err / np.maximum(res.stderr, 1e-300))):.2f}"
    )


# ----------------------------------------------------------------------- martingale


@pytest.mark.parametrize("name", list(MODELS))
def test_martingale_every_model(name: str) -> None:
    times = np.array([7 / 365, 0.5, 2.0])
    n = 100_000
    x = simulate_log_forward(
        MODELS[name], times, n, seed=11, antithetic=False, batch_size=n, steps_per_year=50
    )
    ratio = np.exp(x)
    mean = ratio.mean(axis=1)
    se = ratio.std(axis=1, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(mean - 1.0) < 3.0 * se), (mean, se)


def test_martingale_through_pricer_with_antithetics() -> None:
    # a call struck near zero pays F_T - K: its price must be F_0 - K (no control variate)
    # (the QE step is an exact martingale for any step size: a coarse grid suffices)
    res = mc_price(
        MODELS["SVCJ"],
        F0,
        1e-9,
        MATURITIES,
        True,
        n_paths=100_000,
        steps_per_year=12,
        control_variate=False,
    )
    assert np.all(np.abs(res.price - (F0 - 1e-9)) < 3.0 * res.stderr)


# ----------------------------------------------------------------------- closed forms


def test_black_exact_across_strikes_and_maturities() -> None:
    k, t, call = otm_grid()
    res = mc_price(MODELS["Black"], F0, k, t, call, n_paths=200_000, seed=1)
    assert res.scheme == "exact" and res.time_grid.size == MATURITIES.size + 1
    assert_within(res, black76(F0, k, t, 0.8, call))


def test_black_fang_oosterlee_table2() -> None:
    # S=100, r=0.1, T=0.1, sigma=0.25: K=80 20.799226309, K=100 3.659968453
    s, r, t = 100.0, 0.1, 0.1
    res = mc_price(
        Black(sigma=0.25),
        s * math.exp(r * t),
        [80.0, 100.0],
        t,
        True,
        math.exp(-r * t),
        n_paths=100_000,
    )
    assert_within(res, np.array([20.799226309, 3.659968453]))


def merton_series(f: float, k: float, t: float, m: Merton, call: bool) -> float:
    # Merton (1976): Poisson mixture of Black prices with forward f*exp(n mu_j + n s_j^2/2 - lam kbar t)
    kbar = math.expm1(m.mu_j + 0.5 * m.sigma_j**2)
    total = 0.0
    for n in range(80):
        w = (
            math.exp(-m.lam * t + n * math.log(m.lam * t) - math.lgamma(n + 1))
            if m.lam
            else float(n == 0)
        )
        fn = f * math.exp(n * m.mu_j + 0.5 * n * m.sigma_j**2 - m.lam * kbar * t)
        sn = math.sqrt(m.sigma**2 + n * m.sigma_j**2 / t)
        total += w * float(black76(fn, np.array(k), np.array(t), sn, np.array(call)))
    return total


def test_merton_series_and_published_value() -> None:
    m = MODELS["Merton"]
    k, t, call = otm_grid()
    res = mc_price(m, F0, k, t, call, n_paths=200_000, seed=2)
    ref = np.array(
        [merton_series(F0, kk, tt, m, cc) for kk, tt, cc in zip(k, t, call, strict=True)]
    )
    assert_within(res, ref)
    # published: S=K=100, T=1, r=0.05, sigma=0.2, lam=0.5, mu_j=-0.1, sigma_j=0.15
    pub = Merton(sigma=0.2, lam=0.5, mu_j=-0.1, sigma_j=0.15)
    r = 0.05
    res = mc_price(pub, 100.0 * math.exp(r), 100.0, 1.0, True, math.exp(-r), n_paths=100_000)
    assert_within(res, np.array(11.661674787504))
    assert merton_series(100.0 * math.exp(r), 100.0, 1.0, pub, True) * math.exp(
        -r
    ) == pytest.approx(11.661674787504, abs=1e-9)


def test_kou_published_value() -> None:
    res = mc_price(
        Kou(sigma=0.2, lam=0.2, p=0.5, eta1=3.0, eta2=2.0),
        100.0,
        110.0,
        1.0,
        True,
        n_paths=200_000,
    )
    assert_within(res, np.array(7.27993383))


def test_variance_gamma_fang_oosterlee() -> None:
    vg = VarianceGamma(sigma=0.12, nu=0.2, theta_vg=-0.14)
    for t, pub in ((0.1, 10.993703187), (1.0, 19.099354724)):  # the reference formula itself
        ref = math.exp(-0.1 * t) * vg_mixture(vg, 100 * math.exp(0.1 * t), 90.0, t, True)
        assert float(ref) == pytest.approx(pub, abs=1e-8)
    s, k, r = 100.0, 90.0, 0.1
    vg = VarianceGamma(sigma=0.12, nu=0.2, theta_vg=-0.14)
    t = np.array([0.1, 1.0])
    res = mc_price(vg, s * np.exp(r * t), k, t, True, np.exp(-r * t), n_paths=200_000)
    assert_within(res, np.array([10.993703187, 19.099354724]))


def test_heston_lewis_reference_values() -> None:
    # S=100, T=1, r=0.01, q=0.02 -> F = 100 e^{-0.01}, D = e^{-0.01}
    h = Heston(v0=0.04, kappa=4.0, theta=0.25, xi=1.0, rho=-0.5)
    res = mc_price(
        h,
        100.0 * math.exp(-0.01),
        [80.0, 100.0, 120.0, 100.0],
        1.0,
        [True, True, True, False],
        math.exp(-0.01),
        n_paths=200_000,
        steps_per_year=50,
    )
    ref = np.array([26.774758743998854, 16.070154917028834, 9.024913483457836, 17.055270961270109])
    assert_within(res, ref)


# ------------------------------------------------------------ against the char. function


@pytest.mark.parametrize("name", ["Merton", "Kou", "VarianceGamma", "Heston", "Bates", "SVCJ"])
def test_cross_method_against_semi_analytic(name: str) -> None:
    model = MODELS[name]
    k, t, call = otm_grid()
    res = mc_price(model, F0, k, t, call, n_paths=150_000, seed=5, steps_per_year=50)
    ref = semi_analytic(model, F0, k, t, call)
    assert_within(res, ref)


def test_cross_method_against_cos() -> None:
    k, t, call = otm_grid()
    for name in ("Heston", "SVCJ", "Kou"):
        model = MODELS[name]
        ref = np.asarray(volcal.price(model, F0, k, t, call, method="cos"), dtype=float)
        res = mc_price(model, F0, k, t, call, n_paths=100_000, seed=6, steps_per_year=50)
        assert_within(res, ref)


def test_qe_accurate_where_euler_breaks() -> None:
    # xi = 3, 2 kappa theta = 2.4 << xi^2 = 9: the variance sticks near 0, where
    # full-truncation Euler is biased; on the same weekly grid QE is not
    model = MODELS["Heston"]
    t = np.repeat([7 / 365, 30 / 365, 0.25], 3)
    k = F0 * np.array([0.8, 1.0, 1.2, 0.7, 1.0, 1.4, 0.6, 1.0, 1.6])
    call = k >= F0
    ref = np.array([lewis(model, F0, kk, tt, cc) for kk, tt, cc in zip(k, t, call, strict=True)])
    kw = dict(n_paths=200_000, seed=8, steps_per_year=52, min_steps=2)
    qe = mc_price(model, F0, k, t, call, scheme="qe", **kw)
    eu = mc_price(model, F0, k, t, call, scheme="euler", **kw)
    np.testing.assert_array_equal(qe.time_grid, eu.time_grid)
    assert_within(qe, ref)
    z_euler = np.abs(eu.price - ref) / eu.stderr
    assert z_euler.max() > 6.0, z_euler


def test_svcj_equals_bates_without_variance_jumps() -> None:
    b = Bates(v0=0.4, kappa=2.0, theta=0.36, xi=2.0, rho=-0.2, lam=2.0, mu_j=-0.05, sigma_j=0.2)
    s = SVCJ(
        v0=0.4,
        kappa=2.0,
        theta=0.36,
        xi=2.0,
        rho=-0.2,
        lam=2.0,
        mu_s=-0.05,
        sigma_s=0.2,
        mu_v=0.0,
        rho_j=0.0,
    )
    k, t, call = otm_grid()
    rb = mc_price(b, F0, k, t, call, n_paths=20_000, seed=4)
    rs = mc_price(s, F0, k, t, call, n_paths=20_000, seed=4)
    np.testing.assert_allclose(rs.price, rb.price, rtol=1e-13, atol=1e-13)
    # and variance jumps do move prices (same seed, mu_v > 0)
    rj = mc_price(s.replace(mu_v=0.3), F0, k, t, call, n_paths=20_000, seed=4)
    assert np.max(np.abs(rj.price - rb.price) / rb.stderr) > 4.0


def test_heston_without_vol_of_vol_is_black() -> None:
    # xi = 0: deterministic variance, X_T Gaussian with the integrated variance
    v0, kappa, theta, t = 0.6, 2.0, 0.3, 1.0
    iv = theta * t + (v0 - theta) * (1 - math.exp(-kappa * t)) / kappa
    res = mc_price(
        Heston(v0=v0, kappa=kappa, theta=theta, xi=0.0, rho=-0.5),
        F0,
        [70.0, 100.0, 140.0],
        t,
        [False, True, True],
        n_paths=100_000,
    )
    k = np.array([70.0, 100.0, 140.0])
    assert_within(
        res, black76(F0, k, np.full(3, t), math.sqrt(iv / t), np.array([False, True, True]))
    )


# ------------------------------------------------------------------ numerics and API


def test_compiled_kernel_matches_numpy_reference() -> None:
    cases = [
        MODELS["Heston"],
        MODELS["SVCJ"],
        Heston(v0=0.3, kappa=1.0, theta=0.4, xi=1.5, rho=0.6),
        Heston(v0=0.2, kappa=1.0, theta=0.0, xi=1.0, rho=-0.3),  # absorbed at 0
    ]
    for model in cases:
        a = simulate_log_forward(model, [0.1, 1.0], 4_000, seed=3, steps_per_year=20)
        b = simulate_log_forward(
            model, [0.1, 1.0], 4_000, seed=3, steps_per_year=20, scheme="qe_numpy"
        )
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)


def test_martingale_fallback_is_reported() -> None:
    # rho > 0, xi = 3, one-year steps, variance 12: M(A) is infinite, the correction is
    # undefined (Andersen 2008, §4.2) and the uncorrected drift is used, loudly
    model = Heston(v0=12.0, kappa=2.0, theta=0.2, xi=3.0, rho=0.9)
    with pytest.warns(VolcalWarning, match="martingale correction"):
        res = mc_price(model, F0, 100.0, 1.0, True, n_paths=2_000, steps_per_year=1, min_steps=1)
    assert res.martingale_fallbacks == 2_000
    with pytest.warns(VolcalWarning):
        a = simulate_log_forward(model, [1.0], 2_000, steps_per_year=1, min_steps=1)
    with pytest.warns(VolcalWarning):
        b = simulate_log_forward(
            model, [1.0], 2_000, steps_per_year=1, min_steps=1, scheme="qe_numpy"
        )
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)


def test_seed_reproducibility_and_independence() -> None:
    k, t, call = otm_grid()
    model = MODELS["Bates"]
    r1 = mc_price(model, F0, k, t, call, n_paths=10_000, seed=42)
    r2 = mc_price(model, F0, k, t, call, n_paths=10_000, seed=42)
    r3 = mc_price(model, F0, k, t, call, n_paths=10_000, seed=43)
    np.testing.assert_array_equal(r1.price, r2.price)
    np.testing.assert_array_equal(r1.stderr, r2.stderr)
    assert not np.array_equal(r1.price, r3.price)
    x1 = simulate_log_forward(MODELS["Kou"], [0.5], 1_000, seed=9)
    x2 = simulate_log_forward(MODELS["Kou"], [0.5], 1_000, seed=9)
    np.testing.assert_array_equal(x1, x2)


def test_pricer_reuses_the_simulated_paths() -> None:
    # without a control variate the price is the mean payoff over simulate_log_forward
    model = MODELS["Heston"]
    times = np.array([0.25, 1.0])
    n, bs = 30_000, 8_000  # several batches, last one partial
    x = simulate_log_forward(model, times, n, seed=7, batch_size=bs)
    res = mc_price(
        model,
        F0,
        [[80.0, 120.0]],
        times[:, None],
        [[False, True]],
        0.9,
        n_paths=n,
        seed=7,
        batch_size=bs,
        control_variate=False,
    )
    ratio = np.exp(x)
    ref = 0.9 * np.stack(
        [
            np.maximum(80.0 - F0 * ratio, 0).mean(axis=1),
            np.maximum(F0 * ratio - 120.0, 0).mean(axis=1),
        ],
        axis=1,
    )
    np.testing.assert_allclose(res.price, ref, rtol=1e-11)
    assert res.price.shape == (2, 2)


def test_simulate_log_forward_layout() -> None:
    x = simulate_log_forward(MODELS["Black"], [1.0, 0.0, 0.25, 1.0], 1_000, seed=1)
    assert x.shape == (4, 1_000)
    np.testing.assert_array_equal(x[1], 0.0)
    np.testing.assert_array_equal(x[0], x[3])
    # antithetic pairs mirror the Gaussian draw (exact model: X + X' = 2 * drift * t)
    np.testing.assert_allclose(x[2, :500] + x[2, 500:], -(0.8**2) * 0.25, atol=1e-12)


def test_put_call_parity_is_exact_with_control_variate() -> None:
    k = np.array([60.0, 100.0, 150.0])
    res = mc_price(
        MODELS["SVCJ"],
        F0,
        k[:, None],
        [0.1, 1.0],
        np.array([True, False])[:, None, None],
        0.95,
        n_paths=20_000,
    )
    parity = np.broadcast_to(0.95 * (F0 - k[:, None]), (3, 2))
    np.testing.assert_allclose(res.price[0] - res.price[1], parity, atol=1e-10)


def test_control_variate_reduces_error() -> None:
    k = np.array([70.0, 100.0, 130.0])
    model = MODELS["Heston"]
    on = mc_price(model, F0, k, 0.5, [True, True, True], n_paths=50_000, seed=3)
    off = mc_price(
        model, F0, k, 0.5, [True, True, True], n_paths=50_000, seed=3, control_variate=False
    )
    assert on.cv_variance_ratio is not None and off.cv_variance_ratio is None
    assert np.all(on.stderr <= off.stderr)
    assert on.cv_variance_ratio[0] > 3.0  # deep ITM call: payoff ~ F_T - K
    np.testing.assert_allclose(on.cv_variance_ratio, (off.stderr / on.stderr) ** 2, rtol=1e-3)


def test_batches_bound_memory_without_changing_the_estimate() -> None:
    model = MODELS["Merton"]
    small = mc_price(model, F0, 100.0, 0.5, True, n_paths=60_000, batch_size=5_000, seed=1)
    big = mc_price(model, F0, 100.0, 0.5, True, n_paths=60_000, seed=1)
    se = math.hypot(float(small.stderr), float(big.stderr))
    assert abs(float(small.price) - float(big.price)) < 4 * se
    assert float(small.stderr) == pytest.approx(float(big.stderr), rel=0.1)


def test_result_is_frozen_with_summary_and_json() -> None:
    res = mc_price(MODELS["Heston"], F0, [90.0, 110.0], [0.1, 0.5], [False, True], n_paths=4_000)
    assert isinstance(res, MCResult)
    with pytest.raises(FrozenInstanceError):
        res.seed = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.price[0] = 0.0
    text = res.summary()
    assert "Heston" in text and "4000 paths" in text and "qe" in text
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_paths"] == 4_000 and d["model"] == "Heston" and len(d["price"]) == 2
    assert d["time_grid"][0] == 0.0 and d["maturities"] == [0.1, 0.5]
    assert np.isclose(d["time_grid"], 0.1).any()  # the grid hits every maturity


def test_zero_maturity_is_intrinsic_and_volcal_price_delegates() -> None:
    res = mc_price(
        MODELS["Bates"], F0, [90.0, 110.0, 110.0], [0.0, 0.0, 0.5], True, 0.9, n_paths=4_000
    )
    np.testing.assert_array_equal(res.price[:2], [9.0, 0.0])
    np.testing.assert_array_equal(res.stderr[:2], [0.0, 0.0])
    assert res.stderr[2] > 0 and list(res.maturities) == [0.5]
    only_expired = mc_price(MODELS["Heston"], F0, 80.0, 0.0, False, n_paths=4_000)
    assert float(only_expired.price) == 0.0 and only_expired.time_grid.size == 1
    via_api = volcal.price(
        MODELS["Bates"],
        F0,
        [90.0, 110.0, 110.0],
        [0.0, 0.0, 0.5],
        True,
        0.9,
        method="mc",
        n_paths=4_000,
    )
    np.testing.assert_array_equal(via_api, res.price)


def test_scalar_inputs_give_zero_dim_arrays() -> None:
    res = mc_price(MODELS["Black"], F0, 100.0, 1.0, True, n_paths=2_000)
    assert res.price.shape == () and res.stderr.shape == ()


# ----------------------------------------------------------------------- bad requests


def test_model_without_simulator_is_a_method_error() -> None:
    @dataclass(frozen=True)
    class Sabr:
        alpha: float

    with pytest.raises(MethodError, match="Sabr"):
        mc_price(Sabr(0.5), F0, 100.0, 1.0, True)
    with pytest.raises(MethodError, match="Sabr"):
        simulate_log_forward(Sabr(0.5), [1.0], 100)
    with pytest.raises(MethodError, match="scheme"):
        mc_price(MODELS["Heston"], F0, 100.0, 1.0, True, scheme="milstein")  # type: ignore[arg-type]
    assert set(mc.supported_models()) == set(MODELS) | {"HestonTD", "BatesTD"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t": -1.0}, "t must be"),
        ({"t": np.inf}, "t must be"),
        ({"strike": np.nan}, "strike"),
        ({"forward": -1.0}, "forward"),
        ({"discount": 0.0}, "discount"),
        ({"n_paths": 1001}, "even"),
        ({"n_paths": 0}, "n_paths"),
        ({"n_paths": 1000.0}, "n_paths"),
        ({"seed": -1}, "seed"),
        ({"steps_per_year": 0.0}, "steps_per_year"),
        ({"strike": [1.0, 2.0, 3.0], "t": [1.0, 2.0]}, "broadcast"),
    ],
)
def test_bad_requests_are_parameter_errors(kwargs: dict, match: str) -> None:
    args = {"forward": F0, "strike": 100.0, "t": 1.0, "is_call": True}
    extra = {k: v for k, v in kwargs.items() if k not in args}
    args.update({k: v for k, v in kwargs.items() if k in args})
    with pytest.raises(ParameterError, match=match):
        mc_price(MODELS["Heston"], n_paths=extra.pop("n_paths", 1000), **args, **extra)


def test_duck_typed_models_are_refused_and_models_validate_themselves() -> None:
    """Monte Carlo dispatches on the model class's ``simulator`` attribute: an object that
    merely has the fields and the class name of a model is refused, and the parameter
    rules are the model's own (one set: rho in (-1, 1), finite), checked when it is built."""
    Heston = make_dataclass("Heston", ["v0", "kappa", "theta", "xi", "rho"], frozen=True)

    with pytest.raises(MethodError, match="no simulator for model Heston"):
        mc_price(Heston(0.04, 1.0, 0.04, 0.5, -0.5), F0, 100.0, 1.0, True, n_paths=100)
    with pytest.raises(ParameterError, match=r"rho must lie in \(-1, 1\)"):
        MODELS["Heston"].replace(rho=1.0)
    with pytest.raises(ParameterError, match="finite"):
        MODELS["Heston"].replace(theta=float("nan"))
    res = mc_price(MODELS["Heston"], F0, 100.0, 1.0, True, n_paths=1000)
    assert res.model == "Heston"
