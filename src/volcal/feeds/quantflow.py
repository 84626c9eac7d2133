"""quantflow's ``VolSurfaceInputs`` JSON (and the fixture its Deribit loader writes) ->
:class:`~volcal.market.OptionChain`, and back.

Layout (quantflow ``quantflow.options.inputs``)
-----------------------------------------------
``{"ref_date": "<ISO time>", "inputs": [...]}``; each input has a ``security_type``:

* ``"spot"``: ``bid``, ``ask`` (the index / spot price);
* ``"forward"``: ``bid``, ``ask``, ``maturity`` (the future of that expiry);
* ``"option"``: ``bid`` and ``ask``, each an ``OptionInput`` ``{"price", "strike",
  "maturity", "call"}`` (older files: ``"option_type": "call"|"put"``).

Numbers are decimal strings. quantflow's Deribit loader writes option prices in coin
(price / forward, "base currency price"), so the chain is inverse: coin prices, the
forward of each maturity the mid of its forward input (NaN if the maturity has none:
``volcal.clean`` uses put-call parity then), the index the mid of the spot input. A
zero price is an empty side. The file names no underlying: pass ``currency=`` (else the
optional ``asset`` field, else ``"UND"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from volcal.feeds._common import build_chain, fail
from volcal.feeds._venue import chain_rows_for_writer, coin_prices, fmt, num
from volcal.market.chain import OptionChain, Settlement, to_utc_datetime64, to_utc_timestamp

FORMAT = "quantflow-vol-surface-inputs"


def classify(doc: Any) -> bool:
    """Whether ``doc`` is a quantflow ``VolSurfaceInputs`` document."""
    return isinstance(doc, dict) and "ref_date" in doc and isinstance(doc.get("inputs"), list)


def _maturity(x: Any, where: str, i: int, cache: dict[Any, np.datetime64]) -> np.datetime64:
    if x is None:
        raise fail(where, f"input {i + 1} has no maturity")
    key = str(x)
    if key not in cache:
        cache[key] = to_utc_datetime64([x], "maturity")[0]
    return cache[key]


def read_quantflow(
    doc: Any,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """An :class:`OptionChain` from a quantflow ``VolSurfaceInputs`` document."""
    if not classify(doc):
        raise fail(where, "not a quantflow VolSurfaceInputs document (ref_date, inputs)")
    snap = to_utc_timestamp(snapshot if snapshot is not None else doc["ref_date"], "ref_date")
    fwd_of: dict[np.datetime64, float] = {}
    seen: dict[Any, np.datetime64] = {}
    spot = np.nan
    opts: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for i, inp in enumerate(doc["inputs"]):
        if not isinstance(inp, dict) or "security_type" not in inp:
            raise fail(where, f"input {i + 1} has no security_type")
        kind = inp["security_type"]
        if kind == "spot":
            b, a = num([inp.get("bid"), inp.get("ask")], where, "spot")
            spot = 0.5 * (b + a)
        elif kind == "forward":
            b, a = num([inp.get("bid"), inp.get("ask")], where, "forward")
            fwd_of[_maturity(inp.get("maturity"), where, i, seen)] = 0.5 * (b + a)
        elif kind == "option":
            bid, ask = inp.get("bid"), inp.get("ask")
            if not isinstance(bid, dict) or not isinstance(ask, dict):
                raise fail(where, f"option input {i + 1}: bid and ask must be OptionInput objects")
            opts.append((i, bid, ask))
        else:
            raise fail(where, f"input {i + 1}: unknown security_type {kind!r}")
    if not opts:
        raise fail(where, "no option quotes (empty chain)")
    n = len(opts)
    strike = np.empty(n)
    expiry = np.empty(n, dtype="datetime64[ns]")
    calls = np.empty(n, dtype=bool)
    for j, (i, b, a) in enumerate(opts):
        for side in (b, a):
            if "strike" not in side or "price" not in side:
                raise fail(where, f"option input {i + 1} lacks strike or price")
        kb, ka = num([b["strike"], a["strike"]], where, "strike")
        eb, ea = (
            _maturity(b.get("maturity"), where, i, seen),
            _maturity(a.get("maturity"), where, i, seen),
        )
        cb, ca = _is_call(b, where, i), _is_call(a, where, i)
        if kb != ka or eb != ea or cb != ca:
            raise fail(where, f"option input {i + 1}: bid and ask are different options")
        strike[j], expiry[j], calls[j] = kb, eb, cb
    bid = num([b["price"] for _, b, _ in opts], where, "price")
    ask = num([a["price"] for _, _, a in opts], where, "price")
    fwd = np.array([fwd_of.get(e, np.nan) for e in expiry])
    und = (currency or str(doc.get("asset") or "UND")).upper()
    return build_chain(
        where,
        underlying=und,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue=str(doc.get("venue") or "quantflow"),
        index_price=spot,
        expiry=expiry,
        strike=strike,
        is_call=calls,
        bid=np.where(bid == 0, np.nan, bid),
        ask=np.where(ask == 0, np.nan, ask),
        underlying_price=fwd,
        meta={
            "source": where,
            "format": FORMAT,
            "snapshot_choice": "requested" if snapshot is not None else "ref_date",
            "underlying_named": currency is not None or "asset" in doc,
        },
    )


def _is_call(side: dict[str, Any], where: str, i: int) -> bool:
    if "call" in side:
        v = side["call"]
        if not isinstance(v, bool):
            raise fail(where, f"option input {i + 1}: 'call' must be true or false")
        return v
    ot = str(side.get("option_type", "")).lower()
    if ot not in ("call", "put"):
        raise fail(where, f"option input {i + 1}: neither 'call' nor option_type call/put")
    return ot == "call"


def _iso(ts: Any) -> str:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.tz_localize(None).isoformat() + "Z"


def to_quantflow(chain: OptionChain) -> dict[str, Any]:
    """A ``VolSurfaceInputs`` document of ``chain``: coin prices, each expiry's forward
    as a forward input (bid = ask = the forward), the index as the spot input."""
    ch = chain_rows_for_writer(chain)
    bid, ask = coin_prices(ch, "bid"), coin_prices(ch, "ask")
    inputs: list[dict[str, Any]] = []
    if np.isfinite(ch.index_price):
        s = fmt(ch.index_price)
        inputs.append({"bid": s, "ask": s, "security_type": "spot"})
    for e in ch.expiries:
        rows = np.flatnonzero(ch.expiry == e)
        f = fmt(float(np.median(ch.forward[rows])))
        mat = _iso(e)
        inputs.append({"bid": f, "ask": f, "maturity": mat, "security_type": "forward"})
        for r in rows:
            sides = [
                {
                    "price": fmt(p) or "0",
                    "strike": fmt(ch.strike[r]),
                    "maturity": mat,
                    "call": bool(ch.is_call[r]),
                }
                for p in (bid[r], ask[r])
            ]
            inputs.append({"bid": sides[0], "ask": sides[1], "security_type": "option"})
    return {"ref_date": _iso(ch.snapshot), "asset": ch.underlying, "inputs": inputs}


__all__ = ["FORMAT", "classify", "read_quantflow", "to_quantflow"]
