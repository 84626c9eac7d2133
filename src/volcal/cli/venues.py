"""``volcal venues FILE...``: consolidate several venues' chains and show how they agree.

Prints the venue table (status ok / quarantined / stale, why, quote counts, median
deviation from the consensus), the consensus per expiry, the fragmentation figures
(share of best prices, single-venue vs consolidated spreads, depth) and the basis
between venues; ``--json`` prints one JSON document; ``--report`` writes an HTML page
with every venue's smile against the consolidated fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from volcal.cli._app import app, console, print_json
from volcal.cli._app import fmt_num as _fmt


def _consensus_rows(agg: Any) -> list[dict[str, Any]]:
    import numpy as np

    ch = agg.chain
    rows = []
    for e in ch.expiries:
        m = ch.expiry == e
        two = m & np.isfinite(ch.bid) & np.isfinite(ch.ask)
        sc = agg.consensus_scale[m & np.isfinite(agg.consensus_vol)]
        rows.append(
            {
                "expiry": str(np.datetime_as_string(e, unit="m")),
                "instruments": int(m.sum()),
                "two_sided": int(two.sum()),
                "median_venues": float(np.median(agg.n_venues[m])),
                "median_scale_vol_pts": 100.0 * float(np.median(sc)) if sc.size else None,
                "forward": float(np.nanmedian(ch.forward[m])),
            }
        )
    return rows


@app.command()
def venues(
    files: Annotated[
        list[Path], typer.Argument(help="Chain files, one per venue (or a Tardis CSV).")
    ],
    currency: Annotated[
        str | None,
        typer.Option("--currency", "-c", help="Underlying (BTC, ETH) when files hold several."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--snapshot", help="Snapshot time (UTC, ISO) in files that hold several."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Smile model of the consolidated fit.")
    ] = "svi",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report.")
    ] = None,
) -> None:
    """Aggregate one chain per venue: venue status, consensus, fragmentation, basis."""
    import volcal
    from volcal.cli._load import load_chains

    chains = load_chains(files, currency, at)
    agg = volcal.aggregate(chains)
    cleaned = volcal.clean(agg.chain)
    fit = volcal.calibrate(cleaned, model)
    liq = agg.liquidity()
    cons = _consensus_rows(agg)
    if report is not None:
        from volcal.report.venues import write_venues_report

        write_venues_report(
            report,
            agg,
            fit,
            title=f"{agg.chain.underlying} across {len(chains)} venues, "
            f"{agg.chain.snapshot:%Y-%m-%d %H:%M} UTC",
        )
    if json_out:
        d = agg.to_dict()
        print_json(
            {
                "sources": [str(f) for f in files],
                **d,
                "consensus": cons,
                "liquidity": liq.to_dict(),
                "fit": {
                    "model": model,
                    "status": fit.status,
                    "rmse_vol": fit.rmse_vol,
                    "inside_spread": fit.inside_spread,
                    "n_used": fit.n_used,
                },
                "report": None if report is None else str(report),
            }
        )
        return
    table = Table(
        title=f"Venues ({agg.chain.underlying}, {agg.chain.snapshot:%Y-%m-%d %H:%M} UTC)",
        title_justify="left",
    )
    for col in (
        "venue",
        "status",
        "quotes",
        "compared",
        "outliers",
        "best bid",
        "best ask",
        "median dev (vol pts)",
        "lag (s)",
        "reason",
    ):
        table.add_column(col, justify="left" if col in ("venue", "status", "reason") else "right")
    for v in agg.venues:
        color = {"ok": "green", "quarantined": "red", "stale": "yellow"}[v.status]
        table.add_row(
            v.name,
            f"[{color}]{v.status}[/]",
            str(v.n_quotes),
            str(v.n_compared),
            str(v.n_outliers),
            str(v.n_best_bid),
            str(v.n_best_ask),
            _fmt(v.median_deviation_vol_pts, 1.0, 2),
            _fmt(v.lag_s, 1.0, 0),
            v.reason,
        )
    console.print(table)
    t2 = Table(title="Consensus per expiry", title_justify="left")
    for col in (
        "expiry",
        "instruments",
        "two-sided",
        "venues (median)",
        "scale (vol pts)",
        "forward",
    ):
        t2.add_column(col, justify="left" if col == "expiry" else "right")
    for r in cons:
        t2.add_row(
            r["expiry"].replace("T", " "),
            str(r["instruments"]),
            str(r["two_sided"]),
            _fmt(r["median_venues"], 1.0, 1),
            _fmt(r["median_scale_vol_pts"], 1.0, 2),
            _fmt(r["forward"], 1.0, 2),
        )
    console.print(t2)
    t3 = Table(title="Fragmentation", title_justify="left")
    for col in (
        "venue",
        "best bid",
        "best ask",
        "two-sided",
        "own spread (vol pts)",
        "consolidated (vol pts)",
    ):
        t3.add_column(col, justify="left" if col == "venue" else "right")
    for r in liq.per_venue:
        t3.add_row(
            r["venue"],
            _fmt(r["share_best_bid"], 100.0, 1) + "%",
            _fmt(r["share_best_ask"], 100.0, 1) + "%",
            str(r["n_two_sided"]),
            _fmt(r["spread_vol_pts"], 1.0, 2),
            _fmt(r["consolidated_spread_vol_pts"], 1.0, 2),
        )
    console.print(t3)
    console.print(
        f"consolidated {model} fit: RMSE {fit.rmse_vol:.3f} vol pts, "
        f"{100 * fit.inside_spread:.1f}% inside bid-ask, {fit.n_used} quotes; "
        f"aggregation {1000 * agg.elapsed_s:.1f} ms",
        highlight=False,
    )
    if report is not None:
        console.print(f"report written to {report}", highlight=False)
