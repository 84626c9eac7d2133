"""Helpers shared by the chain readers: errors naming the file, numeric columns,
Deribit instrument names, snapshot selection and the flags every reader sets.

Readers never drop a row. What a reader can tell from one quote alone is recorded as a
flag (:func:`reader_flags`); everything else is left to ``volcal.quality``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from volcal._typing import BoolArray, DateArray, FloatArray
from volcal.errors import DataError
from volcal.market.chain import OptionChain, to_utc_timestamp
from volcal.market.flags import Flag

if TYPE_CHECKING:
    import pandas as pd

#: Deribit options expire at 08:00 UTC.
DERIBIT_EXPIRY_HOUR = 8

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_NAME_RE = re.compile(
    r"^(?P<und>[A-Z0-9_]+)-(?P<day>\d{1,2})(?P<mon>[A-Z]{3})(?P<yy>\d{2})-(?P<k>[0-9d.]+)-(?P<cp>[CP])$"
)


def source_name(source: Any) -> str:
    """Short name of a source for error messages (file name, or the object's type)."""
    if isinstance(source, (str, Path)):
        return Path(source).name
    return type(source).__name__


def fail(where: str, what: str) -> DataError:
    """A one-line :class:`DataError` ``"<where>: <what>"``."""
    return DataError(f"{where}: {what}")


def numeric(df: pd.DataFrame, col: str, where: str) -> FloatArray:
    """Column ``col`` as float64; empty cells become NaN, any other text is an error.

    Raises ``DataError("<where>: column 'strike' row 7: non-numeric value 'abc'")``.
    """
    s = df[col]
    if s.dtype.kind in "fiub":
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    import pandas as pd

    conv = pd.to_numeric(s, errors="coerce")
    bad = conv.isna() & s.notna() & (s.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise fail(where, f"column {col!r} row {i + 1}: non-numeric value {s.iloc[i]!r}")
    return conv.to_numpy(dtype=np.float64, na_value=np.nan)


def require_columns(df: pd.DataFrame, cols: tuple[str, ...], where: str, fmt: str) -> None:
    """Raise ``DataError`` naming the missing columns of a ``fmt`` file."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise fail(where, f"{fmt} is missing column(s) {', '.join(repr(c) for c in missing)}")


def require_present(df: pd.DataFrame, cols: tuple[str, ...], where: str) -> None:
    """Identity columns (names, types, expiries) must be filled in every row.

    A row with such a cell empty is a truncated or malformed line, not a bad quote.
    """
    for c in cols:
        miss = df[c].isna().to_numpy()
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise fail(where, f"row {i + 1}: column {c!r} is empty (truncated or malformed line)")


def parse_is_call(values: Any, where: str) -> BoolArray:
    """Read call/put markers (``call``/``put``/``C``/``P``/bool) as a bool array."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iuf":
        ok = np.isin(arr, [0, 1])
        if not ok.all():
            raise fail(where, f"is_call: cannot read {arr[np.argmin(ok)]!r} as call/put")
        return arr.astype(bool)
    low = np.char.lower(np.char.strip(arr.astype(str)))
    calls = np.isin(low, ["c", "call", "true", "1"])
    puts = np.isin(low, ["p", "put", "false", "0"])
    bad = ~(calls | puts)
    if bad.any():
        raise fail(where, f"option type {arr[np.argmax(bad)]!r} is neither call nor put")
    return calls


def parse_instrument(name: str) -> tuple[str, pd.Timestamp, float, bool]:
    """Split a Deribit option name ``BTC-27MAR26-100000-C`` into its parts.

    Expiry is 08:00 UTC of the named day (Deribit's convention); decimal strikes use
    ``d`` (``XRP_USDC-30MAY26-0d5-C`` -> 0.5).

    >>> parse_instrument("BTC-27MAR26-100000-C")[1:]
    (Timestamp('2026-03-27 08:00:00+0000', tz='UTC'), 100000.0, True)
    """
    import pandas as pd

    m = _NAME_RE.match(str(name).strip())
    if m is None or m["mon"] not in _MONTHS:
        raise DataError(f"cannot parse Deribit option name {name!r}")
    exp = pd.Timestamp(
        year=2000 + int(m["yy"]),
        month=_MONTHS[m["mon"]],
        day=int(m["day"]),
        hour=DERIBIT_EXPIRY_HOUR,
        tz="UTC",
    )
    return m["und"], exp, float(m["k"].replace("d", ".")), m["cp"] == "C"


def ms_to_datetime64(ms: Any) -> DateArray:
    """Unix milliseconds to naive-UTC ``datetime64[ns]`` (NaN -> NaT)."""
    a = np.asarray(ms, dtype=np.float64)
    out = np.full(a.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(a)
    out[ok] = (np.round(a[ok]).astype(np.int64) * 1_000_000).astype("datetime64[ns]")
    return out


def choose_snapshot(
    times: pd.Series, snapshot: Any, where: str
) -> tuple[BoolArray, pd.Timestamp, dict[str, Any]]:
    """Pick one snapshot of a file that holds several.

    ``times`` is the per-row snapshot label. With ``snapshot=None`` the latest is taken;
    otherwise the label equal to ``snapshot`` (an error lists the available ones).
    Returns the row mask, the chosen time and meta entries describing the choice.
    """
    import pandas as pd

    ts = pd.to_datetime(times, utc=True, format="mixed")
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise fail(where, f"row {i + 1}: snapshot time {times.iloc[i]!r} cannot be read")
    labels = sorted(ts.unique())
    if snapshot is None:
        chosen = labels[-1]
        how = "latest" if len(labels) > 1 else "only"
    else:
        want = to_utc_timestamp(snapshot, "snapshot")
        if want not in labels:
            avail = ", ".join(x.isoformat() for x in labels)
            raise fail(where, f"no snapshot at {want.isoformat()} (file holds: {avail})")
        chosen, how = want, "requested"
    meta = {
        "snapshots_in_file": [x.isoformat() for x in labels],
        "snapshot_choice": how,
    }
    return (ts == chosen).to_numpy(), pd.Timestamp(chosen), meta


def reader_flags(
    strike: FloatArray,
    expiry: DateArray,
    snapshot: pd.Timestamp | np.datetime64,
    bid: FloatArray,
    ask: FloatArray,
    mark: FloatArray,
) -> np.ndarray:
    """Flags a reader can set from a single quote.

    * ``INVALID``: strike not finite or <= 0, expiry missing, or a negative price.
    * ``EXPIRED``: expiry at or before the snapshot.
    * ``MISSING_BID`` / ``MISSING_ASK``: side absent (NaN) or not positive.
    * ``ZERO_PRICE``: no positive price on either side, or a mark of exactly zero.

    ``snapshot``: a ``pandas.Timestamp``, or a naive-UTC ``datetime64``.
    """
    if isinstance(snapshot, np.datetime64):  # to the microsecond, as a Timestamp's below
        snap = snapshot.astype("datetime64[us]").astype("datetime64[ns]")
    else:
        snap = np.datetime64(snapshot.tz_convert("UTC").tz_localize(None), "ns")
    with np.errstate(invalid="ignore"):
        has_bid = bid > 0
        has_ask = ask > 0
        negative = (bid < 0) | (ask < 0) | (mark < 0)
        invalid = ~np.isfinite(strike) | ~(strike > 0) | np.isnat(expiry) | negative
        expired = ~np.isnat(expiry) & (expiry <= snap)
        zero = (~has_bid & ~has_ask) | (mark == 0)
    f = np.zeros(strike.size, dtype=np.uint32)
    f |= np.where(invalid, np.uint32(Flag.INVALID), np.uint32(0))
    f |= np.where(expired, np.uint32(Flag.EXPIRED), np.uint32(0))
    f |= np.where(~has_bid, np.uint32(Flag.MISSING_BID), np.uint32(0))
    f |= np.where(~has_ask, np.uint32(Flag.MISSING_ASK), np.uint32(0))
    f |= np.where(zero, np.uint32(Flag.ZERO_PRICE), np.uint32(0))
    return f


def build_chain(where: str, **kw: Any) -> OptionChain:
    """``OptionChain.from_arrays`` plus reader flags; an empty chain is an error."""
    strike = np.atleast_1d(np.asarray(kw["strike"], dtype=np.float64))
    if strike.size == 0:
        raise fail(where, "no option quotes (empty chain)")
    try:
        chain = OptionChain.from_arrays(**kw)
    except DataError as exc:
        raise fail(where, str(exc)) from exc
    flags = reader_flags(
        chain.strike, chain.expiry, chain.snapshot64, chain.bid, chain.ask, chain.mark
    )
    return chain.with_flags(flags)


__all__ = [
    "DERIBIT_EXPIRY_HOUR",
    "build_chain",
    "choose_snapshot",
    "fail",
    "ms_to_datetime64",
    "numeric",
    "parse_instrument",
    "parse_is_call",
    "reader_flags",
    "require_columns",
    "require_present",
    "source_name",
]
