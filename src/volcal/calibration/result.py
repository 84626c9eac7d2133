"""``CalibrationResult``: the immutable outcome of every fit (smile, surface or model).

Whatever was fitted - per-expiry SVI or SABR, an SSVI surface, Heston, a jump model -
the user gets the same object: the parameters (a model instance), where the fit started,
the quotes used with their weights, market and model vols and residuals, fit quality
overall and per expiry, cost and status. Nothing here is recomputed on access except
cheap aggregates, and nothing can be changed after construction.

Fit quality is measured in implied volatility:

* ``rmse_vol``: root mean square of (model vol - market mid vol) over the quotes used,
  in vol points (1 vol point = 0.01 in vol), unweighted so fits with different weights
  compare;
* ``inside_spread``: share of the quotes used whose model vol lies within their
  bid-ask vol interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import ArrayLike, FloatArray
from volcal.calibration.quotes import QuoteSet

STATUSES = ("ok", "max_iter", "time_limit", "failed", "degraded")


def _num(x: Any) -> float | None:
    """JSON-safe float (None for NaN / inf / missing)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if hasattr(params, "to_dict"):
        d = params.to_dict()
        return {
            k: (_num(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in d.items()
        }
    if hasattr(params, "__dataclass_fields__"):
        return {k: _num(getattr(params, k)) for k in params.__dataclass_fields__}
    if isinstance(params, dict):
        return {
            k: (_num(v) if isinstance(v, (int, float, np.floating)) else v)
            for k, v in params.items()
        }
    return {"value": str(params)}


def expiry_label(expiry: Any) -> str:
    """ISO label of an expiry (UTC)."""
    ts = pd.Timestamp(expiry)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()


@dataclass(frozen=True)
class SliceFit:
    """Fit quality and conventions of one expiry.

    ``params`` holds the slice's own parameters for per-expiry models (SVI, SABR) and
    is empty for surface/stochastic models. ``atm_vol``, ``rr25``, ``bf25`` are the
    fitted smile's ATM-forward vol, 25-delta risk reversal and butterfly (vol units,
    NaN when not computed).
    """

    expiry: str
    t: float
    forward: float
    n_used: int
    rmse_vol: float
    inside_spread: float
    params: dict[str, Any] = field(default_factory=dict)
    atm_vol: float = float("nan")
    rr25: float = float("nan")
    bf25: float = float("nan")
    status: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expiry": self.expiry,
            "t": _num(self.t),
            "forward": _num(self.forward),
            "n_used": int(self.n_used),
            "rmse_vol": _num(self.rmse_vol),
            "inside_spread": _num(self.inside_spread),
            "params": _params_dict(self.params),
            "atm_vol": _num(self.atm_vol),
            "rr25": _num(self.rr25),
            "bf25": _num(self.bf25),
            "status": self.status,
        }


def fit_quality(quotes: QuoteSet, model_iv: FloatArray) -> tuple[float, float]:
    """(rmse in vol points, share inside bid-ask) of model vols against the quotes."""
    iv = np.asarray(model_iv, dtype=np.float64)
    err = iv - quotes.iv_mid
    finite = np.isfinite(err)
    rmse = float(100.0 * np.sqrt(np.mean(err[finite] ** 2))) if finite.any() else float("nan")
    inside = float(np.mean(quotes.inside_spread(iv))) if iv.size else float("nan")
    return rmse, inside


def slice_fits(
    quotes: QuoteSet,
    model_iv: FloatArray,
    *,
    params: Sequence[dict[str, Any]] | None = None,
    atm_vol: ArrayLike | None = None,
    rr25: ArrayLike | None = None,
    bf25: ArrayLike | None = None,
    status: Sequence[str] | None = None,
) -> tuple[SliceFit, ...]:
    """One :class:`SliceFit` per expiry of ``quotes``: its fit quality (quotes used, RMSE
    in vol points, share inside bid-ask) measured from ``model_iv``, with the slice's
    own parameters, conventions and status where the fitter has them. A slice without
    a given status is ``"ok"`` when its RMSE is finite, else ``"failed"``."""
    iv = np.asarray(model_iv, dtype=np.float64)
    nan = np.full(quotes.n_slices, np.nan)
    atm = nan if atm_vol is None else np.asarray(atm_vol, dtype=np.float64)
    rr = nan if rr25 is None else np.asarray(rr25, dtype=np.float64)
    bf = nan if bf25 is None else np.asarray(bf25, dtype=np.float64)
    out = []
    for i in range(quotes.n_slices):
        m = quotes.slice_index == i
        rmse, inside = fit_quality(quotes.subset(m), iv[m])
        out.append(
            SliceFit(
                expiry=expiry_label(quotes.expiries[i]),
                t=float(quotes.t_slices[i]),
                forward=float(quotes.forward_slices[i]),
                n_used=int(m.sum()),
                rmse_vol=rmse,
                inside_spread=inside,
                params={} if params is None else dict(params[i]),
                atm_vol=float(atm[i]),
                rr25=float(rr[i]),
                bf25=float(bf[i]),
                status=(
                    status[i] if status is not None else ("ok" if np.isfinite(rmse) else "failed")
                ),
            )
        )
    return tuple(out)


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """Outcome of a calibration (immutable).

    Attributes
    ----------
    model : str
        Model name (``"svi"``, ``"heston"``, ...).
    params : object
        Fitted parameters as a model instance (for per-expiry smiles, an object holding
        one parameter set per expiry).
    start : object or None
        Parameters the local solver started from.
    quotes : QuoteSet
        The quotes used (with bid/ask/mid vols).
    model_iv : ndarray
        Model implied vol per quote used.
    weights : ndarray
        Residual weight per quote (mean 1).
    residuals : ndarray
        Model minus market mid vol per quote (vol units).
    slices : tuple of SliceFit
        Per-expiry quality (and parameters for per-expiry models).
    rmse_vol, inside_spread : float
        Overall fit quality (see module docs).
    nfev : int
        Objective evaluations.
    elapsed_s : float
        Wall time of the calibration.
    status : str
        One of ``"ok"``, ``"max_iter"``, ``"time_limit"``, ``"failed"``, ``"degraded"``.
    message : str
        Solver message or reason of the status.
    warnings : tuple of str
        Caveats (bound hit, Feller violated, ill-conditioned Jacobian, ...).
    stderr : dict or None
        Standard errors of the parameters from the Jacobian, when available.
    jac_cond : float or None
        Condition number of the weighted Jacobian at the solution.
    extra : dict
        Model-specific diagnostics (JSON-safe values).
    """

    model: str
    params: Any
    start: Any
    quotes: QuoteSet
    model_iv: FloatArray
    weights: FloatArray
    residuals: FloatArray
    slices: tuple[SliceFit, ...]
    rmse_vol: float
    inside_spread: float
    nfev: int
    elapsed_s: float
    status: str = "ok"
    message: str = ""
    warnings: tuple[str, ...] = ()
    stderr: dict[str, float] | None = None
    jac_cond: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for name in ("model_iv", "weights", "residuals"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_used(self) -> int:
        return len(self.quotes)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def surface(self) -> Any:
        """The fitted surface as a :class:`volcal.surface.VolSurface` (iv, prices, greeks,
        local vol, density; see :mod:`volcal.surface.volsurface` for the interpolation)."""
        from volcal.surface.volsurface import VolSurface

        return VolSurface.from_result(self)

    def slice_table(self) -> pd.DataFrame:
        """Per-expiry table (one row per expiry)."""
        rows = []
        for s in self.slices:
            d = s.to_dict()
            params = d.pop("params")
            rows.append({**d, **{f"p_{k}": v for k, v in params.items()}})
        return pd.DataFrame(rows)

    def quote_table(self) -> pd.DataFrame:
        """Per-quote table: identification, market vols, model vol, residual, weight."""
        q = self.quotes
        return pd.DataFrame(
            {
                "instrument": q.instrument,
                "expiry": pd.to_datetime(q.expiry).tz_localize("UTC"),
                "t": q.t,
                "strike": q.strike,
                "k": q.k,
                "is_call": q.is_call,
                "iv_bid": q.iv_bid,
                "iv_ask": q.iv_ask,
                "iv_mid": q.iv_mid,
                "model_iv": self.model_iv,
                "residual": self.residuals,
                "weight": self.weights,
                "inside": q.inside_spread(self.model_iv),
            }
        )

    def summary(self) -> str:
        """Human-readable report: status, quality, parameters, per-expiry table."""
        lines = [
            f"{self.model} calibration: {self.status}"
            + (f" ({self.message})" if self.message else ""),
            f"  quotes used: {self.n_used} in {len(self.slices)} expiries; "
            f"RMSE {self.rmse_vol:.3f} vol pts; inside bid-ask {100 * self.inside_spread:.1f}%; "
            f"nfev {self.nfev}; {1000 * self.elapsed_s:.1f} ms",
        ]
        p = _params_dict(self.params)
        if p and not any(isinstance(v, (dict, list)) for v in p.values()):
            se = self.stderr or {}
            lines.append(
                "  params: "
                + ", ".join(
                    f"{k}={v:.6g}" + (f" (±{se[k]:.2g})" if se.get(k) is not None else "")
                    if isinstance(v, float)
                    else f"{k}={v}"
                    for k, v in p.items()
                )
            )
        lines.append(
            f"  {'expiry':<26}{'t':>8}{'n':>5}{'rmse':>8}{'inside':>8}{'atm':>8}{'rr25':>8}{'bf25':>8}"
        )
        for s in self.slices:
            lines.append(
                f"  {s.expiry:<26}{s.t:>8.4f}{s.n_used:>5d}{s.rmse_vol:>8.3f}"
                f"{100 * s.inside_spread:>7.1f}%{100 * s.atm_vol:>8.2f}"
                f"{100 * s.rr25:>8.2f}{100 * s.bf25:>8.2f}"
            )
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (the CLI's ``--json`` output)."""
        return {
            "model": self.model,
            "status": self.status,
            "message": self.message,
            "params": _params_dict(self.params),
            "start": _params_dict(self.start),
            "rmse_vol": _num(self.rmse_vol),
            "inside_spread": _num(self.inside_spread),
            "n_used": self.n_used,
            "nfev": int(self.nfev),
            "elapsed_s": _num(self.elapsed_s),
            "warnings": list(self.warnings),
            "stderr": None if self.stderr is None else {k: _num(v) for k, v in self.stderr.items()},
            "jac_cond": _num(self.jac_cond),
            "slices": [s.to_dict() for s in self.slices],
            "extra": self.extra,
        }


__all__ = [
    "STATUSES",
    "CalibrationResult",
    "SliceFit",
    "expiry_label",
    "fit_quality",
    "slice_fits",
]
