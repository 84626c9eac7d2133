"""Black-76: prices, greeks and implied volatility to machine precision.

The numeric core every other layer calls. Everything is vectorized (arguments broadcast,
float64 arrays out) and runs through numba-compiled scalar kernels, so importing this
package loads numba (``import volcal`` alone does not).

- :func:`price`, :func:`vega`, :func:`normalised_price`: Black-76 values, accurate to the
  last digits in the deep wings (Jäckel's normalised Black function).
- :func:`greeks` / :func:`coin_greeks`: delta, gamma, vega, theta, vanna, volga in USD
  (linear) or coin (inverse option) terms, as a frozen :class:`Greeks`.
- :func:`implied_vol`: "Let's Be Rational" (Jäckel 2015) inversion with a status per
  option (:class:`IVStatus`, :class:`IVResult`).

Examples
--------
>>> from volcal.black import implied_vol, price
>>> p = price(100.0, [90.0, 110.0], 0.25, 0.6, [False, True])
>>> implied_vol(p, 100.0, [90.0, 110.0], 0.25, [False, True]).round(14).tolist()
[0.6, 0.6]
"""

from __future__ import annotations

from volcal.black.greeks import Greeks, coin_greeks, greeks
from volcal.black.implied import IVResult, IVStatus, implied_vol
from volcal.black.pricing import normalised_price, price, vega

__all__ = [
    "Greeks",
    "IVResult",
    "IVStatus",
    "coin_greeks",
    "greeks",
    "implied_vol",
    "normalised_price",
    "price",
    "vega",
]
