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

import numpy as np
from numba import njit

from volcal.models._svi_kernels import _LOCAL, _g, inner_constrained

__all__ = ["constrained_search"]

_N_KEEP = 3  # centres of the zoom level
_N_NEWTON = 4


@njit(cache=True)
def _admissible_one(grid: np.ndarray, a: float, p: float, q: float, m: float, s: float) -> bool:
    """:func:`volcal.models._svi_kernels.admissible` of one candidate."""
    c = p + q
    if a + 2.0 * np.sqrt(p * q) > 0.0 and c > 0.0:
        b = c / s
        rho = (p - q) / c
        for i in range(grid.size):
            if _g(grid[i], a, b, rho, m, s) < 0.0:
                return False
        for i in range(_LOCAL.size):
            if _g(m + s * _LOCAL[i], a, b, rho, m, s) < 0.0:
                return False
        return True
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
