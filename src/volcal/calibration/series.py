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

    def slice_params(self) -> pd.DataFrame:
        """Per-expiry parameters of smile models (SVI, SVI surface, SABR, SSVI/eSSVI):
        one row per snapshot and expiry (ISO label), one column per parameter. Empty for
        models with one parameter set per snapshot (use :meth:`params`)."""
        rows = []
        for lab, r in zip(self.labels, self.results, strict=True):
            for expiry, t, values in _slice_values(r):
                rows.append({"snapshot": lab, "expiry": expiry, "t": t, **values})
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).set_index(["snapshot", "expiry"])

    def slice_stability(self) -> pd.DataFrame:
        """Per expiry and parameter, the mean absolute relative change between
        consecutive snapshots that both quote that expiry (smile models)."""
        sp = self.slice_params()
        if sp.empty:
            return pd.DataFrame()
        out = {}
        names = [c for c in sp.columns if c != "t"]
        for expiry, g in sp.groupby(level="expiry", sort=True):
            g = g.droplevel("expiry").reindex([x for x in self.labels if x in g.index])
            if len(g) < 2:
                continue
            p = g[names].astype(float)
            rel = (p.diff().abs() / p.shift().abs().clip(lower=1e-12)).iloc[1:]
            out[expiry] = rel.mean()
        return pd.DataFrame(out).T.rename_axis("expiry")

    def to_frame(self) -> pd.DataFrame:
        """Parameters and quality side by side."""
        return pd.concat([self.params(), self.quality()], axis=1)

    def stability(self) -> dict[str, float]:
        """Mean absolute relative change of each parameter between consecutive fits (for
        smile models: per parameter, averaged over the expiries quoted in consecutive
        snapshots, see :meth:`slice_stability`)."""
        ss = self.slice_stability()
        if not ss.empty:
            return {c: float(ss[c].mean()) for c in ss.columns}
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
            ],
            "stability": {k: (v if np.isfinite(v) else None) for k, v in self.stability().items()},
        }


def _slice_values(r: CalibrationResult) -> list[tuple[str, float, dict[str, float]]]:
    """(expiry, t, parameters) of each expiry of a smile fit (empty for other models)."""
    p = r.params
    if hasattr(p, "smiles") and hasattr(p, "expiries"):  # SVI, SVI surface, SABR
        return [
            (e, float(t), {k: float(v) for k, v in zip(s.param_names, s.to_vector(), strict=True)})
            for e, t, s in zip(p.expiries, p.t, p.smiles, strict=True)
        ]
    if all(hasattr(p, n) for n in ("theta", "rho", "psi", "t")) and not isinstance(p.rho, float):
        labels = [s.expiry for s in r.slices]  # eSSVI: one node per quoted expiry
        if len(labels) == len(p.t):
            return [
                (e, float(t), {"theta": float(th), "rho": float(rh), "psi": float(ps)})
                for e, t, th, rh, ps in zip(labels, p.t, p.theta, p.rho, p.psi, strict=True)
            ]
    return []


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

    Smile models (``svi``, ``svi_surface``, ``sabr``, ``ssvi``, ``essvi``) get the warm
    start, prior and strength where they honour them (``volcal.calibration.calibrate.
    SMILE_OPTIONS``); ``strength > 0`` for a model without a prior is refused by
    :func:`volcal.calibrate`.

    Returns
    -------
    SeriesResult
        ``.params()`` is the parameter time series, ``.quality()`` the fit quality;
        for smile models ``.slice_params()`` holds the per-expiry parameters and
        ``.stability()`` / ``.slice_stability()`` how much they move.

    Examples
    --------
    >>> import volcal
    >>> chains = [volcal.clean(volcal.read_chain(p, currency="BTC")) for p in paths]  # doctest: +SKIP
    >>> s = volcal.calibrate_series(chains, "heston", strength=1.0)                  # doctest: +SKIP
    >>> s.params()[["kappa", "xi"]]                                                   # doctest: +SKIP
    """
    from volcal.calibration.calibrate import SMILE_OPTIONS, calibrate

    name = model.lower() if isinstance(model, str) else None
    takes = SMILE_OPTIONS.get(name, None) if name is not None else None

    def opts(**o: Any) -> dict[str, Any]:
        """Options for ``calibrate``: a smile model gets only those it honours (the warm
        start where it takes one); ``calibrate`` refuses the rest, which the user
        passes explicitly."""
        if takes is None:
            return o
        out = {k: v for k, v in o.items() if k in takes}
        if o.get("global_search") is True and "global_search" not in takes:
            out["global_search"] = True  # asked for: let calibrate refuse it
        if o.get("strength", 0.0) > 0 and "strength" not in takes:
            out["strength"] = o["strength"]
        return out

    results: list[CalibrationResult] = []
    labels: list[str] = []
    prev: CalibrationResult | None = None
    for i, chain in enumerate(chains):
        if prev is None:
            first = opts(start=start, global_search=global_search)
            fit = calibrate(chain, model, **first, **kwargs)
        else:
            later = opts(
                start=prev,
                prior=prev if strength > 0 else None,
                strength=strength,
                global_search=global_search if global_search is True else False,
            )
            fit = calibrate(chain, model, **later, **kwargs)
        results.append(fit)
        snap = getattr(chain, "snapshot", None)
        labels.append(pd.Timestamp(snap).isoformat() if snap is not None else str(i))
        if np.isfinite(fit.rmse_vol):
            prev = fit
    return SeriesResult(results=tuple(results), labels=tuple(labels))
