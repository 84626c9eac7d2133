"""Model parameter dataclasses and characteristic functions.

Every model is a frozen, validated dataclass with ``param_names`` (the one place the
parameter order lives), ``bounds()``, ``to_vector()`` / ``from_vector()``,
``char_func(u, t)`` of :math:`\\ln(F_T/F_0)` under the forward measure and
``cumulants(t)``. Invalid values raise :class:`~volcal.errors.ParameterError`.

>>> from volcal.models import Heston
>>> Heston(v0=0.04, kappa=2.0, theta=0.04, xi=0.5, rho=-0.7).param_names
('v0', 'kappa', 'theta', 'xi', 'rho')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volcal._lazy import lazy_attributes

if TYPE_CHECKING:
    from volcal.models._base import Model

#: public name -> the module defining it, imported on first use: a command fitting one
#: model does not import the others (heston_td, sabr, ssvi, ...)
_LAZY = {
    "Model": "volcal.models._base",
    **dict.fromkeys(("Heston", "Bates", "SVCJ"), "volcal.models.heston"),
    **dict.fromkeys(("HestonTD", "BatesTD"), "volcal.models.heston_td"),
    **dict.fromkeys(("Black", "Kou", "Merton", "VarianceGamma"), "volcal.models.levy"),
    **dict.fromkeys(("SABR", "SABRSmiles"), "volcal.models.sabr"),
    **dict.fromkeys(("SSVI", "ESSVI"), "volcal.models.ssvi"),
    **dict.fromkeys(("SVI", "SVISmiles"), "volcal.models.svi"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


def fourier_models() -> dict[str, type[Model]]:
    """The calibration registry: ``model_name -> class`` of every built-in Fourier model
    (each class carries its parameter order, bounds, search box and data-driven start).

    >>> sorted(fourier_models())
    ['bates', 'black', 'heston', 'kou', 'merton', 'svcj', 'vg']
    """
    from volcal.models.heston import SVCJ, Bates, Heston
    from volcal.models.levy import Black, Kou, Merton, VarianceGamma

    classes: tuple[type[Model], ...] = (Heston, Bates, Merton, Kou, VarianceGamma, SVCJ, Black)
    return {c.model_name: c for c in classes}


__all__ = [
    "ESSVI",
    "SABR",
    "SSVI",
    "SVCJ",
    "SVI",
    "Bates",
    "BatesTD",
    "Black",
    "Heston",
    "HestonTD",
    "Kou",
    "Merton",
    "Model",
    "SABRSmiles",
    "SVISmiles",
    "VarianceGamma",
    "fourier_models",
]
