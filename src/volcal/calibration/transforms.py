"""Parameter spaces: box bounds by smooth transforms, fixed parameters, Feller.

The optimizer works on an unconstrained vector :math:`y`. Each free coordinate maps
into its box through a logistic transform

.. math:: z = \\ell + (h-\\ell)\\,\\sigma(y),\\qquad \\sigma(y) = \\frac{1}{1+e^{-y}},
    \\qquad \\frac{dz}{dy} = \\frac{(z-\\ell)(h-z)}{h-\\ell},

so every trial point is a valid model and no solver needs bound handling. With the
Feller constraint (Heston family) the free coordinate for ``xi`` is the ratio
:math:`s = \\xi^2/(2\\kappa\\theta) \\in (0, 1]` and :math:`\\xi = \\sqrt{2\\kappa\\theta s}`,
so :math:`2\\kappa\\theta \\ge \\xi^2` holds everywhere. Fixed parameters are simply not
part of :math:`y`.

The map is :math:`y \\to z` (free coordinates in their boxes) :math:`\\to x` (the full
parameter vector in ``param_names`` order); :meth:`ParamSpace.dx_dz` is the Jacobian of
the second step, used for chain rules and for standard errors by the delta method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import ParameterError

__all__ = ["ParamSpace"]

_Y_CLIP = 30.0  # |y| beyond this sits at the bound to double precision


class ParamSpace:
    """Free/fixed split, box transform and optional Feller map of a model class.

    Parameters
    ----------
    cls : type
        Model class with ``param_names`` and ``bounds()``.
    base : ndarray
        Full parameter vector supplying the fixed values.
    fixed : mapping or iterable of str, optional
        Names to hold fixed (values from ``base``), or ``{name: value}``.
    feller : bool
        Enforce :math:`2\\kappa\\theta \\ge \\xi^2` (models with ``kappa, theta, xi``).
    bounds : mapping of str to (lo, hi), optional
        Box of some parameters instead of the class's ``bounds()``. Each must be finite
        with ``lo < hi`` and must contain the parameter's value in ``base``; otherwise
        :class:`~volcal.errors.ParameterError`.

    Examples
    --------
    >>> from volcal.models import Heston
    >>> sp = ParamSpace(Heston, Heston(0.04, 2, 0.05, 0.5, -0.6).to_vector(), fixed=["rho"])
    >>> sp.free_names
    ('v0', 'kappa', 'theta', 'xi')
    >>> bool(np.allclose(sp.to_x(sp.to_y(sp.base)), sp.base))
    True
    """

    def __init__(
        self,
        cls: Any,
        base: FloatArray,
        fixed: Mapping[str, float] | Any = None,
        feller: bool = False,
        bounds: Mapping[str, Any] | None = None,
    ) -> None:
        self.cls = cls
        names = tuple(cls.param_names)
        self.names = names
        lo, hi = cls.bounds()
        self.lo_full, self.hi_full = lo.astype(np.float64), hi.astype(np.float64)
        base = np.array(base, dtype=np.float64)
        for name, box in (bounds or {}).items():
            if name not in names:
                raise ParameterError(
                    f"bounds: {cls.__name__} has no parameter {name!r} "
                    f"(parameters: {', '.join(names)})"
                )
            try:
                b_lo, b_hi = (float(v) for v in box)
            except (TypeError, ValueError):
                raise ParameterError(
                    f"bounds[{name!r}] must be a pair (lo, hi), got {box!r}"
                ) from None
            if not (np.isfinite(b_lo) and np.isfinite(b_hi) and b_lo < b_hi):
                raise ParameterError(
                    f"bounds[{name!r}] must be finite with lo < hi, got ({b_lo}, {b_hi})"
                )
            i = names.index(name)
            if not b_lo <= base[i] <= b_hi:
                raise ParameterError(
                    f"bounds[{name!r}] = ({b_lo:g}, {b_hi:g}) excludes the start {name}={base[i]:g}"
                )
            self.lo_full[i], self.hi_full[i] = b_lo, b_hi
        fixed_names: list[str] = []
        if fixed is not None:
            items = fixed.items() if isinstance(fixed, Mapping) else ((n, None) for n in fixed)
            for name, value in items:
                if name not in names:
                    raise ParameterError(
                        f"cannot fix {name!r}: {cls.__name__} has parameters {', '.join(names)}"
                    )
                if value is not None:
                    base[names.index(name)] = float(value)
                fixed_names.append(name)
        self.feller = bool(feller)
        if self.feller and not {"kappa", "theta", "xi"} <= set(names):
            raise ParameterError(
                f"the Feller constraint needs kappa, theta, xi; {cls.__name__} has none"
            )
        if self.feller and "xi" in fixed_names:
            raise ParameterError("the Feller constraint moves xi: do not fix it")
        self.free = np.array([i for i, n in enumerate(names) if n not in fixed_names], dtype=int)
        self.free_names = tuple(names[i] for i in self.free)
        if self.free.size == 0:
            raise ParameterError("every parameter is fixed: nothing to calibrate")
        self.lo = self.lo_full[self.free].copy()
        self.hi = self.hi_full[self.free].copy()
        if self.feller:
            self.i_k, self.i_t, self.i_x = (names.index(n) for n in ("kappa", "theta", "xi"))
            self.j_x = int(np.flatnonzero(self.free == self.i_x)[0])
            self.lo[self.j_x], self.hi[self.j_x] = 1e-6, 1.0
            if self.feller_ratio(base) > 1.0:
                # project the start onto the constraint: xi = sqrt(2 kappa theta)
                base[self.i_x] = np.sqrt(2.0 * base[self.i_k] * base[self.i_t]) * (1 - 1e-9)
        self.base = base
        # dx/dz without the Feller map: the constant selection of the free coordinates
        d = np.zeros((len(names), self.free.size))
        d[self.free, np.arange(self.free.size)] = 1.0
        d.setflags(write=False)
        self._dx_dz_const = d

    # ------------------------------------------------------------ mappings
    def feller_ratio(self, x: FloatArray) -> float:
        """:math:`\\xi^2/(2\\kappa\\theta)` of a full vector."""
        return float(x[self.i_x] ** 2 / max(2.0 * x[self.i_k] * x[self.i_t], 1e-300))

    def x_to_z(self, x: FloatArray) -> FloatArray:
        """Free coordinates (in their boxes) of a full vector, clipped into the box."""
        z = np.asarray(x, dtype=np.float64)[self.free].copy()
        if self.feller:
            z[self.j_x] = self.feller_ratio(x)
        return np.clip(z, self.lo, self.hi)

    def z_to_x(self, z: FloatArray) -> FloatArray:
        x = self.base.copy()
        x[self.free] = z
        if self.feller:
            x[self.i_x] = np.sqrt(2.0 * x[self.i_k] * x[self.i_t] * z[self.j_x])
            x[self.i_x] = min(x[self.i_x], self.hi_full[self.i_x])
        return x

    def z_to_y(self, z: FloatArray) -> FloatArray:
        span = self.hi - self.lo
        p = np.clip((np.asarray(z) - self.lo) / span, 1e-13, 1.0 - 1e-13)
        return np.clip(np.log(p) - np.log1p(-p), -_Y_CLIP, _Y_CLIP)

    def y_to_z(self, y: FloatArray) -> FloatArray:
        # np.clip's values by minimum/maximum (clip's dispatch costs as much as the rest)
        yy = np.minimum(np.maximum(np.asarray(y, dtype=np.float64), -_Y_CLIP), _Y_CLIP)
        return self.lo + (self.hi - self.lo) / (1.0 + np.exp(-yy))

    def to_y(self, x: FloatArray) -> FloatArray:
        """Unconstrained vector of a full parameter vector."""
        return self.z_to_y(self.x_to_z(x))

    def to_x(self, y: FloatArray) -> FloatArray:
        """Full parameter vector (``param_names`` order) of an unconstrained vector."""
        return self.z_to_x(self.y_to_z(y))

    def dz_dy(self, y: FloatArray) -> FloatArray:
        """Diagonal of :math:`dz/dy` (logistic derivative)."""
        z = self.y_to_z(y)
        return (z - self.lo) * (self.hi - z) / (self.hi - self.lo)

    def dx_dz(self, z: FloatArray) -> FloatArray:
        """Jacobian of the full vector with respect to the free coordinates (read-only
        without the Feller constraint: the same constant matrix for every ``z``)."""
        if not self.feller:
            return self._dx_dz_const
        d = self._dx_dz_const.copy()
        x = self.z_to_x(z)
        xi = x[self.i_x]
        d[self.i_x, :] = 0.0
        for i_par, denom in ((self.i_k, x[self.i_k]), (self.i_t, x[self.i_t])):
            j = np.flatnonzero(self.free == i_par)
            if j.size:
                d[self.i_x, j[0]] = xi / (2.0 * max(denom, 1e-300))
        d[self.i_x, self.j_x] = xi / (2.0 * max(z[self.j_x], 1e-300))
        return d

    def at_bound(self, x: FloatArray, tol: float = 1e-4) -> list[str]:
        """Names of free parameters within ``tol`` (relative to the box) of a bound."""
        z = self.x_to_z(x)
        rel = (z - self.lo) / (self.hi - self.lo)
        out = []
        for j, r in enumerate(rel):
            name = "xi (Feller)" if self.feller and j == self.j_x else self.free_names[j]
            if r < tol:
                out.append(f"{name} at lower bound {self.lo[j]:g}")
            elif r > 1 - tol:
                out.append(f"{name} at upper bound {self.hi[j]:g}")
        return out
