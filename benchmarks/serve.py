"""``volcal serve`` under load: HTTP pollers and websocket subscribers during a replay.

The server (``create_app`` over the real ``StreamEngine``, uvicorn; the engine in its own
process by default, ``--engine-mode thread|loop`` to keep it in the server process) runs
in a subprocess bound to 127.0.0.1 on an ephemeral port; the clients run in
``--client-procs`` other processes (default 2; asyncio: pollers of ``/v1/surface`` and
``websockets`` subscribers of ``/v1/stream``). The pollers' HTTP client (``--client``):
``httpx`` (one ``httpx.AsyncClient`` per poller, as separate users would), ``httpx-shared``
(one pooled client per client process, the benchmark's client before; its pool costs
about 4 ms of client CPU per request at 25 requests in flight, so on 2 cores the clients
then run late and their own waiting is most of the measured latency) or ``raw`` (asyncio
streams speaking HTTP/1.1 keep-alive, about 0.1 ms per request); see serve_cost.py.

Where the time goes is measured, not inferred: the request time inside the server (first
bytes read off the socket to the last written, uvicorn's protocol instrumented in the
server role), the event-loop lag of the server and of the clients (a 10 ms sleep's
overshoot), the time the server's loop spends decoding the engine pipe, and each
process's run-queue wait (time runnable but waiting for a core, /proc schedstat). Input: the real BTC snapshots of 2026-01-23/24 (../shared/data), the
day compressed to ``--day`` wall seconds; BETWEEN two snapshots the stream is made of
INTERPOLATED, NOISY ticks at ``--rate`` quote updates per second (synthetic data, as in
benchmarks/stream.py; the real snapshot values are exact at their own times). The
engine runs svi + svi_surface (the arbitrage-free surface the service publishes by
default, on its own worker process; left out by an engine that has no such model, an
older baseline) + essvi (the Fourier refit is left out: it is the engine's cadence,
not the service's). The rate limit is off (every client shares 127.0.0.1).

Phases, each with a fresh server process (bounded in time by ``--day``):

1. no clients (engine latency baseline);
2. ``--pollers`` clients polling ``/v1/surface`` every ``--poll-interval`` s and
   ``--subscribers`` websocket clients: request p50/p99, tick-to-client p50/p99 (wall
   time from the newest tick of a fit to its receipt by a client), errors, engine
   latency against phase 1;
3. soak (``--soak`` s, same load): server RSS sampled every 2 s, growth between the
   first and the last quarter.

Run ``python benchmarks/serve.py --quick`` (20-second phases, 30-second soak) or the
default (60-second phases, 10-minute soak); ``--write`` puts the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

_TICK = '"tick_wall_time":'
DEFAULT_FILES = (
    "deribit_options_snapshot_20260123T035907Z.csv",
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
    "deribit_options_snapshot_20260123T212130Z.csv",
    "deribit_options_snapshot_20260124T035341Z.csv",
)


def _data_dir() -> Path:
    env = os.environ.get("VOLCAL_DATA_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "raw" / "svcj-deribit-snapshots"


# --------------------------------------------------------------------------- server role
def _models() -> tuple[str, ...]:
    """svi, svi_surface (when the engine under test has it) and essvi."""
    from volcal.stream.engine import SURFACE_MODELS

    return ("svi", "svi_surface", "essvi") if "svi_surface" in SURFACE_MODELS else ("svi", "essvi")


def _bench_engine(day: float, rate: float) -> Any:
    """The benchmark's engine (built where it runs: the server process, or the engine
    process), after one warm-up replay that loads the compiled kernels."""
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine
    from volcal.stream.sources import _read_snapshot

    files = [_data_dir() / f for f in DEFAULT_FILES]

    async def warm() -> None:  # compile the kernels once, outside the measurement
        eng = StreamEngine(
            ReplaySource(files[:1], currency="BTC", speed=0), StreamConfig(models=_models())
        )
        await eng.run()

    asyncio.run(warm())
    times = [_read_snapshot(f, "BTC")[0] for f in files]
    scale = day / (times[-1] - times[0])
    ticks = int(rate * day / (len(files) - 1))
    src = ReplaySource(files, currency="BTC", speed=1.0, ticks_between=ticks, time_scale=scale)
    return StreamEngine(src, StreamConfig(models=_models(), stale_feed_s=3600.0))


def _server(args: argparse.Namespace) -> None:
    import signal

    from volcal.serve import ServerThread, ServeSettings, create_app

    # the client stops this process with SIGINT; a parent started in the background
    # (nohup, ``&``) hands it down ignored, and the server would then be killed instead
    signal.signal(signal.SIGINT, signal.default_int_handler)

    eng: Any
    if args.engine_mode == "process":
        from volcal.serve.ipc import EngineSpec

        eng = EngineSpec(_bench_engine, {"day": args.day, "rate": args.rate})
    else:
        eng = _bench_engine(args.day, args.rate)
    app = create_app(
        eng,
        ServeSettings(
            rate_limit=0,
            ws_max_clients=1000,
            source="bench",
            engine_thread=args.engine_mode == "thread",
        ),
    )
    stats = _instrument_http()
    srv = ServerThread(app).start()
    loop = srv.server.servers[0].get_loop()
    asyncio.run_coroutine_threadsafe(_lag_probe(stats["lag_s"], 0.01), loop)
    stats["loop"] = type(loop).__module__.split(".")[0]
    stats["http"] = "httptools" if importlib.util.find_spec("httptools") else "h11"
    Path(args.port_file).write_text(str(srv.port))
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:  # the measurements first: the engine's shutdown may take a while
        stats["threads"] = _thread_stats(os.getpid())
        Path(args.port_file).with_name("stats.json").write_text(json.dumps(stats))
        srv.stop()


def _instrument_http() -> dict[str, Any]:
    """Server-side request time, measured in the server: from the first bytes of a
    request read off the socket (uvicorn's h11 protocol ``data_received``) to its last
    byte written to the transport (``on_response_complete``); surface polls only."""
    from uvicorn.protocols.http import h11_impl

    from volcal.serve.process import EngineProcess

    stats: dict[str, Any] = {"req_s": [], "lag_s": [], "ipc_s": [], "ipc_cpu_s": []}
    feed = EngineProcess._feed

    def timed_feed(self: Any, data: bytes) -> None:  # the engine pipe's decoding
        t0, c0 = time.perf_counter(), time.thread_time()
        feed(self, data)
        stats["ipc_s"].append(time.perf_counter() - t0)
        stats["ipc_cpu_s"].append(time.thread_time() - c0)

    EngineProcess._feed = timed_feed  # type: ignore[method-assign]
    protos: list[Any] = [h11_impl.H11Protocol]
    try:  # uvicorn's http="auto" takes httptools when it is installed
        from uvicorn.protocols.http import httptools_impl

        protos.append(httptools_impl.HttpToolsProtocol)
    except ImportError:
        pass
    for proto in protos:
        _time_protocol(proto, stats["req_s"])
    return stats


def _time_protocol(proto: Any, out: list[float]) -> None:
    recv, done = proto.data_received, proto.on_response_complete

    def data_received(self: Any, data: bytes) -> None:
        if getattr(self, "_bench_t0", None) is None:
            self._bench_t0 = time.perf_counter()
            self._bench_surface = data.startswith(b"GET /v1/surface")
        recv(self, data)

    def on_response_complete(self: Any) -> None:
        t0, self._bench_t0 = getattr(self, "_bench_t0", None), None
        if t0 is not None and self._bench_surface:
            out.append(time.perf_counter() - t0)
        done(self)

    proto.data_received = data_received
    proto.on_response_complete = on_response_complete


async def _lag_probe(out: list[float], every: float) -> None:
    """Event-loop lag: how late a ``sleep(every)`` wakes up."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(every)
        out.append(time.perf_counter() - t0 - every)


def _thread_stats(pid: int) -> dict[str, list[float]]:
    """Per thread of ``pid``: name -> [CPU s, run-queue wait s] (/proc schedstat: the
    time a runnable thread waited for a core)."""
    out: dict[str, list[float]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as fh:
                name = fh.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                run_ns, wait_ns = (int(x) for x in fh.read().split()[:2])
        except OSError:
            continue
        cur = out.setdefault(name, [0.0, 0.0])
        cur[0] += run_ns / 1e9
        cur[1] += wait_ns / 1e9
    return out


def _wait_s(pid: int) -> float:
    """Run-queue wait seconds of all threads of ``pid``."""
    return sum(w for _, w in _thread_stats(pid).values())


# --------------------------------------------------------------------------- client role
def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _start_server(
    args: argparse.Namespace, day: float
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    cmd = [sys.executable, __file__, "--role", "server", "--port-file", str(port_file),
           "--day", str(day), "--rate", str(args.rate)]  # fmt: skip
    cmd += ["--engine-mode", args.engine_mode]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
    return proc, int(port_file.read_text()), port_file


def _stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _engine_latency(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        for q in ("p50_ms", "p99_ms"):
            name = f"volcal_engine_latency_ms_tick_to_slice_{q} "
            if line.startswith(name):
                out[q] = float(line.split()[-1])
    return out


async def _load(url: str, ws_url: str, pollers: int, subs: int, duration: float,
                poll_interval: float, client: str = "httpx") -> dict[str, Any]:  # fmt: skip
    """One client process: ``pollers`` HTTP pollers and ``subs`` websocket subscribers
    for ``duration`` seconds (asyncio; the pollers on ``httpx`` or, ``client="raw"``, on
    plain asyncio streams speaking HTTP/1.1 keep-alive; the subscribers on
    ``websockets``). Also measured: this process's event-loop lag and run-queue wait."""
    import httpx
    import websockets

    req_ms: list[float] = []
    tick_ms: list[float] = []
    tick_slice_ms: list[float] = []
    tick_surface_ms: list[float] = []
    lag_s: list[float] = []
    errors = {"http": 0, "ws": 0}
    n_ws_msgs = [0]
    cpu0 = time.process_time()
    wait0 = _wait_s(os.getpid())
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /v1/surface HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    async with httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=200)) as c:
        stop = asyncio.Event()

        async def poll() -> None:
            if client == "httpx-shared":  # one pooled client for all pollers of the process
                await poll_with(c)
            else:  # each poller its own client (its own connection), as separate users are
                async with httpx.AsyncClient(timeout=10.0) as own:
                    await poll_with(own)

        async def poll_with(c: httpx.AsyncClient) -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = await c.get(url + "/v1/surface")
                    if r.status_code != 200:
                        errors["http"] += 1
                    else:
                        req_ms.append(1000 * (time.perf_counter() - t0))
                except httpx.HTTPError:
                    errors["http"] += 1
                await asyncio.sleep(poll_interval)

        async def poll_raw() -> None:
            reader: asyncio.StreamReader | None = None
            writer: asyncio.StreamWriter | None = None
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, int(port))
                    assert reader is not None
                    writer.write(request)
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
                    status = int(head.split(b" ", 2)[1])
                    size = 0
                    for line in head.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            size = int(line[15:])
                    await asyncio.wait_for(reader.readexactly(size), 10.0)
                    if status != 200:
                        errors["http"] += 1
                    else:
                        req_ms.append(1000 * (time.perf_counter() - t0))
                except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
                    errors["http"] += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                await asyncio.sleep(poll_interval)
            if writer is not None:
                writer.close()

        async def sub() -> None:
            try:
                async with websockets.connect(ws_url, max_size=None) as ws:
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            continue
                        now = time.time()
                        # cheap scan instead of a full JSON parse: every patch's tick time
                        text = raw if isinstance(raw, str) else raw.decode()
                        n_ws_msgs[0] += 1
                        pos = text.find(_TICK)
                        while pos >= 0:
                            end_ = pos + len(_TICK)
                            stop_ = min(
                                (i for i in (text.find(",", end_), text.find("}", end_)) if i >= 0),
                                default=len(text),
                            )
                            ms = 1000 * (now - float(text[end_:stop_]))
                            tick_ms.append(ms)
                            # a patch of a surface refresh (its tick: the newest the
                            # surface was fitted from) or of a slice refit
                            st_ = text.rfind('{"type":', 0, pos)
                            surf = text.find('"source":"svi_surface"', st_, pos) >= 0
                            (tick_surface_ms if surf else tick_slice_ms).append(ms)
                            pos = text.find(_TICK, stop_)
            except (OSError, websockets.WebSocketException):
                errors["ws"] += 1

        probe = asyncio.create_task(_lag_probe(lag_s, 0.01))
        tasks = [
            asyncio.create_task(poll_raw() if client == "raw" else poll()) for _ in range(pollers)
        ]
        tasks += [asyncio.create_task(sub()) for _ in range(subs)]
        await asyncio.sleep(duration)
        stop.set()
        await asyncio.gather(*tasks)
        probe.cancel()
    return {"req_ms": req_ms, "tick_ms": tick_ms, "errors": errors,
            "tick_slice_ms": tick_slice_ms, "tick_surface_ms": tick_surface_ms, "ws_messages": n_ws_msgs[0],
            "cpu_s": time.process_time() - cpu0, "lag_s": lag_s,
            "wait_s": _wait_s(os.getpid()) - wait0}  # fmt: skip


def _load_proc(nice: int, *a: Any) -> dict[str, Any]:
    if nice:  # clients below the server and the engine (as if on other machines)
        os.nice(nice)
    return asyncio.run(_load(*a))


def _split(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


async def _phase(args: argparse.Namespace, day: float, pollers: int, subs: int) -> dict[str, Any]:
    import httpx

    proc, port, port_file = _start_server(args, day)
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/stream?underlying=BTC"
    rss: list[float] = []
    parts: list[dict[str, Any]] = []
    srv_cpu = [0.0, 0.0]
    eng_cpu = [0.0, 0.0]
    try:
        async with httpx.AsyncClient(timeout=10.0) as c:
            t_wait = time.monotonic() + 120
            while time.monotonic() < t_wait:
                try:
                    if (await c.get(url + "/health")).json()["status"] == "ok":
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                await asyncio.sleep(0.2)
            duration = day * 0.9  # inside the replay
            srv_cpu[0] = _cpu_s(proc.pid)
            eng_cpu[0] = _engine_cpu_s(proc.pid)
            waits0 = _waits(proc.pid)
            t_run = time.monotonic()
            if pollers or subs:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                k = max(1, args.client_procs)
                loop = asyncio.get_running_loop()
                with ProcessPoolExecutor(k, mp_context=multiprocessing.get_context("spawn")) as ex:
                    futs = [
                        loop.run_in_executor(
                            ex,
                            _load_proc,
                            args.client_nice,
                            url,
                            ws_url,
                            p,
                            s_,
                            duration,
                            args.poll_interval,
                            args.client,
                        )
                        for p, s_ in zip(_split(pollers, k), _split(subs, k), strict=True)
                    ]
                    while not all(f.done() for f in futs):
                        rss.append(_rss_mb(proc.pid))
                        await asyncio.wait(futs, timeout=2.0)
                    parts = [f.result() for f in futs]
            else:
                while time.monotonic() - t_run < duration:
                    rss.append(_rss_mb(proc.pid))
                    await asyncio.sleep(2.0)
            srv_cpu[1] = _cpu_s(proc.pid)
            eng_cpu[1] = _engine_cpu_s(proc.pid)
            waits1 = _waits(proc.pid)
            wall = time.monotonic() - t_run
            text = (await c.get(url + "/metrics")).text
    finally:
        _stop(proc)
    stats_file = Path(port_file).with_name("stats.json")
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    req = np.asarray([x for p in parts for x in p["req_ms"]])
    tick = np.asarray([x for p in parts for x in p["tick_ms"]])
    tick_slice = np.asarray([x for p in parts for x in p.get("tick_slice_ms", ())])
    tick_surface = np.asarray([x for p in parts for x in p.get("tick_surface_ms", ())])
    q = max(len(rss) // 4, 1)
    mem = np.asarray(rss)
    return {
        "requests": int(req.size),
        "req_p50": float(np.percentile(req, 50)) if req.size else float("nan"),
        "req_p99": float(np.percentile(req, 99)) if req.size else float("nan"),
        "ticks": int(tick.size),
        "tick_p50": float(np.percentile(tick, 50)) if tick.size else float("nan"),
        "tick_p99": float(np.percentile(tick, 99)) if tick.size else float("nan"),
        "tick_slice": (*_pcts(tick_slice), int(tick_slice.size)),
        "tick_surface": (*_pcts(tick_surface), int(tick_surface.size)),
        "ws_messages": sum(p["ws_messages"] for p in parts),
        "errors": {
            "http": sum(p["errors"]["http"] for p in parts),
            "ws": sum(p["errors"]["ws"] for p in parts),
        },
        "engine": _engine_latency(text),
        "rss_first": float(np.median(mem[:q])) if mem.size else float("nan"),
        "rss_last": float(np.median(mem[-q:])) if mem.size else float("nan"),
        "rss_samples": int(mem.size),
        "server_cpu_share": (srv_cpu[1] - srv_cpu[0]) / wall if wall > 0 else float("nan"),
        "engine_cpu_share": (eng_cpu[1] - eng_cpu[0]) / wall if wall > 0 else float("nan"),
        "client_cpu_share": sum(p["cpu_s"] for p in parts) / wall if wall > 0 else 0.0,
        "load": os.getloadavg()[0],
        "srv_threads": stats.get("threads", {}),
        "srv_stack": f"{stats.get('loop', '?')} loop, {stats.get('http', '?')} parser",
        "srv_req": _pcts(1000 * np.asarray(stats.get("req_s", []))),
        "srv_lag": _pcts(1000 * np.asarray(stats.get("lag_s", []))),
        "srv_ipc": _pcts(1000 * np.asarray(stats.get("ipc_s", []))),
        "srv_ipc_total": float(np.sum(stats.get("ipc_s", []))),
        "srv_ipc_cpu": float(np.sum(stats.get("ipc_cpu_s", []))),
        "srv_ipc_cpu_p99": _pcts(1000 * np.asarray(stats.get("ipc_cpu_s", [])))[1],
        "cli_lag": _pcts(1000 * np.asarray([x for p in parts for x in p["lag_s"]])),
        "wait_share": {
            "server": (waits1[0] - waits0[0]) / wall if wall > 0 else float("nan"),
            "engine": (waits1[1] - waits0[1]) / wall if wall > 0 else float("nan"),
            "clients": sum(p["wait_s"] for p in parts) / wall if wall > 0 else 0.0,
        },
    }


def _pcts(x: Any) -> tuple[float, float, float]:
    """p50, p99, max (nan when empty)."""
    if not np.size(x):
        return (float("nan"),) * 3
    return (float(np.percentile(x, 50)), float(np.percentile(x, 99)), float(np.max(x)))


def _waits(pid: int) -> tuple[float, float]:
    """Run-queue wait seconds: the server process, its engine process(es)."""
    eng = 0.0
    todo = _children(pid)
    while todo:
        c = todo.pop()
        try:
            eng += _wait_s(c)
        except OSError:
            continue
        todo += _children(c)
    return _wait_s(pid), eng


def _cpu_one(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (of any of its threads: uvicorn's thread spawns the
    engine process)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of the server process (/proc/<pid>/stat; without its
    child processes: the engine process is counted by ``_engine_cpu_s``)."""
    return _cpu_one(pid)


def _engine_cpu_s(pid: int) -> float:
    """CPU seconds of the server's child processes (the engine process, its workers)."""
    total = 0.0
    todo = _children(pid)
    while todo:
        c = todo.pop()
        try:
            total += _cpu_one(c)
        except OSError:
            continue
        todo += _children(c)
    return total


def _table(args: argparse.Namespace, base: dict[str, Any], load: dict[str, Any],
           soak: dict[str, Any] | None) -> str:  # fmt: skip
    def f(x: float, d: int = 1) -> str:
        return "-" if x != x else f"{x:.{d}f}"

    e0, e1 = base["engine"], load["engine"]
    rows = [
        ("requests /v1/surface", f"{load['requests']}",
         f"{args.pollers} pollers every {args.poll_interval:g} s; client {args.client}"),
        ("request p50 / p99 (ms)", f"{f(load['req_p50'])} / {f(load['req_p99'])}", "aim p99 <= 25"),
        ("request p50 / p99 (ms) in the server: socket read -> response written",
         f"{f(load['srv_req'][0], 2)} / {f(load['srv_req'][1], 2)}",
         f"max {f(load['srv_req'][2])}; uvicorn on {load['srv_stack']}"),
        ("event-loop lag p50 / p99 (ms): server / clients",
         f"{f(load['srv_lag'][0])} / {f(load['srv_lag'][1])} ; {f(load['cli_lag'][0])} / {f(load['cli_lag'][1])}",
         "a 10 ms sleep's overshoot"),
        ("engine pipe decoding in the server: p50 / p99 / max per read (ms)",
         f"{f(load['srv_ipc'][0], 2)} / {f(load['srv_ipc'][1], 2)} / {f(load['srv_ipc'][2], 1)}",
         f"{f(load['srv_ipc_total'], 2)} s in all; its CPU {f(load['srv_ipc_cpu'], 2)} s, "
         f"p99 {f(load['srv_ipc_cpu_p99'], 2)} ms per read (the rest: waiting for a core)"),
        ("run-queue wait, share of wall time: server / engine / clients",
         " / ".join(f"{f(100 * load['wait_share'][k], 0)} %" for k in ("server", "engine", "clients")),
         "time runnable but waiting for a core (/proc schedstat)"),
        ("ws patches received", f"{load['ticks']}", f"{args.subscribers} subscribers, {load['ws_messages']} messages"),
        ("tick -> client p50 / p99 (ms)", f"{f(load['tick_p50'])} / {f(load['tick_p99'])}", "aim p99 <= 75"),
        ("  of which slice-refit patches: p50 / p99 (ms)",
         f"{f(load['tick_slice'][0])} / {f(load['tick_slice'][1])}",
         f"{load['tick_slice'][3]} patches; tick: the newest of the refit"),
        ("  of which svi_surface-refresh patches: p50 / p99 (ms)",
         f"{f(load['tick_surface'][0])} / {f(load['tick_surface'][1])}",
         f"{load['tick_surface'][3]} patches; tick: the newest the surface was fitted from"),
        ("errors (http / ws)", f"{load['errors']['http']} / {load['errors']['ws']}", "aim 0"),
        ("CPU: server process / client processes (share of one core)",
         f"{f(100 * load['server_cpu_share'], 0)} % / {f(100 * load['client_cpu_share'], 0)} %",
         f"clients in {args.client_procs} separate process(es); no clients: server "
         f"{f(100 * base['server_cpu_share'], 0)} %"),
        ("CPU: engine process and its workers (share of one core)",
         f"{f(100 * load['engine_cpu_share'], 0)} %",
         f"engine mode {args.engine_mode}; no clients: {f(100 * base['engine_cpu_share'], 0)} %"),
        ("load average (1 min) at the end of the phase", f"{load['load']:.1f}",
         f"no-client phase {base['load']:.1f}; 2 cores"),
        ("engine tick->slice p50 / p99, no clients (ms)",
         f"{f(e0.get('p50_ms', float('nan')))} / {f(e0.get('p99_ms', float('nan')))}", "baseline"),
        ("engine tick->slice p50 / p99, with clients (ms)",
         f"{f(e1.get('p50_ms', float('nan')))} / {f(e1.get('p99_ms', float('nan')))}", "aim within 20 %"),
    ]  # fmt: skip
    if soak is not None:
        g = soak["rss_last"] / soak["rss_first"] - 1.0
        rows.append((f"server RSS over a {args.soak:g} s soak (MB)",
                     f"{f(soak['rss_first'])} -> {f(soak['rss_last'])} ({100 * g:+.1f} %)",
                     f"{soak['rss_samples']} samples; first vs last quarter"))  # fmt: skip
    out = ["| measure | value | note |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--role", choices=("client", "server"), default="client", help=argparse.SUPPRESS
    )
    ap.add_argument("--port-file", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="20 s phases, 30 s soak")
    ap.add_argument("--day", type=float, default=60.0, help="wall seconds per phase")
    ap.add_argument(
        "--soak", type=float, default=None, help="soak seconds (0: none; default 600, --quick 30)"
    )
    ap.add_argument("--rate", type=float, default=2000.0, help="quote updates per second")
    ap.add_argument("--pollers", type=int, default=50)
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--poll-interval", type=float, default=0.2, help="seconds between polls")
    ap.add_argument("--client-procs", type=int, default=2,
                    help="processes the clients run in (the server has its own)")  # fmt: skip
    ap.add_argument("--client-nice", type=int, default=0,
                    help="nice value of the client processes (e.g. 10: the clients take the "
                    "CPU the server and the engine leave, as clients on other machines "
                    "would; their receive times then include their own waiting)")  # fmt: skip
    ap.add_argument("--client", choices=("httpx", "httpx-shared", "raw"), default="httpx",
                    help="HTTP client of the pollers: one httpx.AsyncClient per poller "
                    "(default), one pooled httpx.AsyncClient shared by the pollers of a "
                    "client process (costs about 4x the CPU per request at 25 concurrent "
                    "requests), or plain asyncio streams (HTTP/1.1 keep-alive, the "
                    "lightest)")  # fmt: skip
    ap.add_argument("--write", action="store_true", help="write the table to BENCHMARKS.md")
    ap.add_argument(
        "--engine-mode",
        choices=("process", "thread", "loop"),
        default="process",
        help="where the engine runs: its own process (default, as volcal serve), a thread "
        "of the server process, or the app's event loop",
    )
    ap.add_argument(
        "--same-loop",
        dest="engine_mode",
        action="store_const",
        const="loop",
        help="the same as --engine-mode loop",
    )
    args = ap.parse_args()
    if args.role == "server":
        _server(args)
        return
    if not _data_dir().is_dir():
        raise SystemExit(f"real snapshots not found in {_data_dir()} (set VOLCAL_DATA_DIR)")
    if args.quick:
        args.day = 20.0
    if args.soak is None:
        args.soak = 30.0 if args.quick else 600.0
    t0 = time.monotonic()
    base = asyncio.run(_phase(args, args.day, 0, 0))
    load = asyncio.run(_phase(args, args.day, args.pollers, args.subscribers))
    soak = (
        asyncio.run(_phase(args, args.soak, args.pollers, args.subscribers)) if args.soak else None
    )
    table = _table(args, base, load, soak)
    print("server threads, [CPU s, run-queue wait s] over the phase's life:", load["srv_threads"],
          file=sys.stderr)  # fmt: skip
    load_avg = os.getloadavg()[0]
    cmd = "python benchmarks/serve.py" + (" --quick" if args.quick else "")
    cmd += f" --client-nice {args.client_nice}" if args.client_nice else ""
    cmd += "" if args.engine_mode == "process" else f" --engine-mode {args.engine_mode}"
    cmd += "" if args.client == "httpx" else f" --client {args.client}"
    where = {
        "process": "its own process (publishing encoded states and patches to the server)",
        "thread": "a thread of the server process (its own event loop)",
        "loop": "the app's event loop",
    }[args.engine_mode]
    text = (
        "## Serve\n\n"
        f"`{cmd}` (2 cores shared with other work, load average {load_avg:.1f} at the end; "
        f"{time.monotonic() - t0:.0f} s). Replay of the real BTC snapshots of 2026-01-23/24 "
        f"compressed to {args.day:g} s, with interpolated synthetic ticks at {args.rate:g} quote "
        f"updates/s between them; engine {' + '.join(_models())} in {where}; server and clients on "
        f"127.0.0.1, the server in its own process, the clients in {args.client_procs} other "
        f"process(es) (pollers on the {args.client} client) (they share the same 2 cores: their CPU is in the table). Baseline of the engine latency: the same "
        "replay with no client.\n\n" + table + "\n"
    )
    print(text)
    if args.write:
        from _markdown import write_section

        write_section("## Serve", text)


if __name__ == "__main__":
    main()
