"""Engines built inside the engine process of the process-mode serve tests.

``multiprocessing``'s spawn context starts a fresh interpreter that imports this module
by name (the tests folder is on the path it inherits) and calls a factory below; the
test then drives the engine through the service's own calls (``recalibrate``,
``reload``), never by sharing memory with it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from serve_helpers import FakeEngine


class ScriptedEngine(FakeEngine):
    """The serve tests' fake engine, with actions triggered through the service:
    ``recalibrate(u)`` publishes ``burst`` patches of expiry 1 (ATM vol 0.50 + i/1000,
    ``pad`` bytes each), the last one also applied to the state; ``reload()`` makes the
    engine process exit with code 3 shortly after answering (a crash)."""

    def __init__(self, burst: int = 1, pad: int = 0) -> None:
        super().__init__(underlyings=("BTC", "ETH"))
        self.burst = burst
        self.pad = pad

    def recalibrate(self, underlying: str) -> dict[str, Any]:
        for i in range(self.burst):
            self.set_atm(underlying, 1, 0.5 + (i + 1) / 1000, pad=self.pad)
        return {"published": self.burst}

    def reload(self) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.2, os._exit, 3)
        return {"ok": True}


def scripted(burst: int = 1, pad: int = 0) -> ScriptedEngine:
    return ScriptedEngine(burst=burst, pad=pad)


def failing(message: str) -> Any:
    """A factory that fails the way a bad configuration does."""
    raise ValueError(message)
