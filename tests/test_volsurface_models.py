"""``fit.surface()`` for the Fourier models: a VolSurface backed by the model's own
prices (the common engine), agreeing with the fit and with the model's density."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import trapezoid

import volcal
from volcal.errors import ParameterError
from volcal.models import Heston, Merton
from volcal.surface import VolSurface
from volcal.synthetic import synthetic_chain

TRUE = Heston(v0=0.36, kappa=2.5, theta=0.42, xi=1.6, rho=-0.15)


@pytest.fixture(scope="module")
def fit() -> volcal.calibration.CalibrationResult:
    chain = synthetic_chain(TRUE, noise=0.0, days=(7, 30, 90, 180))
    return volcal.calibrate(volcal.clean(chain), "heston")


def test_surface_of_a_fourier_fit_is_the_fit(fit) -> None:
    s = fit.surface()
    assert s.is_model_surface and s.model == "heston"
    q = fit.quotes
    assert s.expiries == tuple(sl.expiry for sl in fit.slices)
    # the same engine, the same numbers: at the quotes the surface is the fit's model_iv
    np.testing.assert_allclose(s.implied_vol(q.k, q.t), fit.model_iv, rtol=0, atol=1e-10)
    # and the forwards are the fitted ones
    np.testing.assert_allclose(s.forwards, q.forward_slices, rtol=1e-14)


def test_model_surface_between_expiries_is_the_model_not_an_interpolation(fit) -> None:
    s = fit.surface()
    t = 0.5 * (s.t_nodes[1] + s.t_nodes[2])
    k = np.linspace(-0.3, 0.3, 7)
    direct = volcal.model_iv(fit.params, 1.0, np.exp(k), t)
    np.testing.assert_allclose(s.implied_vol(k, t), direct, atol=1e-12)


def test_model_surface_density_and_local_vol(fit) -> None:
    s = fit.surface()
    t = s.t_nodes[2]
    sd = float(np.sqrt(s.total_variance(0.0, t)))
    k = np.linspace(-6 * sd, 6 * sd, 1201)
    p = s.density(k, t)
    assert np.all(p >= -1e-6)
    assert trapezoid(p, k) == pytest.approx(1.0, abs=2e-3)
    assert np.all(s.local_vol(np.linspace(-2 * sd, 2 * sd, 9), t) > 0)
    assert volcal.check_arbitrage(s).ok


def test_model_surface_needs_the_expiries() -> None:
    with pytest.raises(ParameterError, match="needs the expiries t"):
        VolSurface.from_model(Merton(0.5, 1.0, -0.1, 0.2), forwards=(100.0,))
    s = VolSurface.from_model(Merton(0.5, 1.0, -0.1, 0.2), forwards=(100.0, 101.0), t=(0.1, 0.5))
    assert s.model == "merton"
    assert float(s.forward(0.3)) == pytest.approx(100.5)
