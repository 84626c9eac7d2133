"""Portfolio-margin speed: a 200-position book on a full Deribit BTC chain.

Run: .venv/bin/python benchmarks/bench_margin.py [SNAPSHOT_CSV]

Builds a deterministic 200-position book (seed 0: 190 options drawn from every listed
instrument of the chain, 8 dated futures, 2 perpetual lines; sizes +-0.1..10 coin) and times
``volcal.risk.margin`` (Deribit-style and SPAN), ``portfolio_greeks`` and a 9 x 5
``scenario_grid``: end to end from the chain (vols from the marks; includes building the
market), and against a prebuilt ``Market``. The first call (numba compilation of the Black
kernels, imports) is reported separately; the rest are the median and the minimum of 20
repetitions.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import volcal
from volcal.risk import Market, Portfolio, margin, portfolio_greeks, scenario_grid

ROOT = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
DEFAULT = ROOT / "raw/svcj-deribit-snapshots/deribit_options_snapshot_20260123T035907Z.csv"


def book(chain: volcal.OptionChain, n: int = 200, seed: int = 0) -> Portfolio:
    rng = np.random.default_rng(seed)
    live = np.flatnonzero((chain.t > 1.0 / 365.0) & np.isfinite(chain.mark_iv))
    opts = rng.choice(live, size=n - 10, replace=False)
    recs = [
        {
            "instrument": str(chain.instrument[i]),
            "size": float(rng.choice([-1, 1]) * rng.uniform(0.1, 10)),
        }
        for i in opts
    ]
    futs = sorted(
        {str(u) for u in chain.meta.get("underlying_names", []) if not str(u).startswith("SYN")}
    )
    for name in (futs * 8)[:8]:
        recs.append({"instrument": name, "size": float(rng.uniform(-20, 20))})
    recs += [
        {"instrument": "BTC-PERPETUAL", "size": 5.0},
        {"instrument": "BTC-PERPETUAL", "size": -2.5},
    ]
    return Portfolio.from_records(recs, name=f"bench-{n}")


def timed(fn, reps: int = 20) -> tuple[float, float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), min(out)


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    chain = volcal.read_chain(src, "BTC")
    pf = book(chain)
    kinds = {k: sum(p.kind == k for p in pf) for k in ("option", "future", "perpetual")}
    print(f"chain: {src.name}, {len(chain)} quotes, {chain.expiries.size} expiries")
    print(f"book: {len(pf)} positions {kinds}")
    t0 = time.perf_counter()
    first = margin(pf, chain)
    print(f"first call (imports + numba compile): {time.perf_counter() - t0:.3f} s")
    market = Market.from_chain(chain)
    print()
    print("| operation | median ms | min ms | result |")
    print("|---|---|---|---|")
    rows = [
        ("Market.from_chain (mark vols)", lambda: Market.from_chain(chain), ""),
        ("margin deribit, from the chain", lambda: margin(pf, chain), first),
        ("margin deribit, prebuilt market", lambda: margin(pf, market), None),
        (
            "margin span, from the chain",
            lambda: margin(pf, chain, "span"),
            margin(pf, chain, "span"),
        ),
        ("margin span, prebuilt market", lambda: margin(pf, market, "span"), None),
        ("portfolio_greeks, prebuilt market", lambda: portfolio_greeks(pf, market), None),
        ("scenario_grid 9x5, prebuilt market", lambda: scenario_grid(pf, market), None),
    ]
    for label, fn, res in rows:
        med, mn = timed(fn)
        note = ""
        if res:
            note = (
                f"initial {res.initial:,.0f} USD ({res.initial_coin:.3f} BTC), "
                f"maintenance {res.maintenance:,.0f} USD; worst: {res.worst['label']}"
            )
        print(f"| {label} | {med * 1e3:.2f} | {mn * 1e3:.2f} | {note} |")


if __name__ == "__main__":
    main()
