"""Collateral factors and liquidation thresholds from a price-drop VaR, execution
slippage (depth curve or square-root impact) and the liquidation bonus.

See :mod:`volcal.risk.params` for the method."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal.errors import ParameterError
from volcal.risk.series import PriceSeries
from volcal.risk.var import value_at_risk


@dataclass(frozen=True)
class DepthCurve:
    """Measured execution slippage by order size (piecewise-linear, no extrapolation).

    Parameters
    ----------
    sizes : sequence of float
        Order sizes in USD, strictly increasing, starting above 0.
    slippage : sequence of float
        Average execution slippage (fraction of mid) of a market sell of that size.

    Examples
    --------
    >>> round(DepthCurve([1e5, 1e6, 1e7], [0.001, 0.004, 0.03]).slippage(5.5e6), 6)
    0.017
    """

    sizes: tuple[float, ...]
    slippages: tuple[float, ...]

    def __init__(self, sizes: Sequence[float], slippage: Sequence[float]) -> None:
        s = np.asarray(sizes, dtype=float)
        v = np.asarray(slippage, dtype=float)
        if s.ndim != 1 or s.size < 2 or s.size != v.size:
            raise ParameterError("DepthCurve: sizes and slippage must be 1-D of equal length >= 2")
        if not (np.all(np.diff(s) > 0) and s[0] > 0):
            raise ParameterError("DepthCurve: sizes must be positive and strictly increasing")
        if not (np.all(np.diff(v) >= 0) and np.all((v >= 0) & (v < 1))):
            raise ParameterError("DepthCurve: slippage must be in [0, 1) and non-decreasing")
        object.__setattr__(self, "sizes", tuple(map(float, s)))
        object.__setattr__(self, "slippages", tuple(map(float, v)))

    def slippage(self, size: float) -> float:
        """Slippage of a sell of ``size`` USD (linear from 0 below the first size)."""
        if size < 0:
            raise ParameterError(f"DepthCurve: size {size} must be >= 0")
        if size > self.sizes[-1]:
            raise ParameterError(
                f"DepthCurve: size {size:.4g} is beyond the deepest measured size"
                f" {self.sizes[-1]:.4g}; supply a deeper curve"
            )
        return float(np.interp(size, (0.0, *self.sizes), (0.0, *self.slippages)))

    def describe(self) -> str:
        """Short description."""
        return f"depth curve up to {self.sizes[-1]:.3g} USD"


@dataclass(frozen=True)
class SquareRootImpact:
    """Square-root market impact: ``slippage = c * sigma_daily * sqrt(size / ADV)``.

    Examples
    --------
    >>> round(SquareRootImpact(daily_volume=1e9, daily_vol=0.04).slippage(1e7), 6)
    0.004
    """

    daily_volume: float
    daily_vol: float
    coefficient: float = 1.0

    def __post_init__(self) -> None:
        if not (self.daily_volume > 0 and self.daily_vol > 0 and self.coefficient > 0):
            raise ParameterError("SquareRootImpact: volume, vol and coefficient must be > 0")

    def slippage(self, size: float) -> float:
        """Slippage of a sell of ``size`` USD."""
        if size < 0:
            raise ParameterError(f"SquareRootImpact: size {size} must be >= 0")
        return float(
            min(self.coefficient * self.daily_vol * math.sqrt(size / self.daily_volume), 0.99)
        )

    def describe(self) -> str:
        """Short description."""
        return (
            f"square-root impact c={self.coefficient} sigma={self.daily_vol:.3g}"
            f" ADV={self.daily_volume:.3g}"
        )


@dataclass(frozen=True)
class CollateralResult:
    """Liquidation threshold and collateral factor of an asset and their components."""

    name: str
    method: str
    p: float
    horizon: str
    var: float
    es: float
    slippage: float
    slippage_source: str
    liquidation_bonus: float
    buffer: float
    ltv_gap: float
    liquidation_threshold: float
    collateral_factor: float
    historical_breach_rate: float
    n_windows: int
    warnings: tuple[str, ...] = ()

    @property
    def eligible(self) -> bool:
        """False when the risk leaves no room for any borrowing."""
        return self.collateral_factor > 0

    def summary(self) -> str:
        """Multi-line description."""
        w = "".join(f"\n  warning: {x}" for x in self.warnings)
        return (
            f"{self.name}: liquidation threshold {self.liquidation_threshold:.2%}, collateral"
            f" factor (max LTV) {self.collateral_factor:.2%}\n"
            f"  {self.method.upper()} {1 - self.p:.2%} VaR over {self.horizon}: {self.var:.2%}"
            f" (ES {self.es:.2%}); slippage {self.slippage:.2%} ({self.slippage_source});"
            f" bonus {self.liquidation_bonus:.2%}; buffer {self.buffer:.2%}; LTV gap"
            f" {self.ltv_gap:.2%}\n  historical drops beyond the VaR: {self.historical_breach_rate:.2%}"
            f" of {self.n_windows} windows{w}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "method": self.method,
            "p": self.p,
            "horizon": self.horizon,
            "var": self.var,
            "es": self.es,
            "slippage": self.slippage,
            "slippage_source": self.slippage_source,
            "liquidation_bonus": self.liquidation_bonus,
            "buffer": self.buffer,
            "ltv_gap": self.ltv_gap,
            "liquidation_threshold": self.liquidation_threshold,
            "collateral_factor": self.collateral_factor,
            "eligible": self.eligible,
            "historical_breach_rate": self.historical_breach_rate,
            "n_windows": self.n_windows,
            "warnings": list(self.warnings),
        }


def collateral_parameters(
    series: PriceSeries,
    horizon: str | int = "1d",
    p: float = 0.01,
    *,
    method: str = "evt",
    window: int | None = None,
    slippage: float | DepthCurve | SquareRootImpact = 0.0,
    liquidation_size: float | None = None,
    liquidation_bonus: float = 0.05,
    buffer: float = 0.02,
    ltv_gap: float = 0.05,
) -> CollateralResult:
    """Liquidation threshold and collateral factor from VaR, slippage and buffers.

    .. math:: LT = \\frac{(1 - d)(1 - s)}{1 + b} - \\text{buffer},\\qquad
              CF = LT - \\text{ltv\\_gap},

    with ``d`` the long-side VaR (fraction) over the liquidation horizon, ``s`` the
    execution slippage and ``b`` the liquidation bonus.

    Parameters
    ----------
    series : PriceSeries
    horizon : str or int
        Liquidation horizon.
    p : float
        Tail probability of the price drop (0.01: 99 %).
    method : {"hs", "fhs", "evt"}
    window : int, optional
        History used for the VaR (default all).
    slippage : float, DepthCurve or SquareRootImpact
        A fixed slippage fraction, or a model evaluated at ``liquidation_size``.
    liquidation_size : float, optional
        USD size liquidated at once (required with a model).
    liquidation_bonus, buffer, ltv_gap : float
        Fractions (e.g. 0.05, 0.02, 0.05).

    Examples
    --------
    >>> collateral_parameters(s, "1d", slippage=0.01).liquidation_threshold  # doctest: +SKIP
    0.81
    """
    for nm, val in (
        ("liquidation_bonus", liquidation_bonus),
        ("buffer", buffer),
        ("ltv_gap", ltv_gap),
    ):
        if not 0.0 <= val < 1.0:
            raise ParameterError(f"collateral: {nm}={val} must be in [0, 1)")
    if isinstance(slippage, int | float):
        s = float(slippage)
        if not 0.0 <= s < 1.0:
            raise ParameterError(f"collateral: slippage={s} must be in [0, 1)")
        source = "fixed"
    else:
        if liquidation_size is None:
            raise ParameterError("collateral: a slippage model needs liquidation_size (USD)")
        s = slippage.slippage(float(liquidation_size))
        source = f"{slippage.describe()} at {liquidation_size:.3g} USD"
    vr = value_at_risk(series, p, method, horizon=horizon, window=window, side="long")
    d, es = vr.var_fraction, vr.es_fraction
    lt = (1.0 - d) * (1.0 - s) / (1.0 + liquidation_bonus) - buffer
    cf = lt - ltv_gap
    notes = list(vr.warnings)
    if cf <= 0:
        notes.append("collateral factor <= 0: the asset cannot back any borrowing at this risk")
    k = series.steps(horizon)
    moves = series.returns(k, overlapping=False, kind="simple")
    breach = float(np.mean(-moves.values > d))
    return CollateralResult(
        name=series.name,
        method=method,
        p=vr.p,
        horizon=vr.horizon,
        var=d,
        es=es,
        slippage=s,
        slippage_source=source,
        liquidation_bonus=liquidation_bonus,
        buffer=buffer,
        ltv_gap=ltv_gap,
        liquidation_threshold=max(lt, 0.0),
        collateral_factor=max(cf, 0.0),
        historical_breach_rate=breach,
        n_windows=len(moves),
        warnings=tuple(notes),
    )


# ============================================================================ rate curve
