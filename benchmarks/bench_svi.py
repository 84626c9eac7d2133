"""SVI slice-fit time and quality on every expiry of the real Deribit snapshots.

For each slice (cleaned out-of-the-money quotes with bids, spread weights) the same
inputs go to

* volcal's quasi-explicit fit (``fit_svi_slice``: compiled inner problem, seed grid,
  zooms, Newton polish, butterfly admissibility of every candidate), and
* the usual hand-written approach: ``scipy.optimize.least_squares`` (trust-region
  reflective) on the five raw SVI parameters inside box bounds, from the standard start
  ``a = min variance / 2, b = 0.1, rho = -0.5, m = 0, sigma = 0.1``, with no butterfly
  constraint.

Reported: median / 90th-percentile time per slice, weighted RMSE in vol points and the
share of fitted smiles free of butterfly arbitrage (``SVI.is_arbitrage_free``).

Run: ``python benchmarks/bench_svi.py [--limit N]`` (default: all 57 snapshots, BTC
and ETH).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import volcal
from volcal.calibration.quotes import prepare_quotes
from volcal.errors import ParameterError
from volcal.models import SVI
from volcal.models.svi_fit import fit_svi_slice


def scipy_fit(k: np.ndarray, iv: np.ndarray, t: float, w: np.ndarray) -> SVI | None:
    v = iv * iv * t
    sw = np.sqrt(w)

    def res(x: np.ndarray) -> np.ndarray:
        a, b, rho, m, s = x
        d = k - m
        model = a + b * (rho * d + np.sqrt(d * d + s * s))
        return sw * (np.sqrt(np.maximum(model, 1e-12) / t) - iv)

    x0 = np.array([0.5 * v.min(), 0.1, -0.5, 0.0, 0.1])
    lo = [-1.0, 0.0, -0.999, -2.0, 1e-4]
    hi = [1.0, 5.0, 0.999, 2.0, 5.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = least_squares(res, x0, bounds=(lo, hi), method="trf")
    try:
        return SVI(*sol.x)
    except ParameterError:  # a fit with negative minimal variance
        return None


def rmse(smile: SVI | None, k: np.ndarray, iv: np.ndarray, t: float, w: np.ndarray) -> float:
    if smile is None:
        return float("nan")
    e = smile.implied_vol(k, t) - iv
    return float(100 * np.sqrt(np.sum(w * e * e) / np.sum(w)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N snapshots only")
    args = ap.parse_args()
    root = Path(
        os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    files = sorted((root / "raw" / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv"))
    files = files[: args.limit]
    slices = []
    for f in files:
        for cur in ("BTC", "ETH"):
            q = prepare_quotes(volcal.clean(volcal.read_chain(f, currency=cur)))
            otm = np.where(q.is_call, q.k >= 0, q.k <= 0)
            q = q.subset(otm)
            w = q.weights("spread")
            for i in range(q.n_slices):
                s = q.slice_index == i
                slices.append((q.k[s], q.iv_mid[s], float(q.t_slices[i]), w[s]))
    fit_svi_slice(*slices[0][:3], slices[0][3])  # compile outside the timing
    res: dict[str, dict[str, list[float]]] = {
        n: {"time": [], "rmse": [], "free": []} for n in ("volcal", "scipy")
    }
    fitters = {"volcal": fit_svi_slice, "scipy": scipy_fit}
    for k, iv, t, w in slices:
        for name, fn in fitters.items():
            t0 = time.perf_counter()
            sm = fn(k, iv, t, w)
            res[name]["time"].append(time.perf_counter() - t0)
            res[name]["rmse"].append(rmse(sm, k, iv, t, w))  # type: ignore[arg-type]
            res[name]["free"].append(float(sm is not None and sm.is_arbitrage_free()))  # type: ignore[union-attr]
    n_q = np.array([s[0].size for s in slices])
    print(
        f"{len(files)} snapshots x BTC/ETH: {len(slices)} slices, "
        f"{int(np.median(n_q))} quotes per slice (median)\n"
    )
    print(
        "| fitter | median ms / slice | p90 ms | median RMSE (vol pts) | p90 RMSE | arbitrage-free |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        tt = 1e3 * np.array(r["time"])
        rm = np.array(r["rmse"])
        print(
            f"| {name} | {np.median(tt):.3f} | {np.quantile(tt, 0.9):.3f} | "
            f"{np.nanmedian(rm):.3f} | {np.nanquantile(rm, 0.9):.3f} | "
            f"{100 * np.mean(r['free']):.1f} % |"
        )
    ratio = np.array(res["scipy"]["time"]) / np.array(res["volcal"]["time"])
    better = np.array(res["volcal"]["rmse"]) <= np.array(res["scipy"]["rmse"]) + 1e-9
    print(
        f"\nper-slice time ratio scipy / volcal: median {np.median(ratio):.1f}x; "
        f"volcal RMSE <= scipy RMSE on {100 * np.mean(better):.1f} % of slices"
    )


if __name__ == "__main__":
    main()
