"""Shared fixtures of the surface tests: chains priced exactly by a surface model."""

from __future__ import annotations

import math

import numpy as np

import volcal
from volcal.black import price as black_price


def chain_from(model, days=(3, 10, 30, 60, 120, 240), n_strikes=25) -> volcal.OptionChain:
    """A linear chain priced exactly by a surface model (tight 0.2 vol-point markets)."""
    snap = np.datetime64("2026-01-01T08:00")
    exp, strike, call, bid, ask = [], [], [], [], []
    for d in days:
        t = d / 365.0
        atm = float(model.implied_vol(0.0, t))
        for k in np.linspace(-2.5, 2.5, n_strikes) * atm * math.sqrt(t):
            vol = float(model.implied_vol(k, t))
            for is_call in (True, False):
                for out, dv in ((bid, -0.001), (ask, 0.001)):
                    out.append(float(black_price(100.0, 100.0 * math.exp(k), t, vol + dv, is_call)))
                exp.append(snap + np.timedelta64(d, "D"))
                strike.append(100.0 * math.exp(k))
                call.append(is_call)
    return volcal.OptionChain.from_arrays(
        underlying="X", snapshot="2026-01-01T08:00Z", expiry=np.array(exp, dtype=object),
        strike=strike, is_call=call, bid=bid, ask=ask, forward=100.0, settlement="linear",
    )  # fmt: skip
