"""Streaming calibration: a live Deribit feed (or a replay) in, a warm-started surface out.

Quick start::

    import asyncio
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine

    async def main():
        src = ReplaySource(["snapshots/"], currency="BTC", speed=0)
        engine = StreamEngine(src, StreamConfig(underlyings=("BTC",)))
        await engine.run()                      # a finite replay: returns at its end
        print(engine.state("BTC").summary())

    asyncio.run(main())

API (stable)
------------
``engine = StreamEngine(source, config)``
    ``source``: :class:`DeribitSource` (live), :class:`ReplaySource` (log or snapshot
    folder) or anything with ``messages()`` -> async iterator of ``(recv_time, frame)``.
    ``config``: :class:`StreamConfig` (debounce, staleness, guard thresholds, models and
    cadences, ``clock=`` to inject a clock such as :class:`ManualClock`, ``sink=`` for the
    calibration store).
``await engine.run()`` / ``engine.start()`` + ``await engine.stop()``
    Run inside an asyncio loop; ``run()`` returns when a finite source is exhausted
    and its pending fits are done (or after ``stop()``).
``engine.handle(frame, recv_time)``
    Apply one frame synchronously (what the ingest task does for each frame).
``engine.state(underlying) -> SurfaceState``
    Frozen; ``.to_dict()`` gives ``snapshot_time`` (ISO UTC of the newest exchange
    time applied), ``stale``, ``age_s``, ``index_price``, ``expiries`` (per expiry:
    ``expiry``, ``t``, ``forward``, ``model``, ``params``, ``atm_vol``, ``rr25``, ``bf25``,
    ``rmse_vol``, ``n_used``, ``status``, ``reasons``, ``excluded``, ``input_time``,
    ``latency_ms``, ``compute_ms``, ``fit``, ``fit_reason``, ``free``, ``constraint``:
    see "The published surface" below), ``surface`` (``svi_surface``, ``essvi``,
    ``heston``, ...: params, rmse, status), ``guards`` (event counts by reason code), ``reasons`` (active now),
    ``latency`` (percentiles and histograms), ``seq``, ``synthetic_share``.
``engine.subscribe(underlying)``
    Async iterator: the full state first (``type="state"``), then patches:
    ``type="patch"`` per changed expiry (the expiry dict plus ``changed_quotes``),
    ``type="surface"`` per surface-model refit, ``type="status"`` on a staleness
    change, ``type="end"`` when the engine stops. A subscriber that falls
    ``queue_size`` behind gets the full state again (``conflated=True``).
``engine.metrics() -> dict``
    ``messages`` (``received``, ``applied`` by kind, ``dropped`` by reason; received =
    applied + dropped, always), ``snapshot_quotes``, ``calibrations`` by model and
    status, ``latency_ms`` histograms (``tick_to_slice``, ``oldest_tick_to_slice``,
    ``slice_compute``, ``tick_to_surface``, ``essvi_compute``, ``model_compute``,
    ``tick_to_model``, ``tick_to_svi_surface``, ``svi_surface_compute``,
    ``svi_surface_on_worker``, ``svi_surface_loop``), ``guards``, ``workers`` (whether
    the worker processes were ready before the source was read: ``ready``,
    ``waited_s``, ``not_ready``), ``source`` and ``sink`` counters.

    A patch's ``latency_ms`` runs from the newest tick it answers to its publication:
    for a slice refit its expiry's newest change (in a forced pass after an index jump,
    the index tick if newer); for the rows republished after an arbitrage-free surface
    refresh (``source="svi_surface"``, only the rows it changed) the newest tick that
    surface was fitted from; none (null) for a refit on the clock alone (a held
    quote's time up, a cold seed, ``recalibrate()``).
``engine.iv(underlying, expiry, strikes, fit="surface") -> dict``
    Implied vols (decimal) of an expiry (ISO time or date): its slice of the
    arbitrage-free surface, or (``fit="free"``, or when there is no surface) its free
    SVI slice; ``fit`` and ``fit_reason`` of the answer say which.
``engine.chain(underlying, expiries=None) -> OptionChain``; ``engine.flagged(underlying)``
(quotes kept out of the last fits, with the reason); ``engine.recalibrate(underlying=None)``.

The published surface
---------------------
With ``"svi_surface"`` in ``models`` (the default), every expiry row's ``model``,
``params``, ``atm_vol``, ``rr25``, ``bf25`` and ``rmse_vol`` are its slice of the
arbitrage-free SVI surface (:mod:`volcal.calibration.svi_surface`: butterfly and
calendar conditions on a dense grid), refreshed from the current free slices after SVI
passes (at most every ``surface_interval_s``, on its own worker process, warm-started at
the previous surface; ``tick_to_svi_surface`` measures it): ``fit="surface"``,
``model="svi_surface"``. The free slice stays in the row's ``free`` block (model
``svi``, params, atm_vol, rr25, bf25, rmse_vol, status); ``constraint`` says what the
conditions did to the slice (``moved``, ``how``, ``rmse_free_vol``, ``rmse_vol``,
``cost_vol`` in vol points, ``status``, ``fitted_at``). When there is no usable surface
the row is its free slice, said so: ``fit="free"`` and ``fit_reason`` one of
``surface_pending`` (no surface fit yet), ``surface_failed`` (the last fit raised or its
worker died: guard ``svi_surface_failed`` / ``svi_surface_worker_died``, message on
``surface["svi_surface"]``), ``surface_uncertified`` (not certified on the dense grid:
guard ``svi_surface_uncertified``), ``not_in_surface`` (the expiry came after the last
fit), ``surface_off`` (the model is not configured). Patches carry the same rows (a
refresh publishes one per expiry); ``volcal.stream.state.free_view(row)`` turns a row
into its free slice (what ``fit=free`` of ``volcal serve`` returns).

Reason codes
------------
Dropped messages: ``malformed``, ``unknown_channel``, ``unknown_instrument``,
``rpc_error``, ``out_of_order``, ``duplicate``, ``expired_instrument``,
``other_underlying``. Guards (state and updates): ``stale_feed``, ``feed_recovered``,
``stale_instrument``, ``crossed_book``, ``locked_book``, ``off_smile`` (held quotes,
counted as ``off_smile_held``), ``index_jump``, ``param_jump``, ``fit_degraded``,
``recovered`` (state seeded from the store), ``expired_dropped``,
``subscriber_conflated``, ``cold_refit_pending`` (a slice held while its cold fit runs
on the slice worker), ``cold_refit_failed``, ``model_worker_died`` /
``<model>_failed`` (a Fourier refit that raised or whose worker process died: counted
``failed``, its message on the model's surface entry), ``surface_worker_died`` /
``essvi_failed``. Quotes kept out of a fit carry the codes of
``volcal.clean`` (``missing_bid``, ``wide_spread``, ``itm``, ...).

Where the work runs
-------------------
The engine's loop ingests, re-cleans the changed expiries and refits their SVI slices
warm (about 1.5 ms per slice; the 25-delta pillars in closed form), and refreshes eSSVI.
Three jobs that take tens to hundreds of milliseconds run elsewhere
(:mod:`volcal.stream.worker`), so no slice waits behind them: the Fourier refits
(``model_executor="process"``, default: one worker process), a slice's cold SVI fit
(periodic every ``cold_every`` fits, or when the warm search fails: it runs on a slice
worker and seeds the slice's next warm refit, the last fit held meanwhile) and, with
``surface_executor="process"``, the eSSVI refresh (default in the loop: on a loaded
2-core machine a third busy process cost the loop more than it saved). The svi_surface
refresh (15-25 ms for a whole chain, two to three times an eSSVI refresh) runs by
default on a worker process of its own (``svi_surface_executor="process"``): the loop
only builds its inputs and takes in its result (``svi_surface_loop``).

Timing
------
Market time (ages, staleness, ``t``) is the engine's :class:`Clock`; the debounce and
model cadences are wall time. Latencies are wall time from the arrival of the newest
tick in a fit to its publication (``tick_to_slice``) and from the oldest tick waiting
for it (``oldest_tick_to_slice``, which includes the debounce).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "StreamEngine": "volcal.stream.engine",
    "StreamConfig": "volcal.stream.engine",
    "SurfaceState": "volcal.stream.state",
    "ExpiryState": "volcal.stream.state",
    "DeribitSource": "volcal.stream.sources",
    "ReplaySource": "volcal.stream.sources",
    "record": "volcal.stream.sources",
    "snapshot_frames": "volcal.stream.sources",
    "Clock": "volcal.stream.clock",
    "SystemClock": "volcal.stream.clock",
    "ManualClock": "volcal.stream.clock",
    "ReplayClock": "volcal.stream.clock",
    "CalibrationRecord": "volcal.stream.sink",
    "CalibrationSink": "volcal.stream.sink",
    "ThreadedSink": "volcal.stream.sink",
    "JsonlWriter": "volcal.stream.sink",
    "StoreWriter": "volcal.stream.sink",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'volcal.stream' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)


def __dir__() -> list[str]:
    return __all__
