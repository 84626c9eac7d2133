"""``StreamEngine``: live quotes in, a warm-started surface out, the feed's faults caught.

See :mod:`volcal.stream` for the API. One engine runs in one asyncio loop: an ingest
task applies every message to the live book (microseconds each), a scheduler task
refits the expiries that changed (debounced per expiry), the arbitrage-free SVI surface
(on a worker process) and the eSSVI surface, a worker
thread refits the Fourier models (Heston, Bates, ...) at their own cadence, and a watchdog on the engine's clock marks the feed stale and drops
expired instruments. Nothing here blocks on disk: calibrations go to a
:class:`~volcal.stream.sink.CalibrationSink` whose writer runs on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from volcal.calibration.smile_stats import svi_pillars
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models.svi import SVI
from volcal.quality.policy import QualityPolicy
from volcal.stream.book import ExpiryBook, LiveBook
from volcal.stream.clock import Clock, SystemClock
from volcal.stream.fit import (
    EssviRefresh,
    IvMemo,
    SliceInput,
    cold_svi,
    essvi_refresh,
    essvi_steps,
    merge_quotes,
    slice_quotes,
    warm_svi,
)
from volcal.stream.messages import Instrument, QuoteUpdate, parse_instrument, parse_message
from volcal.stream.sink import CalibrationRecord, CalibrationSink
from volcal.stream.state import ExpiryState, LatencyStats, SurfaceState, iso, num
from volcal.stream.worker import (
    ModelWorker,
    ModelWorkerError,
    calibrate_quiet,
    timed,
    warm_svi_surface_worker,
)

__all__ = ["StreamConfig", "StreamEngine"]

# slices refitted per scheduler turn when more are due (a forced pass takes them all)
_PASS_CHUNK = 4
# eSSVI steps run back to back for up to this long (wall) before the loop's next turn
_STEP_BUDGET_S = 0.003
# a refresh gives way to due slice refits for at most this long in all (wall)
_DEFER_MAX_S = 0.025
# a refresh running this long (wall: a busy loop) stops giving way to due slices and
# runs its steps in turns of up to _LATE_BUDGET_S
_SURFACE_DEADLINE_S = 0.04
_LATE_BUDGET_S = 0.01

SURFACE_MODELS = ("svi_surface", "essvi", "heston", "bates", "merton", "kou", "vg", "svcj")


@dataclass(frozen=True)
class StreamConfig:
    """Settings of a :class:`StreamEngine` (immutable, validated).

    Times marked *clock* are on the engine's clock (market time); *wall* ones pace the
    computations.

    Attributes
    ----------
    underlyings : tuple of str
        Underlyings followed (``("BTC",)``); other instruments are dropped and counted.
    debounce_s : float
        Wall. A dirty expiry is refitted at most once per interval on average; a change
        after a quiet interval is fitted at once (leading edge). Default 0.1.
    debounce_burst : int
        How many refits of one expiry may follow each other closer than
        ``debounce_s`` (a token bucket of this capacity, refilled once per
        ``debounce_s``): an expiry that ticks a few times a second is refitted at each
        tick instead of waiting out the interval after its last fit, while a busy one
        is still paced at one refit per interval. ``1``: strictly one refit per
        interval. Default 3.
    stale_feed_s : float
        Clock. No market-data message (ticker, snapshot, mark price, index; heartbeats
        do not count) for this long marks the state stale (last good surface kept, with
        its age). Default 10.
    stale_quote_s : float
        Clock. A quote older than this is left out of fits (``stale``). Default 900.
    watchdog_s : float
        Clock. Interval of the staleness / expiry checks. Default 1.
    off_smile_spreads, off_smile_min_vol, off_smile_persist_s : float
        A quote whose mid vol is further from the live smile than ``off_smile_spreads``
        half-spreads and ``off_smile_min_vol`` is held out until it has stayed off
        for ``off_smile_persist_s`` clock seconds. Defaults 4, 0.03, 5.
    index_jump : float
        Relative index move since the last full recalibration that refits every
        expiry at once. Default 0.01.
    param_jump_vol : float
        An SVI refit moving the ATM vol by more than this (decimal) is held (last good
        fit kept) for up to ``param_hold`` consecutive refits, then accepted as a real
        move. Default 0.05 and 3.
    surface_interval_s : float
        Wall. The eSSVI surface is refreshed after an SVI pass at most once per
        interval (its slices wait for the next pass otherwise). Default 0.25.
    models : tuple of str
        ``"svi"`` (the free per-expiry slices) always; ``"svi_surface"`` (default) the
        arbitrage-free SVI surface (:mod:`volcal.calibration.svi_surface`) refreshed
        from the current slices after SVI passes, at most every ``surface_interval_s``,
        warm-started at the previous surface: when it is fitted, every published
        expiry's model fields are its slice of that surface (``ExpiryState.fit``), the
        free slice kept next to it; ``"essvi"`` refreshed after SVI passes; Fourier models
        (``"heston"``, ``"bates"``, ...) refitted every ``model_interval_s`` (wall),
        warm-started and regularised toward the last fit with ``model_strength``.
    model_max_time : float
        Wall-clock limit of one warm Fourier refit (seconds); a cold first fit (global
        stage) gets up to 20 s.
    model_executor : {"process", "thread"}
        Where the Fourier refits run: one worker process (default; spawned once when
        the engine starts, its own core when there is one, so slices never wait behind
        a refit for the GIL) or one worker thread (shares the GIL with the loop). See
        :mod:`volcal.stream.worker`.
    svi_surface_executor : {"process", "inline"}
        Where the svi_surface refreshes run: on a worker process of their own
        (default; the loop only ships the merged quotes and the previous surface, and
        is never blocked for the ~15-25 ms a fit of a whole chain takes) or in the
        loop (``"inline"``; also what a synchronous :meth:`StreamEngine.recalibrate`
        without a running loop does). One refresh at a time; the slices refitted
        meanwhile go into the next.
    surface_executor : {"inline", "steps", "process"}
        Where the eSSVI refreshes run (each warm-started at the previous nodes):
        ``"inline"`` (default) in the engine's loop at once after a slice pass;
        ``"steps"`` in the loop as a task one slice at a time
        (:func:`~volcal.stream.fit.essvi_steps`) that gives way while a slice refit is
        due, so slices and ingest wait at most one turn of ~3 ms, never a whole
        refresh (on a loaded machine the surface itself then comes 2-3x later, see
        BENCHMARKS.md); ``"process"`` on a second worker process. One refresh at a
        time; the slices fitted meanwhile wait for the next one, several updates of one
        slice coalesced into its newest (``metrics()["surface_queue"]`` counts them).
    cold_every : int
        Every n-th SVI fit of a slice is a cold (full) search.
    min_quotes : int
        Fewer usable quotes in an expiry: status ``insufficient``, nothing fitted.
    store_interval_s : float
        Wall. At most one stored calibration per model per interval.
    clock : Clock, optional
        Market clock (default: the source's clock, else the system clock).
    sink : CalibrationSink, optional
        Where calibrations go; also read at start to recover the last surface.
    gc_freeze : bool
        At start, collect garbage once and move every object alive then (modules,
        compiled kernels, the book) out of the collector's reach (``gc.freeze``): a
        full collection then scans only what was allocated since, a few ms instead of
        tens to hundreds that would stall the loop. Process-wide and not undone at
        stop, so off by default (a library must not change its host process's
        collector); no collection of the start-up heap was measured during a replay
        (BENCHMARKS.md, streaming latency), so it is a guard for long-running
        services that opt in.
    queue_size : int
        Per-subscriber queue; a subscriber that falls this far behind gets the full
        state again instead of the patches it missed (conflation).
    worker_ready_s : float
        Wall. At start the engine waits up to this long for its worker processes (the
        svi_surface, Fourier and eSSVI workers) to have started and loaded their
        compiled kernels before it reads the source: a refresh never queues behind a
        start-up (spawn, imports, kernels: 2-14 s on a loaded 2-core machine), so the
        first surfaces are not seconds behind their ticks. A worker that is not ready
        by then (or whose start failed) is flagged: guard ``worker_not_ready`` and
        ``metrics()["workers"]``; the engine then reads the source anyway and the
        worker's refits wait for it as before. 0: do not wait. Default 60.
    """

    underlyings: tuple[str, ...] = ("BTC",)
    debounce_s: float = 0.1
    debounce_burst: int = 3
    stale_feed_s: float = 10.0
    stale_quote_s: float = 900.0
    watchdog_s: float = 1.0
    off_smile_spreads: float = 4.0
    off_smile_min_vol: float = 0.03
    off_smile_persist_s: float = 5.0
    index_jump: float = 0.01
    param_jump_vol: float = 0.05
    param_hold: int = 3
    models: tuple[str, ...] = ("svi", "svi_surface", "essvi", "heston")
    surface_interval_s: float = 0.25
    model_interval_s: float = 5.0
    model_strength: float = 0.1
    model_max_time: float = 2.0
    model_min_days: float = 2.0
    model_executor: str = "process"
    surface_executor: str = "inline"
    svi_surface_executor: str = "process"
    cold_every: int = 25
    min_quotes: int = 5
    store_interval_s: float = 5.0
    policy: QualityPolicy = field(default_factory=QualityPolicy)
    clock: Clock | None = None
    sink: CalibrationSink | None = None
    queue_size: int = 256
    gc_freeze: bool = False
    worker_ready_s: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "underlyings", tuple(u.upper() for u in self.underlyings))
        object.__setattr__(self, "models", tuple(m.lower() for m in self.models))
        if not self.underlyings:
            raise ParameterError("StreamConfig.underlyings is empty")
        for name in (
            "debounce_s",
            "stale_feed_s",
            "stale_quote_s",
            "off_smile_spreads",
            "off_smile_min_vol",
            "off_smile_persist_s",
            "index_jump",
            "param_jump_vol",
            "model_interval_s",
            "surface_interval_s",
            "model_strength",
            "model_min_days",
            "store_interval_s",
            "worker_ready_s",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ParameterError(f"StreamConfig.{name} must be a finite number >= 0, got {v!r}")
        for name in ("watchdog_s", "model_max_time"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"StreamConfig.{name} must be > 0, got {v!r}")
        for name in ("param_hold", "cold_every", "min_quotes", "queue_size", "debounce_burst"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ParameterError(f"StreamConfig.{name} must be an integer >= 1, got {v!r}")
        bad = [m for m in self.models if m != "svi" and m not in SURFACE_MODELS]
        if bad:
            raise ParameterError(
                f"unknown stream model {bad[0]!r}: use svi and any of {', '.join(SURFACE_MODELS)}"
            )
        if self.model_executor not in ("thread", "process"):
            raise ParameterError(
                f"model_executor must be 'thread' or 'process', got {self.model_executor!r}"
            )
        if self.surface_executor not in ("inline", "steps", "process"):
            raise ParameterError(
                "surface_executor must be 'inline', 'steps' or 'process', "
                f"got {self.surface_executor!r}"
            )
        if self.svi_surface_executor not in ("process", "inline"):
            raise ParameterError(
                "svi_surface_executor must be 'process' or 'inline', "
                f"got {self.svi_surface_executor!r}"
            )
        if "svi" not in self.models:
            object.__setattr__(self, "models", ("svi", *self.models))

    def replace(self, **changes: Any) -> StreamConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            if k in ("clock", "sink"):
                out[k] = None if v is None else type(v).__name__
            elif k == "policy":
                out[k] = v.to_dict()
            else:
                out[k] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass
class _Slice:
    expiry: float
    svi: SVI | None = None
    est: ExpiryState | None = None
    inp: SliceInput | None = None
    n_fits: int = 0
    held: int = 0
    last_fit_wall: float = -math.inf
    # debounce token bucket as a virtual time (GCRA): a refit is allowed from
    # due_wall - (burst - 1) * debounce on, and moves due_wall one interval on
    due_wall: float = -math.inf
    off_since: dict[str, float] = field(default_factory=dict)
    iv_memo: IvMemo = field(default_factory=IvMemo)  # total vols of unchanged quotes
    seed: SVI | None = None  # a cold fit from the worker: the next warm search starts there
    reseeding: bool = False


@dataclass
class _Under:
    name: str
    book: LiveBook
    slices: dict[float, _Slice] = field(default_factory=dict)
    surface: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)  # model -> last CalibrationResult
    essvi_nodes: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    guards: dict[str, int] = field(default_factory=dict)
    reasons: set[str] = field(default_factory=set)
    seq: int = 0
    fit_index: float = math.nan  # index at the last full recalibration
    force_all: bool = False
    force_wall: float = -math.inf  # wall time of the tick that set force_all
    changed_since_model: bool = False
    last_model_wall: float = -math.inf
    last_surface_wall: float = -math.inf
    essvi_pending: set[float] = field(default_factory=set)
    essvi_newest: float = -math.inf
    essvi_conv: dict[float, tuple[float, float, float]] = field(default_factory=dict)
    essvi_refreshes: int = 0
    # slice updates handed to the surface = superseded (a newer fit of the same slice
    # came before a refresh took it) + taken by a refresh + still pending
    essvi_queue: dict[str, int] = field(
        default_factory=lambda: {"slice_updates": 0, "superseded": 0, "taken": 0}
    )
    # the arbitrage-free surface: pending slice refits, newest tick among them, the
    # per-expiry slices of the last good fit, why there is none (a FIT_REASONS code)
    svs_pending: bool = False
    svs_newest: float = -math.inf
    last_svs_wall: float = -math.inf
    svs_slices: dict[float, dict[str, Any]] = field(default_factory=dict)
    svs_reason: str = "surface_pending"
    last_store_wall: dict[str, float] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    synthetic: int = 0
    quotes_applied: int = 0


class StreamEngine:
    """Streaming calibration engine (see :mod:`volcal.stream`)."""

    def __init__(self, source: Any, config: StreamConfig | None = None) -> None:
        self.source = source
        self.config = config or StreamConfig()
        cfg = self.config
        self.clock: Clock = cfg.clock or getattr(source, "clock", None) or SystemClock()
        self._u: dict[str, _Under] = {u: _Under(u, LiveBook(u)) for u in cfg.underlyings}
        self._inst: dict[str, Instrument | None] = {}
        self._index_names = {f"{u.lower()}_usd": u for u in cfg.underlyings}
        self.received = 0
        self.applied: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.snapshot_quotes: dict[str, int] = {}
        self.calibrations: dict[str, dict[str, int]] = {}
        self.lat = {
            "tick_to_slice": LatencyStats(),
            "oldest_tick_to_slice": LatencyStats(),
            "slice_compute": LatencyStats(),
            "tick_to_surface": LatencyStats(),
            "essvi_compute": LatencyStats(),
            "model_compute": LatencyStats(),
            "model_compute_warm": LatencyStats(),
            "model_on_worker_warm": LatencyStats(),
            "tick_to_model": LatencyStats(),
            "tick_to_svi_surface": LatencyStats(),
            "svi_surface_compute": LatencyStats(),
            "svi_surface_on_worker": LatencyStats(),
            # the CPU of that fit on the worker (the wall above less the wait for a core)
            "svi_surface_on_worker_cpu": LatencyStats(),
            # the loop's own share of a refresh on the worker: its inputs and start
            # (before) and taking in the result and publishing it (after)
            "svi_surface_loop": LatencyStats(),
        }
        self.last_message_time = math.nan  # clock time of the last market-data message
        self.stale = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._running = False
        self._done = asyncio.Event()
        self._started_wall = time.perf_counter()
        self.source_finished = False
        self.error: Exception | None = None
        self._finisher: asyncio.Future[None] | None = None
        self._model_task: asyncio.Task[None] | None = None
        self._worker: ModelWorker | None = None
        self._surface_worker: ModelWorker | None = None
        self._slice_worker: ModelWorker | None = None
        self._reseeds: set[asyncio.Task[None]] = set()
        self._essvi_task: asyncio.Task[None] | None = None
        self._svs_task: asyncio.Task[None] | None = None
        self._svs_worker: ModelWorker | None = None
        self._svs_loop_s = 0.0
        # the workers' warm-ups started by start(): (name, worker, task)
        self._warming: list[tuple[str, ModelWorker, asyncio.Task[None]]] = []
        self.workers: dict[str, Any] = {"ready": None, "waited_s": None, "not_ready": []}
        self._recover()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Run until the source ends (a finite replay) or :meth:`stop` is called; then
        finish the pending fits."""
        self.start()
        await self._done.wait()

    def start(self) -> None:
        """Start the engine's tasks in the running loop (returns at once)."""
        if self._running:
            return
        self._running = True
        self._done.clear()
        if self.config.gc_freeze:
            import gc

            gc.collect()
            gc.freeze()
        self._wake = asyncio.Event()
        # the workers first (their start-up runs while the ingest waits for it)
        self._warming = []
        if self.config.surface_executor == "process" and "essvi" in self.config.models:
            self._surface_worker = ModelWorker("process")
            self._warm("essvi", self._surface_worker, None)
        if self._svs_on_worker():
            self._svs_worker = ModelWorker("process")
            self._warm("svi_surface", self._svs_worker, warm_svi_surface_worker)
        if any(m not in ("svi", "essvi", "svi_surface") for m in self.config.models):
            # start the Fourier worker (and its imports) now, not at the first refit
            self._warm("model", self._model_worker(), None)
        self._tasks += [
            asyncio.create_task(self._ingest(), name="volcal-stream-ingest"),
            asyncio.create_task(self._scheduler(), name="volcal-stream-fit"),
            asyncio.create_task(self._watchdog(), name="volcal-stream-watchdog"),
        ]

    def _warm(self, name: str, worker: ModelWorker, job: Any) -> None:
        coro = worker.warm(job) if job is not None else worker.warm()
        task = asyncio.create_task(coro, name=f"volcal-stream-warm-{name}")
        self._tasks.append(task)
        self._warming.append((name, worker, task))

    async def _await_workers(self) -> None:
        """Wait (at most ``worker_ready_s``) until every worker started by
        :meth:`start` is ready; flag the ones that are not (see StreamConfig)."""
        limit = self.config.worker_ready_s
        tasks = [t for _, w, t in self._warming if w.kind == "process"]
        if not tasks or limit <= 0:
            return
        t0 = time.perf_counter()
        await asyncio.wait(tasks, timeout=limit)
        not_ready = [name for name, w, t in self._warming if w.kind == "process" and w.pid is None]
        self.workers = {
            "ready": not not_ready,
            "waited_s": time.perf_counter() - t0,
            "not_ready": not_ready,
        }
        if not_ready:
            for u in self._u.values():
                self._guard(u, "worker_not_ready", len(not_ready))

    def _model_worker(self) -> ModelWorker:
        if self._worker is None:
            self._worker = ModelWorker(self.config.model_executor)
        return self._worker

    async def stop(self) -> None:
        """Stop the tasks, close the source and flush the sink (idempotent)."""
        self._running = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        if self._model_task is not None and not self._model_task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._model_task
        for task in (self._essvi_task, self._svs_task):
            if task is not None and not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for t in list(self._reseeds):
            t.cancel()
        for t in list(self._reseeds):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for w in (self._worker, self._surface_worker, self._slice_worker, self._svs_worker):
            if w is not None:
                # shut down; the object stays for metrics() (a later refit restarts it)
                await asyncio.get_running_loop().run_in_executor(None, w.shutdown)
        close = getattr(self.source, "close", None)
        if close is not None:
            res = close()
            if asyncio.iscoroutine(res):
                await res
        for u in self._u.values():
            for q in list(u.subscribers):
                _put_latest(q, {"type": "end", "underlying": u.name})
        self._done.set()

    def _model_refit_due(self) -> bool:
        """A Fourier refit is due and the scheduler has not started it yet."""
        if not self._running or not any(
            m not in ("svi", "essvi", "svi_surface") for m in self.config.models
        ):
            return False
        if self._model_task is not None and not self._model_task.done():
            return False
        wall = time.perf_counter()
        return any(
            u.changed_since_model and wall - u.last_model_wall >= self.config.model_interval_s
            for u in self._u.values()
        )

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no expiry is dirty or due, and no background refit (eSSVI on its
        worker, a slice's cold fit) is running or, for a Fourier refit, due and not yet
        started (tests, benchmarks; a finite source's end: its last forced Fourier
        refit then follows the one the replay made due, warm from it)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            now = self.clock.now()
            if (
                not any(
                    eb.dirty or eb.recheck_at <= now
                    for u in self._u.values()
                    for eb in u.book.expiries.values()
                )
                and not self._reseeds
                and not any(
                    u.force_all
                    or (u.essvi_pending and "essvi" in self.config.models)
                    or (u.svs_pending and "svi_surface" in self.config.models)
                    for u in self._u.values()
                )
                and (self._essvi_task is None or self._essvi_task.done())
                and (self._svs_task is None or self._svs_task.done())
                and not self._model_refit_due()
            ):
                return
            self._wake.set()
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ ingest
    async def _ingest(self) -> None:
        try:
            await self._await_workers()
            async for item in self.source.messages():
                recv, raw = item
                self.handle(raw, recv)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # the source gave up (e.g. DeribitSource after max_reconnects): kept for
            # the caller (engine.error) and the engine stops after its pending fits
            self.error = exc
        finally:
            self.source_finished = True
            self._wake.set()
            if self._running:
                # a finite source ended: finish pending fits, then stop
                asyncio.get_running_loop().call_soon(self._finish_soon)

    def _finish_soon(self) -> None:
        async def fin() -> None:
            await self.wait_idle(60.0)
            if self._model_task is not None and not self._model_task.done():
                with contextlib.suppress(Exception):
                    await self._model_task
            await self._fit_models(force=True)
            await self.stop()

        self._finisher = asyncio.ensure_future(fin())

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _apply(self, kind: str) -> None:
        self.applied[kind] = self.applied.get(kind, 0) + 1

    def handle(self, raw: str | bytes | dict[str, Any], recv: float | None = None) -> str:
        """Apply one message (the ingest path; also usable synchronously). Returns
        ``"applied:<kind>"`` or the drop reason. Every call is counted once."""
        self.received += 1
        now = self.clock.now() if recv is None else recv
        p = parse_message(raw)
        kind = p.kind
        if kind in ("ticker", "snapshot", "markprice", "index"):
            # market data (not heartbeats or RPC answers) is what keeps the feed fresh
            self.last_message_time = now
            if self.stale:
                self._recover_from_stale(now)
        if kind == "ticker":
            res = self._quote(p.payload, now)
            if res == "applied":
                self._apply("ticker")
                self._wake.set()
                return "applied:ticker"
            self._drop(res)
            return res
        if kind == "snapshot":
            n_ok = 0
            for item in p.payload:
                from volcal.stream.messages import summary_update

                try:
                    u = summary_update(item)
                except (ValueError, TypeError, AttributeError):
                    r = "malformed"
                else:
                    r = self._quote(u, now)
                self.snapshot_quotes[r] = self.snapshot_quotes.get(r, 0) + 1
                n_ok += r == "applied"
            self._apply("snapshot")
            self._wake.set()
            return "applied:snapshot"
        if kind == "markprice":
            for name, _ts, mark, iv in p.payload:
                inst = self._instrument(name)
                if inst is not None and inst.underlying in self._u:
                    self._u[inst.underlying].book.apply_mark(name, _ts, mark, iv)
            self._apply("markprice")
            return "applied:markprice"
        if kind == "index":
            index, _ts, price = p.payload
            und = self._index_names.get(index)
            if und is None:
                self._drop("other_underlying")
                return "other_underlying"
            ub = self._u[und]
            ub.book.index_price, ub.book.index_time = price, _ts
            self._check_index(ub, price)
            self._apply("index")
            return "applied:index"
        if kind in ("heartbeat", "rpc"):
            self._apply(kind)
            return f"applied:{kind}"
        reason = kind if kind in ("malformed", "rpc_error") else "unknown_channel"
        self._drop(reason)
        return reason

    def _instrument(self, name: str) -> Instrument | None:
        try:
            return self._inst[name]
        except KeyError:
            inst = self._inst[name] = parse_instrument(name)
            return inst

    def _quote(self, u: QuoteUpdate, now: float) -> str:
        inst = self._instrument(u.instrument)
        if inst is None:
            return "unknown_instrument"
        und = self._u.get(inst.underlying)
        if und is None:
            return "other_underlying"
        if inst.kind != "perpetual" and inst.expiry <= now:
            return "expired_instrument"
        res = und.book.apply(inst, u, now, time.perf_counter())
        if res != "applied":
            return res
        und.quotes_applied += 1
        if u.synthetic:
            und.synthetic += 1
        if inst.kind == "option" and u.bid == u.bid and u.ask == u.ask and u.bid >= u.ask:
            self._guard(und, "crossed_book" if u.bid > u.ask else "locked_book")
        if math.isfinite(u.index_price):
            self._check_index(und, u.index_price)
        return res

    def _guard(self, u: _Under, code: str, n: int = 1) -> None:
        u.guards[code] = u.guards.get(code, 0) + n

    def _check_index(self, u: _Under, price: float) -> None:
        if not math.isfinite(u.fit_index):
            u.fit_index = price
            return
        if abs(price / u.fit_index - 1.0) > self.config.index_jump and not u.force_all:
            u.force_all = True
            u.force_wall = time.perf_counter()
            self._guard(u, "index_jump")
            u.reasons.add("index_jump")
            self._wake.set()

    # ------------------------------------------------------------------ staleness
    async def _watchdog(self) -> None:
        cfg = self.config
        while self._running:
            await self.clock.sleep(cfg.watchdog_s)
            self.check()

    def check(self) -> None:
        """Staleness and expiry checks at the clock's time (the watchdog's step)."""
        now = self.clock.now()
        last = self.last_message_time
        if not self.stale and math.isfinite(last) and now - last > self.config.stale_feed_s:
            self.stale = True
            for u in self._u.values():
                self._guard(u, "stale_feed")
                u.reasons.add("stale_feed")
                self._publish(u, {"type": "status", "stale": True, "age_s": num(now - last)})
        for u in self._u.values():
            for e in u.book.drop_expired(now):
                u.slices.pop(e, None)
                u.essvi_nodes.pop(e, None)
                u.svs_slices.pop(e, None)
                self._guard(u, "expired_dropped")
                self._publish(u, {"type": "patch", "expiry": iso(e), "removed": True})
            if any(eb.recheck_at <= now for eb in u.book.expiries.values()):
                self._wake.set()

    def _recover_from_stale(self, now: float) -> None:
        self.stale = False
        for u in self._u.values():
            u.reasons.discard("stale_feed")
            self._guard(u, "feed_recovered")
            self._publish(u, {"type": "status", "stale": False, "age_s": 0.0})

    # ------------------------------------------------------------------ fitting
    async def _scheduler(self) -> None:
        try:
            await self._schedule()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # a bug or an unexpected input in a fit must not leave a silent engine that
            # keeps ingesting but never publishes: keep the error (engine.error, as for
            # a failed source) and stop, so the CLI and the service report it
            self.error = exc
            self._finisher = asyncio.ensure_future(self.stop())

    async def _schedule(self) -> None:
        cfg = self.config
        slices_last = False  # the previous turn refitted slices
        while self._running:
            now_wall = time.perf_counter()
            now = self.clock.now()
            next_due = math.inf
            worked = False
            surfaces_done = False
            if slices_last:
                # one kind of work per turn, then the ingest: a due eSSVI refresh runs
                # on the turn after a chunk of slices, never in the same one (the loop
                # is blocked for one of the two at a time, not for their sum)
                worked, next_due = self._surface_turn(next_due)
                surfaces_done = True
            slices_last = False
            for u in self._u.values() if not worked else ():
                due: list[ExpiryBook] = []
                for eb in u.book.expiries.values():
                    if not (eb.dirty or eb.recheck_at <= now or u.force_all):
                        continue
                    sl = u.slices.get(eb.expiry)
                    ready_at = self._ready_at(sl)
                    if u.force_all or now_wall >= ready_at:
                        due.append(eb)
                    else:
                        next_due = min(next_due, ready_at)
                if due:
                    whole = u.force_all or len(due) <= _PASS_CHUNK
                    if not whole:
                        # the slices whose oldest change waits longest first, a few at
                        # a time: between chunks the ingest, a finished model refit and
                        # the eSSVI step run; the rest are still due on the next turn
                        due.sort(key=lambda eb: eb.first_dirty_wall if eb.dirty else math.inf)
                        due = due[:_PASS_CHUNK]
                    # stored once the pass is whole (a record is every slice's newest fit)
                    self._recalibrate(u, due, now, store=whole, surface=False)
                    worked = slices_last = True
            if not worked and not surfaces_done:
                worked, next_due = self._surface_turn(next_due)
            if worked:
                await asyncio.sleep(0)
                continue
            if (self._model_task is None or self._model_task.done()) and any(
                u.changed_since_model
                and time.perf_counter() - u.last_model_wall >= cfg.model_interval_s
                for u in self._u.values()
            ):
                # the Fourier refits run on a worker thread: the loop keeps ingesting
                # and refitting slices meanwhile
                self._model_task = asyncio.create_task(self._fit_models())
                continue
            timeout = min(max(next_due - time.perf_counter(), 0.0), 0.25)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _surface_turn(self, next_due: float) -> tuple[bool, float]:
        """Start the eSSVI refreshes that are due; (whether one ran in the loop, the
        wall time the next one is due, or ``next_due``)."""
        cfg = self.config
        worked = False
        for u in self._u.values():
            if u.svs_pending and "svi_surface" in cfg.models and not self._svs_running():
                if time.perf_counter() - u.last_svs_wall >= cfg.surface_interval_s:
                    inline = not self._start_svs(u, self.clock.now())
                    worked = worked or inline
                else:
                    next_due = min(next_due, u.last_svs_wall + cfg.surface_interval_s)
        for u in self._u.values():
            if not (u.essvi_pending and "essvi" in cfg.models) or self._essvi_running():
                continue  # a running refresh wakes the scheduler when it ends
            if time.perf_counter() - u.last_surface_wall >= cfg.surface_interval_s:
                self._start_essvi(u, self.clock.now())
                worked = worked or cfg.surface_executor == "inline"  # else a task
            else:
                next_due = min(next_due, u.last_surface_wall + cfg.surface_interval_s)
        return worked, next_due

    def _request_surface(self, u: _Under, expiries: list[float]) -> None:
        """Hand refitted slices to the next eSSVI refresh (a slice already waiting for
        one is superseded by its newer fit: only the newest is computed)."""
        q = u.essvi_queue
        for e in expiries:
            q["slice_updates"] += 1
            if e in u.essvi_pending:
                q["superseded"] += 1
            else:
                u.essvi_pending.add(e)

    def _essvi_running(self) -> bool:
        return self._essvi_task is not None and not self._essvi_task.done()

    def _slices_due(self) -> bool:
        """A slice refit is due now (the eSSVI steps give way to it)."""
        now_wall = time.perf_counter()
        now = self.clock.now()
        for u in self._u.values():
            if u.force_all and u.book.expiries:
                return True
            for eb in u.book.expiries.values():
                if (eb.dirty or eb.recheck_at <= now) and now_wall >= self._ready_at(
                    u.slices.get(eb.expiry)
                ):
                    return True
        return False

    def _ready_at(self, sl: _Slice | None) -> float:
        """Wall time from which a dirty slice may be refitted (debounce token bucket)."""
        if sl is None:
            return -math.inf
        cfg = self.config
        return sl.due_wall - (cfg.debounce_burst - 1) * cfg.debounce_s

    def recalibrate(self, underlying: str | None = None) -> None:
        """Refit every expiry now (synchronously; also the admin action of a server)."""
        for u in self._u.values():
            if underlying is None or u.name == underlying.upper():
                self._recalibrate(u, list(u.book.expiries.values()), self.clock.now())

    def _recalibrate(
        self,
        u: _Under,
        books: list[ExpiryBook],
        now: float,
        store: bool = True,
        surface: bool = True,
    ) -> None:
        """Refit the slices ``books``; ``surface``: start a due eSSVI refresh at the
        end (the scheduler starts it on its next turn instead)."""
        cfg = self.config
        forced = u.force_all
        reasons_pass = {"index_jump"} if forced else set()
        patches: list[dict[str, Any]] = []
        newest_wall = -math.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            for eb in books:
                tick = _answered_tick(u, eb, forced)
                p = self._fit_slice(u, eb, now, forced, reasons_pass)
                if p is not None:
                    # published at once: a subscriber does not wait for the whole pass
                    self._publish(u, p)
                    patches.append(p)
                    if math.isfinite(tick):
                        newest_wall = max(newest_wall, tick)
            if forced:
                u.force_all = False
                u.fit_index = (
                    u.book.index_price if math.isfinite(u.book.index_price) else u.fit_index
                )
                u.reasons.discard("index_jump")
            if patches:
                self._request_surface(u, [eb.expiry for eb in books])
                u.essvi_newest = max(u.essvi_newest, newest_wall)
                u.svs_pending = True
                u.svs_newest = max(u.svs_newest, newest_wall)
            if (
                surface
                and u.svs_pending
                and "svi_surface" in cfg.models
                and not self._svs_running()
                and time.perf_counter() - u.last_svs_wall >= cfg.surface_interval_s
            ):
                self._start_svs(u, now)
            if (
                surface
                and u.essvi_pending
                and "essvi" in cfg.models
                and time.perf_counter() - u.last_surface_wall >= cfg.surface_interval_s
            ):
                self._start_essvi(u, now)
        if patches:
            u.changed_since_model = True
            if store:
                self._maybe_store(u, "svi")

    def _fit_slice(
        self, u: _Under, eb: ExpiryBook, now: float, forced: bool, extra: set[str]
    ) -> dict[str, Any] | None:
        cfg = self.config
        t0 = time.perf_counter()
        sl = u.slices.get(eb.expiry)
        if sl is None:
            sl = u.slices[eb.expiry] = _Slice(eb.expiry)
        first_wall, last_wall, input_time = (
            eb.first_dirty_wall,
            eb.last_dirty_wall,
            eb.last_input_time,
        )
        last_wall = _answered_tick(u, eb, forced)
        n_changed = len(eb.changed)
        eb.dirty = False
        eb.changed.clear()
        eb.first_dirty_wall = math.inf
        inp = slice_quotes(
            eb,
            now,
            policy=cfg.policy,
            stale_quote_s=cfg.stale_quote_s,
            smile=sl.svi,
            off_smile_spreads=cfg.off_smile_spreads,
            off_smile_min_vol=cfg.off_smile_min_vol,
            off_smile_persist_s=cfg.off_smile_persist_s,
            off_since=sl.off_since,
            iv_memo=sl.iv_memo,
        )
        eb.recheck_at = inp.recheck_at
        sl.inp = inp
        sl.last_fit_wall = t0
        sl.due_wall = max(sl.due_wall, t0) + cfg.debounce_s
        reasons = set(extra)
        if inp.held:
            reasons.add("off_smile")
            self._guard(u, "off_smile_held", len(inp.held))
        for code in ("crossed", "locked", "stale"):
            if inp.excluded.get(code):
                reasons.add(
                    {"crossed": "crossed_book", "locked": "locked_book"}.get(
                        code, "stale_instrument"
                    )
                )
        q = inp.quotes
        status = "ok"
        if q is None or len(q) < cfg.min_quotes:
            self._count_cal("svi", "insufficient")
            prev = sl.est
            est = ExpiryState(
                expiry=eb.expiry,
                t=inp.t,
                forward=inp.forward,
                model="svi",
                params=prev.params if prev else {},
                atm_vol=prev.atm_vol if prev else math.nan,
                rr25=prev.rr25 if prev else math.nan,
                bf25=prev.bf25 if prev else math.nan,
                rmse_vol=prev.rmse_vol if prev else math.nan,
                n_used=0 if q is None else len(q),
                n_quotes=eb.n,
                status="insufficient",
                reasons=tuple(sorted(reasons)),
                excluded=dict(inp.excluded),
                input_time=input_time,
                fitted_at=now,
                n_fits=sl.n_fits,
            )
        else:
            from volcal.calibration.result import fit_quality
            from volcal.calibration.smile_stats import smile_stats

            t = float(q.t_slices[0])
            cold = sl.n_fits % cfg.cold_every == 0
            seed, sl.seed = sl.seed, None
            fitted = None
            if sl.svi is not None and self._background_ok():
                # the cold search (periodic, or when the warm one fails) runs on the
                # slice worker: it can take hundreds of ms (the fitter's constrained
                # fallback) and every slice behind it would wait; its result seeds the
                # next warm refit of this slice. Without a seed, or when the warm search
                # fails even from one, the cold fit runs here as before.
                fitted = warm_svi(q, seed or sl.svi, cold=False, cold_fallback=False)
                if fitted is None and seed is not None:
                    fitted = warm_svi(q, sl.svi, cold=True)
                elif seed is None and (cold or fitted is None):
                    self._reseed(u, sl, q)  # (a refit from a seed is one from a cold fit)
            else:
                fitted = warm_svi(q, sl.svi, cold=cold)
            if fitted is None:
                assert sl.svi is not None
                svi, st, warm = sl.svi, "pending", True
            else:
                svi, st, warm, _ = fitted
            # closed-form SVI pillars (same values; smile_stats when they do not apply)
            stats = svi_pillars(svi, t)
            if stats is None:
                stats = smile_stats(svi, t)
            model_iv = np.asarray(svi.implied_vol(q.k, t))
            rmse, _inside = fit_quality(q, model_iv)
            accept = True
            if st == "pending":
                accept, status = False, "held"
                reasons.add("cold_refit_pending")
                self._guard(u, "cold_refit_pending")
            elif st != "ok" and sl.svi is not None:
                accept, status = False, "held"
                reasons.add("fit_degraded")
                self._guard(u, "fit_degraded")
            elif (
                sl.est is not None
                and sl.svi is not None
                and not forced
                and abs(stats.atm_vol - sl.est.atm_vol) > cfg.param_jump_vol
            ):
                reasons.add("param_jump")
                self._guard(u, "param_jump")
                sl.held += 1
                if sl.held <= cfg.param_hold:
                    accept, status = False, "held"
                    eb.recheck_at = min(eb.recheck_at, now)  # look again on the next pass
                else:
                    sl.held = 0  # the move persisted: accept it
            else:
                sl.held = 0
            sl.n_fits += 1
            self._count_cal("svi", status if accept else "held")
            compute_ms = 1e3 * (time.perf_counter() - t0)
            if accept:
                sl.svi = svi
                params = {n: float(getattr(svi, n)) for n in SVI.param_names}
                est = ExpiryState(
                    expiry=eb.expiry,
                    t=t,
                    forward=float(q.forward_slices[0]),
                    model="svi",
                    params=params,
                    atm_vol=stats.atm_vol,
                    rr25=stats.rr25,
                    delta_convention=stats.delta,
                    bf25=stats.bf25,
                    rmse_vol=rmse,
                    n_used=len(q),
                    n_quotes=eb.n,
                    status=status,
                    reasons=tuple(sorted(reasons)),
                    excluded=dict(inp.excluded),
                    input_time=input_time,
                    fitted_at=now,
                    compute_ms=compute_ms,
                    warm=warm,
                    n_fits=sl.n_fits,
                )
            else:
                assert sl.est is not None
                est = replace(
                    sl.est,
                    status="held",
                    reasons=tuple(sorted(reasons)),
                    excluded=dict(inp.excluded),
                    input_time=input_time,
                    fitted_at=now,
                    compute_ms=compute_ms,
                    n_fits=sl.n_fits,
                )
        pub = time.perf_counter()
        if math.isfinite(last_wall) and last_wall > 0:
            est = replace(est, latency_ms=1e3 * (pub - last_wall))
            self.lat["tick_to_slice"].add(1e3 * (pub - last_wall))
        else:  # (a held state must not keep its previous fit's latency)
            est = replace(est, latency_ms=math.nan)
        if math.isfinite(first_wall):
            self.lat["oldest_tick_to_slice"].add(1e3 * (pub - first_wall))
        self.lat["slice_compute"].add(1e3 * (pub - t0))
        sl.est = est
        d = self._published(u, sl).to_dict()
        d.update(type="patch", underlying=u.name, changed_quotes=n_changed)
        return d

    def _background_ok(self) -> bool:
        if not self._running:
            return False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def _reseed(self, u: _Under, sl: _Slice, q: Any) -> None:
        """Run the cold fit of one slice on the slice worker (one per slice at a time)."""
        if sl.reseeding:
            return
        sl.reseeding = True
        task = asyncio.get_running_loop().create_task(self._reseed_job(u, sl, q))
        self._reseeds.add(task)
        task.add_done_callback(self._reseeds.discard)

    async def _reseed_job(self, u: _Under, sl: _Slice, q: Any) -> None:
        if self._slice_worker is None:
            self._slice_worker = ModelWorker(self.config.model_executor)
        try:
            svi, status = await self._slice_worker.run(cold_svi, q)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # counted and guarded; the slice keeps its warm fits
            self._count_cal("svi", "cold_failed")
            self._guard(u, "cold_refit_failed")
            u.surface.setdefault("svi", {})["message"] = f"cold refit: {type(exc).__name__}: {exc}"
            return
        finally:
            sl.reseeding = False
        if u.slices.get(sl.expiry) is not sl or status != "ok":
            return
        sl.seed = svi
        eb = u.book.expiries.get(sl.expiry)
        if eb is not None:
            eb.recheck_at = min(eb.recheck_at, self.clock.now())  # refit from the seed
            self._wake.set()

    def _count_cal(self, model: str, status: str) -> None:
        c = self.calibrations.setdefault(model, {})
        c[status] = c.get(status, 0) + 1

    def _fitted_slices(self, u: _Under) -> list[tuple[float, Any]]:
        """(expiry, slice) of the expiries with a fitted free SVI slice on enough quotes,
        in expiry order: what the eSSVI and svi_surface refreshes are fitted to."""
        return sorted(
            (
                (e, s)
                for e, s in u.slices.items()
                if s.inp is not None
                and s.inp.quotes is not None
                and len(s.inp.quotes) >= self.config.min_quotes
                and s.svi is not None
            ),
            key=lambda es: es[0],
        )

    def _essvi_inputs(self, u: _Under, now: float, fitted: set[float]) -> dict[str, Any] | None:
        order = self._fitted_slices(u)
        if not order:
            return None
        u.essvi_refreshes += 1
        return {
            "expiries": [e for e, _ in order],
            "quotes": [s.inp.quotes for _, s in order if s.inp is not None],
            "t": [(e - now) / (365.0 * 86400.0) for e, _ in order],
            "fitted": set(fitted),
            "nodes": dict(u.essvi_nodes),
            "conv": dict(u.essvi_conv),
            # the slice search enforces the exact butterfly condition and the calendar
            # conditions against the predecessor; the full check runs every 10th refresh
            "check": u.essvi_refreshes % 10 == 1 or "essvi_ok" not in u.results,
        }

    def _fit_essvi(self, u: _Under, now: float, newest_wall: float, fitted: set[float]) -> None:
        """Refresh the eSSVI surface in the engine's loop (:func:`essvi_refresh`)."""
        t0 = time.perf_counter()
        inp = self._essvi_inputs(u, now, fitted)
        if inp is None:
            return
        self._apply_essvi(u, now, newest_wall, essvi_refresh(**inp, warm=True), t0)

    def _start_essvi(self, u: _Under, now: float) -> bool:
        """Start an eSSVI refresh of the pending slices: at once in the loop
        (``inline``, or when no loop runs the engine), else a task running it in steps
        or on the surface worker (one at a time). False when a refresh is still
        running (the pending slices wait for the next)."""
        fitted, newest = set(u.essvi_pending), u.essvi_newest
        if self.config.surface_executor != "inline" and self._background_ok():
            if self._essvi_running():
                return False
            u.essvi_pending.clear()
            u.essvi_queue["taken"] += len(fitted)
            u.essvi_newest = -math.inf
            u.last_surface_wall = time.perf_counter()
            job = (
                self._fit_essvi_worker
                if self.config.surface_executor == "process"
                else self._fit_essvi_steps
            )
            self._essvi_task = asyncio.get_running_loop().create_task(
                job(u, now, newest, fitted), name="volcal-stream-essvi"
            )
            return True
        u.essvi_pending.clear()
        u.essvi_queue["taken"] += len(fitted)
        u.essvi_newest = -math.inf
        u.last_surface_wall = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            self._fit_essvi(u, now, newest, fitted)
        return True

    async def _fit_essvi_worker(
        self, u: _Under, now: float, newest_wall: float, fitted: set[float]
    ) -> None:
        t0 = time.perf_counter()
        inp = self._essvi_inputs(u, now, fitted)
        if inp is None:
            return
        if self._surface_worker is None:
            self._surface_worker = ModelWorker("process")
        try:
            res = await self._surface_worker.run(essvi_refresh, **inp)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported (count, guard, message), never silent
            self._count_cal("essvi", "failed")
            self._guard(
                u, "surface_worker_died" if isinstance(exc, ModelWorkerError) else "essvi_failed"
            )
            entry = u.surface.setdefault("essvi", {"model": "essvi"})
            entry["status"] = "held" if "essvi_model" in u.results else "failed"
            entry["message"] = f"{type(exc).__name__}: {exc}"
            self._publish(u, {"type": "surface", "underlying": u.name, **entry})
            # the slices of this refresh are refitted by the next one
            u.essvi_queue["taken"] -= len(fitted)
            u.essvi_queue["slice_updates"] -= len(fitted)
            self._request_surface(u, sorted(fitted))
            return
        self._apply_essvi(u, now, newest_wall, res, t0)
        self._wake.set()

    async def _fit_essvi_steps(
        self, u: _Under, now: float, newest_wall: float, fitted: set[float]
    ) -> None:
        """The eSSVI refresh in the loop in steps of one slice (:func:`essvi_steps`),
        run back to back for up to ~3 ms a turn while no slice refit is due; when one
        is due the refresh gives way to it (slices first; for at most 25 ms of wall
        time in all; a refresh running for 40 ms no longer gives way and takes turns
        of up to 10 ms: a backlog of slices cannot starve the surface, and a slice
        still waits at most one turn)."""
        t0 = time.perf_counter()
        inp = self._essvi_inputs(u, now, fitted)
        if inp is None:
            return
        steps = essvi_steps(**inp, warm=True)
        busy = 0.0
        deferred = 0.0
        while True:
            d0 = time.perf_counter()
            while (
                self._running
                and d0 - t0 < _SURFACE_DEADLINE_S
                and deferred + (time.perf_counter() - d0) < _DEFER_MAX_S
                and self._slices_due()
            ):
                # bounded in wall time: slices that are due all the time (a backlog)
                # must not starve the surface, and one sleep can last a long turn
                await asyncio.sleep(0.001)
            deferred += time.perf_counter() - d0
            s0 = time.perf_counter()
            done = False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                while True:  # steps back to back for up to ~3 ms while no slice is due
                    try:
                        next(steps)
                    except StopIteration as stop:
                        res: EssviRefresh = stop.value
                        done = True
                        break
                    now_w = time.perf_counter()
                    if now_w - t0 > _SURFACE_DEADLINE_S:  # late: bigger turns, no yielding
                        if now_w - s0 > _LATE_BUDGET_S:  # to due slices, but turns still
                            break
                    elif now_w - s0 > _STEP_BUDGET_S or self._slices_due():
                        break
            busy += time.perf_counter() - s0
            if done:
                break
            await asyncio.sleep(0)
        self._apply_essvi(u, now, newest_wall, res, t0, compute_s=busy)
        self._wake.set()

    def _apply_essvi(
        self,
        u: _Under,
        now: float,
        newest_wall: float,
        res: EssviRefresh,
        t0: float,
        compute_s: float | None = None,
    ) -> None:
        from volcal.models.ssvi import ESSVI

        live = set(u.slices)
        u.essvi_nodes = {e: n for e, n in res.nodes.items() if e in live}
        u.essvi_conv = {e: c for e, c in res.conv.items() if e in live}
        if res.error is not None:
            self._count_cal("essvi", "failed")
            self._guard(u, "essvi_failed")
            u.surface["essvi"] = {
                **u.surface.get("essvi", {}),
                "status": "failed",
                "message": res.error,
            }
            return
        if res.conditions_ok is not None:
            u.results["essvi_ok"] = res.conditions_ok
        status = "ok" if u.results.get("essvi_ok", True) else "degraded"
        nodes = [res.nodes[e] for e in res.expiries]
        conv = [res.conv[e] for e in res.expiries]
        pub = time.perf_counter()
        # compute: the refresh's own steps (inline), else from its start to here
        compute_ms = 1e3 * (pub - t0 if compute_s is None else compute_s)
        self._count_cal("essvi", status)
        self.lat["essvi_compute"].add(compute_ms)
        if math.isfinite(newest_wall) and newest_wall > 0:
            self.lat["tick_to_surface"].add(1e3 * (pub - newest_wall))
        u.surface["essvi"] = {
            "model": "essvi",
            "status": status,
            "params": {
                "expiry": [iso(e) for e in res.expiries],
                "t": [num(x) for x in res.t],
                "theta": [num(n[0]) for n in nodes],
                "rho": [num(n[1]) for n in nodes],
                "psi": [num(n[2]) for n in nodes],
            },
            "atm_vol": [num(c[0]) for c in conv],
            "rr25": [num(c[1]) for c in conv],
            "bf25": [num(c[2]) for c in conv],
            "rmse_vol": num(res.rmse_vol),
            "inside_spread": num(res.inside_spread),
            "n_used": res.n_used,
            "refit_from": iso(res.expiries[res.first]),
            "slices_refit": res.n_refit,
            "fitted_at": iso(now),
            "compute_ms": num(compute_ms),
        }
        u.results["essvi_model"] = ESSVI(
            t=res.t,
            theta=tuple(n[0] for n in nodes),
            rho=tuple(n[1] for n in nodes),
            psi=tuple(n[2] for n in nodes),
        )
        self._publish(u, {"type": "surface", "underlying": u.name, **u.surface["essvi"]})

    # ------------------------------------------------------------------ svi_surface
    def _svs_on_worker(self) -> bool:
        cfg = self.config
        return "svi_surface" in cfg.models and cfg.svi_surface_executor == "process"

    def _svs_running(self) -> bool:
        return self._svs_task is not None and not self._svs_task.done()

    def _svs_inputs(self, u: _Under) -> tuple[Any, Any, list[float]] | None:
        """(merged quotes of the fitted slices, the start, their expiries): the start
        is the previous arbitrage-free surface (with the free slices of the expiries it
        does not have), else the free slices themselves."""
        from volcal.market.chain import expiry_label
        from volcal.models.svi import SVISmiles

        order = self._fitted_slices(u)
        if not order:
            return None
        q = merge_quotes([s.inp.quotes for _, s in order if s.inp and s.inp.quotes])
        prev = u.results.get("svi_surface")
        if prev is not None:
            start = prev.params
            known = set(start.expiries)
            labels = [expiry_label(x) for x in q.expiries]
            with_quotes = [sl for _, sl in order if sl.inp and sl.inp.quotes]
            if len(labels) == len(with_quotes):  # q's slices are these, in this order
                # an expiry the previous surface did not have (it had too few quotes
                # then, or is new): its free slice is its start, so the surface's free
                # search is a local one there too and, when that search has no
                # butterfly-free candidate, the free slice can be kept (svi_surface
                # _keep_start) instead of the slow constrained fallback
                rows = list(zip(start.expiries, start.t, start.forwards, start.smiles, strict=True))
                rows += [
                    (lab, float(q.t_slices[i]), float(q.forward_slices[i]), sl.svi)
                    for i, (lab, sl) in enumerate(zip(labels, with_quotes, strict=True))
                    if sl.svi is not None and lab not in known
                ]
                if len(rows) > len(start.expiries):
                    rows.sort(key=lambda r: r[1])
                    start = SVISmiles(
                        expiries=tuple(r[0] for r in rows),
                        t=tuple(r[1] for r in rows),
                        forwards=tuple(r[2] for r in rows),
                        smiles=tuple(r[3] for r in rows),
                    )
        else:
            start = SVISmiles(
                expiries=tuple(expiry_label(e) for e in q.expiries),
                t=tuple(float(x) for x in q.t_slices),
                forwards=tuple(float(x) for x in q.forward_slices),
                smiles=tuple(s.svi for _, s in order if s.svi is not None),
            )
        return q, start, [e for e, _ in order]

    def _start_svs(self, u: _Under, now: float) -> bool:
        """Start a refresh of the arbitrage-free surface from the current slices: a
        task on the svi_surface worker (True), or at once in the loop (False)."""
        newest = u.svs_newest
        u.svs_pending = False
        u.svs_newest = -math.inf
        u.last_svs_wall = time.perf_counter()
        inp = self._svs_inputs(u)
        if inp is None:
            return False
        q, start, expiries = inp
        if self._svs_on_worker() and self._background_ok():
            self._svs_task = asyncio.get_running_loop().create_task(
                self._svs_job(u, now, newest, q, start, expiries), name="volcal-stream-arb"
            )
            self._svs_loop_s = time.perf_counter() - u.last_svs_wall
            return True
        t0 = time.perf_counter()
        try:
            res, on_s = timed(calibrate_quiet, q, "svi_surface", start=start)
        except Exception as exc:  # reported (count, guard, reason), never silent
            self._svs_failed(
                u, now, f"{type(exc).__name__}: {exc}", "surface_failed", newest_wall=newest
            )
            return False
        self._apply_svs(u, now, newest, res, expiries, t0, on_s)
        return False

    async def _svs_job(
        self, u: _Under, now: float, newest: float, q: Any, start: Any, expiries: list[float]
    ) -> None:
        t0 = time.perf_counter()
        if self._svs_worker is None:
            self._svs_worker = ModelWorker("process")
        try:
            res = await self._svs_worker.calibrate(q, "svi_surface", start=start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported (count, guard, reason), never silent
            died = isinstance(exc, ModelWorkerError)
            self._svs_failed(u, now, f"{type(exc).__name__}: {exc}", "surface_failed", died, newest)
            if died:  # a new worker retries these slices; a fit that raised waits for new ones
                u.svs_pending = True
            self._wake.set()
            return
        a0 = time.perf_counter()
        cpu_s = self._svs_worker.last_on_worker_cpu_s
        if math.isfinite(cpu_s):
            self.lat["svi_surface_on_worker_cpu"].add(1e3 * cpu_s)
        self._apply_svs(u, now, newest, res, expiries, t0, self._svs_worker.last_on_worker_s)
        self.lat["svi_surface_loop"].add(1e3 * (self._svs_loop_s + time.perf_counter() - a0))
        self._wake.set()

    def _svs_failed(
        self,
        u: _Under,
        now: float,
        message: str,
        reason: str,
        died: bool = False,
        newest_wall: float = math.nan,
    ) -> None:
        """No usable arbitrage-free surface: every expiry falls back to its free slice,
        with ``reason`` in its ``fit_reason`` (published at once, never a silent swap)."""
        self._count_cal("svi_surface", "failed" if reason == "surface_failed" else "uncertified")
        self._guard(u, "svi_surface_worker_died" if died else f"svi_{reason}")
        before, reason_before = u.svs_slices, u.svs_reason
        u.svs_slices = {}
        u.svs_reason = reason
        u.results.pop("svi_surface", None)
        u.surface["svi_surface"] = {
            "model": "svi_surface",
            "status": "failed",
            "reason": reason,
            "message": message,
            "fitted_at": iso(now),
            "reasons": [reason],
        }
        self._publish(u, {"type": "surface", "underlying": u.name, **u.surface["svi_surface"]})
        self._publish_expiries(u, newest_wall, before, reason_before)

    def _apply_svs(
        self,
        u: _Under,
        now: float,
        newest_wall: float,
        res: Any,
        expiries: list[float],
        t0: float,
        on_worker_s: float,
    ) -> None:
        from volcal.market.chain import expiry_label

        pub = time.perf_counter()
        compute_ms = 1e3 * (pub - t0)
        self.lat["svi_surface_compute"].add(compute_ms)
        self.lat["svi_surface_on_worker"].add(1e3 * on_worker_s)
        if math.isfinite(newest_wall) and newest_wall > 0:
            self.lat["tick_to_svi_surface"].add(1e3 * (pub - newest_wall))
        passes = res.extra.get("passes") or {}
        if not passes.get("certified", False):
            self._svs_failed(
                u,
                now,
                res.message or "not certified on the dense grid",
                "surface_uncertified",
                newest_wall=newest_wall,
            )
            return
        info = {r["expiry"]: r for r in res.extra.get("slices") or []}
        labels = [expiry_label(e) for e in res.quotes.expiries]
        live = set(u.slices)
        slices: dict[float, dict[str, Any]] = {}
        for i, e in enumerate(expiries):
            sf = res.slices[i]
            row = info.get(labels[i])
            if e not in live or row is None or not sf.params:
                continue
            p = {n: float(sf.params[n]) for n in SVI.param_names}
            how = str(row["fit"])
            slices[e] = {
                "svi": SVI(**p),
                "params": p,
                "atm_vol": float(sf.atm_vol),
                "rr25": float(sf.rr25),
                "bf25": float(sf.bf25),
                "rmse_vol": float(sf.rmse_vol),
                "constraint": {
                    # "free": the free fit was admissible as it is (not moved)
                    "moved": how != "free",
                    "how": how,
                    "rmse_free_vol": num(row["rmse_free"]),
                    "rmse_vol": num(row["rmse"]),
                    "cost_vol": num(row["rmse"] - row["rmse_free"]),
                    "status": sf.status,
                    "fitted_at": iso(now),
                },
            }
        before, reason_before = u.svs_slices, u.svs_reason
        u.svs_slices = slices
        u.svs_reason = "not_in_surface"
        u.results["svi_surface"] = res
        self._count_cal("svi_surface", res.status)
        u.surface["svi_surface"] = {
            "model": "svi_surface",
            "status": res.status,
            "message": res.message,
            "rmse_vol": num(res.rmse_vol),
            "rmse_free_vol": num(res.extra.get("rmse_free_vol")),
            "constraint_cost_vol": num(res.extra.get("constraint_cost_vol")),
            "n_constrained": int(res.extra.get("n_constrained") or 0),
            "inside_spread": num(res.inside_spread),
            "n_used": len(res.quotes),
            "certified": True,
            "fitted_expiries": [iso(e) for e in sorted(slices)],
            "fitted_at": iso(now),
            "compute_ms": num(compute_ms),
            "reasons": [],
        }
        self._maybe_store(u, "svi_surface", res)
        self._publish(u, {"type": "surface", "underlying": u.name, **u.surface["svi_surface"]})
        self._publish_expiries(u, newest_wall, before, reason_before)

    def _publish_expiries(
        self, u: _Under, newest_wall: float, before: dict[float, Any], reason_before: str
    ) -> None:
        """A patch per expiry whose published row the arbitrage-free surface changed:
        one in the new surface or in the previous one (``before``), or every row when
        the reason of the rows outside it changed (``reason_before``). An expiry outside
        both keeps its row and gets no patch. Each patch's ``latency_ms`` is measured
        from the newest tick the surface was fitted from (``newest_wall``), not the
        slice's own last refit."""
        pub = time.perf_counter()
        lat = 1e3 * (pub - newest_wall) if math.isfinite(newest_wall) else math.nan
        every = u.svs_reason != reason_before
        for e, sl in sorted(u.slices.items()):
            if sl.est is None or not (every or e in u.svs_slices or e in before):
                continue
            d = replace(self._published(u, sl), latency_ms=lat).to_dict()
            # (a slice refit's own patch has no "source")
            d.update(type="patch", underlying=u.name, changed_quotes=0, source="svi_surface")
            self._publish(u, d)

    def _published(self, u: _Under, sl: _Slice) -> ExpiryState:
        """The published state of one expiry: its slice of the arbitrage-free surface
        when there is one, else its free slice with the reason (``fit_reason``)."""
        est = sl.est
        assert est is not None
        free = {
            "model": est.model,
            "params": {k: num(v) for k, v in est.params.items()},
            "atm_vol": num(est.atm_vol),
            "rr25": num(est.rr25),
            "bf25": num(est.bf25),
            "rmse_vol": num(est.rmse_vol),
            "status": est.status,
        }
        if "svi_surface" not in self.config.models:
            return replace(est, fit="free", fit_reason="surface_off", free=free)
        info = u.svs_slices.get(sl.expiry)
        if info is None:
            return replace(est, fit="free", fit_reason=u.svs_reason, free=free)
        return replace(
            est,
            model="svi_surface",
            params=dict(info["params"]),
            atm_vol=info["atm_vol"],
            rr25=info["rr25"],
            bf25=info["bf25"],
            rmse_vol=info["rmse_vol"],
            fit="surface",
            fit_reason=None,
            free=free,
            constraint=dict(info["constraint"]),
        )

    async def _fit_models(self, force: bool = False) -> None:
        cfg = self.config
        models = [m for m in cfg.models if m not in ("svi", "essvi", "svi_surface")]
        for u in self._u.values():
            if not (u.changed_since_model or force) or not models:
                u.last_model_wall = time.perf_counter()
                continue
            u.changed_since_model = False
            u.last_model_wall = time.perf_counter()
            sets = [
                s.inp.quotes
                for s in u.slices.values()
                if s.inp is not None
                and s.inp.quotes is not None
                and len(s.inp.quotes) >= cfg.min_quotes
                and s.inp.t >= cfg.model_min_days / 365.0
            ]
            if not sets:
                continue
            q = merge_quotes(sets)
            newest = max(
                (float(np.nanmax(eb.col("wall_ts"))) for eb in u.book.expiries.values() if eb.n),
                default=math.nan,
            )
            for m in models:
                await self._fit_model(u, m, q, newest)

    async def _fit_model(self, u: _Under, model: str, q: Any, newest_wall: float) -> None:
        cfg = self.config
        prior = u.results.get(model)
        warm = prior is not None
        t0 = time.perf_counter()
        try:
            # a CalibrationWarning (status other than ok) is carried by the result's
            # status; where warnings are errors (thread worker) it arrives here and
            # counts as a failure, as does any error of the refit or a dead worker
            res = await self._model_worker().calibrate(
                q,
                model,
                prior=prior,
                strength=cfg.model_strength if prior is not None else 0.0,
                # a cold start runs the global stage: give it room, once
                max_time=cfg.model_max_time if warm else max(cfg.model_max_time, 20.0),
            )
        except asyncio.CancelledError:
            raise
        except (Exception, Warning) as exc:
            self._count_cal(model, "failed")
            self._guard(
                u, "model_worker_died" if isinstance(exc, ModelWorkerError) else f"{model}_failed"
            )
            entry = u.surface.setdefault(model, {"model": model})
            # the last good fit (if any) stays published, marked held
            entry["status"] = "held" if model in u.results else "failed"
            entry["message"] = f"{type(exc).__name__}: {exc}"
            entry["reasons"] = ["model_failed"]
            self._publish(u, {"type": "surface", "underlying": u.name, **entry})
            return
        pub = time.perf_counter()
        self.lat["model_compute"].add(1e3 * (pub - t0))
        if warm:
            self.lat["model_compute_warm"].add(1e3 * (pub - t0))
            # the refit itself on the worker (the rest: shipping and waiting for a core)
            self.lat["model_on_worker_warm"].add(1e3 * self._model_worker().last_on_worker_s)
        if math.isfinite(newest_wall):
            self.lat["tick_to_model"].add(1e3 * (pub - newest_wall))
        reasons: list[str] = []
        keep_old = (
            prior is not None and res.status not in ("ok",) and not (res.rmse_vol <= prior.rmse_vol)
        )
        self._count_cal(model, res.status if not keep_old else "held")
        if keep_old:
            reasons.append("fit_degraded")
            self._guard(u, "fit_degraded")
            u.surface[model] = {**u.surface.get(model, {}), "status": "held", "reasons": reasons}
        else:
            u.results[model] = res
            u.surface[model] = {
                "model": model,
                "status": res.status,
                "params": {k: num(v) for k, v in res.params.to_dict().items() if num(v) is not None}
                if hasattr(res.params, "to_dict")
                else {},
                "rmse_vol": num(res.rmse_vol),
                "inside_spread": num(res.inside_spread),
                "n_used": len(q),
                "warm": warm,
                "fitted_at": iso(self.clock.now()),
                "compute_ms": num(1e3 * (pub - t0)),
                "reasons": reasons,
            }
            self._maybe_store(u, model, res)
        self._publish(u, {"type": "surface", "underlying": u.name, **u.surface[model]})

    # ------------------------------------------------------------------ store
    def _maybe_store(self, u: _Under, model: str, result: Any = None) -> None:
        sink = self.config.sink
        if sink is None:
            return
        wall = time.perf_counter()
        if wall - u.last_store_wall.get(model, -math.inf) < self.config.store_interval_s:
            return
        u.last_store_wall[model] = wall
        try:
            if result is None:
                result = self._svi_result(u)
            if result is None:
                return
            chain = u.book.option_chain(self.clock.now())
        except (ValueError, ArithmeticError):
            self._guard(u, "store_skipped")
            return
        sink.submit(
            CalibrationRecord(
                underlying=u.name,
                model=model,
                chain=chain,
                result=result,
                settings={"engine": "volcal.stream", **self._settings()},
            )
        )

    def _settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "debounce_s": c.debounce_s,
            "models": list(c.models),
            "model_strength": c.model_strength,
            "stale_quote_s": c.stale_quote_s,
        }

    def _svi_result(self, u: _Under) -> Any:
        """The per-expiry SVI fits of ``u`` as one :class:`CalibrationResult`."""
        from volcal.calibration.result import (
            CalibrationResult,
            expiry_label,
            fit_quality,
            slice_fits,
        )
        from volcal.models.svi import SVISmiles

        sl = sorted(
            (e, s)
            for e, s in u.slices.items()
            if s.svi is not None
            and s.inp is not None
            and s.inp.quotes is not None
            and len(s.inp.quotes) >= self.config.min_quotes
        )
        if not sl:
            return None
        q = merge_quotes([s.inp.quotes for _, s in sl if s.inp and s.inp.quotes])
        smiles = [s.svi for _, s in sl if s.svi is not None]
        model_iv = np.empty(len(q))
        for i, sm in enumerate(smiles):
            m = q.slice_index == i
            model_iv[m] = sm.implied_vol(q.k[m], q.t_slices[i])
        rmse, inside = fit_quality(q, model_iv)
        ests = [s.est for _, s in sl]
        slices = slice_fits(
            q,
            model_iv,
            params=[{n: float(getattr(sm, n)) for n in SVI.param_names} for sm in smiles],
            atm_vol=[e.atm_vol if e else math.nan for e in ests],
            rr25=[e.rr25 if e else math.nan for e in ests],
            bf25=[e.bf25 if e else math.nan for e in ests],
            status=[e.status if e else "ok" for e in ests],
        )
        params = SVISmiles(
            expiries=tuple(expiry_label(e) for e in q.expiries),
            t=tuple(float(x) for x in q.t_slices),
            forwards=tuple(float(x) for x in q.forward_slices),
            smiles=tuple(smiles),
        )
        return CalibrationResult(
            model="svi",
            params=params,
            start=None,
            quotes=q,
            model_iv=model_iv,
            weights=q.weights("spread"),
            residuals=model_iv - q.iv_mid,
            slices=slices,
            rmse_vol=rmse,
            inside_spread=inside,
            nfev=0,
            elapsed_s=0.0,
            status="ok",
            message="",
            warnings=(),
            extra={"engine": "volcal.stream", "warm_start": True},
        )

    def _recover(self) -> None:
        """Seed the state from the sink's last stored fits (a restart)."""
        sink = self.config.sink
        if sink is None:
            return
        for u in self._u.values():
            try:
                last = sink.latest(u.name, "svi")
            except Exception:
                self._guard(u, "store_unreadable")
                continue
            if not last:
                continue
            snap = last.get("snapshot") or last.get("snapshot_time")
            try:
                import pandas as pd

                t_snap = pd.Timestamp(snap).timestamp() if snap is not None else math.nan
            except (ValueError, TypeError):
                t_snap = math.nan
            for s in last.get("slices") or []:
                try:
                    import pandas as pd

                    e = pd.Timestamp(s["expiry"]).timestamp()
                    raw = s.get("params") or {}
                    if isinstance(raw, str):
                        import json

                        raw = json.loads(raw)
                    params = {k: float(v) for k, v in raw.items()}
                    svi = SVI(**params) if params else None
                except (KeyError, ValueError, TypeError, AttributeError):
                    continue
                sl = u.slices[e] = _Slice(e, svi=svi)
                sl.est = ExpiryState(
                    expiry=e,
                    t=float(s.get("t") or math.nan),
                    forward=float(s.get("forward") or math.nan),
                    model="svi",
                    params=params,
                    atm_vol=_f(s.get("atm_vol")),
                    rr25=_f(s.get("rr25")),
                    bf25=_f(s.get("bf25")),
                    rmse_vol=_f(s.get("rmse_vol")),
                    n_used=int(s.get("n_used") or 0),
                    n_quotes=0,
                    status="recovered",
                    reasons=("recovered",),
                    input_time=t_snap,
                    fitted_at=t_snap,
                )
            if u.slices:
                u.reasons.add("recovered")
                u.book.last_time = t_snap
                self._guard(u, "recovered")

    # ------------------------------------------------------------------ views
    def state(self, underlying: str) -> SurfaceState:
        """The frozen state of one underlying now."""
        u = self._get(underlying)
        now = self.clock.now()
        ests = tuple(
            self._published(u, s) for _, s in sorted(u.slices.items()) if s.est is not None
        )
        return SurfaceState(
            underlying=u.name,
            snapshot_time=u.book.last_time,
            now=now,
            stale=self.stale or ("recovered" in u.reasons and u.quotes_applied == 0),
            index_price=u.book.index_price,
            expiries=ests,
            surface={k: dict(v) for k, v in u.surface.items()},
            guards=dict(u.guards),
            reasons=tuple(sorted(u.reasons)),
            latency={k: v.to_dict() for k, v in self.lat.items()},
            seq=u.seq,
            n_instruments=u.book.n_instruments,
            synthetic_share=u.synthetic / u.quotes_applied if u.quotes_applied else 0.0,
        )

    def iv(
        self, underlying: str, expiry: str, strikes: Any, fit: str = "surface"
    ) -> dict[str, Any]:
        """Implied vols of the live smile of ``expiry`` (ISO time or its date,
        ``"2026-03-27"``) at ``strikes`` (in the underlying's units); vols as decimals.

        ``fit="surface"`` (default): the expiry's slice of the arbitrage-free surface
        (``svi_surface``), or its free slice when there is none (``fit`` and
        ``fit_reason`` of the answer say which and why); ``fit="free"``: the free SVI
        slice. Raises ParameterError for an unknown underlying, expiry or ``fit``, or a
        strike that is not a finite positive number.
        """
        from volcal.stream.state import iso as _iso

        if fit not in ("surface", "free"):
            raise ParameterError(f"fit must be 'surface' or 'free', got {fit!r}")
        u = self._get(underlying)
        label = str(expiry)
        sl = next(
            (
                s
                for e, s in sorted(u.slices.items())
                if s.svi is not None and (_iso(e) or "")[: len(label)] == label
            ),
            None,
        )
        if sl is None or sl.est is None or sl.svi is None:
            have = ", ".join((_iso(e) or "")[:10] for e, s in sorted(u.slices.items()) if s.svi)
            raise ParameterError(f"no fitted {u.name} expiry {label!r} (have: {have or 'none'})")
        try:
            k_arr = np.atleast_1d(np.asarray(strikes, dtype=np.float64))
        except (TypeError, ValueError):
            raise ParameterError(f"strikes must be numbers, got {strikes!r}") from None
        if k_arr.size == 0 or not np.all(np.isfinite(k_arr) & (k_arr > 0)):
            raise ParameterError("strikes must be finite numbers > 0")
        est = sl.est
        t = (sl.expiry - self.clock.now()) / (365.0 * 86400.0)
        if not t > 0:
            raise ParameterError(f"{u.name} expiry {label!r} has expired")
        pub = self._published(u, sl)
        smile = sl.svi
        if fit == "surface" and pub.fit == "surface":
            smile = u.svs_slices[sl.expiry]["svi"]
        else:  # the free slice: asked for, or the row is its free slice (and says why)
            why = "requested" if pub.fit == "surface" else pub.fit_reason
            pub = replace(pub, fit="free", model=est.model, fit_reason=why)
        vols = np.asarray(smile.implied_vol(np.log(k_arr / est.forward), t))
        return {
            "underlying": u.name,
            "expiry": _iso(sl.expiry),
            "model": pub.model,
            "fit": pub.fit,
            "fit_reason": pub.fit_reason,
            "t": t,
            "forward": est.forward,
            "strikes": [float(x) for x in k_arr],
            "iv": [num(v) for v in vols],
            "status": est.status,
            "stale": self.stale,
        }

    def book(self, underlying: str) -> LiveBook:
        """The live book of one underlying (read it only from the engine's loop)."""
        return self._get(underlying).book

    def chain(self, underlying: str, expiries: Any = None) -> Any:
        """An ``OptionChain`` of the live quotes now (only the expiries asked for)."""
        return self._get(underlying).book.option_chain(self.clock.now(), expiries)

    def flagged(self, underlying: str) -> dict[str, str]:
        """Quotes kept out of the last fits, with their reason (instrument -> code)."""
        out: dict[str, str] = {}
        for s in self._get(underlying).slices.values():
            if s.inp is not None:
                out.update(s.inp.flagged)
        return out

    def _get(self, underlying: str) -> _Under:
        try:
            return self._u[underlying.upper()]
        except KeyError:
            raise ParameterError(
                f"unknown underlying {underlying!r}: the engine follows {', '.join(self._u)}"
            ) from None

    def metrics(self) -> dict[str, Any]:
        """Counters and latency histograms (JSON-safe).

        ``messages.received == messages.applied_total + sum(messages.dropped.values())``
        holds at every moment.
        """
        sink = self.config.sink
        src = getattr(self.source, "metrics", None)
        return {
            "messages": {
                "received": self.received,
                "applied_total": sum(self.applied.values()),
                "applied": dict(self.applied),
                "dropped": dict(self.dropped),
            },
            "snapshot_quotes": dict(self.snapshot_quotes),
            "calibrations": {k: dict(v) for k, v in self.calibrations.items()},
            "latency_ms": {k: v.to_dict() for k, v in self.lat.items()},
            "guards": {u.name: dict(u.guards) for u in self._u.values()},
            "stale": self.stale,
            "workers": dict(self.workers),
            "subscribers": sum(len(u.subscribers) for u in self._u.values()),
            "source": src() if callable(src) else {},
            "sink": sink.metrics() if sink is not None else {},
            "model_worker": self._worker.to_dict() if self._worker is not None else {},
            "slice_worker": (
                self._slice_worker.to_dict() if self._slice_worker is not None else {}
            ),
            "surface_worker": (
                self._surface_worker.to_dict() if self._surface_worker is not None else {}
            ),
            "svi_surface_worker": (
                self._svs_worker.to_dict() if self._svs_worker is not None else {}
            ),
            "surface_queue": {
                u.name: {**u.essvi_queue, "pending": len(u.essvi_pending)} for u in self._u.values()
            },
            "uptime_s": time.perf_counter() - self._started_wall,
        }

    # ------------------------------------------------------------------ publishing
    def _publish(self, u: _Under, patch: dict[str, Any]) -> None:
        u.seq += 1
        if not u.subscribers:
            return
        patch = {**patch, "seq": u.seq, "underlying": u.name}
        for q in list(u.subscribers):
            try:
                q.put_nowait(patch)
            except asyncio.QueueFull:
                # conflate: a subscriber this far behind gets the whole state again
                while not q.empty():
                    q.get_nowait()
                full = self.state(u.name).to_dict()
                full.update(type="state", conflated=True)
                q.put_nowait(full)
                self._guard(u, "subscriber_conflated")

    async def subscribe(self, underlying: str) -> AsyncIterator[dict[str, Any]]:
        """Yield the full state (``type="state"``) then every patch of ``underlying``
        (``type`` ``patch`` per expiry, ``surface`` per surface model, ``status`` on a
        staleness change, ``end`` when the engine stops)."""
        u = self._get(underlying)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.config.queue_size)
        u.subscribers.add(q)
        try:
            first = self.state(u.name).to_dict()
            first["type"] = "state"
            yield first
            while True:
                item = await q.get()
                yield item
                if item.get("type") == "end":
                    return
        finally:
            u.subscribers.discard(q)


def _answered_tick(u: _Under, eb: ExpiryBook, forced: bool) -> float:
    """Wall time of the newest tick a refit of ``eb`` now answers (read before the
    refit clears ``eb.dirty``): the expiry's own newest change, or for a forced pass
    (index jump: every expiry is refitted, changed or not) the index tick if newer; nan
    for a refit on the clock alone (a held quote's time is up, a cold seed arrived,
    an admin recalibration): it answers no tick, so it has no tick latency, not the
    age of the expiry's last change. The surfaces refreshed from such refits likewise."""
    if forced:
        return max(eb.last_dirty_wall, u.force_wall) if eb.dirty else u.force_wall
    return eb.last_dirty_wall if eb.dirty else math.nan


def _put_latest(q: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
    try:
        q.put_nowait(item)
    except asyncio.QueueFull:
        q.get_nowait()
        q.put_nowait(item)


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
