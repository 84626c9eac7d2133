"""Self-contained HTML report of a chain calibration.

One file that works offline (plotly.js is inlined once): per expiry, the market's
bid-ask implied-vol bars, the mid and mark vols, and the fitted smile; the residuals of
every quote used against its own bid-ask half-width; the per-expiry fit table; and the
quote-quality counts (what was excluded and why).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from volcal.errors import DataError


def _smile_curve(result: Any, i: int, k: np.ndarray) -> np.ndarray:
    """Fitted implied vols of slice ``i`` of ``result.quotes`` on the log-moneyness grid ``k``.

    Per-expiry smiles (SVI, SABR) are looked up by the slice's maturity, never by
    position alone, so a curve can only be drawn from the smile fitted to that expiry;
    surfaces (SSVI, eSSVI) take ``(k, t)``; every other model is priced at ``t``.
    """
    q = result.quotes
    t = float(q.t_slices[i])
    params = result.params
    kk = np.asarray(k, dtype=np.float64)
    smiles = getattr(params, "smiles", None)
    if smiles is not None:
        ts = np.asarray(params.t, dtype=np.float64)
        j = int(np.argmin(np.abs(ts - t)))
        if abs(ts[j] - t) > 1e-9 * max(1.0, t):
            raise DataError(f"the fit holds no smile for the expiry at t={t:.6g}")
        return np.asarray(smiles[j].implied_vol(kk, ts[j]), dtype=np.float64)
    if hasattr(params, "slice_iv"):
        return np.asarray(params.slice_iv(i, kk), dtype=np.float64)
    if hasattr(params, "implied_vol"):
        return np.asarray(params.implied_vol(kk, t), dtype=np.float64)
    from volcal.pricing import model_iv

    return np.asarray(model_iv(params, 1.0, np.exp(kk), t), dtype=np.float64)


def _mark_iv(chain: Any, rows: np.ndarray) -> np.ndarray:
    """The venue's mark vol where given, else the implied vol of the mark price."""
    mark_iv = np.asarray(chain.mark_iv, dtype=np.float64)[rows]
    if np.all(np.isnan(mark_iv)):
        from volcal.black import implied_vol

        sub = chain.select(rows)
        price = sub.forward_price("mark")
        # no mark in the chain: NaN (no marker drawn), not a warning
        mark_iv = np.asarray(
            implied_vol(
                price, 1.0, sub.strike / sub.forward, chain.t[rows], sub.is_call, full_output=True
            ).vol,
            dtype=np.float64,
        )
    return mark_iv


def add_market_vols(
    fig: Any,
    q: Any,
    m: np.ndarray,
    mark_iv: np.ndarray,
    row: int,
    col: int,
    show_legend: bool,
    *,
    bar_color: str = "#7f8c8d",
    mark_color: str = "#e67e22",
) -> None:
    """Add one expiry's market to a subplot: the bid-ask implied-vol interval of each
    quote as a vertical bar (a quote without an ask is drawn up to its mid) and the
    mark vols as crosses. ``q`` is a QuoteSet, ``m`` the quotes of the expiry."""
    import plotly.graph_objects as go

    k = q.k[m]
    lo = q.iv_bid[m]
    hi = np.where(np.isfinite(q.iv_ask[m]), q.iv_ask[m], q.iv_mid[m])
    mid = 0.5 * (lo + hi)
    fig.add_trace(
        go.Scatter(
            x=k,
            y=100 * mid,
            mode="markers",
            marker={"size": 1, "color": "rgba(0,0,0,0)"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": 100 * (hi - mid),
                "arrayminus": 100 * (mid - lo),
                "color": bar_color,
                "thickness": 3,
                "width": 0,
            },
            name="bid-ask vol",
            legendgroup="ba",
            showlegend=show_legend,
            hovertext=[str(x) for x in q.instrument[m]],
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=k,
            y=100 * mark_iv,
            mode="markers",
            marker={"size": 5, "color": mark_color, "symbol": "x"},
            name="mark vol",
            legendgroup="mark",
            showlegend=show_legend,
        ),
        row=row,
        col=col,
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(x: Any, digits: int = 2) -> str:
    v = float(x) if x is not None else math.nan
    return "-" if not math.isfinite(v) else f"{100 * v:.{digits}f}"


def build_calibration_report(
    chain: Any, result: Any, quality: Any = None, *, source: str = ""
) -> str:
    """HTML text of the calibration report (see the module docs)."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DataError("HTML reports need plotly: pip install 'volcal[report]'") from exc

    q = result.quotes
    n = q.n_slices
    cols = 2 if n > 1 else 1
    nrows = math.ceil(n / cols)
    titles = [
        f"{s.expiry[:10]} ({365 * s.t:.1f} d): RMSE {s.rmse_vol:.2f} vp, "
        f"{100 * s.inside_spread:.0f}% inside"
        for s in result.slices
    ]
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=titles, vertical_spacing=0.25 / nrows)
    mark_all = _mark_iv(chain, q.row)
    for i in range(n):
        r, c = i // cols + 1, i % cols + 1
        m = q.slice_index == i
        k = q.k[m]
        show = i == 0
        add_market_vols(fig, q, m, mark_all[m], r, c, show)
        span = max(float(np.ptp(k)), 0.05)
        grid = np.linspace(k.min() - 0.1 * span, k.max() + 0.1 * span, 200)
        fig.add_trace(
            go.Scatter(
                x=grid,
                y=100 * _smile_curve(result, i, grid),
                mode="lines",
                line={"color": "#2c7fb8", "width": 2},
                name=f"{result.model} fit",
                legendgroup="fit",
                showlegend=show,
            ),
            row=r,
            col=c,
        )
        fig.update_xaxes(title_text="ln(K/F)", row=r, col=c)
        fig.update_yaxes(title_text="vol %", row=r, col=c)
    fig.update_layout(height=330 * nrows, margin={"t": 60, "b": 40}, template="plotly_white")

    half = np.where(np.isfinite(q.iv_ask), 0.5 * (q.iv_ask - q.iv_bid), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = result.residuals / half
    res = go.Figure()
    for i, s in enumerate(result.slices):
        m = q.slice_index == i
        res.add_trace(
            go.Scatter(x=q.k[m], y=rel[m], mode="markers", name=s.expiry[:10], marker={"size": 6})
        )
    res.add_hrect(y0=-1, y1=1, fillcolor="#2ecc71", opacity=0.12, line_width=0)
    res.update_layout(
        title="Residuals in units of each quote's bid-ask half-width (band: inside the spread)",
        xaxis_title="ln(K/F)",
        yaxis_title="(model - mid) / half-spread",
        template="plotly_white",
        height=420,
    )

    fit_rows = [
        [
            s.expiry[:16].replace("T", " "),
            f"{365 * s.t:.1f}",
            s.n_used,
            f"{s.rmse_vol:.3f}",
            f"{100 * s.inside_spread:.1f}%",
            _pct(s.atm_vol),
            _pct(s.rr25),
            _pct(s.bf25),
            ", ".join(f"{k}={v:.4g}" for k, v in s.params.items() if isinstance(v, float)),
        ]
        for s in result.slices
    ]
    fit_table = _table(
        ["expiry", "days", "n", "RMSE (vp)", "inside", "ATM %", "RR25 %", "BF25 %", "params"],
        fit_rows,
    )
    quality_html = ""
    if quality is not None:
        qd = quality.to_dict()
        qrows = [
            [row["code"], row["count"], "yes" if row["excluded"] else "no"] for row in qd["reasons"]
        ]
        qrows += [["used", qd["n_used"], ""], ["total", qd["n_quotes"], ""]]
        quality_html = "<h2>Quote quality</h2>" + _table(["reason", "quotes", "excluded"], qrows)
    params_html = ""
    pd_ = result.to_dict()["params"]
    if pd_ and all(isinstance(v, (int, float)) or v is None for v in pd_.values()):
        params_html = "<h2>Parameters</h2>" + _table(
            list(pd_), [[("-" if v is None else f"{v:.6g}") for v in pd_.values()]]
        )
    head = (
        f"{html.escape(chain.underlying)} {html.escape(chain.snapshot.isoformat())} "
        f"({html.escape(chain.venue)}) - {html.escape(result.model)}"
    )
    summary = (
        f"{result.n_used} quotes used in {n} expiries; RMSE {result.rmse_vol:.3f} vol points; "
        f"{100 * result.inside_spread:.1f}% inside bid-ask; status {result.status}; "
        f"{1000 * result.elapsed_s:.0f} ms"
    )
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
    from volcal.report.html import figure_html, plotly_script

    smiles = figure_html(fig)
    residuals = figure_html(res)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>volcal: {head}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }}
.meta {{ color: #555; }}
</style>{plotly_script()}</head><body>
<h1>volcal calibration: {head}</h1>
<p class="meta">{html.escape(source)}</p>
<p><b>{html.escape(summary)}</b></p>
{"<ul>" + warn + "</ul>" if warn else ""}
<h2>Smiles</h2>{smiles}
<h2>Fit per expiry</h2>{fit_table}
{params_html}
<h2>Residuals</h2>{residuals}
{quality_html}
</body></html>
"""


def write_calibration_report(
    path: str | Path, chain: Any, result: Any, quality: Any = None, *, source: str = ""
) -> Path:
    """Write :func:`build_calibration_report` to ``path`` and return it."""
    out = Path(path)
    out.write_text(
        build_calibration_report(chain, result, quality, source=source), encoding="utf-8"
    )
    return out


__all__ = ["build_calibration_report", "write_calibration_report"]
