"""The streaming engine in its own process, published to the server as encoded bytes.

``volcal serve`` runs the engine in a child process (``multiprocessing`` spawn context):
the app's event loop then never waits for the GIL behind a refit, and request handling
never slows the engine. :mod:`volcal.serve.ipc` defines the messages between the two.

Engine process (:func:`engine_main`)
    Builds the engine from an :class:`~volcal.serve.ipc.EngineSpec`, starts it in its
    own event loop, subscribes to every underlying once and turns each update into its
    websocket message, JSON-encoded once; it re-encodes the full state (the
    ``/v1/surface`` body) after a status change or a full state at once, after a patch
    at most every ``min_rebuild_s`` and at least every ``max_age_s`` (so ``age_s``
    moves). The messages go to the pipe through a bounded outbox and a non-blocking
    pipe transport of the engine's own loop (bounds in :mod:`volcal.serve.ipc`): the
    loop never blocks on the pipe and no second thread competes for its GIL.

Server process (:class:`EngineProcess`)
    Offers the app the engine's interface without computing anything: ``state(u)``
    (the latest state, decoded once per version, for ``/v1/iv``, ``/v1/params``,
    ``/v1/quality``), ``surface_bytes(u)`` (the ``/v1/surface`` body as published),
    ``published(u)``, ``subscribe_encoded(u)`` (the hub's feed of pre-encoded
    messages), ``metrics()`` and the optional methods as calls answered by the engine
    process. When the engine process dies, ``failure`` gives the reason, pending calls
    fail at once with :class:`~volcal.serve.ipc.EngineUnavailable` and ``health()``
    says so; the app keeps answering (503 JSON) and never waits for it.

Stopping: ``stop()`` asks the engine to stop (it drains its calibration writer), joins
the process and terminates it when it does not exit in time. The engine process also
stops by itself when its server goes away (end of file on its request pipe), so it
never outlives the server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import json
import os
import pickle
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from volcal.serve.ipc import (
    CALLS,
    EngineSpec,
    EngineUnavailable,
    Published,
    dumps,
    status_fragment,
)

__all__ = ["EngineProcess", "engine_main"]

#: engine methods reported as available in the ready message
OPTIONAL = ("flagged", "quotes", "recalibrate", "reload", "chain")


def _state_dict(state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    if isinstance(state, dict):
        return state
    return dict(state.to_dict())


def _patch_key(patch: dict[str, Any]) -> str:
    from volcal.serve.hub import patch_key

    return patch_key(patch)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:400]


# =========================================================================== engine side
def frame(msg: tuple[Any, ...]) -> bytes:
    """One message on the events pipe: 4-byte big-endian length, then its pickle."""
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


class _Outbox:
    """The engine process's end of the events pipe: a bounded outbox in front of a
    non-blocking pipe transport, written from the engine's own loop (no thread: the
    loop never waits for the pipe, and no second thread competes for its GIL)."""

    def __init__(self, conn: Any, limit: int) -> None:
        self.conn = conn
        self.limit = max(int(limit), 1)
        self.items: collections.deque[tuple[Any, ...]] = collections.deque()
        self.n_patches = 0
        self.sent = 0
        self.dropped = 0
        self.state_conflated = 0
        self.max_pending = 0
        self.resync: set[str] = set()
        self.broken = False
        self.paused = False
        self.transport: Any = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(os.dup(self.conn.fileno()), "wb", buffering=0)
        self.transport, _ = await loop.connect_write_pipe(lambda: _WriteSide(self), pipe)
        self.transport.set_write_buffer_limits(high=1 << 20)
        self.conn.close()
        self.pump()

    def patch(self, u: str, msg: tuple[Any, ...]) -> bool:
        if self.n_patches >= self.limit:  # the server is behind: drop, resync later
            self.dropped += 1
            self.resync.add(u)
            return False
        self.items.append(msg)
        self.n_patches += 1
        self.max_pending = max(self.max_pending, len(self.items))
        self.pump()
        return True

    def state(self, u: str, msg: tuple[Any, ...]) -> None:
        for i, it in enumerate(self.items):
            if it[0] == "state" and it[1] == u:  # still queued: replaced by the newer
                msg = (*msg[:6], bool(it[6]) or bool(msg[6]))
                del self.items[i]
                self.state_conflated += 1
                break
        self.items.append(msg)
        self.max_pending = max(self.max_pending, len(self.items))
        self.pump()

    def control(self, msg: tuple[Any, ...]) -> None:
        self.items.append(msg)
        self.pump()

    def pump(self) -> None:
        tr = self.transport
        if tr is None or self.broken:
            return
        while self.items and not self.paused:
            if tr.is_closing():
                self.broken = True
                return
            msg = self.items.popleft()
            if msg[0] == "patch":
                self.n_patches -= 1
            tr.write(frame(msg))
            self.sent += 1

    def take_resync(self) -> set[str]:
        out, self.resync = self.resync, set()
        return out

    def counters(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "state_conflated": self.state_conflated,
            "pending": len(self.items),
            "max_pending": self.max_pending,
            "queue_limit": self.limit,
            "pipe_bytes_buffered": (
                self.transport.get_write_buffer_size() if self.transport is not None else 0
            ),
            "pipe_broken": self.broken,
        }

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Write out everything queued (at stop), then close the pipe."""
        tr = self.transport
        if tr is None:
            return
        end = time.monotonic() + timeout_s
        self.paused = False
        while time.monotonic() < end and not self.broken:
            self.pump()
            if not self.items and tr.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        tr.close()


class _WriteSide(asyncio.Protocol):
    def __init__(self, box: _Outbox) -> None:
        self.box = box

    def pause_writing(self) -> None:
        self.box.paused = True

    def resume_writing(self) -> None:
        self.box.paused = False
        self.box.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.box.broken = True


class _EngineSide:
    """What runs in the engine process's event loop."""

    def __init__(self, spec: EngineSpec, events: Any, requests: Any, opts: dict[str, Any]):
        self.spec = spec
        self.requests = requests
        self.opts = opts
        self.underlyings: tuple[str, ...] = tuple(opts["underlyings"])
        self.min_rebuild_s = float(opts.get("min_rebuild_s", 0.05))
        self.max_age_s = float(opts.get("max_age_s", 0.25))
        self.sender = _Outbox(events, int(opts.get("queue_size", 256)))
        self.engine: Any = None
        self.version = dict.fromkeys(self.underlyings, 0)
        self.seq = dict.fromkeys(self.underlyings, 0)
        self.built = dict.fromkeys(self.underlyings, -1e18)
        self.dirty = dict.fromkeys(self.underlyings, False)
        self.calls: set[asyncio.Task[None]] = set()
        self.stop_ev: asyncio.Event | None = None

    # ---------------------------------------------------------------- publishing
    def publish_state(self, u: str, snapshot: bool) -> None:
        try:
            d = _state_dict(self.engine.state(u))
        except (KeyError, ValueError):  # not started / not followed yet
            d = None
        self.version[u] += 1
        body = None
        meta: dict[str, Any] = {"seq": self.seq[u], "n_expiries": 0}
        if d is not None:
            body = dumps({"underlying": u, **d}).encode()
            meta.update(
                snapshot_time=d.get("snapshot_time"),
                stale=bool(d.get("stale", False)),
                age_s=d.get("age_s"),
                reasons=list(d.get("reasons") or ()),
                n_expiries=len(d.get("expiries") or ()),
            )
        msg = ("state", u, self.version[u], meta, body, status_fragment(d), bool(snapshot))
        self.sender.state(u, msg)
        self.built[u] = time.monotonic()
        self.dirty[u] = False

    async def forward(self, u: str) -> None:
        first = True
        async for item in self.engine.subscribe(u):
            d = item if isinstance(item, dict) else _state_dict(item) or {}
            kind = str(d.get("type") or "patch")
            self.seq[u] += 1
            if first or kind == "state" or "expiries" in d:
                first = False
                self.publish_state(u, snapshot=True)
                continue
            if kind == "end":
                self.publish_state(u, snapshot=False)
                self.sender.control(("end", u))
                continue
            msg: dict[str, Any] = {
                "type": kind if kind in ("status", "surface") else "patch",
                "underlying": u,
                "seq": self.seq[u],
                "patch": d,
            }
            if kind == "status":
                msg.update(stale=bool(d.get("stale")), age_s=d.get("age_s"))
            tick = None
            lat = d.get("latency_ms")
            if isinstance(lat, int | float) and not isinstance(lat, bool):
                # wall time of the newest tick in this fit (engine: tick -> publish)
                tick = time.time() - float(lat) / 1000.0
                msg["tick_wall_time"] = tick
            self.sender.patch(u, ("patch", u, _patch_key(d), dumps(msg), tick))
            if kind == "status" or time.monotonic() - self.built[u] >= self.min_rebuild_s:
                self.publish_state(u, snapshot=False)
            else:
                self.dirty[u] = True

    async def refresh(self) -> None:
        while True:
            await asyncio.sleep(self.min_rebuild_s)
            resync = self.sender.take_resync()
            now = time.monotonic()
            for u in self.underlyings:
                if u in resync:
                    self.publish_state(u, snapshot=True)
                elif self.dirty[u] or now - self.built[u] >= self.max_age_s:
                    self.publish_state(u, snapshot=False)

    # ---------------------------------------------------------------- requests
    def on_request(self) -> None:
        assert self.stop_ev is not None
        try:
            while self.requests.poll():
                msg = self.requests.recv()
                if msg[0] == "stop":
                    self.stop_ev.set()
                elif msg[0] == "call":
                    task = asyncio.get_running_loop().create_task(self.call(*msg[1:4]))
                    self.calls.add(task)
                    task.add_done_callback(self.calls.discard)
        except (EOFError, OSError):  # the server process is gone: stop, never orphaned
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.requests.fileno())
            self.stop_ev.set()

    async def call(self, rid: int, name: str, args: tuple[Any, ...]) -> None:
        try:
            if name not in CALLS:
                raise AttributeError(f"no such engine call {name!r}")
            value: Any
            if name == "metrics":
                value = dict(await _aw(self.engine.metrics()))
                value["ipc"] = self.sender.counters()
            elif name == "quotes" and not hasattr(self.engine, "quotes"):
                value = await self._quotes(*args)
            else:
                fn = getattr(self.engine, name, None)
                if fn is None:
                    self.sender.control(("reply", rid, False, ("NotImplemented", name)))
                    return
                value = await _aw(fn(*args))
            json.dumps(value, default=str)  # JSON-safe, or the error below
            self.sender.control(("reply", rid, True, value))
        except Exception as exc:
            self.sender.control(("reply", rid, False, (type(exc).__name__, str(exc))))

    async def _quotes(self, u: str, expiry: str) -> list[dict[str, Any]]:
        from datetime import datetime

        from volcal.serve.quotes import chain_quotes

        chain_fn = getattr(self.engine, "chain", None)
        if chain_fn is None:
            return []
        try:
            when = datetime.fromisoformat(str(expiry))
        except ValueError:
            return []
        return chain_quotes(await _aw(chain_fn(u, [when.timestamp()])))

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        await self.sender.open()
        try:
            await self._serve()
        except BaseException as exc:  # told to the server before the process exits
            self.sender.control(("fatal", _one_line(exc)))
            raise
        finally:
            await self.sender.drain()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.stop_ev = asyncio.Event()
        engine = self.engine
        loop.add_reader(self.requests.fileno(), self.on_request)
        run_task = None
        if hasattr(engine, "start"):
            await _aw(engine.start())
        else:
            run_task = asyncio.create_task(engine.run(), name="volcal-engine-run")
        methods = [m for m in OPTIONAL if callable(getattr(engine, m, None))]
        self.sender.control(("ready", os.getpid(), methods))
        for u in self.underlyings:
            self.publish_state(u, snapshot=True)
        tasks = [asyncio.create_task(self.forward(u)) for u in self.underlyings]
        tasks.append(asyncio.create_task(self.refresh()))
        stop = asyncio.create_task(self.stop_ev.wait())
        try:
            waiting: set[asyncio.Task[Any]] = {stop, *tasks}
            while not stop.done():  # a finite source ends its streams; we keep serving
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is not stop and not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(self.requests.fileno())
            for t in (stop, *tasks):
                t.cancel()
            await asyncio.gather(stop, *tasks, return_exceptions=True)
            if run_task is not None:
                run_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run_task
            elif hasattr(engine, "stop"):
                await _aw(engine.stop())
            sink = getattr(getattr(engine, "config", None), "sink", None)
            if sink is not None and hasattr(sink, "close"):
                # the engine's calibration writer: drained, so a restart recovers all
                await loop.run_in_executor(None, sink.close)


def engine_main(spec: EngineSpec, events: Any, requests: Any, opts: dict[str, Any]) -> None:
    """Entry point of the engine process (spawn context): run until told to stop or
    until the server goes away; a failure is sent as ``("fatal", reason)`` first."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and
    # stops this process (its writer drained) with a stop message, never half-way
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    side = _EngineSide(spec, events, requests, opts)
    try:
        # built outside any event loop: a factory may run its own (a warm-up replay)
        side.engine = spec.build()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            events.send_bytes(frame(("fatal", _one_line(exc)))[4:])
        sys.exit(1)
    try:
        asyncio.run(side.run())
    except BaseException:  # already sent as ("fatal", reason) by run()
        sys.exit(1)


async def _aw(x: Any) -> Any:
    return await x if inspect.isawaitable(x) else x


# =========================================================================== server side
class _ReadSide(asyncio.Protocol):
    def __init__(self, owner: EngineProcess) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._close_events()


class EngineProcess:
    """The engine in a child process, seen from the server's event loop (module docs).

    Parameters
    ----------
    spec : EngineSpec
        How the child builds the engine.
    underlyings : tuple of str
    config : object, optional
        The engine's configuration as the server may read it (``volcal serve`` passes
        the ``StreamConfig`` without its writer); not sent to the child.
    queue_size : int
        Most patches queued in the engine process for the pipe (drops counted beyond),
        and most messages queued in the server for the websocket hub.
    call_timeout_s : float
        A call the engine does not answer in this time fails with a 504.
    """

    #: create_app uses the published, pre-encoded state as is
    remote = True

    def __init__(
        self,
        spec: EngineSpec,
        underlyings: tuple[str, ...],
        *,
        config: Any = None,
        queue_size: int = 256,
        min_rebuild_s: float = 0.05,
        max_age_s: float = 0.25,
        call_timeout_s: float = 10.0,
        stop_timeout_s: float = 30.0,
        max_calls: int = 64,
    ) -> None:
        self.spec = spec
        self.underlyings = tuple(u.upper() for u in underlyings)
        self.config = config
        self.queue_size = int(queue_size)
        self.min_rebuild_s = float(min_rebuild_s)
        self.max_age_s = float(max_age_s)
        self.call_timeout_s = float(call_timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.max_calls = int(max_calls)
        self.proc: Any = None
        self.pid: int | None = None
        self.methods: set[str] | None = None
        self.failure: str | None = None
        self.received = 0
        self.conflated = 0
        self._events: Any = None
        self._requests: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pub: dict[str, Published] = {}
        self._decoded: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self._subs: dict[str, list[asyncio.Queue[tuple[Any, ...]]]] = {
            u: [] for u in self.underlyings
        }
        self._calls: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._ids = itertools.count(1)
        self._last_metrics: dict[str, Any] = {}
        self._stopping = False
        self._paused = False
        self._buf = bytearray()
        self._fd = -1

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Spawn the engine process (returns at once; ``/health`` says ``starting``
        until its first surface arrives)."""
        import multiprocessing

        if self.proc is not None:
            return
        ctx = multiprocessing.get_context("spawn")
        r_ev, w_ev = ctx.Pipe(duplex=False)
        r_rq, w_rq = ctx.Pipe(duplex=False)
        opts = {
            "underlyings": self.underlyings,
            "queue_size": self.queue_size,
            "min_rebuild_s": self.min_rebuild_s,
            "max_age_s": self.max_age_s,
        }
        self.proc = ctx.Process(
            target=engine_main, args=(self.spec, w_ev, r_rq, opts), name="volcal-engine"
        )
        self.proc.start()
        w_ev.close()  # the child holds the only write end: its exit is our end of file
        r_rq.close()
        self._requests = w_rq
        self._loop = loop = asyncio.get_running_loop()
        self._fd = os.dup(r_ev.fileno())
        r_ev.close()
        self._events, _ = await loop.connect_read_pipe(
            lambda: _ReadSide(self), os.fdopen(self._fd, "rb", buffering=0)
        )
        loop.add_reader(self.proc.sentinel, self._on_exit)

    async def stop(self) -> None:
        """Stop the engine process and wait for it (terminated after ``stop_timeout_s``)."""
        proc = self.proc
        if proc is None or self._stopping:
            return
        self._stopping = True
        self.resume_reading()
        with contextlib.suppress(OSError, ValueError):
            self._requests.send(("stop",))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, proc.join, self.stop_timeout_s)
        if proc.is_alive():
            proc.terminate()
            await loop.run_in_executor(None, proc.join, 5.0)
        if proc.is_alive():
            proc.kill()
            await loop.run_in_executor(None, proc.join, 5.0)
        self._on_exit()
        with contextlib.suppress(Exception):
            self._requests.close()
        with contextlib.suppress(Exception):
            proc.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.failure is None and self._events is not None

    def pause_reading(self) -> None:
        """Stop reading the engine's pipe (back-pressure; the tests' slow server)."""
        if self._events is not None and not self._paused:
            self._events.pause_reading()
            self._paused = True

    def resume_reading(self) -> None:
        if self._events is not None and self._paused:
            self._events.resume_reading()
            self._paused = False

    # ------------------------------------------------------------------ events
    def _feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        while n - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if n - pos - 4 < size:
                break
            msg = pickle.loads(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
            self.received += 1
            self._dispatch(msg)
        if pos:
            del buf[:pos]

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "patch":
            _, u, key, text, tick = msg
            for q in self._subs.get(u, ()):
                self._put(u, q, ("msg", key, text, tick))
        elif kind == "state":
            _, u, version, meta, body, status, snapshot = msg
            pub = Published(u, version, meta, body, status, time.monotonic())
            self._pub[u] = pub
            if snapshot:
                for q in self._subs.get(u, ()):
                    self._put(u, q, ("snapshot", pub))
        elif kind == "reply":
            _, rid, ok, value = msg
            fut = self._calls.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result((ok, value))
        elif kind == "ready":
            self.pid, self.methods = msg[1], set(msg[2])
        elif kind == "end":
            for q in self._subs.get(msg[1], ()):
                self._put(msg[1], q, ("end", None))
        elif kind == "fatal":
            self.failure = str(msg[1])

    def _put(self, u: str, q: asyncio.Queue[tuple[Any, ...]], item: tuple[Any, ...]) -> None:
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:  # the hub fell behind: the full state instead
            while not q.empty():
                q.get_nowait()
            pub = self._pub.get(u)
            if pub is not None:
                q.put_nowait(("snapshot", pub))
            self.conflated += 1

    def _close_events(self) -> None:
        if self._events is None:
            return
        tr, self._events = self._events, None
        with contextlib.suppress(Exception):
            tr.close()

    def _on_exit(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(proc.sentinel)
        if self._events is not None:  # what it sent before it exited (its fatal message)
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, False)
                while chunk := os.read(self._fd, 1 << 20):
                    self._feed(chunk)
        self._close_events()
        if not self._stopping and self.failure is None:
            proc.join(1.0)  # its sentinel is ready: it has exited, reap it
            code = proc.exitcode
            self.failure = f"the engine process exited unexpectedly (exit code {code})"
        reason = self.failure or "the engine process stopped"
        for fut in self._calls.values():
            if not fut.done():
                fut.set_exception(EngineUnavailable(f"engine unavailable: {reason}"))
        self._calls.clear()
        for u, qs in self._subs.items():
            for q in qs:
                self._put(u, q, ("end", self.failure))

    # ------------------------------------------------------------------ app side
    def published(self, underlying: str) -> Published | None:
        return self._pub.get(underlying.upper())

    def surface_bytes(self, underlying: str) -> bytes | None:
        pub = self._pub.get(underlying.upper())
        if pub is None or pub.body is None or not pub.meta.get("n_expiries"):
            return None
        return pub.body

    def state(self, underlying: str) -> dict[str, Any] | None:
        """The latest published state as a dict (decoded once per version)."""
        u = underlying.upper()
        pub = self._pub.get(u)
        if pub is None or pub.body is None:
            return None
        hit = self._decoded.get(u)
        if hit is not None and hit[0] == pub.version:
            return hit[1]
        d = json.loads(pub.body)
        self._decoded[u] = (pub.version, d)
        return d  # type: ignore[no-any-return]

    def health(self) -> dict[str, Any]:
        return {
            "mode": "process",
            "alive": self.alive,
            "pid": self.pid,
            "error": self.failure,
        }

    async def subscribe_encoded(self, underlying: str) -> AsyncIterator[tuple[Any, ...]]:
        """The hub's feed: ``("snapshot", Published)`` first and after a resync, then
        ``("msg", key, text, tick_wall_time)`` per update, ``("end", reason)`` last."""
        u = underlying.upper()
        q: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(self.queue_size)
        self._subs[u].append(q)
        try:
            pub = self._pub.get(u)
            if pub is not None:
                yield ("snapshot", pub)
            if self.failure is not None or (self.proc is not None and self._events is None):
                yield ("end", self.failure)
                return
            while True:
                item = await q.get()
                yield item
                if item[0] == "end":
                    return
        finally:
            if q in self._subs[u]:
                self._subs[u].remove(q)

    async def call(self, name: str, *args: Any) -> Any:
        """Run ``engine.<name>(*args)`` in the engine process and return its result."""
        if self.failure is not None or self._events is None:
            why = self.failure or "not running"
            raise EngineUnavailable(f"engine unavailable: {why}")
        if len(self._calls) >= self.max_calls:
            raise EngineUnavailable("too many engine calls in flight", 503)
        rid = next(self._ids)
        fut: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._calls[rid] = fut
        try:
            self._requests.send(("call", rid, name, args))
            ok, value = await asyncio.wait_for(fut, self.call_timeout_s)
        except (OSError, ValueError):
            raise EngineUnavailable("engine unavailable: its request pipe is closed") from None
        except TimeoutError:
            raise EngineUnavailable(
                f"the engine did not answer {name} within {self.call_timeout_s:g} s", 504
            ) from None
        finally:
            self._calls.pop(rid, None)
        if ok:
            return value
        cls, message = value
        if cls == "NotImplemented":
            raise EngineUnavailable(f"this engine has no {message}", 501)
        from volcal import errors

        err = getattr(errors, cls, None)
        if isinstance(err, type) and issubclass(err, Exception):
            raise err(message)
        raise RuntimeError(f"{cls} in the engine process: {message}")

    async def metrics(self) -> dict[str, Any]:
        try:
            m = dict(await self.call("metrics"))
            self._last_metrics = m
        except EngineUnavailable:
            m = dict(self._last_metrics)
        m["process"] = {
            "up": self.alive,
            "messages_received": self.received,
            "hub_conflated": self.conflated,
        }
        return m

    def __getattr__(self, name: str) -> Any:
        """The engine's optional methods as calls into the engine process."""
        if name.startswith("_") or name not in OPTIONAL:
            raise AttributeError(name)
        methods = self.__dict__.get("methods")
        if (
            methods is not None
            and name not in methods
            and not (name == "quotes" and "chain" in methods)
        ):
            raise AttributeError(name)

        async def call(*args: Any) -> Any:
            return await self.call(name, *args)

        return call
