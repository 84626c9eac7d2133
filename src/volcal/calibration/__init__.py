"""Calibration: quotes -> objective -> optimizer -> :class:`CalibrationResult`.

>>> import volcal
>>> fit = volcal.calibrate(volcal.clean(chain), "heston")   # doctest: +SKIP
>>> print(fit.summary())                                    # doctest: +SKIP

``calibrate`` fits one snapshot (SVI, SABR or a Fourier model: Heston, Bates, Merton,
Kou, VG, SVCJ); ``calibrate_series`` recalibrates along snapshots with warm starts and
optional regularization toward the previous fit; ``compare_models`` fits several models
to one chain and tabulates their fit by expiry bucket.
"""

from __future__ import annotations

from typing import Any

from volcal.calibration.calibrate import MODEL_NAMES, calibrate
from volcal.calibration.quotes import QuoteSet, prepare_quotes
from volcal.calibration.result import CalibrationResult, SliceFit

# the model comparison and the series recalibration are imported on first use (a
# single calibration, e.g. a command line's, does not load them)
_LAZY = {
    "ModelComparison": "volcal.calibration.compare",
    "ModelFit": "volcal.calibration.compare",
    "compare_models": "volcal.calibration.compare",
    "SeriesResult": "volcal.calibration.series",
    "calibrate_series": "volcal.calibration.series",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volcal.calibration' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "MODEL_NAMES",
    "CalibrationResult",
    "ModelComparison",
    "ModelFit",
    "QuoteSet",
    "SeriesResult",
    "SliceFit",
    "calibrate",
    "calibrate_series",
    "compare_models",
    "prepare_quotes",
]
