"""The secant-augmented Levenberg-Marquardt solver of the warm Heston fits
(volcal.calibration.engine.secant_lm): same minimum as MINPACK, fewer evaluations where
Gauss-Newton converges linearly (large residuals), robust from a far start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from volcal.calibration.engine import COST_FLOOR_RMS, Tracker, solve

T = np.linspace(0.0, 4.0, 40)


def _large_residual_problem():
    """Exponential decay fitted to data with O(1) misfit: the curvature term of the
    Hessian (sum r_i grad^2 r_i) is not small, Gauss-Newton converges linearly."""
    rng = np.random.default_rng(7)
    data = 2.0 * np.exp(-0.7 * T) + 3.0 * np.sin(3.0 * T) + 0.2 * rng.standard_normal(T.size)

    def fun(y):
        return y[0] * np.exp(y[1] * T) + y[2] - data

    def fj(y):
        e = np.exp(y[1] * T)
        return fun(y), np.stack([e, y[0] * T * e, np.ones_like(T)], axis=1)

    return fun, fj


def _tracker(fun, fj):
    tr = Tracker(fun, fj, deadline=np.inf)
    tr.eager_jac = True
    return tr


def test_large_residuals_same_minimum_fewer_evaluations():
    fun, fj = _large_residual_problem()
    y0 = np.array([1.0, -0.2, 0.3])
    ref = least_squares(fun, y0, jac=lambda y: fj(y)[1], method="lm", xtol=1e-15, ftol=1e-15)
    c_ref = 0.5 * float(ref.fun @ ref.fun)
    mp, sec = _tracker(fun, fj), _tracker(fun, fj)
    out_mp = solve(mp, y0, ftol=1e-10)
    out_sec = solve(sec, y0, ftol=1e-10, secant=True)
    assert out_sec.status == "ok" and out_mp.status == "ok"
    # both stop once a step lowers the cost by < 1e-10 relatively
    assert out_sec.cost == pytest.approx(c_ref, rel=1e-9)
    assert out_mp.cost == pytest.approx(c_ref, rel=1e-9)
    # a flat direction: parameters agree as far as a cost tolerance of 1e-10 fixes them
    np.testing.assert_allclose(out_sec.y, ref.x, rtol=1e-3)
    assert sec.njev < mp.njev


def test_zero_residuals_stop_at_the_objective_accuracy():
    """A noise-free fit stops once the residual RMS is below COST_FLOOR_RMS instead of
    confirming convergence with one more evaluation."""
    data = 2.0 * np.exp(-0.7 * T) + 0.3

    def fun(y):
        return y[0] * np.exp(y[1] * T) + y[2] - data

    def fj(y):
        e = np.exp(y[1] * T)
        return fun(y), np.stack([e, y[0] * T * e, np.ones_like(T)], axis=1)

    tr = _tracker(fun, fj)
    out = solve(tr, np.array([1.0, -0.2, 0.0]), ftol=1e-10, secant=True)
    assert out.status == "ok"
    np.testing.assert_allclose(out.y, [2.0, -0.7, 0.3], rtol=1e-8)
    r = fun(out.y)
    assert np.sqrt(np.mean(r**2)) <= COST_FLOOR_RMS


def test_rosenbrock_from_far_start():
    """The trust region keeps a narrow curved valley solvable (no divergence, the
    minimum at (1, 1) to 1e-8)."""

    def fun(y):
        return np.array([10.0 * (y[1] - y[0] ** 2), 1.0 - y[0]])

    def fj(y):
        return fun(y), np.array([[-20.0 * y[0], 10.0], [-1.0, 0.0]])

    tr = _tracker(fun, fj)
    out = solve(tr, np.array([-1.2, 1.0]), ftol=1e-14, xtol=1e-14, max_nfev=200, secant=True)
    assert out.status == "ok"
    np.testing.assert_allclose(out.y, [1.0, 1.0], atol=1e-8)


def test_budget_and_best_point():
    """The evaluation budget ends the solve with status max_iter at the best point seen."""
    fun, fj = _large_residual_problem()
    tr = _tracker(fun, fj)
    out = solve(tr, np.array([1.0, -0.2, 0.3]), ftol=1e-15, max_nfev=3, secant=True)
    assert out.status == "max_iter"
    assert tr.njev <= 3
    assert out.cost == tr.best_cost and np.array_equal(out.y, tr.best_y)


def test_safety_limit_counts_from_the_first_evaluations():
    """A first evaluation that is slow (a new process compiling the kernels) does not
    use up the time limit: the budget left when the tracker is made counts from the end
    of the first residual and first Jacobian evaluation; after it the next one stops."""
    import time

    from volcal.calibration.engine import _TimeUp

    calls = {"n": 0}

    def fun(y):
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.3)  # "compiling"
        return np.asarray(y, dtype=float) - 1.0

    def fj(y):
        return fun(y), np.eye(np.size(y))

    tr = Tracker(fun, fj, deadline=time.perf_counter() + 0.2)
    tr.fun(np.zeros(2))  # 0.3 s, past the original deadline
    tr.fun(np.ones(2))  # within the budget counted from the first call's end
    tr.jac(np.full(2, 0.5))  # the first Jacobian runs whatever the clock says
    time.sleep(0.25)
    with pytest.raises(_TimeUp):
        tr.fun(np.full(2, 2.0))
    # the old rule would have stopped at the second call
    assert calls["n"] == 3


def _perturbed(fj, eps):
    """A coarse version of ``fj``: residuals and Jacobian off by a smooth error of
    relative size ``eps`` (what looser pricing error bounds do)."""

    def coarse(y):
        r, j = fj(y)
        return r * (1.0 + eps * np.cos(3.0 * T)), j * (1.0 + eps)

    return coarse


def test_coarse_first_steps_then_full_bounds_to_the_same_minimum():
    """With a coarse Jacobian the first steps (cost still falling by > 1 % per step)
    use it; every later point and the reported one are evaluated with the full
    function, so the minimum is the full solve's."""
    fun, fj = _large_residual_problem()
    y0 = np.array([1.0, -0.2, 0.3])
    full = _tracker(fun, fj)
    out_full = solve(full, y0, ftol=1e-10, secant=True)
    calls = {"coarse": 0, "full": 0}

    def fj_full(y):
        calls["full"] += 1
        return fj(y)

    coarse_fj = _perturbed(fj, 1e-4)

    def fj_coarse(y):
        calls["coarse"] += 1
        return coarse_fj(y)

    tr = Tracker(fun, fj_full, deadline=np.inf, coarse_jac=fj_coarse)
    tr.eager_jac = True
    out = solve(tr, y0, ftol=1e-10, secant=True)
    assert out.status == "ok"
    assert calls["coarse"] >= 1 and calls["full"] >= 1
    assert tr.n_coarse == calls["coarse"] and tr.njev == calls["coarse"] + calls["full"]
    assert out.cost == pytest.approx(out_full.cost, rel=1e-9)
    # the reported point was evaluated with the full function
    r = fun(out.y)
    assert 0.5 * float(r @ r) == pytest.approx(out.cost, rel=1e-12)


def test_a_start_at_the_minimum_is_confirmed_with_the_full_bounds():
    """A coarse first evaluation that already meets a stopping test is evaluated again
    with the full function before the solver stops there."""
    fun, fj = _large_residual_problem()
    ref = solve(_tracker(fun, fj), np.array([1.0, -0.2, 0.3]), ftol=1e-14, secant=True)
    tr = Tracker(fun, fj, deadline=np.inf, coarse_jac=_perturbed(fj, 1e-3))
    out = solve(tr, ref.y, ftol=1e-6, secant=True)
    assert out.status == "ok"
    assert tr.njev - tr.n_coarse >= 1  # at least one full evaluation
    r = fun(out.y)
    assert 0.5 * float(r @ r) == pytest.approx(out.cost, rel=1e-12)  # a full evaluation
    assert out.cost == pytest.approx(ref.cost, rel=1e-6)  # the minimum to ftol


def test_final_gauss_newton_step_of_a_noise_free_fit_is_not_evaluated():
    """Zero residuals in Gauss-Newton's quadratic regime: the last step, which the
    model puts below the objective's accuracy, is taken without an evaluation; the
    point is as accurate as an evaluated one and the Tracker's best point is it (with
    the model's residuals and the previous Jacobian for standard errors)."""
    data = 2.0 * np.exp(-0.7 * T) + 0.3

    def fun(y):
        return y[0] * np.exp(y[1] * T) + y[2] - data

    def fj(y):
        e = np.exp(y[1] * T)
        return fun(y), np.stack([e, y[0] * T * e, np.ones_like(T)], axis=1)

    tr = _tracker(fun, fj)
    out = solve(tr, np.array([1.0, -0.2, 0.0]), ftol=1e-10, secant=True)
    assert out.status == "ok" and tr.n_predicted == 1
    np.testing.assert_allclose(out.y, [2.0, -0.7, 0.3], rtol=1e-10)
    r = fun(out.y)
    assert np.sqrt(np.mean(r**2)) <= COST_FLOOR_RMS
    assert np.array_equal(tr.best_y, out.y) and tr.best_rj is not None
    assert np.sqrt(np.mean(tr.best_rj[0] ** 2)) <= COST_FLOOR_RMS
