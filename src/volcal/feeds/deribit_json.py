"""Readers of Deribit JSON: raw REST responses, the fetcher's document, and the
normalised surface snapshot.

Raw REST (API v2, JSON-RPC envelopes ``{"jsonrpc": "2.0", "result": ...}``)
    ``public/get_book_summary_by_currency?kind=option`` is the chain: one record per
    option with ``bid_price``/``ask_price``/``mark_price`` in coin, ``mark_iv`` in %,
    ``underlying_price`` (the future, synthetic future or index the option is quoted
    against), ``creation_timestamp`` (ms). Reading such a file also looks at the other
    JSON files in the same folder and uses, when they match the currency and time:
    ``public/get_instruments?kind=option`` (exact expiry timestamps; otherwise the
    expiry is parsed from the name at 08:00 UTC), the futures book summary (to fill an
    option's missing underlying price from the future of its expiry; futures marks are
    kept in ``chain.meta["futures"]``) and a ticker or ``get_index_price`` answer (index).

Fetcher document (:data:`DOC_FORMAT`)
    ``{"format": "volcal.deribit-raw", "version": 1, "currency": ..., "fetched_at": ...,
    "responses": {"options": ..., "futures": ..., "instruments": ..., "index": ...}}``
    holding the untouched JSON-RPC answers; read exactly like the raw files.

Normalised snapshot
    ``{"snapshot_time", "instruments", "option_quotes", "forwards"}``: quotes
    (``best_bid``, ``best_ask``, ``mark_price`` in coin, ``deribit_mark_iv`` in %)
    joined to instruments by name; each expiry's quoted ``forward_price`` becomes
    ``underlying_price``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal.feeds._common import (
    build_chain,
    fail,
    ms_to_datetime64,
    numeric,
    parse_instrument,
)
from volcal.market.chain import OptionChain, Settlement, to_utc_timestamp

DOC_FORMAT = "volcal.deribit-raw"
DOC_VERSION = 1
#: Companion files further apart in time than this are not combined with the options.
MAX_COMPANION_GAP_MS = 3_600_000
_MAX_COMPANION_BYTES = 50_000_000


def _is_option_name(name: Any) -> bool:
    try:
        parse_instrument(str(name))
    except Exception:
        return False
    return True


def classify(doc: Any) -> str:
    """Kind of a Deribit JSON document.

    One of ``"volcal-doc"``, ``"surface-snapshot"``, ``"book-option"``, ``"book-future"``,
    ``"instruments-option"``, ``"instruments-future"``, ``"index"``, ``"ticker"``,
    ``"rpc-error"`` or ``"unknown"``.
    """
    if not isinstance(doc, dict):
        return "unknown"
    if doc.get("format") == DOC_FORMAT:
        return "volcal-doc"
    if "option_quotes" in doc and "instruments" in doc:
        return "surface-snapshot"
    if "error" in doc and "result" not in doc:
        return "rpc-error"
    res = doc.get("result")
    if isinstance(res, dict):
        if "instrument_name" in res and "index_price" in res:
            return "ticker"
        if "index_price" in res:
            return "index"
        return "unknown"
    if isinstance(res, list) and res and all(isinstance(r, dict) for r in res):
        first = res[0]
        if "kind" in first and "expiration_timestamp" in first:
            return f"instruments-{first['kind']}"
        if "instrument_name" in first and "mark_price" in first:
            return "book-option" if _is_option_name(first["instrument_name"]) else "book-future"
    return "unknown"


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(
            where, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _companions(path: Path, currency: str, t_ms: float) -> tuple[dict[str, Any], list[str]]:
    """JSON responses next to ``path`` that belong with its option book summary."""
    found: dict[str, Any] = {}
    used: list[str] = []
    for other in sorted(path.parent.glob("*.json")):
        if other == path or other.stat().st_size > _MAX_COMPANION_BYTES:
            continue
        try:
            doc = json.loads(other.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        kind = classify(doc)
        if kind not in ("instruments-option", "book-future", "ticker", "index") or kind in found:
            continue
        res = doc["result"]
        recs = res if isinstance(res, list) else [res]
        cur = {
            str(r.get("base_currency") or str(r.get("instrument_name", "")).split("-")[0]).upper()
            for r in recs
        }
        if kind in ("instruments-option", "book-future", "ticker") and cur != {currency}:
            continue
        if kind in ("book-future", "ticker"):
            ts = [r.get("creation_timestamp", r.get("timestamp")) for r in recs]
            ts_f = [float(x) for x in ts if isinstance(x, (int, float))]
            if not ts_f or abs(max(ts_f) - t_ms) > MAX_COMPANION_GAP_MS:
                continue
        found[kind] = doc
        used.append(other.name)
    return found, used


def chain_from_responses(
    where: str,
    options: Any,
    *,
    instruments: Any = None,
    futures: Any = None,
    index: Any = None,
    ticker: Any = None,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
    meta: dict[str, Any] | None = None,
) -> OptionChain:
    """Build a chain from Deribit JSON-RPC answers (see the module docstring).

    ``options`` is the ``get_book_summary_by_currency(kind=option)`` answer; the others
    are optional answers of ``get_instruments(kind=option)``,
    ``get_book_summary_by_currency(kind=future)``, ``get_index_price`` and ``ticker``.
    """
    if classify(options) == "rpc-error":
        err = options.get("error") or {}
        raise fail(where, f"Deribit error response {err.get('code')}: {err.get('message')}")
    res = options.get("result") if isinstance(options, dict) else None
    if not isinstance(res, list) or not all(isinstance(r, dict) for r in res):
        raise fail(where, "option book summary has no 'result' list of records")
    if not res:
        raise fail(where, "no option quotes (empty chain)")
    df = pd.DataFrame.from_records(res)
    for col in ("instrument_name", "mark_price", "creation_timestamp"):
        if col not in df.columns:
            raise fail(where, f"option book summary records lack {col!r}")
    for col in (
        "bid_price",
        "ask_price",
        "underlying_price",
        "mark_iv",
        "open_interest",
        "volume",
        "estimated_delivery_price",
    ):
        if col not in df.columns:
            df[col] = np.nan
    if df["instrument_name"].isna().any():
        i = int(np.flatnonzero(df["instrument_name"].isna().to_numpy())[0])
        raise fail(where, f"record {i + 1} has no instrument_name")
    names = df["instrument_name"].astype(str)
    try:
        parsed = [parse_instrument(n) for n in names]
    except Exception as exc:
        raise fail(where, str(exc)) from exc
    unds = pd.Series([p[0] for p in parsed])
    found = sorted(unds.unique())
    if currency is None:
        if len(found) > 1:
            raise fail(where, f"file holds {' and '.join(found)}: pass currency=...")
        cur = found[0]
    else:
        cur = str(currency).upper()
        if cur not in found:
            raise fail(where, f"no {cur} options in file (it holds {', '.join(found)})")
    keep = (unds == cur).to_numpy()
    df = df.loc[keep].reset_index(drop=True)
    parsed = [p for p, k in zip(parsed, keep, strict=True) if k]
    names = df["instrument_name"].astype(str)

    expiry = np.array(
        [p[1].tz_localize(None).to_datetime64() for p in parsed], dtype="datetime64[ns]"
    )
    strike = np.array([p[2] for p in parsed])
    is_call = np.array([p[3] for p in parsed])
    info: dict[str, Any] = dict(meta or {})
    n_exact = 0
    inst = instruments.get("result") if isinstance(instruments, dict) else None
    if isinstance(inst, list):
        by_name = {str(r.get("instrument_name")): r for r in inst if isinstance(r, dict)}
        for i, n in enumerate(names):
            r = by_name.get(n)
            if r is None:
                continue
            ts = r.get("expiration_timestamp")
            if isinstance(ts, (int, float)):
                expiry[i] = ms_to_datetime64([ts])[0]
                n_exact += 1
            if isinstance(r.get("strike"), (int, float)):
                strike[i] = float(r["strike"])
            if r.get("option_type") in ("call", "put"):
                is_call[i] = r["option_type"] == "call"
    info["expiry_from_instruments"] = n_exact
    info["expiry_from_names"] = len(names) - n_exact

    qt = ms_to_datetime64(numeric(df, "creation_timestamp", where))
    snap = (
        pd.Timestamp(np.max(qt)).tz_localize("UTC")
        if snapshot is None
        else to_utc_timestamp(snapshot, "snapshot")
    )
    under = numeric(df, "underlying_price", where)
    fut_res = futures.get("result") if isinstance(futures, dict) else None
    fut_marks: dict[str, dict[str, Any]] = {}
    if isinstance(fut_res, list):
        by_exp: dict[np.datetime64, float] = {}
        for r in fut_res:
            name = str(r.get("instrument_name", ""))
            parts = name.split("-")
            mark = r.get("mark_price")
            if len(parts) != 2 or not isinstance(mark, (int, float)) or parts[0] != cur:
                continue
            try:
                e = parse_instrument(f"{name}-1-C")[1]
            except Exception:
                continue
            by_exp[e.tz_localize(None).to_datetime64()] = float(mark)
            fut_marks[name] = {"expiry": e.isoformat(), "mark_price": float(mark)}
        fill = np.array([by_exp.get(e, np.nan) for e in expiry.astype("datetime64[ns]")])
        info["underlying_filled_from_futures"] = int(
            np.sum(~np.isfinite(under) & np.isfinite(fill))
        )
        under = np.where(np.isfinite(under), under, fill)
    info["futures"] = fut_marks

    index_price = np.nan
    for doc in (index, ticker):
        r = doc.get("result") if isinstance(doc, dict) else None
        if isinstance(r, dict) and isinstance(r.get("index_price"), (int, float)):
            index_price = float(r["index_price"])
            break
    if not np.isfinite(index_price):
        edp = numeric(df, "estimated_delivery_price", where)
        if np.isfinite(edp).any():
            index_price = float(np.nanmedian(edp))
    info["underlying_index"] = (
        sorted(df["underlying_index"].astype(str).unique()) if "underlying_index" in df else []
    )
    return build_chain(
        where,
        underlying=cur,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=index_price,
        instrument=names.to_numpy(dtype=object),
        expiry=expiry,
        strike=strike,
        is_call=is_call,
        bid=numeric(df, "bid_price", where),
        ask=numeric(df, "ask_price", where),
        mark=numeric(df, "mark_price", where),
        open_interest=numeric(df, "open_interest", where),
        volume=numeric(df, "volume", where),
        quote_time=qt,
        underlying_price=under,
        mark_iv=numeric(df, "mark_iv", where) / 100.0,
        meta=info,
    )


def _read_surface_snapshot(
    doc: dict[str, Any],
    where: str,
    currency: str | None,
    snapshot: Any,
    settlement: Settlement | None,
) -> OptionChain:
    quotes, insts = doc.get("option_quotes"), doc.get("instruments")
    if not isinstance(quotes, list) or not isinstance(insts, list):
        raise fail(where, "surface snapshot needs lists 'option_quotes' and 'instruments'")
    if not quotes:
        raise fail(where, "no option quotes (empty chain)")
    q = pd.DataFrame.from_records(quotes)
    ins = pd.DataFrame.from_records(insts)
    for frame, cols, what in (
        (q, ("instrument_name", "best_bid", "best_ask", "mark_price"), "option_quotes"),
        (ins, ("instrument_name", "expiry", "strike", "option_type", "currency"), "instruments"),
    ):
        miss = [c for c in cols if c not in frame.columns]
        if miss:
            raise fail(where, f"{what} records lack {', '.join(map(repr, miss))}")
    d = q.merge(ins, on="instrument_name", how="left", validate="many_to_one")
    if d["expiry"].isna().any():
        i = int(np.flatnonzero(d["expiry"].isna().to_numpy())[0])
        raise fail(where, f"quote {d['instrument_name'].iloc[i]!r} has no instrument definition")
    curs = sorted(d["currency"].astype(str).str.upper().unique())
    if currency is None and len(curs) > 1:
        raise fail(where, f"file holds {' and '.join(curs)}: pass currency=...")
    cur = str(currency).upper() if currency else curs[0]
    if cur not in curs:
        raise fail(where, f"no {cur} options in file (it holds {', '.join(curs)})")
    d = d.loc[d["currency"].astype(str).str.upper() == cur].reset_index(drop=True)
    exp = pd.to_datetime(d["expiry"], utc=True, format="mixed")
    fwd_by_exp: dict[pd.Timestamp, float] = {}
    idx_vals: list[float] = []
    for r in doc.get("forwards") or []:
        try:
            fwd_by_exp[pd.Timestamp(r["expiry"])] = float(r["forward_price"])
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(where, f"malformed forwards entry {r!r}") from exc
        if isinstance(r.get("index_price"), (int, float)):
            idx_vals.append(float(r["index_price"]))
    if isinstance(doc.get("index_price"), (int, float)):
        idx_vals.append(float(doc["index_price"]))
    under = np.array([fwd_by_exp.get(e, np.nan) for e in exp])
    if "snapshot_time" not in doc and snapshot is None:
        raise fail(where, "surface snapshot has no snapshot_time: pass snapshot=...")
    snap = to_utc_timestamp(snapshot if snapshot is not None else doc["snapshot_time"], "snapshot")
    iv = numeric(d, "deribit_mark_iv", where) / 100.0 if "deribit_mark_iv" in d else np.nan
    oi = numeric(d, "open_interest", where) if "open_interest" in d else np.nan
    return build_chain(
        where,
        underlying=cur,
        snapshot=snap,
        settlement=settlement or "inverse",
        venue="deribit",
        index_price=float(np.median(idx_vals)) if idx_vals else np.nan,
        instrument=d["instrument_name"].astype(str).to_numpy(dtype=object),
        expiry=exp.to_numpy(dtype=object),
        strike=numeric(d, "strike", where),
        is_call=d["option_type"].astype(str).str.upper().str[0].to_numpy() == "C",
        bid=numeric(d, "best_bid", where),
        ask=numeric(d, "best_ask", where),
        mark=numeric(d, "mark_price", where),
        open_interest=oi,
        underlying_price=under,
        mark_iv=iv,
        meta={
            "source": where,
            "format": "deribit-surface-snapshot",
            "quoted_forwards": {e.isoformat(): f for e, f in fwd_by_exp.items()},
        },
    )


def read_json_doc(
    doc: Any,
    where: str,
    path: Path | None,
    currency: str | None,
    snapshot: Any,
    settlement: Settlement | None,
) -> OptionChain:
    """A chain from a parsed Deribit JSON document (kind found by :func:`classify`)."""
    kind = classify(doc)
    if kind == "volcal-doc":
        if doc.get("version") != DOC_VERSION:
            raise fail(where, f"unsupported {DOC_FORMAT} version {doc.get('version')!r}")
        resp = doc.get("responses")
        if not isinstance(resp, dict) or "options" not in resp:
            raise fail(where, "fetcher document has no 'responses.options'")
        return chain_from_responses(
            where,
            resp["options"],
            instruments=resp.get("instruments"),
            futures=resp.get("futures"),
            index=resp.get("index"),
            currency=currency or doc.get("currency"),
            snapshot=snapshot,
            settlement=settlement,
            meta={"source": where, "format": DOC_FORMAT, "fetched_at": doc.get("fetched_at")},
        )
    if kind == "surface-snapshot":
        return _read_surface_snapshot(doc, where, currency, snapshot, settlement)
    if kind == "book-option":
        meta: dict[str, Any] = {"source": where, "format": "deribit-rest-json"}
        comp: dict[str, Any] = {}
        if path is not None:
            first = str(doc["result"][0].get("instrument_name", ""))
            cur = (currency or first.split("-")[0]).upper()
            ts = [r.get("creation_timestamp") for r in doc["result"] if isinstance(r, dict)]
            t_ms = max((float(x) for x in ts if isinstance(x, (int, float))), default=0.0)
            comp, used = _companions(path, cur, t_ms)
            meta["companion_files"] = used
        return chain_from_responses(
            where,
            doc,
            instruments=comp.get("instruments-option"),
            futures=comp.get("book-future"),
            index=comp.get("index"),
            ticker=comp.get("ticker"),
            currency=currency,
            snapshot=snapshot,
            settlement=settlement,
            meta=meta,
        )
    if kind == "rpc-error":
        err = doc.get("error") or {}
        raise fail(where, f"Deribit error response {err.get('code')}: {err.get('message')}")
    if kind in ("book-future", "instruments-option", "instruments-future", "index", "ticker"):
        raise fail(where, f"holds Deribit {kind} data, not option quotes")
    raise fail(where, "unknown chain format (JSON document of an unknown layout)")


def read_json_text(
    text: str, path: Path, currency: str | None, snapshot: Any, settlement: Settlement | None
) -> OptionChain:
    """Parse ``text`` (the content of ``path``) and read it with :func:`read_json_doc`."""
    doc = _load_json(text, path.name)
    return read_json_doc(doc, path.name, path, currency, snapshot, settlement)


__all__ = ["DOC_FORMAT", "DOC_VERSION", "chain_from_responses", "classify", "read_json_doc"]
