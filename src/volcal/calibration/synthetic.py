"""Synthetic quote surfaces from a known model (parameter-recovery tests, benchmarks).

Prices come from :func:`volcal.price` (the library pricer, independent of the fixed-grid
COS engine the calibrator uses), so a recovery test also checks that the two pricers
agree. Bid and ask are placed symmetrically in implied vol around the model vol:
:math:`\\sigma^{bid,ask} = \\sigma^{model} + \\epsilon \\mp h/2` with half-spread
:math:`h/2` and optional noise :math:`\\epsilon \\sim N(0, (\\text{noise}\\cdot h/2)^2)`
(seeded). The mid price is the price at the mid vol (exactly the model price without
noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from volcal._typing import ArrayLike
from volcal.calibration.quotes import QuoteSet, black_vega_fwd

__all__ = ["synthetic_quotes"]

_BASE = np.datetime64("2026-01-01T08:00:00", "ns")
_YEAR_NS = 365.0 * 86400e9


def synthetic_quotes(
    model: Any,
    t: ArrayLike,
    k: ArrayLike,
    *,
    spread_vol: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    forward: float = 100_000.0,
) -> QuoteSet:
    """Out-of-the-money quotes of ``model`` on a (maturity x log-moneyness) grid.

    Parameters
    ----------
    model : volcal model instance
    t : array_like
        Maturities in years.
    k : array_like
        Log-moneyness grid :math:`\\ln(K/F)`, used for every maturity scaled by
        :math:`\\sqrt{T}` (so short expiries are not quoted 10 deviations out).
    spread_vol : float
        Full bid-ask width in vol (0.01 = 1 vol point); 0 gives locked quotes.
    noise : float
        Mid noise as a multiple of the half-spread (standard deviation).
    seed : int
    forward : float
        Forward level (only labels; all maths is in forward units).

    Examples
    --------
    >>> from volcal.models import Heston
    >>> q = synthetic_quotes(Heston(0.04, 2, 0.04, 0.5, -0.6), [0.25, 1.0], [-0.2, 0, 0.2])
    >>> len(q), q.n_slices
    (6, 2)
    """
    from volcal.black import implied_vol
    from volcal.black import price as black_price
    from volcal.pricing import price

    tt = np.asarray(t, dtype=np.float64).ravel()
    kk = np.asarray(k, dtype=np.float64).ravel()
    t_q = np.repeat(tt, kk.size)
    k_q = (kk[None, :] * np.sqrt(np.maximum(tt, 1e-4))[:, None]).ravel()
    call = k_q >= 0
    strike = np.exp(k_q)
    p = np.asarray(price(model, 1.0, strike, t_q, call), dtype=np.float64)
    iv = np.asarray(implied_vol(p, 1.0, strike, t_q, call), dtype=np.float64)
    keep = np.isfinite(iv) & (iv > 0)
    rng = np.random.default_rng(seed)
    half = 0.5 * spread_vol
    mid_iv = iv + (rng.normal(0.0, noise * half, iv.size) if noise > 0 else 0.0)
    mid_iv = np.maximum(mid_iv, 1e-3)
    bid_iv = np.maximum(mid_iv - half, 1e-4)
    ask_iv = mid_iv + half

    def px(v: Any) -> Any:
        return np.asarray(black_price(1.0, strike, t_q, v, call), dtype=np.float64)

    bid, ask = px(bid_iv), px(ask_iv)
    # the mid is the price at the mid vol (the model price itself when noise = 0), not the
    # average of bid and ask prices, so noise-free recovery is exact
    mid = np.where(mid_iv == iv, p, px(mid_iv))
    iv_mid = np.where(mid_iv == iv, iv, mid_iv)
    keep &= np.isfinite(iv_mid) & (mid > 1e-14)
    sl = np.repeat(np.arange(tt.size), kk.size)
    expiry_slices = _BASE + (tt * _YEAR_NS).astype("timedelta64[ns]")
    kept_slices = np.unique(sl[keep])
    remap = np.full(tt.size, -1)
    remap[kept_slices] = np.arange(kept_slices.size)
    idx = np.flatnonzero(keep)
    n = idx.size
    return QuoteSet(
        row=np.arange(n, dtype=np.int64),
        instrument=np.array([f"SYN-{t_q[i]:.4f}-{k_q[i]:+.4f}" for i in idx], dtype=object),
        expiry=expiry_slices[sl[idx]],
        t=t_q[idx],
        forward=np.full(n, forward),
        strike=forward * strike[idx],
        k=k_q[idx],
        is_call=call[idx],
        bid=bid[idx],
        ask=ask[idx],
        mid=mid[idx],
        iv_bid=bid_iv[idx],
        iv_ask=ask_iv[idx],
        iv_mid=iv_mid[idx],
        vega=black_vega_fwd(k_q[idx], t_q[idx], iv_mid[idx]),
        open_interest=np.full(n, 10.0),
        slice_index=remap[sl[idx]].astype(np.int64),
        expiries=expiry_slices[kept_slices],
        t_slices=tt[kept_slices],
        forward_slices=np.full(kept_slices.size, forward),
    )
