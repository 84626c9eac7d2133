"""``volcal backfill``, ``volcal audit`` and ``volcal history``: the calibration store.

``backfill`` calibrates every snapshot file under the given paths with several models
on Dask (a LocalCluster by default, ``--scheduler`` for an existing cluster) into a
DuckDB store, with a progress bar (throughput and ETA) on stderr; re-running it does
only what is missing. ``audit`` repeats one stored calibration from its stored inputs
and settings and says whether the parameters reproduce. ``history`` prints (or writes
as CSV / an HTML report) parameter series, term structure, fit quality, the vol index
against DVOL and a stability table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from volcal.cli._app import app, console, err_console, fmt_num, print_json


class _RateColumn(ProgressColumn):
    """Chains per second since the start (Rich's own speed is a short moving window)."""

    def render(self, task: Any) -> Text:
        el = task.elapsed or 0.0
        rate = task.completed / el if el > 0 else 0.0
        return Text(f"{rate:.2f} chains/s", style="progress.data.speed")


#: redraws per second of the backfill's progress bar: it moves once per written batch
#: (seconds apart) and its clock once a second, so Rich's default of 10 would spend CPU
#: of the client - which shares the cores with the workers - on identical frames
BAR_REFRESH_PER_S = 1.0


def _backfill_bar(transient: bool) -> Progress:
    return Progress(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        refresh_per_second=BAR_REFRESH_PER_S,
    )


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


@app.command()
def backfill(
    paths: Annotated[list[Path], typer.Argument(help="Snapshot files or folders.")],
    models: Annotated[
        str, typer.Option("--models", "-m", help="Comma-separated models, e.g. svi,essvi,heston.")
    ] = "svi,essvi,heston",
    store: Annotated[Path, typer.Option("--store", "-s", help="Store file (DuckDB).")] = Path(
        "volcal.duckdb"
    ),
    currency: Annotated[
        str, typer.Option("--currency", "-c", help="Comma-separated underlyings.")
    ] = "BTC,ETH",
    workers: Annotated[int, typer.Option("--workers", "-w", help="LocalCluster processes.")] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Address of an existing Dask scheduler (tcp://h:p)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Snapshot files per task (warm starts inside).")
    ] = 20,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N files (chronologically).")
    ] = None,
    strength: Annotated[
        float, typer.Option("--strength", help="Regularization toward the previous fit (0: none).")
    ] = 0.0,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Redo inputs recorded as failures.")
    ] = False,
    connect_timeout: Annotated[
        float, typer.Option("--connect-timeout", help="Seconds to wait for --scheduler.")
    ] = 10.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Calibrate a history of snapshots on Dask into a store (resumable, idempotent)."""
    from volcal.history.jobs import backfill as run

    settings: dict[str, Any] = {}
    if strength:
        settings["strength"] = float(strength)
    bar = _backfill_bar(transient=json_out)
    tasks: list[Any] = []

    def step(done: int, total: int) -> None:
        # shown once the inputs are checked and the work starts (errors stay one line)
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("chains", total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        report = run(
            paths,
            _split(models),
            store,
            currencies=_split(currency),
            workers=workers,
            scheduler=scheduler,
            batch_size=batch_size,
            settings=settings,
            retry_failed=retry_failed,
            limit=limit,
            progress=step,
            connect_timeout=connect_timeout,
        )
    finally:
        if tasks:
            bar.stop()
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(report.summary(), highlight=False)


@app.command()
def audit(
    store: Annotated[Path, typer.Argument(help="Store file (DuckDB).")],
    calibration_id: Annotated[str, typer.Argument(help="Calibration id (see volcal history).")],
    rtol: Annotated[
        float, typer.Option("--rtol", help="Relative tolerance when not bit for bit.")
    ] = 1e-6,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Re-run a stored calibration from its stored inputs and check it reproduces.

    Exit code 0 when the parameters reproduce (bit for bit or within --rtol), 1 when not.
    """
    from volcal.store import open as open_store
    from volcal.store.audit import audit as run

    with open_store(store, read_only=True) as st:
        res = run(st, calibration_id, rtol=rtol)
    if json_out:
        print_json(res.to_dict())
    else:
        console.print(res.summary(), highlight=False)
    if not res.reproduced:
        raise typer.Exit(1)


@app.command()
def history(
    store: Annotated[Path, typer.Argument(help="Store file (DuckDB).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model of the series.")] = "heston",
    currency: Annotated[
        str | None, typer.Option("--currency", "-c", help="Underlying (default: every one).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this UTC time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this UTC time.")] = None,
    dvol: Annotated[
        Path | None,
        typer.Option("--dvol", help="Hourly DVOL CSV (timestamp/open/high/low/close) to compare."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report.")
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print the series as CSV on stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Parameter series, term structure, fit quality, vol index vs DVOL and stability.

    Reads the stored fits of one model (standard-error bands, ATM and 25-delta RR/BF
    at fixed tenors, RMSE, the 30-day index against hourly DVOL, median relative
    change per step of each parameter)."""
    from volcal.history.analytics import history as build
    from volcal.store import open as open_store

    with open_store(store, read_only=True) as st:
        h = build(st, model, underlying=currency, since=since, until=until, dvol=dvol)
    if report is not None:
        from volcal.report.history import write_history_report

        write_history_report(h, report)
    if csv:
        # scalar parameters are the p_/se_ columns; per-expiry ones: Store.slices()
        drop = ["params", "stderr", "warnings", "warm_start", "settings"]
        typer.echo(h.series.drop(columns=drop, errors="ignore").to_csv(index=False), nl=False)
        return
    if json_out:
        print_json(h.to_dict())
        return
    _print_history(h)
    if report is not None:
        console.print(f"report written to {report}")


def _print_history(h: Any) -> None:
    console.print(h.headline(), highlight=False)
    t = Table(title="stability: median relative change per step", title_justify="left")
    t.add_column("underlying")
    t.add_column("settings")
    t.add_column("parameter")
    for col in ("median_rel_change", "p90_rel_change", "steps"):
        t.add_column(col, justify="right")
    for r in h.stability.to_dict("records"):
        t.add_row(
            str(r["underlying"]),
            str(r["settings"]),
            str(r["parameter"]),
            fmt_num(r["median_rel_change"], 100, 2) + " %",
            fmt_num(r["p90_rel_change"], 100, 2) + " %",
            str(int(r["steps"])),
        )
    console.print(t)
    q = Table(title="fit quality", title_justify="left")
    for col in ("underlying", "fits", "ok", "median RMSE", "p90 RMSE", "median inside"):
        q.add_column(col, justify="right" if col != "underlying" else "left")
    for r in h.quality.to_dict("records"):
        q.add_row(
            str(r["underlying"]),
            str(int(r["fits"])),
            str(int(r["ok"])),
            fmt_num(r["median_rmse"], 1, 3),
            fmt_num(r["p90_rmse"], 1, 3),
            fmt_num(r["median_inside"], 100, 1) + " %",
        )
    console.print(q)
    term = h.latest_term()
    if not term.empty:
        tt = Table(title="term structure of the last fit (vol points)", title_justify="left")
        for col in ("underlying", "settings", "snapshot", "tenor", "ATM", "RR25", "BF25"):
            tt.add_column(col, justify="left" if col in ("underlying", "settings") else "right")
        for r in term.to_dict("records"):
            tt.add_row(
                str(r["underlying"]),
                str(r["settings"]),
                f"{r['snapshot_time']:%Y-%m-%d %H:%M}",
                f"{int(r['tenor_days'])}d",
                fmt_num(r["atm"], 100),
                fmt_num(r["rr25"], 100),
                fmt_num(r["bf25"], 100),
            )
        console.print(tt)
    if h.dvol_stats:
        console.print(
            "vol index vs DVOL: "
            + ", ".join(f"{k} {fmt_num(v, 1, 3)}" for k, v in h.dvol_stats.items()),
            highlight=False,
        )
