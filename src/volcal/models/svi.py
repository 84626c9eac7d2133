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

__all__ = ["LEE_BOUND", "SVI", "SVISmiles", "svi_g", "svi_total_variance"]

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
