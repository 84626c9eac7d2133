"""Risk: series, VaR/ES, backtests, risk-parameter calibration, and portfolio risk
(positions, valuation and greeks, scenarios, portfolio margin, hedging).

Names are resolved lazily from the explicit table below, so ``import volcal.risk`` does not
load scipy.optimize, scipy.stats or arch; each submodule loads its heavy dependencies only
when its functions run.

>>> from volcal import risk
>>> risk.traffic_light(6).zone
'yellow'
"""

from __future__ import annotations

from volcal._lazy import lazy_attributes

# public name -> defining module (one place; tests resolve every entry)
_LAZY: dict[str, str] = {
    # series
    "PriceSeries": "volcal.risk.series",
    "ReturnSeries": "volcal.risk.series",
    "SeriesReport": "volcal.risk.series",
    "read_prices": "volcal.risk.series",
    "parse_horizon": "volcal.risk.series",
    # VaR
    "VaRResult": "volcal.risk.var",
    "RollingVaR": "volcal.risk.var",
    "value_at_risk": "volcal.risk.var",
    "rolling_var": "volcal.risk.var",
    "fit_gpd": "volcal.risk.var",
    "fit_garch": "volcal.risk.var",
    # backtests
    "LRTest": "volcal.risk.backtest",
    "ChristoffersenResult": "volcal.risk.backtest",
    "TrafficLight": "volcal.risk.backtest",
    "BacktestResult": "volcal.risk.backtest",
    "kupiec": "volcal.risk.backtest",
    "christoffersen": "volcal.risk.backtest",
    "traffic_light": "volcal.risk.backtest",
    "backtest_var": "volcal.risk.backtest",
    "backtest_forecasts": "volcal.risk.backtest",
    # risk-parameter calibration
    "MarginShockResult": "volcal.risk.params",
    "VolShock": "volcal.risk.params",
    "CollateralResult": "volcal.risk.params",
    "DepthCurve": "volcal.risk.params",
    "SquareRootImpact": "volcal.risk.params",
    "KinkedRateModel": "volcal.risk.params",
    "RateCurveFit": "volcal.risk.params",
    "ParameterUpdate": "volcal.risk.params",
    "RegimeUpdate": "volcal.risk.params",
    "calibrate_margin_shock": "volcal.risk.params",
    "calibrate_vol_shock": "volcal.risk.params",
    "collateral_parameters": "volcal.risk.params",
    "fit_kinked_rate": "volcal.risk.params",
    "bounded_update": "volcal.risk.params",
    "regime_update": "volcal.risk.params",
    # portfolio risk: positions, valuation, scenarios, margin, hedging (the modules of
    # `margin` and `hedge_search` have other names, so the functions are not shadowed)
    "Instrument": "volcal.risk.portfolio",
    "Position": "volcal.risk.portfolio",
    "Portfolio": "volcal.risk.portfolio",
    "parse_instrument": "volcal.risk.portfolio",
    "Market": "volcal.risk.valuation",
    "ForwardCurve": "volcal.risk.valuation",
    "MarkVols": "volcal.risk.valuation",
    "SVIVols": "volcal.risk.valuation",
    "ModelVols": "volcal.risk.valuation",
    "VolSource": "volcal.risk.valuation",
    "PortfolioRisk": "volcal.risk.valuation",
    "portfolio_greeks": "volcal.risk.valuation",
    "ScenarioGrid": "volcal.risk.scenario",
    "scenario_grid": "volcal.risk.scenario",
    "DeribitConfig": "volcal.risk.portfolio_margin",
    "SpanConfig": "volcal.risk.portfolio_margin",
    "MarginResult": "volcal.risk.portfolio_margin",
    "margin": "volcal.risk.portfolio_margin",
    "HedgingEvaluation": "volcal.risk.hedging",
    "hedging_errors": "volcal.risk.hedging",
    "HedgeError": "volcal.risk.hedge_program",
    "HedgeResult": "volcal.risk.hedge_program",
    "Target": "volcal.risk.hedge_program",
    "hedge_search": "volcal.risk.hedge_program",
    "parse_targets": "volcal.risk.hedge_program",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes("volcal.risk", _LAZY, globals())
