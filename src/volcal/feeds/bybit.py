"""Bybit options: public REST v5 answers -> :class:`~volcal.market.OptionChain`, back,
and the live fetcher.

Endpoints (public; field meanings from Bybit's V5 API documentation)
--------------------------------------------------------------------
``GET /v5/market/tickers?category=option&baseCoin=BTC``
    ``{"retCode": 0, "retMsg": "OK", "result": {"category": "option", "list": [...]},
    "time": <ms>}``, one record per option: ``symbol`` (``BTC-27MAR26-100000-C``, with a
    ``-USDT`` suffix for USDT-settled ones), ``bid1Price``/``ask1Price`` (quote currency
    per unit of underlying), ``bid1Size``/``ask1Size`` (coin), ``bid1Iv``/``ask1Iv``/
    ``markIv`` (decimals), ``markPrice``, ``indexPrice``, ``underlyingPrice`` (the price
    of the underlying of the expiry: the forward), ``openInterest`` and ``volume24h``
    (coin).
``GET /v5/market/instruments-info?category=option&baseCoin=BTC``
    Per option: ``deliveryTime`` (Unix ms), ``optionsType`` (``Call``/``Put``),
    ``settleCoin``/``quoteCoin``; paged with ``nextPageCursor``.

Conventions (:mod:`volcal.market.conventions`): linear (USDC- or USDT-settled), prices in
the quote currency, sizes in coin, forward ``underlyingPrice``, undiscounted (discount
factor 1), expiries at ``deliveryTime`` else 08:00 UTC of the named day. The snapshot is
the answer's ``time``; Bybit tickers carry no per-quote time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from volcal.errors import FetchError
from volcal.feeds._common import build_chain, fail, ms_to_datetime64
from volcal.feeds._venue import (
    chain_rows_for_writer,
    column,
    day_text,
    doc_format,
    envelope,
    fmt,
    ms_of,
    num,
    one_currency,
    parse_day,
    records,
    require_keys,
    strike_text,
    usd_forward_prices,
)
from volcal.market.chain import OptionChain, Settlement, to_utc_timestamp
from volcal.market.conventions import convention

if TYPE_CHECKING:  # pragma: no cover
    import httpx

VENUE = "bybit"
FORMAT = doc_format(VENUE)
BASE_URL = "https://api.bybit.com"
#: Bybit retCode for "too many visits".
RATE_LIMIT_CODE = 10006
_MAX_PAGES = 20


def classify(doc: Any) -> str | None:
    """``"doc"``, ``"tickers"``, ``"instruments"``, ``"error"`` or ``None``."""
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == FORMAT:
        return "doc"
    if "retCode" not in doc:
        return None
    if doc.get("retCode") != 0:
        return "error"
    res = doc.get("result")
    if not isinstance(res, dict) or res.get("category") != "option":
        return None
    lst = res.get("list")
    if isinstance(lst, list) and lst and isinstance(lst[0], dict) and "deliveryTime" in lst[0]:
        return "instruments"
    return "tickers"


def _instruments(answer: Any, where: str) -> dict[str, dict[str, Any]]:
    if answer is None:
        return {}
    pages = answer if isinstance(answer, list) else [answer]
    out: dict[str, dict[str, Any]] = {}
    for page in pages:
        if classify(page) == "error":
            raise fail(where, f"Bybit error answer {page.get('retCode')}: {page.get('retMsg')}")
        for r in records(page, ("result", "list"), where, "Bybit instruments-info"):
            out[str(r.get("symbol"))] = r
    return out


def _empty_side(a: np.ndarray) -> np.ndarray:
    """Bybit reports an empty side of the book as price ``"0"``: read it as absent."""
    return np.where(a == 0, np.nan, a)


def read_bybit(
    doc: Any,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """An :class:`OptionChain` from a Bybit document (see the module docs)."""
    kind = classify(doc)
    if kind == "doc":
        resp = doc.get("responses")
        if not isinstance(resp, dict) or "tickers" not in resp:
            raise fail(where, "Bybit document has no 'responses.tickers'")
        tickers, inst = resp["tickers"], resp.get("instruments")
        currency = currency or doc.get("currency")
    elif kind == "tickers":
        tickers, inst = doc, None
    elif kind == "error":
        raise fail(where, f"Bybit error answer {doc.get('retCode')}: {doc.get('retMsg')}")
    elif kind == "instruments":
        raise fail(where, "holds Bybit instruments-info data, not option quotes")
    else:
        raise fail(where, "not a Bybit options document")
    if classify(tickers) == "error":
        raise fail(where, f"Bybit error answer {tickers.get('retCode')}: {tickers.get('retMsg')}")
    rows = records(tickers, ("result", "list"), where, "Bybit tickers")
    if not rows:
        raise fail(where, "no option quotes (empty chain)")
    require_keys(
        rows, ("symbol", "bid1Price", "ask1Price", "underlyingPrice"), where, "Bybit ticker"
    )
    names = [str(r["symbol"]) for r in rows]
    mask, und = one_currency(names, currency, where)
    rows = [r for r, m in zip(rows, mask, strict=True) if m]
    names = [str(r["symbol"]) for r in rows]
    parts = [n.split("-") for n in names]
    for nm, p in zip(names, parts, strict=True):
        if len(p) not in (4, 5) or p[3] not in ("C", "P"):
            raise fail(where, f"cannot parse Bybit option name {nm!r}")
    instruments = _instruments(inst, where)
    conv = convention(VENUE)
    n = len(rows)
    exp_ms = np.full(n, np.nan)
    quote_ccy = []
    for i, name in enumerate(names):
        ins = instruments.get(name)
        if ins is not None:
            exp_ms[i] = num([ins.get("deliveryTime")], where, "deliveryTime")[0]
        if not np.isfinite(exp_ms[i]):
            try:
                day = parse_day(parts[i][1])
            except Exception:
                raise fail(where, f"cannot read the expiry of Bybit option {name!r}") from None
            exp_ms[i] = ms_of(day + pd.Timedelta(hours=conv.expiry_hour_utc))
        settle_coin = (ins or {}).get("settleCoin")
        quote_ccy.append(
            str(settle_coin) if settle_coin else (parts[i][4] if len(parts[i]) == 5 else "USDC")
        )
    t_ms = tickers.get("time")
    if snapshot is None:
        if not isinstance(t_ms, (int, float)) or isinstance(t_ms, bool):
            raise fail(where, "Bybit tickers answer has no 'time': pass snapshot=...")
        snap = pd.Timestamp(int(t_ms), unit="ms", tz="UTC")
        how = "answer time"
    else:
        snap, how = to_utc_timestamp(snapshot, "snapshot"), "requested"
    index = num(column(rows, "indexPrice"), where, "indexPrice")
    qt = np.full(n, float(t_ms) if isinstance(t_ms, (int, float)) else np.nan)
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or conv.settlement,
        venue=VENUE,
        index_price=float(np.nanmedian(index)) if np.isfinite(index).any() else np.nan,
        instrument=np.array(names, dtype=object),
        expiry=ms_to_datetime64(exp_ms),
        strike=num([p[2] for p in parts], where, "symbol strike"),
        is_call=np.array([p[3] == "C" for p in parts]),
        bid=_empty_side(num(column(rows, "bid1Price"), where, "bid1Price")),
        ask=_empty_side(num(column(rows, "ask1Price"), where, "ask1Price")),
        mark=num(column(rows, "markPrice"), where, "markPrice"),
        bid_size=num(column(rows, "bid1Size"), where, "bid1Size"),
        ask_size=num(column(rows, "ask1Size"), where, "ask1Size"),
        open_interest=num(column(rows, "openInterest"), where, "openInterest"),
        volume=num(column(rows, "volume24h"), where, "volume24h"),
        quote_time=ms_to_datetime64(qt),
        underlying_price=num(column(rows, "underlyingPrice"), where, "underlyingPrice"),
        mark_iv=num(column(rows, "markIv"), where, "markIv") * conv.iv_scale,
        meta={
            "source": where,
            "format": FORMAT if kind == "doc" else "bybit-tickers",
            "venue": VENUE,
            "quote_currency": "/".join(sorted(set(quote_ccy))),
            "snapshot_choice": how,
            "forward_source": "underlyingPrice",
        },
    )


def to_bybit(chain: OptionChain) -> dict[str, Any]:
    """A Bybit document (``volcal.bybit-raw``) holding ``chain`` in Bybit's layout.

    Prices in USD(C) (undiscounted: forward-unit price x forward), the forward as
    ``underlyingPrice``, sizes in coin,
    ``deliveryTime`` and the answer ``time`` in ms.
    """
    ch = chain_rows_for_writer(chain)
    und = ch.underlying.upper()
    snap_ms = ms_of(ch.snapshot)
    bid, ask = usd_forward_prices(ch, "bid"), usd_forward_prices(ch, "ask")
    mark = usd_forward_prices(ch, "mark")
    tick, inst = [], []
    for i in range(len(ch)):
        e = pd.Timestamp(ch.expiry[i])
        name = f"{und}-{day_text(e)}-{strike_text(ch.strike[i])}-{'C' if ch.is_call[i] else 'P'}"
        tick.append(
            {
                "symbol": name,
                "bid1Price": fmt(bid[i]) or "0",
                "bid1Size": fmt(ch.bid_size[i]) or "0",
                "bid1Iv": "0",
                "ask1Price": fmt(ask[i]) or "0",
                "ask1Size": fmt(ch.ask_size[i]) or "0",
                "ask1Iv": "0",
                "lastPrice": "",
                "markPrice": fmt(mark[i]),
                "indexPrice": fmt(ch.index_price),
                "markIv": fmt(ch.mark_iv[i]),
                "underlyingPrice": fmt(ch.forward[i]),
                "openInterest": fmt(ch.open_interest[i]),
                "volume24h": fmt(ch.volume[i]),
            }
        )
        inst.append(
            {
                "symbol": name,
                "status": "Trading",
                "baseCoin": und,
                "quoteCoin": "USD",
                "settleCoin": "USDC",
                "optionsType": "Call" if ch.is_call[i] else "Put",
                "deliveryTime": str(ms_of(e)),
            }
        )
    return envelope(
        VENUE,
        und,
        {
            "tickers": {
                "retCode": 0,
                "retMsg": "SUCCESS",
                "result": {"category": "option", "list": tick},
                "retExtInfo": {},
                "time": snap_ms,
            },
            "instruments": {
                "retCode": 0,
                "retMsg": "success",
                "result": {"category": "option", "nextPageCursor": "", "list": inst},
                "retExtInfo": {},
                "time": snap_ms,
            },
        },
        converted_from=ch.venue,
    )


def _check(what: str) -> Callable[[Any, int, str], str | None]:
    def check(body: Any, status: int, reason: str) -> str | None:
        if not isinstance(body, dict) or "retCode" not in body:
            raise FetchError(f"bybit {what}: HTTP {status}, not a Bybit answer")
        if body["retCode"] == RATE_LIMIT_CODE:
            return "Bybit rate limit (10006)"
        if body["retCode"] != 0 or status >= 400:
            raise FetchError(f"bybit {what}: HTTP {status}, {body['retCode']} {body.get('retMsg')}")
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
    """Bybit's tickers and (every page of) instruments-info as one document."""
    from volcal.feeds._http import fetch_responses, make_client

    cur = currency.upper()
    own = client is None
    cl = make_client(timeout) if client is None else client
    kw: dict[str, Any] = dict(
        check=_check,
        client=cl,
        base_url=base_url,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        progress=progress,
        sleep=sleep,
    )
    try:
        pages: list[Any] = []
        cursor = ""
        for _ in range(_MAX_PAGES):
            params = {"category": "option", "baseCoin": cur, "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            page = fetch_responses(VENUE, {"p": ("/v5/market/instruments-info", params)}, **kw)["p"]
            pages.append(page)
            cursor = str((page.get("result") or {}).get("nextPageCursor") or "")
            if not cursor:
                break
        tick = fetch_responses(
            VENUE,
            {"t": ("/v5/market/tickers", {"category": "option", "baseCoin": cur})},
            **kw,
        )["t"]
    finally:
        if own:
            cl.close()
    return envelope(VENUE, cur, {"tickers": tick, "instruments": pages}, base_url=base_url)


def fetch_chain(
    currency: str = "BTC", *, save: str | Path | None = None, **kwargs: Any
) -> OptionChain:
    """Fetch the live Bybit chain of ``currency`` (arguments of :func:`fetch_raw`)."""
    doc = fetch_raw(currency, **kwargs)
    if save is not None:
        Path(save).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    where = Path(save).name if save is not None else f"bybit {currency.upper()} (live)"
    return read_bybit(doc, where, currency)


__all__ = ["BASE_URL", "FORMAT", "classify", "fetch_chain", "fetch_raw", "read_bybit", "to_bybit"]
