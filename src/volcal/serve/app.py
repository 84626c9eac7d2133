"""The FastAPI app: read API, websocket stream, metrics, live page, admin actions.

``create_app(engine, settings)`` accepts an :class:`~volcal.serve.ipc.EngineSpec` (the
engine is then built and run in its own process, :mod:`volcal.serve.process`), an
``EngineProcess``, or any object with the streaming engine's interface: ``state(underlying)`` (a frozen state with ``to_dict()``, or ``None`` /
``KeyError`` before the first surface), ``subscribe(underlying)`` (async iterator: the
full state first, then patch dicts), ``metrics()`` (dict) and either ``start()`` /
``stop()`` or ``run()`` (sync or coroutine). Optional: ``quotes(underlying, expiry)``
(the live quotes of one expiry, for the page's bid/ask bars), ``recalibrate(underlying)``
and ``reload()`` (admin actions; 501 when the engine has none).

Safety (see :mod:`volcal.serve.settings`): read-only by default, admin endpoints need a
bearer token compared in constant time, every error is a one-line JSON ``{"error": ...}``
with a 4xx status (5xx only for a bug, still JSON, never a traceback), query strings,
query lists and bodies are bounded, each client address is rate limited, CORS is off
unless origins are configured, and no request value is ever used as a file path (the
only files served are the page's plotly bundle, fixed when the app is built).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from volcal.serve.hub import StreamHub, state_dict
from volcal.serve.metrics import ServerMetrics, render_prometheus
from volcal.serve.quotes import chain_quotes, finite_or_none
from volcal.serve.schemas import (
    ErrorOut,
    HealthOut,
    HistoryOut,
    IvOut,
    ParamsOut,
    QualityOut,
    SurfaceOut,
)
from volcal.serve.security import RateLimiter, bearer_ok
from volcal.serve.settings import ServeSettings
from volcal.stream.state import free_view

__all__ = ["ApiError", "chain_quotes", "create_app", "plotly_js_path", "watch_loop"]

#: the server's event-loop lag is sampled this often (s)
LOOP_PROBE_S = 0.1
#: ``fit=`` of /v1/surface, /v1/iv and /v1/quotes (validated: anything else is a 422)
FIT_PATTERN = "^(surface|free)$"
FIT_DOC = (
    "Which fit of each expiry (no unit): 'surface' (default) its slice of the "
    "arbitrage-free SVI surface (model 'svi_surface': butterfly and calendar conditions "
    "on a dense grid), or the free slice when there is none yet (fit='free' and "
    "fit_reason in the row say so and why: surface_pending, surface_failed, "
    "surface_uncertified, not_in_surface, surface_off); 'free' the per-expiry free SVI "
    "slice (fitted alone, not arbitrage-free together)."
)

#: the /v1/surface body is re-encoded at least this often (s) ...
CACHE_S = 0.25
#: ... and, after an engine update, at most this often (s)
MIN_REBUILD_S = 0.05

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut, "description": d}
    for c, d in (
        (404, "Unknown underlying, expiry or model"),
        (413, "Query string or body too large"),
        (422, "Bad parameter"),
        (429, "Rate limited"),
        (503, "No surface yet"),
    )
}


class ApiError(Exception):
    """A request the API refuses: status code and one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status, headers=headers)


def plotly_js_path() -> Path:
    """The minified plotly.js bundled in the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


# --------------------------------------------------------------------------- middleware
class _Guard:
    """Pure-ASGI middleware: size bounds, rate limit, request timing (one per app)."""

    def __init__(
        self,
        app: Any,
        settings: ServeSettings,
        limiter: RateLimiter,
        metrics: ServerMetrics,
        fast_surface: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.metrics = metrics
        # GET /v1/surface answered here with the published bytes (no routing, no
        # parameter parsing); None: not published / not this simple -> the app answers
        self.fast_surface = fast_surface

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        refuse: tuple[int, str, dict[str, str]] | None = None
        if len(scope.get("query_string", b"")) > self.settings.max_query_bytes:
            refuse = (413, f"query string longer than {self.settings.max_query_bytes} bytes", {})
        else:
            ok, retry = self.limiter.allow(key)
            if not ok:
                self.metrics.rate_limited += 1
                refuse = (429, "rate limit exceeded", {"Retry-After": str(math.ceil(retry))})
        if refuse is None and scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == b"content-length":
                    try:
                        n = int(value)
                    except ValueError:
                        refuse = (400, "bad Content-Length header", {})
                        break
                    if n > self.settings.max_body_bytes:
                        refuse = (413, f"body larger than {self.settings.max_body_bytes} bytes", {})
        if refuse is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": refuse[1]})
                return
            await _error(*refuse)(scope, receive, send)
            self.metrics.observe_request("refused", scope.get("method", ""), refuse[0], 0.0)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        if (
            self.fast_surface is not None
            and scope.get("path") == "/v1/surface"
            and scope.get("method") == "GET"
        ):
            body = self.fast_surface(scope.get("query_string", b""))
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                self.metrics.observe_request("/v1/surface", "GET", 200, time.perf_counter() - t0)
                return
        status = [500]
        seen = [0]
        limit = self.settings.max_body_bytes
        too_big = [False]

        async def bounded_receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                seen[0] += len(msg.get("body", b""))
                if seen[0] > limit:
                    too_big[0] = True
                    raise ApiError(413, f"body larger than {limit} bytes")
            return msg

        async def timed_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, bounded_receive, timed_send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                name, scope.get("method", ""), status[0], time.perf_counter() - t0
            )


# --------------------------------------------------------------------------- helpers
def _parse_expiry(text: str) -> datetime | None:
    s = text.strip()
    for fmt in ("%d%b%y", "%d%b%Y"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(s.upper(), fmt).replace(hour=8, tzinfo=UTC)
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    if len(s) <= 10:  # a date alone: Deribit's 08:00 UTC
        d = d.replace(hour=8)
    return d.astimezone(UTC)


def _number(name: str, text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ApiError(422, f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(x):
        raise ApiError(422, f"{name} must be finite, got {text[:40]!r}")
    return x


def smile_iv(row: dict[str, Any], k: Any) -> Any:
    """Implied vol of one expiry's fitted smile at log-moneyness ``k`` (raw SVI)."""
    import numpy as np

    from volcal.models.svi import svi_total_variance

    model = str(row.get("model") or "").lower()
    p = row.get("params") or {}
    if model not in ("svi", "svi_surface") or not all(
        n in p for n in ("a", "b", "rho", "m", "sigma")
    ):
        raise ApiError(
            422, f"no smile to evaluate for expiry {row.get('expiry')} (model {model or 'none'})"
        )
    t = float(row["t"])
    w = svi_total_variance(k, p["a"], p["b"], p["rho"], p["m"], p["sigma"])
    w = np.where(w > 0, w, np.nan)
    return np.sqrt(w / t)


# --------------------------------------------------------------------------- factory
def create_app(
    engine: Any,
    settings: ServeSettings | None = None,
    *,
    manage_engine: bool = True,
    store: Any = None,
) -> FastAPI:
    """Build the service over ``engine`` (module docs for the interface it needs).

    Parameters
    ----------
    engine : engine-like
        The streaming engine, or any object with its interface.
    settings : ServeSettings
    manage_engine : bool
        Start the engine when the app starts and stop it when the app stops.
    store : object, optional
        An open calibration store (``calibrations()``, ``latest()``); default: opened
        from ``settings.store_path`` when set.
    """
    settings = settings or ServeSettings()
    from volcal.serve.ipc import EngineSpec, EngineUnavailable

    if isinstance(engine, EngineSpec):  # built and run in its own process
        from volcal.serve.process import EngineProcess

        engine = EngineProcess(engine, settings.underlyings)
    remote = bool(getattr(engine, "remote", False))
    if settings.engine_thread and manage_engine and not remote:
        from volcal.serve.runner import EngineThread

        engine = EngineThread(engine, settings.underlyings)
    metrics = ServerMetrics()
    limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    plotly_path = plotly_js_path()
    started = time.time()
    hubs: dict[str, StreamHub] = {}
    cache: dict[str, tuple[int, float, bytes]] = {}
    holder: dict[str, Any] = {"store": store, "engine_task": None, "token": settings.token}

    def open_store() -> Any:
        if holder["store"] is None and settings.store_path:
            from volcal import store as store_mod

            holder["store"] = store_mod.open(settings.store_path)
        return holder["store"]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            if hasattr(engine, "start"):
                r = engine.start()
                if inspect.isawaitable(r):
                    await r
            else:
                holder["engine_task"] = asyncio.create_task(engine.run(), name="engine")
        for u in settings.underlyings:
            hubs[u] = StreamHub(
                engine,
                u,
                queue_limit=settings.ws_queue,
                status_interval_s=settings.status_interval_s,
                metrics=metrics,
            )
            hubs[u].start()
        probe = asyncio.create_task(watch_loop(metrics, LOOP_PROBE_S), name="loop-lag")
        try:
            yield
        finally:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            for h in hubs.values():
                await h.stop()
            if manage_engine:
                task = holder["engine_task"]
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                elif hasattr(engine, "stop"):
                    r = engine.stop()
                    if inspect.isawaitable(r):
                        await r
            sink = getattr(getattr(engine, "config", None), "sink", None)
            if manage_engine and sink is not None and hasattr(sink, "close"):
                # the engine's calibration writer: drain it so a restart recovers all
                await asyncio.get_running_loop().run_in_executor(None, sink.close)
            st = holder["store"]
            if st is not None and store is None and hasattr(st, "close"):
                st.close()

    app = FastAPI(
        title="volcal serve",
        version=settings.version,
        description="Live implied-vol surface of crypto options (read-only API). Units: vols "
        "as fractions, times UTC ISO 8601, t in years, ages and latencies in seconds, "
        "strikes and forwards in USD per coin.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.state.hubs = hubs
    app.state.settings = settings

    # ---- errors: one line of JSON, never a traceback
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(EngineUnavailable)
    async def _engine_down(request: Request, exc: EngineUnavailable) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"no such endpoint: {request.url.path[:80]}"
        return _error(exc.status_code, msg)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return _error(422, f"{loc or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(exc).__name__})")

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )

    def fast_surface(query: bytes) -> bytes | None:
        if not query:
            u = "BTC"  # the endpoint's default
        elif query.startswith(b"underlying=") and query[11:].isalnum():
            u = query[11:].decode().upper()
        else:
            return None
        if u not in settings.underlyings or engine_failure():
            return None
        pre = engine.surface_bytes(u)
        return bytes(pre) if pre is not None else None

    app.add_middleware(
        _Guard,
        settings=settings,
        limiter=limiter,
        metrics=metrics,
        # behind CORS the response needs its headers: the app's own path then
        fast_surface=fast_surface if remote and not settings.cors_origins else None,
    )

    # ---- state access
    def underlying_of(u: str) -> str:
        uu = u.strip().upper()
        if uu not in settings.underlyings:
            raise ApiError(
                404, f"unknown underlying {u[:20]!r}; served: {', '.join(settings.underlyings)}"
            )
        return uu

    def raw_state(u: str) -> Any:
        try:
            return engine.state(u)
        except (KeyError, ValueError):  # not started yet / not followed
            return None

    def engine_failure() -> str | None:
        return getattr(engine, "failure", None) if remote else None

    def state_of(u: str) -> dict[str, Any]:
        failed = engine_failure()
        if failed:
            raise ApiError(503, f"engine unavailable: {failed}")
        d = state_dict(raw_state(u))
        if not d or not d.get("expiries"):
            raise ApiError(503, f"no surface yet for {u} (starting)")
        return d

    def surface_body(u: str) -> bytes:
        # re-encoded when the engine published something, at most every MIN_REBUILD_S
        # (so a burst of patches costs one encoding, not one per request) and at least
        # every CACHE_S (age_s moves); the websocket is the low-latency path
        if remote:  # published already encoded by the engine process
            failed = engine_failure()
            if failed:
                raise ApiError(503, f"engine unavailable: {failed}")
            pre = engine.surface_bytes(u)
            if pre is None:
                raise ApiError(503, f"no surface yet for {u} (starting)")
            return bytes(pre)
        hub = hubs.get(u)
        now = time.monotonic()
        hit = cache.get(u)
        if hit is not None and hub is not None:
            updates, built, body = hit
            fresh = now - built < CACHE_S
            if fresh and (updates == hub.updates or now - built < MIN_REBUILD_S):
                return body
        d = state_dict(raw_state(u))
        if not d or not d.get("expiries"):
            raise ApiError(503, f"no surface yet for {u} (starting)")
        body = bytes(JSONResponse({"underlying": u, **d}).body)
        cache[u] = (hub.updates if hub is not None else -1, now, body)
        return body

    def find_expiry(d: dict[str, Any], text: str) -> dict[str, Any]:
        rows = d.get("expiries") or []
        for r in rows:
            if str(r.get("expiry")) == text:
                return r
        want = _parse_expiry(text)
        if want is not None:
            for r in rows:
                got = _parse_expiry(str(r.get("expiry")))
                if got is not None and abs((got - want).total_seconds()) < 1.0:
                    return r
        known = ", ".join(str(r.get("expiry"))[:10] for r in rows[:8])
        raise ApiError(404, f"unknown expiry {text[:40]!r}; known: {known}")

    async def live_quotes(u: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        fn = getattr(engine, "quotes", None)
        if fn is not None:
            return list(await _aw(fn(u, str(row.get("expiry")))))
        chain_fn = getattr(engine, "chain", None)
        if chain_fn is None:
            return []
        when = _parse_expiry(str(row.get("expiry")))
        if when is None:
            return []
        return chain_quotes(await _aw(chain_fn(u, [when.timestamp()])))

    def bounded(name: str, values: list[str]) -> list[str]:
        if len(values) > settings.max_list:
            raise ApiError(422, f"too many {name} values: {len(values)} > {settings.max_list}")
        return values

    # ---- read API
    @app.get("/health", response_model=HealthOut, summary="Service health and staleness")
    async def health() -> dict[str, Any]:
        per: dict[str, Any] = {}
        worst, worst_age = "ok", None
        rank = {"ok": 0, "stale": 1, "starting": 2, "error": 3}
        for u in settings.underlyings:
            if remote:  # the small header of the published state, no decoding
                pub = engine.published(u)
                d = dict(pub.meta, expiries=pub.meta.get("n_expiries")) if pub else None
            else:
                d = state_dict(raw_state(u))
            if not d or not d.get("expiries"):
                s, age = "starting", None
            else:
                s = "stale" if d.get("stale") else "ok"
                age = finite_or_none(d.get("age_s"))
            per[u] = {
                "status": s,
                "age_s": age,
                "snapshot_time": (d or {}).get("snapshot_time"),
                "recovered": "recovered" in ((d or {}).get("reasons") or ()),
            }
            if rank[s] > rank[worst]:
                worst = s
            if age is not None and (worst_age is None or age > worst_age):
                worst_age = age
        extra: dict[str, Any] = {}
        if remote:
            extra["engine"] = engine.health()
            if engine_failure():
                worst = "error"
        return {
            **extra,
            "status": worst,
            "age_s": worst_age,
            "version": settings.version,
            "source": settings.source,
            "underlyings": per,
            "uptime_s": time.time() - started,
        }

    @app.get(
        "/v1/surface",
        response_model=SurfaceOut,
        responses=_ERRORS,
        summary="The live surface: every expiry's fit and the surface model",
    )
    async def surface(
        underlying: str = Query("BTC", max_length=16, description="Underlying coin, e.g. BTC."),
        fit: str = Query("surface", pattern=FIT_PATTERN, description=FIT_DOC),
    ) -> Response:
        u = underlying_of(underlying)
        if fit == "free":  # (rare) decoded and re-encoded with the free slices on top
            d = state_of(u)
            d = {**d, "expiries": [free_view(r) for r in d.get("expiries") or []]}
            return JSONResponse({"underlying": u, **d})
        return Response(surface_body(u), media_type="application/json")

    @app.get(
        "/v1/iv",
        response_model=IvOut,
        responses=_ERRORS,
        summary="Implied vols of one expiry's fitted smile at strikes or deltas",
    )
    async def iv(
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
        expiry: str = Query(
            ...,
            max_length=40,
            description="Expiry: UTC ISO 8601 instant, a "
            "date (08:00 UTC) or Deribit's 27JUN25 form.",
        ),
        strike: Annotated[
            list[str] | None, Query(description="Strikes in USD per coin (repeatable).")
        ] = None,
        delta: Annotated[
            list[str] | None,
            Query(
                description="Deltas as fractions: 0.25 = 25-delta call, -0.25 = 25-delta put "
                "(repeatable)."
            ),
        ] = None,
        fit: str = Query("surface", pattern=FIT_PATTERN, description=FIT_DOC),
        delta_convention: str = Query(
            "forward",
            pattern="^(premium_adjusted|forward)$",
            description="Delta convention of delta= (no unit): 'forward' (undiscounted "
            "N(d1), the convention of the served rr25/bf25) or 'premium_adjusted' (the "
            "coin delta of Deribit's inverse options).",
        ),
    ) -> dict[str, Any]:
        import numpy as np

        u = underlying_of(underlying)
        strike = bounded("strike", strike or [])
        delta = bounded("delta", delta or [])
        if not strike and not delta:
            raise ApiError(422, "give at least one strike= or delta=")
        d = state_of(u)
        row = find_expiry(d, expiry)
        if fit == "free":
            row = free_view(row)
        t, fwd = finite_or_none(row.get("t")), finite_or_none(row.get("forward"))
        if t is None or t <= 0 or fwd is None or fwd <= 0:
            raise ApiError(422, f"expiry {row.get('expiry')} has no forward or time to expiry")
        points: list[dict[str, Any]] = []
        ks = []
        for s in strike:
            x = _number("strike", s)
            if x <= 0:
                raise ApiError(422, f"strike must be > 0, got {s[:40]!r}")
            ks.append(math.log(x / fwd))
        if ks:
            vols = smile_iv(row, np.asarray(ks))
            for kk, v in zip(ks, vols, strict=True):
                points.append({"strike": fwd * math.exp(kk), "k": kk, "iv": finite_or_none(v)})
        if delta:
            from volcal.calibration.delta_pillars import strikes_for_delta

            levels = [_number("delta", s) for s in delta]
            for x in levels:
                if not 0.0 < abs(x) < 1.0:
                    raise ApiError(422, f"delta must lie in (-1, 1) and not be 0, got {x}")
            atm = finite_or_none(row.get("atm_vol")) or float(smile_iv(row, np.zeros(1))[0])
            lev = np.abs(np.asarray(levels))
            call = np.asarray(levels) > 0

            def f(k: Any, tt: Any) -> Any:
                return smile_iv(row, k)

            kd = strikes_for_delta(f, t, lev, call, atm, delta_convention)
            vols = smile_iv(row, np.nan_to_num(kd))
            for x, kk, v in zip(levels, kd, vols, strict=True):
                ok = bool(np.isfinite(kk))
                points.append(
                    {
                        "strike": fwd * math.exp(kk) if ok else None,
                        "k": float(kk) if ok else None,
                        "iv": finite_or_none(v) if ok else None,
                        "delta": x,
                    }
                )
        return {
            "underlying": u,
            "expiry": str(row.get("expiry")),
            "t": t,
            "forward": fwd,
            "model": str(row.get("model")),
            "fit": str(row.get("fit") or "free"),
            "fit_reason": row.get("fit_reason"),
            "delta_convention": delta_convention,
            "snapshot_time": d.get("snapshot_time"),
            "stale": bool(d.get("stale")),
            "points": points,
        }

    @app.get(
        "/v1/params/{model}",
        response_model=ParamsOut,
        responses=_ERRORS,
        summary="Parameters of one model: per expiry (svi: the free slices; svi_surface: the "
        "arbitrage-free surface's slices, or its status entry when it has none) or of the "
        "surface (essvi, heston, ...)",
    )
    async def params(
        model: str,
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
    ) -> dict[str, Any]:
        u = underlying_of(underlying)
        d = state_of(u)
        name = model.strip().lower()[:20]
        rows = d.get("expiries") or []
        if name == "svi":  # the free slices (the rows carry the arbitrage-free ones first)
            rows = [free_view(r) for r in rows]
        per = [
            {
                "expiry": r.get("expiry"),
                "t": r.get("t"),
                "params": r.get("params"),
                "status": r.get("status"),
            }
            for r in rows
            if str(r.get("model") or "").lower() == name
        ]
        surf = d.get("surface") or {}
        models = surf.get("models", surf) if isinstance(surf, dict) else {}
        if per:  # per-expiry models: svi (free slices), svi_surface (its slices)
            return {
                "underlying": u,
                "model": name,
                "snapshot_time": d.get("snapshot_time"),
                "params": per,
            }
        if isinstance(models, dict) and name in models:
            return {
                "underlying": u,
                "model": name,
                "snapshot_time": d.get("snapshot_time"),
                "params": models[name],
            }
        known = sorted(
            {str(r.get("model")) for r in rows}
            | {str(r.get("model")) for r in d.get("expiries") or []}
            | set(models or {})
        )
        raise ApiError(404, f"unknown model {model[:20]!r}; known: {', '.join(known)}")

    @app.get(
        "/v1/quality",
        response_model=QualityOut,
        responses=_ERRORS,
        summary="Integrity-guard counts and the quotes held out, with reasons",
    )
    async def quality(
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
    ) -> dict[str, Any]:
        u = underlying_of(underlying)
        d = state_of(u)
        flagged = list(d.get("flagged") or [])
        fn = getattr(engine, "flagged", None)
        if fn is not None:
            flagged = [
                {"instrument": k, "reason": v} for k, v in sorted((await _aw(fn(u))).items())
            ]
        return {
            "underlying": u,
            "snapshot_time": d.get("snapshot_time"),
            "stale": bool(d.get("stale")),
            "guards": d.get("guards") or {},
            "active": list(d.get("reasons") or []),
            "n_flagged": len(flagged),
            "flagged": flagged[: settings.max_flagged],
        }

    @app.get(
        "/v1/history",
        response_model=HistoryOut,
        responses=_ERRORS,
        summary="Stored calibrations from the calibration store",
    )
    async def history(
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
        model: str | None = Query(
            None,
            max_length=20,
            pattern="^[A-Za-z0-9_]+$",
            description="Model name filter (no unit).",
        ),
        since: str | None = Query(None, max_length=40, description="Lower bound, UTC ISO 8601."),
        limit: int = Query(1000, ge=1, le=10_000, description="Most rows returned (count)."),
    ) -> dict[str, Any]:
        u = underlying_of(underlying)
        since_dt = None
        if since is not None:
            since_dt = _parse_expiry(since)
            if since_dt is None:
                raise ApiError(422, f"since must be a UTC ISO 8601 time, got {since[:40]!r}")
        st = open_store()
        if st is None:
            raise ApiError(404, "no calibration store configured (start with --store FILE)")
        loop = asyncio.get_running_loop()
        df = await loop.run_in_executor(
            None, lambda: st.calibrations(model=model, underlying=u, since=since_dt)
        )
        df = df.tail(limit)
        rows = _frame_rows(df)
        return {
            "underlying": u,
            "model": model,
            "since": since_dt.isoformat() if since_dt else None,
            "n": len(rows),
            "rows": rows,
        }

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus text exposition of engine and server metrics",
    )
    async def prom() -> PlainTextResponse:
        metrics.ws_clients = sum(len(h.clients) for h in hubs.values())
        return PlainTextResponse(
            render_prometheus(await _aw(engine.metrics()), metrics),
            media_type="text/plain; version=0.0.4",
        )

    # ---- admin (bearer token; off without one)
    def admin_check(request: Request) -> None:
        token = holder["token"]
        if token is None:
            raise ApiError(403, "admin endpoints are off (no token configured)")
        if not bearer_ok(request.headers.get("authorization"), token):
            raise ApiError(401, "missing or wrong bearer token")

    @app.post(
        "/v1/admin/recalibrate",
        responses=_ERRORS,
        summary="Recalibrate every expiry now (bearer token)",
    )
    async def recalibrate(
        request: Request,
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
    ) -> dict[str, Any]:
        admin_check(request)
        await request.body()
        u = underlying_of(underlying)
        fn = getattr(engine, "recalibrate", None)
        if fn is None:
            raise ApiError(501, "this engine cannot recalibrate on demand")
        r = await _aw(fn(u))
        return {"ok": True, "underlying": u, "result": r if isinstance(r, dict | int) else None}

    @app.post(
        "/v1/admin/reload",
        responses=_ERRORS,
        summary="Reload the engine's configuration and source (bearer token)",
    )
    async def reload(request: Request) -> dict[str, Any]:
        admin_check(request)
        await request.body()
        done = []
        if settings.token_file:  # token rotation: re-read the operator's token file
            from volcal.serve.settings import load_token

            try:
                new = load_token(settings.token_file, env={})
            except ValueError as exc:
                raise ApiError(500, f"token file: {exc}") from None
            if new is None:
                raise ApiError(500, "token file is empty; kept the current token")
            holder["token"] = new
            done.append("token")
        if settings.store_path and store is None:  # reopen the store (e.g. replaced)
            st = holder["store"]
            if st is not None and hasattr(st, "close"):
                st.close()
            holder["store"] = None
            await asyncio.get_running_loop().run_in_executor(None, open_store)
            done.append("store")
        fn = getattr(engine, "reload", None)
        if fn is not None:
            r = fn()
            if inspect.isawaitable(r):
                await r
            done.append("engine")
        if not done:
            raise ApiError(501, "nothing to reload (no token file, no store, engine has no reload)")
        cache.clear()
        return {"ok": True, "reloaded": done}

    # ---- websocket
    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket, underlying: str = "BTC") -> None:
        u = underlying.strip().upper()[:16]
        if u not in hubs:  # accepted, then closed with the reason (a 403 would say nothing)
            await ws.accept()
            await ws.close(code=1008, reason=f"unknown underlying {u}")
            return
        if sum(len(h.clients) for h in hubs.values()) >= settings.ws_max_clients:
            await ws.close(code=1013, reason="too many clients")
            metrics.drop_ws("max_clients")
            return
        await ws.accept()
        metrics.ws_connected += 1
        hub = hubs[u]
        client = hub.add(ws.send_text)

        async def reader() -> None:
            with contextlib.suppress(WebSocketDisconnect, Exception):
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return
                    # clients have nothing to say; a flood is ignored but bounded by ASGI

        rtask = asyncio.create_task(reader())
        dtask = asyncio.create_task(client.drain(settings.ws_send_timeout_s))
        try:
            done, _ = await asyncio.wait({rtask, dtask}, return_when=asyncio.FIRST_COMPLETED)
            reason = dtask.result() if dtask in done else "disconnected"
        finally:
            hub.remove(client)
            for t in (rtask, dtask):
                t.cancel()
            for t in (rtask, dtask):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if reason == "send_timeout":
            metrics.drop_ws("slow_client")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1013, reason="client too slow"), 1.0)
        elif reason != "disconnected":
            with contextlib.suppress(Exception):
                await ws.close()

    # ---- live page and its one static file
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        from volcal.serve.page import render_page

        return HTMLResponse(render_page(settings))

    plotly_bytes: list[bytes] = []

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> Response:
        if not plotly_bytes:
            plotly_bytes.append(plotly_path.read_bytes())
        return Response(
            plotly_bytes[0],
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get(
        "/v1/quotes",
        include_in_schema=True,
        responses=_ERRORS,
        summary="Live quotes of one expiry (bid/ask/mark implied vols, fractions)",
    )
    async def quotes(
        underlying: str = Query("BTC", max_length=16, description="Underlying coin."),
        expiry: str = Query(..., max_length=40, description="Expiry (as for /v1/iv)."),
    ) -> dict[str, Any]:
        u = underlying_of(underlying)
        d = state_of(u)
        row = find_expiry(d, expiry)
        q = await live_quotes(u, row)
        fit = fit_free = None
        try:
            import numpy as np

            fwd, t = float(row["forward"]), float(row["t"])
            strikes = [x["strike"] for x in q if x.get("strike")]
            if len(strikes) >= 2:  # the fit over the quoted strikes
                lo, hi = math.log(min(strikes) / fwd), math.log(max(strikes) / fwd)
            else:
                half = 4.0 * float(row.get("atm_vol") or 0.6) * math.sqrt(t)
                lo, hi = -half, half
            k = np.unique(np.concatenate([np.linspace(lo, hi, 61), [0.0]]))
            fit = {
                "strike": (fwd * np.exp(k)).tolist(),
                "iv": [finite_or_none(v) for v in smile_iv(row, k)],
                "model": str(row.get("model")),
                "fit": str(row.get("fit") or "free"),
            }
            free = free_view(row)
            if free is not row:  # the free slice next to the arbitrage-free one
                fit_free = {
                    "strike": fit["strike"],
                    "iv": [finite_or_none(v) for v in smile_iv(free, k)],
                    "model": str(free.get("model")),
                    "fit": "free",
                }
        except (ApiError, KeyError, TypeError, ValueError):
            fit = None
        return {
            "underlying": u,
            "expiry": str(row.get("expiry")),
            "forward": row.get("forward"),
            "quotes": q or [],
            "fit": fit,
            "fit_free": fit_free,
        }

    return app


async def watch_loop(metrics: ServerMetrics, every_s: float) -> None:
    """Sample the event loop's lag into ``metrics.loop_lag`` until cancelled: how much
    later than asked a ``sleep(every_s)`` returns (a blocked or CPU-starved loop)."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(every_s)
        metrics.loop_lag.observe(max(time.perf_counter() - t0 - every_s, 0.0))


async def _aw(x: Any) -> Any:
    """``x``, awaited when it is awaitable (engine methods may be sync or coroutines)."""
    return await x if inspect.isawaitable(x) else x


def _frame_rows(df: Any) -> list[dict[str, Any]]:
    """A DataFrame as JSON-safe rows: timestamps as UTC ISO 8601, NaN as null."""
    import json

    text = df.to_json(orient="records", date_format="iso", date_unit="ms")
    return list(json.loads(text))
