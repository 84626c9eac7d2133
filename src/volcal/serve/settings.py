"""Settings of the ``volcal serve`` service (one frozen object, no global state).

Safe defaults: bind ``127.0.0.1``; the admin endpoints are off unless a token is
configured (from a file or an environment variable, never from a request); CORS is off
unless origins are listed; request bodies, query strings and query lists are bounded;
every client gets a token-bucket rate limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from volcal.errors import ParameterError

__all__ = ["ServeSettings", "load_token"]

#: environment variable that may hold the admin bearer token
TOKEN_ENV = "VOLCAL_SERVE_TOKEN"
#: environment variable that may name a file holding the admin bearer token
TOKEN_FILE_ENV = "VOLCAL_SERVE_TOKEN_FILE"
#: shortest admin token accepted (a short token is a guessable token)
MIN_TOKEN_LEN = 16


def load_token(
    token_file: str | Path | None = None, env: dict[str, str] | None = None
) -> str | None:
    """The admin bearer token: from ``token_file``, else from ``$VOLCAL_SERVE_TOKEN_FILE``,
    else from ``$VOLCAL_SERVE_TOKEN``; ``None`` (admin off) when none is configured.

    Raises
    ------
    ParameterError
        The file is unreadable or the token is shorter than 16 characters.
    """
    env = dict(os.environ) if env is None else env
    path = token_file or env.get(TOKEN_FILE_ENV)
    token: str | None
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ParameterError(f"cannot read the token file {path}: {exc.strerror}") from None
    else:
        token = env.get(TOKEN_ENV, "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_LEN:
        raise ParameterError(f"the admin token must have at least {MIN_TOKEN_LEN} characters")
    return token


@dataclass(frozen=True)
class ServeSettings:
    """Everything the app factory needs besides the engine.

    Attributes
    ----------
    underlyings : tuple of str
        Underlyings served (e.g. ``("BTC", "ETH")``); a request for another one is a 404.
    token : str or None
        Admin bearer token; ``None`` turns the admin endpoints off (403).
    token_file : str or None
        File the token was read from; ``POST /v1/admin/reload`` re-reads it (rotation).
    cors_origins : tuple of str
        Origins allowed by CORS; empty = CORS off (no CORS headers at all).
    rate_limit : float
        Requests per second per client address (token bucket); 0 = no limit.
    rate_burst : int
        Bucket size (requests a client may send at once).
    max_body_bytes : int
        Largest request body (413 above).
    max_query_bytes : int
        Longest query string (413 above).
    max_list : int
        Most values of one repeated query parameter (``strike=``, ``delta=``; 422 above).
    max_flagged : int
        Most flagged quotes listed by ``/v1/quality`` (the count is always complete).
    ws_queue : int
        Per websocket client: most pending updates before older ones are conflated
        (one pending patch per expiry at most) and the client is marked lagging.
    ws_send_timeout_s : float
        A client whose socket does not take a message within this time is dropped.
    ws_max_clients : int
        Most websocket clients at once (further ones are refused with close code 1013).
    status_interval_s : float
        Period of the websocket status message (staleness, age) in seconds.
    store_path : str or None
        Calibration store (``/v1/history`` and restart recovery); set by the operator only.
    engine_thread : bool
        Run the engine in its own thread and event loop (:mod:`volcal.serve.runner`), so
        refits never block requests (``volcal serve --engine-mode thread``). Off: the
        app's own loop. Ignored for an engine in its own process (an ``EngineSpec`` or
        ``EngineProcess`` given to ``create_app``; ``volcal serve``'s default).
    ws_compress : bool
        Offer permessage-deflate on the websocket (default off: the server compresses
        every message once per client; worth it only on slow links to the clients).
    version : str
        Reported by ``/health``.
    source : str
        What the engine reads (shown by ``/health`` and the page), e.g. ``"replay of 3 files"``.
    """

    underlyings: tuple[str, ...] = ("BTC",)
    token: str | None = None
    token_file: str | None = None
    cors_origins: tuple[str, ...] = ()
    rate_limit: float = 100.0
    rate_burst: int = 200
    max_body_bytes: int = 16_384
    max_query_bytes: int = 4_096
    max_list: int = 64
    max_flagged: int = 500
    ws_queue: int = 256
    ws_send_timeout_s: float = 5.0
    ws_max_clients: int = 256
    status_interval_s: float = 1.0
    store_path: str | None = None
    engine_thread: bool = False
    ws_compress: bool = False
    version: str = field(default="")
    source: str = ""

    def __post_init__(self) -> None:
        if not self.underlyings:
            raise ParameterError("serve needs at least one underlying")
        for u in self.underlyings:
            if not u.isalnum():
                raise ParameterError(f"underlying must be alphanumeric, got {u!r}")
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise ParameterError("rate_limit must be >= 0 and rate_burst >= 1")
        for name in ("max_body_bytes", "max_query_bytes", "max_list", "ws_queue", "ws_max_clients"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1")
        if self.ws_send_timeout_s <= 0 or self.status_interval_s <= 0:
            raise ParameterError("ws_send_timeout_s and status_interval_s must be > 0")
        if self.token is not None and len(self.token) < MIN_TOKEN_LEN:
            raise ParameterError(f"the admin token must have at least {MIN_TOKEN_LEN} characters")
        if not self.version:
            from volcal._version import __version__

            object.__setattr__(self, "version", __version__)
        object.__setattr__(self, "underlyings", tuple(u.upper() for u in self.underlyings))
