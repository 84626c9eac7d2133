"""Raw SVI smile (Gatheral 2004) and its no-butterfly-arbitrage conditions.

Total implied variance at log-moneyness :math:`k = \\ln(K/F)` of one expiry:

.. math::

    w(k) = a + b\\Big(\\rho(k - m) + \\sqrt{(k-m)^2 + \\sigma^2}\\Big),
    \\qquad \\sigma_{BS}(k) = \\sqrt{w(k)/T}.

Validity (the smile is a real, non-negative total variance): :math:`b \\ge 0`,
:math:`|\\rho| < 1`, :math:`\\sigma > 0` and
:math:`\\min_k w = a + b\\sigma\\sqrt{1-\\rho^2} \\ge 0`.

No butterfly arbitrage (Gatheral & Jacquier 2014, Lemma 2.2 and eq. 2.1): the density
implied by the smile is non-negative iff, for every :math:`k`,

.. math::

    g(k) = \\Big(1 - \\frac{k w'}{2w}\\Big)^2 - \\frac{w'^2}{4}\\Big(\\frac1w + \\frac14\\Big)
           + \\frac{w''}{2} \\;\\ge\\; 0,

and call prices vanish at infinite strike, which for SVI's linear wings is Lee's (2004)
moment bound on the wing slopes of total variance, :math:`b(1 + |\\rho|) \\le 2`. As
:math:`k \\to \\pm\\infty`, :math:`g \\to 1/4 - b^2(1\\pm\\rho)^2/16`, so the Lee bound
is also exactly the condition that :math:`g` stays non-negative in the far wings; a
finite grid check of :math:`g` together with the Lee bound covers the whole real line
up to the grid's resolution.

The parameters describe *total* variance, so one ``SVI`` is one expiry; ``t`` only
enters when converting to implied vol. :class:`SVISmiles` holds one SVI per expiry
(the ``params`` of an SVI calibration).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import ParameterError
from volcal.models._base import Params

__all__ = [
    "LEE_BOUND",
    "SVI",
    "SVISmiles",
    "SVISurface",
    "blend_min_g_poly",
    "shift_min_g",
    "surface_k_grid",
    "svi_g",
    "svi_total_variance",
]

#: Lee (2004) maximal wing slope of total variance: b (1 + |rho|) <= 2.
LEE_BOUND = 2.0


def svi_total_variance(
    k: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike, m: ArrayLike, sigma: ArrayLike
) -> FloatArray:
    """Raw SVI total variance :math:`w(k) = a + b(\\rho(k-m) + \\sqrt{(k-m)^2+\\sigma^2})`.

    All arguments broadcast (the fitter evaluates many parameter sets at once).

    Examples
    --------
    >>> float(svi_total_variance(0.0, 0.04, 0.1, 0.0, 0.0, 0.1))
    0.05
    """
    a_, b_, rho_, m_, s_ = (np.asarray(v, dtype=np.float64) for v in (a, b, rho, m, sigma))
    x = np.asarray(k, dtype=np.float64) - m_
    return np.asarray(a_ + b_ * (rho_ * x + np.sqrt(x * x + s_ * s_)), dtype=np.float64)


def svi_g(
    k: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike, m: ArrayLike, sigma: ArrayLike
) -> FloatArray:
    """Gatheral-Jacquier butterfly function :math:`g(k)` of a raw SVI (broadcasting).

    .. math:: g = (1 - k w'/(2w))^2 - w'^2/4\\,(1/w + 1/4) + w''/2

    with :math:`w' = b(\\rho + x/R)`, :math:`w'' = b\\sigma^2/R^3`,
    :math:`x = k - m`, :math:`R = \\sqrt{x^2+\\sigma^2}`. Where :math:`w \\le 0` the
    smile is not a variance and ``g`` is returned as ``-inf``.

    Examples
    --------
    >>> float(svi_g(0.0, 0.04, 0.0, 0.0, 0.0, 0.1))   # flat smile: g = 1
    1.0
    """
    a_, b_, rho_, m_, s_ = (np.asarray(v, dtype=np.float64) for v in (a, b, rho, m, sigma))
    x = np.asarray(k, dtype=np.float64) - m_
    r = np.sqrt(x * x + s_ * s_)
    w = a_ + b_ * (rho_ * x + r)
    w1 = b_ * (rho_ + x / r)
    w2 = b_ * s_ * s_ / (r * r * r)
    k_arr = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k_arr * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return np.asarray(np.where(w > 0, g, -np.inf), dtype=np.float64)


def _check_grid(a: float, b: float, rho: float, m: float, sigma: float) -> FloatArray:
    """Dense k grid for the butterfly check: uniform over a wide range plus a grid
    refined around the vertex ``m`` on the scale ``sigma`` (where g varies fastest)."""
    w_min = a + b * sigma * math.sqrt(max(1.0 - rho * rho, 0.0))
    width = max(3.0, 12.0 * math.sqrt(max(w_min, 0.0) + b * sigma), abs(m) + 20.0 * sigma)
    wide = np.linspace(-width, width, 2001)
    z = np.sinh(np.linspace(-6.0, 6.0, 401))  # |z| up to ~200 sigma, dense near 0
    return np.concatenate([wide, m + sigma * z])


def check_k_grid(scale: float) -> FloatArray:
    """The k grid of the surface arbitrage checks (:func:`volcal.check_arbitrage`):
    uniform on [-3, 3], ``scale`` x [-12, 12] (the first slice's ATM total-vol scale)
    and far points out to |k| = 20."""
    far = np.array([4.0, 6.0, 10.0, 20.0])
    grid = np.concatenate(
        [np.linspace(-3.0, 3.0, 1201), scale * np.linspace(-12.0, 12.0, 401), far, -far]
    )
    return np.unique(grid)


@dataclass(frozen=True)
class SVI(Params):
    """Raw SVI total-variance smile of one expiry (Gatheral 2004).

    Parameters
    ----------
    a : float
        Vertical level of total variance.
    b : float
        Wing slope scale (>= 0); the wings have slopes ``b(1 - rho)`` and ``b(1 + rho)``.
    rho : float
        Asymmetry in (-1, 1).
    m : float
        Horizontal translation (log-moneyness of the vertex for ``rho = 0``).
    sigma : float
        Curvature at the vertex (> 0).

    Raises
    ------
    ParameterError
        If a value is not finite, ``b < 0``, ``|rho| >= 1``, ``sigma <= 0`` or the
        minimal total variance ``a + b sigma sqrt(1 - rho^2)`` is negative.

    Examples
    --------
    >>> s = SVI(a=0.02, b=0.1, rho=-0.3, m=0.05, sigma=0.2)
    >>> round(float(s.total_variance(0.0)), 6)
    0.042116
    >>> s.is_arbitrage_free(), round(s.lee_slope, 2)
    (True, 0.13)
    """

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    param_names: ClassVar[tuple[str, ...]] = ("a", "b", "rho", "m", "sigma")
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = (
        (-5.0, 5.0),
        (0.0, 10.0),
        (-0.999, 0.999),
        (-5.0, 5.0),
        (1e-6, 10.0),
    )

    def _validate(self) -> None:
        if self.b < 0:
            self._fail(f"b must be >= 0, got {self.b}")
        if not -1.0 < self.rho < 1.0:
            self._fail(f"rho must lie in (-1, 1), got {self.rho}")
        if self.sigma <= 0:
            self._fail(f"sigma must be > 0, got {self.sigma}")
        if self.min_total_variance < -1e-14:
            self._fail(
                f"minimal total variance a + b sigma sqrt(1 - rho^2) = "
                f"{self.min_total_variance:.6g} is negative"
            )

    # ------------------------------------------------------------------ smile
    @property
    def min_total_variance(self) -> float:
        """:math:`\\min_k w(k) = a + b\\sigma\\sqrt{1-\\rho^2}`."""
        return self.a + self.b * self.sigma * math.sqrt(max(1.0 - self.rho * self.rho, 0.0))

    @property
    def lee_slope(self) -> float:
        """Steepest wing slope of total variance, :math:`b(1+|\\rho|)` (Lee: <= 2)."""
        return self.b * (1.0 + abs(self.rho))

    def total_variance(self, k: ArrayLike) -> FloatArray:
        """:math:`w(k)` at log-moneyness ``k``."""
        return svi_total_variance(k, self.a, self.b, self.rho, self.m, self.sigma)

    def dw(self, k: ArrayLike) -> FloatArray:
        """:math:`w'(k) = b(\\rho + (k-m)/\\sqrt{(k-m)^2+\\sigma^2})`."""
        x = np.asarray(k, dtype=np.float64) - self.m
        return np.asarray(self.b * (self.rho + x / np.sqrt(x * x + self.sigma**2)))

    def d2w(self, k: ArrayLike) -> FloatArray:
        """:math:`w''(k) = b\\sigma^2/((k-m)^2+\\sigma^2)^{3/2}`."""
        x = np.asarray(k, dtype=np.float64) - self.m
        return np.asarray(self.b * self.sigma**2 / (x * x + self.sigma**2) ** 1.5)

    def g(self, k: ArrayLike) -> FloatArray:
        """Butterfly function :math:`g(k)` (Gatheral & Jacquier 2014, eq. 2.1); see
        :func:`svi_g`. The density of the terminal price is
        :math:`p(k) = g(k)/\\sqrt{2\\pi w}\\,\\exp(-d_2^2/2)`."""
        return svi_g(k, self.a, self.b, self.rho, self.m, self.sigma)

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Black implied vol :math:`\\sqrt{w(k)/t}` (``t`` > 0 in years)."""
        t_arr = np.asarray(t, dtype=np.float64)
        if np.any(~(t_arr > 0)):
            raise ParameterError("SVI.implied_vol: t must be > 0")
        return np.asarray(np.sqrt(np.maximum(self.total_variance(k), 0.0) / t_arr))

    def min_g(self, k_grid: ArrayLike | None = None) -> float:
        """Smallest :math:`g` on ``k_grid`` (default: the dense check grid)."""
        grid = (
            _check_grid(self.a, self.b, self.rho, self.m, self.sigma)
            if k_grid is None
            else np.asarray(k_grid, dtype=np.float64)
        )
        return float(np.min(self.g(grid)))

    def is_arbitrage_free(
        self, t: float | None = None, *, k_grid: ArrayLike | None = None, tol: float = 1e-10
    ) -> bool:
        """Whether the smile is free of butterfly arbitrage.

        Checks the Lee wing bound :math:`b(1+|\\rho|) \\le 2`, positive total variance,
        and :math:`g(k) \\ge -\\text{tol}` on a dense grid (2001 uniform points over a
        range of at least :math:`\\pm 3` and 12 standard deviations, plus 401 points
        clustered around the vertex on the scale :math:`\\sigma`), or on ``k_grid``.

        ``t`` is accepted for symmetry with other smiles; raw SVI parameters are in
        total variance, so the butterfly condition does not depend on it (a given ``t``
        must still be positive).
        """
        if t is not None and not (float(t) > 0):
            raise ParameterError(f"SVI.is_arbitrage_free: t must be > 0, got {t}")
        if self.lee_slope > LEE_BOUND + 1e-12:
            return False
        if self.min_total_variance <= 0:
            return False
        return self.min_g(k_grid) >= -tol


@dataclass(frozen=True)
class SVISmiles:
    """One raw SVI smile per expiry (the ``params`` of an SVI calibration).

    Attributes
    ----------
    expiries : tuple of str
        ISO labels of the expiries (ascending).
    t : tuple of float
        Years to each expiry.
    forwards : tuple of float
        Forward of each expiry.
    smiles : tuple of SVI

    Examples
    --------
    >>> s = SVISmiles(("2026-03-27T08:00:00+00:00",), (0.25,), (1.0e5,),
    ...               (SVI(0.01, 0.05, -0.2, 0.0, 0.1),))
    >>> round(float(s.implied_vol(0.0, 0)), 6)
    0.244949
    """

    expiries: tuple[str, ...]
    t: tuple[float, ...]
    forwards: tuple[float, ...]
    smiles: tuple[SVI, ...]

    def __post_init__(self) -> None:
        n = len(self.smiles)
        if not (len(self.expiries) == len(self.t) == len(self.forwards) == n):
            raise ParameterError("SVISmiles: expiries, t, forwards and smiles differ in length")
        object.__setattr__(self, "expiries", tuple(str(e) for e in self.expiries))
        object.__setattr__(self, "t", tuple(float(x) for x in self.t))
        object.__setattr__(self, "forwards", tuple(float(x) for x in self.forwards))
        object.__setattr__(self, "smiles", tuple(self.smiles))

    def __len__(self) -> int:
        return len(self.smiles)

    def _index(self, t: float) -> int:
        hits = [i for i, ti in enumerate(self.t) if abs(ti - float(t)) <= 1e-9 * max(1.0, ti)]
        if not hits:
            listed = ", ".join(f"{x:.6g}" for x in self.t)
            raise ParameterError(f"SVISmiles: t={t} is not a listed expiry ({listed})")
        return hits[0]

    def smile(self, expiry: str | int) -> SVI:
        """The SVI of one expiry, by ISO label or index."""
        if isinstance(expiry, str):
            if expiry not in self.expiries:
                raise ParameterError(f"SVISmiles: no expiry {expiry!r}")
            return self.smiles[self.expiries.index(expiry)]
        return self.smiles[int(expiry)]

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`w(k, t)` for ``t`` among the listed expiries (per element, broadcast).

        No interpolation across expiries happens here (that is the surface's job);
        a ``t`` that is not listed raises :class:`~volcal.errors.ParameterError`.
        """
        kb, tb = np.broadcast_arrays(
            np.asarray(k, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        out = np.empty(kb.shape)
        for tv in np.unique(tb):
            sel = tb == tv
            out[sel] = self.smiles[self._index(float(tv))].total_variance(kb[sel])
        return out

    def implied_vol(self, k: ArrayLike, slice_index: ArrayLike) -> FloatArray:
        """Vols at log-moneyness ``k`` of the expiries ``slice_index`` (per quote)."""
        kb, sb = np.broadcast_arrays(
            np.asarray(k, dtype=np.float64), np.asarray(slice_index, dtype=np.int64)
        )
        out = np.empty(kb.shape)
        for i, s in enumerate(self.smiles):
            sel = sb == i
            if sel.any():
                out[sel] = s.implied_vol(kb[sel], self.t[i])
        return out

    def is_arbitrage_free(self) -> bool:
        """Every slice free of butterfly arbitrage (calendar arbitrage is not checked)."""
        return all(s.is_arbitrage_free() for s in self.smiles)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: one entry per expiry with its parameters."""
        return {
            "model": "SVI",
            "slices": [
                {"expiry": e, "t": t, "forward": f, **asdict(s)}
                for e, t, f, s in zip(
                    self.expiries, self.t, self.forwards, self.smiles, strict=True
                )
            ],
        }

    def summary(self) -> str:
        """One line per expiry."""
        return "\n".join(
            f"{e}  t={t:.4f}  {s.summary()}"
            for e, t, s in zip(self.expiries, self.t, self.smiles, strict=True)
        )


# --------------------------------------------------------------------------- surface
def _poly_mul(a: FloatArray, b: FloatArray) -> FloatArray:
    """Product of polynomials given as coefficient rows (lowest degree first, one row
    per point)."""
    out = np.zeros((a.shape[0], a.shape[1] + b.shape[1] - 1))
    for i in range(a.shape[1]):
        out[:, i : i + b.shape[1]] += a[:, i : i + 1] * b
    return out


def blend_min_g_poly(
    k: FloatArray,
    lo: tuple[FloatArray, FloatArray, FloatArray],
    hi: tuple[FloatArray, FloatArray, FloatArray],
) -> FloatArray:
    """Smallest :math:`w^2 g` over :math:`\\alpha \\in [0, 1]` of the blend
    :math:`w = (1-\\alpha) w_0 + \\alpha w_1` at each ``k`` (exact).

    ``lo`` and ``hi`` are ``(w, w_k, w_kk)`` of the two slices at ``k``. With
    :math:`e = w - k w_k/2`, :math:`w^2 g = e^2 - w_k^2 w/4 - w_k^2 w^2/16 + w_{kk} w^2/2`
    is a quartic in :math:`\\alpha`. Its Bernstein coefficients on [0, 1] bound it from
    below (non-negative coefficients certify :math:`g \\ge 0` on the whole gap); where
    one is negative the minimum is taken exactly over the end points and the real roots
    of the derivative in (0, 1).
    """
    kk = np.asarray(k, dtype=np.float64).ravel()
    lin = [np.stack([x0.ravel(), (x1 - x0).ravel()], axis=1) for x0, x1 in zip(lo, hi, strict=True)]
    w, wk, wkk = lin
    e = w - 0.5 * kk[:, None] * wk
    wk2 = _poly_mul(wk, wk)
    w2 = _poly_mul(w, w)
    poly = np.zeros((kk.size, 5))
    poly[:, :3] += _poly_mul(e, e)
    poly[:, :4] -= 0.25 * _poly_mul(wk2, w)
    poly -= _poly_mul(wk2, w2) / 16.0
    poly[:, :4] += 0.5 * _poly_mul(wkk, w2)
    # Bernstein coefficients of a quartic: b_i = sum_{j<=i} C(i,j)/C(4,j) a_j
    binom = np.array(
        [[math.comb(i, j) / math.comb(4, j) if j <= i else 0.0 for j in range(5)] for i in range(5)]
    )
    bern = poly @ binom.T
    out = np.min(bern, axis=1)
    unsure = out < 0
    if unsure.any():
        pu = poly[unsure]
        best = np.minimum(pu[:, 0], pu.sum(axis=1))
        d = pu[:, 1:] * np.arange(1, 5)  # derivative, cubic
        for i in range(pu.shape[0]):
            for r in np.roots(d[i, ::-1]):
                if abs(r.imag) < 1e-12 and 0.0 < r.real < 1.0:
                    best[i] = min(best[i], float(np.polyval(pu[i, ::-1], r.real)))
        out[unsure] = best
    return np.asarray(out)


def shift_min_g(k: FloatArray, w: FloatArray, wk: FloatArray, wkk: FloatArray) -> FloatArray:
    """Smallest :math:`g` of the shifted smiles :math:`w + c`, over all :math:`c \\ge 0`
    (exact, per point). With :math:`s = 1/(w + c) \\in (0, 1/w]`,
    :math:`g = 1 - (2x + y)s + x^2 s^2 + C` where :math:`x = k w_k/2`,
    :math:`y = w_k^2/4`, :math:`C = w_{kk}/2 - w_k^2/16`: a convex quadratic in
    :math:`s`, minimal at an end point or at :math:`s^* = (2x+y)/(2x^2)`."""
    x = 0.5 * k * wk
    y = 0.25 * wk * wk
    cst = 0.5 * wkk - wk * wk / 16.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s_end = 1.0 / w
        g_end = 1.0 - (2 * x + y) * s_end + x * x * s_end**2 + cst
        g_zero = 1.0 + cst
        s_star = (2 * x + y) / (2 * x * x)
        g_star = 1.0 + cst - (2 * x + y) ** 2 / (4 * x * x)
    inside = (x != 0) & (s_star > 0) & (s_star < s_end)
    out = np.minimum(g_end, g_zero)
    out = np.where(inside, np.minimum(out, g_star), out)
    return np.asarray(np.where(w > 0, out, -np.inf))


def surface_k_grid(theta_short: float) -> FloatArray:
    """The log-moneyness grid on which an :class:`SVISurface` is certified: 1201 points
    on [-3, 3], 401 points over 12 ATM standard deviations of the shortest expiry
    (``theta_short`` its ATM total variance), and far wing points out to |k| = 1000."""
    sd = math.sqrt(max(theta_short, 1e-12))
    far = np.geomspace(3.5, 1000.0, 24)
    return np.unique(
        np.concatenate(
            [np.linspace(-3.0, 3.0, 1201), sd * np.linspace(-12.0, 12.0, 401), far, -far]
        )
    )


@dataclass(frozen=True)
class SVISurface(SVISmiles):
    """Raw SVI slices joined into a surface free of static arbitrage (``svi_surface``).

    The nodes are the fitted slices (one :class:`SVI` per expiry, ascending). In time,
    at fixed log-moneyness :math:`k`:

    * before the first expiry, :math:`w(k, t) = w_1(k)\\,t/t_1` (the first smile's
      implied vols; scaling total variance by :math:`c \\in (0, 1]` keeps
      :math:`g \\ge 0`, see :mod:`volcal.models.ssvi`);
    * between expiries, linear in total variance,
      :math:`w = (1-\\alpha) w_j(k) + \\alpha w_{j+1}(k)`, so
      :math:`w_t = (w_{j+1} - w_j)/(t_{j+1} - t_j)` is non-negative wherever the
      slices do not cross;
    * after the last expiry, :math:`w(k,t) = w_N(k) + \\theta_N (t/t_N - 1)` (flat ATM
      vol, wings held: adding a constant keeps Lee's bound and :math:`w_t > 0`).

    :meth:`conditions` certifies the whole surface on :func:`surface_k_grid`: every node
    butterfly-free (:meth:`SVI.is_arbitrage_free`), neighbours ordered
    (:math:`w_{j+1} \\ge w_j` and both wing slopes non-decreasing), every blend
    butterfly-free for *all* :math:`\\alpha \\in [0, 1]` (:func:`blend_min_g_poly`,
    exact) and the extrapolation for all :math:`t > t_N` (:func:`shift_min_g`, exact).

    Examples
    --------
    >>> s = SVISurface(("a", "b"), (0.1, 0.5), (1.0, 1.0),
    ...                (SVI(0.004, 0.02, -0.3, 0.0, 0.2), SVI(0.02, 0.08, -0.3, 0.0, 0.25)))
    >>> s.conditions()["ok"], round(float(s.total_variance(0.0, 0.3)), 6)
    (True, 0.024)
    """

    name: ClassVar[str] = "svi_surface"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.smiles:
            raise ParameterError("SVISurface: needs at least one slice")
        if self.t[0] <= 0 or any(b <= a for a, b in zip(self.t, self.t[1:], strict=False)):
            raise ParameterError("SVISurface: expiries must be positive and strictly increasing")

    @property
    def theta(self) -> tuple[float, ...]:
        """ATM total variance of each node."""
        return tuple(float(s.total_variance(0.0)) for s in self.smiles)

    def _node(self, i: int, k: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        s = self.smiles[i]
        return s.total_variance(k), s.dw(k), s.d2w(k)

    def derivatives(
        self, k: ArrayLike, t: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(w, w_k, w_kk, w_t)`` at ``(k, t)`` (analytic; broadcast; class docs)."""
        kb, tb = np.broadcast_arrays(
            np.asarray(k, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        if np.any(~np.isfinite(tb)) or np.any(tb <= 0):
            raise ParameterError("maturities t must be finite and > 0 (years)")
        shape = kb.shape
        k1, t1 = kb.ravel(), tb.ravel()
        tn = np.asarray(self.t)
        n = tn.size
        j = np.searchsorted(tn, t1, side="right") - 1
        out = [np.empty(k1.size) for _ in range(4)]
        before = j < 0
        if before.any():
            w, wk, wkk = self._node(0, k1[before])
            c = t1[before] / tn[0]
            out[0][before], out[1][before], out[2][before] = c * w, c * wk, c * wkk
            out[3][before] = w / tn[0]
        after = j >= n - 1
        if after.any():
            w, wk, wkk = self._node(n - 1, k1[after])
            th = self.theta[-1]
            out[0][after] = w + th * (t1[after] / tn[-1] - 1.0)
            out[1][after], out[2][after] = wk, wkk
            out[3][after] = th / tn[-1]
        for seg in np.unique(j[~before & ~after]):
            m = j == seg
            dt = tn[seg + 1] - tn[seg]
            al = (t1[m] - tn[seg]) / dt
            lo = self._node(int(seg), k1[m])
            hi = self._node(int(seg) + 1, k1[m])
            for q in range(3):
                out[q][m] = (1.0 - al) * lo[q] + al * hi[q]
            out[3][m] = (hi[0] - lo[0]) / dt
        w, wk, wkk, wt = (o.reshape(shape) for o in out)
        return w, wk, wkk, wt

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`w(k, t)` at any maturity ``t`` > 0 (interpolated; class docs)."""
        return self.derivatives(k, t)[0]

    def conditions(self, k_grid: ArrayLike | None = None, tol: float = 1e-10) -> dict[str, Any]:
        """Certificate of no static arbitrage on ``k_grid`` (default
        :func:`surface_k_grid`): per node the smallest ``g``, per gap the smallest
        :math:`w_{j+1} - w_j`, the wing-slope increments and the smallest
        :math:`w^2 g` over the blends, and the smallest ``g`` of the extrapolation."""
        grid = (
            surface_k_grid(self.theta[0])
            if k_grid is None
            else np.unique(np.asarray(k_grid, dtype=np.float64))
        )
        nodes = [s.is_arbitrage_free() and s.min_g(grid) >= -tol for s in self.smiles]
        node_g = [min(s.min_g(), s.min_g(grid)) for s in self.smiles]
        gaps: list[dict[str, float]] = []
        ok = all(nodes)
        for i in range(len(self.smiles) - 1):
            lo, hi = self._node(i, grid), self._node(i + 1, grid)
            s0, s1 = self.smiles[i], self.smiles[i + 1]
            d_left = s1.b * (1 - s1.rho) - s0.b * (1 - s0.rho)
            d_right = s1.b * (1 + s1.rho) - s0.b * (1 + s0.rho)
            gap = {
                "calendar": float(np.min(hi[0] - lo[0])),
                "slope_left": float(d_left),
                "slope_right": float(d_right),
                "blend_w2g": float(np.min(blend_min_g_poly(grid, lo, hi))),
            }
            gaps.append(gap)
            ok &= gap["calendar"] >= 0.0
            ok &= d_left >= -1e-12 and d_right >= -1e-12
            ok &= gap["blend_w2g"] >= -tol
        last = self._node(len(self.smiles) - 1, grid)
        extrap = float(np.min(shift_min_g(grid, *last)))
        ok &= extrap >= -tol
        return {
            "ok": bool(ok),
            "node_min_g": node_g,
            "gaps": gaps,
            "extrapolation_min_g": extrap,
            "n_points": int(grid.size),
        }

    def is_arbitrage_free(self) -> bool:
        """Whether :meth:`conditions` certifies the surface."""
        return bool(self.conditions()["ok"])

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["model"] = "SVISurface"
        return d
