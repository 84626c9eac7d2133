"""Where the engine's Fourier refits (Heston, Bates, ...) run: a worker process or thread.

Why a process by default
------------------------
A warm Heston refit costs about 20 ms of compute on a quiet core, most of it in
compiled kernels that hold the GIL. On a worker *thread* the engine's event loop (the
ingest of 2,000 quote updates per second and the SVI slice refits) waits behind it for
the GIL: in ``benchmarks/stream.py`` the slice latency's tail was the Heston refit's
duration. A worker *process* (spawned once, kept for the engine's life) has its own
interpreter and, with two cores, its own core: the loop only pickles the merged quotes
and the prior fit (a few hundred quotes, well under a millisecond) and awaits the
result. The worker imports the calibration stack once when it starts (the compiled
kernels load from numba's on-disk cache), so a refit never pays imports.

Failures are reported, never silent: a refit that raises is returned to the engine as
the exception (``ModelWorkerError`` when the worker process died: killed, out of
memory, a crash in native code), which counts it as a ``failed`` calibration of that
model, sets a guard and keeps the message on the model's surface entry; a dead worker
process is replaced at the next refit.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from concurrent.futures import Executor
from typing import Any

from volcal.errors import CalibrationWarning

__all__ = [
    "ModelWorker",
    "ModelWorkerError",
    "calibrate_quiet",
    "timed",
    "timed_cpu",
    "warm_svi_surface_worker",
    "warm_worker",
]

EXECUTORS = ("process", "thread")
#: niceness added to the svi_surface worker process: where cores are contended the
#: engine's loop (ingest, slice refits) gets the CPU first and the surface waits; with a
#: core of its own (a quiet 2-core machine) it changes nothing
SVI_SURFACE_NICE = 10


class ModelWorkerError(RuntimeError):
    """The worker process of the Fourier refits died (its refit is lost; the next one
    starts a new worker)."""


def calibrate_quiet(*args: Any, **kwargs: Any) -> Any:
    """``calibrate`` in the model worker: a fit's status travels in its result, so its
    CalibrationWarning is not printed (filter scoped to the call)."""
    from volcal.calibration import calibrate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return calibrate(*args, **kwargs)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), wall seconds it took)``, measured where it runs (the
    worker): the engine compares it with the round trip to see the queueing."""
    import time

    t0 = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t0


def timed_cpu(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """``(fn(*args, **kwargs), wall seconds, CPU seconds of the calling thread)``,
    measured where it runs: the CPU is what the fit itself costs, whatever the wait
    for a core (a shared machine, a niced worker) adds to the wall time."""
    import time

    t0, c0 = time.perf_counter(), time.thread_time()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t0, time.thread_time() - c0


def warm_worker() -> int:
    """First job of a worker process: import the calibration stack (returns its pid)."""
    import os

    import volcal.calibration
    import volcal.pricing  # noqa: F401

    return os.getpid()


def warm_svi_surface_worker() -> int:
    """First job of the svi_surface worker process: import the calibration stack and
    run one svi_surface fit on a small made-up two-expiry quote set (never published),
    so the compiled kernels are loaded from numba's cache at start and not by the first
    live refresh (about 2 s on a loaded machine). The process first lowers its own
    priority by :data:`SVI_SURFACE_NICE` (where the OS has ``nice``). Returns the pid."""
    import os

    if hasattr(os, "nice"):
        os.nice(SVI_SURFACE_NICE)

    import numpy as np

    from volcal.calibration.quotes import QuoteSet, black_vega_fwd
    from volcal.models.svi import SVI

    k1 = np.linspace(-0.3, 0.3, 13)
    k = np.concatenate([k1, k1])
    t = np.repeat([0.05, 0.1], k1.size)
    # the second smile's flatter wings cross below the first's: the calendar
    # constraints bind, so the constrained search's kernels load too
    w = np.concatenate(
        [
            SVI(a=0.002, b=0.02, rho=-0.3, m=0.0, sigma=0.1).total_variance(k1),
            SVI(a=0.0045, b=0.005, rho=-0.3, m=0.0, sigma=0.1).total_variance(k1),
        ]
    )
    iv = np.sqrt(np.asarray(w) / t)
    n = k.size
    sl = np.repeat([0, 1], k1.size).astype(np.int64)
    exp_ns = np.array([int(4.3e9 * 1e9), int(4.4e9 * 1e9)], dtype=np.int64)
    nan = np.full(n, np.nan)
    q = QuoteSet(
        row=np.arange(n, dtype=np.int64),
        instrument=np.array([f"warm-{i}" for i in range(n)], dtype=object),
        expiry=exp_ns[sl].view("datetime64[ns]"),
        t=t,
        forward=np.full(n, 100.0),
        strike=100.0 * np.exp(k),
        k=k,
        is_call=k >= 0,
        bid=nan,
        ask=nan,
        mid=nan,
        iv_bid=iv - 0.005,
        iv_ask=iv + 0.005,
        iv_mid=iv,
        vega=black_vega_fwd(k, t, iv),
        open_interest=np.zeros(n),
        slice_index=sl,
        expiries=exp_ns.view("datetime64[ns]"),
        t_slices=np.array([0.05, 0.1]),
        forward_slices=np.array([100.0, 100.0]),
    )
    calibrate_quiet(q, "svi_surface")
    return os.getpid()


class ModelWorker:
    """One worker (process or thread) for an engine's Fourier refits.

    Parameters
    ----------
    kind : {"process", "thread"}
        ``"process"``: one spawned worker process (default of the engine);
        ``"thread"``: one worker thread (shares the GIL with the loop).
    """

    def __init__(self, kind: str = "process") -> None:
        if kind not in EXECUTORS:
            from volcal.errors import ParameterError

            raise ParameterError(f"model_executor must be 'thread' or 'process', got {kind!r}")
        self.kind = kind
        self._pool: Executor | None = None
        self.pid: int | None = None
        self.started = 0  # worker processes started (more than 1: a worker died)
        self.last_on_worker_s = math.nan
        self.last_on_worker_cpu_s = math.nan
        self.failures = 0
        self.warm_s = math.nan  # wall seconds of the warm-up (spawn, imports, kernels)

    def _ensure(self) -> Executor:
        if self._pool is None:
            if self.kind == "process":
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            else:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(1, thread_name_prefix="volcal-stream-model")
            self.started += 1
        return self._pool

    async def warm(self, job: Any = None) -> None:
        """Start the worker and import the calibration stack in it (no refit; ``job``:
        another module-level warm-up returning the pid, e.g.
        :func:`warm_svi_surface_worker`)."""
        if self.kind != "process":
            return
        import time

        t0 = time.perf_counter()
        try:
            self.pid = await self._run(job or warm_worker)
            self.warm_s = time.perf_counter() - t0
        except ModelWorkerError:
            pass  # reported by the first refit, which starts a new worker

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on the worker (a picklable module-level function)."""
        return await self._run(fn, *args, **kwargs)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from concurrent.futures.process import BrokenProcessPool
        from functools import partial

        pool = self._ensure()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, partial(fn, *args, **kwargs))
        except BrokenProcessPool as exc:
            self.failures += 1
            self._pool = None
            self.pid = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise ModelWorkerError(
                f"the model worker process died ({exc or 'terminated abruptly'}); "
                "a new one starts at the next refit"
            ) from None

    async def calibrate(self, *args: Any, **kwargs: Any) -> Any:
        """``volcal.calibrate(*args, **kwargs)`` on the worker (awaitable); the wall
        seconds the refit took on the worker itself are kept in ``last_on_worker_s``
        (the rest of the round trip: shipping, and waiting for a core), its CPU
        seconds there in ``last_on_worker_cpu_s``."""
        if self.kind == "process":
            fn: Any = calibrate_quiet
        else:
            from volcal.calibration import calibrate

            fn = calibrate
        self.last_on_worker_s = self.last_on_worker_cpu_s = math.nan
        res, self.last_on_worker_s, self.last_on_worker_cpu_s = await self._run(
            timed_cpu, fn, *args, **kwargs
        )
        return res

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self.pid = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "pid": self.pid,
            "started": self.started,
            "failures": self.failures,
            "warm_s": self.warm_s if math.isfinite(self.warm_s) else None,
        }
