"""Surface fits on every real Deribit snapshot: time, quality and static arbitrage.

For every snapshot in ../shared/data/raw/svcj-deribit-snapshots and both coins the
cleaned chain is prepared once (``as_quotes``) and the same quotes go to

* ``volcal.calibrate(q, "essvi")`` (slice-by-slice eSSVI with the no-arbitrage box),
* ``volcal.calibrate(q, "ssvi")`` (power-law SSVI, joint Levenberg-Marquardt),
* ``volcal.calibrate(q, "svi")`` (the foundation's per-expiry SVI, no calendar
  constraint).

Each fit is timed as the median of ``--repeat`` calls after one warm-up (the whole
``calibrate`` call: search, model vols, per-expiry statistics, result object). Every
fitted surface then goes through ``check_arbitrage`` (dense k x t grid). Finally the
throughput of vectorised queries (``implied_vol`` and ``local_vol`` of a 12-expiry
eSSVI surface and of the SVI surface on 100,000 random (k, t) points) is measured.

Run: ``python benchmarks/bench_surface.py [--limit N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.calibration.quotes import as_quotes
from volcal.errors import CalibrationWarning
from volcal.surface import check_arbitrage

DATA = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SNAPS = DATA / "raw" / "svcj-deribit-snapshots"


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    if args.limit:
        files = files[: args.limit]
    rows = []
    surfaces = {}
    for f in files:
        for cur in ("BTC", "ETH"):
            q = as_quotes(volcal.clean(volcal.read_chain(f, currency=cur)))
            rec = {"file": f.name, "cur": cur, "n_exp": q.n_slices, "n": len(q)}
            for model in ("essvi", "ssvi", "svi"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    dt, fit = timed(lambda m=model, q=q: volcal.calibrate(q, m), args.repeat)
                rep = check_arbitrage(fit)
                rec[model] = (dt, fit.rmse_vol, fit.inside_spread, rep.ok, fit.status)
                surfaces[model] = fit.surface()
            rows.append(rec)
            e, s, v = rec["essvi"], rec["ssvi"], rec["svi"]
            print(
                f"{f.name[25:41]} {cur} exp={rec['n_exp']:2d} n={rec['n']:3d} | "
                f"essvi {1e3 * e[0]:6.1f} ms rmse {e[1]:5.2f} arb-free {e[3]} | "
                f"ssvi {1e3 * s[0]:6.1f} ms rmse {s[1]:5.2f} arb-free {s[3]} | "
                f"svi {1e3 * v[0]:6.1f} ms rmse {v[1]:5.2f} arb-free {v[3]}",
                flush=True,
            )
    print("\nsummary over", len(rows), "chains")
    for model in ("essvi", "ssvi", "svi"):
        t = np.array([r[model][0] for r in rows]) * 1e3
        rm = np.array([r[model][1] for r in rows])
        ins = np.array([r[model][2] for r in rows])
        ok = np.array([r[model][3] for r in rows])
        t12 = np.array([r[model][0] for r in rows if r["n_exp"] == 12]) * 1e3
        print(
            f"{model:6s} time median {np.median(t):6.1f} ms p90 {np.percentile(t, 90):6.1f} ms "
            f"(12-expiry chains: median {np.median(t12):6.1f} ms, n={t12.size}) | "
            f"RMSE median {np.median(rm):.2f} max {rm.max():.2f} vol pts | "
            f"inside bid-ask median {100 * np.median(ins):.1f}% | "
            f"arbitrage-free {ok.sum()}/{ok.size}"
        )
    rng = np.random.default_rng(0)
    n = 100_000
    for model in ("essvi", "svi"):
        surf = surfaces[model]
        k = rng.uniform(-1.0, 1.0, n)
        t = rng.uniform(0.002, 1.0, n)
        dt_iv, _ = timed(lambda s=surf, k=k, t=t: s.implied_vol(k, t), args.repeat)
        dt_lv, _ = timed(lambda s=surf, k=k, t=t: s.local_vol(k, t), args.repeat)
        print(
            f"{model} surface ({len(surf.t_nodes)} expiries), {n} random (k, t): implied_vol "
            f"{n / dt_iv / 1e6:.2f} M/s, local_vol {n / dt_lv / 1e6:.2f} M/s"
        )


if __name__ == "__main__":
    main()
