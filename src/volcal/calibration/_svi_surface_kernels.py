"""Compiled candidate search of the arbitrage-free SVI surface (imported lazily; numba).

:func:`constrained_search` is the outer search of a constrained slice of
:mod:`volcal.calibration.svi_surface` - the seed grid over :math:`(m, \\ln\\sigma)`, one
zoom level around the three best feasible candidates, four Newton steps on a shrinking
3 x 3 stencil - with the Python loop around the compiled kernels
(:func:`~volcal.models._svi_kernels.inner_constrained`, the exact QP in
:math:`(a, p, q)`, and :func:`~volcal.models._svi_kernels.admissible`, the butterfly
check of each candidate) moved into one compiled function. Same candidates, in the same
order, with the same arithmetic as the NumPy loop it replaces
(``svi_surface._search_numpy``, which the tests compare it with); the pool is sorted
by a stable sort (the NumPy loop's quicksort may order exactly equal costs
differently).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from volcal.models._svi_kernels import (
    _LOCAL,
    _g,
    _wd,
    blend_quartic,
    inner_constrained,
    pair_check,
    slice_ok,
)

__all__ = ["compatible", "constrained_search", "dip", "first_compatible", "svi_delta_strikes"]

_N_KEEP = 3  # centres of the zoom level
_N_NEWTON = 4


@njit(cache=True, error_model="numpy")
def _admissible_one(grid: np.ndarray, a: float, p: float, q: float, m: float, s: float) -> bool:
    """:func:`volcal.models._svi_kernels.admissible` of one candidate (the bad points
    counted, not searched for: the same verdict, in vector code)."""
    c = p + q
    if a + 2.0 * np.sqrt(p * q) > 0.0 and c > 0.0:
        b = c / s
        rho = (p - q) / c
        bad = 0
        for i in range(grid.size):
            bad += _g(grid[i], a, b, rho, m, s) < 0.0
        if bad:
            return False
        for i in range(_LOCAL.size):
            bad += _g(m + s * _LOCAL[i], a, b, rho, m, s) < 0.0
        return bad == 0
    return a > 0.0 and c == 0.0


@njit(cache=True)
def _adm(pool: np.ndarray, j: int, grid: np.ndarray) -> bool:
    """Row ``j`` is admissible (column 6: -1 not checked yet, 0 no, 1 yes)."""
    if pool[j, 6] < 0.0:
        ok = _admissible_one(
            grid, pool[j, 1], pool[j, 2], pool[j, 3], pool[j, 4], np.exp(pool[j, 5])
        )
        pool[j, 6] = 1.0 if ok else 0.0
    return pool[j, 6] > 0.0


@njit(cache=True)
def _solve(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    m_c: np.ndarray,
    ls_c: np.ndarray,
    kc: np.ndarray,
    wlo: np.ndarray,
    whi: np.ndarray,
    slope_lo: np.ndarray,
    slope_hi: np.ndarray,
    no_pen: np.ndarray,
    grid: np.ndarray,
    pool: np.ndarray,
    n: int,
    check_all: bool,
) -> tuple[np.ndarray, int]:
    """Solve the candidates and append the feasible ones cheapest first to ``pool``
    (their admissibility checked now when ``check_all``, else on first use); returns
    (cost per candidate - inf where infeasible or, when checked, not admissible - and
    the new pool size)."""
    s_c = np.exp(ls_c)
    a, p, q, res, ok = inner_constrained(
        k, v, wt, m_c, s_c, kc, wlo, whi, slope_lo, slope_hi, no_pen, no_pen
    )
    nc = m_c.size
    idx = np.empty(nc, dtype=np.int64)
    cnt = 0
    for i in range(nc):
        if ok[i] and np.isfinite(res[i]):
            idx[cnt] = i
            cnt += 1
    idx = idx[:cnt]
    idx = idx[np.argsort(res[idx], kind="mergesort")]
    f = np.full(nc, np.inf)
    for r in range(cnt):
        j = idx[r]
        pool[n + r, 0] = res[j]
        pool[n + r, 1] = a[j]
        pool[n + r, 2] = p[j]
        pool[n + r, 3] = q[j]
        pool[n + r, 4] = m_c[j]
        pool[n + r, 5] = ls_c[j]
        pool[n + r, 6] = -1.0
        if check_all:
            if _adm(pool, n + r, grid):
                f[j] = res[j]
    return f, n + cnt


@njit(cache=True)
def constrained_search(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    kc: np.ndarray,
    wlo: np.ndarray,
    whi: np.ndarray,
    slope_lo: np.ndarray,
    slope_hi: np.ndarray,
    m_c: np.ndarray,
    ls_c: np.ndarray,
    dm: float,
    dls: float,
    n_levels: int,
    grid: np.ndarray,
    n_out: int,
) -> tuple[np.ndarray, int]:
    """The ``n_out`` cheapest feasible, butterfly-admissible candidates, rows
    ``(cost, a, p, q, m, log sigma)`` sorted by cost, and the number of candidates
    solved.

    ``m_c, ls_c`` are the seeds, ``dm, dls`` the seed grid's spacing; ``n_levels`` zoom
    levels (5 x 5 at half the spacing around the ``3`` best rows of the previous
    level), then four Newton steps of :math:`F(m, \\ln\\sigma)` from the best row.
    A candidate's admissibility (:func:`~volcal.models._svi_kernels.admissible` on
    ``grid``) is checked only when the search needs it - the zoom centres, the Newton
    start and stencils, the rows returned - cheapest first, which chooses the same
    candidates as checking all of them.
    """
    zoom = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    nz = zoom.size
    cap = m_c.size + n_levels * _N_KEEP * nz * nz + _N_NEWTON * 9
    pool = np.empty((cap, 7))
    no_pen = np.zeros(5)
    n = 0
    n_cand = 0
    cm = np.empty(_N_KEEP)
    cl = np.empty(_N_KEEP)
    for level in range(n_levels + 1):
        start = n
        _, n = _solve(
            k, v, wt, m_c, ls_c, kc, wlo, whi, slope_lo, slope_hi, no_pen, grid, pool, n, False
        )
        n_cand += m_c.size
        nk = 0
        for r in range(start, n):
            if _adm(pool, r, grid):
                cm[nk] = pool[r, 4]
                cl[nk] = pool[r, 5]
                nk += 1
                if nk == _N_KEEP:
                    break
        if nk == 0 or level == n_levels:
            break
        dm, dls = 0.5 * dm, 0.5 * dls
        m_n = np.empty(nk * nz * nz)
        l_n = np.empty(nk * nz * nz)
        for c in range(nk):
            for i in range(nz):
                for j in range(nz):
                    r = (c * nz + i) * nz + j
                    m_n[r] = cm[c] + dm * zoom[i]
                    l_n[r] = cl[c] + dls * zoom[j]
        m_c, ls_c = m_n, l_n
    best = -1  # the first cheapest admissible row
    while True:
        jb = -1
        for r in range(n):
            if pool[r, 6] != 0.0 and (jb < 0 or pool[r, 0] < pool[jb, 0]):
                jb = r
        if jb < 0:
            break
        if _adm(pool, jb, grid):
            best = jb
            break
    if best >= 0:  # Newton polish of F(m, log sigma) on a shrinking 3 x 3 stencil
        c_m, c_l = pool[best, 4], pool[best, 5]
        hm, hl = dm, dls
        m9 = np.empty(9)
        l9 = np.empty(9)
        for _ in range(_N_NEWTON):
            for i in range(3):
                for j in range(3):
                    m9[i * 3 + j] = c_m + hm * (i - 1.0)
                    l9[i * 3 + j] = c_l + hl * (j - 1.0)
            f, n = _solve(
                k, v, wt, m9, l9, kc, wlo, whi, slope_lo, slope_hi, no_pen, grid, pool, n, True
            )
            n_cand += 9
            if not np.all(np.isfinite(f)):
                jm = np.argmin(f)
                c_m, c_l = m9[jm], l9[jm]
                hm, hl = 0.5 * hm, 0.5 * hl
                continue
            ff = f.reshape(3, 3)
            g0 = (ff[2, 1] - ff[0, 1]) / (2 * hm)
            g1 = (ff[1, 2] - ff[1, 0]) / (2 * hl)
            h11 = (ff[2, 1] - 2 * ff[1, 1] + ff[0, 1]) / hm**2
            h22 = (ff[1, 2] - 2 * ff[1, 1] + ff[1, 0]) / hl**2
            h12 = (ff[2, 2] - ff[2, 0] - ff[0, 2] + ff[0, 0]) / (4 * hm * hl)
            det = h11 * h22 - h12 * h12
            if h11 > 0 and det > 0:
                st0 = -(h22 * g0 - h12 * g1) / det
                st1 = -(h11 * g1 - h12 * g0) / det
                st0 = min(max(st0, -2 * hm), 2 * hm)
                st1 = min(max(st1, -2 * hl), 2 * hl)
            else:
                jm = np.argmin(f)
                st0 = m9[jm] - c_m
                st1 = l9[jm] - c_l
            c_m, c_l = c_m + st0, c_l + st1
            hm = max(min(max(abs(st0), 1e-3 * hm), hm), 1e-9)
            hl = max(min(max(abs(st1), 1e-3 * hl), hl), 1e-9)
    order = np.argsort(pool[:n, 0].copy(), kind="mergesort")
    out = np.empty((min(n_out, n), 6))
    no = 0
    for r in order:
        if no == out.shape[0]:
            break
        if _adm(pool, r, grid):
            out[no, :] = pool[r, :6]
            no += 1
    return out[:no], n_cand


@njit(cache=True)
def _ndtr1(x: float) -> float:
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@njit(cache=True)
def _svi_vol(k: float, a: float, b: float, rho: float, m: float, s: float, t: float) -> float:
    x = k - m
    w = a + b * (rho * x + np.sqrt(x * x + s * s))
    return np.sqrt(max(w, 0.0) / t)


@njit(cache=True)
def _delta1(k: float, vol: float, t: float, is_call: bool, premium: bool) -> float:
    sw = vol * np.sqrt(t)
    d1 = -k / sw + 0.5 * sw
    if not premium:
        return _ndtr1(d1) if is_call else _ndtr1(d1) - 1.0
    d2 = d1 - sw
    return np.exp(k) * _ndtr1(d2) if is_call else -np.exp(k) * _ndtr1(-d2)


@njit(cache=True)
def svi_delta_strikes(
    par: np.ndarray,
    t: np.ndarray,
    target: np.ndarray,
    is_call: np.ndarray,
    atm: np.ndarray,
    u: np.ndarray,
    premium: bool,
    n_bisect: int,
) -> np.ndarray:
    """:func:`volcal.calibration.delta_pillars.strikes_for_delta` for raw SVI smiles,
    compiled: row ``i`` is the smile ``par[i] = (a, b, rho, m, sigma)`` at ``t[i]``,
    signed target delta ``target[i]``; ``u`` is its scan grid ``linspace(-1, 1, n)``.
    The same scan (last crossing for a call, the crossing nearest the money for a put)
    and bisection, element by element the same arithmetic (the premium-adjusted delta's
    ``exp`` is the compiled one)."""
    n_rows = t.size
    out = np.full(n_rows, np.nan)
    ng = u.size
    for i in range(n_rows):
        a, b, rho, m, s = par[i, 0], par[i, 1], par[i, 2], par[i, 3], par[i, 4]
        ti = t[i]
        tg = target[i]
        half = 10.0 * max(atm[i], 1e-4) * np.sqrt(ti)
        idx = -1
        best = np.inf
        kp = half * u[0]
        dp = _delta1(kp, _svi_vol(kp, a, b, rho, m, s, ti), ti, is_call[i], premium)
        for j in range(1, ng):
            kn = half * u[j]
            dn = _delta1(kn, _svi_vol(kn, a, b, rho, m, s, ti), ti, is_call[i], premium)
            if dp >= tg and dn < tg and np.isfinite(dp + dn):
                if is_call[i]:
                    idx = j - 1
                elif abs(kp) < best:
                    best = abs(kp)
                    idx = j - 1
            kp, dp = kn, dn
        if idx < 0:
            continue
        lo = half * u[idx]
        hi = half * u[idx + 1]
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            dm = _delta1(mid, _svi_vol(mid, a, b, rho, m, s, ti), ti, is_call[i], premium)
            if dm >= tg:
                lo = mid
            else:
                hi = mid
        out[i] = 0.5 * (lo + hi)
    return out


@njit(cache=True, error_model="numpy")
def _valid(a: float, b: float, rho: float, m: float, s: float) -> bool:
    """The checks of ``SVI(...)``'s constructor (finite fields, b >= 0, |rho| < 1,
    sigma > 0, minimal total variance >= -1e-14)."""
    for x in (a, b, rho, m, s):
        if not np.isfinite(x):
            return False
    if b < 0 or not -1.0 < rho < 1.0 or s <= 0:
        return False
    return a + b * s * math.sqrt(max(1.0 - rho * rho, 0.0)) >= -1e-14


@njit(cache=True, error_model="numpy")
def _shift_ok(grid: np.ndarray, x5: np.ndarray, tol: float) -> bool:
    """:func:`volcal.models.svi.shift_min_g` of the smile ``x5`` on ``grid`` is >= -tol
    everywhere (every upward shift of the smile, the extrapolation beyond the last
    expiry, is butterfly-free)."""
    a, b, rho, m, s = x5[0], x5[1], x5[2], x5[3], x5[4]
    for i in range(grid.size):
        k = grid[i]
        xm = k - m
        w = a + b * (rho * xm + np.sqrt(xm * xm + s * s))
        if not w > 0:
            return False
        wk = b * (rho + xm / np.sqrt(xm * xm + s**2))
        wkk = b * s**2 / (xm * xm + s**2) ** 1.5
        x = 0.5 * k * wk
        y = 0.25 * wk * wk
        cst = 0.5 * wkk - wk * wk / 16.0
        s_end = 1.0 / w
        g_end = 1.0 - (2 * x + y) * s_end + x * x * s_end**2 + cst
        out = min(g_end, 1.0 + cst)
        if x != 0:
            s_star = (2 * x + y) / (2 * x * x)
            if s_star > 0 and s_star < s_end:
                out = min(out, 1.0 + cst - (2 * x + y) ** 2 / (4 * x * x))
        if out < -tol:
            return False
    return True


@njit(cache=True, error_model="numpy")
def _wv(k: float, x: np.ndarray) -> float:
    xm = k - x[3]
    return x[0] + x[1] * (x[2] * xm + np.sqrt(xm * xm + x[4] * x[4]))


@njit(cache=True, error_model="numpy")
def dip(grid: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Smallest :math:`w_p(k) - w_q(k)` *between* the points of the sorted ``grid``:
    around every grid point where the difference has a local minimum it is minimised
    over the two neighbouring intervals by golden section (60 steps); ``inf`` when
    there is no interior local minimum. Two raw SVIs can cross between grid points
    where one is much sharper than the other (a dip of 1e-6 in total variance between
    points 0.005 apart, found by the random-smile tests): the grid value alone is not
    a certificate, this is the rest of it."""
    n = grid.size
    best = np.inf
    if n < 3:
        return best
    d = np.empty(n)  # the differences first, in one loop without exits (vector code)
    for i in range(n):
        d[i] = _wv(grid[i], p) - _wv(grid[i], q)
    gr = 0.6180339887498949
    for i in range(1, n - 1):
        if d[i] <= d[i - 1] and d[i] <= d[i + 1]:
            x0, x1 = grid[i - 1], grid[i + 1]
            for _ in range(60):
                xa = x1 - gr * (x1 - x0)
                xb = x0 + gr * (x1 - x0)
                fa = _wv(xa, p) - _wv(xa, q)
                fb = _wv(xb, p) - _wv(xb, q)
                best = min(best, fa, fb)
                if fa < fb:
                    x1 = xb
                else:
                    x0 = xa
    return best


@njit(cache=True, error_model="numpy")
def _ordered(lo: np.ndarray, hi: np.ndarray, grid: np.ndarray) -> bool:
    """``hi`` may follow ``lo``: wing slopes not smaller, on or above it on ``grid`` and
    every blend butterfly-free (:func:`~volcal.models._svi_kernels.pair_check`)."""
    if hi[1] * (1 - hi[2]) < lo[1] * (1 - lo[2]) - 1e-12:
        return False
    if hi[1] * (1 + hi[2]) < lo[1] * (1 + lo[2]) - 1e-12:
        return False
    return _pair_ok(grid, lo, hi) and dip(grid, hi, lo) >= 0.0


@njit(cache=True, error_model="numpy")
def _pair_ok(grid: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> bool:
    """``cal >= 0 and low >= -1e-10`` of :func:`~volcal.models._svi_kernels.pair_check`
    ``(grid, p0, p1, 0.0)``: first one loop without exits (vector code) over the grid
    with the same arithmetic - any point with ``w1 < w0`` fails; when every Bernstein
    bound is non-negative the blends are butterfly-free; only when some bound is
    negative (or NaN) does ``pair_check`` itself run, for its refined minimum."""
    neg = 0
    refine = 0
    for i in range(grid.size):
        k = grid[i]
        lo = _wd(k, p0[0], p0[1], p0[2], p0[3], p0[4])
        hi = _wd(k, p1[0], p1[1], p1[2], p1[3], p1[4])
        neg += hi[0] - lo[0] < 0.0
        a0, _a1, _a2, _a3, _a4, _b0, b1, b2, b3, b4 = blend_quartic(k, lo, hi)
        refine += not (a0 >= 0.0 and b1 >= 0.0 and b2 >= 0.0 and b3 >= 0.0 and b4 >= 0.0)
    if neg:
        return False
    if refine == 0:
        return True
    cal, low = pair_check(grid, p0, p1, 0.0)
    return cal >= 0.0 and low >= -1e-10


@njit(cache=True, error_model="numpy")
def compatible(
    lo: np.ndarray, cur: np.ndarray, hi: np.ndarray, grid: np.ndarray, last: bool
) -> bool:
    """Raw SVI ``cur`` is butterfly-free (:func:`~volcal.models._svi_kernels.slice_ok`
    on ``grid``), fits after ``lo`` and before ``hi`` (empty arrays: no neighbour) and,
    when ``last``, carries the extrapolation (:func:`_shift_ok`). The same conditions
    as the NumPy reference, the cheap and the most often failing (wing slopes, calendar
    order, which stops at the first crossing) first."""
    if lo.size and not _ordered(lo, cur, grid):
        return False
    if hi.size and not _ordered(cur, hi, grid):
        return False
    if not slice_ok(cur, grid, 1e-10):
        return False
    return not last or _shift_ok(grid, cur, 1e-10)


@njit(cache=True, error_model="numpy")
def first_compatible(
    rows: np.ndarray,
    sig: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    grid: np.ndarray,
    last: bool,
    margin: float,
) -> tuple[int, np.ndarray]:
    """The first of the candidate ``rows`` (cost, a, p, q, m, log sigma; ``sig`` their
    sigma) that, after closing the gap between the QP's points and ``grid`` by a shift
    of ``a`` (to ``margin`` above ``lo`` / below ``hi``), is a valid SVI
    :func:`compatible` with its neighbours: ``(index, raw parameters)``, index -1 when
    none is."""
    x5 = np.empty(5)
    n_g = grid.size
    w_lo = np.empty(n_g)
    w_hi = np.empty(n_g)
    gap_ok = True
    for i in range(n_g):
        k = grid[i]
        if lo.size:
            xm = k - lo[3]
            w_lo[i] = lo[0] + lo[1] * (lo[2] * xm + np.sqrt(xm * xm + lo[4] * lo[4])) + margin
        if hi.size:
            xm = k - hi[3]
            w_hi[i] = hi[0] + hi[1] * (hi[2] * xm + np.sqrt(xm * xm + hi[4] * hi[4])) - margin
        if lo.size and hi.size and w_hi[i] - w_lo[i] < 0:
            gap_ok = False
    for r in range(rows.shape[0]):
        a, p, q, m = rows[r, 1], rows[r, 2], rows[r, 3], rows[r, 4]
        s = sig[r]
        c = p + q
        if c == 0.0:
            continue
        b = c / s
        rho = (p - q) / c
        if not _valid(a, b, rho, m, s):
            continue
        shift = 0.0
        if lo.size:
            for i in range(n_g):
                xm = grid[i] - m
                shift = max(shift, w_lo[i] - (a + b * (rho * xm + np.sqrt(xm * xm + s * s))))
        x5[0], x5[1], x5[2], x5[3], x5[4] = a, b, rho, m, s
        if lo.size:  # and between the points (dip)
            shift = max(shift, margin - dip(grid, x5, lo))
        if hi.size and shift <= 0.0:
            dn = np.inf
            for i in range(n_g):
                xm = grid[i] - m
                dn = min(dn, w_hi[i] - (a + b * (rho * xm + np.sqrt(xm * xm + s * s))))
            dn = min(dn, dip(grid, hi, x5) - margin)
            shift = min(0.0, dn)
        if shift != 0.0:
            if not gap_ok:
                continue
            a = a + shift
            if not _valid(a, b, rho, m, s):
                continue
        x5[0], x5[1], x5[2], x5[3], x5[4] = a, b, rho, m, s
        if compatible(lo, x5, hi, grid, last):
            return r, x5
    return -1, x5
