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
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, pdtrc

from volcal._typing import ArrayLike, FloatArray
from volcal.models.levy import Black, Merton
from volcal.pricing._layout import make_surface

__all__ = ["black_model_price", "black_undiscounted", "merton_price"]


def black_undiscounted(
    forward: FloatArray, strike: FloatArray, w: FloatArray, is_call: FloatArray
) -> FloatArray:
    """Undiscounted Black price for total variance ``w`` (arrays broadcast).

    Examples
    --------
    >>> float(black_undiscounted(np.array(100.0), np.array(100.0), np.array(0.04), True))
    7.965567455405804
    """
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
