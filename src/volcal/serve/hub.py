"""Websocket fan-out: one engine subscription per underlying, bounded queues per client.

The engine is subscribed to once per underlying (never once per client), so the number
of websocket clients does not change the engine's work. Each message is encoded to JSON
once and offered to every client's pending table, keyed by what it updates: ``snapshot``,
``status``, ``surface`` or ``expiry:<expiry>``. A newer message for the same key
*replaces* (conflates) the pending one, merging its fields, so a slow client's backlog
is bounded by the number of expiries plus three, whatever the update rate; what it
eventually receives is the latest state, never a stale in-between one. A client whose
socket does not take a message within ``ws_send_timeout_s`` is dropped (close 1013),
so a stuck client can neither grow memory nor slow the others. When a client has
several messages pending, they go out as one frame ``{"type": "batch", "messages":
[...]}`` (in order), which cuts the sends exactly when the server is behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from volcal.serve.metrics import ServerMetrics

__all__ = ["Client", "StreamHub", "state_dict"]


def state_dict(state: Any) -> dict[str, Any] | None:
    """A surface state as a dict (``to_dict()`` of a state object, or a dict as is)."""
    if state is None:
        return None
    if isinstance(state, dict):
        return state
    return dict(state.to_dict())


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, default=str, separators=(",", ":"))


def _is_full(item: Any) -> bool:
    return hasattr(item, "to_dict") or (isinstance(item, dict) and "expiries" in item)


def patch_key(patch: dict[str, Any]) -> str:
    """The conflation key of an engine patch: ``expiry:<expiry>`` for an expiry,
    ``surface:<model>`` for a surface-model refit, ``status`` for a staleness change."""
    kind = str(patch.get("type") or "")
    if kind == "status":
        return "status"
    if kind == "surface":
        return f"surface:{patch.get('model', '')}"
    exp = patch.get("expiry")
    if isinstance(exp, dict):
        exp = exp.get("expiry")
    return f"expiry:{exp}" if exp is not None else "surface"


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Fields of ``new`` over ``old``; nested dicts merged one level down."""
    out = dict(old)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


class Client:
    """One websocket client: its pending table and the task that drains it."""

    def __init__(self, send: Callable[[str], Any], limit: int, metrics: ServerMetrics) -> None:
        self._send = send
        self.limit = limit
        self.metrics = metrics
        self.pending: OrderedDict[str, tuple[dict[str, Any] | None, str | None, float | None]] = (
            OrderedDict()
        )
        self.wake = asyncio.Event()
        self.closed = False
        self.sent = 0
        self.conflated = 0
        self.max_pending = 0

    def offer(
        self, key: str, msg: dict[str, Any] | None, text: str | None, tick: float | None = None
    ) -> None:
        """Queue one message (``msg`` and/or its encoded ``text``; ``tick``: wall time
        of its newest tick, for the tick-to-send histogram)."""
        if self.closed:
            return
        if key == "snapshot":
            self.conflated += len(self.pending)
            self.metrics.ws_conflated += len(self.pending)
            self.pending.clear()
        if tick is None and msg is not None:
            t = msg.get("tick_wall_time")
            tick = float(t) if isinstance(t, int | float) else None
        old = self.pending.pop(key, None)
        if old is not None:  # the slow path (a lagging client): merged as dicts
            a = old[0] if old[0] is not None else json.loads(old[1] or "{}")
            b = msg if msg is not None else json.loads(text or "{}")
            msg, text = _merge(a, b), None
            self.conflated += 1
            self.metrics.ws_conflated += 1
        self.pending[key] = (msg, text, tick)
        if len(self.pending) > self.limit:  # only with > limit expiries: keep the newest
            self.pending.popitem(last=False)
            self.metrics.ws_conflated += 1
        self.max_pending = max(self.max_pending, len(self.pending))
        self.wake.set()

    async def drain(self, timeout_s: float) -> str:
        """Send pending messages until closed; returns why it stopped."""
        while not self.closed:
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            if len(self.pending) > 1:  # a backlog: one frame for all of it (fewer sends)
                batch = [self.pending.popitem(last=False)[1] for _ in range(len(self.pending))]
                texts = [t if t is not None else _dumps(m) for m, t, _ in batch]
                text = '{"type":"batch","messages":[' + ",".join(texts) + "]}"
                ticks = [k for _, _, k in batch]
            else:
                _, (msg, pre, tick) = self.pending.popitem(last=False)
                text = pre if pre is not None else _dumps(msg)
                ticks = [tick]
            try:
                # a deadline on the running task (asyncio.timeout), not wait_for, which
                # wraps every send (one per message and client) in a task of its own
                async with asyncio.timeout(timeout_s):
                    await self._send(text)
            except TimeoutError:
                return "send_timeout"
            except Exception:  # the peer went away while we were sending
                return "disconnected"
            self.sent += len(ticks)
            self.metrics.ws_messages += len(ticks)
            now = time.time()
            for tick in ticks:
                if tick is not None:
                    self.metrics.tick_to_send.observe(max(now - tick, 0.0))
        return "closed"

    def close(self) -> None:
        self.closed = True
        self.pending.clear()
        self.wake.set()


class StreamHub:
    """Fan-out of one underlying's engine updates to its websocket clients."""

    def __init__(
        self,
        engine: Any,
        underlying: str,
        *,
        queue_limit: int,
        status_interval_s: float,
        metrics: ServerMetrics,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.underlying = underlying
        self.queue_limit = queue_limit
        self.status_interval_s = status_interval_s
        self.metrics = metrics
        self.on_update = on_update
        self.clients: set[Client] = set()
        self.seq = 0
        self.updates = 0
        self._tasks: list[asyncio.Task[None]] = []
        # an engine in another process publishes encoded messages (volcal.serve.process)
        self.encoded = hasattr(engine, "subscribe_encoded")
        self._snap: tuple[int, str] | None = None
        # why the engine stopped, once it failed: every later status message says so
        self.failure: str | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        pump = self._pump_encoded() if self.encoded else self._pump()
        self._tasks = [
            asyncio.create_task(pump, name=f"hub-{self.underlying}"),
            asyncio.create_task(self._status(), name=f"hub-status-{self.underlying}"),
        ]

    async def stop(self) -> None:
        for c in list(self.clients):
            c.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    # ---------------------------------------------------------------- messages
    def current_state(self) -> dict[str, Any] | None:
        try:
            return state_dict(self.engine.state(self.underlying))
        except (KeyError, ValueError):  # not followed by the engine, or not started
            return None

    def _header(self, st: dict[str, Any] | None) -> dict[str, Any]:
        st = st or {}
        return {
            "underlying": self.underlying,
            "seq": self.seq,
            "snapshot_time": st.get("snapshot_time"),
            "stale": bool(st.get("stale", False)),
            "age_s": st.get("age_s"),
        }

    def _published(self) -> Any:
        return self.engine.published(self.underlying)

    def snapshot_text(self) -> str:
        """The snapshot message of the published state, encoded once per version."""
        pub = self._published()
        if pub is None:
            return _dumps({**self._header(None), "type": "snapshot", "state": None})
        if self._snap is None or self._snap[0] != pub.version:
            body = pub.body.decode() if pub.body is not None else "null"
            seq = int(pub.meta.get("seq") or 0)
            self._snap = (pub.version, pub.header(seq) + ',"type":"snapshot","state":' + body + "}")
        return self._snap[1]

    def status_text(self) -> str | None:
        pub = self._published()
        if pub is None:
            return None
        seq = int(pub.meta.get("seq") or 0)
        extra = "," + pub.status if pub.status else ""
        return pub.header(seq) + ',"type":"status"' + extra + "}"

    async def _pump_encoded(self) -> None:
        async for item in self.engine.subscribe_encoded(self.underlying):
            kind = item[0]
            self.updates += 1
            if self.on_update is not None:
                self.on_update()
            if kind == "msg":
                _, key, text, tick = item
                for c in self.clients:  # the same encoded text for every client
                    c.offer(key, None, text, tick)
            elif kind == "snapshot":
                self.seq = int(item[1].meta.get("seq") or 0)
                if self.clients:
                    text = self.snapshot_text()
                    for c in self.clients:
                        c.offer("snapshot", None, text)
            elif kind == "end":
                if item[1]:  # the engine failed: the clients are told why
                    self.failure = str(item[1])
                    self._broadcast("status", self._failure_message())
                return

    def _failure_message(self) -> dict[str, Any]:
        """The status once the engine failed: its last published snapshot time and
        age, stale, with the reason."""
        pub = self._published() if self.encoded else None
        last = dict(pub.meta) if pub is not None else {}
        return {**self._header({**last, "stale": True}), "type": "status", "error": self.failure}

    def snapshot_message(self) -> dict[str, Any]:
        st = self.current_state()
        return {**self._header(st), "type": "snapshot", "state": st}

    def _broadcast(self, key: str, msg: dict[str, Any]) -> None:
        text = _dumps(msg)
        for c in self.clients:
            c.offer(key, msg, text)

    async def _pump(self) -> None:
        first = True
        async for item in self.engine.subscribe(self.underlying):
            self.seq += 1
            self.updates += 1
            if self.on_update is not None:
                self.on_update()
            if first or _is_full(item):
                first = False
                if self.clients:
                    self._broadcast("snapshot", self.snapshot_message())
                continue
            patch = state_dict(item) or {}
            kind = str(patch.get("type") or "patch")
            if kind == "end":
                continue
            # light messages: a patch carries the engine's patch only; staleness, age,
            # guards and latency ride on the status message (once per interval)
            msg: dict[str, Any] = {
                "type": kind if kind in ("status", "surface") else "patch",
                "underlying": self.underlying,
                "seq": self.seq,
                "patch": patch,
            }
            if kind == "status":
                msg.update(stale=bool(patch.get("stale")), age_s=patch.get("age_s"))
            lat = patch.get("latency_ms")
            if isinstance(lat, int | float) and not isinstance(lat, bool):
                # wall time of the newest tick in this fit (engine: tick -> publish)
                msg["tick_wall_time"] = time.time() - float(lat) / 1000.0
            self._broadcast(patch_key(patch), msg)

    async def _status(self) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
            if not self.clients:
                continue
            if self.failure is not None:
                # not the last published status (fresh when it was built): a pending
                # failure message merged with it must stay stale and keep its reason
                self._broadcast("status", self._failure_message())
                continue
            if self.encoded:
                text = self.status_text()
                if text is not None:
                    for c in self.clients:
                        c.offer("status", None, text)
                continue
            st = self.current_state()
            msg = {**self._header(st), "type": "status"}
            if st is not None:
                for name in ("guards", "reasons", "latency"):
                    if name in st:
                        msg[name] = st[name]
            self._broadcast("status", msg)

    # ---------------------------------------------------------------- clients
    def add(self, send: Callable[[str], Any]) -> Client:
        client = Client(send, self.queue_limit, self.metrics)
        self.clients.add(client)  # registered before the snapshot is read: no gap
        if self.encoded:
            client.offer("snapshot", None, self.snapshot_text())
            return client
        msg = self.snapshot_message()
        client.offer("snapshot", msg, _dumps(msg))
        return client

    def remove(self, client: Client) -> None:
        client.close()
        self.clients.discard(client)
