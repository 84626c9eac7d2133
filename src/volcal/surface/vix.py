"""A 30-day implied-volatility index from a chain, by the VIX white-paper method.

Cboe's VIX white paper (2019 edition) computes, for the two expiries that bracket the
target horizon (the latest at or before it, "near", and the first after it, "next"),

.. math::

    \\sigma_j^2 = \\frac{2}{T_j}\\sum_i \\frac{\\Delta K_i}{K_i^2} e^{R T_j} Q(K_i)
                 - \\frac{1}{T_j}\\Big(\\frac{F_j}{K_0} - 1\\Big)^2,

with :math:`K_0` the first listed strike at or below the forward :math:`F_j`,
:math:`Q(K_i)` the mid price of the out-of-the-money option at :math:`K_i` (puts below
:math:`K_0`, calls above, the average of the put and call at :math:`K_0`),
:math:`\\Delta K_i` half the distance between the neighbouring strikes (one-sided at the
ends). Moving away from :math:`K_0` an option with a zero bid is skipped, and after two
consecutive zero bids no further strike on that side is used. The index is then the
time-weighted interpolation of the two total variances to the horizon
:math:`T = d/365`,

.. math::

    \\text{index} = 100\\sqrt{\\Big[T_1\\sigma_1^2\\frac{T_2 - T}{T_2 - T_1}
                  + T_2\\sigma_2^2\\frac{T - T_1}{T_2 - T_1}\\Big]\\frac{1}{T}}.

Deribit's DVOL follows the same construction on its BTC/ETH options (inverse, coin
quoted). Here :math:`e^{RT}Q` is the undiscounted USD price: coin price x the expiry's
forward (the quoted future), so no rate enters. Times are exact ACT/365 from the UTC
timestamps (the white paper counts minutes; the difference is below a second). The
quote selection is the white paper's own (bid > 0, zero-bid truncation), independent of
``volcal.clean``'s flags; ``price="mark"`` uses the venue's mark prices instead of
mids (still truncated by the bid rule).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import DataError, ParameterError

__all__ = ["VolIndex", "expiry_variance", "vol_index"]


@dataclass(frozen=True)
class VolIndex:
    """A constant-maturity vol index (VIX/DVOL method) and its two legs.

    Attributes
    ----------
    value : float
        Index in vol points (e.g. 45.3 = 45.3 % annualised vol).
    days : float
        Horizon in days.
    near_expiry, next_expiry : str
    t_near, t_next : float
        Years to each leg's expiry.
    var_near, var_next : float
        :math:`\\sigma_j^2` of each leg (annualised variance).
    forward_near, forward_next, k0_near, k0_next : float
    n_near, n_next : int
        Strikes used in each leg.
    price : str
        ``"mid"`` or ``"mark"``.
    """

    value: float
    days: float
    near_expiry: str
    next_expiry: str
    t_near: float
    t_next: float
    var_near: float
    var_next: float
    forward_near: float
    forward_next: float
    k0_near: float
    k0_next: float
    n_near: int
    n_next: int
    price: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.days:g}-day vol index {self.value:.2f} ({self.price} prices): "
            f"near {self.near_expiry} ({365 * self.t_near:.2f} d, "
            f"{100 * math.sqrt(self.var_near):.2f}, {self.n_near} strikes), "
            f"next {self.next_expiry} ({365 * self.t_next:.2f} d, "
            f"{100 * math.sqrt(self.var_next):.2f}, {self.n_next} strikes)"
        )


def _side(
    strikes: FloatArray, bids: FloatArray, prices: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Walk away from K0 (index 0 first) applying the zero-bid rules."""
    ks, qs = [], []
    zeros = 0
    for k, b, q in zip(strikes, bids, prices, strict=True):
        if not (np.isfinite(b) and b > 0):
            zeros += 1
            if zeros >= 2:
                break
            continue
        zeros = 0
        if np.isfinite(q) and q > 0:
            ks.append(k)
            qs.append(q)
    return np.asarray(ks, dtype=np.float64), np.asarray(qs, dtype=np.float64)


def expiry_variance(
    strike: Any, is_call: Any, bid: Any, price: Any, forward: float, t: float
) -> tuple[float, float, int]:
    """:math:`\\sigma^2` of one expiry by the white-paper sum (module docs).

    Parameters
    ----------
    strike, is_call, bid, price : array_like
        Quotes of one expiry; ``price`` undiscounted in the strike's units (USD), ``bid``
        only tested for being positive.
    forward, t : float

    Returns
    -------
    (variance, K0, number of strikes used)
    """
    k = np.asarray(strike, dtype=np.float64)
    c = np.asarray(is_call, dtype=bool)
    b = np.asarray(bid, dtype=np.float64)
    q = np.asarray(price, dtype=np.float64)
    if not (forward > 0 and t > 0):
        raise DataError("vol index: forward and t must be > 0")
    below = np.unique(k[k <= forward])
    if below.size == 0:
        raise DataError("vol index: no strike at or below the forward")
    k0 = float(below[-1])
    puts = ~c & (k < k0)
    calls = c & (k > k0)
    po = np.argsort(-k[puts])  # from K0 downwards
    co = np.argsort(k[calls])  # from K0 upwards
    kp, qp = _side(k[puts][po], b[puts][po], q[puts][po])
    kc, qc = _side(k[calls][co], b[calls][co], q[calls][co])
    at = (k == k0) & np.isfinite(q) & (q > 0)
    q0 = float(np.mean(q[at])) if at.any() else float("nan")
    ks = np.concatenate([kp[::-1], [k0] if np.isfinite(q0) else [], kc])
    qs = np.concatenate([qp[::-1], [q0] if np.isfinite(q0) else [], qc])
    if ks.size < 3:
        raise DataError(f"vol index: only {ks.size} usable strikes at t={t:.5f}")
    dk = np.empty_like(ks)
    dk[1:-1] = 0.5 * (ks[2:] - ks[:-2])
    dk[0] = ks[1] - ks[0]
    dk[-1] = ks[-1] - ks[-2]
    var = 2.0 / t * float(np.sum(dk / ks**2 * qs)) - (forward / k0 - 1.0) ** 2 / t
    return var, k0, int(ks.size)


def vol_index(chain: Any, *, days: float = 30.0, price: str = "mid") -> VolIndex:
    """The ``days``-day implied-vol index of a chain (VIX white paper / DVOL method).

    Parameters
    ----------
    chain : OptionChain
        With forwards (a Deribit chain carries the quoted future per expiry).
    days : float
        Horizon (30 for VIX and DVOL).
    price : {"mid", "mark"}

    Raises
    ------
    DataError
        When no expiry lies on each side of the horizon, or a leg has too few strikes.

    Examples
    --------
    >>> idx = vol_index(volcal.read_chain("snapshot.csv", currency="BTC"))   # doctest: +SKIP
    >>> round(idx.value, 2)                                                 # doctest: +SKIP
    """
    from volcal.calibration.result import expiry_label

    if price not in ("mid", "mark"):
        raise ParameterError(f"price must be 'mid' or 'mark', got {price!r}")
    if not (days > 0 and math.isfinite(days)):
        raise ParameterError(f"days must be > 0, got {days}")
    horizon = days / 365.0
    t_all = chain.t
    fwd = chain.forward
    usd = chain.usd(price)
    with np.errstate(invalid="ignore"):
        undiscounted = usd / chain.discount
    legs = []
    for e in chain.expiries:
        m = (chain.expiry == e) & (t_all > 0)
        if not m.any():
            continue
        f = fwd[m]
        f = f[np.isfinite(f) & (f > 0)]
        if f.size == 0:
            raise DataError(
                f"vol index: expiry {expiry_label(e)} has no forward (clean the chain first)"
            )
        legs.append((float(t_all[m][0]), e, float(np.median(f)), m))
    before = [leg for leg in legs if leg[0] <= horizon]
    after = [leg for leg in legs if leg[0] > horizon]
    if not before or not after:
        raise DataError(
            f"vol index: the chain's expiries do not bracket {days:g} days "
            f"({', '.join(f'{365 * leg[0]:.1f}' for leg in legs)} days listed)"
        )
    near, nxt = before[-1], after[0]
    out = []
    for t, _e, f, m in (near, nxt):
        var, k0, n = expiry_variance(
            chain.strike[m], chain.is_call[m], chain.bid[m], undiscounted[m], f, t
        )
        out.append((var, k0, n))
    (v1, k01, n1), (v2, k02, n2) = out
    t1, t2 = near[0], nxt[0]
    total = t1 * v1 * (t2 - horizon) / (t2 - t1) + t2 * v2 * (horizon - t1) / (t2 - t1)
    if not total > 0:
        raise DataError("vol index: interpolated variance is not positive")
    return VolIndex(
        value=100.0 * math.sqrt(total / horizon),
        days=float(days),
        near_expiry=expiry_label(near[1]),
        next_expiry=expiry_label(nxt[1]),
        t_near=t1,
        t_next=t2,
        var_near=v1,
        var_next=v2,
        forward_near=near[2],
        forward_next=nxt[2],
        k0_near=k01,
        k0_next=k02,
        n_near=n1,
        n_next=n2,
        price=price,
    )
