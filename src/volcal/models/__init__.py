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

from volcal.models._base import Model
from volcal.models.heston import SVCJ, Bates, Heston
from volcal.models.heston_td import BatesTD, HestonTD
from volcal.models.levy import Black, Kou, Merton, VarianceGamma
from volcal.models.sabr import SABR, SABRSmiles
from volcal.models.ssvi import ESSVI, SSVI
from volcal.models.svi import SVI, SVISmiles


def fourier_models() -> dict[str, type[Model]]:
    """The calibration registry: ``model_name -> class`` of every built-in Fourier model
    (each class carries its parameter order, bounds, search box and data-driven start).

    >>> sorted(fourier_models())
    ['bates', 'black', 'heston', 'kou', 'merton', 'svcj', 'vg']
    """
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
