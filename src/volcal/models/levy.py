"""Exponential Lévy models: Black, Merton (1976), Kou (2002), variance gamma (1998).

For a Lévy exponent :math:`\\psi`, :math:`\\ln\\varphi(u, t) = t\\,\\psi(u)` with
:math:`\\psi(-i) = 0` (the forward is a martingale). Cumulants are exact:
:math:`c_n = t\\,\\kappa_n` with :math:`\\kappa_n` the per-year cumulants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.models._base import Model

__all__ = ["Black", "Kou", "Merton", "VarianceGamma"]


def _ut(u: ArrayLike, t: ArrayLike) -> tuple[Any, Any]:
    return np.asarray(u, dtype=np.complex128), np.asarray(t, dtype=np.float64)


def _cum(
    t: ArrayLike, k1: float, k2: float, k4: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    tt = np.asarray(t, dtype=np.float64)
    return tt * k1, tt * k2, tt * k4


@dataclass(frozen=True)
class Black(Model):
    """Black (1976) log-normal forward, :math:`dF/F = \\sigma\\,dW`.

    .. math:: \\ln\\varphi(u,t) = -\\tfrac12\\sigma^2 t\\,(iu + u^2)

    Examples
    --------
    >>> float(Black(0.5).cumulants(1.0)[1])
    0.25
    """

    sigma: float

    param_names: ClassVar[tuple[str, ...]] = ("sigma",)
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = ((1e-4, 5.0),)
    model_name: ClassVar[str] = "black"
    simulator: ClassVar[str] = "black"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = ((0.05, 2.0),)

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return {"sigma": atm_mid}

    def _validate(self) -> None:
        if self.sigma < 0.0:
            self._fail(f"sigma (volatility) must be >= 0, got {self.sigma}")

    def log_char_func(self, u: Any, t: Any) -> Any:  # arrays after _ut
        u, t = _ut(u, t)
        return -0.5 * self.sigma**2 * t * (1j * u + u * u)

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        s2 = self.sigma**2
        return _cum(t, -0.5 * s2, s2, 0.0)


@dataclass(frozen=True)
class Merton(Model):
    """Merton (1976) jump diffusion: Black plus compound-Poisson log-normal jumps.

    Jumps arrive at rate ``lam`` per year, log-jump :math:`J\\sim N(\\mu_j,\\sigma_j^2)`:

    .. math:: \\psi(u) = -\\tfrac12\\sigma^2(iu+u^2)
        + \\lambda\\,(e^{iu\\mu_j - u^2\\sigma_j^2/2} - 1 - iu(e^{\\mu_j+\\sigma_j^2/2}-1))

    Examples
    --------
    >>> m = Merton(sigma=0.2, lam=0.5, mu_j=-0.1, sigma_j=0.15)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-15
    True
    """

    sigma: float
    lam: float
    mu_j: float
    sigma_j: float

    param_names: ClassVar[tuple[str, ...]] = ("sigma", "lam", "mu_j", "sigma_j")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        (1e-4, 5.0),
        (0.0, 50.0),
        (-0.5, 0.5),
        (1e-4, 0.5),
    )
    model_name: ClassVar[str] = "merton"
    simulator: ClassVar[str] = "merton"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = (
        (0.1, 1.5),
        (0.05, 20.0),
        (-0.3, 0.3),
        (0.01, 0.5),
    )

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return {"sigma": 0.8 * atm_mid, "lam": 2.0, "mu_j": -0.02, "sigma_j": 0.15}

    def _validate(self) -> None:
        if self.sigma < 0.0:
            self._fail(f"sigma (volatility) must be >= 0, got {self.sigma}")
        if self.lam < 0.0:
            self._fail(f"lam (jump intensity) must be >= 0, got {self.lam}")
        if self.sigma_j < 0.0:
            self._fail(f"sigma_j (jump size std) must be >= 0, got {self.sigma_j}")

    @property
    def kbar(self) -> float:
        """Mean relative jump :math:`E[e^J]-1 = e^{\\mu_j+\\sigma_j^2/2}-1`."""
        return float(np.expm1(self.mu_j + 0.5 * self.sigma_j**2))

    def log_char_func(self, u: Any, t: Any) -> Any:  # arrays after _ut
        u, t = _ut(u, t)
        iu = 1j * u
        s2, j2 = self.sigma**2, self.sigma_j**2
        psi = -0.5 * s2 * (iu + u * u) + self.lam * (
            np.expm1(iu * self.mu_j + 0.5 * iu * iu * j2) - iu * self.kbar
        )
        return t * psi

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        m, j2, lam, s2 = self.mu_j, self.sigma_j**2, self.lam, self.sigma**2
        k1 = -0.5 * s2 - lam * self.kbar + lam * m
        k2 = s2 + lam * (m * m + j2)
        k4 = lam * (m**4 + 6.0 * m * m * j2 + 3.0 * j2 * j2)
        return _cum(t, k1, k2, k4)


@dataclass(frozen=True)
class Kou(Model):
    """Kou (2002) double-exponential jump diffusion.

    Log-jumps are :math:`+\\mathrm{Exp}(\\eta_1)` with probability ``p`` and
    :math:`-\\mathrm{Exp}(\\eta_2)` otherwise (``eta1 > 1`` for a finite forward):

    .. math:: \\psi(u) = -\\tfrac12\\sigma^2 u^2 - iu(\\tfrac12\\sigma^2 + \\lambda\\zeta)
        + \\lambda\\Big(\\frac{p\\eta_1}{\\eta_1-iu} + \\frac{(1-p)\\eta_2}{\\eta_2+iu} - 1\\Big),
        \\quad \\zeta = \\frac{p\\eta_1}{\\eta_1-1} + \\frac{(1-p)\\eta_2}{\\eta_2+1} - 1.

    Examples
    --------
    >>> m = Kou(sigma=0.2, lam=0.2, p=0.5, eta1=3.0, eta2=2.0)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-15
    True
    """

    sigma: float
    lam: float
    p: float
    eta1: float
    eta2: float

    param_names: ClassVar[tuple[str, ...]] = ("sigma", "lam", "p", "eta1", "eta2")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        (1e-4, 5.0),
        (0.0, 50.0),
        (0.0, 1.0),
        (2.0, 200.0),
        (2.0, 200.0),
    )
    model_name: ClassVar[str] = "kou"
    simulator: ClassVar[str] = "kou"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = (
        (0.1, 1.5),
        (0.05, 20.0),
        (0.05, 0.95),
        (3.0, 50.0),
        (3.0, 50.0),
    )

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return {"sigma": 0.8 * atm_mid, "lam": 2.0, "p": 0.4, "eta1": 10.0, "eta2": 10.0}

    def _validate(self) -> None:
        if self.sigma < 0.0:
            self._fail(f"sigma (volatility) must be >= 0, got {self.sigma}")
        if self.lam < 0.0:
            self._fail(f"lam (jump intensity) must be >= 0, got {self.lam}")
        if not 0.0 <= self.p <= 1.0:
            self._fail(f"p (up-jump probability) must lie in [0, 1], got {self.p}")
        if self.eta1 <= 1.0:
            self._fail(f"eta1 must be > 1 (else E[exp(jump)] is infinite), got {self.eta1}")
        if self.eta2 <= 0.0:
            self._fail(f"eta2 must be > 0, got {self.eta2}")

    @property
    def zeta(self) -> float:
        """Mean relative jump :math:`E[e^Y] - 1`."""
        p, e1, e2 = self.p, self.eta1, self.eta2
        return p * e1 / (e1 - 1.0) + (1.0 - p) * e2 / (e2 + 1.0) - 1.0

    def log_char_func(self, u: Any, t: Any) -> Any:  # arrays after _ut
        u, t = _ut(u, t)
        iu = 1j * u
        p, e1, e2, lam, s2 = self.p, self.eta1, self.eta2, self.lam, self.sigma**2
        # p e1/(e1-iu) + (1-p) e2/(e2+iu) - 1 = p iu/(e1-iu) - (1-p) iu/(e2+iu)
        jump = p * iu / (e1 - iu) - (1.0 - p) * iu / (e2 + iu)
        psi = -0.5 * s2 * (iu + u * u) - iu * lam * self.zeta + lam * jump
        return t * psi

    def _moment(self, n: int) -> float:
        f = float(np.prod(np.arange(1, n + 1)))
        return f * (self.p / self.eta1**n + (1.0 - self.p) * (-1.0) ** n / self.eta2**n)

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        lam, s2 = self.lam, self.sigma**2
        k1 = -0.5 * s2 - lam * self.zeta + lam * self._moment(1)
        k2 = s2 + lam * self._moment(2)
        k4 = lam * self._moment(4)
        return _cum(t, k1, k2, k4)


@dataclass(frozen=True)
class VarianceGamma(Model):
    """Variance gamma (Madan, Carr & Chang 1998): Brownian motion with drift in gamma time.

    :math:`X_t = \\omega t + \\theta G_t + \\sigma W_{G_t}`, :math:`G_t` gamma with mean
    ``t`` and variance :math:`\\nu t`:

    .. math:: \\ln\\varphi(u,t) = iu\\omega t - \\frac{t}{\\nu}
        \\ln\\big(1 - iu\\theta\\nu + \\tfrac12\\sigma^2\\nu u^2\\big),\\quad
        \\omega = \\frac1\\nu\\ln\\big(1 - \\theta\\nu - \\tfrac12\\sigma^2\\nu\\big).

    Requires :math:`1 - \\theta\\nu - \\sigma^2\\nu/2 > 0` (finite forward).

    Examples
    --------
    >>> m = VarianceGamma(sigma=0.12, nu=0.2, theta_vg=-0.14)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-15
    True
    """

    sigma: float
    nu: float
    theta_vg: float

    param_names: ClassVar[tuple[str, ...]] = ("sigma", "nu", "theta_vg")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = ((1e-3, 5.0), (1e-4, 5.0), (-2.0, 2.0))
    model_name: ClassVar[str] = "vg"
    simulator: ClassVar[str] = "vg"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = ((0.1, 1.5), (0.01, 2.0), (-0.8, 0.8))

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return {"sigma": atm_mid, "nu": 0.2, "theta_vg": -0.1}

    def _validate(self) -> None:
        if self.sigma < 0.0:
            self._fail(f"sigma must be >= 0, got {self.sigma}")
        if self.nu <= 0.0:
            self._fail(f"nu (variance rate of the gamma clock) must be > 0, got {self.nu}")
        if self.sigma == 0.0 and self.theta_vg == 0.0:
            self._fail("sigma and theta_vg are both 0 (degenerate distribution)")
        if 1.0 - self.theta_vg * self.nu - 0.5 * self.sigma**2 * self.nu <= 0.0:
            self._fail(
                "1 - theta_vg*nu - sigma^2*nu/2 must be > 0 (else E[F_T] is infinite), "
                f"got {1.0 - self.theta_vg * self.nu - 0.5 * self.sigma**2 * self.nu}"
            )

    @property
    def omega(self) -> float:
        """Martingale drift :math:`\\omega`."""
        nu = self.nu
        return float(np.log1p(-self.theta_vg * nu - 0.5 * self.sigma**2 * nu) / nu)

    def log_char_func(self, u: Any, t: Any) -> Any:  # arrays after _ut
        u, t = _ut(u, t)
        iu = 1j * u
        nu, th, s2 = self.nu, self.theta_vg, self.sigma**2
        z = -iu * th * nu + 0.5 * s2 * nu * u * u
        return t * (iu * self.omega - np.log(1.0 + z) / nu)

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        nu, th, s2 = self.nu, self.theta_vg, self.sigma**2
        k1 = th + self.omega
        k2 = s2 + nu * th * th
        k4 = 3.0 * (s2 * s2 * nu + 2.0 * th**4 * nu**3 + 4.0 * s2 * th * th * nu * nu)
        return _cum(t, k1, k2, k4)
