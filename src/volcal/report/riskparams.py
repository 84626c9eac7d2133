"""HTML report of VaR backtests and margin-shock calibration (self-contained, offline).

For each backtest: realised losses against the VaR forecast with the exceptions marked,
and one table row (exceptions, Kupiec / Christoffersen statistics and p-values, Basel
zone). For a margin calibration: the shock rule against realised moves on both sides,
with the train/test split marked, and the calibration table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from volcal.report.html import figure_html, heading, preformatted, table_html, write_html

BACKTEST_HEADERS = [
    "series",
    "method",
    "side",
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
    "multiplier",
]


def backtest_table(results: Sequence[Any]) -> tuple[list[str], list[list[Any]], list[str]]:
    """Headers, rows and zone classes of a list of :class:`BacktestResult`."""
    rows = [[r.row()[h] for h in BACKTEST_HEADERS] for r in results]
    return BACKTEST_HEADERS, rows, [r.traffic_light.zone for r in results]


def exception_figure(forecasts: Any, title: str, split: Any = None, scale: float = 1.0) -> Any:
    """Realised losses vs the VaR (fractions of position value), exceptions in red."""
    import plotly.graph_objects as go

    loss = -np.expm1(-forecasts.losses) if forecasts.side == "long" else np.expm1(forecasts.losses)
    var = (
        -np.expm1(-scale * forecasts.var)
        if forecasts.side == "long"
        else np.expm1(scale * forecasts.var)
    )
    exc = loss > var
    t = forecasts.times.astype("datetime64[s]").astype(str)
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=t,
            y=loss,
            mode="markers",
            name="realised loss",
            marker={"size": 3, "color": "#7a7a7a"},
        )
    )
    fig.add_trace(
        go.Scattergl(
            x=t, y=var, mode="lines", name="VaR / shock", line={"color": "#1f77b4", "width": 1.2}
        )
    )
    fig.add_trace(
        go.Scattergl(
            x=t[exc],
            y=loss[exc],
            mode="markers",
            name="exception",
            marker={"size": 7, "color": "#d62728", "symbol": "x"},
        )
    )
    if split is not None:
        fig.add_vline(x=str(split), line_dash="dash", line_color="#555")
    fig.update_layout(
        title=title,
        height=360,
        template="plotly_white",
        yaxis_tickformat=".0%",
        xaxis_title="time (UTC)",
        yaxis_title="loss (% of position value)",
        margin={"t": 50, "b": 40},
    )
    return fig


def write_backtest_report(
    path: str | Path, results: Sequence[Any], title: str = "VaR backtests"
) -> Path:
    """Write exception plots and the backtest table of several backtests."""
    headers, rows, zones = backtest_table(results)
    parts = [heading("Backtest table"), table_html(headers, rows, zones)]
    for r in results:
        f = r.forecasts
        parts.append(
            heading(f"{f.name}: {f.method.upper()} {1 - f.p:.2%} VaR over {f.horizon} ({f.side})")
        )
        parts.append(figure_html(exception_figure(f, f"{f.name} {f.method.upper()} ({f.side})")))
        parts.append(preformatted(r.summary()))
    return write_html(path, title, parts)


def write_margin_report(path: str | Path, result: Any, title: str | None = None) -> Path:
    """Write the margin-shock calibration: shock rule vs moves per side and the table."""
    heads = [
        "side",
        "shock",
        "multiplier",
        "train coverage",
        "test coverage",
        "n_test",
        "Kupiec p",
        "Christoffersen cc p",
        "zone",
        "static shock",
        "static test coverage",
    ]
    rows, zones = [], []
    for s in (result.long, result.short):
        rows.append(
            [
                s.side,
                f"{s.shock:.2%}",
                s.multiplier,
                f"{s.train_coverage:.2%}",
                f"{s.test_coverage:.2%}",
                s.n_test,
                s.kupiec.pvalue,
                s.christoffersen.pvalue,
                s.traffic_light.zone,
                f"{s.static_shock:.2%}",
                f"{s.static_test_coverage:.2%}",
            ]
        )
        zones.append(s.traffic_light.zone)
    parts = [heading("Calibration"), table_html(heads, rows, zones), preformatted(result.summary())]
    for fc, s in zip(result.forecasts, (result.long, result.short), strict=True):
        parts.append(heading(f"{s.side}: shock rule m * VaR_t against realised moves"))
        fig = exception_figure(
            fc,
            f"{fc.name} {s.side} (test from {s.test_start[:10]})",
            split=s.test_start[:19],
            scale=s.multiplier,
        )
        parts.append(figure_html(fig))
    return write_html(path, title or f"Margin shock calibration: {result.name}", parts)


__all__ = ["backtest_table", "exception_figure", "write_backtest_report", "write_margin_report"]
