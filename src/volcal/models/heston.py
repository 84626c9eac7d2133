"""Heston-family models: Heston (1993), Bates (1996) and SVCJ (Duffie-Pan-Singleton 2000).

All three share the affine variance dynamics

.. math::

    dX_t &= -(\\tfrac12 v_t + \\lambda\\bar\\mu)\\,dt + \\sqrt{v_t}\\,dW^1_t + dJ^X_t,\\\\
    dv_t &= \\kappa(\\theta - v_t)\\,dt + \\xi\\sqrt{v_t}\\,dW^2_t + dJ^v_t,
    \\qquad d\\langle W^1, W^2\\rangle_t = \\rho\\,dt,

with :math:`X_t = \\ln(F_t/F_0)` and :math:`\\varphi(u,t) = \\exp(A(u,t) + B(u,t)v_0)`.

The Heston part is written in the "little Heston trap" form of Albrecher et al. (2007)
(principal square root, :math:`g = (b-d)/(b+d)`, :math:`e^{-dt}`), which has no branch
jumps, and rearranged so that nothing is divided by :math:`\\xi^2`:

.. math::

    b = \\kappa - i\\rho\\xi u,\\quad w = iu + u^2,\\quad d = \\sqrt{b^2 + \\xi^2 w},\\quad
    q = \\frac{b-d}{\\xi^2} = \\frac{-w}{b+d},\\quad g = \\frac{b-d}{b+d},

.. math::

    B = q\\,\\frac{1-e^{-dt}}{1-g e^{-dt}},\\qquad
    A_H = \\kappa\\theta\\Big(q t - \\frac{2}{\\xi^2}
          \\ln\\frac{1-g e^{-dt}}{1-g}\\Big).

The logarithm over :math:`\\xi^2` is evaluated as :math:`\\ln(1+z)/z \\cdot z/\\xi^2`, so
:math:`\\xi = 0` is exact (deterministic variance: Black with the integrated variance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.models._base import Model, log1p_ratio

__all__ = ["SVCJ", "Bates", "Heston", "heston_exponents"]


def heston_exponents(
    u: ArrayLike, t: ArrayLike, kappa: float, theta: float, xi: float, rho: float
) -> tuple[Any, Any, dict[str, Any]]:
    """Heston exponents ``(A, B)`` with :math:`\\ln\\varphi = A + B v_0` (little-trap form).

    Parameters
    ----------
    u : array_like (complex)
        Fourier argument, broadcasting against ``t``.
    t : array_like
        Maturities in years.
    kappa, theta, xi, rho : float
        Heston parameters.

    Returns
    -------
    A, B : ndarray (complex)
        Exponents of the broadcast shape.
    parts : dict
        Intermediates (``d``, ``g``, ``q``, ``e`` = :math:`e^{-dt}`, ``one_m_e``,
        ``log_ratio`` = :math:`\\ln((1-ge^{-dt})/(1-g))`) reused by SVCJ and gradients.

    Examples
    --------
    >>> A, B, _ = heston_exponents(np.array([-1j]), 1.0, 2.0, 0.04, 0.5, -0.7)
    >>> bool(abs(A[0]) < 1e-15 and abs(B[0]) < 1e-15)   # martingale: phi(-i) = 1
    True
    """
    u = np.asarray(u, dtype=np.complex128)
    t = np.asarray(t, dtype=np.float64)
    iu = 1j * u
    b = kappa - rho * xi * iu
    w = iu + u * u
    d = np.sqrt(b * b + (xi * xi) * w)
    bd = b + d
    q = -w / bd
    g = q * (xi * xi) / bd
    dt = d * t
    e = np.exp(-dt)
    one_m_e = -np.expm1(-dt)
    one_m_g = 1.0 - g
    B = q * one_m_e / (1.0 - g * e)
    z = g * one_m_e / one_m_g
    r = log1p_ratio(z)
    # ln((1-g e)/(1-g)) / xi^2 = r(z) * z / xi^2, with g / xi^2 = q / (b + d)
    log_over_xi2 = r * (q / bd) * one_m_e / one_m_g
    A = kappa * theta * (q * t - 2.0 * log_over_xi2)
    parts = {"d": d, "g": g, "q": q, "e": e, "one_m_e": one_m_e, "log_ratio": r * z}
    return A, B, parts


def _heston_validate(m: Any) -> None:
    if m.v0 < 0.0:
        m._fail(f"v0 (initial variance) must be >= 0, got {m.v0}")
    if m.theta < 0.0:
        m._fail(f"theta (long-run variance) must be >= 0, got {m.theta}")
    if m.kappa <= 0.0:
        m._fail(f"kappa (mean reversion) must be > 0, got {m.kappa}")
    if m.xi < 0.0:
        m._fail(f"xi (vol of variance) must be >= 0, got {m.xi}")
    if not -1.0 < m.rho < 1.0:
        m._fail(f"rho must lie in (-1, 1), got {m.rho}")


def _merton_jump_exponent(u: Any, t: Any, lam: float, mu: float, sig: float) -> Any:
    """:math:`\\lambda t (e^{iu\\mu - u^2\\sigma^2/2} - 1 - iu(e^{\\mu+\\sigma^2/2}-1))`."""
    iu = 1j * np.asarray(u, dtype=np.complex128)
    return (
        lam
        * np.asarray(t, dtype=np.float64)
        * (np.expm1(iu * mu + 0.5 * iu * iu * sig * sig) - iu * np.expm1(mu + 0.5 * sig * sig))
    )


# Calibration box of the Heston family. Real crypto chains need a large vol of variance
# and fast mean reversion: on BTC snapshots of March 2026 Heston fits reach xi 15-16 with
# kappa 60-120 (QuantLib's unconstrained LM goes there too); a box capped at xi 10,
# kappa 50 left xi at its bound and the fit 0.4 vol points worse.
_HESTON_BOUNDS: tuple[tuple[float, float], ...] = (
    (1e-4, 4.0),  # v0
    (1e-3, 200.0),  # kappa
    (1e-4, 4.0),  # theta
    (1e-3, 40.0),  # xi
    (-0.999, 0.999),  # rho
)


_HESTON_BOX: tuple[tuple[float, float], ...] = (
    (0.01, 1.5),  # v0
    (0.2, 20.0),  # kappa
    (0.01, 1.5),  # theta
    (0.2, 6.0),  # xi
    (-0.9, 0.9),  # rho
)
_JUMP_BOX: tuple[tuple[float, float], ...] = ((0.05, 10.0), (-0.3, 0.3), (0.01, 0.4))


def _heston_guess(atm_short: float, atm_long: float) -> dict[str, float]:
    return {"v0": atm_short**2, "kappa": 2.0, "theta": atm_long**2, "xi": 1.0, "rho": 0.0}


@dataclass(frozen=True)
class Heston(Model):
    """Heston (1993) stochastic-volatility model.

    .. math::
        dF/F = \\sqrt{v}\\,dW^1,\\quad dv = \\kappa(\\theta-v)dt + \\xi\\sqrt{v}\\,dW^2,\\quad
        d\\langle W^1,W^2\\rangle = \\rho\\,dt.

    Parameters
    ----------
    v0 : float
        Initial variance (>= 0).
    kappa : float
        Mean-reversion speed (> 0).
    theta : float
        Long-run variance (>= 0).
    xi : float
        Volatility of variance (>= 0; 0 gives deterministic variance).
    rho : float
        Spot-variance correlation in (-1, 1).

    Examples
    --------
    >>> m = Heston(v0=0.04, kappa=1.5, theta=0.04, xi=0.5, rho=-0.7)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-14
    True
    >>> m.feller
    False
    """

    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float

    param_names: ClassVar[tuple[str, ...]] = ("v0", "kappa", "theta", "xi", "rho")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = _HESTON_BOUNDS
    model_name: ClassVar[str] = "heston"
    simulator: ClassVar[str] = "heston"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = _HESTON_BOX

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return _heston_guess(atm_short, atm_long)

    def _validate(self) -> None:
        _heston_validate(self)

    @property
    def feller(self) -> bool:
        """True when the Feller condition :math:`2\\kappa\\theta \\ge \\xi^2` holds."""
        return 2.0 * self.kappa * self.theta >= self.xi * self.xi

    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> Any:
        A, B, _ = heston_exponents(u, t, self.kappa, self.theta, self.xi, self.rho)
        return A + B * self.v0

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants from Cauchy's formula on the exact exponent (see ``Model``)."""
        return self._numeric_cumulants(t)


@dataclass(frozen=True)
class Bates(Model):
    """Bates (1996): Heston plus Merton log-normal price jumps.

    Jumps arrive at rate ``lam`` per year; a jump multiplies the price by :math:`e^J`,
    :math:`J \\sim N(\\mu_j, \\sigma_j^2)`, compensated in the drift:

    .. math:: \\ln\\varphi = \\ln\\varphi_{Heston} + \\lambda t\\,(e^{iu\\mu_j -
        u^2\\sigma_j^2/2} - 1 - iu(e^{\\mu_j+\\sigma_j^2/2}-1)).

    Examples
    --------
    >>> m = Bates(0.04, 1.5, 0.04, 0.5, -0.7, lam=1.0, mu_j=-0.1, sigma_j=0.1)
    >>> abs(complex(m.char_func(-1j, 2.0)) - 1) < 1e-14
    True
    """

    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    lam: float
    mu_j: float
    sigma_j: float

    param_names: ClassVar[tuple[str, ...]] = (
        "v0",
        "kappa",
        "theta",
        "xi",
        "rho",
        "lam",
        "mu_j",
        "sigma_j",
    )
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        *_HESTON_BOUNDS,
        (0.0, 50.0),  # lam
        (-0.5, 0.5),  # mu_j
        (1e-4, 0.5),  # sigma_j
    )
    model_name: ClassVar[str] = "bates"
    simulator: ClassVar[str] = "bates"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = (*_HESTON_BOX, *_JUMP_BOX)

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        return {**_heston_guess(atm_short, atm_long), "lam": 1.0, "mu_j": -0.02, "sigma_j": 0.1}

    def _validate(self) -> None:
        _heston_validate(self)
        if self.lam < 0.0:
            self._fail(f"lam (jump intensity) must be >= 0, got {self.lam}")
        if self.sigma_j < 0.0:
            self._fail(f"sigma_j (jump size std) must be >= 0, got {self.sigma_j}")

    @property
    def feller(self) -> bool:
        """True when the Feller condition :math:`2\\kappa\\theta \\ge \\xi^2` holds."""
        return 2.0 * self.kappa * self.theta >= self.xi * self.xi

    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> Any:
        A, B, _ = heston_exponents(u, t, self.kappa, self.theta, self.xi, self.rho)
        return A + B * self.v0 + _merton_jump_exponent(u, t, self.lam, self.mu_j, self.sigma_j)

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants from Cauchy's formula on the exact exponent (see ``Model``)."""
        return self._numeric_cumulants(t)


@dataclass(frozen=True)
class SVCJ(Model):
    """SVCJ: stochastic volatility with contemporaneous (correlated) jumps.

    Duffie, Pan & Singleton (2000); Eraker (2004). One Poisson process (rate ``lam``)
    drives jumps in variance, :math:`Z_v \\sim \\mathrm{Exp}(\\text{mean } \\mu_v)`, and in
    log price, :math:`Z_s \\mid Z_v \\sim N(\\mu_s + \\rho_J Z_v, \\sigma_s^2)`. The price
    jump compensator is :math:`\\bar\\mu = e^{\\mu_s+\\sigma_s^2/2}/(1-\\rho_J\\mu_v) - 1`.

    Closed form. With the Heston :math:`B(s)` (the variance jump enters only the
    time-integral of the jump transform):

    .. math::

        \\ln\\varphi = A_H + B v_0 + \\lambda\\Big(e^{iu\\mu_s - u^2\\sigma_s^2/2}\\,I
        - t - iu\\bar\\mu t\\Big),\\qquad
        I = \\int_0^t \\frac{ds}{1 - \\mu_v(iu\\rho_J + B(s))}
          = \\frac{t}{\\alpha} + \\frac{\\mu_v q}{\\alpha\\beta d}\\,(1-g)\\,L,

    with :math:`\\alpha = 1 - \\mu_v(iu\\rho_J + q)`,
    :math:`\\beta = \\mu_v q - g(1 - iu\\rho_J\\mu_v)` and
    :math:`L = \\ln\\frac{\\alpha + \\beta e^{-dt}}{\\alpha+\\beta}
    = \\ln\\frac{1-\\mu_v(iu\\rho_J + B(t))}{1 - iu\\rho_J\\mu_v}
    + \\ln\\frac{1-ge^{-dt}}{1-g}` (each term on its principal branch: the first has a
    positive real part along the whole path, the second is the little-trap logarithm).
    With ``mu_v = 0`` and ``rho_j = 0`` it is Bates with ``mu_j = mu_s``,
    ``sigma_j = sigma_s``.

    Examples
    --------
    >>> m = SVCJ(0.04, 2.0, 0.04, 0.5, -0.7, lam=0.5, mu_s=-0.05, sigma_s=0.1,
    ...          mu_v=0.05, rho_j=-0.5)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-14
    True
    """

    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    lam: float
    mu_s: float
    sigma_s: float
    mu_v: float
    rho_j: float

    param_names: ClassVar[tuple[str, ...]] = (
        "v0",
        "kappa",
        "theta",
        "xi",
        "rho",
        "lam",
        "mu_s",
        "sigma_s",
        "mu_v",
        "rho_j",
    )
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        *_HESTON_BOUNDS,
        (0.0, 50.0),  # lam
        (-0.5, 0.5),  # mu_s
        (1e-4, 0.5),  # sigma_s
        (0.0, 1.0),  # mu_v
        (-1.0, 0.9),  # rho_j (rho_j * mu_v < 1)
    )
    model_name: ClassVar[str] = "svcj"
    simulator: ClassVar[str] = "svcj"
    search_box: ClassVar[tuple[tuple[float, float], ...]] = (
        *_HESTON_BOX,
        *_JUMP_BOX,
        (0.0, 0.5),  # mu_v
        (-0.8, 0.8),  # rho_j
    )

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        jumps = {"lam": 1.0, "mu_s": -0.02, "sigma_s": 0.1, "mu_v": 0.05, "rho_j": 0.0}
        return {**_heston_guess(atm_short, atm_long), **jumps}

    def _validate(self) -> None:
        _heston_validate(self)
        if self.lam < 0.0:
            self._fail(f"lam (jump intensity) must be >= 0, got {self.lam}")
        if self.sigma_s < 0.0:
            self._fail(f"sigma_s (price jump std) must be >= 0, got {self.sigma_s}")
        if self.mu_v < 0.0:
            self._fail(f"mu_v (mean variance jump) must be >= 0, got {self.mu_v}")
        if self.rho_j * self.mu_v >= 1.0:
            self._fail(
                f"rho_j * mu_v must be < 1 so that E[exp(Z_s)] is finite, "
                f"got {self.rho_j * self.mu_v}"
            )

    @property
    def feller(self) -> bool:
        """True when the Feller condition :math:`2\\kappa\\theta \\ge \\xi^2` holds."""
        return 2.0 * self.kappa * self.theta >= self.xi * self.xi

    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> Any:
        u = np.asarray(u, dtype=np.complex128)
        tt = np.asarray(t, dtype=np.float64)
        A, B, p = heston_exponents(u, tt, self.kappa, self.theta, self.xi, self.rho)
        iu = 1j * u
        mv = self.mu_v
        one_m_ma = 1.0 - mv * self.rho_j * iu
        q, g, d, one_m_e = p["q"], p["g"], p["d"], p["one_m_e"]
        alpha = one_m_ma - mv * q
        beta = mv * q - g * one_m_ma
        # L / beta, exact for small |z2| (series) and branch-safe otherwise
        z2 = -beta * one_m_e / (one_m_ma * (1.0 - g))
        small = np.abs(z2) < 1e-3
        l_safe = np.log(1.0 - mv * (self.rho_j * iu + B)) - np.log(one_m_ma) + p["log_ratio"]
        beta_safe = np.where(small, 1.0, beta)
        l_over_beta = np.where(
            small,
            log1p_ratio(np.where(small, z2, 0.0)) * (-one_m_e) / (one_m_ma * (1.0 - g)),
            l_safe / beta_safe,
        )
        integral = tt / alpha + mv * q * (1.0 - g) * l_over_beta / (alpha * d)
        s2 = self.sigma_s * self.sigma_s
        mubar = np.exp(self.mu_s + 0.5 * s2) / (1.0 - self.rho_j * mv) - 1.0
        jump = self.lam * (
            np.exp(iu * self.mu_s + 0.5 * iu * iu * s2) * integral - tt - iu * mubar * tt
        )
        return A + B * self.v0 + jump

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants from Cauchy's formula on the exact exponent (see ``Model``)."""
        return self._numeric_cumulants(t)
