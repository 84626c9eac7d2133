"""Arbitrage-free SVI surface: raw SVI slices with butterfly and calendar constraints.

``volcal.calibrate(chain, "svi_surface")`` fits one raw SVI per expiry, like ``"svi"``,
but every slice must also lie on or above the previous one at every log-moneyness (a
dense grid out to :math:`|k| = 1000`, far beyond the quotes) with wing slopes that do
not decrease, and the time interpolation between and beyond the slices is certified
free of butterfly arbitrage too. The result's ``params`` is a
:class:`~volcal.models.svi.SVISurface`; ``fit.surface()`` is a ``VolSurface`` that
:func:`volcal.check_arbitrage` passes.

What was chosen, and why
------------------------
* **Gatheral & Jacquier (2014), section 5** fit SVI slices one after the other with the
  calendar condition as a penalty against the previous slice, starting from an SSVI fit,
  and interpolate *prices* between slices. We keep their structure (sequential slices,
  SVI per expiry, because SVI's five parameters follow the steep day-old crypto smiles
  that eSSVI's three cannot), but make the calendar condition a hard constraint and
  interpolate in total variance (below).
* **Zeliade (2009) quasi-explicit method**: for fixed :math:`(m, \\sigma)` raw SVI is
  linear in :math:`(a, p, q)` (:mod:`volcal.calibration.svi`). The calendar condition
  :math:`w_j(k_l) \\ge w_{j-1}(k_l)` at grid points :math:`k_l` is *linear* in
  :math:`(a, p, q)` too, and the wing-slope conditions are bounds on :math:`p, q`
  (the wing slopes are :math:`2q/\\sigma`, :math:`2p/\\sigma`). So the constrained
  inner problem stays a convex quadratic programme in three variables, solved exactly
  by the dual active-set method of Goldfarb & Idnani (1983) in compiled code (about
  2.6 microseconds per candidate with 120 constraint points); the outer search over
  :math:`(m, \\sigma)` is the seed-grid / zoom / Newton search of the free fit. The
  butterfly condition :math:`g \\ge 0` stays a check of each candidate, as in the free
  fit. This keeps a constrained slice within a few times a free one - SLSQP on the
  five raw parameters with hundreds of grid constraints (what the free fit's butterfly
  fallback uses) costs tens of milliseconds per slice.
* **eSSVI (Hendriks & Martini 2019; Corbetta et al. 2019)** is arbitrage-free by its
  parametrisation, with explicit conditions between slices, and Corbetta's robust
  calibration is also sequential. It is already available (``"essvi"``) but not the
  basis here: its three parameters per slice fit the 114 real chains of
  ../shared/data at a median 2.1 vol points where free SVI slices are at 0.47
  (BENCHMARKS.md), and the richer global variants trade that for a joint, slower fit.
  The SVI slices keep SVI's fit and take the constraints only where they bind.
* **Sequential passes, not a joint fit.** A joint fit over :math:`5N` parameters with
  hundreds of grid constraints is non-convex and slow. Measured on the real chains,
  the constraints bind almost only *outside the quotes*: a day-old smile quoted over
  :math:`|k| < 0.15` extrapolates wings that cross every later smile at :math:`|k| = 3`,
  and a purely forward pass (each slice above the previous one, as in Gatheral &
  Jacquier) ratchets every later slice up (up to 1.9 vol points on one slice); a purely
  backward pass is hostage to the last expiry's thinly quoted wing. So:

  1. *taming*: each free slice is refitted, if needed, so that beyond its own quotes it
     stays below the free fits of later expiries and above those of earlier expiries
     *where those are quoted*, with wing slopes not steeper than the slice quoted
     furthest out on that side (nor flatter after it) - the less informed slice yields;
  2. a pass from an *anchor* slice outwards: later slices fitted above their
     predecessor, earlier ones below their successor, each kept as it is when already
     admissible (cost 0). The anchor is the slice with the widest quoted range; when
     that pass costs more than 5 % (+0.05 vol point) RMSE over the free slices, the
     pass anchored at the first expiry (a purely forward pass) is run too and the
     cheaper of the two is kept: it wins on 44 of the 114 real chains of ../shared/data.
     A third pass anchored at the last expiry was run as well until it was measured
     never to beat the better of the other two on those chains (equal, or up to 1.9
     vol points worse): without it every surface on them is the same, bit for bit.

  A Gauss-Seidel sweep refitting every constrained slice between both neighbours was
  tried and gained less than 0.01 vol point on 30 chains, so it is not run.

Time interpolation (:class:`~volcal.models.svi.SVISurface`): linear in total
variance at fixed :math:`k` between slices (as the eSSVI surface), the first smile's
implied vols before the first expiry and the last smile shifted by the ATM variance
growth after the last. The fit accepts a slice only when the blend with its neighbour is
butterfly-free for every :math:`t` in between (the quartic :math:`w^2 g` in
:math:`\\alpha`, bounded by its Bernstein coefficients, else minimised over 129 points
refined by golden section; :func:`~volcal.models.svi.blend_min_g_poly` is the exact
reference) and the extrapolation for every :math:`t` beyond the last expiry
(:func:`~volcal.models.svi.shift_min_g`, exact). The grid is certified again with the
points :func:`volcal.check_arbitrage` uses (they scale with the first slice's ATM
variance, known only at the end), and the passes rerun on the union when that fails.
Neighbours are kept :math:`10^{-13}` apart in total variance on the grid (the repair of
a candidate between the QP's grid and the dense grid is a shift of :math:`a`), and
between its points: around every grid point where the difference of two neighbours has a
local minimum it is minimised by golden section
(:func:`volcal.calibration._svi_surface_kernels.dip`) - a sharp short smile below a flat
longer one can otherwise touch the grid points from above and cross between two of them
(by 1.4e-6 in total variance on a case the random-smile test found; on 22 of 38 real
chains by less, invisible to :func:`volcal.check_arbitrage` too). When no
candidate passes, the slice is a scaled (before) or lifted (after) copy of its
neighbour - always admissible - with status ``"degraded"``.

Speed
-----
About 15-18 ms per real Deribit chain on a quiet machine (12 expiries, 300 quotes; less
than half the free ``"svi"`` fit of the same chain; BENCHMARKS.md), spent mostly on the
constrained searches of the passes (the exact QPs, about 40 %), the free slice fits, the
candidate checks, the pillars and the result. Everything that runs per candidate or per
grid point is compiled, each piece next to the reference it replaces (the tests compare
them): the free fits are ``fit_svi_slice``'s search
(:func:`volcal.quality._svi_fast.fit_slice_full`; ``fit_svi_slice`` itself only when no
quasi-explicit candidate is butterfly-free), the constrained search and the candidate
loop are :mod:`volcal.calibration._svi_surface_kernels` (``_search_numpy`` and
``_first_compatible_numpy`` here are the NumPy loops they replace), the 25-delta pillars
of all slices are one compiled scan and bisection
(:func:`~volcal.calibration.smile_stats.svi_smile_stats`). A candidate's butterfly
admissibility is checked only when the search uses it (zoom centres, the Newton start
and stencil, the rows returned), cheapest first: the same candidates are chosen and
most are never checked. The dense-grid checks count the bad points of a loop instead of
stopping at the first (the same verdict; the loops compile to vector code), the QP finds
its first most violated row while it builds the rows. The passes solve each (slice,
neighbours) problem once per grid, the model vols of a (slice, smile) pair are computed
once, the forward pass stops as soon as the slices it has settled cost as much as the
widest-anchored pass (it can no longer win; its ``rmse_vol`` in ``extra["passes"]`` is
then ``None``), and the final certification is not repeated when the
:func:`volcal.check_arbitrage` points add nothing to the grid on which the pass already
accepted every slice against its final neighbour by the same check. None of this changes
a result: on 38 real chains the surfaces agree with the uncompiled loops to 3e-11 in the
parameters (the compiled ``exp`` rounds differently in the last bit), and the last round
of these changes left all 114 real surfaces the same bit for bit; the between-points
calendar check below is a deliberate change. The certificate is still the dense grid
(out to :math:`|k| = 1000`, the points of :func:`volcal.check_arbitrage` included) with
every blend and the extrapolation, for every candidate that is accepted and for the
final surface.

Cost of the constraints
-----------------------
Each slice reports, in ``fit.extra["slices"]``, its free fit (RMSE in vol points,
weighted cost) and what the constraints cost: the constrained RMSE and cost and
whether the slice had to be refitted. ``fit.extra["constraint_cost_vol"]`` is the
overall RMSE increase over the free fits.

Bad input
---------
An expiry with fewer than 3 distinct strikes cannot carry a five-parameter smile: it
is not fitted but priced by the surface's interpolation, and the result's status is
``"degraded"`` naming it (never a silently flat slice). A chain with a single fitted
expiry gives a surface too (one smile, scaled in time), with status ``"degraded"``
because no calendar condition could be imposed. No fittable expiry is a
:class:`~volcal.errors.DataError`.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.calibration.quotes import QuoteSet
from volcal.calibration.result import CalibrationResult, fit_quality, slice_fits
from volcal.errors import CalibrationWarning, DataError, ParameterError
from volcal.market.chain import expiry_label
from volcal.models.svi import (
    SVI,
    SVISmiles,
    SVISurface,
    shift_min_g,
    surface_k_grid,
)
from volcal.models.svi_fit import SVISliceInfo, fit_svi_slice, stencil_newton_step

__all__ = ["fit_svi_surface"]

_MIN_STRIKES = 3
_LEVELS = 1  # zoom levels of the constrained search
_N_ROWS = 30  # the cheapest candidates of a constrained search that are tried
_NO_PEN = np.zeros(5)
_EXTRA_PASSES_VOL = 0.05  # RMSE excess (vol points) that triggers the forward pass
_CAL_MARGIN = 1e-13  # total variance kept between neighbours on the grid (w units)
_NONE = np.empty(0)  # no neighbour, for the compiled checks (never written to)


def _qp_grid(base: FloatArray, k_quotes: FloatArray) -> FloatArray:
    """Constraint points of the inner QP (the dense certificate grid is checked after):
    the chain's :func:`_qp_base` and the slice's quotes."""
    return np.unique(np.concatenate([base, k_quotes]))


def _qp_base(theta_short: float) -> FloatArray:
    """The points of :func:`_qp_grid` that do not depend on the slice's quotes."""
    sd = math.sqrt(max(theta_short, 1e-12))
    far = np.geomspace(3.5, 1000.0, 10)
    return np.concatenate(
        [np.linspace(-3.0, 3.0, 49), sd * np.linspace(-12.0, 12.0, 41), far, -far]
    )


def _check_arbitrage_grid(theta_1: float) -> FloatArray:
    """The k grid of :func:`volcal.check_arbitrage` for a surface whose first slice has
    ATM total variance ``theta_1``."""
    from volcal.models.svi import check_k_grid as _k_grid

    return _k_grid(math.sqrt(max(theta_1, 1e-12)))


def _slice_data(
    k: FloatArray, iv: FloatArray, t: float, omega: FloatArray
) -> tuple[FloatArray, FloatArray]:
    v = iv * iv * t
    wt = omega / (2.0 * iv * t) ** 2
    return v, wt / np.sum(wt)


def _svi_from(a: float, p: float, q: float, m: float, s: float) -> SVI:
    c = p + q
    return SVI(a=a, b=c / s, rho=(p - q) / c, m=m, sigma=s)


def _seeds(
    k: FloatArray, centers: list[tuple[float, float]]
) -> tuple[FloatArray, FloatArray, float, float]:
    """Seed grid (9 vertices m over the quoted range widened by half its width, 7
    log-spaced sigma) plus the ``centers``; and the grid's spacing."""
    k_lo, k_hi = float(np.min(k)), float(np.max(k))
    span = max(k_hi - k_lo, 1e-3)
    m0 = np.linspace(k_lo - 0.5 * span, k_hi + 0.5 * span, 9)
    ls0 = np.linspace(np.log(max(1e-4, 0.01 * span)), np.log(max(1.0, 2.0 * span)), 7)
    mm, ll = np.meshgrid(m0, ls0, indexing="ij")
    m_c = np.concatenate([mm.ravel(), [c[0] for c in centers]])
    ls_c = np.concatenate([ll.ravel(), [math.log(c[1]) for c in centers]])
    return m_c, ls_c, float(m0[1] - m0[0]), float(ls0[1] - ls0[0])


def _search(
    k: FloatArray,
    v: FloatArray,
    wt: FloatArray,
    kc: FloatArray,
    wlo: FloatArray,
    whi: FloatArray,
    slope_lo: FloatArray,
    slope_hi: FloatArray,
    centers: list[tuple[float, float]],
    grid: FloatArray,
) -> tuple[FloatArray, int]:
    """Seed grid, zooms and Newton steps over (m, log sigma) with the constrained
    inner QP, compiled (:mod:`volcal.calibration._svi_surface_kernels`); rows
    ``(cost, a, p, q, m, log sigma)`` of feasible, g-admissible candidates sorted by
    cost, and the number of candidates solved. :func:`_search_numpy` is the reference."""
    from volcal.calibration._svi_surface_kernels import constrained_search

    m_c, ls_c, dm, dls = _seeds(k, centers)
    rows, n_cand = constrained_search(
        k, v, wt, kc, wlo, whi, slope_lo, slope_hi, m_c, ls_c, dm, dls, _LEVELS, grid, _N_ROWS
    )
    return rows, int(n_cand)


def _search_numpy(
    k: FloatArray,
    v: FloatArray,
    wt: FloatArray,
    kc: FloatArray,
    wlo: FloatArray,
    whi: FloatArray,
    slope_lo: FloatArray,
    slope_hi: FloatArray,
    centers: list[tuple[float, float]],
    grid: FloatArray,
) -> tuple[FloatArray, int]:
    """The NumPy loop around the compiled kernels that :func:`_search` compiles whole
    (the reference of the tests)."""
    from volcal.models._svi_kernels import admissible, inner_constrained

    m_c, ls_c, dm, dls = _seeds(k, centers)
    zoom = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    pool: list[FloatArray] = []
    n_cand = 0

    def solve(m_: FloatArray, ls_: FloatArray) -> FloatArray:
        nonlocal n_cand
        m_ = np.ascontiguousarray(m_, dtype=np.float64)
        s_ = np.exp(np.asarray(ls_, dtype=np.float64))
        a, p, q, res, ok = inner_constrained(
            k, v, wt, m_, s_, kc, wlo, whi, slope_lo, slope_hi, _NO_PEN, _NO_PEN
        )
        n_cand += m_.size
        ok = ok & np.isfinite(res)
        if ok.any():
            ok[ok] = admissible(grid, a[ok], p[ok], q[ok], m_[ok], s_[ok])
        j = np.flatnonzero(ok)
        rows = np.stack([res[j], a[j], p[j], q[j], m_[j], np.log(s_[j])], axis=1)
        pool.append(rows[np.argsort(rows[:, 0])])
        return np.where(ok, res, np.inf)

    for level in range(_LEVELS + 1):
        solve(m_c, ls_c)
        rows = pool[-1]
        if rows.shape[0] == 0:
            break
        if level == _LEVELS:
            break
        dm, dls = 0.5 * dm, 0.5 * dls
        cm, cl = rows[:3, 4], rows[:3, 5]
        mz, lz = np.broadcast_arrays(
            cm[:, None, None] + dm * zoom[None, :, None],
            cl[:, None, None] + dls * zoom[None, None, :],
        )
        m_c, ls_c = mz.ravel(), lz.ravel()
    allrows = np.concatenate(pool)
    if allrows.shape[0]:  # Newton polish of F(m, log sigma) on a shrinking 3 x 3 stencil
        c_m, c_l = allrows[np.argmin(allrows[:, 0]), 4:6]
        hm, hl = dm, dls
        st = np.array([-1.0, 0.0, 1.0])
        for _ in range(4):
            mz, lz = np.broadcast_arrays(c_m + hm * st[:, None], c_l + hl * st[None, :])
            f = solve(mz.ravel(), lz.ravel())
            if not np.all(np.isfinite(f)):
                jb = int(np.argmin(f))
                c_m, c_l = float(mz.ravel()[jb]), float(lz.ravel()[jb])
                hm, hl = 0.5 * hm, 0.5 * hl
                continue
            ff = f.reshape(3, 3)
            newton = stencil_newton_step(ff, hm, hl)
            if newton is not None:
                step = newton
            else:
                jb = int(np.argmin(f))
                step = np.array([mz.ravel()[jb] - c_m, lz.ravel()[jb] - c_l])
            c_m, c_l = c_m + step[0], c_l + step[1]
            hm = max(float(np.clip(abs(step[0]), 1e-3 * hm, hm)), 1e-9)
            hl = max(float(np.clip(abs(step[1]), 1e-3 * hl, hl)), 1e-9)
        allrows = np.concatenate(pool)
    return allrows[np.argsort(allrows[:, 0])], n_cand


def _ordered(lo: SVI, hi: SVI, grid: FloatArray) -> bool:
    """``hi`` may follow ``lo`` in time: on or above it on ``grid``, wing slopes not
    smaller, and every blend of the two butterfly-free (compiled
    :func:`~volcal.models._svi_kernels.pair_check`)."""
    from volcal.models._svi_kernels import pair_check

    if hi.b * (1 - hi.rho) < lo.b * (1 - lo.rho) - 1e-12:
        return False
    if hi.b * (1 + hi.rho) < lo.b * (1 + lo.rho) - 1e-12:
        return False
    from volcal.calibration._svi_surface_kernels import dip

    cal, low = pair_check(grid, lo.to_vector(), hi.to_vector(), 0.0)
    return bool(cal >= 0.0 and low >= -1e-10 and dip(grid, _vec(hi), _vec(lo)) >= 0.0)


def _vec(s: SVI | None) -> FloatArray:
    """Raw parameters of a neighbour, an empty array for none (the compiled checks)."""
    return _NONE if s is None else np.asarray(s.to_vector(), dtype=np.float64)


def _compatible(
    lower: SVI | None, cur: SVI, upper: SVI | None, grid: FloatArray, last: bool = False
) -> bool:
    """``cur`` is butterfly-free and fits between its neighbours (:func:`_ordered`);
    the ``last`` slice also carries the extrapolation (:func:`shift_min_g`). Compiled
    (:func:`volcal.calibration._svi_surface_kernels.compatible`);
    :func:`_compatible_numpy` is the reference."""
    from volcal.calibration._svi_surface_kernels import compatible

    return bool(compatible(_vec(lower), _vec(cur), _vec(upper), grid, last))


def _compatible_numpy(
    lower: SVI | None, cur: SVI, upper: SVI | None, grid: FloatArray, last: bool = False
) -> bool:
    """Reference of :func:`_compatible`: the compiled pieces called from NumPy."""
    from volcal.models._svi_kernels import slice_ok

    if not slice_ok(cur.to_vector(), grid, 1e-10):
        return False
    if last:
        dw = (cur.total_variance(grid), cur.dw(grid), cur.d2w(grid))
        if float(np.min(shift_min_g(grid, *dw))) < -1e-10:
            return False
    if lower is not None and not _ordered(lower, cur, grid):
        return False
    return upper is None or _ordered(cur, upper, grid)


def _certified(smiles: list[SVI], grid: FloatArray) -> bool:
    """The compiled equivalent of :meth:`SVISurface.conditions` on ``grid``."""
    n = len(smiles)
    return all(
        _compatible(smiles[j - 1] if j else None, smiles[j], None, grid, last=j == n - 1)
        for j in range(n)
    )


def _scaled(s: SVI, c: float) -> SVI:
    """Total variance scaled by ``c`` in (0, 1]: stays butterfly-free (module docs of
    :mod:`volcal.models.ssvi`), below ``s`` with smaller wings; every blend with ``s``
    is again such a scaling."""
    return SVI(a=c * s.a, b=c * s.b, rho=s.rho, m=s.m, sigma=s.sigma)


def _fit_between(
    k: FloatArray,
    v: FloatArray,
    wt: FloatArray,
    lower: SVI | None,
    upper: SVI | None,
    centers: list[tuple[float, float]],
    kc: FloatArray,
    grid: FloatArray,
    check_grid: FloatArray,
    bounds: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None,
    last: bool = False,
) -> tuple[SVI | None, int]:
    """Best admissible SVI between ``lower`` and ``upper`` (either may be None); with
    ``bounds``, only the pointwise bounds ``(wlo, whi)`` on ``kc`` and butterfly."""
    from volcal.quality._svi_fast import _Z_VERTEX, _butterfly_free

    if bounds is not None:
        rows, n_c = _search(
            k, v, wt, kc, bounds[0], bounds[1], bounds[2], bounds[3], centers, check_grid
        )
        for r in rows[:10]:
            try:
                a_, p_, q_, m_ = (float(x) for x in r[1:5])
                cand = _svi_from(a_, p_, q_, m_, math.exp(float(r[5])))
            except (ParameterError, ZeroDivisionError):
                continue
            if _butterfly_free(cand.a, cand.b, cand.rho, cand.m, cand.sigma, _Z_VERTEX):
                return cand, n_c  # cand.is_arbitrage_free(), compiled
        return None, n_c
    inf = np.full(kc.size, np.inf)
    wlo = -inf if lower is None else lower.total_variance(kc) + 2 * _CAL_MARGIN
    whi = inf if upper is None else upper.total_variance(kc) - 2 * _CAL_MARGIN
    slope_lo = (
        np.zeros(2)
        if lower is None
        else np.array([lower.b * (1 - lower.rho), lower.b * (1 + lower.rho)])
    )
    slope_hi = (
        np.full(2, np.inf)
        if upper is None
        else np.array([upper.b * (1 - upper.rho), upper.b * (1 + upper.rho)])
    )
    rows, n_c = _search(k, v, wt, kc, wlo, whi, slope_lo, slope_hi, centers, check_grid)
    from volcal.calibration._svi_surface_kernels import first_compatible

    top = np.ascontiguousarray(rows[:_N_ROWS])
    sig = np.array([math.exp(float(x)) for x in top[:, 5]])
    idx, x5 = first_compatible(top, sig, _vec(lower), _vec(upper), grid, last, _CAL_MARGIN)
    if idx < 0:
        return None, n_c
    return SVI(*(float(x) for x in x5)), n_c


def _first_compatible_numpy(
    rows: FloatArray,
    lower: SVI | None,
    upper: SVI | None,
    grid: FloatArray,
    last: bool,
) -> SVI | None:
    """Reference of the candidate loop of :func:`_fit_between` (compiled there by
    :func:`volcal.calibration._svi_surface_kernels.first_compatible`)."""
    w_lo = None if lower is None else lower.total_variance(grid) + _CAL_MARGIN
    w_hi = None if upper is None else upper.total_variance(grid) - _CAL_MARGIN
    for r in rows[:_N_ROWS]:
        _, a, p, qq, m, ls = (float(x) for x in r)
        try:
            cand = _svi_from(a, p, qq, m, math.exp(ls))
        except (ParameterError, ZeroDivisionError):
            continue
        # close the gap between the QP's grid and the dense grid by a shift of a
        from volcal.calibration._svi_surface_kernels import dip

        wc = cand.total_variance(grid)
        shift = 0.0
        if w_lo is not None:
            shift = max(shift, float(np.max(w_lo - wc)))
            shift = max(shift, _CAL_MARGIN - float(dip(grid, _vec(cand), _vec(lower))))
        if w_hi is not None and shift <= 0.0:
            dn = min(
                float(np.min(w_hi - wc)), float(dip(grid, _vec(upper), _vec(cand))) - _CAL_MARGIN
            )
            shift = min(0.0, dn)
        if shift != 0.0:
            if w_lo is not None and w_hi is not None and float(np.min(w_hi - w_lo)) < 0:
                continue
            try:
                cand = SVI(cand.a + shift, cand.b, cand.rho, cand.m, cand.sigma)
            except ParameterError:
                continue
        if _compatible_numpy(lower, cand, upper, grid, last):
            return cand
    return None


def _keep_start(
    s0: SVI | None, k: FloatArray, t: float, iv_bid: FloatArray, iv_ask: FloatArray
) -> SVI | None:
    """The warm start's smile of a slice as its free fit, when the compiled search
    found no butterfly-free quasi-explicit candidate: ``s0`` if it is butterfly-free
    (the compiled check of the candidates) and its vols are inside every quote's
    bid-ask, else ``None`` (the SLSQP fallback of ``fit_svi_slice``, as before).

    The fallback is what made a warm refresh of a whole chain 20x its median: on a
    six-quote two-day slice of the replayed 2026-01-23 snapshots it took 200-1,500 ms
    and found a smile 9.3 vol points RMSE from the mids, where the previous surface's
    smile (admissible: that surface was certified) was at 1.4 and inside every quote's
    bid-ask. A start that no longer fits inside the quotes gets the fallback."""
    from volcal.quality._svi_fast import _Z_VERTEX, _butterfly_free

    if s0 is None or not _butterfly_free(s0.a, s0.b, s0.rho, s0.m, s0.sigma, _Z_VERTEX):
        return None
    from volcal.calibration.quotes import inside_bid_ask

    with np.errstate(invalid="ignore"):
        inside = bool(np.all(inside_bid_ask(s0.implied_vol(k, t), iv_bid, iv_ask)))
    return s0 if inside else None


def _start_slices(value: Any, owner: str) -> SVISmiles | None:
    if value is None:
        return None
    if isinstance(value, CalibrationResult):
        value = value.params
    if isinstance(value, SVISmiles):
        return value
    raise ParameterError(
        f"{owner} of an svi_surface fit must be an svi or svi_surface result or an "
        f"SVISmiles, got {type(value).__name__}"
    )


def fit_svi_surface(
    chain: Any,
    *,
    weights: Any = "spread",
    delta: str = "forward",
    start: Any = None,
) -> CalibrationResult:
    """Fit an arbitrage-free SVI surface to a chain (module docs for the method).

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        A cleaned chain or prepared quotes (out-of-the-money quotes are fitted).
    weights : str or ndarray
        As for :func:`~volcal.calibration.svi.fit_svi` (``"spread"`` default,
        ``"vega"``, ``"spread_vega"``, ``"open_interest"``, ``"uniform"``, an array).
    delta : {"forward", "premium_adjusted"}
        Convention of the 25-delta pillars of each slice.
    start : CalibrationResult or SVISmiles, optional
        A previous SVI or SVI-surface fit: the free fit of each slice with the same
        expiry is a local search around it, and its :math:`(m, \\sigma)` seeds the
        constrained search too (warm recalibration). When that search has no
        butterfly-free candidate, a start smile that is butterfly-free and inside the
        bid-ask of every quote of the slice is kept as the free fit (listed in
        ``extra["start_kept"]``) instead of the much slower constrained fallback.

    Returns
    -------
    CalibrationResult
        ``model="svi_surface"``, ``params`` an :class:`~volcal.models.svi.SVISurface`;
        ``extra["slices"]`` has per slice the free fit and what the constraints cost.

    Examples
    --------
    >>> import volcal
    >>> fit = volcal.calibrate(volcal.clean(chain), "svi_surface")   # doctest: +SKIP
    >>> volcal.check_arbitrage(fit.surface()).ok                    # doctest: +SKIP
    True
    """
    from volcal.calibration.quotes import as_quotes
    from volcal.calibration.smile_stats import svi_smile_stats
    from volcal.quality._svi_fast import fit_slice_full

    t0 = time.perf_counter()
    q: QuoteSet = as_quotes(chain)
    if isinstance(weights, str) and weights == "spread_vega":
        w = q.weights("spread") * q.weights("vega")
        w = w * (w.size / np.sum(w))
    else:
        w = q.weights(weights)
    warm = _start_slices(start, "start")
    labels = [expiry_label(e) for e in q.expiries]
    notes: list[str] = []
    fittable: list[int] = []
    for i in range(q.n_slices):
        sel = q.slice_index == i
        n_k = np.unique(q.k[sel]).size
        if n_k < _MIN_STRIKES or not np.sum(w[sel]) > 0:
            notes.append(
                f"{labels[i]}: {n_k} distinct strike(s) with weight, fewer than "
                f"{_MIN_STRIKES}: not fitted, priced by the surface's interpolation"
            )
        else:
            fittable.append(i)
    if not fittable:
        raise DataError(
            f"svi_surface: no expiry has {_MIN_STRIKES} or more distinct strikes to fit"
        )
    theta_short = float(np.median(q.iv_mid[q.slice_index == fittable[0]])) ** 2 * float(
        q.t_slices[fittable[0]]
    )
    grid = surface_k_grid(theta_short)
    check_grid = np.concatenate([np.linspace(-3.0, 3.0, 61), [-8.0, -4.0, 4.0, 8.0]])

    n_fit = len(fittable)
    qp_base = _qp_base(theta_short)
    data = []
    frees: list[SVI] = []
    free_ok: list[bool] = []
    start_kept: list[str] = []
    nfev = 0
    for i in fittable:
        sel = q.slice_index == i
        t = float(q.t_slices[i])
        k, iv, om = q.k[sel], q.iv_mid[sel], w[sel]
        v, wt = _slice_data(k, iv, t, om)
        s0 = None
        if warm is not None and labels[i] in warm.expiries:
            s0 = warm.smiles[warm.expiries.index(labels[i])]
        fast = fit_slice_full(k, iv, t, om, start=s0)
        kept = None if fast is not None else _keep_start(s0, k, t, q.iv_bid[sel], q.iv_ask[sel])
        if fast is not None:  # fit_svi_slice's search, compiled (same seeds and pool)
            free, _, n_c = fast
            finfo = SVISliceInfo(0.0, n_c, "ok")
        elif kept is not None:  # warm: the start is admissible and still fits
            free, finfo = kept, SVISliceInfo(0.0, 0, "ok")
            start_kept.append(labels[i])
        else:  # no butterfly-free quasi-explicit candidate: its constrained fallback
            fitted = fit_svi_slice(k, iv, t, om, full_output=True, start=s0)
            assert isinstance(fitted, tuple)
            free, finfo = fitted
            assert isinstance(finfo, SVISliceInfo)
        nfev += finfo.n_candidates
        data.append((k, iv, t, v, wt, _qp_grid(qp_base, k)))
        frees.append(free)
        free_ok.append(finfo.status == "ok")

    def cost_of(j: int, s: SVI) -> float:
        k, _, _, v, wt, _ = data[j]
        return float(np.sum(wt * (s.total_variance(k) - v) ** 2))

    def centers_of(j: int, *others: SVI | None) -> list[tuple[float, float]]:
        out = [(frees[j].m, frees[j].sigma)]
        out += [(o.m, o.sigma) for o in others if o is not None]
        if warm is not None:
            hits = [n for n, e in enumerate(warm.expiries) if e == labels[fittable[j]]]
            if hits:
                out.append((warm.smiles[hits[0]].m, warm.smiles[hits[0]].sigma))
        return out

    # taming: beyond its own quotes a slice's wings are an extrapolation; where a
    # neighbour has quotes, keep the extrapolation on the right side of that
    # neighbour's free fit (capped by the next expiry, floored by the previous one)
    base = list(frees)
    anchors = (
        int(np.argmin([np.min(d[0]) for d in data])),
        int(np.argmax([np.max(d[0]) for d in data])),
    )
    k_min = np.array([float(np.min(d[0])) for d in data])
    k_max = np.array([float(np.max(d[0])) for d in data])
    par = np.array([[f.a, f.b, f.rho, f.m, f.sigma] for f in frees])
    for j in range(n_fit):
        k, _, _, v, wt, kc = data[j]
        out_own = (kc < k_min[j]) | (kc > k_max[j])
        # every free fit at kc (elementwise the arithmetic of SVI.total_variance)
        x = kc[None, :] - par[:, 3:4]
        w_all = par[:, 0:1] + par[:, 1:2] * (par[:, 2:3] * x + np.sqrt(x * x + par[:, 4:5] ** 2))
        there = out_own[None, :] & (kc[None, :] >= k_min[:, None]) & (kc[None, :] <= k_max[:, None])
        # later slices with quotes there: a cap; earlier ones: a floor
        whi = np.min(np.where(there[j + 1 :], w_all[j + 1 :], np.inf), axis=0, initial=np.inf)
        wlo = np.max(np.where(there[:j], w_all[:j], -np.inf), axis=0, initial=-np.inf)
        # wing slopes: the slice quoted furthest out on a side anchors that side's slope
        # (earlier slices not steeper, later ones not flatter)
        s_hi = np.full(2, np.inf)
        s_lo = np.zeros(2)
        for side, anc in enumerate(anchors):
            fa = frees[anc]
            sl = fa.b * (1 - fa.rho) if side == 0 else fa.b * (1 + fa.rho)
            if j < anc:
                s_hi[side] = sl
            elif j > anc:
                s_lo[side] = sl
        clash = wlo > whi
        wlo[clash], whi[clash] = -np.inf, np.inf
        wc = w_all[j]
        fj = frees[j]
        slopes = np.array([fj.b * (1 - fj.rho), fj.b * (1 + fj.rho)])
        if (
            np.all(wc >= wlo - 1e-14)
            and np.all(wc <= whi + 1e-14)
            and np.all(slopes <= s_hi + 1e-12)
            and np.all(slopes >= s_lo - 1e-12)
        ):
            continue
        cand, n_c = _fit_between(
            k, v, wt, None, None, centers_of(j), kc, grid, check_grid, bounds=(wlo, whi, s_lo, s_hi)
        )
        nfev += n_c
        if cand is not None:
            base[j] = cand

    # the model vols and squared vol errors of a smile at its slice's quotes: the passes
    # and the result meet the same (slice, smile) pairs again
    iv_memo: dict[tuple[int, SVI], FloatArray] = {}
    sq_memo: dict[tuple[int, SVI], float] = {}

    def vols(j: int, s: SVI) -> FloatArray:
        out = iv_memo.get((j, s))
        if out is None:
            k, _, t, _, _, _ = data[j]
            out = iv_memo[(j, s)] = s.implied_vol(k, t)
        return out

    def sq_of(j: int, s: SVI) -> float:
        sq = sq_memo.get((j, s))
        if sq is None:
            sq = sq_memo[(j, s)] = float(np.sum((vols(j, s) - data[j][1]) ** 2))
        return sq

    def sum_sq(sm: list[SVI]) -> float:
        out = 0.0
        for j in range(n_fit):
            out += sq_of(j, sm[j])
        return out

    # the passes meet the same (slice, neighbours) problems again (the three passes
    # share their first steps): each is solved once per grid
    memo: dict[tuple[Any, ...], Any] = {}

    def one_pass(anchor: int, bound: float = math.inf) -> tuple[list[SVI], list[str], float]:
        """Slices after ``anchor`` fitted forward (each above the previous), slices
        before it backward (each below the next). A pass from the first slice stops as
        soon as the squared vol errors of the slices it has settled reach ``bound``
        (returning ``inf``): it can no longer be the cheaper pass (the total is a sum
        of non-negative terms in the same order, so it cannot fall below that prefix)."""
        nonlocal nfev
        chosen: list[SVI] = list(base)
        how = ["free"] * n_fit
        settled = 0.0
        for j in [anchor, *range(anchor + 1, n_fit), *range(anchor - 1, -1, -1)]:
            if anchor == 0 and j > 0:
                settled += sq_of(j - 1, chosen[j - 1])
                if settled >= bound:
                    return chosen, how, math.inf
            lower = chosen[j - 1] if j > anchor else None
            upper = chosen[j + 1] if j < anchor else None
            is_last = j == n_fit - 1
            key = (j, lower, upper)
            if key not in memo:
                if free_ok[j] and _compatible(lower, base[j], upper, grid, is_last):
                    memo[key] = None
                else:
                    k, _, _, v, wt, kc = data[j]
                    nb = lower if lower is not None else upper
                    memo[key] = _fit_between(
                        k,
                        v,
                        wt,
                        lower,
                        upper,
                        centers_of(j, base[j], nb),
                        kc,
                        grid,
                        check_grid,
                        last=is_last,
                    )
                    nfev += memo[key][1]
            if memo[key] is None:  # the (tamed) free slice is admissible
                continue
            k, _, _, v, _, _ = data[j]
            cand = memo[key][0]
            if cand is not None:
                chosen[j], how[j] = cand, "constrained"
                continue
            how[j] = "fallback"
            th = float(np.interp(0.0, np.sort(k), v[np.argsort(k)]))
            if lower is not None:
                th_nb = float(lower.total_variance(0.0))
                cand = SVI(lower.a + max(th - th_nb, 0.0), lower.b, lower.rho, lower.m, lower.sigma)
                chosen[j] = cand if _compatible(lower, cand, None, grid, is_last) else lower
            elif upper is not None:
                th_nb = float(upper.total_variance(0.0))
                chosen[j] = _scaled(upper, min(1.0, max(th, 1e-12) / th_nb))
            else:  # the anchor itself has no admissible smile: flat at its ATM variance
                chosen[j] = SVI(a=max(th, 1e-12), b=0.0, rho=0.0, m=0.0, sigma=0.1)
        return chosen, how, sum_sq(chosen)

    widest = int(np.argmax([np.ptp(d[0]) for d in data]))
    n_q = sum(d[0].size for d in data)
    sq_free = sum_sq(frees)
    # the check_arbitrage points for the first slice as fitted freely (refined below)
    grid = np.unique(
        np.concatenate([grid, _check_arbitrage_grid(float(base[0].total_variance(0.0)))])
    )
    certified = False
    attempts = 0
    for _attempt in range(3):
        attempts += 1
        memo.clear()
        # the pass anchored at the widest slice first; the forward pass only when it
        # costs more than 5 % (+0.05 vol point) over the free slices (module docs)
        anchors_t = [widest]
        results = [one_pass(widest)]
        rm = 100.0 * math.sqrt(results[0][2] / n_q)
        if widest != 0 and rm > 1.05 * 100.0 * math.sqrt(sq_free / n_q) + _EXTRA_PASSES_VOL:
            anchors_t.append(0)
            results.append(one_pass(0, bound=results[0][2]))
        best = int(np.argmin([r[2] for r in results]))
        chosen, how, _ = results[best]
        pass_info = {
            "anchors": [labels[fittable[a]] for a in anchors_t],
            # None: the forward pass stopped once it could no longer win
            "rmse_vol": [
                100.0 * math.sqrt(r[2] / n_q) if math.isfinite(r[2]) else None for r in results
            ],
            "chosen": labels[fittable[anchors_t[best]]],
        }
        # certify on the grid check_arbitrage uses too (it scales with the first
        # slice's ATM variance, known only now); refit on the union when it fails
        theta_1 = float(chosen[0].total_variance(0.0))
        extra_grid = np.unique(np.concatenate([grid, _check_arbitrage_grid(theta_1)]))
        if extra_grid.size == grid.size and "fallback" not in how:
            # nothing new on the grid: the pass accepted every slice by the same check
            # (:func:`_compatible` against its final neighbour, on this grid) that
            # :func:`_certified` would repeat; only the fallback copies are unchecked
            certified = True
            break
        if _certified(chosen, extra_grid):
            certified = True
            break
        grid = extra_grid
    if not certified:
        notes.append("the surface could not be certified on the dense check grid")
    smiles = chosen
    slice_status = {fittable[j]: "degraded" for j in range(n_fit) if how[j] == "fallback"}
    notes += [
        f"{labels[fittable[j]]}: no admissible constrained SVI; a neighbour slice rescaled"
        for j in range(n_fit)
        if how[j] == "fallback"
    ]
    how = [h if h != "free" or smiles[j] is frees[j] else "tamed" for j, h in enumerate(how)]
    info_rows: list[dict[str, Any]] = []
    for j in range(n_fit):
        k, iv, t, v, wt, _ = data[j]
        info_rows.append(
            {
                "expiry": labels[fittable[j]],
                "t": t,
                "fit": how[j],
                "cost_free": cost_of(j, frees[j]),
                "cost": cost_of(j, smiles[j]),
                "rmse_free": float(100.0 * np.sqrt(np.mean((vols(j, frees[j]) - iv) ** 2))),
                "rmse": float(100.0 * np.sqrt(np.mean((vols(j, smiles[j]) - iv) ** 2))),
                "free_status": "ok" if free_ok[j] else "degraded",
            }
        )

    params = SVISurface(
        expiries=tuple(labels[i] for i in fittable),
        t=tuple(float(q.t_slices[i]) for i in fittable),
        forwards=tuple(float(q.forward_slices[i]) for i in fittable),
        smiles=tuple(smiles),
    )
    last = smiles[-1]
    extrap = float(
        np.min(shift_min_g(grid, last.total_variance(grid), last.dw(grid), last.d2w(grid)))
    )
    if extrap < -1e-10:
        notes.append(f"extrapolation beyond the last expiry has min g {extrap:.3g}")
    model_iv = np.empty(len(q))
    fitted_set = set(fittable)
    node_of = {i: n for n, i in enumerate(fittable)}
    for i in range(q.n_slices):  # unfitted expiries: the interpolated surface
        if i not in fitted_set:
            sel = q.slice_index == i
            model_iv[sel] = np.sqrt(
                params.total_variance(q.k[sel], float(q.t_slices[i])) / float(q.t_slices[i])
            )
        else:
            sel = q.slice_index == i
            model_iv[sel] = vols(node_of[i], smiles[node_of[i]])
    rmse, inside = fit_quality(q, model_iv)
    stats: list[Any] = []
    slice_params: list[dict[str, Any]] = []
    statuses: list[str] = []
    node_stats = svi_smile_stats(smiles, [float(q.t_slices[i]) for i in fittable], delta=delta)
    for i in range(q.n_slices):
        if i in fitted_set:
            sm = smiles[node_of[i]]
            stats.append(node_stats[node_of[i]])
            slice_params.append({n: float(getattr(sm, n)) for n in SVI.param_names})
            statuses.append(slice_status.get(i, "ok"))
        else:
            stats.append(None)
            slice_params.append({})
            statuses.append("degraded")
    slices = slice_fits(
        q,
        model_iv,
        params=slice_params,
        atm_vol=[np.nan if s is None else s.atm_vol for s in stats],
        rr25=[np.nan if s is None else s.rr25 for s in stats],
        bf25=[np.nan if s is None else s.bf25 for s in stats],
        status=statuses,
    )
    rmse_free = math.sqrt(
        sum(
            r["rmse_free"] ** 2 * int(np.sum(q.slice_index == i))
            for r, i in zip(info_rows, fittable, strict=True)
        )
        / max(1, sum(int(np.sum(q.slice_index == i)) for i in fittable))
    )
    status, message = "ok", ""
    if len(fittable) == 1:
        notes.append(
            "a single fitted expiry: no calendar condition could be imposed; the surface is "
            "that smile in time"
        )
    if notes:
        status, message = "degraded", notes[0]
        warnings.warn(
            f"svi_surface calibration degraded: {message}", CalibrationWarning, stacklevel=3
        )
    return CalibrationResult(
        model="svi_surface",
        params=params,
        start=None if warm is None else warm,
        quotes=q,
        model_iv=model_iv,
        weights=w,
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
            "weights": weights if isinstance(weights, str) else "array",
            "delta_convention": delta,
            "objective": "total variance, weights omega / (2 iv t)^2",
            "slices": info_rows,
            "rmse_free_vol": rmse_free,
            "constraint_cost_vol": rmse - rmse_free,
            "passes": {**pass_info, "attempts": attempts, "certified": certified},
            "n_constrained": sum(r["fit"] != "free" for r in info_rows),
            # warm slices whose free fit is the start's smile (no butterfly-free
            # candidate of the compiled search; see _keep_start)
            "start_kept": start_kept,
        },
    )
