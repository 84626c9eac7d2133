"""One raw SVI smile fitted to arrays (log-moneyness, vols, weights) by the quasi-explicit
method, free of butterfly arbitrage.

Array-only: no quotes, chains or results (those are the calibration layer's,
:func:`volcal.calibration.svi.fit_svi`), so cleaning and streaming can fit smiles
without importing the calibration layer.

Quasi-explicit reduction (Zeliade 2009; De Marco & Martini 2009)
-----------------------------------------------------------------
With :math:`y = (k - m)/\\sigma`, raw SVI total variance is linear in three numbers:

.. math::

    w = a + d\\,y + c\\sqrt{y^2+1},\\qquad c = b\\sigma,\\; d = \\rho b\\sigma .

Writing it on the positive basis :math:`f_\\pm(y) = \\sqrt{y^2+1} \\pm y`
(:math:`f_+ f_- = 1`),

.. math:: w = a + p\\,f_+(y) + q\\,f_-(y),\\qquad p = (c + d)/2,\\; q = (c - d)/2,

the admissible domain becomes a box: :math:`b \\ge 0, |\\rho| \\le 1 \\iff p, q \\ge 0`,
and Lee's wing bound :math:`b(1+|\\rho|) \\le 2 \\iff p, q \\le \\sigma` (the wing
slopes of :math:`w` are :math:`2q/\\sigma` and :math:`2p/\\sigma`). For fixed
:math:`(m, \\sigma)` the weighted least squares in :math:`(a, p, q)` is a convex
quadratic on that box; its minimiser is found exactly by enumerating the nine
active sets (:math:`p` and :math:`q` each free, at 0 or at :math:`\\sigma`; :math:`a`
free), solving each by Cramer's rule and keeping the best feasible one. All of this
is vectorised over many :math:`(m, \\sigma)` candidates at once; the outer search is a
coarse grid (the "seeds") followed by a few zoom levels around the best feasible
candidates.

Objective and weights
---------------------
Residuals are taken in total variance and weighted so that they approximate vol
residuals: :math:`\\delta\\sigma \\approx \\delta w / (2\\sigma_i T)`, hence the weight
:math:`W_i = \\omega_i / (2\\sigma_i T)^2` where :math:`\\omega_i` is the vol-residual
weight (``"spread"``: inverse bid-ask width in vol; ``"vega"``: Black vega; see
:meth:`volcal.calibration.quotes.QuoteSet.weights`).

No arbitrage
------------
Lee's bound and non-negative variance are constraints of the inner problem / checks of
each candidate; :math:`g(k) \\ge 0` is checked for the leading candidates on a grid at
every level, and the returned smile must pass :meth:`volcal.models.SVI.is_arbitrage_free`
(dense grid). If no candidate passes, the next candidates are tried, and as a last resort
the flat smile through the weighted mean variance (always arbitrage-free) is returned
with status ``"degraded"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray, IntArray
from volcal.errors import DataError, ParameterError
from volcal.models.svi import SVI, svi_g

__all__ = ["SPREAD_FLOOR", "SVISliceInfo", "fit_svi_slice"]

SPREAD_FLOOR = 0.005  # 0.5 vol point: floor of the bid-ask width used by spread weights

_EPS_PQ = 1e-9  # relative lower bound of p, q (keeps |rho| < 1 strictly)


@dataclass(frozen=True)
class SVISliceInfo:
    """Diagnostics of one slice fit (returned with ``full_output=True``).

    Attributes
    ----------
    cost : float
        Weighted sum of squared total-variance residuals at the solution.
    n_candidates : int
        ``(m, sigma)`` candidates whose inner problem was solved.
    status : str
        ``"ok"`` or ``"degraded"`` (no admissible SVI found: flat fallback).
    message : str
    """

    cost: float
    n_candidates: int
    status: str
    message: str = ""


# --------------------------------------------------------------------------- inner problem
def _inner(
    k: FloatArray, v: FloatArray, wt: FloatArray, m: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Exact box-constrained weighted LS in (a, p, q) for each candidate (m_j, s_j).

    Returns ``(a, p, q, residual)`` arrays of shape ``(J,)`` with
    ``residual = sum_i W_i (w(k_i) - v_i)^2``. Runs the compiled kernel
    (:mod:`volcal.models._svi_kernels`); :func:`_inner_numpy` is the reference.
    """
    from volcal.models._svi_kernels import inner

    a, p, q, res = inner(k, v, wt, np.ascontiguousarray(m), np.ascontiguousarray(s))
    return a, p, q, res


def _inner_numpy(
    k: FloatArray, v: FloatArray, wt: FloatArray, m: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """NumPy reference of :func:`_inner` (all candidates and active sets at once)."""
    y = (k[None, :] - m[:, None]) / s[:, None]
    r = np.sqrt(y * y + 1.0)
    fp = r + y
    fm = r - y
    wv = wt * v
    s00 = float(np.sum(wt))
    s0p = fp @ wt
    s0m = fm @ wt
    spp = (fp * fp) @ wt
    smm = (fm * fm) @ wt
    spm = s00  # f+ f- = 1
    h0 = float(np.sum(wv))
    hp = fp @ wv
    hm = fm @ wv
    lo = _EPS_PQ * s
    hi = s
    tol = 1e-12 * s
    with np.errstate(divide="ignore", invalid="ignore"):
        # (1) p, q free: 3x3 system [[s00,s0p,s0m],[s0p,spp,spm],[s0m,spm,smm]] x = h
        c00 = spp * smm - spm * spm
        c01 = s0m * spm - s0p * smm
        c02 = s0p * spm - s0m * spp
        det = s00 * c00 + s0p * c01 + s0m * c02
        c11 = s00 * smm - s0m * s0m
        c12 = s0p * s0m - s00 * spm
        c22 = s00 * spp - s0p * s0p
        a1 = (c00 * h0 + c01 * hp + c02 * hm) / det
        p1 = (c01 * h0 + c11 * hp + c12 * hm) / det
        q1 = (c02 * h0 + c12 * hp + c22 * hm) / det
        ok1 = (np.abs(det) > 1e-13 * np.abs(s00 * spp * smm)) & (p1 >= lo - tol) & (p1 <= hi + tol)
        ok1 &= (q1 >= lo - tol) & (q1 <= hi + tol)
        # (2) p at a bound, (a, q) free: 2x2 systems
        pf = np.stack([lo, hi])
        r0 = h0 - s0p * pf
        r1 = hm - spm * pf
        a2 = (smm * r0 - s0m * r1) / c11
        q2 = (s00 * r1 - s0m * r0) / c11
        ok2 = (np.abs(c11) > 1e-13 * np.abs(s00 * smm)) & (q2 >= lo - tol) & (q2 <= hi + tol)
        # (3) q at a bound, (a, p) free
        r0 = h0 - s0m * pf
        r1 = hp - spm * pf
        a3 = (spp * r0 - s0p * r1) / c22
        p3 = (s00 * r1 - s0p * r0) / c22
        ok3 = (np.abs(c22) > 1e-13 * np.abs(s00 * spp)) & (p3 >= lo - tol) & (p3 <= hi + tol)
        # (4) both at bounds: a alone (always feasible)
        p4 = np.stack([lo, lo, hi, hi])
        q4 = np.stack([lo, hi, lo, hi])
        a4 = (h0 - s0p * p4 - s0m * q4) / s00
        a = np.concatenate([a1[None], a2, a3, a4])
        p = np.concatenate([p1[None], pf, p3, p4])
        q = np.concatenate([q1[None], q2, pf, q4])
        ok = np.concatenate([ok1[None], ok2, ok3, np.ones((4, s.size), dtype=bool)])
        p = np.clip(p, lo, hi)
        q = np.clip(q, lo, hi)
        cost = (
            s00 * a * a
            + spp * p * p
            + smm * q * q
            + 2.0 * (s0p * a * p + s0m * a * q + spm * p * q)
            - 2.0 * (h0 * a + hp * p + hm * q)
        )
    cost = np.where(ok & np.isfinite(cost), cost, np.inf)
    j = np.argmin(cost, axis=0)
    col = np.arange(s.size)
    a, p, q = a[j, col], p[j, col], q[j, col]
    return a, p, q, _residual(k, v, wt, a, p, q, m, s)


def _residual(
    k: FloatArray, v: FloatArray, wt: FloatArray, a: Any, p: Any, q: Any, m: Any, s: Any
) -> FloatArray:
    """Weighted sum of squared total-variance residuals, evaluated directly (no
    cancellation, unlike the normal-equation cost)."""
    y = (k[None, :] - np.reshape(m, (-1, 1))) / np.reshape(s, (-1, 1))
    r = np.sqrt(y * y + 1.0)
    w = np.reshape(a, (-1, 1)) + np.reshape(p, (-1, 1)) * (r + y) + np.reshape(q, (-1, 1)) * (r - y)
    return np.asarray(((w - v) ** 2) @ wt)


def _to_raw(
    a: FloatArray, p: FloatArray, q: FloatArray, m: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """(a, p, q, m, sigma) -> raw (a, b, rho, m, sigma)."""
    c = p + q
    b = c / s
    rho = (p - q) / c
    return a, b, rho, m, s


def _admissible(
    a: FloatArray,
    p: FloatArray,
    q: FloatArray,
    m: FloatArray,
    s: FloatArray,
    grid: FloatArray,
) -> FloatArray:
    """Positive minimal variance and g >= 0 on ``grid`` and on a grid around each
    vertex (compiled; :func:`_admissible_numpy` is the reference)."""
    from volcal.models._svi_kernels import admissible

    return np.asarray(admissible(grid, a, p, q, np.ascontiguousarray(m), np.ascontiguousarray(s)))


def _admissible_numpy(
    a: FloatArray,
    p: FloatArray,
    q: FloatArray,
    m: FloatArray,
    s: FloatArray,
    grid: FloatArray,
) -> FloatArray:
    """NumPy reference of :func:`_admissible`."""
    _, b, rho, _, _ = _to_raw(a, p, q, m, s)
    wmin = a + 2.0 * np.sqrt(p * q)
    local = m[:, None] + s[:, None] * np.array(
        [-4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    )
    kk = np.concatenate([np.broadcast_to(grid, (m.size, grid.size)), local], axis=1)
    g = svi_g(kk, a[:, None], b[:, None], rho[:, None], m[:, None], s[:, None])
    return np.asarray((wmin > 0) & np.all(g >= 0.0, axis=1))


def _flat(v: FloatArray, wt: FloatArray) -> SVI:
    level = float(np.sum(wt * v) / np.sum(wt))
    return SVI(a=max(level, 1e-12), b=0.0, rho=0.0, m=0.0, sigma=0.1)


def stencil_newton_step(ff: FloatArray, hm: float, hl: float) -> FloatArray | None:
    """Newton step on the reduced objective from its values ``ff`` on a 3 x 3 stencil
    (steps ``hm`` in m, ``hl`` in log sigma; central differences), clipped to two
    stencil steps; ``None`` when the finite-difference Hessian is not positive definite."""
    g = np.array([(ff[2, 1] - ff[0, 1]) / (2 * hm), (ff[1, 2] - ff[1, 0]) / (2 * hl)])
    h11 = (ff[2, 1] - 2 * ff[1, 1] + ff[0, 1]) / hm**2
    h22 = (ff[1, 2] - 2 * ff[1, 1] + ff[1, 0]) / hl**2
    h12 = (ff[2, 2] - ff[2, 0] - ff[0, 2] + ff[0, 0]) / (4 * hm * hl)
    det = h11 * h22 - h12 * h12
    if not (h11 > 0 and det > 0):
        return None
    step = -np.array([h22 * g[0] - h12 * g[1], h11 * g[1] - h12 * g[0]]) / det
    return np.asarray(np.clip(step, [-2 * hm, -2 * hl], [2 * hm, 2 * hl]))


def fit_svi_slice(
    k: ArrayLike,
    iv_mid: ArrayLike,
    t: float,
    weights: ArrayLike | None = None,
    iv_bid: ArrayLike | None = None,
    iv_ask: ArrayLike | None = None,
    *,
    n_m: int = 15,
    n_sigma: int = 11,
    n_levels: int = 2,
    n_keep: int = 3,
    n_newton: int = 4,
    full_output: bool = False,
    start: SVI | None = None,
    prior: SVI | None = None,
    strength: float = 0.0,
) -> SVI | tuple[SVI, SVISliceInfo]:
    """Fit one raw SVI smile to implied vols of one expiry (quasi-explicit method).

    Minimises :math:`\\sum_i W_i (w(k_i) - \\sigma_i^2 T)^2` with
    :math:`W_i = \\omega_i/(2\\sigma_i T)^2` (so residuals approximate vol residuals
    weighted by :math:`\\omega_i`) over SVIs with :math:`b \\ge 0`, :math:`|\\rho| < 1`,
    Lee's bound :math:`b(1+|\\rho|) \\le 2`, positive minimal variance and
    :math:`g(k) \\ge 0`. See the module docs for the method. The search (seed grid,
    zooms, Newton) is not a proof of global optimality: on random admissible smiles with
    1 % noise it never did worse than the generating smile, but a very narrow basin
    (sigma near 0.05 with no skew, sharper than quoted crypto smiles) can be missed.

    Parameters
    ----------
    k : array_like
        Log-moneyness :math:`\\ln(K/F)` of the quotes.
    iv_mid : array_like
        Mid implied vols (decimal).
    t : float
        Years to expiry (> 0).
    weights : array_like, optional
        Vol-residual weights :math:`\\omega_i`. Default: inverse bid-ask width in vol
        (floored at 0.5 vol point) when ``iv_bid``/``iv_ask`` are given, else ones.
    iv_bid, iv_ask : array_like, optional
        Bid and ask implied vols (only used for the default weights).
    n_m, n_sigma : int
        Seed grid: ``n_m`` vertices ``m`` over the quoted range widened by half its
        width on each side, times ``n_sigma`` log-spaced ``sigma``.
    n_levels, n_keep : int
        Zoom levels (a 5 x 5 grid at half the previous step) around the ``n_keep`` best
        admissible candidates.
    n_newton : int
        Newton steps on the reduced objective :math:`F(m, \\ln\\sigma)` (finite-difference
        gradient and Hessian on a 3 x 3 stencil that shrinks with the step), started
        at the best admissible candidate; the best admissible point seen is kept.
    full_output : bool
        Also return :class:`SVISliceInfo`.
    start : SVI, optional
        Warm start: the seed grid is a local 5 x 5 grid (at the cold grid's spacing)
        around its :math:`(m, \\sigma)`, which is itself a candidate.
    prior, strength : SVI and float, optional
        Regularization toward ``prior`` as in :func:`volcal.calibrate`: the objective
        gains :math:`\\lambda n (0.01)^2 \\sum_p ((x_p - x^{prior}_p)/s_p)^2` over
        :math:`x = (a, b(1-\\rho), b(1+\\rho), m, \\sigma)` (level, wing slopes,
        vertex, curvature) in the units of the weighted vol residuals, with
        :math:`s_p = \\max(|x^{prior}_p|, f_p)`, floors :math:`f = (0.1\\,w^{prior}(0),
        0.01, 0.01, 0.01, 0.01)`. The slopes enter the inner problem as quadratic terms,
        so it stays exact.

    Returns
    -------
    SVI or (SVI, SVISliceInfo)
        An SVI passing :meth:`SVI.is_arbitrage_free`.

    Examples
    --------
    >>> import numpy as np
    >>> from volcal.models import SVI
    >>> true = SVI(a=0.01, b=0.08, rho=-0.4, m=0.02, sigma=0.15)
    >>> k = np.linspace(-0.5, 0.4, 25)
    >>> fit = fit_svi_slice(k, true.implied_vol(k, 0.25), 0.25)
    >>> bool(np.max(np.abs(fit.implied_vol(k, 0.25) - true.implied_vol(k, 0.25))) < 1e-4)
    True
    """
    k_a = np.asarray(k, dtype=np.float64).ravel()
    iv = np.asarray(iv_mid, dtype=np.float64).ravel()
    t = float(t)
    if not (t > 0 and np.isfinite(t)):
        raise ParameterError(f"fit_svi_slice: t must be finite and > 0, got {t}")
    if k_a.size != iv.size or k_a.size == 0:
        raise DataError(
            f"fit_svi_slice: k and iv_mid need equal, non-zero sizes ({k_a.size}, {iv.size})"
        )
    if not (np.all(np.isfinite(k_a)) and np.all(np.isfinite(iv)) and np.all(iv > 0)):
        raise DataError("fit_svi_slice: k must be finite and iv_mid finite and > 0")
    if weights is None:
        if iv_bid is not None and iv_ask is not None:
            width = np.asarray(iv_ask, dtype=np.float64) - np.asarray(iv_bid, dtype=np.float64)
            width = np.where(np.isfinite(width), width, np.nan)
            fill = np.nanmedian(width) if np.any(np.isfinite(width)) else 0.05
            omega = 1.0 / np.maximum(np.where(np.isfinite(width), width, 4.0 * fill), SPREAD_FLOOR)
        else:
            omega = np.ones_like(k_a)
    else:
        omega = np.asarray(weights, dtype=np.float64).ravel()
        if omega.shape != k_a.shape or not np.all(np.isfinite(omega)) or np.any(omega < 0):
            raise DataError("fit_svi_slice: weights must be finite, >= 0, one per quote")
    if not np.sum(omega) > 0:
        raise DataError("fit_svi_slice: weights sum to zero")
    v = iv * iv * t
    wt = omega / (2.0 * iv * t) ** 2
    wt_sum = float(np.sum(wt))
    wt = wt / wt_sum
    pen = np.zeros(5)
    pc = np.zeros(5)
    if prior is not None and strength > 0:
        pc = np.array(
            [prior.a, prior.b * (1 - prior.rho), prior.b * (1 + prior.rho), prior.m, prior.sigma]
        )
        floors = np.array([0.1 * float(prior.total_variance(0.0)), 0.01, 0.01, 0.01, 0.01])
        scale = np.maximum(np.abs(pc), floors)
        # lambda n (0.01)^2 ((x - x0)/s)^2 in the units of the normalised weighted cost
        pen = strength * k_a.size * 1e-4 / (float(np.sum(omega)) * scale**2)
        pen = pen * float(np.sum(omega)) / wt_sum
    penalised = bool(np.any(pen > 0))

    def inner_fn(
        m_: FloatArray, s_: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        if not penalised:
            return _inner(k_a, v, wt, m_, s_)
        from volcal.models._svi_kernels import inner_constrained

        none = np.empty(0)
        a_, p_, q_, r_, ok_ = inner_constrained(
            k_a, v, wt, np.ascontiguousarray(m_), np.ascontiguousarray(s_), none, none, none,
            np.zeros(2), np.full(2, np.inf), pen, pc,
        )  # fmt: skip
        return a_, p_, q_, np.where(ok_, r_, np.inf)

    if k_a.size < 3 or np.ptp(k_a) <= 0:
        flat = _flat(v, wt)
        info = SVISliceInfo(
            float(np.sum(wt * (flat.a - v) ** 2)), 0, "degraded", "fewer than 3 strikes: flat smile"
        )
        return (flat, info) if full_output else flat

    k_lo, k_hi = float(np.min(k_a)), float(np.max(k_a))
    span = k_hi - k_lo
    far = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    grid = np.concatenate([np.linspace(k_lo - span, k_hi + span, 41), -far, far])
    m0 = np.linspace(k_lo - 0.5 * span, k_hi + 0.5 * span, n_m)
    ls0 = np.linspace(np.log(max(1e-4, 0.01 * span)), np.log(max(1.0, 2.0 * span)), n_sigma)
    dm, dls = m0[1] - m0[0], ls0[1] - ls0[0]
    if start is not None:  # warm: a local grid around the start's (m, sigma)
        m0 = start.m + dm * np.linspace(-2.0, 2.0, 5)
        ls0 = np.log(start.sigma) + dls * np.linspace(-2.0, 2.0, 5)
    mm, ll = np.meshgrid(m0, ls0, indexing="ij")
    m_c, ls_c = mm.ravel(), ll.ravel()
    zoom = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    pool: list[FloatArray] = []  # rows (cost, a, p, q, m, log sigma) of admissible candidates
    n_cand = 0

    def admissible_best(
        a: FloatArray,
        p: FloatArray,
        q: FloatArray,
        m_: FloatArray,
        ls_: FloatArray,
        cost: FloatArray,
    ) -> IntArray:
        ok = np.isfinite(cost) & _admissible(a, p, q, m_, np.exp(ls_), grid)
        j = np.flatnonzero(ok)
        j = j[np.argsort(cost[j])]
        pool.append(np.stack([cost[j], a[j], p[j], q[j], m_[j], ls_[j]], axis=1))
        return np.argsort(cost)

    for level in range(n_levels + 1):
        a, p, q, cost = inner_fn(m_c, np.exp(ls_c))
        n_cand += m_c.size
        order = admissible_best(a, p, q, m_c, ls_c, cost)
        rows = pool[-1]
        if rows.shape[0]:
            centers_m = rows[:n_keep, 4]
            centers_l = rows[:n_keep, 5]
        else:  # nothing admissible yet: zoom on the best raw candidates
            centers_m, centers_l = m_c[order[:n_keep]], ls_c[order[:n_keep]]
        if level == n_levels:
            break
        dm, dls = 0.5 * dm, 0.5 * dls
        mz, lz = np.broadcast_arrays(
            centers_m[:, None, None] + dm * zoom[None, :, None],
            centers_l[:, None, None] + dls * zoom[None, None, :],
        )
        m_c, ls_c = mz.ravel(), lz.ravel()

    # Newton polish of the reduced objective F(m, log sigma) around the best candidate
    allrows = np.concatenate(pool)
    if allrows.shape[0]:
        c_m, c_l = allrows[np.argmin(allrows[:, 0]), 4:6]
        hm, hl = dm, dls
        st = np.array([-1.0, 0.0, 1.0])
        for _ in range(n_newton):
            mz, lz = np.broadcast_arrays(c_m + hm * st[:, None], c_l + hl * st[None, :])
            m_c, ls_c = mz.ravel(), lz.ravel()
            a, p, q, f = inner_fn(m_c, np.exp(ls_c))
            n_cand += 9
            admissible_best(a, p, q, m_c, ls_c, f)
            if not np.all(np.isfinite(f)):
                break
            ff = f.reshape(3, 3)
            newton = stencil_newton_step(ff, hm, hl)
            if newton is not None:
                step = newton
            else:
                jb = int(np.argmin(f))
                step = np.array([m_c[jb] - c_m, ls_c[jb] - c_l])
            c_m, c_l = c_m + step[0], c_l + step[1]
            hm = float(np.clip(abs(step[0]), 1e-3 * hm, hm))
            hl = float(np.clip(abs(step[1]), 1e-3 * hl, hl))
            hm, hl = max(hm, 1e-9), max(hl, 1e-9)
        allrows = np.concatenate(pool)
    for j in np.argsort(allrows[:, 0]):
        res, ai, pi, qi, mi, li = allrows[j]
        si = float(np.exp(li))
        c_ = pi + qi
        try:
            svi = SVI(a=ai, b=c_ / si, rho=(pi - qi) / c_, m=mi, sigma=si)
        except ParameterError:
            continue
        if svi.is_arbitrage_free():
            info = SVISliceInfo(float(res), n_cand, "ok")
            return (svi, info) if full_output else svi
    flat = _flat(v, wt)
    starts = [flat.to_vector()]
    if allrows.shape[0] == 0:  # the unconstrained optimum violates g >= 0: shrink it
        a, p, q, cost = _inner(k_a, v, wt, m_c, np.exp(ls_c))
        jb = int(np.nanargmin(cost))
        c_, sj = p[jb] + q[jb], float(np.exp(ls_c[jb]))
        if c_ > 0:
            starts.append(np.array([a[jb], 0.3 * c_ / sj, (p[jb] - q[jb]) / c_, m_c[jb], sj]))
    polished = _constrained_fit(k_a, v, wt, starts, k_lo, k_hi)
    if polished is not None:
        svi, cost_c = polished
        info = SVISliceInfo(
            cost_c, n_cand, "ok", "butterfly constraint active: constrained (SLSQP) fit"
        )
        return (svi, info) if full_output else svi
    info = SVISliceInfo(
        float(np.sum(wt * (flat.a - v) ** 2)), n_cand, "degraded", "no admissible SVI: flat smile"
    )
    return (flat, info) if full_output else flat


def _shrink_to_admissible(svi: SVI, a_flat: float, steps: int = 40) -> SVI | None:
    """The admissible smile closest to ``svi`` on the segment from the flat smile
    through the mean variance ``a_flat`` (b = 0: g = 1 everywhere) to ``svi``: the
    largest ``lam`` in (0, 1] found by bisection for which ``a_flat + lam (a - a_flat)``,
    ``lam b`` and the same ``rho, m, sigma`` pass the dense butterfly check.

    SLSQP holds g >= 0 only on its constraint grid: a narrow vertex (a 1.5-day BTC
    smile of 2026-01-23, sigma 0.057) ends with g = -2.5e-5 between two of its points,
    and which start gets there depends on the SciPy release. Shrinking the smile's
    slopes toward the flat smile removes the dip at a cost that is second order in
    ``1 - lam``. ``None`` when even the smallest tried ``lam`` is not admissible."""

    def at(lam: float) -> SVI | None:
        try:
            return SVI(
                a=a_flat + lam * (svi.a - a_flat),
                b=lam * svi.b,
                rho=svi.rho,
                m=svi.m,
                sigma=svi.sigma,
            )
        except ParameterError:
            return None

    lo, hi = 0.0, 1.0
    best: SVI | None = None
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        cand = at(mid)
        if cand is not None and cand.is_arbitrage_free():
            lo, best = mid, cand
        else:
            hi = mid
    return best


def _constrained_fit(
    k: FloatArray, v: FloatArray, wt: FloatArray, starts: list[FloatArray], k_lo: float, k_hi: float
) -> tuple[SVI, float] | None:
    """Fallback when no quasi-explicit candidate is butterfly-free: minimise the same
    objective over raw SVI with :math:`g(k) \\ge 0` on a dense grid, Lee's bound and
    positive minimal variance as explicit constraints (SLSQP), from feasible or shrunk
    starts. This happens on the steepest short-dated smiles (a weekend expiry a day
    out, ATM 15 % and wings at 77 % within 11 % of moneyness), where every
    unconstrained optimum has a negative density; the constrained fit is the closest
    arbitrage-free SVI. Returns ``None`` when no start converges to an admissible smile.
    """
    from scipy.optimize import minimize

    span = max(k_hi - k_lo, 1e-3)
    grid = np.concatenate(
        [np.linspace(k_lo - span, k_hi + span, 161), [-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0]]
    )
    scale = 1.0 / max(float(np.sum(wt * v * v)), 1e-300)

    def raw(x: FloatArray) -> tuple[float, float, float, float, float]:
        return float(x[0]), float(x[1]), float(x[2]), float(x[3]), float(np.exp(x[4]))

    def obj(x: FloatArray) -> float:
        a, b, rho, m, sg = raw(x)
        d = k - m
        w = a + b * (rho * d + np.sqrt(d * d + sg * sg))
        return float(scale * np.sum(wt * (w - v) ** 2))

    def cons(x: FloatArray) -> FloatArray:
        a, b, rho, m, sg = raw(x)
        g = svi_g(grid, a, b, rho, m, sg)
        wmin = a + b * sg * np.sqrt(max(1.0 - rho * rho, 0.0))
        return np.concatenate([g, [wmin * 1e4, 2.0 - b * (1.0 + abs(rho))]])

    vmax = float(np.max(v))
    bounds = [
        (-vmax, 2.0 * vmax + 1e-6),
        (0.0, 2.0),
        (-0.999, 0.999),
        (k_lo - span, k_hi + span),
        (np.log(1e-4), np.log(10.0)),
    ]
    best: tuple[SVI, float] | None = None
    for x0 in starts:
        a0, b0, r0, m0, s0 = (float(z) for z in x0)
        x = np.array([a0, b0, r0, min(max(m0, k_lo - span), k_hi + span), np.log(max(s0, 1e-4))])
        x = np.clip(x, [lo for lo, _ in bounds], [hi for _, hi in bounds])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                obj,
                x,
                method="SLSQP",
                bounds=bounds,
                constraints=[{"type": "ineq", "fun": cons}],
                options={"maxiter": 300, "ftol": 1e-12},
            )
        a, b, rho, m, sg = raw(res.x)
        try:
            svi = SVI(a=a, b=b, rho=rho, m=m, sigma=sg)
        except ParameterError:
            continue
        if not svi.is_arbitrage_free():
            repaired = _shrink_to_admissible(svi, float(np.sum(wt * v) / np.sum(wt)))
            if repaired is None:
                continue
            svi = repaired
        cost = float(np.sum(wt * (svi.total_variance(k) - v) ** 2))
        if best is None or cost < best[1]:
            best = (svi, cost)
    return best
