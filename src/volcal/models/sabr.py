"""SABR (Hagan, Kumar, Lesniewski & Woodward 2002) with Oblój's (2008) correction.

.. math::

    dF = \\alpha_t F^\\beta dW^1,\\qquad d\\alpha = \\nu\\alpha\\,dW^2,\\qquad
    d\\langle W^1, W^2\\rangle = \\rho\\,dt.

Black implied vol (Hagan's expansion with Oblój's leading term), in forward units
(:math:`F = 1`, :math:`K = e^k`, :math:`\\ell = -k = \\ln(F/K)`):

.. math::

    \\sigma_B(k) = \\frac{\\nu\\,\\ell}{x(z)}\\Big[1 + T\\Big(
        \\frac{(1-\\beta)^2\\alpha^2}{24\\,K^{1-\\beta}}
        + \\frac{\\rho\\beta\\nu\\alpha}{4\\,K^{(1-\\beta)/2}}
        + \\frac{2-3\\rho^2}{24}\\nu^2\\Big)\\Big],

    z = \\frac{\\nu}{\\alpha}\\,\\frac{1 - K^{1-\\beta}}{1-\\beta}
      \\;(\\beta = 1:\\; z = \\nu\\ell/\\alpha),\\qquad
    x(z) = \\ln\\frac{\\sqrt{1-2\\rho z + z^2} + z - \\rho}{1-\\rho}.

Working with :math:`F = 1` makes the parameters scale-free: for :math:`\\beta < 1`,
``alpha`` is the value for a forward of 1 (multiply by :math:`F^{1-\\beta}` for the
market forward). At the money :math:`\\sigma_B = \\alpha[1 + T(\\dots)]`. The ratios
:math:`\\nu\\ell/z` and :math:`z/x(z)` are evaluated with series near 0, and
:math:`x(z)` in the cancellation-free form for :math:`z < 0`, so the formula is smooth
through the money and stable for :math:`\\rho \\to \\pm 1`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.models._base import Params

__all__ = ["SABR", "SABRSmiles", "sabr_vol"]


def sabr_vol(
    k: ArrayLike, t: ArrayLike, alpha: float, beta: float, rho: float, nu: float
) -> FloatArray:
    """Hagan-Oblój SABR Black implied vol at log-moneyness ``k`` and maturity ``t``.

    Examples
    --------
    >>> round(float(sabr_vol(0.0, 1.0, 0.5, 1.0, 0.0, 0.0)), 12)   # nu = 0, beta = 1: Black
    0.5
    """
    k = np.asarray(k, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    ell = -k
    omb = 1.0 - beta
    # nu * ell / z = alpha * (1-beta) ell / (1 - K^(1-beta)) = alpha * h((1-beta) ell)
    y = omb * ell
    small_y = np.abs(y) < 1e-8
    y_safe = np.where(small_y, 1.0, y)
    h = np.where(small_y, 1.0 + 0.5 * y, y_safe / -np.expm1(-y_safe))
    # z = nu/alpha * ell / h
    z = (nu / alpha) * ell / h
    small_z = np.abs(z) < 1e-7
    zs = np.where(small_z, 0.5, z)  # any non-zero value; replaced below
    s = np.sqrt(1.0 - 2.0 * rho * zs + zs * zs)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_pos = np.log((s + zs - rho) / (1.0 - rho))
        x_neg = -np.log((s - zs + rho) / (1.0 + rho))
    x = np.where(zs >= 0, x_pos, x_neg)
    ratio = np.where(small_z, 1.0 - 0.5 * rho * z, zs / np.where(x == 0, 1.0, x))
    kb = np.exp(k * omb)  # K^(1-beta) with F = 1
    corr = 1.0 + t * (
        omb * omb * alpha * alpha / (24.0 * kb)
        + rho * beta * nu * alpha / (4.0 * np.sqrt(kb))
        + (2.0 - 3.0 * rho * rho) * nu * nu / 24.0
    )
    return alpha * h * ratio * corr


@dataclass(frozen=True)
class SABR(Params):
    """SABR smile parameters of one expiry (forward normalised to 1).

    Parameters
    ----------
    alpha : float
        Initial vol level (> 0); about the ATM vol for ``beta = 1``.
    beta : float
        Backbone exponent in [0, 1] (default fixed in calibration).
    rho : float
        Correlation in (-1, 1).
    nu : float
        Vol of vol (>= 0).

    Examples
    --------
    >>> s = SABR(alpha=0.6, beta=1.0, rho=-0.1, nu=1.5)
    >>> bool(s.implied_vol([-0.2, 0.0, 0.2], 0.25)[1] > 0.6)
    True
    """

    alpha: float
    beta: float
    rho: float
    nu: float

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "rho", "nu")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        (1e-4, 10.0),
        (0.0, 1.0),
        (-0.999, 0.999),
        (1e-4, 25.0),
    )

    def _validate(self) -> None:
        if self.alpha <= 0:
            self._fail(f"alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.beta <= 1.0:
            self._fail(f"beta must lie in [0, 1], got {self.beta}")
        if not -1.0 < self.rho < 1.0:
            self._fail(f"rho must lie in (-1, 1), got {self.rho}")
        if self.nu < 0:
            self._fail(f"nu must be >= 0, got {self.nu}")

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Black implied vol at log-moneyness ``k = ln(K/F)`` and maturity ``t``."""
        return sabr_vol(k, t, self.alpha, self.beta, self.rho, self.nu)


@dataclass(frozen=True)
class SABRSmiles:
    """One SABR smile per expiry (the ``params`` of a SABR calibration).

    Attributes
    ----------
    expiries : tuple of str
        ISO labels of the expiries.
    t : tuple of float
        Maturities in years.
    forwards : tuple of float
        Forward of each expiry.
    smiles : tuple of SABR
    """

    expiries: tuple[str, ...]
    t: tuple[float, ...]
    forwards: tuple[float, ...]
    smiles: tuple[SABR, ...]

    def __len__(self) -> int:
        return len(self.smiles)

    def implied_vol(self, k: ArrayLike, slice_index: ArrayLike) -> FloatArray:
        """Vols at log-moneyness ``k`` of the expiries ``slice_index`` (per quote)."""
        k = np.asarray(k, dtype=np.float64)
        si = np.asarray(slice_index, dtype=np.int64)
        out = np.empty(np.broadcast(k, si).shape)
        kb, sb = np.broadcast_arrays(k, si)
        for i, s in enumerate(self.smiles):
            m = sb == i
            out[m] = s.implied_vol(kb[m], self.t[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "SABR",
            "slices": [
                {"expiry": e, "t": t, "forward": f, **asdict(s)}
                for e, t, f, s in zip(
                    self.expiries, self.t, self.forwards, self.smiles, strict=True
                )
            ],
        }
