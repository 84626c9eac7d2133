"""``calibrate_series``: recalibrate along a sequence of snapshots with warm starts.

The first snapshot is calibrated cold (global stage under ``global_search="auto"``);
every later one starts from the previous fit, skips the global stage and, with
``strength > 0``, is regularized toward it (see :func:`volcal.calibrate`). This is
the real-time use: a fit per snapshot in milliseconds, and parameters that move only
as much as the market makes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal.calibration.result import CalibrationResult, _params_dict

__all__ = ["SeriesResult", "calibrate_series"]


@dataclass(frozen=True, eq=False)
class SeriesResult:
    """Fits along a sequence of snapshots (immutable).

    Attributes
    ----------
    results : tuple of CalibrationResult
        One fit per snapshot, in order.
    labels : tuple of str
        Snapshot label per fit (the chain's snapshot time, or its position).
    """

    results: tuple[CalibrationResult, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.results)

    def params(self) -> pd.DataFrame:
        """Parameter time series: one row per snapshot, one column per parameter."""
        rows = []
        for r in self.results:
            d = _params_dict(r.params)
            rows.append({k: v for k, v in d.items() if isinstance(v, (int, float)) or v is None})
        return pd.DataFrame(rows, index=pd.Index(self.labels, name="snapshot"))

    def quality(self) -> pd.DataFrame:
        """Fit quality over time: RMSE (vol points), inside-spread share, time, status."""
        return pd.DataFrame(
            {
                "rmse_vol": [r.rmse_vol for r in self.results],
                "inside_spread": [r.inside_spread for r in self.results],
                "n_used": [r.n_used for r in self.results],
                "nfev": [r.nfev for r in self.results],
                "elapsed_s": [r.elapsed_s for r in self.results],
                "status": [r.status for r in self.results],
            },
            index=pd.Index(self.labels, name="snapshot"),
        )

    def to_frame(self) -> pd.DataFrame:
        """Parameters and quality side by side."""
        return pd.concat([self.params(), self.quality()], axis=1)

    def stability(self) -> dict[str, float]:
        """Mean absolute relative change of each parameter between consecutive fits."""
        p = self.params().astype(float)
        if len(p) < 2:
            return {c: 0.0 for c in p.columns}
        rel = (p.diff().abs() / p.shift().abs().clip(lower=1e-12)).iloc[1:]
        return {c: float(rel[c].mean()) for c in p.columns}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: per snapshot label, status, quality and parameters."""
        return {
            "fits": [
                {
                    "snapshot": lab,
                    "status": r.status,
                    "rmse_vol": r.to_dict()["rmse_vol"],
                    "inside_spread": r.to_dict()["inside_spread"],
                    "elapsed_s": float(r.elapsed_s),
                    "params": _params_dict(r.params),
                }
                for lab, r in zip(self.labels, self.results, strict=True)
            ]
        }


def calibrate_series(
    chains: Iterable[Any],
    model: Any,
    *,
    strength: float = 0.0,
    start: Any = None,
    global_search: bool | str = "auto",
    **kwargs: Any,
) -> SeriesResult:
    """Calibrate ``model`` to each chain in turn, warm-starting from the previous fit.

    Parameters
    ----------
    chains : iterable of OptionChain or QuoteSet
        Snapshots in time order.
    model : str or model instance
        As for :func:`volcal.calibrate`.
    strength : float
        Regularization toward the previous fit (0: warm start only).
    start : optional
        Start of the first fit (otherwise a cold start with the global stage).
    global_search : {"auto", True, False}
        Applies to the first fit; later fits are warm (no global stage under "auto").
    **kwargs
        Passed to :func:`volcal.calibrate` (weights, objective, fixed, feller, ...).

    Returns
    -------
    SeriesResult
        ``.params()`` is the parameter time series, ``.quality()`` the fit quality.

    Examples
    --------
    >>> import volcal
    >>> chains = [volcal.clean(volcal.read_chain(p, currency="BTC")) for p in paths]  # doctest: +SKIP
    >>> s = volcal.calibrate_series(chains, "heston", strength=1.0)                  # doctest: +SKIP
    >>> s.params()[["kappa", "xi"]]                                                   # doctest: +SKIP
    """
    from volcal.calibration.calibrate import calibrate

    results: list[CalibrationResult] = []
    labels: list[str] = []
    prev: CalibrationResult | None = None
    for i, chain in enumerate(chains):
        if prev is None:
            fit = calibrate(chain, model, start=start, global_search=global_search, **kwargs)
        else:
            fit = calibrate(
                chain,
                model,
                start=prev.params,
                prior=prev if strength > 0 else None,
                strength=strength,
                global_search=global_search if global_search is True else False,
                **kwargs,
            )
        results.append(fit)
        snap = getattr(chain, "snapshot", None)
        labels.append(pd.Timestamp(snap).isoformat() if snap is not None else str(i))
        if np.isfinite(fit.rmse_vol):
            prev = fit
    return SeriesResult(results=tuple(results), labels=tuple(labels))
