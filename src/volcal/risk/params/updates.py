"""Regime-aware proposals for risk parameters and bounded updates toward them.

See :mod:`volcal.risk.params` for the method."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal.errors import DataError, ParameterError
from volcal.risk.params.margin import _check_target
from volcal.risk.series import PriceSeries, _iso


@dataclass(frozen=True)
class ParameterUpdate:
    """Bounded step from current to proposed parameters."""

    current: dict[str, float]
    proposed: dict[str, float]
    new: dict[str, float]
    clipped: tuple[str, ...]
    max_step: float

    def summary(self) -> str:
        """One line per parameter."""
        return "\n".join(
            f"{k}: {self.current[k]:.4g} -> proposed {self.proposed[k]:.4g} -> new"
            f" {self.new[k]:.4g}{' (step bounded)' if k in self.clipped else ''}"
            for k in self.new
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "current": self.current,
            "proposed": self.proposed,
            "new": self.new,
            "clipped": list(self.clipped),
            "max_step": self.max_step,
        }


def bounded_update(
    current: Mapping[str, float], proposed: Mapping[str, float], max_step: float = 0.25
) -> ParameterUpdate:
    """Move each parameter toward its proposal by at most ``max_step`` relative change.

    ``new = clip(proposed, current (1 - max_step), current (1 + max_step))``.

    Examples
    --------
    >>> bounded_update({"shock": 0.10}, {"shock": 0.20}, 0.25).new
    {'shock': 0.125}
    """
    if not 0.0 < max_step:
        raise ParameterError(f"bounded_update: max_step={max_step} must be > 0")
    if set(current) != set(proposed):
        raise ParameterError(
            f"bounded_update: parameter names differ: {sorted(current)} vs {sorted(proposed)}"
        )
    new: dict[str, float] = {}
    clipped = []
    for k in current:
        c, pr = float(current[k]), float(proposed[k])
        if not (math.isfinite(c) and math.isfinite(pr)):
            raise ParameterError(f"bounded_update: {k} is not finite")
        lo, hi = sorted((c * (1.0 - max_step), c * (1.0 + max_step)))
        v = min(max(pr, lo), hi)
        if v != pr:
            clipped.append(k)
        new[k] = v
    return ParameterUpdate(
        {k: float(v) for k, v in current.items()},
        {k: float(v) for k, v in proposed.items()},
        new,
        tuple(clipped),
        max_step,
    )


@dataclass(frozen=True)
class RegimeUpdate:
    """Regime-aware margin-shock update."""

    name: str
    as_of: str
    regime: str
    current_vol: float
    thresholds: tuple[float, float]
    n_regime_windows: int
    update: ParameterUpdate

    def summary(self) -> str:
        """Multi-line description."""
        return (
            f"{self.name} as of {self.as_of}: {self.regime} volatility regime"
            f" (annualised {self.current_vol:.1%}; terciles {self.thresholds[0]:.1%} /"
            f" {self.thresholds[1]:.1%}; {self.n_regime_windows} windows in regime)\n"
            + self.update.summary()
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "as_of": self.as_of,
            "regime": self.regime,
            "current_vol": self.current_vol,
            "thresholds": list(self.thresholds),
            "n_regime_windows": self.n_regime_windows,
            **self.update.to_dict(),
        }


def regime_update(
    series: PriceSeries,
    current: Mapping[str, float],
    target: float = 0.99,
    horizon: str | int = "1d",
    *,
    lookback: int = 30,
    max_step: float = 0.25,
) -> RegimeUpdate:
    """Propose margin shocks from the latest volatility regime; apply a bounded step.

    The trailing realised vol ``sigma_t`` (standard deviation of the last ``lookback``
    one-step log returns) is split into terciles over the history (low / normal / high).
    The proposed ``shock_down``/``shock_up`` are the ``target`` quantiles of the
    non-overlapping horizon moves that started in the same regime as today; the new
    parameters move at most ``max_step`` relative to ``current`` (keys ``shock_down``,
    ``shock_up``).
    """
    target = _check_target(target)
    if set(current) != {"shock_down", "shock_up"}:
        raise ParameterError("regime_update: current must have keys 'shock_down' and 'shock_up'")
    k = series.steps(horizon)
    tg, g = series.grid()
    logp = np.log(g)
    r1 = np.diff(logp)  # r1[i] ends at grid i+1
    n = g.size
    if n < lookback + 10 * k + 2:
        raise DataError(f"{series.name}: too short for a {lookback}-step regime lookback")
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(
        r1, lookback
    )  # win[j] = r1[j : j + lookback], ends at grid j+lookback
    vol = np.full(n, np.nan)
    ok = np.all(np.isfinite(win), axis=1)
    vol[lookback:][ok] = win[ok].std(axis=1, ddof=1)
    finite = np.isfinite(vol)
    if not finite[-1]:
        raise DataError(f"{series.name}: the latest {lookback} steps contain a gap")
    t1, t2 = np.quantile(vol[finite], [1 / 3, 2 / 3])
    labels = np.where(vol <= t1, 0, np.where(vol <= t2, 1, 2))
    now = int(labels[-1])
    starts = np.arange(lookback, n - k, k)
    mv = g[starts + k] / g[starts] - 1.0
    sel = finite[starts] & (labels[starts] == now) & np.isfinite(mv)
    moves = mv[sel]
    need = math.ceil(2.0 / (1.0 - target))
    if moves.size < need:
        raise DataError(
            f"{series.name}: only {moves.size} horizon windows in the current regime; need {need}"
        )
    proposed = {
        "shock_down": float(np.quantile(-moves, target, method="inverted_cdf")),
        "shock_up": float(np.quantile(moves, target, method="inverted_cdf")),
    }
    periods = np.timedelta64(365 * 86400, "s") / series.freq.astype("timedelta64[s]")
    ann = math.sqrt(float(periods))
    return RegimeUpdate(
        name=series.name,
        as_of=_iso(tg[-1]),
        regime=("low", "normal", "high")[now],
        current_vol=float(vol[-1] * ann),
        thresholds=(float(t1 * ann), float(t2 * ann)),
        n_regime_windows=int(moves.size),
        update=bounded_update(current, proposed, max_step),
    )
