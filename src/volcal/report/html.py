"""Self-contained HTML pages: plotly.js inlined once, so a report works offline.

>>> page = html_page("Demo", [heading("Hello"), table_html(["a"], [[1.5]])])
>>> page.startswith("<!DOCTYPE html>") and "<table" in page
True
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from volcal.errors import DataError

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.green{background:#d9f2d9}.yellow{background:#fff3c4}.red{background:#f8d0d0}
pre{background:#f7f7f7;padding:8px;font-size:0.85em;white-space:pre-wrap}
"""


def _plotly() -> Any:
    try:
        import plotly
    except ImportError as exc:  # pragma: no cover - plotly is in the report extra
        raise DataError("HTML reports need plotly: pip install 'volcal[report]'") from exc
    return plotly


def heading(text: str, level: int = 2) -> str:
    """An escaped ``<hN>`` heading."""
    return f"<h{level}>{_html.escape(text)}</h{level}>"


def paragraph(text: str) -> str:
    """An escaped paragraph."""
    return f"<p>{_html.escape(text)}</p>"


def preformatted(text: str) -> str:
    """An escaped ``<pre>`` block (e.g. a result's ``summary()``)."""
    return f"<pre>{_html.escape(text)}</pre>"


def table_html(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None
) -> str:
    """An escaped HTML table; floats are shown with 4 significant digits."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return _html.escape(str(v))

    head = "".join(f"<th>{_html.escape(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{_html.escape(row_classes[i])}"' if row_classes else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_html(fig: Any) -> str:
    """A plotly figure as a ``<div>`` that uses the page's inlined plotly.js."""
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def plotly_script() -> str:
    """The one ``<script>`` with plotly.js that every report inlines once (in its head),
    so the page works offline; figures come after it as :func:`figure_html` divs."""
    js = _plotly().offline.get_plotlyjs()
    return f'<script type="text/javascript">{js}</script>'


def html_page(title: str, parts: Sequence[str], *, plotly_js: bool = True) -> str:
    """A complete HTML document with ``parts`` in order and plotly.js inlined once."""
    script = plotly_script() if plotly_js else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{_html.escape(title)}</title><style>{_CSS}</style>{script}</head><body>"
        f"{heading(title, 1)}{''.join(parts)}</body></html>"
    )


def write_html(
    path: str | Path, title: str, parts: Sequence[str], *, plotly_js: bool = True
) -> Path:
    """Write :func:`html_page` to ``path`` (UTF-8) and return the path."""
    out = Path(path)
    out.write_text(html_page(title, parts, plotly_js=plotly_js), encoding="utf-8")
    return out


__all__ = [
    "figure_html",
    "heading",
    "html_page",
    "paragraph",
    "plotly_script",
    "preformatted",
    "table_html",
    "write_html",
]
