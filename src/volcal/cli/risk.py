"""Portfolio-risk commands: ``risk``, ``margin`` and ``hedge``.

PORTFOLIO is a JSON (list of ``{"instrument", "size", "entry_price"}`` records, or
``{"positions": [...]}``) or CSV file (columns ``instrument``, ``size``); ``--chain`` is a
snapshot file in any format ``volcal.read_chain`` reads. The chain is cleaned
(``volcal.clean``) and valued with its mark vols (the default: Deribit values positions
and computes margins from its marks), with the arbitrage-free SVI surface fitted to it
(``--vols surface``, the model vols to use) or with the free per-expiry SVI fits
(``--vols svi``, no calendar condition).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from volcal.cli._app import app, console, err_console, print_json, print_table
from volcal.errors import ParameterError

PortfolioArg = Annotated[Path, typer.Argument(help="Portfolio file (.json or .csv).")]
ChainOpt = Annotated[Path, typer.Option("--chain", help="Option chain snapshot file.")]
CurrencyOpt = Annotated[
    str | None,
    typer.Option("--currency", "-c", help="Underlying to read (default: the portfolio's)."),
]
SnapshotOpt = Annotated[
    str | None, typer.Option("--snapshot", help="Snapshot time to read from multi-snapshot files.")
]
VolsOpt = Annotated[
    str,
    typer.Option(
        "--vols",
        help="Vol source: mark (chain marks), surface (arbitrage-free SVI surface) or svi "
        "(free per-expiry SVI fits).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def _load(
    portfolio: Path, chain: Path, currency: str | None, snapshot: str | None, vols: str
) -> Any:
    import volcal
    from volcal.risk.portfolio import Portfolio
    from volcal.risk.valuation import Market

    if vols not in ("mark", "surface", "svi"):
        raise ParameterError(f"--vols must be mark, surface or svi, got {vols!r}")
    pf = Portfolio.read(portfolio)
    with err_console.status(f"reading and cleaning {chain.name}..."):
        ch = volcal.read_chain(chain, currency=currency or pf.underlying, snapshot=snapshot)
        return pf, Market.from_chain(volcal.clean(ch), vols=vols)


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ParameterError(f"{what}: expected comma-separated numbers, got {text!r}") from exc
    if not vals:
        raise ParameterError(f"{what}: no values")
    return vals


@app.command("risk")
def risk_cmd(
    portfolio: PortfolioArg,
    chain: ChainOpt,
    currency: CurrencyOpt = None,
    snapshot: SnapshotOpt = None,
    vols: VolsOpt = "mark",
    spot_moves: Annotated[
        str, typer.Option("--spot-moves", help="Spot moves in percent, comma-separated.")
    ] = "-30,-20,-10,-5,0,5,10,20,30",
    vol_shocks: Annotated[
        str, typer.Option("--vol-shocks", help="Vol shocks at 30 days in vol points.")
    ] = "-10,-5,0,5,10",
    vol_power: Annotated[
        float, typer.Option("--vol-power", help="Vol shock scaling (30/days)^power.")
    ] = 0.5,
    sticky: Annotated[str, typer.Option("--sticky", help="strike or moneyness.")] = "strike",
    as_json: JsonOpt = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", "-r", help="Write an HTML report with the P&L heatmap."),
    ] = None,
) -> None:
    """Greeks per expiry (coin and USD) and the scenario P&L grid of a portfolio."""
    from volcal.risk.scenario import scenario_grid
    from volcal.risk.valuation import portfolio_greeks

    pf, market = _load(portfolio, chain, currency, snapshot, vols)
    greeks = portfolio_greeks(pf, market)
    grid = scenario_grid(
        pf,
        market,
        [x / 100 for x in _floats(spot_moves, "--spot-moves")],
        [x / 100 for x in _floats(vol_shocks, "--vol-shocks")],
        vol_power=vol_power,
        sticky=sticky,  # type: ignore[arg-type]
    )
    if report is not None:
        from volcal.report.risk import write_risk_report

        write_risk_report(report, pf, greeks, grid)
    if as_json:
        print_json(
            {"greeks": greeks.to_dict(), "scenarios": grid.to_dict()},
            units={
                "delta": "coin of underlying per unit move of the forward (dV_usd/dF)",
                "gamma": "delta per USD of underlying; gamma_1pct: delta per 1% move",
                "vega_usd, vega_30d_usd": "USD per vol point (0.01 in vol)",
                "theta_usd": "USD per calendar day",
                "value_usd, pnl_usd, pnl": "USD",
                "spot_moves": "fraction of the forward (0.1 = +10%)",
                "vol_shocks": "vol as a fraction at 30 days (0.05 = 5 vol points)",
            },
        )
        return
    tot = greeks.totals
    table = Table(
        title=f"{pf.name}: greeks by expiry (vols: {market.vol_label})", title_justify="left"
    )
    for col in (
        "expiry",
        "days",
        "n",
        "delta (coin)",
        "gamma/1% (coin)",
        "vega USD",
        "vega30 USD",
        "theta USD/day",
    ):
        table.add_column(col, justify="left" if col == "expiry" else "right")
    for r in greeks.by_expiry:
        table.add_row(
            r["expiry"],
            f"{r['days']:.1f}",
            str(r["n"]),
            f"{r['delta']:.4f}",
            f"{r['gamma_1pct']:.5f}",
            f"{r['vega_usd']:,.1f}",
            f"{r['vega_30d_usd']:,.1f}",
            f"{r['theta_usd']:,.1f}",
        )
    print_table(table)
    console.print(
        f"value {tot['value_usd']:,.2f} USD ({tot['value_coin']:.6f} coin), "
        f"delta {tot['delta']:.4f} coin (exchange delta {tot['delta_coin']:.4f}), "
        f"vega {tot['vega_usd']:,.1f} USD/vol pt",
        highlight=False,
    )
    grid_table = Table(title="Scenario P&L (USD), vol shock x spot move", title_justify="left")
    grid_table.add_column("vol \\ spot")
    for m in grid.spot_moves:
        grid_table.add_column(f"{m:+.0%}", justify="right")
    for i, s in enumerate(grid.vol_shocks):
        grid_table.add_row(f"{s * 100:+.1f} vp", *(f"{x:,.0f}" for x in grid.pnl[i]))
    print_table(grid_table)
    if report is not None:
        console.print(f"report written to {report}", highlight=False, soft_wrap=True)


@app.command("margin")
def margin_cmd(
    portfolio: PortfolioArg,
    chain: ChainOpt,
    method: Annotated[str, typer.Option("--method", "-m", help="deribit or span.")] = "deribit",
    currency: CurrencyOpt = None,
    snapshot: SnapshotOpt = None,
    vols: VolsOpt = "mark",
    as_json: JsonOpt = False,
) -> None:
    """Portfolio margin (initial, maintenance) by scenario revaluation."""
    from volcal.risk.portfolio_margin import margin

    if method not in ("deribit", "span"):
        raise ParameterError(f"--method must be deribit or span, got {method!r}")
    pf, market = _load(portfolio, chain, currency, snapshot, vols)
    res = margin(pf, market, method=method)  # type: ignore[arg-type]
    if as_json:
        print_json(res.to_dict())
        return
    console.print(res.summary(), highlight=False)


@app.command("hedge")
def hedge_cmd(
    portfolio: PortfolioArg,
    chain: ChainOpt,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="Greek targets, e.g. 'delta=0,gamma=0,vega:0-30=0,vega:30-=0' "
            "(delta coin, gamma coin per 1%, vega USD per vol point).",
        ),
    ],
    max_size: Annotated[float, typer.Option("--max-size", help="Max coin per instrument.")] = 50.0,
    currency: CurrencyOpt = None,
    snapshot: SnapshotOpt = None,
    vols: VolsOpt = "mark",
    as_json: JsonOpt = False,
) -> None:
    """Cheapest listed trades (crossing the spread) that bring the greeks to the targets."""
    from volcal.risk.hedge_program import hedge_search

    pf, market = _load(portfolio, chain, currency, snapshot, vols)
    with err_console.status("searching the cheapest hedge..."):
        res = hedge_search(pf, market, target, max_size=max_size)
    if as_json:
        print_json(res.to_dict())
        return
    console.print(res.summary(), highlight=False)
