"""Deribit message shapes: instrument names, channels and the normalised updates.

Deribit's JSON-RPC 2.0 API (https://docs.deribit.com) pushes subscriptions as::

    {"jsonrpc": "2.0", "method": "subscription",
     "params": {"channel": "ticker.BTC-27MAR26-100000-C.100ms", "data": {...}}}

The data of the channels used here (field names as documented):

* ``ticker.{instrument}.{interval}`` - ``timestamp`` (ms), ``instrument_name``,
  ``best_bid_price``, ``best_ask_price``, ``best_bid_amount``, ``best_ask_amount``,
  ``mark_price``, ``mark_iv`` (percent), ``underlying_price``, ``index_price``,
  ``open_interest``, ``stats.volume``, ``state``; options in coin, futures in USD.
* ``markprice.options.{index_name}`` - a list of ``{instrument_name, mark_price, iv,
  timestamp}``.
* ``deribit_price_index.{index_name}`` - ``{index_name, price, timestamp}``.
* ``heartbeat`` notifications (``params.type`` ``"heartbeat"`` or ``"test_request"``;
  the latter must be answered with ``public/test``).

RPC results that are lists of book summaries (``public/get_book_summary_by_currency``:
``instrument_name``, ``bid_price``, ``ask_price``, ``mark_price``, ``underlying_price``,
``creation_timestamp``, ...) are snapshots: the engine applies them quote by quote, which
is how it resynchronises after a reconnect.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DROP_REASONS",
    "Instrument",
    "QuoteUpdate",
    "parse_instrument",
    "parse_message",
]

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}

# reasons a received message (or a quote inside a snapshot) is not applied
DROP_REASONS = (
    "malformed",  # not JSON, or a known channel with missing / non-numeric fields
    "unknown_channel",  # a method or channel the engine does not use
    "unknown_instrument",  # an instrument name that is not an option or future
    "rpc_error",  # an RPC answer carrying an error
    "out_of_order",  # exchange timestamp older than the instrument's last applied one
    "duplicate",  # same exchange timestamp and values as the last applied one
    "expired_instrument",  # expiry at or before the clock
    "other_underlying",  # an underlying the engine was not asked for
)


@dataclass(frozen=True)
class Instrument:
    """A parsed Deribit instrument name (``BTC-27MAR26-100000-C``, ``BTC-27MAR26``,
    ``BTC-PERPETUAL``, ``SOL_USDC-...``)."""

    name: str
    underlying: str
    kind: str  # "option", "future", "perpetual"
    expiry: float  # UTC epoch seconds (08:00 UTC on the expiry day); nan for perpetuals
    strike: float = float("nan")
    is_call: bool = False


def _expiry(code: str) -> float:
    # e.g. 7JAN26 / 27MAR26: day, month, two-digit year; Deribit expires at 08:00 UTC
    day, mon, year = code[:-5], code[-5:-2], code[-2:]
    month = _MONTHS[mon]
    return float(calendar.timegm((2000 + int(year), month, int(day), 8, 0, 0)))


def parse_instrument(name: str) -> Instrument | None:
    """Parse an instrument name; ``None`` when it is not an option/future name.

    >>> i = parse_instrument("BTC-27MAR26-100000-C")
    >>> i.underlying, i.kind, i.strike, i.is_call
    ('BTC', 'option', 100000.0, True)
    >>> parse_instrument("garbage") is None
    True
    """
    parts = name.split("-")
    if len(parts) < 2 or not parts[0]:
        return None
    und = parts[0]
    try:
        if len(parts) == 2:
            if parts[1] == "PERPETUAL":
                return Instrument(name, und, "perpetual", float("nan"))
            return Instrument(name, und, "future", _expiry(parts[1]))
        if len(parts) == 4 and parts[3] in ("C", "P"):
            strike = float(parts[2].replace("d", "."))
            if not strike > 0:
                return None
            return Instrument(name, und, "option", _expiry(parts[1]), strike, parts[3] == "C")
    except (KeyError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    """One instrument's top of book at an exchange time (normalised from a ticker or a
    book summary). Prices in the venue's units (coin for inverse options); NaN where
    absent."""

    instrument: str
    timestamp: float  # exchange time, UTC epoch seconds
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    mark: float
    mark_iv: float  # decimal
    underlying_price: float
    index_price: float
    open_interest: float
    synthetic: bool = False


def _num(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if v is None:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(key)
    return float(v)


def _price(d: dict[str, Any], key: str) -> float:
    v = _num(d, key)
    return v if v > 0 else float("nan")  # Deribit sends 0 / null for an empty side


def ticker_update(data: dict[str, Any]) -> QuoteUpdate:
    """A ``ticker`` channel's data as a :class:`QuoteUpdate` (ValueError if malformed)."""
    name = data.get("instrument_name")
    ts = data.get("timestamp")
    if not isinstance(name, str) or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise ValueError("instrument_name/timestamp")
    iv = _num(data, "mark_iv")
    return QuoteUpdate(
        instrument=name,
        timestamp=float(ts) / 1000.0,
        bid=_price(data, "best_bid_price"),
        ask=_price(data, "best_ask_price"),
        bid_size=_num(data, "best_bid_amount"),
        ask_size=_num(data, "best_ask_amount"),
        mark=_num(data, "mark_price"),
        mark_iv=iv / 100.0,
        underlying_price=_num(data, "underlying_price"),
        index_price=_num(data, "index_price"),
        open_interest=_num(data, "open_interest"),
        synthetic=bool(data.get("volcal_synthetic", False)),
    )


def summary_update(item: dict[str, Any]) -> QuoteUpdate:
    """One ``get_book_summary_by_currency`` item as a :class:`QuoteUpdate`."""
    name = item.get("instrument_name")
    ts = item.get("creation_timestamp")
    if not isinstance(name, str) or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise ValueError("instrument_name/creation_timestamp")
    return QuoteUpdate(
        instrument=name,
        timestamp=float(ts) / 1000.0,
        bid=_price(item, "bid_price"),
        ask=_price(item, "ask_price"),
        bid_size=float("nan"),
        ask_size=float("nan"),
        mark=_num(item, "mark_price"),
        mark_iv=_num(item, "mark_iv") / 100.0,
        underlying_price=_num(item, "underlying_price"),
        index_price=float("nan"),
        open_interest=_num(item, "open_interest"),
    )


@dataclass(frozen=True, slots=True)
class Parsed:
    """A classified message: ``kind`` is one of ``ticker``, ``markprice``, ``index``,
    ``snapshot``, ``heartbeat``, ``rpc`` (a plain RPC answer), ``rpc_error`` or a drop
    reason (``malformed``, ``unknown_channel``)."""

    kind: str
    payload: Any = None


def parse_message(raw: str | bytes | dict[str, Any]) -> Parsed:
    """Classify one websocket frame (or an already decoded dict); never raises."""
    if isinstance(raw, dict):
        msg: Any = raw
    else:
        try:
            msg = json.loads(raw)
        except (ValueError, TypeError):
            return Parsed("malformed")
    if not isinstance(msg, dict):
        return Parsed("malformed")
    try:
        method = msg.get("method")
        if method == "subscription":
            params = msg["params"]
            channel = params["channel"]
            data = params["data"]
            if not isinstance(channel, str):
                return Parsed("malformed")
            head = channel.split(".", 1)[0]
            if head == "ticker":
                if not isinstance(data, dict):
                    return Parsed("malformed")
                return Parsed("ticker", ticker_update(data))
            if head == "markprice":
                if not isinstance(data, list):
                    return Parsed("malformed")
                items = []
                for it in data:
                    name, ts = it["instrument_name"], it["timestamp"]
                    if not isinstance(name, str):
                        raise ValueError("instrument_name")
                    items.append((name, float(ts) / 1000.0, _num(it, "mark_price"), _num(it, "iv")))
                return Parsed("markprice", items)
            if head == "deribit_price_index":
                price, ts, index = data["price"], data["timestamp"], data["index_name"]
                if not isinstance(index, str):
                    raise ValueError("index_name")
                return Parsed("index", (index, float(ts) / 1000.0, float(price)))
            return Parsed("unknown_channel", channel)
        if method == "heartbeat":
            return Parsed("heartbeat", (msg.get("params") or {}).get("type"))
        if method is not None:
            return Parsed("unknown_channel", method)
        if "error" in msg:
            return Parsed("rpc_error", msg.get("error"))
        if "result" in msg:
            res = msg["result"]
            if (
                isinstance(res, list)
                and res
                and isinstance(res[0], dict)
                and "creation_timestamp" in res[0]
                and "instrument_name" in res[0]
            ):
                return Parsed("snapshot", res)
            return Parsed("rpc", msg)
    except (KeyError, TypeError, ValueError, AttributeError):
        return Parsed("malformed")
    return Parsed("unknown_channel", None)
