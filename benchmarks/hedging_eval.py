"""Delta-hedging evaluation on real Deribit snapshot sequences (6 hours apart).

Run: .venv/bin/python benchmarks/hedging_eval.py [--currency BTC] [--models black,svi_surface,svi,heston]

Sequences in ../shared/data/raw/svcj-deribit-snapshots: 2026-01-23/24 (8 snapshots) and
2026-08-19..22 (15 snapshots, a +20 % rally). For every consecutive pair (at most 12 h apart)
every out-of-the-money option with a mark in both snapshots and at least 2 days to expiry is
hedged with its own expiry's future using the Black sticky-strike delta (mark vol), the SVI
sticky-delta delta and the delta of a Heston fit (warm-started from the previous fit);
see ``volcal.risk.hedging``. Prints markdown tables of the hedged P&L per model, per expiry
bucket and per moneyness bucket.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import volcal
from volcal.risk import hedging_errors
from volcal.risk.hedging import EXPIRY_BUCKETS, MONEYNESS_BUCKETS

ROOT = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SNAPS = ROOT / "raw" / "svcj-deribit-snapshots"
SEQUENCES = {
    "2026-01-23/24": "deribit_options_snapshot_2026012[34]T*.csv",
    "2026-08-19..22": "deribit_options_snapshot_2026082[0-2]T*.csv",
}


def markdown(df, cols) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:,.3f}" if isinstance(v, float) else str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--currency", default="BTC")
    ap.add_argument("--models", default="black,svi_surface,svi,heston")
    args = ap.parse_args()
    models = tuple(args.models.split(","))
    results = []
    for label, pattern in SEQUENCES.items():
        files = sorted(SNAPS.glob(pattern))
        if label.startswith("2026-08"):
            files = sorted(SNAPS.glob("deribit_options_snapshot_20260819T*.csv")) + files
        chains = [volcal.read_chain(f, args.currency) for f in files]
        t0 = time.perf_counter()
        ev = hedging_errors(chains, models)
        dt = time.perf_counter() - t0
        print(
            f"### {args.currency} {label}: {len(chains)} snapshots, {ev.n_steps} steps, {dt:.1f} s\n"
        )
        results.append(ev)
        cols = [
            "model",
            "n",
            "rms_hedged_usd",
            "rms_unhedged_usd",
            "mean_abs_hedged_usd",
            "variance_reduction",
        ]
        print(markdown(ev.table(("model",)), cols))
        for by in ("expiry_bucket", "moneyness_bucket"):
            tab = ev.table(("model", by))
            wide = tab.pivot(index=by, columns="model", values="rms_hedged_usd")
            n = tab.groupby(by)["n"].first()
            wide.insert(0, "n", n)
            order = [b[2] for b in (EXPIRY_BUCKETS if by == "expiry_bucket" else MONEYNESS_BUCKETS)]
            wide = wide.reindex([o for o in order if o in wide.index]).reset_index()
            print(f"RMS hedged P&L (USD per option) by {by}:\n")
            print(markdown(wide, [by, "n", *models]))


if __name__ == "__main__":
    main()
