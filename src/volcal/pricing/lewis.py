"""Lewis (2001) single-integral pricing on a fixed, mapped Gauss-Legendre grid.

.. math::

    C = F - \\frac{\\sqrt{FK}}{\\pi}\\int_0^\\infty
        \\frac{\\mathrm{Re}\\big[e^{-iuk}\\,\\varphi(u - \\tfrac i2, T)\\big]}{u^2 + \\tfrac14}\\,du,
    \\qquad k = \\ln(K/F),

and puts by parity. The half-line is mapped to :math:`(0, 1)` by
:math:`u = s\\,x/(1-x)` with :math:`s = 1/\\sqrt{c_2(T)}` (the scale of the
characteristic function at that maturity), and integrated with ``n_nodes``
Gauss-Legendre nodes. The reference nodes are fixed; every strike of an expiry shares
that expiry's :math:`\\varphi` values and every expiry is evaluated in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volcal._typing import ArrayLike, FloatArray, IntArray
from volcal.errors import MethodError, ParameterError
from volcal.models._base import Model
from volcal.pricing._layout import Surface, make_surface
from volcal.pricing.cos import char_func_grid

__all__ = ["LewisPlan", "LewisPricer"]


@dataclass(frozen=True, eq=False)
class LewisPlan:
    """Precomputed Lewis layout: grid ``u`` (M, N) (real part; phi is taken at
    ``u - i/2``) and complex strike weights."""

    surface: Surface
    u: FloatArray
    _w: np.ndarray
    _t_index: IntArray

    @property
    def t(self) -> FloatArray:
        """Unique maturities (rows of :attr:`u`)."""
        return self.surface.t_unique

    def phi(self, model: Model) -> np.ndarray:
        """:math:`\\varphi(u - i/2)` on the plan's grid, shape (M, N)."""
        return char_func_grid(model, self.u - 0.5j, self.surface.t_unique)

    def price(self, model: Model) -> FloatArray:
        """Discounted prices of the surface under ``model``."""
        return self.price_from_phi(self.phi(model))

    def price_from_phi(self, phi: np.ndarray, *, derivative: bool = False) -> FloatArray:
        """Prices from :math:`\\varphi(u - i/2)` on the grid (linear map if ``derivative``)."""
        s = self.surface
        phi = np.asarray(phi)
        if phi.shape != self.u.shape:
            raise ParameterError(
                f"LewisPlan.price_from_phi: phi has shape {phi.shape}, grid is {self.u.shape}"
            )
        if not np.all(np.isfinite(phi)):
            raise MethodError("Lewis: characteristic function is not finite on the grid")
        pj = phi[self._t_index]
        integral = np.einsum("jk,jk->j", pj.real, self._w.real) - np.einsum(
            "jk,jk->j", pj.imag, self._w.imag
        )
        out = np.zeros(s.size)
        live = s.live
        if derivative:
            unit = -integral
        else:
            kt = np.exp(s.k[live])
            call = 1.0 - integral
            unit = np.where(s.is_call[live], call, call - 1.0 + kt)
            out[~live] = s.intrinsic()[~live]
        out[live] = unit * s.forward[live]
        return (out * s.discount).reshape(s.shape)


@dataclass(frozen=True)
class LewisPricer:
    """Lewis (2001) pricer settings.

    Parameters
    ----------
    n_nodes : int
        Gauss-Legendre nodes on the mapped interval.

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> round(float(LewisPricer().price(m, 100.0, 100.0, 1.0, True)), 7)  # F&O (2008): 5.785155435
    5.7851554
    """

    n_nodes: int = 512

    def __post_init__(self) -> None:
        if int(self.n_nodes) < 8:
            raise ParameterError(f"LewisPricer: n_nodes must be >= 8, got {self.n_nodes}")

    def plan(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        t: ArrayLike,
        is_call: ArrayLike,
        discount: ArrayLike = 1.0,
        *,
        model: Model,
    ) -> LewisPlan:
        """Precompute grid and strike weights, scaled by ``model``'s cumulants."""
        s = make_surface(forward, strike, t, is_call, discount, where="Lewis")
        x, wx = np.polynomial.legendre.leggauss(int(self.n_nodes))
        x = 0.5 * (x + 1.0)
        wx = 0.5 * wx
        if s.t_unique.size:
            _, c2, _ = model.cumulants(s.t_unique)
            scale = 1.0 / np.sqrt(np.maximum(np.asarray(c2, dtype=np.float64), 1e-12))
        else:
            scale = np.zeros(0)
        u = scale[:, None] * (x / (1.0 - x))[None, :]
        du = scale[:, None] * (wx / (1.0 - x) ** 2)[None, :]
        base = du / (u * u + 0.25) / np.pi  # (M, N)
        ti = s.t_index
        kl = s.k[s.live]
        w = np.sqrt(np.exp(kl))[:, None] * base[ti] * np.exp(-1j * u[ti] * kl[:, None])
        return LewisPlan(surface=s, u=u, _w=w, _t_index=ti)

    def price(
        self,
        model: Model,
        forward: ArrayLike,
        strike: ArrayLike,
        t: ArrayLike,
        is_call: ArrayLike,
        discount: ArrayLike = 1.0,
    ) -> FloatArray:
        """Discounted European prices, broadcast over all arguments."""
        return self.plan(forward, strike, t, is_call, discount, model=model).price(model)
