"""``OptionChain``: the columnar quotes of one underlying at one snapshot.

Everything downstream (quality flags, forwards, implied vols, calibration) reads an
``OptionChain`` and returns a new one or a result object; nothing mutates it. Inside,
each field is a read-only NumPy array with one row per quote; outside, ``to_frame()``
gives a pandas view.

Units
-----
Quotes keep the venue's units: for an *inverse* (coin-settled) chain such as Deribit
BTC/ETH options, ``bid``/``ask``/``mark`` are in coin; for a *linear* chain they are in
the quote currency (USD), discounted. The single conversion to the units the maths
uses lives here:

* USD value of an inverse quote = coin price x ``underlying_price`` (the future or
  synthetic underlying the venue quotes the option against; the index price if the
  venue gives none). Deribit computes its mark IV with exactly this convention.
* forward-unit price (undiscounted, per unit of forward) = USD value /
  (``discount`` x ``forward``). For an inverse chain with ``forward`` equal to the
  quoted underlying and ``discount`` = 1, this is the coin price itself.

Time to expiry is ACT/365 from the exact UTC timestamps (``expiry - snapshot``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from volcal._typing import BoolArray, DateArray, FloatArray, ObjArray, UIntArray
from volcal.errors import DataError
from volcal.market.flags import EXCLUDE_DEFAULT, Flag, count_reasons, decode

if TYPE_CHECKING:
    import pandas as pd

Settlement = Literal["inverse", "linear"]
PriceField = Literal["bid", "ask", "mark", "mid"]

SECONDS_PER_YEAR = 365.0 * 86400.0

_FLOAT_FIELDS = (
    "strike",
    "bid",
    "ask",
    "mark",
    "bid_size",
    "ask_size",
    "open_interest",
    "volume",
    "underlying_price",
    "forward",
    "discount",
    "mark_iv",
)
_ARRAY_FIELDS = ("instrument", "expiry", "is_call", "quote_time", "flags", *_FLOAT_FIELDS)


#: datetime64 units a snapshot may be kept in before it is read (``pandas.Timestamp``
#: holds each of them over its whole range)
_SNAPSHOT_UNITS = ("s", "ms", "us", "ns")


def to_utc_timestamp(value: Any, what: str = "timestamp") -> pd.Timestamp:
    """Parse ``value`` as a UTC ``pd.Timestamp`` (naive input is taken as UTC)."""
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"cannot parse {what} {value!r}") from exc
    if ts is pd.NaT:
        raise DataError(f"{what} is missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def expiry_label(expiry: Any) -> str:
    """ISO label of an expiry (UTC), the key of a slice in results and tables."""
    if (
        isinstance(expiry, np.datetime64)
        and np.datetime_data(expiry.dtype)[0] in _SNAPSHOT_UNITS
        and not np.isnat(expiry)
    ):
        return isoformat_utc(expiry)  # naive UTC, as pandas labels it (without pandas)
    import pandas as pd

    ts = pd.Timestamp(expiry)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()


def to_utc_datetime64(values: Any, what: str = "expiry") -> DateArray:
    """Parse an array of times to ``datetime64[ns]`` in UTC (naive input taken as UTC)."""
    import pandas as pd

    try:
        idx = pd.to_datetime(pd.Series(np.asarray(values).ravel()), utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"cannot parse {what} column: {exc}") from exc
    return idx.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def isoformat_utc(value: np.datetime64) -> str:
    """``pandas.Timestamp(value).tz_localize("UTC").isoformat()`` of a naive-UTC
    ``datetime64`` without pandas: seconds, then 9 fractional digits when there are
    nanoseconds, 6 when there are microseconds, then ``+00:00`` (``NaT`` for NaT)."""
    if np.isnat(value):
        return "NaT"
    ns = int(np.asarray(value).astype("datetime64[ns]").astype(np.int64))
    sec, frac = divmod(ns, 1_000_000_000)
    text = str(np.datetime64(sec, "s"))
    if len(text) != 19:  # a year outside 1000-9999: pandas' own rendering
        import pandas as pd

        return str(pd.Timestamp(value).tz_localize("UTC").isoformat())
    if frac % 1000:
        text += f".{frac:09d}"
    elif frac:
        text += f".{frac // 1000:06d}"
    return text + "+00:00"


def _timestamp_utc(value: np.datetime64) -> pd.Timestamp:
    """The public ``pandas.Timestamp`` (tz UTC) of a naive-UTC ``datetime64`` snapshot,
    made as :func:`to_utc_timestamp` makes it."""
    import pandas as pd

    return pd.Timestamp(value).tz_localize("UTC")


class _Snapshot:
    """The ``snapshot`` field of :class:`OptionChain`: kept as given; a naive-UTC
    ``numpy.datetime64`` (what :meth:`OptionChain.from_arrays` keeps of one) becomes the
    public ``pandas.Timestamp`` (tz UTC) the first time it is read, so a chain can be
    read, cleaned and fitted without importing pandas."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        try:
            return d["_snapshot_ts"]
        except KeyError:
            pass
        raw = d["_snapshot_raw"] if "_snapshot_raw" in d else d["snapshot"]
        value = _timestamp_utc(raw) if isinstance(raw, np.datetime64) else raw
        d["_snapshot_ts"] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        d = obj.__dict__
        d["_snapshot_raw"] = value
        d.pop("_snapshot_ts", None)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False, repr=False)
class OptionChain:
    """Option quotes of one underlying at one snapshot (immutable, columnar).

    Build one with :meth:`from_arrays` (which broadcasts, converts and validates) or
    through a reader (``volcal.read_chain``). Every array has one entry per quote.

    Attributes
    ----------
    underlying : str
        Underlying asset, e.g. ``"BTC"``.
    snapshot : pandas.Timestamp
        Snapshot time (UTC).
    settlement : {"inverse", "linear"}
        ``"inverse"``: coin-settled, prices in coin. ``"linear"``: prices in USD.
    venue : str
        Venue name, e.g. ``"deribit"``.
    index_price : float
        Spot index price at the snapshot (NaN if unknown).
    instrument : ndarray of str
        Instrument name per quote.
    expiry : ndarray of datetime64[ns]
        Expiry per quote (UTC, naive ``datetime64``).
    strike : ndarray
    is_call : ndarray of bool
    bid, ask, mark : ndarray
        Quotes in the chain's units; NaN where absent.
    bid_size, ask_size, open_interest, volume : ndarray
        NaN where unknown.
    quote_time : ndarray of datetime64[ns]
        Per-quote timestamp (NaT where unknown).
    underlying_price : ndarray
        Price of the future/underlying the quote refers to (NaN where unknown).
    forward : ndarray
        Forward used for the maths (NaN until established).
    discount : ndarray
        Discount factor to expiry (1 for inverse chains).
    mark_iv : ndarray
        Venue's mark implied vol as a decimal (NaN where not given).
    flags : ndarray of uint32
        Bit set of :class:`~volcal.market.flags.Flag` per quote (0 = clean).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ch = OptionChain.from_arrays(
    ...     underlying="BTC", snapshot="2026-01-07T09:00Z", settlement="linear",
    ...     expiry="2026-02-27T08:00Z", strike=[90e3, 100e3], is_call=[False, True],
    ...     bid=[1500.0, 2500.0], ask=[1600.0, 2600.0], forward=95e3)
    >>> len(ch), ch.expiries.size
    (2, 1)
    """

    underlying: str
    snapshot: pd.Timestamp
    settlement: Settlement
    venue: str
    index_price: float
    instrument: ObjArray
    expiry: DateArray
    strike: FloatArray
    is_call: BoolArray
    bid: FloatArray
    ask: FloatArray
    mark: FloatArray
    bid_size: FloatArray
    ask_size: FloatArray
    open_interest: FloatArray
    volume: FloatArray
    quote_time: DateArray
    underlying_price: FloatArray
    forward: FloatArray
    discount: FloatArray
    mark_iv: FloatArray
    flags: UIntArray
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    def __post_init__(self) -> None:
        if self.settlement not in ("inverse", "linear"):
            raise DataError(f"settlement must be 'inverse' or 'linear', got {self.settlement!r}")
        n = len(self.strike)
        for name in _ARRAY_FIELDS:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1 or len(arr) != n:
                raise DataError(f"field {name!r} must be a 1-D array of length {n}")
            if arr.flags.writeable:
                object.__setattr__(self, name, _readonly(arr))
        object.__setattr__(self, "meta", dict(self.meta))

    @classmethod
    def from_arrays(
        cls,
        *,
        underlying: str,
        snapshot: Any,
        expiry: Any,
        strike: Any,
        is_call: Any,
        bid: Any = np.nan,
        ask: Any = np.nan,
        mark: Any = np.nan,
        settlement: Settlement = "inverse",
        venue: str = "unknown",
        index_price: float = np.nan,
        instrument: Any = None,
        bid_size: Any = np.nan,
        ask_size: Any = np.nan,
        open_interest: Any = np.nan,
        volume: Any = np.nan,
        quote_time: Any = None,
        underlying_price: Any = np.nan,
        forward: Any = np.nan,
        discount: Any = 1.0,
        mark_iv: Any = np.nan,
        flags: Any = 0,
        meta: dict[str, Any] | None = None,
    ) -> OptionChain:
        """Build a chain from scalars or arrays (broadcast to the number of strikes).

        ``expiry`` may be anything pandas parses as a time (naive = UTC). ``forward``
        defaults to ``underlying_price`` where that is known. Raises
        :class:`~volcal.errors.DataError` on inconsistent lengths or unparseable input.
        """
        strike_a = np.atleast_1d(np.asarray(strike, dtype=np.float64))
        n = strike_a.size

        def fl(x: Any, name: str) -> FloatArray:
            try:
                a = np.asarray(x, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"column {name!r} is not numeric") from exc
            try:
                return np.broadcast_to(a, (n,)).astype(np.float64, copy=True)
            except ValueError as exc:
                raise DataError(f"column {name!r} has {a.size} values, expected {n}") from exc

        snap: Any
        if (
            isinstance(snapshot, np.datetime64)
            and np.datetime_data(snapshot.dtype)[0] in _SNAPSHOT_UNITS
        ):
            if np.isnat(snapshot):
                raise DataError("snapshot is missing")
            snap = snapshot  # the pandas.Timestamp is made when .snapshot is read
        else:
            snap = to_utc_timestamp(snapshot, "snapshot")
        exp = _ns_times(expiry, n)
        if exp is None:
            exp = to_utc_datetime64(
                np.broadcast_to(np.asarray(expiry, dtype=object), (n,)), "expiry"
            )
        calls = np.broadcast_to(np.asarray(is_call), (n,))
        if calls.dtype.kind in "OUS":
            low = np.char.lower(calls.astype(str))
            bad = ~np.isin(low, ["c", "call", "p", "put", "true", "false"])
            if bad.any():
                raise DataError(f"is_call: cannot read {calls[np.argmax(bad)]!r} as call/put")
            calls = np.isin(low, ["c", "call", "true"])
        calls = calls.astype(bool)
        if quote_time is None:
            qt = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        elif (qt_ns := _ns_times(quote_time, n)) is not None:
            qt = qt_ns
        else:
            qt = to_utc_datetime64(
                np.broadcast_to(np.asarray(quote_time, dtype=object), (n,)), "timestamp"
            )
        under = fl(underlying_price, "underlying_price")
        fwd = fl(forward, "forward")
        fwd = np.where(np.isnan(fwd), under, fwd)
        if instrument is None:
            instrument = _instrument_names(underlying, exp, strike_a, calls)
        inst = np.broadcast_to(np.asarray(instrument, dtype=object), (n,)).copy()
        return cls(
            underlying=str(underlying),
            snapshot=snap,
            settlement=settlement,
            venue=str(venue),
            index_price=float(index_price),
            instrument=inst,
            expiry=exp,
            strike=strike_a.copy(),
            is_call=calls.copy(),
            bid=fl(bid, "bid"),
            ask=fl(ask, "ask"),
            mark=fl(mark, "mark"),
            bid_size=fl(bid_size, "bid_size"),
            ask_size=fl(ask_size, "ask_size"),
            open_interest=fl(open_interest, "open_interest"),
            volume=fl(volume, "volume"),
            quote_time=qt,
            underlying_price=under,
            forward=fwd,
            discount=fl(discount, "discount"),
            mark_iv=fl(mark_iv, "mark_iv"),
            flags=np.broadcast_to(np.asarray(flags, dtype=np.uint32), (n,)).copy(),
            meta=dict(meta or {}),
        )

    def replace(self, **changes: Any) -> OptionChain:
        """A copy with some fields replaced (validated like a new chain)."""
        if "snapshot" not in changes:  # as kept: a datetime64 stays one
            d = self.__dict__
            changes["snapshot"] = d["_snapshot_raw"] if "_snapshot_raw" in d else self.snapshot
        return dataclasses.replace(self, **changes)

    def select(self, mask: Any) -> OptionChain:
        """The sub-chain of rows selected by a boolean mask or an index array."""
        idx = np.asarray(mask)
        changes = {name: getattr(self, name)[idx] for name in _ARRAY_FIELDS}
        return self.replace(**changes)

    def with_flags(self, flags: Any, *, replace: bool = False) -> OptionChain:
        """A copy with ``flags`` OR-ed into the existing ones (or replacing them)."""
        new = np.broadcast_to(np.asarray(flags, dtype=np.uint32), (len(self),))
        return self.replace(flags=new.copy() if replace else (self.flags | new))

    # ------------------------------------------------------------------ derived
    def __len__(self) -> int:
        return int(self.strike.size)

    @property
    def snapshot64(self) -> np.datetime64:
        """The snapshot as a naive-UTC ``numpy.datetime64[ns]`` (the unit of the time
        columns) for the arithmetic on them, read without making the ``pandas.Timestamp``.
        To the microsecond, as NumPy converts a ``pandas.Timestamp`` (``t``, the flags
        and the forwards have always used it so)."""
        raw = self.__dict__.get("_snapshot_raw")
        if isinstance(raw, np.datetime64):
            return raw.astype("datetime64[us]").astype("datetime64[ns]")
        return np.datetime64(self.snapshot.tz_convert("UTC").tz_localize(None), "ns")

    @property
    def snapshot_isoformat(self) -> str:
        """``snapshot.isoformat()``, without making the ``pandas.Timestamp`` when the
        chain keeps its snapshot as a ``datetime64``."""
        raw = self.__dict__.get("_snapshot_raw")
        if isinstance(raw, np.datetime64) and "_snapshot_ts" not in self.__dict__:
            return isoformat_utc(raw)
        return str(self.snapshot.isoformat())

    @property
    def t(self) -> FloatArray:
        """Time to expiry in years, ACT/365 from exact UTC timestamps."""
        secs = (self.expiry - self.snapshot64) / np.timedelta64(1, "s")
        return np.asarray(secs, dtype=np.float64) / SECONDS_PER_YEAR

    @property
    def expiries(self) -> DateArray:
        """Sorted distinct expiries."""
        return np.unique(self.expiry)

    @property
    def log_moneyness(self) -> FloatArray:
        """k = ln(K / F) per quote (NaN where the forward is unknown)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self.strike / self.forward)

    @property
    def mid(self) -> FloatArray:
        """Mid price (NaN unless both sides are present)."""
        return 0.5 * (self.bid + self.ask)

    def quote(self, which: PriceField) -> FloatArray:
        """Quoted prices in the chain's own units (coin for inverse, USD for linear)."""
        if which == "mid":
            return self.mid
        if which not in ("bid", "ask", "mark"):
            raise DataError(f"price field must be bid, ask, mark or mid, got {which!r}")
        arr: FloatArray = getattr(self, which)
        return arr

    @property
    def conversion_price(self) -> FloatArray:
        """Underlying price used to turn a coin quote into USD (index price fallback)."""
        return np.where(np.isfinite(self.underlying_price), self.underlying_price, self.index_price)

    def usd(self, which: PriceField = "mid") -> FloatArray:
        """Quotes in USD: coin price x underlying price for inverse chains."""
        q = self.quote(which)
        return q * self.conversion_price if self.settlement == "inverse" else q.copy()

    def coin(self, which: PriceField = "mid") -> FloatArray:
        """Quotes in coin: USD price / underlying price for linear chains."""
        q = self.quote(which)
        return q.copy() if self.settlement == "inverse" else q / self.conversion_price

    def forward_price(self, which: PriceField = "mid") -> FloatArray:
        """Undiscounted price per unit of forward: USD / (discount x forward).

        This is the Black-76 price with ``forward=1`` and ``strike=K/F``, the unit in
        which the implied-vol and calibration layers work.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.usd(which) / (self.discount * self.forward)

    def usable(self, exclude: int | None = None) -> BoolArray:
        """Mask of quotes carrying none of the ``exclude`` flags.

        Default: the exclusion set of the policy the chain was cleaned with
        (``volcal.clean``), else ``EXCLUDE_DEFAULT``.
        """
        if exclude is None:
            exclude = int(self.meta.get("exclude", EXCLUDE_DEFAULT))
        return (self.flags & np.uint32(exclude)) == 0

    def flag_counts(self) -> dict[str, int]:
        """Quotes per flag reason (non-zero reasons only)."""
        return {k: v for k, v in count_reasons(self.flags).items() if v}

    def why(self, instrument: str) -> list[str]:
        """Flag codes of one instrument: why it is (or is not) used."""
        hits = np.flatnonzero(self.instrument == instrument)
        if hits.size == 0:
            raise DataError(f"instrument {instrument!r} is not in the chain")
        return decode(int(np.bitwise_or.reduce(self.flags[hits])))

    # ------------------------------------------------------------------ views
    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame view (one row per quote), with ``t`` and ``k`` added."""
        import pandas as pd

        df = pd.DataFrame({name: getattr(self, name) for name in _ARRAY_FIELDS})
        df["expiry"] = pd.to_datetime(df["expiry"]).dt.tz_localize("UTC")
        df["quote_time"] = pd.to_datetime(df["quote_time"]).dt.tz_localize("UTC")
        df["t"] = self.t
        df["k"] = self.log_moneyness
        df["flag_codes"] = [",".join(decode(int(f))) for f in self.flags]
        return df

    def summary(self) -> str:
        """A few lines describing the chain."""
        n_used = int(self.usable().sum())
        lines = [
            f"OptionChain {self.underlying} @ {self.venue}, {self.snapshot.isoformat()}, "
            f"{self.settlement} settlement",
            f"  quotes: {len(self)} ({n_used} usable), expiries: {self.expiries.size}, "
            f"index: {self.index_price:,.2f}",
        ]
        counts = self.flag_counts()
        if counts:
            lines.append("  flags: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (metadata and counts, not the quotes)."""
        import pandas as pd

        return {
            "underlying": self.underlying,
            "venue": self.venue,
            "snapshot": self.snapshot.isoformat(),
            "settlement": self.settlement,
            "index_price": None if np.isnan(self.index_price) else float(self.index_price),
            "n_quotes": len(self),
            "n_usable": int(self.usable().sum()),
            "expiries": [
                str(pd.Timestamp(e).tz_localize("UTC").isoformat()) for e in self.expiries
            ],
            "flags": self.flag_counts(),
        }

    def __repr__(self) -> str:
        return (
            f"OptionChain({self.underlying!r}, {self.snapshot.isoformat()}, n={len(self)}, "
            f"expiries={self.expiries.size}, settlement={self.settlement!r})"
        )


# the snapshot field: a pandas.Timestamp when read, whatever it is kept as (see _Snapshot)
OptionChain.snapshot = _Snapshot()  # type: ignore[assignment]


def _ns_times(values: Any, n: int) -> DateArray | None:
    """``values`` broadcast to ``n`` rows when they are ``datetime64[ns]`` already (naive
    UTC: what :func:`to_utc_datetime64` makes of them), else ``None``."""
    a = np.asarray(values)
    if a.dtype != np.dtype("datetime64[ns]"):
        return None
    return np.broadcast_to(a, (n,)).copy()


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _instrument_names(
    underlying: str, expiry: DateArray, strike: FloatArray, is_call: BoolArray
) -> ObjArray:
    """Deribit-style names ``BTC-27MAR26-100000-C`` for chains that come without names."""
    import pandas as pd

    ts = pd.to_datetime(expiry)
    out = np.empty(strike.size, dtype=object)
    for i, (e, k, c) in enumerate(zip(ts, strike, is_call, strict=True)):
        if pd.isna(e):
            day = "NA"
        else:
            day = f"{e.day}{_MONTHS[e.month - 1]}{e.year % 100:02d}"
        ks = f"{k:.0f}" if np.isfinite(k) and float(k).is_integer() else f"{k:g}"
        out[i] = f"{underlying}-{day}-{ks}-{'C' if c else 'P'}"
    return out


__all__ = [
    "Flag",
    "OptionChain",
    "PriceField",
    "Settlement",
    "expiry_label",
    "isoformat_utc",
    "to_utc_datetime64",
    "to_utc_timestamp",
]
