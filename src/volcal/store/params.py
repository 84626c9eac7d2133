"""Model instances back from stored parameter dictionaries (``CalibrationResult.to_dict()``
``params``): what a warm start or a rebuilt surface needs.

>>> from volcal.store.params import params_from_dict
>>> params_from_dict("heston", {"model": "Heston", "v0": 0.3, "kappa": 2.0, "theta": 0.4,
...                             "xi": 1.0, "rho": -0.2}).kappa
2.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from volcal.errors import DataError

__all__ = ["params_from_dict"]


def _fields(cls: Any, d: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}


def params_from_dict(model: str, d: Mapping[str, Any]) -> Any:
    """The model instance of stored parameters ``d`` of ``model`` (a calibrate name)."""
    from volcal.calibration.calibrate import FOURIER_MODELS, model_class
    from volcal.models.sabr import SABR, SABRSmiles
    from volcal.models.ssvi import ESSVI, SSVI
    from volcal.models.svi import SVI, SVISmiles

    name = model.lower()
    try:
        if name in FOURIER_MODELS:
            cls = model_class(name)
            return cls(**_fields(cls, d))
        if name in ("svi", "sabr"):
            per: Any = SVI if name == "svi" else SABR
            smiles_cls: Any = SVISmiles if name == "svi" else SABRSmiles
            sl = list(d["slices"])
            return smiles_cls(
                tuple(s["expiry"] for s in sl),
                tuple(float(s["t"]) for s in sl),
                tuple(float(s["forward"]) for s in sl),
                tuple(per(**_fields(per, s)) for s in sl),
            )
        if name == "ssvi":
            return SSVI(**_fields(SSVI, d))
        if name == "essvi":
            return ESSVI(**_fields(ESSVI, d))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"stored {name} parameters cannot be rebuilt: {exc}") from None
    raise DataError(f"unknown model {model!r}")
