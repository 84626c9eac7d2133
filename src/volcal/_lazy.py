"""Attributes of a package imported on first use (PEP 562 ``__getattr__``).

A package lists ``{attribute: module}`` and gets the module-level ``__getattr__`` and
``__dir__`` from :func:`lazy_attributes`: ``import volcal.risk`` then loads nothing
heavy, and ``volcal.risk.portfolio_margin`` imports its module the first time it is
read (and is kept in the package's namespace, so later reads are plain lookups).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose attributes ``table`` maps to
    the modules defining them; ``namespace`` is the package's ``globals()``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
