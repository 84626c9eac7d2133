"""30-day vol index from real BTC chains against Deribit's published hourly DVOL.

Every BTC chain of ../shared/data/raw/svcj-deribit-snapshots (CSV) and
../shared/data/raw/svcj-deribit-history (gzip CSV) whose snapshot time falls inside the
hourly DVOL file ../shared/data/raw/lucas-btc-vrp/btc_dvol_1h.csv (2026-02-27..04-28)
is indexed with ``volcal.vol_index`` by Deribit's published DVOL rules
(``method="deribit"``) and by the plain CBOE white paper (``method="cboe"``), on mids.

Timestamp alignment: the hourly DVOL candles are stamped at their open and the file's
value is the candle's close (checked against the daily DVOL OHLC of
../shared/data/raw/joachimoliver-dvol: the daily close equals the 23:00 candle's value
and the daily open the previous day's 23:00 value). The DVOL value at a snapshot time
``ts`` is therefore interpolated linearly between the close of the previous candle (the
value at ``floor(ts)``) and the close of the candle ``ts`` falls in (the value at
``floor(ts) + 1h``). The older reading, taking each stamp as the value at that instant,
is shown beside it ("stamp as point"). Only hourly closes exist, so the path inside the
hour is unknown; the last column counts snapshots whose index lies between the two
closes around them.

Diagnostics (not methods of volcal): the same Deribit legs priced at the bids and at the
asks (the bracket any mid of the book, depth-weighted or not, lies in), and the same legs with the variance kernel of
the coin (inverse) numeraire, ``2/T sum dK/K * c(K)`` with ``c`` the coin price instead
of ``2/T sum dK/K^2 * C(K)`` in USD - the fair variance under the measure in which the
coin options are priced. It is not part of Deribit's published construction.

Run: ``python benchmarks/bench_dvol.py [--quick] [--table] [--write]``
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

import volcal
from volcal.errors import DataError
from volcal.surface import vol_index
from volcal.surface.vix import deribit_variance

DATA = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
_STAMP = re.compile(r"(\d{8}T\d{6}Z)")


def dvol_series(raw: Path) -> pd.Series:
    dv = pd.read_csv(raw / "lucas-btc-vrp" / "btc_dvol_1h.csv")
    dv["timestamp"] = pd.to_datetime(dv["timestamp"], utc=True)
    return 100.0 * dv.set_index("timestamp")["iv"].sort_index()


def dvol_at(series: pd.Series, ts: pd.Timestamp, *, stamped_at_open: bool = True) -> float:
    """DVOL at ``ts`` from hourly values (see the module docs for the two readings)."""
    t0 = ts.floor("h")
    frac = (ts - t0) / pd.Timedelta(hours=1)
    a, b = (t0 - pd.Timedelta(hours=1), t0) if stamped_at_open else (t0, t0 + pd.Timedelta(hours=1))
    if a not in series.index or b not in series.index:
        return float("nan")
    return float(series[a] * (1 - frac) + series[b] * frac)


def daily_range(raw: Path) -> pd.DataFrame:
    """Daily DVOL OHLC (joachimoliver-dvol, to 2026-04-06), indexed by UTC day."""
    d = pd.read_csv(raw / "joachimoliver-dvol" / "btc_dvol.csv")
    d["date"] = pd.to_datetime(d["date"], utc=True)
    return d.set_index("date").sort_index()[["open", "high", "low", "close"]]


def closes_around(series: pd.Series, ts: pd.Timestamp) -> tuple[float, float]:
    t0 = ts.floor("h")
    a, b = t0 - pd.Timedelta(hours=1), t0
    if a not in series.index or b not in series.index:
        return float("nan"), float("nan")
    return float(min(series[a], series[b])), float(max(series[a], series[b]))


def snapshot_files(raw: Path, lo: pd.Timestamp, hi: pd.Timestamp) -> list[Path]:
    files = sorted((raw / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv"))
    files += sorted((raw / "svcj-deribit-history").glob("deribit_options_snapshot_*.csv.gz"))
    out = []
    for f in files:
        m = _STAMP.search(f.name)
        if m and lo <= pd.Timestamp(m.group(1)) <= hi:
            out.append(f)
    return sorted(out, key=lambda p: p.name)


def leg_index(
    chain: volcal.OptionChain, idx: volcal.surface.VolIndex, side: str, kernel: str
) -> float:
    """Diagnostic: the Deribit legs of ``idx`` (same forwards and strikes) priced at
    ``side`` ("mid", "bid" or "ask"), with the USD kernel or the coin-numeraire one."""
    horizon = idx.days / 365.0
    out = []
    for t, f in ((idx.t_near, idx.forward_near), (idx.t_next, idx.forward_next)):
        m = np.isclose(chain.t, t, rtol=0, atol=1e-12)
        coin = chain.coin(side)[m]  # type: ignore[arg-type]
        scale = chain.strike[m] if kernel == "coin" else chain.conversion_price[m]
        var, _, _ = deribit_variance(
            chain.strike[m], chain.is_call[m], chain.bid[m], chain.ask[m], coin * scale, f, t
        )
        out.append(var)
    t1, t2 = idx.t_near, idx.t_next
    total = t1 * out[0] * (t2 - horizon) / (t2 - t1) + t2 * out[1] * (horizon - t1) / (t2 - t1)
    return 100.0 * math.sqrt(total / horizon)


def atm_30d(chain: volcal.OptionChain) -> float:
    """Diagnostic: the 30-day at-the-money vol (k = 0) of the arbitrage-free SVI
    surface fitted to the cleaned chain, in vol points - the smile's centre without
    its wings, against which the index's wing contribution can be read."""
    import warnings

    from volcal.errors import CalibrationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = volcal.calibrate(volcal.clean(chain), "svi_surface")
    return 100.0 * float(np.asarray(fit.surface().implied_vol(0.0, 30.0 / 365.0)))


def stats(x: np.ndarray, ref: np.ndarray) -> str:
    d = x - ref
    corr = float(np.corrcoef(x, ref)[0, 1])
    return (
        f"| {d.mean():+.2f} | {np.abs(d).mean():.2f} | {d.std(ddof=1):.2f} | {d.min():+.2f} "
        f"| {d.max():+.2f} | {corr:.4f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--quick", action="store_true", help="every 10th snapshot")
    ap.add_argument("--table", action="store_true", help="print one row per snapshot")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    raw = args.data / "raw"
    series = dvol_series(raw)
    daily = daily_range(raw)
    lo, hi = series.index.min(), series.index.max()
    files = snapshot_files(raw, lo, hi + pd.Timedelta(hours=1))
    if args.quick:
        files = files[::10]
    start = time.perf_counter()
    rows = []
    skipped = []
    for f in files:
        chain = volcal.read_chain(f, currency="BTC")
        ts = chain.snapshot
        d_open = dvol_at(series, ts)
        if not np.isfinite(d_open):
            continue
        try:
            der = vol_index(chain, method="deribit")
            cboe = vol_index(chain, method="cboe")
            mark = vol_index(chain, method="deribit", price="mark")
        except DataError as exc:
            skipped.append(f"{f.name}: {exc}")
            continue
        lo_c, hi_c = closes_around(series, ts)
        day = ts.floor("D")
        day_hi = float(daily["high"].get(day, np.nan))
        day_lo = float(daily["low"].get(day, np.nan))
        rows.append(
            dict(
                ts=ts,
                dvol=d_open,
                dvol_point=dvol_at(series, ts, stamped_at_open=False),
                lo=lo_c,
                hi=hi_c,
                day_hi=day_hi,
                day_lo=day_lo,
                deribit=der.value,
                cboe=cboe.value,
                coin=leg_index(chain, der, "mid", "coin"),
                on_bid=leg_index(chain, der, "bid", "usd"),
                on_ask=leg_index(chain, der, "ask", "usd"),
                mark=mark.value,
                atm30=atm_30d(chain),
                syn=(der.forward_source_near == "synthetic")
                + (der.forward_source_next == "synthetic"),
                fshift=1e4 * (der.forward_near / cboe.forward_near - 1.0),
            )
        )
    elapsed = time.perf_counter() - start
    df = pd.DataFrame(rows)
    n_snap = int(sum("svcj-deribit-snapshots" in str(f) for f in files))
    lines = [
        f"{len(df)} BTC snapshots inside the hourly DVOL file ({lo:%Y-%m-%d %H:%M} .. "
        f"{hi:%Y-%m-%d %H:%M} UTC stamps; {n_snap} from svcj-deribit-snapshots, the rest from "
        f"svcj-deribit-history), {elapsed:.0f} s; {len(skipped)} skipped.",
        "",
        "| index | DVOL reading | bias | mean abs gap | sd | min | max | correlation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, col in (
        ('`vol_index(chain, method="deribit")`', "deribit"),
        ('`vol_index(chain)` (method="cboe")', "cboe"),
        ("diagnostic: Deribit legs, coin-numeraire kernel", "coin"),
        ("diagnostic: Deribit legs priced at the bid", "on_bid"),
        ("diagnostic: Deribit legs priced at the ask", "on_ask"),
        ('diagnostic: `vol_index(chain, method="deribit", price="mark")`', "mark"),
        ("diagnostic: 30-day ATM vol of the svi_surface fit (not an index)", "atm30"),
    ):
        for ref_name, ref in (
            ("stamped at open (correct)", "dvol"),
            ("stamp as point", "dvol_point"),
        ):
            lines.append(f"| {name} | {ref_name} " + stats(df[col].to_numpy(), df[ref].to_numpy()))
    inside = ((df["deribit"] >= df["lo"]) & (df["deribit"] <= df["hi"])).mean()
    has_day = df["day_hi"].notna()
    above_high = (df.loc[has_day, "deribit"] > df.loc[has_day, "day_hi"]).mean()
    over_high = (df.loc[has_day, "deribit"] - df.loc[has_day, "day_hi"]).mean()
    day_span = (df.loc[has_day, "day_hi"] - df.loc[has_day, "day_lo"]).mean()
    diff_dc = (df["deribit"] - df["cboe"]).abs()
    lines += [
        "",
        f"- Mean absolute gap to DVOL (3 decimals): deribit "
        f"{(df['deribit'] - df['dvol']).abs().mean():.3f}, cboe "
        f"{(df['cboe'] - df['dvol']).abs().mean():.3f} vol points.",
        f"- Deribit vs CBOE rules on the same chains: mean |difference| {diff_dc.mean():.3f}, "
        f"max {diff_dc.max():.3f} vol points; the synthetic forward was available for "
        f"{(df['syn'] == 2).mean():.0%} of the snapshots (both legs) and differs from the "
        f"quoted future by {df['fshift'].abs().median():.1f} bp (median, near leg).",
        f"- Index inside the range of the two hourly DVOL closes around the snapshot: "
        f"{inside:.0%} of snapshots.",
        f"- Against the day's DVOL high (daily OHLC of joachimoliver-dvol, "
        f"{int(has_day.sum())} snapshots up to 2026-04-06; the day's range averages "
        f"{day_span:.2f}): the index is above even the highest DVOL of its day on "
        f"{above_high:.0%} of them and {over_high:+.2f} above it on average, so no "
        f"choice of candle value (open, close, high, low) or of the moment within the "
        f"day closes the gap.",
    ]
    text = "\n".join(lines)
    print(text)
    for s in skipped:
        print("skipped:", s)
    if args.table:
        print("\n| snapshot (UTC) | DVOL | deribit | cboe | coin-kernel diagnostic |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['ts']:%Y-%m-%d %H:%M} | {r['dvol']:.2f} | {r['deribit']:.2f} "
                f"| {r['cboe']:.2f} | {r['coin']:.2f} |"
            )
    if args.write:
        from _markdown import write_section

        head = (
            "### 30-day vol index vs Deribit DVOL (hourly, 2026-02-27..04-28)\n\n"
            "Command: `.venv/bin/python benchmarks/bench_dvol.py --write`"
            f"{' --quick' if args.quick else ''}\n\n"
            "Baseline: Deribit's published hourly DVOL (lucas-btc-vrp/btc_dvol_1h.csv), "
            "interpolated to the snapshot time between the closes of the hourly candles "
            "(stamped at their open). Gaps in vol points, index minus DVOL.\n\n"
        )
        reading = (
            "\n\nReading (replaces the earlier claim of +2.52 on 26 snapshots, which read "
            "each hourly stamp as the value at that instant):\n\n"
            "- Deribit's published rules change nothing measurable on these chains: the "
            "synthetic forward is within a few bp of the quoted future (the chains' "
            "underlying is Deribit's own synthetic), the cut-off and the averaging at it "
            "are the white paper's, and the quotes without a bid sit in one block at the "
            "far ends of the strike range, so the white paper's zero-bid truncation "
            "removes exactly the quotes Deribit's rules leave without a two-sided mid. "
            '`method="cboe"` stays '
            'the default because `"deribit"` is not closer.\n'
            "- Timestamp alignment: the candles are stamped at their open and carry the "
            "close (daily OHLC check in the script's docs). Reading them right shifts the "
            "reference by an hour; it raises the correlation and lowers the scatter but "
            "moves the bias by less than 0.2.\n"
            f"- The gap is not in the choice of mid: priced at the bids the same sum is "
            f"still {(df['on_bid'] - df['dvol']).mean():+.2f} above DVOL. A diagnostic "
            "with the coin-numeraire kernel (not a published rule) halves it; the rest "
            "is in what snapshots cannot show. Mark prices instead of mids move the "
            f"index by {(df['mark'] - df['deribit']).mean():+.2f} on average.\n"
            f"- Where DVOL sits: {(df['dvol'] - df['atm30']).mean():+.2f} above the 30-day "
            "ATM vol of the fitted surface and "
            f"{(df['deribit'] - df['dvol']).mean():.2f} below the index: the index adds "
            f"{(df['deribit'] - df['atm30']).mean():.2f} vol points for the smile's wings "
            f"on average, DVOL {(df['dvol'] - df['atm30']).mean():.2f}, so about "
            f"{(df['deribit'] - df['dvol']).mean() / (df['deribit'] - df['atm30']).mean():.0%} "
            "of the index's wing contribution is not in DVOL. Which of DVOL's rules takes "
            "it out (the depth-weighted mid, the quotes it leaves without a price) cannot "
            "be tested without the books.\n"
            "- Not reproducible from snapshots: the depth-weighted mid and the instruments "
            "it leaves without a price (no order-book depth in the files), the "
            "interquartile mean of 120 one-second values (one snapshot per time), the "
            "synthetic of 60-90 s earlier used as fallback, and the DVOL path inside the "
            "hour (only hourly closes). **The aim (mean absolute gap <= 0.5) is not met: "
            f"{(df['deribit'] - df['dvol']).abs().mean():.2f}.**\n"
        )
        write_section("### 30-day vol index vs Deribit DVOL", head + text + reading + "\n")


if __name__ == "__main__":
    main()
