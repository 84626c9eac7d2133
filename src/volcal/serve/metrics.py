"""Prometheus text exposition (format 0.0.4) of the engine's and the server's metrics.

The server keeps its own counters and latency histograms in one :class:`ServerMetrics`
object per app (no module-level state). The engine's ``metrics()`` dict is rendered
generically: every numeric leaf of the nested dict becomes one sample, the path giving
the metric name; a dict whose keys are reasons or statuses (the last level) becomes
one metric with a label; a dict with ``buckets``/``count``/``sum`` is a histogram.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Histogram", "ServerMetrics", "render_prometheus"]

#: latency buckets in seconds (request and websocket timings)
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                     1.0, 2.5, 5.0)  # fmt: skip

#: event-loop lag buckets in seconds (how late the server's loop runs a timer)
LOOP_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")


def _name(*parts: str) -> str:
    s = "_".join(p for p in parts if p)
    s = _NAME_BAD.sub("_", s).strip("_").lower()
    return s if not s[:1].isdigit() else "_" + s


def _label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics) of one observed quantity."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: Mapping[str, str] | None = None) -> list[str]:
        lab = ",".join(f'{k}="{_label(v)}"' for k, v in (labels or {}).items())
        sep = "," if lab else ""
        out, cum = [], 0
        for b, c in zip(self.bounds, self.counts, strict=False):
            cum += c
            out.append(f'{name}_bucket{{{lab}{sep}le="{_num(b)}"}} {cum}')
        out.append(f'{name}_bucket{{{lab}{sep}le="+Inf"}} {self.n}')
        suffix = f"{{{lab}}}" if lab else ""
        out.append(f"{name}_sum{suffix} {_num(self.total)}")
        out.append(f"{name}_count{suffix} {self.n}")
        return out


class ServerMetrics:
    """Counters of the HTTP/websocket side of one app."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.request_latency: dict[str, Histogram] = {}
        self.ws_clients = 0
        self.ws_connected = 0
        self.ws_messages = 0
        self.ws_conflated = 0
        self.ws_dropped: dict[str, int] = {}
        self.rate_limited = 0
        self.tick_to_send = Histogram()
        self.loop_lag = Histogram(LOOP_LAG_BUCKETS_S)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        h = self.request_latency.get(route)
        if h is None:
            h = self.request_latency[route] = Histogram()
        h.observe(seconds)

    def drop_ws(self, reason: str) -> None:
        self.ws_dropped[reason] = self.ws_dropped.get(reason, 0) + 1

    def lines(self) -> list[str]:
        out = [
            "# HELP volcal_http_requests_total HTTP requests by route, method and status.",
            "# TYPE volcal_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f'volcal_http_requests_total{{route="{_label(route)}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP volcal_http_request_duration_seconds Request handling time in seconds.",
            "# TYPE volcal_http_request_duration_seconds histogram",
        ]
        for route, h in sorted(self.request_latency.items()):
            out += h.lines("volcal_http_request_duration_seconds", {"route": route})
        out += [
            "# HELP volcal_ws_clients Websocket clients connected now.",
            "# TYPE volcal_ws_clients gauge",
            f"volcal_ws_clients {self.ws_clients}",
            "# HELP volcal_ws_connections_total Websocket connections accepted.",
            "# TYPE volcal_ws_connections_total counter",
            f"volcal_ws_connections_total {self.ws_connected}",
            "# HELP volcal_ws_messages_total Websocket messages sent to clients.",
            "# TYPE volcal_ws_messages_total counter",
            f"volcal_ws_messages_total {self.ws_messages}",
            "# HELP volcal_ws_conflated_total Patches replaced by a newer one for the same "
            "expiry before a slow client took them.",
            "# TYPE volcal_ws_conflated_total counter",
            f"volcal_ws_conflated_total {self.ws_conflated}",
            "# HELP volcal_ws_dropped_total Websocket clients dropped by the server, by reason.",
            "# TYPE volcal_ws_dropped_total counter",
        ]
        for reason, n in sorted(self.ws_dropped.items()):
            out.append(f'volcal_ws_dropped_total{{reason="{_label(reason)}"}} {n}')
        out += [
            "# HELP volcal_http_rate_limited_total Requests refused by the rate limit (429).",
            "# TYPE volcal_http_rate_limited_total counter",
            f"volcal_http_rate_limited_total {self.rate_limited}",
            "# HELP volcal_ws_tick_to_send_seconds Input time of an update to its send to "
            "a websocket client, in seconds (engine clock).",
            "# TYPE volcal_ws_tick_to_send_seconds histogram",
            *self.tick_to_send.lines("volcal_ws_tick_to_send_seconds"),
            "# HELP volcal_server_loop_lag_seconds How late the server's event loop ran a "
            "timer, in seconds (every request and websocket send waits as long).",
            "# TYPE volcal_server_loop_lag_seconds histogram",
            *self.loop_lag.lines("volcal_server_loop_lag_seconds"),
        ]
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _engine_lines(d: Mapping[str, Any], prefix: str, labels: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, v in d.items():
        name = _name(prefix, str(key))
        if isinstance(v, Mapping) and key in _TWO_LEVEL and not labels:
            outer, inner = _TWO_LEVEL[key]
            for k1, sub in v.items():
                if isinstance(sub, Mapping):
                    for k2, x in sub.items():
                        if _is_number(x):
                            lab = {outer: str(k1), inner: str(k2)}
                            out.append(f"{name}_total{_labels(lab)} {_num(float(x))}")
            continue
        if isinstance(v, Mapping) and "buckets_ms" in v and "count" in v:
            out += _histogram_ms_lines(name, v, labels)
            continue
        if isinstance(v, bool):
            out.append(f"{name}{_labels(labels)} {int(v)}")
        elif _is_number(v):
            out.append(f"{name}{_labels(labels)} {_num(float(v))}")
        elif isinstance(v, Mapping):
            if "buckets" in v and "count" in v:
                out += _histogram_lines(name, v, labels)
            elif v and all(_is_number(x) for x in v.values()) and len(v) <= 64 and _labelish(v):
                lname = "reason" if "drop" in str(key) or "guard" in str(key) else "kind"
                for k2, x in v.items():
                    out.append(f"{name}{_labels({**labels, lname: str(k2)})} {_num(float(x))}")
            else:
                out += _engine_lines(v, name, labels)
    return out


#: nested engine counters rendered as one metric with two labels
_TWO_LEVEL = {"calibrations": ("model", "status"), "guards": ("underlying", "reason")}


def _histogram_ms_lines(name: str, h: Mapping[str, Any], labels: dict[str, str]) -> list[str]:
    """An engine latency record (cumulative ``buckets_ms``, ``count``, ``sum_ms``,
    percentiles in ms) as a Prometheus histogram in seconds plus percentile gauges."""
    base = name.replace("_latency_ms_", "_latency_") + "_seconds"
    lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    sep = "," if lab else ""
    out = [f"# TYPE {base} histogram"]
    for le, c in h["buckets_ms"].items():
        if le == "+Inf":
            continue
        out.append(f'{base}_bucket{{{lab}{sep}le="{_num(float(le) / 1000.0)}"}} {_num(float(c))}')
    out.append(f'{base}_bucket{{{lab}{sep}le="+Inf"}} {_num(float(h["count"]))}')
    out.append(f"{base}_sum{_labels(labels)} {_num(float(h.get('sum_ms') or 0.0) / 1000.0)}")
    out.append(f"{base}_count{_labels(labels)} {_num(float(h['count']))}")
    for k, x in h.items():  # p50_ms, p99_ms, max_ms: gauges over the recent window
        if k not in ("buckets_ms", "count", "sum_ms") and _is_number(x):
            out.append(f"{name}_{_name(str(k))}{_labels(labels)} {_num(float(x))}")
    return out


def _labelish(v: Mapping[str, Any]) -> bool:
    """A dict keyed by free-form names (reasons, statuses, underlyings), not by fields."""
    return not any(k in v for k in ("p50", "p99", "mean", "max", "count", "n"))


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _histogram_lines(name: str, h: Mapping[str, Any], labels: dict[str, str]) -> list[str]:
    out, lab = [], ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    sep = "," if lab else ""
    buckets = h["buckets"]
    items = buckets.items() if isinstance(buckets, Mapping) else buckets
    for le, c in items:
        out.append(f'{name}_bucket{{{lab}{sep}le="{_num(float(le))}"}} {_num(float(c))}')
    out.append(f'{name}_bucket{{{lab}{sep}le="+Inf"}} {_num(float(h["count"]))}')
    out.append(f"{name}_sum{_labels(labels)} {_num(float(h.get('sum', 0.0)))}")
    out.append(f"{name}_count{_labels(labels)} {_num(float(h['count']))}")
    return out


def render_prometheus(engine_metrics: Mapping[str, Any], server: ServerMetrics) -> str:
    """The ``/metrics`` body: the engine's metrics under ``volcal_engine_*`` then the
    server's own; NaN and missing values are left out (a gap, never a fake zero)."""
    eng = [
        ln for ln in _engine_lines(engine_metrics, "volcal_engine", {}) if not ln.endswith(" NaN")
    ]
    return "\n".join([*eng, *server.lines()]) + "\n"
