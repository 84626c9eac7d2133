"""Assemble the service: a source, the streaming engine and the app settings.

``build_service`` is what ``volcal serve`` runs (and what the tests and the benchmark
use), so the command, the tests and the benchmark serve through the same code path.
Without a source it replays the real Deribit snapshots of ../shared/data (the rally of
2026-08-19..22, 15 snapshots about 6 hours apart) and says so in ``settings.source``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volcal.errors import DataError, ParameterError
from volcal.serve.settings import ServeSettings, load_token

__all__ = ["Service", "StoreRecordWriter", "build_service", "default_snapshots", "make_engine"]

#: the default replay: every snapshot of the 2026-08-19..22 rally (real quotes)
DEFAULT_GLOB = "deribit_options_snapshot_2026082[0-2]T*.csv"
DEFAULT_FIRST = "deribit_options_snapshot_20260819T*.csv"
#: default speed of that replay: 6 recorded hours in 6 wall seconds
DEFAULT_SPEED = 3600.0
LIVE_VENUES = ("deribit",)
#: where the engine runs: its own process (default) or a thread of the server process
ENGINE_MODES = ("process", "thread")


@dataclass(frozen=True)
class Service:
    """What ``volcal serve`` runs: the engine and the app settings."""

    engine: Any
    settings: ServeSettings
    source: Any
    note: str


def make_engine(source: Any, config: dict[str, Any], store: str | None = None) -> Any:
    """The streaming engine over ``source`` with ``StreamConfig(**config)`` and, when
    ``store`` is given, the calibration writer into it (what the engine process calls:
    every argument is picklable, the writer's thread is started where it runs)."""
    from volcal.stream import StreamConfig, StreamEngine

    cfg = dict(config)
    if store is not None:
        from volcal.stream.sink import ThreadedSink

        cfg["sink"] = ThreadedSink(StoreRecordWriter(store))
    return StreamEngine(source, StreamConfig(**cfg))


class StoreRecordWriter:
    """The engine's calibration writer into ``volcal.store`` (``StoreWriter`` of
    :mod:`volcal.stream.sink`), with the two conversions the engine and the store need
    between them: the chain's snapshot time is floored to the microsecond before it is
    stored (the store converts it to a Python datetime, which warns on nanoseconds), and
    the JSON fields of a stored fit (``params``, ``stderr``, ``settings``) are decoded
    on the way back, so a restarted engine can seed its slices from ``latest()``."""

    def __init__(self, path: str | Path) -> None:
        from volcal.stream.sink import StoreWriter

        self.inner = StoreWriter(path)

    def write(self, record: Any) -> None:
        import dataclasses

        chain = record.chain
        snap = getattr(chain, "snapshot", None)
        if snap is not None and int(getattr(snap, "nanosecond", 0) or 0):
            record = dataclasses.replace(record, chain=chain.replace(snapshot=snap.floor("us")))
        self.inner.write(record)

    def latest(self, underlying: str, model: str) -> dict[str, Any] | None:
        out = self.inner.latest(underlying, model)
        if out is None:
            return None
        out = _decode_json_fields(dict(out))
        out["slices"] = [_decode_json_fields(dict(s)) for s in out.get("slices") or []]
        return out

    def close(self) -> None:
        self.inner.close()


def _decode_json_fields(d: dict[str, Any]) -> dict[str, Any]:
    import json

    for key in ("params", "stderr", "settings"):
        v = d.get(key)
        if isinstance(v, str):
            try:
                d[key] = json.loads(v)
            except ValueError:
                pass
    return d


def _data_roots() -> list[Path]:
    roots = []
    env = os.environ.get("VOLCAL_DATA_DIR")
    if env:
        roots.append(Path(env))
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(Path(__file__).resolve().parents[4] / "shared" / "data")
    return roots


def default_snapshots() -> list[Path]:
    """The snapshot files of the default replay (empty when the data is absent)."""
    for root in _data_roots():
        folder = root / "raw" / "svcj-deribit-snapshots"
        if folder.is_dir():
            files = sorted(folder.glob(DEFAULT_FIRST)) + sorted(folder.glob(DEFAULT_GLOB))
            if files:
                return files
    return []


def _snapshot_gap_s(files: Sequence[Path]) -> float | None:
    """Staleness threshold of a snapshot replay: 1.5 x the largest gap between two
    consecutive snapshots (their names carry the time), so a replay is stale only when
    it really stops, not between two snapshots hours apart; None for logs."""
    from datetime import UTC, datetime

    times = []
    for f in files:
        stem = f.name.split(".")[0]
        try:
            times.append(datetime.strptime(stem[-16:], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
        except ValueError:
            return None
    if len(times) < 2:
        return None
    gap = max((b - a).total_seconds() for a, b in itertools.pairwise(times))
    return max(10.0, 1.5 * gap)


def _split(text: str, what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise ParameterError(f"{what} is empty")
    return items


def build_service(
    *,
    replay: Sequence[str | Path] | None = None,
    speed: float | None = None,
    live: str | None = None,
    currency: str = "BTC",
    models: str = "svi,svi_surface,essvi,heston",
    store: str | Path | None = None,
    token_file: str | Path | None = None,
    cors: str | None = None,
    rate_limit: float = 100.0,
    ticks_between: int = 0,
    stale_feed_s: float | None = None,
    engine_mode: str = "process",
    env: dict[str, str] | None = None,
    **settings_kw: Any,
) -> Service:
    """A streaming engine over the chosen source plus the serve settings.

    Parameters
    ----------
    replay : paths, optional
        Snapshot CSVs / folders or recorded ``.jsonl`` logs, played at ``speed``
        (recorded seconds per wall second; 0 = as fast as possible, then the last state
        stays served).
    live : {"deribit"}, optional
        Live venue (public websocket; needs network).
    currency : str
        Comma-separated underlyings (``"BTC,ETH"``); a snapshot replay reads one.
    models : str
        Comma-separated models of the engine (``svi`` always).
    store : path, optional
        Calibration store: the engine writes every calibration to it and recovers its
        last surface from it at start; ``/v1/history`` reads it.
    ticks_between : int
        Interpolated (synthetic, noisy) ticks between two real snapshots of a replay;
        0 = only the real snapshots.
    engine_mode : {"process", "thread"}
        ``process`` (default): the engine runs in its own process
        (:mod:`volcal.serve.process`) and publishes encoded states and patches to the
        server; ``thread``: in a thread of the server process (its own event loop).
    stale_feed_s : float, optional
        Market-clock seconds without a message before the state is stale; default: the
        engine's for live and logs, 1.5 x the largest snapshot gap for a snapshot replay.
    """
    from volcal.stream import ReplaySource, StreamConfig

    mode = str(engine_mode).lower()
    if mode not in ENGINE_MODES:
        raise ParameterError(
            f"unknown engine mode {engine_mode!r}: use one of {', '.join(ENGINE_MODES)}"
        )
    currencies = tuple(c.upper() for c in _split(currency, "--currency"))
    model_names = tuple(m.lower() for m in _split(models, "--models"))
    if replay and live:
        raise ParameterError("give either --replay or --live, not both")
    note = ""
    if live is not None:
        if live.lower() not in LIVE_VENUES:
            raise ParameterError(
                f"unknown venue {live!r} for --live: use one of {', '.join(LIVE_VENUES)}"
            )
        from volcal.stream import DeribitSource

        source: Any = DeribitSource(currencies)
        note = f"live {live.lower()} {','.join(currencies)}"
    else:
        paths = [Path(p) for p in replay or ()]
        if not paths:
            paths = default_snapshots()
            if not paths:
                raise DataError(
                    "no source given and the shared real snapshots were not found "
                    "(set VOLCAL_DATA_DIR); use --replay PATH... or --live deribit"
                )
            if speed is None:
                speed = DEFAULT_SPEED
            note = (
                f"no source given: replay of {len(paths)} real Deribit snapshots "
                f"({paths[0].name[25:33]}..{paths[-1].name[25:33]}, ../shared/data) at "
                f"{speed:g}x"
            )
        is_log = all(p.name.endswith((".jsonl", ".jsonl.gz", ".ndjson")) for p in paths)
        if not is_log and len(currencies) > 1:
            raise ParameterError(
                "a snapshot replay serves one currency: give --currency BTC or --currency ETH"
            )
        sp = 1.0 if speed is None else float(speed)
        source = ReplaySource(
            paths, currency=currencies[0], speed=sp, ticks_between=int(ticks_between)
        )
        if not note:
            note = f"replay of {len(paths)} file(s) at {sp:g}x"
        if ticks_between:
            note += f" with {ticks_between} interpolated synthetic ticks between snapshots"
    cfg_kw: dict[str, Any] = {"underlyings": currencies, "models": model_names}
    if stale_feed_s is None and live is None:
        stale_feed_s = _snapshot_gap_s(getattr(source, "snapshots", []))
    if stale_feed_s is not None:
        cfg_kw["stale_feed_s"] = float(stale_feed_s)
    store_s = str(store) if store is not None else None
    engine: Any
    if mode == "process":
        from volcal.serve.ipc import EngineSpec
        from volcal.serve.process import EngineProcess

        # the engine's child process is the service's own: its start-up heap (modules,
        # compiled kernels, the book) is frozen out of the collector's reach, so a full
        # collection during the stream does not scan it (StreamConfig.gc_freeze)
        spec = EngineSpec(
            make_engine,
            {"source": source, "config": {**cfg_kw, "gc_freeze": True}, "store": store_s},
        )
        # the server reads the configuration (without the writer, which lives with
        # the engine); the engine itself is built in the child
        engine = EngineProcess(spec, currencies, config=StreamConfig(**cfg_kw))
    else:
        engine = make_engine(source, cfg_kw, store_s)
    token = load_token(token_file, env=env)
    settings = ServeSettings(
        underlyings=currencies,
        token=token,
        token_file=str(token_file)
        if token_file
        else (env or os.environ).get("VOLCAL_SERVE_TOKEN_FILE"),
        cors_origins=_split(cors, "--cors") if cors else (),
        rate_limit=rate_limit,
        store_path=str(store) if store is not None else None,
        source=note,
        **{"engine_thread": True, **settings_kw},
    )
    return Service(engine=engine, settings=settings, source=source, note=note)
