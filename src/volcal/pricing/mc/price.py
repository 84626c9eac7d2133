"""European prices from simulated paths: payoff co-moments, control variate, MCResult."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import MethodError, ParameterError
from volcal.pricing.mc.params import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MIN_STEPS,
    DEFAULT_STEPS_PER_YEAR,
    Scheme,
)
from volcal.pricing.mc.simulate import _batches, _check_counts, _plan, _warn_fallbacks

# --------------------------------------------------------------------------------------
# pricing
# --------------------------------------------------------------------------------------


class _CoMoments:
    """Running means and centred co-moments of (Y, C) per option.

    Batches are merged with the pairwise update of Chan, Golub & LeVeque (1979), so
    the variance is not lost to cancellation for deep in-the-money options.
    """

    def __init__(self, size: int) -> None:
        self.n = 0
        self.my = np.zeros(size)
        self.mc = np.zeros(size)
        self.cyy = np.zeros(size)
        self.ccc = np.zeros(size)
        self.cyc = np.zeros(size)

    def add(
        self,
        idx: np.ndarray,
        nb: int,
        my: FloatArray,
        mc: float,
        cyy: FloatArray,
        ccc: float,
        cyc: FloatArray,
    ) -> None:
        """Merge the moments of one batch (``nb`` samples: means ``my``, ``mc`` and
        centred sums ``cyy``, ``ccc``, ``cyc``) of the options ``idx``."""
        na = self.n
        n = na + nb
        d_y = my - self.my[idx]
        d_c = mc - self.mc[idx]
        w = na * nb / n
        self.cyy[idx] += cyy + d_y * d_y * w
        self.ccc[idx] += ccc + d_c * d_c * w
        self.cyc[idx] += cyc + d_y * d_c * w
        self.my[idx] += d_y * nb / n
        self.mc[idx] += d_c * nb / n

    def close_batch(self, nb: int) -> None:
        """Count the samples of the batch just merged."""
        self.n += nb


def _payoff_sums_py(
    ratio: FloatArray,
    h: int,
    fwd: FloatArray,
    kf: FloatArray,
    sign: FloatArray,
    shift: FloatArray,
    out: FloatArray,
) -> None:
    """Shifted payoff sums of a batch in one pass (compiled by numba).

    For option ``o`` the sample is :math:`y = F\\max(w(R - K/F), 0)` (averaged over the
    antithetic pair ``(i, i+h)`` when ``h > 0``) and the control is
    :math:`c = R` (pair-averaged likewise). Writes
    ``out[o] = (sum(y-s), sum((y-s)^2), sum((y-s)(c-1)))`` with the shift ``s = shift[o]``
    (the intrinsic value) so that the sums do not cancel for deep in-the-money options.
    """
    m = h if h > 0 else ratio.shape[0]
    for o in range(fwd.shape[0]):
        f = fwd[o]
        kk = kf[o]
        w = sign[o]
        sh = shift[o]
        sy = 0.0
        syy = 0.0
        syc = 0.0
        for i in range(m):
            r1 = ratio[i]
            if h > 0:
                r2 = ratio[i + h]
                y = 0.5 * f * (max(w * (r1 - kk), 0.0) + max(w * (r2 - kk), 0.0))
                dc = 0.5 * (r1 + r2) - 1.0
            else:
                y = f * max(w * (r1 - kk), 0.0)
                dc = r1 - 1.0
            d = y - sh
            sy += d
            syy += d * d
            syc += d * dc
        out[o, 0] = sy
        out[o, 1] = syy
        out[o, 2] = syc


@functools.cache
def _payoff_kernel() -> Callable[..., None]:
    """The numba-compiled payoff accumulation (lazy import, cached). Measured: about
    20x faster than the NumPy version with its option x path temporaries."""
    import numba

    return numba.njit(cache=True, nogil=True, error_model="numpy")(_payoff_sums_py)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MCResult:
    """Monte Carlo prices with standard errors.

    Attributes
    ----------
    price, stderr : ndarray
        Discounted prices and their standard errors, broadcast shape of the inputs.
    n_paths, seed : int
        Paths simulated (antithetic pairs count as two) and the seed.
    time_grid : ndarray
        Simulation grid (``0`` first; the maturities for exactly sampled models).
    maturities : ndarray
        Distinct maturities priced.
    model, scheme : str
        Model class name; ``"qe"``, ``"euler"`` or ``"exact"``.
    antithetic, control_variate : bool
        Variance reduction used.
    cv_variance_ratio : ndarray or None
        Per option, estimator variance without / with the control variate (>= 1).
    martingale_fallbacks : int
        QE path-steps where the martingale correction was undefined.
    wall_time : float
        Seconds spent.
    """

    price: FloatArray
    stderr: FloatArray
    n_paths: int
    seed: int
    time_grid: FloatArray
    maturities: FloatArray
    model: str
    scheme: str
    antithetic: bool
    control_variate: bool
    cv_variance_ratio: FloatArray | None
    martingale_fallbacks: int
    wall_time: float

    def summary(self) -> str:
        """Short human-readable text."""
        price = np.atleast_1d(self.price)
        se = np.atleast_1d(self.stderr)
        lines = [
            f"Monte Carlo ({self.model}, scheme {self.scheme}): {price.size} option(s), "
            f"{self.n_paths} paths, seed {self.seed}, {self.time_grid.size - 1} time steps, "
            f"{self.maturities.size} maturit{'y' if self.maturities.size == 1 else 'ies'}",
            f"variance reduction: antithetic={self.antithetic}, "
            f"control variate={self.control_variate}"
            + (
                f" (variance ratio median {float(np.median(self.cv_variance_ratio)):.2f})"
                if self.cv_variance_ratio is not None
                else ""
            ),
            f"max stderr {float(se.max()):.6g}; wall time {self.wall_time:.3f} s",
        ]
        if self.martingale_fallbacks:
            lines.append(f"martingale correction fallbacks: {self.martingale_fallbacks}")
        head = min(price.size, 10)
        for i in range(head):
            lines.append(f"  [{i}] {price[i]:.8g} +/- {se[i]:.3g}")
        if price.size > head:
            lines.append(f"  ... {price.size - head} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return {
            "price": np.asarray(self.price).tolist(),
            "stderr": np.asarray(self.stderr).tolist(),
            "n_paths": int(self.n_paths),
            "seed": int(self.seed),
            "time_grid": self.time_grid.tolist(),
            "maturities": self.maturities.tolist(),
            "model": self.model,
            "scheme": self.scheme,
            "antithetic": bool(self.antithetic),
            "control_variate": bool(self.control_variate),
            "cv_variance_ratio": None
            if self.cv_variance_ratio is None
            else np.asarray(self.cv_variance_ratio).tolist(),
            "martingale_fallbacks": int(self.martingale_fallbacks),
            "wall_time": float(self.wall_time),
        }


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def mc_price(
    model: Any,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    *,
    n_paths: int = 100_000,
    steps_per_year: float = DEFAULT_STEPS_PER_YEAR,
    min_steps: int = DEFAULT_MIN_STEPS,
    seed: int = 0,
    antithetic: bool = True,
    control_variate: bool = True,
    scheme: Scheme = "qe",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> MCResult:
    """Price European options by Monte Carlo.

    .. math::

       V = D\\,E\\left[(\\omega(F e^{X_T} - K))^+\\right],\\qquad \\omega = \\pm 1,

    estimated from paths of :math:`X_t = \\ln(F_t/F_0)` simulated once for all options
    (see the module docs for the schemes). With ``control_variate`` the estimator is
    :math:`\\bar Y - \\hat b(\\bar C - 1)` with :math:`C = e^{X_T}` (mean exactly 1) and
    :math:`\\hat b` the per-option regression coefficient; put-call parity then holds
    exactly path by path. For far out-of-the-money options that few paths reach, the
    control-variate estimate can fall slightly below zero (within its standard error);
    use more paths or ``control_variate=False`` where positivity matters.

    Parameters
    ----------
    model : Black, Merton, Kou, VarianceGamma, Heston, Bates or SVCJ
        Model instance (dispatch by class name, fields read by name).
    forward, strike, t, is_call, discount : array_like
        Forward, strike, maturity in years (0 gives the intrinsic value with standard
        error 0), call flag, discount factor; broadcast together. Prices are in the units of ``forward`` times ``discount``.
    n_paths : int
        Paths (even with ``antithetic``); a pair counts as two paths.
    steps_per_year : float
        Time steps per year for Heston/Bates/SVCJ (each interval between maturities gets
        ``ceil(steps_per_year * length)`` steps, at least ``min_steps``).
    min_steps : int
        Minimum steps between consecutive maturities (Heston/Bates/SVCJ). One QE step
        over a week with vol-of-vol 3 misprices 2-sigma wings by ~8 %; four steps bring
        it within Monte Carlo noise at 10^6 paths.
    seed : int
        Seed; identical arguments give identical results.
    antithetic, control_variate : bool
        Variance reduction.
    scheme : {"qe", "euler", "qe_numpy"}
        Variance scheme of the stochastic-volatility models (see
        :func:`simulate_log_forward`).
    batch_size : int
        Paths per batch; memory is bounded by it, not by ``n_paths``.

    Returns
    -------
    MCResult
        ``price`` and ``stderr`` with the broadcast shape of the inputs.

    Raises
    ------
    MethodError
        Model without a simulator, unknown scheme, non-finite result.
    ParameterError
        Invalid inputs or model parameters.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Black:
    ...     sigma: float
    >>> res = mc_price(Black(0.8), 100.0, [90.0, 110.0], 0.5, True, n_paths=20_000)
    >>> res.price.shape
    (2,)
    >>> bool(res.stderr.max() < 0.2)
    True
    """
    start = time.perf_counter()
    try:
        arrays = np.broadcast_arrays(
            np.asarray(forward, dtype=np.float64),
            np.asarray(strike, dtype=np.float64),
            np.asarray(t, dtype=np.float64),
            np.asarray(is_call, dtype=bool),
            np.asarray(discount, dtype=np.float64),
        )
    except ValueError as exc:
        raise ParameterError(f"inputs do not broadcast together: {exc}") from None
    fwd, k, tt, call, df = (np.array(a, order="C").ravel() for a in arrays)  # own copies
    shape = arrays[0].shape
    for nm, arr in (("forward", fwd), ("strike", k), ("discount", df)):
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
            raise ParameterError(f"{nm} must be finite and > 0")
    if not np.all(np.isfinite(tt)) or np.any(tt < 0.0):
        raise ParameterError("t must be finite and >= 0")
    if fwd.size == 0:
        raise ParameterError("no options to price (empty inputs)")
    _check_counts(n_paths, seed, antithetic, batch_size)

    live = tt > 0.0  # t = 0: intrinsic value, no simulation
    maturities = np.unique(tt[live])
    plan = _plan(model, maturities, steps_per_year, min_steps, scheme)
    mat_of = np.where(live, np.searchsorted(maturities, tt), maturities.size)
    order = np.argsort(mat_of, kind="stable")
    bounds = np.searchsorted(mat_of[order], np.arange(maturities.size + 1))
    sign = np.where(call, 1.0, -1.0)

    acc = _CoMoments(fwd.size)
    fallbacks = 0
    batches = (
        _batches(plan, int(n_paths), int(seed), antithetic, int(batch_size))
        if maturities.size
        else iter(())
    )
    kernel = _payoff_kernel()
    kf = k / fwd
    shift = np.maximum(sign * (fwd - k), 0.0)
    for x, fb in batches:
        fallbacks += fb
        n = x.shape[1]
        h = n // 2 if antithetic else 0
        nb = h if antithetic else n
        for j in range(maturities.size):
            opts = order[bounds[j] : bounds[j + 1]]
            if opts.size == 0:
                continue
            ratio = np.exp(x[j])
            dc = (0.5 * (ratio[:h] + ratio[h:]) if antithetic else ratio) - 1.0
            sc = float(dc.sum())
            scc = float(dc @ dc)
            sums = np.empty((opts.size, 3))
            kernel(ratio, h, fwd[opts], kf[opts], sign[opts], shift[opts], sums)
            sy, syy, syc = sums[:, 0], sums[:, 1], sums[:, 2]
            acc.add(
                opts,
                nb,
                shift[opts] + sy / nb,
                1.0 + sc / nb,
                np.maximum(syy - sy * sy / nb, 0.0),
                max(scc - sc * sc / nb, 0.0),
                syc - sy * sc / nb,
            )
        acc.close_batch(nb)

    m = max(acc.n, 2)
    var_plain = acc.cyy / (m - 1)
    if control_variate:
        ccc = acc.ccc
        safe = np.where(ccc > 0.0, ccc, 1.0)
        beta = np.where(ccc > 0.0, acc.cyc / safe, 0.0)
        est = acc.my - beta * (acc.mc - 1.0)
        resid = np.maximum(acc.cyy - beta * acc.cyc, 0.0)
        var = resid / max(m - 2, 1)
        ratio_v = np.where(var > 0.0, var_plain / np.where(var > 0.0, var, 1.0), 1.0)
        cv_ratio: FloatArray | None = _frozen(ratio_v.reshape(shape))
    else:
        est = acc.my
        var = var_plain
        cv_ratio = None
    intrinsic = np.maximum(sign * (fwd - k), 0.0)
    price = df * np.where(live, est, intrinsic)
    stderr = df * np.where(live, np.sqrt(var / m), 0.0)
    if not (np.all(np.isfinite(price)) and np.all(np.isfinite(stderr))):
        raise MethodError(f"Monte Carlo for {plan.name} produced non-finite prices")
    _warn_fallbacks(plan.name, fallbacks)
    return MCResult(
        price=_frozen(price.reshape(shape)),
        stderr=_frozen(stderr.reshape(shape)),
        n_paths=int(n_paths),
        seed=int(seed),
        time_grid=_frozen(plan.grid),
        maturities=_frozen(maturities),
        model=plan.name,
        scheme=plan.scheme,
        antithetic=bool(antithetic),
        control_variate=bool(control_variate),
        cv_variance_ratio=cv_ratio,
        martingale_fallbacks=fallbacks,
        wall_time=time.perf_counter() - start,
    )
