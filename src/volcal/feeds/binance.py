"""Binance European options: public REST answers -> :class:`~volcal.market.OptionChain`,
back, and the live fetcher.

Endpoints (public; field meanings from Binance's European Options API documentation)
------------------------------------------------------------------------------------
``GET /eapi/v1/ticker``
    A list, one record per option: ``symbol`` (``BTC-260327-100000-C``), ``bidPrice``/
    ``askPrice`` (USDT per unit of underlying), ``lastPrice``, ``volume`` (contracts),
    ``strikePrice``, ``exercisePrice``, ``closeTime`` (Unix ms).
``GET /eapi/v1/mark``
    Per option: ``markPrice``, ``bidIV``/``askIV``/``markIV`` (decimals), greeks and
    ``riskFreeInterest`` (the rate of Binance's mark-price model).
``GET /eapi/v1/exchangeInfo``
    ``serverTime`` and ``optionSymbols``: per option ``expiryDate`` (Unix ms), ``side``
    (``CALL``/``PUT``), ``strikePrice``, ``unit`` (underlying per contract),
    ``quoteAsset``.
``GET /eapi/v1/index?underlying=BTCUSDT``
    ``{"time": <ms>, "indexPrice": "..."}``.

Conventions (:mod:`volcal.market.conventions`): linear, USDT-settled. The ticker carries
no book sizes (NaN; ``/eapi/v1/depth`` has them per symbol). Binance prices its marks
with the index ``S`` and ``riskFreeInterest`` ``r``, so the forward of an option is
``S e^{rT}`` and its discount factor ``e^{-rT}``; without the index the forward is left
to put-call parity (``volcal.clean``). The snapshot is the index ``time``, else
``serverTime``, else the latest ``closeTime``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from volcal.errors import DataError, FetchError
from volcal.feeds._common import build_chain, fail, ms_to_datetime64
from volcal.feeds._venue import (
    chain_rows_for_writer,
    column,
    doc_format,
    envelope,
    fmt,
    ms_of,
    num,
    one_currency,
    parse_day,
    require_keys,
    strike_text,
    usd_forward_prices,
    yymmdd,
)
from volcal.market.chain import SECONDS_PER_YEAR, OptionChain, Settlement, to_utc_timestamp
from volcal.market.conventions import convention

if TYPE_CHECKING:  # pragma: no cover
    import httpx

VENUE = "binance"
FORMAT = doc_format(VENUE)
BASE_URL = "https://eapi.binance.com"


def classify(doc: Any) -> str | None:
    """``"doc"``, ``"ticker"``, ``"mark"``, ``"exchange-info"``, ``"error"`` or ``None``."""
    if isinstance(doc, dict):
        if doc.get("format") == FORMAT:
            return "doc"
        if "optionSymbols" in doc:
            return "exchange-info"
        if set(doc) >= {"code", "msg"} and len(doc) <= 3:
            return "error"
        return None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "symbol" in doc[0]:
        first = doc[0]
        if "bidPrice" in first and "strikePrice" in first:
            return "ticker"
        if "markIV" in first:
            return "mark"
    return None


def _rows(answer: Any, where: str, what: str) -> list[dict[str, Any]]:
    if isinstance(answer, dict) and classify(answer) == "error":
        raise fail(where, f"Binance error answer {answer.get('code')}: {answer.get('msg')}")
    if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
        raise fail(where, f"Binance {what} answer is not a list of records")
    return answer


def read_binance(
    doc: Any,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """An :class:`OptionChain` from a Binance options document (see the module docs)."""
    kind = classify(doc)
    if kind == "doc":
        resp = doc.get("responses")
        if not isinstance(resp, dict) or "ticker" not in resp:
            raise fail(where, "Binance document has no 'responses.ticker'")
        ticker, mark, info, index = (
            resp["ticker"],
            resp.get("mark"),
            resp.get("exchange_info"),
            resp.get("index"),
        )
        currency = currency or doc.get("currency")
    elif kind == "ticker":
        ticker, mark, info, index = doc, None, None, None
    elif kind == "error":
        raise fail(where, f"Binance error answer {doc.get('code')}: {doc.get('msg')}")
    elif kind in ("mark", "exchange-info"):
        raise fail(where, f"holds Binance {kind} data, not option quotes")
    else:
        raise fail(where, "not a Binance options document")
    rows = _rows(ticker, where, "ticker")
    if not rows:
        raise fail(where, "no option quotes (empty chain)")
    require_keys(rows, ("symbol", "bidPrice", "askPrice"), where, "Binance ticker")
    names = [str(r["symbol"]) for r in rows]
    mask, und = one_currency(names, currency, where)
    rows = [r for r, m in zip(rows, mask, strict=True) if m]
    names = [str(r["symbol"]) for r in rows]
    parts = [nm.split("-") for nm in names]
    for nm, p in zip(names, parts, strict=True):
        if len(p) != 4 or p[3] not in ("C", "P"):
            raise fail(where, f"cannot parse Binance option name {nm!r}")
    marks = {str(r.get("symbol")): r for r in (_rows(mark, where, "mark") if mark else [])}
    symbols: dict[str, dict[str, Any]] = {}
    server_ms: Any = None
    if info is not None:
        if not isinstance(info, dict) or not isinstance(info.get("optionSymbols"), list):
            raise fail(where, "Binance exchangeInfo answer has no 'optionSymbols' list")
        symbols = {str(s.get("symbol")): s for s in info["optionSymbols"] if isinstance(s, dict)}
        server_ms = info.get("serverTime")
    conv = convention(VENUE)
    n = len(rows)
    bid = num(column(rows, "bidPrice"), where, "bidPrice")
    ask = num(column(rows, "askPrice"), where, "askPrice")
    exp_ms = np.full(n, np.nan)
    unit = np.ones(n)
    for i, nm in enumerate(names):
        s = symbols.get(nm)
        if s is not None:
            exp_ms[i] = num([s.get("expiryDate")], where, "expiryDate")[0]
            u = num([s.get("unit", 1)], where, "unit")[0]
            unit[i] = u if np.isfinite(u) else 1.0
        if not np.isfinite(exp_ms[i]):
            try:
                day = parse_day(parts[i][1])
            except Exception:
                raise fail(where, f"cannot read the expiry of Binance option {nm!r}") from None
            exp_ms[i] = ms_of(day + pd.Timedelta(hours=conv.expiry_hour_utc))
    idx = np.nan
    idx_ms: Any = None
    if index is not None:
        if not isinstance(index, dict) or "indexPrice" not in index:
            raise fail(where, "Binance index answer has no 'indexPrice'")
        idx = float(num([index["indexPrice"]], where, "indexPrice")[0])
        idx_ms = index.get("time")
    close = num(column(rows, "closeTime"), where, "closeTime")
    if snapshot is not None:
        snap, how = to_utc_timestamp(snapshot, "snapshot"), "requested"
    elif isinstance(idx_ms, (int, float)):
        snap, how = pd.Timestamp(int(idx_ms), unit="ms", tz="UTC"), "index time"
    elif isinstance(server_ms, (int, float)):
        snap, how = pd.Timestamp(int(server_ms), unit="ms", tz="UTC"), "server time"
    elif np.isfinite(close).any():
        snap, how = pd.Timestamp(int(np.nanmax(close)), unit="ms", tz="UTC"), "latest closeTime"
    else:
        raise fail(where, "no time in the Binance answers: pass snapshot=...")
    rate = np.array(
        [num([marks.get(nm, {}).get("riskFreeInterest")], where, "r")[0] for nm in names]
    )
    mark_px = np.array(
        [num([marks.get(nm, {}).get("markPrice")], where, "markPrice")[0] for nm in names]
    )
    mark_iv = np.array([num([marks.get(nm, {}).get("markIV")], where, "markIV")[0] for nm in names])
    snap_ms = ms_of(snap)
    t = (exp_ms - snap_ms) / 1000.0 / SECONDS_PER_YEAR
    r = np.where(np.isfinite(rate), rate, 0.0)
    fwd = idx * np.exp(r * t) if np.isfinite(idx) else np.full(n, np.nan)
    disc = np.exp(-r * t)
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or conv.settlement,
        venue=VENUE,
        index_price=idx,
        instrument=np.array(names, dtype=object),
        expiry=ms_to_datetime64(exp_ms),
        strike=num([p[2] for p in parts], where, "symbol strike"),
        is_call=np.array([p[3] == "C" for p in parts]),
        bid=np.where(bid == 0, np.nan, bid),
        ask=np.where(ask == 0, np.nan, ask),
        mark=mark_px,
        volume=num(column(rows, "volume"), where, "volume") * unit,
        quote_time=ms_to_datetime64(close),
        underlying_price=fwd,
        discount=disc,
        mark_iv=mark_iv * conv.iv_scale,
        meta={
            "source": where,
            "format": FORMAT if kind == "doc" else "binance-ticker",
            "venue": VENUE,
            "quote_currency": "USDT",
            "snapshot_choice": how,
            "forward_source": "index x exp(riskFreeInterest T)"
            if np.isfinite(idx)
            else "none (put-call parity in clean)",
        },
    )


def to_binance(chain: OptionChain) -> dict[str, Any]:
    """A Binance document (``volcal.binance-raw``) holding ``chain`` in Binance's layout.

    The index is the chain's index price ``S``; each option's ``riskFreeInterest`` is
    ``ln(F/S)/T`` so that Binance's forward ``S e^{rT}`` is the chain's forward, and its
    prices are the chain's undiscounted USD values (forward-unit price x forward) discounted
    by ``e^{-rT}``.
    """
    ch = chain_rows_for_writer(chain)
    if not np.isfinite(ch.index_price) or ch.index_price <= 0:
        raise DataError("to_binance needs the chain's index price")
    und = ch.underlying.upper()
    snap_ms = ms_of(ch.snapshot)
    s = float(ch.index_price)
    t = np.array(
        [(ms_of(pd.Timestamp(e)) - snap_ms) / 1000.0 / SECONDS_PER_YEAR for e in ch.expiry]
    )
    r = np.log(ch.forward / s) / t
    disc = np.exp(-r * t)
    bid = usd_forward_prices(ch, "bid") * disc
    ask = usd_forward_prices(ch, "ask") * disc
    mark = usd_forward_prices(ch, "mark") * disc
    tick, marks, syms = [], [], []
    for i in range(len(ch)):
        e = pd.Timestamp(ch.expiry[i])
        cp = "C" if ch.is_call[i] else "P"
        name = f"{und}-{yymmdd(e)}-{strike_text(ch.strike[i])}-{cp}"
        tick.append(
            {
                "symbol": name,
                "priceChange": "0",
                "priceChangePercent": "0",
                "lastPrice": "",
                "lastQty": "0",
                "open": "",
                "high": "",
                "low": "",
                "volume": fmt(ch.volume[i]) or "0",
                "amount": "0",
                "bidPrice": fmt(bid[i]) or "0",
                "askPrice": fmt(ask[i]) or "0",
                "openTime": snap_ms - 86_400_000,
                "closeTime": snap_ms,
                "firstTradeId": 0,
                "tradeCount": 0,
                "strikePrice": fmt(ch.strike[i]),
                "exercisePrice": fmt(s),
            }
        )
        marks.append(
            {
                "symbol": name,
                "markPrice": fmt(mark[i]),
                "bidIV": "",
                "askIV": "",
                "markIV": fmt(ch.mark_iv[i]),
                "riskFreeInterest": fmt(r[i]),
            }
        )
        syms.append(
            {
                "expiryDate": ms_of(e),
                "symbol": name,
                "side": "CALL" if ch.is_call[i] else "PUT",
                "strikePrice": fmt(ch.strike[i]),
                "underlying": f"{und}USDT",
                "unit": 1,
                "quoteAsset": "USDT",
            }
        )
    return envelope(
        VENUE,
        und,
        {
            "ticker": tick,
            "mark": marks,
            "exchange_info": {"timezone": "UTC", "serverTime": snap_ms, "optionSymbols": syms},
            "index": {"time": snap_ms, "indexPrice": fmt(s)},
        },
        converted_from=ch.venue,
    )


def _check(what: str) -> Callable[[Any, int, str], str | None]:
    def check(body: Any, status: int, reason: str) -> str | None:
        if status == 418:
            return "Binance IP ban for rate limit (HTTP 418)"
        if status >= 400 or (isinstance(body, dict) and classify(body) == "error"):
            code = body.get("code") if isinstance(body, dict) else None
            msg = body.get("msg") if isinstance(body, dict) else reason
            raise FetchError(f"binance {what}: HTTP {status}, {code} {msg}")
        return None

    return check


def fetch_raw(
    currency: str = "BTC",
    *,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    base_url: str = BASE_URL,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Binance's exchangeInfo, ticker, mark and index answers as one document.

    The ticker and mark answers list every underlying; the document keeps them whole
    and the reader selects ``currency``.
    """
    from volcal.feeds._http import fetch_responses

    cur = currency.upper()
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "exchange_info": ("/eapi/v1/exchangeInfo", {}),
        "ticker": ("/eapi/v1/ticker", {}),
        "mark": ("/eapi/v1/mark", {}),
        "index": ("/eapi/v1/index", {"underlying": f"{cur}USDT"}),
    }
    resp = fetch_responses(
        VENUE,
        calls,
        check=_check,
        client=client,
        base_url=base_url,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        progress=progress,
        sleep=sleep,
    )
    return envelope(VENUE, cur, resp, base_url=base_url)


def fetch_chain(
    currency: str = "BTC", *, save: str | Path | None = None, **kwargs: Any
) -> OptionChain:
    """Fetch the live Binance options chain of ``currency`` (arguments of
    :func:`fetch_raw`)."""
    doc = fetch_raw(currency, **kwargs)
    if save is not None:
        Path(save).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    where = Path(save).name if save is not None else f"binance {currency.upper()} (live)"
    return read_binance(doc, where, currency)


__all__ = [
    "BASE_URL",
    "FORMAT",
    "classify",
    "fetch_chain",
    "fetch_raw",
    "read_binance",
    "to_binance",
]
