"""Running the app on uvicorn: blocking (the CLI) or in a background thread (tests,
benchmarks), always on a socket the caller chose (127.0.0.1 by default)."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from typing import Any

from volcal.errors import ParameterError, VolcalWarning

__all__ = ["ServerThread", "bind_socket", "serve_forever"]


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: an ephemeral port).

    Warns (:class:`~volcal.errors.VolcalWarning`) for ``0.0.0.0`` / ``::``: the
    service is then reachable from every network the machine is on.
    """
    if host in ("0.0.0.0", "::", ""):
        warnings.warn(
            f"binding {host or '0.0.0.0'}: the service is reachable from every network of "
            "this machine; bind 127.0.0.1 and put a proxy in front unless you mean it",
            VolcalWarning,
            stacklevel=2,
        )
    if not 0 <= port <= 65535:
        raise ParameterError(f"port must lie in 0..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _config(app: Any, **kw: Any) -> Any:
    import uvicorn

    # permessage-deflate off unless the settings ask for it: each message is encoded
    # once for all clients, but compressed once per client (a tenth of the server's CPU
    # with 50 subscribers in a profile)
    settings = getattr(getattr(app, "state", None), "settings", None)
    deflate = bool(getattr(settings, "ws_compress", False))
    return uvicorn.Config(app, log_level=kw.pop("log_level", "warning"), lifespan="on",
                          ws="websockets-sansio", ws_max_size=65_536,
                          ws_per_message_deflate=deflate, **kw)  # fmt: skip


def serve_forever(app: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` until interrupted (Ctrl-C)."""
    import uvicorn

    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(app, log_level="info"))
    server.run(sockets=[sock])


class ServerThread:
    """uvicorn in a daemon thread on an ephemeral 127.0.0.1 port.

    >>> with ServerThread(app) as srv:          # doctest: +SKIP
    ...     httpx.get(srv.url + "/health")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(_config(app))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self if self.thread.is_alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
