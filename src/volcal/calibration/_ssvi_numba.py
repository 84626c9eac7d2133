"""Compiled search of one eSSVI slice (imported lazily; loads numba).

The search (see :mod:`volcal.calibration.ssvi`) runs in the box
:math:`(a, \\rho, s) \\in [0,1] \\times [-\\rho_{max}, \\rho_{max}] \\times [0,1]` with
:math:`\\theta = \\theta_{lo} + a(\\theta_{hi} - \\theta_{lo})` and
:math:`\\psi = \\psi_{lo}(\\rho) + s(\\psi_{hi}(\\theta,\\rho) - \\psi_{lo}(\\rho))`:
a 5 x 17 x 13 grid, then a compass (pattern) search from the best admissible grid point
that tries the 26 neighbours at the current step, moves to the best admissible one and
halves the step when none improves. "Admissible" is the calendar check against the
previous slice on the grid ``grid`` (evaluated only for a candidate that would improve
the best cost). Compiled because the NumPy version spent most of its time in call
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
def _calendar_ok(th, rho, psi, grid, wprev):  # type: ignore[no-untyped-def]
    p = rho * psi
    for i in range(grid.size):
        g = grid[i]
        w = 0.5 * (th + p * g + math.sqrt(psi * psi * g * g + 2.0 * p * th * g + th * th))
        if w < wprev[i] - 1e-13 * max(wprev[i], 1.0):
            return False
    return True


@njit(cache=True)
def _params(a, rho, s, th_lo, th_hi, u_p, d_p):  # type: ignore[no-untyped-def]
    th = th_lo + a * (th_hi - th_lo)
    one_p = 1.0 + abs(rho)
    hi = min(4.0 / one_p * (1.0 - 1e-9), math.sqrt(4.0 * th / one_p))
    lo = max(u_p / (1.0 + rho), d_p / (1.0 - rho))
    return th, lo + s * (hi - lo), hi >= lo


@njit(cache=True)
def search_slice(k, v, wt, th_lo, th_hi, u_p, d_p, has_prev, grid, wprev, rho_max):  # type: ignore[no-untyped-def]
    """Best admissible ``(theta, rho, psi, cost, n_evaluated)`` of one slice
    (``cost = inf`` when no grid point is admissible)."""
    best_c = math.inf
    best = np.zeros(3)  # (a, rho, s)
    n_eval = 0
    for ia in range(5):
        a = ia / 4.0
        for ir in range(17):
            rho = -rho_max + 2.0 * rho_max * ir / 16.0
            for i_s in range(13):
                s = i_s / 12.0
                th, psi, ok = _params(a, rho, s, th_lo, th_hi, u_p, d_p)
                if not ok:
                    continue
                n_eval += 1
                c = _cost(k, v, wt, th, rho, psi)
                if c < best_c and (not has_prev or _calendar_ok(th, rho, psi, grid, wprev)):
                    best_c = c
                    best[0], best[1], best[2] = a, rho, s
    if not math.isfinite(best_c):
        return 0.0, 0.0, 0.0, best_c, n_eval
    step = np.array([0.125, rho_max / 16.0, 1.0 / 24.0])
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
                    th, psi, ok = _params(cand[0], cand[1], cand[2], th_lo, th_hi, u_p, d_p)
                    if not ok:
                        continue
                    n_eval += 1
                    c = _cost(k, v, wt, th, cand[1], psi)
                    if c < best_c and (not has_prev or _calendar_ok(th, cand[1], psi, grid, wprev)):
                        best_c = c
                        best[:] = cand
                        improved = True
        if not improved:
            step *= 0.5
            if step[2] < 1e-9:
                break
    th, psi, _ok = _params(best[0], best[1], best[2], th_lo, th_hi, u_p, d_p)
    return th, best[1], psi, best_c, n_eval
