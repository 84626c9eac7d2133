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

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import DataError, MethodError, ParameterError
from volcal.risk.backtest import ChristoffersenResult, LRTest, TrafficLight
from volcal.risk.series import PriceSeries, _iso
from volcal.risk.var import ProgressFn, RollingVaR, rolling_var, value_at_risk


def _check_target(target: float) -> float:
    target = float(target)
    if not 0.5 < target < 1.0:
        raise ParameterError(f"target confidence {target} must be in (0.5, 1), e.g. 0.99")
    return target


def _frac(loss_log: float | FloatArray, side: str) -> Any:
    """Log loss -> fraction of position value."""
    return -np.expm1(-np.asarray(loss_log)) if side == "long" else np.expm1(loss_log)


# ============================================================================ margin shock
@dataclass(frozen=True)
class SideCalibration:
    """Margin-shock calibration of one side (long: price falls; short: price rises).

    Attributes
    ----------
    side : str
    multiplier : float
        ``m``: shock rule = ``m * VaR_t``.
    shock : float
        Current shock as a fraction of position value (``m`` times the latest VaR).
    n_train, n_test : int
        Non-overlapping horizon windows used for calibration and for the test.
    train_coverage, test_coverage : float
        Share of windows whose move the shock rule covered.
    kupiec, christoffersen, traffic_light
        Tests of the test-period exceptions at ``p = 1 - target``.
    static_shock, static_test_coverage : float
        Unconditional ``target`` quantile of the training moves (fraction) and its
        coverage in the test period.
    test_start : str
        First test window end.
    """

    side: str
    multiplier: float
    shock: float
    n_train: int
    n_test: int
    train_coverage: float
    test_coverage: float
    kupiec: LRTest
    christoffersen: ChristoffersenResult
    traffic_light: TrafficLight
    static_shock: float
    static_test_coverage: float
    static_kupiec: LRTest
    test_start: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "side": self.side,
            "multiplier": self.multiplier,
            "shock": self.shock,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "train_coverage": self.train_coverage,
            "test_coverage": self.test_coverage,
            "kupiec": self.kupiec.to_dict(),
            "christoffersen": self.christoffersen.to_dict(),
            "traffic_light": self.traffic_light.to_dict(),
            "static_shock": self.static_shock,
            "static_test_coverage": self.static_test_coverage,
            "static_kupiec": self.static_kupiec.to_dict(),
            "test_start": self.test_start,
        }


@dataclass(frozen=True)
class VolShock:
    """DVOL shock over the horizon: relative rise and fall at the target, with test coverage."""

    name: str
    horizon: str
    up: float
    down: float
    current_shock_up: float
    current_shock_down: float
    n_train: int
    n_test: int
    test_coverage_up: float
    test_coverage_down: float
    kupiec_up: LRTest
    kupiec_down: LRTest

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "horizon": self.horizon,
            "train_up": self.up,
            "train_down": self.down,
            "shock_up": self.current_shock_up,
            "shock_down": self.current_shock_down,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "test_coverage_up": self.test_coverage_up,
            "test_coverage_down": self.test_coverage_down,
            "kupiec_up": self.kupiec_up.to_dict(),
            "kupiec_down": self.kupiec_down.to_dict(),
        }


@dataclass(frozen=True)
class MarginShockResult:
    """Calibrated margin shocks (both sides), optional vol shocks, and their proof."""

    name: str
    method: str
    target: float
    horizon: str
    window: int
    refit_every: int
    train_fraction: float
    as_of: str
    long: SideCalibration
    short: SideCalibration
    vol: VolShock | None = None
    forecasts: tuple[RollingVaR, RollingVaR] = field(default=(), repr=False)  # type: ignore[assignment]
    warnings: tuple[str, ...] = ()

    @property
    def shock_down(self) -> float:
        """Price-fall shock for long positions (fraction)."""
        return self.long.shock

    @property
    def shock_up(self) -> float:
        """Price-rise shock for short positions (fraction)."""
        return self.short.shock

    def summary(self) -> str:
        """Multi-line description."""
        lines = [
            f"{self.name}: margin shock at {self.target:.2%} over {self.horizon}"
            f" ({self.method.upper()} window {self.window}, as of {self.as_of})"
        ]
        for s in (self.long, self.short):
            lines.append(
                f"  {s.side:5s}: shock {s.shock:.2%} (m={s.multiplier:.3f}); test coverage"
                f" {s.test_coverage:.2%} over {s.n_test} windows from {s.test_start[:10]},"
                f" Kupiec p={s.kupiec.pvalue:.3f}, {s.traffic_light.zone};"
                f" static {s.static_shock:.2%} -> {s.static_test_coverage:.2%}"
            )
        if self.vol is not None:
            v = self.vol
            lines.append(
                f"  vol  : DVOL +{v.current_shock_up:.1%} / -{v.current_shock_down:.1%}"
                f" (test coverage {v.test_coverage_up:.2%} / {v.test_coverage_down:.2%})"
            )
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "method": self.method,
            "target": self.target,
            "horizon": self.horizon,
            "window": self.window,
            "refit_every": self.refit_every,
            "train_fraction": self.train_fraction,
            "as_of": self.as_of,
            "shock_down": self.shock_down,
            "shock_up": self.shock_up,
            "long": self.long.to_dict(),
            "short": self.short.to_dict(),
            "vol": None if self.vol is None else self.vol.to_dict(),
            "warnings": list(self.warnings),
        }


def _split(n: int, train_fraction: float, what: str) -> int:
    if not 0.1 <= train_fraction <= 0.9:
        raise ParameterError(f"train_fraction={train_fraction} must be in [0.1, 0.9]")
    n_train = math.floor(n * train_fraction)
    if n_train < 20 or n - n_train < 20:
        raise DataError(
            f"{what}: {n} horizon windows are too few to calibrate and test (need 20 in each part)"
        )
    return n_train


def _tests(exc: np.ndarray, p: float) -> tuple[LRTest, ChristoffersenResult, TrafficLight]:
    from volcal.risk.backtest import christoffersen, kupiec, traffic_light

    return kupiec(exc, p), christoffersen(exc, p), traffic_light(exc, p)


def _calibrate_side(
    fc: RollingVaR, target: float, train_fraction: float, min_multiplier: float, latest_var: float
) -> SideCalibration:
    losses = fc.losses
    var = fc.var
    if np.any(var <= 0):
        raise MethodError(
            f"{fc.name}: the {fc.method} VaR is not positive in {int(np.sum(var <= 0))} windows;"
            " a multiplier cannot scale it (use a longer window or another method)"
        )
    n = var.size
    n_train = _split(n, train_fraction, fc.name)
    ratio = losses[:n_train] / var[:n_train]
    m = float(np.quantile(ratio, target, method="inverted_cdf"))
    m = max(m, min_multiplier)
    covered = losses / var <= m  # the rule L <= m VaR, without rounding at the boundary
    p = 1.0 - target
    exc_test = ~covered[n_train:]
    k, c, tl = _tests(exc_test, p)
    # static: one unconditional quantile of the training moves
    static = float(np.quantile(losses[:n_train], target, method="inverted_cdf"))
    static_exc = losses[n_train:] > static
    from volcal.risk.backtest import kupiec

    return SideCalibration(
        side=fc.side,
        multiplier=m,
        shock=float(_frac(m * latest_var, fc.side)),
        n_train=n_train,
        n_test=n - n_train,
        train_coverage=float(covered[:n_train].mean()),
        test_coverage=float(1.0 - exc_test.mean()),
        kupiec=k,
        christoffersen=c,
        traffic_light=tl,
        static_shock=float(_frac(static, fc.side)),
        static_test_coverage=float(1.0 - static_exc.mean()),
        static_kupiec=kupiec(static_exc, p),
        test_start=_iso(fc.times[n_train]),
    )


def calibrate_vol_shock(
    vol_series: PriceSeries,
    target: float = 0.99,
    horizon: str | int = "1d",
    *,
    train_fraction: float = 0.5,
) -> VolShock:
    """Smallest relative DVOL rise/fall over ``horizon`` covered at ``target``.

    Calibrated on the first ``train_fraction`` of the non-overlapping horizon log changes
    ``ln(V_{t+h}/V_t)``, tested on the rest; the current shocks use the whole history.
    ``up = exp(q_target) - 1``, ``down = 1 - exp(q_{1-target})``.
    """
    target = _check_target(target)
    r = vol_series.returns(horizon, overlapping=False, min_obs=40)
    x = r.values
    n_train = _split(x.size, train_fraction, vol_series.name)
    q_up = float(np.quantile(x[:n_train], target, method="inverted_cdf"))
    q_dn = float(np.quantile(-x[:n_train], target, method="inverted_cdf"))
    exc_up = x[n_train:] > q_up
    exc_dn = -x[n_train:] > q_dn
    full_up = float(np.quantile(x, target, method="inverted_cdf"))
    full_dn = float(np.quantile(-x, target, method="inverted_cdf"))
    from volcal.risk.backtest import kupiec

    p = 1.0 - target
    return VolShock(
        name=vol_series.name,
        horizon=r.horizon_label,
        up=math.expm1(q_up),
        down=-math.expm1(-q_dn),
        current_shock_up=math.expm1(full_up),
        current_shock_down=-math.expm1(-full_dn),
        n_train=n_train,
        n_test=int(x.size - n_train),
        test_coverage_up=float(1.0 - exc_up.mean()),
        test_coverage_down=float(1.0 - exc_dn.mean()),
        kupiec_up=kupiec(exc_up, p),
        kupiec_down=kupiec(exc_dn, p),
    )


def calibrate_margin_shock(
    series: PriceSeries,
    target: float = 0.99,
    horizon: str | int = "1d",
    *,
    method: str = "hs",
    window: int = 365,
    refit_every: int = 20,
    train_fraction: float = 0.5,
    min_multiplier: float = 1.0,
    vol_series: PriceSeries | None = None,
    progress: ProgressFn | None = None,
) -> MarginShockResult:
    """Calibrate the smallest margin shocks covering moves over ``horizon`` at ``target``.

    Parameters
    ----------
    series : PriceSeries
        Price history (daily or hourly).
    target : float
        Coverage target, e.g. 0.99.
    horizon : str or int
        Liquidation horizon, e.g. ``"1d"``, ``"3d"``, ``"4h"``.
    method : {"hs", "fhs", "evt"}
        Rolling VaR underneath the shock rule ``m * VaR_t``.
    window, refit_every : int
        Rolling window (sampling steps) and re-fit interval (forecasts), see
        :func:`volcal.risk.var.rolling_var`.
    train_fraction : float
        Share of the forecast windows used to choose ``m``; the rest is the test.
    min_multiplier : float
        Floor on ``m``. The default 1 never loosens the VaR model's own estimate: the
        training quantile of ``L_t / VaR_t`` rests on ~``n_train (1 - target)`` tail
        events, and a value below 1 is mostly that sampling noise (it under-covered out
        of sample in our tests); 0 lets the training data decide alone.
    vol_series : PriceSeries, optional
        DVOL history for the vol shocks (:func:`calibrate_vol_shock`).
    progress : callable, optional
        ``progress(done, total)`` across both sides.

    Returns
    -------
    MarginShockResult
        ``shock_down``/``shock_up`` with their train/test coverage and backtests.

    Examples
    --------
    >>> res = calibrate_margin_shock(read_prices("btc_daily.csv"), 0.99, "1d")  # doctest: +SKIP
    >>> res.long.test_coverage >= 0.98                                           # doctest: +SKIP
    True
    """
    target = _check_target(target)
    p = 1.0 - target
    fcs = []
    sides = []
    for i, side in enumerate(("long", "short")):

        def prog(done: int, total: int, _i: int = i) -> None:
            if progress is not None:
                progress(_i * total + done, 2 * total)

        fc = rolling_var(
            series,
            p,
            method,
            window=window,
            horizon=horizon,
            side=side,
            refit_every=refit_every,
            progress=prog,
        )
        latest = value_at_risk(series, p, method, horizon=horizon, window=window, side=side)
        sides.append(_calibrate_side(fc, target, train_fraction, min_multiplier, latest.var))
        fcs.append(fc)
    vol = None
    if vol_series is not None:
        vol = calibrate_vol_shock(vol_series, target, horizon, train_fraction=train_fraction)
    notes = tuple(sorted(set(fcs[0].warnings) | set(fcs[1].warnings)))
    return MarginShockResult(
        name=series.name,
        method=method,
        target=target,
        horizon=fcs[0].horizon,
        window=window,
        refit_every=fcs[0].refit_every,
        train_fraction=train_fraction,
        as_of=_iso(series.times[-1]),
        long=sides[0],
        short=sides[1],
        vol=vol,
        forecasts=(fcs[0], fcs[1]),
        warnings=notes,
    )


# ============================================================================ collateral
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
@dataclass(frozen=True)
class KinkedRateModel:
    """Aave/Compound kinked borrow-rate curve.

    .. math:: R(U) = R_0 + \\frac{\\min(U, U_{opt})}{U_{opt}} S_1
              + \\frac{\\max(U - U_{opt}, 0)}{1 - U_{opt}} S_2

    Examples
    --------
    >>> m = KinkedRateModel(base=0.0, slope1=0.04, slope2=0.75, u_opt=0.8)
    >>> [round(float(x), 4) for x in m.rate([0.4, 0.8, 0.9, 1.0])]
    [0.02, 0.04, 0.415, 0.79]
    """

    base: float
    slope1: float
    slope2: float
    u_opt: float

    def __post_init__(self) -> None:
        if not 0.0 < self.u_opt < 1.0:
            raise ParameterError(f"KinkedRateModel: u_opt={self.u_opt} must be in (0, 1)")
        if min(self.base, self.slope1, self.slope2) < 0:
            raise ParameterError("KinkedRateModel: base, slope1 and slope2 must be >= 0")

    @classmethod
    def from_targets(
        cls, *, base: float, rate_at_optimal: float, rate_at_full: float, u_opt: float
    ) -> KinkedRateModel:
        """Curve through ``R(0) = base``, ``R(U_opt) = rate_at_optimal``, ``R(1) = rate_at_full``."""
        return cls(base, rate_at_optimal - base, rate_at_full - rate_at_optimal, u_opt)

    def rate(self, utilisation: ArrayLike) -> FloatArray:
        """Borrow rate at utilisation ``U`` in [0, 1]."""
        u = np.asarray(utilisation, dtype=float)
        if np.any((u < 0) | (u > 1)) or not np.all(np.isfinite(u)):
            raise ParameterError("utilisation must be finite and in [0, 1]")
        return (
            self.base
            + np.minimum(u, self.u_opt) / self.u_opt * self.slope1
            + np.maximum(u - self.u_opt, 0.0) / (1.0 - self.u_opt) * self.slope2
        )

    def supply_rate(self, utilisation: ArrayLike, reserve_factor: float = 0.1) -> FloatArray:
        """Supply rate ``R(U) U (1 - reserve_factor)``."""
        u = np.asarray(utilisation, dtype=float)
        return self.rate(u) * u * (1.0 - reserve_factor)

    def summary(self) -> str:
        """One-line description."""
        return (
            f"kinked rate: base {self.base:.2%}, slope1 {self.slope1:.2%}, slope2"
            f" {self.slope2:.2%}, optimal utilisation {self.u_opt:.2%}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "base": self.base,
            "slope1": self.slope1,
            "slope2": self.slope2,
            "u_opt": self.u_opt,
        }


@dataclass(frozen=True)
class RateCurveFit:
    """Fit of a kinked rate curve: the model, RMSE and residuals."""

    model: KinkedRateModel
    rmse: float
    max_abs_error: float
    n: int
    u_opt_fitted: bool

    def summary(self) -> str:
        """One-line description."""
        return f"{self.model.summary()}; RMSE {self.rmse:.4%} over {self.n} points"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            **self.model.to_dict(),
            "rmse": self.rmse,
            "max_abs_error": self.max_abs_error,
            "n": self.n,
            "u_opt_fitted": self.u_opt_fitted,
        }


def fit_kinked_rate(
    utilisation: ArrayLike,
    rate: ArrayLike,
    *,
    u_opt: float | None = None,
    weights: ArrayLike | None = None,
) -> RateCurveFit:
    """Fit ``(R0, S1, S2, U_opt)`` of a kinked curve to a utilisation/rate history or targets.

    For fixed ``U_opt`` the curve is linear in ``(R0, S1, S2) >= 0``, solved by NNLS;
    ``U_opt`` (unless given) minimises the weighted squared error over a 0.5 % grid with
    at least one point on each side, refined by a bounded scalar search.

    Examples
    --------
    >>> u = np.linspace(0, 1, 21)
    >>> fit = fit_kinked_rate(u, KinkedRateModel(0.01, 0.05, 0.6, 0.85).rate(u))
    >>> round(fit.model.u_opt, 3), round(fit.model.slope2, 3)
    (0.85, 0.6)
    """
    from scipy.optimize import minimize_scalar, nnls

    u = np.asarray(utilisation, dtype=float)
    r = np.asarray(rate, dtype=float)
    if u.ndim != 1 or u.shape != r.shape or u.size < 3:
        raise DataError("fit_kinked_rate: utilisation and rate must be 1-D, equal length >= 3")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(r))):
        raise DataError("fit_kinked_rate: utilisation and rate must be finite")
    if np.any((u < 0) | (u > 1)):
        raise DataError("fit_kinked_rate: utilisation must be in [0, 1]")
    w = np.ones_like(u) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != u.shape or np.any(w < 0):
        raise DataError("fit_kinked_rate: weights must be non-negative, one per point")
    sw = np.sqrt(w)

    def solve(uo: float) -> tuple[float, FloatArray]:
        x = np.column_stack(
            [np.ones_like(u), np.minimum(u, uo) / uo, np.maximum(u - uo, 0.0) / (1.0 - uo)]
        )
        coef, _ = nnls(x * sw[:, None], r * sw)
        resid = x @ coef - r
        return float(np.sum(w * resid**2)), coef

    if u_opt is not None:
        if not 0.0 < u_opt < 1.0:
            raise ParameterError(f"fit_kinked_rate: u_opt={u_opt} must be in (0, 1)")
        if not np.any(u > u_opt):
            raise DataError(
                f"fit_kinked_rate: no point above u_opt={u_opt}; slope2 is unidentified"
            )
        uo = float(u_opt)
    else:
        grid = np.arange(0.05, 0.99, 0.005)
        grid = grid[[np.any(u < g) and np.any(u > g) for g in grid]]
        if grid.size == 0:
            raise DataError("fit_kinked_rate: utilisation does not spread around any kink")
        sse = np.array([solve(float(g))[0] for g in grid])
        i = int(np.argmin(sse))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        uo = float(grid[i])
        if hi > lo:
            res = minimize_scalar(
                lambda g: solve(float(g))[0],
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-6},
            )
            if res.success and res.fun <= sse[i]:
                uo = float(res.x)
    _, coef = solve(uo)
    model = KinkedRateModel(float(coef[0]), float(coef[1]), float(coef[2]), uo)
    resid = model.rate(u) - r
    return RateCurveFit(
        model=model,
        rmse=float(np.sqrt(np.mean(resid**2))),
        max_abs_error=float(np.max(np.abs(resid))),
        n=int(u.size),
        u_opt_fitted=u_opt is None,
    )


# ============================================================================ regime updates
@dataclass(frozen=True)
class ParameterUpdate:
    """Bounded step from current to proposed parameters."""

    current: dict[str, float]
    proposed: dict[str, float]
    new: dict[str, float]
    clipped: tuple[str, ...]
    max_step: float

    def summary(self) -> str:
        """One line per parameter."""
        return "\n".join(
            f"{k}: {self.current[k]:.4g} -> proposed {self.proposed[k]:.4g} -> new"
            f" {self.new[k]:.4g}{' (step bounded)' if k in self.clipped else ''}"
            for k in self.new
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "current": self.current,
            "proposed": self.proposed,
            "new": self.new,
            "clipped": list(self.clipped),
            "max_step": self.max_step,
        }


def bounded_update(
    current: Mapping[str, float], proposed: Mapping[str, float], max_step: float = 0.25
) -> ParameterUpdate:
    """Move each parameter toward its proposal by at most ``max_step`` relative change.

    ``new = clip(proposed, current (1 - max_step), current (1 + max_step))``.

    Examples
    --------
    >>> bounded_update({"shock": 0.10}, {"shock": 0.20}, 0.25).new
    {'shock': 0.125}
    """
    if not 0.0 < max_step:
        raise ParameterError(f"bounded_update: max_step={max_step} must be > 0")
    if set(current) != set(proposed):
        raise ParameterError(
            f"bounded_update: parameter names differ: {sorted(current)} vs {sorted(proposed)}"
        )
    new: dict[str, float] = {}
    clipped = []
    for k in current:
        c, pr = float(current[k]), float(proposed[k])
        if not (math.isfinite(c) and math.isfinite(pr)):
            raise ParameterError(f"bounded_update: {k} is not finite")
        lo, hi = sorted((c * (1.0 - max_step), c * (1.0 + max_step)))
        v = min(max(pr, lo), hi)
        if v != pr:
            clipped.append(k)
        new[k] = v
    return ParameterUpdate(
        {k: float(v) for k, v in current.items()},
        {k: float(v) for k, v in proposed.items()},
        new,
        tuple(clipped),
        max_step,
    )


@dataclass(frozen=True)
class RegimeUpdate:
    """Regime-aware margin-shock update."""

    name: str
    as_of: str
    regime: str
    current_vol: float
    thresholds: tuple[float, float]
    n_regime_windows: int
    update: ParameterUpdate

    def summary(self) -> str:
        """Multi-line description."""
        return (
            f"{self.name} as of {self.as_of}: {self.regime} volatility regime"
            f" (annualised {self.current_vol:.1%}; terciles {self.thresholds[0]:.1%} /"
            f" {self.thresholds[1]:.1%}; {self.n_regime_windows} windows in regime)\n"
            + self.update.summary()
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "as_of": self.as_of,
            "regime": self.regime,
            "current_vol": self.current_vol,
            "thresholds": list(self.thresholds),
            "n_regime_windows": self.n_regime_windows,
            **self.update.to_dict(),
        }


def regime_update(
    series: PriceSeries,
    current: Mapping[str, float],
    target: float = 0.99,
    horizon: str | int = "1d",
    *,
    lookback: int = 30,
    max_step: float = 0.25,
) -> RegimeUpdate:
    """Propose margin shocks from the latest volatility regime; apply a bounded step.

    The trailing realised vol ``sigma_t`` (standard deviation of the last ``lookback``
    one-step log returns) is split into terciles over the history (low / normal / high).
    The proposed ``shock_down``/``shock_up`` are the ``target`` quantiles of the
    non-overlapping horizon moves that started in the same regime as today; the new
    parameters move at most ``max_step`` relative to ``current`` (keys ``shock_down``,
    ``shock_up``).
    """
    target = _check_target(target)
    if set(current) != {"shock_down", "shock_up"}:
        raise ParameterError("regime_update: current must have keys 'shock_down' and 'shock_up'")
    k = series.steps(horizon)
    tg, g = series.grid()
    logp = np.log(g)
    r1 = np.diff(logp)  # r1[i] ends at grid i+1
    n = g.size
    if n < lookback + 10 * k + 2:
        raise DataError(f"{series.name}: too short for a {lookback}-step regime lookback")
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(
        r1, lookback
    )  # win[j] = r1[j : j + lookback], ends at grid j+lookback
    vol = np.full(n, np.nan)
    ok = np.all(np.isfinite(win), axis=1)
    vol[lookback:][ok] = win[ok].std(axis=1, ddof=1)
    finite = np.isfinite(vol)
    if not finite[-1]:
        raise DataError(f"{series.name}: the latest {lookback} steps contain a gap")
    t1, t2 = np.quantile(vol[finite], [1 / 3, 2 / 3])
    labels = np.where(vol <= t1, 0, np.where(vol <= t2, 1, 2))
    now = int(labels[-1])
    starts = np.arange(lookback, n - k, k)
    mv = g[starts + k] / g[starts] - 1.0
    sel = finite[starts] & (labels[starts] == now) & np.isfinite(mv)
    moves = mv[sel]
    need = math.ceil(2.0 / (1.0 - target))
    if moves.size < need:
        raise DataError(
            f"{series.name}: only {moves.size} horizon windows in the current regime; need {need}"
        )
    proposed = {
        "shock_down": float(np.quantile(-moves, target, method="inverted_cdf")),
        "shock_up": float(np.quantile(moves, target, method="inverted_cdf")),
    }
    periods = np.timedelta64(365 * 86400, "s") / series.freq.astype("timedelta64[s]")
    ann = math.sqrt(float(periods))
    return RegimeUpdate(
        name=series.name,
        as_of=_iso(tg[-1]),
        regime=("low", "normal", "high")[now],
        current_vol=float(vol[-1] * ann),
        thresholds=(float(t1 * ann), float(t2 * ann)),
        n_regime_windows=int(moves.size),
        update=bounded_update(current, proposed, max_step),
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
