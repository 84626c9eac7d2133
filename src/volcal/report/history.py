"""Self-contained HTML report of a calibration history (:class:`volcal.history.History`).

Sections: parameter series with 95 % standard-error bands (estimate +- 1.96 standard
errors from the Jacobian), the ATM term structure and the 25-delta risk reversal and
butterfly at the stored constant-maturity tenors over time, fit quality (RMSE and
share inside bid-ask), the 30-day vol index against DVOL, and the stability and
quality tables. :func:`history_figures` returns the figures so tests can check what
each one draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal.report.html import figure_html, heading, paragraph, table_html, write_html

__all__ = ["history_figures", "write_history_report"]

_Z95 = 1.96


def _x(df: pd.DataFrame) -> list[str]:
    return [t.isoformat() for t in pd.to_datetime(df["snapshot_time"], utc=True)]


def history_figures(h: Any) -> dict[str, Any]:
    """Plotly figures of a :class:`~volcal.history.History`, by section name."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figs: dict[str, Any] = {}
    s = h.series.sort_values("snapshot_time")
    ok = s[s["status"] == "ok"]
    groups = list(ok.groupby(["underlying", "settings_label"], sort=True))
    if h.params:
        fig = make_subplots(rows=len(h.params), cols=1, shared_xaxes=True,
                            subplot_titles=list(h.params))  # fmt: skip
        for i, p in enumerate(h.params, start=1):
            for (und, lab), g in groups:
                name = f"{und} {lab}"
                y = g[f"p_{p}"].to_numpy(dtype=float)
                se = g[f"se_{p}"].to_numpy(dtype=float)
                x = _x(g)
                band = np.isfinite(se)
                if band.any():
                    xb = [x[j] for j in np.flatnonzero(band)]
                    lo, hi = (y - _Z95 * se)[band], (y + _Z95 * se)[band]
                    fig.add_trace(
                        go.Scatter(x=xb + xb[::-1], y=list(hi) + list(lo[::-1]), fill="toself",
                                   line={"width": 0}, opacity=0.25, showlegend=False,
                                   name=f"{name} {p} 95% band", hoverinfo="skip"),
                        row=i, col=1,
                    )  # fmt: skip
                fig.add_trace(
                    go.Scatter(x=x, y=y, mode="lines+markers", name=f"{name} {p}",
                               legendgroup=name, showlegend=(i == 1)),
                    row=i, col=1,
                )  # fmt: skip
        fig.update_layout(height=220 * len(h.params) + 80,
                          title=f"{h.model} parameters (bands: estimate +- 1.96 s.e.)")  # fmt: skip
        figs["parameters"] = fig
    term = h.term.merge(
        s[["id", "settings_label"]], left_on="calibration_id", right_on="id", how="inner"
    )
    term = term[term["status"] == "ok"].sort_values("snapshot_time")
    for key, col, title in (
        ("atm", "atm", "ATM vol at fixed tenors (vol points)"),
        ("rr25", "rr25", "25-delta risk reversal at fixed tenors (vol points)"),
        ("bf25", "bf25", "25-delta butterfly at fixed tenors (vol points)"),
    ):
        fig = go.Figure()
        for (und, lab, days), g in term.groupby(
            ["underlying", "settings_label", "tenor_days"], sort=True
        ):
            fig.add_trace(
                go.Scatter(x=_x(g), y=100.0 * g[col].to_numpy(dtype=float), mode="lines",
                           name=f"{und} {lab} {days}d")
            )  # fmt: skip
        fig.update_layout(title=title, height=420)
        figs[key] = fig
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=["RMSE (vol points)", "inside bid-ask (%)"])  # fmt: skip
    for (und, lab), g in s.groupby(["underlying", "settings_label"], sort=True):
        x = _x(g)
        fig.add_trace(go.Scatter(x=x, y=g["rmse_vol"].to_numpy(dtype=float), mode="lines+markers",
                                 name=f"{und} {lab} RMSE"), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=100.0 * g["inside_spread"].to_numpy(dtype=float),
                                 mode="lines+markers", name=f"{und} {lab} inside"),
                      row=2, col=1)  # fmt: skip
    fig.update_layout(title="fit quality", height=520)
    figs["quality"] = fig
    snaps = s.drop_duplicates("snapshot_id")
    if snaps["vol_index_30d"].notna().any():
        fig = go.Figure()
        for und, g in snaps.groupby("underlying", sort=True):
            fig.add_trace(go.Scatter(x=_x(g), y=g["vol_index_30d"].to_numpy(dtype=float),
                                     mode="lines+markers", name=f"{und} 30-day index"))  # fmt: skip
        d = snaps[snaps["dvol"].notna()]
        if not d.empty:
            fig.add_trace(go.Scatter(x=_x(d), y=d["dvol"].to_numpy(dtype=float),
                                     mode="lines+markers", name="BTC DVOL"))  # fmt: skip
        fig.update_layout(title="30-day vol index (vol points)", height=420)
        figs["index"] = fig
    return figs


def write_history_report(h: Any, path: str | Path, title: str | None = None) -> Path:
    """Write the report of ``h`` to ``path`` (one self-contained HTML file)."""
    figs = history_figures(h)
    parts = [paragraph(h.headline())]
    names = {
        "parameters": "Parameters",
        "atm": "ATM term structure",
        "rr25": "25-delta risk reversal",
        "bf25": "25-delta butterfly",
        "quality": "Fit quality",
        "index": "30-day vol index against DVOL",
    }
    for key, label in names.items():
        if key in figs:
            parts += [heading(label), figure_html(figs[key])]
            if key == "index" and h.dvol_stats:
                parts.append(
                    paragraph(
                        "index - DVOL (vol points): "
                        + ", ".join(f"{k} {v:.3f}" for k, v in h.dvol_stats.items())
                    )
                )
    st = h.stability
    parts += [
        heading("Stability: median relative change per step"),
        table_html(
            ["underlying", "settings", "parameter", "median %", "p90 %", "steps"],
            [
                [
                    r["underlying"],
                    r["settings"],
                    r["parameter"],
                    100 * r["median_rel_change"],
                    100 * r["p90_rel_change"],
                    int(r["steps"]),
                ]
                for r in st.to_dict("records")
            ],
        ),
        heading("Fit quality by underlying"),
        table_html(
            ["underlying", "fits", "ok", "median RMSE", "p90 RMSE", "median inside %"],
            [
                [
                    r["underlying"],
                    int(r["fits"]),
                    int(r["ok"]),
                    r["median_rmse"],
                    r["p90_rmse"],
                    100 * r["median_inside"],
                ]
                for r in h.quality.to_dict("records")
            ],
        ),
    ]
    return write_html(path, title or f"volcal history: {h.model}", parts)
