"""CPU cost of one ``/v1/surface`` request and of one websocket message, server and client.

Latency on a shared 2-core machine is mostly waiting for a core; CPU seconds per
operation are what a run does not share with the rest of the machine. This script
measures them with the real app (``create_app``, uvicorn as ``volcal serve`` runs it)
over a static engine-process stand-in that publishes the real surface of the BTC
snapshot of 2026-01-23 03:59 (one replay through the real ``StreamEngine`` first, to
get its encoded body): the server in a subprocess, the clients in this process.

* HTTP: ``--requests`` GETs of ``/v1/surface`` from 50 concurrent pollers, for each
  client kind: ``httpx-shared`` (one pooled ``httpx.AsyncClient`` for all pollers),
  ``httpx`` (one client per poller), ``raw`` (asyncio streams, HTTP/1.1 keep-alive).
  Server and client CPU microseconds per request (``/proc/<pid>/stat``,
  ``time.process_time``).
* Websocket: ``--messages`` patches at 100/s fanned out to 50 subscribers
  (``websockets`` clients): server and client CPU microseconds per message and
  subscriber.

uvicorn takes ``httptools`` and ``uvloop`` when they are installed (the ``serve``
extra); the table says which the server ran on. ``python benchmarks/serve_cost.py
--quick`` (fewer requests and messages).
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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONCURRENCY = 50
WS_RATE = 100.0


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _surface_body() -> bytes:
    """The /v1/surface body of the real snapshot, as the engine process publishes it."""
    from serve import DEFAULT_FILES, _data_dir

    from volcal.serve.ipc import dumps
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine

    src = ReplaySource([_data_dir() / DEFAULT_FILES[0]], currency="BTC", speed=0)
    eng = StreamEngine(src, StreamConfig(models=("svi", "essvi")))
    asyncio.run(eng.run())
    return dumps({"underlying": "BTC", **eng.state("BTC").to_dict()}).encode()


class _Published:
    """A stand-in for ``EngineProcess``: one published state, and ``messages`` patches
    at ``WS_RATE`` per second once ``start_at`` (wall time) has passed."""

    remote = True
    failure = None

    def __init__(self, body: bytes, messages: int, start_at: float) -> None:
        from volcal.serve.ipc import Published

        self.body = body
        self.messages = messages
        self.start_at = start_at
        n = len(json.loads(body)["expiries"])
        self.pub = Published("BTC", 1, {"seq": 1, "n_expiries": n}, body, "", time.monotonic())

    def surface_bytes(self, u: str) -> bytes:
        return self.body

    def published(self, u: str) -> Any:
        return self.pub

    def state(self, u: str) -> Any:
        return json.loads(self.body)

    def metrics(self) -> dict[str, Any]:
        return {}

    def health(self) -> dict[str, Any]:
        return {"mode": "static"}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def subscribe_encoded(self, u: str) -> AsyncIterator[tuple[Any, ...]]:
        yield ("snapshot", self.pub)
        await asyncio.sleep(max(self.start_at - time.time(), 0.0))
        row = json.loads(self.body)["expiries"][0]
        key = f"expiry:{row['expiry']}"
        for i in range(self.messages):
            tick = time.time()
            msg = {"type": "patch", "underlying": "BTC", "seq": i + 2,
                   "patch": {"expiry": row, "latency_ms": 1.0}, "tick_wall_time": tick}  # fmt: skip
            yield ("msg", key, json.dumps(msg, separators=(",", ":")), tick)
            await asyncio.sleep(1.0 / WS_RATE)
        await asyncio.Event().wait()


def _server(body_file: str, port_file: str, messages: int, start_at: float) -> None:
    import uvicorn

    from volcal.serve import ServeSettings, create_app
    from volcal.serve.server import _config, bind_socket

    eng = _Published(Path(body_file).read_bytes(), messages, start_at)
    app = create_app(eng, ServeSettings(rate_limit=0, ws_max_clients=1000))
    sock = bind_socket()
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(_config(app)).run(sockets=[sock])


def _start(body_file: Path, messages: int = 0, start_at: float = 0.0) -> tuple[Any, int]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    cmd = [sys.executable, __file__, "--role", "server", "--body", str(body_file),
           "--port-file", str(port_file), "--messages", str(messages),
           "--start-at", repr(start_at)]  # fmt: skip
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return proc, int(port_file.read_text())


async def _poll(kind: str, port: int, n: int, size: int) -> None:
    import httpx

    url = f"http://127.0.0.1:{port}/v1/surface"
    request = f"GET /v1/surface HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    per = max(n // CONCURRENCY, 1)

    async def check(status: int, got: int) -> None:
        if status != 200 or got != size:
            raise SystemExit(f"bad response: {status}, {got} bytes")

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as shared:

        async def with_client(c: httpx.AsyncClient) -> None:
            for _ in range(per):
                r = await c.get(url)
                await check(r.status_code, len(r.content))

        async def own() -> None:
            async with httpx.AsyncClient() as c:
                await with_client(c)

        async def raw() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(per):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                await check(int(head.split(b" ", 2)[1]), len(body))
            writer.close()

        def one() -> Any:
            if kind == "raw":
                return raw()
            return with_client(shared) if kind == "httpx-shared" else own()

        await asyncio.gather(*[one() for _ in range(CONCURRENCY)])


def http_cost(body_file: Path, kind: str, n: int, size: int) -> dict[str, float]:
    proc, port = _start(body_file)
    try:
        asyncio.run(_poll(kind, port, 2 * CONCURRENCY, size))  # connections, warm paths
        s0, c0, t0 = _cpu(proc.pid), time.process_time(), time.perf_counter()
        asyncio.run(_poll(kind, port, n, size))
        s1, c1, t1 = _cpu(proc.pid), time.process_time(), time.perf_counter()
    finally:
        proc.terminate()
        proc.wait(10)
    done = (n // CONCURRENCY) * CONCURRENCY
    return {"server_us": 1e6 * (s1 - s0) / done, "client_us": 1e6 * (c1 - c0) / done,
            "rate": done / (t1 - t0)}  # fmt: skip


async def _subscribe(port: int, subs: int, last_seq: int) -> int:
    import websockets

    got = [0]
    marker = f'"seq":{last_seq},'

    async def one() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/stream", max_size=None) as ws:
            await ws.recv()  # the snapshot
            while True:
                raw = await asyncio.wait_for(ws.recv(), 30.0)
                text = raw if isinstance(raw, str) else raw.decode()
                got[0] += text.count('"tick_wall_time"')
                if marker in text:
                    return

    await asyncio.gather(*[one() for _ in range(subs)])
    return got[0]


def ws_cost(body_file: Path, messages: int, subs: int) -> dict[str, float]:
    lead = 3.0 + subs * 0.02  # time for the subscribers to connect
    proc, port = _start(body_file, messages, time.time() + lead)

    async def run() -> tuple[int, float, float]:
        task = asyncio.create_task(_subscribe(port, subs, messages + 1))
        await asyncio.sleep(lead - 0.3)
        s0, c0 = _cpu(proc.pid), time.process_time()
        got = await task
        return got, _cpu(proc.pid) - s0, time.process_time() - c0

    try:
        got, ds, dc = asyncio.run(run())
    finally:
        proc.terminate()
        proc.wait(10)
    return {"server_us": 1e6 * ds / got, "client_us": 1e6 * dc / got, "received": got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", default="client", help=argparse.SUPPRESS)
    ap.add_argument("--body", help=argparse.SUPPRESS)
    ap.add_argument("--port-file", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="1000 requests, 500 messages")
    ap.add_argument("--requests", type=int, default=4000, help="requests per client kind")
    ap.add_argument("--messages", type=int, default=1500, help="websocket patches")
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (minimum kept)")
    args = ap.parse_args()
    if args.role == "server":
        _server(args.body, args.port_file, args.messages, args.start_at)
        return
    if args.quick:
        args.requests, args.messages, args.repeat = 1000, 500, 2
    body = _surface_body()
    body_file = Path(tempfile.mkdtemp()) / "surface.json"
    body_file.write_bytes(body)
    stack = (
        f"{'uvloop' if importlib.util.find_spec('uvloop') else 'asyncio'} loop, "
        f"{'httptools' if importlib.util.find_spec('httptools') else 'h11'} parser"
    )
    rows = []
    for kind in ("httpx-shared", "httpx", "raw"):
        runs = [http_cost(body_file, kind, args.requests, len(body)) for _ in range(args.repeat)]
        rows.append((f"GET /v1/surface, client {kind}",
                     min(r["server_us"] for r in runs), min(r["client_us"] for r in runs),
                     f"{max(r['rate'] for r in runs):.0f} req/s at best"))  # fmt: skip
    runs = [ws_cost(body_file, args.messages, args.subscribers) for _ in range(args.repeat)]
    rows.append((f"websocket patch, per subscriber ({args.subscribers})",
                 min(r["server_us"] for r in runs), min(r["client_us"] for r in runs),
                 f"{args.messages} patches at {WS_RATE:g}/s"))  # fmt: skip
    out = [
        f"CPU per operation (min of {args.repeat}); body {len(body)} bytes; "
        f"{CONCURRENCY} concurrent pollers; server on {stack}; load average "
        f"{os.getloadavg()[0]:.1f}",
        "",
        "| operation | server CPU (us) | client CPU (us) | note |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b:.0f} | {c:.0f} | {d} |" for a, b, c, d in rows]
    print("\n".join(out))


if __name__ == "__main__":
    main()
