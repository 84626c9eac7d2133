"""VaR backtests: Kupiec POF, Christoffersen independence and conditional coverage, Basel
traffic light, and rolling out-of-sample backtests of the VaR methods.

With ``n`` forecasts, ``x`` exceptions (loss > VaR) and tail probability ``p``:

Kupiec (1995) proportion of failures, chi2(1) under H0 ``P(exception) = p``:

.. math:: LR_{POF} = -2 \\ln\\frac{(1-p)^{n-x} p^x}{(1-\\hat\\pi)^{n-x}\\hat\\pi^x},
          \\quad \\hat\\pi = x/n.

Christoffersen (1998) independence, chi2(1), from the transition counts ``n_ij`` (state
``i`` followed by ``j``) with ``pi_01 = n01/(n00+n01)``, ``pi_11 = n11/(n10+n11)``,
``pi = (n01+n11)/(n00+n01+n10+n11)``:

.. math:: LR_{ind} = -2 \\ln\\frac{(1-\\pi)^{n_{00}+n_{10}}\\pi^{n_{01}+n_{11}}}
          {(1-\\pi_{01})^{n_{00}}\\pi_{01}^{n_{01}}(1-\\pi_{11})^{n_{10}}\\pi_{11}^{n_{11}}},

and conditional coverage ``LR_cc = LR_POF + LR_ind``, chi2(2). ``0^0 = 1`` throughout.

Basel traffic light: 250 daily 99 % forecasts, green 0-4 exceptions (multiplier 3.00),
yellow 5-9 (3.40, 3.50, 3.65, 3.75, 3.85), red >= 10 (4.00). The zone boundaries are
where the binomial(250, 0.01) CDF reaches 95 % and 99.99 %; other sample sizes and ``p``
are mapped through the same CDF (see :func:`traffic_light`).

Examples
--------
>>> import numpy as np
>>> exc = np.zeros(250, dtype=bool); exc[[10, 50, 51, 200, 230, 240]] = True
>>> round(kupiec(exc, 0.01).statistic, 4), traffic_light(exc).zone
(3.5554, 'yellow')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import xlogy
from scipy.stats import binom, chi2

from volcal._typing import ArrayLike, BoolArray
from volcal.errors import DataError, ParameterError
from volcal.risk.var import ProgressFn, RollingVaR, rolling_var

#: Basel plus-factor multipliers by number of exceptions in 250 days at 99 %.
BASEL_MULTIPLIERS: dict[int, float] = {
    0: 3.00,
    1: 3.00,
    2: 3.00,
    3: 3.00,
    4: 3.00,
    5: 3.40,
    6: 3.50,
    7: 3.65,
    8: 3.75,
    9: 3.85,
    10: 4.00,
}
_BASEL_N, _BASEL_P = 250, 0.01


def _as_exceptions(exceptions: ArrayLike, what: str) -> BoolArray:
    e = np.asarray(exceptions)
    if e.ndim != 1 or e.size == 0:
        raise DataError(f"{what}: exceptions must be a non-empty 1-D sequence of 0/1")
    if e.dtype != np.bool_:
        if not np.all(np.isin(e, (0, 1))):
            raise DataError(f"{what}: exceptions must be booleans or 0/1, got other values")
        e = e.astype(bool)
    return e


def _check_p(p: float, what: str) -> float:
    p = float(p)
    if not 0.0 < p < 1.0:
        raise ParameterError(f"{what}: p={p} must be in (0, 1)")
    return p


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio test: statistic, chi-square degrees of freedom and p-value."""

    name: str
    statistic: float
    df: int
    pvalue: float
    n: int
    exceptions: int

    def reject(self, level: float = 0.05) -> bool:
        """True when H0 is rejected at ``level``."""
        return self.pvalue < level

    def summary(self) -> str:
        """One-line description."""
        return (
            f"{self.name}: LR={self.statistic:.4f} (chi2({self.df})), p-value={self.pvalue:.4f},"
            f" {self.exceptions}/{self.n} exceptions"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "statistic": self.statistic,
            "df": self.df,
            "pvalue": self.pvalue,
            "n": self.n,
            "exceptions": self.exceptions,
        }


def _lr(stat: float, df: int) -> tuple[float, float]:
    stat = float(stat)
    stat = stat if stat > 0.0 else 0.0  # an exact fit can round to -1e-16 or -0.0
    return stat, float(chi2.sf(stat, df))


def kupiec(exceptions: ArrayLike, p: float) -> LRTest:
    """Kupiec (1995) proportion-of-failures test.

    Parameters
    ----------
    exceptions : array_like of bool or 0/1
        One entry per forecast, True where the loss exceeded the VaR.
    p : float
        Tail probability of the VaR (0.01 for 99 %).

    Returns
    -------
    LRTest
        ``statistic = LR_POF`` and its chi2(1) p-value.

    Examples
    --------
    >>> kupiec([1] + [0] * 99, 0.01).statistic
    0.0
    """
    e = _as_exceptions(exceptions, "kupiec")
    p = _check_p(p, "kupiec")
    n, x = int(e.size), int(e.sum())
    pi = x / n
    ll0 = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1.0 - pi) + xlogy(x, pi)
    stat, pv = _lr(-2.0 * (ll0 - ll1), 1)
    return LRTest("Kupiec POF", stat, 1, pv, n, x)


@dataclass(frozen=True)
class ChristoffersenResult:
    """Christoffersen (1998) conditional-coverage test and its parts.

    ``statistic``/``pvalue`` are those of the conditional-coverage test
    ``LR_cc = LR_POF + LR_ind`` (chi2(2)); ``independence`` and ``coverage`` hold the
    two components.
    """

    statistic: float
    pvalue: float
    df: int
    independence: LRTest
    coverage: LRTest
    n00: int
    n01: int
    n10: int
    n11: int

    @property
    def pi01(self) -> float:
        """P(exception | no exception before)."""
        d = self.n00 + self.n01
        return self.n01 / d if d else 0.0

    @property
    def pi11(self) -> float:
        """P(exception | exception before)."""
        d = self.n10 + self.n11
        return self.n11 / d if d else 0.0

    def summary(self) -> str:
        """Multi-line description."""
        return (
            f"Christoffersen conditional coverage: LR_cc={self.statistic:.4f} (chi2(2)),"
            f" p-value={self.pvalue:.4f}\n  {self.independence.summary()}\n"
            f"  transitions n00={self.n00} n01={self.n01} n10={self.n10} n11={self.n11}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "df": self.df,
            "independence": self.independence.to_dict(),
            "coverage": self.coverage.to_dict(),
            "n00": self.n00,
            "n01": self.n01,
            "n10": self.n10,
            "n11": self.n11,
            "pi01": self.pi01,
            "pi11": self.pi11,
        }


def christoffersen(exceptions: ArrayLike, p: float) -> ChristoffersenResult:
    """Christoffersen (1998) independence and conditional-coverage tests.

    Parameters
    ----------
    exceptions : array_like of bool or 0/1
        Exception indicators in time order (at least 2).
    p : float
        Tail probability of the VaR.

    Returns
    -------
    ChristoffersenResult
        ``.statistic``/``.pvalue``: conditional coverage (chi2(2));
        ``.independence``: ``LR_ind`` (chi2(1)); ``.coverage``: Kupiec POF.

    Examples
    --------
    >>> r = christoffersen([0, 0, 1, 1, 0, 0, 0, 0, 0, 0], 0.1)
    >>> (r.n00, r.n01, r.n10, r.n11), round(r.independence.statistic, 4)
    ((6, 1, 1, 1), 1.0205)
    """
    e = _as_exceptions(exceptions, "christoffersen")
    p = _check_p(p, "christoffersen")
    if e.size < 2:
        raise DataError("christoffersen: needs at least 2 exception indicators")
    prev, cur = e[:-1], e[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    pi01 = n01 / (n00 + n01) if (n00 + n01) else 0.0
    pi11 = n11 / (n10 + n11) if (n10 + n11) else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll0 = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll1 = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    stat_ind, pv_ind = _lr(-2.0 * (ll0 - ll1), 1)
    ind = LRTest("Christoffersen independence", stat_ind, 1, pv_ind, int(e.size), int(e.sum()))
    cov = kupiec(e, p)
    stat_cc, pv_cc = _lr(cov.statistic + stat_ind, 2)
    return ChristoffersenResult(stat_cc, pv_cc, 2, ind, cov, n00, n01, n10, n11)


@dataclass(frozen=True)
class TrafficLight:
    """Basel traffic-light zone and capital multiplier.

    Attributes
    ----------
    zone : str
        ``"green"``, ``"yellow"`` or ``"red"``.
    multiplier : float
        Basel multiplier (3 + plus factor).
    exceptions, n : int
        Exceptions and forecasts.
    p : float
        Tail probability.
    cumulative_probability : float
        Binomial ``P(X <= exceptions)`` under ``H0`` (n, p).
    equivalent_250 : int
        Exception count in the Basel 250-day/99 % table with the same cumulative
        probability (equals ``exceptions`` when n = 250 and p = 0.01; capped at 10).
    """

    zone: str
    multiplier: float
    exceptions: int
    n: int
    p: float
    cumulative_probability: float
    equivalent_250: int

    def summary(self) -> str:
        """One-line description."""
        return (
            f"Basel traffic light: {self.zone.upper()} ({self.exceptions} exceptions in"
            f" {self.n} at p={self.p}; 250-day equivalent {self.equivalent_250}),"
            f" multiplier {self.multiplier:.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "zone": self.zone,
            "multiplier": self.multiplier,
            "exceptions": self.exceptions,
            "n": self.n,
            "p": self.p,
            "cumulative_probability": self.cumulative_probability,
            "equivalent_250": self.equivalent_250,
        }


def traffic_light(
    exceptions: ArrayLike | int, p: float = 0.01, *, n: int | None = None
) -> TrafficLight:
    """Basel traffic-light zone and capital multiplier of a backtest.

    For 250 forecasts at ``p = 0.01`` this is the Basel table: green 0-4 exceptions
    (multiplier 3.00), yellow 5-9 (3.40, 3.50, 3.65, 3.75, 3.85), red >= 10 (4.00).
    Other ``n`` and ``p`` are mapped to the Basel table through the binomial CDF:
    the equivalent count is the smallest ``k`` with
    ``F_{250, 0.01}(k) >= F_{n, p}(x)``, and zone and multiplier are those of ``k``
    (so green means ``F_{n,p}(x) < 95 %``, red ``>= 99.99 %`` up to the table's grain).

    Parameters
    ----------
    exceptions : array_like of bool, or int
        Exception indicators, or the count of exceptions.
    p : float
        Tail probability of the VaR (Basel: 0.01).
    n : int, optional
        Number of forecasts when ``exceptions`` is a count (default 250).

    Examples
    --------
    >>> [traffic_light(x).zone for x in (4, 5, 9, 10)]
    ['green', 'yellow', 'yellow', 'red']
    >>> traffic_light(7).multiplier
    3.65
    """
    p = _check_p(p, "traffic_light")
    if isinstance(exceptions, int | np.integer) and not isinstance(exceptions, bool):
        x = int(exceptions)
        nn = _BASEL_N if n is None else int(n)
        if nn < 1 or not 0 <= x <= nn:
            raise DataError(f"traffic_light: {x} exceptions in {nn} forecasts is impossible")
    else:
        e = _as_exceptions(exceptions, "traffic_light")
        x, nn = int(e.sum()), int(e.size)
        if n is not None and n != nn:
            raise DataError(f"traffic_light: n={n} disagrees with {nn} exception indicators")
    cdf = float(binom.cdf(x, nn, p))
    if nn == _BASEL_N and math.isclose(p, _BASEL_P):
        k = min(x, 10)
    else:
        table = binom.cdf(np.arange(11), _BASEL_N, _BASEL_P)
        # tolerance: a CDF equal to a table entry up to rounding maps onto it
        idx = np.flatnonzero(table >= cdf - 1e-12)
        k = int(idx[0]) if idx.size else 10
    zone = "green" if k <= 4 else ("yellow" if k <= 9 else "red")
    return TrafficLight(zone, BASEL_MULTIPLIERS[k], x, nn, p, cdf, k)


# ---------------------------------------------------------------------------- backtest
@dataclass(frozen=True)
class BacktestResult:
    """Out-of-sample backtest of a rolling VaR: exceptions and the three tests."""

    forecasts: RollingVaR = field(repr=False)
    kupiec: LRTest
    christoffersen: ChristoffersenResult
    traffic_light: TrafficLight

    @property
    def n(self) -> int:
        """Number of forecasts."""
        return len(self.forecasts)

    @property
    def exceptions(self) -> int:
        """Number of exceptions."""
        return int(self.forecasts.exceptions.sum())

    @property
    def expected(self) -> float:
        """Expected exceptions ``n p``."""
        return self.n * self.forecasts.p

    def row(self) -> dict[str, Any]:
        """One flat table row (for Rich / markdown tables)."""
        f = self.forecasts
        return {
            "series": f.name,
            "method": f.method,
            "side": f.side,
            "horizon": f.horizon,
            "p": f.p,
            "n": self.n,
            "exceptions": self.exceptions,
            "expected": round(self.expected, 1),
            "rate": self.exceptions / self.n,
            "LR_pof": self.kupiec.statistic,
            "p_pof": self.kupiec.pvalue,
            "LR_ind": self.christoffersen.independence.statistic,
            "p_ind": self.christoffersen.independence.pvalue,
            "LR_cc": self.christoffersen.statistic,
            "p_cc": self.christoffersen.pvalue,
            "zone": self.traffic_light.zone,
            "multiplier": self.traffic_light.multiplier,
        }

    def summary(self) -> str:
        """Multi-line description."""
        return "\n".join(
            [
                self.forecasts.summary(),
                "  " + self.kupiec.summary(),
                "  " + self.christoffersen.summary().replace("\n", "\n  "),
                "  " + self.traffic_light.summary(),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "forecasts": self.forecasts.to_dict(),
            "kupiec": self.kupiec.to_dict(),
            "christoffersen": self.christoffersen.to_dict(),
            "traffic_light": self.traffic_light.to_dict(),
        }


def backtest_forecasts(forecasts: RollingVaR) -> BacktestResult:
    """Run Kupiec, Christoffersen and the traffic light on rolling forecasts."""
    e = forecasts.exceptions
    return BacktestResult(
        forecasts=forecasts,
        kupiec=kupiec(e, forecasts.p),
        christoffersen=christoffersen(e, forecasts.p),
        traffic_light=traffic_light(e, forecasts.p),
    )


def backtest_var(
    series: Any,
    p: float = 0.01,
    method: str = "hs",
    *,
    window: int = 500,
    horizon: str | int | None = None,
    side: str = "long",
    refit_every: int = 20,
    threshold: float = 0.9,
    start: str | None = None,
    progress: ProgressFn | None = None,
) -> BacktestResult:
    """Rolling out-of-sample backtest of a VaR method on a price series.

    Forecasts come from :func:`volcal.risk.var.rolling_var` (see there for the window,
    horizon and re-fit conventions); the exceptions are tested with :func:`kupiec`,
    :func:`christoffersen` and :func:`traffic_light`.

    Examples
    --------
    >>> bt = backtest_var(read_prices("btc_daily.csv"), 0.01, "fhs")   # doctest: +SKIP
    >>> bt.traffic_light.zone                                      # doctest: +SKIP
    'green'
    """
    fc = rolling_var(
        series,
        p,
        method,
        window=window,
        horizon=horizon,
        side=side,
        refit_every=refit_every,
        threshold=threshold,
        start=start,
        progress=progress,
    )
    return backtest_forecasts(fc)


__all__ = [
    "BASEL_MULTIPLIERS",
    "BacktestResult",
    "ChristoffersenResult",
    "LRTest",
    "TrafficLight",
    "backtest_forecasts",
    "backtest_var",
    "christoffersen",
    "kupiec",
    "traffic_light",
]
