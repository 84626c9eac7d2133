"""30-day vol index from real BTC chains against Deribit's published DVOL.

For every BTC snapshot in ../shared/data/raw/svcj-deribit-snapshots that falls inside the
hourly DVOL history (../shared/data/raw/lucas-btc-vrp/extended/btc_dvol_1h_5y.csv, to
2026-04-28 15:00 UTC), the index is computed from the raw chain with
``volcal.vol_index`` (VIX white-paper method) on mid and on mark prices. DVOL at the
snapshot time is interpolated linearly between the two hourly values around it (the
snapshots are taken minutes after the hour). As diagnostics, the 30-day ATM-forward vol
and the 30-day model-free vol (integral of out-of-the-money prices) of the eSSVI surface
fitted to the cleaned chain are listed too.

Run: ``python benchmarks/bench_dvol.py`` (prints a Markdown table and the summary).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import volcal
from volcal.errors import CalibrationWarning
from volcal.surface import vol_index

DATA = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
RAW = DATA / "raw"


def dvol_at(series: pd.Series, ts: pd.Timestamp) -> float:
    t0 = ts.floor("h")
    t1 = t0 + pd.Timedelta(hours=1)
    if t0 not in series.index or t1 not in series.index:
        return float("nan")
    frac = (ts - t0) / pd.Timedelta(hours=1)
    return 100.0 * float(series[t0] * (1 - frac) + series[t1] * frac)


def surface_diagnostics(chain: volcal.OptionChain) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        surf = volcal.calibrate(volcal.clean(chain), "essvi").surface()
    t = 30.0 / 365.0
    atm = 100.0 * float(surf.implied_vol(0.0, t))
    k = np.linspace(-4.0, 4.0, 8001)
    x = np.exp(k)
    f = float(surf.forward(t))
    otm = np.where(
        x >= 1,
        surf.price(x * f, t, True, units="forward"),
        surf.price(x * f, t, False, units="forward"),
    )
    model_free = 100.0 * float(np.sqrt(2.0 / t * np.trapezoid(otm / x, k)))
    return atm, model_free


def main() -> None:
    dv = pd.read_csv(RAW / "lucas-btc-vrp" / "extended" / "btc_dvol_1h_5y.csv")
    dv["timestamp"] = pd.to_datetime(dv["timestamp"], utc=True)
    series = dv.set_index("timestamp")["iv"].sort_index()
    rows = []
    for f in sorted((RAW / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv")):
        chain = volcal.read_chain(f, currency="BTC")
        d = dvol_at(series, chain.snapshot)
        if not np.isfinite(d):
            continue
        mid = vol_index(chain)
        mark = vol_index(chain, price="mark")
        atm, mf = surface_diagnostics(chain)
        rows.append((chain.snapshot, d, mid.value, mark.value, atm, mf))
    print(
        "| snapshot (UTC) | DVOL | index (mid) | mid - DVOL | index (mark) | mark - DVOL "
        "| eSSVI ATM 30d | eSSVI model-free 30d |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for ts, d, a, b, atm, mf in rows:
        print(
            f"| {ts:%Y-%m-%d %H:%M} | {d:.2f} | {a:.2f} | {a - d:+.2f} | {b:.2f} | {b - d:+.2f} "
            f"| {atm:.2f} | {mf:.2f} |"
        )
    arr = np.array([(a - d, b - d, atm - d, mf - d) for _, d, a, b, atm, mf in rows])
    names = ("index (mid)", "index (mark)", "eSSVI ATM 30d", "eSSVI model-free 30d")
    print(f"\n{len(rows)} snapshots")
    for j, name in enumerate(names):
        x = arr[:, j]
        print(
            f"{name:22s} - DVOL: mean {x.mean():+.2f}, mean |diff| {np.abs(x).mean():.2f}, "
            f"sd {x.std(ddof=1):.2f}, min {x.min():+.2f}, max {x.max():+.2f} vol points"
        )


if __name__ == "__main__":
    main()
