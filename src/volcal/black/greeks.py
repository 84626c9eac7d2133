"""Black-76 greeks in USD (linear) terms and in coin terms for inverse options."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.black._arrays import as_bool, broadcast_float, check_pricing_inputs, full_shape
from volcal.black.pricing import price as black_price
from volcal.errors import ParameterError

_INV_SQRT_2PI = 0.3989422804014326779399460599343818684758586311649

Units = Literal["usd", "coin"]


@dataclass(frozen=True)
class Greeks:
    """Black-76 sensitivities, each an array broadcast over the inputs.

    Attributes
    ----------
    delta, gamma, vega, theta, vanna, volga : ndarray of float64
        See :func:`greeks` (``units="usd"``) and :func:`coin_greeks` (``units="coin"``)
        for the exact definitions.
    units : {"usd", "coin"}
        Unit system of the values.
    """

    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    vanna: FloatArray
    volga: FloatArray
    units: str = "usd"

    _NAMES = ("delta", "gamma", "vega", "theta", "vanna", "volga")

    def summary(self) -> str:
        """Text table: one line per greek with its value (scalar) or min/max (array)."""
        lines = [f"Greeks ({self.units} terms)"]
        for name in self._NAMES:
            v = np.asarray(getattr(self, name))
            if v.size == 1:
                lines.append(f"  {name:<6} {float(v.reshape(-1)[0]): .10g}")
            else:
                lines.append(
                    f"  {name:<6} min {np.min(v): .6g}  max {np.max(v): .6g}  (n={v.size})"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of lists (infinite limits become the strings 'inf'/'-inf')."""

        def clean(a: FloatArray) -> Any:
            return [
                x if np.isfinite(x) else str(x) for x in np.asarray(a, float).reshape(-1).tolist()
            ]

        out: dict[str, Any] = {"units": self.units, "shape": list(np.shape(self.delta))}
        for f in fields(self):
            if f.name != "units":
                out[f.name] = clean(getattr(self, f.name))
        return out


def greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    *,
    units: Units = "usd",
) -> Greeks:
    r"""Black-76 greeks of the discounted price :math:`V` (USD terms) or of :math:`V/F` (coin).

    With :math:`s = \sigma\sqrt{T}`, :math:`d_1 = \ln(F/K)/s + s/2`, :math:`d_2 = d_1 - s`,
    :math:`\theta = \pm 1` for calls/puts and :math:`r = -\ln(D)/T` (the discount factor is
    read as :math:`D = e^{-rT}` with constant r):

    .. math::

        \Delta = D\theta\Phi(\theta d_1),\quad \Gamma = \frac{D\varphi(d_1)}{F s},\quad
        \mathcal{V} = D F\varphi(d_1)\sqrt{T},\quad
        \Theta = -\frac{D F\varphi(d_1)\sigma}{2\sqrt{T}} + rV,

        \text{vanna} = \frac{\partial\Delta}{\partial\sigma} = -\frac{D\varphi(d_1)d_2}{\sigma},
        \quad \text{volga} = \frac{\partial\mathcal{V}}{\partial\sigma}
        = \mathcal{V}\frac{d_1 d_2}{\sigma}.

    Delta and gamma are derivatives with respect to the forward, vega per unit of vol,
    theta :math:`= -\partial V/\partial T` per year (F, K, r fixed). At :math:`s = 0`
    (``t = 0`` or ``vol = 0``) the values are the limits :math:`s \to 0`: delta is
    :math:`D\theta` in the money, 0 out of the money and :math:`D\theta/2` at
    :math:`F = K`, where gamma is :math:`+\infty` (and theta :math:`-\infty` if ``t = 0``).

    ``units="coin"`` gives the greeks of an inverse (coin-settled) option whose coin price
    is :math:`c = V/F`; see :func:`coin_greeks`.

    Parameters
    ----------
    forward, strike, t, vol, is_call, discount : array_like
        As in :func:`volcal.black.price`.
    units : {"usd", "coin"}, default "usd"

    Returns
    -------
    Greeks

    Raises
    ------
    ParameterError
        For inputs outside their domain or an unknown ``units``.

    Examples
    --------
    >>> from volcal.black import greeks
    >>> g = greeks(100.0, 100.0, 1.0, 0.2, True)
    >>> round(float(g.delta), 12), round(float(g.vega), 10)
    (0.539827837277, 39.6952547477)
    """
    if units not in ("usd", "coin"):
        raise ParameterError(f"units must be 'usd' or 'coin', got {units!r}")
    shape = full_shape(is_call, forward, strike, t, vol, discount)
    _, (f, k, tt, v, d) = broadcast_float(forward, strike, t, vol, discount, shape=shape)
    check_pricing_inputs(f, k, tt, v, d)
    theta_sign = np.where(as_bool(is_call, shape), 1.0, -1.0)
    value = black_price(f, k, tt, v, theta_sign > 0.0, d)

    sqrt_t = np.sqrt(tt)
    s = v * sqrt_t
    x = np.log(f / k)
    pos = s > 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d1 = np.where(pos, x / s + 0.5 * s, 0.0)
        d2 = d1 - s
        pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
        z = theta_sign * d1
        cdf = 0.5 * _erfc(-z / np.sqrt(2.0))
        delta = d * theta_sign * cdf
        gamma = d * pdf / (f * s)
        vega = d * f * pdf * sqrt_t
        decay = -d * f * pdf * v / (2.0 * sqrt_t)
        vanna = -d * pdf * d2 / v
        volga = vega * d1 * d2 / v
        rate = np.where(tt > 0.0, -np.log(d) / tt, 0.0)

    if not pos.all():
        zero = ~pos
        atm = zero & (x == 0.0)
        itm = zero & (theta_sign * x > 0.0)
        delta = np.where(
            zero, np.where(itm, d * theta_sign, np.where(atm, 0.5 * d * theta_sign, 0.0)), delta
        )
        gamma = np.where(zero, np.where(atm, np.inf, 0.0), gamma)
        vega = np.where(zero, np.where(atm, d * f * sqrt_t * _INV_SQRT_2PI, 0.0), vega)
        decay = np.where(zero, np.where(atm & (tt == 0.0), -np.inf, 0.0), decay)
        vanna = np.where(zero, np.where(atm, 0.5 * d * sqrt_t * _INV_SQRT_2PI, 0.0), vanna)
        volga = np.where(zero, 0.0, volga)
    theta = decay + rate * value

    if units == "coin":
        c = value / f
        delta_c = delta - c
        return Greeks(
            delta=delta_c.reshape(shape),
            gamma=(gamma - delta_c / f).reshape(shape),
            vega=(vega / f).reshape(shape),
            theta=(theta / f).reshape(shape),
            vanna=(vanna - vega / f).reshape(shape),
            volga=(volga / f).reshape(shape),
            units="coin",
        )
    return Greeks(
        delta=delta.reshape(shape),
        gamma=gamma.reshape(shape),
        vega=vega.reshape(shape),
        theta=theta.reshape(shape),
        vanna=vanna.reshape(shape),
        volga=volga.reshape(shape),
        units="usd",
    )


def coin_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> Greeks:
    r"""Greeks of an inverse (coin-settled) option with coin price :math:`c = V/F`.

    ``V`` is the USD Black-76 value (:func:`volcal.black.price`). In terms of the USD greeks
    of :func:`greeks`:

    .. math::

        \Delta_c = F\frac{\partial c}{\partial F} = \Delta - c,\qquad
        \Gamma_c = \frac{\partial \Delta_c}{\partial F} = \Gamma - \frac{\Delta_c}{F},

        \mathcal{V}_c = \frac{\mathcal{V}}{F},\quad \Theta_c = \frac{\Theta}{F},\quad
        \text{vanna}_c = \frac{\partial\Delta_c}{\partial\sigma}
        = \text{vanna} - \frac{\mathcal{V}}{F},\quad \text{volga}_c = \frac{\text{volga}}{F}.

    :math:`\Delta_c` is the coin amount of the underlying whose value moves like the
    option's coin value for a small relative move of F: the exchange (Deribit) delta of
    an inverse option, "USD delta minus coin price" of the design notes, with the USD
    delta read as the dollar delta :math:`F\Delta` divided by F. Vega, theta and volga
    are plain derivatives of the coin price (coin per unit vol, per year); gamma and
    vanna are derivatives of :math:`\Delta_c` so that the four delta-type numbers form
    one consistent system.

    Parameters
    ----------
    forward, strike, t, vol, is_call, discount : array_like
        As in :func:`volcal.black.price` (USD forward and strike).

    Returns
    -------
    Greeks
        With ``units == "coin"``.

    Examples
    --------
    >>> from volcal.black import coin_greeks, greeks, price
    >>> g, gc = greeks(100.0, 100.0, 1.0, 0.2, True), coin_greeks(100.0, 100.0, 1.0, 0.2, True)
    >>> c = float(price(100.0, 100.0, 1.0, 0.2, True)) / 100.0
    >>> bool(abs(float(gc.delta) - (float(g.delta) - c)) < 1e-15)
    True
    """
    return greeks(forward, strike, t, vol, is_call, discount, units="coin")


def _erfc(z: FloatArray) -> FloatArray:
    from scipy.special import erfc

    return np.asarray(erfc(z), dtype=np.float64)
