"""volcal serve with the engine in its own process (volcal.serve.process): updates
arrive pre-encoded, every endpoint answers from the published state, the engine process
is stopped and joined with the server (and stops by itself when its server goes away),
a crash is reported by /health with its reason while every endpoint keeps answering
JSON, and a server that stops reading makes the engine drop (and count) patches instead
of growing its memory. The engines built in the child are in serve_process_helpers.py."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_sync = pytest.importorskip("websockets.sync.client")

from serve_helpers import recv_message, wait_for  # noqa: E402
from serve_process_helpers import failing, scripted  # noqa: E402

from volcal.errors import ParameterError  # noqa: E402
from volcal.models.svi import svi_total_variance  # noqa: E402
from volcal.serve import ServerThread, ServeSettings, create_app  # noqa: E402
from volcal.serve.ipc import EngineSpec  # noqa: E402
from volcal.serve.process import EngineProcess  # noqa: E402

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _wait(pred: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    return wait_for(pred, timeout, what)


def _gone(pid: int) -> bool:
    """The process no longer exists (not even as a zombie: it was joined)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Served:
    def __init__(self, spec: EngineSpec, **kw: Any) -> None:
        settings = ServeSettings(
            underlyings=("BTC", "ETH"), token=TOKEN, rate_limit=0, status_interval_s=0.2, **kw
        )
        self.app = create_app(spec, settings)
        self.srv = ServerThread(self.app).start()
        self.engine: EngineProcess = self.app.state.hubs["BTC"].engine
        assert isinstance(self.engine, EngineProcess)
        _wait(lambda: self.get("/health").json()["status"] == "ok", what="the engine process")
        assert self.engine.pid is not None and self.engine.pid != os.getpid()
        self.pid = self.engine.pid

    def get(self, path: str, **kw: Any) -> Any:
        return httpx.get(self.srv.url + path, timeout=5.0, **kw)

    def on_loop(self, coro: Any) -> Any:
        """Run a coroutine on the server's event loop (where the EngineProcess lives)."""
        loop = self.engine._loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    def stop(self) -> None:
        self.srv.stop()


@pytest.fixture()
def served() -> Iterator[Served]:
    s = Served(EngineSpec(scripted, {}))
    yield s
    s.stop()
    assert _gone(s.pid)


def _one_line_error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return str(body["error"])


def test_updates_arrive_and_every_endpoint_answers_from_the_published_state(
    served: Served,
) -> None:
    s = served
    h = s.get("/health").json()
    assert h["engine"] == {"mode": "process", "alive": True, "pid": s.pid, "error": None}
    d = s.get("/v1/surface").json()
    assert d["underlying"] == "BTC" and [e["atm_vol"] for e in d["expiries"]] == [0.5, 0.55, 0.58]
    with ws_sync.connect(s.srv.ws_url + "/v1/stream?underlying=BTC") as ws:
        first = recv_message(ws)
        assert first["type"] == "snapshot" and first["state"]["expiries"] == d["expiries"]
        r = httpx.post(s.srv.url + "/v1/admin/recalibrate", headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.json()["result"] == {"published": 1}
        m = recv_message(ws)
        while m["type"] != "patch":
            m = recv_message(ws)
        assert m["patch"]["atm_vol"] == 0.501 and m["tick_wall_time"] <= time.time()
    # the published state follows (re-encoded in the engine process within max_age_s)
    _wait(lambda: s.get("/v1/surface").json()["expiries"][1]["atm_vol"] == 0.501, 10, "state")
    # /v1/iv evaluates the published SVI parameters in the server process
    row = s.get("/v1/surface").json()["expiries"][1]
    r = s.get("/v1/iv", params={"expiry": row["expiry"], "strike": ["80000", "120000"]}).json()
    p, k = row["params"], np.log(np.array([80_000.0, 120_000.0]) / row["forward"])
    want = np.sqrt(svi_total_variance(k, p["a"], p["b"], p["rho"], p["m"], p["sigma"]) / row["t"])
    np.testing.assert_allclose([x["iv"] for x in r["points"]], want, rtol=1e-12)
    assert s.get("/v1/params/svi").json()["params"][1]["params"] == p
    q = s.get("/v1/quality").json()
    assert q["guards"] == {"crossed": 2, "outlier_held": 1} and q["n_flagged"] == 1
    assert len(s.get("/v1/quotes", params={"expiry": "2026-02-27"}).json()["quotes"]) == 5
    assert (
        s.get("/v1/surface", params={"underlying": "ETH"}).json()["expiries"][0]["forward"] == 3000
    )
    # /v1/surface is answered with the published bytes before the app's routing;
    # anything it does not serve as is goes to the app (JSON errors as always)
    assert s.get("/v1/surface", params={"underlying": "eth"}).json()["underlying"] == "ETH"
    _one_line_error(s.get("/v1/surface", params={"underlying": "XRP"}), 404)
    _one_line_error(s.get("/v1/surface", params={"underlying": "../x"}), 404)
    text = s.get("/metrics").text
    assert 'volcal_http_requests_total{route="/v1/surface",method="GET",status="200"}' in text
    assert 'volcal_http_requests_total{route="/v1/surface",method="GET",status="404"} 2' in text
    assert "volcal_engine_messages_received 10" in text  # the engine's own metrics
    assert "volcal_engine_process_up 1" in text and "volcal_engine_ipc_dropped 0" in text


def test_shutdown_joins_the_engine_process() -> None:
    s = Served(EngineSpec(scripted, {}))
    s.stop()
    assert _gone(s.pid)  # stopped and joined: no orphan, no zombie
    assert not [p for p in multiprocessing.active_children() if p.name == "volcal-engine"]


def test_engine_process_stops_by_itself_when_its_server_goes_away() -> None:
    """End of file on its request pipe (the server process died) stops the engine."""
    s = Served(EngineSpec(scripted, {}))
    try:
        s.on_loop(_close_requests(s.engine))
        _wait(lambda: _gone_or_zombie(s.pid), 30, "the engine process to exit")
        h = _wait(lambda: s.get("/health").json()["status"] == "error" and s.get("/health"))
        assert "exit" in h.json()["engine"]["error"]
    finally:
        s.stop()
    assert _gone(s.pid)


async def _close_requests(eng: EngineProcess) -> None:
    eng._requests.close()


def _gone_or_zombie(pid: int) -> bool:
    if _gone(pid):
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_engine_crash_is_reported_and_the_server_keeps_answering(served: Served) -> None:
    s = served
    with ws_sync.connect(s.srv.ws_url + "/v1/stream?underlying=BTC") as ws:
        assert recv_message(ws)["type"] == "snapshot"
        r = httpx.post(s.srv.url + "/v1/admin/reload", headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.json()["reloaded"] == ["engine"]
        h = _wait(lambda: (x := s.get("/health").json())["status"] == "error" and x, 20, "crash")
        assert h["engine"]["alive"] is False and "exit code 3" in h["engine"]["error"]
        m = recv_message(ws)  # the clients are told, with the reason
        while not m.get("error"):
            m = recv_message(ws)
        assert m["type"] == "status" and m["stale"] and "exit code 3" in m["error"]
    t0 = time.monotonic()
    for path in ("/v1/surface", "/v1/iv?expiry=2026-02-27&strike=90000", "/v1/quality",
                 "/v1/params/svi", "/v1/quotes?expiry=2026-02-27"):  # fmt: skip
        assert "exit code 3" in _one_line_error(s.get(path), 503)
    r = httpx.post(s.srv.url + "/v1/admin/recalibrate", headers=AUTH, timeout=5)
    assert "exit code 3" in _one_line_error(r, 503)
    text = s.get("/metrics").text  # still scraped: the last engine metrics, up 0
    assert "volcal_engine_process_up 0" in text and "volcal_http_requests_total" in text
    assert time.monotonic() - t0 < 5  # nothing waited for the dead engine


def test_engine_that_fails_to_build_is_reported_with_its_reason() -> None:
    app = create_app(EngineSpec(failing, {"message": "bad engine config"}), ServeSettings())
    with ServerThread(app) as srv:
        h = _wait(lambda: (x := httpx.get(srv.url + "/health").json())["status"] == "error" and x)
        assert h["engine"]["error"] == "ValueError: bad engine config"
        assert "bad engine config" in _one_line_error(httpx.get(srv.url + "/v1/surface"), 503)
        pid = app.state.hubs["BTC"].engine.proc.pid
    assert _gone(pid)


def test_a_server_that_stops_reading_makes_the_engine_drop_and_count_patches() -> None:
    """400 patches of 20 kB while the server does not read: the engine process keeps at
    most queue_size of them (and 1 MiB in its pipe transport), drops and counts the rest,
    and resyncs the clients with the full state once the server reads again."""
    s = Served(EngineSpec(scripted, {"burst": 400, "pad": 20_000}))
    try:
        with ws_sync.connect(s.srv.ws_url + "/v1/stream?underlying=BTC", max_size=None) as ws:
            assert recv_message(ws)["type"] == "snapshot"

            calls: list[asyncio.Task[Any]] = []

            async def burst_while_paused() -> None:
                s.engine.pause_reading()
                # not awaited here: its reply waits in the pipe like everything else
                calls.append(asyncio.ensure_future(s.engine.call("recalibrate", "BTC")))

            s.on_loop(burst_while_paused())
            time.sleep(1.0)
            s.on_loop(_resume(s.engine))
            last = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the resync: a snapshot with the last value
                m = recv_message(ws, 10)
                if m["type"] == "snapshot" and m["state"]["expiries"][1]["atm_vol"] == 0.9:
                    last = m
                    break
            assert last is not None
        text = s.get("/metrics").text
        got = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if "_ipc_" in ln}
        assert got["volcal_engine_ipc_dropped"] > 0
        assert got["volcal_engine_ipc_sent"] + got["volcal_engine_ipc_dropped"] >= 400
        assert got["volcal_engine_ipc_max_pending"] <= 256 + 8  # bounded, whatever the burst
        assert s.get("/v1/surface").json()["expiries"][1]["atm_vol"] == 0.9
    finally:
        s.stop()
    assert _gone(s.pid)


async def _resume(eng: EngineProcess) -> None:
    eng.resume_reading()


@pytest.mark.data
def test_build_service_engine_modes(snapshot_dir: Path) -> None:
    from volcal.serve.service import build_service
    from volcal.stream import StreamEngine

    snap = [snapshot_dir / "deribit_options_snapshot_20260123T092319Z.csv"]
    svc = build_service(replay=snap, speed=0, models="svi", env={})
    assert isinstance(svc.engine, EngineProcess)  # the default: its own process
    assert svc.engine.config.models == ("svi",) and svc.engine.config.sink is None
    thread = build_service(replay=snap, speed=0, models="svi", env={}, engine_mode="thread")
    assert isinstance(thread.engine, StreamEngine) and thread.settings.engine_thread
    with pytest.raises(ParameterError, match="engine mode"):
        build_service(replay=snap, speed=0, env={}, engine_mode="fork")
    assert math.isfinite(svc.engine.config.stale_feed_s)
    # the engine's own process freezes its start-up heap; an engine on a thread of the
    # caller's process leaves the collector alone
    assert svc.engine.spec.kwargs["config"]["gc_freeze"] is True
    assert thread.engine.config.gc_freeze is False


@pytest.mark.data
def test_ctrl_c_on_the_command_stops_server_and_engine_process(snapshot_dir: Path) -> None:
    """``volcal serve`` (engine process by default) and Ctrl-C sent to its whole process
    group, as a terminal does: both exit, the engine process by the server's stop."""
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    snap = snapshot_dir / "deribit_options_snapshot_20260123T092319Z.csv"
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("VOLCAL_SERVE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "volcal", "serve", "--replay", str(snap), "--speed", "0",
         "--port", str(port), "--models", "svi"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> Any:
            try:
                h = httpx.get(url + "/health", timeout=2).json()
            except httpx.HTTPError:
                return None
            return h if h["status"] in ("ok", "stale") else None

        h = _wait(ready, 90, "the served replay")
        pid = h["engine"]["pid"]
        assert h["engine"]["alive"] and pid not in (None, proc.pid)
        assert httpx.get(url + "/v1/surface").json()["snapshot_time"].startswith("2026-01-23T09:23")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode in (0, 130), err[-2000:]  # 130: the shell convention for Ctrl-C
    assert "Traceback" not in err
    _wait(lambda: _gone(pid), 10, "the engine process to be gone")


def test_outbox_bounds_patches_and_conflates_states() -> None:
    """The engine side of the pipe without a pipe: at most ``limit`` patches wait (the
    rest are dropped, counted, and their underlying marked for a resync); a newer state
    of an underlying replaces the queued one (moved behind the patches it follows) and
    keeps its snapshot flag; replies are never dropped."""
    from volcal.serve.ipc import Published, status_fragment
    from volcal.serve.process import _Outbox

    box = _Outbox(conn=None, limit=3)
    box.state("BTC", ("state", "BTC", 1, {}, b"{}", "", True))
    for i in range(5):
        box.patch("BTC", ("patch", "BTC", "expiry:x", f'{{"i":{i}}}', None))
    box.control(("reply", 7, True, None))
    box.state("BTC", ("state", "BTC", 2, {}, b"{}", "", False))
    assert [m[0] for m in box.items] == ["patch"] * 3 + ["reply", "state"]
    assert [m[3] for m in box.items][:3] == ['{"i":0}', '{"i":1}', '{"i":2}']
    assert box.items[-1][2] == 2  # the newer state, behind the patches
    assert box.items[-1][6] is True  # the snapshot flag of the replaced state is kept
    c = box.counters()
    assert c["dropped"] == 2 and c["state_conflated"] == 1 and c["pending"] == 5
    assert box.take_resync() == {"BTC"} and box.take_resync() == set()
    pub = Published("BTC", 3, {"seq": 9, "snapshot_time": "t", "stale": False}, b"{}", "", 0.0)
    assert pub.header(9) + "}" == (
        '{"underlying":"BTC","seq":9,"snapshot_time":"t","stale":false,"age_s":null}'
    )
    assert status_fragment({"guards": {"a": 1}, "expiries": [], "reasons": []}) == (
        '"guards":{"a":1},"reasons":[]'
    )


@pytest.mark.data
def test_history_reads_what_the_engine_process_stored(snapshot_dir: Path, tmp_path: Path) -> None:
    """The engine process writes its calibrations into the store; the server process
    reads them for /v1/history from the same file (the store's lock retries arbitrate)."""
    pytest.importorskip("duckdb")
    from volcal.serve.service import build_service

    path = tmp_path / "volcal.duckdb"
    snap = [snapshot_dir / "deribit_options_snapshot_20260123T092319Z.csv"]
    svc = build_service(replay=snap, speed=0, models="svi", store=path, env={}, rate_limit=0)
    assert isinstance(svc.engine, EngineProcess)
    with ServerThread(create_app(svc.engine, svc.settings)) as srv:

        def stored() -> Any:
            r = httpx.get(srv.url + "/v1/history", params={"model": "svi"}, timeout=60)
            return r.json() if r.status_code == 200 and r.json()["n"] >= 1 else None

        hist = _wait(stored, 90, "a calibration stored by the engine process")
        assert hist["rows"][-1]["model"] == "svi" and hist["underlying"] == "BTC"
        d = httpx.get(srv.url + "/v1/surface").json()
        assert d["snapshot_time"].startswith("2026-01-23T09:23")
        pid = svc.engine.pid
    assert pid is not None and _gone(pid)


def test_a_failure_status_stays_stale_when_merged_with_later_status_messages() -> None:
    """A client that has not read the failure message yet gets it merged with the
    periodic status messages that follow (one pending message per key): the merge must
    not turn it back to a fresh status without its reason (the published state the
    periodic message used to be built from was fresh when it was published)."""
    from volcal.serve.hub import StreamHub
    from volcal.serve.ipc import Published
    from volcal.serve.metrics import ServerMetrics

    pub = Published("BTC", 3, {"seq": 7, "snapshot_time": "2026-01-23T09:23:19+00:00",
                               "stale": False, "age_s": 0.1}, b"{}", "", 0.0)  # fmt: skip

    class Dead:
        def published(self, underlying: str) -> Published:
            return pub

        async def subscribe_encoded(self, underlying: str) -> Any:
            yield ("snapshot", pub)
            yield ("end", "the engine process exited unexpectedly (exit code 3)")

    async def run() -> dict[str, Any]:
        hub = StreamHub(Dead(), "BTC", queue_limit=64, status_interval_s=0.01,
                        metrics=ServerMetrics())  # fmt: skip
        client = hub.add(lambda text: None)  # never drained: every message stays pending
        hub.start()
        await asyncio.sleep(0.1)  # the failure, then several status intervals
        msg, text, _ = client.pending["status"]
        await hub.stop()
        return msg if msg is not None else json.loads(text)

    m = asyncio.run(run())
    assert m["type"] == "status" and m["stale"] is True and "exit code 3" in m["error"]
    assert m["snapshot_time"] == "2026-01-23T09:23:19+00:00"
