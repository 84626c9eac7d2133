"""HTML report of a multi-venue aggregation: the venue table, fragmentation figures,
the basis between venues, and per expiry every venue's smile (mid vols) against the
consolidated fit.

Every venue quote is drawn at ``k = ln(K / F)`` with ``F`` the consensus forward of its
expiry (the axis of the consolidated fit) and at its own mid implied vol (computed with
its own forward), so a venue's basis does not show as a smile shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from volcal.report.html import figure_html, heading, paragraph, preformatted, table_html, write_html

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def smile_points(agg: Any, fit: Any) -> list[dict[str, Any]]:
    """What the chart draws, per fitted expiry: the fit curve and each venue's points.

    Returns one dict per expiry: ``expiry``, ``k_grid``, ``fit_vol`` (decimal) and
    ``venues`` ``{name: {"k": ..., "vol": ..., "status": ...}}``.
    """
    from volcal.report.chain import _smile_curve

    q = agg.quotes
    mid = 0.5 * (agg.quote_iv_bid + agg.quote_iv_ask)
    ch = agg.chain
    out = []
    for i, e in enumerate(fit.quotes.expiries):
        f_e = ch.forward[ch.expiry == e]
        if f_e.size == 0 or not np.isfinite(f_e).any():
            continue
        fwd = float(np.nanmedian(f_e))
        m_fit = fit.quotes.slice_index == i
        k_used = fit.quotes.k[m_fit]
        lo, hi = float(k_used.min()), float(k_used.max())
        pad = 0.1 * max(hi - lo, 0.05)
        grid = np.linspace(lo - pad, hi + pad, 121)
        venues = {}
        for v in agg.venues:
            m = (q.expiry == e) & (agg.quote_venue == v.name) & np.isfinite(mid)
            venues[v.name] = {
                "k": np.log(q.strike[m] / fwd),
                "vol": mid[m],
                "status": v.status,
            }
        out.append(
            {
                "expiry": str(np.datetime_as_string(e, unit="m")),
                "k_grid": grid,
                "fit_vol": _smile_curve(fit, i, grid),
                "venues": venues,
            }
        )
    return out


def venue_smile_figure(agg: Any, fit: Any, max_expiries: int = 12) -> Any:
    """Plotly figure: one panel per expiry, venues' mid vols and the consolidated fit."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pts = smile_points(agg, fit)[:max_expiries]
    ncols = 2 if len(pts) > 1 else 1
    nrows = max(1, (len(pts) + ncols - 1) // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[p["expiry"] for p in pts])
    for j, p in enumerate(pts):
        r, c = j // ncols + 1, j % ncols + 1
        for n, (name, d) in enumerate(p["venues"].items()):
            fig.add_trace(
                go.Scatter(
                    x=d["k"],
                    y=100.0 * d["vol"],
                    mode="markers",
                    name=f"{name} ({d['status']})",
                    legendgroup=name,
                    showlegend=j == 0,
                    marker={
                        "color": _COLORS[n % len(_COLORS)],
                        "size": 6,
                        "symbol": "x" if d["status"] != "ok" else "circle",
                    },
                    meta={"venue": name, "expiry": p["expiry"]},
                ),
                row=r,
                col=c,
            )
        fig.add_trace(
            go.Scatter(
                x=p["k_grid"],
                y=100.0 * p["fit_vol"],
                mode="lines",
                name="consolidated fit",
                legendgroup="fit",
                showlegend=j == 0,
                line={"color": "black"},
                meta={"venue": "consolidated fit", "expiry": p["expiry"]},
            ),
            row=r,
            col=c,
        )
    fig.update_xaxes(title_text="k = ln(K/F)")
    fig.update_yaxes(title_text="vol %")
    fig.update_layout(height=320 * nrows, template="plotly_white", margin={"t": 60})
    return fig


def write_venues_report(path: str | Path, agg: Any, fit: Any, *, title: str) -> Path:
    """Write the venues report (see the module docs) to ``path``."""
    liq = agg.liquidity()
    venue_rows = [
        [
            v.name,
            v.status,
            v.n_quotes,
            v.n_compared,
            v.n_outliers,
            v.n_best_bid,
            v.n_best_ask,
            v.median_deviation_vol_pts,
            v.lag_s,
            v.reason,
        ]
        for v in agg.venues
    ]
    liq_rows = [
        [
            r["venue"],
            100 * r["share_best_bid"],
            100 * r["share_best_ask"],
            r["n_two_sided"],
            r["spread_vol_pts"],
            r["consolidated_spread_vol_pts"],
        ]
        for r in liq.per_venue
    ]
    basis_rows = [[b["expiry"][:16], b["venue"], b["forward"], b["basis_bps"]] for b in agg.basis]
    depth_rows = [
        [r["expiry"][:16], r["venue"], r["n_quotes"], r["bid_depth"], r["ask_depth"]]
        for r in liq.per_expiry
    ]
    parts = [
        paragraph(
            f"{len(agg.chain)} instruments from {len(agg.venues)} venues; consolidated "
            f"{fit.model if hasattr(fit, 'model') else ''} fit RMSE {fit.rmse_vol:.3f} vol pts, "
            f"{100 * fit.inside_spread:.1f}% inside the consolidated bid-ask."
        ),
        heading("Venues"),
        table_html(
            [
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
            ],
            venue_rows,
        ),
        heading("Fragmentation"),
        table_html(
            [
                "venue",
                "best bid %",
                "best ask %",
                "two-sided",
                "own spread (vol pts)",
                "consolidated spread (vol pts)",
            ],
            liq_rows,
        ),
        heading("Smiles: every venue against the consolidated fit"),
        figure_html(venue_smile_figure(agg, fit)),
        heading("Top-of-book depth per venue and expiry (coin; nan: the venue reports no sizes)"),
        table_html(["expiry", "venue", "quotes", "bid depth", "ask depth"], depth_rows),
        heading("Basis between venues"),
        table_html(["expiry", "venue", "forward", "basis (bp)"], basis_rows),
        heading("Summary"),
        preformatted(agg.summary()),
    ]
    return write_html(path, title, parts)


__all__ = ["smile_points", "venue_smile_figure", "write_venues_report"]
