"""Array aliases shared by every volcal module.

One place for the type vocabulary so signatures read the same everywhere:
``FloatArray`` for prices, strikes, vols and times, ``BoolArray`` for call/put
masks, ``ArrayLike`` for anything NumPy can broadcast.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
UIntArray: TypeAlias = npt.NDArray[np.uint32]
ObjArray: TypeAlias = npt.NDArray[np.object_]
DateArray: TypeAlias = npt.NDArray[np.datetime64]
ArrayLike: TypeAlias = npt.ArrayLike
FloatLike: TypeAlias = float | FloatArray | Any

__all__ = [
    "ArrayLike",
    "BoolArray",
    "DateArray",
    "FloatArray",
    "FloatLike",
    "IntArray",
    "ObjArray",
    "UIntArray",
]
