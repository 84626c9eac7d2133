"""A local fake of Deribit's public websocket API for the streaming tests.

A ``websockets`` server on 127.0.0.1 (ephemeral port) speaking JSON-RPC 2.0 with the
message shapes of Deribit's API documentation (https://docs.deribit.com):
``public/set_heartbeat``, ``public/test``, ``public/get_instruments``,
``public/get_book_summary_by_currency``, ``public/subscribe`` / ``public/unsubscribe``
and ``subscription`` notifications on ``ticker.{instrument}.100ms``,
``markprice.options.{index}`` and ``deribit_price_index.{index}``.

The book is loaded from a real snapshot file (``../shared/data``): the values the fake
serves at the snapshot's time are the file's own bid/ask/mark/underlying, exactly.
Ticks the tests push afterwards are test inputs (said so in each test).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Quote:
    name: str
    kind: str
    expiry_ms: int
    strike: float | None
    option_type: str | None
    bid: float | None
    ask: float | None
    mark: float | None
    underlying: float | None
    iv: float | None
    ts_ms: int


def load_snapshot(
    path: Path, currency: str = "BTC", expiries: int | None = None
) -> tuple[int, dict[str, Quote], float]:
    """(snapshot time in ms, quotes by instrument, index price) of a snapshot CSV."""
    df = pd.read_csv(path)
    df = df[df["currency"] == currency]
    ts = pd.to_datetime(df["timestamp"], utc=True, format="mixed").max()
    ms = round(ts.timestamp() * 1000)
    exp = pd.to_datetime(df["expiry_datetime"], utc=True, format="mixed")
    if expiries is not None:
        keep = sorted(exp.unique())[:expiries]
        df = df[exp.isin(keep)]
        exp = exp[exp.isin(keep)]

    def val(x: Any) -> float | None:
        x = float(x)
        return x if math.isfinite(x) and x > 0 else None

    quotes = {}
    for (_, r), e in zip(df.iterrows(), exp, strict=True):
        name = str(r["instrument_name"])
        quotes[name] = Quote(
            name=name,
            kind="option",
            expiry_ms=int(e.timestamp() * 1000),
            strike=float(r["strike"]),
            option_type=str(r["option_type"]),
            bid=val(r["bid_price"]),
            ask=val(r["ask_price"]),
            mark=val(r["mark_price"]),
            underlying=val(r["futures_price"]),
            iv=100.0 * float(r["implied_volatility"]),
            ts_ms=ms,
        )
    return ms, quotes, float(df["index_price"].median())


@dataclass
class FakeDeribit:
    """The fake server (start with ``await fake.start()``, stop with ``await fake.stop()``)."""

    quotes: dict[str, Quote]
    index: float
    currency: str = "BTC"
    requests: list[dict[str, Any]] = field(default_factory=list)
    conns: set[Any] = field(default_factory=set)
    subs: dict[Any, set[str]] = field(default_factory=dict)
    sent_ticks: int = 0
    heartbeat_answers: int = 0
    connections_total: int = 0

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handler, "127.0.0.1", 0)
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/ws/api/v2"

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    # ------------------------------------------------------------------ protocol
    async def _handler(self, ws: Any) -> None:
        self.conns.add(ws)
        self.subs[ws] = set()
        self.connections_total += 1
        try:
            async for raw in ws:
                msg = json.loads(raw)
                self.requests.append(msg)
                await self._answer(ws, msg)
        except Exception:
            pass
        finally:
            self.conns.discard(ws)
            self.subs.pop(ws, None)

    def _instrument(self, q: Quote) -> dict[str, Any]:
        return {
            "instrument_name": q.name,
            "kind": q.kind,
            "expiration_timestamp": q.expiry_ms,
            "strike": q.strike,
            "option_type": q.option_type,
            "is_active": True,
            "settlement_currency": self.currency,
            "base_currency": self.currency,
            "quote_currency": self.currency,
        }

    def summary(self, q: Quote) -> dict[str, Any]:
        return {
            "instrument_name": q.name,
            "bid_price": q.bid,
            "ask_price": q.ask,
            "mark_price": q.mark,
            "mark_iv": q.iv,
            "underlying_price": q.underlying,
            "underlying_index": "index_price",
            "creation_timestamp": q.ts_ms,
            "open_interest": 1.0,
            "volume": 0.0,
            "base_currency": self.currency,
            "quote_currency": self.currency,
        }

    async def _answer(self, ws: Any, msg: dict[str, Any]) -> None:
        method, params, rid = msg.get("method"), msg.get("params") or {}, msg.get("id")
        result: Any
        if method == "public/set_heartbeat":
            result = "ok"
        elif method == "public/test":
            self.heartbeat_answers += 1
            result = {"version": "1.2.26"}
        elif method == "public/get_instruments":
            kind = params.get("kind")
            result = [self._instrument(q) for q in self.quotes.values() if q.kind == kind]
        elif method == "public/get_book_summary_by_currency":
            result = [self.summary(q) for q in self.quotes.values() if q.kind == "option"]
        elif method in ("public/subscribe", "public/unsubscribe"):
            chans = list(params.get("channels") or [])
            if method == "public/subscribe":
                self.subs[ws].update(chans)
            else:
                self.subs[ws].difference_update(chans)
            result = chans
        else:
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": rid,
                        "error": {"code": -32601, "message": "Method not found"},
                    }
                )
            )
            return
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": rid, "result": result, "usIn": 0, "usOut": 0})
        )

    # ------------------------------------------------------------------ test controls
    def subscribed(self) -> set[str]:
        out: set[str] = set()
        for s in self.subs.values():
            out |= s
        return out

    async def push(
        self,
        name: str,
        *,
        bid: float | None,
        ask: float | None,
        ts_ms: int,
        mark: float | None = None,
        index: float | None = None,
    ) -> int:
        """Move one instrument's quote and notify its subscribers; returns how many
        connections received it."""
        q = self.quotes[name]
        q.bid, q.ask, q.ts_ms = bid, ask, ts_ms
        if mark is not None:
            q.mark = mark
        chan = f"ticker.{name}.100ms"
        frame = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {
                    "channel": chan,
                    "data": {
                        "timestamp": ts_ms,
                        "instrument_name": name,
                        "state": "open",
                        "best_bid_price": bid or 0.0,
                        "best_ask_price": ask or 0.0,
                        "best_bid_amount": 5.0 if bid else 0.0,
                        "best_ask_amount": 5.0 if ask else 0.0,
                        "mark_price": q.mark,
                        "mark_iv": q.iv,
                        "underlying_price": q.underlying,
                        "underlying_index": "index_price",
                        "index_price": index if index is not None else self.index,
                        "open_interest": 1.0,
                        "stats": {"volume": 0.0, "price_change": None, "low": None, "high": None},
                    },
                },
            }
        )
        n = 0
        for ws, chans in list(self.subs.items()):
            if chan in chans:
                try:
                    await ws.send(frame)
                    n += 1
                except Exception:
                    pass
        self.sent_ticks += n
        return n

    async def push_index(self, price: float, ts_ms: int) -> None:
        idx = f"{self.currency.lower()}_usd"
        self.index = price
        await self.broadcast(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "subscription",
                    "params": {
                        "channel": f"deribit_price_index.{idx}",
                        "data": {"index_name": idx, "price": price, "timestamp": ts_ms},
                    },
                }
            )
        )

    async def broadcast(self, raw: str) -> None:
        for ws in list(self.conns):
            try:
                await ws.send(raw)
            except Exception:
                pass

    async def test_request(self) -> None:
        await self.broadcast(
            json.dumps(
                {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
            )
        )

    async def drop_connections(self) -> None:
        """Close every client connection abruptly (a network failure)."""
        for ws in list(self.conns):
            ws.transport.abort() if hasattr(ws, "transport") else await ws.close()
        self.conns.clear()
        self.subs.clear()
