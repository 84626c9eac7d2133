"""Broadcasting and validation helpers shared by the Black-76 functions."""

from __future__ import annotations

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import ParameterError


def broadcast_float(
    *args: ArrayLike, shape: tuple[int, ...] | None = None
) -> tuple[tuple[int, ...], list[FloatArray]]:
    """Broadcast float arguments (to ``shape`` if given); return the shape and flat copies."""
    arrays = [np.asarray(a, dtype=np.float64) for a in args]
    try:
        shape = np.broadcast_shapes(
            *(a.shape for a in arrays), *(() if shape is None else (shape,))
        )
    except ValueError as exc:
        raise ParameterError(f"arguments do not broadcast together: {exc}") from None
    flat = [_flat_owned(a, shape) for a in arrays]
    return shape, flat


def _flat_owned(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` broadcast to ``shape`` as a flat, C-contiguous, writable array.

    The compiled kernels are specialised on each argument's read-only flag: a read-only
    input (an :class:`~volcal.market.OptionChain` column, a ``np.broadcast_to`` view) and
    a writable one would each load (or compile) their own copy of a kernel. Writable
    inputs of the full shape are passed through without a copy; everything else is
    copied once into an owned array.
    """
    if a.shape == shape and a.flags.writeable:
        return np.ascontiguousarray(a).reshape(-1)
    return np.array(np.broadcast_to(a, shape), order="C").reshape(-1)


def as_bool(is_call: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """Call/put flags as a flat bool array of ``shape`` (True = call)."""
    flags = np.asarray(is_call)
    if flags.dtype != np.bool_:
        if flags.dtype.kind not in "iuf" or not np.all(np.isin(flags, (0, 1))):
            raise ParameterError("is_call must be boolean (True for calls, False for puts)")
        flags = flags.astype(np.bool_)
    try:
        return _flat_owned(flags, shape)
    except ValueError as exc:
        raise ParameterError(
            f"is_call does not broadcast with the other arguments: {exc}"
        ) from None


def full_shape(is_call: ArrayLike, *args: ArrayLike) -> tuple[int, ...]:
    """Broadcast shape of the float arguments and the call flags."""
    try:
        return np.broadcast_shapes(np.shape(is_call), *(np.shape(a) for a in args))
    except ValueError as exc:
        raise ParameterError(f"arguments do not broadcast together: {exc}") from None


def check_pricing_inputs(
    forward: FloatArray, strike: FloatArray, t: FloatArray, vol: FloatArray, discount: FloatArray
) -> None:
    """Raise :class:`ParameterError` naming the first bad entry of a pricing call."""
    checks = (
        ("forward", forward, forward > 0.0, "must be finite and > 0"),
        ("strike", strike, strike > 0.0, "must be finite and > 0"),
        ("t", t, t >= 0.0, "must be finite and >= 0"),
        ("vol", vol, vol >= 0.0, "must be finite and >= 0"),
        ("discount", discount, discount > 0.0, "must be finite and > 0"),
    )
    for name, values, in_domain, rule in checks:
        bad = ~(np.isfinite(values) & in_domain)
        if bad.any():
            idx = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"{name} {rule}: {int(bad.sum())} bad value(s), first at flat index {idx} "
                f"({values[idx]!r})"
            )
