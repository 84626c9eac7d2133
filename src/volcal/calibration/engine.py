"""Least-squares driver (evaluation budget, best-so-far) and the global stage.

:func:`solve` wraps :func:`scipy.optimize.least_squares` (``"lm"``: MINPACK
Levenberg-Marquardt, or ``"trf"``) on an unconstrained vector. Every residual
evaluation is tracked, so whatever stops the solver - convergence, the evaluation cap,
the wall-clock deadline (raised from inside the residual function), or an exception -
the best point seen is returned together with a status. Non-finite residuals are
replaced by a large finite penalty so the trust region shrinks instead of failing.
Stopping is by tolerances and an evaluation budget, so identical inputs give
bit-identical results; the deadline is only a safety limit (status ``"time_limit"``).

:func:`global_stage` is run when a local fit is poor: a deterministic low-discrepancy
design (:func:`low_discrepancy`) over a plausible box is scored with one residual
evaluation per point (prices only), the best few distinct points get a short local
solve each, and the winner is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import MethodError

__all__ = ["LocalOutcome", "Tracker", "global_stage", "low_discrepancy", "solve"]

PENALTY = 1.0  # residual replacing a non-finite one (1.0 = 100 vol points)

#: COS error bounds of the calibration objectives (the constant Fourier models and the
#: time-dependent ones alike; the library's own pricing keeps its tighter defaults)
OBJ_PHI_TOL = 1e-10
OBJ_TAIL_TOL = 1e-11


def _same(a: FloatArray | None, b: FloatArray | None) -> bool:
    """``np.array_equal(a, b)`` of two float vectors (None: False), without its
    dispatch: the Tracker's cache tests run several times per evaluation."""
    return a is not None and b is not None and a.shape == b.shape and bool((a == b).all())


class _TimeUp(Exception):
    """Raised inside the residual function when the deadline has passed."""


class Tracker:
    """Wraps residual/Jacobian functions: counts, best point, deadline.

    Parameters
    ----------
    fun : callable
        ``fun(y) -> residual vector`` (may raise to signal an invalid point).
    jac : callable or None
        ``jac(y) -> (residuals, jacobian)``; the residuals are reused when ``fun`` is
        asked for the same point.
    deadline : float
        ``time.perf_counter()`` value after which evaluations raise. What is left of it
        when the tracker is made is the budget of the solve, counted from the end of
        the first residual and the first Jacobian evaluation: their time (and anything
        before them) is where a new process compiles or loads the kernels (up to a
        minute), so a first calibration after an install stops where any other does,
        not on the safety limit.
    coarse_jac : callable or None
        Like ``jac`` with looser pricing error bounds: ``jac(y, coarse=True)`` calls it
        (the first steps of :func:`secant_lm`); None: ``coarse`` is ignored.
    """

    def __init__(
        self,
        fun: Callable[[FloatArray], FloatArray],
        jac: Callable[[FloatArray], tuple[FloatArray, FloatArray]] | None,
        deadline: float,
        coarse_jac: Callable[[FloatArray], tuple[FloatArray, FloatArray]] | None = None,
    ) -> None:
        self._fun = fun
        self._jac = jac
        self._coarse_jac = coarse_jac if jac is not None else None
        self.n_coarse = 0  # Jacobian evaluations with the coarse bounds (in njev)
        self.n_predicted = 0  # best points accepted from a model (accept_predicted)
        self._cache_coarse = False
        self._best_coarse = False
        self.deadline = deadline
        self._budget = max(deadline - time.perf_counter(), 0.0)
        self._fresh = {"fun": True, "jac": True}
        self.nfev = 0
        self.njev = 0
        self.best_y: FloatArray | None = None
        self.best_cost = np.inf
        self._cache_y: FloatArray | None = None
        self._cache_r: FloatArray | None = None
        self._cache_j: FloatArray | None = None
        self.n_res: int | None = None
        # residuals and Jacobian at the best point, when the Jacobian was evaluated there
        # with every entry finite (reused for standard errors instead of a new evaluation)
        self.best_rj: tuple[FloatArray, FloatArray] | None = None
        # evaluate the Jacobian with every residual (when it costs about one more pricing,
        # a Levenberg-Marquardt step that is accepted then needs no second evaluation)
        self.eager_jac = False

    def _clean(self, r: FloatArray) -> FloatArray:
        r = np.asarray(r, dtype=np.float64)
        fin = np.isfinite(r)
        if not fin.all():
            r = np.where(fin, r, PENALTY)
        return r

    def _record(self, y: FloatArray, r: FloatArray, coarse: bool = False) -> None:
        """Best point so far; coarse evaluations count only until the first full one
        (a full evaluation replaces a coarse best point whatever its cost: a coarse
        cost is not comparable to the last digits)."""
        cost = 0.5 * float(r @ r)
        if coarse and self.best_y is not None and not self._best_coarse:
            return
        if cost < self.best_cost or (self._best_coarse and not coarse):
            self.best_cost = cost
            self.best_y = np.array(y, dtype=np.float64)
            self.best_rj = None
            self._best_coarse = coarse

    def _check_time(self, kind: str) -> None:
        if self._fresh[kind]:
            return  # the first of its kind always runs (see _started)
        if time.perf_counter() > self.deadline:
            raise _TimeUp

    def _started(self, kind: str) -> None:
        """After the first evaluation of ``kind``: the budget counts from now."""
        if self._fresh[kind]:
            self._fresh[kind] = False
            self.deadline = max(self.deadline, time.perf_counter() + self._budget)

    def accept_predicted(self, y: FloatArray, r: FloatArray, j: FloatArray) -> None:
        """Make ``y`` the best point without evaluating it: a solver's final step whose
        end its model puts below the objective's accuracy (:func:`secant_lm`), with the
        model's residuals ``r`` there and the Jacobian ``j`` of the point it was
        predicted from (for standard errors)."""
        self.best_y = np.array(y, dtype=np.float64)
        self.best_cost = 0.5 * float(r @ r)
        self.best_rj = (r, j)
        self.n_predicted += 1

    def fun(self, y: FloatArray) -> FloatArray:
        self._check_time("fun")
        if not self._cache_coarse and _same(y, self._cache_y):
            assert self._cache_r is not None
            return self._cache_r
        if self.eager_jac and self._jac is not None and self.n_res is not None:
            self.jac(y)
            assert self._cache_r is not None
            return self._cache_r
        self.nfev += 1
        try:
            r = self._clean(self._fun(y))
        except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError):
            if self.n_res is None:
                raise
            r = np.full(self.n_res, PENALTY)
        self.n_res = r.size
        self._record(y, r)
        self._cache_y, self._cache_r, self._cache_j = np.array(y), r, None
        self._cache_coarse = False
        self._started("fun")
        return r

    def jac(self, y: FloatArray, coarse: bool = False) -> FloatArray:
        """Jacobian at ``y`` (residuals in the cache); ``coarse``: by ``coarse_jac``
        when there is one (a cached evaluation at ``y`` serves unless it was coarse and
        the full bounds are asked for)."""
        self._check_time("jac")
        if self._jac is None:
            raise RuntimeError("no Jacobian function")  # pragma: no cover - guarded by caller
        coarse = coarse and self._coarse_jac is not None
        if (
            self._cache_j is not None
            and (coarse or not self._cache_coarse)
            and _same(y, self._cache_y)
        ):
            return self._cache_j
        self.njev += 1
        self.n_coarse += int(coarse)
        fn = self._coarse_jac if coarse else self._jac
        assert fn is not None
        try:
            r, j = fn(y)
        except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError):
            if self.n_res is None:
                raise
            r, j = np.full(self.n_res, PENALTY), np.zeros((self.n_res, np.size(y)))
        r = self._clean(r)
        fin_j = np.isfinite(j)
        finite = bool(fin_j.all())
        if not finite:
            j = np.where(fin_j, j, 0.0)
        if self._cache_coarse or not _same(y, self._cache_y):
            self.nfev += 1
            self._record(y, r, coarse)
        self.n_res = r.size
        self._cache_y, self._cache_r, self._cache_j = np.array(y), r, j
        self._cache_coarse = coarse
        if finite and _same(y, self.best_y):
            self.best_rj = (r, j)
        self._started("jac")
        self._started("fun")  # the residuals came with it
        return j


@dataclass(frozen=True)
class LocalOutcome:
    """Result of one local solve (in the unconstrained coordinates)."""

    y: FloatArray
    cost: float
    status: str  # "ok", "max_iter", "time_limit", "failed"
    message: str


def solve(
    tracker: Tracker,
    y0: FloatArray,
    *,
    method: str = "lm",
    max_nfev: int = 200,
    ftol: float = 1e-10,
    xtol: float = 1e-10,
    gtol: float = 1e-10,
    secant: bool = False,
) -> LocalOutcome:
    """Run one local least-squares solve from ``y0`` and report the best point seen.

    ``secant=True`` (``method="lm"`` with an analytic Jacobian) uses
    :func:`secant_lm` instead of MINPACK: the Gauss-Newton model augmented by a secant
    estimate of the residual curvature, which converges superlinearly where
    Gauss-Newton is linear (fits with large residuals, e.g. warm recalibrations).

    Status: ``"ok"`` when the solver met a tolerance, ``"max_iter"`` when the
    evaluation cap stopped it, ``"time_limit"`` on the deadline, ``"failed"`` when no
    finite evaluation was possible. A :class:`~volcal.errors.MethodError` of the very
    first evaluation (the start cannot be priced as asked) propagates.
    """
    jac: Any = tracker.jac if tracker._jac is not None else "2-point"
    try:
        use_secant = secant and method == "lm" and tracker._jac is not None
        if tracker._jac is not None and not use_secant:
            # MINPACK asks for the residuals and then the Jacobian at the start: one
            # combined evaluation serves both (the Tracker caches it)
            tracker.jac(np.asarray(y0, dtype=np.float64))
        if use_secant:  # evaluates its start itself (with the coarse bounds, if any)
            res = secant_lm(tracker, y0, max_nfev, ftol, xtol, LM_FACTOR)
        elif method == "lm" and tracker._jac is not None and LM_FACTOR != 100.0:
            res = _leastsq(tracker, y0, max_nfev, ftol, xtol, gtol, LM_FACTOR)
        else:
            from scipy.optimize import least_squares

            res = least_squares(
                tracker.fun,
                np.asarray(y0, dtype=np.float64),
                jac=jac,
                method=method,
                max_nfev=max_nfev,
                ftol=ftol,
                xtol=xtol,
                gtol=gtol,
                x_scale=1.0 if method == "lm" else "jac",
            )
    except _TimeUp:
        y = tracker.best_y if tracker.best_y is not None else np.asarray(y0, dtype=np.float64)
        return LocalOutcome(y, tracker.best_cost, "time_limit", "time limit reached")
    except MethodError:
        if tracker.best_y is None:
            raise  # the engine cannot price the start as asked (e.g. a fixed N too small)
        return LocalOutcome(tracker.best_y, tracker.best_cost, "failed", "pricing failed")
    except (ValueError, np.linalg.LinAlgError) as exc:
        if tracker.best_y is None:
            return LocalOutcome(np.asarray(y0, dtype=np.float64), np.inf, "failed", str(exc))
        return LocalOutcome(tracker.best_y, tracker.best_cost, "failed", str(exc))
    y = tracker.best_y if tracker.best_y is not None else res.x
    if res.status > 0:
        status = "ok"
    elif res.status == 0:
        status = "max_iter"
    else:
        status = "failed"
    return LocalOutcome(np.asarray(y), tracker.best_cost, status, str(res.message))


LM_FACTOR = 1.0  # MINPACK initial step bound factor (least_squares fixes it at 100)


class _LMResult:
    def __init__(self, x: FloatArray, status: int, message: str) -> None:
        self.x, self.status, self.message = x, status, message


def _leastsq(
    tracker: Tracker,
    y0: FloatArray,
    max_nfev: int,
    ftol: float,
    xtol: float,
    gtol: float,
    factor: float,
) -> _LMResult:
    """MINPACK lmder as :func:`scipy.optimize.leastsq` calls it (through
    :func:`volcal.calibration._minpack.leastsq`, which loads scipy's compiled wrapper without
    the scipy.optimize package): it exposes the initial step bound ``factor`` (a bound of
    ``factor * |y0|`` on the first step)."""
    from volcal.calibration._minpack import leastsq

    x, _, _, msg, ier = leastsq(
        tracker.fun,
        np.asarray(y0, dtype=np.float64),
        Dfun=tracker.jac,
        full_output=True,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        maxfev=max_nfev,
        factor=factor,
        diag=np.ones(np.size(y0)),
    )
    status = 1 if ier in (1, 2, 3, 4) else (0 if ier == 5 else -1)
    return _LMResult(np.asarray(x), status, str(msg))


#: residual RMS below which a solve has converged whatever its relative tolerances say:
#: the accuracy of the calibration objectives' prices (1e-10 per unit forward, about
#: 1e-10 in vol); a noise-free fit reaching it has nothing left to gain
COST_FLOOR_RMS = 1e-10
#: the coarse first steps of secant_lm: while the last accepted step lowered the cost
#: by more than COARSE_REL relatively (or none was accepted yet) and the residual RMS is
#: above COARSE_RMS (vol units: 0.01 vol points, far above the coarse bounds' vol
#: errors), trial points are priced with the coarse error bounds
COARSE_REL = 1e-2
COARSE_RMS = 1e-4


def secant_lm(
    tracker: Tracker,
    y0: FloatArray,
    max_nfev: int,
    ftol: float,
    xtol: float,
    factor: float = 1.0,
    coarse_rel: float = COARSE_REL,
    coarse_rms: float = COARSE_RMS,
) -> _LMResult:
    r"""Levenberg-Marquardt on an augmented Gauss-Newton model (NL2SOL's idea).

    The Hessian of :math:`\tfrac12\|r\|^2` is :math:`J^TJ + S` with
    :math:`S = \sum_i r_i \nabla^2 r_i`; Gauss-Newton drops :math:`S` and converges only
    linearly when the residuals are large (real smiles: near the optimum the cost gap
    shrinks by a constant factor of about 0.2 per step). Here :math:`S` is estimated by
    the secant update of Dennis, Gay & Welsch (1981) - a symmetric rank-two correction
    with :math:`S_+ s = (J_+ - J)^T r_+`, after NL2SOL's sizing by
    :math:`\min(1, |s^T y^\#| / |s^T S s|)` - and, as in NL2SOL, each step uses the
    model (with or without :math:`S`) whose prediction of the previous step's cost
    decrease was closer to the actual one (an augmented model that is not positive
    semi-definite is dropped for that step). The step is MINPACK's with ``diag = 1``:
    :math:`(J^TJ [+ S] + \lambda I)\,s = -J^Tr` with the smallest :math:`\lambda \ge 0`
    that keeps :math:`|s|` within the trust radius (:func:`_trust_step`), the radius
    starting at ``factor * |y0|`` and updated as lmder does (:math:`2|s|` after a good
    or an interior step, a factor 0.1-0.5 after a poor or rejected one).

    Coarse first steps: while no step has been accepted yet or the last accepted one
    lowered the cost by more than ``coarse_rel`` relatively, and the residual RMS is
    above ``coarse_rms``, trial points are evaluated with ``tracker.jac(y,
    coarse=True)`` (looser pricing error bounds: far from the optimum a step needs no
    more); every stop for convergence is taken at a point evaluated with the full
    bounds (a coarse point is evaluated again first).

    Stops, status 1, when an accepted step lowered the cost by at most ``ftol``
    relatively, as predicted (MINPACK's test), or when the next step is predicted to
    lower it by less than that after a step the model predicted to 20 % that lowered
    it by at most ``1000 ftol`` (no evaluation spent on confirming convergence), the
    step is below ``xtol`` relatively, or the residual RMS is below
    :data:`COST_FLOOR_RMS`; status 0 when ``max_nfev`` evaluations are spent. Every
    trial point is one ``tracker.jac`` call (residuals and Jacobian), so the Tracker
    keeps the best point and its Jacobian as with MINPACK.
    """
    y = np.array(y0, dtype=np.float64)
    j = tracker.jac(y, coarse=True)
    cur_coarse = tracker._cache_coarse
    assert tracker._cache_r is not None
    r = tracker._cache_r
    cost = 0.5 * float(r @ r)
    g = j.T @ r
    n_p = y.size
    s_mat = np.zeros((n_p, n_p))
    delta = factor * float(np.linalg.norm(y))
    if delta <= 0.0:
        delta = factor
    floor = 0.5 * r.size * COST_FLOOR_RMS**2
    coarse_cost = 0.5 * r.size * coarse_rms**2  # cost of a residual RMS of coarse_rms
    aug = False
    nev = 1
    last_rel, last_ratio = np.inf, np.inf  # of the last accepted step
    refine = False  # a stopping test met at a coarse point: evaluate it in full first
    while True:
        if refine:
            refine = False
            if nev >= max_nfev:
                return _LMResult(y, 0, "evaluation budget reached")
            j = tracker.jac(y)
            assert tracker._cache_r is not None
            r = tracker._cache_r
            nev += 1
            cost = 0.5 * float(r @ r)
            g = j.T @ r
            cur_coarse = False
        if cost <= floor:
            if cur_coarse:
                refine = True
                continue
            return _LMResult(y, 1, "residuals below the objective's accuracy")
        jj = j.T @ j
        step, model = _trust_step(jj + s_mat if aug else jj, g, delta)
        if step is None and aug:
            aug = False
            step, model = _trust_step(jj, g, delta)
        if step is None:
            if cur_coarse:
                refine = True
                continue
            return _LMResult(y, 1, "no descent step: gradient zero to working precision")
        ns = float(np.linalg.norm(step))
        pred = -float(g @ step + 0.5 * step @ model @ step)
        if (
            not cur_coarse
            and cost - pred <= floor
            and 0.9 <= last_ratio <= 1.1
            and ns * ns <= COST_FLOOR_RMS
            and ns < 0.999 * delta
            and not aug
        ):
            # a noise-free fit in Gauss-Newton's quadratic regime: the model, which
            # predicted the last decrease to 10 %, puts the step's end below the
            # objective's accuracy, and the step is so short (|s|^2 below the floor RMS)
            # that the model's neglected second-order term, |s|^2 times the residuals'
            # curvature in the transformed coordinates, stays at that accuracy - taken
            # without spending an evaluation on it
            tracker.accept_predicted(y + step, r + j @ step, j)
            return _LMResult(y + step, 1, "Gauss-Newton step to the objective's accuracy")
        if pred <= ftol * cost and last_rel <= 1e3 * ftol and 0.8 <= last_ratio <= 1.25:
            # the model predicted the last (small) decrease well and predicts less than
            # ftol for this step: converged without spending the evaluation
            if cur_coarse:
                refine = True
                continue
            return _LMResult(y, 1, "predicted decrease below ftol")
        if ns <= xtol * (float(np.linalg.norm(y)) + xtol):
            if cur_coarse:
                refine = True
                continue
            return _LMResult(y, 1, "step below xtol")
        if nev >= max_nfev:
            return _LMResult(y, 0, "evaluation budget reached")
        yn = y + step
        jn = tracker.jac(yn, coarse=last_rel > coarse_rel and cost > coarse_cost)
        new_coarse = tracker._cache_coarse
        assert tracker._cache_r is not None
        rn = tracker._cache_r
        nev += 1
        cn = 0.5 * float(rn @ rn)
        act = cost - cn
        if act > 0.0 and np.isfinite(cn):
            gn = jn.T @ rn
            # the model for the next step: the one that predicted this step better
            sss = float(step @ s_mat @ step)
            p_gn = -float(g @ step + 0.5 * (step @ jj @ step))
            p_au = p_gn - 0.5 * sss
            aug = abs(p_au - act) < abs(p_gn - act)
            # Dennis-Gay-Welsch update of S with NL2SOL's sizing
            yv = gn - g
            y_sharp = gn - j.T @ rn  # (J_new - J)^T r_new
            ys = float(yv @ step)
            if ys > 0.0:
                if sss != 0.0:
                    s_mat = s_mat * min(1.0, abs(float(step @ y_sharp)) / abs(sss))
                v = y_sharp - s_mat @ step
                s_mat = (
                    s_mat
                    + (np.outer(v, yv) + np.outer(yv, v)) / ys
                    - float(v @ step) * np.outer(yv, yv) / (ys * ys)
                )
            ratio = act / pred
            if ratio >= 0.75 or ns < 0.999 * delta:
                delta = 2.0 * ns  # MINPACK: a good or an interior step sets 2 |s|
            elif ratio <= 0.25:
                delta = _shrunk_radius(delta, ns, float(g @ step), act, cost, cn)
            rel = act / cost
            rel_pred = pred / cost
            y, j, r, cost, g = yn, jn, rn, cn, gn
            cur_coarse = new_coarse
            last_rel, last_ratio = rel, ratio
            if rel <= ftol and rel_pred <= ftol and ratio <= 2.0:  # MINPACK's ftol test
                if cur_coarse:
                    refine = True
                    continue
                return _LMResult(y, 1, "relative cost decrease below ftol")
        else:
            delta = _shrunk_radius(delta, ns, float(g @ step), act, cost, cn)
            aug = False


def _shrunk_radius(delta: float, ns: float, gs: float, act: float, cost: float, cn: float) -> float:
    """MINPACK's (lmder) trust radius after a step with ratio <= 1/4: a factor from the
    quadratic through the cost and its directional derivative, between 0.1 and 0.5, of
    ``min(delta, 10 |s|)``."""
    act_rel = act / cost if np.isfinite(cn) else -np.inf
    dirder = gs / (2.0 * cost)
    temp = 0.5 if act_rel >= 0.0 else 0.5 * dirder / (dirder + 0.5 * act_rel)
    if not np.isfinite(temp) or not cn < 100.0 * cost or temp < 0.1:
        temp = 0.1
    return temp * min(delta, ns / 0.1)


def _trust_step(
    model: FloatArray, g: FloatArray, delta: float
) -> tuple[FloatArray | None, FloatArray]:
    r"""Levenberg-Marquardt step of the quadratic model ``g.s + s.model.s / 2`` within
    ``|s| <= delta``: :math:`s(\lambda) = -(M + \lambda I)^{-1} g` with the smallest
    :math:`\lambda \ge 0` that keeps it inside (MINPACK's step with ``diag = 1``, here
    from the eigendecomposition of the small matrix :math:`M`). None when :math:`M` is
    not positive semi-definite to working precision (an augmented model that lost
    convexity) or the gradient vanishes."""
    if not (np.isfinite(model).all() and np.isfinite(g).all()):
        return None, model
    mu, q = np.linalg.eigh(0.5 * (model + model.T))
    # the few components as Python floats: the tests and the Newton iteration below on
    # them cost microseconds where NumPy calls on arrays of five cost ten times more
    mul = mu.tolist()
    top = mul[-1]
    if top <= 0.0 or mul[0] < -1e-10 * top:
        return None, model
    gq = q.T @ g
    gql = gq.tolist()
    if not any(v != 0.0 for v in gql):
        return None, model
    lam_lo = 1e-14 * top  # a singular direction gets a step of |g| / (1e-14 |M|) at most
    mul = [m if m > 0.0 else 0.0 for m in mul]  # np.maximum(mu, 0.0)
    mu = np.array(mul)
    g2 = [v * v for v in gql]

    def norm_and_d3(lam: float) -> tuple[float, float]:
        s2 = 0.0
        s3 = 0.0
        for gi, mi in zip(g2, mul, strict=True):
            r = 1.0 / (mi + lam)
            r2 = r * r
            s2 += gi * r2
            s3 += gi * r2 * r
        return math.sqrt(s2), s3

    lam = lam_lo
    n_s, d3 = norm_and_d3(lam)
    if n_s > delta:
        # |s(lam)| = delta by Newton on 1/|s| - 1/delta (Hebden; Moré 1978): increasing
        # and concave in lam, so the iterates rise monotonically to the root
        for _ in range(50):
            lam = lam + (1.0 / delta - 1.0 / n_s) * n_s**3 / d3
            n_s, d3 = norm_and_d3(lam)
            if n_s <= delta * (1.0 + 1e-3):
                break
    step = -(q @ (gq / (mu + lam)))
    return (step if np.all(np.isfinite(step)) else None), model


def low_discrepancy(n: int, d: int, offset: int = 0) -> FloatArray:
    """``n`` points (from index ``offset``) of Roberts' R_d sequence in :math:`[0, 1)^d`.

    :math:`x_i = \\{1/2 + i\\,\\alpha\\}` with :math:`\\alpha_j = \\phi_d^{-j}` and
    :math:`\\phi_d` the positive root of :math:`x^{d+1} = x + 1` (a Kronecker lattice
    with low discrepancy in every dimension). A closed formula: deterministic, no seed,
    no scipy.stats import.

    Examples
    --------
    >>> low_discrepancy(4, 2).shape
    (4, 2)
    """
    phi = 2.0
    for _ in range(60):  # fixed point of x = (1 + x)^(1/(d+1))
        phi = (1.0 + phi) ** (1.0 / (d + 1.0))
    alpha = phi ** -np.arange(1.0, d + 1.0)
    i = np.arange(offset + 1, offset + n + 1, dtype=np.float64)[:, None]
    return np.asarray(np.mod(0.5 + i * alpha[None, :], 1.0))


def global_stage(
    tracker: Tracker,
    lo: FloatArray,
    hi: FloatArray,
    to_y: Callable[[FloatArray], FloatArray],
    *,
    extra: list[FloatArray] | None = None,
    n_points: int = 64,
    n_local: int = 3,
    local_nfev: int = 25,
    offset: int = 0,
    method: str = "lm",
) -> tuple[FloatArray, int]:
    """Global stage: a low-discrepancy design over ``[lo, hi]``, best few refined.

    Every design point costs one pricing (residuals only, no Jacobian); the best
    ``n_local`` distinct points (plus ``extra`` candidates, e.g. a local fit) get a short
    local solve each. Deterministic: the design is :func:`low_discrepancy`.

    Returns
    -------
    y_best : ndarray
        The best unconstrained point found.
    n_scored : int
        Design points scored.
    """
    design = low_discrepancy(int(n_points), lo.size, int(offset))
    cands = [np.asarray(e, dtype=np.float64) for e in (extra or [])]
    cands += [to_y(lo + (hi - lo) * p) for p in design]
    eager, tracker.eager_jac = tracker.eager_jac, False
    scored: list[tuple[float, int]] = []
    try:
        for i, y in enumerate(cands):
            r = tracker.fun(y)
            scored.append((0.5 * float(r @ r), i))
    except _TimeUp:
        pass
    finally:
        tracker.eager_jac = eager
    if not scored:
        return cands[0], 0
    scored.sort()
    picked: list[FloatArray] = []
    for _, i in scored:
        y = cands[i]
        if all(np.max(np.abs(y - p)) > 0.5 for p in picked):
            picked.append(y)
        if len(picked) >= n_local:
            break
    best_y, best_cost = cands[scored[0][1]], scored[0][0]
    for y in picked:
        out = solve(tracker, y, method=method, max_nfev=local_nfev, ftol=1e-6, xtol=1e-6)
        if out.cost < best_cost:
            best_y, best_cost = out.y, out.cost
        if out.status == "time_limit":
            break
    return best_y, len(scored)
