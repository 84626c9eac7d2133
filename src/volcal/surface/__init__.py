"""Volatility surfaces: ``VolSurface``, static-arbitrage checks, market conventions, vol index.

>>> import volcal
>>> fit = volcal.calibrate(volcal.clean(chain), "essvi")     # doctest: +SKIP
>>> surf = fit.surface()                                    # doctest: +SKIP
>>> volcal.check_arbitrage(surf).ok                         # doctest: +SKIP
True
>>> print(volcal.surface_conventions(surf).summary())      # doctest: +SKIP
>>> volcal.vol_index(chain).value                           # doctest: +SKIP
"""

from __future__ import annotations

from volcal.surface.arbitrage import ArbitrageReport, Violation, check_arbitrage
from volcal.surface.conventions import (
    PILLARS,
    TENOR_DAYS,
    SurfaceConventions,
    atm_vol,
    surface_conventions,
)
from volcal.surface.vix import VolIndex, vol_index
from volcal.surface.volsurface import VolSurface

__all__ = [
    "PILLARS",
    "TENOR_DAYS",
    "ArbitrageReport",
    "SurfaceConventions",
    "Violation",
    "VolIndex",
    "VolSurface",
    "atm_vol",
    "check_arbitrage",
    "surface_conventions",
    "vol_index",
]
