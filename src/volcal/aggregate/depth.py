"""Order-book depth: the executable price of a size, depth weights for fits.

Where a venue publishes its book (Deribit ``public/get_order_book``: ``bids`` and
``asks`` as ``[[price, amount], ...]`` best first, prices in coin, amounts in coin of
underlying - the layout of the schepal order-book files in ../shared/data), the price
of a trade of ``size`` is the volume-weighted average over the levels it consumes:

.. math::  \\bar p(q) = \\frac{\\sum_j p_j \\min(a_j, (q - A_{j-1})^+)}{q},\\quad
           A_j = \\sum_{i \\le j} a_i

(buying walks the asks upwards, selling the bids downwards). A size deeper than the book
has no executable price: the side becomes absent and the shortfall is counted, never
filled in silently. :func:`executable_chain` turns a chain into the chain of size
``q`` quotes, whose smile (clean + calibrate) is the smile a large trade actually faces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import FloatArray
from volcal.errors import DataError, ParameterError
from volcal.feeds._common import fail, reader_flags
from volcal.market.chain import OptionChain


@dataclass(frozen=True)
class Fill:
    """Executable price of one order: ``average`` (VWAP of what filled), ``worst`` level
    touched, ``filled`` amount and whether the whole size filled."""

    average: float
    worst: float
    filled: float
    complete: bool


@dataclass(frozen=True, eq=False)
class BookDepth:
    """Order-book levels per instrument (prices in the chain's units, amounts in coin)."""

    books: dict[str, tuple[FloatArray, FloatArray]]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "books", dict(self.books))

    def __len__(self) -> int:
        return len(self.books)

    def levels(self, instrument: str, side: str) -> FloatArray:
        """``(n, 2)`` levels ``[price, amount]`` of ``side`` ("bid"/"ask"), best first."""
        if side not in ("bid", "ask"):
            raise ParameterError(f"side must be 'bid' or 'ask', got {side!r}")
        if instrument not in self.books:
            raise DataError(f"no book for {instrument!r}")
        return self.books[instrument][0 if side == "bid" else 1]

    def depth(self, instrument: str, side: str) -> float:
        """Total amount on one side."""
        return float(self.levels(instrument, side)[:, 1].sum())

    def executable(self, instrument: str, size: float, side: str) -> Fill:
        """Price of selling (``side="bid"``) or buying (``"ask"``) ``size`` coin."""
        if not (np.isfinite(size) and size > 0):
            raise ParameterError(f"size must be > 0, got {size!r}")
        lv = self.levels(instrument, side)
        return fill(lv, float(size))


def fill(levels: FloatArray, size: float) -> Fill:
    """Walk ``levels`` (best first) for ``size``; see the module docs."""
    if levels.size == 0:
        return Fill(np.nan, np.nan, 0.0, False)
    amt = levels[:, 1]
    cum = np.cumsum(amt)
    take = np.minimum(amt, np.maximum(size - (cum - amt), 0.0))
    filled = float(take.sum())
    used = take > 0
    avg = float(np.dot(levels[:, 0], take) / filled) if filled > 0 else np.nan
    worst = float(levels[used, 0][-1]) if used.any() else np.nan
    return Fill(avg, worst, filled, bool(filled >= size * (1.0 - 1e-12)))


def _levels(text: Any, where: str, row: int, col: str) -> FloatArray:
    if isinstance(text, float) and np.isnan(text):
        return np.zeros((0, 2))
    try:
        lv = np.asarray(json.loads(str(text)), dtype=np.float64)
    except (ValueError, TypeError):
        raise fail(
            where, f"row {row + 1}: column {col!r} is not a list of [price, amount]"
        ) from None
    if lv.size == 0:
        return np.zeros((0, 2))
    if lv.ndim != 2 or lv.shape[1] != 2 or not np.all(np.isfinite(lv)) or np.any(lv[:, 1] < 0):
        raise fail(where, f"row {row + 1}: column {col!r} is not a list of [price, amount]")
    return lv


def read_book_depth(source: Any, currency: str | None = None) -> BookDepth:
    """Order-book levels from a Deribit ``get_order_book`` CSV (``instrument_name``,
    ``bids``, ``asks``) or a frame with those columns."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(2, "No such file", str(path))
        where = path.name
        import io

        from volcal._io import read_bytes

        df = pd.read_csv(io.BytesIO(read_bytes(path)), low_memory=False)
    elif isinstance(source, pd.DataFrame):
        df, where = source, "DataFrame"
    else:
        raise DataError(f"cannot read order-book depth from {type(source).__name__}")
    miss = [c for c in ("instrument_name", "bids", "asks") if c not in df.columns]
    if miss:
        raise fail(where, f"order-book depth needs column(s) {', '.join(map(repr, miss))}")
    names = df["instrument_name"].astype(str)
    if currency is not None:
        df = df.loc[names.str.split("-").str[0].str.upper() == currency.upper()]
        names = df["instrument_name"].astype(str)
    books: dict[str, tuple[FloatArray, FloatArray]] = {}
    for i, (n, b, a) in enumerate(zip(names, df["bids"], df["asks"], strict=True)):
        bids = _levels(b, where, i, "bids")
        asks = _levels(a, where, i, "asks")
        books[n] = (
            bids[np.argsort(-bids[:, 0], kind="stable")],
            asks[np.argsort(asks[:, 0], kind="stable")],
        )
    if not books:
        raise fail(where, "no order books")
    return BookDepth(books, where)


def executable_chain(chain: OptionChain, book: BookDepth, size: float) -> OptionChain:
    """``chain`` with bid/ask replaced by the prices of selling/buying ``size`` coin.

    Book sizes become the amount that filled. Instruments without a book, and sides too
    thin for ``size``, become absent (flagged ``missing_bid``/``missing_ask`` by the
    reader flags); ``meta["depth"]`` counts them.
    """
    if not (np.isfinite(size) and size > 0):
        raise ParameterError(f"size must be > 0, got {size!r}")
    n = len(chain)
    bid = np.full(n, np.nan)
    ask = np.full(n, np.nan)
    bsz = np.full(n, np.nan)
    asz = np.full(n, np.nan)
    no_book = short_bid = short_ask = 0
    for i, name in enumerate(chain.instrument):
        lv = book.books.get(str(name))
        if lv is None:
            no_book += 1
            continue
        fb, fa = fill(lv[0], size), fill(lv[1], size)
        if fb.complete:
            bid[i], bsz[i] = fb.average, size
        else:
            short_bid += 1
        if fa.complete:
            ask[i], asz[i] = fa.average, size
        else:
            short_ask += 1
    meta = dict(chain.meta)
    meta["depth"] = {
        "size": float(size),
        "no_book": no_book,
        "bid_too_thin": short_bid,
        "ask_too_thin": short_ask,
        "source": book.source,
    }
    out = chain.replace(bid=bid, ask=ask, bid_size=bsz, ask_size=asz, meta=meta)
    return out.with_flags(reader_flags(out.strike, out.expiry, out.snapshot, bid, ask, out.mark))


def depth_weights(chain: OptionChain, rows: Any = None) -> FloatArray:
    """Residual weights from book depth, ``sqrt(1 + min(bid size, ask size))``, mean 1.

    ``rows`` selects the chain rows of a fit (``QuoteSet.row``); pass the result as
    ``volcal.calibrate(chain, ..., weights=depth_weights(chain, quotes.row))``. Quotes of
    unknown depth get the median known depth (all 1 when none is known).
    """
    idx = np.arange(len(chain)) if rows is None else np.asarray(rows)
    d = np.minimum(chain.bid_size[idx], chain.ask_size[idx])
    known = np.isfinite(d) & (d >= 0)
    fillv = float(np.median(d[known])) if known.any() else 0.0
    w = np.sqrt(1.0 + np.where(known, d, fillv))
    return np.asarray(w * (w.size / w.sum()), dtype=np.float64)


__all__ = ["BookDepth", "Fill", "depth_weights", "executable_chain", "fill", "read_book_depth"]
