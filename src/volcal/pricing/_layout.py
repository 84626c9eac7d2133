"""Option-surface layout shared by the pricers: broadcasting, validation, expiry groups.

A :class:`Surface` holds the flattened, validated request (forward, strike, maturity,
call flag, discount) and everything that does not depend on model parameters: the
sorted unique maturities, the index of each option's maturity, the log-moneyness and
which options are at expiry (priced at intrinsic value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volcal._typing import ArrayLike, BoolArray, FloatArray, IntArray
from volcal.errors import ParameterError

__all__ = ["Surface", "make_surface"]


@dataclass(frozen=True, eq=False)
class Surface:
    """Flattened option request (see :func:`make_surface`)."""

    shape: tuple[int, ...]
    forward: FloatArray
    strike: FloatArray
    t: FloatArray
    is_call: BoolArray
    discount: FloatArray
    k: FloatArray  # ln(K/F)
    live: BoolArray  # t > 0
    t_unique: FloatArray  # unique maturities of the live options (sorted)
    t_index: IntArray  # for live options: index into t_unique (len = live.sum())

    @property
    def size(self) -> int:
        return int(self.forward.size)

    def intrinsic(self) -> FloatArray:
        """Undiscounted intrinsic value per option."""
        return np.where(
            self.is_call,
            np.maximum(self.forward - self.strike, 0.0),
            np.maximum(self.strike - self.forward, 0.0),
        )


def _check(name: str, x: FloatArray, where: str, *, positive: bool, allow_zero: bool) -> None:
    bad = ~np.isfinite(x)
    if positive:
        bad |= (x < 0.0) if allow_zero else (x <= 0.0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        need = ">= 0" if allow_zero else "> 0"
        raise ParameterError(
            f"{where}: {name} must be finite and {need}, got {x.flat[i]!r} at flat index {i}"
        )


def make_surface(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    *,
    where: str = "price",
) -> Surface:
    """Broadcast, validate and group an option request.

    Raises
    ------
    ParameterError
        If a forward, strike or discount is not finite and > 0, or a maturity is
        negative or not finite, or the arguments do not broadcast.
    """
    try:
        f, k, tt, c, d = np.broadcast_arrays(
            np.asarray(forward, dtype=np.float64),
            np.asarray(strike, dtype=np.float64),
            np.asarray(t, dtype=np.float64),
            np.asarray(is_call, dtype=bool),
            np.asarray(discount, dtype=np.float64),
        )
    except ValueError as exc:
        raise ParameterError(f"{where}: arguments do not broadcast ({exc})") from None
    shape = f.shape
    # own copies: a scalar broadcast to size 1 would stay a broadcast view (deprecated
    # writeable flag; the compiled kernels' argument typing warns on it in NumPy 2)
    f, k, tt, c, d = (np.array(a, order="C").ravel() for a in (f, k, tt, c, d))
    _check("forward", f, where, positive=True, allow_zero=False)
    _check("strike", k, where, positive=True, allow_zero=False)
    _check("t", tt, where, positive=True, allow_zero=True)
    _check("discount", d, where, positive=True, allow_zero=False)
    live = tt > 0.0
    t_unique, t_index = np.unique(tt[live], return_inverse=True)
    return Surface(
        shape=shape,
        forward=f,
        strike=k,
        t=tt,
        is_call=c,
        discount=d,
        k=np.log(k / f),
        live=live,
        t_unique=t_unique,
        t_index=t_index.astype(np.int64).ravel(),
    )


def flat_surface(
    forward: FloatArray, strike: FloatArray, t: FloatArray, is_call: BoolArray, *, where: str
) -> Surface:
    """``make_surface(forward, strike, t, is_call, 1.0, where=where)`` of 1-D arrays of
    one length (a calibration's quotes), the same arrays, with one combined check in
    place of the broadcasting and the four checks when every forward, strike and
    maturity is finite and > 0; anything else goes through :func:`make_surface`."""
    arrays = (forward, strike, t)
    n = np.size(forward)
    if not (
        all(isinstance(a, np.ndarray) and a.ndim == 1 and a.size == n for a in arrays)
        and isinstance(is_call, np.ndarray)
        and is_call.shape == (n,)
        and is_call.dtype == bool
    ):
        return make_surface(forward, strike, t, is_call, 1.0, where=where)
    f, k, tt = (np.array(a, dtype=np.float64) for a in arrays)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = bool(np.all((f > 0.0) & (k > 0.0) & (tt > 0.0) & np.isfinite(f + k + tt)))
    if not ok:
        return make_surface(forward, strike, t, is_call, 1.0, where=where)
    t_unique, t_index = np.unique(tt, return_inverse=True)
    return Surface(
        shape=(n,),
        forward=f,
        strike=k,
        t=tt,
        is_call=np.array(is_call),
        discount=np.ones(n),
        k=np.log(k / f),
        live=np.ones(n, dtype=bool),
        t_unique=t_unique,
        t_index=t_index.astype(np.int64).ravel(),
    )
