"""SSVI and eSSVI surface fits over all expiries of a chain, free of static arbitrage.

Objective
---------
As for per-expiry SVI (:mod:`volcal.calibration.svi`), residuals are taken in total
variance with weights :math:`W_i = \\omega_i/(2\\sigma_i T_i)^2`, so that they
approximate implied-vol residuals weighted by :math:`\\omega_i` (default: inverse
bid-ask width in vol, :meth:`~volcal.calibration.quotes.QuoteSet.weights`).

eSSVI: slice by slice with the arbitrage constraints as the search box
----------------------------------------------------------------------
Following Corbetta, Cohort, Laachir & Martini (2019, "Robust calibration and
arbitrage-free interpolation of SSVI slices"), the slices are fitted in increasing
maturity, each one constrained by its predecessor :math:`(\\theta_p, \\rho_p, \\psi_p)`:

* :math:`\\theta \\ge \\theta_p`, searched within :math:`[0.7, 1.3]` times the market ATM
  total variance (interpolated at :math:`k = 0`);
* :math:`\\psi` between :math:`\\psi_{lo}(\\rho) = \\max(\\psi_p(1+\\rho_p)/(1+\\rho),
  \\psi_p(1-\\rho_p)/(1-\\rho))` (both wing slopes non-decreasing) and
  :math:`\\psi_{hi}(\\theta,\\rho) = \\min(3.996/(1+|\\rho|),
  \\sqrt{\\theta\\beta^*(\\rho)})`, Lee's wing bound and the necessary butterfly bound
  :math:`\\psi^2 \\le \\theta\\beta^*(\\rho)` of :mod:`volcal.models.ssvi`
  (:math:`\\beta^* = 19.8` at :math:`\\rho = 0`, against 4 in Gatheral-Jacquier's
  sufficient :math:`\\psi^2(1+|\\rho|) \\le 4\\theta`); the search runs over
  :math:`s \\in [0,1]` with :math:`\\psi = \\psi_{lo} + s(\\psi_{hi} - \\psi_{lo})`;
* no butterfly arbitrage, exactly: a candidate outside Gatheral & Jacquier's sufficient
  conditions must have Durrleman's :math:`g \\ge 0` everywhere
  (:func:`volcal.models.ssvi.essvi_min_g`, compiled in the search; this is the exact
  condition that Martini & Mingone (2022) characterise in closed form);
* no crossing of the previous slice: :math:`w(k) \\ge w_p(k)` on the dense grid of
  :func:`volcal.models.ssvi.calendar_grid` and at every local minimum of
  :math:`w - w_p` on it below 5% of :math:`w_p`, refined by golden-section search (two
  nearly touching slices can cross between grid points: a random pair of steep smiles
  in the property test did, by :math:`2\\cdot 10^{-6}` in total variance), checked for
  the leading candidates of each level (the previous slice's :math:`(\\rho_p, \\psi_p)` with :math:`\\theta \\ge
  \\theta_p` always passes, so a feasible candidate always exists).

The search itself is a grid in :math:`(\\theta, \\rho, s)` (5 x 17 x 13) followed by a
compass search with step halving (:mod:`volcal.calibration._ssvi_numba`, compiled); it
needs no derivatives and costs a fraction of a millisecond per slice. This differs
from the paper's per-slice solver (a 2-D minimisation in :math:`(\\rho, \\psi)` with
:math:`\\theta` fixed at the market ATM value): :math:`\\theta` is refined too, because
Deribit's ATM quotes are wide on the shortest expiries.

What limits short-dated slices: with Gatheral & Jacquier's sufficient bound (used
before the exact check) the fit of all 114 Deribit chains of ``benchmarks/bench_surface.py``
had an RMSE median 2.10 and max 5.79 vol points; with the exact condition 2.10 and 5.62.
Where the sufficient bound was binding, the exact one helps (BTC, 23 January 2026 21:21 UTC:
the 0.44- and 1.44-day slices go from 6.10 and 7.36 to 5.17 and 5.78 vol points, at
:math:`\\beta` 1.25 and 2.1 times the old bound), but the worst day-old smiles are not
limited by arbitrage: on the ETH chain of 20 August 2026 15:48 UTC the 0.67-day slice
misses by 11.7 vol points with :math:`\\psi` at 0.44 of its necessary bound
:math:`\\sqrt{\\theta\\beta^*}`, and the best unconstrained SSVI slice (free
:math:`\\theta, \\rho, \\psi`, unweighted vol residuals) misses by 10.1: three
parameters cannot follow a smile whose wings are 110 vol points above the money within
:math:`k \\in [-0.19, 0.08]` (per-expiry SVI, five parameters, fits within 1.2).

SSVI: one joint least-squares problem
-------------------------------------
All :math:`\\theta_i`, one :math:`\\rho` and the :math:`\\varphi` parameters are fitted
jointly (Levenberg-Marquardt, :func:`scipy.optimize.least_squares`), with the
no-arbitrage conditions of Gatheral & Jacquier (2014) built into the variables:
:math:`\\theta_1 = e^{x_1}`, :math:`\\theta_i = \\theta_{i-1} + e^{x_i}` (increasing),
:math:`\\rho = \\tanh y`, and for the power law :math:`\\gamma = \\tfrac12
\\mathrm{sigmoid}(z)`, :math:`\\eta = \\frac{2}{1+|\\rho|}\\mathrm{sigmoid}(e)`; for the
Heston-like :math:`\\varphi`, :math:`\\lambda = (1+|\\rho|)/4 + e^{l}`.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.calibration.quotes import QuoteSet
from volcal.calibration.result import (
    CalibrationResult,
    expiry_label,
    fit_quality,
    slice_fits,
)
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models.ssvi import (
    ESSVI,
    FLY_GOLDEN_STEPS,
    FLY_REFINE_BELOW,
    FLY_Z,
    LEE_FRACTION,
    PHI_KINDS,
    SSVI,
    calendar_grid,
    essvi_total_variance,
    fly_beta_table,
)

__all__ = ["fit_essvi", "fit_essvi_quotes", "fit_ssvi", "slice_conventions"]

_RHO_MAX = 0.999


def _prepare(chain: Any, weights: Any) -> tuple[QuoteSet, FloatArray, FloatArray, FloatArray]:
    """Quotes, vol weights, total variances and total-variance weights."""
    from volcal.calibration.quotes import as_quotes

    q: QuoteSet = as_quotes(chain)
    omega = q.weights(weights)
    v = q.iv_mid**2 * q.t
    wt = omega / (2.0 * q.iv_mid * q.t) ** 2
    return q, omega, v, wt


def _market_atm(k: FloatArray, v: FloatArray) -> float:
    order = np.argsort(k)
    return float(np.interp(0.0, k[order], v[order]))


def _slice_costs(
    k: FloatArray, v: FloatArray, wt: FloatArray, th: FloatArray, rho: FloatArray, psi: FloatArray
) -> FloatArray:
    p = (rho * psi)[:, None]
    th2 = th[:, None]
    ps2 = psi[:, None]
    r = np.sqrt(ps2 * ps2 * k * k + 2.0 * p * th2 * k + th2 * th2)
    w = 0.5 * (th2 + p * k + r)
    return np.asarray(((w - v) ** 2) @ wt)


def _fit_slice(
    k: FloatArray,
    v: FloatArray,
    wt: FloatArray,
    prev: tuple[float, float, float] | None,
    grid: FloatArray,
    pen: FloatArray | None = None,
    pc: FloatArray | None = None,
    start: FloatArray | None = None,
) -> tuple[float, float, float, float, int]:
    """Best admissible (theta, rho, psi) of one slice; returns (theta, rho, psi, cost, n).
    ``pen``/``pc``: prior penalty on (theta, rho, psi); ``start``: warm start."""
    from volcal.calibration._ssvi_numba import search_slice

    th_m = max(_market_atm(k, v), 1e-10)
    th_p, r_p, ps_p = prev if prev is not None else (0.0, 0.0, 0.0)
    th_lo = max(th_p, 0.7 * th_m)
    th_hi = max(1.3 * th_m, 1.05 * th_lo)
    w_prev = (
        np.asarray(essvi_total_variance(grid, th_p, r_p, ps_p))
        if prev is not None
        else np.zeros_like(grid)
    )
    th, rho, psi, cost, n_eval = search_slice(
        np.ascontiguousarray(k),
        np.ascontiguousarray(v),
        np.ascontiguousarray(wt),
        th_lo,
        th_hi,
        ps_p * (1.0 + r_p),
        ps_p * (1.0 - r_p),
        prev is not None,
        grid,
        w_prev,
        np.array([th_p, r_p, ps_p]),
        _RHO_MAX,
        fly_beta_table(),
        LEE_FRACTION,
        FLY_Z,
        FLY_REFINE_BELOW,
        FLY_GOLDEN_STEPS,
        np.zeros(3) if pen is None else np.asarray(pen, dtype=np.float64),
        np.zeros(3) if pc is None else np.asarray(pc, dtype=np.float64),
        np.full(3, np.nan) if start is None else np.asarray(start, dtype=np.float64),
    )
    best = (float(th), float(rho), float(psi), float(cost))
    # the previous slice's shape at a theta not below its own always passes
    if prev is not None:
        th_f = max(th_p, th_m)
        c_f = float(_slice_costs(k, v, wt, np.array([th_f]), np.array([r_p]), np.array([ps_p]))[0])
        if pen is not None and pc is not None:
            c_f += float(np.sum(np.asarray(pen) * (np.array([th_f, r_p, ps_p]) - pc) ** 2))
        if not np.isfinite(best[3]) or c_f < best[3]:
            best = (th_f, r_p, ps_p, c_f)
    if not np.isfinite(best[3]):  # first slice, nothing admissible: flat smile
        c_f = float(_slice_costs(k, v, wt, np.array([th_m]), np.array([0.0]), np.array([0.0]))[0])
        best = (th_m, 0.0, 0.0, c_f)
    return best[0], best[1], best[2], best[3], int(n_eval)


def fit_essvi_quotes(
    k: FloatArray,
    v: FloatArray,
    wt: FloatArray,
    slice_index: Any,
    t_slices: FloatArray,
    *,
    starts: list[FloatArray | None] | None = None,
    priors: list[FloatArray | None] | None = None,
    strength: float = 0.0,
    omega: FloatArray | None = None,
) -> tuple[ESSVI, int]:
    """eSSVI nodes from arrays (log-moneyness, total variance, weights, slice index).

    The array-level core of :func:`fit_essvi` (module docs); returns the surface and
    the number of candidate slices evaluated. ``starts`` / ``priors``: per slice a
    ``(theta, rho, psi)`` to start from / regularize toward (with ``strength``), or
    None.
    """
    grid = calendar_grid()
    si = np.asarray(slice_index)
    prev: tuple[float, float, float] | None = None
    thetas, rhos, psis = [], [], []
    n_total = 0
    for i in range(len(t_slices)):
        m = si == i
        wi = wt[m] / np.sum(wt[m])
        pen = pc = None
        x_prior = None if priors is None else priors[i]
        if x_prior is not None and strength > 0:
            pc = np.asarray(x_prior, dtype=np.float64)
            scale = np.maximum(np.abs(pc), np.array([1e-4, 0.01, 0.01]))
            # lambda n (0.01)^2 ((x - x0)/s)^2 in the units of the normalised slice cost
            pen = strength * int(m.sum()) * 1e-4 / (float(np.sum(wt[m])) * scale**2)
        st = None if starts is None else starts[i]
        th, rho, psi, _cost, n = _fit_slice(k[m], v[m], wi, prev, grid, pen, pc, st)
        n_total += n
        thetas.append(th)
        rhos.append(rho)
        psis.append(psi)
        prev = (th, rho, psi)
    return ESSVI(t=tuple(t_slices), theta=tuple(thetas), rho=tuple(rhos), psi=tuple(psis)), n_total


def fit_essvi(
    chain: Any,
    *,
    weights: Any = "spread",
    delta: str = "forward",
    start: Any = None,
    prior: Any = None,
    strength: float = 0.0,
) -> CalibrationResult:
    """Fit an arbitrage-free eSSVI surface to every expiry of a chain at once.

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        A cleaned chain (``volcal.clean``) or prepared quotes (out-of-the-money quotes
        are fitted).
    weights : str or ndarray
        Vol-residual weights (:meth:`~volcal.calibration.quotes.QuoteSet.weights`).
    delta : {"forward", "premium_adjusted"}
        Delta convention of each slice's 25-delta RR/BF in the result.
    start : CalibrationResult of an eSSVI fit, optional
        Warm start: each expiry it has (matched by ISO label) starts the slice's pattern
        search at its node (clipped into the slice's admissible box), skipping the grid
        when that node is admissible.
    prior, strength : CalibrationResult of an eSSVI fit, float
        Regularization toward the prior's nodes of the same expiries, as in
        :func:`volcal.calibrate`: :math:`\\lambda n (0.01)^2 \\sum ((x - x^{prior})/s)^2`
        on :math:`(\\theta, \\rho, \\psi)`, :math:`s = \\max(|x^{prior}|, f)`, floors
        :math:`(10^{-4}, 0.01, 0.01)`.

    Returns
    -------
    CalibrationResult
        ``model="essvi"``, ``params`` an :class:`~volcal.models.ssvi.ESSVI`;
        ``result.surface()`` gives the :class:`~volcal.surface.VolSurface`.

    Examples
    --------
    >>> fit = volcal.calibrate(volcal.clean(chain), "essvi")   # doctest: +SKIP
    >>> volcal.check_arbitrage(fit.surface()).ok               # doctest: +SKIP
    True
    """
    t0 = time.perf_counter()
    q, omega, v, wt = _prepare(chain, weights)
    labels = [expiry_label(e) for e in q.expiries]
    starts = _essvi_nodes(start, "start", labels, q.t_slices)
    priors = _essvi_nodes(prior, "prior", labels, q.t_slices) if strength > 0 else None
    model, n_eval = fit_essvi_quotes(
        q.k, v, wt, q.slice_index, q.t_slices, starts=starts, priors=priors, strength=strength
    )
    extra = {
        "method": "slice-by-slice",
        "warm_start": starts is not None,
        "strength": float(strength) if priors is not None else 0.0,
    }
    return _assemble("essvi", q, omega, model, n_eval, t0, delta, extra)


def _essvi_nodes(
    value: Any, what: str, labels: list[str], t_slices: FloatArray
) -> list[FloatArray | None] | None:
    """Per expiry, the ``(theta, rho, psi)`` node of an eSSVI fit (matched by ISO label)
    or of an ``ESSVI`` (matched by node time); None where it has no such expiry."""
    if value is None:
        return None
    if isinstance(value, CalibrationResult) and isinstance(value.params, ESSVI):
        p = value.params
        by_label = {
            s.expiry: np.array([th, r, ps])
            for s, th, r, ps in zip(value.slices, p.theta, p.rho, p.psi, strict=True)
        }
        return [by_label.get(lab) for lab in labels]
    if isinstance(value, ESSVI):
        out: list[FloatArray | None] = []
        for t in t_slices:
            hit = [i for i, ti in enumerate(value.t) if abs(ti - t) <= 1e-9 * max(1.0, t)]
            i = hit[0] if hit else -1
            out.append(np.array([value.theta[i], value.rho[i], value.psi[i]]) if hit else None)
        return out
    raise ParameterError(
        f"essvi: {what} must be an essvi CalibrationResult or an ESSVI, got {type(value).__name__}"
    )


def fit_ssvi(
    chain: Any,
    *,
    phi: str = "power",
    weights: Any = "spread",
    delta: str = "forward",
    max_nfev: int = 2000,
    start: Any = None,
    prior: Any = None,
    strength: float = 0.0,
) -> CalibrationResult:
    """Fit an SSVI surface (one rho, a power-law or Heston-like phi) to a whole chain.

    Parameters
    ----------
    chain : OptionChain or QuoteSet
    phi : {"power", "heston"}
        :math:`\\varphi` family (:mod:`volcal.models.ssvi`).
    weights, delta :
        As for :func:`fit_essvi`.
    max_nfev : int
        Limit of residual evaluations of the least-squares solver.
    start : SSVI or CalibrationResult, optional
        Warm start: the solver starts from its shape parameters (``rho`` and
        ``eta, gamma`` or ``lam``; the same ``phi`` family) and from its ATM total
        variance at this chain's expiries (:math:`\\theta(t)` of the start's own
        interpolation, kept non-decreasing).
    prior, strength : SSVI or CalibrationResult, float
        Regularization toward ``prior`` as in :func:`volcal.calibrate`: extra residuals
        :math:`\\sqrt{\\lambda n}\\,0.01\\,(x_p - x^{prior}_p)/s_p` (in the units of
        the weighted vol residuals) on the shape parameters and on every node's
        :math:`\\theta` against the prior's :math:`\\theta(t)`, with
        :math:`s_p = \\max(|x^{prior}_p|, f_p)`, floors 0.01 (``rho``, ``eta``,
        ``gamma``, ``lam``) and :math:`10^{-4}` (:math:`\\theta`).

    Returns
    -------
    CalibrationResult
        ``model="ssvi"``, ``params`` an :class:`~volcal.models.ssvi.SSVI` that satisfies
        the Gatheral-Jacquier no-arbitrage conditions by construction.
    """
    from scipy.optimize import least_squares

    if phi not in PHI_KINDS:
        raise ParameterError(f"phi must be one of {PHI_KINDS}, got {phi!r}")
    t0 = time.perf_counter()
    q, omega, v, wt = _prepare(chain, weights)
    n = q.n_slices
    t_nodes = q.t_slices
    sw = np.sqrt(wt / np.sum(wt))
    si = q.slice_index
    k = q.k
    th_m = np.array([_market_atm(k[si == i], v[si == i]) for i in range(n)])
    th_m = np.maximum.accumulate(np.maximum(th_m, 1e-8))
    inc = np.diff(th_m, prepend=0.0)
    inc = np.maximum(inc, 1e-3 * th_m[-1] / n)

    def unpack(x: FloatArray) -> tuple[FloatArray, float, float, float]:
        theta = np.cumsum(np.exp(x[:n]))
        rho = float(np.tanh(x[n]) * _RHO_MAX)
        if phi == "power":
            gamma = 0.5 / (1.0 + np.exp(-x[n + 2]))
            eta = 2.0 / (1.0 + abs(rho)) / (1.0 + np.exp(-x[n + 1]))
            return theta, rho, float(eta), float(gamma)
        lam = (1.0 + abs(rho)) / 4.0 + float(np.exp(x[n + 1]))
        return theta, rho, lam, 0.0

    def psi_of(theta: FloatArray, a: float, b: float) -> FloatArray:
        if phi == "power":
            return np.asarray(a * theta ** (1.0 - b) * (1.0 + theta) ** (b - 1.0))
        xx = a * theta
        return np.asarray((1.0 - (-np.expm1(-xx)) / xx) / a)

    def resid(x: FloatArray) -> FloatArray:
        theta, rho, a, b = unpack(x)
        th = theta[si]
        psi = psi_of(theta, a, b)[si]
        p = rho * psi
        w = 0.5 * (th + p * k + np.sqrt(psi * psi * k * k + 2.0 * p * th * k + th * th))
        return np.asarray(sw * (w - v))

    warm = _ssvi_of(start, "start", phi)
    ref = _ssvi_of(prior, "prior", phi) if strength > 0 else None

    def shape_of(m: SSVI) -> FloatArray:
        return np.array([m.rho, m.eta, m.gamma] if phi == "power" else [m.rho, m.lam])

    def pack(theta: FloatArray, shape: FloatArray) -> FloatArray:
        """Inverse of ``unpack`` (theta made strictly increasing first)."""
        th = np.maximum.accumulate(np.maximum(theta, 1e-8))
        incs = np.maximum(np.diff(th, prepend=0.0), 1e-6 * th[-1] / n)
        rho = float(np.clip(shape[0], -0.99 * _RHO_MAX, 0.99 * _RHO_MAX))
        head = np.concatenate([np.log(incs), [np.arctanh(rho / _RHO_MAX)]])
        if phi == "power":
            frac_eta = np.clip(shape[1] * (1.0 + abs(rho)) / 2.0, 1e-6, 1 - 1e-6)
            frac_gam = np.clip(shape[2] / 0.5, 1e-6, 1 - 1e-6)
            return np.concatenate(
                [head, [np.log(frac_eta / (1 - frac_eta)), np.log(frac_gam / (1 - frac_gam))]]
            )
        return np.concatenate([head, [np.log(max(shape[1] - (1.0 + abs(rho)) / 4.0, 1e-8))]])

    if warm is not None:
        x0 = pack(np.asarray(warm.total_variance(0.0, t_nodes)), shape_of(warm))
    else:
        x0 = np.concatenate([np.log(inc), [np.arctanh(-0.3 / _RHO_MAX)]])
        x0 = np.concatenate([x0, [0.0, 0.0]]) if phi == "power" else np.concatenate([x0, [0.0]])
    objective = resid
    if ref is not None:
        c = math.sqrt(strength * k.size * 1e-4 / float(np.sum(wt)))
        th_ref = np.asarray(ref.total_variance(0.0, t_nodes))
        sh_ref = shape_of(ref)
        s_th = np.maximum(np.abs(th_ref), 1e-4)
        s_sh = np.maximum(np.abs(sh_ref), 0.01)

        def objective(x: FloatArray) -> FloatArray:
            theta, rho, a, b = unpack(x)
            sh = np.array([rho, a, b] if phi == "power" else [rho, a])
            pen = np.concatenate([(theta - th_ref) / s_th, (sh - sh_ref) / s_sh])
            return np.concatenate([resid(x), c * pen])

    res = least_squares(objective, x0, method="lm", max_nfev=max_nfev, xtol=1e-10, ftol=1e-12)
    theta, rho, a, b = unpack(res.x)
    if phi == "power":
        model = SSVI(t=tuple(t_nodes), theta=tuple(theta), rho=rho, phi="power", eta=a, gamma=b)
    else:
        model = SSVI(t=tuple(t_nodes), theta=tuple(theta), rho=rho, phi="heston", lam=a)
    status = "ok" if res.success else "max_iter"
    return _assemble(
        "ssvi",
        q,
        omega,
        model,
        int(res.nfev),
        t0,
        delta,
        {
            "method": "joint Levenberg-Marquardt",
            "phi": phi,
            "solver_message": str(res.message),
            "warm_start": warm is not None,
            "strength": float(strength) if ref is not None else 0.0,
        },
        status=status,
        message="" if res.success else str(res.message),
    )


def _ssvi_of(value: Any, what: str, phi: str) -> SSVI | None:
    if value is None:
        return None
    if isinstance(value, CalibrationResult):
        value = value.params
    if not isinstance(value, SSVI):
        raise ParameterError(
            f"ssvi: {what} must be an ssvi CalibrationResult or an SSVI, got {type(value).__name__}"
        )
    if value.phi != phi:
        raise ParameterError(f"ssvi: {what} has phi={value.phi!r}, the fit phi={phi!r}")
    return value


class _NodeSmiles:
    """The nodes of an eSSVI surface as smiles with ``implied_vol(k, t)``."""

    def __init__(self, iv: Any) -> None:
        self.implied_vol = iv


def slice_conventions(
    model: Any, t: FloatArray, delta: str, level: float = 0.25
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ATM vol, RR and BF at ``level`` delta of a surface at maturities ``t`` (vectorised;
    conventions of :mod:`volcal.calibration.smile_stats`)."""
    from volcal.calibration.delta_pillars import strikes_for_delta

    t = np.asarray(t, dtype=np.float64)
    if isinstance(model, ESSVI) and np.array_equal(t, np.asarray(model.t)):
        # at the nodes each slice is an SSVI slice: evaluate it directly (no search over
        # segments in every bisection step)
        th_n, rho_n, psi_n = (np.asarray(x) for x in (model.theta, model.rho, model.psi))

        def iv(k: Any, tt: Any) -> FloatArray:
            i = np.searchsorted(t, tt)
            return np.sqrt(essvi_total_variance(k, th_n[i], rho_n[i], psi_n[i]) / tt)

        model = _NodeSmiles(iv)
    atm = np.asarray(model.implied_vol(np.zeros_like(t), t))
    tt = np.concatenate([t, t])
    side = np.concatenate([np.ones(t.size, bool), np.zeros(t.size, bool)])
    kk = strikes_for_delta(model.implied_vol, tt, level, side, np.concatenate([atm, atm]), delta)
    vol = np.asarray(model.implied_vol(np.nan_to_num(kk), tt))
    vol = np.where(np.isfinite(kk), vol, np.nan)
    vc, vp = vol[: t.size], vol[t.size :]
    return atm, vc - vp, 0.5 * (vc + vp) - atm


def _assemble(
    name: str,
    q: QuoteSet,
    omega: FloatArray,
    model: SSVI | ESSVI,
    nfev: int,
    t0: float,
    delta: str,
    extra: dict[str, Any],
    status: str = "ok",
    message: str = "",
) -> CalibrationResult:
    model_iv = np.asarray(model.implied_vol(q.k, q.t))
    rmse, inside = fit_quality(q, model_iv)
    theta, rho, psi = model.slice_params(q.t_slices)
    atm, rr, bf = slice_conventions(model, q.t_slices, delta)
    notes: list[str] = []
    conds = model.conditions()
    if not conds["ok"]:
        status = "degraded"
        message = "; ".join(conds["messages"])
        notes.extend(conds["messages"])
    slices = slice_fits(
        q,
        model_iv,
        params=[
            {"theta": float(th), "rho": float(r), "psi": float(ps)}
            for th, r, ps in zip(theta, rho, psi, strict=True)
        ],
        atm_vol=atm,
        rr25=rr,
        bf25=bf,
        status=["ok"] * q.n_slices,
    )
    if status != "ok":
        warnings.warn(f"{name} calibration {status}: {message}", CalibrationWarning, stacklevel=3)
    return CalibrationResult(
        model=name,
        params=model,
        start=None,
        quotes=q,
        model_iv=model_iv,
        weights=omega,
        residuals=model_iv - q.iv_mid,
        slices=slices,
        rmse_vol=rmse,
        inside_spread=inside,
        nfev=nfev,
        elapsed_s=time.perf_counter() - t0,
        status=status,
        message=message,
        warnings=tuple(notes),
        extra={
            **extra,
            "delta_convention": delta,
            "objective": "total variance, weights omega / (2 iv t)^2",
            "arbitrage_conditions": conds["ok"],
        },
    )
