"""HTML report of a portfolio's risk: greeks by expiry and the scenario P&L heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from volcal.report.html import figure_html, heading, preformatted, table_html, write_html


def pnl_heatmap(grid: Any) -> Any:
    """Plotly heatmap of a :class:`~volcal.risk.scenario.ScenarioGrid` (USD, red = loss)."""
    import plotly.graph_objects as go

    x = [f"{m:+.0%}" for m in grid.spot_moves]
    y = [f"{s * 100:+.1f} vp" for s in grid.vol_shocks]
    lim = float(abs(grid.pnl).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=grid.pnl,
            x=x,
            y=y,
            zmin=-lim,
            zmax=lim,
            colorscale="RdYlGn",
            text=[[f"{v:,.0f}" for v in row] for row in grid.pnl],
            texttemplate="%{text}",
            colorbar={"title": "P&L USD"},
        )
    )
    fig.update_layout(
        title=f"Scenario P&L (vol shock at 30 days, scaled (30/days)^{grid.vol_power:g}; "
        f"sticky {grid.sticky})",
        xaxis_title="spot move",
        yaxis_title="vol shock",
        height=480,
    )
    return fig


def write_risk_report(path: str | Path, portfolio: Any, greeks: Any, grid: Any) -> Path:
    """Write the risk report of ``portfolio`` (greeks table, P&L heatmap, positions)."""
    headers = ["expiry", "days", "n", "delta", "gamma/1%", "vega USD", "vega30 USD", "theta USD"]
    rows = [
        [
            r["expiry"],
            r["days"],
            r["n"],
            r["delta"],
            r["gamma_1pct"],
            r["vega_usd"],
            r["vega_30d_usd"],
            r["theta_usd"],
        ]
        for r in greeks.by_expiry
    ]
    df = greeks.to_frame()
    parts = [
        heading("Greeks by expiry"),
        table_html(headers, rows),
        preformatted(greeks.summary()),
        heading("Scenario P&L"),
        figure_html(pnl_heatmap(grid)),
        preformatted(grid.summary()),
        heading("Positions"),
        table_html(list(df.columns), df.values.tolist()),
    ]
    return write_html(path, f"Portfolio risk: {portfolio.name}", parts)


__all__ = ["pnl_heatmap", "write_risk_report"]
