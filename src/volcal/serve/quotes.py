"""The quote rows the live page draws (bid/ask and mark vols per out-of-the-money
strike), shared by the in-process app and the engine process."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["chain_quotes", "finite_or_none"]


def finite_or_none(x: Any) -> float | None:
    """``x`` as a float when it is a finite number, else None (JSON null)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def chain_quotes(chain: Any) -> list[dict[str, Any]]:
    """Out-of-the-money quotes of an ``OptionChain`` as rows: strike (USD per coin),
    bid/ask implied vols (Black-76 on the undiscounted forward prices; null when a side
    is missing or below intrinsic) and the venue's mark vol, all fractions."""
    import numpy as np

    from volcal.black import implied_vol

    n = len(chain.strike)
    if n == 0:
        return []
    fwd = np.asarray(chain.forward, dtype=float)
    x = np.asarray(chain.strike, dtype=float) / fwd
    t = np.asarray(chain.t, dtype=float)
    call = np.asarray(chain.is_call, dtype=bool)
    otm = np.where(call, x >= 1.0, x < 1.0) & np.isfinite(x) & (t > 0)
    out: dict[str, Any] = {}
    for side in ("bid", "ask"):
        p = np.asarray(chain.forward_price(side), dtype=float)
        v = np.full(n, np.nan)
        ok = otm & np.isfinite(p) & (p > 0)
        if ok.any():
            with np.errstate(all="ignore"):
                v[ok] = implied_vol(p[ok], 1.0, x[ok], t[ok], call[ok], full_output=True).vol
        out[side] = v
    mark = np.full(n, np.nan)
    if getattr(chain, "mark_iv", None) is not None:
        mark = np.asarray(chain.mark_iv, dtype=float)
    idx = np.flatnonzero(otm)
    idx = idx[np.argsort(x[idx])]
    return [
        {
            "strike": float(chain.strike[i]),
            "is_call": bool(call[i]),
            "bid_iv": finite_or_none(out["bid"][i]),
            "ask_iv": finite_or_none(out["ask"][i]),
            "mark_iv": finite_or_none(mark[i]),
        }
        for i in idx
    ]
