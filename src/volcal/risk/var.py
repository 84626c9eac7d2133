"""Value at Risk and expected shortfall: historical, filtered historical (GARCH) and EVT.

Losses are positive numbers in log-return units: for a long position ``L = -r``, for a short
one ``L = r``, with ``r = ln(P_{t+h} / P_t)`` over the horizon ``h``. At tail probability
``p`` (``p = 0.01`` is 99 % VaR)

.. math:: \\mathrm{VaR}_p = F_L^{-1}(1-p), \\qquad \\mathrm{ES}_p = E[L \\mid L \\ge \\mathrm{VaR}_p].

Methods
-------
``"hs"``  historical simulation: the empirical quantile (``inverted_cdf``, the smallest loss
          ``x`` with ``F_n(x) >= 1-p``) of the overlapping ``h``-returns in the window.
``"fhs"`` filtered historical simulation (Barone-Adesi et al. 1999): a GARCH(1,1) with a
          constant mean is fitted to one-step returns (``arch`` package, imported lazily),
          ``r_t = mu + sigma_t z_t``, ``sigma_t^2 = omega + alpha (r_{t-1}-mu)^2 +
          beta sigma_{t-1}^2``; the one-step VaR is ``-(mu + sigma_{T+1} q_p(z))`` with the
          empirical quantile of the standardised residuals; over ``k > 1`` steps paths are
          bootstrapped from the residuals through the GARCH recursion.
``"evt"`` peaks over threshold (McNeil & Frey 2000): a generalised Pareto distribution is
          fitted by maximum likelihood to the ``N_u`` losses above the threshold ``u`` (the
          ``threshold`` quantile of the losses), and with ``n`` losses in all
          ``VaR_p = u + beta/xi ((n p / N_u)^(-xi) - 1)``,
          ``ES_p = VaR_p / (1-xi) + (beta - xi u) / (1-xi)``.

Examples
--------
>>> import numpy as np
>>> from volcal.risk.series import PriceSeries
>>> rng = np.random.default_rng(0)
>>> t = np.arange("2020-01-01", "2022-01-01", dtype="datetime64[D]")
>>> s = PriceSeries.from_arrays(t, 100 * np.exp(np.cumsum(rng.normal(0, 0.02, t.size))))
>>> r = value_at_risk(s, p=0.01, method="hs")
>>> 0.03 < r.var < 0.07
True
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import DateArray, FloatArray
from volcal.errors import DataError, MethodError, ParameterError
from volcal.risk.series import PriceSeries, _iso, format_timedelta

METHODS = ("hs", "fhs", "evt")
ProgressFn = Callable[[int, int], None]


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 < p < 0.5:
        raise ParameterError(f"tail probability p={p} must be in (0, 0.5), e.g. 0.01 for 99% VaR")
    return p


def _check_side(side: str) -> str:
    if side not in ("long", "short"):
        raise ParameterError(f"side {side!r} must be 'long' (loss on a fall) or 'short'")
    return side


# ---------------------------------------------------------------------------- estimators
def hs_var_es(losses: FloatArray, p: float) -> tuple[float, float]:
    """Historical-simulation VaR and ES of a loss sample.

    ``VaR`` is the smallest sample loss ``x`` with ``F_n(x) >= 1 - p`` (order statistic
    ``ceil(n (1-p))``); ``ES`` is the mean of the losses ``>= VaR``.

    Examples
    --------
    >>> hs_var_es(np.arange(1.0, 101.0), 0.05)
    (95.0, 97.5)
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size < math.ceil(1.0 / p):
        raise DataError(
            f"historical VaR at p={p} needs at least {math.ceil(1.0 / p)} losses, got {losses.size}"
        )
    var = float(np.quantile(losses, 1.0 - p, method="inverted_cdf"))
    es = float(losses[losses >= var].mean())
    return var, es


@dataclass(frozen=True)
class GPDFit:
    """Generalised Pareto fit of the excesses over a threshold.

    Attributes
    ----------
    threshold : float
        Threshold ``u``.
    xi, beta : float
        Shape and scale of ``G(y) = 1 - (1 + xi y / beta)^(-1/xi)``.
    n_exceed, n_total : int
        ``N_u`` and ``n``.
    converged : bool
        Whether the likelihood maximisation reported success.
    """

    threshold: float
    xi: float
    beta: float
    n_exceed: int
    n_total: int
    converged: bool

    def var_es(self, p: float) -> tuple[float, float]:
        """POT VaR and ES at tail probability ``p`` (needs ``p < N_u / n`` and ``xi < 1``)."""
        frac = self.n_exceed / self.n_total
        if p >= frac:
            raise ParameterError(
                f"EVT: p={p} is not in the fitted tail (threshold exceeded by {frac:.3f} of"
                " losses): lower the threshold quantile"
            )
        ratio = self.n_total * p / self.n_exceed
        if abs(self.xi) < 1e-9:
            var = self.threshold - self.beta * math.log(ratio)
        else:
            var = self.threshold + self.beta / self.xi * (ratio ** (-self.xi) - 1.0)
        if self.xi >= 1.0:
            raise MethodError(f"EVT: fitted tail index xi={self.xi:.3f} >= 1, ES is infinite")
        es = var / (1.0 - self.xi) + (self.beta - self.xi * self.threshold) / (1.0 - self.xi)
        return float(var), float(es)


def fit_gpd(losses: FloatArray, threshold: float = 0.9, min_exceed: int = 15) -> GPDFit:
    """Fit a GPD to the losses above their ``threshold`` quantile by maximum likelihood.

    The negative log-likelihood of the excesses ``y_i = L_i - u > 0`` is
    ``N_u ln beta + (1 + 1/xi) sum ln(1 + xi y_i / beta)`` (``xi -> 0``: exponential),
    minimised over ``(xi, ln beta)`` by Nelder-Mead from the method-of-moments start.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> fit = fit_gpd(rng.pareto(3.0, 20000) + 1.0, threshold=0.9)
    >>> abs(fit.xi - 1 / 3) < 0.06
    True
    """
    from scipy.optimize import minimize

    losses = np.asarray(losses, dtype=np.float64)
    if not 0.5 <= threshold < 1.0:
        raise ParameterError(f"EVT threshold quantile {threshold} must be in [0.5, 1)")
    u = float(np.quantile(losses, threshold))
    y = losses[losses > u] - u
    if y.size < min_exceed:
        raise DataError(
            f"EVT: only {y.size} losses above the {threshold:.0%} threshold; need {min_exceed}"
            " (use a longer window or a lower threshold)"
        )
    m, v = float(y.mean()), float(y.var())
    xi0 = float(np.clip(0.5 * (1.0 - m * m / v), -0.2, 0.8)) if v > 0 else 0.1
    beta0 = max(m * (1.0 - xi0), 1e-12)

    def nll(theta: FloatArray) -> float:
        xi, lb = float(theta[0]), float(theta[1])
        beta = math.exp(lb)
        if xi < -0.5 or xi > 3.0:
            return math.inf
        z = 1.0 + xi * y / beta
        if np.any(z <= 0):
            return math.inf
        if abs(xi) < 1e-9:
            return y.size * lb + float(y.sum()) / beta
        return y.size * lb + (1.0 + 1.0 / xi) * float(np.log(z).sum())

    res = minimize(
        nll,
        np.array([xi0, math.log(beta0)]),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 2000},
    )
    return GPDFit(
        threshold=u,
        xi=float(res.x[0]),
        beta=math.exp(float(res.x[1])),
        n_exceed=int(y.size),
        n_total=int(losses.size),
        converged=bool(res.success) and math.isfinite(float(res.fun)),
    )


@dataclass(frozen=True)
class GarchFit:
    """GARCH(1,1) fit of one-step returns (original units, not percent).

    ``r_t = mu + sigma_t z_t``, ``sigma_t^2 = omega + alpha (r_{t-1} - mu)^2 + beta sigma_{t-1}^2``.
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    z: FloatArray = field(repr=False)
    sigma_next: float
    converged: bool
    messages: tuple[str, ...] = ()

    def next_var(self, sigma2: float, r: float) -> float:
        """One-step variance update ``omega + alpha (r - mu)^2 + beta sigma2``."""
        e = r - self.mu
        return self.omega + self.alpha * e * e + self.beta * sigma2


def fit_garch(returns: FloatArray) -> GarchFit:
    """Fit a constant-mean GARCH(1,1) with normal quasi-likelihood using ``arch``.

    Returns are scaled to unit variance for the optimiser and the parameters scaled back.
    Warnings from ``arch`` (convergence, starting values) are recorded in ``messages``
    and ``converged``; they are never silently dropped or raised as exceptions.

    Raises
    ------
    DataError
        Fewer than 100 returns or zero variance.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 100:
        raise DataError(f"GARCH(1,1) needs at least 100 returns, got {r.size}")
    sd = float(r.std())
    if not sd > 0:
        raise DataError("GARCH(1,1): returns have zero variance")
    from arch import arch_model

    scale = 1.0 / sd
    y = r * scale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        am = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
        res = am.fit(disp="off", show_warning=True)
    msgs = tuple(
        sorted({f"{w.category.__name__}: {' '.join(str(w.message).split())[:160]}" for w in caught})
    )
    prm = res.params
    mu = float(prm["mu"]) / scale
    omega = float(prm["omega"]) / scale**2
    alpha = float(prm["alpha[1]"])
    beta = float(prm["beta[1]"])
    sigma = np.asarray(res.conditional_volatility, dtype=np.float64) / scale
    z = (r - mu) / sigma
    s2_next = omega + alpha * (r[-1] - mu) ** 2 + beta * sigma[-1] ** 2
    converged = int(res.convergence_flag) == 0 and np.all(np.isfinite(z))
    return GarchFit(
        mu=mu,
        omega=omega,
        alpha=alpha,
        beta=beta,
        z=z,
        sigma_next=math.sqrt(s2_next),
        converged=bool(converged),
        messages=msgs,
    )


def fhs_var_es(
    fit: GarchFit,
    p: float,
    steps: int = 1,
    *,
    side: str = "long",
    sigma_next: float | None = None,
    n_sims: int = 10_000,
    seed: int = 12345,
) -> tuple[float, float]:
    """FHS VaR and ES over ``steps`` one-step periods from a GARCH fit.

    One step: ``L = -(mu + sigma_{T+1} z)`` (long) with ``z`` the empirical standardised
    residuals, so ``VaR = -(mu + sigma_{T+1} z_(j))`` with ``z_(j)`` the residual order
    statistic matching the HS loss quantile. ``k`` steps: ``n_sims``
    paths draw ``z`` with replacement and run the GARCH recursion; VaR/ES are the HS
    estimates of the summed path returns.
    """
    sig = fit.sigma_next if sigma_next is None else sigma_next
    sgn = 1.0 if side == "long" else -1.0
    if steps == 1:
        losses = -sgn * (fit.mu + sig * fit.z)
        return hs_var_es(losses, p)
    rng = np.random.default_rng(seed)
    s2 = np.full(n_sims, sig * sig)
    total = np.zeros(n_sims)
    for _ in range(steps):
        e = np.sqrt(s2) * rng.choice(fit.z, size=n_sims)
        total += fit.mu + e
        s2 = fit.omega + fit.alpha * e * e + fit.beta * s2
    return hs_var_es(-sgn * total, p)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class VaRResult:
    """VaR and ES of one series at one horizon.

    Attributes
    ----------
    name, method, side : str
    p : float
        Tail probability (0.01 = 99 % VaR).
    horizon : str
        Horizon label, e.g. ``"1d"``.
    var, es : float
        VaR and ES as positive losses in log-return units.
    n_obs : int
        Returns used for the estimate.
    params : dict
        Method parameters (GARCH or GPD fit, threshold, window).
    warnings : tuple of str
        Caveats (non-convergence, ...).
    """

    name: str
    method: str
    side: str
    p: float
    horizon: str
    var: float
    es: float
    n_obs: int
    as_of: str
    params: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def var_fraction(self) -> float:
        """VaR as a fraction of the position value: ``1 - exp(-VaR)`` (long) or
        ``exp(VaR) - 1`` (short)."""
        return _to_fraction(self.var, self.side)

    @property
    def es_fraction(self) -> float:
        """ES as a fraction of the position value (same convention as ``var_fraction``)."""
        return _to_fraction(self.es, self.side)

    def summary(self) -> str:
        """One-line description."""
        w = f" [{'; '.join(self.warnings)}]" if self.warnings else ""
        return (
            f"{self.name} {self.method.upper()} {1 - self.p:.2%} VaR over {self.horizon}"
            f" ({self.side}, as of {self.as_of}, n={self.n_obs}): VaR={self.var_fraction:.2%},"
            f" ES={self.es_fraction:.2%} of position value{w}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "name": self.name,
            "method": self.method,
            "side": self.side,
            "p": self.p,
            "confidence": 1.0 - self.p,
            "horizon": self.horizon,
            "var_log": self.var,
            "es_log": self.es,
            "var_fraction": self.var_fraction,
            "es_fraction": self.es_fraction,
            "n_obs": self.n_obs,
            "as_of": self.as_of,
            "params": self.params,
            "warnings": list(self.warnings),
        }


def _to_fraction(loss_log: float, side: str) -> float:
    return float(-math.expm1(-loss_log)) if side == "long" else float(math.expm1(loss_log))


def value_at_risk(
    series: PriceSeries,
    p: float = 0.01,
    method: str = "hs",
    *,
    horizon: str | int | None = None,
    window: int | None = None,
    side: str = "long",
    threshold: float = 0.9,
    n_sims: int = 10_000,
    seed: int = 12345,
) -> VaRResult:
    """VaR and ES of the latest ``window`` points of a price series.

    Parameters
    ----------
    series : PriceSeries
    p : float
        Tail probability, e.g. 0.01 for 99 % VaR.
    method : {"hs", "fhs", "evt"}
    horizon : str or int, optional
        Horizon (default: one sampling step), e.g. ``"1h"``, ``"1d"``, ``"3d"``.
    window : int, optional
        Number of sampling steps of history used (default: all).
    side : {"long", "short"}
    threshold : float
        EVT threshold quantile of the losses.
    n_sims, seed : int
        FHS multi-step simulation size and seed.

    Raises
    ------
    DataError
        Series too short for the window/horizon/method.
    """
    p = _check_p(p)
    side = _check_side(side)
    if method not in METHODS:
        raise ParameterError(f"VaR method {method!r} must be one of {', '.join(METHODS)}")
    k = 1 if horizon is None else series.steps(horizon)
    s = series if window is None else series.tail(min(window + 1, len(series)))
    sgn = 1.0 if side == "long" else -1.0
    params: dict[str, Any] = {"window": len(s) - 1}
    notes: list[str] = []
    if method == "fhs":
        r1 = s.returns(1, min_obs=100)
        if r1.n_gap_excluded:
            raise DataError(
                f"{s.name}: FHS needs a gap-free window; {r1.n_gap_excluded} one-step returns"
                " are missing (see the series report)"
            )
        fit = fit_garch(r1.values)
        var, es = fhs_var_es(fit, p, k, side=side, n_sims=n_sims, seed=seed)
        params.update(
            mu=fit.mu, omega=fit.omega, alpha=fit.alpha, beta=fit.beta, sigma_next=fit.sigma_next
        )
        if k > 1:
            params.update(n_sims=n_sims, seed=seed)
        n_obs = len(r1)
        if not fit.converged:
            notes.append("GARCH fit did not converge")
        notes.extend(fit.messages)
    else:
        rk = s.returns(k, overlapping=True)
        losses = -sgn * rk.values
        n_obs = len(rk)
        if method == "hs":
            var, es = hs_var_es(losses, p)
        else:
            gpd = fit_gpd(losses, threshold)
            var, es = gpd.var_es(p)
            params.update(
                threshold_quantile=threshold,
                u=gpd.threshold,
                xi=gpd.xi,
                beta=gpd.beta,
                n_exceed=gpd.n_exceed,
            )
            if not gpd.converged:
                notes.append("GPD likelihood maximisation did not converge")
    return VaRResult(
        name=series.name,
        method=method,
        side=side,
        p=p,
        horizon=format_timedelta(k * series.freq.astype("timedelta64[s]")),
        var=float(var),
        es=float(es),
        n_obs=int(n_obs),
        as_of=_iso(s.times[-1]),
        params=params,
        warnings=tuple(notes),
    )


# ---------------------------------------------------------------------------- rolling
@dataclass(frozen=True)
class RollingVaR:
    """Out-of-sample VaR forecasts and the realised moves they are tested against.

    Each forecast is made at an origin ``t`` from the ``window`` steps up to ``t`` and is
    compared with the return from ``t`` to ``t + h``; origins are ``h`` apart, so the
    realisations do not overlap.

    Attributes
    ----------
    times : ndarray of datetime64
        End of each realisation window.
    var : ndarray
        VaR forecasts (positive losses, log units).
    realised : ndarray
        Realised log returns over the horizon.
    exceptions : ndarray of bool
        ``loss > VaR``.
    n_skipped : int
        Origins skipped because their window or realisation touches a gap.
    warnings : tuple of str
        Distinct fit caveats with their counts.
    """

    name: str
    method: str
    side: str
    p: float
    horizon: str
    window: int
    refit_every: int
    times: DateArray = field(repr=False)
    var: FloatArray = field(repr=False)
    realised: FloatArray = field(repr=False)
    exceptions: Any = field(repr=False)
    n_skipped: int = 0
    n_fits: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def losses(self) -> FloatArray:
        """Realised losses (positive = loss for ``side``)."""
        return -self.realised if self.side == "long" else self.realised

    def __len__(self) -> int:
        return int(self.var.size)

    def summary(self) -> str:
        """One-line description."""
        return (
            f"{self.name} rolling {self.method.upper()} {1 - self.p:.2%} VaR over {self.horizon}"
            f" ({self.side}): {len(self)} forecasts, {int(self.exceptions.sum())} exceptions"
            f" (expected {self.p * len(self):.1f}), window {self.window}, refit every"
            f" {self.refit_every}, skipped {self.n_skipped}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (summary, not the time series)."""
        return {
            "name": self.name,
            "method": self.method,
            "side": self.side,
            "p": self.p,
            "horizon": self.horizon,
            "window": self.window,
            "refit_every": self.refit_every,
            "n": len(self),
            "exceptions": int(self.exceptions.sum()),
            "expected": self.p * len(self),
            "n_skipped": self.n_skipped,
            "n_fits": self.n_fits,
            "start": _iso(self.times[0]),
            "end": _iso(self.times[-1]),
            "warnings": list(self.warnings),
        }


def _chunked_hs(windows: FloatArray, p: float) -> tuple[FloatArray, FloatArray]:
    """Row-wise HS VaR/ES of a 2-D array of losses (rows = windows)."""
    var = np.quantile(windows, 1.0 - p, axis=1, method="inverted_cdf")
    tail = windows >= var[:, None]
    es = np.where(tail, windows, 0.0).sum(axis=1) / tail.sum(axis=1)
    return var, es


def rolling_var(
    series: PriceSeries,
    p: float = 0.01,
    method: str = "hs",
    *,
    window: int = 500,
    horizon: str | int | None = None,
    side: str = "long",
    refit_every: int = 20,
    threshold: float = 0.9,
    n_sims: int = 5_000,
    seed: int = 12345,
    start: str | None = None,
    progress: ProgressFn | None = None,
) -> RollingVaR:
    """Rolling out-of-sample VaR forecasts at non-overlapping horizons.

    Parameters
    ----------
    series : PriceSeries
    p : float
        Tail probability.
    method : {"hs", "fhs", "evt"}
    window : int
        Estimation window in sampling steps (e.g. 500 days, 2000 hours).
    horizon : str or int, optional
        Forecast horizon (default one step); origins are one horizon apart.
    side : {"long", "short"}
    refit_every : int
        Number of forecasts between re-fits. HS is re-estimated at every origin. FHS
        re-fits the GARCH parameters every ``refit_every`` forecasts and in between runs
        the variance recursion on the new returns with the last parameters (the residual
        quantiles are those of the last fit). EVT re-fits the GPD every ``refit_every``
        forecasts and holds the VaR in between.
    threshold : float
        EVT threshold quantile.
    n_sims, seed : int
        FHS multi-step simulation.
    start : str, optional
        First origin date (ISO); default: as soon as a full window exists.
    progress : callable, optional
        Called as ``progress(done, total)`` (for a progress bar).

    Raises
    ------
    DataError
        Fewer than 2 forecasts can be formed (series too short for window + horizon).
    """
    p = _check_p(p)
    side = _check_side(side)
    if method not in METHODS:
        raise ParameterError(f"VaR method {method!r} must be one of {', '.join(METHODS)}")
    if refit_every < 1:
        raise ParameterError(f"refit_every={refit_every} must be >= 1")
    k = 1 if horizon is None else series.steps(horizon)
    if window < max(k + 1, 20):
        raise ParameterError(f"window={window} steps is too short for a horizon of {k} steps")
    tg, g = series.grid()
    n = g.size
    logp = np.log(g)
    sgn = 1.0 if side == "long" else -1.0
    r1 = np.full(n, np.nan)
    r1[1:] = logp[1:] - logp[:-1]
    rk = np.full(n, np.nan)
    rk[k:] = logp[k:] - logp[:-k]
    first = window
    if start is not None:
        first = max(first, int(np.searchsorted(tg, np.datetime64(start, "ns"))))
    origins = np.arange(first, n - k, k)
    if origins.size < 2:
        raise DataError(
            f"{series.name}: {len(series)} points are too few for a {window}-step window plus a"
            f" {k}-step horizon (need at least {window + 2 * k + 1})"
        )
    realised_all = rk[origins + k]
    label = format_timedelta(k * series.freq.astype("timedelta64[s]"))
    var = np.full(origins.size, np.nan)
    notes: Counter[str] = Counter()
    n_fits = 0
    total = origins.size

    if method == "hs":
        from numpy.lib.stride_tricks import sliding_window_view

        est = window - k + 1  # overlapping k-returns fully inside the window
        wins = sliding_window_view(rk, est)  # wins[j] = rk[j : j + est]
        chunk = max(1, 4_000_000 // est)
        for a in range(0, total, chunk):
            o = origins[a : a + chunk]
            block = -sgn * wins[o - est + 1]
            ok = np.all(np.isfinite(block), axis=1)
            if ok.any():
                v, _ = _chunked_hs(block[ok], p)
                tmp = np.full(o.size, np.nan)
                tmp[ok] = v
                var[a : a + chunk] = tmp
            if progress is not None:
                progress(min(a + chunk, total), total)
    elif method == "evt":
        current = math.nan
        since = refit_every
        for j, i in enumerate(origins):
            sample = rk[i - window + k : i + 1]
            if not np.all(np.isfinite(sample)):
                since = refit_every  # force a re-fit once the window is clean again
                continue
            if since >= refit_every:
                gpd = fit_gpd(-sgn * sample, threshold)
                n_fits += 1
                if not gpd.converged:
                    notes["GPD likelihood maximisation did not converge"] += 1
                current = gpd.var_es(p)[0]
                since = 0
            var[j] = current
            since += 1
            if progress is not None and (j % 50 == 0 or j == total - 1):
                progress(j + 1, total)
    else:  # fhs
        fit: GarchFit | None = None
        sigma2 = math.nan
        last = -1  # grid index up to which sigma2 is the forecast for last + 1
        since = refit_every
        for j, i in enumerate(origins):
            sample = r1[i - window + 1 : i + 1]
            if not np.all(np.isfinite(sample)):
                fit = None
                continue
            if fit is None or since >= refit_every:
                fit = fit_garch(sample)
                n_fits += 1
                if not fit.converged:
                    notes["GARCH fit did not converge"] += 1
                for msg in fit.messages:
                    notes[msg] += 1
                sigma2 = fit.sigma_next**2
                last = int(i)
                since = 0
            else:
                for t in range(last + 1, i + 1):
                    sigma2 = fit.next_var(sigma2, r1[t])
                last = int(i)
            var[j] = fhs_var_es(
                fit, p, k, side=side, sigma_next=math.sqrt(sigma2), n_sims=n_sims, seed=seed + j
            )[0]
            since += 1
            if progress is not None and (j % 20 == 0 or j == total - 1):
                progress(j + 1, total)

    ok = np.isfinite(var) & np.isfinite(realised_all)
    n_skipped = int((~ok).sum())
    if ok.sum() < 2:
        raise DataError(f"{series.name}: fewer than 2 usable forecasts (gaps in every window?)")
    times = tg[origins + k][ok]
    realised = realised_all[ok]
    v = var[ok]
    exc = (-sgn * realised) > v
    if progress is not None:
        progress(total, total)
    return RollingVaR(
        name=series.name,
        method=method,
        side=side,
        p=p,
        horizon=label,
        window=window,
        refit_every=refit_every if method != "hs" else 1,
        times=times,
        var=v,
        realised=realised,
        exceptions=exc,
        n_skipped=n_skipped,
        n_fits=n_fits,
        warnings=tuple(f"{m} (x{c})" for m, c in sorted(notes.items())),
    )


__all__ = [
    "METHODS",
    "GPDFit",
    "GarchFit",
    "RollingVaR",
    "VaRResult",
    "fhs_var_es",
    "fit_garch",
    "fit_gpd",
    "hs_var_es",
    "rolling_var",
    "value_at_risk",
]
