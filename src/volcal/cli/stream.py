"""``volcal stream deribit BTC`` / ``volcal stream replay PATH...`` and ``volcal record``.

The stream commands run :class:`volcal.stream.StreamEngine` and show a live Rich view
(per expiry ATM vol, RR25, BF25, age and status; latency percentiles; guard counts;
message accounting). ``volcal record deribit BTC -o FILE.jsonl`` writes the raw frames
of the live feed to a log that ``volcal stream replay FILE.jsonl`` plays back.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from volcal.cli._app import app, console, err_console, fmt_num, print_json
from volcal.errors import ParameterError

VENUES = ("deribit",)


def _models(text: str) -> tuple[str, ...]:
    out = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    if not out:
        raise ParameterError("--models is empty: use e.g. svi,svi_surface,essvi,heston")
    return out


def _view(engine: Any, underlying: str) -> Any:
    from rich.console import Group
    from rich.table import Table

    st = engine.state(underlying)
    m = engine.metrics()
    title = (
        f"{underlying} {'[bold red]STALE[/] ' if st.stale else ''}"
        f"surface at {str(st.to_dict()['snapshot_time'])[:23]}  "
        f"index {fmt_num(st.index_price, digits=1)}  seq {st.seq}"
    )
    tab = Table(title=title, title_justify="left")
    cols = ("expiry", "t (d)", "ATM %", "RR25 %", "BF25 %", "rmse", "n", "age s", "status", "fit")
    for col in cols:
        tab.add_column(col, justify="left" if col in ("expiry", "status", "fit") else "right")
    for e in st.expiries:
        age = st.now - e.input_time if math.isfinite(e.input_time) else math.nan
        status = e.status + (f" ({','.join(e.reasons)})" if e.reasons else "")
        if e.fit == "surface":  # the arbitrage-free slice; "moved": the conditions bound
            moved = bool(e.constraint and e.constraint.get("moved"))
            fit = "arb-free" + (" (moved)" if moved else "")
        else:
            fit = "free" + (f" ({e.fit_reason})" if e.fit_reason else "")
        tab.add_row(
            (e.to_dict()["expiry"] or "")[:10],
            fmt_num(e.t * 365.0, digits=2),
            fmt_num(e.atm_vol, 100.0),
            fmt_num(e.rr25, 100.0),
            fmt_num(e.bf25, 100.0),
            fmt_num(e.rmse_vol),
            str(e.n_used),
            fmt_num(age, digits=1),
            status,
            fit,
        )
    lat = m["latency_ms"]
    lines = []
    keys = ("tick_to_slice", "oldest_tick_to_slice", "tick_to_svi_surface", "tick_to_surface")
    for k in (*keys, "model_compute"):
        d = lat[k]
        lines.append(
            f"{k}: p50 {fmt_num(d['p50_ms'])} ms  p99 {fmt_num(d['p99_ms'])} ms  (n {d['count']})"
        )
    msg = m["messages"]
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(msg["dropped"].items())) or "none"
    lines.append(
        f"messages: received {msg['received']} = applied {msg['applied_total']} + dropped "
        f"{sum(msg['dropped'].values())} ({dropped})"
    )
    guards = ", ".join(f"{k}={v}" for k, v in sorted(st.guards.items())) or "none"
    lines.append(f"guards: {guards}")
    for name, s in st.surface.items():
        lines.append(
            f"{name}: {s.get('status')} rmse {fmt_num(s.get('rmse_vol'))} vol pts, "
            f"{fmt_num(s.get('compute_ms'), digits=1)} ms"
        )
    if st.synthetic_share > 0:
        lines.append(
            f"[yellow]{100 * st.synthetic_share:.1f}% of quote updates are interpolated "
            "(synthetic) ticks between real snapshots[/]"
        )
    return Group(tab, *lines)


async def _run_engine(
    engine: Any, underlying: str, *, live: bool, duration: float | None, refresh: float = 0.5
) -> None:
    import asyncio

    from rich.live import Live

    engine.start()
    end = None if duration is None else time.monotonic() + duration
    try:
        if live:
            with Live(
                _view(engine, underlying), console=console, refresh_per_second=4, transient=False
            ) as lv:
                while not engine._done.is_set() and (end is None or time.monotonic() < end):
                    await asyncio.sleep(refresh)
                    lv.update(_view(engine, underlying))
                lv.update(_view(engine, underlying))
        else:
            while not engine._done.is_set() and (end is None or time.monotonic() < end):
                await asyncio.sleep(0.05)
    finally:
        await engine.stop()


def _config(underlying: str, models: str, store: Path | None, debounce: float, stale: float) -> Any:
    from volcal.stream import StoreWriter, StreamConfig, ThreadedSink

    sink = ThreadedSink(StoreWriter(store)) if store is not None else None
    return StreamConfig(
        underlyings=(underlying,),
        models=_models(models),
        sink=sink,
        debounce_s=debounce,
        stale_feed_s=stale,
        # the command owns its process: the start-up heap is frozen out of the
        # collector's reach (a full collection during the stream scans only what came
        # after; StreamConfig.gc_freeze)
        gc_freeze=True,
    )


def _finish(engine: Any, underlying: str, as_json: bool) -> None:
    sink = engine.config.sink
    if sink is not None:
        sink.close()
    if as_json:
        print_json({"state": engine.state(underlying).to_dict(), "metrics": engine.metrics()})


@app.command("stream")
def stream(
    source: Annotated[str, typer.Argument(help="'deribit' (live) or 'replay'.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="deribit: CURRENCY (BTC, ETH). replay: log/snapshot PATHs."),
    ] = None,
    speed: Annotated[float, typer.Option(help="Replay speed (recorded s per s; 0 = max).")] = 60.0,
    currency: Annotated[str, typer.Option(help="Underlying of replayed snapshots.")] = "BTC",
    ticks_between: Annotated[
        int,
        typer.Option(help="Replay: interpolated noisy ticks between two snapshots (0 = none)."),
    ] = 0,
    models: Annotated[str, typer.Option(help="Models: svi,svi_surface,essvi,heston,bates,...")] = (
        "svi,svi_surface,essvi,heston"
    ),
    store: Annotated[Path | None, typer.Option(help="Write calibrations to this store.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    debounce: Annotated[float, typer.Option(help="Per-expiry debounce (s).")] = 0.1,
    stale: Annotated[float, typer.Option(help="Feed stale after this silence (s).")] = 10.0,
    live: Annotated[bool, typer.Option(help="Show the live view.")] = True,
    url: Annotated[
        str | None,
        typer.Option(
            help="Websocket URL (default Deribit; e.g. wss://test.deribit.com/ws/api/v2)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final state as JSON.")] = False,
) -> None:
    """Stream a calibrated surface: live from Deribit, or a replay of a log or snapshots.

    Examples: ``volcal stream deribit BTC``; ``volcal stream replay btc.jsonl --speed 60``;
    ``volcal stream replay ../shared/data/raw/svcj-deribit-snapshots --speed 0``.
    """
    from volcal.stream import DeribitSource, ReplaySource, StreamEngine

    src_name = source.lower()
    rest = list(args or [])
    if duration is not None and not duration > 0:
        raise ParameterError(f"--duration must be > 0 seconds, got {duration}")
    if src_name == "replay":
        if not rest:
            raise ParameterError("stream replay needs at least one log or snapshot PATH")
        src: Any = ReplaySource(
            [Path(p) for p in rest], currency=currency, speed=speed, ticks_between=ticks_between
        )
        underlying = currency.upper()
        if src.logs:
            underlying = _log_underlying(src) or underlying
    elif src_name in VENUES:
        if len(rest) != 1:
            raise ParameterError(f"stream {src_name} needs one CURRENCY (e.g. BTC)")
        underlying = rest[0].upper()
        src = DeribitSource(underlying, **({"url": url} if url else {}))
    else:
        raise ParameterError(f"unknown source {source!r}: use deribit or replay")
    if ticks_between and src_name == "replay":
        err_console.print(
            f"note: {ticks_between} interpolated noisy ticks between consecutive snapshots "
            "are synthetic; the snapshots themselves are replayed exactly",
            highlight=False,
        )
    engine = StreamEngine(src, _config(underlying, models, store, debounce, stale))
    import asyncio  # here, not at module level: every other command starts without it

    try:
        asyncio.run(_run_engine(engine, underlying, live=live and not as_json, duration=duration))
    except KeyboardInterrupt:
        pass
    _finish(engine, underlying, as_json)
    if engine.error is not None:
        from volcal.errors import DataError, VolcalError

        err = engine.error
        raise err if isinstance(err, VolcalError) else DataError(f"feed stopped: {err}")


def _log_underlying(src: Any) -> str | None:
    import json

    from volcal.stream.messages import parse_instrument
    from volcal.stream.sources import _lines

    for line in _lines(src.logs[0]):
        try:
            raw = json.loads(line)["raw"]
            msg = json.loads(raw) if isinstance(raw, str) else raw
            name = msg["params"]["data"]["instrument_name"]
        except (ValueError, KeyError, TypeError):
            continue
        inst = parse_instrument(str(name))
        if inst is not None:
            return inst.underlying
    return None


@app.command("record")
def record_cmd(
    venue: Annotated[str, typer.Argument(help="Venue: deribit.")],
    currency: Annotated[str, typer.Argument(help="Underlying: BTC, ETH, ...")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSON-lines log to write.")],
    url: Annotated[str | None, typer.Option(help="Websocket URL (default Deribit).")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to record (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Record the raw live frames of VENUE CURRENCY to a JSON-lines log (replayable)."""
    from volcal.stream import DeribitSource, record

    if venue.lower() not in VENUES:
        raise ParameterError(f"unknown venue {venue!r}: use deribit")
    src = DeribitSource(currency, **({"url": url} if url else {}))
    n = 0
    import asyncio

    with err_console.status(f"recording {currency.upper()} from Deribit to {output}...") as status:

        def progress(k: int) -> None:
            if k % 500 == 0:
                status.update(f"recorded {k} frames to {output}")

        try:
            n = asyncio.run(record(src, output, duration=duration, on_frame=progress))
        except KeyboardInterrupt:
            pass
    console.print(f"recorded {n} frames to {output}", highlight=False)
