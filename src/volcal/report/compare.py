"""Self-contained HTML report of a model comparison (``volcal compare --report``).

One offline file (plotly.js inlined once by :mod:`volcal.report.html`): the table of
models x expiry buckets (RMSE in vol points and the share of quotes inside bid-ask,
total time and status per model), per-expiry RMSE and 25-delta RR / BF of every model,
and per expiry the market's bid-ask implied-vol bars with the mark vol and each model's
smile drawn over them.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from volcal.errors import DataError, DataWarning, VolcalError
from volcal.report.html import figure_html, heading, html_page, paragraph, table_html

__all__ = ["build_compare_report", "write_compare_report"]

# one colour per model, stable across reports
_COLOURS = {
    "svi": "#1b9e77",
    "sabr": "#66a61e",
    "ssvi": "#a6761d",
    "essvi": "#e6ab02",
    "heston": "#2c7fb8",
    "bates": "#7570b3",
    "merton": "#d95f02",
    "kou": "#e7298a",
    "vg": "#666666",
    "svcj": "#e41a1c",
    "black": "#000000",
}


def _cell(x: Any, scale: float = 1.0, digits: int = 2) -> str:
    try:
        v = float(x) * scale
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def _curve(result: Any, i: int, k: np.ndarray) -> np.ndarray | None:
    """The fitted smile of ``result``'s expiry ``i`` on ``k`` (NaN where the model has
    no vol there); None when the model cannot be priced on this grid."""
    from volcal.report.chain import _smile_curve

    try:
        with warnings.catch_warnings():
            # far-wing points without an implied vol are gaps in the line, not news
            warnings.simplefilter("ignore", DataWarning)
            return _smile_curve(result, i, k)
    except VolcalError:
        return None


def build_compare_report(chain: Any, comparison: Any, *, source: str = "") -> str:
    """HTML text of the comparison report (see the module docs).

    Parameters
    ----------
    chain : OptionChain
        The cleaned chain the models were fitted to (for the mark vols).
    comparison : ModelComparison
        The output of :func:`volcal.compare_models`.
    source : str
        Shown under the title (e.g. the snapshot file).
    """
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DataError("HTML reports need plotly: pip install 'volcal[report]'") from exc
    from volcal.report.chain import _mark_iv, add_market_vols

    fitted = [f for f in comparison.fits if f.result is not None]
    if not fitted:
        raise DataError("no model could be fitted: nothing to report")
    labels = list(comparison.bucket_labels)

    # ----------------------------------------------------------- model x bucket table
    head = ["model", "status", "RMSE (vp)", "inside"]
    head += [f"{lab} RMSE / inside" for lab in labels]
    head += ["time (s)", "message"]
    rows, classes = [], []
    for f in comparison.fits:
        r = f.result
        if r is None:
            rows.append([f.model, "error", "-", "-", *["-"] * len(labels), "-", f.error])
            classes.append("red")
            continue
        cells = [
            f"{_cell(b['rmse_vol'])} / {_cell(b['inside_spread'], 100.0, 0)}%"
            + (f" (n={int(b['n'])})" if b["n"] else "")
            for b in f.buckets.values()
        ]
        rows.append(
            [
                f.model,
                r.status,
                _cell(r.rmse_vol, 1.0, 3),
                _cell(r.inside_spread, 100.0, 1) + "%",
                *cells,
                _cell(f.wall_s, 1.0, 2),
                "" if r.ok else r.message,
            ]
        )
        classes.append("" if r.ok else "yellow")
    overview = table_html(head, rows, classes)

    # ------------------------------------------------------------- per expiry tables
    ref = fitted[0].result
    q = ref.quotes
    expiries = [s.expiry for s in ref.slices]
    pos = {
        f.model: {s.expiry: j for j, s in enumerate(f.result.slices)}
        for f in fitted
        if f.result is not None
    }
    e_head = ["expiry", "days", "n"] + [f.model for f in fitted]
    rmse_rows, stat_rows = [], []
    for i, e in enumerate(expiries):
        s0 = ref.slices[i]
        base = [e[:16].replace("T", " "), _cell(365 * s0.t, 1.0, 1), s0.n_used]
        rm, st = [], []
        for f in fitted:
            j = pos[f.model].get(e)
            if j is None or f.result is None:
                rm.append("-")
                st.append("-")
                continue
            s = f.result.slices[j]
            rm.append(_cell(s.rmse_vol, 1.0, 3))
            st.append(
                f"{_cell(s.atm_vol, 100.0)} / {_cell(s.rr25, 100.0)} / {_cell(s.bf25, 100.0)}"
            )
        rmse_rows.append(base + rm)
        stat_rows.append(base + st)

    # ------------------------------------------------------------------- smiles
    n = len(expiries)
    cols = 2 if n > 1 else 1
    nrows = math.ceil(n / cols)
    fig = make_subplots(
        rows=nrows,
        cols=cols,
        subplot_titles=[
            f"{e[:10]} ({365 * ref.slices[i].t:.1f} d)" for i, e in enumerate(expiries)
        ],
        vertical_spacing=min(0.08, 0.3 / max(nrows, 1)),
    )
    mark_all = _mark_iv(chain, q.row)
    missing: list[str] = []
    for i, e in enumerate(expiries):
        r_, c_ = i // cols + 1, i % cols + 1
        m = q.slice_index == i
        k = q.k[m]
        first = i == 0
        add_market_vols(
            fig, q, m, mark_all[m], r_, c_, first, bar_color="#95a5a6", mark_color="#2d3436"
        )
        span = max(float(np.ptp(k)), 0.05)
        grid = np.linspace(k.min() - 0.1 * span, k.max() + 0.1 * span, 120)
        for f in fitted:
            j = pos[f.model].get(e)
            curve = None if j is None else _curve(f.result, j, grid)
            if curve is None:
                missing.append(f"{f.model} {e[:10]}")
                continue
            fig.add_trace(
                go.Scatter(
                    x=grid,
                    y=100 * curve,
                    mode="lines",
                    line={"color": _COLOURS.get(f.model, "#34495e"), "width": 1.6},
                    name=f.model,
                    legendgroup=f.model,
                    showlegend=first,
                ),
                row=r_,
                col=c_,
            )
        fig.update_xaxes(title_text="ln(K/F)", row=r_, col=c_)
        fig.update_yaxes(title_text="vol %", row=r_, col=c_)
    fig.update_layout(height=320 * nrows, margin={"t": 60, "b": 40}, template="plotly_white")

    title = f"volcal model comparison: {comparison.underlying} {comparison.snapshot}".rstrip()
    parts = [
        paragraph(source) if source else "",
        paragraph(
            f"{len(q)} quotes in {n} expiries (cleaned, out-of-the-money, with bids); every "
            "model calibrated cold with its defaults and spread weights. RMSE in vol points "
            "of model minus mid vol; inside = share of quotes whose model vol lies in their "
            "bid-ask vol interval."
        ),
        heading("Fit by expiry bucket"),
        overview,
        heading("RMSE per expiry (vol points)"),
        table_html(e_head, rmse_rows),
        heading("ATM / 25-delta RR / 25-delta BF per expiry (vol points, forward delta)"),
        table_html(e_head, stat_rows),
        heading("Smiles: market bid-ask and mark against every model"),
        figure_html(fig),
    ]
    if missing:
        parts.append(paragraph("No smile drawn (model not priceable there): " + ", ".join(missing)))

    return html_page(title, [p for p in parts if p])


def write_compare_report(
    path: str | Path, chain: Any, comparison: Any, *, source: str = ""
) -> Path:
    """Write :func:`build_compare_report` to ``path`` (UTF-8) and return it."""
    html_text = build_compare_report(chain, comparison, source=source)
    out = Path(path)
    out.write_text(html_text, encoding="utf-8")
    return out
