"""Margin and vol shocks calibrated on price (DVOL) histories by rolling VaR, proved
out of sample with Kupiec, Christoffersen and the traffic light.

See :mod:`volcal.risk.params` for the method."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import FloatArray
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
