"""Surface accuracy on every real snapshot: svi_surface against per-slice SVI and eSSVI.

For every snapshot file in ``../shared/data/raw/svcj-deribit-snapshots`` and each of
BTC and ETH: ``volcal.clean`` the chain, calibrate each model with default settings, and
record the RMSE (vol points) and the share of quotes inside bid-ask of the fitted vols,
whether ``volcal.check_arbitrage(fit.surface())`` finds no static arbitrage on its dense
grid, and the calibration time (``fit.elapsed_s``, min of ``--repeats`` runs). Constant
Heston and Bates are added unless ``--quick`` (they take 10-50 times longer; they have no
``VolSurface``, so their arbitrage column is empty).

Run: ``python benchmarks/surface_accuracy.py --quick [--write]`` (``--write`` puts the
table into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.errors import CalibrationWarning

SECTION = "## Arbitrage-free SVI surface on the real snapshots"


def _data_dir(arg: Path | None) -> Path:
    root = arg or Path(
        os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    return root / "raw" / "svcj-deribit-snapshots"


def run(models: list[str], files: list[Path], repeats: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {m: [] for m in models}
    for n, path in enumerate(files):
        for cur in ("BTC", "ETH"):
            chain = volcal.clean(volcal.read_chain(path, currency=cur))
            for m in models:
                best = np.inf
                fit = None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    for _ in range(repeats):
                        fit = volcal.calibrate(chain, m)
                        best = min(best, fit.elapsed_s)
                assert fit is not None
                try:
                    free = volcal.check_arbitrage(fit.surface()).ok
                except volcal.errors.MethodError:  # type: ignore[attr-defined]
                    free = None
                out[m].append(
                    {
                        "chain": f"{path.stem[-16:]} {cur}",
                        "rmse": fit.rmse_vol,
                        "inside": fit.inside_spread,
                        "arb_free": free,
                        "ms": 1000.0 * best,
                        "status": fit.status,
                        "extra": fit.extra if m == "svi_surface" else {},
                    }
                )
        print(f"  {n + 1}/{len(files)} files", flush=True)
    return out


def table(res: dict[str, list[dict]]) -> str:
    head = (
        "| model | chains | arbitrage-free | median RMSE | worst RMSE | median inside "
        "| lowest inside | median ms | 90% ms |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for m, rs in res.items():
        rm = np.array([r["rmse"] for r in rs])
        ins = np.array([r["inside"] for r in rs])
        ms = np.array([r["ms"] for r in rs])
        arb = [r["arb_free"] for r in rs]
        arb_s = "n/a" if arb[0] is None else f"{sum(bool(a) for a in arb)}/{len(arb)}"
        rows.append(
            f"| {m} | {len(rs)} | {arb_s} | {np.median(rm):.3f} | {rm.max():.3f} "
            f"| {100 * np.median(ins):.1f} % | {100 * ins.min():.1f} % "
            f"| {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} |"
        )
    return head + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="data root (default ../shared/data)")
    ap.add_argument("--quick", action="store_true", help="skip constant Heston and Bates")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--repeats", type=int, default=1, help="timing: min of this many runs")
    ap.add_argument("--write", action="store_true", help="write the table to BENCHMARKS.md")
    args = ap.parse_args()
    files = sorted(_data_dir(args.data).glob("deribit_options_snapshot_*.csv"))
    if args.limit:
        files = files[: args.limit]
    models = ["svi", "essvi", "svi_surface"] + ([] if args.quick else ["heston", "bates"])
    # warm the compiled kernels so the first chain's time is not compile time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        first = volcal.clean(volcal.read_chain(files[0], currency="BTC"))
        for m in models:
            volcal.calibrate(first, m)
    t0 = time.perf_counter()
    res = run(models, files, args.repeats)
    wall = time.perf_counter() - t0
    text = table(res)
    print(text)
    ss = res["svi_surface"]
    worst = sorted(ss, key=lambda r: -r["rmse"])[:5]
    print("worst svi_surface chains:")
    for r in worst:
        print(
            f"  {r['chain']}: RMSE {r['rmse']:.3f} (free slices {r['extra']['rmse_free_vol']:.3f})"
            f", inside {100 * r['inside']:.1f} %, {r['ms']:.0f} ms, status {r['status']}"
        )
    cost = np.array([r["extra"]["constraint_cost_vol"] for r in ss])
    ncon = np.array([r["extra"]["n_constrained"] for r in ss])
    nsl = np.array([len(r["extra"]["slices"]) for r in ss])
    summary = (
        f"constraint cost (RMSE of the surface minus RMSE of the free slices, vol points): "
        f"median {np.median(cost):.3f}, 90% {np.percentile(cost, 90):.3f}, max {cost.max():.3f}; "
        f"slices refitted under constraints: {ncon.sum()} of {nsl.sum()}"
    )
    print(summary)
    print(f"wall time {wall:.0f} s")
    if args.write:
        from _markdown import write_section

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        cmd = "python benchmarks/surface_accuracy.py" + (" --quick" if args.quick else "")
        if args.repeats != 1:
            cmd += f" --repeats {args.repeats}"
        write_section(
            SECTION,
            f"{SECTION}\n\n"
            f"`{cmd} --write` over {len(files)} snapshot files x BTC/ETH of "
            "../shared/data/raw/svcj-deribit-snapshots, each chain `volcal.clean`ed and fitted "
            "with default settings. Baselines in the same table: per-expiry SVI (`svi`, "
            "butterfly-free slices, no calendar condition) and eSSVI (`essvi`). RMSE in vol "
            "points over the quotes used; inside = share of fitted vols inside the quote's "
            "bid-ask; arbitrage-free = `volcal.check_arbitrage(fit.surface()).ok` on its dense "
            f"grid; ms = `fit.elapsed_s`, min of {args.repeats} run(s), {platform.machine()}, "
            f"2 cores shared with other jobs (load average {load:.1f} at the end).\n\n"
            f"{text}\n{summary}.\n",
        )


if __name__ == "__main__":
    main()
