"""Time-dependent Heston/Bates against constant Heston/Bates on real Deribit chains.

Run from the repository root (real data from ../shared/data)::

    python benchmarks/td_accuracy.py [--quick] [--chains N] [--mode bootstrap|joint]

For every chain (``volcal.clean(read_chain(snapshot, currency))``, snapshots in time
order, BTC and ETH) the four models are calibrated with the defaults of
``volcal.calibrate`` (cold start, spread weights); ``heston_td`` / ``bates_td`` are then
recalibrated warm from the previous snapshot's fit of the same currency (the live path:
``start=previous``; the first chain of a currency starts from its own cold fit). Printed:
median and worst RMSE (vol points, every quote used), median share inside bid-ask,
median cold and warm wall time per chain (ms, one run each - the machine is shared, so
read them as an upper bound), whether every parameter is finite and inside its box, and
the RMSE of every model pooled over the quotes of each expiry bucket (T < 7 days, 7-30,
30-90, > 90 days) and of the wings (|k| / (sigma sqrt T) > 1.5) against the centre.
``--mode joint`` calibrates the time-dependent models with ``mode="joint"`` (bootstrap,
then every parameter at once); ``--models bates_td`` runs a subset (e.g. for timing
before/after runs interleaved on a shared machine).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.calibration.td import calibrate_td
from volcal.errors import CalibrationWarning, DataWarning

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
SNAPS = DATA / "svcj-deribit-snapshots"
MODELS = ("heston", "bates", "heston_td", "bates_td")
BUCKETS = (0.0, 7 / 365, 30 / 365, 90 / 365, np.inf)
BUCKET_NAMES = ("T<7d", "7-30d", "30-90d", ">90d")


def _rms(x: list[float]) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a**2))) if a.size else float("nan")


def _in_box(params: object) -> bool:
    x = params.to_vector()  # type: ignore[attr-defined]
    lo, hi = params.bounds()  # type: ignore[attr-defined]
    return bool(np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 snapshots x BTC/ETH")
    ap.add_argument("--chains", type=int, default=8, help="snapshots per currency (full run)")
    ap.add_argument("--mode", default="bootstrap", choices=("bootstrap", "joint"))
    ap.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS)
    )
    args = ap.parse_args()
    models = tuple(m for m in args.models.split(",") if m)
    if not models or any(m not in MODELS for m in models):
        raise SystemExit(f"--models: choose from {', '.join(MODELS)}")
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    if not files:
        raise SystemExit(f"no snapshots in {SNAPS}")
    n = 2 if args.quick else args.chains
    picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, n).round()]
    rows: dict[str, dict[str, list[float]]] = {
        m: {
            "rmse": [],
            "inside": [],
            "cold": [],
            "warm": [],
            "box": [],
            "wing": [],
            "centre": [],
            **{b: [] for b in BUCKET_NAMES},
        }
        for m in models
    }
    for cur in ("BTC", "ETH"):
        prev: dict[str, object] = {}
        for f in picks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                chain = volcal.clean(volcal.read_chain(f, currency=cur))
            for m in models:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    # volcal.calibrate takes no mode: the joint runs call calibrate_td
                    # (what volcal.calibrate dispatches to) with mode="joint"
                    fn = calibrate_td if (m.endswith("_td") and args.mode == "joint") else None
                    kw = {"mode": args.mode} if fn is not None else {}
                    cal = fn or volcal.calibrate
                    t0 = time.perf_counter()
                    fit = cal(chain, m, **kw)
                    cold = time.perf_counter() - t0
                    warm = float("nan")
                    if m.endswith("_td"):
                        t0 = time.perf_counter()
                        wfit = cal(chain, m, start=prev.get(m, fit), **kw)
                        warm = time.perf_counter() - t0
                        prev[m] = wfit
                r = rows[m]
                r["rmse"].append(fit.rmse_vol)
                r["inside"].append(fit.inside_spread)
                r["cold"].append(1e3 * cold)
                r["warm"].append(1e3 * warm)
                r["box"].append(float(_in_box(fit.params)))
                qs = fit.quotes
                err = 100.0 * (np.asarray(fit.model_iv) - qs.iv_mid)
                bucket = np.digitize(qs.t, BUCKETS) - 1
                for b, name in enumerate(BUCKET_NAMES):
                    r[name].extend(err[bucket == b].tolist())
                wing = np.abs(qs.k) / (qs.iv_mid * np.sqrt(qs.t)) > 1.5
                r["wing"].extend(err[wing].tolist())
                r["centre"].extend(err[~wing].tolist())
                print(
                    f"{f.name[25:40]} {cur} {m:<10} rmse {fit.rmse_vol:6.3f} "
                    f"inside {100 * fit.inside_spread:5.1f}% cold {1e3 * cold:8.0f} ms "
                    f"warm {1e3 * warm:8.0f} ms {fit.status}",
                    flush=True,
                )
    print()
    print(f"{len(picks)} snapshots x BTC/ETH = {2 * len(picks)} chains, td mode {args.mode}")
    print(
        "| model | median RMSE (vol pts) | worst RMSE | median inside | cold ms (median) "
        "| warm ms (median) | params finite, in box |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in models:
        r = rows[m]
        warm = np.nanmedian(r["warm"]) if m.endswith("_td") else float("nan")
        print(
            f"| {m} | {np.median(r['rmse']):.2f} | {np.max(r['rmse']):.2f} | "
            f"{100 * np.median(r['inside']):.0f} % | {np.median(r['cold']):.0f} | "
            + ("-" if np.isnan(warm) else f"{warm:.0f}")
            + f" | {int(sum(r['box']))}/{len(r['box'])} |"
        )

    print()
    print("RMSE (vol pts) pooled over the quotes of each bucket (cold fits)")
    print("| model | " + " | ".join(BUCKET_NAMES) + " | centre | wings |")
    print("|---|" + "---|" * (len(BUCKET_NAMES) + 2))
    for m in models:
        r = rows[m]
        cells = [f"{_rms(r[b]):.2f}" for b in (*BUCKET_NAMES, "centre", "wing")]
        print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
