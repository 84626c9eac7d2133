"""Calibration of the time-dependent models ``"heston_td"`` and ``"bates_td"``.

The knots are the chain's expiries: interval :math:`j` is :math:`(T_{j-1}, T_j]`, so the
smile of expiry :math:`j` depends only on intervals :math:`0..j`. Two modes:

* ``mode="bootstrap"`` (default, what :func:`volcal.calibrate` runs): expiry by expiry.
  Step 0 fits ``v0`` and interval 0's ``kappa, theta, xi, rho`` (BatesTD: and interval
  0's jumps ``lam, mu_j, sigma_j``) on the first expiry's quotes; step :math:`j` fits
  interval :math:`j`'s four (BatesTD: seven) parameters on expiry :math:`j`'s quotes with
  every earlier interval fixed. The jumps are per interval because the short crypto
  expiries each need their own (fitted to one expiry of a few days alone, a constant
  Bates comes close to SVI, a constant Heston does not; with one global jump law, fitted on
  the first expiry and then fixed, bates_td's median RMSE on the 12 real chains of
  benchmarks/td_accuracy.py was 1.75 vol points, 4.6 on the expiries under 7 days; with
  per-interval jumps 0.85 and 2.0 - BENCHMARKS.md). In a cold bootstrap interval
  :math:`j`'s jumps start from interval :math:`j-1`'s fit. Each step is a small
  Levenberg-Marquardt problem (4-8 parameters, one expiry) with the exact Jacobian of
  the characteristic-function recursion (:mod:`volcal.pricing._td_numba`: forward-mode
  derivatives, only the newest interval's directions in a bootstrap step, compiled COS
  plan and coefficients, the common engine's strike sums). Cold fits solve each step
  from three starts (``multistart``, below) and keep the lowest cost (benchmarks/td_accuracy.py, 12 real
  chains: median RMSE 1.98 -> 1.88 vol points for heston_td, 1.83 -> 1.75 for
  bates_td, against the forward-difference single-start bootstrap).
* ``mode="joint"``: every parameter at once, started from the bootstrap solution, with
  the exact Jacobian of every parameter (the bootstrap is greedy: the very short
  expiries set the first intervals, which the later expiries then cannot undo). On the
  real chains of benchmarks/td_accuracy.py it lowers the RMSE by a further 0-2.3 vol
  points per chain (BENCHMARKS.md, ``--mode joint``) at 2-3.5x the median cold time - so not
  the default (bates_td with per-interval jumps: median 0.85 -> 0.68 vol points, ~85
  parameters at once, about 3.6x the cold time).

* ``mode="refine"``: the joint solve started at ``start`` itself (no bootstrap): for a
  warm start it never ends above its start's objective; slower than a warm bootstrap
  (every evaluation prices the whole chain with the Jacobian of every parameter).

* ``mode="auto"`` (default): the warm path when ``start`` is a previous fit (a
  ``CalibrationResult``, e.g. the last snapshot's), else the bootstrap. The warm path is
  a few Levenberg-Marquardt steps on the joint problem (every parameter, the whole
  chain) from the start: each evaluation is one call of the compiled recursion with the
  Jacobian of every parameter (its row 0 is the prices; an expiry carries only the
  directions of the intervals up to it), a trial step is priced without the Jacobian
  (a rejected one costs a third), the COS plan is made once for the start at looser
  bounds (1e-7 series per unit forward, ``_WARM_PHI_TOL``) and checked at the solution,
  the Jacobians after the first on a plan 100x looser still (``_WARM_JAC_MARGIN``; the
  residuals, which decide each step, stay on the solve's plan), the damping starts at
  30 and shrinks by up to 10x per accepted step (``_WARM_MU0``, ``_WARM_MU_DEC``) on a
  diagonal floored at 1e-4 of its largest entry (``_WARM_DIAG_FLOOR``: parameters at a
  bound otherwise take huge first steps),
  the smoothing is the joint mode's and a weak prior term pulls toward the start
  (``strength`` 1e-3, ``_WARM_ANCHOR``; without it the steps wander into parameters the
  library cannot price on some real chains; bates_td's 1e-4, ``_WARM_ANCHOR_BATES``).
  After each full Jacobian, up to 4 accepted steps (``_WARM_BROYDEN``) take the next
  step from a Broyden (rank-one secant) update of the data rows' Jacobian, so they cost
  one pricing of the chain each instead of a Jacobian (a Jacobian ~7 ms, a pricing
  ~3-4 ms for bates_td on real chains); a step from an updated Jacobian that is rejected
  gets a full one at its point, and the standard errors are from an exact Jacobian at
  the result. It stops after ``warm_evals`` Jacobians (3) or a relative decrease below
  1e-4 per step. Accuracy rule: the warm result (priced
  at the library's bounds) is accepted when its RMSE is at most the reference + ``warm_tol``
  (0.3 vol points), the reference being the RMSE of the last full fit the start descends
  from (carried in ``extra["warm"]["reference_rmse"]`` from refit to refit, so a drift
  of the warm fits is caught); else, when it cannot be priced or is more than
  ``warm_tol`` beyond that limit and the start has intervals in a corner of the
  box (at least two of ``kappa, theta, xi`` within 1e-3 of a bound, ``_WARM_RESET``: their
  logistic coordinates saturated, so the steps cannot move them, and such a start can
  need more COS terms than the library allows), a round from the start with those
  intervals reset to the data-driven start (``extra["warm"]["reset"]``; on the
  benchmark sequence this replaced bates_td's one cold fallback, 3.2 s, by a second
  round; a near miss is continued first and reset only when the continued round misses
  too); when the best round so far ended on its budget (still decreasing) at a point
  the library can price, one more round of ``warm_evals`` Jacobians from there
  (``extra["warm"]["rounds"]``; ~0.1 s where the cold fit takes 2-5 s), and if that is
  still outside, the full path runs - a cold fit of the chain,
  multistart bootstrap and rescue - and the better of the two (weighted squared vol
  error) is kept. ``extra["warm"]`` reports the evaluations, the rounds, the warm RMSE,
  the limit, ``fallback`` and which result was kept.

A warm bootstrap (``mode="bootstrap"`` with ``start`` or ``prior``) that ends worse on
the chain than its start (weighted squared vol error) keeps the start
(``extra["kept_start"]``, a warning); the warm path never ends above its start's
objective (accepted steps only) and keeps the start when its data part grew.

COS plan: fixed during each solve (planned at its start by the rules of
:mod:`volcal.pricing.cos` for the start parameters), checked at the solution and the
solve repeated from there on the new plan when the old one does not meet the error
bounds (1e-10 series, 1e-11 tail mass per unit forward, as the constant models'
calibration) at the solution. The reported fit is priced with the library's bounds.

Both minimise, with spread weights :math:`w_i` (mean 1 over the chain),

.. math::

    \\sum_i w_i (\\sigma^{model}_i - \\sigma^{mid}_i)^2
    + \\sum_{j \\ge 1} \\textrm{smooth}\\; W_j\\,(0.01)^2 \\sum_p
      \\Big(\\frac{x_{p,j} - x_{p,j-1}}{s_p}\\Big)^2
    + \\textrm{strength}\\; W\\,(0.01)^2 \\sum_p \\Big(\\frac{x_p - x^{prior}_p}{s_p}\\Big)^2,

with :math:`W_j` the weight of expiry :math:`j`'s quotes, :math:`s_p = \\max(|x|, 1\\%` of
the box) - for the jump mean and std ``mu_j, sigma_j`` the jump size
:math:`\\max(\\sqrt{\\mu_j^2 + \\sigma_j^2}, 1\\%` of the box), both of the neighbour, as
they change sign or approach 0 - and :math:`p` over ``kappa, theta, xi, rho`` (BatesTD:
and ``lam, mu_j, sigma_j``, weighted :math:`\\max(1, T_j / 7\\,\\textrm{days})` times more, so
that the jumps of the long intervals, which their expiries barely identify, stay at the
neighbour's): a 100 % jump of one parameter
between neighbouring intervals costs ``smooth`` vol points squared on each of that
expiry's quotes, which keeps the term structure of parameters smooth where the data do
not ask for a jump (and pins the parameters one expiry cannot identify, e.g. ``kappa``
against ``theta``, to the neighbour's). In the bootstrap, interval 0's neighbour is the
start. The prior term (``prior=``, ``strength=``) is the warm-start regularisation of
the constant models.

Warm starts: ``start`` / ``prior`` may be a ``HestonTD``/``BatesTD`` fit on other knots
(the next snapshot: resampled onto the new expiries, :meth:`HestonTD.resample`), a
constant ``Heston``/``Bates`` (copied onto every interval) or a ``CalibrationResult``.
Warm solves stop at a relative cost decrease of 1e-6 per step, cold ones at 1e-9.

Stability reporting is that of the constant models: standard errors from each step's
Jacobian at its solution (conditional on the earlier intervals in the bootstrap),
``jac_cond`` the largest condition number of the steps, bound hits and Feller in
``warnings``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from volcal._typing import FloatArray, IntArray
from volcal.calibration.quotes import QuoteSet, black_vega_fwd
from volcal.calibration.result import CalibrationResult, _num, fit_quality, slice_fits
from volcal.errors import CalibrationWarning, DataError, MethodError, ParameterError
from volcal.models.heston import Bates, Heston
from volcal.models.heston_td import BatesTD, HestonTD
from volcal.pricing.cos import COSPricer

__all__ = ["TD_CLASSES", "TD_MODELS", "calibrate_td"]


def _td_kernels() -> Any:
    """The compiled kernels (numba imported on first use, not at package import)."""
    from volcal.pricing import _td_numba

    return _td_numba


TD_MODELS = ("heston_td", "bates_td")
TD_CLASSES: dict[str, type[HestonTD]] = {"heston_td": HestonTD, "bates_td": BatesTD}
DEFAULT_SMOOTH = 0.01  # bates_td on 4 real chains: 0 -> 2.21, 0.01 -> 1.42, 0.05 -> 1.63, 0.2 -> 2.06 vol pts median RMSE
_WARM_FTOL = 1e-6
_WARM_PATH_FTOL = 1e-4  # warm path: relative decrease per LM step that ends it
_WARM_TARGET = 0.0  # warm path: stop once the RMSE is this fraction of the reference
#: warm path: COS series bound of its solve (tail mass a tenth), per unit forward; the
#: reported fit is priced at the library's bounds (real chain, 12 evaluations: the same
#: RMSE to 3 decimals as at the objective's 1e-10, about 2/3 of the terms)
_WARM_PHI_TOL = 1e-7
#: warm path: initial LM damping, relative to the Jacobian's diagonal, and the smallest
#: factor it shrinks by on an accepted step (Nielsen's update with a floor). The
#: undamped first step overshoots on most real refits (the damping used to start at 1,
#: climb to ~1000 over 4 rejected steps and shrink by at most 3x per step, so the first
#: ~5 Jacobians barely moved the fit); 20 real warm refits, median RMSE after 12
#: Jacobians: heston_td 2.01 -> 1.55, bates_td 1.24 -> 1.02 (BENCHMARKS.md)
_WARM_MU0 = 30.0
_WARM_MU_DEC = 0.1
#: warm path: the Jacobians are computed on a plan with error bounds this much looser
#: than the residuals' (an inexact Jacobian only slows the steps, the residuals decide
#: acceptance): about 1/4 fewer terms, the same fits to 0.01 vol points on the 20 refits
_WARM_JAC_MARGIN = 100.0
#: warm path: floor of the damping's diagonal, relative to its largest entry. A
#: parameter held at its bound (the logistic coordinate saturated: its column of the
#: Jacobian ~1e-13 of the largest) otherwise gets a Gauss-Newton step of hundreds in
#: its coordinate whatever the damping - xi of three intervals thrown from the lower to
#: the upper bound on the first step of most real refits, the cost up 400x, three steps
#: rejected. 20 real refits, 8 Jacobians: floor 1e-12 -> 1e-4, median RMSE heston_td
#: 1.84 -> 1.50, bates_td 1.11 -> 1.00, trial pricings 299 -> 201 (BENCHMARKS.md)
_WARM_DIAG_FLOOR = 1e-4
#: warm path: accepted steps after each full Jacobian that take the next step from a
#: Broyden (rank-one secant) update of the data rows' Jacobian instead of a new one (a
#: residual evaluation is its prices only; 0: every accepted step gets a full Jacobian).
#: 10 real bates_td refits, median RMSE / CPU ms: 6 Jacobians and no updates 1.12 / ~100,
#: 3 Jacobians and 2 / 4 updates each 1.09 / 1.08 at 80-95 ms (BENCHMARKS.md)
_WARM_BROYDEN = 4
_WARM_ANCHOR = 1e-3  # warm path: strength of the pull toward the start (prior term's units)
#: ... bates_td's: with the secant steps, 10 real refits, median RMSE 1.08 -> 1.02 at the
#: same median relative parameter change per refit (0.058 -> 0.047; heston_td's at 1e-4:
#: 0.050 -> 0.055, so it keeps 1e-3; BENCHMARKS.md)
_WARM_ANCHOR_BATES = 1e-4
#: warm path: a parameter this close to a bound (relative to the box) is in a corner, and an
#: interval with at least _WARM_RESET_MIN of its kappa, theta, xi there is reset to the
#: data-driven start for a round of its own when the round from the start is not accepted
_WARM_RESET = 1e-3
_WARM_RESET_MIN = 2
_POOR_RMSE = 3.0  # vol points: a cold bootstrap worse than this is tried again
_COLD_FTOL = 1e-9
_PLAN_MARGIN = 0.01  # a solve's COS plan is made with error bounds 100x tighter
DEFAULT_KAPPA = 5.0  # start mean reversion of every interval
_JUMP = ("lam", "mu_j", "sigma_j")
#: weight of the jump pieces' smoothing relative to the Heston pieces'
_JUMP_SMOOTH = 1.0
#: beyond this expiry (years) the jump pieces' smoothing grows in proportion to the expiry:
#: the jumps' share of a smile's excess kurtosis falls like 1/T, so a long expiry barely
#: identifies its interval's jumps (6 real chains, median / worst RMSE: no growth 0.81 /
#: 1.01, growth from 7 days 0.83 / 1.03 with 25 instead of 34 jump bounds hit; from 30
#: days 0.81 / 1.13; jump weight 10 without growth 0.86 / 1.08, 100: 1.16 / 1.45)
_JUMP_T_REF = 7.0 / 365.0
_STATUS_RANK = {"ok": 0, "max_iter": 1, "degraded": 2, "time_limit": 3, "failed": 4}


def _guess(cls: type[HestonTD], q: QuoteSet, atm: FloatArray) -> HestonTD:
    """Data-driven start: ``v0`` from the first ATM vol, ``theta_j`` the ATM forward
    variance of interval ``j``, neutral shape parameters."""
    t = q.t_slices
    w = np.maximum.accumulate(atm**2 * t)
    fwd_var = np.diff(np.concatenate([[0.0], w])) / np.diff(np.concatenate([[0.0], t]))
    fwd_var = np.clip(np.where(np.isfinite(fwd_var), fwd_var, atm[0] ** 2), 0.01, 3.0)
    kw: dict[str, Any] = {
        "knots": tuple(t.tolist()),
        "v0": float(np.clip(atm[0] ** 2, 1e-3, 3.0)),
        "kappa": DEFAULT_KAPPA,
        "theta": tuple(fwd_var.tolist()),
        "xi": 2.0,
        "rho": -0.1,
    }
    if cls is BatesTD:
        kw.update(lam=1.0, mu_j=-0.02, sigma_j=0.1)
    return cls(**kw)


def _as_td(cls: type[HestonTD], value: Any, knots: FloatArray) -> HestonTD | None:
    """A start/prior as a ``cls`` instance on ``knots`` (None passes through)."""
    if value is None:
        return None
    if isinstance(value, CalibrationResult):
        value = value.params
    n = knots.size
    if isinstance(value, HestonTD):
        if cls is BatesTD and not isinstance(value, BatesTD):
            return BatesTD.from_vector(
                np.concatenate(
                    [value.resample(knots).to_vector(), np.zeros(2 * n), np.full(n, 1e-3)]
                ),
                knots,
            )
        m = value.resample(knots)
        if cls is HestonTD and isinstance(m, BatesTD):
            return HestonTD.from_vector(m.to_vector()[: 1 + 4 * n], knots)
        return m
    if isinstance(value, Heston | Bates):
        if cls is BatesTD and not isinstance(value, Bates):
            value = Bates(value.v0, value.kappa, value.theta, value.xi, value.rho, 0.0, 0.0, 1e-3)
        return cls.constant(value, knots)
    if isinstance(value, Mapping):
        kw = {k: v for k, v in value.items() if k != "model"}
        kw.setdefault("knots", tuple(knots.tolist()))
        m = cls(**kw)
        return m.resample(knots)
    raise ParameterError(
        f"start/prior must be a {cls.__name__}, Heston/Bates, dict or CalibrationResult, "
        f"got {type(value).__name__}"
    )


class _Problem:
    """One least-squares problem: free coordinates, quotes, penalties (see module docs).

    Prices and their exact Jacobian with respect to the free coordinates come from the
    compiled recursion of :mod:`volcal.pricing._td_numba` (one call per evaluation:
    the COS plan of the expiries in the problem for the trial parameters, the
    coefficients and the common engine's strike sums); residuals are in vol, and the
    Jacobian in vol is the price Jacobian over the model's Black vega.
    """

    def __init__(
        self,
        base: HestonTD,
        free: IntArray,
        mask: Any,
        q: QuoteSet,
        sw: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
        pen_rows: list[tuple[int, int | None, float, float, float]],
        pricer: COSPricer,
    ) -> None:
        self.base = base
        self.x0 = base.to_vector()
        self.n_int = base.n_intervals
        self.free = np.asarray(free, dtype=np.int64)
        self.lo, self.hi = lo[self.free], hi[self.free]
        self.idx = np.flatnonzero(mask)
        self.k = np.ascontiguousarray(q.k[self.idx])
        self.t = q.t[self.idx]
        self.call = self.k >= 0.0
        self.iv_mid = q.iv_mid[self.idx]
        self.mid = q.mid[self.idx]
        self.vega = np.maximum(q.vega[self.idx], 1e-12)
        self.sw = sw[self.idx]
        sl = q.slice_index[self.idx]
        used, t_index = np.unique(sl, return_inverse=True)
        self.t_u = np.ascontiguousarray(q.t_slices[used], dtype=np.float64)
        self.t_index = np.ascontiguousarray(t_index, dtype=np.int64)
        self.pen = pen_rows  # (param index, reference index or None, ref value, weight, scale)
        self.pricer = pricer
        self.nfev = 0
        self.njev = 0
        self._kn = _td_kernels()
        self.knots = np.ascontiguousarray(base.knots, dtype=np.float64)
        self.plan: tuple[FloatArray, FloatArray, IntArray] | None = None
        self.accepted: list[FloatArray] = []  # the warm path's accepted points, in order
        self.jplan: Any = None  # the warm path's plan of its Jacobians (None: the solve's)
        self._iv_args: tuple[FloatArray, ...] | None = None

    # y <-> x (logistic box transform of the free coordinates)
    def to_x(self, y: FloatArray) -> FloatArray:
        z = self.lo + (self.hi - self.lo) / (1.0 + np.exp(-np.clip(y, -30.0, 30.0)))
        x = self.x0.copy()
        x[self.free] = z
        return x

    def to_y(self, x: FloatArray) -> FloatArray:
        span = self.hi - self.lo
        p = np.clip((x[self.free] - self.lo) / span, 1e-9, 1.0 - 1e-9)
        return np.asarray(np.log(p) - np.log1p(-p))

    def dz_dy(self, y: FloatArray) -> FloatArray:
        z = self.to_x(y)[self.free]
        return np.asarray((z - self.lo) * (self.hi - z) / (self.hi - self.lo))

    def _args(self, x: FloatArray) -> tuple[Any, ...]:
        n = self.n_int
        jumps = x[1 + 4 * n : 1 + 7 * n] if x.size > 1 + 4 * n else np.zeros(3 * n)
        return (
            self.knots,
            np.ascontiguousarray(x[1 : 1 + n]),
            np.ascontiguousarray(x[1 + n : 1 + 2 * n]),
            np.ascontiguousarray(x[1 + 2 * n : 1 + 3 * n]),
            np.ascontiguousarray(x[1 + 3 * n : 1 + 4 * n]),
            float(x[0]),
            np.ascontiguousarray(jumps),
        )

    def make_plan(
        self, x: FloatArray, margin: float = 1.0
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        """COS range and terms per expiry for the parameters ``x`` (rules of
        :mod:`volcal.pricing.cos`, error bounds times ``margin``); MethodError if an
        expiry needs more than n_max."""
        pr = self.pricer
        a, b, nn, _bound = self._kn.td_plan(
            self.t_u,
            self.k,
            self.t_index,
            *self._args(x),
            float(pr.l),
            float(pr.min_half_width),
            float(pr.tail_tol) * margin,
            float(pr.phi_tol) * margin,
            int(pr.n),
            int(pr.n_max),
        )
        if np.any(nn < 0) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise MethodError("COS: no finite plan for the parameters")
        return np.asarray(a), np.asarray(b), np.asarray(nn)

    def replan(self, x: FloatArray) -> bool:
        """Keep the plan if it also meets the error bounds at ``x`` (range covers the
        one ``x`` needs, highest frequency at least as high), else plan for ``x`` with
        bounds 100 times tighter (a margin, so the parameters can move during the
        solve without leaving the plan's domain); True when the plan changed (the
        solve is then repeated from ``x``)."""
        if self.plan is not None:
            a, b, nn = self.make_plan(x)
            a0, b0, n0 = self.plan
            if (
                np.all(a0 <= a)
                and np.all(b0 >= b)
                and np.all((n0 - 1) / (b0 - a0) >= (nn - 1) / (b - a))
            ):
                return False
        self.plan = self.make_plan(x, _PLAN_MARGIN)
        return True

    def units(self, x: FloatArray, grad: bool, plan: Any = None) -> FloatArray:
        """OTM prices per unit forward (row 0) and, with ``grad``, their derivatives
        with respect to the free coordinates (rows 1..), on the problem's current
        COS plan; MethodError where the prices are not finite."""
        if plan is None and self.plan is None:
            self.replan(x)
        use = plan if plan is not None else self.plan
        assert use is not None  # replan() above set it
        a, b, nn = use
        dirs = self.free if grad else np.zeros(0, dtype=np.int64)
        out = np.asarray(
            self._kn.td_units(self.t_u, self.k, self.t_index, a, b, nn, *self._args(x), dirs)
        )
        if not np.all(np.isfinite(out)):
            raise MethodError("COS: non-finite prices for the trial parameters")
        return out

    def _iv(self, p: FloatArray) -> tuple[FloatArray, Any]:
        """Black vols of the unit prices ``p`` (the compiled loop of
        :func:`volcal.black.implied_vol` on arrays prepared once per problem)."""
        from volcal.black import _kernels

        if self._iv_args is None:
            ones = np.ones(self.k.size)
            self._iv_args = (
                ones,
                np.ascontiguousarray(np.exp(self.k)),
                np.ascontiguousarray(self.t, dtype=np.float64),
                np.ascontiguousarray(self.call),
                ones,
            )
        f, strike, t, flags, d = self._iv_args
        iv = np.empty(self.k.size)
        status = np.empty(self.k.size, dtype=np.int8)
        with np.errstate(all="ignore"):
            _kernels.implied_vol_loop(
                np.ascontiguousarray(p, dtype=np.float64),
                f,
                strike,
                t,
                flags,
                d,
                _kernels.MAX_ITERATIONS,
                iv,
                status,
            )
        ok = np.isfinite(iv) & (
            black_vega_fwd(self.k, self.t, np.where(np.isfinite(iv), iv, 0.2)) > 1e-14
        )
        return np.asarray(iv), ok

    def _data(self, p: FloatArray) -> FloatArray:
        iv, ok = self._iv(p)
        return np.asarray(
            np.where(ok, self.sw * (iv - self.iv_mid), self.sw * (p - self.mid) / self.vega)
        )

    def _pen(self, x: FloatArray) -> FloatArray:
        out = np.empty(len(self.pen))
        for r, (i, ref, val, wt, s) in enumerate(self.pen):
            target = x[ref] if ref is not None else val
            out[r] = wt * (x[i] - target) / s
        return out

    def _pen_jac(self) -> FloatArray:
        """d penalty / d free coordinates (constant: the penalties are linear in x)."""
        pos = {int(c): j for j, c in enumerate(self.free)}
        out = np.zeros((len(self.pen), self.free.size))
        for r, (i, ref, _val, wt, s) in enumerate(self.pen):
            if i in pos:
                out[r, pos[i]] += wt / s
            if ref is not None and ref in pos:
                out[r, pos[ref]] -= wt / s
        return out

    def residuals(self, y: FloatArray) -> FloatArray:
        x = self.to_x(y)
        self.nfev += 1
        try:
            r = np.concatenate([self._data(self.units(x, False)[0]), self._pen(x)])
        except (MethodError, ParameterError):
            # a trial point the engine cannot price (e.g. a tail too heavy for COS):
            # a large residual sends the solver back instead of ending the step
            return np.full(self.idx.size + len(self.pen), 10.0)
        return np.asarray(np.where(np.isfinite(r), r, 10.0))

    def jacobian(self, y: FloatArray) -> FloatArray:
        return self.resjac(y)[1]

    def resjac(self, y: FloatArray, plan: Any = None) -> tuple[FloatArray | None, FloatArray]:
        """Residuals (None where the point cannot be priced) and their Jacobian at
        ``y``, from one call of the compiled recursion (the prices are row 0 of the
        derivative call)."""
        x = self.to_x(y)
        self.njev += 1
        nd = self.idx.size
        jac = np.zeros((nd + len(self.pen), y.size))
        try:
            out = self.units(x, True, plan)
        except (MethodError, ParameterError):  # the point itself cannot be priced
            return None, jac
        p, dp = out[0], out[1:].T
        iv, ok = self._iv(p)
        data = np.where(ok, self.sw * (iv - self.iv_mid), self.sw * (p - self.mid) / self.vega)
        r = np.concatenate([data, self._pen(x)])
        vega = np.where(ok, black_vega_fwd(self.k, self.t, np.where(ok, iv, 0.2)), self.vega)
        jac[:nd] = (self.sw / vega)[:, None] * dp
        jac[nd:] = self._pen_jac()
        jac = jac * self.dz_dy(y)[None, :]
        r_out = np.asarray(np.where(np.isfinite(r), r, 10.0))
        return r_out, np.asarray(np.where(np.isfinite(jac), jac, 0.0))


def _warm_solve(
    prob: _Problem, max_jev: int, ftol: float, target: float = 0.0, n_broyden: int | None = None
) -> tuple[FloatArray, str, str, FloatArray | None, FloatArray | None, float, float]:
    """A few Levenberg-Marquardt steps on ``prob`` from its start, on one COS plan
    (made for the start at the objective's error bounds, checked at the end).

    Every evaluation is one call of the compiled recursion with the Jacobian of every
    free coordinate (its row 0 is the prices): a step is accepted when it lowers the
    objective (so the solve never ends above its start), the damping (Marquardt's
    diagonal scaling, Nielsen's update with a floor of ``_WARM_MU_DEC`` on its decrease)
    grows on a rejected step; the Jacobians after the first are computed on a plan with
    bounds ``_WARM_JAC_MARGIN`` times looser (the residuals keep the solve's). After a
    full Jacobian, up to ``n_broyden`` (default ``_WARM_BROYDEN``) accepted steps update
    the data rows by Broyden's rank-one secant formula instead (the penalty rows are
    exact), a rejected step from an updated Jacobian gets a full one at its point, and
    an updated Jacobian is not returned (None). Stops after
    ``max_jev`` evaluations, a relative decrease below ``ftol`` or once the quotes'
    RMSE (vol points, unweighted, on the solve's plan) is at most ``target``. Returns ``x``,
    status, message, the residuals and Jacobian at ``x``, and the data part of the
    objective at the start and at ``x``."""
    x0 = prob.x0
    nd = prob.idx.size
    try:
        prob.plan = prob.make_plan(x0)
    except MethodError as exc:
        return x0, "failed", str(exc), None, None, np.inf, np.inf
    y = prob.to_y(x0)
    jac: FloatArray | None
    jplan = None  # the Jacobians' looser plan (None: the residuals')
    try:
        jplan = prob.make_plan(x0, _WARM_JAC_MARGIN)
    except MethodError:
        pass
    prob.jplan = jplan
    r, jac = prob.resjac(y)
    if r is None:
        return x0, "failed", "the start cannot be priced", None, None, np.inf, np.inf
    data0 = float(r[:nd] @ r[:nd])
    status, message = "max_iter", f"{max_jev} evaluations"
    sw_safe = np.maximum(prob.sw, 1e-12)
    n_broyden = _WARM_BROYDEN if n_broyden is None else int(n_broyden)
    n_b = 0
    for _round in range(3):
        cost = float(r @ r)
        mu, nu = _WARM_MU0, 2.0
        status, message = "max_iter", f"{max_jev} evaluations"
        n_b = 0  # Broyden updates since the last full Jacobian
        while jac is not None and (prob.njev < max_jev or n_broyden > 0):
            g = jac.T @ r
            a = jac.T @ jac
            dg = np.maximum(np.diag(a), _WARM_DIAG_FLOOR * max(float(np.max(np.diag(a))), 1e-300))
            try:
                step = np.linalg.solve(a + mu * np.diag(dg), -g)
            except np.linalg.LinAlgError:
                status, message = "failed", "singular normal equations"
                break
            pred = -float(step @ g) - 0.5 * float(step @ (a @ step))
            y_new = y + step
            r_new = prob.residuals(y_new)  # prices only: a rejected step costs little
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                rho = min((cost - cost_new) / max(2.0 * pred, 1e-300), 1.0)
                mu *= max(_WARM_MU_DEC, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                rel = (cost - cost_new) / max(cost, 1e-300)
                r_old, jac_old = r, jac
                y, cost, r, jac = y_new, cost_new, r_new, None
                prob.accepted.append(prob.to_x(y))
                rmse = 100.0 * float(np.sqrt(np.mean(np.square(r[:nd] / sw_safe))))
                if rmse <= target:
                    status, message = "ok", f"RMSE {rmse:.3g} at most the target {target:.3g}"
                    break
                if rel < ftol:
                    status, message = "ok", f"relative decrease {rel:.2g} below ftol"
                    break
                if n_b < n_broyden and jac_old is not None:
                    # secant update of the data rows (the penalties' rows are exact)
                    d = r[:nd] - r_old[:nd] - jac_old[:nd] @ step
                    jac = jac_old.copy()
                    jac[:nd] += np.outer(d, step / float(step @ step))
                    jac[nd:] = prob._pen_jac() * prob.dz_dy(y)[None, :]
                    n_b += 1
                    continue
                if prob.njev >= max_jev:
                    break
                r_j, jac = prob.resjac(y, jplan)
                n_b = 0
                if jplan is None:
                    assert r_j is not None
                    r = r_j
            elif n_b > 0:
                # a step from an updated Jacobian that fails: a full one at the point
                if prob.njev >= max_jev:
                    break
                r_j, jac = prob.resjac(y, jplan)
                n_b = 0
                if jplan is None:
                    assert r_j is not None
                    r = r_j
            else:
                mu *= nu
                nu *= 2.0
                if mu > 1e12:
                    status, message = "ok", "no decrease along the damped step"
                    break
                if prob.nfev >= 3 * max_jev * (1 + n_broyden):
                    break
        x = prob.to_x(y)
        # the plan was made for the round's start: check it at the solution, and on a
        # miss solve again from there on the new plan (budget permitting)
        try:
            a_, b_, n_ = prob.make_plan(x)
        except MethodError as exc:
            return x, "failed", str(exc), None, None, data0, np.inf
        a0, b0, n0 = prob.plan
        if (
            np.all(a0 <= a_)
            and np.all(b0 >= b_)
            and np.all((n0 - 1) / (b0 - a0) >= (n_ - 1) / (b_ - a_))
        ):
            break
        prob.plan = (a_, b_, n_)
        r_j, jac = prob.resjac(y)
        n_b = 0
        if r_j is None:
            return x, "failed", "the solution cannot be priced", None, None, data0, np.inf
        r = r_j
        if prob.njev >= max_jev:
            message += "; plan renewed at the solution"
            break
    if n_b > 0:
        jac = None  # a secant update: no Jacobian for the standard errors
    return x, status, message, r, jac, data0, float(r[:nd] @ r[:nd])


def _solve(
    prob: _Problem, method: str, ftol: float, max_nfev: int
) -> tuple[FloatArray, str, str, Any]:
    """Least squares on one problem with a COS plan fixed during each solve: planned
    at the start, checked at the solution (:meth:`_Problem.replan`), solved again
    from the solution on the new plan when the old one does not meet the error
    bounds there (at most 3 rounds). Returns ``x``, status, message and the
    solver's result (its residuals and Jacobian at the solution), or None."""
    from scipy.optimize import least_squares

    x = prob.x0
    n_res = prob.idx.size + len(prob.pen)
    free = prob.free.size
    meth = method if (method != "lm" or n_res >= free) else "trf"
    res = None
    try:
        prob.replan(x)
    except MethodError as exc:
        return x, "failed", str(exc), None
    budget = int(max_nfev)
    for _ in range(3):
        try:
            res = least_squares(
                prob.residuals,
                prob.to_y(x),
                jac=prob.jacobian,
                method=meth,
                ftol=ftol,
                xtol=1e-10,
                gtol=1e-10,
                max_nfev=max(budget, 1),
            )
        except (ValueError, np.linalg.LinAlgError, MethodError) as exc:
            return x, "failed", str(exc), None
        x = prob.to_x(res.x)
        budget -= int(res.nfev)
        try:
            if not prob.replan(x) or budget <= 0:
                break
        except MethodError as exc:
            return x, "failed", str(exc), None
    assert res is not None
    status = "ok" if res.status > 0 else ("max_iter" if res.status == 0 else "failed")
    return x, status, str(res.message), res


def _model_iv(params: HestonTD, q: QuoteSet) -> tuple[FloatArray, FloatArray]:
    """Model implied vols of every quote and at the money of every expiry, priced by
    the compiled recursion with the library's default COS error bounds (1e-14 series,
    1e-15 tail mass: the plan and sums :func:`volcal.price` uses for these models, to
    ~1e-13 of the forward; tests/test_td_models.py)."""
    from volcal.black import implied_vol

    kn = _td_kernels()
    pr = COSPricer()
    n_s = q.n_slices
    k = np.ascontiguousarray(np.concatenate([q.k, np.zeros(n_s)]))
    ti = np.ascontiguousarray(np.concatenate([q.slice_index, np.arange(n_s)]), dtype=np.int64)
    t_u = np.ascontiguousarray(q.t_slices, dtype=np.float64)
    x = params.to_vector()
    n = params.n_intervals
    args = (
        np.asarray(params.knots, dtype=np.float64),
        np.ascontiguousarray(x[1 : 1 + n]),
        np.ascontiguousarray(x[1 + n : 1 + 2 * n]),
        np.ascontiguousarray(x[1 + 2 * n : 1 + 3 * n]),
        np.ascontiguousarray(x[1 + 3 * n : 1 + 4 * n]),
        float(x[0]),
        np.ascontiguousarray(x[1 + 4 * n : 1 + 7 * n]) if x.size > 1 + 4 * n else np.zeros(3 * n),
    )
    a, b, nn, _bound = kn.td_plan(
        t_u, k, ti, *args, pr.l, pr.min_half_width, pr.tail_tol, pr.phi_tol, pr.n, pr.n_max
    )
    if np.any(nn < 0) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise MethodError(f"COS: {params.summary()} needs more than n_max terms")
    units = np.asarray(kn.td_units(t_u, k, ti, a, b, nn, *args, np.zeros(0, dtype=np.int64)))[0]
    if not np.all(np.isfinite(units)):
        raise MethodError(f"COS: {params.summary()} gives non-finite prices")
    with np.errstate(all="ignore"):
        iv = implied_vol(units, 1.0, np.exp(k), t_u[ti], k >= 0.0, full_output=True).vol
    iv = np.asarray(iv, dtype=np.float64)
    return iv[: len(q)], iv[len(q) :]


def _corner_reset(
    cls: type[HestonTD],
    q: QuoteSet,
    atm: FloatArray,
    x0: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    pieces: tuple[str, ...],
    idx: Callable[[str, int], int],
    n_int: int,
) -> tuple[FloatArray, list[int]]:
    """The start ``x0`` with its intervals in a corner of the box reset to the data-driven
    start (:func:`_guess`: ``theta`` the interval's ATM forward variance, neutral shape
    and jumps; interval 0 also ``v0``), and the list of those intervals.

    An interval is in a corner when at least ``_WARM_RESET_MIN`` of its ``kappa, theta,
    xi`` lie within ``_WARM_RESET`` (relative to the box) of a bound: the logistic
    coordinates of the solve are then saturated (their Jacobian columns ~1e-6 of the
    others), so no number of steps moves them back, and such a start - the variance of
    the interval collapsed onto ``theta``'s lower bound at ``kappa`` and ``xi`` near
    their upper ones - can need more COS terms than the library allows."""
    x = x0.copy()
    g = _guess(cls, q, atm).to_vector()
    eps = 1e-6 * (hi - lo)
    g = np.clip(g, lo + eps, hi - eps)
    rel = (x0 - lo) / (hi - lo)
    sat = (rel < _WARM_RESET) | (rel > 1.0 - _WARM_RESET)
    reset: list[int] = []
    for j in range(n_int):
        ii = [idx(p, j) for p in ("kappa", "theta", "xi") if p in pieces]
        if int(np.sum(sat[ii])) >= _WARM_RESET_MIN:
            reset.append(j)
            for p in pieces:
                x[idx(p, j)] = g[idx(p, j)]
    if 0 in reset:
        x[0] = g[0]
    return x, reset


def _reference_rmse(start: Any) -> float:
    """RMSE (vol points) a warm refit from ``start`` is held to: the reference its own
    warm path carried (the last full fit of the sequence), else its RMSE; NaN when the
    start is not a fit."""
    if not isinstance(start, CalibrationResult):
        return float("nan")
    info = start.extra.get("warm") if isinstance(start.extra, Mapping) else None
    ref = info.get("reference_rmse") if isinstance(info, Mapping) else None
    if ref is None or not np.isfinite(ref):
        ref = start.rmse_vol
    return float(ref) if ref is not None and np.isfinite(ref) else float("nan")


def _wsse(w: FloatArray, miv: FloatArray, mid: FloatArray) -> float:
    """Weighted squared vol error of a fit; a quote without a model vol counts as a
    1-vol (100 vol points) miss, so a start that cannot price a quote never wins."""
    err = np.where(np.isfinite(miv), miv - mid, 1.0)
    return float(np.sum(w * err * err))


class _Fitted:
    """Residuals and Jacobian at a solution (the fields of scipy's result _stderr reads)."""

    def __init__(self, fun: FloatArray, jac: FloatArray) -> None:
        self.fun = fun
        self.jac = jac


def _stderr(prob: _Problem, x: FloatArray, res: Any) -> tuple[FloatArray | None, float | None]:
    """Standard errors of the free parameters and the condition number at ``x``, from
    the solver's residuals and Jacobian at its solution."""
    y = prob.to_y(x)
    r = np.asarray(res.fun)
    j = np.asarray(res.jac)
    nd = prob.idx.size
    with np.errstate(divide="ignore", invalid="ignore"):  # a coordinate at its bound
        j_z = j[:nd] / prob.dz_dy(y)[None, :]
    if not np.all(np.isfinite(j_z)):
        return None, None
    col = np.linalg.norm(j_z, axis=0)
    col = np.where(col > 0, col, 1.0)
    sv = np.linalg.svd(j_z / col, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    dof = max(nd - prob.free.size, 1)
    s2 = float(r[:nd] @ r[:nd]) / dof
    cov = s2 * np.linalg.pinv(j_z.T @ j_z, rcond=1e-14)
    return np.sqrt(np.clip(np.diag(cov), 0.0, None)), cond


def calibrate_td(
    chain: Any,
    model: str = "heston_td",
    *,
    start: Any = None,
    prior: Any = None,
    strength: float = 0.0,
    weights: Any = "spread",
    mode: str = "auto",
    smooth: float = DEFAULT_SMOOTH,
    free_kappa: bool = True,
    inner_tol: float = 0.0,
    method: str = "lm",
    bounds: Mapping[str, Any] | None = None,
    max_nfev: int = 300,
    max_time: float = 20.0,
    stderr: bool | str = "auto",
    ftol: float | None = None,
    rescue: bool = True,
    multistart: bool | None = None,
    options: Mapping[str, Any] | None = None,
    fit: bool = True,
    constant_fit: Callable[..., CalibrationResult] | None = None,
    warm_tol: float = 0.3,
    warm_evals: int = 3,
) -> CalibrationResult:
    """Calibrate ``"heston_td"`` / ``"bates_td"`` to a chain (see the module docs).

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        Cleaned chain or prepared quotes; the expiries become the knots.
    model : {"heston_td", "bates_td"}
    start, prior : HestonTD/BatesTD, Heston/Bates, dict or CalibrationResult, optional
        Warm start and the fit to regularise toward (``strength``).
    strength : float
        Weight of the prior term (0: none).
    weights : str or ndarray
        Residual weights (:meth:`QuoteSet.weights`).
    mode : {"auto", "bootstrap", "joint", "refine"}
        ``"auto"``: the warm path (module docs) when ``start`` is a previous fit, else
        the bootstrap. Expiry by expiry; every parameter at once from the bootstrap
        solution; or every parameter at once from the start itself, without the
        bootstrap (for a warm start: a local search that can only lower the whole
        chain's objective).
    smooth : float
        Weight of the penalty on neighbouring intervals' differences (>= 0).
    free_kappa : bool
        Fit each interval's ``kappa`` (default) or hold every ``kappa`` at the start's
        (Mikhailov & Nögel's choice; one expiry's smile hardly separates ``kappa`` from
        ``theta``, so this is what exact parameter recovery needs).
    inner_tol : float
        0 (default): the solves price with the COS error bounds of the constant
        models' calibration (1e-10 on the neglected series, 1e-11 tail mass, per unit
        forward). A positive value is the series bound ``phi_tol`` (tail mass a tenth
        of it). The reported fit is always priced by :func:`volcal.model_iv`.
    method : {"lm", "trf"}
        Local least-squares method.
    bounds : dict of str to (lo, hi), optional
        Box of some parameters (``"kappa"`` etc. apply to every interval).
    max_nfev : int
        Evaluation budget of each solve.
    max_time : float
        Safety limit in seconds, counted from the end of the first step: the bootstrap
        stops starting new steps after it (status ``"time_limit"``; the remaining
        intervals keep their start values).
    stderr : {"auto", True, False}
        Standard errors ("auto" and True compute them: one Jacobian per step).
    ftol : float, optional
        Relative cost decrease that ends each solve (default: the module's warm/cold
        tolerances).
    rescue : bool
        Cold starts only: when the bootstrap from the data guess is poor (status not
        "ok" or RMSE above 3 vol points), bootstrap again from the constant Heston/Bates
        fit copied onto every interval and keep the better (``extra["rescue"]``).
        Needs ``constant_fit``.
    constant_fit : callable, optional
        ``constant_fit(quotes, "heston" | "bates", weights=..., max_time=...)`` giving
        the constant model's fit for the rescue; :func:`volcal.calibrate` passes itself
        (the time-dependent module does not import the dispatcher that imports it).
    multistart : bool, optional
        Solve each bootstrap step from three starts (the running start, the previous
        interval's fitted ``kappa, xi, rho``, and ``kappa=20, xi=8, rho=-0.2``) and
        keep the lowest final cost. Default: on for cold starts, off for warm ones
        (the previous snapshot's fit is the start).
    fit : bool
        False: no solve, only the result of the start (used by the rescue to score the
        constant model on the piecewise layout).
    options : dict, optional
        Options of :func:`volcal.calibrate` this calibrator does not implement; any value
        other than the default raises :class:`~volcal.errors.ParameterError`.
    warm_tol : float
        Warm path: accepted when its RMSE is at most the reference RMSE + ``warm_tol``
        (vol points), else the full path (a cold fit) runs.
    warm_evals : int
        Warm path: most Jacobian evaluations of a round (each prices the whole chain;
        the secant steps between them are not counted, ``extra["warm"]["steps"]``
        counts every accepted step);
        a second round of as many runs before the cold fallback when the first ended on
        this budget outside the acceptance limit (module docs).

    Returns
    -------
    CalibrationResult
        ``params`` is a ``HestonTD`` / ``BatesTD`` on the chain's expiries.

    Examples
    --------
    >>> import volcal
    >>> fit = volcal.calibrate(volcal.clean(chain), "heston_td")   # doctest: +SKIP
    >>> fit.params.theta, fit.rmse_vol                              # doctest: +SKIP
    """
    from volcal.calibration.engine import OBJ_PHI_TOL as _OBJ_PHI_TOL
    from volcal.calibration.engine import OBJ_TAIL_TOL as _OBJ_TAIL_TOL
    from volcal.calibration.quotes import as_quotes
    from volcal.calibration.quotes import atm_vols as _atm_vols

    t_start = time.perf_counter()
    name = model.lower() if isinstance(model, str) else str(model)
    if name not in TD_CLASSES:
        raise ParameterError(f"calibrate_td: model must be one of {TD_MODELS}, got {model!r}")
    defaults = {
        "fixed": None,
        "objective": "iv",
        "feller": False,
        "n_terms": None,
        "pillars": False,
        "global_search": ("auto", False),
        "iv_mode": "exact",
    }
    for key, val in (options or {}).items():
        ok = defaults.get(key, val)
        if (val not in ok) if isinstance(ok, tuple) else (val != ok):
            raise ParameterError(f"{name}: option {key}={val!r} is not supported")
    if mode not in ("auto", "bootstrap", "joint", "refine"):
        raise ParameterError(f"mode must be 'auto', 'bootstrap', 'joint' or 'refine', got {mode!r}")
    if not (np.isfinite(warm_tol) and int(warm_evals) >= 1):
        raise ParameterError(
            f"warm_tol must be finite and warm_evals >= 1, got {warm_tol}, {warm_evals}"
        )
    for nm, v in (("smooth", smooth), ("strength", strength), ("inner_tol", inner_tol)):
        if not (np.isfinite(v) and v >= 0):
            raise ParameterError(f"{nm} must be finite and >= 0, got {v}")
    if method not in ("lm", "trf"):
        raise ParameterError(f"method must be 'lm' or 'trf', got {method!r}")
    if stderr not in ("auto", True, False):
        raise ParameterError(f"stderr must be 'auto', True or False, got {stderr!r}")
    if int(max_nfev) < 1:
        raise ParameterError(f"max_nfev must be >= 1, got {max_nfev}")
    cls = TD_CLASSES[name]
    q = as_quotes(chain)
    knots = np.asarray(q.t_slices, dtype=np.float64)
    if knots.size == 0 or knots[0] <= 0:
        raise DataError("no expiry with a positive time to maturity to calibrate")
    counts = np.bincount(q.slice_index, minlength=q.n_slices)
    atm = _atm_vols(q)
    start_m = _as_td(cls, start, knots)
    prior_m = _as_td(cls, prior, knots)
    warm = start_m is not None or prior_m is not None
    if mode == "auto" and not (fit and np.isfinite(_reference_rmse(start))):
        # the warm path needs a previous fit (its RMSE is the acceptance reference);
        # a bare parameter start or a prior runs the bootstrap from it
        mode = "bootstrap"
    guess = start_m or prior_m or _guess(cls, q, atm)
    lo, hi = guess.bounds()
    names = guess.names()
    n_int = knots.size
    for key, box in (bounds or {}).items():
        sel = [i for i, nm in enumerate(names) if nm == key or nm.startswith(key + "[")]
        if not sel:
            raise ParameterError(f"bounds: {cls.__name__} has no parameter {key!r}")
        try:
            b_lo, b_hi = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ParameterError(f"bounds[{key!r}] must be a pair (lo, hi), got {box!r}") from None
        if not (np.isfinite(b_lo) and np.isfinite(b_hi) and b_lo < b_hi):
            raise ParameterError(f"bounds[{key!r}] must be finite with lo < hi")
        lo[sel], hi[sel] = b_lo, b_hi
    eps = 1e-6 * (hi - lo)
    x = np.clip(guess.to_vector(), lo + eps, hi - eps)
    start_model = guess.with_vector(x)
    w = q.weights(weights)
    sw = np.sqrt(w)
    w_slice = np.bincount(q.slice_index, weights=w, minlength=q.n_slices)
    px = prior_m.to_vector() if prior_m is not None else None
    pricer = (
        COSPricer(phi_tol=inner_tol, tail_tol=0.1 * inner_tol)
        if inner_tol > 0
        else COSPricer(phi_tol=_OBJ_PHI_TOL, tail_tol=_OBJ_TAIL_TOL)
    )
    if ftol is None:
        ftol = _WARM_FTOL if warm else _COLD_FTOL
    if multistart is None:
        multistart = not warm

    all_pieces = cls._pieces

    def idx(p: str, j: int) -> int:
        return 1 + all_pieces.index(p) * n_int + j

    def scale(p: str, j: int) -> float:
        """Scale of a change of piece ``p`` next to interval ``j``'s current value:
        relative for the positive pieces, the jump size for the jump's mean and std,
        at least 1 % of the box."""
        i = idx(p, j)
        floor = 0.01 * (hi[i] - lo[i])
        if p in ("mu_j", "sigma_j"):
            return float(max(np.hypot(x[idx("mu_j", j)], x[idx("sigma_j", j)]), floor))
        return float(max(abs(x[i]), floor))

    def smooth_rows(j: int, wt: float) -> list[tuple[int, int | None, float, float, float]]:
        """Penalty rows tying interval ``j``'s pieces to interval ``j - 1``'s (interval 0:
        to the start); jump pieces weigh ``_JUMP_SMOOTH * max(1, T_j / _JUMP_T_REF)``
        times more."""
        rows: list[tuple[int, int | None, float, float, float]] = []
        jw = float(np.sqrt(_JUMP_SMOOTH * max(1.0, knots[j] / _JUMP_T_REF)))
        for p in pieces:
            i = idx(p, j)
            wp = wt * (jw if p in _JUMP else 1.0)
            if j == 0:
                rows.append((i, None, float(x[i]), wp, scale(p, 0)))
            else:
                rows.append((i, idx(p, j - 1), 0.0, wp, scale(p, j - 1)))
        return rows

    pieces = all_pieces if free_kappa else all_pieces[1:]
    steps: list[dict[str, Any]] = []
    se_all = np.full(x.size, np.nan)
    conds: list[float] = []
    status, message = "ok", ""

    def prior_rows(
        free: IntArray, wsum: float, ref: FloatArray | None = None, lam: float | None = None
    ) -> list[tuple[int, int | None, float, float, float]]:
        ref = px if ref is None else ref
        lam = strength if lam is None else lam
        if ref is None or lam <= 0:
            return []
        wt = float(np.sqrt(lam * wsum)) * 0.01
        return [
            (int(i), None, float(ref[i]), wt, float(max(abs(ref[i]), 0.01 * (hi[i] - lo[i]))))
            for i in free
        ]

    def run(
        free: IntArray,
        mask: Any,
        pen: list[Any],
        label: str,
        alts: list[FloatArray] | None = None,
    ) -> None:
        nonlocal x, status, message
        best: tuple[float, FloatArray, str, str, _Problem, Any] | None = None
        n_ev = n_jev = 0
        for start_x in [None, *(alts or [])]:
            x_try = x.copy()
            if start_x is not None:
                x_try[free] = np.clip(start_x, lo[free] + eps[free], hi[free] - eps[free])
            base = start_model.with_vector(x_try)
            cand = _Problem(base, free, mask, q, sw, lo, hi, pen, pricer)
            x_c, st_c, msg_c, res_c = _solve(cand, method, ftol, int(max_nfev))
            try:
                start_model.with_vector(x_c)
            except ParameterError:
                x_c, st_c, msg_c, res_c = x_try, "failed", "no valid parameters found", None
            cost = float(np.sum(np.square(res_c.fun))) if res_c is not None else np.inf
            n_ev, n_jev = n_ev + cand.nfev, n_jev + cand.njev
            if best is None or (st_c != "failed" and (best[2] == "failed" or cost < best[0])):
                best = (cost, x_c, st_c, msg_c, cand, res_c)
        assert best is not None
        _cost, x_new, st, msg, prob, res = best
        prob.nfev, prob.njev = n_ev, n_jev
        x = x_new
        cond = None
        if stderr in (True, "auto") and st != "failed" and res is not None:
            se, cond = _stderr(prob, x, res)
            if se is not None:
                se_all[free] = se
            if cond is not None:
                conds.append(cond)
        steps.append(
            {
                "step": label,
                "status": st,
                "nfev": prob.nfev,
                "njev": prob.njev,
                "n_quotes": int(prob.idx.size),
                "jac_cond": cond,
            }
        )
        if _STATUS_RANK[st] > _STATUS_RANK[status]:
            status, message = st, f"{label}: {msg}"

    x0 = x.copy()
    warm_fit: tuple[FloatArray, FloatArray, FloatArray, float] | None = None
    warm_info: dict[str, Any] | None = None
    if mode == "auto":
        # warm path: a few LM steps on the joint problem from the start (module docs),
        # accepted when its RMSE is within warm_tol of the reference (the RMSE of the
        # last full fit the start descends from), else the full path (a cold fit) runs
        # and the better of the two is kept
        free = np.array([0, *(idx(p, j) for p in pieces for j in range(n_int))], dtype=np.int64)

        def warm_pen(anchor: FloatArray) -> list[Any]:
            """The warm solve's penalties: the joint smoothing (scales of ``x``), the
            prior and the pull toward ``anchor``, the round's start."""
            rows: list[Any] = []
            if smooth > 0:
                for j in range(1, n_int):
                    rows += smooth_rows(j, float(np.sqrt(smooth * w_slice[j])) * 0.01)
            rows += prior_rows(free, float(np.sum(w)))
            rows += prior_rows(
                free,
                float(np.sum(w)),
                anchor,
                _WARM_ANCHOR_BATES if cls is BatesTD else _WARM_ANCHOR,
            )
            return rows

        pen_w = warm_pen(x0)
        ref_rmse = _reference_rmse(start)
        # the solve's series bound: looser than the objective's, but its vol error (about
        # bound / vega, vega >= ~1e-2 per unit forward on the quotes kept) at most ~1 %
        # of the reference RMSE (an exactly fitted synthetic chain: 1e-12)
        w_tol = float(min(_WARM_PHI_TOL, max(1e-6 * ref_rmse, 1e-12)))
        warm_pricer = pricer if inner_tol > 0 else COSPricer(phi_tol=w_tol, tail_tol=0.1 * w_tol)
        limit = ref_rmse + float(warm_tol)
        n_jev = n_steps = 0
        prev_round: tuple[Any, ...] | None = None
        x_from = x0
        # the start's intervals in a corner of the box, reset to the data-driven start
        # for a round of their own when the round from the start is not accepted
        x_reset, reset = _corner_reset(cls, q, atm, x0, lo, hi, pieces, idx, n_int)
        kinds: list[str] = []
        kind = "start"
        for _round in range(3):
            # rounds: from the start; when that is not priced or far outside the
            # limit and the start has intervals in a corner, from the start with those
            # reset (a start stuck there can need more COS terms than the library
            # allows, or sit in a poor basin); and when the last round ended on its budget (still decreasing)
            # at a priced point outside the limit, one more of warm_evals Jacobians
            # from its end - each much cheaper than the cold fit it would fall back to
            kinds.append(kind)
            pen_r = pen_w
            if kind == "reset":
                x = x_from.copy()  # the smoothing's scales are of the round's start
                pen_r = warm_pen(x_from)
            elif kind == "more" and prev_round is not None:
                pen_r = prev_round[-1].pen  # the penalties of the round continued
            prob = _Problem(
                start_model.with_vector(x_from),
                free,
                np.ones(len(q), dtype=bool),
                q,
                sw,
                lo,
                hi,
                pen_r,
                warm_pricer,
            )
            x_w, st_w, msg_w, r_w, jac_w, d0, data1 = _warm_solve(
                prob, int(warm_evals), _WARM_PATH_FTOL, _WARM_TARGET * ref_rmse
            )
            n_jev += prob.njev
            n_steps += len(prob.accepted)
            if kind == "start":
                data0 = d0
            try:
                start_model.with_vector(x_w)
            except ParameterError:
                x_w, st_w, msg_w, data1 = x_from, "failed", "no valid parameters found", np.inf
            # the start's objective (data part) bounds every round: a round that ends
            # above it keeps the start
            kept_w = not data1 <= data0
            if kept_w:
                x_w = x0
            miv_w: FloatArray | None = None
            rmse_w = np.nan
            # priced at the library's bounds; where the solution needs more terms than
            # the library allows (the solve's plan is looser), the last accepted points
            # before it
            backs = [x_w, *(v for v in reversed(prob.accepted[:-1]) if not kept_w)][:4]
            for x_try in backs:
                try:
                    miv_w, atm_w = _model_iv(start_model.with_vector(x_try), q)
                except (MethodError, ParameterError):
                    continue
                if x_try is not x_w:
                    r_w = jac_w = None  # the solver's Jacobian is of the point not kept
                rmse_w, x_w = fit_quality(q, miv_w)[0], x_try
                break
            priced = miv_w is not None and st_w != "failed"
            if prev_round is not None and not (priced and rmse_w < prev_round[5]):
                # this round did not improve on the best earlier one: keep that
                x_w, st_w, msg_w, r_w, jac_w, rmse_w, miv_w, atm_w, kept_w, prob = prev_round
                priced = True
            accept = priced and bool(rmse_w <= limit)
            if accept:
                break
            if priced:
                prev_round = (x_w, st_w, msg_w, r_w, jac_w, rmse_w, miv_w, atm_w, kept_w, prob)
            far = not (priced and rmse_w <= limit + max(float(warm_tol), 0.0))
            if reset and "reset" not in kinds and (far or "more" in kinds):
                # unpriced, or further than warm_tol beyond the limit, or a near miss
                # the continued round did not bring inside (a near miss is continued
                # first: the corners of some intervals are where the diffusion fits
                # the short expiries best)
                kind, x_from = "reset", x_reset
            elif "more" not in kinds and priced and st_w == "max_iter" and not kept_w:
                kind, x_from = "more", x_w
            else:
                break
        warm_info = {
            "evaluations": int(n_jev),
            "steps": int(n_steps),
            "rounds": len(kinds),
            "reset": [int(j) for j in reset] if "reset" in kinds else [],
            "status": st_w,
            "rmse": _num(rmse_w),
            "reference_rmse": _num(ref_rmse),
            "limit": _num(limit),
            "fallback": not accept,
        }
        if not accept:
            # the full path: a cold fit of the chain (multistart bootstrap and its
            # rescue); the warm steps' result is kept when it is the better one
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                full = calibrate_td(
                    q,
                    name,
                    weights=weights,
                    mode="bootstrap",
                    smooth=smooth,
                    free_kappa=free_kappa,
                    inner_tol=inner_tol,
                    method=method,
                    bounds=bounds,
                    max_nfev=max_nfev,
                    max_time=max_time,
                    stderr=stderr,
                    rescue=rescue,
                    constant_fit=constant_fit,
                )
            full_rmse = full.rmse_vol
            if not (
                miv_w is not None
                and st_w != "failed"
                and _wsse(w, miv_w, q.iv_mid) < _wsse(w, full.model_iv, q.iv_mid)
            ):
                info = {
                    **warm_info,
                    "kept": "full",
                    "full_rmse": _num(full_rmse),
                    "reference_rmse": _num(full_rmse),
                }
                result = replace(
                    full,
                    start=start_model,
                    elapsed_s=time.perf_counter() - t_start,
                    extra={**full.extra, "warm_start": True, "warm": info},
                )
                if result.status != "ok":
                    warnings.warn(result.warnings[0], CalibrationWarning, stacklevel=3)
                return result
            accept = True
            warm_info.update(kept="warm", full_rmse=_num(full_rmse))
            warm_info["reference_rmse"] = _num(min(rmse_w, full_rmse))
        x = x_w
        assert miv_w is not None
        warm_fit = (x_w.copy(), miv_w, atm_w, float(kept_w))
        cond = None
        if stderr in (True, "auto") and not kept_w and jac_w is None and r_w is not None:
            # the solve ended on a secant update or without a Jacobian at its point: one
            # at it (on the Jacobians' looser plan, as the solve's own; r_w is its
            # residuals on the solve's plan)
            r_j, jac_w = prob.resjac(prob.to_y(x_w), prob.jplan)
            if r_j is None:
                jac_w = None
        if stderr in (True, "auto") and not kept_w and jac_w is not None and r_w is not None:
            assert r_w is not None
            se, cond = _stderr(prob, x, _Fitted(r_w, jac_w))
            if se is not None:
                se_all[free] = se
            if cond is not None:
                conds.append(cond)
        steps.append(
            {
                "step": "warm",
                "status": st_w,
                "nfev": prob.nfev,
                "njev": prob.njev,
                "n_quotes": len(q),
                "jac_cond": cond,
            }
        )
        if st_w not in ("ok", "max_iter"):
            status, message = st_w, f"warm: {msg_w}"
        mode = "warm"
    deadline = t_start + float(max_time)
    for j in range(n_int if fit and mode not in ("refine", "warm") else 0):
        if time.perf_counter() > deadline:
            status, message = "time_limit", f"time limit reached before interval {j}"
            break
        free_l = [idx(p, j) for p in pieces]
        if j == 0:
            free_l = [0, *free_l]
        elif not warm and cls is BatesTD:
            # cold: interval j's jumps start from the neighbour's fit (where the
            # smoothing pulls them), not from the data guess
            for p in _JUMP:
                x[idx(p, j)] = x[idx(p, j - 1)]
        free = np.array(free_l, dtype=np.int64)
        mask = q.slice_index == j
        wt = float(np.sqrt(smooth * w_slice[j])) * 0.01
        pen: list[Any] = smooth_rows(j, wt) if smooth > 0 else []
        pen += prior_rows(free, float(w_slice[j]))
        alts: list[FloatArray] = []
        if multistart:
            # other starts of this interval's shape: the neighbour's fitted shape, and
            # a strong vol of vol (short crypto expiries); the best final cost is kept
            pos = {p: k for k, p in enumerate(pieces)}
            for shape in (
                None if j == 0 else {p: x[idx(p, j - 1)] for p in ("kappa", "xi", "rho")},
                {"kappa": 20.0, "xi": 8.0, "rho": -0.2},
            ):
                if shape is None:
                    continue
                alt_x = x[free].copy()
                for p, v in shape.items():
                    if p in pos:
                        alt_x[(1 if j == 0 else 0) + pos[p]] = v
                alts.append(alt_x)
        run(free, mask, pen, f"interval {j}", alts)
        if j == 0:
            # the limit counts from the end of the first step: a new process compiles
            # or loads the kernels there (see volcal.calibration.engine.Tracker)
            deadline = max(deadline, time.perf_counter() + float(max_time))
    if fit and mode in ("joint", "refine") and status != "time_limit":
        free = np.array([0, *(idx(p, j) for p in pieces for j in range(n_int))], dtype=np.int64)
        pen = []
        if smooth > 0:
            for j in range(1, n_int):
                pen += smooth_rows(j, float(np.sqrt(smooth * w_slice[j])) * 0.01)
        pen += prior_rows(free, float(np.sum(w)))
        run(free, np.ones(len(q), dtype=bool), pen, "joint")

    params = start_model.with_vector(x)
    notes: list[str] = []
    kept_start = False
    if mode == "warm" and warm_fit is not None:
        miv, atm_m = warm_fit[1], warm_fit[2]  # priced by the acceptance test
        if warm_info is not None and warm_info["status"] == "max_iter":
            notes.append(
                f"warm path stopped on its budget of {warm_evals} Jacobians; accepted "
                f"within warm_tol {float(warm_tol):g} of the reference RMSE"
            )
        kept_start = bool(warm_fit[3])
        if kept_start:
            notes.append("warm refit ended worse than its start on the chain: start kept")
    else:
        try:
            miv, atm_m = _model_iv(params, q)
        except MethodError as exc:
            atm_m = np.full(q.n_slices, np.nan)
            miv = np.full(len(q), np.nan)
            status, message = "failed", f"the fitted model cannot be priced: {exc}"
    if warm_info is not None and warm_info.get("kept") == "warm":
        notes.append("warm fallback: the cold fit ended worse than the warm steps, kept those")
    if fit and warm and status != "failed" and mode != "warm":
        # a warm refit is a local search from the start, but the bootstrap re-solves
        # one interval at a time and can end worse on the whole chain than where it
        # began (measured: 2.18 -> 2.96 vol points re-fitting a chain from its own
        # fit): then the start is kept
        try:
            miv0, atm0 = _model_iv(start_model, q)
        except MethodError:
            miv0 = None
        if miv0 is not None and _wsse(w, miv0, q.iv_mid) < _wsse(w, miv, q.iv_mid):
            x, params, miv, atm_m, kept_start = x0, start_model, miv0, atm0, True
            se_all[:] = np.nan  # the steps' standard errors are of the point not kept
            notes.append("warm refit ended worse than its start on the chain: start kept")
    rmse, inside = fit_quality(q, miv)
    n_bad = int(np.sum(~np.isfinite(miv)))
    if not np.isfinite(rmse):
        status, message = "failed", message or "no model implied vol could be computed"
    elif n_bad > 0.05 * len(q) and status == "ok":
        status, message = "degraded", f"{n_bad} of {len(q)} model prices have no implied vol"
    if n_bad:
        notes.append(f"{n_bad} quotes without a model implied vol (price outside Black bounds)")
    rel = (x - lo) / (hi - lo)
    for i in np.flatnonzero(rel < 1e-4).tolist():
        notes.append(f"{names[i]} at lower bound {lo[i]:g}")
    for i in np.flatnonzero(rel > 1 - 1e-4).tolist():
        notes.append(f"{names[i]} at upper bound {hi[i]:g}")
    if not params.feller:
        notes.append("Feller condition violated on some interval (2 kappa theta < xi^2)")
    for j in np.flatnonzero(counts < 4).tolist():
        notes.append(f"expiry {j} has only {counts[j]} quotes: interval {j} rests on the smoothing")
    jac_cond = max(conds) if conds else None
    if jac_cond is not None and jac_cond > 1e8:
        notes.append(f"ill-conditioned Jacobian (condition number {jac_cond:.2g})")
    slices = slice_fits(q, miv, atm_vol=atm_m)
    if status != "ok":
        notes.insert(0, f"{name} calibration {status}: {message}")
    se_dict = (
        {nm: float(se_all[i]) for i, nm in enumerate(names) if np.isfinite(se_all[i])}
        if np.any(np.isfinite(se_all))
        else None
    )
    total_nfev = int(sum(s["nfev"] for s in steps))
    result = CalibrationResult(
        model=name,
        params=params,
        start=start_model,
        quotes=q,
        model_iv=miv,
        weights=w,
        residuals=miv - q.iv_mid,
        slices=slices,
        rmse_vol=rmse,
        inside_spread=inside,
        nfev=total_nfev,
        elapsed_s=time.perf_counter() - t_start,
        status=status,
        message=message,
        warnings=tuple(notes),
        stderr=se_dict,
        jac_cond=jac_cond,
        extra={
            "mode": mode,
            "smooth": float(smooth),
            "strength": float(strength) if px is not None else 0.0,
            "warm_start": bool(warm),
            "knots": knots.tolist(),
            "weights": weights if isinstance(weights, str) else "array",
            "method": method,
            "steps": steps,
            "max_nfev": int(max_nfev),
            "rescue": None,
            "kept_start": kept_start,
            "warm": warm_info,
        },
    )
    poor = status != "ok" or not rmse <= _POOR_RMSE
    if rescue and constant_fit is not None and not warm and poor:
        # a poor bootstrap from the data guess: bootstrap again from the constant
        # model's fit copied onto every interval, keep the better of the two
        calibrate_constant = constant_fit
        const = "bates" if cls is BatesTD else "heston"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            c_fit = calibrate_constant(q, const, weights=weights, max_time=max_time)
            alt = calibrate_td(
                q,
                name,
                start=c_fit.params,
                weights=weights,
                mode=mode,
                smooth=smooth,
                free_kappa=free_kappa,
                inner_tol=inner_tol,
                method=method,
                bounds=bounds,
                max_nfev=max_nfev,
                max_time=max_time,
                stderr=stderr,
                ftol=_COLD_FTOL if ftol is None else ftol,
                rescue=False,
            )
            # the constant fit itself, as a piecewise model with equal intervals
            flat = calibrate_td(
                q, name, start=c_fit.params, weights=weights, stderr=False, rescue=False, fit=False
            )
        first = result
        kept = "guess"
        for cand, label in ((alt, "bootstrap from constant"), (flat, "constant")):
            if np.isfinite(cand.rmse_vol) and not cand.rmse_vol >= result.rmse_vol:
                result, kept = cand, label
        result = replace(
            result,
            nfev=first.nfev + c_fit.nfev + alt.nfev,
            elapsed_s=time.perf_counter() - t_start,
            extra={
                **result.extra,
                "warm_start": False,
                "rescue": {
                    "guess_rmse": _num(first.rmse_vol),
                    "from_constant_rmse": _num(alt.rmse_vol),
                    "constant_rmse": _num(c_fit.rmse_vol),
                    "kept": kept,
                },
            },
        )
    if result.status != "ok":
        warnings.warn(result.warnings[0], CalibrationWarning, stacklevel=3)
    return result
