"""Risk-parameter calibration: margin shocks, vol shocks, collateral factors, rate curves,
regime-aware bounded updates.

Margin shock (:func:`calibrate_margin_shock`)
    A margin of ``s`` (fraction of position value) covers a long (short) position over
    the liquidation horizon ``h`` when the realised move ``P_{t+h}/P_t - 1`` stays above
    ``-s`` (below ``s``). A rolling VaR at ``p = 1 - target`` (HS, FHS or EVT, see
    :mod:`volcal.risk.var`) gives ``VaR_t``; the shock rule is ``m * VaR_t`` with the
    smallest multiplier ``m`` whose coverage on the *training* part of the history is at
    least the target (``m`` = the ``target`` order statistic of ``L_t / VaR_t``). The rule is
    then proved on the later, untouched *test* part with Kupiec, Christoffersen and the
    traffic light. The static alternative (one unconditional quantile of the training
    moves) is reported next to it. Vol shocks are the same calibration on the DVOL index:
    the smallest relative DVOL rise (fall) over ``h`` not exceeded with probability
    ``target`` in training, with its test coverage.

Collateral (:func:`collateral_parameters`)
    With a price drop ``d`` (VaR of the long side over the liquidation horizon), an
    execution slippage ``s`` (from a depth curve or an impact model) and a liquidation
    bonus ``b``, the liquidated collateral still covers the debt plus the bonus when
    ``LT <= (1-d)(1-s)/(1+b)``; the liquidation threshold is that bound minus a safety
    ``buffer`` and the collateral factor (maximum LTV) sits ``ltv_gap`` below it (the
    Chaos Labs LTV/LT buffer).

Kinked rate curve (:class:`KinkedRateModel`, :func:`fit_kinked_rate`)
    Aave/Compound: ``R(U) = R0 + U/U_opt S1`` for ``U <= U_opt`` and
    ``R0 + S1 + (U-U_opt)/(1-U_opt) S2`` above. For fixed ``U_opt`` the curve is linear in
    ``(R0, S1, S2)``, fitted by non-negative least squares; ``U_opt`` is profiled on a grid
    and refined by a bounded scalar search.

Regime-aware updates (:func:`regime_update`, :func:`bounded_update`)
    The current volatility regime (tercile of trailing realised vol over history) selects
    the historical moves that started in the same regime; their target quantiles are the
    proposed shocks, and each parameter moves at most ``max_step`` (relative) per update.
"""

from volcal.risk.params.collateral import (
    CollateralResult,
    DepthCurve,
    SquareRootImpact,
    collateral_parameters,
)
from volcal.risk.params.margin import (
    MarginShockResult,
    SideCalibration,
    VolShock,
    calibrate_margin_shock,
    calibrate_vol_shock,
)
from volcal.risk.params.rates import KinkedRateModel, RateCurveFit, fit_kinked_rate
from volcal.risk.params.updates import (
    ParameterUpdate,
    RegimeUpdate,
    bounded_update,
    regime_update,
)

__all__ = [
    "CollateralResult",
    "DepthCurve",
    "KinkedRateModel",
    "MarginShockResult",
    "ParameterUpdate",
    "RateCurveFit",
    "RegimeUpdate",
    "SideCalibration",
    "SquareRootImpact",
    "VolShock",
    "bounded_update",
    "calibrate_margin_shock",
    "calibrate_vol_shock",
    "collateral_parameters",
    "fit_kinked_rate",
    "regime_update",
]
