"""Numerical pricing: Fourier (COS, Lewis), closed forms / series, Monte Carlo.

>>> import volcal
>>> from volcal.models import Black
>>> float(volcal.price(Black(0.2), 100.0, 100.0, 1.0, True)).__round__(6)
7.965567
"""

from __future__ import annotations

from volcal.pricing.api import METHODS, model_iv, price
from volcal.pricing.closed import (
    black_model_price,
    black_undiscounted,
    merton_price,
    variance_gamma_price,
)
from volcal.pricing.cos import COSPlan, COSPricer, char_func_grid
from volcal.pricing.lewis import LewisPlan, LewisPricer

__all__ = [
    "METHODS",
    "COSPlan",
    "COSPricer",
    "LewisPlan",
    "LewisPricer",
    "black_model_price",
    "black_undiscounted",
    "char_func_grid",
    "merton_price",
    "model_iv",
    "price",
    "variance_gamma_price",
]
