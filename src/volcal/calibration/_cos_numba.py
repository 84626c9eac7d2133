"""Compiled COS payoff coefficients (imported lazily; loads numba).

``cos_payoff(k, is_call, a, b, n_terms)`` is the same computation as the NumPy
reference :func:`volcal.calibration.fourier._cos_payoff` (tests compare them), in one
pass per quote without temporaries. :math:`e^{iu_j(c-a)}` is advanced by complex
multiplication and re-seeded with an exact exponential every 16 terms, so the rounding
error stays at a few ulps. Measured: building the payoff matrix of a 280-quote,
10-expiry surface was a third of a warm-start recalibration in NumPy (about 15 passes
over a quotes x 256 array); compiled it is a small fraction.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from numba import njit

_BLOCK = 16


@njit(cache=True, fastmath=False)
def cos_payoff(k, is_call, a, b, n_terms):  # type: ignore[no-untyped-def]
    n = k.size
    v = np.empty((n, n_terms))
    for i in range(n):
        ai, bi, ki = a[i], b[i], k[i]
        c = min(max(ki, ai), bi)
        width = bi - ai
        du = math.pi / width
        x = du * (c - ai)
        ea, eb, ec, ek = math.exp(ai), math.exp(bi), math.exp(c), math.exp(ki)
        scale = 2.0 / width
        call = is_call[i]
        if call:
            v[i, 0] = 0.5 * scale * ((eb - ec) - ek * (bi - c))
        else:
            v[i, 0] = 0.5 * scale * (ek * (c - ai) - (ec - ea))
        step = cmath.exp(1j * x)
        e = step
        sign = -1.0
        for j in range(1, n_terms):
            if j % _BLOCK == 0:
                e = cmath.exp(1j * (x * j))
            u = du * j
            cs, sn = e.real, e.imag
            inv = 1.0 / (1.0 + u * u)
            ecs = ec * (cs + u * sn)
            psi = sn / u
            if call:
                v[i, j] = scale * ((sign * eb - ecs) * inv + ek * psi)
            else:
                v[i, j] = scale * (ek * psi - (ecs - ea) * inv)
            e = e * step
            sign = -sign
    return v
