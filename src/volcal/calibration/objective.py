"""The least-squares objective of the Fourier-model calibrations, as one explicit object.

Residuals per quote are weighted vol errors (``iv_mode="exact"``: Black-inverted model
prices minus mid vols) or weighted price errors divided by a per-quote ``scale`` (the
vega, or the secant from a refinement pass), followed by the regularization rows toward
a prior (natural units, free parameters only). The Jacobian is the engine's price
Jacobian times d residual / d price times the transform's dx/dy. The object holds no
mutable state: a refinement of the scale is a new objective (:meth:`with_scale`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.black import _kernels as _black_kernels
from volcal.calibration.quotes import QuoteSet

__all__ = ["FourierObjective"]


@dataclass(frozen=True, eq=False)
class FourierObjective:
    """Residuals ``r(y)`` and ``(r, dr/dy)`` of a Fourier calibration in the solver's
    unbounded coordinates ``y``.

    Attributes
    ----------
    cls : type
        The model class (``from_vector`` in ``param_names`` order).
    space : ParamSpace
        Fixed/free parameters and the box transform ``y -> x``.
    pricer : object
        ``prices(model)`` and ``prices_and_jac(model)`` of the quotes (undiscounted, per
        unit forward), from the common engine.
    quotes : QuoteSet
    sw : ndarray
        Square roots of the quote weights.
    scale : ndarray
        Per-quote price-to-vol scale of the price residuals.
    exact : bool
        Vol residuals by Black inversion (else price residuals over ``scale``).
    reg_w, reg_x : ndarray or None
        Regularization weights and prior values of the free parameters.
    """

    cls: Any
    space: Any
    pricer: Any
    quotes: QuoteSet
    sw: FloatArray
    scale: FloatArray
    exact: bool
    reg_w: FloatArray | None = None
    reg_x: FloatArray | None = None
    strike: FloatArray = field(init=False, repr=False)  # K/F of every quote
    # the flat arrays the compiled Black inversion takes (forward and discount 1)
    _ones: FloatArray = field(init=False, repr=False)
    _t: FloatArray = field(init=False, repr=False)
    _call: Any = field(init=False, repr=False)
    # owned float arrays of the compiled residuals (k, mid vol, mid price, sqrt weight,
    # scale) and the kernel itself
    _flat: tuple[FloatArray, ...] = field(init=False, repr=False)
    _kernel: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from volcal.calibration._objective_numba import exact_residuals

        q = self.quotes
        object.__setattr__(self, "strike", np.exp(q.k))
        object.__setattr__(self, "_ones", np.ones(len(q)))
        object.__setattr__(self, "_t", np.array(q.t, dtype=np.float64))  # owned, writeable
        object.__setattr__(self, "_call", np.array(q.is_call, dtype=np.bool_))
        flat = tuple(
            np.array(np.broadcast_to(a, (len(q),)), dtype=np.float64)
            for a in (q.k, q.iv_mid, q.mid, self.sw, self.scale)
        )
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_kernel", exact_residuals)

    @property
    def n_res(self) -> int:
        """Number of residuals (quotes plus regularization rows)."""
        return len(self.quotes) + (0 if self.reg_w is None else int(self.space.free.size))

    def with_scale(self, scale: FloatArray) -> FourierObjective:
        """The same objective with another price-to-vol scale."""
        return dataclasses.replace(self, scale=np.asarray(scale, dtype=np.float64))

    def model_of(self, y: FloatArray) -> Any:
        return self.cls.from_vector(self.space.to_x(y))

    def data_resid(self, p: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weighted residuals and d residual / d price per quote."""
        q, sw, scale = self.quotes, self.sw, self.scale
        if self.exact:
            # volcal.black.implied_vol(p, 1, K/F, t, is_call, full_output=True).vol, the
            # Black vega at that vol (volcal.black.pricing.unit_vega) and the residuals,
            # in one compiled pass (_objective_numba.exact_residuals)
            k, iv_mid, mid, sw_f, scale_f = self._flat
            r, dr_dp = self._kernel(
                np.ascontiguousarray(p, dtype=np.float64),
                self._ones,
                self.strike,
                k,
                self._t,
                self._call,
                iv_mid,
                mid,
                sw_f,
                scale_f,
                _black_kernels.MAX_ITERATIONS,
            )
            return r, dr_dp
        return sw * (p - q.mid) / scale, sw / scale

    def residuals(self, y: FloatArray) -> FloatArray:
        x = self.space.to_x(y)
        r = self.data_resid(self.pricer.prices(self.cls.from_vector(x)))[0]
        if self.reg_w is not None:
            r = np.concatenate([r, self.reg_w * (x[self.space.free] - self.reg_x)])
        return r

    def coarse_residuals_jac(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """:meth:`residuals_jac` with the pricer's coarse error bounds."""
        return self.residuals_jac(y, coarse=True)

    def residuals_jac(self, y: FloatArray, coarse: bool = False) -> tuple[FloatArray, FloatArray]:
        """Residuals and Jacobian; ``coarse`` prices with the pricer's looser error
        bounds (the first steps of a local solve, see ``engine.secant_lm``)."""
        space = self.space
        z = space.y_to_z(y)
        x = space.z_to_x(z)
        model = self.cls.from_vector(x)
        p, jp = (
            self.pricer.prices_and_jac(model, coarse=True)
            if coarse
            else self.pricer.prices_and_jac(model)
        )
        # dz/dy of the logistic transform from z itself (ParamSpace.dz_dy(y) computes z
        # again)
        dzdy = (z - space.lo) * (space.hi - z) / (space.hi - space.lo)
        dxdy = space.dx_dz(z) * dzdy[None, :]
        r, dr_dp = self.data_resid(p)
        j = (dr_dp[:, None] * jp) @ dxdy
        if self.reg_w is not None:
            r = np.concatenate([r, self.reg_w * (x[space.free] - self.reg_x)])
            j = np.vstack([j, self.reg_w[:, None] * dxdy[space.free]])
        return r, j
