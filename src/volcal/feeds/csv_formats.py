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

import re
from typing import TYPE_CHECKING, Any

import numpy as np

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
from volcal.market.chain import OptionChain, Settlement, isoformat_utc, to_utc_timestamp

if TYPE_CHECKING:
    import pandas as pd

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
    return _currency_mask(cur.to_numpy(dtype=object), currency, where)


def _currency_mask(cur: np.ndarray, currency: str | None, where: str) -> tuple[np.ndarray, str]:
    """:func:`_select_currency` of the upper-cased, stripped names ``cur`` (object array)."""
    found = sorted(set(cur.tolist()))
    if currency is None:
        if len(found) > 1:
            raise fail(where, f"file holds {' and '.join(found)}: pass currency=...")
        return np.ones(len(cur), dtype=bool), found[0]
    want = str(currency).upper()
    if want not in found:
        raise fail(where, f"no {want} options in file (it holds {', '.join(found)})")
    return np.asarray(cur == want, dtype=bool), want


def _underlying_from_names(df: pd.DataFrame) -> pd.Series:
    return df["instrument_name"].astype(str).str.split("-").str[0]


def _zero_as_missing(a: np.ndarray) -> np.ndarray:
    """Deribit order books report an empty side as price 0."""
    return np.where(a == 0, np.nan, a)


def _one_snapshot_time(times: pd.Series, where: str) -> pd.Timestamp:
    import pandas as pd

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


#: every column of the ``svcj-snapshot`` files as published; :func:`read_svcj_snapshot_text`
#: reads a file whose header holds the layout's columns and none but these
SVCJ_SNAPSHOT_COLUMNS = frozenset(
    (
        *CSV_LAYOUTS["svcj-snapshot"],
        "mid_price",
        "futures_instrument_name",
        "delta",
        "vega",
        "bid_ask_spread",
        "volume_usd",
    )
)
_SVCJ_FLOATS = (
    "strike",
    "bid_price",
    "ask_price",
    "mark_price",
    "futures_price",
    "underlying",
    "index_price",
    "implied_volatility",
    "open_interest",
    "volume",
)
# a column of plain decimal numbers and empty cells, joined by "," (what pandas' C parser
# reads as numbers and NaN the same way as Python's float); at most 15 digits in a
# whole number (larger ones pandas keeps as int64 / uint64), no negative integer zero
# (pandas reads an integer column's "-0" as 0)
_FLOAT_COLUMN = re.compile(
    r"(?:(?:-?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?|\d{1,15}|-0*[1-9]\d{0,14})?"
    r"(?:,|\Z))*"
)
# a line of the distinct cells of a text column, joined by newlines, that pandas reads as
# NaN, a bool or a number, or with spaces around: such a file goes the pandas way
_NOT_TEXT = re.compile(
    r"^(?:|#N/A|#N/A N/A|#NA|-1\.#IND|-1\.#QNAN|-NaN|-nan|1\.#IND|1\.#QNAN|<NA>|N/A|NA|NULL"
    r"|NaN|None|n/a|nan|null|True|TRUE|true|False|FALSE|false|[-+]?[\d.][\d.eE+-]*"
    r"|[ \t\f\v].*|.*[ \t\f\v])$",
    re.MULTILINE,
)
# the times of the files: UTC, whole seconds or up to microseconds (pandas then reads
# them at microsecond resolution)
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?\+00:00")


def is_svcj_snapshot_header(columns: list[str]) -> bool:
    """Whether a CSV header is exactly an ``svcj-snapshot`` file's: every column of the
    layout, none other than :data:`SVCJ_SNAPSHOT_COLUMNS`, no name twice."""
    names = set(columns)
    return (
        len(names) == len(columns)
        and set(CSV_LAYOUTS["svcj-snapshot"]) <= names
        and names <= SVCJ_SNAPSHOT_COLUMNS
    )


def _utc_times(cells: list[str]) -> np.ndarray | None:
    """Naive-UTC ``datetime64[us]`` of the cells, or ``None`` unless every cell is a
    :data:`_UTC_TIME` and a valid time."""
    out = {}
    for text in set(cells):
        if _UTC_TIME.fullmatch(text) is None:
            return None
        try:
            out[text] = np.datetime64(text[:-6], "us")
        except ValueError:
            return None
    return np.array([out[c] for c in cells], dtype="datetime64[us]")


def read_svcj_snapshot_text(
    text: str, where: str, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain | None:
    """:func:`read_svcj_snapshot` of the CSV text of an ``svcj-snapshot`` file, without
    pandas: the same chain, array for array and bit for bit. ``None`` (read the file
    with pandas) unless the file is one this reader can take as it is: the header of
    :func:`is_svcj_snapshot_header`, ASCII, no quoted cell, no carriage return, every
    line with all the header's fields, the numbers of the columns read plain decimals or
    empty, their text cells nothing pandas reads as NaN, a bool or a number, the times
    :data:`_UTC_TIME`, and no ``snapshot=``. Errors (currency) are the same as there."""
    if snapshot is not None or not text.isascii() or '"' in text or "\r" in text:
        return None
    lines = text.split("\n")
    header = lines[0].split(",")
    if not is_svcj_snapshot_header(header) or len(lines) < 2:
        return None
    ncol = len(header)
    if any(line.count(",") != ncol - 1 for line in lines):
        return None
    # every line has all the fields: column j is every ncol-th cell from the j-th on
    cells = text.replace("\n", ",").split(",")
    table = {name: cells[ncol + j :: ncol] for j, name in enumerate(header)}
    for name in _SVCJ_FLOATS:
        if _FLOAT_COLUMN.fullmatch(",".join(table[name])) is None:
            return None
    for name in ("instrument_name", "underlying_name", "option_type", "currency"):
        if _NOT_TEXT.search("\n".join(set(table[name]))) is not None:
            return None
    stamps = _utc_times(table["timestamp"])
    expiry = _utc_times(table["expiry_datetime"])
    if stamps is None or expiry is None:
        return None
    cur = np.array(table["currency"], dtype=object)
    for text_cell in set(table["currency"]):
        if text_cell.upper().strip() != text_cell:
            cur[cur == text_cell] = text_cell.upper().strip()
    mask, und = _currency_mask(cur, currency, where)
    labels = np.unique(stamps[mask])
    chosen = labels[-1]
    rows_used = np.flatnonzero(mask & (stamps == chosen))
    meta: dict[str, Any] = {
        "snapshots_in_file": [isoformat_utc(x) for x in labels],
        "snapshot_choice": "latest" if labels.size > 1 else "only",
    }

    def col(name: str) -> np.ndarray:
        return np.array(table[name], dtype=object)[rows_used]

    def num(name: str) -> FloatArray:
        return np.array([float(c) if c else np.nan for c in col(name)], dtype=np.float64)

    fut = num("futures_price")
    under = num("underlying")
    index = num("index_price")
    meta.update(
        source=where,
        format="svcj-snapshot",
        time_basis_in_file="time_to_maturity column is ACT/365.25 (volcal uses ACT/365)",
        underlying_names=sorted(set(col("underlying_name").tolist())),
    )
    return build_chain(
        where,
        underlying=und,
        snapshot=chosen,  # datetime64[us]: the pandas.Timestamp is made when read
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.nanmedian(index)) if np.isfinite(index).any() else np.nan,
        instrument=col("instrument_name"),
        expiry=expiry[rows_used].astype("datetime64[ns]"),
        strike=num("strike"),
        is_call=parse_is_call(col("option_type"), where),
        bid=num("bid_price"),
        ask=num("ask_price"),
        mark=num("mark_price"),
        open_interest=num("open_interest"),
        volume=num("volume"),
        quote_time=stamps[rows_used].astype("datetime64[ns]"),
        underlying_price=np.where(np.isfinite(fut), fut, under),
        mark_iv=num("implied_volatility"),
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
    import pandas as pd

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
    import pandas as pd

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
    import pandas as pd

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

__all__ = [
    "CSV_LAYOUTS",
    "CSV_READERS",
    "SVCJ_SNAPSHOT_COLUMNS",
    "is_svcj_snapshot_header",
    "read_svcj_snapshot_text",
]
