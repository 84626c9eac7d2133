"""Hedging evaluation along a sequence of real snapshots: which delta hedges best?

For every pair of consecutive snapshots ``(c0, c1)`` and every out-of-the-money option
quoted with a mark in both, the option (one coin, USD value ``V = mark x F`` with ``F`` the
quoted underlying of its expiry) is delta-hedged at ``c0`` with its own expiry's future and
held to ``c1``. The hedged P&L is

.. math::

    e = (V_1 - V_0) - \\Delta\\,(F_1 - F_0),

with ``Delta`` the USD delta (dV/dF) of one of the models:

* ``"black"`` - Black-76 at the option's mark vol, the vol held at the strike (sticky
  strike);
* ``"svi_surface"`` - sticky delta from the arbitrage-free SVI surface fitted to ``c0``
  (``volcal.calibrate(c0, "svi_surface")``): the vol is a function of ``k = ln(K/F)``
  and moves with the forward, so
  :math:`\\Delta = \\Delta_{BS}(\\sigma(k)) - \\mathcal{V}\\,\\sigma'(k)/F` with
  :math:`\\sigma'(k) = w_k(k, T) / (2\\sigma T)` (e.g. Bergomi, *Stochastic Volatility
  Modeling*, 2016, ch. 2 on sticky-strike vs sticky-delta deltas), :math:`w` and
  :math:`w_k` from :meth:`~volcal.models.svi.SVISurface.derivatives` (at every expiry,
  also one too thinly quoted for a smile of its own). The default model of the
  evaluation, next to ``"black"``: a sticky-delta hedge reads the smile's slope, and on
  the surface that slope belongs to smiles that neither cross each other nor carry
  butterfly arbitrage;
* ``"svi"`` - the same sticky delta from the free per-expiry SVI fits (no calendar
  condition; neighbouring smiles may cross), still available by name;
* a calibrated model name (``"heston"``, ``"bates"``, ...) - the model's own delta,
  dV_model/dF by central differences of :func:`volcal.price` with the parameters of a fit
  to ``c0`` (warm-started from the previous fit). The model price is homogeneous in
  ``(F, K)``, so its delta includes the smile dynamics the model implies.

The residual includes theta and the vol move, the same for every model, so the models are
compared by the spread of ``e`` (RMS) and by the variance reduction against not hedging,
``1 - RMS(e)^2 / RMS(V_1 - V_0)^2``, per model, expiry bucket and moneyness bucket
(standardised moneyness ``z = ln(K/F) / (sigma sqrt(T))``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal.errors import CalibrationWarning, DataError, ParameterError
from volcal.market.chain import OptionChain

EXPIRY_BUCKETS = (
    (0.0, 7.0, "<7d"),
    (7.0, 30.0, "7-30d"),
    (30.0, 90.0, "30-90d"),
    (90.0, math.inf, ">90d"),
)
MONEYNESS_BUCKETS = ((-math.inf, -1.0, "z<-1"), (-1.0, 1.0, "-1<=z<1"), (1.0, math.inf, "z>=1"))


def _bucket(x: np.ndarray, buckets: tuple[tuple[float, float, str], ...]) -> np.ndarray:
    out = np.empty(x.size, dtype=object)
    for lo, hi, lab in buckets:
        out[(x >= lo) & (x < hi)] = lab
    return out


@dataclass(frozen=True, eq=False)
class HedgingEvaluation:
    """Hedged P&L of every (option, step, model); ``table()`` aggregates them."""

    records: dict[str, np.ndarray]
    models: tuple[str, ...]
    n_steps: int
    snapshots: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def table(self, by: Sequence[str] = ("model",)) -> pd.DataFrame:
        """RMS hedged and unhedged P&L (USD per option), variance reduction, count."""
        df = self.to_frame()
        keys = list(by)
        for k in keys:
            if k not in ("model", "expiry_bucket", "moneyness_bucket"):
                raise ParameterError(f"cannot group by {k!r}")
        g = df.groupby(keys, sort=False)
        out = pd.DataFrame(
            {
                "n": g.size(),
                "rms_hedged_usd": g["hedged"].apply(lambda s: float(np.sqrt(np.mean(s**2)))),
                "rms_unhedged_usd": g["unhedged"].apply(lambda s: float(np.sqrt(np.mean(s**2)))),
                "mean_abs_hedged_usd": g["hedged"].apply(lambda s: float(np.mean(np.abs(s)))),
            }
        )
        out["variance_reduction"] = 1.0 - out["rms_hedged_usd"] ** 2 / out["rms_unhedged_usd"] ** 2
        return out.reset_index()

    def summary(self) -> str:
        lines = [
            f"Hedging evaluation: {self.n_steps} steps over {len(self.snapshots)} snapshots, "
            f"models {', '.join(self.models)}",
            self.table(("model",)).to_string(index=False, float_format=lambda x: f"{x:,.3f}"),
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "n_steps": self.n_steps,
            "snapshots": list(self.snapshots),
            "by_model": self.table(("model",)).to_dict(orient="records"),
            "by_bucket": self.table(("model", "expiry_bucket", "moneyness_bucket")).to_dict(
                orient="records"
            ),
        }


def _sticky_delta(
    f: np.ndarray, strike: np.ndarray, t: Any, is_call: np.ndarray, w: np.ndarray, wk: np.ndarray
) -> np.ndarray:
    """Sticky-delta USD delta from total variance ``w`` and its slope ``wk`` in
    ``k = ln(K/F)`` (module docs); NaN where ``w <= 0``."""
    from volcal.black import greeks

    ok = w > 0
    sig = np.sqrt(np.maximum(w, 1e-12) / t)
    dsig = wk / (2.0 * sig * t)
    g = greeks(f, strike, t, sig, is_call)
    return np.asarray(np.where(ok, g.delta - g.vega * dsig / f, np.nan))


def _svi_sticky_delta(chain: OptionChain, rows: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Sticky delta from the free per-expiry SVI fits (options of fitted expiries)."""
    from volcal.calibration import calibrate

    with warnings.catch_warnings():  # fit caveats do not stop the evaluation
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = calibrate(chain, "svi")
    smiles = fit.params
    out = np.full(rows.size, np.nan)
    t = chain.t[rows]
    for i, ti in enumerate(smiles.t):
        sel = np.abs(t - ti) <= 1e-9
        if not sel.any():
            continue
        svi = smiles.smiles[i]
        k = np.log(chain.strike[rows][sel] / f[sel])
        out[sel] = _sticky_delta(
            f[sel],
            chain.strike[rows][sel],
            ti,
            chain.is_call[rows][sel],
            svi.total_variance(k),
            svi.dw(k),
        )
    return out


def _surface_sticky_delta(chain: OptionChain, rows: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Sticky delta from the arbitrage-free SVI surface fitted to ``chain`` (a cold fit,
    like the free slices of ``"svi"``), at every option's own maturity."""
    from volcal.calibration import calibrate

    with warnings.catch_warnings():  # fit caveats do not stop the evaluation
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = calibrate(chain, "svi_surface")
    t = chain.t[rows]
    k = np.log(chain.strike[rows] / f)
    w, wk, _, _ = fit.params.derivatives(k, t)
    return _sticky_delta(f, chain.strike[rows], t, chain.is_call[rows], w, wk)


def _model_delta(model: Any, chain: OptionChain, rows: np.ndarray, f: np.ndarray) -> np.ndarray:
    from volcal.pricing import price

    h = 1e-3
    k, t, c = chain.strike[rows], chain.t[rows], chain.is_call[rows]
    up = price(model, f * (1 + h), k, t, c)
    dn = price(model, f * (1 - h), k, t, c)
    return np.asarray((up - dn) / (2 * h * f), dtype=np.float64)


def hedging_errors(
    chains: Sequence[OptionChain],
    models: Sequence[str] = ("black", "svi_surface"),
    *,
    min_days: float = 2.0,
    max_gap_hours: float = 12.0,
    progress: Callable[[int, int], None] | None = None,
) -> HedgingEvaluation:
    """Delta-hedging errors along consecutive snapshots (see the module docs).

    Parameters
    ----------
    chains : sequence of OptionChain
        Snapshots of one underlying, in time order.
    models : sequence of str
        ``"black"`` (sticky strike at the marks), ``"svi_surface"`` (sticky delta on the
        arbitrage-free SVI surface; with ``"black"`` the default), ``"svi"`` (sticky
        delta on the free per-expiry SVI fits) and/or calibrated model names for
        :func:`volcal.calibrate` (the model's own delta).
    min_days : float
        Options with fewer days to expiry at ``c0`` are skipped (their gamma makes a
        6-hour step meaningless).
    max_gap_hours : float
        Consecutive snapshots further apart are not paired (a sequence break).
    progress : callable, optional
        Called with (steps done, steps total).

    Raises
    ------
    DataError
        Fewer than two snapshots, mixed underlyings, or no pair within ``max_gap_hours``.
    """
    from volcal.black import greeks

    chains = list(chains)
    if len(chains) < 2:
        raise DataError("hedging evaluation needs at least two snapshots")
    if len({c.underlying for c in chains}) > 1:
        raise DataError("snapshots must all be of one underlying")
    for m in models:
        if not isinstance(m, str):
            raise ParameterError(f"model names must be strings, got {m!r}")
    pairs = [
        (a, b)
        for a, b in itertools.pairwise(chains)
        if 0 < (b.snapshot - a.snapshot).total_seconds() <= max_gap_hours * 3600.0
    ]
    if not pairs:
        raise DataError(f"no consecutive snapshots within {max_gap_hours:g} hours")
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "snapshot",
            "instrument",
            "model",
            "days",
            "z",
            "delta",
            "unhedged",
            "hedged",
        )
    }
    starts: dict[str, Any] = {}
    for step, (c0, c1) in enumerate(pairs):
        f0 = c0.underlying_price
        t0 = c0.t
        with np.errstate(invalid="ignore", divide="ignore"):
            k0 = np.log(c0.strike / f0)
        ok = (
            c0.usable()
            & np.isfinite(c0.mark)
            & (c0.mark > 0)
            & np.isfinite(c0.mark_iv)
            & (c0.mark_iv > 0)
            & np.isfinite(f0)
            & (t0 * 365.0 >= min_days)
            & np.where(c0.is_call, k0 >= 0, k0 < 0)
        )
        pos1 = {str(n): i for i, n in enumerate(c1.instrument)}
        rows0, rows1 = [], []
        for i in np.flatnonzero(ok):
            j = pos1.get(str(c0.instrument[i]))
            if j is not None and np.isfinite(c1.mark[j]) and np.isfinite(c1.underlying_price[j]):
                rows0.append(i)
                rows1.append(j)
        if not rows0:
            continue
        r0, r1 = np.array(rows0), np.array(rows1)
        fa, fb = f0[r0], c1.underlying_price[r1]
        v0, v1 = c0.usd("mark")[r0], c1.usd("mark")[r1]
        sig = c0.mark_iv[r0]
        z = k0[r0] / (sig * np.sqrt(t0[r0]))
        for m in models:
            if m == "black":
                d = greeks(fa, c0.strike[r0], t0[r0], sig, c0.is_call[r0]).delta
            elif m == "svi":
                d = _svi_sticky_delta(c0, r0, fa)
            elif m == "svi_surface":
                d = _surface_sticky_delta(c0, r0, fa)
            else:
                from volcal.calibration import calibrate

                with warnings.catch_warnings():  # fit caveats do not stop the evaluation
                    warnings.simplefilter("ignore", CalibrationWarning)
                    fit = calibrate(c0, m, start=starts.get(m))
                starts[m] = fit.params
                d = _model_delta(fit.params, c0, r0, fa)
            keep = np.isfinite(d)
            n = int(keep.sum())
            cols["snapshot"] += [c0.snapshot.isoformat()] * n
            cols["instrument"] += [str(s) for s in c0.instrument[r0][keep]]
            cols["model"] += [m] * n
            cols["days"] += list(t0[r0][keep] * 365.0)
            cols["z"] += list(z[keep])
            cols["delta"] += list(d[keep])
            cols["unhedged"] += list((v1 - v0)[keep])
            cols["hedged"] += list(((v1 - v0) - d * (fb - fa))[keep])
        if progress is not None:
            progress(step + 1, len(pairs))
    if not cols["model"]:
        raise DataError("no option is quoted in two consecutive snapshots")
    rec = {k: np.asarray(v) for k, v in cols.items()}
    rec["expiry_bucket"] = _bucket(rec["days"].astype(float), EXPIRY_BUCKETS)
    rec["moneyness_bucket"] = _bucket(rec["z"].astype(float), MONEYNESS_BUCKETS)
    for a in rec.values():
        a.setflags(write=False)
    return HedgingEvaluation(
        records=rec,
        models=tuple(models),
        n_steps=len(pairs),
        snapshots=tuple(c.snapshot.isoformat() for c in chains),
    )


__all__ = ["EXPIRY_BUCKETS", "MONEYNESS_BUCKETS", "HedgingEvaluation", "hedging_errors"]
