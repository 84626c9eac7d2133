"""Liquidity of a fragmented market: who shows the best prices, how much tighter the
consolidated book is than each venue alone, and the depth per venue and expiry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LiquidityReport:
    """Fragmentation figures of an :class:`~volcal.aggregate.AggregateResult`.

    ``per_venue``: one dict per venue with ``share_best_bid`` / ``share_best_ask`` (share
    of the consolidated rows whose best side it shows), ``n_two_sided``, its median bid-ask
    width in vol points over its two-sided quotes and the consolidated median width over
    the same instruments (``consolidated_spread_vol_pts``); ``per_expiry``: depth (coin)
    on each side per venue and expiry (NaN where the venue reports no sizes);
    ``consolidated_spread_vol_pts``: median consolidated width over all two-sided rows.
    """

    per_venue: tuple[dict[str, Any], ...]
    per_expiry: tuple[dict[str, Any], ...]
    consolidated_spread_vol_pts: float

    def to_dict(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            return None if isinstance(x, float) and not np.isfinite(x) else x

        return {
            "per_venue": [{k: clean(v) for k, v in r.items()} for r in self.per_venue],
            "per_expiry": [{k: clean(v) for k, v in r.items()} for r in self.per_expiry],
            "consolidated_spread_vol_pts": clean(self.consolidated_spread_vol_pts),
        }

    def summary(self) -> str:
        lines = [
            "Liquidity: consolidated median bid-ask "
            f"{self.consolidated_spread_vol_pts:.2f} vol pts",
            f"  {'venue':<10}{'best bid':>9}{'best ask':>9}{'two-sided':>10}"
            f"{'own spread':>11}{'consol.':>9}",
        ]
        for r in self.per_venue:
            lines.append(
                f"  {r['venue']:<10}{100 * r['share_best_bid']:>8.1f}%{100 * r['share_best_ask']:>8.1f}%"
                f"{r['n_two_sided']:>10}{r['spread_vol_pts']:>11.2f}{r['consolidated_spread_vol_pts']:>9.2f}"
            )
        return "\n".join(lines)


def liquidity_report(result: Any) -> LiquidityReport:
    """The :class:`LiquidityReport` of an aggregation."""
    from volcal.aggregate._iv import chain_vols

    ch = result.chain
    c_bid = chain_vols(ch, "bid")
    c_ask = chain_vols(ch, "ask")
    c_width = np.where(np.isfinite(c_bid) & np.isfinite(c_ask), c_ask - c_bid, np.nan)
    keys_c = pd.MultiIndex.from_arrays([ch.expiry, ch.strike, ch.is_call])
    q = result.quotes
    keys_q = pd.MultiIndex.from_arrays([q.expiry, q.strike, q.is_call])
    pos = keys_c.get_indexer(keys_q)
    width_q = result.quote_iv_ask - result.quote_iv_bid
    two_q = np.isfinite(width_q) & (width_q >= 0)
    n_bid = max(int(np.sum(result.bid_venue != "")), 1)
    n_ask = max(int(np.sum(result.ask_venue != "")), 1)
    per_venue = []
    for v in result.venues:
        m = (result.quote_venue == v.name) & two_q
        cw = c_width[pos[m]]
        per_venue.append(
            {
                "venue": v.name,
                "status": v.status,
                "share_best_bid": v.n_best_bid / n_bid,
                "share_best_ask": v.n_best_ask / n_ask,
                "n_two_sided": int(m.sum()),
                "spread_vol_pts": 100.0 * float(np.median(width_q[m])) if m.any() else np.nan,
                "consolidated_spread_vol_pts": 100.0 * float(np.nanmedian(cw))
                if np.isfinite(cw).any()
                else np.nan,
            }
        )
    per_expiry = []
    for e in np.unique(q.expiry):
        for v in result.venues:
            m = (q.expiry == e) & (result.quote_venue == v.name)
            if not m.any():
                continue
            bs, as_ = q.bid_size[m], q.ask_size[m]
            per_expiry.append(
                {
                    "expiry": pd.Timestamp(e).tz_localize("UTC").isoformat(),
                    "venue": v.name,
                    "n_quotes": int(m.sum()),
                    "bid_depth": float(np.nansum(bs)) if np.isfinite(bs).any() else np.nan,
                    "ask_depth": float(np.nansum(as_)) if np.isfinite(as_).any() else np.nan,
                }
            )
    return LiquidityReport(
        per_venue=tuple(per_venue),
        per_expiry=tuple(per_expiry),
        consolidated_spread_vol_pts=100.0 * float(np.nanmedian(c_width))
        if np.isfinite(c_width).any()
        else float("nan"),
    )


__all__ = ["LiquidityReport", "liquidity_report"]
