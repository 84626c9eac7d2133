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
from volcal.calibration.quotes import QuoteSet, black_vega_fwd

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

    def __post_init__(self) -> None:
        q = self.quotes
        object.__setattr__(self, "strike", np.exp(q.k))
        object.__setattr__(self, "_ones", np.ones(len(q)))
        object.__setattr__(self, "_t", np.array(q.t, dtype=np.float64))  # owned, writeable
        object.__setattr__(self, "_call", np.array(q.is_call, dtype=np.bool_))

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
            # volcal.black.implied_vol(p, 1, K/F, t, is_call, full_output=True).vol: its
            # compiled loop on arrays that need no broadcasting or checks
            iv = np.empty(p.size)
            status = np.empty(p.size, dtype=np.int8)
            _black_kernels.implied_vol_loop(
                np.ascontiguousarray(p, dtype=np.float64),
                self._ones,
                self.strike,
                self._t,
                self._call,
                self._ones,
                _black_kernels.MAX_ITERATIONS,
                iv,
                status,
            )
            ok = np.isfinite(iv)
            veg = black_vega_fwd(q.k, q.t, np.where(ok, iv, q.iv_mid))
            ok &= veg > 1e-14
            dr_dp = np.where(ok, sw / np.where(ok, veg, 1.0), sw / scale)
            r = np.where(ok, sw * (iv - q.iv_mid), sw * (p - q.mid) / scale)
            return r, dr_dp
        return sw * (p - q.mid) / scale, sw / scale

    def residuals(self, y: FloatArray) -> FloatArray:
        x = self.space.to_x(y)
        r = self.data_resid(self.pricer.prices(self.cls.from_vector(x)))[0]
        if self.reg_w is not None:
            r = np.concatenate([r, self.reg_w * (x[self.space.free] - self.reg_x)])
        return r

    def residuals_jac(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        space = self.space
        z = space.y_to_z(y)
        x = space.z_to_x(z)
        p, jp = self.pricer.prices_and_jac(self.cls.from_vector(x))
        dxdy = space.dx_dz(z) * space.dz_dy(y)[None, :]
        r, dr_dp = self.data_resid(p)
        j = (dr_dp[:, None] * jp) @ dxdy
        if self.reg_w is not None:
            r = np.concatenate([r, self.reg_w * (x[space.free] - self.reg_x)])
            j = np.vstack([j, self.reg_w[:, None] * dxdy[space.free]])
        return r, j
