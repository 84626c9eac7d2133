"""Model dataclasses: validation, vectors, martingale property, cumulants, limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from volcal.errors import ParameterError
from volcal.models import SVCJ, Bates, Black, Heston, Kou, Merton, Model, VarianceGamma

HESTON = Heston(v0=0.3, kappa=3.0, theta=0.4, xi=2.0, rho=-0.4)
BATES = Bates(0.3, 3.0, 0.4, 2.0, -0.4, lam=2.0, mu_j=-0.08, sigma_j=0.15)
SVCJ_M = SVCJ(0.3, 3.0, 0.4, 2.0, -0.4, lam=2.0, mu_s=-0.08, sigma_s=0.15, mu_v=0.2, rho_j=-0.5)
MODELS: list[Model] = [
    Black(0.6),
    HESTON,
    BATES,
    SVCJ_M,
    Merton(0.5, 3.0, -0.05, 0.12),
    Kou(0.5, 3.0, 0.4, 8.0, 6.0),
    VarianceGamma(0.6, 0.3, -0.2),
]
IDS = [type(m).__name__ for m in MODELS]


@pytest.mark.parametrize(
    ("cls", "kwargs", "word"),
    [
        (Heston, {"v0": 0.04, "kappa": 1, "theta": 0.04, "xi": 0.5, "rho": 1.0}, "rho"),
        (Heston, {"v0": 0.04, "kappa": 1, "theta": 0.04, "xi": 0.5, "rho": -1.2}, "rho"),
        (Heston, {"v0": -0.01, "kappa": 1, "theta": 0.04, "xi": 0.5, "rho": 0}, "v0"),
        (Heston, {"v0": 0.04, "kappa": 1, "theta": -0.04, "xi": 0.5, "rho": 0}, "theta"),
        (Heston, {"v0": 0.04, "kappa": 0, "theta": 0.04, "xi": 0.5, "rho": 0}, "kappa"),
        (Heston, {"v0": 0.04, "kappa": 1, "theta": 0.04, "xi": float("nan"), "rho": 0}, "xi"),
        (Kou, {"sigma": 0.2, "lam": 1, "p": 1.2, "eta1": 3, "eta2": 2}, "p"),
        (Kou, {"sigma": 0.2, "lam": 1, "p": 0.5, "eta1": 1.0, "eta2": 2}, "eta1"),
        (Merton, {"sigma": 0.2, "lam": -1, "mu_j": 0, "sigma_j": 0.1}, "lam"),
        (VarianceGamma, {"sigma": 0.2, "nu": 0.0, "theta_vg": 0.1}, "nu"),
        (VarianceGamma, {"sigma": 1.5, "nu": 2.0, "theta_vg": 0.1}, "theta_vg"),
        (Black, {"sigma": -0.1}, "sigma"),
        (
            SVCJ,
            dict(
                v0=0.04,
                kappa=1,
                theta=0.04,
                xi=0.5,
                rho=0,
                lam=1,
                mu_s=0,
                sigma_s=0.1,
                mu_v=-0.1,
                rho_j=0,
            ),
            "mu_v",
        ),
        (
            SVCJ,
            dict(
                v0=0.04,
                kappa=1,
                theta=0.04,
                xi=0.5,
                rho=0,
                lam=1,
                mu_s=0,
                sigma_s=0.1,
                mu_v=2.0,
                rho_j=0.6,
            ),
            "rho_j",
        ),
    ],
)
def test_bad_parameters_raise_at_construction(cls: type, kwargs: dict, word: str) -> None:
    with pytest.raises(ParameterError, match=word):
        cls(**kwargs)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_vector_round_trip_and_bounds(model: Model) -> None:
    x = model.to_vector()
    assert x.shape == (len(model.param_names),)
    assert type(model).from_vector(x) == model
    lo, hi = model.bounds()
    assert lo.shape == hi.shape == x.shape and np.all(lo < hi)
    assert model.to_dict()["model"] == type(model).__name__
    assert type(model).__name__ in model.summary()
    with pytest.raises(ParameterError, match="expected"):
        type(model).from_vector(np.append(x, 1.0))
    with pytest.raises(AttributeError):
        model.sigma = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_char_func_martingale_normalised_and_broadcasts(model: Model) -> None:
    t = np.array([1 / 365, 0.25, 3.0])
    assert np.allclose(model.char_func(np.full(3, -1j), t), 1.0, atol=1e-13)
    assert np.allclose(model.char_func(np.zeros(3), t), 1.0, atol=1e-13)
    u = np.linspace(-30, 30, 41)
    phi = model.char_func(u[None, :], t[:, None])
    assert phi.shape == (3, 41)
    assert np.all(np.abs(phi) <= 1 + 1e-12)
    # conjugate symmetry of a real random variable
    assert np.allclose(model.char_func(-u, 1.0), np.conj(model.char_func(u, 1.0)), atol=1e-14)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_cumulants_match_numerical_derivatives(model: Model) -> None:
    t = np.array([0.01, 1.0, 2.5])
    c1, c2, c4 = model.cumulants(t)
    n1, n2, n4 = model._numeric_cumulants(t, radius=0.1, n=64)
    assert np.allclose(c1, n1, rtol=1e-9, atol=1e-13)
    assert np.allclose(c2, n2, rtol=1e-9, atol=1e-13)
    assert np.allclose(c4, n4, rtol=1e-6, atol=1e-10)


def test_heston_cumulants_match_closed_form_mean_and_finite_difference_variance() -> None:
    # E[X_T] = (1 - e^{-kT})(theta - v0)/(2k) - theta T/2 (Fang & Oosterlee 2008, Table 11)
    m = Heston(0.0175, 1.5768, 0.0398, 0.5751, -0.5711)
    h = 1e-3
    for t in (1 / 365, 1.0, 10.0):
        c1 = (1 - np.exp(-m.kappa * t)) * (m.theta - m.v0) / (2 * m.kappa) - 0.5 * m.theta * t
        lp = [complex(m.log_char_func(complex(x), t)) for x in (h, 0.0, -h)]
        c2_fd = -(lp[0] - 2 * lp[1] + lp[2]).real / h**2
        n1, n2, _ = m.cumulants(t)
        assert n1 == pytest.approx(c1, rel=1e-10)
        assert n2 == pytest.approx(c2_fd, rel=1e-6)


def test_feller_property() -> None:
    assert Heston(0.04, 2.0, 0.04, 0.3, -0.5).feller
    assert not HESTON.feller
    assert not BATES.feller and not SVCJ_M.feller


def test_heston_xi_zero_is_black_with_integrated_variance() -> None:
    m = Heston(v0=0.09, kappa=2.0, theta=0.25, xi=0.0, rho=-0.5)
    t = 0.7
    w = m.theta * t + (m.v0 - m.theta) * (1 - np.exp(-m.kappa * t)) / m.kappa
    u = np.linspace(-40, 40, 81) - 0.5j
    assert np.allclose(m.char_func(u, t), Black(np.sqrt(w / t)).char_func(u, t), rtol=1e-13)
    tiny = m.replace(xi=1e-7)
    assert np.allclose(tiny.char_func(u, t), Black(np.sqrt(w / t)).char_func(u, t), rtol=1e-6)


def test_bates_without_jumps_is_heston_and_svcj_without_variance_jumps_is_bates() -> None:
    u = np.linspace(-50, 50, 101)[None, :] - np.array([0.0, 0.5])[:, None] * 1j
    for t in (1 / 365, 1.0, 3.0):
        b0 = BATES.replace(lam=0.0)
        assert np.allclose(b0.char_func(u, t), HESTON.char_func(u, t), rtol=1e-14, atol=0)
        s0 = SVCJ_M.replace(mu_v=0.0, rho_j=0.0)
        assert np.allclose(s0.char_func(u, t), BATES.char_func(u, t), rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("u", [0.7, 3.0 - 0.5j, -12.0, 25.0 - 0.5j])
def test_svcj_jump_integral_matches_quadrature(u: complex) -> None:
    """The closed-form jump integral equals a numerical integral of the ODE solution."""
    from volcal.models.heston import heston_exponents

    m, t = SVCJ_M, 1.5
    iu = 1j * u

    def integrand(s: float) -> complex:
        _, b, _ = heston_exponents(np.array(u), s, m.kappa, m.theta, m.xi, m.rho)
        jt = np.exp(iu * m.mu_s + 0.5 * iu * iu * m.sigma_s**2) / (
            1 - m.mu_v * (iu * m.rho_j + complex(b))
        )
        return complex(jt)

    re = quad(lambda s: integrand(s).real, 0, t, epsabs=1e-13, epsrel=1e-12)[0]
    im = quad(lambda s: integrand(s).imag, 0, t, epsabs=1e-13, epsrel=1e-12)[0]
    mubar = np.exp(m.mu_s + 0.5 * m.sigma_s**2) / (1 - m.rho_j * m.mu_v) - 1
    jump = m.lam * (complex(re, im) - t - iu * mubar * t)
    a, b, _ = heston_exponents(np.array(u), t, m.kappa, m.theta, m.xi, m.rho)
    expect = np.exp(complex(a) + complex(b) * m.v0 + jump)
    assert complex(m.char_func(u, t)) == pytest.approx(expect, rel=1e-10)
