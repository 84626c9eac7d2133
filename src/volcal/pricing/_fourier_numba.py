"""Compiled kernels of the Fourier engine (imported lazily; loads numba).

One characteristic-function routine per model family, selected by an integer id, and
the per-expiry steps of :mod:`volcal.pricing.fourier`: truncation range (cumulants and
Chernoff tail bounds), number of terms from the error bound, cosine coefficients of the
characteristic function (and of its parameter derivatives), strike sums by a rotation
recurrence (no strikes x terms matrix), and Lewis' shifted-contour integral for deep
out-of-the-money wings. Every function is ``cache=True``: compiled once per install.

Model ids and parameter order (``param_names`` of the classes):

====  ========  ==============================================================
id    model     parameters
====  ========  ==============================================================
0     Black     sigma
1     Merton    sigma, lam, mu_j, sigma_j
2     Kou       sigma, lam, p, eta1, eta2
3     VG        sigma, nu, theta_vg
4     Heston    v0, kappa, theta, xi, rho
5     Bates     v0, kappa, theta, xi, rho, lam, mu_j, sigma_j
6     SVCJ      v0, kappa, theta, xi, rho, lam, mu_s, sigma_s, mu_v, rho_j
====  ========  ==============================================================
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numba import njit

BLACK, MERTON, KOU, VG, HESTON, BATES, SVCJ = 0, 1, 2, 3, 4, 5, 6
_BLOCK = 16  # rotation recurrence re-seeded with an exact exponential every 16 terms


@njit(cache=True, inline="always")
def _rcp(z):  # type: ignore[no-untyped-def]
    """:math:`1/z` as :math:`\\bar z/|z|^2` (one real division; the exponents' moduli
    stay far inside the range where :math:`|z|^2` neither overflows nor underflows)."""
    x, y = z.real, z.imag
    r = 1.0 / (x * x + y * y)
    return complex(x * r, -y * r)


@njit(cache=True, inline="always")
def _sqrtc(z):  # type: ignore[no-untyped-def]
    """Principal complex square root (the branch of ``cmath.sqrt``) from real square
    roots, without the special-value handling of the library function: the arguments
    here are finite and far from overflow."""
    x, y = z.real, z.imag
    m = math.sqrt(x * x + y * y)
    if x >= 0.0:
        s = math.sqrt(0.5 * (m + x))
        return complex(s, 0.5 * y / s) if s > 0.0 else complex(0.0, y)
    s = math.sqrt(0.5 * (m - x))
    return complex(0.5 * abs(y) / s, math.copysign(s, y))


@njit(cache=True, inline="always")
def _logc(z):  # type: ignore[no-untyped-def]
    """Principal complex logarithm of a finite nonzero ``z`` (as ``cmath.log``)."""
    x, y = z.real, z.imag
    return complex(0.5 * math.log(x * x + y * y), math.atan2(y, x))


@njit(cache=True, inline="always")
def _expc(z):  # type: ignore[no-untyped-def]
    """Complex exponential of a finite ``z`` (as ``cmath.exp``)."""
    r = math.exp(z.real)
    return complex(r * math.cos(z.imag), r * math.sin(z.imag))


@njit(cache=True, inline="always")
def _expm1c(z):  # type: ignore[no-untyped-def]
    """Complex expm1, exact for small |z|."""
    if z.real * z.real + z.imag * z.imag < 1e-6:  # |z| < 1e-3 without a hypot
        return z * (1.0 + z * (0.5 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z / 120.0))))
    return cmath.exp(z) - 1.0


@njit(cache=True, inline="always")
def _log1p_ratio(z):  # type: ignore[no-untyped-def]
    """ln(1 + z) / z, exact for small |z|."""
    if z.real * z.real + z.imag * z.imag < 1e-6:  # |z| < 1e-3 without a hypot
        return 1.0 - z * (0.5 - z * (1.0 / 3.0 - z * (0.25 - z * (0.2 - z / 6.0))))
    return _logc(1.0 + z) * _rcp(z)


@njit(cache=True, inline="always")
def _heston_parts(u, t, kappa, theta, xi, rho):  # type: ignore[no-untyped-def]
    """Little-trap Heston exponent: returns (A, B, d, g, q, e, ome, lg, b, w, bd).

    Reciprocals (:func:`_rcp`) replace the complex divisions, and :math:`1 - e^{-dt}` reuses
    :math:`e^{-dt}` unless :math:`|dt|` is small (then its series)."""
    iu = 1j * u
    b = kappa - rho * xi * iu
    w = iu + u * u
    d = _sqrtc(b * b + xi * xi * w)
    bd = b + d
    r_bd = _rcp(bd)
    q = -w * r_bd
    g = q * (xi * xi) * r_bd
    mdt = -d * t
    e = _expc(mdt)
    ome = -_expm1c(mdt) if mdt.real * mdt.real + mdt.imag * mdt.imag < 1e-6 else 1.0 - e
    one_m_g = 1.0 - g
    r_omg = _rcp(one_m_g)
    big_b = q * ome * _rcp(1.0 - g * e)
    z = g * ome * r_omg
    r = _log1p_ratio(z)
    log_over_xi2 = r * (q * r_bd) * ome * r_omg
    big_a = kappa * theta * (q * t - 2.0 * log_over_xi2)
    return big_a, big_b, d, g, q, e, ome, r * z, b, w, bd


@njit(cache=True)
def log_cf(mid, p, u, t):  # type: ignore[no-untyped-def]
    """:math:`\\ln\\varphi(u, t)` of model ``mid`` with parameters ``p`` (complex ``u``)."""
    iu = 1j * u
    if mid == BLACK:
        return -0.5 * p[0] * p[0] * t * (iu + u * u)
    if mid == MERTON:
        s2, lam, mu, j2 = p[0] * p[0], p[1], p[2], p[3] * p[3]
        kbar = math.expm1(mu + 0.5 * j2)
        return t * (
            -0.5 * s2 * (iu + u * u) + lam * (_expm1c(iu * mu + 0.5 * iu * iu * j2) - iu * kbar)
        )
    if mid == KOU:
        s2, lam, pp, e1, e2 = p[0] * p[0], p[1], p[2], p[3], p[4]
        zeta = pp * e1 / (e1 - 1.0) + (1.0 - pp) * e2 / (e2 + 1.0) - 1.0
        jump = pp * iu / (e1 - iu) - (1.0 - pp) * iu / (e2 + iu)
        return t * (-0.5 * s2 * (iu + u * u) - iu * lam * zeta + lam * jump)
    if mid == VG:
        s2, nu, th = p[0] * p[0], p[1], p[2]
        omega = math.log1p(-th * nu - 0.5 * s2 * nu) / nu
        z = -iu * th * nu + 0.5 * s2 * nu * u * u
        return t * (iu * omega - cmath.log(1.0 + z) / nu)
    v0, kappa, theta, xi, rho = p[0], p[1], p[2], p[3], p[4]
    big_a, big_b, d, g, q, _e, ome, lg, _b, _w, _bd = _heston_parts(u, t, kappa, theta, xi, rho)
    out = big_a + big_b * v0
    if mid == BATES:
        lam, mu, j2 = p[5], p[6], p[7] * p[7]
        out += lam * t * (_expm1c(iu * mu + 0.5 * iu * iu * j2) - iu * math.expm1(mu + 0.5 * j2))
        return out
    if mid == SVCJ:
        lam, mu_s, sig_s, mv, rj = p[5], p[6], p[7], p[8], p[9]
        one_m_ma = 1.0 - mv * rj * iu
        alpha = one_m_ma - mv * q
        beta = mv * q - g * one_m_ma
        z2 = -beta * ome / (one_m_ma * (1.0 - g))
        if abs(z2) < 1e-3:
            l_over_beta = _log1p_ratio(z2) * (-ome) / (one_m_ma * (1.0 - g))
        else:
            l_safe = cmath.log(1.0 - mv * (rj * iu + big_b)) - cmath.log(one_m_ma) + lg
            l_over_beta = l_safe / beta
        integral = t / alpha + mv * q * (1.0 - g) * l_over_beta / (alpha * d)
        s2 = sig_s * sig_s
        mubar = math.exp(mu_s + 0.5 * s2) / (1.0 - rj * mv) - 1.0
        out += lam * (cmath.exp(iu * mu_s + 0.5 * iu * iu * s2) * integral - t - iu * mubar * t)
    return out


@njit(cache=True)
def log_cf_grad(mid, p, u, t, hfd, grad):  # type: ignore[no-untyped-def]
    """:math:`\\ln\\varphi` and its parameter gradient (written into ``grad``).

    Analytic for Heston and Bates (Cui et al. 2017 chain rule on the little-trap form),
    forward differences with steps ``hfd`` for every other model.
    """
    if mid == HESTON or mid == BATES:
        v0, kappa, theta, rho = p[0], p[1], p[2], p[4]
        xi = max(p[3], 1e-8)
        big_a, big_b, d, g, q, e, ome, lg, b, w, bd = _heston_parts(u, t, kappa, theta, xi, rho)
        iu = 1j * u
        one_m_ge = 1.0 - g * e
        one_m_g = 1.0 - g
        # reciprocals once per term: the three derivatives below multiply by them (the
        # exponent itself, from _heston_parts, is unchanged)
        r_d = _rcp(d)
        r_bd = _rcp(bd)
        r_bd2 = r_bd * r_bd
        r_ge = _rcp(one_m_ge)
        r_ge2 = r_ge * r_ge
        r_g = _rcp(one_m_g)
        r_xi2 = 1.0 / (xi * xi)
        lg_xi3 = 4.0 * lg * r_xi2 / xi
        a_unit = q * t - 2.0 * lg * r_xi2
        ktv = kappa * theta
        q_r_bd = q * r_bd
        te = t * e
        b_rd = b * r_d
        # kappa: db = 1, dd = b / d
        dd = b_rd
        dq = -q_r_bd * (1.0 + dd)
        dg = 2.0 * (d - b * dd) * r_bd2
        de = -te * dd
        dge = dg * e + g * de
        d_bb = dq * ome * r_ge + q * (-de * one_m_ge + ome * dge) * r_ge2
        dlg = -dge * r_ge + dg * r_g
        grad[1] = ktv * (dq * t - 2.0 * dlg * r_xi2) + d_bb * v0 + theta * a_unit
        # xi: db = -rho i u, dd = (b db + xi w) / d
        db = -rho * iu
        dd = (b * db + xi * w) * r_d
        dq = -q_r_bd * (db + dd)
        dg = 2.0 * (d * db - b * dd) * r_bd2
        de = -te * dd
        dge = dg * e + g * de
        d_bb = dq * ome * r_ge + q * (-de * one_m_ge + ome * dge) * r_ge2
        dlg = -dge * r_ge + dg * r_g
        grad[3] = ktv * (dq * t - 2.0 * dlg * r_xi2 + lg_xi3) + d_bb * v0
        # rho: db = -xi i u, dd = b db / d
        db = -xi * iu
        dd = db * b_rd
        dq = -q_r_bd * (db + dd)
        dg = 2.0 * (d * db - b * dd) * r_bd2
        de = -te * dd
        dge = dg * e + g * de
        d_bb = dq * ome * r_ge + q * (-de * one_m_ge + ome * dge) * r_ge2
        dlg = -dge * r_ge + dg * r_g
        grad[4] = ktv * (dq * t - 2.0 * dlg * r_xi2) + d_bb * v0
        grad[0] = big_b
        grad[2] = kappa * a_unit
        out = big_a + big_b * v0
        if mid == BATES:
            lam, mu, sj = p[5], p[6], p[7]
            ej = cmath.exp(iu * mu + 0.5 * iu * iu * sj * sj)
            kb = math.exp(mu + 0.5 * sj * sj)
            unit = t * (ej - 1.0 - iu * (kb - 1.0))
            out += lam * unit
            grad[5] = unit
            grad[6] = lam * t * iu * (ej - kb)
            grad[7] = lam * t * sj * (iu * iu * ej - iu * kb)
        return out
    # forward differences: one evaluation per parameter (relative error ~1e-6, ample
    # for a Levenberg-Marquardt Jacobian; the exponents are analytic in the parameters,
    # so a step past a validity bound of the class is harmless)
    base = log_cf(mid, p, u, t)
    q = p.copy()
    for k in range(p.size):
        h = hfd[k]
        q[k] = p[k] + h
        grad[k] = (log_cf(mid, q, u, t) - base) / h
        q[k] = p[k]
    return base


@njit(cache=True)
def cumulants(mid, p, t):  # type: ignore[no-untyped-def]
    """``(c1, c2, c4)`` of :math:`\\ln(F_t/F_0)`: closed forms (Levy models; exact mean
    and variance of Heston and Bates), or Cauchy's formula on the exponent (SVCJ)."""
    if mid == BLACK:
        s2 = p[0] * p[0]
        return -0.5 * s2 * t, s2 * t, 0.0
    if mid == MERTON:
        s2, lam, m, j2 = p[0] * p[0], p[1], p[2], p[3] * p[3]
        kbar = math.expm1(m + 0.5 * j2)
        k1 = -0.5 * s2 - lam * kbar + lam * m
        k2 = s2 + lam * (m * m + j2)
        k4 = lam * (m**4 + 6.0 * m * m * j2 + 3.0 * j2 * j2)
        return k1 * t, k2 * t, k4 * t
    if mid == KOU:
        s2, lam, pp, e1, e2 = p[0] * p[0], p[1], p[2], p[3], p[4]
        zeta = pp * e1 / (e1 - 1.0) + (1.0 - pp) * e2 / (e2 + 1.0) - 1.0
        m1 = pp / e1 - (1.0 - pp) / e2
        m2 = 2.0 * (pp / e1**2 + (1.0 - pp) / e2**2)
        m4 = 24.0 * (pp / e1**4 + (1.0 - pp) / e2**4)
        return (-0.5 * s2 - lam * zeta + lam * m1) * t, (s2 + lam * m2) * t, lam * m4 * t
    if mid == VG:
        s2, nu, th = p[0] * p[0], p[1], p[2]
        omega = math.log1p(-th * nu - 0.5 * s2 * nu) / nu
        k4 = 3.0 * (s2 * s2 * nu + 2.0 * th**4 * nu**3 + 4.0 * s2 * th * th * nu * nu)
        return (th + omega) * t, (s2 + nu * th * th) * t, k4 * t
    if mid == HESTON or mid == BATES:
        # exact mean and variance of X = -I/2 + int sqrt(v) dW1, I = int v dt:
        # Var X = Var(I)/4 + E[I] - (rho/xi)(Cov(I, v_T) + kappa Var(I)), with the CIR
        # covariances Cov(v_s, v_t) = e^{-kappa(t-s)} Var(v_s) and
        # Var(v_s) = xi^2 (b0 + b1 e^{-kappa s} + b2 e^{-2 kappa s}); c4 of the diffusion
        # is left out as Fang & Oosterlee (2008) do (the Chernoff bounds of plan_expiry
        # take care of the tails)
        v0, kappa, theta, xi, rho = p[0], p[1], p[2], p[3], p[4]
        ek = math.exp(-kappa * t)
        e1 = -math.expm1(-kappa * t) / kappa  # int_0^t e^{-kappa u} du
        e2 = -math.expm1(-2.0 * kappa * t) / (2.0 * kappa)
        mean_i = theta * t + (v0 - theta) * e1
        c1 = -0.5 * mean_i
        b0 = theta / (2.0 * kappa)
        b1 = (v0 - theta) / kappa
        b2 = (0.5 * theta - v0) / kappa
        int_var = b0 * t + b1 * e1 + b2 * e2  # int_0^t Var(v_s) ds / xi^2
        cov_iv = b0 * e1 + b1 * t * ek + b2 * ek * e1  # Cov(I, v_t) / xi^2
        var_i = 2.0 / kappa * (int_var - cov_iv)  # Var(I) / xi^2
        c2 = xi * xi * 0.25 * var_i + mean_i - rho * xi * (cov_iv + kappa * var_i)
        c4 = 0.0
        if mid == BATES:
            lam, m, j2 = p[5], p[6], p[7] * p[7]
            c1 += lam * t * (m - math.expm1(m + 0.5 * j2))
            c2 += lam * t * (m * m + j2)
            c4 += lam * t * (m**4 + 6.0 * m * m * j2 + 3.0 * j2 * j2)
        return c1, max(c2, 0.0), c4
    # Cauchy's formula on the circle |s| = r (halved while the variance is unstable)
    r = 0.2
    n = 32
    prev2 = -1.0
    c1 = c2 = c4 = 0.0
    for _ in range(13):
        a1 = 0j
        a2 = 0j
        a4 = 0j
        for j in range(n):
            th = 2.0 * math.pi * j / n
            s = r * cmath.exp(1j * th)
            kv = log_cf(mid, p, -1j * s, t)
            a1 += kv * cmath.exp(-1j * th)
            a2 += kv * cmath.exp(-2j * th)
            a4 += kv * cmath.exp(-4j * th)
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


@njit(cache=True)
def _chernoff_scan(mid, p, t, log_tol, sign, j0):  # type: ignore[no-untyped-def]
    """The scan of :func:`_chernoff` from grid point ``j0`` (``s = 0.02 * 1.25**j0``):
    ``(bound, j_best)`` with ``j_best`` the grid index of the smallest bound (-1 when
    the first point is unusable)."""
    best = math.inf
    j_best = -1
    s = 0.02
    for _ in range(j0):
        s *= 1.25  # the grid values of the scan from 0, bit for bit
    j = j0
    k_prev = 0.0
    slope_prev = 0.0
    s_prev = 0.0
    n_ok = 0
    rises = 0
    while s < 2000.0:
        ss = sign * s
        kv = log_cf(mid, p, -1j * ss, t)
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
        bound = (kr - log_tol) / s  # = b for sign +1, -a for sign -1
        if bound < best:
            best = bound
            j_best = j
            rises = 0
        else:
            rises += 1
            if rises >= 2:
                break
        k_prev, s_prev = kr, ss
        n_ok += 1
        s *= 1.25
        j += 1
    return best, j_best


@njit(cache=True)
def _chernoff(mid, p, t, log_tol, sign, c2=0.0):  # type: ignore[no-untyped-def]
    """Chernoff bound of one tail: b (sign +1) or a (sign -1), or +-inf when unusable.

    :math:`K(s)` on a geometric grid of :math:`s` (from 0.02, ratio 1.25); only the
    prefix where it is finite, real and convex counts; the bound
    :math:`(K(s) - \\text{log\\_tol})/s` has one minimum in :math:`s` (its derivative
    has the sign of :math:`sK' - K + \\ldots`, which increases), so the scan stops once
    it rises. For Heston and Bates, with the variance ``c2``, the scan starts a factor 2
    below the Gaussian optimum :math:`\\sqrt{-2\\,\\text{log\\_tol}/c_2}` on the same
    grid (about 30 fewer exponents per tail and expiry); when the bound
    falls from that point on, the skipped points (falling towards it) hold no smaller
    value and the result is the full scan's, else the full scan from 0.02 is made (on
    Kou's exponential jumps the bound is not unimodal on the grid: always the full scan).
    """
    j0 = 0
    if (mid == HESTON or mid == BATES) and c2 > 0.0 and log_tol < 0.0:
        s_gauss = math.sqrt(-2.0 * log_tol / c2)
        if s_gauss > 0.08:
            j0 = int(math.log(0.5 * s_gauss / 0.02) / math.log(1.25))
    if j0 > 0:
        best, j_best = _chernoff_scan(mid, p, t, log_tol, sign, j0)
        if j_best > j0:
            return sign * best
    best, _ = _chernoff_scan(mid, p, t, log_tol, sign, 0)
    return sign * best


@njit(cache=True)
def plan_expiry(mid, p, t, kmin, kmax, l_cum, min_hw, tail_tol, phi_tol, n_min, n_max):  # type: ignore[no-untyped-def]
    """Range ``[a, b]`` and number of terms of one expiry; ``n = -1`` if ``n_max`` is short.

    Range: :math:`c_1 \\pm L\\sqrt{c_2+\\sqrt{c_4}}` widened to the Chernoff bounds for a
    tail mass below ``tail_tol * max(1, K_max/F)`` and to every strike with a margin.
    Terms: the smallest multiple of 8 (at least ``n_min``) with
    :math:`\\tfrac2\\pi\\max(1,K/F)|\\varphi(u_{N-1})|/u_{N-1} \\le` ``phi_tol``: the
    first rung of the ladder ``n_min * 2^(j/4)`` that meets it, bisected down to the rung
    below.
    """
    c1, c2, c4 = cumulants(mid, p, t)
    half = max(l_cum * math.sqrt(c2 + math.sqrt(c4)), min_hw)
    log_tol = math.log(tail_tol) - max(kmax, 0.0)
    b_t = _chernoff(mid, p, t, log_tol, 1.0, c2)
    a_t = _chernoff(mid, p, t, log_tol, -1.0, c2)
    a = min(c1 - half, a_t, kmin - 0.25 * half)
    b = max(c1 + half, b_t, kmax + 0.25 * half)
    scale = max(1.0, math.exp(kmax)) * 2.0 / math.pi
    j = 0
    n_fail = 0  # largest N known to miss the bound (0: none tried)
    while True:
        n = 8 * math.ceil(n_min * 2.0 ** (0.25 * j) / 8.0)
        u_last = (n - 1) * math.pi / (b - a)
        tail = abs(cmath.exp(log_cf(mid, p, u_last + 0j, t))) * scale / u_last
        if tail <= phi_tol:
            break
        if n >= n_max:
            return a, b, -1, tail
        n_fail = n
        j += 1
    # the ladder overshoots by up to 19 %: bisect the multiples of 8 between the last
    # rung that missed the bound and the first that met it for the smallest that meets it
    while n_fail > 0 and n - n_fail > 8:
        m = n_fail + 8 * ((n - n_fail) // 16)
        u_m = (m - 1) * math.pi / (b - a)
        t_m = abs(cmath.exp(log_cf(mid, p, u_m + 0j, t))) * scale / u_m
        if t_m <= phi_tol:
            n, tail = m, t_m
        else:
            n_fail = m
    return a, b, n, tail


@njit(cache=True)
def coef_grid(mid, p, t, a, b, n, want_grad, hfd):  # type: ignore[no-untyped-def]
    """:math:`\\mathrm{Re}[\\varphi(u_j)e^{-iu_ja}]` (row 0) and the same times
    :math:`\\partial\\ln\\varphi/\\partial\\theta_p` (rows 1..P), per expiry, padded."""
    n_s = t.size
    n_hi = 0
    for s in range(n_s):
        n_hi = max(n_hi, n[s])
    n_par = p.size if want_grad else 0
    out = np.zeros((n_par + 1, n_s, n_hi))
    grad = np.empty(p.size, dtype=np.complex128)
    for s in range(n_s):
        du = math.pi / (b[s] - a[s])
        for j in range(n[s]):
            u = du * j
            if want_grad:
                lp = log_cf_grad(mid, p, u + 0j, t[s], hfd, grad)
            else:
                lp = log_cf(mid, p, u + 0j, t[s])
            h = _expc(lp - 1j * u * a[s])
            out[0, s, j] = h.real
            for k in range(n_par):
                out[k + 1, s, j] = (h * grad[k]).real
    return out


@njit(cache=True, inline="always")
def _expiry_sums(coef, s, ns, du, inv_row, rec_row, xs, ecs_, eks, calls, v0, ea, eb, m, acc):  # type: ignore[no-untyped-def]
    """Row sums :math:`\\sum_j v_{qj}\\,\\mathrm{coef}[r, s, j]` (in order of j) of the
    ``m`` options of one expiry, into ``acc[r, q]``.

    The payoff coefficient :math:`v_{qj}` of each option comes from the rotation
    :math:`e^{iu_j(c_q-a)}` (a complex multiplication per term, re-seeded with an exact
    exponential every 16 terms); the options are the inner loop, so the rotations and
    the sums of all options of the expiry advance together in independent lanes, which
    the compiler keeps in vector registers. Every lane does the operations of one option
    in the order of j (the same rounding as one option at a time).
    """
    n_rows = coef.shape[0]
    s_re = np.empty(m)
    s_im = np.empty(m)
    e_re = np.empty(m)
    e_im = np.empty(m)
    vq = np.empty(m)
    for q in range(m):
        s_re[q] = math.cos(xs[q])
        s_im[q] = math.sin(xs[q])
        e_re[q] = s_re[q]
        e_im[q] = s_im[q]
    for r in range(n_rows):
        w = coef[r, s, 0]
        for q in range(m):
            acc[r, q] = v0[q] * w
    sign = -1.0
    for j in range(1, ns):
        if j % _BLOCK == 0:
            for q in range(m):
                y = xs[q] * j
                e_re[q] = math.cos(y)
                e_im[q] = math.sin(y)
        u = du * j
        inv = inv_row[j]
        rec = rec_row[j]
        se = sign * eb
        for q in range(m):
            cs = e_re[q]
            sn = e_im[q]
            ecs = ecs_[q] * (cs + u * sn)
            psi = sn * rec
            if calls[q]:
                vq[q] = (se - ecs) * inv + eks[q] * psi
            else:
                vq[q] = eks[q] * psi - (ecs - ea) * inv
            # e <- e * s (complex multiplication)
            sr = s_re[q]
            si = s_im[q]
            e_re[q] = cs * sr - sn * si
            e_im[q] = cs * si + sn * sr
        for r in range(n_rows):
            w = coef[r, s, j]
            ar = acc[r]
            for q in range(m):
                ar[q] += vq[q] * w
        sign = -sign


@njit(cache=True)
def cos_sums(coef, n, a, b, k, t_index, call_coef):  # type: ignore[no-untyped-def]
    """Unit prices (row 0) and derivatives (rows 1..) of every option from ``coef``.

    Payoff coefficients of option i are formed on the fly: :math:`e^{iu_j(c-a)}` by
    complex multiplication, re-seeded with an exact exponential every 16 terms (a few
    ulps of rounding), so no strikes x terms matrix exists; all options of an expiry are
    rotated and summed side by side (:func:`_expiry_sums`), every sum in order of the
    terms. The per-expiry factors
    :math:`1/(1+u_j^2)` and :math:`1/u_j` are tabulated once per call (no division in
    the strike loop).
    """
    n_rows = coef.shape[0]
    n_opt = k.size
    n_s = n.size
    n_hi = 0
    for s in range(n_s):
        n_hi = max(n_hi, n[s])
    inv_tab = np.empty((n_s, max(n_hi, 1)))
    rec_tab = np.empty((n_s, max(n_hi, 1)))
    for s in range(n_s):
        du = math.pi / (b[s] - a[s])
        rec_tab[s, 0] = 0.0
        inv_tab[s, 0] = 1.0
        for j in range(1, n[s]):
            u = du * j
            inv_tab[s, j] = 1.0 / (1.0 + u * u)
            rec_tab[s, j] = 1.0 / u
    out = np.zeros((n_rows, n_opt))
    order = np.argsort(t_index, kind="mergesort")
    xs = np.empty(n_opt)
    ecs_ = np.empty(n_opt)
    eks = np.empty(n_opt)
    v0 = np.empty(n_opt)
    calls = np.zeros(n_opt, dtype=np.bool_)
    idx = np.empty(n_opt, dtype=np.int64)
    acc = np.empty((n_rows, n_opt))
    pos = 0
    while pos < n_opt:
        s = t_index[order[pos]]
        m = 0
        while pos < n_opt and t_index[order[pos]] == s:
            idx[m] = order[pos]
            m += 1
            pos += 1
        ai, bi = a[s], b[s]
        ns = n[s]
        width = bi - ai
        du = math.pi / width
        ea, eb = math.exp(ai), math.exp(bi)
        for q in range(m):
            i = idx[q]
            ki = k[i]
            c = min(max(ki, ai), bi)
            ec, ek = math.exp(c), math.exp(ki)
            xs[q] = du * (c - ai)
            ecs_[q] = ec
            eks[q] = ek
            calls[q] = call_coef[i]
            if call_coef[i]:
                v0[q] = 0.5 * ((eb - ec) - ek * (bi - c))
            else:
                v0[q] = 0.5 * (ek * (c - ai) - (ec - ea))
        _expiry_sums(
            coef, s, ns, du, inv_tab[s], rec_tab[s], xs, ecs_, eks, calls, v0, ea, eb, m, acc
        )
        scale = 2.0 / width
        for r in range(n_rows):
            for q in range(m):
                out[r, idx[q]] = scale * acc[r, q]
    return out


@njit(cache=True, inline="always")
def _contour_log_size(mid, p, t, k, alpha):  # type: ignore[no-untyped-def]
    """Log of the shifted integrand at u = 0 (an upper bound of the price), or inf."""
    s = alpha + 1.0
    kv = log_cf(mid, p, -1j * s + 0j, t)
    if not (math.isfinite(kv.real) and math.isfinite(kv.imag)):
        return math.inf
    if abs(kv.imag) > 1e-9 * (1.0 + abs(kv.real)):
        return math.inf
    return -alpha * k + kv.real - math.log(alpha * (alpha + 1.0))


@njit(cache=True, inline="always")
def _wing_panel(mid, p, t, k, s, alpha, norm, lo, hi, want_grad, hfd, gx, gw, grad, out):  # type: ignore[no-untyped-def]
    """16-point Gauss-Legendre of :func:`lewis_wing`'s integrand (row 0) and of its
    parameter derivatives (rows 1..) over ``[lo, hi]``, written into ``out``."""
    n_par = out.size - 1
    hw = 0.5 * (hi - lo)
    mid_u = lo + hw
    out[:] = 0.0
    for m in range(gx.size):
        u = mid_u + hw * gx[m]
        z = u - 1j * s
        if want_grad:
            lp = log_cf_grad(mid, p, z, t, hfd, grad)
        else:
            lp = log_cf(mid, p, z, t)
        den = (alpha + 1j * u) * (s + 1j * u)
        f = _expc(lp - 1j * u * k - norm) * _rcp(den)
        w = hw * gw[m]
        out[0] += w * f.real
        for r in range(n_par):
            out[r + 1] += w * (f * grad[r]).real


@njit(cache=True, inline="always")
def _convex_path(mid, p, t, k, j0):  # type: ignore[no-untyped-def]
    """True when :func:`_contour_log_size` is finite, real and convex (slopes not
    decreasing) on the grid points ``0, 3, 6, ...`` and ``j0`` of
    :func:`_alpha_scan`'s grid."""
    prev_v = math.inf
    prev_al = 0.0
    prev_slope = -math.inf
    j = 0
    while True:
        mag = 0.01 * 1.25**j
        al = mag if k >= 0.0 else -1.0 - mag
        v = _contour_log_size(mid, p, t, k, al)
        if not math.isfinite(v):
            return False
        if j > 0:
            slope = (v - prev_v) / abs(al - prev_al)
            if slope < prev_slope - 1e-9 * (1.0 + abs(slope)):
                return False
            prev_slope = slope
        prev_v, prev_al = v, al
        if j == j0:
            return True
        j = min(j + 3, j0)


@njit(cache=True, inline="always")
def _alpha_scan(mid, p, t, k, j0):  # type: ignore[no-untyped-def]
    """The damping of :func:`lewis_wing`: ``(log size, alpha, fell)`` at the first local
    minimum of :func:`_contour_log_size` on the grid ``0.01 * 1.25^j`` from ``j0`` on
    (``fell``: below the value at ``j0``). The log size is convex up to the moment
    explosion: the scan stops at the first rise (a closed form continued past the
    explosion can return finite but meaningless values) or where the slope stops
    increasing."""
    best = math.inf
    alpha = 0.0
    prev_v = math.inf
    prev_slope = -math.inf
    prev_al = 0.0
    fell = False
    for j in range(j0, 80):
        mag = 0.01 * 1.25**j
        al = mag if k >= 0.0 else -1.0 - mag
        v = _contour_log_size(mid, p, t, k, al)
        if not math.isfinite(v):
            break
        if j > j0:
            slope = (v - prev_v) / abs(al - prev_al)
            if slope < prev_slope - 1e-9 * (1.0 + abs(slope)):
                break
            prev_slope = slope
        if v < best:
            fell = j > j0
            best = v
            alpha = al
        else:
            break
        prev_v, prev_al = v, al
    return best, alpha, fell


@njit(cache=True)
def lewis_wing(mid, p, t, k, sd, want_grad, hfd, gx, gw, rtol):  # type: ignore[no-untyped-def]
    """Out-of-the-money price per unit forward on a shifted contour (and gradient).

    Lee (2004) / Lord & Kahl (2007): for :math:`\\alpha > 0` (calls) or
    :math:`\\alpha < -1` (puts)

    .. math:: \\frac{P}{F} = \\frac{e^{-\\alpha k}}{\\pi}\\int_0^\\infty
        \\mathrm{Re}\\Big[\\frac{e^{-iuk}\\varphi(u - i(\\alpha+1))}
        {(\\alpha + iu)(\\alpha + 1 + iu)}\\Big]du,

    with :math:`\\alpha` minimising the integrand at :math:`u = 0` (which bounds the
    price), so the integral is of the size of the price and no cancellation occurs.
    Adaptive composite 16-point Gauss-Legendre on ``[0, U]``: each panel is halved until
    its halves agree with it to its share of ``rtol`` times the integral (the decayed
    tail stops early, the oscillating head is refined; ``ok`` is False when the panel
    budget ran out first). Returns ``(gout, ok, n_panels)``: the price in ``gout[0]``, the
    gradient in rows 1.., and the number of 16-point panels evaluated.
    """
    n_par = p.size if want_grad else 0
    gout = np.zeros(n_par + 1)
    # choose alpha on a geometric scan 0.01 * 1.25^j of the admissible side. Heston and
    # Bates: started a factor 2 below the Gaussian optimum (|k| / sd^2 - 1/2) when
    # every third grid point up to there passes the scan's own tests (finite, real,
    # convex: no moment explosion below) and the log size falls from there - then the
    # scan ends at the grid point one from j = 0 reaches; otherwise it runs from j = 0
    j0 = 0
    if mid == HESTON or mid == BATES:
        mag_g = abs(k) / (sd * sd) - 0.5 if sd > 0.0 else 0.0
        if mag_g > 0.04:
            j0 = min(math.floor(math.log(50.0 * mag_g) / math.log(1.25)), 60)
            if not _convex_path(mid, p, t, k, j0):
                j0 = 0
    best, alpha, fell = _alpha_scan(mid, p, t, k, j0)
    if j0 > 0 and not fell:
        best, alpha, fell = _alpha_scan(mid, p, t, k, 0)
    if not math.isfinite(best):
        return gout, False, 0
    s = alpha + 1.0
    norm = best + alpha * k  # ln of |phi(-is)| / (alpha (alpha + 1)): the integrand at 0 is 1
    # truncation: envelope below rtol * 1e-3 of the integrand at 0
    u_max = 8.0 / sd
    for _ in range(60):
        lp = log_cf(mid, p, u_max - 1j * s, t)
        env = math.exp(lp.real - norm) / (u_max * u_max + 1.0)
        if env < 1e-3 * rtol / (1.0 + u_max):
            break
        u_max *= 1.5
    grad = np.empty(p.size, dtype=np.complex128)
    n_rows = n_par + 1
    # adaptive composite Gauss-Legendre: n0 equal panels (1 for a tolerance of 1e-8 or
    # looser, 2 down to 1e-9, else 4), then every panel is split in two until the halves
    # agree with the whole to its share (width / u_max) of rtol times the integral; the
    # tail, where the integrand has decayed, stops after one split, the oscillating head
    # is refined. At 1e-8 and looser one panel's halves usually meet the tolerance at
    # once (3 panels instead of the 6 that 2 initial panels take at least)
    n0 = 1 if rtol >= 1e-8 else (2 if rtol >= 1e-9 else 4)
    max_panels = 1024  # about the 16k nodes of the former doubling up to 512 panels
    st_lo = np.empty(max_panels)
    st_hi = np.empty(max_panels)
    st_val = np.empty((max_panels, n_rows))
    coarse = np.zeros(n_rows)
    width = u_max / n0
    for q in range(n0):
        st_lo[q] = q * width
        st_hi[q] = (q + 1) * width
        _wing_panel(
            mid,
            p,
            t,
            k,
            s,
            alpha,
            norm,
            st_lo[q],
            st_hi[q],
            want_grad,
            hfd,
            gx,
            gw,
            grad,
            st_val[q],
        )
        for r in range(n_rows):
            coarse[r] += st_val[q, r]
    tol = rtol * abs(coarse[0])
    cur = np.zeros(n_rows)
    left = np.empty(n_rows)
    right = np.empty(n_rows)
    top = n0
    ok = True
    n_done = n0
    while top > 0:
        top -= 1
        lo, hi = st_lo[top], st_hi[top]
        c = 0.5 * (lo + hi)
        _wing_panel(mid, p, t, k, s, alpha, norm, lo, c, want_grad, hfd, gx, gw, grad, left)
        _wing_panel(mid, p, t, k, s, alpha, norm, c, hi, want_grad, hfd, gx, gw, grad, right)
        n_done += 2
        err = abs(left[0] + right[0] - st_val[top, 0])
        if err <= tol * (hi - lo) / u_max or n_done + 2 * (top + 2) > max_panels:
            if err > tol * (hi - lo) / u_max:
                ok = False
            for r in range(n_rows):
                cur[r] += left[r] + right[r]
        else:
            st_lo[top], st_hi[top] = lo, c
            st_val[top] = left
            st_lo[top + 1], st_hi[top + 1] = c, hi
            st_val[top + 1] = right
            top += 2
    fac = math.exp(best) / math.pi
    for r in range(n_par + 1):
        gout[r] = cur[r] * fac
    return gout, ok and cur[0] > 0.0, n_done


@njit(cache=True)
def _expiry_k_range(k, t_index, n_s):  # type: ignore[no-untyped-def]
    kmin = np.full(n_s, np.inf)
    kmax = np.full(n_s, -np.inf)
    for i in range(k.size):
        s = t_index[i]
        kmin[s] = min(kmin[s], k[i])
        kmax[s] = max(kmax[s], k[i])
    return kmin, kmax


@njit(cache=True)
def plan_surface(mid, p, t, k, t_index, l_cum, min_hw, tail_tol, phi_tol, n_min, n_max):  # type: ignore[no-untyped-def]
    """:func:`plan_expiry` for every expiry: ``(a, b, n, bound)``; ``n[s] = -1`` marks an
    expiry that needs more than ``n_max`` terms."""
    n_s = t.size
    kmin, kmax = _expiry_k_range(k, t_index, n_s)
    a = np.empty(n_s)
    b = np.empty(n_s)
    n = np.empty(n_s, dtype=np.int64)
    bound = np.empty(n_s)
    for s in range(n_s):
        a[s], b[s], n[s], bound[s] = plan_expiry(
            mid, p, t[s], kmin[s], kmax[s], l_cum, min_hw, tail_tol, phi_tol, n_min, n_max
        )
    return a, b, n, bound


@njit(cache=True)
def surface_units(
    mid,
    p,
    t,
    k,
    t_index,
    a,
    b,
    n,
    put_only,
    want_grad,
    hfd,
    wing_tol,
    wing_ok,
    gx,
    gw,
    wing_rtol,
    wing_grad,
):  # type: ignore[no-untyped-def]
    """Out-of-the-money prices per unit forward (row 0) and their parameter derivatives.

    COS with put coefficients (calls by parity, ``put_only``) or call coefficients for
    :math:`k \\ge 0`; every option whose price falls below ``wing_tol * max(1, K/F)``
    (where the COS error floor of about 1e-15 max(F, K) would cost relative accuracy) is
    priced again by :func:`lewis_wing`, where ``wing_ok`` allows it - with its
    derivatives, or (``wing_grad`` False) the price alone, the derivatives staying
    those of the COS series (about 1e-5 relative there: ample for a least-squares
    Jacobian, for a fifth less work per wing quote). Returns ``(units, n_wing)``.
    """
    call_coef = np.zeros(k.size, dtype=np.bool_)
    if not put_only:
        for i in range(k.size):
            call_coef[i] = k[i] >= 0.0
    coef = coef_grid(mid, p, t, a, b, n, want_grad, hfd)
    out = cos_sums(coef, n, a, b, k, t_index, call_coef)
    n_wing = 0
    for i in range(k.size):
        if k[i] >= 0.0 and not call_coef[i]:
            out[0, i] += 1.0 - math.exp(k[i])
        if wing_tol > 0.0 and wing_ok[i] and out[0, i] < wing_tol * max(1.0, math.exp(k[i])):
            s = t_index[i]
            _c1, c2, _c4 = cumulants(mid, p, t[s])
            sd = math.sqrt(max(c2, 1e-12))
            full = want_grad and wing_grad
            g, ok, _n_panels = lewis_wing(mid, p, t[s], k[i], sd, full, hfd, gx, gw, wing_rtol)
            if ok:
                n_wing += 1
                for r in range(g.size):
                    out[r, i] = g[r]
    return out, n_wing


@njit(cache=True)
def _ndtr(x):  # type: ignore[no-untyped-def]
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(cache=True)
def _black_lk(f, k, lk, w, call):  # type: ignore[no-untyped-def]
    """Undiscounted Black price with ``lk = ln(k/f)`` given (OTM side computed, the other
    by parity), as :func:`volcal.pricing.closed.black_undiscounted`; an OTM price below
    ~1e-300 of the forward (|d| > 38) is exactly its double-precision value 0."""
    if w > 0.0:
        sw = math.sqrt(w)
        if (abs(lk) - 0.5 * w) > 38.0 * sw:
            otm = 0.0
        elif lk >= 0.0:
            d1 = (-lk + 0.5 * w) / sw
            otm = f * _ndtr(d1) - k * _ndtr(d1 - sw)
        else:
            d1 = (-lk + 0.5 * w) / sw
            otm = k * _ndtr(sw - d1) - f * _ndtr(-d1)
    else:
        otm = 0.0
    if lk >= 0.0:
        v = otm if call else otm - f + k
    else:
        v = otm + f - k if call else otm
    return max(v, 0.0)


@njit(cache=True)
def vg_mixture(f0, strike, call, g, w, drift, s2):  # type: ignore[no-untyped-def]
    """Gamma-time mixture of Black prices of one expiry (variance gamma):
    :math:`h_0 + \\sum_j w_j\\,(h(f_0 e^{\\text{drift}\\,g_j}, K, \\sigma^2 g_j) - h_0)`."""
    out = np.empty(f0.size)
    for i in range(f0.size):
        lk0 = math.log(strike[i] / f0[i])
        h0 = _black_lk(f0[i], strike[i], lk0, 0.0, call[i])
        acc = 0.0
        for j in range(g.size):
            x = drift * g[j]
            h = _black_lk(f0[i] * math.exp(x), strike[i], lk0 - x, s2 * g[j], call[i])
            acc += w[j] * (h - h0)
        out[i] = h0 + acc
    return out


@njit(cache=True)
def plan_and_units(  # type: ignore[no-untyped-def]
    mid,
    p,
    t,
    k,
    t_index,
    l_cum,
    min_hw,
    tail_tol,
    phi_tol,
    n_min,
    n_max,
    put_only,
    want_grad,
    hfd,
    wing_tol,
    wing_ok,
    gx,
    gw,
    wing_rtol,
    plan_only,
    wing_grad=True,
):
    """:func:`plan_surface` and :func:`surface_units` in one compiled call: the one entry
    point of the library's pricing and of the calibration objective (one dispatch per
    evaluation, and one cached kernel to load in a new process). Returns
    ``(a, b, n, bound, units, n_wing)``; units are not computed (``n_wing = -1``) when an
    expiry needs more than ``n_max`` terms or has no finite range, nor with
    ``plan_only``."""
    a, b, n, bound = plan_surface(
        mid, p, t, k, t_index, l_cum, min_hw, tail_tol, phi_tol, n_min, n_max
    )
    n_rows = p.size + 1 if want_grad else 1
    for s in range(n.size):
        if n[s] < 0 or not (math.isfinite(a[s]) and math.isfinite(b[s])):
            return a, b, n, bound, np.zeros((n_rows, 0)), -1
    if plan_only:
        return a, b, n, bound, np.zeros((n_rows, 0)), 0
    out, n_wing = surface_units(
        mid,
        p,
        t,
        k,
        t_index,
        a,
        b,
        n,
        put_only,
        want_grad,
        hfd,
        wing_tol,
        wing_ok,
        gx,
        gw,
        wing_rtol,
        wing_grad,
    )
    return a, b, n, bound, out, n_wing


@njit(cache=True)
def vg_mixture_grad(f0, strike, call, g, w, drift, s2, sigma, t, dw_dth, dw_ds):  # type: ignore[no-untyped-def]
    """:func:`vg_mixture` and its derivatives in ``theta_vg`` and ``sigma`` (rows 1, 2),
    in the same pass: the gamma nodes depend on ``nu`` only. With
    :math:`f_j = f_0 e^{\\text{drift}\\,g_j}`, :math:`f_0 = F e^{\\omega t}`:
    :math:`\\partial f_j/\\partial\\theta = f_j(t\\,\\partial\\omega/\\partial\\theta + g_j)`,
    :math:`\\partial f_j/\\partial\\sigma = f_j(t\\,\\partial\\omega/\\partial\\sigma +
    \\sigma g_j)`, :math:`\\partial w_j/\\partial\\sigma = 2\\sigma g_j`, and Black's delta
    and :math:`\\partial h/\\partial w = f\\,n(d_1)/(2\\sqrt w)`."""
    out = np.zeros((3, f0.size))
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)
    for i in range(f0.size):
        k = strike[i]
        lk0 = math.log(k / f0[i])
        h0 = _black_lk(f0[i], k, lk0, 0.0, call[i])
        # intrinsic delta of h0 in f0 (0 at the money, a set of measure zero)
        if call[i]:
            dh0 = 1.0 if f0[i] > k else 0.0
        else:
            dh0 = -1.0 if f0[i] < k else 0.0
        acc = 0.0
        a_th = 0.0
        a_s = 0.0
        for j in range(g.size):
            x = drift * g[j]
            f = f0[i] * math.exp(x)
            var = s2 * g[j]
            h = _black_lk(f, k, lk0 - x, var, call[i])
            if var > 0.0:
                sw = math.sqrt(var)
                d1 = (-(lk0 - x) + 0.5 * var) / sw
                delta = _ndtr(d1) if call[i] else _ndtr(d1) - 1.0
                dh_dw = f * math.exp(-0.5 * d1 * d1) * inv_sqrt_2pi / (2.0 * sw)
            else:
                delta = dh0
                dh_dw = 0.0
            df_th = f * (t * dw_dth + g[j])
            df_s = f * (t * dw_ds + sigma * g[j])
            acc += w[j] * (h - h0)
            a_th += w[j] * (delta * df_th - dh0 * f0[i] * t * dw_dth)
            a_s += w[j] * (delta * df_s + dh_dw * 2.0 * sigma * g[j] - dh0 * f0[i] * t * dw_ds)
        out[0, i] = h0 + acc
        out[1, i] = dh0 * f0[i] * t * dw_dth + a_th
        out[2, i] = dh0 * f0[i] * t * dw_ds + a_s
    return out
