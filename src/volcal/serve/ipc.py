"""The message protocol between the engine process and the server process.

``volcal serve`` runs the streaming engine in a child process (:mod:`volcal.serve.process`,
``multiprocessing`` spawn context) so the app's event loop never shares a GIL with the
engine's fits. Two one-way pipes connect them; every message is a tuple whose first item
is its kind, framed as ``multiprocessing.Connection`` frames them (4-byte big-endian
length, then the pickle); the payloads inside are already-encoded JSON, so the server
never re-encodes a surface or a patch.

Engine -> server (``events`` pipe)
----------------------------------
``("ready", pid, methods)``
    The engine started: its process id and which optional methods it has
    (``flagged``, ``quotes``, ``recalibrate``, ``reload``, ``chain``).
``("state", underlying, version, meta, body, status, snapshot)``
    A published state of one underlying: ``body`` is the JSON of the ``/v1/surface``
    response (``{"underlying": ..., **state}``, UTF-8 bytes) or ``None`` before the first
    surface; ``status`` the JSON fragment (no braces) of the fields the websocket status
    message carries (``guards``, ``reasons``, ``latency``); ``meta`` a small dict
    (``snapshot_time``, ``stale``, ``age_s``, ``reasons``, ``n_expiries``, ``seq``) for
    ``/health`` and the message headers; ``version`` grows by one per publication.
    ``snapshot=True``: websocket clients must be sent the full state (the engine's own
    subscription was conflated, or patches were dropped on this pipe).
``("patch", underlying, key, text, tick_wall_time)``
    One websocket message, encoded once (``text``: a JSON object string with ``type``
    ``patch`` / ``surface`` / ``status``, ``underlying``, ``seq``, ``patch``), its
    conflation key (``expiry:<iso>``, ``surface:<model>``, ``status``) and the wall
    time of its newest tick (or ``None``).
``("end", underlying)``
    The engine's stream of that underlying ended (the engine stopped).
``("reply", request_id, ok, value)``
    The answer to a ``call``: ``value`` is the JSON-safe result, or when ``ok`` is
    false ``(exception class name, message)``.
``("fatal", reason)``
    The engine failed; the process exits after this message (``reason`` is one line).

Server -> engine (``requests`` pipe)
------------------------------------
``("call", request_id, method, args)``
    Run one engine method (``metrics``, ``flagged``, ``quotes``, ``recalibrate``,
    ``reload``) in the engine's loop and answer with a ``reply``.
``("stop",)``
    Stop the engine, drain its calibration writer and exit. End of file on this pipe
    (the server process died) does the same, so the engine never outlives its server.

Bounds
------
The engine side queues at most ``queue_size`` ``patch`` messages while the pipe is full
(its transport buffers up to 1 MiB beyond the pipe's own buffer);
a patch that finds the queue full is dropped and counted (``ipc.dropped``) and the
underlying is marked for a resync: its next state is sent with ``snapshot=True``, so
clients get the full current state instead of the lost patches. A ``state`` message
replaces the one of the same underlying still queued (``ipc.state_conflated``). Replies
and control messages are never dropped (their number is bounded by the server's calls
in flight). A slow server therefore never grows the engine's memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CALLS",
    "EngineSpec",
    "EngineUnavailable",
    "Published",
    "dumps",
    "status_fragment",
]

#: engine methods the server may call through the requests pipe
CALLS = ("metrics", "flagged", "quotes", "recalibrate", "reload", "chain")

#: fields of a state that ride on the websocket status message
STATUS_FIELDS = ("guards", "reasons", "latency")


class EngineUnavailable(Exception):
    """The engine process is not running (it failed, or has not answered in time)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def dumps(obj: Any) -> str:
    """Compact JSON (NaN refused; unknown objects as ``str``)."""
    return json.dumps(obj, allow_nan=False, default=str, separators=(",", ":"))


def status_fragment(state: dict[str, Any] | None) -> str:
    """The ``"guards":...,"reasons":...,"latency":...`` fragment of a status message."""
    if not state:
        return ""
    return dumps({k: state[k] for k in STATUS_FIELDS if k in state})[1:-1]


@dataclass(frozen=True)
class EngineSpec:
    """How the engine process builds its engine: ``factory(**kwargs)`` in the child.

    ``factory`` must be importable by name (a module-level function) and ``kwargs``
    picklable: the spawn context starts a fresh interpreter, which imports the factory's
    module and calls it there. The engine it returns has the streaming engine's
    interface (``start``/``stop`` or ``run``, ``state``, ``subscribe``, ``metrics``).
    """

    factory: Any
    kwargs: dict[str, Any]

    def build(self) -> Any:
        return self.factory(**self.kwargs)


@dataclass(frozen=True)
class Published:
    """One ``state`` message as the server keeps it (the latest per underlying)."""

    underlying: str
    version: int
    meta: dict[str, Any]
    body: bytes | None
    status: str
    received: float  # server monotonic time of arrival

    def header(self, seq: int) -> str:
        """The JSON object (without its closing brace) heading a websocket message."""
        m = self.meta
        return dumps(
            {
                "underlying": self.underlying,
                "seq": seq,
                "snapshot_time": m.get("snapshot_time"),
                "stale": bool(m.get("stale", False)),
                "age_s": m.get("age_s"),
            }
        )[:-1]
