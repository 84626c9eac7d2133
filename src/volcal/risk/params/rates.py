"""The kinked (Aave/Compound) borrow-rate curve and its least-squares fit.

See :mod:`volcal.risk.params` for the method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import DataError, ParameterError


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
