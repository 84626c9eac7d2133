"""``volcal compare``: every model fitted to one chain, side by side.

The chain is read (any format ``volcal.read_chain`` detects) and cleaned
(``volcal.clean``); each model is calibrated cold on the same quotes
(:func:`volcal.compare_models`) with a progress bar on stderr. The output is a Rich
table of RMSE and inside-spread share per expiry bucket, time and status per model,
one JSON document (``--json``), and optionally a self-contained HTML report
(``--report``) with every model's smile against the market per expiry.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from volcal.cli._app import app, console, err_console, print_json, print_table
from volcal.cli._app import fmt_num as _fmt
from volcal.errors import CalibrationWarning, ParameterError

_MODELS_HELP = "Comma-separated models (default: svi,sabr,heston,bates,merton,kou,vg,svcj)."


def _parse_models(text: str | None) -> list[str]:
    from volcal.calibration.compare import COMPARE_MODELS

    if text is None:
        return list(COMPARE_MODELS)
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    if not names:
        raise ParameterError("--models is empty: name at least one model")
    return names


def _parse_buckets(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ParameterError(
            f"--buckets must be comma-separated days, e.g. 7,30,90; got {text!r}"
        ) from None


def print_comparison(cmp: Any, title: str) -> None:
    """Rich table: one row per model, RMSE / inside share overall and per bucket; a fit
    whose status is not ok is marked and explained below the table."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        caption="RMSE in vol points; per bucket: RMSE and share of quotes inside bid-ask",
        caption_justify="left",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("RMSE", justify="right", no_wrap=True)
    table.add_column("inside", justify="right", no_wrap=True)
    fitted = [f for f in cmp.fits if f.result is not None]
    n_per = fitted[0].buckets if fitted else {}
    for lab in cmp.bucket_labels:
        n = int(n_per[lab]["n"]) if lab in n_per else 0
        table.add_column(f"{lab}\nn={n}", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    notes = []
    for f in cmp.fits:
        r = f.result
        if r is None:
            table.add_row(f"[red]{f.model}[/]", "-", "-", *["-"] * len(cmp.bucket_labels), "-")
            notes.append(f"[red]{f.model}: not fitted:[/] {f.error}")
            continue
        cells = [
            f"{_fmt(b['rmse_vol'])} {_fmt(b['inside_spread'], 100.0, 0)}%"
            for b in f.buckets.values()
        ]
        name = f.model if r.ok else f"[yellow]{f.model}*[/]"
        if not r.ok:
            notes.append(f"[yellow]{f.model}*: {r.status}[/] ({r.message}); best parameters shown")
        table.add_row(
            name,
            _fmt(r.rmse_vol, 1.0, 3),
            _fmt(r.inside_spread, 100.0, 0) + "%",
            *cells,
            _fmt(f.wall_s, 1.0, 1) + "s",
        )
    print_table(table)
    for note in notes:
        console.print(note, highlight=False)


@app.command()
def compare(
    snapshot: Annotated[Path, typer.Argument(help="Chain file (Deribit CSV/JSON or quote table).")],
    currency: Annotated[
        str | None,
        typer.Option(
            "--currency", "-c", help="Underlying to read when the file holds several (BTC, ETH)."
        ),
    ] = None,
    models: Annotated[str | None, typer.Option("--models", "-m", help=_MODELS_HELP)] = None,
    buckets: Annotated[
        str, typer.Option("--buckets", help="Bucket edges in days to expiry, comma-separated.")
    ] = "7,30,90",
    at: Annotated[
        str | None,
        typer.Option(
            "--snapshot", help="Snapshot time (UTC, ISO) to read from files that hold several."
        ),
    ] = None,
    max_time: Annotated[
        float, typer.Option("--max-time", help="Time limit per model fit (seconds).")
    ] = 20.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of tables.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Fit every model to one chain and compare RMSE and inside-spread share by expiry bucket."""
    import volcal
    from volcal.calibration.compare import compare_models

    names = _parse_models(models)
    edges = _parse_buckets(buckets)
    if not max_time > 0:
        raise ParameterError(f"--max-time must be > 0, got {max_time}")
    t0 = time.perf_counter()
    chain = volcal.clean(volcal.read_chain(snapshot, currency=currency, snapshot=at))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as prog:
        task = prog.add_task("fitting", total=len(names))

        def step(model: str, i: int, n: int) -> None:
            prog.update(
                task, completed=i, total=n, description=f"fitting {model}" if model else "done"
            )

        with warnings.catch_warnings():
            # every fit's status is in the table
            warnings.simplefilter("ignore", CalibrationWarning)
            cmp = compare_models(chain, names, buckets=edges, max_time=max_time, progress=step)
    total = time.perf_counter() - t0
    if report is not None:
        from volcal.report.compare import write_compare_report

        write_compare_report(report, chain, cmp, source=str(snapshot))
    if json_out:
        out = cmp.to_dict()
        out["source"] = str(snapshot)
        out["n_quotes"] = len(chain)
        out["total_elapsed_s"] = total
        if report is not None:
            out["report"] = str(report)
        print_json(out)
        return
    console.print(chain.summary(), highlight=False)
    print_comparison(
        cmp, f"model comparison, {chain.underlying} {chain.snapshot:%Y-%m-%d %H:%M} UTC"
    )
    console.print(f"total {total:.1f} s", highlight=False)
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)
