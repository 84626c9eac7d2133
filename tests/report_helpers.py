"""Read back what an HTML report draws: the plotly figures embedded in the page.

plotly writes each figure as ``Plotly.newPlot("id", data, layout, config)``; numeric
arrays may be base64 typed arrays (``{"dtype": "f8", "bdata": ...}``). These helpers
decode both, so a test can check every curve against the fit it claims to show.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np

_CALL = "Plotly.newPlot("


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            shape = obj.get("shape")
            if shape:
                dims = [int(s) for s in str(shape).split(",")]
                arr = arr.reshape(dims)
            return arr.astype(np.float64)
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        out = [_decode(v) for v in obj]
        return out
    return obj


def figures(page: str) -> list[dict[str, Any]]:
    """Every plotly figure of ``page`` as ``{"data": [...], "layout": {...}}`` (decoded)."""
    dec = json.JSONDecoder()
    out = []
    pos = page.find(_CALL)
    while pos >= 0:
        i = pos + len(_CALL)
        parts = []
        for _ in range(3):
            while page[i] in " \n\t,":
                i += 1
            value, i = dec.raw_decode(page, i)
            parts.append(value)
        out.append({"data": _decode(parts[1]), "layout": _decode(parts[2])})
        pos = page.find(_CALL, i)
    return out


def array(values: Any) -> np.ndarray:
    """A trace's x / y / z as a float array (None -> NaN)."""
    if isinstance(values, np.ndarray):
        return values
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def axis_titles(layout: dict[str, Any]) -> dict[str, str]:
    """Title text of every 2-D axis of a layout (``xaxis``, ``yaxis2``, ...)."""
    out = {}
    for key, ax in layout.items():
        if re.fullmatch(r"[xy]axis\d*", key):
            title = ax.get("title", {})
            out[key] = title.get("text", "") if isinstance(title, dict) else str(title)
    return out


def n_plotly_bundles(page: str) -> int:
    """How many copies of plotly.js the page inlines (plain or gzip-compressed)."""
    import gzip

    n = page.count("plotly.js v")
    for m in re.finditer(r'<script id="volcal-plotly"[^>]*>([^<]*)</script>', page):
        js = gzip.decompress(base64.b64decode(m.group(1))).decode("utf-8")
        n += js.count("plotly.js v") > 0
    return n


def axis_key(trace_axis: str | None, letter: str) -> str:
    """Layout key of a trace's axis reference: ``"x2"`` -> ``"xaxis2"``, None -> ``"xaxis"``."""
    ref = trace_axis or letter
    return f"{letter}axis{ref[1:]}"
