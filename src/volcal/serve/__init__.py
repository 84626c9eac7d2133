"""``volcal serve``: the live surface over HTTP and websockets (FastAPI on uvicorn).

Imported only when used (FastAPI, uvicorn and plotly are optional extras).

>>> from volcal.serve import ServeSettings, create_app      # doctest: +SKIP
>>> app = create_app(engine, ServeSettings(underlyings=("BTC",)))
"""

from __future__ import annotations

from volcal._lazy import lazy_attributes

_LAZY = {
    "create_app": "volcal.serve.app",
    "ApiError": "volcal.serve.app",
    "ServeSettings": "volcal.serve.settings",
    "load_token": "volcal.serve.settings",
    "ServerThread": "volcal.serve.server",
    "serve_forever": "volcal.serve.server",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("volcal.serve", _LAZY, globals())
