"""Closed forms and series: Black (1976) and Merton (1976).

Black, undiscounted, :math:`w = \\sigma^2 T`,
:math:`d_{1,2} = (-k \\pm w/2)/\\sqrt w`, :math:`k = \\ln(K/F)`:

.. math:: C = F N(d_1) - K N(d_2), \\qquad P = K N(-d_2) - F N(-d_1).

The out-of-the-money side is evaluated directly and the other by parity, so deep wings
keep their relative accuracy.

Merton: conditional on :math:`n` jumps the forward is log-normal, so

.. math:: V = \\sum_{n\\ge0} e^{-\\lambda T}\\frac{(\\lambda T)^n}{n!}\\,
    \\mathrm{Black}\\big(F e^{n(\\mu_j+\\sigma_j^2/2) - \\lambda\\bar k T}, K,
    \\sigma^2 T + n\\sigma_j^2\\big),\\quad \\bar k = e^{\\mu_j+\\sigma_j^2/2}-1,

summed until the Poisson tail of both :math:`\\lambda T` and :math:`\\lambda T(1+\\bar k)`
(the latter bounds the forward-weighted tail) is below :math:`10^{-17}`.

Variance gamma (Madan, Carr & Chang 1998): given the gamma clock :math:`G_T = g`
(shape :math:`\\alpha = T/\\nu`, scale :math:`\\nu`) the log-forward is normal, so

.. math:: V = E\\big[h(G_T)\\big],\\qquad
    h(g) = \\mathrm{Black}\\big(F e^{\\omega T + \\theta g + \\sigma^2 g/2}, K, \\sigma^2 g\\big),

a one-dimensional integral of a closed form. It is computed as
:math:`h(0) + \\int (h(\\nu e^x) - h(0))\\,e^{\\alpha x - e^x}/\\Gamma(\\alpha)\\,dx`
(log time, :math:`x = \\ln(g/\\nu)`), whose integrand decays like
:math:`e^{(\\alpha + 1/2)x}` on the left and doubly exponentially on the right, with
composite 16-point Gauss-Legendre panels of width
:math:`\\min(1/2, s_x/2)` on :math:`[\\max(-75, \\psi(\\alpha) - 40 s_x),
\\ln(\\alpha + 12\\sqrt\\alpha + 40)]`, :math:`s_x = \\sqrt{\\psi'(\\alpha)}` the
standard deviation of :math:`\\ln(G_T/\\nu)`, centred at :math:`\\ln\\alpha` with the
density's constant from Stirling's series (so a tiny :math:`\\nu`, a nearly
deterministic clock, keeps full precision). Unlike the Fourier methods it
stays exact for short maturities, where :math:`2T/\\nu \\ll 1` makes
:math:`|\\varphi(u)| \\sim |u|^{-2T/\\nu}` almost non-decaying (one day with
:math:`\\nu = 0.3`).
"""

from __future__ import annotations

import math

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.models.levy import Black, Merton, VarianceGamma
from volcal.pricing._layout import make_surface

__all__ = ["black_model_price", "black_undiscounted", "merton_price", "variance_gamma_price"]


def black_undiscounted(
    forward: ArrayLike, strike: ArrayLike, w: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Undiscounted Black price for total variance ``w`` (arrays broadcast).

    Examples
    --------
    >>> float(black_undiscounted(np.array(100.0), np.array(100.0), np.array(0.04), True))
    7.965567455405804
    """
    from scipy.special import ndtr

    f, k, w, c = np.broadcast_arrays(
        np.asarray(forward, float), np.asarray(strike, float), np.asarray(w, float), is_call
    )
    sw = np.sqrt(w)
    lk = np.log(k / f)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(
            sw > 0, (-lk + 0.5 * w) / np.where(sw > 0, sw, 1.0), np.where(lk < 0, np.inf, -np.inf)
        )
    d2 = d1 - sw
    otm_call = lk >= 0.0
    callv = f * ndtr(d1) - k * ndtr(d2)
    putv = k * ndtr(-d2) - f * ndtr(-d1)
    callv = np.where(otm_call, callv, putv + f - k)
    putv = np.where(otm_call, callv - f + k, putv)
    return np.maximum(np.where(c, callv, putv), 0.0)


def black_model_price(
    model: Black,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Discounted Black-76 prices of a :class:`~volcal.models.Black` model."""
    s = make_surface(forward, strike, t, is_call, discount, where="price(Black)")
    out = black_undiscounted(s.forward, s.strike, model.sigma**2 * s.t, s.is_call)
    return (out * s.discount).reshape(s.shape)


def merton_price(
    model: Merton,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Discounted Merton (1976) prices by the Poisson-weighted Black series.

    Examples
    --------
    >>> m = Merton(sigma=0.2, lam=0.5, mu_j=-0.1, sigma_j=0.15)
    >>> r = 0.05
    >>> round(float(merton_price(m, 100 * np.exp(r), 100.0, 1.0, True, np.exp(-r))), 10)
    11.6616747875
    """
    from scipy.special import pdtrc

    s = make_surface(forward, strike, t, is_call, discount, where="price(Merton)")
    lam, mu, sj2, s2 = model.lam, model.mu_j, model.sigma_j**2, model.sigma**2
    kbar = model.kbar
    lt = lam * s.t
    tmax = float(np.max(lt, initial=0.0)) * max(1.0, 1.0 + kbar)
    n_max = 0
    while pdtrc(n_max, tmax) > 1e-17 and n_max < 100_000:
        n_max += max(1, n_max // 4)
    n_max = max(n_max, 1)
    out = np.zeros(s.size)
    log_w0 = -lt
    for n in range(n_max + 1):
        with np.errstate(divide="ignore"):
            logw = log_w0 + n * np.log(np.where(lt > 0, lt, 1.0)) - math.lgamma(n + 1)
        weight = np.where(lt > 0, np.exp(logw), 1.0 if n == 0 else 0.0)
        fn = s.forward * np.exp(n * (mu + 0.5 * sj2) - lam * kbar * s.t)
        out += weight * black_undiscounted(fn, s.strike, s2 * s.t + n * sj2, s.is_call)
    return (out * s.discount).reshape(s.shape)


def _gamma_log_norm(alpha: float) -> float:
    """:math:`\\alpha\\ln\\alpha - \\alpha - \\ln\\Gamma(\\alpha)`, accurate for large alpha."""
    from scipy.special import gammaln

    if alpha < 20.0:
        return float(alpha * math.log(alpha) - alpha - gammaln(alpha))
    inv = 1.0 / alpha
    inv2 = inv * inv
    # Stirling: lnGamma(a) = (a - 1/2) ln a - a + ln(2 pi)/2 + 1/(12a) - 1/(360a^3) + ...
    rem = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return 0.5 * math.log(alpha) - 0.5 * math.log(2.0 * math.pi) - rem


def _vg_nodes(tm: float, nu: float) -> tuple[FloatArray, FloatArray]:
    """Gamma-clock nodes ``g`` and weights of one maturity (Gauss-Legendre panels in
    :math:`y = \\ln(G_T/(\\nu\\alpha))`, :math:`\\alpha = T/\\nu`)."""
    from scipy.special import digamma, polygamma

    xg, wg = np.polynomial.legendre.leggauss(16)
    alpha = tm / nu
    # y = ln(G_T/(nu alpha)): mean ~ digamma(alpha) - ln(alpha), sd sqrt(trigamma)
    la = math.log(alpha)
    sd_y = math.sqrt(float(polygamma(1, alpha)))
    y_lo = max(-75.0 - la, float(digamma(alpha)) - la - 40.0 * sd_y)
    y_hi = math.log1p((12.0 * math.sqrt(alpha) + 40.0) / alpha)
    width = min(0.5, 0.5 * sd_y)
    n_pan = math.ceil((y_hi - y_lo) / width)
    edges = np.linspace(y_lo, y_hi, n_pan + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1] - edges[0])
    y = (mid[:, None] + half * xg[None, :]).ravel()
    # log density of y: alpha ln(alpha) - alpha - lnGamma(alpha) - alpha (e^y - 1 - y),
    # the constant without cancellation for large alpha (Stirling remainder)
    w = np.tile(half * wg, mid.size) * np.exp(_gamma_log_norm(alpha) - alpha * (np.expm1(y) - y))
    return np.ascontiguousarray(nu * np.exp(la + y)), np.ascontiguousarray(w)


def variance_gamma_price_grad(
    model: VarianceGamma, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Undiscounted VG mixture prices (row 0) and their derivatives in ``theta_vg`` (row
    1) and ``sigma`` (row 2), flat, from one compiled pass (the nodes depend on ``nu``
    only; ``nu`` needs a difference quotient)."""
    from volcal.pricing._fourier_numba import vg_mixture_grad

    s = make_surface(forward, strike, t, is_call, 1.0, where="price(VarianceGamma)")
    out = np.zeros((3, s.size))
    out[0] = s.intrinsic()
    live = np.flatnonzero(s.live)
    nu, th, sig = model.nu, model.theta_vg, model.sigma
    s2 = sig * sig
    base = 1.0 - th * nu - 0.5 * s2 * nu
    dw_dth, dw_ds = -1.0 / base, -sig / base
    for m, tm in enumerate(s.t_unique):
        sel = live[s.t_index == m]
        g, w = _vg_nodes(float(tm), nu)
        f0 = s.forward[sel] * math.exp(model.omega * tm)
        out[:, sel] = vg_mixture_grad(
            np.ascontiguousarray(f0),
            np.ascontiguousarray(s.strike[sel]),
            np.ascontiguousarray(s.is_call[sel]),
            g,
            w,
            th + 0.5 * s2,
            s2,
            sig,
            float(tm),
            dw_dth,
            dw_ds,
        )
    return out


def variance_gamma_price(
    model: VarianceGamma,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    """Discounted variance-gamma prices by the gamma-time mixture of Black prices.

    See the module docs (Madan, Carr & Chang 1998); accurate to about 1e-13 F for any
    maturity, including a day.

    Examples
    --------
    >>> m = VarianceGamma(sigma=0.12, nu=0.2, theta_vg=-0.14)
    >>> r = 0.1  # Fang & Oosterlee (2008), T=1: 19.099354724
    >>> round(float(variance_gamma_price(m, 100 * np.exp(r), 90.0, 1.0, True, np.exp(-r))), 8)
    19.09935472
    """
    from volcal.pricing._fourier_numba import vg_mixture

    s = make_surface(forward, strike, t, is_call, discount, where="price(VarianceGamma)")
    out = s.intrinsic()
    live = np.flatnonzero(s.live)
    nu, th, s2 = model.nu, model.theta_vg, model.sigma**2
    for m, tm in enumerate(s.t_unique):
        sel = live[s.t_index == m]
        g, w = _vg_nodes(float(tm), nu)
        f0 = s.forward[sel] * math.exp(model.omega * tm)
        # compiled sum over the gamma nodes (no quotes x nodes temporaries)
        out[sel] = vg_mixture(
            np.ascontiguousarray(f0),
            np.ascontiguousarray(s.strike[sel]),
            np.ascontiguousarray(s.is_call[sel]),
            g,
            w,
            th + 0.5 * s2,
            s2,
        )
    return (out * s.discount).reshape(s.shape)
