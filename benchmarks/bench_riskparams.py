"""Real-data VaR backtests and margin-shock calibration (BTC/ETH, daily and hourly).

Run: .venv/bin/python benchmarks/bench_riskparams.py [--quick]

Reads the histories in ../shared/data/raw (or $VOLCAL_DATA_DIR/raw) and prints markdown
tables: rolling out-of-sample 99 % VaR backtests of HS, FHS (GARCH(1,1)) and EVT (POT) with
Kupiec, Christoffersen and the Basel zone, then the margin-shock calibration (train on the
first half, test on the second) with DVOL vol shocks. FHS/EVT re-fit every ``REFIT`` forecasts
(daily: 20 days, hourly: 168 hours); in between FHS runs the GARCH variance recursion with
the last parameters and EVT holds its VaR.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from volcal.risk import backtest_var, calibrate_margin_shock, read_prices

ROOT = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
RAW = ROOT / "raw"

DAILY = [
    ("BTC daily, Binance 2017-2026", "btctree-btc-power/btc_daily.csv"),
    ("ETH daily, Binance 2017-2026", "btctree-btc-power/alt/ETHUSDT.csv"),
    ("BTC daily, Bitstamp 2014-2022", "darkeclipz-bitstamp/Bitstamp_BTCUSD_d.csv"),
]
HOURLY = [
    ("BTC hourly, Binance 2020-2024", "emanuelgoldman-binance-1h/BTCUSDT_1h.csv"),
    ("ETH hourly, Binance 2020-2024", "emanuelgoldman-binance-1h/ETHUSDT_1h.csv"),
    ("BTC hourly, Bitstamp 2018-2022", "darkeclipz-bitstamp/Bitstamp_BTCUSD_1h.csv"),
]
DVOL = {"BTC": "joachimoliver-dvol/btc_dvol.csv", "ETH": "joachimoliver-dvol/eth_dvol.csv"}


def fmt(x: float, d: int = 3) -> str:
    return f"{x:.{d}f}"


def backtest_tables(quick: bool) -> None:
    print("### Rolling 99% VaR backtests (long side, one-step horizon)\n")
    print(
        "| series | method | window | refit | n | exceptions | expected | LR_pof | p_pof |"
        " LR_ind | p_ind | LR_cc | p_cc | zone | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    sets = [(n, f, 500, 20) for n, f in DAILY] + [(n, f, 2000, 168) for n, f in HOURLY]
    for label, rel, window, refit in sets:
        s = read_prices(RAW / rel)
        if quick:
            s = s.tail(window + (600 if refit == 20 else 3000))
        for method in ("hs", "fhs", "evt"):
            t0 = time.perf_counter()
            bt = backtest_var(s, 0.01, method, window=window, refit_every=refit)
            dt = time.perf_counter() - t0
            r = bt.row()
            print(
                f"| {label} | {method.upper()} | {window} | {refit if method != 'hs' else 1} |"
                f" {r['n']} | {r['exceptions']} | {r['expected']:.1f} | {fmt(r['LR_pof'])} |"
                f" {fmt(r['p_pof'])} | {fmt(r['LR_ind'])} | {fmt(r['p_ind'])} | {fmt(r['LR_cc'])} |"
                f" {fmt(r['p_cc'])} | {r['zone']} | {dt:.1f} |",
                flush=True,
            )
            for w in bt.forecasts.warnings:
                print(f"<!-- {label} {method}: {w} -->")
    print()


def margin_tables(quick: bool) -> None:
    print("### Margin shock at 99% coverage: calibrated on the first half, tested on the second\n")
    print(
        "| series | horizon | method | side | shock now | m | train cov. | test cov. | n test |"
        " exceptions | Kupiec p | cc p | zone | static shock | static test cov. |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [
        (DAILY[0][0], DAILY[0][1], "1d", 365, 20),
        (DAILY[0][0], DAILY[0][1], "3d", 365, 20),
        (DAILY[1][0], DAILY[1][1], "1d", 365, 20),
        (DAILY[1][0], DAILY[1][1], "3d", 365, 20),
        (HOURLY[0][0], HOURLY[0][1], "4h", 2000, 42),
        (HOURLY[0][0], HOURLY[0][1], "1d", 2000, 7),
        (HOURLY[1][0], HOURLY[1][1], "4h", 2000, 42),
        (HOURLY[1][0], HOURLY[1][1], "1d", 2000, 7),
    ]
    vols = []
    for label, rel, horizon, window, refit in cases:
        s = read_prices(RAW / rel)
        if quick:
            s = s.tail(window + (900 if "daily" in label else 6000))
        coin = label[:3]
        dv = read_prices(RAW / DVOL[coin]) if "daily" in label else None
        for method in ("hs", "fhs"):
            res = calibrate_margin_shock(
                s, 0.99, horizon, method=method, window=window, refit_every=refit, vol_series=dv
            )
            for sd in (res.long, res.short):
                print(
                    f"| {label} | {horizon} | {method.upper()} | {sd.side} | {sd.shock:.2%} |"
                    f" {sd.multiplier:.3f} | {sd.train_coverage:.2%} | {sd.test_coverage:.2%} |"
                    f" {sd.n_test} | {sd.kupiec.exceptions} | {fmt(sd.kupiec.pvalue)} |"
                    f" {fmt(sd.christoffersen.pvalue)} | {sd.traffic_light.zone} |"
                    f" {sd.static_shock:.2%} | {sd.static_test_coverage:.2%} |",
                    flush=True,
                )
            if res.vol is not None and method == "hs":
                vols.append((label, horizon, res.vol))
    print()
    print(
        "### DVOL shocks at 99% (daily DVOL, calibrated on the first half, tested on the second)\n"
    )
    print(
        "| DVOL | horizon | up shock (train) | test cov. up | down shock (train) | test cov. down |"
        " Kupiec p up | Kupiec p down | up / down now (full history) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, horizon, v in vols:
        print(
            f"| {label[:3]} | {horizon} | +{v.up:.1%} | {v.test_coverage_up:.2%} | -{v.down:.1%} |"
            f" {v.test_coverage_down:.2%} | {fmt(v.kupiec_up.pvalue)} | {fmt(v.kupiec_down.pvalue)} |"
            f" +{v.current_shock_up:.1%} / -{v.current_shock_down:.1%} |"
        )
    print()


def main() -> int:
    if not RAW.is_dir():
        print(f"real data not found at {RAW}", file=sys.stderr)
        return 1
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    backtest_tables(quick)
    margin_tables(quick)
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
