"""Compiled search of one eSSVI slice (imported lazily; loads numba).

The search (see :mod:`volcal.calibration.ssvi`) runs in the box
:math:`(a, \\rho, s) \\in [0,1] \\times [-\\rho_{max}, \\rho_{max}] \\times [0,1]` with
:math:`\\theta = \\theta_{lo} + a(\\theta_{hi} - \\theta_{lo})` and
:math:`\\psi = \\psi_{lo}(\\rho) + s(\\psi_{hi}(\\theta,\\rho) - \\psi_{lo}(\\rho))`:
a 5 x 17 x 13 grid, then a compass (pattern) search from the best admissible grid point
that tries the 26 neighbours at the current step, moves to the best admissible one and
halves the step when none improves. "Admissible" is the exact butterfly check of the
slice (:func:`_fly_ok`, the compiled twin of :func:`volcal.models.ssvi.essvi_min_g`) and
the calendar check against the previous slice on the grid ``grid`` (local minima of the difference refined), both
evaluated only
for a candidate that would improve the best cost. Compiled because the NumPy version spent most of its time in call
overhead of small arrays (measured: 15 ms -> under 2 ms for a 12-expiry chain).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _cost(k, v, wt, th, rho, psi):  # type: ignore[no-untyped-def]
    p = rho * psi
    c = 0.0
    for i in range(k.size):
        ki = k[i]
        r = math.sqrt(psi * psi * ki * ki + 2.0 * p * th * ki + th * th)
        d = 0.5 * (th + p * ki + r) - v[i]
        c += wt[i] * d * d
    return c


@njit(cache=True)
def _pcost(k, v, wt, th, rho, psi, pen, pc):  # type: ignore[no-untyped-def]
    c = _cost(k, v, wt, th, rho, psi)
    return (
        c + pen[0] * (th - pc[0]) ** 2 + pen[1] * (rho - pc[1]) ** 2 + pen[2] * (psi - pc[2]) ** 2
    )


@njit(cache=True)
def _wdiff(x, th, rho, psi, prev):  # type: ignore[no-untyped-def]
    """w(x) of the candidate minus w(x) of the previous slice, with the tolerance."""
    p = rho * psi
    w = 0.5 * (th + p * x + math.sqrt(psi * psi * x * x + 2.0 * p * th * x + th * th))
    th0, p0, psi0 = prev[0], prev[1] * prev[2], prev[2]
    w0 = 0.5 * (th0 + p0 * x + math.sqrt(psi0 * psi0 * x * x + 2.0 * p0 * th0 * x + th0 * th0))
    return w - w0 + 1e-13 * max(w0, 1.0)


@njit(cache=True)
def _calendar_ok(th, rho, psi, grid, wprev, prev, n_golden):  # type: ignore[no-untyped-def]
    """No crossing of the previous slice ``prev = (theta, rho, psi)``: on ``grid``, and
    at every local minimum of the difference below 5% of ``w_prev``, refined by
    golden-section search between the neighbouring grid points (two slices that nearly
    touch can cross between grid points)."""
    p = rho * psi
    c = 0.5 * (math.sqrt(5.0) - 1.0)
    d_prev2 = 0.0
    d_prev = 0.0
    for i in range(grid.size):
        g = grid[i]
        w = 0.5 * (th + p * g + math.sqrt(psi * psi * g * g + 2.0 * p * th * g + th * th))
        d = w - wprev[i] + 1e-13 * max(wprev[i], 1.0)
        if d < 0.0:
            return False
        if i >= 2 and d_prev <= d_prev2 and d_prev <= d and d_prev < 0.05 * wprev[i - 1]:
            lo, hi = grid[i - 2], grid[i]
            x1, x2 = hi - c * (hi - lo), lo + c * (hi - lo)
            f1, f2 = _wdiff(x1, th, rho, psi, prev), _wdiff(x2, th, rho, psi, prev)
            for _ in range(n_golden):
                if f1 < 0.0 or f2 < 0.0:
                    return False
                if f1 < f2:
                    hi, x2, f2 = x2, x1, f1
                    x1 = hi - c * (hi - lo)
                    f1 = _wdiff(x1, th, rho, psi, prev)
                else:
                    lo, x1, f1 = x1, x2, f2
                    x2 = lo + c * (hi - lo)
                    f2 = _wdiff(x2, th, rho, psi, prev)
            if f1 < 0.0 or f2 < 0.0:
                return False
        d_prev2, d_prev = d_prev, d
    return True


@njit(cache=True)
def _fly_g(z, rho, psi, beta):  # type: ignore[no-untyped-def]
    s = math.sqrt(1.0 - rho * rho)
    u = math.sinh(z)
    q = math.sqrt(u * u + 1.0)
    x = -rho + s * u
    f = 0.5 * (1.0 + rho * x + s * q)
    f1 = 0.5 * (rho + u / q)
    f2 = 0.5 / (s * q * q * q)
    a = 1.0 - x * f1 / (2.0 * f)
    return a * a - beta * (f1 * f1 / (4.0 * f) - 0.5 * f2) - psi * psi * f1 * f1 / 16.0


@njit(cache=True)
def _fly_ok(th, rho, psi, zgrid, refine_below, n_golden):  # type: ignore[no-untyped-def]
    """Durrleman's g >= 0 everywhere (scale-free grid, local minima refined)."""
    if psi == 0.0:
        return True
    beta = psi * psi / th
    c = 0.5 * (math.sqrt(5.0) - 1.0)
    n = zgrid.size
    g_prev2 = _fly_g(zgrid[0], rho, psi, beta)
    if g_prev2 < 0.0:
        return False
    g_prev = _fly_g(zgrid[1], rho, psi, beta)
    for j in range(2, n):
        g = _fly_g(zgrid[j], rho, psi, beta)
        if g < 0.0:
            return False
        if g_prev <= g_prev2 and g_prev <= g and g_prev < refine_below:
            lo, hi = zgrid[j - 2], zgrid[j]
            z1, z2 = hi - c * (hi - lo), lo + c * (hi - lo)
            g1, g2 = _fly_g(z1, rho, psi, beta), _fly_g(z2, rho, psi, beta)
            for _ in range(n_golden):
                if g1 < 0.0 or g2 < 0.0:
                    return False
                if g1 < g2:
                    hi, z2, g2 = z2, z1, g1
                    z1 = hi - c * (hi - lo)
                    g1 = _fly_g(z1, rho, psi, beta)
                else:
                    lo, z1, g1 = z1, z2, g2
                    z2 = lo + c * (hi - lo)
                    g2 = _fly_g(z2, rho, psi, beta)
            if g1 < 0.0 or g2 < 0.0:
                return False
        g_prev2, g_prev = g_prev, g
    return True


@njit(cache=True)
def _params(a, rho, s, th_lo, th_hi, u_p, d_p, beta_tab, lee):  # type: ignore[no-untyped-def]
    th = th_lo + a * (th_hi - th_lo)
    one_p = 1.0 + abs(rho)
    i = min(int(abs(rho) * 1000.0), beta_tab.size - 1)
    beta_max = max(beta_tab[i], beta_tab[min(i + 1, beta_tab.size - 1)])
    hi = min(4.0 * lee / one_p, math.sqrt(th * beta_max))
    lo = max(u_p / (1.0 + rho), d_p / (1.0 - rho))
    return th, lo + s * (hi - lo), hi >= lo


@njit(cache=True)
def _admissible(th, rho, psi, has_prev, grid, wprev, prev, zgrid, refine_below, n_golden):  # type: ignore[no-untyped-def]
    if has_prev and not _calendar_ok(th, rho, psi, grid, wprev, prev, n_golden):
        return False
    one_p = 1.0 + abs(rho)
    if psi * psi * one_p <= 4.0 * th and psi * one_p < 4.0:
        return True  # Gatheral-Jacquier's sufficient conditions: no need to look at g
    return _fly_ok(th, rho, psi, zgrid, refine_below, n_golden)


@njit(cache=True)
def search_slice(  # type: ignore[no-untyped-def]
    k,
    v,
    wt,
    th_lo,
    th_hi,
    u_p,
    d_p,
    has_prev,
    grid,
    wprev,
    prev,
    rho_max,
    beta_tab,
    lee,
    zgrid,
    refine_below,
    n_golden,
    pen,
    pc,
    start,
):
    """Best admissible ``(theta, rho, psi, cost, n_evaluated)`` of one slice
    (``cost = inf`` when no grid point is admissible). ``pen``/``pc``: quadratic
    penalty ``sum pen_i (x_i - pc_i)^2`` on ``(theta, rho, psi)`` (a prior; zeros for
    none). ``start`` = ``(theta, rho, psi)`` of a warm start (NaN for none): when it
    is admissible (clipped into this slice's box) the grid is skipped and the pattern
    search starts there at a quarter of the cold step."""
    best_c = math.inf
    best = np.zeros(3)  # (a, rho, s)
    n_eval = 0
    warm = False
    if math.isfinite(start[0]):
        a0 = min(max((start[0] - th_lo) / (th_hi - th_lo), 0.0), 1.0)
        r0 = min(max(start[1], -rho_max), rho_max)
        _th0, lo0, ok0 = _params(a0, r0, 0.0, th_lo, th_hi, u_p, d_p, beta_tab, lee)
        _t, hi0, _o = _params(a0, r0, 1.0, th_lo, th_hi, u_p, d_p, beta_tab, lee)
        if ok0 and hi0 > lo0:
            s0 = min(max((start[2] - lo0) / (hi0 - lo0), 0.0), 1.0)
            th, psi, ok = _params(a0, r0, s0, th_lo, th_hi, u_p, d_p, beta_tab, lee)
            n_eval += 1
            if ok and _admissible(
                th, r0, psi, has_prev, grid, wprev, prev, zgrid, refine_below, n_golden
            ):
                best_c = _pcost(k, v, wt, th, r0, psi, pen, pc)
                best[0], best[1], best[2] = a0, r0, s0
                warm = True
    for ia in range(0 if warm else 5):
        a = ia / 4.0
        for ir in range(17):
            rho = -rho_max + 2.0 * rho_max * ir / 16.0
            for i_s in range(13):
                s = i_s / 12.0
                th, psi, ok = _params(a, rho, s, th_lo, th_hi, u_p, d_p, beta_tab, lee)
                if not ok:
                    continue
                n_eval += 1
                c = _pcost(k, v, wt, th, rho, psi, pen, pc)
                if c < best_c and _admissible(
                    th, rho, psi, has_prev, grid, wprev, prev, zgrid, refine_below, n_golden
                ):
                    best_c = c
                    best[0], best[1], best[2] = a, rho, s
    if not math.isfinite(best_c):
        return 0.0, 0.0, 0.0, best_c, n_eval
    step = np.array([0.125, rho_max / 16.0, 1.0 / 24.0])
    if warm:
        step *= 0.25
    lo_box = np.array([0.0, -rho_max, 0.0])
    hi_box = np.array([1.0, rho_max, 1.0])
    cand = np.zeros(3)
    for _ in range(400):
        center = best.copy()
        improved = False
        for da in (-1.0, 0.0, 1.0):
            for dr in (-1.0, 0.0, 1.0):
                for ds in (-1.0, 0.0, 1.0):
                    if da == 0.0 and dr == 0.0 and ds == 0.0:
                        continue
                    cand[0] = min(max(center[0] + da * step[0], lo_box[0]), hi_box[0])
                    cand[1] = min(max(center[1] + dr * step[1], lo_box[1]), hi_box[1])
                    cand[2] = min(max(center[2] + ds * step[2], lo_box[2]), hi_box[2])
                    th, psi, ok = _params(
                        cand[0], cand[1], cand[2], th_lo, th_hi, u_p, d_p, beta_tab, lee
                    )
                    if not ok:
                        continue
                    n_eval += 1
                    c = _pcost(k, v, wt, th, cand[1], psi, pen, pc)
                    if c < best_c and _admissible(
                        th, cand[1], psi, has_prev, grid, wprev, prev, zgrid, refine_below, n_golden
                    ):
                        best_c = c
                        best[:] = cand
                        improved = True
        if not improved:
            step *= 0.5
            if step[2] < 1e-9:
                break
    th, psi, _ok = _params(best[0], best[1], best[2], th_lo, th_hi, u_p, d_p, beta_tab, lee)
    return th, best[1], psi, best_c, n_eval
