"""Helpers shared by the OKX, Bybit, Binance, Tardis and quantflow readers and writers.

A fetched (or converted) venue chain is kept as one JSON document holding the venue's
untouched answers::

    {"format": "volcal.<venue>-raw", "version": 1, "currency": "BTC",
     "fetched_at": "...", "base_url": "...", "responses": {"<endpoint>": <answer>, ...}}

Numbers in venue answers are strings (OKX, Bybit, Binance); an empty string is absent.
Writers format floats with ``repr`` (shortest text that reads back to the same double),
so a chain written and read back keeps every price bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import FloatArray
from volcal.errors import DataError
from volcal.feeds._common import fail
from volcal.market.chain import OptionChain

DOC_VERSION = 1
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MON = {m: i + 1 for i, m in enumerate(_MONTHS)}


def doc_format(venue: str) -> str:
    """``"volcal.<venue>-raw"``: the ``format`` of a saved venue document."""
    return f"volcal.{venue}-raw"


def envelope(venue: str, currency: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A saved venue document around the raw ``responses``."""
    return {
        "format": doc_format(venue),
        "version": DOC_VERSION,
        "currency": currency.upper(),
        "fetched_at": extra.pop("fetched_at", pd.Timestamp.now(tz="UTC").isoformat()),
        **extra,
        "responses": responses,
    }


def num(values: Iterable[Any], where: str, field: str) -> FloatArray:
    """Venue numbers (strings or numbers; ``""``/``None`` absent) as float64.

    Any other text is a one-line error naming the field.
    """
    out = []
    for v in values:
        if v is None or (isinstance(v, str) and v.strip() == ""):
            out.append(np.nan)
            continue
        if isinstance(v, bool):
            raise fail(where, f"field {field!r}: {v!r} is not a number")
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise fail(where, f"field {field!r}: {v!r} is not a number") from None
    return np.asarray(out, dtype=np.float64)


def fmt(x: Any) -> str:
    """A float as venue text: ``repr`` (exact round trip); NaN -> ``""``."""
    v = float(x)
    if not np.isfinite(v):
        return ""
    return repr(v)


def strike_text(k: float) -> str:
    """Strike as it appears in instrument names (``100000``, ``0.5``)."""
    return f"{k:.0f}" if float(k).is_integer() else repr(float(k))


def ms_of(ts: Any) -> int:
    """Unix milliseconds of a time (naive = UTC); sub-millisecond parts are dropped."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    return int(t.value // 1_000_000)


def day_text(e: Any) -> str:
    """``27MAR26`` (Deribit and Bybit names)."""
    t = pd.Timestamp(e)
    return f"{t.day}{_MONTHS[t.month - 1]}{t.year % 100:02d}"


def yymmdd(e: Any) -> str:
    """``260327`` (OKX and Binance names)."""
    return pd.Timestamp(e).strftime("%y%m%d")


def parse_day(text: str) -> pd.Timestamp:
    """Calendar day of ``27MAR26`` or ``260327`` (UTC midnight)."""
    s = text.strip().upper()
    if s.isdigit() and len(s) == 6:
        return pd.Timestamp(year=2000 + int(s[:2]), month=int(s[2:4]), day=int(s[4:]), tz="UTC")
    i = len(s) - 5
    if i < 1 or s[i : i + 3] not in _MON or not s[:i].isdigit() or not s[i + 3 :].isdigit():
        raise DataError(f"cannot read expiry day {text!r}")
    return pd.Timestamp(
        year=2000 + int(s[i + 3 :]), month=_MON[s[i : i + 3]], day=int(s[:i]), tz="UTC"
    )


def records(doc: Any, path: tuple[str, ...], where: str, what: str) -> list[dict[str, Any]]:
    """The list of records at ``doc[path[0]][path[1]]...`` (one-line error otherwise)."""
    cur = doc
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            raise fail(where, f"{what} has no {'.'.join(path)!r}")
        cur = cur[key]
    if not isinstance(cur, list) or not all(isinstance(r, dict) for r in cur):
        raise fail(where, f"{what}: {'.'.join(path)!r} is not a list of records")
    return cur


def column(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return [r.get(key) for r in rows]


def require_keys(rows: list[dict[str, Any]], keys: tuple[str, ...], where: str, what: str) -> None:
    """Every record carries ``keys`` (a truncated or foreign answer otherwise)."""
    for i, r in enumerate(rows):
        miss = [k for k in keys if k not in r]
        if miss:
            raise fail(where, f"{what} record {i + 1} lacks {', '.join(map(repr, miss))}")


def chain_rows_for_writer(chain: OptionChain) -> OptionChain:
    """A writer needs a forward for every quote (``volcal.clean`` establishes them)."""
    if len(chain) == 0:
        raise DataError("cannot write an empty chain")
    bad = ~(np.isfinite(chain.forward) & (chain.forward > 0))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} quotes have no forward: clean the chain first (volcal.clean)"
        )
    return chain


def coin_prices(chain: OptionChain, side: str) -> FloatArray:
    """Prices per unit of forward (undiscounted): the coin price of an inverse quote
    whose conversion price is its forward. Writers keep these, so implied vols survive
    any change of layout."""
    return chain.forward_price(side)  # type: ignore[arg-type]


def usd_forward_prices(chain: OptionChain, side: str) -> FloatArray:
    """Undiscounted USD value (forward-unit price x forward) of each quote."""
    return coin_prices(chain, side) * chain.forward


def one_currency(names: list[str], currency: str | None, where: str) -> tuple[np.ndarray, str]:
    """Mask of the instruments of one underlying (first ``-`` field of the names)."""
    und = np.array([str(n).split("-")[0].upper() for n in names], dtype=object)
    found = sorted(set(und.tolist()))
    if not found:
        raise fail(where, "no option quotes (empty chain)")
    if currency is None:
        if len(found) > 1:
            raise fail(where, f"file holds {' and '.join(found)}: pass currency=...")
        return np.ones(und.size, dtype=bool), found[0]
    want = currency.upper()
    if want not in found:
        raise fail(where, f"no {want} options in file (it holds {', '.join(found)})")
    return und == want, want


BodyCheck = Callable[[Any, int, str], "str | None"]

__all__ = [
    "DOC_VERSION",
    "chain_rows_for_writer",
    "coin_prices",
    "column",
    "day_text",
    "doc_format",
    "envelope",
    "fmt",
    "ms_of",
    "num",
    "one_currency",
    "parse_day",
    "records",
    "require_keys",
    "strike_text",
    "usd_forward_prices",
    "yymmdd",
]
