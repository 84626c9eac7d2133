"""OKX options: public REST v5 answers -> :class:`~volcal.market.OptionChain`, back, and
the live fetcher.

Endpoints (public, no authentication; field meanings from OKX's API v5 documentation)
------------------------------------------------------------------------------------
``GET /api/v5/market/tickers?instType=OPTION&uly=BTC-USD``
    ``{"code": "0", "msg": "", "data": [...]}``, one record per option: ``instId``
    (``BTC-USD-260327-100000-C``: underlying, quote currency, expiry ``YYMMDD``, strike,
    ``C``/``P``), ``bidPx``/``askPx`` (price in coin per unit of underlying; ``""`` when
    the side is empty), ``bidSz``/``askSz`` (contracts), ``last``, ``vol24h`` (contracts),
    ``ts`` (Unix ms of the ticker).
``GET /api/v5/public/opt-summary?uly=BTC-USD``
    Per option: ``fwdPx`` (forward price of the expiry), ``markVol``, ``bidVol``,
    ``askVol`` (decimals), greeks, ``ts``.
``GET /api/v5/public/instruments?instType=OPTION&uly=BTC-USD``
    Per option: ``expTime`` (Unix ms), ``stk``, ``optType``, ``ctVal`` x ``ctMult`` (coin per
    contract), ``settleCcy``.
``GET /api/v5/market/index-tickers?instId=BTC-USD``
    ``idxPx``: the index.

Conventions (:mod:`volcal.market.conventions`): ``BTC-USD`` options are inverse (coin-
settled, prices in coin); sizes are converted from contracts to coin with
``ctVal x ctMult`` (left NaN without the instruments answer); the forward is ``fwdPx``
(NaN without the summary: ``volcal.clean`` uses put-call parity then); expiries at the
instruments' ``expTime``, else 08:00 UTC of the named day.

A saved document (``volcal.okx-raw``, see :mod:`volcal.feeds._venue`) holds the four
answers under ``responses`` (``tickers``, ``opt_summary``, ``instruments``, ``index``); a
bare tickers answer is read too.
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
    coin_prices,
    column,
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
    yymmdd,
)
from volcal.market.chain import OptionChain, Settlement, to_utc_timestamp
from volcal.market.conventions import convention

if TYPE_CHECKING:  # pragma: no cover
    import httpx

VENUE = "okx"
FORMAT = doc_format(VENUE)
BASE_URL = "https://www.okx.com"
#: OKX error code for "too many requests".
RATE_LIMIT_CODE = "50011"


def classify(doc: Any) -> str | None:
    """``"doc"``, ``"tickers"``, ``"opt-summary"``, ``"instruments"``, ``"error"`` for an
    OKX document, ``None`` for anything else."""
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == FORMAT:
        return "doc"
    if "code" not in doc or "data" not in doc or "msg" not in doc:
        return None
    if str(doc["code"]) != "0":
        return "error"
    data = doc["data"]
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return "tickers" if isinstance(data, list) else None
    first = data[0]
    if "fwdPx" in first:
        return "opt-summary"
    if "ctVal" in first:
        return "instruments"
    if "instId" in first and first.get("instType", "OPTION") == "OPTION":
        return "tickers"
    return None


def _by_id(answer: Any, where: str, what: str) -> dict[str, dict[str, Any]]:
    if answer is None:
        return {}
    if classify(answer) == "error":
        raise fail(where, f"OKX error answer in {what}: {answer.get('code')} {answer.get('msg')}")
    rows = records(answer, ("data",), where, f"OKX {what}")
    return {str(r.get("instId")): r for r in rows}


def read_okx(
    doc: Any,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """An :class:`OptionChain` from an OKX document (see the module docs)."""
    kind = classify(doc)
    if kind == "doc":
        resp = doc.get("responses")
        if not isinstance(resp, dict) or "tickers" not in resp:
            raise fail(where, "OKX document has no 'responses.tickers'")
        tickers, summ, inst, index = (
            resp["tickers"],
            resp.get("opt_summary"),
            resp.get("instruments"),
            resp.get("index"),
        )
        currency = currency or doc.get("currency")
    elif kind == "tickers":
        tickers, summ, inst, index = doc, None, None, None
    elif kind == "error":
        raise fail(where, f"OKX error answer {doc.get('code')}: {doc.get('msg')}")
    elif kind in ("opt-summary", "instruments"):
        raise fail(where, f"holds OKX {kind} data, not option quotes")
    else:
        raise fail(where, "not an OKX options document")
    if classify(tickers) == "error":
        raise fail(where, f"OKX error answer {tickers.get('code')}: {tickers.get('msg')}")
    rows = records(tickers, ("data",), where, "OKX tickers")
    rows = [r for r in rows if r.get("instType", "OPTION") == "OPTION"]
    if not rows:
        raise fail(where, "no option quotes (empty chain)")
    require_keys(rows, ("instId", "bidPx", "askPx", "ts"), where, "OKX ticker")
    names = [str(r["instId"]) for r in rows]
    mask, und = one_currency(names, currency, where)
    rows = [r for r, m in zip(rows, mask, strict=True) if m]
    names = [str(r["instId"]) for r in rows]
    parts = [n.split("-") for n in names]
    bad = [n for n, p in zip(names, parts, strict=True) if len(p) != 5 or p[4] not in ("C", "P")]
    if bad:
        raise fail(where, f"cannot parse OKX option name {bad[0]!r}")
    summary = _by_id(summ, where, "opt-summary")
    instruments = _by_id(inst, where, "instruments")
    conv = convention(VENUE)
    n = len(rows)
    exp_ms = np.full(n, np.nan)
    ct = np.full(n, conv.contract_size)
    strike = num([p[3] for p in parts], where, "instId strike")
    for i, name in enumerate(names):
        ins = instruments.get(name)
        if ins is not None:
            exp_ms[i] = num([ins.get("expTime")], where, "expTime")[0]
            ct[i] = (
                num([ins.get("ctVal")], where, "ctVal")[0]
                * num([ins.get("ctMult", "1")], where, "ctMult")[0]
            )
        if not np.isfinite(exp_ms[i]):
            try:
                day = parse_day(parts[i][2])
            except Exception:
                raise fail(where, f"cannot read the expiry of OKX option {name!r}") from None
            exp_ms[i] = ms_of(day + pd.Timedelta(hours=conv.expiry_hour_utc))
    fwd = np.array([num([summary.get(nm, {}).get("fwdPx")], where, "fwdPx")[0] for nm in names])
    mark_vol = np.array(
        [num([summary.get(nm, {}).get("markVol")], where, "markVol")[0] for nm in names]
    )
    ts = num(column(rows, "ts"), where, "ts")
    if snapshot is None:
        if not np.isfinite(ts).any():
            raise fail(where, "no ticker timestamp ('ts'): pass snapshot=...")
        snap = pd.Timestamp(int(np.nanmax(ts)), unit="ms", tz="UTC")
        how = "latest ticker"
    else:
        snap, how = to_utc_timestamp(snapshot, "snapshot"), "requested"
    idx = np.nan
    if index is not None:
        irows = records(index, ("data",), where, "OKX index-tickers")
        if irows:
            idx = float(num([irows[0].get("idxPx")], where, "idxPx")[0])
    quote_ccy = {p[1] for p in parts}
    settle: Settlement = settlement or ("inverse" if quote_ccy == {"USD"} else "linear")
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settle,
        venue=VENUE,
        index_price=idx,
        instrument=np.array(names, dtype=object),
        expiry=ms_to_datetime64(exp_ms),
        strike=strike,
        is_call=np.array([p[4] == "C" for p in parts]),
        bid=num(column(rows, "bidPx"), where, "bidPx"),
        ask=num(column(rows, "askPx"), where, "askPx"),
        bid_size=num(column(rows, "bidSz"), where, "bidSz") * ct,
        ask_size=num(column(rows, "askSz"), where, "askSz") * ct,
        volume=num(column(rows, "vol24h"), where, "vol24h") * ct,
        quote_time=ms_to_datetime64(ts),
        underlying_price=fwd,
        mark_iv=mark_vol * conv.iv_scale,
        meta={
            "source": where,
            "format": FORMAT if kind == "doc" else "okx-tickers",
            "venue": VENUE,
            "quote_currency": "coin" if settle == "inverse" else "/".join(sorted(quote_ccy)),
            "snapshot_choice": how,
            "contract_size_known": bool(np.isfinite(ct).all()),
            "forward_source": "fwdPx" if summary else "none (put-call parity in clean)",
        },
    )


def to_okx(chain: OptionChain) -> dict[str, Any]:
    """An OKX document (``volcal.okx-raw``) holding ``chain`` in OKX's layout.

    Prices in coin (per unit of forward, so implied vols survive), the forward as ``fwdPx``, sizes as
    contracts of 0.01 coin, expiry ``expTime`` and the snapshot as ``ts`` (ms). Reading
    it back gives the same prices, forwards, expiries and so the same implied vols.
    """
    ch = chain_rows_for_writer(chain)
    ct = 0.01
    und = ch.underlying.upper()
    snap_ms = ms_of(ch.snapshot)
    bid, ask = coin_prices(ch, "bid"), coin_prices(ch, "ask")
    tick, summ, inst = [], [], []
    for i in range(len(ch)):
        e = pd.Timestamp(ch.expiry[i])
        name = f"{und}-USD-{yymmdd(e)}-{strike_text(ch.strike[i])}-{'C' if ch.is_call[i] else 'P'}"
        tick.append(
            {
                "instType": "OPTION",
                "instId": name,
                "last": "",
                "lastSz": "",
                "askPx": fmt(ask[i]),
                "askSz": fmt(ch.ask_size[i] / ct),
                "bidPx": fmt(bid[i]),
                "bidSz": fmt(ch.bid_size[i] / ct),
                "open24h": "",
                "high24h": "",
                "low24h": "",
                "volCcy24h": "",
                "vol24h": fmt(ch.volume[i] / ct),
                "ts": str(snap_ms),
                "sodUtc0": "",
                "sodUtc8": "",
            }
        )
        summ.append(
            {
                "instType": "OPTION",
                "instId": name,
                "uly": f"{und}-USD",
                "fwdPx": fmt(ch.forward[i]),
                "markVol": fmt(ch.mark_iv[i]),
                "bidVol": "",
                "askVol": "",
                "ts": str(snap_ms),
            }
        )
        inst.append(
            {
                "instType": "OPTION",
                "instId": name,
                "uly": f"{und}-USD",
                "instFamily": f"{und}-USD",
                "settleCcy": und,
                "ctVal": "0.01",
                "ctMult": "1",
                "ctValCcy": und,
                "optType": "C" if ch.is_call[i] else "P",
                "stk": strike_text(ch.strike[i]),
                "expTime": str(ms_of(e)),
                "state": "live",
            }
        )
    responses: dict[str, Any] = {
        "tickers": {"code": "0", "msg": "", "data": tick},
        "opt_summary": {"code": "0", "msg": "", "data": summ},
        "instruments": {"code": "0", "msg": "", "data": inst},
    }
    if np.isfinite(ch.index_price):
        responses["index"] = {
            "code": "0",
            "msg": "",
            "data": [{"instId": f"{und}-USD", "idxPx": fmt(ch.index_price), "ts": str(snap_ms)}],
        }
    return envelope(VENUE, und, responses, converted_from=ch.venue)


def _check(what: str) -> Callable[[Any, int, str], str | None]:
    def check(body: Any, status: int, reason: str) -> str | None:
        if not isinstance(body, dict) or "code" not in body:
            raise FetchError(f"okx {what}: HTTP {status}, not an OKX answer")
        if str(body["code"]) == RATE_LIMIT_CODE:
            return "OKX rate limit (50011)"
        if str(body["code"]) != "0" or status >= 400:
            raise FetchError(f"okx {what}: HTTP {status}, {body.get('code')} {body.get('msg')}")
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
    """The four OKX answers for ``currency`` as one ``volcal.okx-raw`` document."""
    from volcal.feeds._http import fetch_responses

    uly = f"{currency.upper()}-USD"
    calls = {
        "instruments": ("/api/v5/public/instruments", {"instType": "OPTION", "uly": uly}),
        "tickers": ("/api/v5/market/tickers", {"instType": "OPTION", "uly": uly}),
        "opt_summary": ("/api/v5/public/opt-summary", {"uly": uly}),
        "index": ("/api/v5/market/index-tickers", {"instId": uly}),
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
    return envelope(VENUE, currency, resp, base_url=base_url)


def fetch_chain(
    currency: str = "BTC",
    *,
    save: str | Path | None = None,
    **kwargs: Any,
) -> OptionChain:
    """Fetch the live OKX chain of ``currency`` (arguments of :func:`fetch_raw`); with
    ``save`` the raw document is written there (``volcal.read_chain`` reads it back)."""
    doc = fetch_raw(currency, **kwargs)
    if save is not None:
        Path(save).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    where = Path(save).name if save is not None else f"okx {currency.upper()} (live)"
    return read_okx(doc, where, currency)


__all__ = ["BASE_URL", "FORMAT", "classify", "fetch_chain", "fetch_raw", "read_okx", "to_okx"]
