"""``history``: what the stored fits of one model say over time.

From a :mod:`volcal.store` it builds, per underlying:

* the **parameter series** (one row per stored calibration, ``p_<name>`` with its
  standard error ``se_<name>`` from the Jacobian, fit quality, status);
* the **term structure**: ATM vol and 25-delta risk reversal / butterfly of the fitted
  surface at the stored constant-maturity tenors (7, 30, 60, 90, 180 days);
* **fit quality**: RMSE (vol points) and share of quotes inside bid-ask;
* the snapshot's **30-day vol index** against **DVOL** (an hourly ``timestamp,iv``
  file, e.g. ../shared/data/raw/lucas-btc-vrp/btc_dvol_1h.csv; DVOL at a snapshot is
  interpolated linearly between the two hourly values around it, the file's stamps
  taken as they are): gap = index - DVOL, with bias, mean absolute gap, correlation;
* a **stability table**: the median (and 90th percentile) over consecutive successful
  fits of :math:`|x_t - x_{t-1}| / |x_{t-1}|` for every scalar parameter and for the
  30-day ATM vol, RR25 and BF25, separately for each settings group (so fits with and
  without regularization toward the previous fit, ``strength``, compare side by side).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal.errors import DataError

__all__ = ["History", "dvol_at", "history", "read_dvol", "stability_table"]

_OBS = (("atm_30d", "atm"), ("rr25_30d", "rr25"), ("bf25_30d", "bf25"))


def read_dvol(path: str | Path) -> pd.Series:
    """Hourly DVOL (vol points) indexed by UTC time from a ``timestamp,iv`` CSV (iv as a
    decimal, as Deribit's history API gives it; a ``close`` column is accepted too)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no DVOL file at {p}")
    try:
        df = pd.read_csv(p)
    except Exception as exc:
        raise DataError(f"cannot read DVOL file {p}: {exc}") from None
    col = "iv" if "iv" in df.columns else ("close" if "close" in df.columns else None)
    if "timestamp" not in df.columns or col is None:
        raise DataError(f"DVOL file {p} needs columns timestamp and iv (or close)")
    ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce")
    val = pd.to_numeric(df[col], errors="coerce")
    ok = ts.notna() & val.notna()
    if not ok.any():
        raise DataError(f"DVOL file {p} has no valid rows")
    s = pd.Series(val[ok].to_numpy(dtype=float), index=pd.DatetimeIndex(ts[ok]), name="dvol")
    s = s[~s.index.duplicated()].sort_index()
    if s.median() < 5.0:  # decimals -> vol points
        s = 100.0 * s
    return s


def dvol_at(series: pd.Series, times: Any) -> np.ndarray:
    """DVOL at ``times``: linear in time between the hourly values around each time;
    NaN outside the series or across a gap longer than two hours."""
    t = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    x = pd.DatetimeIndex(series.index).asi8.astype(np.float64)
    y = series.to_numpy(dtype=np.float64)
    q = t.asi8.astype(np.float64)
    out = np.interp(q, x, y, left=np.nan, right=np.nan)
    j = np.clip(np.searchsorted(x, q), 1, max(len(x) - 1, 1))
    gap = (x[j] - x[j - 1]) > 2 * 3600e9 if len(x) > 1 else np.ones(q.shape, bool)
    out[gap] = np.nan
    return np.asarray(out)


def _settings_label(text: Any) -> str:
    try:
        d = json.loads(text) if isinstance(text, str) else dict(text or {})
    except (TypeError, ValueError):
        return "?"
    if not d:
        return "default"
    return ", ".join(f"{k}={d[k]}" for k in sorted(d))


def stability_table(series: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Median and 90th percentile of the relative change per step of each column,
    over consecutive successful fits, per (underlying, settings)."""
    rows = []
    ok = series[series["status"] == "ok"]
    for (und, lab), g in ok.groupby(["underlying", "settings_label"], sort=True):
        g = g.sort_values("snapshot_time")
        for c in columns:
            if c not in g.columns:
                continue
            v = g[c].to_numpy(dtype=np.float64)
            prev, cur = v[:-1], v[1:]
            with np.errstate(all="ignore"):
                rel = np.abs(cur - prev) / np.abs(prev)
            rel = rel[np.isfinite(rel)]
            rows.append(
                {
                    "underlying": und,
                    "settings": lab,
                    "parameter": c[2:] if c.startswith("p_") else c,
                    "median_rel_change": float(np.median(rel)) if rel.size else float("nan"),
                    "p90_rel_change": float(np.quantile(rel, 0.9)) if rel.size else float("nan"),
                    "steps": int(rel.size),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "underlying", "settings", "parameter", "median_rel_change", "p90_rel_change", "steps",
        ],
    )  # fmt: skip


def _num(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    return x


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _num(v) for k, v in r.items()} for r in df.to_dict("records")]


@dataclass(frozen=True, eq=False)
class History:
    """Stored fits of one model over time (see the module docs); immutable.

    Attributes
    ----------
    model : str
    series : DataFrame
        One row per calibration: ids, underlying, snapshot time, settings label,
        status, quality, ``p_<name>``/``se_<name>``, ``atm_30d``/``rr25_30d``/
        ``bf25_30d``, ``vol_index_30d`` and ``dvol`` (vol points) when known.
    term : DataFrame
        ATM vol and 25/10-delta RR/BF per calibration and tenor (vol units).
    quality : DataFrame
        Per underlying: fits, ok fits, median / p90 RMSE, median inside share.
    stability : DataFrame
        :func:`stability_table` of the parameters and 30-day observables.
    dvol_stats : dict
        n, bias, mean_abs_gap, corr of the 30-day index against DVOL (empty without
        DVOL or without overlap).
    params : tuple of str
        Scalar parameter names of the model in the series.
    """

    model: str
    series: pd.DataFrame
    term: pd.DataFrame
    quality: pd.DataFrame
    stability: pd.DataFrame
    dvol_stats: dict[str, float] = field(default_factory=dict)
    params: tuple[str, ...] = ()

    def latest_term(self) -> pd.DataFrame:
        """ATM vol and 25-delta RR/BF per tenor of the last successful fit of each
        underlying and settings group (vol units)."""
        cols = ["underlying", "settings", "snapshot_time", "tenor_days", "atm", "rr25", "bf25"]
        ok = self.series[self.series["status"] == "ok"]
        if ok.empty or self.term.empty:
            return pd.DataFrame(columns=cols)
        last = ok.sort_values("snapshot_time").groupby(["underlying", "settings_label"]).tail(1)
        t = self.term.merge(
            last[["id", "settings_label"]], left_on="calibration_id", right_on="id"
        ).rename(columns={"settings_label": "settings"})
        return t.sort_values(["underlying", "settings", "tenor_days"])[cols].reset_index(drop=True)

    def headline(self) -> str:
        s = self.series
        if s.empty:
            return f"{self.model}: no stored calibrations"
        t0, t1 = s["snapshot_time"].min(), s["snapshot_time"].max()
        und = ", ".join(sorted(s["underlying"].unique()))
        return (
            f"{self.model} history: {len(s)} fits ({int((s['status'] == 'ok').sum())} ok) of "
            f"{und}, {t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC"
        )

    def summary(self) -> str:
        lines = [self.headline()]
        if not self.stability.empty:
            lines.append("stability (median relative change per step):")
            for r in self.stability.to_dict("records"):
                lines.append(
                    f"  {r['underlying']:<5} {r['settings']:<20} {r['parameter']:<10} "
                    f"{100 * r['median_rel_change']:8.2f} %  (p90 {100 * r['p90_rel_change']:.2f} %, "
                    f"{r['steps']} steps)"
                )
        for r in self.quality.to_dict("records"):
            lines.append(
                f"quality {r['underlying']}: {r['fits']} fits, {r['ok']} ok, median RMSE "
                f"{r['median_rmse']:.3f} vol pts, median inside {100 * r['median_inside']:.1f} %"
            )
        if self.dvol_stats:
            lines.append(
                "30-day index vs DVOL: "
                + ", ".join(f"{k} {v:.3f}" for k, v in self.dvol_stats.items())
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        keep = [
            c
            for c in self.series.columns
            if c not in ("params", "stderr", "settings", "warnings", "warm_start")
        ]
        return {
            "model": self.model,
            "params": list(self.params),
            "series": _records(self.series[keep]),
            "term": _records(self.term),
            "quality": _records(self.quality),
            "stability": _records(self.stability),
            "dvol": {k: _num(v) for k, v in self.dvol_stats.items()},
        }


def history(
    store: Any,
    model: str,
    *,
    underlying: str | None = None,
    since: Any = None,
    until: Any = None,
    dvol: str | Path | pd.Series | None = None,
) -> History:
    """Build the :class:`History` of ``model`` from a store (a
    :class:`~volcal.store.Store` or a path); ``dvol`` is a DVOL file or series."""
    from volcal.store.core import Store, open_store

    st = store if isinstance(store, Store) else open_store(store, read_only=True)
    name = model.lower()
    cal = st.calibrations(model=name, underlying=underlying, since=since, until=until)
    if cal.empty:
        raise DataError(
            f"no stored {name} calibrations"
            + (f" of {underlying.upper()}" if underlying else "")
            + f" in {st.path}"
        )
    cal = cal.copy()
    cal["settings_label"] = [_settings_label(x) for x in cal["settings"]]
    params = tuple(c[2:] for c in cal.columns if c.startswith("p_"))
    term = st.conventions(model=name, underlying=underlying)
    term = term[term["calibration_id"].isin(cal["id"])].reset_index(drop=True)
    for col, src in _OBS:
        t30 = term[term["tenor_days"] == 30].set_index("calibration_id")[src]
        cal[col] = cal["id"].map(t30).astype(float)
    snaps = st.snapshots(underlying=underlying)
    if "vol_index_30d" in snaps.columns:
        idx = snaps.set_index("id")["vol_index_30d"]
        cal["vol_index_30d"] = cal["snapshot_id"].map(idx).astype(float)
    else:
        cal["vol_index_30d"] = np.nan
    stats: dict[str, float] = {}
    cal["dvol"] = np.nan
    if dvol is not None:
        series = dvol if isinstance(dvol, pd.Series) else read_dvol(dvol)
        # DVOL is BTC's index: compare BTC rows (the file names no underlying)
        btc = (cal["underlying"] == "BTC").to_numpy()
        cal.loc[btc, "dvol"] = dvol_at(series, cal.loc[btc, "snapshot_time"])
        # one index value per snapshot (several settings may share it)
        per_snap = cal[btc].drop_duplicates("snapshot_id")
        gap = (per_snap["vol_index_30d"] - per_snap["dvol"]).to_numpy(dtype=float)
        m = np.isfinite(gap)
        if m.any():
            a = per_snap["vol_index_30d"].to_numpy(dtype=float)[m]
            b = per_snap["dvol"].to_numpy(dtype=float)[m]
            stats = {
                "n": float(m.sum()),
                "bias": float(np.mean(gap[m])),
                "mean_abs_gap": float(np.mean(np.abs(gap[m]))),
                "max_abs_gap": float(np.max(np.abs(gap[m]))),
                "corr": float(np.corrcoef(a, b)[0, 1]) if m.sum() > 2 else float("nan"),
            }
    quality = (
        cal.groupby("underlying", sort=True)
        .agg(
            fits=("id", "size"),
            ok=("status", lambda s: int((s == "ok").sum())),
            median_rmse=("rmse_vol", "median"),
            p90_rmse=("rmse_vol", lambda s: float(np.nanquantile(s, 0.9))),
            median_inside=("inside_spread", "median"),
        )
        .reset_index()
    )
    stab = stability_table(cal, [f"p_{p}" for p in params] + [c for c, _ in _OBS])
    drop = [c for c in ("message", "jac_cond", "created_at", "numpy_version", "scipy_version")]
    series = cal.drop(columns=[c for c in drop if c in cal.columns]).reset_index(drop=True)
    return History(
        model=name,
        series=series,
        term=term,
        quality=quality,
        stability=stab,
        dvol_stats=stats,
        params=params,
    )
