"""Market quoting conventions of a surface: ATM, risk reversals, butterflies, tenors.

Conventions (stated once, used everywhere in this module)
---------------------------------------------------------
* **ATM** is at-the-money *forward*: :math:`k = \\ln(K/F) = 0`.
* **Delta** is the *premium-adjusted* forward delta by default,
  :math:`\\Delta_C = e^{k} N(d_2)`, :math:`\\Delta_P = -e^{k} N(-d_2)`. Deribit's options
  are inverse (premium and payoff in coin): the coin delta of an inverse option is the
  USD delta divided by the forward minus the coin premium, which in forward units is
  exactly the premium-adjusted delta, so it is the delta a Deribit trader hedges with.
  ``delta="forward"`` gives the unadjusted :math:`N(d_1)` convention of linear
  (USD-settled) options. The call pillar is the strike on the branch where delta falls
  with strike (the premium-adjusted call delta is not monotone far below the money),
  the put pillar the one nearest the money (:mod:`volcal.calibration.delta_pillars`).
* **Risk reversal** :math:`RR_{x} = \\sigma(x\\Delta C) - \\sigma(x\\Delta P)`;
  **butterfly** :math:`BF_{x} = (\\sigma(x\\Delta C) + \\sigma(x\\Delta P))/2 -
  \\sigma_{ATM}` (the "smile" butterfly, in vol units, not the broker-strangle one).
* **Constant-maturity tenors** are read off the surface at :math:`t = d/365` for
  :math:`d` days (1, 7, 30, 60, 90, 180, 365 by default), using the surface's time
  interpolation (:mod:`volcal.surface.volsurface`); a tenor outside the quoted expiries
  uses the surface's extrapolation and is marked ``extrapolated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import BoolArray, FloatArray
from volcal.errors import ParameterError

__all__ = ["PILLARS", "TENOR_DAYS", "SurfaceConventions", "atm_vol", "surface_conventions"]

TENOR_DAYS = (1, 7, 30, 60, 90, 180, 365)
#: (label, absolute delta level, is_call); "ATM" has no delta level (k = 0)
PILLARS = (("10P", 0.10, False), ("25P", 0.25, False), ("ATM", 0.0, True),
           ("25C", 0.25, True), ("10C", 0.10, True))  # fmt: skip


def atm_vol(surface: Any, t: Any) -> FloatArray:
    """ATM-forward implied vol :math:`\\sigma(k=0, t)` (vectorised over ``t``)."""
    tt = np.asarray(t, dtype=np.float64)
    return np.asarray(surface.implied_vol(np.zeros_like(tt), tt))


@dataclass(frozen=True, eq=False)
class SurfaceConventions:
    """ATM, 25/10-delta RR and BF, and a tenor x delta vol grid of a surface.

    Attributes
    ----------
    delta : str
        Delta convention (module docs).
    tenor_days : tuple of int
    t : ndarray
        Years per tenor (days / 365).
    extrapolated : ndarray of bool
        Tenor outside the fitted expiries.
    atm, rr25, bf25, rr10, bf10 : ndarray
        Per tenor, vol units.
    vols, k : ndarray, shape (n_tenors, 5)
        Vol and log-moneyness at the pillars ``PILLARS`` (10P, 25P, ATM, 25C, 10C).
    """

    delta: str
    tenor_days: tuple[int, ...]
    t: FloatArray
    extrapolated: BoolArray
    atm: FloatArray
    rr25: FloatArray
    bf25: FloatArray
    rr10: FloatArray
    bf10: FloatArray
    vols: FloatArray
    k: FloatArray

    def to_frame(self) -> pd.DataFrame:
        """One row per tenor: pillar vols, ATM, RR and BF (vol units)."""
        df = pd.DataFrame(
            {"tenor_days": self.tenor_days, "t": self.t, "extrapolated": self.extrapolated}
        )
        for j, (label, _, _) in enumerate(PILLARS):
            df[f"vol_{label}"] = self.vols[:, j]
        for name in ("atm", "rr25", "bf25", "rr10", "bf10"):
            df[name] = getattr(self, name)
        return df

    def summary(self) -> str:
        """Text table in vol points."""
        head = f"{'tenor':>6} " + " ".join(f"{p[0]:>7}" for p in PILLARS)
        head += f" {'RR25':>7} {'BF25':>7} {'RR10':>7} {'BF10':>7}"
        lines = [f"tenor x delta grid ({self.delta} delta, vol points)", head]
        for i, d in enumerate(self.tenor_days):
            row = f"{d:>5}d " + " ".join(f"{100 * v:7.2f}" for v in self.vols[i])
            row += "".join(
                f" {100 * getattr(self, n)[i]:+7.2f}" for n in ("rr25", "bf25", "rr10", "bf10")
            )
            lines.append(row + ("  (extrapolated)" if self.extrapolated[i] else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""

        def lst(a: Any) -> list[Any]:
            return [None if not np.isfinite(x) else float(x) for x in np.ravel(a)]

        return {
            "delta": self.delta,
            "pillars": [p[0] for p in PILLARS],
            "tenors": [
                {
                    "days": int(d),
                    "t": float(self.t[i]),
                    "extrapolated": bool(self.extrapolated[i]),
                    "vols": dict(zip([p[0] for p in PILLARS], lst(self.vols[i]), strict=True)),
                    "k": dict(zip([p[0] for p in PILLARS], lst(self.k[i]), strict=True)),
                    **{
                        n: lst(getattr(self, n)[i : i + 1])[0]
                        for n in ("atm", "rr25", "bf25", "rr10", "bf10")
                    },
                }
                for i, d in enumerate(self.tenor_days)
            ],
        }


def surface_conventions(
    surface: Any, tenors: Any = TENOR_DAYS, *, delta: str = "premium_adjusted"
) -> SurfaceConventions:
    """ATM, RR/BF at 25 and 10 delta and the tenor x delta grid (module docs).

    Parameters
    ----------
    surface : VolSurface
    tenors : sequence of int
        Constant-maturity tenors in days.
    delta : {"premium_adjusted", "forward"}

    Examples
    --------
    >>> fit = volcal.calibrate(volcal.clean(chain), "essvi")        # doctest: +SKIP
    >>> print(surface_conventions(fit.surface()).summary())         # doctest: +SKIP
    """
    from volcal.calibration.delta_pillars import DELTA_CONVENTIONS, strikes_for_delta

    if delta not in DELTA_CONVENTIONS:
        raise ParameterError(f"delta must be one of {DELTA_CONVENTIONS}, got {delta!r}")
    days = tuple(int(d) for d in np.atleast_1d(tenors))
    if not days or any(d <= 0 for d in days):
        raise ParameterError("tenors must be positive numbers of days")
    t = np.asarray(days, dtype=np.float64) / 365.0
    atm = atm_vol(surface, t)
    n = t.size
    levels = np.array([p[1] for p in PILLARS if p[0] != "ATM"])
    calls = np.array([p[2] for p in PILLARS if p[0] != "ATM"])
    tt = np.repeat(t, levels.size)
    k_p = strikes_for_delta(
        surface.implied_vol,
        tt,
        np.tile(levels, n),
        np.tile(calls, n),
        np.repeat(atm, levels.size),
        delta,
    ).reshape(n, levels.size)
    vol_p = np.asarray(surface.implied_vol(np.nan_to_num(k_p).ravel(), tt))
    vol_p = np.where(np.isfinite(k_p), vol_p.reshape(n, levels.size), np.nan)
    vols = np.column_stack([vol_p[:, 0], vol_p[:, 1], atm, vol_p[:, 2], vol_p[:, 3]])
    ks = np.column_stack([k_p[:, 0], k_p[:, 1], np.zeros(n), k_p[:, 2], k_p[:, 3]])
    t_nodes = np.asarray(surface.t_nodes)
    extrap = (t < t_nodes[0]) | (t > t_nodes[-1])
    return SurfaceConventions(
        delta=delta,
        tenor_days=days,
        t=t,
        extrapolated=extrap,
        atm=atm,
        rr25=vols[:, 3] - vols[:, 1],
        bf25=0.5 * (vols[:, 3] + vols[:, 1]) - atm,
        rr10=vols[:, 4] - vols[:, 0],
        bf10=0.5 * (vols[:, 4] + vols[:, 0]) - atm,
        vols=vols,
        k=ks,
    )
