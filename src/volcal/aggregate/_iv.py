"""Implied vols of quotes in forward units, shared by the consensus and the liquidity
report (one place, so both read a quote's vol the same way)."""

from __future__ import annotations

import numpy as np

from volcal._typing import BoolArray, FloatArray
from volcal.market.chain import OptionChain


def stack_vols(
    price: FloatArray, strike: FloatArray, fwd: FloatArray, t: FloatArray, call: BoolArray
) -> FloatArray:
    """Black implied vols of undiscounted prices per unit forward (NaN where a price,
    the moneyness or the time cannot give one)."""
    from volcal.black import implied_vol

    with np.errstate(invalid="ignore", divide="ignore"):
        x = strike / fwd
        ok = np.isfinite(price) & (price > 0) & np.isfinite(x) & (t > 0)
    out = np.full(price.size, np.nan)
    if ok.any():
        out[ok] = np.asarray(
            implied_vol(price[ok], 1.0, x[ok], t[ok], call[ok], full_output=True).vol
        )
    return out


def chain_vols(ch: OptionChain, side: str) -> FloatArray:
    """Implied vols of one side (``"bid"``, ``"ask"``, ``"mid"``, ...) of a chain."""
    price = np.asarray(ch.forward_price(side), dtype=np.float64)  # type: ignore[arg-type]
    return stack_vols(price, ch.strike, ch.forward, ch.t, ch.is_call)


__all__ = ["chain_vols", "stack_vols"]
