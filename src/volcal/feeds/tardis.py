"""Tardis ``options_chain`` CSV -> :class:`~volcal.market.OptionChain` (one per exchange),
and back.

Layout (Tardis's documented ``options_chain`` data type, one row per update of one option)
-----------------------------------------------------------------------------------------
``exchange`` (``deribit``, ``okex-options``, ``bybit-options``, ``binance-options``...),
``symbol`` (the exchange's option name), ``timestamp`` and ``local_timestamp`` (Unix
**microseconds**: exchange time and Tardis's receive time), ``type`` (``call``/``put``),
``strike_price``, ``expiration`` (Unix microseconds), ``open_interest``, ``last_price``,
``bid_price``, ``bid_amount``, ``bid_iv``, ``ask_price``, ``ask_amount``, ``ask_iv``,
``mark_price``, ``mark_iv``, ``underlying_index``, ``underlying_price``, greeks.

One file holds several exchanges and many updates per option. A chain is the latest row
of every option of one exchange and underlying at or before the snapshot (default: the
file's latest ``timestamp``); each quote keeps its own time (``quote_time``), so a venue
whose updates stopped is visible to :func:`volcal.aggregate`.

Units follow the exchange (:mod:`volcal.market.conventions`): Deribit and OKX prices in
coin (inverse), Bybit and Binance in USD stablecoins (linear); ``underlying_price`` is
taken as the forward of the option. Tardis publishes implied vols as decimals; a file
whose ``mark_iv`` values are evidently percent (median above 5) is read as percent
(recorded in ``chain.meta["iv_unit"]``). Sizes are taken as reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from volcal.feeds._common import build_chain, fail, numeric, parse_is_call, require_present
from volcal.feeds._venue import (
    chain_rows_for_writer,
    coin_prices,
    day_text,
    ms_of,
    strike_text,
    usd_forward_prices,
    yymmdd,
)
from volcal.market.chain import OptionChain, Settlement, to_utc_timestamp
from volcal.market.conventions import TARDIS_EXCHANGES, convention

TARDIS_COLUMNS: tuple[str, ...] = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "type",
    "strike_price",
    "expiration",
    "open_interest",
    "last_price",
    "bid_price",
    "bid_amount",
    "bid_iv",
    "ask_price",
    "ask_amount",
    "ask_iv",
    "mark_price",
    "mark_iv",
    "underlying_index",
    "underlying_price",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
)
#: volcal venue -> the Tardis exchange id written by :func:`to_tardis`.
_TARDIS_ID = {
    "deribit": "deribit",
    "okx": "okex-options",
    "bybit": "bybit-options",
    "binance": "binance-options",
}
_EXTRA = ("delta", "gamma", "vega", "theta", "rho", "last_price", "local_timestamp")


def is_tardis(columns: list[str]) -> bool:
    """Whether a CSV header is Tardis's ``options_chain`` (greeks may be absent)."""
    need = set(TARDIS_COLUMNS) - set(_EXTRA)
    return need <= {c.strip() for c in columns}


def _us_to_datetime64(us: np.ndarray) -> np.ndarray:
    out = np.full(us.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(us)
    out[ok] = (np.round(us[ok]).astype(np.int64) * 1000).astype("datetime64[ns]")
    return out


def exchanges(df: pd.DataFrame) -> list[str]:
    """Exchanges present in a Tardis frame."""
    return sorted(df["exchange"].astype(str).str.strip().unique())


def read_tardis(
    df: pd.DataFrame,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
    exchange: str | None = None,
) -> OptionChain:
    """The chain of one exchange and underlying of a Tardis ``options_chain`` frame.

    ``exchange`` (a Tardis id or a volcal venue name) is needed when the file holds
    several; :func:`read_tardis_venues` reads them all.
    """
    require_present(df, ("exchange", "symbol", "timestamp", "type", "expiration"), where)
    found = exchanges(df)
    if exchange is None:
        if len(found) > 1:
            raise fail(
                where,
                f"Tardis file holds {', '.join(found)}: pick one (exchange=...) or read "
                "them all with volcal.feeds.tardis.read_tardis_venues / `volcal venues`",
            )
        ex = found[0]
    else:
        want = exchange.lower()
        hits = [e for e in found if e == want or TARDIS_EXCHANGES.get(e) == want]
        if not hits:
            raise fail(where, f"no {exchange} rows in Tardis file (it holds {', '.join(found)})")
        ex = hits[0]
    venue = TARDIS_EXCHANGES.get(ex)
    if venue is None:
        raise fail(
            where,
            f"Tardis exchange {ex!r} is not supported (known: {', '.join(sorted(TARDIS_EXCHANGES))})",
        )
    d = df.loc[df["exchange"].astype(str).str.strip() == ex].reset_index(drop=True)
    und_all = d["symbol"].astype(str).str.split("-").str[0].str.upper()
    unds = sorted(und_all.unique())
    if currency is None:
        if len(unds) > 1:
            raise fail(where, f"{ex} rows hold {' and '.join(unds)}: pass currency=...")
        und = unds[0]
    else:
        und = currency.upper()
        if und not in unds:
            raise fail(where, f"no {und} options of {ex} in file (it holds {', '.join(unds)})")
    d = d.loc[(und_all == und).to_numpy()].reset_index(drop=True)
    ts = numeric(d, "timestamp", where)
    if snapshot is None:
        snap_us = float(np.nanmax(ts))
        snap = pd.Timestamp(int(snap_us) * 1000, tz="UTC")
        how = "latest"
    else:
        snap = to_utc_timestamp(snapshot, "snapshot")
        snap_us = snap.value / 1000.0
        how = "requested"
    keep = ts <= snap_us
    if not keep.any():
        raise fail(where, f"no {ex} {und} rows at or before {snap.isoformat()}")
    d = d.loc[keep].assign(_ts=ts[keep])
    d = d.sort_values(["symbol", "_ts"], kind="stable").groupby("symbol", sort=True).tail(1)
    d = d.reset_index(drop=True)
    conv = convention(venue)
    mark_iv = numeric(d, "mark_iv", where)
    iv_scale = 0.01 if np.isfinite(mark_iv).any() and np.nanmedian(mark_iv) > 5 else 1.0
    bid = numeric(d, "bid_price", where)
    ask = numeric(d, "ask_price", where)
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or conv.settlement,
        venue=venue,
        instrument=d["symbol"].astype(str).to_numpy(dtype=object),
        expiry=_us_to_datetime64(numeric(d, "expiration", where)),
        strike=numeric(d, "strike_price", where),
        is_call=parse_is_call(d["type"].to_numpy(), where),
        bid=np.where(bid == 0, np.nan, bid),
        ask=np.where(ask == 0, np.nan, ask),
        mark=numeric(d, "mark_price", where),
        bid_size=numeric(d, "bid_amount", where),
        ask_size=numeric(d, "ask_amount", where),
        open_interest=numeric(d, "open_interest", where),
        quote_time=_us_to_datetime64(d["_ts"].to_numpy(dtype=np.float64)),
        underlying_price=numeric(d, "underlying_price", where),
        mark_iv=mark_iv * iv_scale,
        meta={
            "source": where,
            "format": "tardis-options-chain",
            "venue": venue,
            "tardis_exchange": ex,
            "snapshot_choice": how,
            "iv_unit": "percent" if iv_scale == 0.01 else "decimal",
        },
    )


def read_tardis_venues(
    df: pd.DataFrame, where: str, currency: str | None = None, snapshot: Any = None
) -> dict[str, OptionChain]:
    """Every exchange of a Tardis frame as ``{venue: chain}`` (one underlying).

    Without ``snapshot`` all chains share the file's latest timestamp, so an exchange
    whose rows stop early shows as stale.
    """
    if snapshot is None:
        snapshot = pd.Timestamp(int(np.nanmax(numeric(df, "timestamp", where))) * 1000, tz="UTC")
    out: dict[str, OptionChain] = {}
    for ex in exchanges(df):
        ch = read_tardis(df, where, currency, snapshot, None, exchange=ex)
        if ch.venue in out:
            raise fail(where, f"two Tardis exchanges map to venue {ch.venue!r}")
        out[ch.venue] = ch
    return out


def _name(venue: str, und: str, e: pd.Timestamp, k: float, call: bool) -> str:
    cp = "C" if call else "P"
    if venue == "okx":
        return f"{und}-USD-{yymmdd(e)}-{strike_text(k)}-{cp}"
    if venue == "binance":
        return f"{und}-{yymmdd(e)}-{strike_text(k)}-{cp}"
    return f"{und}-{day_text(e)}-{strike_text(k)}-{cp}"


def to_tardis(chains: Mapping[str, OptionChain] | OptionChain) -> pd.DataFrame:
    """A Tardis ``options_chain`` frame of one or several venues' chains (one row per
    quote, at each chain's snapshot; ``to_csv(index=False)`` gives the file).

    Prices in each venue's units, ``underlying_price`` the forward, times in
    microseconds.
    """
    if isinstance(chains, OptionChain):
        chains = {chains.venue: chains}
    frames = []
    for venue, chain in chains.items():
        ch = chain_rows_for_writer(chain)
        conv = convention(venue)
        inverse = conv.settlement == "inverse"
        snap_us = int(ch.snapshot.value // 1000)
        qt = ch.quote_time.astype("datetime64[us]").astype(np.int64)
        ts = np.where(np.isnat(ch.quote_time), snap_us, qt)
        und = ch.underlying.upper()
        frames.append(
            pd.DataFrame(
                {
                    "exchange": _TARDIS_ID.get(venue, venue),
                    "symbol": [
                        _name(venue, und, pd.Timestamp(e), k, c)
                        for e, k, c in zip(ch.expiry, ch.strike, ch.is_call, strict=True)
                    ],
                    "timestamp": ts,
                    "local_timestamp": ts,
                    "type": np.where(ch.is_call, "call", "put"),
                    "strike_price": ch.strike,
                    "expiration": [ms_of(pd.Timestamp(e)) * 1000 for e in ch.expiry],
                    "open_interest": ch.open_interest,
                    "last_price": np.nan,
                    "bid_price": coin_prices(ch, "bid")
                    if inverse
                    else usd_forward_prices(ch, "bid"),
                    "bid_amount": ch.bid_size,
                    "bid_iv": np.nan,
                    "ask_price": coin_prices(ch, "ask")
                    if inverse
                    else usd_forward_prices(ch, "ask"),
                    "ask_amount": ch.ask_size,
                    "ask_iv": np.nan,
                    "mark_price": coin_prices(ch, "mark")
                    if inverse
                    else usd_forward_prices(ch, "mark"),
                    "mark_iv": ch.mark_iv,
                    "underlying_index": [f"{und}-{day_text(pd.Timestamp(e))}" for e in ch.expiry],
                    "underlying_price": ch.forward,
                    "delta": np.nan,
                    "gamma": np.nan,
                    "vega": np.nan,
                    "theta": np.nan,
                    "rho": np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "TARDIS_COLUMNS",
    "exchanges",
    "is_tardis",
    "read_tardis",
    "read_tardis_venues",
    "to_tardis",
]
