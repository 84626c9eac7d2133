"""volcal: calibration toolkit for crypto-option markets.

Raw quotes -> clean implied vols -> smiles, stochastic models and surfaces -> risk.

The top-level names are imported lazily, so ``import volcal`` stays fast and heavy
optional pieces (plots, QuantLib) are never loaded unless used.

>>> import volcal
>>> chain = volcal.read_chain("deribit_options_snapshot.csv", currency="BTC")  # doctest: +SKIP
>>> fit = volcal.calibrate(volcal.clean(chain), "svi")                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from volcal._version import __version__

# public name -> module that defines it (one place; tests import every entry)
_LAZY: dict[str, str] = {
    "OptionChain": "volcal.market",
    "Flag": "volcal.market",
    "read_chain": "volcal.feeds",
    "implied_vol": "volcal.black",
    "clean": "volcal.quality",
    "quality_report": "volcal.quality",
    "QualityPolicy": "volcal.quality",
    "price": "volcal.pricing",
    "model_iv": "volcal.pricing",
    "calibrate": "volcal.calibration",
    "aggregate": "volcal.aggregate",
    "calibrate_series": "volcal.calibration",
    "compare_models": "volcal.calibration",
    "VolSurface": "volcal.surface",
    "check_arbitrage": "volcal.surface",
    "surface_conventions": "volcal.surface",
    "vol_index": "volcal.surface",
}

# subpackages reachable as attributes (``volcal.models.Heston``), imported on first use
_SUBPACKAGES = (
    "black",
    "calibration",
    "errors",
    "feeds",
    "market",
    "models",
    "pricing",
    "quality",
    "report",
    "risk",
    "store",
    "history",
    "stream",
    "serve",
    "surface",
    "synthetic",
)

__all__ = ["__version__", *_LAZY, *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"volcal.{name}")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volcal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
