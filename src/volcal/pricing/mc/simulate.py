"""The simulation driver: plans, batches with independent seeded streams, log-forward paths."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import MethodError, ParameterError, VolcalWarning
from volcal.pricing.mc.params import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MIN_STEPS,
    DEFAULT_STEPS_PER_YEAR,
    Scheme,
    _finite,
    _LevyParams,
    _resolve,
    _SVParams,
    _TDSVParams,
)
from volcal.pricing.mc.paths import _simulate_levy, _simulate_sv, _simulate_sv_td, _time_grid

# --------------------------------------------------------------------------------------
# simulation driver (batches, seeds)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    name: str
    params: _LevyParams | _SVParams | _TDSVParams
    maturities: FloatArray
    grid: FloatArray
    obs_idx: np.ndarray
    scheme: str


def _plan(
    model: Any, maturities: FloatArray, steps_per_year: float, min_steps: Any, scheme: str
) -> _Plan:
    name, params = _resolve(model)
    if scheme not in ("qe", "euler", "qe_numpy"):
        raise MethodError(f"unknown Monte Carlo scheme {scheme!r}; use 'qe', 'euler' or 'qe_numpy'")
    spy = _finite("steps_per_year", steps_per_year)
    if spy <= 0.0:
        raise ParameterError(f"steps_per_year must be > 0, got {spy}")
    if isinstance(min_steps, bool) or not isinstance(min_steps, int | np.integer) or min_steps < 1:
        raise ParameterError(f"min_steps must be an integer >= 1, got {min_steps!r}")
    if isinstance(params, _TDSVParams):
        # every knot before the last maturity is a grid point: no step straddles a knot
        kn = np.asarray(params.knots)
        points = np.union1d(maturities, kn[kn < maturities[-1]])
        grid, idx = _time_grid(points, spy, int(min_steps))
        return _Plan(
            name, params, maturities, grid, idx[np.searchsorted(points, maturities)], scheme
        )
    if isinstance(params, _SVParams):
        grid, idx = _time_grid(maturities, spy, int(min_steps))
        return _Plan(name, params, maturities, grid, idx, scheme)
    grid = np.concatenate([np.zeros(1), maturities])
    return _Plan(name, params, maturities, grid, np.arange(1, grid.size), "exact")


def _check_counts(n_paths: Any, seed: Any, antithetic: bool, batch_size: Any) -> None:
    for nm, val, lo in (("n_paths", n_paths, 2), ("batch_size", batch_size, 2)):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
            raise ParameterError(f"{nm} must be an integer >= {lo}, got {val!r}")
    if antithetic and (n_paths % 2 or batch_size % 2):
        raise ParameterError("n_paths and batch_size must be even with antithetic=True")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")


def _batches(
    plan: _Plan, n_paths: int, seed: int, antithetic: bool, batch_size: int
) -> Iterator[tuple[FloatArray, int]]:
    """Yield ``(X, fallbacks)`` with ``X`` of shape (n_maturities, paths in batch).

    Batch ``b`` draws from its own stream ``SeedSequence(seed).spawn(...)[b]``; with
    antithetics the second half of a batch mirrors the first half.
    """
    n_batches = -(-n_paths // batch_size)
    children = np.random.SeedSequence(int(seed)).spawn(n_batches)
    done = 0
    for child in children:
        size = min(batch_size, n_paths - done)
        done += size
        rng = np.random.default_rng(child)
        n_half = size // 2 if antithetic else size
        if isinstance(plan.params, _TDSVParams):
            yield _simulate_sv_td(
                plan.params, plan.grid, plan.obs_idx, rng, n_half, antithetic, plan.scheme
            )
        elif isinstance(plan.params, _SVParams):
            yield _simulate_sv(
                plan.params,
                plan.grid,
                plan.obs_idx,
                rng,
                n_half,
                antithetic,
                plan.scheme,  # type: ignore[arg-type]
            )
        else:
            yield _simulate_levy(plan.params, plan.maturities, rng, n_half, antithetic)


def _warn_fallbacks(name: str, fallbacks: int) -> None:
    if fallbacks:
        warnings.warn(
            f"{name} QE: martingale correction undefined on {fallbacks} path-steps "
            "(rho > 0 with large steps); used the uncorrected drift there - "
            "increase steps_per_year",
            VolcalWarning,
            stacklevel=3,
        )


def simulate_log_forward(
    model: Any,
    times: ArrayLike,
    n_paths: int,
    seed: int = 0,
    *,
    steps_per_year: float = DEFAULT_STEPS_PER_YEAR,
    min_steps: int = DEFAULT_MIN_STEPS,
    antithetic: bool = True,
    scheme: Scheme = "qe",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> FloatArray:
    """Simulate :math:`X_t = \\ln(F_t/F_0)` at the requested times.

    Parameters
    ----------
    model : Black, Merton, Kou, VarianceGamma, Heston, Bates or SVCJ
        Any object whose class name is in :func:`supported_models` and which carries the
        model's fields (``Heston(v0, kappa, theta, xi, rho)`` ...).
    times : array_like
        Times in years, ``>= 0`` (any order, repeats allowed; 1-D).
    n_paths : int
        Number of paths (even if ``antithetic``).
    seed : int
        Seed of ``np.random.SeedSequence``; equal arguments give equal paths.
    steps_per_year : float
        Time steps per year of the stochastic-volatility schemes; every requested time is
        on the grid. Ignored by the exactly sampled models.
    min_steps : int
        Minimum steps between consecutive requested times (stochastic volatility).
    antithetic : bool
        Path ``j + h`` mirrors path ``j`` within each batch of ``batch_size`` paths
        (``h`` = half the batch), so columns are not all independent.
    scheme : {"qe", "euler", "qe_numpy"}
        Variance scheme of Heston/Bates/SVCJ: Andersen QE with martingale correction
        (compiled), full-truncation Euler (biased baseline), or the same QE step in
        NumPy (reference for the compiled kernel, 3x slower).
    batch_size : int
        Paths simulated at once.

    Returns
    -------
    ndarray, shape (len(times), n_paths)
        Log-forward ratios; :math:`E[e^{X_t}] = 1`.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Black:
    ...     sigma: float
    >>> x = simulate_log_forward(Black(0.6), [0.25, 1.0], n_paths=20_000, seed=1)
    >>> x.shape
    (2, 20000)
    >>> bool(abs(np.exp(x[1]).mean() - 1.0) < 0.02)
    True
    """
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ParameterError("times must be a non-empty 1-D array")
    if not np.all(np.isfinite(t)) or np.any(t < 0.0):
        raise ParameterError("times must be finite and >= 0")
    _check_counts(n_paths, seed, antithetic, batch_size)
    positive = np.unique(t[t > 0.0])
    out = np.zeros((t.size, int(n_paths)))
    if positive.size == 0:
        _resolve(model)
        return out
    plan = _plan(model, positive, steps_per_year, min_steps, scheme)
    rows = np.searchsorted(positive, t)
    pos_mask = t > 0.0
    col = 0
    fallbacks = 0
    for x, fb in _batches(plan, int(n_paths), int(seed), antithetic, int(batch_size)):
        out[pos_mask, col : col + x.shape[1]] = x[rows[pos_mask]]
        col += x.shape[1]
        fallbacks += fb
    _warn_fallbacks(plan.name, fallbacks)
    if not np.all(np.isfinite(out)):
        raise MethodError(f"{plan.name} simulation produced non-finite log-forwards")
    return out
