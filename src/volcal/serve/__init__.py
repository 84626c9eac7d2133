"""``volcal serve``: the live surface over HTTP and websockets (FastAPI on uvicorn).

Imported only when used (FastAPI, uvicorn and plotly are optional extras).

>>> from volcal.serve import ServeSettings, create_app      # doctest: +SKIP
>>> app = create_app(engine, ServeSettings(underlyings=("BTC",)))
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "create_app": "volcal.serve.app",
    "ApiError": "volcal.serve.app",
    "ServeSettings": "volcal.serve.settings",
    "load_token": "volcal.serve.settings",
    "ServerThread": "volcal.serve.server",
    "serve_forever": "volcal.serve.server",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'volcal.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
