"""Self-contained HTML pages: plotly.js inlined once, so a report works offline.

plotly.js (4.8 MB) is inlined gzip-compressed (2.0 MB as base64) and unpacked in the
browser by the standard ``DecompressionStream`` (every browser since 2023); the figures'
scripts run once it is loaded. A page is therefore less than half the size of one with
the plain bundle and still needs no network.

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


_FIGURE_TYPE = "text/x-volcal-figure"

# unpacks the inlined bundle, then runs every figure script of the page (in order)
_LOADER = """<script>
(function () {
  function figures() {
    var all = document.querySelectorAll('script[type="FIGURE_TYPE"]');
    for (var i = 0; i < all.length; i++) {
      var s = document.createElement("script");
      s.text = all[i].textContent;
      all[i].parentNode.replaceChild(s, all[i]);
    }
  }
  function whenParsed(f) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", f);
    else f();
  }
  if (typeof DecompressionStream === "undefined") {
    whenParsed(function () {
      document.body.insertAdjacentHTML("afterbegin",
        "<p><b>The figures of this report need a browser from 2023 or later.</b></p>");
    });
    return;
  }
  var bin = atob(document.getElementById("volcal-plotly").textContent);
  var bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(stream).text().then(function (js) {
    var s = document.createElement("script");
    s.text = js;
    document.head.appendChild(s);
    whenParsed(figures);
  });
})();
</script>""".replace("FIGURE_TYPE", _FIGURE_TYPE)


def figure_html(fig: Any) -> str:
    """A plotly figure as a ``<div>`` whose script runs once the page's plotly.js is
    loaded (see :func:`plotly_script`)."""
    div = str(fig.to_html(full_html=False, include_plotlyjs=False))
    return div.replace("<script>", f'<script type="{_FIGURE_TYPE}">', 1).replace(
        '<script type="text/javascript">', f'<script type="{_FIGURE_TYPE}">', 1
    )


def plotly_script() -> str:
    """plotly.js for the page head, inlined once and gzip-compressed (module docs), so
    the page works offline; figures come after it as :func:`figure_html` divs."""
    import base64
    import gzip

    js = _plotly().offline.get_plotlyjs().encode("utf-8")
    packed = base64.b64encode(gzip.compress(js, compresslevel=9, mtime=0)).decode("ascii")
    return (
        f'<script id="volcal-plotly" type="application/x-gzip-base64">{packed}</script>' + _LOADER
    )


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
