"""Black-76 prices, the normalised Black function and vega."""

from __future__ import annotations

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.black import _kernels
from volcal.black._arrays import as_bool, broadcast_float, check_pricing_inputs, full_shape
from volcal.errors import ParameterError

_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


def price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    r"""Discounted Black-76 price of European calls and puts.

    .. math::

        V = D\,\theta\,[F\,\Phi(\theta d_1) - K\,\Phi(\theta d_2)],\quad
        d_{1,2} = \frac{\ln(F/K)}{\sigma\sqrt{T}} \pm \frac{\sigma\sqrt{T}}{2}

    with :math:`\theta = +1` for calls and :math:`-1` for puts. The value is computed as
    :math:`D\,[(\theta(F-K))^+ + \sqrt{FK}\, b(-|x|, s)]` with the normalised
    out-of-the-money Black function of Jäckel (2015), :math:`x = \ln(F/K)`,
    :math:`s = \sigma\sqrt{T}`, so deep out-of-the-money prices keep full relative
    accuracy (no cancellation) down to the smallest representable numbers.
    ``t = 0`` or ``vol = 0`` give exactly the discounted intrinsic value.

    Parameters
    ----------
    forward, strike : array_like
        Forward and strike, > 0.
    t : array_like
        Time to expiry in years, >= 0.
    vol : array_like
        Black volatility, >= 0.
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor D > 0 applied to the undiscounted price.

    Returns
    -------
    ndarray of float64
        Prices, broadcast over all arguments.

    Raises
    ------
    ParameterError
        If any input is non-finite or outside its domain.

    Examples
    --------
    >>> from volcal.black import price
    >>> round(float(price(100.0, 100.0, 1.0, 0.2, True)), 12)
    7.965567455406
    """
    shape = full_shape(is_call, forward, strike, t, vol, discount)
    _, (f, k, tt, v, d) = broadcast_float(forward, strike, t, vol, discount, shape=shape)
    check_pricing_inputs(f, k, tt, v, d)
    flags = as_bool(is_call, shape)
    out = np.empty(f.size)
    _kernels.price_loop(f, k, tt, v, flags, d, out)
    return out.reshape(shape)


def normalised_price(x: ArrayLike, s: ArrayLike, theta: ArrayLike = 1.0) -> FloatArray:
    r"""Normalised Black price :math:`b(x, s, \theta)` of Jäckel (2015).

    .. math::

        b(x, s, \theta) = \theta\,[e^{x/2}\Phi(\theta(x/s + s/2))
                                 - e^{-x/2}\Phi(\theta(x/s - s/2))]

    so that the undiscounted Black price is :math:`\sqrt{FK}\,b(\ln(F/K), \sigma\sqrt{T},
    \theta)`. Evaluated region by region (asymptotic expansion, small-s expansion, scaled
    complementary error function) to full relative accuracy.

    Parameters
    ----------
    x : array_like
        Log-moneyness ln(F/K).
    s : array_like
        Total standard deviation sigma sqrt(T), >= 0.
    theta : array_like, default 1.0
        +1 for calls, -1 for puts.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> from volcal.black import normalised_price
    >>> round(float(normalised_price(0.0, 0.2)), 12)
    0.079655674554
    """
    shape, (xx, ss, th) = broadcast_float(x, s, theta)
    if not (np.all(np.isfinite(xx)) and np.all(np.isfinite(ss)) and np.all(ss >= 0.0)):
        raise ParameterError("x must be finite and s finite and >= 0")
    if not np.all(np.abs(th) == 1.0):
        raise ParameterError("theta must be +1 (call) or -1 (put)")
    out = np.empty(xx.size)
    _kernels.normalised_price_loop(xx, ss, th, out)
    return out.reshape(shape)


def vega(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    discount: ArrayLike = 1.0,
) -> FloatArray:
    r"""Black-76 vega :math:`\partial V/\partial\sigma = D\,F\,\varphi(d_1)\sqrt{T}` (same for calls and puts).

    Computed as :math:`D\sqrt{FK}\sqrt{T}\,\exp(-x^2/(2s^2) - s^2/8)/\sqrt{2\pi}`, which does
    not underflow early in the wings. Zero at ``t = 0`` or ``vol = 0`` unless F = K.

    Parameters
    ----------
    forward, strike, t, vol, discount : array_like
        As in :func:`price`.

    Returns
    -------
    ndarray of float64
        Vega per unit of volatility (per 1.00 = 100 vol points).

    Examples
    --------
    >>> from volcal.black import vega
    >>> round(float(vega(100.0, 100.0, 1.0, 0.2)), 10)
    39.6952547477
    """
    shape, (f, k, tt, v, d) = broadcast_float(forward, strike, t, vol, discount)
    check_pricing_inputs(f, k, tt, v, d)
    out = d * f * unit_vega(np.log(k / f), tt, v)
    return out.reshape(shape)


def unit_vega(k: ArrayLike, t: ArrayLike, vol: ArrayLike) -> FloatArray:
    r"""Vega per unit forward at log-moneyness :math:`k = \ln(K/F)`, undiscounted:
    :math:`\sqrt{T}\,e^{k/2}\exp(-k^2/(2s^2) - s^2/8)/\sqrt{2\pi}` with
    :math:`s = \sigma\sqrt T` (the formula of :func:`vega`, which is
    ``D F unit_vega(ln(K/F), T, vol)``). No input checks: NaN in, NaN out, for the
    calibration's hot path where the inputs are already validated arrays."""
    kk = np.asarray(k, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)
    sqrt_t = np.sqrt(tt)
    s = np.asarray(vol, dtype=np.float64) * sqrt_t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h = np.where(s > 0.0, kk / s, np.where(kk == 0.0, 0.0, np.inf))
        return np.asarray(
            np.exp(0.5 * kk) * sqrt_t * np.exp(-0.5 * h * h - 0.125 * s * s) / _SQRT_2PI
        )
