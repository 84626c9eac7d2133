"""Compiled inner problem of the quasi-explicit SVI fit (imported lazily; loads numba).

``inner(k, v, wt, m, s)`` is the same computation as the NumPy reference
``volcal.calibration.svi._inner_numpy`` (tests compare them), fused into one pass per
candidate: the nine weighted moments of the basis :math:`(1, f_+, f_-)`, the nine
active sets of the box-constrained 3-variable least squares, and the direct residual
of the winner. Measured: it removes ~80% of the slice-fit time (numpy temporaries of
shape candidates x quotes dominated).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_EPS_PQ = 1e-9


@njit(cache=True, fastmath=False)
def _solve_one(
    s00: float,
    s0p: float,
    s0m: float,
    spp: float,
    smm: float,
    h0: float,
    hp: float,
    hm: float,
    lo: float,
    hi: float,
) -> tuple[float, float, float]:
    spm = s00
    tol = 1e-12 * hi
    best = math.inf
    ba = 0.0
    bp = lo
    bq = lo
    for combo in range(9):
        ok = True
        if combo == 0:
            c00 = spp * smm - spm * spm
            c01 = s0m * spm - s0p * smm
            c02 = s0p * spm - s0m * spp
            det = s00 * c00 + s0p * c01 + s0m * c02
            if not abs(det) > 1e-13 * abs(s00 * spp * smm):
                continue
            c11 = s00 * smm - s0m * s0m
            c12 = s0p * s0m - s00 * spm
            c22 = s00 * spp - s0p * s0p
            a = (c00 * h0 + c01 * hp + c02 * hm) / det
            p = (c01 * h0 + c11 * hp + c12 * hm) / det
            q = (c02 * h0 + c12 * hp + c22 * hm) / det
            ok = lo - tol <= p <= hi + tol and lo - tol <= q <= hi + tol
        elif combo <= 2:
            p = lo if combo == 1 else hi
            d2 = s00 * smm - s0m * s0m
            if not abs(d2) > 1e-13 * abs(s00 * smm):
                continue
            r0 = h0 - s0p * p
            r1 = hm - spm * p
            a = (smm * r0 - s0m * r1) / d2
            q = (s00 * r1 - s0m * r0) / d2
            ok = lo - tol <= q <= hi + tol
        elif combo <= 4:
            q = lo if combo == 3 else hi
            d2 = s00 * spp - s0p * s0p
            if not abs(d2) > 1e-13 * abs(s00 * spp):
                continue
            r0 = h0 - s0m * q
            r1 = hp - spm * q
            a = (spp * r0 - s0p * r1) / d2
            p = (s00 * r1 - s0p * r0) / d2
            ok = lo - tol <= p <= hi + tol
        else:
            p = lo if combo in (5, 6) else hi
            q = lo if combo in (5, 7) else hi
            a = (h0 - s0p * p - s0m * q) / s00
        if not ok:
            continue
        p = min(max(p, lo), hi)
        q = min(max(q, lo), hi)
        cost = (
            s00 * a * a
            + spp * p * p
            + smm * q * q
            + 2.0 * (s0p * a * p + s0m * a * q + spm * p * q)
            - 2.0 * (h0 * a + hp * p + hm * q)
        )
        if cost < best:
            best = cost
            ba = a
            bp = p
            bq = q
    return ba, bp, bq


@njit(cache=True)
def _moments(
    k: np.ndarray, v: np.ndarray, wt: np.ndarray, m: float, s: float
) -> tuple[float, float, float, float, float, float]:
    """Weighted sums of the inner problem's basis :math:`f_\\pm = \\sqrt{y^2+1} \\pm y`,
    :math:`y = (k - m)/s`, for one candidate ``(m, s)``: ``(S f+, S f-, S f+^2, S f-^2,
    S f+ v, S f- v)`` with weights ``wt``."""
    s0p = 0.0
    s0m = 0.0
    spp = 0.0
    smm = 0.0
    hp = 0.0
    hm = 0.0
    for i in range(k.size):
        y = (k[i] - m) / s
        r = math.sqrt(y * y + 1.0)
        fp = r + y
        fm = r - y
        w = wt[i]
        s0p += w * fp
        s0m += w * fm
        spp += w * fp * fp
        smm += w * fm * fm
        hp += w * fp * v[i]
        hm += w * fm * v[i]
    return s0p, s0m, spp, smm, hp, hm


@njit(cache=True)
def _moments_keep(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    m: float,
    s: float,
    fp_out: np.ndarray,
    fm_out: np.ndarray,
) -> tuple[float, float, float, float, float, float]:
    """:func:`_moments`, keeping the basis values :math:`f_\\pm(y_i)` in ``fp_out`` /
    ``fm_out`` for the residual (the same arithmetic, each value computed once)."""
    s0p = 0.0
    s0m = 0.0
    spp = 0.0
    smm = 0.0
    hp = 0.0
    hm = 0.0
    for i in range(k.size):
        y = (k[i] - m) / s
        r = math.sqrt(y * y + 1.0)
        fp = r + y
        fm = r - y
        fp_out[i] = fp
        fm_out[i] = fm
        w = wt[i]
        s0p += w * fp
        s0m += w * fm
        spp += w * fp * fp
        smm += w * fm * fm
        hp += w * fp * v[i]
        hm += w * fm * v[i]
    return s0p, s0m, spp, smm, hp, hm


@njit(cache=True)
def inner(
    k: np.ndarray, v: np.ndarray, wt: np.ndarray, m: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, p, q, residual) per candidate (m_j, s_j); residual = sum W (w - v)^2."""
    nc = m.size
    n = k.size
    a_out = np.empty(nc)
    p_out = np.empty(nc)
    q_out = np.empty(nc)
    r_out = np.empty(nc)
    s00 = 0.0
    h0 = 0.0
    for i in range(n):
        s00 += wt[i]
        h0 += wt[i] * v[i]
    fpv = np.empty(n)
    fmv = np.empty(n)
    for j in range(nc):
        mj = m[j]
        sj = s[j]
        s0p, s0m, spp, smm, hp, hm = _moments_keep(k, v, wt, mj, sj, fpv, fmv)
        a, p, q = _solve_one(s00, s0p, s0m, spp, smm, h0, hp, hm, _EPS_PQ * sj, sj)
        res = 0.0
        for i in range(n):
            e = a + p * fpv[i] + q * fmv[i] - v[i]
            res += wt[i] * e * e
        a_out[j] = a
        p_out[j] = p
        q_out[j] = q
        r_out[j] = res
    return a_out, p_out, q_out, r_out


_LOCAL = np.array([-4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0])


@njit(cache=True, error_model="numpy")
def _g(k: float, a: float, b: float, rho: float, m: float, s: float) -> float:
    x = k - m
    r = math.sqrt(x * x + s * s)
    w = a + b * (rho * x + r)
    if not w > 0.0:
        return -math.inf
    w1 = b * (rho + x / r)
    w2 = b * s * s / (r * r * r)
    u = 1.0 - k * w1 / (2.0 * w)
    return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


@njit(cache=True)
def min_g(grid: np.ndarray, a: float, b: float, rho: float, m: float, s: float) -> float:
    """Smallest butterfly function g of one raw SVI on ``grid``: ``SVI.min_g(grid)``
    (``np.min`` of ``svi_g``) bit for bit, NaN when any point is NaN as ``np.min``,
    without the dozen temporary arrays of the NumPy expression (the warm refit of a
    live slice checks its candidate on the 2,402-point check grid)."""
    out = math.inf
    for i in range(grid.size):
        v = _g(grid[i], a, b, rho, m, s)
        if v != v:
            return v
        if v < out:
            out = v
    return out


@njit(cache=True)
def admissible(
    grid: np.ndarray, a: np.ndarray, p: np.ndarray, q: np.ndarray, m: np.ndarray, s: np.ndarray
) -> np.ndarray:
    """Positive minimal variance and g >= 0 on ``grid`` and around each vertex."""
    nc = m.size
    out = np.empty(nc, dtype=np.bool_)
    local = _LOCAL
    for j in range(nc):
        c = p[j] + q[j]
        ok = a[j] + 2.0 * math.sqrt(p[j] * q[j]) > 0.0 and c > 0.0
        if ok:
            b = c / s[j]
            rho = (p[j] - q[j]) / c
            for i in range(grid.size):
                if _g(grid[i], a[j], b, rho, m[j], s[j]) < 0.0:
                    ok = False
                    break
            if ok:
                for i in range(local.size):
                    if _g(m[j] + s[j] * local[i], a[j], b, rho, m[j], s[j]) < 0.0:
                        ok = False
                        break
        elif a[j] > 0.0 and c == 0.0:
            ok = True
        out[j] = ok
    return out


# --------------------------------------------------------------------------- constrained inner
@njit(cache=True)
def _inv3(a: np.ndarray, out: np.ndarray) -> bool:
    c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
    if not abs(det) > 0.0:
        return False
    out[0, 0] = c00 / det
    out[1, 0] = c01 / det
    out[2, 0] = c02 / det
    out[0, 1] = (a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]) / det
    out[1, 1] = (a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]) / det
    out[2, 1] = (a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]) / det
    out[0, 2] = (a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]) / det
    out[1, 2] = (a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]) / det
    out[2, 2] = (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]) / det
    return True


@njit(cache=True)
def _solve_small(mm: np.ndarray, b: np.ndarray, n: int, x: np.ndarray, a: np.ndarray) -> bool:
    """Solve the n x n (n <= 3) system mm x = b by Gaussian elimination with pivoting
    (``a``: a 3 x 4 work array of the caller)."""
    for i in range(n):
        for j in range(n):
            a[i, j] = mm[i, j]
        a[i, n] = b[i]
    for col in range(n):
        piv = col
        for i in range(col + 1, n):
            if abs(a[i, col]) > abs(a[piv, col]):
                piv = i
        if not abs(a[piv, col]) > 1e-300:
            return False
        if piv != col:
            for j in range(n + 1):
                tmp = a[col, j]
                a[col, j] = a[piv, j]
                a[piv, j] = tmp
        for i in range(col + 1, n):
            f = a[i, col] / a[col, col]
            for j in range(col, n + 1):
                a[i, j] -= f * a[col, j]
    for i in range(n - 1, -1, -1):
        acc = a[i, n]
        for j in range(i + 1, n):
            acc -= a[i, j] * x[j]
        x[i] = acc / a[i, i]
    return True


@njit(cache=True)
def _qp3(
    hinv: np.ndarray,
    g: np.ndarray,
    c: np.ndarray,
    thr: np.ndarray,
    nrow: int,
    x: np.ndarray,
    ip0: int,
    ws: np.ndarray,
    act: np.ndarray,
) -> bool:
    """Strictly convex QP ``min x'Hx/2 - h'x`` s.t. ``g[i] . x >= c[i]`` (i < nrow) in
    three variables by the dual active-set method of Goldfarb & Idnani (1983): start at
    the unconstrained minimiser, add the most violated constraint, drop constraints
    whose multiplier would turn negative. Finite; writes the solution into ``x`` (3)
    and returns whether it is feasible.

    The caller passes :math:`H^{-1}` (``hinv``), the unconstrained minimiser in ``x``
    and the first most violated row ``ip0`` (-1: none), found while it built the rows
    (:func:`inner_constrained`: the first scan costs nothing extra then); ``thr[i]`` is
    the violation tolerance ``1e-13 + 1e-11 |c[i]|`` of row ``i``. ``ws`` (17 x 4
    floats) and ``act`` (3 integers) are work arrays of the caller (reused for every
    candidate: no allocation per solve)."""
    hna = ws[3:6, 0:3]  # H^-1 n_j of the active constraints
    mm = ws[6:9, 0:3]
    aw = ws[9:12, 0:4]
    u = ws[12, 0:3]
    r = ws[13, 0:3]
    hn = ws[14, 0:3]
    z = ws[15, 0:3]
    bb = ws[16, 0:3]
    for d in range(3):
        u[d] = 0.0
        r[d] = 0.0
        hn[d] = 0.0
        z[d] = 0.0
        bb[d] = 0.0
        for e in range(3):
            hna[d, e] = 0.0
            mm[d, e] = 0.0
    nact = 0
    for outer in range(60):
        if outer == 0:
            ip = ip0
        else:
            worst = 0.0
            ip = -1
            for i in range(nrow):
                s = c[i] - (g[i, 0] * x[0] + g[i, 1] * x[1] + g[i, 2] * x[2])
                if s > thr[i] and s > worst:
                    worst = s
                    ip = i
        if ip < 0:
            return True
        up = 0.0
        done = False
        for d in range(3):
            hn[d] = hinv[d, 0] * g[ip, 0] + hinv[d, 1] * g[ip, 1] + hinv[d, 2] * g[ip, 2]
        for _inner in range(8):
            for d in range(3):
                z[d] = hn[d]
            if nact > 0:
                for i in range(nact):
                    ai = act[i]
                    for j in range(nact):
                        mm[i, j] = (
                            g[ai, 0] * hna[j, 0] + g[ai, 1] * hna[j, 1] + g[ai, 2] * hna[j, 2]
                        )
                    bb[i] = g[ai, 0] * hn[0] + g[ai, 1] * hn[1] + g[ai, 2] * hn[2]
                if not _solve_small(mm, bb, nact, r, aw):
                    return False
                for j in range(nact):
                    for d in range(3):
                        z[d] -= r[j] * hna[j, d]
            zn = z[0] * g[ip, 0] + z[1] * g[ip, 1] + z[2] * g[ip, 2]
            scale = hn[0] * g[ip, 0] + hn[1] * g[ip, 1] + hn[2] * g[ip, 2]
            t1 = math.inf
            kd = -1
            for j in range(nact):
                if r[j] > 1e-14 and u[j] / r[j] < t1:
                    t1 = u[j] / r[j]
                    kd = j
            t2 = math.inf
            if nact < 3 and zn > 1e-10 * scale:
                t2 = (c[ip] - (g[ip, 0] * x[0] + g[ip, 1] * x[1] + g[ip, 2] * x[2])) / zn
            if t1 == math.inf and t2 == math.inf:
                return False
            t = min(t1, t2)
            if t2 < math.inf:
                for d in range(3):
                    x[d] += t * z[d]
            for j in range(nact):
                u[j] -= t * r[j]
            up += t
            if t2 <= t1:
                act[nact] = ip
                u[nact] = up
                for d in range(3):
                    hna[nact, d] = hn[d]
                nact += 1
                done = True
                break
            for j in range(kd, nact - 1):  # drop the blocking constraint
                act[j] = act[j + 1]
                u[j] = u[j + 1]
                for d in range(3):
                    hna[j, d] = hna[j + 1, d]
            nact -= 1
        if not done:
            return False
    return False


@njit(cache=True)
def inner_constrained(
    k: np.ndarray,
    v: np.ndarray,
    wt: np.ndarray,
    m: np.ndarray,
    s: np.ndarray,
    kc: np.ndarray,
    wlo: np.ndarray,
    whi: np.ndarray,
    slope_lo: np.ndarray,
    slope_hi: np.ndarray,
    pen: np.ndarray,
    pc: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted LS in (a, p, q) per candidate (m_j, s_j) with the box of the free fit,
    wing slopes ``2q/s`` (left) and ``2p/s`` (right) inside ``[slope_lo, slope_hi]``
    (index 0 left, 1 right) and total variance ``wlo[l] <= w(kc[l]) <= whi[l]``
    (infinite bounds are skipped), plus the quadratic penalty
    ``sum_i pen[i] (x_i - pc[i])^2`` on ``x = (a, left slope, right slope, m, s)``
    (a prior; zeros for none). Returns ``(a, p, q, residual + penalty, feasible)``."""
    nc = m.size
    n = k.size
    nl = kc.size
    a_out = np.empty(nc)
    p_out = np.empty(nc)
    q_out = np.empty(nc)
    r_out = np.empty(nc)
    ok_out = np.zeros(nc, dtype=np.bool_)
    g = np.zeros((2 * nl + 4, 3))
    c = np.zeros(2 * nl + 4)
    hmat = np.zeros((3, 3))
    h = np.zeros(3)
    x = np.zeros(3)
    ws = np.zeros((17, 4))
    hinv = ws[0:3, 0:3]
    act = np.empty(3, dtype=np.int64)
    thr = np.empty(2 * nl + 4)
    thr_lo = np.empty(nl)
    thr_hi = np.empty(nl)
    used = np.empty(nl, dtype=np.int64)  # points with a finite bound
    n_used = 0
    for li in range(nl):
        thr_lo[li] = 1e-13 + 1e-11 * abs(wlo[li])
        thr_hi[li] = 1e-13 + 1e-11 * abs(-whi[li])
        if wlo[li] > -math.inf or whi[li] < math.inf:
            used[n_used] = li
            n_used += 1
    fpv = np.empty(n)
    fmv = np.empty(n)
    s00 = 0.0
    h0 = 0.0
    for i in range(n):
        s00 += wt[i]
        h0 += wt[i] * v[i]
    for j in range(nc):
        mj = m[j]
        sj = s[j]
        s0p, s0m, spp, smm, hp, hm = _moments_keep(k, v, wt, mj, sj, fpv, fmv)
        hmat[0, 0] = s00
        hmat[0, 1] = s0p
        hmat[0, 2] = s0m
        hmat[1, 0] = s0p
        hmat[1, 1] = spp
        hmat[1, 2] = s00
        hmat[2, 0] = s0m
        hmat[2, 1] = s00
        hmat[2, 2] = smm
        ridge = 1e-12 * (s00 + spp + smm)
        for d in range(3):
            hmat[d, d] += ridge
        h[0] = h0
        h[1] = hp
        h[2] = hm
        # prior: pen_a (a - a0)^2 + pen_L (2q/s - sL)^2 + pen_R (2p/s - sR)^2
        cq = pen[1] * 4.0 / (sj * sj)
        cp = pen[2] * 4.0 / (sj * sj)
        hmat[0, 0] += pen[0]
        h[0] += pen[0] * pc[0]
        hmat[2, 2] += cq
        h[2] += cq * 0.5 * sj * pc[1]
        hmat[1, 1] += cp
        h[1] += cp * 0.5 * sj * pc[2]
        p_lo = max(_EPS_PQ * sj, 0.5 * sj * slope_lo[1])
        p_hi = min(sj, 0.5 * sj * slope_hi[1])
        q_lo = max(_EPS_PQ * sj, 0.5 * sj * slope_lo[0])
        q_hi = min(sj, 0.5 * sj * slope_hi[0])
        a_out[j] = 0.0
        p_out[j] = 0.0
        q_out[j] = 0.0
        r_out[j] = math.inf
        if p_lo > p_hi or q_lo > q_hi:
            continue
        if not _inv3(hmat, hinv):
            continue
        for d in range(3):  # the unconstrained minimiser, the QP's start
            x[d] = hinv[d, 0] * h[0] + hinv[d, 1] * h[1] + hinv[d, 2] * h[2]
        # the rows, and the QP's first scan for the most violated one as they are built
        for row in range(4):
            g[row, 0] = 0.0
            g[row, 1] = 0.0
            g[row, 2] = 0.0
        g[0, 1] = 1.0
        c[0] = p_lo
        g[1, 1] = -1.0
        c[1] = -p_hi
        g[2, 2] = 1.0
        c[2] = q_lo
        g[3, 2] = -1.0
        c[3] = -q_hi
        worst = 0.0
        ip = -1
        for row in range(4):
            thr[row] = 1e-13 + 1e-11 * abs(c[row])
            sv = c[row] - (g[row, 0] * x[0] + g[row, 1] * x[1] + g[row, 2] * x[2])
            if sv > thr[row] and sv > worst:
                worst = sv
                ip = row
        nrow = 4
        for ii in range(n_used):
            li = used[ii]
            y = (kc[li] - mj) / sj
            rr = math.sqrt(y * y + 1.0)
            gp = rr + y
            gm = rr - y
            if wlo[li] > -math.inf:
                g[nrow, 0] = 1.0
                g[nrow, 1] = gp
                g[nrow, 2] = gm
                c[nrow] = wlo[li]
                thr[nrow] = thr_lo[li]
                sv = c[nrow] - (1.0 * x[0] + gp * x[1] + gm * x[2])
                if sv > thr[nrow] and sv > worst:
                    worst = sv
                    ip = nrow
                nrow += 1
            if whi[li] < math.inf:
                g[nrow, 0] = -1.0
                g[nrow, 1] = -gp
                g[nrow, 2] = -gm
                c[nrow] = -whi[li]
                thr[nrow] = thr_hi[li]
                sv = c[nrow] - (-1.0 * x[0] + (-gp) * x[1] + (-gm) * x[2])
                if sv > thr[nrow] and sv > worst:
                    worst = sv
                    ip = nrow
                nrow += 1
        feas = _qp3(hinv, g, c, thr, nrow, x, ip, ws, act)
        if not feas:
            continue
        a = x[0]
        p = min(max(x[1], p_lo), p_hi)
        q = min(max(x[2], q_lo), q_hi)
        res = 0.0
        for i in range(n):
            e = a + p * fpv[i] + q * fmv[i] - v[i]
            res += wt[i] * e * e
        res += pen[0] * (a - pc[0]) ** 2 + pen[1] * (2.0 * q / sj - pc[1]) ** 2
        res += pen[2] * (2.0 * p / sj - pc[2]) ** 2
        res += pen[3] * (mj - pc[3]) ** 2 + pen[4] * (sj - pc[4]) ** 2
        a_out[j] = a
        p_out[j] = p
        q_out[j] = q
        r_out[j] = res
        ok_out[j] = True
    return a_out, p_out, q_out, r_out, ok_out


@njit(cache=True, error_model="numpy")
def _wd(k: float, a: float, b: float, rho: float, m: float, s: float) -> tuple[float, float, float]:
    x = k - m
    r = math.sqrt(x * x + s * s)
    return a + b * (rho * x + r), b * (rho + x / r), b * s * s / (r * r * r)


@njit(cache=True, error_model="numpy", inline="always")
def blend_quartic(
    k: float, lo: tuple[float, float, float], hi: tuple[float, float, float]
) -> tuple[float, float, float, float, float, float, float, float, float, float]:
    """At ``k``, for the blend :math:`w = (1-\\alpha) w_0 + \\alpha w_1` of two slices
    (``lo``, ``hi`` their ``(w, w', w'')`` from :func:`_wd`): the power coefficients
    ``a0..a4`` in :math:`\\alpha` of the quartic
    :math:`P = e^2 - w'^2 w / 4 - w'^2 w^2 / 16 + w'' w^2 / 2` (:math:`e = w - k w' / 2`),
    which is :math:`w^2 g`, and its Bernstein coefficients ``b0..b4`` on [0, 1] (all
    non-negative: no butterfly arbitrage in any blend at ``k``)."""
    w0, w1 = lo[0], hi[0] - lo[0]
    k0, k1 = lo[1], hi[1] - lo[1]
    c0, c1 = lo[2], hi[2] - lo[2]
    e0, e1 = w0 - 0.5 * k * k0, w1 - 0.5 * k * k1
    q0, q1, q2 = k0 * k0, 2 * k0 * k1, k1 * k1  # w'^2
    s0, s1, s2 = w0 * w0, 2 * w0 * w1, w1 * w1  # w^2
    a0 = e0 * e0 - 0.25 * q0 * w0 - q0 * s0 / 16.0 + 0.5 * c0 * s0
    a1 = 2 * e0 * e1 - 0.25 * (q0 * w1 + q1 * w0) - (q0 * s1 + q1 * s0) / 16.0
    a1 += 0.5 * (c0 * s1 + c1 * s0)
    a2 = e1 * e1 - 0.25 * (q1 * w1 + q2 * w0) - (q0 * s2 + q1 * s1 + q2 * s0) / 16.0
    a2 += 0.5 * (c0 * s2 + c1 * s1)
    a3 = -0.25 * q2 * w1 - (q1 * s2 + q2 * s1) / 16.0 + 0.5 * c1 * s2
    a4 = -q2 * s2 / 16.0
    b1 = a0 + a1 / 4.0
    b2 = a0 + a1 / 2.0 + a2 / 6.0
    b3 = a0 + 3.0 * a1 / 4.0 + a2 / 2.0 + a3 / 4.0
    b4 = a0 + a1 + a2 + a3 + a4
    return a0, a1, a2, a3, a4, a0, b1, b2, b3, b4


@njit(cache=True, error_model="numpy")
def pair_check(
    grid: np.ndarray, p0: np.ndarray, p1: np.ndarray, cal_tol: float
) -> tuple[float, float]:
    """For raw SVI ``p0`` (earlier) and ``p1`` (later), ``(min w1 - w0, min w^2 g)`` over
    ``grid`` and all blends :math:`(1-\\alpha)w_0 + \\alpha w_1`, :math:`\\alpha \\in
    [0, 1]`. The quartic :math:`w^2 g` in :math:`\\alpha` is bounded below by its
    Bernstein coefficients; where one is negative it is minimised over 129 points in
    :math:`\\alpha` refined by golden-section search. Stops early once the calendar
    difference falls below ``-cal_tol``."""
    cal = math.inf
    low = math.inf
    for i in range(grid.size):
        k = grid[i]
        lo = _wd(k, p0[0], p0[1], p0[2], p0[3], p0[4])
        hi = _wd(k, p1[0], p1[1], p1[2], p1[3], p1[4])
        d = hi[0] - lo[0]
        if d < cal:
            cal = d
            if cal < -cal_tol:
                return cal, low
        a0, a1, a2, a3, a4, b0, b1, b2, b3, b4 = blend_quartic(k, lo, hi)
        mb = min(b0, b1, b2, b3, b4)
        if mb >= 0.0:
            if mb < low:
                low = mb
            continue
        best = math.inf
        jb = 0
        for j in range(129):
            al = j / 128.0
            pv = a0 + al * (a1 + al * (a2 + al * (a3 + al * a4)))
            if pv < best:
                best = pv
                jb = j
        x0 = max(0.0, (jb - 1) / 128.0)
        x1 = min(1.0, (jb + 1) / 128.0)
        gr = 0.6180339887498949
        for _ in range(40):
            xa = x1 - gr * (x1 - x0)
            xb = x0 + gr * (x1 - x0)
            fa = a0 + xa * (a1 + xa * (a2 + xa * (a3 + xa * a4)))
            fb = a0 + xb * (a1 + xb * (a2 + xb * (a3 + xb * a4)))
            if fa < fb:
                x1 = xb
            else:
                x0 = xa
            best = min(best, fa, fb)
        if best < low:
            low = best
    return cal, low


@njit(cache=True, error_model="numpy")
def slice_ok(x: np.ndarray, grid: np.ndarray, tol: float) -> bool:
    """Compiled :meth:`volcal.models.SVI.is_arbitrage_free` of raw SVI ``x`` (Lee's
    bound, positive minimal variance, ``g >= -tol`` on the same dense check grid) and
    ``g >= -tol`` on ``grid`` too.

    Each group of points is counted whole instead of stopping at the first bad one
    (the same verdict): a loop without an exit compiles to vector code, about three
    times faster on the surfaces' 4,000-point checks. No division by zero can occur
    (sigma > 0; ``w > 0`` is tested before dividing by it), so NumPy's error model
    changes nothing but the speed."""
    a, b, rho, m, s = x[0], x[1], x[2], x[3], x[4]
    if b * (1.0 + abs(rho)) > 2.0 + 1e-12:
        return False
    wmin = a + b * s * math.sqrt(max(1.0 - rho * rho, 0.0))
    if not wmin > 0.0:
        return False
    width = max(3.0, 12.0 * math.sqrt(max(wmin, 0.0) + b * s), abs(m) + 20.0 * s)
    bad = 0
    for i in range(2001):
        bad += _g(-width + 2.0 * width * i / 2000.0, a, b, rho, m, s) < -tol
    if bad:
        return False
    for i in range(401):
        z = math.sinh(-6.0 + 12.0 * i / 400.0)
        bad += _g(m + s * z, a, b, rho, m, s) < -tol
    if bad:
        return False
    for i in range(grid.size):
        bad += _g(grid[i], a, b, rho, m, s) < -tol
    return bad == 0
