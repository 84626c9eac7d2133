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


_MODEL_IDS: dict[type, int] = {}


def _model_id(model: Model) -> int:
    """Kernel id of a built-in model (exact type), -1 for any other model."""
    if not _MODEL_IDS:
        from volcal.models.heston import SVCJ, Bates, Heston
        from volcal.models.levy import Black, Kou, Merton, VarianceGamma

        _MODEL_IDS.update(
            {Black: 0, Merton: 1, Kou: 2, VarianceGamma: 3, Heston: 4, Bates: 5, SVCJ: 6}
        )
    return _MODEL_IDS.get(type(model), -1)


def fd_steps(model: Model) -> FloatArray:
    """Forward-difference steps of the compiled gradient (models without an analytic one)."""
    x = model.to_vector()
    lo, hi = model.bounds()
    return 1e-6 * np.maximum(np.maximum(np.abs(x), 1e-3 * (hi - lo)), 1e-8)


def _kernels():  # type: ignore[no-untyped-def]
    from volcal.pricing import _fourier_numba

    return _fourier_numba


@dataclass(frozen=True, eq=False)
class COSPlan:
    """One surface's COS layout: range and number of terms per expiry (see module docs).

    Attributes
    ----------
    surface : Surface
        The flattened request.
    a, b : ndarray, shape (M,)
        Truncation range of :math:`\\ln(F_T/F_0)` per unique maturity.
    n : ndarray of int, shape (M,)
        Number of cosine terms per maturity (from the error bound).
    bound : ndarray, shape (M,)
        The bound on the neglected series tail at that N (per unit forward).
    pricer : COSPricer
        The settings the plan was made with.
    """

    surface: Surface
    a: FloatArray
    b: FloatArray
    n: IntArray
    bound: FloatArray
    pricer: COSPricer

    @property
    def t(self) -> FloatArray:
        """Unique maturities."""
        return self.surface.t_unique

    def units(
        self, model: Model, *, grad: bool = False, wing_mask: BoolArray | None = None
    ) -> tuple[FloatArray, int]:
        """Out-of-the-money prices per unit forward of the live options (row 0) and, with
        ``grad``, their parameter derivatives (rows 1.., ``param_names`` order), on this
        plan's grid; also the number of options priced on the shifted Lewis contour
        (``wing_mask``, per live option, limits which may be: a calibration refines only
        the quotes whose market price lies in the deep wing)."""
        s = self.surface
        kl = np.ascontiguousarray(s.k[s.live])
        ti = s.t_index
        if kl.size == 0:
            return np.zeros((1 + (model.to_vector().size if grad else 0), 0)), 0
        mid = _model_id(model)
        pr = self.pricer
        if mid >= 0:
            kn = _kernels()
            gx, gw = _gauss_legendre16()
            out, n_wing = kn.surface_units(
                mid,
                model.to_vector(),
                s.t_unique,
                kl,
                ti,
                self.a,
                self.b,
                self.n,
                pr.coefficients == "put",
                bool(grad),
                fd_steps(model) if grad else np.ones(1),
                float(pr.wing_tol),
                np.ones(kl.size, dtype=bool) if wing_mask is None else wing_mask,
                gx,
                gw,
                float(pr.wing_rtol),
            )
        else:
            out, n_wing = self._generic_units(model, kl, ti, grad), 0
        if not np.all(np.isfinite(out[0])):
            raise MethodError(
                f"COS: {model.summary()} gives non-finite prices "
                "(parameters outside the numerically valid domain)"
            )
        return out, int(n_wing)

    def _generic_units(self, model: Model, kl: FloatArray, ti: IntArray, grad: bool) -> FloatArray:
        """Any Model subclass: NumPy characteristic function, compiled strike sums."""
        n_hi = int(np.max(self.n))
        j = np.arange(n_hi, dtype=np.float64)
        u = j[None, :] * np.pi / (self.b - self.a)[:, None]
        tt = self.surface.t_unique[:, None]
        if grad:
            from volcal.pricing.gradient import log_cf_grad

            lp, g = log_cf_grad(model, u, tt)
        else:
            lp, g = model.log_char_func(u, tt), None
        h = np.exp(lp - 1j * u * self.a[:, None])
        live = j[None, :] < self.n[:, None]
        rows = [np.where(live, h.real, 0.0)]
        if g is not None:
            rows += [np.where(live, (h * gp).real, 0.0) for gp in g]
        coef = np.ascontiguousarray(np.stack(rows))
        if not np.all(np.isfinite(coef)):
            raise MethodError(
                "COS: characteristic function is not finite on the grid "
                "(parameters outside the numerically valid domain)"
            )
        call_coef = (
            np.zeros(kl.size, dtype=bool) if self.pricer.coefficients == "put" else kl >= 0.0
        )
        out = np.asarray(_kernels().cos_sums(coef, self.n, self.a, self.b, kl, ti, call_coef))
        par = (kl >= 0.0) & ~call_coef
        out[0, par] += 1.0 - np.exp(kl[par])
        return out

    def _finish(self, unit: FloatArray, derivative: bool) -> FloatArray:
        """OTM units -> requested option type, forward scale, intrinsic and discount."""
        s = self.surface
        live = s.live
        kl = s.k[live]
        out = np.zeros(s.size)
        if not derivative:
            # unit is the OTM price: call for k >= 0, put below; parity to the other type
            kt = np.exp(kl)
            want_call = s.is_call[live]
            flip = want_call != (kl >= 0.0)
            adj = np.where(want_call, 1.0 - kt, kt - 1.0)
            unit = unit + np.where(flip, adj, 0.0)
            out[~live] = s.intrinsic()[~live]
        out[live] = unit * s.forward[live]
        return out * s.discount

    def price(self, model: Model, *, wing_mask: BoolArray | None = None) -> FloatArray:
        """Discounted prices of the surface under ``model`` (shape of the request)."""
        units, _ = self.units(model, wing_mask=wing_mask)
        return self._finish(units[0], False).reshape(self.surface.shape)

    def price_and_jac(
        self, model: Model, *, wing_mask: BoolArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Discounted prices (flat) and their Jacobian (options x parameters)."""
        units, _ = self.units(model, grad=True, wing_mask=wing_mask)
        p = self._finish(units[0], False)
        jac = np.stack([self._finish(r, True) for r in units[1:]], axis=1)
        return p, jac


_GL16: list[tuple[FloatArray, FloatArray]] = []


def _gauss_legendre16() -> tuple[FloatArray, FloatArray]:
    """16-point Gauss-Legendre nodes and weights (a cache of a constant)."""
    if not _GL16:
        x, w = np.polynomial.legendre.leggauss(16)
        _GL16.append((x, w))
    return _GL16[0]


@dataclass(frozen=True)
class COSPricer:
    """COS pricer settings (Fang & Oosterlee 2008), compiled per-expiry kernels.

    Parameters
    ----------
    n : int
        Smallest number of cosine terms per expiry; N runs up the ladder
        ``n * 2**(j/4)`` (multiples of 8) until the bound on the neglected terms is below
        ``phi_tol`` (set ``phi_tol=inf`` for a fixed N = ``n``).
    l : float
        Truncation range in cumulant units, :math:`c_1 \\pm L\\sqrt{c_2+\\sqrt{c_4}}`.
    n_max : int
        Cap on the number of terms; an expiry that needs more raises
        :class:`~volcal.errors.MethodError` (never a silently capped grid).
    phi_tol : float
        Largest admissible bound on the neglected series tail (per unit forward).
    min_half_width : float
        Floor on the half-width of the range (in log-forward units).
    coefficients : {"put", "otm"}
        Put coefficients plus parity for every option (default), or call coefficients
        for out-of-the-money calls.
    tail_tol : float
        Largest probability (times the largest strike over the forward) left outside
        the range in each tail, by the Chernoff bound (see module docs).
    wing_tol : float
        Out-of-the-money prices below ``wing_tol * max(F, K)`` are computed again on
        Lewis' shifted contour (relative accuracy in deep wings); 0 switches it off.
    wing_rtol : float
        Relative tolerance of that contour integral.

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> round(float(COSPricer().price(m, 100.0, 100.0, 1.0, True)), 7)  # F&O (2008): 5.785155435
    5.7851554
    """

    n: int = 32
    l: float = 12.0  # noqa: E741 (the method's own name for it)
    n_max: int = 16384
    phi_tol: float = 1e-14
    min_half_width: float = 1e-3
    coefficients: str = "put"
    tail_tol: float = 1e-15
    wing_tol: float = 1e-5
    wing_rtol: float = 1e-11

    def __post_init__(self) -> None:
        if int(self.n) < 8 or int(self.n_max) < int(self.n):
            raise ParameterError(f"COSPricer: need 8 <= n <= n_max, got n={self.n}")
        if self.coefficients not in ("put", "otm"):
            raise ParameterError(
                f"COSPricer: coefficients must be 'put' or 'otm', got {self.coefficients!r}"
            )
        if not self.l > 0.0:
            raise ParameterError(f"COSPricer: l must be > 0, got {self.l}")
        if not (self.phi_tol > 0.0 and self.tail_tol > 0.0):
            raise ParameterError("COSPricer: phi_tol and tail_tol must be > 0")
        if not (self.wing_tol >= 0.0 and self.wing_rtol > 0.0):
            raise ParameterError("COSPricer: need wing_tol >= 0 and wing_rtol > 0")

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

    def _generic_n(
        self, model: Model, t: FloatArray, a: FloatArray, b: FloatArray, k_max: FloatArray
    ) -> tuple[IntArray, FloatArray]:
        """N per expiry on the ladder of the class docs (NumPy characteristic function)."""
        scale = np.maximum(1.0, np.exp(k_max)) * 2.0 / np.pi
        n = np.full(t.size, -1, dtype=np.int64)
        bound = np.full(t.size, np.inf)
        j = 0
        while True:
            nj = 8 * int(np.ceil(self.n * 2.0 ** (0.25 * j) / 8.0))
            todo = n < 0
            u_last = (nj - 1) * np.pi / (b[todo] - a[todo])
            tail = np.abs(model.char_func(u_last, t[todo])) * scale[todo] / u_last
            ok = tail <= self.phi_tol
            idx = np.flatnonzero(todo)
            n[idx[ok]] = nj
            bound[idx] = tail
            if np.all(n >= 0) or nj >= self.n_max:
                return n, bound
            j += 1

    def plan_surface(self, s: Surface, model: Model) -> COSPlan:
        """Plan an already validated surface for ``model`` (ranges, N per expiry)."""
        tu = s.t_unique
        if tu.size == 0:
            z = np.zeros(0)
            return COSPlan(s, z, z.copy(), np.zeros(0, dtype=np.int64), z.copy(), self)
        mid = _model_id(model)
        kl = np.ascontiguousarray(s.k[s.live])
        if mid >= 0:
            a, b, n, bound = _kernels().plan_surface(
                mid,
                model.to_vector(),
                tu,
                kl,
                s.t_index,
                float(self.l),
                float(self.min_half_width),
                float(self.tail_tol),
                float(self.phi_tol),
                int(self.n),
                int(self.n_max),
            )
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                raise MethodError(f"COS: no finite truncation range for {model.summary()}")
        else:
            a, b = self.ranges(model, s)
            k_max = np.full(tu.size, -np.inf)
            np.maximum.at(k_max, s.t_index, kl)
            n, bound = self._generic_n(model, tu, a, b, k_max)
        if np.any(n < 0):
            i = int(np.flatnonzero(n < 0)[0])
            raise MethodError(
                f"COS: {model.summary()} at T={tu[i]:.6g} needs more than n_max="
                f"{self.n_max} terms on the range [{a[i]:.3g}, {b[i]:.3g}] to bring the "
                f"neglected terms below {self.phi_tol:g} (heavy tails or a slowly decaying "
                "characteristic function); use method='lewis'"
            )
        return COSPlan(s, a, b, n, bound, self)

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
        """Validate the request and plan it for ``model``.

        ``plan.price(other_model)`` reuses the ranges and N; it is accurate while
        ``other_model`` is not much wider-tailed than ``model`` (:meth:`price` plans for
        the model it prices).
        """
        s = make_surface(forward, strike, t, is_call, discount, where="COS")
        return self.plan_surface(s, model)

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
