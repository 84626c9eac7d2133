"""Time-dependent Heston and Bates: parameters piecewise constant between knots.

Mikhailov & Nögel (2003), "Heston's stochastic volatility model: implementation,
calibration and some extensions", Wilmott; Elices (2008), "Models with time-dependent
parameters using transform methods: application to Heston's model", arXiv:0708.2020.

The variance follows Heston's dynamics with :math:`\\kappa_i, \\theta_i, \\xi_i, \\rho_i`
constant on the interval :math:`(\\tau_{i-1}, \\tau_i]` (``knots`` are the interval end
times :math:`\\tau_0 < \\tau_1 < \\dots`, :math:`\\tau_{-1} = 0`; the last interval's
parameters also apply beyond the last knot). ``v0`` is global. The characteristic
function of :math:`X_T = \\ln(F_T/F_0)` stays exponential-affine,
:math:`\\varphi = \\exp(C + D v_0)`, with :math:`C, D` obtained by backward recursion over
the intervals: starting from :math:`C = D = 0` at :math:`T`, each interval (duration
:math:`\\Delta_i`, the part of :math:`(\\tau_{i-1}, \\tau_i]` before :math:`T`) maps the
values :math:`(C_0, D_0)` at its end to those at its start by the Riccati solution with
initial value :math:`D_0`, written in the "little Heston trap" form (Albrecher et al.
2007) and without division by :math:`\\xi^2`:

.. math::

    b = \\kappa_i - i\\rho_i\\xi_i u,\\quad w = iu + u^2,\\quad
    d = \\sqrt{b^2 + \\xi_i^2 w},\\quad q = \\frac{-w}{b + d},\\quad
    h = \\frac{q - D_0}{b + d - \\xi_i^2 D_0},\\quad g = \\xi_i^2 h,

.. math::

    D = \\frac{q\\,(1 - e^{-d\\Delta}) + D_0\\,e^{-d\\Delta}(1-g)}{1 - g e^{-d\\Delta}},\\qquad
    C = C_0 + \\kappa_i\\theta_i\\Big(q\\Delta - 2\\,h\\,\\frac{1-e^{-d\\Delta}}{1-g}
        \\,\\frac{\\ln(1+z)}{z}\\Big),\\quad z = g\\frac{1-e^{-d\\Delta}}{1-g}.

With :math:`D_0 = 0` this is exactly :func:`volcal.models.heston.heston_exponents`; since
the Riccati flow is a semigroup, equal parameters on every interval give the constant
model (to rounding).

``BatesTD`` adds Merton log-normal jumps whose intensity and law ``lam_i, mu_i, sigma_i``
are piecewise constant on the same intervals. The jumps are independent of the variance,
so their exponent is additive over the intervals:

.. math::

    \\psi_J(u, T) = \\sum_i \\Delta_i(T)\\,\\lambda_i\\,\\big(e^{iu\\mu_i - u^2\\sigma_i^2/2} - 1
        - iu\\,(e^{\\mu_i + \\sigma_i^2/2} - 1)\\big),

evaluated in the summed-by-parts form :math:`\\psi_{n-1}T + \\sum_{i<n-1}
(\\psi_i - \\psi_{i+1})\\min(T, \\tau_i)` (:math:`\\psi_i` the exponent per year of
interval :math:`i`), so equal jumps on every interval give bit for bit the exponent
:math:`\\lambda T(\\dots)` of one global jump law. The very short crypto expiries each
need their own jumps (fitted to one expiry of a few days alone, a constant Bates comes
close to SVI, a constant Heston does not); a single scalar is broadcast to every interval.

Parameter vector (:meth:`HestonTD.to_vector`): ``v0``, then ``kappa`` of every interval,
``theta``, ``xi``, ``rho`` (BatesTD: then ``lam``, ``mu_j``, ``sigma_j`` of every interval,
``1 + 7n`` entries); :meth:`HestonTD.names` gives the labels (``"kappa[2]"``,
``"lam[0]"``). The knots are not parameters: ``from_vector`` takes them as an argument.
"""

from __future__ import annotations

import cmath
import functools
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import ParameterError
from volcal.models._base import Model, log1p_ratio
from volcal.models.heston import _HESTON_BOUNDS, Bates, Heston, _merton_jump_exponent

__all__ = ["BatesTD", "HestonTD", "td_exponents", "td_jump_exponent"]

_PIECE = ("kappa", "theta", "xi", "rho")
_JUMP = ("lam", "mu_j", "sigma_j")


def td_exponents(
    u: ArrayLike,
    t: ArrayLike,
    knots: tuple[float, ...],
    kappa: tuple[float, ...],
    theta: tuple[float, ...],
    xi: tuple[float, ...],
    rho: tuple[float, ...],
) -> tuple[Any, Any]:
    """Exponents ``(C, D)`` of the piecewise-constant Heston model, :math:`\\ln\\varphi = C + Dv_0`.

    Backward recursion over the intervals (module docs); ``u`` and ``t`` broadcast.

    Examples
    --------
    >>> C, D = td_exponents(np.array([-1j]), 1.0, (0.5, 1.0), (2.0, 1.0), (0.04, 0.09),
    ...                     (0.5, 0.8), (-0.7, -0.5))
    >>> bool(abs(C[0]) < 1e-15 and abs(D[0]) < 1e-15)   # martingale: phi(-i) = 1
    True
    """
    uu, tt = np.broadcast_arrays(
        np.asarray(u, dtype=np.complex128), np.asarray(t, dtype=np.float64)
    )
    iu = 1j * uu
    w = iu + uu * uu
    C = np.zeros(uu.shape, dtype=np.complex128)
    D = np.zeros(uu.shape, dtype=np.complex128)
    n = len(knots)
    for i in range(n - 1, -1, -1):
        start = 0.0 if i == 0 else knots[i - 1]
        end = math.inf if i == n - 1 else knots[i]
        dur = np.minimum(tt, end) - start
        live = dur > 0.0
        if not np.any(live):
            continue
        dur = np.where(live, dur, 0.0)
        k, th, x, r = kappa[i], theta[i], xi[i], rho[i]
        x2 = x * x
        b = k - r * x * iu
        d = np.sqrt(b * b + x2 * w)
        bd = b + d
        q = -w / bd
        qd = q - D
        denom = bd - x2 * D
        h = qd / denom
        g = qd * x2 / denom
        dt = d * dur
        e = np.exp(-dt)
        one_m_e = -np.expm1(-dt)
        one_m_g = 1.0 - g
        d_new = (q * one_m_e + D * e * one_m_g) / (1.0 - g * e)
        z = g * one_m_e / one_m_g
        log_over_xi2 = log1p_ratio(z) * h * one_m_e / one_m_g
        c_new = C + k * th * (q * dur - 2.0 * log_over_xi2)
        C = np.where(live, c_new, C)
        D = np.where(live, d_new, D)
    return C, D


def td_jump_exponent(
    u: ArrayLike,
    t: ArrayLike,
    knots: tuple[float, ...],
    lam: tuple[float, ...],
    mu_j: tuple[float, ...],
    sigma_j: tuple[float, ...],
) -> Any:
    """Exponent of the piecewise-constant Merton jumps (module docs), ``u``, ``t`` broadcast.

    Summed by parts: the last interval's exponent over all of ``t`` plus, for every
    earlier knot, the difference of two neighbouring intervals' exponents over
    ``min(t, knot)`` - zero exactly when they are equal.

    Examples
    --------
    >>> a = td_jump_exponent(2.0, 0.8, (0.1, 0.5), (2.0, 2.0), (-0.1, -0.1), (0.2, 0.2))
    >>> b = _merton_jump_exponent(2.0, 0.8, 2.0, -0.1, 0.2)
    >>> bool(a == b)
    True
    """
    tt = np.asarray(t, dtype=np.float64)
    n = len(knots)
    out = _merton_jump_exponent(u, tt, lam[n - 1], mu_j[n - 1], sigma_j[n - 1])
    for i in range(n - 1):
        if (lam[i], mu_j[i], sigma_j[i]) == (lam[i + 1], mu_j[i + 1], sigma_j[i + 1]):
            continue
        m = np.minimum(tt, knots[i])
        out = out + (
            _merton_jump_exponent(u, m, lam[i], mu_j[i], sigma_j[i])
            - _merton_jump_exponent(u, m, lam[i + 1], mu_j[i + 1], sigma_j[i + 1])
        )
    return out


def _td_kernel_py(
    u: Any, t: Any, knots: Any, kappa: Any, theta: Any, xi: Any, rho: Any, v0: float
) -> Any:
    """Scalar-loop form of :func:`td_exponents` returning :math:`C + Dv_0` (compiled by
    numba; same arithmetic, accurate complex ``log1p``/``expm1``)."""
    n = knots.shape[0]
    out = np.empty(u.shape[0], dtype=np.complex128)
    for p in range(u.shape[0]):
        uu = u[p]
        tt = t[p]
        iu = 1j * uu
        w = iu + uu * uu
        c = 0j
        dd = 0j
        for i in range(n - 1, -1, -1):
            start = 0.0 if i == 0 else knots[i - 1]
            end = tt if i == n - 1 else min(tt, knots[i])
            dur = end - start
            if dur <= 0.0:
                continue
            k = kappa[i]
            x2 = xi[i] * xi[i]
            b = k - rho[i] * xi[i] * iu
            d = cmath.sqrt(b * b + x2 * w)
            bd = b + d
            q = -w / bd
            qd = q - dd
            denom = bd - x2 * dd
            h = qd / denom
            g = qd * x2 / denom
            z0 = -d * dur
            e = cmath.exp(z0)
            # 1 - e = -expm1(z0), accurate for small |z0|
            ex = math.expm1(z0.real)
            one_m_e = -complex(
                ex * math.cos(z0.imag) - 2.0 * math.sin(0.5 * z0.imag) ** 2,
                math.exp(z0.real) * math.sin(z0.imag),
            )
            one_m_g = 1.0 - g
            d_new = (q * one_m_e + dd * e * one_m_g) / (1.0 - g * e)
            z = g * one_m_e / one_m_g
            if abs(z) < 1e-3:
                r = 1.0 - z * (0.5 - z * (1.0 / 3.0 - z * (0.25 - z * (0.2 - z / 6.0))))
            else:
                # log1p(z) = 0.5 log1p(2x + x^2 + y^2) + i atan2(y, 1 + x)
                zr, zi = z.real, z.imag
                r = (
                    complex(
                        0.5 * math.log1p(2.0 * zr + zr * zr + zi * zi), math.atan2(zi, 1.0 + zr)
                    )
                    / z
                )
            c = c + k * theta[i] * (q * dur - 2.0 * r * h * one_m_e / one_m_g)
            dd = d_new
        out[p] = c + dd * v0
    return out


@functools.cache
def _td_kernel() -> Any:
    """The numba-compiled kernel (numba imported lazily, compiled once, cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True, error_model="numpy")(_td_kernel_py)


def _td_log_cf(m: HestonTD, u: ArrayLike, t: ArrayLike) -> Any:
    uu, tt = np.broadcast_arrays(
        np.asarray(u, dtype=np.complex128), np.asarray(t, dtype=np.float64)
    )
    # own copies (np.array copies): a scalar broadcast to size 1 stays a broadcast view
    # through ravel/ascontiguousarray, and its deprecated writeable flag makes the
    # compiled kernel's argument typing raise a FutureWarning in NumPy 2
    flat = _td_kernel()(
        np.array(uu, order="C").ravel(),
        np.array(tt, order="C").ravel(),
        np.asarray(m.knots),
        np.asarray(m.kappa),
        np.asarray(m.theta),
        np.asarray(m.xi),
        np.asarray(m.rho),
        float(m.v0),
    )
    return flat.reshape(uu.shape)


def _as_tuple(cls: str, name: str, value: Any, n: int | None) -> tuple[float, ...]:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64)) if value is not None else None
    if arr is None or arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"{cls}.{name} must be a non-empty sequence of numbers")
    if n is not None and arr.size == 1 and n > 1:
        arr = np.full(n, float(arr[0]))
    if n is not None and arr.size != n:
        raise ParameterError(f"{cls}.{name} needs {n} values (one per interval), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{cls}.{name} must be finite, got {arr.tolist()}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class HestonTD(Model):
    """Heston with piecewise-constant ``kappa, theta, xi, rho`` (Mikhailov & Nögel 2003).

    Parameters
    ----------
    knots : sequence of float
        Interval end times in years, strictly increasing and > 0 (e.g. the expiries of
        a chain). The last interval's parameters also apply after the last knot.
    v0 : float
        Initial variance (global).
    kappa, theta, xi, rho : sequence of float
        One value per interval (a single value is repeated on every interval).

    Examples
    --------
    >>> m = HestonTD((0.25, 1.0), 0.04, kappa=(2.0, 1.0), theta=(0.04, 0.09),
    ...              xi=(0.5, 0.8), rho=(-0.7, -0.5))
    >>> abs(complex(m.char_func(-1j, 2.0)) - 1) < 1e-14
    True
    >>> m.names()[:3]
    ('v0', 'kappa[0]', 'kappa[1]')
    """

    knots: tuple[float, ...]
    v0: float
    kappa: tuple[float, ...]
    theta: tuple[float, ...]
    xi: tuple[float, ...]
    rho: tuple[float, ...]

    # per-interval glossary names (the flat vector's labels come from names())
    param_names: ClassVar[tuple[str, ...]] = ("v0", *_PIECE)
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = _HESTON_BOUNDS
    _pieces: ClassVar[tuple[str, ...]] = _PIECE  # per-interval parameters, vector order
    simulator: ClassVar[str] = "heston_td"  # QE per interval (BatesTD: with jumps)

    def __post_init__(self) -> None:
        cls = type(self).__name__
        knots = _as_tuple(cls, "knots", self.knots, None)
        if knots[0] <= 0.0 or bool(np.any(np.diff(knots) <= 0.0)):
            raise ParameterError(f"{cls}.knots must be > 0 and strictly increasing, got {knots}")
        object.__setattr__(self, "knots", knots)
        n = len(knots)
        for name in self._pieces:
            object.__setattr__(self, name, _as_tuple(cls, name, getattr(self, name), n))
        for f in fields(self):
            if f.name not in ("knots", *self._pieces):
                v = getattr(self, f.name)
                try:
                    fv = float(v)
                except (TypeError, ValueError):
                    raise ParameterError(
                        f"{cls}.{f.name} must be a real number, got {v!r}"
                    ) from None
                if not math.isfinite(fv):
                    raise ParameterError(f"{cls}.{f.name} must be finite, got {fv}")
                object.__setattr__(self, f.name, fv)
        self._validate()

    def _validate(self) -> None:
        if self.v0 < 0.0:
            self._fail(f"v0 (initial variance) must be >= 0, got {self.v0}")
        for i in range(self.n_intervals):
            tag = f" on interval {i}"
            if self.kappa[i] <= 0.0:
                self._fail(f"kappa (mean reversion) must be > 0{tag}, got {self.kappa[i]}")
            if self.theta[i] < 0.0:
                self._fail(f"theta (long-run variance) must be >= 0{tag}, got {self.theta[i]}")
            if self.xi[i] < 0.0:
                self._fail(f"xi (vol of variance) must be >= 0{tag}, got {self.xi[i]}")
            if not -1.0 < self.rho[i] < 1.0:
                self._fail(f"rho must lie in (-1, 1){tag}, got {self.rho[i]}")

    # ------------------------------------------------------------------ layout
    @property
    def n_intervals(self) -> int:
        """Number of intervals (= number of knots)."""
        return len(self.knots)

    def names(self) -> tuple[str, ...]:
        """Labels of :meth:`to_vector`'s entries (``"v0"``, ``"kappa[0]"``, ...)."""
        n = self.n_intervals
        return (
            "v0",
            *(f"{p}[{i}]" for p in self._pieces for i in range(n)),
        )

    def to_vector(self) -> FloatArray:
        """``v0``, every interval's ``kappa``, ``theta``, ``xi``, ``rho`` (BatesTD: then
        every interval's ``lam``, ``mu_j``, ``sigma_j``)."""
        parts = [np.array([self.v0])] + [np.asarray(getattr(self, p)) for p in self._pieces]
        return np.concatenate(parts).astype(np.float64)

    @classmethod
    def from_vector(cls, x: ArrayLike, knots: ArrayLike | None = None) -> Any:
        """Build from a vector in :meth:`to_vector` order and the ``knots``."""
        if knots is None:
            raise ParameterError(f"{cls.__name__}.from_vector needs the knots (interval ends)")
        kn = tuple(float(v) for v in np.atleast_1d(np.asarray(knots, dtype=np.float64)))
        n = len(kn)
        v = np.asarray(x, dtype=np.float64).ravel()
        n_p = len(cls._pieces)
        size = 1 + n_p * n
        if v.size != size:
            raise ParameterError(
                f"{cls.__name__}.from_vector: expected {size} values for {n} intervals, got {v.size}"
            )
        kw: dict[str, Any] = {"knots": kn, "v0": float(v[0])}
        for j, p in enumerate(cls._pieces):
            kw[p] = tuple(v[1 + j * n : 1 + (j + 1) * n].tolist())
        return cls(**kw)

    def with_vector(self, x: ArrayLike) -> Any:
        """Same knots, new parameter vector."""
        return type(self).from_vector(x, self.knots)

    def bounds(self) -> tuple[FloatArray, FloatArray]:  # type: ignore[override]
        """Box bounds of :meth:`to_vector` (each interval gets the Heston / Bates box)."""
        n = self.n_intervals
        hb = np.array(self._bounds, dtype=np.float64)
        n_p = len(self._pieces)
        lo = [hb[0, 0]] + [hb[1 + j, 0] for j in range(n_p) for _ in range(n)]
        hi = [hb[0, 1]] + [hb[1 + j, 1] for j in range(n_p) for _ in range(n)]
        return np.array(lo), np.array(hi)

    def interval(self, i: int) -> Heston:
        """The constant Heston model of interval ``i`` (with the global ``v0``)."""
        return Heston(self.v0, self.kappa[i], self.theta[i], self.xi[i], self.rho[i])

    def resample(self, knots: ArrayLike) -> Any:
        """Same parameter curve on new knots: new interval ``j`` takes the parameters in
        force just before ``knots[j]`` (a warm start for the next snapshot's expiries)."""
        kn = np.atleast_1d(np.asarray(knots, dtype=np.float64))
        idx = np.minimum(
            np.searchsorted(np.asarray(self.knots), kn, side="left"), len(self.knots) - 1
        )
        kw: dict[str, Any] = {"knots": tuple(kn.tolist()), "v0": self.v0}
        for p in self._pieces:
            kw[p] = tuple(np.asarray(getattr(self, p))[idx].tolist())
        return type(self)(**kw)

    @classmethod
    def constant(cls, model: Any, knots: ArrayLike) -> Any:
        """The piecewise model with ``model``'s (Heston/Bates) parameters on every interval."""
        kn = tuple(float(v) for v in np.atleast_1d(np.asarray(knots, dtype=np.float64)))
        kw: dict[str, Any] = {"knots": kn, "v0": model.v0}
        for p in cls._pieces:
            kw[p] = (float(getattr(model, p)),) * len(kn)
        return cls(**kw)

    @property
    def feller(self) -> bool:
        """True when :math:`2\\kappa_i\\theta_i \\ge \\xi_i^2` on every interval."""
        return all(
            2.0 * k * t >= x * x for k, t, x in zip(self.kappa, self.theta, self.xi, strict=True)
        )

    # ---------------------------------------------------------- characteristic
    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> Any:
        return _td_log_cf(self, u, t)

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants from Cauchy's formula on the exact exponent (see ``Model``)."""
        return self._numeric_cumulants(t)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: model name, knots, ``v0``, per-interval lists."""
        out: dict[str, Any] = {
            "model": type(self).__name__,
            "knots": list(self.knots),
            "v0": self.v0,
        }
        for p in self._pieces:
            out[p] = list(getattr(self, p))
        return out

    def summary(self) -> str:
        """Text summary: ``v0``, then one line per interval."""
        head = [f"v0={self.v0:.6g}"]
        rows = [
            f"  ({0.0 if i == 0 else self.knots[i - 1]:.4g}, {self.knots[i]:.4g}]: "
            + ", ".join(f"{p}={getattr(self, p)[i]:.6g}" for p in self._pieces)
            for i in range(self.n_intervals)
        ]
        return (
            f"{type(self).__name__}({', '.join(head)}; {self.n_intervals} intervals)\n"
            + "\n".join(rows)
        )


@dataclass(frozen=True)
class BatesTD(HestonTD):
    """:class:`HestonTD` plus Merton log-normal jumps, ``lam, mu_j, sigma_j`` piecewise
    constant on the same intervals (one value per interval; a scalar is repeated).

    .. math:: \\ln\\varphi = C + D v_0 + \\sum_i \\Delta_i(t)\\,\\lambda_i\\,
        (e^{iu\\mu_i - u^2\\sigma_i^2/2} - 1 - iu(e^{\\mu_i+\\sigma_i^2/2}-1)).

    Examples
    --------
    >>> m = BatesTD((0.1, 0.5), 0.25, kappa=5.0, theta=(0.3, 0.4), xi=2.0, rho=-0.2,
    ...             lam=(4.0, 1.0), mu_j=(-0.08, -0.02), sigma_j=0.1)
    >>> abs(complex(m.char_func(-1j, 1.0)) - 1) < 1e-14
    True
    >>> m.names()[-2:]
    ('sigma_j[0]', 'sigma_j[1]')
    """

    lam: tuple[float, ...] = (0.0,)
    mu_j: tuple[float, ...] = (0.0,)
    sigma_j: tuple[float, ...] = (0.0,)

    param_names: ClassVar[tuple[str, ...]] = ("v0", *_PIECE, *_JUMP)
    _pieces: ClassVar[tuple[str, ...]] = (*_PIECE, *_JUMP)
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = Bates._bounds

    def _validate(self) -> None:
        super()._validate()
        for i in range(self.n_intervals):
            if self.lam[i] < 0.0:
                self._fail(f"lam (jump intensity) must be >= 0 on interval {i}, got {self.lam[i]}")
            if self.sigma_j[i] < 0.0:
                self._fail(
                    f"sigma_j (jump size std) must be >= 0 on interval {i}, got {self.sigma_j[i]}"
                )

    def interval(self, i: int) -> Bates:  # type: ignore[override]
        """The constant Bates model of interval ``i`` (with the global ``v0``)."""
        return Bates(
            self.v0,
            self.kappa[i],
            self.theta[i],
            self.xi[i],
            self.rho[i],
            self.lam[i],
            self.mu_j[i],
            self.sigma_j[i],
        )

    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> Any:
        return _td_log_cf(self, u, t) + td_jump_exponent(
            u, t, self.knots, self.lam, self.mu_j, self.sigma_j
        )
