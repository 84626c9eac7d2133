"""Fit every model to every BTC and ETH snapshot in ../shared/data/raw/svcj-deribit-snapshots.

For each snapshot file and currency the chain is read and cleaned (``volcal.clean``), then
every model (svi, sabr, heston, bates, merton, kou, vg, svcj) is calibrated cold with the
library defaults (spread weights, global stage for the Fourier models). Per fit it records
the status, RMSE (vol points), inside-spread share, parameter finiteness, wall time and,
for the Fourier models, the largest difference between the vols of the calibration's COS
grid and those of the library pricer ``volcal.price`` (the grid's accuracy); an exception, a NaN RMSE or parameter, or a fit that overruns its time limit counts as a
failure. It prints one summary row per model and lists every failure.

This is the evidence behind the bounds asserted in ``tests/test_calibration_sweep.py``
(which runs a representative subset) and the sweep table in BENCHMARKS.md.

Run: ``python benchmarks/sweep_calibration.py [--data DIR] [--models heston,bates]
[--limit N] [--csv out.csv]`` (default data ``../shared/data``; about 12 minutes on one
core for all 114 chains x 8 models, most of it SVCJ).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import volcal
from volcal.errors import CalibrationWarning, DataWarning, VolcalError

MODELS = ("svi", "sabr", "heston", "bates", "merton", "kou", "vg", "svcj")


def _finite_params(fit: volcal.CalibrationResult) -> bool:
    p = fit.params
    if hasattr(p, "to_vector"):
        return bool(np.all(np.isfinite(p.to_vector())))
    vals = [s.to_vector() for s in getattr(p, "smiles", ())]
    return bool(vals) and all(np.all(np.isfinite(v)) for v in vals)


def _grid_vs_library(fit: volcal.CalibrationResult) -> float:
    """Largest |vol from the calibration grid - vol from volcal.price| over the quotes,
    in vol points (Fourier models; NaN for smiles or when the library pricer gives up)."""
    if not hasattr(fit.params, "log_char_func"):
        return float("nan")
    q = fit.quotes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            lib = volcal.model_iv(fit.params, 1.0, np.exp(q.k), q.t)
    except VolcalError:
        return float("nan")
    d = np.abs(lib - fit.model_iv)
    return float(100.0 * np.nanmax(d)) if np.any(np.isfinite(d)) else float("nan")


def fit_one(chain: object, model: str, max_time: float) -> dict[str, object]:
    """One calibration, never raising: status, quality, time, failure reason."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            fit = volcal.calibrate(chain, model, max_time=max_time)
    except (VolcalError, ValueError, FloatingPointError, ArithmeticError) as exc:
        return {
            "status": "exception",
            "failure": f"{type(exc).__name__}: {exc}",
            "ms": 1e3 * (time.perf_counter() - t0),
        }
    wall = time.perf_counter() - t0
    failure = ""
    if not np.isfinite(fit.rmse_vol):
        failure = "NaN RMSE"
    elif not _finite_params(fit):
        failure = "non-finite parameters"
    elif wall > 1.5 * max_time + 2.0:
        failure = f"overran the {max_time:g} s limit ({wall:.1f} s)"
    elif fit.status == "failed":
        failure = f"status failed: {fit.message}"
    return {
        "grid_vs_library_vp": _grid_vs_library(fit),
        "status": fit.status,
        "rmse_vol": fit.rmse_vol,
        "inside": fit.inside_spread,
        "n_used": fit.n_used,
        "expiries": len(fit.slices),
        "worst_slice_rmse": max((s.rmse_vol for s in fit.slices), default=float("nan")),
        "nfev": fit.nfev,
        "ms": 1e3 * wall,
        "failure": failure,
    }


def _max_or_dash(col: pd.Series) -> str:
    v = col.to_numpy(dtype=float)
    return "-" if not np.any(np.isfinite(v)) else f"{np.nanmax(v):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--limit", type=int, default=0, help="only the first N snapshot files")
    ap.add_argument("--max-time", type=float, default=20.0)
    ap.add_argument("--csv", type=Path, default=None, help="write every fit's row here")
    args = ap.parse_args()
    root = args.data or Path(
        os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    files = sorted((root / "raw" / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv"))
    if args.limit:
        files = files[: args.limit]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    t_all = time.perf_counter()
    for path in files:
        for cur in ("BTC", "ETH"):
            label = f"{path.stem[-16:]} {cur}"
            try:
                chain = volcal.clean(volcal.read_chain(path, currency=cur))
            except VolcalError as exc:
                rows.append(
                    {"chain": label, "model": "-", "status": "exception", "failure": str(exc)}
                )
                continue
            for model in models:
                row = {"chain": label, "model": model, **fit_one(chain, model, args.max_time)}
                rows.append(row)
                if row["failure"]:
                    print(f"FAIL {label} {model}: {row['failure']}", flush=True)
            print(f"done {label}", flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(
        f"\n{len(files)} files, {df['chain'].nunique()} chains, {len(df)} fits "
        f"in {time.perf_counter() - t_all:.0f} s\n"
    )
    print(
        "| model | fits | ok | max_iter / time_limit / degraded | failures "
        "| RMSE median | RMSE p90 | RMSE max | inside median | ms median | ms max "
        "| grid vs volcal.price, max (vp) |"
    )
    print("| --- " * 12 + "|")
    for model in models:
        d = df[df["model"] == model]
        fitted = d[d["status"] != "exception"]
        r = fitted["rmse_vol"].to_numpy(dtype=float)
        ms = d["ms"].to_numpy(dtype=float)
        counts = "/".join(
            str(int((d["status"] == s).sum())) for s in ("max_iter", "time_limit", "degraded")
        )
        print(
            f"| {model} | {len(d)} | {int((d['status'] == 'ok').sum())} | {counts} "
            f"| {int((d['failure'] != '').sum())} "
            f"| {np.nanmedian(r):.3f} | {np.nanquantile(r, 0.9):.3f} | {np.nanmax(r):.3f} "
            f"| {np.nanmedian(fitted['inside'].to_numpy(dtype=float)):.2f} "
            f"| {np.median(ms):.0f} | {np.max(ms):.0f} | {_max_or_dash(fitted['grid_vs_library_vp'])} |"
        )
    fails = df[df["failure"].fillna("") != ""]
    print(f"\nfailures: {len(fails)}")
    for _, f in fails.iterrows():
        print(f"  {f['chain']} {f['model']}: {f['failure']}")
    nonok = df[(df["status"] != "ok") & (df["failure"].fillna("") == "")]
    if len(nonok):
        print(f"\nfits with a non-ok status (best parameters returned): {len(nonok)}")
        for _, f in nonok.iterrows():
            print(f"  {f['chain']} {f['model']}: {f['status']}, RMSE {f['rmse_vol']:.3f}")


if __name__ == "__main__":
    main()
