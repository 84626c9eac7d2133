"""Simulator parameters of the volcal models, by each class's ``simulator`` attribute."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from volcal.errors import MethodError, ParameterError
from volcal.models._base import Params

#: Andersen's switching level between the quadratic and the exponential branch.
PSI_C = 1.5
#: Default time steps per year for the stochastic-volatility schemes.
DEFAULT_STEPS_PER_YEAR = 100
#: Default minimum number of time steps between consecutive maturities.
DEFAULT_MIN_STEPS = 4
#: Paths simulated at once (memory bound: about 10 float64 arrays of this length per
#: state plus one per maturity).
DEFAULT_BATCH_SIZE = 65_536

Scheme = Literal["qe", "euler", "qe_numpy"]
_GAMMA1 = 0.5
_GAMMA2 = 0.5


# --------------------------------------------------------------------------------------
# parameter containers (plain floats) and validation
# --------------------------------------------------------------------------------------


def _finite(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(x):
        raise ParameterError(f"{name} must be finite, got {x}")
    return x


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ParameterError(msg)


@dataclass(frozen=True)
class _LevyParams:
    """Exponential-Lévy model with diffusion, Merton or Kou jumps, or VG (plain floats)."""

    kind: Literal["black", "merton", "kou", "vg"]
    sigma: float
    lam: float = 0.0
    mu_j: float = 0.0
    sigma_j: float = 0.0
    p: float = 0.0
    eta1: float = 0.0
    eta2: float = 0.0
    nu: float = 0.0
    theta_vg: float = 0.0

    def drift(self) -> float:
        """Drift of X per year that makes ``exp(X)`` a martingale."""
        s2 = self.sigma * self.sigma
        if self.kind == "black":
            return -0.5 * s2
        if self.kind == "merton":
            return -0.5 * s2 - self.lam * math.expm1(self.mu_j + 0.5 * self.sigma_j**2)
        if self.kind == "kou":
            mgf = self.p * self.eta1 / (self.eta1 - 1.0) + (1.0 - self.p) * self.eta2 / (
                self.eta2 + 1.0
            )
            return -0.5 * s2 - self.lam * (mgf - 1.0)
        # VG: omega = ln(1 - theta nu - sigma^2 nu / 2) / nu
        return math.log1p(-self.theta_vg * self.nu - 0.5 * s2 * self.nu) / self.nu


@dataclass(frozen=True)
class _SVParams:
    """Heston variance with optional SVCJ jumps (Bates: ``mu_v = rho_j = 0``)."""

    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    lam: float = 0.0
    mu_s: float = 0.0
    sigma_s: float = 0.0
    mu_v: float = 0.0
    rho_j: float = 0.0

    def jump_compensator(self) -> float:
        """:math:`\\lambda(E[e^{J_s}] - 1)` per year."""
        if self.lam == 0.0:
            return 0.0
        mgf = math.exp(self.mu_s + 0.5 * self.sigma_s**2) / (1.0 - self.rho_j * self.mu_v)
        return self.lam * (mgf - 1.0)


# Builders by the model class's ``simulator`` (declared on the classes of volcal.models,
# which validate their own parameters at construction: no second set of rules here).
def _black(m: Any) -> _LevyParams:
    return _LevyParams("black", m.sigma)


def _merton(m: Any) -> _LevyParams:
    return _LevyParams("merton", m.sigma, lam=m.lam, mu_j=m.mu_j, sigma_j=m.sigma_j)


def _kou(m: Any) -> _LevyParams:
    return _LevyParams("kou", m.sigma, lam=m.lam, p=m.p, eta1=m.eta1, eta2=m.eta2)


def _vg(m: Any) -> _LevyParams:
    return _LevyParams("vg", m.sigma, nu=m.nu, theta_vg=m.theta_vg)


def _heston(m: Any) -> _SVParams:
    return _SVParams(m.v0, m.kappa, m.theta, m.xi, m.rho)


def _bates(m: Any) -> _SVParams:
    return _SVParams(m.v0, m.kappa, m.theta, m.xi, m.rho, lam=m.lam, mu_s=m.mu_j, sigma_s=m.sigma_j)


def _svcj(m: Any) -> _SVParams:
    return _SVParams(
        m.v0, m.kappa, m.theta, m.xi, m.rho,
        lam=m.lam, mu_s=m.mu_s, sigma_s=m.sigma_s, mu_v=m.mu_v, rho_j=m.rho_j,
    )  # fmt: skip


@dataclass(frozen=True)
class _TDSVParams:
    """Piecewise-constant Heston/Bates (``HestonTD``, ``BatesTD``): one ``_SVParams`` per
    interval ``(knots[i-1], knots[i]]``, the last also beyond the last knot."""

    knots: tuple[float, ...]
    pieces: tuple[_SVParams, ...]

    def piece_at(self, t0: float) -> _SVParams:
        """Parameters of the step starting at ``t0`` (steps never straddle a knot)."""
        j = int(np.searchsorted(np.asarray(self.knots), t0 + 1e-14, side="right"))
        return self.pieces[min(j, len(self.pieces) - 1)]


def _heston_td(m: Any) -> _TDSVParams:
    """Per-interval parameters: each interval is a validated Heston or Bates (BatesTD:
    with that interval's jump intensity and law, so the jump counts of a step are drawn
    with the intensity, and the compensator taken, of the interval the step lies in)."""
    pieces = []
    for i in range(int(m.n_intervals)):
        piece = m.interval(i)
        pieces.append(_BUILDERS[type(piece).simulator](piece))
    return _TDSVParams(tuple(float(k) for k in m.knots), tuple(pieces))


_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "black": _black,
    "merton": _merton,
    "kou": _kou,
    "vg": _vg,
    "heston": _heston,
    "bates": _bates,
    "svcj": _svcj,
    "heston_td": _heston_td,
}


def supported_models() -> tuple[str, ...]:
    """Names of the model classes of :mod:`volcal.models` that have a Monte Carlo
    simulator (their ``simulator`` class attribute).

    Examples
    --------
    >>> "Heston" in supported_models()
    True
    """
    import volcal.models as models

    found = []
    for name in sorted(dir(models)):
        obj = getattr(models, name)
        if isinstance(obj, type) and getattr(obj, "simulator", "") in _BUILDERS:
            found.append(obj.__name__)
    return tuple(dict.fromkeys(found))


def _resolve(model: Any) -> tuple[str, _LevyParams | _SVParams]:
    """Simulator parameters of a model instance, by its class's ``simulator``."""
    name = type(model).__name__
    build = _BUILDERS.get(getattr(type(model), "simulator", ""))
    if build is None or not isinstance(model, Params):
        raise MethodError(
            f"Monte Carlo has no simulator for model {name}; available: "
            + ", ".join(supported_models())
        )
    return name, build(model)
