"""Frozen views of the engine: :class:`SurfaceState` and :class:`ExpiryState`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

__all__ = ["FIT_REASONS", "ExpiryState", "LatencyStats", "SurfaceState", "free_view", "iso", "num"]

#: why an expiry's published values are its free slice and not the arbitrage-free
#: surface (``ExpiryState.fit_reason``; None when they are the surface's)
FIT_REASONS = {
    "surface_off": "the engine does not fit the svi_surface model (models)",
    "surface_pending": "no svi_surface fit yet (the first one is running)",
    "surface_failed": "the last svi_surface fit failed (see surface.svi_surface.message)",
    "surface_uncertified": "the last svi_surface fit could not be certified free of "
    "arbitrage on the dense grid",
    "not_in_surface": "the expiry was not in the last svi_surface fit (new, or too few "
    "strikes); it is in the next one",
}


def free_view(row: dict[str, Any]) -> dict[str, Any]:
    """An expiry row of :meth:`ExpiryState.to_dict` with its free slice's values on top
    (``fit="free"``): what ``fit=free`` serves. A row that is its free slice already
    (no ``free`` block, or ``fit="free"``) is returned as it is."""
    free = row.get("free")
    if row.get("fit") == "free" or not isinstance(free, dict):
        return row
    out = {k: v for k, v in row.items() if k != "free"}
    out.update(free)
    out.update(fit="free", fit_reason="requested")
    return out


def num(x: Any) -> float | None:
    """A JSON-safe float (None for NaN/inf/None)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def iso(t: float | None) -> str | None:
    """UTC epoch seconds as ISO 8601 (None when unknown)."""
    if t is None or not math.isfinite(t):
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


@dataclass(frozen=True)
class ExpiryState:
    """The published fit of one expiry.

    The model fields (``model``, ``params``, ``atm_vol``, ``rr25``, ``bf25``,
    ``rmse_vol``) are the arbitrage-free ``svi_surface`` slice of this expiry when
    ``fit == "surface"``, else its free SVI slice (``fit == "free"``, ``fit_reason`` a
    code of :data:`FIT_REASONS` saying why). ``free`` always holds the free slice
    (model, params, atm_vol, rr25, bf25, rmse_vol, status); ``constraint`` what the
    calendar and butterfly conditions did to the slice: ``moved`` (False: the free fit
    was admissible as it is), ``how`` (``free``, ``tamed``, ``constrained``,
    ``fallback``), ``rmse_free_vol`` / ``rmse_vol`` of the surface's own free and
    constrained fit, ``cost_vol`` (their difference, vol points), ``status`` and
    ``fitted_at`` of the surface.

    ``status``: ``ok``, ``held`` (a new fit was rejected by a guard: the last good one is
    kept), ``insufficient`` (too few usable quotes), ``recovered`` (from the store, no
    live data yet), ``pending`` (quotes seen, no fit yet). ``reasons`` are the guard
    codes of the last update; ``excluded`` counts the quotes kept out by reason.
    """

    expiry: float
    t: float
    forward: float
    model: str
    params: dict[str, float]
    atm_vol: float
    rr25: float
    bf25: float
    rmse_vol: float
    n_used: int
    n_quotes: int
    status: str
    reasons: tuple[str, ...] = ()
    excluded: dict[str, int] = field(default_factory=dict)
    input_time: float = math.nan  # clock time of the newest quote in the fit
    fitted_at: float = math.nan  # clock time of the fit
    latency_ms: float = math.nan  # newest input tick -> published (wall)
    compute_ms: float = math.nan
    warm: bool = False
    n_fits: int = 0
    # rr25/bf25 are at the forward (not premium-adjusted) 25-delta strikes, as in the
    # slices of every CalibrationResult (SliceFit.delta_convention)
    delta_convention: str = "forward"
    fit: str = "free"
    fit_reason: str | None = None
    free: dict[str, Any] | None = None
    constraint: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "expiry": iso(self.expiry),
            "t": num(self.t),
            "forward": num(self.forward),
            "model": self.model,
            "params": {k: num(v) for k, v in self.params.items()},
            "atm_vol": num(self.atm_vol),
            "rr25": num(self.rr25),
            "bf25": num(self.bf25),
            "delta_convention": self.delta_convention,
            "rmse_vol": num(self.rmse_vol),
            "n_used": int(self.n_used),
            "n_quotes": int(self.n_quotes),
            "status": self.status,
            "reasons": list(self.reasons),
            "excluded": dict(self.excluded),
            "input_time": iso(self.input_time),
            "fitted_at": iso(self.fitted_at),
            "latency_ms": num(self.latency_ms),
            "compute_ms": num(self.compute_ms),
            "warm": bool(self.warm),
            "n_fits": int(self.n_fits),
            "fit": self.fit,
            "fit_reason": self.fit_reason,
            "free": self.free,
            "constraint": self.constraint,
        }


class LatencyStats:
    """A bounded latency sample (last ``size`` values, milliseconds) with percentiles
    and a cumulative histogram (Prometheus-style buckets)."""

    BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0)

    def __init__(self, size: int = 20_000) -> None:
        self._buf = np.full(size, np.nan)
        self._i = 0
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(self.BUCKETS_MS) + 1)

    def add(self, ms: float) -> None:
        if not math.isfinite(ms):
            return
        self._buf[self._i] = ms
        self._i = (self._i + 1) % self._buf.size
        self.count += 1
        self.total += ms
        for j, b in enumerate(self.BUCKETS_MS):
            if ms <= b:
                self.buckets[j] += 1
                break
        else:
            self.buckets[-1] += 1

    def values(self) -> np.ndarray:
        v = self._buf[np.isfinite(self._buf)]
        return v

    def to_dict(self) -> dict[str, Any]:
        v = self.values()
        q = np.percentile(v, [50, 90, 99]) if v.size else [np.nan] * 3
        cum, acc = {}, 0
        for b, c in zip((*self.BUCKETS_MS, math.inf), self.buckets, strict=True):
            acc += c
            cum["+Inf" if b == math.inf else f"{b:g}"] = acc
        return {
            "count": int(self.count),
            "sum_ms": num(self.total),
            "p50_ms": num(q[0]),
            "p90_ms": num(q[1]),
            "p99_ms": num(q[2]),
            "max_ms": num(v.max()) if v.size else None,
            "buckets_ms": cum,
        }


@dataclass(frozen=True)
class SurfaceState:
    """The engine's view of one underlying at one moment (immutable).

    ``surface`` maps a surface/stochastic model name (``essvi``, ``heston``, ...) to its
    latest published fit (params, rmse, status, fitted_at, latency). ``guards`` counts
    guard events since start; ``reasons`` are the guards active now (``stale_feed``,
    ``recovered``, ...).
    """

    underlying: str
    snapshot_time: float
    now: float
    stale: bool
    index_price: float
    expiries: tuple[ExpiryState, ...]
    surface: dict[str, dict[str, Any]]
    guards: dict[str, int]
    reasons: tuple[str, ...]
    latency: dict[str, dict[str, Any]]
    seq: int
    n_instruments: int
    synthetic_share: float = 0.0

    @property
    def age_s(self) -> float:
        return self.now - self.snapshot_time if math.isfinite(self.snapshot_time) else math.nan

    def expiry(self, label: str) -> ExpiryState:
        for e in self.expiries:
            if (iso(e.expiry) or "")[:10] == label[:10]:
                return e
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "underlying": self.underlying,
            "snapshot_time": iso(self.snapshot_time),
            "now": iso(self.now),
            "stale": bool(self.stale),
            "age_s": num(self.age_s),
            "index_price": num(self.index_price),
            "seq": int(self.seq),
            "n_instruments": int(self.n_instruments),
            "expiries": [e.to_dict() for e in self.expiries],
            "surface": self.surface,
            "guards": dict(self.guards),
            "reasons": list(self.reasons),
            "latency": self.latency,
            "synthetic_share": num(self.synthetic_share),
        }

    def summary(self) -> str:
        lines = [
            f"{self.underlying} surface at {iso(self.snapshot_time)} "
            f"({'STALE ' if self.stale else ''}age {self.age_s:.1f} s, seq {self.seq})",
            f"{'expiry':<12}{'t':>8}{'ATM':>8}{'RR25':>8}{'BF25':>8}{'rmse':>7}{'n':>5}  status",
        ]
        for e in self.expiries:
            lines.append(
                f"{(iso(e.expiry) or '')[:10]:<12}{e.t:>8.4f}{100 * e.atm_vol:>8.2f}"
                f"{100 * e.rr25:>8.2f}{100 * e.bf25:>8.2f}{e.rmse_vol:>7.2f}{e.n_used:>5}  "
                f"{e.status}{' ' + ','.join(e.reasons) if e.reasons else ''}"
            )
        if self.guards:
            lines.append("guards: " + ", ".join(f"{k}={v}" for k, v in sorted(self.guards.items())))
        return "\n".join(lines)
