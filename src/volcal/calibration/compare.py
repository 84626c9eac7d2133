"""``compare_models``: every model on the same cleaned quotes, side by side.

Each model is calibrated with :func:`volcal.calibrate` and its library defaults (spread
weights, a cold start with the global stage for the Fourier models), on the same chain,
so the differences are the models'. Fit quality is then broken down by expiry bucket
(days to expiry; default ``<7d``, ``7-30d``, ``30-90d``, ``>90d``):

* RMSE in vol points of (model vol - market mid vol) over the bucket's quotes,
* the share of the bucket's quotes whose model vol lies inside their bid-ask vol
  interval,

together with the overall figures, the status and the wall time of every fit. A model
that cannot be fitted at all (e.g. fewer quotes than parameters) is kept in the table
with its error message instead of aborting the comparison. The individual fits'
:class:`~volcal.errors.CalibrationWarning` are collected into one warning naming every
model whose status is not ``"ok"`` - loud, but once.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal.calibration.result import CalibrationResult, _num, freeze
from volcal.errors import CalibrationWarning, ParameterError, VolcalError

__all__ = ["COMPARE_MODELS", "DEFAULT_BUCKETS", "ModelComparison", "ModelFit", "compare_models"]

COMPARE_MODELS = ("svi", "sabr", "heston", "bates", "merton", "kou", "vg", "svcj")
DEFAULT_BUCKETS = (7.0, 30.0, 90.0)  # bucket edges in days to expiry


def bucket_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Labels of the buckets cut by ``edges`` (days): ``(<7d, 7-30d, 30-90d, >90d)``."""
    e = [f"{x:g}" for x in edges]
    if not e:
        return ("all",)
    return (f"<{e[0]}d", *(f"{a}-{b}d" for a, b in itertools.pairwise(e)), f">{e[-1]}d")


@dataclass(frozen=True, eq=False)
class ModelFit:
    """One model of a comparison: its result, or the error that prevented a fit.

    Attributes
    ----------
    model : str
    result : CalibrationResult or None
        None when the calibration raised (``error`` says why).
    error : str
        Empty when fitted.
    wall_s : float
        Wall time of the ``calibrate`` call (including quote preparation).
    buckets : dict
        Per bucket label: ``{"n": quotes, "rmse_vol": vol points, "inside_spread": share}``
        (RMSE and share are NaN for an empty bucket).
    """

    model: str
    result: CalibrationResult | None
    error: str
    wall_s: float
    buckets: Mapping[str, Mapping[str, float]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "buckets", freeze(self.buckets))  # read-only mappings

    @property
    def status(self) -> str:
        return "error" if self.result is None else self.result.status

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "model": self.model,
            "status": self.status,
            "message": self.error if r is None else r.message,
            "rmse_vol": None if r is None else _num(r.rmse_vol),
            "inside_spread": None if r is None else _num(r.inside_spread),
            "n_used": 0 if r is None else r.n_used,
            "elapsed_s": _num(self.wall_s),
            "params": {} if r is None else r.to_dict()["params"],
            "buckets": {
                lab: {
                    "n": int(b["n"]),
                    "rmse_vol": _num(b["rmse_vol"]),
                    "inside_spread": _num(b["inside_spread"]),
                }
                for lab, b in self.buckets.items()
            },
            "slices": [] if r is None else [s.to_dict() for s in r.slices],
        }


def _bucket_quality(
    result: CalibrationResult, edges: Sequence[float]
) -> dict[str, dict[str, float]]:
    q = result.quotes
    days = 365.0 * q.t
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), days, side="right")
    inside = q.inside_spread(result.model_iv)
    err = result.residuals
    out: dict[str, dict[str, float]] = {}
    for b, lab in enumerate(bucket_labels(edges)):
        m = idx == b
        e = err[m][np.isfinite(err[m])]
        out[lab] = {
            "n": float(m.sum()),
            "rmse_vol": float(100.0 * np.sqrt(np.mean(e**2))) if e.size else float("nan"),
            "inside_spread": float(np.mean(inside[m])) if m.any() else float("nan"),
        }
    return out


@dataclass(frozen=True, eq=False)
class ModelComparison:
    """Every model fitted to one chain (immutable); see the module docs.

    Attributes
    ----------
    fits : tuple of ModelFit
        One per model, in the order asked.
    buckets : tuple of float
        Bucket edges in days to expiry.
    underlying, snapshot : str
        Identification of the chain (empty for a bare ``QuoteSet``).
    """

    fits: tuple[ModelFit, ...]
    buckets: tuple[float, ...]
    underlying: str = ""
    snapshot: str = ""

    @property
    def bucket_labels(self) -> tuple[str, ...]:
        return bucket_labels(self.buckets)

    def __getitem__(self, model: str) -> ModelFit:
        for f in self.fits:
            if f.model == model:
                return f
        raise KeyError(model)

    def table(self) -> pd.DataFrame:
        """One row per model: overall and per-bucket RMSE / inside share, time, status."""
        rows = []
        for f in self.fits:
            r = f.result
            row: dict[str, Any] = {
                "model": f.model,
                "status": f.status,
                "n_used": 0 if r is None else r.n_used,
                "rmse_vol": np.nan if r is None else r.rmse_vol,
                "inside_spread": np.nan if r is None else r.inside_spread,
            }
            for lab, b in f.buckets.items():
                row[f"rmse {lab}"] = b["rmse_vol"]
                row[f"inside {lab}"] = b["inside_spread"]
            row["elapsed_s"] = f.wall_s
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def summary(self) -> str:
        """Text table: RMSE (vol points) / inside share per bucket, time and status."""
        labs = self.bucket_labels
        head = f"{'model':<8}{'RMSE':>8}{'inside':>8}" + "".join(f"{lab:>15}" for lab in labs)
        lines = [
            f"model comparison {self.underlying} {self.snapshot}".rstrip(),
            "  RMSE in vol points; per bucket: RMSE / share inside bid-ask",
            "  " + head + f"{'time':>9}  status",
        ]
        for f in self.fits:
            r = f.result
            if r is None:
                lines.append(
                    f"  {f.model:<8}{'-':>8}{'-':>8}"
                    + " " * 15 * len(labs)
                    + f"{'':>9}  error: {f.error}"
                )
                continue
            cells = "".join(
                f"{_fmt(b['rmse_vol'], 2):>8} / {_fmt(100 * b['inside_spread'], 0):>3}%"
                for b in f.buckets.values()
            )
            lines.append(
                f"  {f.model:<8}{r.rmse_vol:>8.3f}{100 * r.inside_spread:>7.1f}%{cells}"
                f"{1000 * f.wall_s:>7.0f}ms  {r.status}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (the CLI's ``--json`` output)."""
        return {
            "underlying": self.underlying,
            "snapshot": self.snapshot,
            "buckets": list(self.bucket_labels),
            "bucket_edges_days": list(self.buckets),
            "models": [f.to_dict() for f in self.fits],
        }


def _fmt(x: float, digits: int) -> str:
    return "-" if not np.isfinite(x) else f"{x:.{digits}f}"


def compare_models(
    chain: Any,
    models: Sequence[str] = COMPARE_MODELS,
    *,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    weights: Any = "spread",
    max_time: float = 20.0,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> ModelComparison:
    """Calibrate several models to the same chain and tabulate their fit by expiry bucket.

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        A cleaned chain (``volcal.clean(chain)``; a raw one is cleaned with the default
        policy when its quotes are prepared).
    models : sequence of str
        Model names (default: svi, sabr, heston, bates, merton, kou, vg, svcj).
    buckets : sequence of float
        Increasing bucket edges in days to expiry (default 7, 30, 90).
    weights, max_time, seed :
        Passed to :func:`volcal.calibrate` for every model.
    progress : callable, optional
        ``progress(model, i, n)`` is called before model ``i`` (0-based) of ``n`` is
        fitted and ``progress("", n, n)`` at the end (e.g. to drive a progress bar).

    Returns
    -------
    ModelComparison

    Raises
    ------
    ParameterError
        For an unknown model name, a repeated one, or bucket edges that do not increase.

    Examples
    --------
    >>> import volcal
    >>> cmp = volcal.compare_models(volcal.clean(chain), ["heston", "bates"])  # doctest: +SKIP
    >>> print(cmp.summary())                                                    # doctest: +SKIP
    """
    from volcal.calibration.calibrate import MODEL_NAMES, SMILE_OPTIONS, calibrate

    names = [str(m).strip().lower() for m in models]
    if not names:
        raise ParameterError("no model to compare")
    for m in names:
        if m not in MODEL_NAMES:
            raise ParameterError(f"unknown model {m!r}: use one of {', '.join(MODEL_NAMES)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"a model is listed twice: {', '.join(names)}")
    edges = tuple(float(b) for b in buckets)
    if any(not np.isfinite(b) or b <= 0 for b in edges) or any(
        b2 <= b1 for b1, b2 in itertools.pairwise(edges)
    ):
        raise ParameterError(f"bucket edges must be positive and increasing, got {list(buckets)}")
    fits: list[ModelFit] = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(name, i, len(names))
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # the status of every fit is in the table; one warning is issued below
                warnings.simplefilter("ignore", CalibrationWarning)
                opts: dict[str, Any] = {"max_time": max_time, "seed": seed, "pillars": True}
                if name in SMILE_OPTIONS:  # smile models refuse options they cannot honour
                    # (and always report their pillars)
                    opts = {k: v for k, v in opts.items() if k in SMILE_OPTIONS[name]}
                res = calibrate(chain, name, weights=weights, **opts)
        except VolcalError as exc:
            fits.append(ModelFit(name, None, str(exc), time.perf_counter() - t0, {}))
            continue
        wall = time.perf_counter() - t0
        fits.append(ModelFit(name, res, "", wall, _bucket_quality(res, edges)))
    if progress is not None:
        progress("", len(names), len(names))
    bad = [f"{f.model} {f.status}" for f in fits if f.status != "ok"]
    if bad:
        warnings.warn(
            "model comparison: " + ", ".join(bad) + " (see each fit's message)",
            CalibrationWarning,
            stacklevel=2,
        )
    underlying = str(getattr(chain, "underlying", ""))
    snap = getattr(chain, "snapshot", None)
    return ModelComparison(
        fits=tuple(fits),
        buckets=edges,
        underlying=underlying,
        snapshot="" if snap is None else snap.isoformat(),
    )
