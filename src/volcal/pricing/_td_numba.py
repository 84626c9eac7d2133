"""Compiled kernels of the time-dependent Heston/Bates models (imported lazily; numba).

The characteristic function of :class:`volcal.models.HestonTD` / ``BatesTD`` is the
backward recursion over the intervals of :mod:`volcal.models.heston_td`. Here it is
evaluated together with its exact derivatives with respect to any chosen set of the
flat parameter vector's entries (``v0``, ``kappa[i]``, ``theta[i]``, ``xi[i]``,
``rho[i]``, the Bates jumps ``lam[i]``, ``mu_j[i]``, ``sigma_j[i]``), by forward-mode
differentiation of the recursion: each
interval maps :math:`(C, D)` at its end to :math:`(C', D')` at its start, and for a
direction :math:`p`

.. math::

    \\dot D' = \\frac{\\partial D'}{\\partial D}\\dot D + \\frac{\\partial D'}{\\partial p},
    \\qquad \\dot C' = \\dot C + \\frac{\\partial C'}{\\partial D}\\dot D
        + \\frac{\\partial C'}{\\partial p},

with :math:`\\partial/\\partial p` non-zero only on the interval that owns ``p``. Every
intermediate of the little-trap step (``b, d, q, h, g, e^{-d\\Delta}``, the ratio
:math:`\\ln(1+z)/z`) is differentiated in closed form (no division by
:math:`\\xi^2`), so the result is exact to rounding and has no step size. An
interval's ``kappa, xi, rho`` enter its step only through :math:`b` and :math:`\\xi^2`,
so two derivative chains serve all three (``theta`` is closed-form); the direction
layout and work arrays are made once per expiry, not per COS term, and the prices
without derivatives (trial steps, plans) go through an array-free recursion. In an expiry-by-expiry bootstrap only the newest
interval's parameters are directions, so the Jacobian of one step costs ~4 passes.
The jump exponent is additive over the intervals and independent of :math:`(C, D)`
(:func:`volcal.models.heston_td.td_jump_exponent`), so its derivatives are closed-form
terms :math:`\\Delta_i(T)\\,\\partial\\psi_i/\\partial p` with no propagation.

On top: the COS plan of an expiry (cumulant range, Chernoff tail bounds, number of
terms from the error bound - the rules of :mod:`volcal.pricing.cos`, with the
cumulants from Cauchy's formula on this exponent) and the cosine coefficients of
:math:`\\varphi` and :math:`\\varphi\\,\\partial\\ln\\varphi/\\partial p`; the strike
sums are the common engine's :func:`volcal.pricing._fourier_numba.cos_sums`.

Parameter packing of every kernel: ``knots, kappa, theta, xi, rho`` arrays of length
``n`` (intervals), ``v0``, ``jumps``: length ``3n``, every interval's ``lam``, then
``mu_j``, then ``sigma_j`` (zeros for Heston; the vector's tail), and ``dirs``: indices
into the flat vector of :meth:`volcal.models.BatesTD.to_vector` (``0`` = v0,
``1 + j*n + i`` = piece ``j`` of interval ``i``: ``kappa, theta, xi, rho, lam, mu_j,
sigma_j`` for ``j = 0..6``).
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numba import njit

from volcal.pricing._fourier_numba import _expm1c, _log1p_ratio, cos_sums


@njit(cache=True, error_model="numpy")
def _log1p_ratio_d(z):  # type: ignore[no-untyped-def]
    """Derivative of ln(1 + z) / z, exact for small |z|."""
    if abs(z) < 1e-3:
        return -0.5 + z * (2.0 / 3.0 - z * (0.75 - z * (0.8 - z * (5.0 / 6.0))))
    return (1.0 / (1.0 + z) - cmath.log(1.0 + z) / z) / z


@njit(cache=True, error_model="numpy")
def _jump_psi(iu, mu, sj):  # type: ignore[no-untyped-def]
    """Merton jump exponent per unit intensity and year,
    :math:`e^{iu\\mu - u^2\\sigma^2/2} - 1 - iu(e^{\\mu+\\sigma^2/2} - 1)`."""
    return _expm1c(iu * mu + 0.5 * iu * iu * sj * sj) - iu * math.expm1(mu + 0.5 * sj * sj)


@njit(cache=True, error_model="numpy", inline="always")
def _chain(db, dx2, b, d, w, bd, q, denom, h, dd, x2, ome, e, og, g, dur, d_new, m_, z, s_, rr, rd):  # type: ignore[no-untyped-def]
    """Derivatives of (D', bracket) of one interval's step along (db, d(xi^2))."""
    ddv = (b * db + 0.5 * dx2 * w) / d
    dbd = db + ddv
    dq = -q * dbd / bd
    ddenom = dbd - dx2 * dd
    dh = (dq - h * ddenom) / denom
    dg = dx2 * h + x2 * dh
    de = -e * ddv * dur
    dome = -de
    dnum = dq * ome + q * dome + dd * de * og - dd * e * dg
    dm = -(dg * e + g * de)
    d_dn = (dnum - d_new * dm) / m_
    dz = (dg * ome + g * dome) / og + z * dg / og
    ds = (dh * ome + h * dome) / og + s_ * dg / og
    dl = rd * dz * s_ + rr * ds
    return d_dn, dq * dur - 2.0 * dl


@njit(cache=True, error_model="numpy", inline="always")
def _jump_sum(iu, t, knots, jumps):  # type: ignore[no-untyped-def]
    """The jump part of the exponent at ``t`` (zero jumps: 0)."""
    n = knots.shape[0]
    # jumps, summed by parts (equal neighbours contribute exactly 0): the interval
    # ``last`` holding t over all of t, then for every earlier knot the difference of
    # its two neighbours over the knot (the knots at or after t telescope away, so
    # only the intervals up to t are evaluated, each exponent once)
    last = n - 1
    for i in range(n - 1):
        if knots[i] >= t:
            last = i
            break
    lam1, mu1, sj1 = jumps[last], jumps[n + last], jumps[2 * n + last]
    have1 = lam1 != 0.0
    psi1 = _jump_psi(iu, mu1, sj1) if have1 else 0j
    out = lam1 * t * psi1
    for i in range(last - 1, -1, -1):
        lam, mu, sj = jumps[i], jumps[n + i], jumps[2 * n + i]
        if lam == lam1 and mu == mu1 and sj == sj1:
            continue
        if not have1:
            psi1 = _jump_psi(iu, mu1, sj1)
        psi = psi1 if (mu == mu1 and sj == sj1) else _jump_psi(iu, mu, sj)
        have1 = True
        out += knots[i] * (lam * psi - lam1 * psi1)
        lam1, mu1, sj1, psi1 = lam, mu, sj, psi
    return out


@njit(cache=True, error_model="numpy")
def _dir_layout(dirs, n):  # type: ignore[no-untyped-def]
    """Interval owning each direction (v0 and the jumps: -1, never propagated), the
    highest owner, and the directions grouped by owner (``order[start[i]:start[i+1]]``)."""
    n_dir = dirs.shape[0]
    owner = np.full(n_dir, -1, dtype=np.int64)
    top = -1
    cnt = np.zeros(n + 1, dtype=np.int64)
    for j in range(n_dir):
        if dirs[j] >= 1 and dirs[j] <= 4 * n:
            owner[j] = (dirs[j] - 1) % n
            top = max(top, owner[j])
            cnt[owner[j] + 1] += 1
    start = np.cumsum(cnt)
    order = np.empty(max(start[n], 1), dtype=np.int64)
    fill = start[:n].copy()
    for j in range(n_dir):
        if owner[j] >= 0:
            order[fill[owner[j]]] = j
            fill[owner[j]] += 1
    return owner, top, start, order


@njit(cache=True, error_model="numpy")
def td_log_cf(u, t, knots, kappa, theta, xi, rho, v0, jumps, dirs, grad):  # type: ignore[no-untyped-def]
    """:math:`\\ln\\varphi(u, t)` of the piecewise model; derivatives along ``dirs``
    written into ``grad`` (length ``dirs.size``; nothing when ``dirs`` is empty)."""
    n = knots.shape[0]
    n_dir = dirs.shape[0]
    if n_dir == 0:
        return _cf(u, t, knots, kappa, theta, xi, rho, v0, jumps)
    owner, top, d_start, d_order = _dir_layout(dirs, n)
    work = np.empty((2 * n_dir + 3 * max(top + 1, 1) + 2 * n), dtype=np.complex128)
    j_done = np.zeros(n, dtype=np.bool_)
    j_km1 = np.empty(n)
    return _log_cf_dirs(
        u,
        t,
        knots,
        kappa,
        theta,
        xi,
        rho,
        v0,
        jumps,
        dirs,
        grad,
        owner,
        top,
        d_start,
        d_order,
        work,
        j_done,
        j_km1,
    )


@njit(cache=True, error_model="numpy")
def _log_cf_dirs(
    u,
    t,
    knots,
    kappa,
    theta,
    xi,
    rho,
    v0,
    jumps,
    dirs,
    grad,
    owner,
    top,
    d_start,
    d_order,
    work,
    j_done,
    j_km1,
):  # type: ignore[no-untyped-def]
    """:func:`td_log_cf` with its direction layout (:func:`_dir_layout`) and work
    arrays given (no allocation: called once per COS term)."""
    n = knots.shape[0]
    n_dir = dirs.shape[0]
    iu = 1j * u
    w = iu + u * u
    c = 0j
    dd = 0j
    n_top = max(top + 1, 1)
    # per direction: (dC, dD) just after its own interval (every later interval maps
    # them linearly, by its sensitivities sd, sc to the incoming D: applied at the end)
    dc_v = work[:n_dir]
    dd_v = work[n_dir : 2 * n_dir]
    sd = work[2 * n_dir : 2 * n_dir + n_top]
    sc = work[2 * n_dir + n_top : 2 * n_dir + 2 * n_top]
    fac = work[2 * n_dir + 2 * n_top : 2 * n_dir + 3 * n_top]
    j_em1 = work[2 * n_dir + 3 * n_top : 2 * n_dir + 3 * n_top + n]
    for j in range(n_dir):
        dc_v[j] = 0j
        dd_v[j] = 0j
    for i in range(n_top):
        sd[i] = 1.0
        sc[i] = 0j
    for i in range(n):
        j_done[i] = False
    for i in range(n - 1, -1, -1):
        start = 0.0 if i == 0 else knots[i - 1]
        end = t if i == n - 1 else min(t, knots[i])
        dur = end - start
        if dur <= 0.0:
            continue
        k = kappa[i]
        th = theta[i]
        x = xi[i]
        r = rho[i]
        x2 = x * x
        b = k - r * x * iu
        d = cmath.sqrt(b * b + x2 * w)
        bd = b + d
        q = -w / bd
        qd = q - dd
        denom = bd - x2 * dd
        h = qd / denom
        g = x2 * h
        zd = -d * dur
        e = cmath.exp(zd)
        ome = -_expm1c(zd) if abs(zd) < 1e-3 else 1.0 - e
        og = 1.0 - g
        num = q * ome + dd * e * og
        m_ = 1.0 - g * e
        d_new = num / m_
        z = g * ome / og
        rr = _log1p_ratio(z)
        s_ = h * ome / og
        ll = rr * s_
        bracket = q * dur - 2.0 * ll
        c_new = c + k * th * bracket
        if i <= top:
            rd = _log1p_ratio_d(z)
            if i < top:
                # sensitivity of (C', D') to the incoming D, shared by every direction
                # of a later interval
                ddenom = -x2 + 0j
                dh = (-1.0 - h * ddenom) / denom
                dg = x2 * dh
                dnum = e * og - dd * e * dg
                dm = -dg * e
                sd[i] = (dnum - d_new * dm) / m_
                dz = dg * ome / og + z * dg / og
                ds = dh * ome / og + s_ * dg / og
                sc[i] = -2.0 * k * th * (rd * dz * s_ + rr * ds)
            # kappa, xi and rho enter (C', D') through b and xi^2 only (kappa also
            # through the factor kappa * theta): two chains, for d/db and d/d(xi^2),
            # serve all three directions of the interval
            have_b = False
            have_x = False
            d_dn_b = dbr_b = d_dn_x = dbr_x = 0j
            for jj in range(d_start[i], d_start[i + 1]):
                j = d_order[jj]
                p = dirs[j]
                piece = (p - 1) // n
                if piece == 1:
                    # theta enters C' only, through k * theta * bracket
                    dc_v[j] = k * bracket
                    dd_v[j] = 0j
                    continue
                if not have_b:
                    have_b = True
                    d_dn_b, dbr_b = _chain(
                        1.0 + 0j,
                        0.0,
                        b,
                        d,
                        w,
                        bd,
                        q,
                        denom,
                        h,
                        dd,
                        x2,
                        ome,
                        e,
                        og,
                        g,
                        dur,
                        d_new,
                        m_,
                        z,
                        s_,
                        rr,
                        rd,
                    )
                if piece == 0:
                    dc_v[j] = th * bracket + k * th * dbr_b
                    dd_v[j] = d_dn_b
                elif piece == 3:
                    fb = -iu * x
                    dc_v[j] = k * th * fb * dbr_b
                    dd_v[j] = fb * d_dn_b
                else:
                    if not have_x:
                        have_x = True
                        d_dn_x, dbr_x = _chain(
                            0j,
                            1.0,
                            b,
                            d,
                            w,
                            bd,
                            q,
                            denom,
                            h,
                            dd,
                            x2,
                            ome,
                            e,
                            og,
                            g,
                            dur,
                            d_new,
                            m_,
                            z,
                            s_,
                            rr,
                            rd,
                        )
                    fb = -iu * r
                    fx = 2.0 * x
                    dc_v[j] = k * th * (fb * dbr_b + fx * dbr_x)
                    dd_v[j] = fb * d_dn_b + fx * d_dn_x
        c = c_new
        dd = d_new
    # through the earlier intervals 0..o-1 a direction of interval o maps as
    # dD -> A_o dD, dC -> dC + B_o dD with A_o = prod_{i<o} sd_i and
    # B_o = sc_{o-1} + sd_{o-1} B_{o-1}; the gradient of C + D v0 is dC + (B_o + v0 A_o) dD
    a_o = 1.0 + 0j
    b_o = 0j
    for o in range(top + 1):
        if o > 0:
            b_o = sc[o - 1] + sd[o - 1] * b_o
            a_o = a_o * sd[o - 1]
        fac[o] = b_o + v0 * a_o
    out = c + dd * v0
    out += _jump_sum(iu, t, knots, jumps)
    for j in range(n_dir):
        p = dirs[j]
        if p == 0:
            grad[j] = dd
        elif p <= 4 * n:
            grad[j] = dc_v[j] + dd_v[j] * fac[owner[j]]
        else:
            piece = (p - 1 - 4 * n) // n
            i = (p - 1) % n
            start = 0.0 if i == 0 else knots[i - 1]
            end = t if i == n - 1 else min(t, knots[i])
            dur = end - start
            if dur <= 0.0:
                grad[j] = 0j
                continue
            lam, mu, sj = jumps[i], jumps[n + i], jumps[2 * n + i]
            if not j_done[i]:
                # shared by the interval's three jump directions
                j_done[i] = True
                j_em1[i] = _expm1c(iu * mu + 0.5 * iu * iu * sj * sj)
                j_km1[i] = math.expm1(mu + 0.5 * sj * sj)
            em1 = j_em1[i]
            ej = em1 + 1.0
            kb = j_km1[i] + 1.0
            if piece == 0:
                grad[j] = dur * (em1 - iu * j_km1[i])
                continue
            if piece == 1:
                grad[j] = lam * dur * iu * (ej - kb)
            else:
                grad[j] = lam * dur * sj * (iu * iu * ej - iu * kb)
    return out


@njit(cache=True, error_model="numpy")
def _cf(u, t, knots, kappa, theta, xi, rho, v0, jumps):  # type: ignore[no-untyped-def]
    """:math:`\\ln\\varphi(u, t)` without derivatives (the recursion of
    :func:`_log_cf_dirs` alone: no arrays, for the plans and the trial prices)."""
    n = knots.shape[0]
    iu = 1j * u
    w = iu + u * u
    c = 0j
    dd = 0j
    for i in range(n - 1, -1, -1):
        start = 0.0 if i == 0 else knots[i - 1]
        end = t if i == n - 1 else min(t, knots[i])
        dur = end - start
        if dur <= 0.0:
            continue
        k = kappa[i]
        x = xi[i]
        x2 = x * x
        b = k - rho[i] * x * iu
        d = cmath.sqrt(b * b + x2 * w)
        bd = b + d
        q = -w / bd
        h = (q - dd) / (bd - x2 * dd)
        g = x2 * h
        zd = -d * dur
        e = cmath.exp(zd)
        ome = -_expm1c(zd) if abs(zd) < 1e-3 else 1.0 - e
        og = 1.0 - g
        d_new = (q * ome + dd * e * og) / (1.0 - g * e)
        z = g * ome / og
        c += k * theta[i] * (q * dur - 2.0 * _log1p_ratio(z) * (h * ome / og))
        dd = d_new
    return c + dd * v0 + _jump_sum(iu, t, knots, jumps)


@njit(cache=True, error_model="numpy")
def td_cumulants(t, knots, kappa, theta, xi, rho, v0, jumps):  # type: ignore[no-untyped-def]
    """``(c1, c2, c4)`` by Cauchy's formula on the circle |s| = r (r halved while the
    variance is unstable), as :meth:`volcal.models._base.Model._numeric_cumulants`."""
    r = 0.2
    n = 32
    prev2 = -1.0
    c1 = c2 = c4 = 0.0
    for _ in range(13):
        a1 = 0j
        a2 = 0j
        a4 = 0j
        for j in range(n):
            ang = 2.0 * math.pi * j / n
            s = r * cmath.exp(1j * ang)
            kv = _cf(-1j * s, t, knots, kappa, theta, xi, rho, v0, jumps)
            a1 += kv * cmath.exp(-1j * ang)
            a2 += kv * cmath.exp(-2j * ang)
            a4 += kv * cmath.exp(-4j * ang)
        c1 = a1.real / n / r
        c2 = 2.0 * a2.real / n / r**2
        c4 = 24.0 * a4.real / n / r**4
        if prev2 > 0.0 and abs(c2 - prev2) <= 1e-8 * abs(c2):
            break
        prev2 = c2
        r *= 0.5
    if not math.isfinite(c4):
        c4 = 0.0
    return c1, max(c2, 0.0), max(c4, 0.0)


@njit(cache=True, error_model="numpy")
def _td_chernoff(t, knots, kappa, theta, xi, rho, v0, jumps, log_tol, sign):  # type: ignore[no-untyped-def]
    """One tail's Chernoff bound (the scan of ``_fourier_numba._chernoff``)."""
    best = math.inf
    s = 0.02
    k_prev = 0.0
    slope_prev = 0.0
    s_prev = 0.0
    n_ok = 0
    rises = 0
    while s < 2000.0:
        ss = sign * s
        kv = _cf(-1j * ss, t, knots, kappa, theta, xi, rho, v0, jumps)
        kr = kv.real
        if not (math.isfinite(kr) and math.isfinite(kv.imag)):
            break
        if abs(kv.imag) > 1e-9 * (1.0 + abs(kr)):
            break
        if n_ok >= 1:
            slope = (kr - k_prev) / (ss - s_prev)
            if n_ok >= 2 and sign * (slope - slope_prev) < -1e-9 * (1.0 + abs(slope)):
                break
            slope_prev = slope
        bound = (kr - log_tol) / s
        if bound < best:
            best = bound
            rises = 0
        else:
            rises += 1
            if rises >= 2:
                break
        k_prev, s_prev = kr, ss
        n_ok += 1
        s *= 1.25
    return sign * best


@njit(cache=True, error_model="numpy")
def td_plan(
    t_u,
    k,
    t_index,
    knots,
    kappa,
    theta,
    xi,
    rho,
    v0,
    jumps,
    l_cum,
    min_hw,
    tail_tol,
    phi_tol,
    n_min,
    n_max,
):  # type: ignore[no-untyped-def]
    """Range ``[a, b]``, terms ``n`` (-1: more than ``n_max``) and tail bound per expiry,
    by the rules of :func:`volcal.pricing._fourier_numba.plan_expiry`."""
    n_s = t_u.size
    kmin = np.full(n_s, np.inf)
    kmax = np.full(n_s, -np.inf)
    for i in range(k.size):
        s = t_index[i]
        kmin[s] = min(kmin[s], k[i])
        kmax[s] = max(kmax[s], k[i])
    a = np.empty(n_s)
    b = np.empty(n_s)
    n = np.empty(n_s, dtype=np.int64)
    bound = np.empty(n_s)
    for s in range(n_s):
        t = t_u[s]
        c1, c2, c4 = td_cumulants(t, knots, kappa, theta, xi, rho, v0, jumps)
        half = max(l_cum * math.sqrt(c2 + math.sqrt(c4)), min_hw)
        log_tol = math.log(tail_tol) - max(kmax[s], 0.0)
        b_t = _td_chernoff(t, knots, kappa, theta, xi, rho, v0, jumps, log_tol, 1.0)
        a_t = _td_chernoff(t, knots, kappa, theta, xi, rho, v0, jumps, log_tol, -1.0)
        aa = min(c1 - half, a_t, kmin[s] - 0.25 * half)
        bb = max(c1 + half, b_t, kmax[s] + 0.25 * half)
        a[s] = aa
        b[s] = bb
        scale = max(1.0, math.exp(kmax[s])) * 2.0 / math.pi
        j = 0
        while True:
            nn = 8 * math.ceil(n_min * 2.0 ** (0.25 * j) / 8.0)
            u_last = (nn - 1) * math.pi / (bb - aa)
            lc = _cf(u_last + 0j, t, knots, kappa, theta, xi, rho, v0, jumps)
            tail = abs(cmath.exp(lc)) * scale / u_last
            if tail <= phi_tol:
                n[s] = nn
                bound[s] = tail
                break
            if nn >= n_max or not math.isfinite(tail):
                n[s] = -1
                bound[s] = tail
                break
            j += 1
    return a, b, n, bound


@njit(cache=True, error_model="numpy")
def td_units(t_u, k, t_index, a, b, n, knots, kappa, theta, xi, rho, v0, jumps, dirs):  # type: ignore[no-untyped-def]
    """Out-of-the-money prices per unit forward (row 0: puts for k < 0, calls for
    k >= 0, from put coefficients and parity) and their derivatives along ``dirs``
    (rows 1..), by COS on the plan ``(a, b, n)``.

    Expiry by expiry: an expiry's coefficients and strike sums carry only the
    directions it depends on (``v0``, the jumps and the intervals that start before
    it), so a joint Jacobian costs about half the rows of a full grid.
    """
    n_s = t_u.size
    n_dir = dirs.size
    n_int = knots.size
    out = np.zeros((n_dir + 1, k.size))
    count = np.zeros(n_s, dtype=np.int64)
    for i in range(k.size):
        count[t_index[i]] += 1
    for s in range(n_s):
        if count[s] == 0:
            continue
        t = t_u[s]
        sel = np.empty(n_dir, dtype=np.int64)
        n_sel = 0
        for j in range(n_dir):
            p = dirs[j]
            if 1 <= p <= 7 * n_int:
                owner = (p - 1) % n_int
                if owner > 0 and knots[owner - 1] >= t:
                    continue
            sel[n_sel] = j
            n_sel += 1
        sub = np.empty(n_sel, dtype=np.int64)
        for j in range(n_sel):
            sub[j] = dirs[sel[j]]
        grad = np.empty(n_sel, dtype=np.complex128)
        coef = np.zeros((n_sel + 1, 1, n[s]))
        du = math.pi / (b[s] - a[s])
        # the directions' layout and work arrays, once per expiry
        owner, top, d_start, d_order = _dir_layout(sub, n_int)
        work = np.empty(2 * n_sel + 3 * max(top + 1, 1) + 2 * n_int, dtype=np.complex128)
        j_done = np.zeros(n_int, dtype=np.bool_)
        j_km1 = np.empty(n_int)
        for j in range(n[s]):
            u = du * j
            if n_sel == 0:
                lp = _cf(u + 0j, t, knots, kappa, theta, xi, rho, v0, jumps)
            else:
                lp = _log_cf_dirs(
                    u + 0j,
                    t,
                    knots,
                    kappa,
                    theta,
                    xi,
                    rho,
                    v0,
                    jumps,
                    sub,
                    grad,
                    owner,
                    top,
                    d_start,
                    d_order,
                    work,
                    j_done,
                    j_km1,
                )
            hh = cmath.exp(lp - 1j * u * a[s])
            coef[0, 0, j] = hh.real
            for r in range(n_sel):
                coef[r + 1, 0, j] = (hh * grad[r]).real
        idx = np.empty(count[s], dtype=np.int64)
        m = 0
        for i in range(k.size):
            if t_index[i] == s:
                idx[m] = i
                m += 1
        ks = np.empty(m)
        for i in range(m):
            ks[i] = k[idx[i]]
        o = cos_sums(
            coef,
            n[s : s + 1],
            a[s : s + 1],
            b[s : s + 1],
            ks,
            np.zeros(m, dtype=np.int64),
            np.zeros(m, dtype=np.bool_),
        )
        for i in range(m):
            out[0, idx[i]] = o[0, i] + (1.0 - math.exp(ks[i]) if ks[i] >= 0.0 else 0.0)
            for r in range(n_sel):
                out[sel[r] + 1, idx[i]] = o[r + 1, i]
    return out
