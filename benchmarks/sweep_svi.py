"""Load, clean and SVI-fit every priced option chain in ../shared/data/raw.

Reports, per chain: quotes, used, main exclusion reasons, SVI RMSE (vol points), the
share of fitted vols inside the quotes' bid-ask vol interval, the worst expiry and the
time to clean and fit; then the distribution over all chains. This is the evidence
behind the bounds asserted in tests/test_quality_real.py.

Run: ``python benchmarks/sweep_svi.py [--data DIR]`` (default ``../shared/data``).
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
from volcal.errors import CalibrationWarning
from volcal.quality import quality_report


def chains(raw: Path) -> list[tuple[str, Path, str | None]]:
    """Every chain with prices: (label, path, currency)."""
    out: list[tuple[str, Path, str | None]] = []
    for p in sorted((raw / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv")):
        for cur in ("BTC", "ETH"):
            out.append((f"{p.stem[-16:]} {cur}", p, cur))
    others = [
        ("schepal options_data", raw / "schepal-deribit" / "options_data.csv", None),
        ("schepal btc_options_data", raw / "schepal-deribit" / "btc_options_data.csv", None),
        ("lucas option snapshots", raw / "lucas-btc-vrp" / "deribit_option_snapshots.csv", None),
        ("tessicin deribit_options", raw / "tessicin-deribit" / "deribit_options.csv", None),
        ("tessicin btc_options", raw / "tessicin-deribit" / "btc_options.csv", None),
        (
            "maksm05 book summary",
            raw / "maksm05-deribit-fixtures" / "deribit_book_summary_btc_option.json",
            None,
        ),
        ("maksm05 surface", raw / "maksm05-deribit-fixtures" / "snapshot_btc_surface.json", None),
    ]
    return out + [o for o in others if o[1].exists()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    root = args.data or Path(
        os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    rows = []
    for label, path, cur in chains(root / "raw"):
        try:
            chain = volcal.read_chain(path, currency=cur)
        except volcal.errors.VolcalError as exc:  # type: ignore[attr-defined]
            rows.append({"chain": label, "error": f"read: {exc}"})
            continue
        t0 = time.perf_counter()
        cleaned = volcal.clean(chain)
        t_clean = time.perf_counter() - t0
        rep = quality_report(cleaned)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CalibrationWarning)
                fit = volcal.calibrate(cleaned, "svi")
        except volcal.errors.VolcalError as exc:  # type: ignore[attr-defined]
            rows.append({"chain": label, "n": len(chain), "used": rep.n_used, "error": str(exc)})
            continue
        worst = max(fit.slices, key=lambda s: s.rmse_vol)
        rows.append(
            {
                "chain": label,
                "n": len(chain),
                "used": rep.n_used,
                "outlier": rep.count("outlier"),
                "arb": rep.count("monotonicity") + rep.count("convexity") + rep.count("calendar"),
                "expiries": len(fit.slices),
                "rmse_vol": fit.rmse_vol,
                "inside": fit.inside_spread,
                "worst_rmse": worst.rmse_vol,
                "worst_days": worst.t * 365,
                "status": fit.status,
                "warn": len(caught),
                "clean_ms": 1e3 * t_clean,
                "fit_ms": 1e3 * fit.elapsed_s,
                "error": "",
            }
        )
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    ok = df[df["error"] == ""]
    print(f"\nchains: {len(df)}, fitted: {len(ok)}, errors: {len(df) - len(ok)}")
    for col in ("rmse_vol", "inside", "worst_rmse", "clean_ms", "fit_ms"):
        v = ok[col].to_numpy(dtype=float)
        print(
            f"{col:>10}: median {np.median(v):.3f}  p90 {np.quantile(v, 0.9):.3f}  "
            f"min {v.min():.3f}  max {v.max():.3f}"
        )


if __name__ == "__main__":
    main()
