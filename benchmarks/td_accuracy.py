"""Time-dependent Heston/Bates against constant Heston/Bates on real Deribit chains.

Run from the repository root (real data from ../shared/data)::

    python benchmarks/td_accuracy.py [--quick] [--chains N]

For every chain (``volcal.clean(read_chain(snapshot, currency))``, snapshots in time
order, BTC and ETH) the four models are calibrated with the defaults of
``volcal.calibrate`` (cold start, spread weights); ``heston_td`` / ``bates_td`` are then
recalibrated warm from the previous snapshot's fit of the same currency (the live path:
``start=previous``; the first chain of a currency starts from its own cold fit). Printed:
median and worst RMSE (vol points, every quote used), median share inside bid-ask,
median cold and warm wall time per chain (ms, one run each - the machine is shared, so
read them as an upper bound), and whether every parameter is finite and inside its box.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.errors import CalibrationWarning, DataWarning

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
SNAPS = DATA / "svcj-deribit-snapshots"
MODELS = ("heston", "bates", "heston_td", "bates_td")


def _in_box(params: object) -> bool:
    x = params.to_vector()  # type: ignore[attr-defined]
    lo, hi = params.bounds()  # type: ignore[attr-defined]
    return bool(np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 snapshots x BTC/ETH")
    ap.add_argument("--chains", type=int, default=8, help="snapshots per currency (full run)")
    args = ap.parse_args()
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    if not files:
        raise SystemExit(f"no snapshots in {SNAPS}")
    n = 2 if args.quick else args.chains
    picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, n).round()]
    rows: dict[str, dict[str, list[float]]] = {
        m: {"rmse": [], "inside": [], "cold": [], "warm": [], "box": []} for m in MODELS
    }
    for cur in ("BTC", "ETH"):
        prev: dict[str, object] = {}
        for f in picks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                chain = volcal.clean(volcal.read_chain(f, currency=cur))
            for m in MODELS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    t0 = time.perf_counter()
                    fit = volcal.calibrate(chain, m)
                    cold = time.perf_counter() - t0
                    warm = float("nan")
                    if m.endswith("_td"):
                        t0 = time.perf_counter()
                        wfit = volcal.calibrate(chain, m, start=prev.get(m, fit))
                        warm = time.perf_counter() - t0
                        prev[m] = wfit
                r = rows[m]
                r["rmse"].append(fit.rmse_vol)
                r["inside"].append(fit.inside_spread)
                r["cold"].append(1e3 * cold)
                r["warm"].append(1e3 * warm)
                r["box"].append(float(_in_box(fit.params)))
                print(
                    f"{f.name[25:40]} {cur} {m:<10} rmse {fit.rmse_vol:6.3f} "
                    f"inside {100 * fit.inside_spread:5.1f}% cold {1e3 * cold:8.0f} ms "
                    f"warm {1e3 * warm:8.0f} ms {fit.status}",
                    flush=True,
                )
    print()
    print(f"{len(picks)} snapshots x BTC/ETH = {2 * len(picks)} chains")
    print(
        "| model | median RMSE (vol pts) | worst RMSE | median inside | cold ms (median) "
        "| warm ms (median) | params finite, in box |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in MODELS:
        r = rows[m]
        warm = np.nanmedian(r["warm"]) if m.endswith("_td") else float("nan")
        print(
            f"| {m} | {np.median(r['rmse']):.2f} | {np.max(r['rmse']):.2f} | "
            f"{100 * np.median(r['inside']):.0f} % | {np.median(r['cold']):.0f} | "
            + ("-" if np.isnan(warm) else f"{warm:.0f}")
            + f" | {int(sum(r['box']))}/{len(r['box'])} |"
        )


if __name__ == "__main__":
    main()
