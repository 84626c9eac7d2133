"""Self-contained HTML report of a fitted volatility surface.

Sections: the implied-vol surface (a heatmap over log-moneyness and maturity, and the
same as a 3-D surface), the smiles of every fitted expiry against the market's bid/ask
and mid vols, the ATM term structure with the constant-maturity tenors, the tenor x
delta grid, and the static-arbitrage check with every violation region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from volcal.report.html import (
    figure_html,
    heading,
    paragraph,
    preformatted,
    table_html,
    write_html,
)

__all__ = ["write_surface_report"]


def _pct(x: Any) -> Any:
    v = float(x)
    return "-" if not np.isfinite(v) else round(100.0 * v, 2)


def quoted_region_grid(
    surf: Any, quotes: Any, n_t: int = 60, n_x: int = 81
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, x, vol %)`` of the surface over the region the quotes cover, on
    standardised moneyness ``x = ln(K/F) / sqrt(t)``.

    Maturities run from the first to the last quoted expiry and ``x`` over the quoted
    range; a cell outside the quoted range at its maturity (each expiry's range,
    interpolated linearly in t between expiries) is NaN, so the heatmap shows what the
    quotes support, not the model's extrapolated wings.
    """
    ts = np.asarray(quotes.t_slices, dtype=np.float64)
    n = len(ts)
    z = np.asarray(quotes.k) / np.sqrt(np.asarray(quotes.t))
    zmin = np.array([z[quotes.slice_index == i].min() for i in range(n)])
    zmax = np.array([z[quotes.slice_index == i].max() for i in range(n)])
    t_grid = np.geomspace(ts[0], ts[-1], n_t) if n > 1 else ts.copy()
    t_grid[0], t_grid[-1] = ts[0], ts[-1]
    x_grid = np.linspace(float(zmin.min()), float(zmax.max()), n_x)
    xx, tt = np.meshgrid(x_grid, t_grid)
    lo = np.interp(t_grid, ts, zmin)[:, None]
    hi = np.interp(t_grid, ts, zmax)[:, None]
    inside = (xx >= lo - 1e-12) & (xx <= hi + 1e-12)
    vol = np.full(xx.shape, np.nan)
    kk = xx[inside] * np.sqrt(tt[inside])
    vol[inside] = 100.0 * np.asarray(surf.implied_vol(kk, tt[inside]))
    return t_grid, x_grid, vol


def write_surface_report(
    path: str | Path,
    result: Any,
    conventions: Any,
    arbitrage: Any,
    index: Any = None,
    title: str | None = None,
) -> Path:
    """Write the surface report of a calibration ``result`` (with its conventions,
    arbitrage report and optional vol index) to ``path``; returns the path."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    surf = result.surface()
    q = result.quotes
    t_grid, x_grid, vol = quoted_region_grid(surf, q)
    days = 365.0 * t_grid
    parts = [
        paragraph(
            f"Model {result.model}: {result.n_used} quotes in {q.n_slices} expiries, "
            f"RMSE {result.rmse_vol:.3f} vol points, {100 * result.inside_spread:.1f}% inside "
            f"bid-ask, status {result.status}, {1000 * result.elapsed_s:.1f} ms."
        )
    ]
    heat = go.Figure(
        go.Heatmap(x=x_grid, y=days, z=vol, colorscale="Viridis", colorbar={"title": "vol %"})
    )
    heat.update_layout(
        title="Implied vol (%) by standardised moneyness and maturity, over the quoted region",
        xaxis_title="ln(K/F) / sqrt(T)  (T in years)",
        yaxis_title="days to expiry",
        yaxis_type="log",
        height=480,
    )
    surf3d = go.Figure(go.Surface(x=x_grid, y=days, z=vol, colorscale="Viridis"))
    surf3d.update_layout(
        title="Implied vol surface (%)",
        scene={
            "xaxis_title": "ln(K/F) / sqrt(T)",
            "yaxis_title": "days to expiry",
            "zaxis_title": "vol %",
        },
        height=560,
    )
    parts += [heading("Surface"), figure_html(heat), figure_html(surf3d)]

    n = q.n_slices
    cols = 3
    rows = int(np.ceil(n / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{s.expiry[:16]} ({365 * s.t:.1f} d)" for s in result.slices],
    )
    for i in range(n):
        m = q.slice_index == i
        k = q.k[m]
        t = float(q.t_slices[i])
        r, c = i // cols + 1, i % cols + 1
        lo, hi = float(k.min()), float(k.max())
        pad = 0.15 * (hi - lo + 1e-3)
        kg = np.linspace(lo - pad, hi + pad, 121)
        ask = np.where(np.isfinite(q.iv_ask[m]), q.iv_ask[m], np.nan)
        fig.add_trace(
            go.Scatter(
                x=k,
                y=100 * q.iv_mid[m],
                mode="markers",
                marker={"size": 4, "color": "black"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": 100 * (ask - q.iv_mid[m]),
                    "arrayminus": 100 * (q.iv_mid[m] - q.iv_bid[m]),
                    "thickness": 1,
                    "width": 0,
                },
                name="market bid/mid/ask",
                showlegend=i == 0,
            ),
            row=r,
            col=c,
        )
        fig.add_trace(
            go.Scatter(
                x=kg,
                y=100 * surf.implied_vol(kg, t),
                mode="lines",
                line={"color": "crimson"},
                name=result.model,
                showlegend=i == 0,
            ),
            row=r,
            col=c,
        )
        fig.update_xaxes(title_text="ln(K/F)", row=r, col=c)
        fig.update_yaxes(title_text="vol %", row=r, col=c)
    fig.update_layout(height=300 * rows, title="Smiles per expiry (vol %, against k)")
    parts += [heading("Smiles"), figure_html(fig)]

    term = go.Figure()
    tq = np.asarray(q.t_slices)
    tf = np.geomspace(tq[0], tq[-1], 200) if len(tq) > 1 else tq
    term.add_trace(
        go.Scatter(x=365 * tf, y=100 * surf.implied_vol(np.zeros_like(tf), tf), name="ATM")
    )
    term.add_trace(
        go.Scatter(
            x=365 * tq,
            y=[100 * s.atm_vol for s in result.slices],
            mode="markers",
            name="fitted expiries",
        )
    )
    term.update_layout(
        title="ATM-forward vol term structure",
        xaxis_title="days to expiry",
        yaxis_title="ATM vol %",
        xaxis_type="log",
        height=380,
    )
    parts += [heading("ATM term structure"), figure_html(term)]

    labels = ["10P", "25P", "ATM", "25C", "10C"]
    grid_rows = []
    for i, d in enumerate(conventions.tenor_days):
        grid_rows.append(
            [f"{d}d" + (" *" if conventions.extrapolated[i] else "")]
            + [_pct(v) for v in conventions.vols[i]]
            + [_pct(getattr(conventions, n)[i]) for n in ("rr25", "bf25", "rr10", "bf10")]
        )
    parts += [
        heading(f"Tenor x delta grid ({conventions.delta} delta, vol points)"),
        table_html(["tenor", *labels, "RR25", "BF25", "RR10", "BF10"], grid_rows),
        paragraph("* outside the fitted expiries (extrapolated)."),
    ]
    if index is not None:
        parts += [heading("30-day vol index (VIX/DVOL method)"), preformatted(index.summary())]
    parts += [heading("Static arbitrage"), preformatted(arbitrage.summary())]
    return write_html(path, title or f"Volatility surface ({result.model})", parts)
