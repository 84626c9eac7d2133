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

from volcal._lazy import lazy_attributes
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


__getattr__, __dir__ = lazy_attributes("volcal.calibration", _LAZY, globals())


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
