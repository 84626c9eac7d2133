"""Risk-parameter commands: ``var``, ``backtest``, ``calibrate-margin``, ``collateral``,
``rate-curve``.

SERIES is a price-history CSV (the formats :func:`volcal.risk.read_prices` detects).
Every command prints the series' validation notes (gaps, duplicates, dropped prices),
Rich tables, or one JSON document with ``--json``; ``backtest`` and ``calibrate-margin``
write a self-contained HTML report with ``--report`` and show a progress bar on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from volcal.cli._app import app, console, err_console, print_json, print_table
from volcal.errors import ParameterError

SeriesArg = Annotated[Path, typer.Argument(help="Price history CSV (time column + price column).")]
ColumnOpt = Annotated[
    str | None, typer.Option("--column", help="Price column (default: close/price/iv).")
]
StartOpt = Annotated[str | None, typer.Option("--start", help="First date used (ISO).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Last date used (ISO).")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict", help="Fail on any gap, duplicate or bad price instead of handling it."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", "-r", help="Write a self-contained HTML report here.")
]
MethodOpt = Annotated[str, typer.Option("--method", "-m", help="VaR method: hs, fhs or evt.")]
POpt = Annotated[float, typer.Option("--p", help="Tail probability (0.01 = 99% VaR).")]
WindowOpt = Annotated[int, typer.Option("--window", "-w", help="Rolling window in sampling steps.")]
RefitOpt = Annotated[
    int, typer.Option("--refit-every", help="Forecasts between FHS/EVT re-fits (HS: every one).")
]
SideOpt = Annotated[str, typer.Option("--side", help="long (loss on a fall) or short.")]


def _load(path: Path, column: str | None, start: str | None, end: str | None, strict: bool) -> Any:
    from volcal.risk.series import read_prices

    with err_console.status(f"reading {path.name}..."):
        s = read_prices(path, column=column, strict=strict)
    if start or end:
        s = s.between(start, end)
    return s


def _notes(series: Any, as_json: bool) -> None:
    """Validation notes go to stderr so JSON on stdout stays clean."""
    if not as_json:
        console.print(f"[dim]{series.report.summary()}[/]", highlight=False)
    else:
        for issue in series.report.issues():
            err_console.print(f"[yellow]note:[/] {series.name}: {issue}", highlight=False)


@contextmanager
def _progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not enabled,
    ) as prog:
        task = prog.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        yield update


# what the VaR numbers of --json are measured in
_VAR_UNITS = {
    "var_log, es_log": "loss as a positive log return of the position over the horizon",
    "var_fraction, es_fraction": "loss as a fraction of the position value (0.05 = 5%)",
    "p": "tail probability (0.01 = 99% VaR)",
    "horizon": "time span (1d = one day, 4h = four hours)",
}


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _zone(z: str) -> str:
    return {"green": "[green]green[/]", "yellow": "[yellow]yellow[/]", "red": "[red]red[/]"}[z]


def _methods(method: str) -> list[str]:
    from volcal.risk.var import METHODS

    ms = list(METHODS) if method == "all" else [m.strip() for m in method.split(",")]
    for m in ms:
        if m not in METHODS:
            raise ParameterError(f"--method {m!r} must be one of hs, fhs, evt or all")
    return ms


@app.command("var")
def var_cmd(
    series: SeriesArg,
    p: POpt = 0.01,
    method: Annotated[
        str, typer.Option("--method", "-m", help="hs, fhs, evt, a list or all.")
    ] = "all",
    horizon: Annotated[
        list[str] | None, typer.Option("--horizon", "-h", help="Horizon(s), e.g. 1h, 1d, 3d.")
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", "-w", help="History used (steps).")
    ] = None,
    side: SideOpt = "long",
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """VaR and expected shortfall of a price series (HS, FHS-GARCH, EVT) at each horizon."""
    from volcal.risk.var import value_at_risk

    s = _load(series, column, start, end, strict)
    _notes(s, as_json)
    hs = horizon or [s.freq_label]
    results = [
        value_at_risk(s, p, m, horizon=h, window=window, side=side)
        for h in hs
        for m in _methods(method)
    ]
    if as_json:
        print_json(
            {"series": s.to_dict(), "results": [r.to_dict() for r in results]},
            units=_VAR_UNITS,
        )
        return
    table = Table(title=f"{s.name}: {1 - p:.2%} VaR / ES ({side})", title_justify="left")
    for col in ("horizon", "method", "VaR", "ES", "n", "as of", "notes"):
        table.add_column(col, justify="left" if col in ("method", "notes", "as of") else "right")
    for r in results:
        table.add_row(
            r.horizon,
            r.method,
            _pct(r.var_fraction),
            _pct(r.es_fraction),
            str(r.n_obs),
            r.as_of[:16],
            "; ".join(r.warnings),
        )
    print_table(table)


@app.command("backtest")
def backtest_cmd(
    series: SeriesArg,
    method: Annotated[
        str, typer.Option("--method", "-m", help="hs, fhs, evt, a list or all.")
    ] = "fhs",
    p: POpt = 0.01,
    window: WindowOpt = 500,
    horizon: Annotated[
        str | None, typer.Option("--horizon", "-h", help="Horizon (default one step).")
    ] = None,
    refit_every: RefitOpt = 20,
    side: SideOpt = "long",
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Rolling out-of-sample VaR backtest: Kupiec, Christoffersen, Basel traffic light."""
    from volcal.risk.backtest import backtest_var

    s = _load(series, column, start, end, strict)
    _notes(s, as_json)
    results = []
    for m in _methods(method):
        with _progress(f"{m.upper()} backtest", enabled=True) as prog:
            results.append(
                backtest_var(
                    s,
                    p,
                    m,
                    window=window,
                    horizon=horizon,
                    side=side,
                    refit_every=refit_every,
                    progress=prog,
                )
            )
    if report is not None:
        from volcal.report.riskparams import write_backtest_report

        write_backtest_report(report, results, title=f"VaR backtests: {s.name}")
    if as_json:
        print_json(
            {
                "series": s.to_dict(),
                "backtests": [r.to_dict() for r in results],
                "report": str(report) if report else None,
            }
        )
        return
    table = Table(
        title=f"{s.name}: rolling {1 - p:.2%} VaR backtest ({side}, window {window})",
        title_justify="left",
    )
    for col in (
        "method",
        "horizon",
        "n",
        "exceptions",
        "expected",
        "LR_pof",
        "p_pof",
        "LR_ind",
        "p_ind",
        "LR_cc",
        "p_cc",
        "zone",
        "mult.",
    ):
        table.add_column(col, justify="left" if col in ("method", "zone") else "right")
    for r in results:
        row = r.row()
        table.add_row(
            row["method"],
            row["horizon"],
            str(row["n"]),
            str(row["exceptions"]),
            f"{row['expected']:.1f}",
            f"{row['LR_pof']:.3f}",
            f"{row['p_pof']:.3f}",
            f"{row['LR_ind']:.3f}",
            f"{row['p_ind']:.3f}",
            f"{row['LR_cc']:.3f}",
            f"{row['p_cc']:.3f}",
            _zone(row["zone"]),
            f"{row['multiplier']:.2f}",
        )
    print_table(table)
    for r in results:
        for w in r.forecasts.warnings:
            console.print(f"[yellow]warning[/] {r.forecasts.method}: {w}", highlight=False)
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)


@app.command("calibrate-margin")
def calibrate_margin_cmd(
    series: SeriesArg,
    target: Annotated[float, typer.Option("--target", help="Coverage target, e.g. 0.99.")] = 0.99,
    horizon: Annotated[str, typer.Option("--horizon", "-h", help="Liquidation horizon.")] = "1d",
    method: MethodOpt = "hs",
    window: WindowOpt = 365,
    refit_every: RefitOpt = 20,
    train_fraction: Annotated[
        float, typer.Option("--train-fraction", help="Share used to calibrate.")
    ] = 0.5,
    dvol: Annotated[
        Path | None, typer.Option("--dvol", help="DVOL history CSV for vol shocks.")
    ] = None,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
    report: ReportOpt = None,
) -> None:
    """Smallest margin shocks covering moves over the horizon at the target, proved out of sample."""
    from volcal.risk.params import calibrate_margin_shock

    s = _load(series, column, start, end, strict)
    _notes(s, as_json)
    vol = None
    if dvol is not None:
        vol = _load(dvol, None, start, end, strict)
        _notes(vol, as_json)
    with _progress("calibrating", enabled=True) as prog:
        res = calibrate_margin_shock(
            s,
            target,
            horizon,
            method=method,
            window=window,
            refit_every=refit_every,
            train_fraction=train_fraction,
            vol_series=vol,
            progress=prog,
        )
    if report is not None:
        from volcal.report.riskparams import write_margin_report

        write_margin_report(report, res)
    if as_json:
        print_json(
            {
                "series": s.to_dict(),
                "calibration": res.to_dict(),
                "report": str(report) if report else None,
            }
        )
        return
    table = Table(
        title=f"{s.name}: margin shock at {target:.2%} over {res.horizon}"
        f" ({method.upper()}, window {window})",
        title_justify="left",
    )
    for col in (
        "side",
        "shock",
        "m",
        "train cov.",
        "test cov.",
        "n test",
        "exceptions",
        "Kupiec p",
        "cc p",
        "zone",
        "static shock",
        "static test cov.",
    ):
        table.add_column(col, justify="left" if col in ("side", "zone") else "right")
    for sd in (res.long, res.short):
        table.add_row(
            sd.side,
            _pct(sd.shock),
            f"{sd.multiplier:.3f}",
            _pct(sd.train_coverage),
            _pct(sd.test_coverage),
            str(sd.n_test),
            str(sd.kupiec.exceptions),
            f"{sd.kupiec.pvalue:.3f}",
            f"{sd.christoffersen.pvalue:.3f}",
            _zone(sd.traffic_light.zone),
            _pct(sd.static_shock),
            _pct(sd.static_test_coverage),
        )
    print_table(table)
    if res.vol is not None:
        v = res.vol
        console.print(
            f"vol shocks ({v.name}, {v.horizon}): up +{v.current_shock_up:.1%}, down"
            f" -{v.current_shock_down:.1%}; test coverage {v.test_coverage_up:.2%} /"
            f" {v.test_coverage_down:.2%} over {v.n_test} windows",
            highlight=False,
        )
    for w in res.warnings:
        console.print(f"[yellow]warning[/] {w}", highlight=False)
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)


@app.command("collateral")
def collateral_cmd(
    series: SeriesArg,
    horizon: Annotated[str, typer.Option("--horizon", "-h", help="Liquidation horizon.")] = "1d",
    p: POpt = 0.01,
    method: MethodOpt = "evt",
    window: Annotated[
        int | None, typer.Option("--window", "-w", help="History used (steps).")
    ] = None,
    slippage: Annotated[
        float | None, typer.Option("--slippage", help="Fixed slippage fraction.")
    ] = None,
    adv: Annotated[
        float | None, typer.Option("--adv", help="Daily volume (USD) for square-root impact.")
    ] = None,
    daily_vol: Annotated[
        float | None,
        typer.Option(
            "--daily-vol", help="Daily vol for the impact model (default: from the series)."
        ),
    ] = None,
    size: Annotated[
        float | None, typer.Option("--size", help="USD liquidated at once (with --adv).")
    ] = None,
    bonus: Annotated[float, typer.Option("--bonus", help="Liquidation bonus.")] = 0.05,
    buffer: Annotated[
        float, typer.Option("--buffer", help="Safety buffer below the bound.")
    ] = 0.02,
    ltv_gap: Annotated[float, typer.Option("--ltv-gap", help="Gap between max LTV and LT.")] = 0.05,
    column: ColumnOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Liquidation threshold and collateral factor: VaR + slippage + buffers."""
    import numpy as np

    from volcal.risk.params import SquareRootImpact, collateral_parameters

    s = _load(series, column, start, end, strict)
    _notes(s, as_json)
    model: Any = 0.0 if slippage is None else slippage
    if adv is not None:
        if slippage is not None:
            raise ParameterError("give either --slippage or --adv/--size, not both")
        if size is None:
            raise ParameterError("--adv needs --size (USD liquidated at once)")
        dv = daily_vol
        if dv is None:
            r = s.returns("1d") if s.freq_label != "1d" else s.returns()
            dv = float(np.std(r.values[-365:], ddof=1))
        model = SquareRootImpact(daily_volume=adv, daily_vol=dv)
    res = collateral_parameters(
        s,
        horizon,
        p,
        method=method,
        window=window,
        slippage=model,
        liquidation_size=size,
        liquidation_bonus=bonus,
        buffer=buffer,
        ltv_gap=ltv_gap,
    )
    if as_json:
        print_json({"series": s.to_dict(), "collateral": res.to_dict()})
        return
    table = Table(
        title=f"{s.name}: collateral parameters ({res.method.upper()}, {1 - p:.2%}, {res.horizon})",
        title_justify="left",
    )
    table.add_column("component")
    table.add_column("value", justify="right")
    for k, v in (
        ("price drop (VaR)", res.var),
        ("ES", res.es),
        ("slippage", res.slippage),
        ("liquidation bonus", res.liquidation_bonus),
        ("buffer", res.buffer),
        ("liquidation threshold", res.liquidation_threshold),
        ("LTV gap", res.ltv_gap),
        ("collateral factor (max LTV)", res.collateral_factor),
        ("historical breach rate", res.historical_breach_rate),
    ):
        table.add_row(k, _pct(v))
    print_table(table)
    console.print(f"slippage source: {res.slippage_source}", highlight=False)
    for w in res.warnings:
        console.print(f"[yellow]warning[/] {w}", highlight=False)


@app.command("rate-curve")
def rate_curve_cmd(
    history: Annotated[
        Path | None,
        typer.Argument(help="CSV with utilisation and rate columns (fractions), to fit."),
    ] = None,
    u_opt: Annotated[
        float | None, typer.Option("--u-opt", help="Optimal utilisation (fitted if omitted).")
    ] = None,
    base: Annotated[float | None, typer.Option("--base", help="Target rate at 0 %.")] = None,
    at_optimal: Annotated[
        float | None, typer.Option("--at-optimal", help="Target rate at the kink.")
    ] = None,
    at_full: Annotated[
        float | None, typer.Option("--at-full", help="Target rate at 100 %.")
    ] = None,
    reserve_factor: Annotated[
        float, typer.Option("--reserve-factor", help="Share of interest kept by the protocol.")
    ] = 0.1,
    as_json: JsonOpt = False,
) -> None:
    """Kinked (Aave/Compound) borrow-rate curve: fitted to a utilisation/rate history,
    or through three target rates (--base, --at-optimal, --at-full with --u-opt)."""
    import numpy as np
    import pandas as pd

    from volcal.errors import DataError
    from volcal.risk.params import KinkedRateModel, fit_kinked_rate

    targets = (base, at_optimal, at_full)
    fit = None
    if history is not None:
        if any(x is not None for x in targets):
            raise ParameterError("give either a history CSV or target rates, not both")
        try:
            df = pd.read_csv(history)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{history.name}: not a readable CSV ({exc})") from exc
        cols = {c.strip().lower(): c for c in df.columns}
        u_col = cols.get("utilisation", cols.get("utilization"))
        r_col = cols.get("rate", cols.get("borrow_rate"))
        if u_col is None or r_col is None:
            raise DataError(f"{history.name}: needs 'utilisation' and 'rate' columns")
        fit = fit_kinked_rate(
            pd.to_numeric(df[u_col], errors="coerce").to_numpy(),
            pd.to_numeric(df[r_col], errors="coerce").to_numpy(),
            u_opt=u_opt,
        )
        model = fit.model
    else:
        if any(x is None for x in targets) or u_opt is None:
            raise ParameterError(
                "give a history CSV, or all of --base, --at-optimal, --at-full and --u-opt"
            )
        model = KinkedRateModel.from_targets(
            base=float(base),  # type: ignore[arg-type]
            rate_at_optimal=float(at_optimal),  # type: ignore[arg-type]
            rate_at_full=float(at_full),  # type: ignore[arg-type]
            u_opt=u_opt,
        )
    grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, 11), [model.u_opt]]))
    borrow = model.rate(grid)
    supply = model.supply_rate(grid, reserve_factor)
    if as_json:
        print_json(
            {
                "model": model.to_dict(),
                "fit": None if fit is None else fit.to_dict(),
                "reserve_factor": reserve_factor,
                "curve": [
                    {"utilisation": float(u), "borrow": float(b), "supply": float(s)}
                    for u, b, s in zip(grid, borrow, supply, strict=True)
                ],
            }
        )
        return
    console.print(fit.summary() if fit is not None else model.summary(), highlight=False)
    table = Table(title="Rates by utilisation", title_justify="left")
    for col in ("utilisation", "borrow", "supply"):
        table.add_column(col, justify="right")
    for u, b, s in zip(grid, borrow, supply, strict=True):
        mark = " (kink)" if u == model.u_opt else ""
        table.add_row(_pct(float(u)) + mark, _pct(float(b)), _pct(float(s)))
    print_table(table)
