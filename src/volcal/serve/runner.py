"""The streaming engine on its own thread and event loop, read by the app lock-free.

A refit blocks the event loop it runs in for milliseconds to tens of milliseconds (SVI
slices, eSSVI); in the app's own loop every request and websocket send would queue
behind it. :class:`EngineThread` runs the engine in a worker thread and offers the app
the engine's interface from the app's loop:

* ``state(underlying)``: the last *published* state dict, rebuilt in the engine's loop
  after a status change or a full state at once, after a patch at most every
  ``min_rebuild_s`` (50 ms) and at least every ``max_age_s`` (250 ms, so ``age_s``
  moves); reading it is one reference read, never a call into the engine's thread;
* ``subscribe(underlying)``: the engine's updates forwarded to the app's loop through a
  bounded queue (``call_soon_threadsafe``); a queue that fills up is replaced by the
  current full state (conflation, never unbounded memory);
* ``metrics()``, ``chain()``, ``flagged()``, ``recalibrate()``: coroutines that run the
  engine's method in the engine's loop and await its result without blocking the app.

While the engine thread runs, the interpreter's GIL switch interval is 1 ms instead of
5 ms (``switch_interval_s``; restored at stop): a refit holds the GIL for milliseconds,
and a request or websocket send in the app's loop needs it at every step, so each
hand-over used to cost up to 5 ms.

The published snapshot is a plain dict treated as immutable; the engine's own data is
only ever touched from the engine's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from volcal.serve.hub import state_dict

__all__ = ["EngineThread"]


class EngineThread:
    """Run ``engine`` in a worker thread (module docs)."""

    def __init__(
        self,
        engine: Any,
        underlyings: tuple[str, ...],
        *,
        min_rebuild_s: float = 0.05,
        max_age_s: float = 0.25,
        queue_size: int = 1024,
        switch_interval_s: float | None = 0.001,
    ) -> None:
        self.engine = engine
        self.underlyings = tuple(underlyings)
        self.config = getattr(engine, "config", None)
        self.min_rebuild_s = float(min_rebuild_s)
        self.max_age_s = float(max_age_s)
        self.queue_size = int(queue_size)
        self.switch_interval_s = switch_interval_s
        self._old_switch: float | None = None
        self._states: dict[str, dict[str, Any] | None] = {u: None for u in self.underlyings}
        self._built: dict[str, float] = {u: -1e18 for u in self.underlyings}
        self._dirty: dict[str, bool] = {u: False for u in self.underlyings}
        self._subs: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]]] = {
            u: [] for u in self.underlyings
        }
        self._subs_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_ev: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.forwarded = 0
        self.conflated = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        if self.switch_interval_s is not None:
            import sys

            # the engine thread computes for milliseconds at a time while holding the
            # GIL; a thread waiting for it (the app's loop with a request) gets it after
            # at most this interval instead of CPython's 5 ms, at every hand-over
            self._old_switch = sys.getswitchinterval()
            sys.setswitchinterval(self.switch_interval_s)
        self._thread = threading.Thread(target=self._main, name="volcal-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the engine thread did not start")
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run())
        except BaseException as exc:  # reported to start() / the logs, never silent
            self.error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _run(self) -> None:
        self._stop_ev = asyncio.Event()
        r = self.engine.start() if hasattr(self.engine, "start") else None
        run_task = None
        if inspect.isawaitable(r):
            await r
        elif r is None and not hasattr(self.engine, "start"):
            run_task = asyncio.create_task(self.engine.run())
        for u in self.underlyings:
            self._rebuild(u)
        tasks = [asyncio.create_task(self._forward(u)) for u in self.underlyings]
        tasks.append(asyncio.create_task(self._refresh()))
        self._ready.set()
        await self._stop_ev.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if run_task is not None:
            run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run_task
        elif hasattr(self.engine, "stop"):
            r = self.engine.stop()
            if inspect.isawaitable(r):
                await r

    async def stop(self) -> None:
        loop, ev, th = self._loop, self._stop_ev, self._thread
        if loop is None or ev is None or th is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(ev.set)
        await asyncio.get_running_loop().run_in_executor(None, th.join, 30.0)
        if self._old_switch is not None:
            import sys

            sys.setswitchinterval(self._old_switch)
            self._old_switch = None

    # ------------------------------------------------------------------ engine side
    def _rebuild(self, u: str) -> None:
        try:
            d = state_dict(self.engine.state(u))
        except (KeyError, ValueError):
            d = None
        self._states[u] = d  # one reference swap: readers see the old or the new dict
        self._built[u] = time.monotonic()
        self._dirty[u] = False

    async def _forward(self, u: str) -> None:
        async for item in self.engine.subscribe(u):
            d = item if isinstance(item, dict) else state_dict(item) or {}
            kind = d.get("type")
            if kind in ("status", "state") or "expiries" in d:
                self._rebuild(u)
            elif time.monotonic() - self._built[u] >= self.min_rebuild_s:
                self._rebuild(u)
            else:
                self._dirty[u] = True
            with self._subs_lock:
                subs = list(self._subs[u])
            for loop, q in subs:
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(self._put, u, q, d)
            self.forwarded += 1

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.min_rebuild_s)
            now = time.monotonic()
            for u in self.underlyings:
                if self._dirty[u] or now - self._built[u] >= self.max_age_s:
                    self._rebuild(u)

    def _put(self, u: str, q: asyncio.Queue[Any], item: dict[str, Any]) -> None:
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:  # the app's loop fell behind: the full state instead
            while not q.empty():
                q.get_nowait()
            st = self._states[u] or {}
            q.put_nowait({**st, "type": "state", "conflated": True})
            self.conflated += 1

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = self._loop
        if loop is None:
            r = fn(*args)
            return await r if inspect.isawaitable(r) else r

        async def run() -> Any:
            r = fn(*args)
            return await r if inspect.isawaitable(r) else r

        fut = asyncio.run_coroutine_threadsafe(run(), loop)
        return await asyncio.wrap_future(fut)

    # ------------------------------------------------------------------ app side
    def state(self, underlying: str) -> dict[str, Any] | None:
        return self._states.get(underlying.upper())

    async def subscribe(self, underlying: str) -> AsyncIterator[dict[str, Any]]:
        u = underlying.upper()
        q: asyncio.Queue[Any] = asyncio.Queue(self.queue_size)
        entry = (asyncio.get_running_loop(), q)
        with self._subs_lock:
            self._subs[u].append(entry)
        try:
            yield {**(self._states[u] or {"expiries": []}), "type": "state"}
            while True:
                item = await q.get()
                yield item
                if item.get("type") == "end":
                    return
        finally:
            with self._subs_lock:
                if entry in self._subs[u]:
                    self._subs[u].remove(entry)

    async def metrics(self) -> dict[str, Any]:
        m = dict(await self._call(self.engine.metrics))
        m["engine_thread"] = {"forwarded": self.forwarded, "conflated": self.conflated}
        return m

    def __getattr__(self, name: str) -> Any:
        """The engine's optional methods (``chain``, ``flagged``, ``quotes``,
        ``recalibrate``, ``reload``) as coroutines run in the engine's loop."""
        if name.startswith("_") or name in ("engine",):
            raise AttributeError(name)
        fn = getattr(self.engine, name)
        if not callable(fn):
            raise AttributeError(name)

        async def call(*args: Any) -> Any:
            return await self._call(fn, *args)

        return call
