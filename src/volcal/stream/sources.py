"""Sources of the streaming engine: Deribit's public websocket, recorded logs, snapshot folders.

Every source is an object with ``messages()``, an async iterator of
``(receive_time, frame)`` pairs (clock seconds, the frame as text or a decoded dict),
an optional ``clock`` and ``metrics()``. The engine classifies and counts every frame.

* :class:`DeribitSource` - ``wss://www.deribit.com/ws/api/v2`` (JSON-RPC 2.0 over a
  websocket, ``websockets`` package). On connect: ``public/set_heartbeat``,
  ``public/get_instruments`` (options and futures of each currency), ``public/subscribe``
  to ``ticker.{instrument}.100ms`` of every option and future,
  ``markprice.options.{index}`` and ``deribit_price_index.{index}``, then
  ``public/get_book_summary_by_currency`` (the REST snapshot, asked over the same
  connection: Deribit serves every public method on both transports) to resynchronise
  the book. ``test_request`` heartbeats are answered with ``public/test``. The
  instrument list is refreshed every ``refresh_s``: new listings are subscribed,
  expired ones unsubscribed. A connection without any frame for ``dead_after_s``
  (default three heartbeat intervals) is treated as dropped. A dropped connection is
  retried with exponential
  backoff (``backoff_s`` doubling to ``backoff_max_s``, with jitter), resubscribed and
  resynchronised.
* :class:`ReplaySource` - a JSON-lines log written by :func:`record`
  (``{"recv": epoch_s, "raw": frame_text}`` per line) or a time-ordered folder of
  Deribit snapshot files (CSV, as in ``../shared/data``), played on a
  :class:`~volcal.stream.clock.ReplayClock` at a speed factor. A snapshot becomes one
  book-summary frame (the shape of ``get_book_summary_by_currency``) and one index
  frame at its own time; optionally ``ticks_between`` *interpolated, noisy* ticker
  frames are emitted between two consecutive snapshots (marked
  ``"volcal_synthetic": true`` in their data, counted in the state's
  ``synthetic_share``): the real snapshot values are exact at their own times.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from volcal.errors import DataError, ParameterError
from volcal.stream.clock import Clock, ReplayClock, SystemClock
from volcal.stream.messages import parse_instrument

__all__ = [
    "DERIBIT_URL",
    "DeribitSource",
    "ReplaySource",
    "record",
    "snapshot_frames",
]

DERIBIT_URL = "wss://www.deribit.com/ws/api/v2"
CURRENCIES = ("BTC", "ETH", "SOL", "XRP", "BNB", "PAXG", "USDC", "USDT")


class DeribitSource:
    """Deribit public websocket (module docs). Nothing is sent that needs a key."""

    def __init__(
        self,
        currencies: tuple[str, ...] | list[str] | str = ("BTC",),
        *,
        url: str = DERIBIT_URL,
        interval: str = "100ms",
        heartbeat_s: int = 10,
        refresh_s: float = 300.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_reconnects: int | None = None,
        dead_after_s: float | None = None,
        clock: Clock | None = None,
        seed: int = 0,
    ) -> None:
        cur = (currencies,) if isinstance(currencies, str) else tuple(currencies)
        cur = tuple(c.upper() for c in cur)
        bad = [c for c in cur if c not in CURRENCIES]
        if not cur or bad:
            raise ParameterError(
                f"unknown Deribit currency {bad[0] if bad else ''!r}: use one of {', '.join(CURRENCIES)}"
            )
        if interval not in ("100ms", "agg2", "raw"):
            raise ParameterError(f"ticker interval must be 100ms, agg2 or raw, got {interval!r}")
        if not (backoff_s > 0 and backoff_max_s >= backoff_s and heartbeat_s >= 10):
            raise ParameterError(
                "backoff_s must be > 0, backoff_max_s >= backoff_s, heartbeat_s >= 10 (Deribit)"
            )
        self.currencies = cur
        self.url = url
        self.interval = interval
        self.heartbeat_s = int(heartbeat_s)
        self.refresh_s = float(refresh_s)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_reconnects = max_reconnects
        # no frame at all (not even a heartbeat) for this long: the connection is dead
        self.dead_after_s = float(dead_after_s) if dead_after_s else 3.0 * self.heartbeat_s
        self.clock: Clock = clock or SystemClock()
        self._rng = random.Random(seed)
        self._id = 0
        self._closed = False
        self._ws: Any = None
        self.channels: set[str] = set()
        self.counters = {
            "connects": 0,
            "reconnects": 0,
            "resyncs": 0,
            "subscribed": 0,
            "unsubscribed": 0,
            "heartbeats_answered": 0,
            "frames": 0,
            "dead_connections": 0,
        }
        self.last_error = ""

    def metrics(self) -> dict[str, Any]:
        return {**self.counters, "channels": len(self.channels), "last_error": self.last_error}

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    async def _send(self, ws: Any, method: str, params: dict[str, Any]) -> int:
        rid = self._next_id()
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        return rid

    async def _call(self, ws: Any, method: str, params: dict[str, Any], out: list[Any]) -> Any:
        """Send a request and read frames until its answer; frames read meanwhile are
        appended to ``out`` (they are yielded to the engine afterwards)."""
        rid = await self._send(ws, method, params)
        while True:
            raw = await asyncio.wait_for(ws.recv(), timeout=30.0)
            out.append((self.clock.now(), raw))
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("id") == rid:
                if "error" in msg:
                    raise DataError(f"Deribit {method} failed: {msg['error']}")
                return msg.get("result")
            await self._heartbeat(ws, msg)

    async def _heartbeat(self, ws: Any, msg: Any) -> None:
        if (
            isinstance(msg, dict)
            and msg.get("method") == "heartbeat"
            and (msg.get("params") or {}).get("type") == "test_request"
        ):
            await self._send(ws, "public/test", {})
            self.counters["heartbeats_answered"] += 1

    async def _instruments(self, ws: Any, out: list[Any]) -> set[str]:
        chans: set[str] = set()
        for cur in self.currencies:
            for kind in ("option", "future"):
                res = await self._call(
                    ws,
                    "public/get_instruments",
                    {"currency": cur, "kind": kind, "expired": False},
                    out,
                )
                for it in res or []:
                    name = it.get("instrument_name") if isinstance(it, dict) else None
                    if isinstance(name, str) and parse_instrument(name) is not None:
                        chans.add(f"ticker.{name}.{self.interval}")
            idx = f"{cur.lower()}_usd"
            chans.add(f"markprice.options.{idx}")
            chans.add(f"deribit_price_index.{idx}")
        return chans

    async def _subscribe(self, ws: Any, chans: list[str], out: list[Any], on: bool = True) -> None:
        method = "public/subscribe" if on else "public/unsubscribe"
        for i in range(0, len(chans), 200):
            await self._call(ws, method, {"channels": chans[i : i + 200]}, out)
        self.counters["subscribed" if on else "unsubscribed"] += len(chans)

    async def messages(self) -> AsyncIterator[tuple[float, Any]]:
        import websockets

        attempt = 0
        while not self._closed:
            out: list[Any] = []
            try:
                async with websockets.connect(
                    self.url, max_size=2**24, ping_interval=20, open_timeout=15
                ) as ws:
                    self._ws = ws
                    self.counters["connects"] += 1
                    await self._call(
                        ws, "public/set_heartbeat", {"interval": self.heartbeat_s}, out
                    )
                    chans = await self._instruments(ws, out)
                    await self._subscribe(ws, sorted(chans), out)
                    self.channels = chans
                    for cur in self.currencies:
                        await self._call(
                            ws,
                            "public/get_book_summary_by_currency",
                            {"currency": cur, "kind": "option"},
                            out,
                        )
                    self.counters["resyncs"] += 1
                    attempt = 0
                    for item in out:
                        yield item
                    out = []
                    next_refresh = time.monotonic() + self.refresh_s
                    last_frame = time.monotonic()
                    while not self._closed:
                        now_m = time.monotonic()
                        if now_m - last_frame > self.dead_after_s:
                            self.counters["dead_connections"] += 1
                            raise ConnectionError(
                                f"no frame for {self.dead_after_s:g} s (heartbeats included)"
                            )
                        wait = max(min(next_refresh, last_frame + self.dead_after_s) - now_m, 0.0)
                        try:
                            # recv is cancellation-safe: a timeout loses no frame
                            raw = await asyncio.wait_for(ws.recv(), wait + 0.001)
                        except TimeoutError:
                            raw = None
                        if raw is not None:
                            last_frame = time.monotonic()
                            self.counters["frames"] += 1
                            recv = self.clock.now()
                            if isinstance(raw, str) and '"heartbeat"' in raw:
                                try:
                                    await self._heartbeat(ws, json.loads(raw))
                                except ValueError:
                                    pass
                            yield (recv, raw)
                        if time.monotonic() >= next_refresh:
                            next_refresh = time.monotonic() + self.refresh_s
                            new = await self._instruments(ws, out)
                            add = sorted(new - self.channels)
                            gone = sorted(self.channels - new)
                            if add:
                                await self._subscribe(ws, add, out)
                            if gone:
                                await self._subscribe(ws, gone, out, on=False)
                            self.channels = new
                            for item in out:
                                yield item
                            out = []
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                for item in out:  # frames read before the failure still count
                    yield item
            finally:
                self._ws = None
            if self._closed:
                return
            self.counters["reconnects"] += 1
            if (
                self.max_reconnects is not None
                and self.counters["reconnects"] > self.max_reconnects
            ):
                raise DataError(
                    f"Deribit feed lost after {self.max_reconnects} reconnects: {self.last_error}"
                )
            delay = min(self.backoff_max_s, self.backoff_s * 2.0**attempt)
            attempt += 1
            await asyncio.sleep(delay * (0.5 + 0.5 * self._rng.random()))

    async def close(self) -> None:
        self._closed = True
        ws = self._ws
        if ws is not None:
            await ws.close()


# --------------------------------------------------------------------------- snapshots
def _read_snapshot(path: Path, currency: str) -> tuple[float, list[dict[str, Any]], float]:
    """(time, book-summary items, index price) of one snapshot CSV (one currency)."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read snapshot {path.name}: {exc}") from exc
    need = {"timestamp", "instrument_name", "bid_price", "ask_price", "mark_price"}
    if not need <= set(df.columns):
        raise DataError(f"{path.name} is not a Deribit snapshot (needs {', '.join(sorted(need))})")
    if "currency" in df.columns:
        df = df[df["currency"].astype(str).str.upper() == currency]
    else:
        df = df[df["instrument_name"].astype(str).str.startswith(currency + "-")]
    if df.empty:
        raise DataError(f"{path.name} holds no {currency} options")
    ts = pd.to_datetime(df["timestamp"], utc=True, format="mixed")
    t = float(ts.max().timestamp())
    ms = round(t * 1000)
    und = df["futures_price"] if "futures_price" in df.columns else df.get("underlying_price")

    def col(name: str) -> np.ndarray:
        if name in df.columns:
            return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        return np.full(len(df), np.nan)

    iv = col("implied_volatility")
    iv = np.where(iv < 5.0, 100.0 * iv, iv)  # the files store mark iv as a decimal
    items = []
    und_a = (
        pd.to_numeric(und, errors="coerce").to_numpy(dtype=float) if und is not None else col("x")
    )
    names = df["instrument_name"].astype(str).to_numpy()
    bid, ask, mark, oi, vol = (
        col(c) for c in ("bid_price", "ask_price", "mark_price", "open_interest", "volume")
    )
    for j in range(len(df)):
        items.append(
            {
                "instrument_name": names[j],
                "creation_timestamp": ms,
                "bid_price": _js(bid[j]),
                "ask_price": _js(ask[j]),
                "mark_price": _js(mark[j]),
                "mark_iv": _js(iv[j]),
                "underlying_price": _js(und_a[j]),
                "open_interest": _js(oi[j]),
                "volume": _js(vol[j]),
            }
        )
    idx = col("index_price")
    index = float(np.nanmedian(idx)) if np.any(np.isfinite(idx)) else math.nan
    return t, items, index


def _js(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _snapshot_frames(
    t: float, items: list[dict[str, Any]], index: float, currency: str, rid: int
) -> list[tuple[float, dict[str, Any]]]:
    ms = round(t * 1000)
    out: list[tuple[float, dict[str, Any]]] = []
    if math.isfinite(index):
        out.append(
            (
                t,
                {
                    "jsonrpc": "2.0",
                    "method": "subscription",
                    "params": {
                        "channel": f"deribit_price_index.{currency.lower()}_usd",
                        "data": {
                            "index_name": f"{currency.lower()}_usd",
                            "price": index,
                            "timestamp": ms,
                        },
                    },
                },
            )
        )
    out.append(
        (t, {"jsonrpc": "2.0", "id": rid, "result": items, "usIn": ms * 1000, "usOut": ms * 1000})
    )
    return out


def ticker_frame(
    name: str,
    ms: int,
    bid: float | None,
    ask: float | None,
    mark: float | None,
    und: float | None,
    index: float | None,
    iv: float | None = None,
    synthetic: bool = False,
    interval: str = "100ms",
) -> dict[str, Any]:
    """A ``ticker.{instrument}.{interval}`` subscription frame (Deribit's shape)."""
    data: dict[str, Any] = {
        "timestamp": ms,
        "instrument_name": name,
        "state": "open",
        "best_bid_price": bid if bid is not None else 0.0,
        "best_ask_price": ask if ask is not None else 0.0,
        "best_bid_amount": 10.0 if bid else 0.0,
        "best_ask_amount": 10.0 if ask else 0.0,
        "mark_price": mark,
        "mark_iv": iv,
        "underlying_price": und,
        "underlying_index": "index_price",
        "index_price": index,
        "open_interest": 0.0,
        "stats": {"volume": 0.0, "price_change": None, "low": None, "high": None},
    }
    if synthetic:
        data["volcal_synthetic"] = True
    return {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": f"ticker.{name}.{interval}", "data": data},
    }


def snapshot_frames(
    paths: list[Path],
    currency: str,
    *,
    ticks_between: int = 0,
    noise: float = 0.25,
    seed: int = 0,
    time_scale: float = 1.0,
) -> Iterator[tuple[float, dict[str, Any]]]:
    """Frames of a time-ordered list of snapshot files (module docs), lazily.

    ``ticks_between`` interpolated ticker frames between each pair of consecutive
    snapshots: a random instrument present in both, its bid/ask/underlying linearly
    interpolated in time, the mid moved by Gaussian noise of ``noise`` half-spreads
    (bid < ask kept). ``time_scale`` < 1 compresses the gaps between snapshots
    (benchmarks: a day in minutes); the first snapshot keeps its own time.
    """
    rng = np.random.default_rng(seed)
    prev: tuple[float, dict[str, dict[str, Any]], float] | None = None
    t_first: float | None = None
    rid = 10_000
    for p in paths:
        t, items, index = _read_snapshot(p, currency)
        if t_first is None:
            t_first = t
        t_play = t_first + (t - t_first) * time_scale
        cur = {it["instrument_name"]: it for it in items}
        if prev is not None and ticks_between > 0:
            t0, old, i0 = prev
            names = [n for n in cur if n in old and parse_instrument(n) is not None]
            if names and t_play > t0:
                yield from _interpolated(
                    names, old, cur, t0, t_play, i0, index, ticks_between, noise, rng
                )
        for tt, frame in _snapshot_frames(t_play, list(cur.values()), index, currency, rid):
            if "result" in frame:
                ms = round(t_play * 1000)
                for it in frame["result"]:
                    it["creation_timestamp"] = ms
            yield tt, frame
        rid += 1
        prev = (t_play, cur, index)


def _interpolated(
    names: list[str],
    old: dict[str, dict[str, Any]],
    cur: dict[str, dict[str, Any]],
    t0: float,
    t1: float,
    i0: float,
    i1: float,
    n: int,
    noise: float,
    rng: np.random.Generator,
) -> Iterator[tuple[float, dict[str, Any]]]:
    """``n`` interpolated noisy ticker frames between two snapshots (vectorised)."""

    def arr(book: dict[str, dict[str, Any]], key: str) -> np.ndarray:
        return np.array([np.nan if book[m][key] is None else float(book[m][key]) for m in names])

    times = np.sort(rng.uniform(t0, t1, n))
    picks = rng.integers(0, len(names), n)
    z = rng.standard_normal(n)
    w = (times - t0) / (t1 - t0)

    def lerp(key: str) -> np.ndarray:
        a, b = arr(old, key)[picks], arr(cur, key)[picks]
        both = np.isfinite(a) & np.isfinite(b)
        return np.where(both, a + (b - a) * w, np.where(w >= 0.5, b, a))

    bid, ask, und, mark = (
        lerp("bid_price"),
        lerp("ask_price"),
        lerp("underlying_price"),
        lerp("mark_price"),
    )
    idx = i0 + (i1 - i0) * w
    two = np.isfinite(bid) & np.isfinite(ask) & (ask > bid)
    shift = np.where(two, noise * 0.5 * (ask - bid) * z, 0.0)
    bid = np.where(two, np.maximum(bid + shift, 1e-4), bid)
    ask = np.where(two, np.maximum(ask + shift, bid + 1e-4), ask)
    bid, ask = np.round(bid, 6), np.round(ask, 6)
    expiry = np.array([parse_instrument(m).expiry for m in names])[picks]  # type: ignore[union-attr]
    ms = (times * 1000).astype(np.int64)
    for j in np.flatnonzero(times < expiry):
        nm = names[picks[j]]
        yield (
            float(times[j]),
            ticker_frame(
                nm,
                int(ms[j]),
                _opt(bid[j]),
                _opt(ask[j]),
                _opt(mark[j]),
                _opt(und[j]),
                _opt(idx[j]),
                synthetic=True,
            ),
        )


def _opt(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class ReplaySource:
    """Replay a recorded log or a folder of snapshots at ``speed`` x (module docs).

    Parameters
    ----------
    paths : list of paths
        JSON-lines logs (``.jsonl``, ``.jsonl.gz``) and/or snapshot CSV files or
        folders of them (their files sorted by name = by time).
    currency : str
        Underlying of the snapshot files (logs carry their own instruments).
    speed : float
        Recorded seconds per wall second (``0``: as fast as possible).
    ticks_between, noise, seed, time_scale :
        Interpolated ticks between snapshots (:func:`snapshot_frames`); 0 = none.
    """

    def __init__(
        self,
        paths: Any,
        *,
        currency: str = "BTC",
        speed: float = 1.0,
        ticks_between: int = 0,
        noise: float = 0.25,
        seed: int = 0,
        time_scale: float = 1.0,
    ) -> None:
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed >= 0):
            raise ParameterError(f"speed must be a finite number >= 0, got {speed!r}")
        if ticks_between < 0 or not (time_scale > 0):
            raise ParameterError("ticks_between must be >= 0 and time_scale > 0")
        self.currency = currency.upper()
        self.speed = float(speed)
        self.ticks_between = int(ticks_between)
        self.noise = float(noise)
        self.seed = int(seed)
        self.time_scale = float(time_scale)
        self.logs: list[Path] = []
        self.snapshots: list[Path] = []
        for p in (Path(x) for x in paths):
            if p.is_dir():
                files = sorted(f for f in p.iterdir() if f.is_file() and _is_snapshot_name(f.name))
                if not files:
                    raise DataError(f"no snapshot files (deribit_options_snapshot_*.csv) in {p}")
                self.snapshots.extend(files)
            elif not p.exists():
                raise DataError(f"no such file: {p}")
            elif p.name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
                self.logs.append(p)
            elif p.suffix in (".csv", ".gz"):
                self.snapshots.append(p)
            else:
                raise DataError(
                    f"cannot replay {p.name}: expected a .jsonl log or snapshot CSV files"
                )
        if self.logs and self.snapshots:
            raise DataError("replay either logs or snapshot files, not both at once")
        if not self.logs and not self.snapshots:
            raise DataError("nothing to replay")
        self.snapshots.sort(key=lambda f: f.name)
        self.frames = 0
        self.skipped_lines = 0
        start = self._first_time()
        self.clock = ReplayClock(start, self.speed)
        self._closed = False

    def _first_time(self) -> float:
        if self.snapshots:
            t, _, _ = _read_snapshot(self.snapshots[0], self.currency)
            return t
        for line in _lines(self.logs[0]):
            try:
                return float(json.loads(line)["recv"])
            except (ValueError, KeyError, TypeError):
                continue
        raise DataError(f"{self.logs[0].name}: no line with a receive time")

    def metrics(self) -> dict[str, Any]:
        return {"frames": self.frames, "skipped_lines": self.skipped_lines, "speed": self.speed}

    def _frames(self) -> Iterator[tuple[float, Any]]:
        if self.snapshots:
            yield from snapshot_frames(
                self.snapshots,
                self.currency,
                ticks_between=self.ticks_between,
                noise=self.noise,
                seed=self.seed,
                time_scale=self.time_scale,
            )
            return
        for log in self.logs:
            for line in _lines(log):
                try:
                    row = json.loads(line)
                    recv = float(row["recv"])
                    raw = row["raw"]
                except (ValueError, KeyError, TypeError):
                    # an unreadable log line is still a received frame: the engine counts it
                    self.skipped_lines += 1
                    yield (math.nan, line)
                    continue
                yield recv, raw

    async def messages(self) -> AsyncIterator[tuple[float, Any]]:
        clock = self.clock
        batch = 0
        begun = False
        for recv, raw in self._frames():
            if self._closed:
                return
            if math.isfinite(recv):
                if not begun:
                    begun = True
                    clock.begin(recv)
                clock.due(recv)
                delay = clock.wall_delay(recv)
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                    batch = 0
                clock.mark(recv)
            else:
                recv = clock.now()
            self.frames += 1
            yield recv, raw
            batch += 1
            if batch >= 200:  # let the fitter run during a burst
                batch = 0
                await asyncio.sleep(0)
        clock.finish()

    def close(self) -> None:
        self._closed = True


def _is_snapshot_name(name: str) -> bool:
    return name.startswith("deribit_options_snapshot_") and name.endswith((".csv", ".csv.gz"))


def _lines(path: Path) -> Iterator[str]:
    import gzip

    opener: Any = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    yield line
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"cannot read log {path.name}: {exc}") from exc


async def record(
    source: Any,
    path: str | Path,
    *,
    duration: float | None = None,
    max_frames: int | None = None,
    on_frame: Any = None,
) -> int:
    """Write every frame of ``source`` to a JSON-lines log (``{"recv", "raw"}``) until
    ``duration`` seconds (wall) or ``max_frames``; returns the number of frames."""
    path = Path(path)
    if duration is not None and not duration > 0:
        raise ParameterError(f"duration must be > 0 seconds, got {duration}")
    end = None if duration is None else time.monotonic() + duration
    n = 0
    try:
        fh = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from exc
    it = source.messages().__aiter__()
    try:
        with fh:
            while True:
                timeout = None if end is None else end - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                try:
                    recv, raw = await asyncio.wait_for(it.__anext__(), timeout)
                except (TimeoutError, StopAsyncIteration):
                    break
                if not isinstance(raw, str):
                    raw = raw.decode() if isinstance(raw, bytes) else json.dumps(raw)
                fh.write(json.dumps({"recv": recv, "raw": raw}) + "\n")
                n += 1
                if on_frame is not None:
                    on_frame(n)
                if max_frames is not None and n >= max_frames:
                    break
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            res = close()
            if asyncio.iscoroutine(res):
                await res
        with_aclose = getattr(it, "aclose", None)
        if with_aclose is not None:
            try:
                await with_aclose()
            except (RuntimeError, asyncio.CancelledError):
                pass
    return n
