"""COS method (Fang & Oosterlee 2008) for European options on any char.-function model.

With :math:`X = \\ln(F_T/F_0)` truncated to :math:`[a, b]` and :math:`u_k = k\\pi/(b-a)`,

.. math::

    \\frac{V}{F_0} \\approx {\\sum_{k=0}^{N-1}}{}' \\;
        \\mathrm{Re}\\big[\\varphi(u_k, T) e^{-iu_k a}\\big]\\,\\frac{2}{b-a}\\,
        \\big(\\chi_k(c, d) - \\tilde K \\psi_k(c, d)\\big)\\cdot(\\pm 1),

where :math:`\\tilde K = K/F_0`, :math:`\\chi_k(c,d) = \\int_c^d e^x\\cos(u_k(x-a))dx`,
:math:`\\psi_k(c,d) = \\int_c^d \\cos(u_k(x-a))dx`, and :math:`[c,d] = [\\ln\\tilde K, b]`
for call coefficients, :math:`[a, \\ln\\tilde K]` for put coefficients (the prime halves
the k = 0 term). By default every option is priced from put coefficients and calls by
exact put-call parity (``coefficients="put"``, Fang & Oosterlee's recommendation): the
neglected tail mass is aliased into the series with weight :math:`\\tilde K` for puts
but :math:`e^{b}` for calls, which for heavy right tails (Kou, VG, long-dated Heston)
costs 1e-7 with call coefficients where puts stay at 1e-10. ``coefficients="otm"`` uses
call coefficients for :math:`K \\ge F` (kept for comparison).

Truncation range, per expiry: :math:`c_1 \\pm L\\sqrt{c_2 + \\sqrt{c_4}}` (Fang &
Oosterlee's cumulant rule, exact cumulants), half-width at least ``min_half_width``,
then widened to the Chernoff tail bounds

.. math::

    P(X > b) \\le e^{K(s) - sb}\\ (s > 0), \\qquad P(X < a) \\le e^{K(s) - sa}\\ (s < 0),
    \\qquad K(s) = \\ln E[e^{sX}] = \\ln\\varphi(-is, T),

optimised over a grid of real :math:`s` on which :math:`K` is finite, real and convex
(i.e. before the moment explosion), so that each tail holds less than
``tail_tol * F / K_max`` of probability; last, widened so every strike of that
expiry lies inside with a margin of a quarter half-width. The cumulant rule alone
misses tails made of several jumps (a one-day Bates smile with -20 % jumps was off by
8e-11 F) and the power-like tails of a very large vol of vol. Number of terms: ``n``
doubled until the bound on the neglected terms, :math:`\\tfrac2\\pi\\max(1,K/F)
|\\varphi(u_{N-1}, T)|/u_{N-1}`, is below ``phi_tol`` at every expiry; if that
needs more than ``n_max`` terms the pricer raises :class:`~volcal.errors.MethodError`
instead of returning an inaccurate price.

Accuracy domain (tests/test_pricing.py, against QuantLib and quadrature): about
1e-13 max(F, K) absolute, i.e. 1e-8 relative for prices above 1e-5 max(F, K), for
Heston/Bates/SVCJ with vol of vol up to 5, mean reversion 1-20, jumps of +-20 %,
maturities from one day to three years and strikes to +-5 standard deviations. Where
moments of small order explode (e.g. Heston ``xi=5, kappa=1`` at ``T = 3``: the moment
of order -0.2 is infinite, the left tail decays like a power of the price) the range
and N needed become impractical and COS raises; :func:`volcal.price` then falls back
to :class:`~volcal.pricing.LewisPricer` by itself. Variance gamma has
:math:`|\\varphi(u)| \\sim |u|^{-2T/\\nu}`: both Fourier methods need about
:math:`2T/\\nu \\gtrsim 5` (e.g. ``nu=0.3`` from nine months) and raise below; the
gamma-time mixture :func:`~volcal.pricing.variance_gamma_price` (the default for VG)
is exact for every maturity.

Everything except :math:`\\varphi` is precomputed in a :class:`COSPlan`; a plan built with
a reference model keeps its ranges and grid, so an optimizer can evaluate
``plan.price(model)`` (or :meth:`COSPlan.price_from_phi` with its own :math:`\\varphi` or
:math:`\\partial\\varphi/\\partial\\theta`) at the cost of one characteristic-function
grid and one weighted sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volcal._typing import ArrayLike, BoolArray, FloatArray, IntArray
from volcal.errors import MethodError, ParameterError
from volcal.models._base import Model
from volcal.pricing._layout import Surface, make_surface

__all__ = ["COSPlan", "COSPricer", "char_func_grid"]


def char_func_grid(model: Model, u: ArrayLike, t: ArrayLike) -> np.ndarray:
    """Characteristic function on a per-expiry grid.

    Parameters
    ----------
    model : Model
        Any volcal model.
    u : array_like, shape (M, N) or (N,)
        Fourier grid (one row per maturity, or one row shared by all).
    t : array_like, shape (M,)
        Maturities.

    Returns
    -------
    ndarray, complex, shape (M, N)
        :math:`\\varphi(u_{mk}, t_m)`.

    Examples
    --------
    >>> from volcal.models import Black
    >>> char_func_grid(Black(0.2), np.array([0.0, 1.0]), np.array([1.0, 2.0])).shape
    (2, 2)
    """
    tt = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    uu = np.asarray(u)
    if uu.ndim == 1:
        uu = uu[None, :]
    return np.asarray(model.char_func(uu, tt))


_S_GRID = np.geomspace(0.02, 2000.0, 72)


def _unit_powers(phase: FloatArray, n: int, block: int = 32) -> np.ndarray:
    """:math:`e^{i\\,\\text{phase}_j k}` for k < n, shape (J, n).

    Built as (block starts) x (offsets inside a block): two small sets of complex
    exponentials and one product, instead of J n sines and cosines; each entry is one
    rounded product of two correctly reduced exponentials (error ~ 2 eps).
    """
    p = np.asarray(phase, dtype=np.float64)[:, None]
    lo = np.exp(1j * p * np.arange(block))
    hi = np.exp(1j * p * (block * np.arange(-(-n // block))))
    return (hi[:, :, None] * lo[:, None, :]).reshape(p.shape[0], hi.shape[1] * block)[:, :n]


def _chernoff_range(
    model: Model, t: FloatArray, log_tol: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Chernoff bounds ``(a, b)`` with :math:`P(X<a), P(X>b) \\le e^{\\text{log\\_tol}}`.

    :math:`K(s) = \\ln\\varphi(-is)` is evaluated on real grids :math:`s > 0` and
    :math:`s < 0`; only the prefix of each grid where :math:`K` is finite, real and
    convex counts (a closed-form exponent continued past a moment explosion can return
    finite but meaningless values). Returns ``(-inf, inf)`` rows where no point is valid.
    """
    tt = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    lt = np.asarray(log_tol, dtype=np.float64).reshape(-1, 1)
    out = []
    for sign in (1.0, -1.0):
        s = sign * _S_GRID[None, :]
        with np.errstate(all="ignore"):
            k = np.asarray(model.log_char_func(-1j * s, tt))
        kr = k.real
        ok = np.isfinite(kr) & np.isfinite(k.imag) & (np.abs(k.imag) <= 1e-9 * (1.0 + np.abs(kr)))
        slope = np.diff(kr, axis=1) / np.diff(s, axis=1)  # K' increasing in s (convex)
        with np.errstate(invalid="ignore"):
            bend = sign * np.diff(slope, axis=1) >= -1e-9 * (1.0 + np.abs(slope[:, 1:]))
        ok[:, 2:] &= bend
        ok = np.cumprod(ok, axis=1).astype(bool)
        with np.errstate(all="ignore"):
            bound = (kr - lt) / s  # b for s > 0, a for s < 0
        if sign > 0:
            out.append(np.min(np.where(ok, bound, np.inf), axis=1))
        else:
            out.append(np.max(np.where(ok, bound, -np.inf), axis=1))
    b, a = out
    return a, b


def _put_call_weights(
    kl: FloatArray, am: FloatArray, bm: FloatArray, call_coef: BoolArray, n: int
) -> FloatArray:
    """Payoff weights (J, N) of the module formula without the :math:`e^{-iua}` factor."""
    kk = np.arange(n, dtype=np.float64)
    wm = bm - am
    c = np.clip(kl, am, bm)
    x = (c - am) / wm  # in [0, 1]
    rot = _unit_powers(np.pi * x, n)  # e^{i pi x k}, (J, N)
    with np.errstate(divide="ignore"):
        inv_k = np.where(kk > 0, 1.0 / (np.pi * kk), 0.0)
    uj = (np.pi / wm)[:, None] * kk[None, :]  # u of each option's expiry, (J, N)
    inv1 = 1.0 / (1.0 + uj * uj)
    g = rot.real - rot.imag * (wm[:, None] * inv_k[None, :])
    g[:, 0] = 1.0 - (c - am) + np.where(call_coef, wm, 0.0)
    alt = np.where(kk % 2 == 0, 1.0, -1.0)
    h = np.where(call_coef[:, None], np.exp(bm)[:, None] * alt[None, :], np.exp(am)[:, None])
    # call: chi - K psi on [k, b]; put: K psi - chi on [a, k]; both reduce to this
    return (h - np.exp(kl)[:, None] * g) * inv1


@dataclass(frozen=True, eq=False)
class COSPlan:
    """Precomputed COS layout for one option surface (see module docs).

    Attributes
    ----------
    surface : Surface
        The flattened request.
    a, b : ndarray, shape (M,)
        Truncation range of :math:`\\ln(F_T/F_0)` per unique maturity.
    n : int
        Number of cosine terms.
    u : ndarray, shape (M, N)
        Fourier grid :math:`u_{mk} = k\\pi/(b_m - a_m)`.
    """

    surface: Surface
    a: FloatArray
    b: FloatArray
    n: int
    u: FloatArray
    _e_re: FloatArray
    _e_im: FloatArray
    _w: FloatArray
    _call_coef: BoolArray
    _t_index: IntArray

    @property
    def t(self) -> FloatArray:
        """Unique maturities (rows of :attr:`u`)."""
        return self.surface.t_unique

    def phi(self, model: Model) -> np.ndarray:
        """:math:`\\varphi` of ``model`` on the plan's grid, shape (M, N)."""
        return char_func_grid(model, self.u, self.surface.t_unique)

    def price(self, model: Model) -> FloatArray:
        """Discounted prices of the surface under ``model`` (shape of the request)."""
        return self.price_from_phi(self.phi(model))

    def price_from_phi(self, phi: np.ndarray, *, derivative: bool = False) -> FloatArray:
        """Prices from a characteristic-function grid computed by the caller.

        Parameters
        ----------
        phi : ndarray, complex, shape (M, N)
            :math:`\\varphi(u, t)` on :attr:`u` (rows = :attr:`t`).
        derivative : bool
            If True, ``phi`` is a parameter derivative :math:`\\partial\\varphi/\\partial
            \\theta` and the result is :math:`\\partial V/\\partial\\theta` (the map is
            linear; parity constants and intrinsic values are left out).
        """
        s = self.surface
        phi = np.asarray(phi)
        if phi.shape != self.u.shape:
            raise ParameterError(
                f"COSPlan.price_from_phi: phi has shape {phi.shape}, grid is {self.u.shape}"
            )
        if not np.all(np.isfinite(phi)):
            raise MethodError(
                "COS: characteristic function is not finite on the grid "
                "(parameters outside the numerically valid domain)"
            )
        coef = phi.real * self._e_re - phi.imag * self._e_im  # (M, N)
        ti = self._t_index
        if coef.shape[0] <= 16:
            # (J, N) @ (N, M) then pick each option's own expiry: one BLAS call
            unit = (self._w @ coef.T)[np.arange(ti.size), ti]
        else:
            # many expiries: one matrix-vector product per expiry (J N flops, not J N M)
            unit = np.empty(ti.size)
            order = np.argsort(ti, kind="stable")
            cuts = np.searchsorted(ti[order], np.arange(coef.shape[0] + 1))
            for m in range(coef.shape[0]):
                sel = order[cuts[m] : cuts[m + 1]]
                unit[sel] = self._w[sel] @ coef[m]
        out = np.zeros(s.size)
        live = s.live
        if not derivative:
            kt = np.exp(s.k[live])
            flip = s.is_call[live] != self._call_coef
            # call = put + 1 - K/F ; put = call - 1 + K/F
            sign = np.where(self._call_coef, -1.0, 1.0)
            unit = unit + np.where(flip, sign * (1.0 - kt), 0.0)
            out[~live] = s.intrinsic()[~live]
        out[live] = unit * s.forward[live]
        return (out * s.discount).reshape(s.shape)


@dataclass(frozen=True)
class COSPricer:
    """COS pricer settings (Fang & Oosterlee 2008).

    Parameters
    ----------
    n : int
        Initial number of cosine terms (doubled while the characteristic function at
        the last term exceeds ``phi_tol``; set ``phi_tol=inf`` for a fixed N).
    l : float
        Truncation range in cumulant units, :math:`c_1 \\pm L\\sqrt{c_2+\\sqrt{c_4}}`.
    n_max : int
        Cap on the number of terms.
    phi_tol : float
        Largest admissible bound on the neglected series tail (per unit forward), see
        :meth:`choose_n`.
    min_half_width : float
        Floor on the half-width of the range (in log-forward units).
    coefficients : {"put", "otm"}
        Put coefficients plus parity for every option (default), or call coefficients
        for out-of-the-money calls.
    tail_tol : float
        Largest probability (times the largest strike over the forward) left outside
        the range in each tail, by the Chernoff bound (see module docs).

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> round(float(COSPricer().price(m, 100.0, 100.0, 1.0, True)), 7)  # F&O (2008): 5.785155435
    5.7851554
    """

    n: int = 128
    l: float = 12.0  # noqa: E741 (the method's own name for it)
    n_max: int = 16384
    phi_tol: float = 1e-14
    min_half_width: float = 1e-3
    coefficients: str = "put"
    tail_tol: float = 1e-15

    def __post_init__(self) -> None:
        if int(self.n) < 8 or int(self.n_max) < int(self.n):
            raise ParameterError(f"COSPricer: need 8 <= n <= n_max, got n={self.n}")
        if self.coefficients not in ("put", "otm"):
            raise ParameterError(
                f"COSPricer: coefficients must be 'put' or 'otm', got {self.coefficients!r}"
            )
        if not self.l > 0.0:
            raise ParameterError(f"COSPricer: l must be > 0, got {self.l}")

    def ranges(self, model: Model, surface: Surface) -> tuple[FloatArray, FloatArray]:
        """Truncation range ``(a, b)`` per unique maturity (cumulants, tails, strikes)."""
        tu = surface.t_unique
        c1, c2, c4 = (np.asarray(c, dtype=np.float64) for c in model.cumulants(tu))
        half = np.maximum(self.l * np.sqrt(c2 + np.sqrt(c4)), self.min_half_width)
        if not np.all(np.isfinite(half)) or not np.all(np.isfinite(c1)):
            raise MethodError(f"COS: cumulants of {model.summary()} are not finite")
        kl = surface.k[surface.live]
        kmin = np.full(tu.size, np.inf)
        kmax = np.full(tu.size, -np.inf)
        np.minimum.at(kmin, surface.t_index, kl)
        np.maximum.at(kmax, surface.t_index, kl)
        log_tol = np.log(self.tail_tol) - np.maximum(kmax, 0.0)
        a_tail, b_tail = _chernoff_range(model, tu, log_tol)
        a = np.minimum(c1 - half, a_tail)
        b = np.maximum(c1 + half, b_tail)
        a = np.minimum(a, kmin - 0.25 * half)
        b = np.maximum(b, kmax + 0.25 * half)
        return a, b

    def choose_n(
        self,
        model: Model,
        t: FloatArray,
        a: FloatArray,
        b: FloatArray,
        k_max: FloatArray | float = 0.0,
    ) -> int:
        """Smallest ``n * 2**j`` whose neglected series tail is below ``phi_tol``.

        The payoff coefficients decay like :math:`2\\max(F,K)/((b-a)u_k^2)` (the payoff
        is continuous), so the terms beyond :math:`N` add at most about
        :math:`\\tfrac{2}{\\pi}\\max(1, K/F)\\,|\\varphi(u_N)|/u_N`; that bound must fall below
        ``phi_tol``.

        Raises
        ------
        MethodError
            If even ``n_max`` terms leave the bound above ``phi_tol``.
        """
        n = int(self.n)
        scale = np.maximum(1.0, np.exp(np.asarray(k_max, dtype=np.float64)))
        while True:
            u_last = (n - 1) * np.pi / (b - a)
            tail = np.abs(model.char_func(u_last, t)) * scale / u_last
            if np.max(tail) <= self.phi_tol:
                return n
            if n >= self.n_max:
                i = int(np.argmax(tail))
                raise MethodError(
                    f"COS: {model.summary()} at T={t[i]:.6g} needs more than n_max="
                    f"{self.n_max} terms on the range [{a[i]:.3g}, {b[i]:.3g}] (heavy tails "
                    "or a slowly decaying characteristic function); use method='lewis'"
                )
            n = min(2 * n, int(self.n_max))

    def plan(
        self,
        forward: ArrayLike,
        strike: ArrayLike,
        t: ArrayLike,
        is_call: ArrayLike,
        discount: ArrayLike = 1.0,
        *,
        model: Model,
    ) -> COSPlan:
        """Precompute the surface layout, ranges and weights with ``model`` as reference.

        The plan's ranges and grid stay fixed, so ``plan.price(other_model)`` is exact
        as long as ``other_model`` is not much wider-tailed than ``model`` (use a
        generous reference, or re-plan when parameters move far).
        """
        s = make_surface(forward, strike, t, is_call, discount, where="COS")
        return self._plan(s, model)

    def _plan(self, s: Surface, model: Model) -> COSPlan:
        tu = s.t_unique
        if tu.size == 0:
            a = b = np.zeros(0)
            n = int(self.n)
        else:
            a, b = self.ranges(model, s)
            k_max = np.full(tu.size, -np.inf)
            np.maximum.at(k_max, s.t_index, s.k[s.live])
            n = self.choose_n(model, tu, a, b, k_max)
        width = b - a
        kk = np.arange(n, dtype=np.float64)
        u = kk[None, :] * np.pi / width[:, None]  # (M, N)
        e = np.exp(-1j * u * a[:, None]) * (2.0 / width)[:, None]
        e[:, 0] *= 0.5
        ti = s.t_index
        kl = s.k[s.live]
        call_coef = kl >= np.inf if self.coefficients == "put" else kl >= 0.0
        w = np.empty((kl.size, n))
        for lo in range(0, kl.size, 2048):  # chunks bound the temporaries' memory
            sl = slice(lo, lo + 2048)
            w[sl] = _put_call_weights(kl[sl], a[ti[sl]], b[ti[sl]], call_coef[sl], n)
        return COSPlan(
            surface=s,
            a=a,
            b=b,
            n=n,
            u=u,
            _e_re=np.ascontiguousarray(e.real),
            _e_im=np.ascontiguousarray(e.imag),
            _w=w,
            _call_coef=call_coef,
            _t_index=ti,
        )

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
