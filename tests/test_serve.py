"""volcal serve over an in-test engine double: every endpoint, the websocket, tokens,
bounds, bad parameters, rate limit, CORS, staleness (the real engine on a replay of real
snapshots is in test_serve_e2e.py). Each test starts the real uvicorn server on an
ephemeral 127.0.0.1 port and stops it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import socket
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_sync = pytest.importorskip("websockets.sync.client")

from serve_helpers import FakeEngine, recv_message  # noqa: E402

from volcal.calibration.delta_pillars import delta_of  # noqa: E402
from volcal.errors import ParameterError, VolcalWarning  # noqa: E402
from volcal.models.svi import svi_total_variance  # noqa: E402
from volcal.serve import ServerThread, ServeSettings, create_app, load_token  # noqa: E402
from volcal.serve.schemas import IvOut, SurfaceOut  # noqa: E402
from volcal.serve.security import RateLimiter, bearer_ok  # noqa: E402

TOKEN = "s3cret-token-0123456789"


def _server(engine: Any, **kw: Any) -> ServerThread:
    settings = ServeSettings(underlyings=engine.underlyings, **kw)
    return ServerThread(create_app(engine, settings)).start()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeEngine, ServerThread]]:
    eng = FakeEngine(("BTC", "ETH"))
    srv = _server(eng, token=TOKEN, rate_limit=0, ws_send_timeout_s=0.5, status_interval_s=0.2)
    yield eng, srv
    srv.stop()
    assert eng.stopped  # the app stops the engine it started


def _one_line_error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    assert "Traceback" not in r.text
    return str(body["error"])


# --------------------------------------------------------------------------- read API
def test_health_and_surface(served: tuple[FakeEngine, ServerThread]) -> None:
    eng, srv = served
    assert eng.started
    h = httpx.get(srv.url + "/health").json()
    assert h["status"] == "ok" and h["underlyings"]["ETH"]["status"] == "ok"
    r = httpx.get(srv.url + "/v1/surface", params={"underlying": "eth"})
    assert r.status_code == 200
    body = SurfaceOut.model_validate(r.json())
    want = eng.state("ETH").to_dict()
    assert body.underlying == "ETH" and body.snapshot_time == want["snapshot_time"]
    assert [e.atm_vol for e in body.expiries] == [e["atm_vol"] for e in want["expiries"]]
    assert body.expiries[0].params == want["expiries"][0]["params"]


def test_iv_by_strike_and_delta(served: tuple[FakeEngine, ServerThread]) -> None:
    eng, srv = served
    row = eng.state("BTC").to_dict()["expiries"][1]
    f, t, p = row["forward"], row["t"], row["params"]
    strikes = [80_000, f, 125_000]
    for expiry in (row["expiry"], row["expiry"][:10], "27FEB26"):  # three spellings
        r = httpx.get(srv.url + "/v1/iv", params={"expiry": expiry, "strike": strikes})
        body = IvOut.model_validate(r.json())
        assert body.expiry == row["expiry"]
        k = np.log(np.asarray(strikes) / f)
        want = np.sqrt(svi_total_variance(k, p["a"], p["b"], p["rho"], p["m"], p["sigma"]) / t)
        got = [pt.iv for pt in body.points]
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert math.isclose(got[1], row["atm_vol"], rel_tol=1e-12)  # ATM by construction
    for conv in ("forward", "premium_adjusted"):
        r = httpx.get(
            srv.url + "/v1/iv",
            params={"expiry": row["expiry"], "delta": ["0.25", "-0.25"], "delta_convention": conv},
        )
        pts = r.json()["points"]
        for pt in pts:  # the served strike really has the asked delta
            d = delta_of(pt["k"], pt["iv"], t, pt["delta"] > 0, conv)
            assert abs(float(d) - pt["delta"]) < 1e-9
        assert pts[0]["strike"] > f > pts[1]["strike"]


def test_params_quality_quotes(served: tuple[FakeEngine, ServerThread]) -> None:
    srv = served[1]
    r = httpx.get(srv.url + "/v1/params/svi").json()
    assert len(r["params"]) == 3 and r["params"][0]["params"]["b"] == 0.05
    assert httpx.get(srv.url + "/v1/params/essvi").json()["params"] == {"rho": -0.1, "phi": 0.4}
    q = httpx.get(srv.url + "/v1/quality").json()
    assert q["guards"] == {"crossed": 2, "outlier_held": 1}
    assert q["flagged"][0]["reason"] == "crossed"
    qq = httpx.get(srv.url + "/v1/quotes", params={"expiry": "2026-01-30"}).json()
    assert len(qq["quotes"]) == 5 and len(qq["fit"]["strike"]) >= 61
    i = int(np.argmin(np.abs(np.log(np.asarray(qq["fit"]["strike"]) / qq["forward"]))))
    assert math.isclose(qq["fit"]["iv"][i], 0.50, rel_tol=1e-12)


def test_history_without_store_is_404(served: tuple[FakeEngine, ServerThread]) -> None:
    _one_line_error(httpx.get(served[1].url + "/v1/history"), 404)


def test_metrics_prometheus_text(served: tuple[FakeEngine, ServerThread]) -> None:
    srv = served[1]
    httpx.get(srv.url + "/v1/surface")
    r = httpx.get(srv.url + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'volcal_engine_messages_dropped{reason="malformed"} 1' in text
    assert "volcal_engine_messages_received 10" in text
    assert 'volcal_http_request_duration_seconds_bucket{route="/v1/surface",le="+Inf"}' in text
    assert "# TYPE volcal_ws_clients gauge" in text
    assert "# TYPE volcal_server_loop_lag_seconds histogram" in text
    for line in text.splitlines():  # every sample line: name{labels} number
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            float(value)
            assert name_labels.split("{")[0].replace("_", "").isalnum()


def test_loop_lag_metric_sees_a_blocked_loop() -> None:
    from volcal.serve.app import watch_loop
    from volcal.serve.metrics import ServerMetrics

    async def run(m: ServerMetrics) -> None:
        task = asyncio.create_task(watch_loop(m, 0.02))
        await asyncio.sleep(0.1)
        time.sleep(0.15)  # a handler that blocks the loop
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    m = ServerMetrics()
    asyncio.run(run(m))
    h = m.loop_lag
    assert h.n >= 3
    slow = h.n - sum(c for b, c in zip(h.bounds, h.counts, strict=False) if b <= 0.1)
    assert slow >= 1  # the 150 ms block, in a bucket above 100 ms
    assert h.total >= 0.1
    text = "\n".join(m.lines())
    assert f'volcal_server_loop_lag_seconds_bucket{{le="+Inf"}} {h.n}' in text


def test_openapi_every_field_has_a_description_with_units(
    served: tuple[FakeEngine, ServerThread],
) -> None:
    spec = httpx.get(served[1].url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    checked = 0
    for name in ("SurfaceOut", "ExpiryOut", "IvOut", "IvPoint", "HealthOut", "QualityOut"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
            checked += 1
    assert checked > 30
    desc = schemas["ExpiryOut"]["properties"]
    assert "years" in desc["t"]["description"] and "fraction" in desc["atm_vol"]["description"]
    assert "UTC" in desc["expiry"]["description"]
    for op in spec["paths"]["/v1/iv"]["get"]["parameters"]:
        assert op.get("description"), op["name"]


def test_page_and_plotly_served_locally(served: tuple[FakeEngine, ServerThread]) -> None:
    srv = served[1]
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="/static/plotly.min.js">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no remote
    js = httpx.get(srv.url + "/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert b"plotly" in js.content[:2000].lower()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/v1/surface", {"underlying": "XRP"}, 404, "unknown underlying"),
        ("/v1/iv", {"expiry": "2031-01-01", "strike": "1"}, 404, "unknown expiry"),
        ("/v1/iv", {"expiry": "nonsense", "strike": "1"}, 404, "unknown expiry"),
        ("/v1/iv", {"expiry": "2026-01-30", "strike": "abc"}, 422, "strike must be a number"),
        ("/v1/iv", {"expiry": "2026-01-30", "strike": "nan"}, 422, "finite"),
        ("/v1/iv", {"expiry": "2026-01-30", "strike": "-5"}, 422, "> 0"),
        ("/v1/iv", {"expiry": "2026-01-30", "strike": ["1"] * 65}, 422, "too many strike"),
        ("/v1/iv", {"expiry": "2026-01-30", "delta": "1.5"}, 422, "delta must lie"),
        ("/v1/iv", {"expiry": "2026-01-30"}, 422, "at least one"),
        ("/v1/iv", {"strike": "1"}, 422, "expiry"),
        ("/v1/iv", {"expiry": "2026-01-30", "strike": "1", "delta_convention": "x"}, 422, "delta_convention"),
        ("/v1/params/heston", {}, 404, "unknown model"),
        ("/v1/history", {"model": "svi;drop"}, 422, "model"),
        ("/v1/history", {"limit": "0"}, 422, "limit"),
        ("/v1/nothing", {}, 404, "no such endpoint"),
        ("/v1/surface", {"underlying": "B" * 40}, 422, "underlying"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_json(
    served: tuple[FakeEngine, ServerThread], path: str, params: dict[str, Any], status: int,
    needle: str,
) -> None:  # fmt: skip
    msg = _one_line_error(httpx.get(served[1].url + path, params=params), status)
    assert needle in msg


def test_bounded_query_and_body(served: tuple[FakeEngine, ServerThread]) -> None:
    srv = served[1]
    long_q = "&".join(["strike=1"] * 1000)
    _one_line_error(httpx.get(f"{srv.url}/v1/iv?expiry=2026-01-30&{long_q}"), 413)
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    _one_line_error(
        httpx.post(srv.url + "/v1/admin/reload", content=b"x" * 20_000, headers=hdr), 413
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"y" * 1000

    _one_line_error(
        httpx.post(srv.url + "/v1/admin/recalibrate", content=chunks(), headers=hdr), 413
    )
    assert httpx.post(srv.url + "/v1/surface").status_code == 405  # read-only


# --------------------------------------------------------------------------- tokens
def test_admin_token_rules(served: tuple[FakeEngine, ServerThread]) -> None:
    eng, srv = served
    url = srv.url + "/v1/admin/recalibrate"
    _one_line_error(httpx.post(url), 401)
    _one_line_error(httpx.post(url, headers={"Authorization": "Bearer wrong"}), 401)
    _one_line_error(httpx.post(url, headers={"Authorization": TOKEN}), 401)  # no scheme
    _one_line_error(httpx.post(url, headers={"Authorization": f"Basic {TOKEN}"}), 401)
    r = httpx.post(url, params={"underlying": "ETH"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["result"] == {"expiries": 3}
    assert eng.recalibrations == ["ETH"]
    # the double has no reload(): the endpoint says so instead of pretending
    r = httpx.post(srv.url + "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    _one_line_error(r, 501)


def test_admin_off_without_token() -> None:
    eng = FakeEngine()
    with ServerThread(create_app(eng, ServeSettings())) as srv:
        r = httpx.post(srv.url + "/v1/admin/recalibrate", headers={"Authorization": "Bearer x"})
        assert "off" in _one_line_error(r, 403)
    assert eng.recalibrations == []


def test_token_loading(tmp_path: Any) -> None:
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert load_token(f, env={}) == TOKEN
    assert load_token(None, env={"VOLCAL_SERVE_TOKEN_FILE": str(f)}) == TOKEN
    assert load_token(None, env={"VOLCAL_SERVE_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, env={}) is None
    with pytest.raises(ParameterError, match="at least 16"):
        load_token(None, env={"VOLCAL_SERVE_TOKEN": "short"})
    with pytest.raises(ParameterError, match="cannot read"):
        load_token(tmp_path / "missing", env={})
    assert bearer_ok(f"Bearer {TOKEN}", TOKEN) and not bearer_ok(f"Bearer {TOKEN}x", TOKEN)
    assert not bearer_ok(f"Bearer {TOKEN}", None) and not bearer_ok(None, TOKEN)


# --------------------------------------------------------------------------- limits
def test_rate_limit_per_client() -> None:
    with _server(FakeEngine(), rate_limit=0.5, rate_burst=5) as srv:
        codes = [httpx.get(srv.url + "/health").status_code for _ in range(12)]
        assert codes[:5] == [200] * 5 and codes.count(429) >= 6
        r = httpx.get(srv.url + "/health")
        assert int(r.headers["retry-after"]) >= 1
        _one_line_error(r, 429)
    clock = [0.0]
    lim = RateLimiter(2.0, 2, max_clients=3, clock=lambda: clock[0])
    assert [lim.allow("a")[0] for _ in range(3)] == [True, True, False]
    clock[0] = 0.5  # one token back after 1/rate seconds
    assert lim.allow("a")[0] and not lim.allow("a")[0]
    for c in "bcdef":
        lim.allow(c)
    assert len(lim) == 3  # bounded table of clients


def test_cors_off_by_default_and_on_when_configured(
    served: tuple[FakeEngine, ServerThread],
) -> None:
    h = {"Origin": "https://example.org"}
    r = httpx.get(served[1].url + "/v1/surface", headers=h)
    assert "access-control-allow-origin" not in r.headers
    with _server(FakeEngine(), cors_origins=("https://example.org",)) as srv:
        r = httpx.get(srv.url + "/v1/surface", headers=h)
        assert r.headers["access-control-allow-origin"] == "https://example.org"
        r = httpx.get(srv.url + "/v1/surface", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_bind_all_interfaces_warns() -> None:
    from volcal.serve.server import bind_socket

    with pytest.warns(VolcalWarning, match="reachable from every network"):
        s = bind_socket("0.0.0.0", 0)
    s.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bind_socket("127.0.0.1", 0).close()
    with pytest.raises(ParameterError, match="port"):
        bind_socket("127.0.0.1", 70000)


# --------------------------------------------------------------------------- websocket
def _recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    return recv_message(ws, timeout)


def _recv_type(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        m = _recv(ws, max(deadline - time.monotonic(), 0.01))
        if m["type"] == kind:
            return m


def test_ws_snapshot_then_patches(served: tuple[FakeEngine, ServerThread]) -> None:
    eng, srv = served
    with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC") as ws:
        first = _recv(ws)
        assert first["type"] == "snapshot"
        assert first["state"]["expiries"] == eng.state("BTC").to_dict()["expiries"]
        eng.set_atm("BTC", 2, 0.61)
        m = _recv_type(ws, "patch")
        assert m["patch"]["expiry"] == "2026-03-27T08:00:00+00:00"
        assert m["patch"]["atm_vol"] == 0.61 and m["tick_wall_time"] <= time.time()
        st = _recv_type(ws, "status")  # guards and latency ride on the status message
        assert st["guards"]["crossed"] == 2 and st["snapshot_time"]
        eng.set_atm("ETH", 0, 0.7)  # another underlying: not sent here
        eng.set_atm("BTC", 0, 0.52)
        m = _recv_type(ws, "patch")
        assert m["patch"]["atm_vol"] == 0.52
    assert httpx.get(srv.url + "/v1/surface").json()["expiries"][2]["atm_vol"] == 0.61


@pytest.mark.parametrize("compress", [False, True])
def test_ws_compression_only_when_asked(compress: bool) -> None:
    """permessage-deflate is off by default (the server would compress each message
    once per client) and negotiated with ``ws_compress=True``."""
    app = create_app(FakeEngine(), ServeSettings(ws_compress=compress))
    with ServerThread(app) as srv:
        with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC") as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert _recv(ws)["type"] == "snapshot"
    assert ("permessage-deflate" in ext) is compress


def test_ws_unknown_underlying_is_refused(served: tuple[FakeEngine, ServerThread]) -> None:
    from websockets.exceptions import ConnectionClosed

    with ws_sync.connect(served[1].ws_url + "/v1/stream?underlying=XRP") as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def _ws_clients(srv: ServerThread) -> int:
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith("volcal_ws_clients "):
            return int(line.split()[1])
    raise AssertionError("no ws gauge")


def test_ws_client_that_disconnects_is_removed(served: tuple[FakeEngine, ServerThread]) -> None:
    eng, srv = served
    with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC") as ws:
        _recv(ws)
        assert _ws_clients(srv) == 1
    deadline = time.monotonic() + 5
    while _ws_clients(srv) and time.monotonic() < deadline:
        eng.set_atm("BTC", 1, 0.55)
        time.sleep(0.05)
    assert _ws_clients(srv) == 0


def stuck_client(host: str, port: int, path: str) -> socket.socket:
    """A websocket client that completes the handshake and then never reads (a tiny
    receive buffer, so the server's sends block as they would on a stalled network)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1)
    assert b" 101 " in buf.split(b"\r\n")[0]
    return s


def test_ws_slow_client_is_conflated_then_dropped_and_never_slows_others(
    served: tuple[FakeEngine, ServerThread],
) -> None:
    eng, srv = served
    hub = srv.server.config.app.state.hubs["BTC"]
    slow = stuck_client(srv.host, srv.port, "/v1/stream?underlying=BTC")
    try:
        deadline = time.monotonic() + 5
        while not hub.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        (slow_client,) = hub.clients
        with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC", max_size=None) as fast:
            _recv(fast)
            got: list[float] = []
            t0 = time.monotonic()
            for i in range(60):  # 60 patches of ~300 kB: far more than the socket buffers hold
                eng.set_atm("BTC", i % 3, 0.5 + i / 1000, pad=300_000)
                got.append(_recv_type(fast, "patch")["patch"]["atm_vol"])
            assert got == [0.5 + i / 1000 for i in range(60)]  # every one, in order
            assert time.monotonic() - t0 < 20
            deadline = time.monotonic() + 10
            while slow_client in hub.clients and time.monotonic() < deadline:
                eng.set_atm("BTC", 0, 0.5, pad=300_000)
                _recv_type(fast, "patch")
            text = httpx.get(srv.url + "/metrics").text
            assert 'volcal_ws_dropped_total{reason="slow_client"} 1' in text
            # while it lagged, its backlog stayed bounded (one per key) and was conflated
            assert slow_client.max_pending <= 3 + 2 and slow_client.conflated > 0
            assert slow_client.sent < 30
            assert len(hub.clients) == 1  # only the fast one left
    finally:
        slow.close()


# --------------------------------------------------------------------------- staleness
def test_stale_state_when_source_goes_silent() -> None:
    eng = FakeEngine()
    with _server(eng, status_interval_s=0.1) as srv:
        assert httpx.get(srv.url + "/health").json()["status"] == "ok"
        with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC") as ws:
            _recv(ws)
            eng.set_stale("BTC", 61.0)
            deadline = time.monotonic() + 5
            while True:
                m = _recv_type(ws, "status")
                if m["stale"] or time.monotonic() > deadline:
                    break
            assert m["stale"] and m["age_s"] == 61.0
        h = httpx.get(srv.url + "/health").json()
        assert h["status"] == "stale" and h["age_s"] == 61.0
        s = httpx.get(srv.url + "/v1/surface").json()
        assert s["stale"] and len(s["expiries"]) == 3  # last good surface kept


def test_settings_validation() -> None:
    with pytest.raises(ParameterError):
        ServeSettings(underlyings=())
    with pytest.raises(ParameterError):
        ServeSettings(underlyings=("../etc",))
    with pytest.raises(ParameterError):
        ServeSettings(token="short")
    with pytest.raises(ParameterError):
        ServeSettings(rate_limit=-1)


def test_engine_in_its_own_thread() -> None:
    """engine_thread=True: the app reads published snapshots and gets the engine's
    updates across threads; the engine's methods run in the engine's loop."""
    import sys
    import threading

    before = sys.getswitchinterval()
    eng = FakeEngine()
    app = create_app(eng, ServeSettings(engine_thread=True, status_interval_s=0.1))
    with ServerThread(app) as srv:
        runner = app.state.hubs["BTC"].engine
        assert runner._thread is not threading.current_thread() and runner._thread.is_alive()
        # GIL hand-over to the app's loop every 1 ms while the engine runs ...
        assert sys.getswitchinterval() == pytest.approx(0.001)
        assert eng._loop is runner._loop  # the engine started in the worker's loop
        with ws_sync.connect(srv.ws_url + "/v1/stream?underlying=BTC") as ws:
            assert _recv(ws)["type"] == "snapshot"
            eng.set_atm("BTC", 1, 0.5777)
            assert _recv_type(ws, "patch")["patch"]["atm_vol"] == 0.5777
        deadline = time.monotonic() + 5  # the published state follows within max_age_s
        while httpx.get(srv.url + "/v1/surface").json()["expiries"][1]["atm_vol"] != 0.5777:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "volcal_engine_messages_received 10" in httpx.get(srv.url + "/metrics").text
        assert httpx.get(srv.url + "/v1/quality").json()["guards"]["crossed"] == 2
        r = httpx.get(srv.url + "/v1/quotes", params={"expiry": "2026-01-30"}).json()
        assert len(r["quotes"]) == 5
    assert eng.stopped and not runner._thread.is_alive()
    assert sys.getswitchinterval() == before  # ... and the interpreter's own after it


def test_admin_reload_rotates_the_token_file(tmp_path: Any) -> None:
    f = tmp_path / "token"
    f.write_text(TOKEN)
    settings = ServeSettings(token=load_token(f, env={}), token_file=str(f))
    with ServerThread(create_app(FakeEngine(), settings)) as srv:
        url = srv.url + "/v1/admin/reload"
        new = "rotated-token-9876543210"
        f.write_text(new + "\n")
        _one_line_error(httpx.post(url, headers={"Authorization": f"Bearer {new}"}), 401)
        r = httpx.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["reloaded"] == ["token"]
        _one_line_error(httpx.post(url, headers={"Authorization": f"Bearer {TOKEN}"}), 401)
        assert httpx.post(url, headers={"Authorization": f"Bearer {new}"}).status_code == 200
        f.write_text("short")  # a bad new token is refused and the current one kept
        r = httpx.post(url, headers={"Authorization": f"Bearer {new}"})
        assert "at least 16" in _one_line_error(r, 500)
        assert httpx.post(url, headers={"Authorization": f"Bearer {new}"}).status_code == 500
