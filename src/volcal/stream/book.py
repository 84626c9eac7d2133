"""Live chain state: the latest top of book of every instrument of one underlying.

Rows are grouped by expiry in growable NumPy columns (an expiry's quotes are contiguous,
so a per-expiry fit or an ``OptionChain`` view of one expiry reads only its own rows).
Each row keeps the exchange timestamp, the receive timestamp (engine clock) and the
wall time it arrived (``time.perf_counter``, for latency). Applying an update checks
the instrument's timestamps: older than the last applied one is ``out_of_order``; the
same time and the same values is a ``duplicate`` (a resynchronisation snapshot replaying
what a ticker already delivered).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal.market.chain import OptionChain
from volcal.stream.messages import Instrument, QuoteUpdate

__all__ = ["ExpiryBook", "LiveBook"]

_COLS = (
    "strike",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "mark",
    "mark_iv",
    "underlying_price",
    "open_interest",
    "exch_ts",
    "recv_ts",
    "wall_ts",
)


class ExpiryBook:
    """The rows of one expiry (mutable, owned by the engine's loop)."""

    def __init__(self, expiry: float) -> None:
        self.expiry = expiry
        self.n = 0
        cap = 16
        self.instruments: list[str] = []
        self.is_call = np.zeros(cap, dtype=bool)
        self.strike = np.full(cap, np.nan)
        self.bid = np.full(cap, np.nan)
        self.ask = np.full(cap, np.nan)
        self.bid_size = np.full(cap, np.nan)
        self.ask_size = np.full(cap, np.nan)
        self.mark = np.full(cap, np.nan)
        self.mark_iv = np.full(cap, np.nan)
        self.underlying_price = np.full(cap, np.nan)
        self.open_interest = np.full(cap, np.nan)
        self.exch_ts = np.full(cap, np.nan)
        self.recv_ts = np.full(cap, np.nan)
        self.wall_ts = np.full(cap, np.nan)
        # dirty bookkeeping (read by the scheduler)
        self.dirty = False
        self.first_dirty_wall = math.inf  # wall time of the oldest change not yet fitted
        self.last_dirty_wall = 0.0  # wall time of the newest change not yet fitted
        self.last_input_time = math.nan  # clock time of the newest change
        self.changed: set[str] = set()
        self.recheck_at = math.inf  # clock time a held quote is due to be reconsidered

    def _grow(self) -> None:
        cap = 2 * self.is_call.size
        self.is_call = np.concatenate([self.is_call, np.zeros(cap - self.is_call.size, bool)])
        for c in _COLS:
            a = getattr(self, c)
            setattr(self, c, np.concatenate([a, np.full(cap - a.size, np.nan)]))

    def add(self, inst: Instrument) -> int:
        if self.n == self.is_call.size:
            self._grow()
        row = self.n
        self.n += 1
        self.instruments.append(inst.name)
        self.strike[row] = inst.strike
        self.is_call[row] = inst.is_call
        return row

    def col(self, name: str) -> np.ndarray:
        """The first ``n`` entries of a column (a view, not a copy)."""
        return getattr(self, name)[: self.n]  # type: ignore[no-any-return]


@dataclass
class FutureQuote:
    name: str
    expiry: float
    bid: float = math.nan
    ask: float = math.nan
    mark: float = math.nan
    timestamp: float = math.nan


@dataclass
class LiveBook:
    """All live quotes of one underlying (options by expiry, futures, index)."""

    underlying: str
    expiries: dict[float, ExpiryBook] = field(default_factory=dict)
    where: dict[str, tuple[ExpiryBook, int]] = field(default_factory=dict)
    futures: dict[str, FutureQuote] = field(default_factory=dict)
    index_price: float = math.nan
    index_time: float = math.nan
    last_time: float = math.nan  # newest exchange time applied

    def apply(self, inst: Instrument, u: QuoteUpdate, recv: float, wall: float) -> str:
        """Apply an option or future update; returns ``"applied"`` or a drop reason."""
        if inst.kind != "option":
            fq = self.futures.get(inst.name)
            if fq is None:
                fq = self.futures[inst.name] = FutureQuote(inst.name, inst.expiry)
            if u.timestamp < fq.timestamp:
                return "out_of_order"
            if u.timestamp == fq.timestamp and u.mark == fq.mark:
                return "duplicate"
            fq.bid, fq.ask, fq.mark, fq.timestamp = u.bid, u.ask, u.mark, u.timestamp
            if math.isfinite(u.index_price):
                self.index_price = u.index_price
            self._seen(u.timestamp)
            return "applied"
        loc = self.where.get(inst.name)
        if loc is None:
            eb = self.expiries.get(inst.expiry)
            if eb is None:
                eb = self.expiries[inst.expiry] = ExpiryBook(inst.expiry)
            loc = self.where[inst.name] = (eb, eb.add(inst))
        eb, row = loc
        last = eb.exch_ts[row]
        if u.timestamp < last:
            return "out_of_order"
        if (
            u.timestamp == last
            and _same(eb.bid[row], u.bid)
            and _same(eb.ask[row], u.ask)
            and _same(eb.mark[row], u.mark)
        ):
            return "duplicate"
        quote_moved = not (_same(eb.bid[row], u.bid) and _same(eb.ask[row], u.ask)) or not _same(
            eb.underlying_price[row], u.underlying_price
        )
        eb.bid[row] = u.bid
        eb.ask[row] = u.ask
        if not (math.isnan(u.bid_size) and math.isnan(u.ask_size)):
            eb.bid_size[row] = u.bid_size
            eb.ask_size[row] = u.ask_size
        eb.mark[row] = u.mark
        if math.isfinite(u.mark_iv):
            eb.mark_iv[row] = u.mark_iv
        if math.isfinite(u.underlying_price):
            eb.underlying_price[row] = u.underlying_price
        if math.isfinite(u.open_interest):
            eb.open_interest[row] = u.open_interest
        eb.exch_ts[row] = u.timestamp
        eb.recv_ts[row] = recv
        eb.wall_ts[row] = wall
        if math.isfinite(u.index_price):
            self.index_price = u.index_price
            self.index_time = u.timestamp
        self._seen(u.timestamp)
        if quote_moved:
            if not eb.dirty:
                eb.first_dirty_wall = wall
            eb.dirty = True
            eb.last_dirty_wall = wall
            eb.last_input_time = recv
            eb.changed.add(inst.name)
        return "applied"

    def apply_mark(self, name: str, ts: float, mark: float, iv: float) -> bool:
        loc = self.where.get(name)
        if loc is None:
            return False
        eb, row = loc
        eb.mark[row] = mark
        if math.isfinite(iv):
            eb.mark_iv[row] = iv / 100.0
        return True

    def _seen(self, ts: float) -> None:
        if not ts <= self.last_time:
            self.last_time = ts

    def drop_expired(self, now: float) -> list[float]:
        """Remove expiries at or before ``now``; returns the removed expiries."""
        gone = [e for e in self.expiries if e <= now]
        for e in gone:
            eb = self.expiries.pop(e)
            for name in eb.instruments:
                self.where.pop(name, None)
        for name in [n for n, f in self.futures.items() if f.expiry <= now]:
            del self.futures[name]
        return gone

    @property
    def n_instruments(self) -> int:
        return len(self.where)

    def quote(self, name: str, now: float | None = None) -> dict[str, Any] | None:
        """The live quote of one instrument (with its age on the clock ``now``)."""
        loc = self.where.get(name)
        if loc is None:
            return None
        eb, row = loc
        d: dict[str, Any] = {"instrument": name, "expiry": eb.expiry}
        for c in _COLS:
            d[c] = float(getattr(eb, c)[row])
        d["is_call"] = bool(eb.is_call[row])
        if now is not None:
            d["age_s"] = now - d["exch_ts"]
        return d

    def option_chain(self, now: float, expiries: Any = None) -> OptionChain:
        """An :class:`OptionChain` of the live quotes at clock time ``now``.

        Only the rows of the requested ``expiries`` (default: all) are read; the book
        is not copied beyond them. Forwards are the quoted underlying of each option.
        """
        import pandas as pd

        sel = sorted(self.expiries) if expiries is None else sorted(expiries)
        books = [self.expiries[e] for e in sel if e in self.expiries]

        def cat(name: str) -> np.ndarray:
            if not books:
                return np.empty(0)
            return np.concatenate([b.col(name) for b in books])

        exp = (
            np.concatenate([np.full(b.n, int(b.expiry * 1e9), dtype=np.int64) for b in books])
            if books
            else np.empty(0, dtype=np.int64)
        ).view("datetime64[ns]")
        # microsecond resolution: exchange times are milliseconds, and downstream
        # conversions to datetime must not discard anything
        qt = (
            (np.round(cat("exch_ts") * 1e6) * 1000).astype(np.int64).view("datetime64[ns]")
            if books
            else exp
        )
        und = cat("underlying_price")
        names = [n for b in books for n in b.instruments]
        return OptionChain.from_arrays(
            underlying=self.underlying,
            snapshot=pd.Timestamp(round(now * 1e6), unit="us", tz="UTC"),
            settlement="inverse",
            venue="deribit",
            index_price=self.index_price,
            instrument=np.array(names, dtype=object),
            expiry=exp,
            strike=cat("strike"),
            is_call=np.concatenate([b.is_call[: b.n] for b in books]) if books else np.empty(0),
            bid=np.nan_to_num(cat("bid"), nan=0.0),
            ask=np.nan_to_num(cat("ask"), nan=0.0),
            mark=cat("mark"),
            bid_size=cat("bid_size"),
            ask_size=cat("ask_size"),
            open_interest=cat("open_interest"),
            quote_time=qt,
            underlying_price=und,
            forward=und,
            mark_iv=cat("mark_iv"),
            meta={"source": "volcal.stream live book"},
        )


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def wall_now() -> float:
    return time.perf_counter()
