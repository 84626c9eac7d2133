"""Synthetic Deribit-style chains for the portfolio-risk tests (generated, not real data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volcal.black import price
from volcal.market import OptionChain

SNAPSHOT = "2026-01-07T08:00Z"
EXPIRIES = ("2026-01-30T08:00Z", "2026-02-27T08:00Z", "2026-03-27T08:00Z", "2026-06-26T08:00Z")
INDEX = 95_000.0


def smile(k: np.ndarray, level: float = 0.5) -> np.ndarray:
    """A skewed smile in log-moneyness."""
    return np.clip(level - 0.15 * k + 0.3 * k * k, 0.2, 2.0)


def synthetic_chain(
    settlement: str = "inverse",
    index: float = INDEX,
    snapshot: str = SNAPSHOT,
    level: float = 0.5,
    underlying: str = "BTC",
) -> OptionChain:
    """Calls and puts 60k..150k on four expiries, marks = Black at ``smile``, 3% spreads."""
    snap = pd.Timestamp(snapshot)
    strikes = np.arange(60_000.0, 150_001.0, 5_000.0)
    rows = []
    for e in EXPIRIES:
        t = (pd.Timestamp(e) - snap).total_seconds() / (365.0 * 86400.0)
        f = index * np.exp(0.05 * t)
        for c in (True, False):
            rows.append((e, strikes, c, t, f))
    exp = np.concatenate([[e] * len(s) for e, s, *_ in rows])
    k = np.concatenate([s for _, s, *_ in rows])
    calls = np.concatenate([[c] * len(s) for _, s, c, *_ in rows])
    t = np.concatenate([[tt] * len(s) for _, s, _, tt, _ in rows])
    f = np.concatenate([[ff] * len(s) for _, s, *_, ff in rows])
    vol = smile(np.log(k / f), level)
    usd = price(f, k, t, vol, calls)
    q = usd / f if settlement == "inverse" else usd
    mark = np.maximum(q, 1e-8)
    prefix = underlying if settlement == "inverse" else f"{underlying}_USDC"
    names = [
        f"{prefix}-{pd.Timestamp(e).day}{pd.Timestamp(e).strftime('%b').upper()}"
        f"{pd.Timestamp(e).year % 100:02d}-{int(kk)}-{'C' if c else 'P'}"
        for e, kk, c in zip(exp, k, calls, strict=True)
    ]
    return OptionChain.from_arrays(
        underlying=underlying,
        snapshot=snapshot,
        expiry=exp,
        strike=k,
        is_call=calls,
        mark=mark,
        bid=np.maximum(mark * 0.97 - 1e-4 * (1 if settlement == "inverse" else index), 0.0),
        ask=mark * 1.03 + 1e-4 * (1 if settlement == "inverse" else index),
        underlying_price=f,
        index_price=index,
        mark_iv=vol,
        settlement=settlement,  # type: ignore[arg-type]
        venue="deribit",
        instrument=names,
    )
