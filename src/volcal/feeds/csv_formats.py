"""Readers of the Deribit option-chain CSV layouts found in public data sets.

Each reader takes the parsed table (``pandas.DataFrame`` of strings/numbers as
``read_csv`` gives it) and returns an :class:`~volcal.market.chain.OptionChain`. All
of them are Deribit inverse chains: prices in coin, ``underlying_price`` the future (or
synthetic future, or index) each option is quoted against.

Layouts
-------
``svcj-snapshot``
    Full BTC+ETH snapshots (``deribit_options_snapshot_*.csv``): one row per option
    with ``bid_price/ask_price/mark_price`` in coin, ``futures_price``/``underlying``
    (the quoted underlying of the expiry), ``index_price``, ``implied_volatility``
    (mark IV, decimal), ``open_interest``, ``volume``, ``timestamp``. Its
    ``time_to_maturity`` column is ACT/365.25; volcal uses ACT/365.
``deribit-order-book``
    Raw ``public/get_order_book`` fields, one row per option (``best_bid_price``,
    ``best_ask_price``, ``mark_iv`` in %, ``underlying_price``, ``timestamp`` in ms).
    A zero best bid/ask means an empty side and is read as absent (NaN).
``deribit-instrument-ticker``
    Instrument + ticker fields (``type``, ``expiration_timestamp``, ``spot_ref``,
    ``best_bid_price``...). The layout carries no snapshot time: pass ``snapshot=``.
``deribit-usd-btc-snapshots``
    Snapshots with prices in both USD and BTC (``bid_btc``, ``ask_btc``, ``mark_btc``),
    several snapshots per file labelled by ``timestamp``: ``snapshot=`` picks one, the
    latest otherwise (recorded in ``chain.meta``).
``deribit-iv-only``
    Hourly IV chains without prices or underlying (``bid_iv``, ``ask_iv``, ``mark_iv``
    in %): read as mark-IV-only chains (prices NaN, flagged ``zero_price``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import BoolArray, FloatArray
from volcal.feeds._common import (
    DERIBIT_EXPIRY_HOUR,
    build_chain,
    choose_snapshot,
    fail,
    ms_to_datetime64,
    numeric,
    parse_is_call,
    require_present,
)
from volcal.market.chain import OptionChain, Settlement, to_utc_timestamp

# format id -> columns that must all be present (used for detection and for errors)
CSV_LAYOUTS: dict[str, tuple[str, ...]] = {
    "svcj-snapshot": (
        "timestamp",
        "instrument_name",
        "underlying",
        "underlying_name",
        "option_type",
        "strike",
        "expiry_datetime",
        "time_to_maturity",
        "bid_price",
        "ask_price",
        "mark_price",
        "futures_price",
        "implied_volatility",
        "open_interest",
        "volume",
        "currency",
        "index_price",
    ),
    "deribit-order-book": (
        "expiration_timestamp",
        "option_type",
        "instrument_name",
        "strike",
        "underlying_price",
        "underlying_index",
        "timestamp",
        "open_interest",
        "mark_price",
        "mark_iv",
        "index_price",
        "best_bid_price",
        "best_bid_amount",
        "best_ask_price",
        "best_ask_amount",
        "bid_iv",
        "ask_iv",
    ),
    "deribit-instrument-ticker": (
        "instrument_name",
        "currency",
        "type",
        "strike",
        "expiration_timestamp",
        "spot_ref",
        "mark_price",
        "best_bid_price",
        "best_ask_price",
        "underlying_price",
        "mark_iv",
        "open_interest",
        "volume",
    ),
    "deribit-usd-btc-snapshots": (
        "timestamp",
        "quote_timestamp",
        "instrument_name",
        "expiry",
        "strike",
        "option_type",
        "bid_btc",
        "ask_btc",
        "mark_btc",
        "underlying",
        "bid_size",
        "ask_size",
        "volume",
        "open_interest",
        "mark_iv",
        "index_price",
    ),
    "deribit-iv-only": (
        "instrument_name",
        "expiry_date",
        "strike",
        "type",
        "volume",
        "open_interest",
        "bid_iv",
        "ask_iv",
        "mark_iv",
    ),
}


def _select_currency(names: pd.Series, currency: str | None, where: str) -> tuple[np.ndarray, str]:
    """Mask of rows of one currency; several currencies need ``currency=``."""
    cur = names.astype(str).str.upper().str.strip()
    found = sorted(cur.unique())
    if currency is None:
        if len(found) > 1:
            raise fail(where, f"file holds {' and '.join(found)}: pass currency=...")
        return np.ones(len(cur), dtype=bool), found[0]
    want = str(currency).upper()
    if want not in found:
        raise fail(where, f"no {want} options in file (it holds {', '.join(found)})")
    return (cur == want).to_numpy(), want


def _underlying_from_names(df: pd.DataFrame) -> pd.Series:
    return df["instrument_name"].astype(str).str.split("-").str[0]


def _zero_as_missing(a: np.ndarray) -> np.ndarray:
    """Deribit order books report an empty side as price 0."""
    return np.where(a == 0, np.nan, a)


def _one_snapshot_time(times: pd.Series, where: str) -> pd.Timestamp:
    ts = pd.to_datetime(times, utc=True, format="mixed")
    if ts.isna().any():
        raise fail(where, "snapshot timestamp cannot be read")
    return pd.Timestamp(ts.max())


def read_svcj_snapshot(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """Full-chain Deribit snapshot CSV (BTC and ETH in one file)."""
    require_present(
        df, ("timestamp", "instrument_name", "option_type", "expiry_datetime", "currency"), where
    )
    mask, und = _select_currency(df["currency"], currency, where)
    d = df.loc[mask].reset_index(drop=True)
    snap_mask, snap, meta = choose_snapshot(d["timestamp"], snapshot, where)
    d = d.loc[snap_mask].reset_index(drop=True)
    fut = numeric(d, "futures_price", where)
    under = numeric(d, "underlying", where)
    index = numeric(d, "index_price", where)
    meta.update(
        source=where,
        format="svcj-snapshot",
        time_basis_in_file="time_to_maturity column is ACT/365.25 (volcal uses ACT/365)",
        underlying_names=sorted(d["underlying_name"].astype(str).unique()),
    )
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.nanmedian(index)) if np.isfinite(index).any() else np.nan,
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=d["expiry_datetime"].to_numpy(dtype=object),
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["option_type"].to_numpy(), where),
        bid=numeric(d, "bid_price", where),
        ask=numeric(d, "ask_price", where),
        mark=numeric(d, "mark_price", where),
        open_interest=numeric(d, "open_interest", where),
        volume=numeric(d, "volume", where),
        quote_time=d["timestamp"].to_numpy(dtype=object),
        underlying_price=np.where(np.isfinite(fut), fut, under),
        mark_iv=numeric(d, "implied_volatility", where),
        meta=meta,
    )


def read_order_book(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """Raw ``get_order_book`` rows (one per option), IVs in percent."""
    require_present(
        df, ("instrument_name", "option_type", "expiration_timestamp", "timestamp"), where
    )
    mask, und = _select_currency(_underlying_from_names(df), currency, where)
    d = df.loc[mask].reset_index(drop=True)
    qt = ms_to_datetime64(numeric(d, "timestamp", where))
    snap = (
        pd.Timestamp(qt.max()).tz_localize("UTC")
        if snapshot is None
        else to_utc_timestamp(snapshot, "snapshot")
    )
    index = numeric(d, "index_price", where)
    meta = {
        "source": where,
        "format": "deribit-order-book",
        "snapshot_choice": "latest quote time" if snapshot is None else "requested",
        "quote_time_span_s": float((qt.max() - qt.min()) / np.timedelta64(1, "s")),
        "zero_best_price": "read as absent side (NaN)",
    }
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.nanmedian(index)) if np.isfinite(index).any() else np.nan,
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=ms_to_datetime64(numeric(d, "expiration_timestamp", where)),
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["option_type"].to_numpy(), where),
        bid=_zero_as_missing(numeric(d, "best_bid_price", where)),
        ask=_zero_as_missing(numeric(d, "best_ask_price", where)),
        mark=numeric(d, "mark_price", where),
        bid_size=numeric(d, "best_bid_amount", where),
        ask_size=numeric(d, "best_ask_amount", where),
        open_interest=numeric(d, "open_interest", where),
        quote_time=qt,
        underlying_price=numeric(d, "underlying_price", where),
        mark_iv=numeric(d, "mark_iv", where) / 100.0,
        meta=meta,
    )


def _black_unit(x: FloatArray, t: FloatArray, vol: FloatArray, call: BoolArray) -> FloatArray:
    """Undiscounted Black-76 price per unit forward, strike ``x`` (= K/F)."""
    from scipy.special import ndtr

    sd = vol * np.sqrt(t)
    d1 = -np.log(x) / sd + 0.5 * sd
    d2 = d1 - sd
    return np.where(call, ndtr(d1) - x * ndtr(d2), x * ndtr(-d2) - ndtr(-d1))


def infer_snapshot_from_marks(
    *,
    expiry: np.ndarray,
    strike: np.ndarray,
    is_call: np.ndarray,
    mark: np.ndarray,
    mark_iv: np.ndarray,
    underlying: np.ndarray,
    where: str,
    max_stderr_minutes: float = 30.0,
) -> tuple[pd.Timestamp, str]:
    """Snapshot time of a ticker file that carries none, from its own mark prices.

    Deribit marks satisfy coin mark = Black(F=1, K/F, t, mark IV) with F the quoted
    underlying. At fixed vol the undiscounted Black price increases strictly with t, so
    each option with a mark well above the tick gives one t by bisection, hence one
    snapshot = expiry - t. Marks are rounded to the 0.0001-coin tick, so one option pins
    the time only to 1-4 hours on a 1-6 month expiry; the median over the near-the-money
    options (|ln K/F| < 0.25, mark >= 0.005 coin) is returned with its standard error
    (1.2533 x IQR / 1.349 / sqrt(n)). Above ``max_stderr_minutes`` the marks do not pin
    the time down and ``snapshot=`` must be given.

    The undiscounted Black-76 price at unit forward is written out here
    (:func:`_black_unit`) rather than imported from ``volcal.black``, which is a layer
    above the readers; a test checks the two agree to 1e-15.
    """

    k = np.log(strike / underlying)
    ok = (
        np.isfinite(k)
        & (np.abs(k) < 0.25)
        & np.isfinite(mark)
        & (mark >= 0.005)
        & np.isfinite(mark_iv)
        & (mark_iv > 0)
    )
    if np.count_nonzero(ok) < 3:
        raise fail(
            where,
            "this layout has no snapshot time and too few marks to infer it: pass snapshot=...",
        )
    kk, cc, mm, vv = np.exp(k[ok]), is_call[ok], mark[ok], mark_iv[ok]
    lo = np.full(kk.size, 1e-7)
    hi = np.full(kk.size, 5.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = _black_unit(kk, mid, vv, cc) > mm
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    t = 0.5 * (lo + hi)
    exp_ns = expiry[ok].astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    snap_ns = exp_ns - t * 365.0 * 86400.0 * 1e9
    q1, med, q3 = np.percentile(snap_ns, [25, 50, 75])
    stderr_min = 1.2533 * (q3 - q1) / 1.349 / np.sqrt(snap_ns.size) / 6e10
    if stderr_min > max_stderr_minutes:
        raise fail(
            where,
            "this layout has no snapshot time and its marks pin it only to "
            f"+-{stderr_min:.0f} min: pass snapshot=...",
        )
    ts = pd.Timestamp(int(med), unit="ns", tz="UTC").round("s")
    return ts, (
        f"inferred from {kk.size} near-the-money mark prices and mark IVs "
        f"(median, standard error {stderr_min:.0f} min); pass snapshot= to override"
    )


def read_instrument_ticker(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """Instrument + ticker CSV without a snapshot time (``snapshot=`` required)."""
    require_present(df, ("instrument_name", "currency", "type", "expiration_timestamp"), where)
    mask, und = _select_currency(df["currency"], currency, where)
    d = df.loc[mask].reset_index(drop=True)
    spot = numeric(d, "spot_ref", where)
    if snapshot is None:
        snapshot, choice = infer_snapshot_from_marks(
            expiry=ms_to_datetime64(numeric(d, "expiration_timestamp", where)),
            strike=numeric(d, "strike", where),
            is_call=parse_is_call(d["type"].to_numpy(), where),
            mark=numeric(d, "mark_price", where),
            mark_iv=numeric(d, "mark_iv", where) / 100.0,
            underlying=numeric(d, "underlying_price", where),
            where=where,
        )
    else:
        choice = "requested (the file carries no snapshot time)"
    return build_chain(
        where,
        underlying=und,
        snapshot=to_utc_timestamp(snapshot, "snapshot"),
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.nanmedian(spot)) if np.isfinite(spot).any() else np.nan,
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=ms_to_datetime64(numeric(d, "expiration_timestamp", where)),
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["type"].to_numpy(), where),
        bid=_zero_as_missing(numeric(d, "best_bid_price", where)),
        ask=_zero_as_missing(numeric(d, "best_ask_price", where)),
        mark=numeric(d, "mark_price", where),
        open_interest=numeric(d, "open_interest", where),
        volume=numeric(d, "volume", where),
        underlying_price=numeric(d, "underlying_price", where),
        mark_iv=numeric(d, "mark_iv", where) / 100.0,
        meta={
            "source": where,
            "format": "deribit-instrument-ticker",
            "snapshot_choice": choice,
            "zero_best_price": "read as absent side (NaN)",
        },
    )


def read_usd_btc_snapshots(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """Partial snapshots with USD and BTC prices; several snapshots per file."""
    require_present(
        df, ("timestamp", "instrument_name", "expiry", "option_type", "quote_timestamp"), where
    )
    mask, und = _select_currency(_underlying_from_names(df), currency, where)
    d = df.loc[mask].reset_index(drop=True)
    snap_mask, snap, meta = choose_snapshot(d["timestamp"], snapshot, where)
    d = d.loc[snap_mask].reset_index(drop=True)
    index = numeric(d, "index_price", where)
    meta.update(source=where, format="deribit-usd-btc-snapshots", prices="coin (bid_btc...)")
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.nanmedian(index)) if np.isfinite(index).any() else np.nan,
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=d["expiry"].to_numpy(dtype=object),
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["option_type"].to_numpy(), where),
        bid=numeric(d, "bid_btc", where),
        ask=numeric(d, "ask_btc", where),
        mark=numeric(d, "mark_btc", where),
        bid_size=numeric(d, "bid_size", where),
        ask_size=numeric(d, "ask_size", where),
        open_interest=numeric(d, "open_interest", where),
        volume=numeric(d, "volume", where),
        quote_time=d["quote_timestamp"].to_numpy(dtype=object),
        underlying_price=numeric(d, "underlying", where),
        mark_iv=numeric(d, "mark_iv", where) / 100.0,
        meta=meta,
    )


def read_iv_only(
    df: pd.DataFrame, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """IV-only hourly chains: mark IV kept, prices and underlying unknown (NaN)."""
    require_present(df, ("instrument_name", "expiry_date", "type"), where)
    mask, und = _select_currency(_underlying_from_names(df), currency, where)
    d = df.loc[mask].reset_index(drop=True)
    if "date" in d.columns:
        snap_mask, snap, meta = choose_snapshot(d["date"], snapshot, where)
        d = d.loc[snap_mask].reset_index(drop=True)
    elif snapshot is None:
        raise fail(where, "this IV-only layout has no snapshot time: pass snapshot=...")
    else:
        snap, meta = to_utc_timestamp(snapshot, "snapshot"), {"snapshot_choice": "requested"}
    exp = pd.to_datetime(d["expiry_date"], utc=True, format="mixed", errors="coerce")
    if exp.isna().any():
        i = int(np.flatnonzero(exp.isna().to_numpy())[0])
        raise fail(where, f"row {i + 1}: expiry_date {d['expiry_date'].iloc[i]!r} cannot be read")
    exp = exp + pd.Timedelta(hours=DERIBIT_EXPIRY_HOUR)
    meta.update(
        source=where,
        format="deribit-iv-only",
        note="no prices and no underlying in the file: mark IV only (decimal)",
    )
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=exp.to_numpy(dtype=object),
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["type"].to_numpy(), where),
        open_interest=numeric(d, "open_interest", where),
        volume=numeric(d, "volume", where),
        mark_iv=_zero_as_missing(numeric(d, "mark_iv", where)) / 100.0,
        meta=meta,
    )


CSV_READERS = {
    "svcj-snapshot": read_svcj_snapshot,
    "deribit-order-book": read_order_book,
    "deribit-instrument-ticker": read_instrument_ticker,
    "deribit-usd-btc-snapshots": read_usd_btc_snapshots,
    "deribit-iv-only": read_iv_only,
}

__all__ = ["CSV_LAYOUTS", "CSV_READERS"]
