"""Venues synthesised from a real Deribit snapshot, for the multi-venue tests and the
benchmark: the same chain re-quoted by other venues (re-written in their layouts and
read back), with controlled differences (wider spreads, a vol shift, shifted wings, a
spoof, a lag)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import volcal
from volcal.black import implied_vol, price
from volcal.market.chain import OptionChain

SNAPSHOT = "deribit_options_snapshot_20260107T092155Z.csv"


def reference_chain(snapshot_dir: Path, name: str = SNAPSHOT) -> OptionChain:
    """A real Deribit BTC chain made exactly representable in every venue layout: quotes
    with a forward, one forward per expiry (the median quoted future), snapshot and quote
    times rounded down to the millisecond (venue timestamps are in ms)."""
    ch = volcal.read_chain(snapshot_dir / name, "BTC")
    ch = ch.select(np.isfinite(ch.forward) & (ch.forward > 0))
    fwd = pd.Series(ch.forward).groupby(ch.expiry).transform("median").to_numpy()
    ms = ch.snapshot.value // 1_000_000 * 1_000_000
    return ch.replace(
        forward=fwd,
        underlying_price=fwd.copy(),
        snapshot=pd.Timestamp(ms, tz="UTC"),
        quote_time=np.full(len(ch), np.datetime64(ms, "ns")),
    )


def vols(ch: OptionChain, side: str) -> np.ndarray:
    p = ch.forward_price(side)  # type: ignore[arg-type]
    return np.asarray(
        implied_vol(p, 1.0, ch.strike / ch.forward, ch.t, ch.is_call, full_output=True).vol
    )


def requote(ch: OptionChain, iv_bid: np.ndarray, iv_ask: np.ndarray) -> OptionChain:
    """The inverse chain ``ch`` with bid/ask re-priced at the given vols (NaN: absent)."""
    x = ch.strike / ch.forward
    with np.errstate(invalid="ignore"):
        b = np.where(
            np.isfinite(iv_bid), price(1.0, x, ch.t, np.nan_to_num(iv_bid), ch.is_call), np.nan
        )
        a = np.where(
            np.isfinite(iv_ask), price(1.0, x, ch.t, np.nan_to_num(iv_ask), ch.is_call), np.nan
        )
    # coin price of an inverse quote = forward-unit price when underlying == forward
    return ch.replace(bid=b, ask=a)


def two_sided(ch: OptionChain) -> np.ndarray:
    b, a = vols(ch, "bid"), vols(ch, "ask")
    return np.isfinite(b) & np.isfinite(a) & (b > 0) & (a >= b)


def honest_venues(ch: OptionChain) -> dict[str, OptionChain]:
    """Deribit itself, OKX with spreads 0.5 vol pt wider each side, Bybit quoting 0.3 vol
    pt higher and Binance quoting 0.2 vol pt lower: written in each venue's layout and
    read back (so each has its own conventions)."""
    from volcal.feeds import binance, bybit, okx

    ok = two_sided(ch)
    ch = ch.select(ok)
    b, a = vols(ch, "bid"), vols(ch, "ask")
    wide = requote(ch, b - 0.005, a + 0.005)
    up = requote(ch, b + 0.003, a + 0.003)
    down = requote(ch, b - 0.002, a - 0.002)
    return {
        "deribit": ch,
        "okx": volcal.read_chain(okx.to_okx(wide)),
        "bybit": volcal.read_chain(bybit.to_bybit(up)),
        "binance": volcal.read_chain(binance.to_binance(down)),
    }


def wing_shifted(ch: OptionChain, shift: float = 0.10, wing: float = 0.1) -> OptionChain:
    """``ch`` (two-sided quotes) with the wings (|ln K/F| > ``wing``) shifted by ``shift``."""
    ch = ch.select(two_sided(ch))
    b, a = vols(ch, "bid"), vols(ch, "ask")
    w = np.abs(np.log(ch.strike / ch.forward)) > wing
    return requote(ch, np.where(w, b + shift, b), np.where(w, a + shift, a))


def spoofed(ch: OptionChain, crossed_own: bool = False) -> OptionChain:
    """A spoofing venue: bids 3 vol pts above the market's ask (crossing every other
    venue's book); with ``crossed_own`` its own ask is below its bid as well."""
    ch = ch.select(two_sided(ch))
    a = vols(ch, "ask")
    bid = a + 0.03
    ask = a + 0.02 if crossed_own else a + 0.04
    return requote(ch, bid, ask)


def lagging(ch: OptionChain, seconds: float) -> OptionChain:
    """``ch`` with every quote time ``seconds`` older."""
    qt = ch.quote_time - np.timedelta64(int(seconds * 1e9), "ns")
    return ch.replace(quote_time=qt)


def fit_ivs_at(fit: object, other: object) -> tuple[np.ndarray, np.ndarray]:
    """Vols of two fits at every quote ``fit`` used (matching slices by expiry)."""
    from volcal.report.chain import _smile_curve

    q1 = fit.quotes  # type: ignore[attr-defined]
    q2 = other.quotes  # type: ignore[attr-defined]
    a, b = [], []
    for i, e in enumerate(q1.expiries):
        j = np.flatnonzero(q2.expiries == e)
        if j.size == 0:
            continue
        k = q1.k[q1.slice_index == i]
        a.append(_smile_curve(fit, i, k))
        b.append(_smile_curve(other, int(j[0]), k))
    return np.concatenate(a), np.concatenate(b)
