"""Chain commands: ``quality``, ``calibrate`` and ``snapshots``.

Each command reads a chain (any format ``volcal.read_chain`` detects), cleans it and
either reports the quote quality or calibrates a model, printing Rich tables, one JSON
document (``--json``) or a self-contained HTML report (``--report``); ``snapshots``
lists the snapshots a multi-snapshot file holds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from volcal.cli._app import app, console, err_console, print_json, print_table, status
from volcal.cli._app import fmt_num as _fmt

CurrencyOpt = Annotated[
    str | None,
    typer.Option(
        "--currency", "-c", help="Underlying to read when the file holds several (BTC, ETH)."
    ),
]
SnapshotOpt = Annotated[
    str | None,
    typer.Option(
        "--snapshot",
        help="Snapshot time (UTC, ISO) to read from files that hold several or none.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report here.")
]


def _load_clean(
    source: list[Path], currency: str | None, snapshot: str | None = None, *, report: bool = True
) -> tuple[Any, Any]:
    """Read (one file, or one per venue: aggregated) and clean a chain; returns (clean
    chain, quality report), the report ``None`` unless ``report``."""
    import volcal
    from volcal.cli._load import load_snapshot

    names = ", ".join(p.name for p in source)
    with status(err_console, f"reading and cleaning {names}..."):
        chain, _ = load_snapshot(source, currency, snapshot)
        from volcal.cli._numba_start import prepare

        prepare()  # numba's first-dispatch set-up without the scipy.linalg package
        cleaned = volcal.clean(chain)
        if not report:
            return cleaned, None
        from volcal.quality import quality_report

        return cleaned, quality_report(cleaned)


def print_fit(result: Any, title: str) -> None:
    """Rich table of a calibration result: one row per expiry, then the totals."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in (
        "expiry",
        "days",
        "n",
        "RMSE (vol pts)",
        "inside bid-ask",
        "ATM vol",
        "RR25",
        "BF25",
    ):
        table.add_column(col, justify="left" if col == "expiry" else "right")
    for s in result.slices:
        table.add_row(
            s.expiry[:16].replace("T", " "),
            _fmt(s.t, 365.0, 1),
            str(s.n_used),
            _fmt(s.rmse_vol, 1.0, 3),
            _fmt(s.inside_spread, 100.0, 1) + "%",
            _fmt(s.atm_vol, 100.0),
            _fmt(s.rr25, 100.0),
            _fmt(s.bf25, 100.0),
        )
    table.add_section()
    table.add_row(
        "all",
        "",
        str(result.n_used),
        _fmt(result.rmse_vol, 1.0, 3),
        _fmt(result.inside_spread, 100.0, 1) + "%",
        "",
        "",
        "",
    )
    print_table(table)
    status = "[green]ok[/]" if result.ok else f"[yellow]{result.status}[/]"
    console.print(
        f"status {status}; {result.nfev} evaluations; {1000 * result.elapsed_s:.1f} ms",
        highlight=False,
    )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def print_quality(report: Any) -> None:
    """Rich table of a quality report: quotes per reason, used and excluded."""
    from rich.table import Table

    d = report.to_dict()
    table = Table(title="Quote quality", title_justify="left")
    table.add_column("reason")
    table.add_column("quotes", justify="right")
    table.add_column("keeps out of fit", justify="center")
    for row in d["reasons"]:
        table.add_row(row["code"], str(row["count"]), "yes" if row["excluded"] else "no")
    table.add_section()
    table.add_row("used", str(d["n_used"]), "")
    table.add_row("excluded", str(d["n_excluded"]), "")
    table.add_row("total", str(d["n_quotes"]), "")
    print_table(table)
    per = report.per_expiry
    fwd = report.forwards
    if len(per) == 0:
        return
    table = Table(title="Per expiry", title_justify="left")
    for col in ("expiry", "days", "forward", "source", "parity - quoted (bp)", "quotes", "used"):
        table.add_column(col, justify="left" if col in ("expiry", "source") else "right")
    for i, row in enumerate(per.itertuples(index=False)):
        src = fwd.source[i] if fwd is not None and i < len(fwd.source) else "-"
        diff = fwd.disagreement_bps[i] if fwd is not None and i < len(fwd.source) else float("nan")
        flag = " *" if fwd is not None and i < len(fwd.source) and fwd.flagged[i] else ""
        table.add_row(
            str(row.expiry)[:16],
            _fmt(row.days, 1.0, 1),
            _fmt(row.forward, 1.0, 2),
            src,
            _fmt(diff, 1.0, 1) + flag,
            str(row.n_quotes),
            str(row.n_used),
        )
    print_table(table)
    if fwd is not None and bool(fwd.flagged.any()):
        console.print(
            f"* quoted and parity forwards differ by more than {fwd.tolerance_bps:g} bp",
            highlight=False,
        )


@app.command()
def quality(
    snapshot: Annotated[
        list[Path], typer.Argument(help="Chain file(s): several venues are aggregated.")
    ],
    currency: CurrencyOpt = None,
    at: SnapshotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Clean a chain and report, per reason, how many quotes were flagged and why."""
    chain, report = _load_clean(snapshot, currency, at)
    if json_out:
        print_json(report.to_dict())
        return
    console.print(chain.summary(), highlight=False)
    print_quality(report)


@app.command()
def calibrate(
    snapshot: Annotated[
        list[Path], typer.Argument(help="Chain file(s): several venues are aggregated.")
    ],
    currency: CurrencyOpt = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="svi, sabr, heston, bates, merton, kou, vg, svcj")
    ] = "svi",
    weights: Annotated[
        str, typer.Option(help="Residual weights: spread, vega, open_interest, uniform.")
    ] = "spread",
    at: SnapshotOpt = None,
    json_out: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Calibrate a smile or model to a chain and print the fit per expiry."""
    import volcal

    t0 = time.perf_counter()
    # the quality report only goes into the HTML report
    chain, qreport = _load_clean(snapshot, currency, at, report=report is not None)
    with status(err_console, f"calibrating {model} to {len(chain)} quotes..."):
        result = volcal.calibrate(chain, model, weights=weights)
    total = time.perf_counter() - t0
    if report is not None:
        from volcal.report.chain import write_calibration_report

        write_calibration_report(report, chain, result, qreport)
    if json_out:
        out = result.to_dict()
        out["source"] = ", ".join(map(str, snapshot))
        out["underlying"] = chain.underlying
        out["snapshot"] = chain.snapshot_isoformat  # no pandas.Timestamp needed
        out["total_elapsed_s"] = total
        if report is not None:
            out["report"] = str(report)
        print_json(out)
        return
    console.print(chain.summary(), highlight=False)
    print_fit(result, f"{model} fit, {chain.underlying} {chain.snapshot:%Y-%m-%d %H:%M} UTC")
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)


def _snapshot_listing(source: Path, currency: str | None) -> list[dict[str, Any]]:
    """One entry per underlying of the file: its snapshots (oldest first)."""
    import re

    import volcal
    from volcal.errors import DataError

    try:
        chains = [volcal.read_chain(source, currency=currency)]
    except DataError as exc:
        found = re.search(r"holds ([A-Z]+(?: and [A-Z]+)+): pass currency", str(exc))
        if currency is not None or found is None:
            raise
        chains = [volcal.read_chain(source, currency=c) for c in found.group(1).split(" and ")]
    out = []
    for ch in chains:
        listed = ch.meta.get("snapshots_in_file") or [ch.snapshot.isoformat()]
        out.append(
            {
                "underlying": ch.underlying,
                "format": ch.meta.get("format"),
                "default": ch.snapshot.isoformat(),
                "snapshots": list(listed),
            }
        )
    return out


@app.command()
def snapshots(
    source: Annotated[Path, typer.Argument(help="Chain file (any format read_chain reads).")],
    currency: CurrencyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the snapshots (and underlyings) a chain file holds; pick one with --snapshot."""
    listing = _snapshot_listing(source, currency)
    if json_out:
        print_json({"source": str(source), "underlyings": listing})
        return
    from rich.table import Table

    for entry in listing:
        table = Table(
            title=f"{entry['underlying']}: {len(entry['snapshots'])} snapshot(s) "
            f"({entry['format']})",
            title_justify="left",
        )
        table.add_column("#", justify="right")
        table.add_column("snapshot (UTC)")
        table.add_column("read by default", justify="center")
        for i, s in enumerate(entry["snapshots"]):
            table.add_row(str(i + 1), s, "yes" if s == entry["default"] else "")
        print_table(table)
    console.print("pick one with --snapshot TIME", highlight=False)
