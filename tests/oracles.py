"""Oracle packages (QuantLib, PyFENG, ...) for the tests that check volcal against them.

Outside CI a missing oracle skips the test with a reason; in CI (``CI`` set) it is a
failure, so an oracle test never passes vacuously where it is meant to run.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(name: str) -> ModuleType:
    """Import the oracle package ``name`` (skip outside CI, fail in CI when missing)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"oracle package {name} missing in CI: install the dev extra")
        pytest.skip(f"oracle package {name} not installed")


__all__ = ["require"]
