"""The Fourier calibration's objective object: residuals, an analytic Jacobian that
matches finite differences, and no mutable state (a new scale is a new objective)."""

from __future__ import annotations

import numpy as np
import pytest

import volcal
from volcal.calibration.calibrate import _QuotePricer
from volcal.calibration.objective import FourierObjective
from volcal.calibration.quotes import as_quotes
from volcal.calibration.transforms import ParamSpace
from volcal.models import Heston
from volcal.pricing.cos import COSPricer
from volcal.synthetic import synthetic_chain

TRUE = Heston(v0=0.36, kappa=2.5, theta=0.42, xi=1.6, rho=-0.15)


@pytest.fixture(scope="module")
def objective() -> FourierObjective:
    q = as_quotes(volcal.clean(synthetic_chain(TRUE, noise=0.0, days=(7, 30, 90))))
    start = TRUE.replace(v0=0.3, xi=1.2)
    space = ParamSpace(Heston, start.to_vector())
    qp = _QuotePricer("heston", q, COSPricer(phi_tol=1e-12, tail_tol=1e-12))
    return FourierObjective(Heston, space, qp, q, np.ones(len(q)), np.maximum(q.vega, 1e-12), True)


@pytest.mark.parametrize("exact", [True, False])
def test_jacobian_matches_central_differences(objective, exact) -> None:
    obj = FourierObjective(
        objective.cls, objective.space, objective.pricer, objective.quotes,
        objective.sw, objective.scale, exact,
    )  # fmt: skip
    y = obj.space.to_y(obj.space.base)
    r, j = obj.residuals_jac(y)
    np.testing.assert_allclose(r, obj.residuals(y), rtol=0, atol=1e-14)
    h = 1e-6
    fd = np.column_stack(
        [(obj.residuals(y + h * e) - obj.residuals(y - h * e)) / (2 * h) for e in np.eye(y.size)]
    )
    assert np.max(np.abs(j - fd)) < 1e-6 * max(1.0, float(np.max(np.abs(fd))))


def test_residuals_vanish_at_the_truth_and_scale_is_a_new_object(objective) -> None:
    # vol residuals: the model's implied vols (the library's, at tighter COS bounds here)
    # minus the quotes' mid vols (tick-rounded, so not exactly zero at the truth)
    q = objective.quotes
    y_true = objective.space.to_y(TRUE.to_vector())
    ref = volcal.model_iv(TRUE, 1.0, np.exp(q.k), q.t) - q.iv_mid
    np.testing.assert_allclose(objective.residuals(y_true), ref, rtol=0, atol=1e-9)
    y0 = objective.space.to_y(objective.space.base)
    assert np.sum(objective.residuals(y_true) ** 2) < 0.1 * np.sum(objective.residuals(y0) ** 2)
    other = objective.with_scale(2.0 * objective.scale)
    assert other is not objective
    np.testing.assert_array_equal(objective.scale, np.maximum(objective.quotes.vega, 1e-12))
    with pytest.raises(AttributeError):
        objective.scale = other.scale  # type: ignore[misc]
    assert objective.n_res == len(objective.quotes)
