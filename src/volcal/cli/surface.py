"""``volcal surface``: fit an arbitrage-free surface and print the market's conventions.

Reads and cleans a chain, fits the surface (eSSVI by default), and prints the tenor x
delta grid (ATM, 25/10-delta RR and BF at constant maturities), the ATM term structure
of the fitted expiries, the static-arbitrage check and the 30-day vol index; ``--json``
prints one JSON document, ``--report`` writes a self-contained HTML page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from volcal.cli._app import app, console, err_console, print_json, print_table
from volcal.errors import ParameterError

_SURFACE_MODELS = ("essvi", "ssvi", "svi", "sabr")


@app.command()
def surface(
    snapshot: Annotated[
        list[Path], typer.Argument(help="Chain file(s): several venues are aggregated.")
    ],
    currency: Annotated[
        str | None,
        typer.Option("--currency", "-c", help="Underlying to read when the file holds several."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="essvi, ssvi, svi or sabr.")
    ] = "essvi",
    delta: Annotated[
        str, typer.Option("--delta", help="Delta convention: premium_adjusted or forward.")
    ] = "premium_adjusted",
    at: Annotated[
        str | None,
        typer.Option("--snapshot", help="Snapshot time (UTC, ISO) in files that hold several."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report.")
    ] = None,
) -> None:
    """Fit a volatility surface and print the tenor x delta grid and ATM term structure."""
    import volcal
    from volcal.errors import DataError
    from volcal.surface import check_arbitrage, surface_conventions, vol_index

    name = model.lower()
    if name not in _SURFACE_MODELS:
        raise ParameterError(f"--model must be one of {', '.join(_SURFACE_MODELS)}, got {model!r}")
    from volcal.cli._load import load_snapshot
    from volcal.quality import quality_report

    names = ", ".join(p.name for p in snapshot)
    with err_console.status(f"reading and cleaning {names}...") as status:
        chain, _ = load_snapshot(snapshot, currency, at)
        from volcal.cli._numba_start import prepare

        prepare()  # numba's first-dispatch set-up without the scipy.linalg package
        cleaned = volcal.clean(chain)
        quality = quality_report(cleaned)
        status.update(f"fitting {name} to {quality.n_used} quotes...")
        result = volcal.calibrate(cleaned, name)
        status.update("conventions, arbitrage check and vol index...")
        surf = result.surface()
        conv = surface_conventions(surf, delta=delta)
        arb = check_arbitrage(surf)
        index: Any = None
        index_note = ""
        try:
            index = vol_index(chain)
        except DataError as exc:
            index_note = str(exc)
    if report is not None:
        from volcal.report.surface import write_surface_report

        write_surface_report(
            report,
            result,
            conv,
            arb,
            index,
            title=f"{chain.underlying} volatility surface ({name}), "
            f"{chain.snapshot:%Y-%m-%d %H:%M} UTC",
        )
    term = [
        {
            "expiry": s.expiry,
            "t": s.t,
            "days": 365.0 * s.t,
            "atm_vol": s.atm_vol,
            "rmse": s.rmse_vol,
        }
        for s in result.slices
    ]
    if json_out:
        print_json(
            {
                "source": ", ".join(map(str, snapshot)),
                "underlying": chain.underlying,
                "snapshot": chain.snapshot.isoformat(),
                "model": name,
                "quality": quality.to_dict(),
                "fit": {
                    "status": result.status,
                    "rmse_vol": result.rmse_vol,
                    "inside_spread": result.inside_spread,
                    "n_used": result.n_used,
                    "elapsed_s": result.elapsed_s,
                    "params": result.params.to_dict(),
                },
                "conventions": conv.to_dict(),
                "atm_term_structure": term,
                "arbitrage": arb.to_dict(),
                "vol_index": None if index is None else index.to_dict(),
                "vol_index_note": index_note or None,
                "report": None if report is None else str(report),
            }
        )
        return
    console.print(cleaned.summary(), highlight=False)
    console.print(
        f"fitted {result.n_used} of {len(cleaned)} quotes in {len(result.slices)} expiries "
        f"(cleaned; {quality.n_excluded} excluded, see `volcal quality`)",
        highlight=False,
    )
    console.print(
        f"{name} surface: RMSE {result.rmse_vol:.3f} vol pts, "
        f"{100 * result.inside_spread:.1f}% inside bid-ask, status {result.status}, "
        f"{1000 * result.elapsed_s:.1f} ms",
        highlight=False,
    )
    grid = Table(title=f"Tenor x delta grid ({delta} delta, vol %)", title_justify="left")
    for col in ("tenor", "10P", "25P", "ATM", "25C", "10C", "RR25", "BF25", "RR10", "BF10"):
        grid.add_column(col, justify="right")
    for i, d in enumerate(conv.tenor_days):
        cells = [f"{100 * v:.2f}" for v in conv.vols[i]]
        cells += [f"{100 * getattr(conv, n)[i]:+.2f}" for n in ("rr25", "bf25", "rr10", "bf10")]
        grid.add_row(f"{d}d" + ("*" if conv.extrapolated[i] else ""), *cells)
    print_table(grid)
    console.print("* outside the fitted expiries (extrapolated)", highlight=False)
    ts = Table(title="ATM term structure (fitted expiries)", title_justify="left")
    for col in ("expiry", "days", "ATM vol", "RMSE (vol pts)"):
        ts.add_column(col, justify="left" if col == "expiry" else "right")
    for row in term:
        ts.add_row(
            row["expiry"][:16].replace("T", " "),
            f"{row['days']:.1f}",
            f"{100 * row['atm_vol']:.2f}",
            f"{row['rmse']:.3f}",
        )
    print_table(ts)
    verdict = (
        "[green]no static arbitrage[/]" if arb.ok else f"[red]{len(arb.violations)} regions[/]"
    )
    console.print(f"arbitrage check: {verdict} ({arb.n_points} grid points)")
    for v in arb.violations[:10]:
        console.print(
            f"  {v.kind} t={v.t:.5f} k in [{v.k_lo:+.3f}, {v.k_hi:+.3f}] worst {v.worst:.3g}",
            highlight=False,
        )
    if index is not None:
        console.print(index.summary(), highlight=False)
    else:
        console.print(f"30-day index not computed: {index_note}", highlight=False)
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)
