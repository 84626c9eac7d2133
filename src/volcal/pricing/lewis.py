"""Lewis (2001) single-integral pricing on an adaptive Gauss-Legendre grid shared by strikes.

.. math::

    C = F - \\frac{\\sqrt{FK}}{\\pi}\\int_0^\\infty
        \\frac{\\mathrm{Re}\\big[e^{-iuk}\\,\\varphi(u - \\tfrac i2, T)\\big]}{u^2 + \\tfrac14}\\,du,
    \\qquad k = \\ln(K/F),

and puts by parity (``call - F + K``).

Grid, per expiry (built once per plan with the reference model, then reused):

1. Truncation. :math:`u_{max}` is the first point of a geometric scan after which
   :math:`u\\,|\\varphi(u - i/2)|/(u^2 + 1/4)` (a bound on the neglected tail of the
   integral) stays below ``tol / 10``.
2. Panels. :math:`[0, u_{max}]` starts as 12 geometrically graded panels (fine near 0,
   where the kernel :math:`1/(u^2+1/4)` has its poles at :math:`\\pm i/2`). A panel is
   accepted when the ``panel_nodes``-point Gauss-Legendre rule on it and the same rule on
   its two halves agree to ``tol * width / u_max`` (plus a roundoff floor) for *every*
   strike of the expiry; otherwise it is split. Accepted panels keep their halves' nodes.

This resolves the two things a fixed mapped rule misses: slow algebraic or exponential
decay of :math:`\\varphi` (large vol of vol, long maturities) and the oscillation
:math:`e^{-iuk}` of far strikes. Every strike of an expiry shares that expiry's nodes,
all expiries are evaluated in one characteristic-function call (expiries with fewer
nodes are padded with zero weights).

Accuracy domain: the integral is computed to about ``tol`` (default 1e-14) per unit
forward, so the price error is :math:`\\lesssim 10^{-13}\\max(F, K)` (roundoff of the
:math:`F - \\ldots` cancellation). The plan raises :class:`~volcal.errors.MethodError`
when more than ``max_panels`` panels would be needed, which happens when
:math:`\\varphi` decays too slowly: variance gamma, :math:`|\\varphi(u)| \\sim
|u|^{-2T/\\nu}`, below about :math:`2T/\\nu = 5` (use
:func:`~volcal.pricing.variance_gamma_price`, the default for VG). Heston and Bates
with vol of vol up to 5, mean reversion 1-20, jumps of +-20 %, maturities from a day
to three years and strikes to +-5 standard deviations are inside the domain
(tests/test_pricing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from volcal._typing import ArrayLike, FloatArray, IntArray
from volcal.errors import MethodError, ParameterError
from volcal.models._base import Model
from volcal.pricing._layout import Surface, make_surface
from volcal.pricing.cos import char_func_grid

__all__ = ["LewisPlan", "LewisPricer"]

_EPS = np.finfo(np.float64).eps


@lru_cache(maxsize=8)
def _gauss_legendre(n: int) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (a pure cache of a constant)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


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
    """Lewis (2001) pricer settings (adaptive shared grid, see module docs).

    Parameters
    ----------
    tol : float
        Target absolute error of the integral per unit forward (default 1e-14).
    panel_nodes : int
        Gauss-Legendre nodes per panel half (default 16).
    max_panels : int
        Cap on the number of panels per expiry; more raises ``MethodError``.

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> round(float(LewisPricer().price(m, 100.0, 100.0, 1.0, True)), 8)  # F&O (2008): 5.785155435
    5.78515543
    """

    tol: float = 1e-14
    panel_nodes: int = 16
    max_panels: int = 2048

    def __post_init__(self) -> None:
        if not self.tol > 0.0:
            raise ParameterError(f"LewisPricer: tol must be > 0, got {self.tol}")
        if int(self.panel_nodes) < 4:
            raise ParameterError(f"LewisPricer: panel_nodes must be >= 4, got {self.panel_nodes}")
        if int(self.max_panels) < 16:
            raise ParameterError(f"LewisPricer: max_panels must be >= 16, got {self.max_panels}")

    def _u_max(self, model: Model, t: float, scale: float) -> float:
        ug = scale * np.geomspace(1e-2, 1e9, 221)
        env = ug * np.abs(model.char_func(ug - 0.5j, t)) / (ug * ug + 0.25)
        big = np.flatnonzero(~(env < 0.1 * self.tol))  # NaN counts as big
        if big.size == 0:
            return float(ug[0])
        if big[-1] == ug.size - 1:
            raise MethodError(
                f"Lewis: the characteristic function of {model.summary()} does not decay "
                f"at T={t:.6g} (tail of the integral still above {self.tol:g} at "
                f"u={ug[-1]:.3g}); this maturity cannot be priced by Fourier inversion"
            )
        return float(ug[big[-1] + 1])

    def _expiry_nodes(
        self, model: Model, t: float, ks: FloatArray, scale: float
    ) -> tuple[FloatArray, FloatArray]:
        """Adaptive panels for one expiry: nodes and weights (kernel not included)."""
        n = int(self.panel_nodes)
        x, wx = _gauss_legendre(n)
        xh = np.concatenate([0.5 * (x - 1.0), 0.5 * (x + 1.0)])  # halves on [-1, 1]
        wh = np.concatenate([0.5 * wx, 0.5 * wx])
        u_max = self._u_max(model, t, scale)
        e0 = min(0.25, u_max / 64.0)
        edges = np.concatenate([[0.0], np.geomspace(e0, u_max, 12)])
        lo, hi = edges[:-1], edges[1:]
        root_k = np.sqrt(np.exp(ks))[:, None, None] / np.pi
        done_u: list[FloatArray] = []
        done_w: list[FloatArray] = []
        total = lo.size
        while lo.size:
            mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
            uf = mid[:, None] + half[:, None] * x[None, :]  # (P, n)
            uh = mid[:, None] + half[:, None] * xh[None, :]  # (P, 2n)
            phi = model.char_func(np.concatenate([uf, uh], axis=1) - 0.5j, t)
            uu = np.concatenate([uf, uh], axis=1)
            f = (np.exp(-1j * ks[:, None, None] * uu[None]) * phi[None]).real
            f = f * root_k / (uu * uu + 0.25)[None]  # (J, P, 3n)
            i_full = np.einsum("jpn,n->jp", f[:, :, :n], wx) * half[None, :]
            i_half = np.einsum("jpn,n->jp", f[:, :, n:], wh) * half[None, :]
            mag = np.einsum("jpn,n->jp", np.abs(f[:, :, n:]), wh) * half[None, :]
            if not (np.all(np.isfinite(i_full)) and np.all(np.isfinite(i_half))):
                raise MethodError(
                    f"Lewis: characteristic function of {model.summary()} is not finite "
                    f"at T={t:.6g}"
                )
            err = np.max(np.abs(i_full - i_half) - 64.0 * _EPS * mag, axis=0)
            ok = err <= self.tol * (2.0 * half) / u_max
            done_u.append(uh[ok].ravel())
            done_w.append((half[ok, None] * wh[None, :]).ravel())
            lo, hi = np.concatenate([lo[~ok], mid[~ok]]), np.concatenate([mid[~ok], hi[~ok]])
            total += int(np.count_nonzero(~ok))
            if total > self.max_panels:
                raise MethodError(
                    f"Lewis: more than {self.max_panels} panels needed for {model.summary()} "
                    f"at T={t:.6g} (integrand too oscillatory or slowly decaying); "
                    "raise max_panels or tol"
                )
        return np.concatenate(done_u), np.concatenate(done_w)

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
        """Build the adaptive grid for the surface with ``model`` as reference.

        The grid is kept by the plan: ``plan.price(other)`` is accurate while ``other``
        decays and oscillates no worse than ``model`` (re-plan after large moves).
        """
        s = make_surface(forward, strike, t, is_call, discount, where="Lewis")
        tu = s.t_unique
        ti = s.t_index
        kl = s.k[s.live]
        if tu.size:
            _, c2, _ = model.cumulants(tu)
            scale = 1.0 / np.sqrt(np.maximum(np.asarray(c2, dtype=np.float64), 1e-12))
        nodes: list[tuple[FloatArray, FloatArray]] = []
        for m in range(tu.size):
            ks = np.unique(kl[ti == m])
            nodes.append(self._expiry_nodes(model, float(tu[m]), ks, float(scale[m])))
        n_max = max((nu.size for nu, _ in nodes), default=1)
        u = np.ones((tu.size, n_max))
        wq = np.zeros((tu.size, n_max))
        for m, (nu, nw) in enumerate(nodes):
            u[m, : nu.size] = nu
            u[m, nu.size :] = nu[-1]
            wq[m, : nu.size] = nw
        base = wq / (u * u + 0.25) / np.pi  # (M, N)
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
