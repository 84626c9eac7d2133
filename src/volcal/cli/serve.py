"""``volcal serve``: the live surface over HTTP and websockets, with a live page.

uvicorn runs the FastAPI app; the streaming engine runs in its own process by default
(``--engine-mode thread``: in a thread of the server process) and publishes each update
to the server already encoded. Safe by default: binds 127.0.0.1 (0.0.0.0 warns), read-only unless an admin token
is configured (``--token-file`` or ``$VOLCAL_SERVE_TOKEN`` / ``$VOLCAL_SERVE_TOKEN_FILE``).
Without a source it replays the shared real Deribit snapshots and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volcal.cli._app import app, err_console


@app.command()
def serve(
    replay: Annotated[
        list[Path] | None,
        typer.Option("--replay", help="Snapshot CSVs/folders or .jsonl logs to replay (repeat)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed", help="Replay speed (recorded s per wall s); 0 = as fast as possible."
        ),
    ] = None,
    live: Annotated[
        str | None, typer.Option("--live", help="Live venue: deribit (needs network).")
    ] = None,
    currency: Annotated[
        str, typer.Option("--currency", "-c", help="Underlyings, comma-separated (BTC,ETH).")
    ] = "BTC",
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Calibration store: history, and recovery at restart."),
    ] = None,
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Engine models, comma-separated (svi_surface: the arbitrage-free surface the API serves by default).",
        ),
    ] = "svi,svi_surface,essvi,heston",
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="File with the admin bearer token (admin off without)."),
    ] = None,
    cors: Annotated[
        str | None, typer.Option("--cors", help="Allowed CORS origins, comma-separated.")
    ] = None,
    rate_limit: Annotated[
        float, typer.Option("--rate-limit", help="Requests per second per client; 0 = none.")
    ] = 100.0,
    ticks_between: Annotated[
        int,
        typer.Option(
            "--ticks-between", help="Synthetic interpolated ticks between replayed snapshots."
        ),
    ] = 0,
    engine_mode: Annotated[
        str,
        typer.Option("--engine-mode", help="Where the engine runs: process (its own) or thread."),
    ] = "process",
) -> None:
    """Serve the live surface: JSON API, websocket stream, Prometheus metrics, live page."""
    import warnings

    from volcal.errors import ParameterError, VolcalWarning
    from volcal.serve.app import create_app
    from volcal.serve.server import bind_socket, serve_forever
    from volcal.serve.service import build_service

    if not 0 <= port <= 65535:
        raise ParameterError(f"--port must lie in 0..65535, got {port}")
    svc = build_service(
        replay=replay,
        speed=speed,
        live=live,
        currency=currency,
        models=models,
        store=store,
        token_file=token_file,
        cors=cors,
        rate_limit=rate_limit,
        ticks_between=ticks_between,
        engine_mode=engine_mode,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VolcalWarning)
        bind_socket(host, port).close()  # fail early on a bad or busy address
    for w in caught:
        err_console.print(f"[bold yellow]warning:[/] {w.message}", highlight=False)
    err_console.print(f"source: {svc.note}", highlight=False)
    admin = "on (bearer token)" if svc.settings.token else "off (no token configured)"
    err_console.print(
        f"serving http://{host}:{port}/  (API docs /docs, metrics /metrics, admin {admin})",
        highlight=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VolcalWarning)  # warned once above
        serve_forever(create_app(svc.engine, svc.settings), host, port)
