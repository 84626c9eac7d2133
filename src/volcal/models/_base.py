"""Base class shared by every characteristic-function model.

A model is a frozen, validated dataclass. Its parameter order lives in exactly one place,
the ClassVar ``param_names``; the optimizer boundary sees flat vectors only through
:meth:`Model.to_vector` / :meth:`Model.from_vector`.

All characteristic functions are of the log-forward ratio

.. math:: X_t = \\ln(F_t / F_0), \\qquad \\varphi(u, t) = E[e^{iuX_t}],

under the forward (T-) measure, so :math:`\\varphi(-i, t) = E[F_t/F_0] = 1` (martingale
corrected). Models implement :meth:`Model.log_char_func` (the exponent, analytic and
free of branch jumps) and :meth:`Model.cumulants`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import ParameterError

__all__ = ["Model", "Params", "log1p_ratio"]

ComplexArray = np.ndarray


def log1p_ratio(z: Any) -> Any:
    """Return :math:`\\ln(1+z)/z` for complex ``z`` (principal branch), exact near 0.

    NumPy's complex ``log1p`` loses relative accuracy for tiny ``|z|``; the ratio is
    what the Heston-family exponents need to stay exact when ``xi -> 0``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([1e-12 + 0j, 1.0 + 0j])
    >>> log1p_ratio(z).real.round(8)
    array([1.        , 0.69314718])
    """
    z = np.asarray(z, dtype=np.complex128)
    small = np.abs(z) < 1e-3
    zs = np.where(small, z, 0.0)
    series = 1.0 - zs * (0.5 - zs * (1.0 / 3.0 - zs * (0.25 - zs * (0.2 - zs / 6.0))))
    zb = np.where(small, 1.0, z)
    big = np.log1p(zb) / zb
    return np.where(small, series, big)


def _finite(cls: str, name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{cls}.{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{cls}.{name} must be finite, got {v}")
    return v


@dataclass(frozen=True)
class Params:
    """A frozen, validated parameter set: the shared part of every model and smile.

    Subclasses declare their fields, ``param_names`` (same order as the fields) and
    ``_bounds``, and implement ``_validate``. Every field is converted to a finite float
    at construction; :meth:`to_vector` / :meth:`from_vector` are the only place the
    parameter order is used.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    _bounds: ClassVar[tuple[tuple[float, float], ...]] = ()

    def __post_init__(self) -> None:
        cls = type(self).__name__
        for f in fields(self):
            object.__setattr__(self, f.name, _finite(cls, f.name, getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fail(self, message: str) -> None:
        raise ParameterError(f"{type(self).__name__}: {message}")

    # ------------------------------------------------------------------ vectors
    @classmethod
    def bounds(cls) -> tuple[FloatArray, FloatArray]:
        """Box bounds ``(lower, upper)`` in ``param_names`` order, used by calibration.

        The ranges are crypto-wide (Heston family: vol of variance up to 40, mean
        reversion up to 200; jump means up to +-50%); ``calibrate(..., bounds=)``
        narrows or widens them per fit.
        """
        lo = np.array([b[0] for b in cls._bounds], dtype=np.float64)
        hi = np.array([b[1] for b in cls._bounds], dtype=np.float64)
        return lo, hi

    def to_vector(self) -> FloatArray:
        """Parameters as a float vector in ``param_names`` order."""
        return np.array([getattr(self, n) for n in self.param_names], dtype=np.float64)

    @classmethod
    def from_vector(cls, x: ArrayLike) -> Any:
        """Build a validated instance from a vector in ``param_names`` order."""
        v = np.asarray(x, dtype=np.float64).ravel()
        if v.size != len(cls.param_names):
            raise ParameterError(
                f"{cls.__name__}.from_vector: expected {len(cls.param_names)} values "
                f"({', '.join(cls.param_names)}), got {v.size}"
            )
        return cls(**dict(zip(cls.param_names, v.tolist(), strict=True)))

    def replace(self, **changes: float) -> Any:
        """Copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``{"model": name, **params}``."""
        return {"model": type(self).__name__, **asdict(self)}

    def summary(self) -> str:
        """One-line text summary of the parameters."""
        body = ", ".join(f"{n}={getattr(self, n):.6g}" for n in self.param_names)
        return f"{type(self).__name__}({body})"


@dataclass(frozen=True)
class Model(Params):
    """Abstract characteristic-function model (frozen dataclass).

    Subclasses declare their fields, ``param_names`` (same order as the fields),
    ``_bounds`` and implement ``_validate``, ``log_char_func`` and ``cumulants``.

    Calibration registry: a built-in model also declares ``model_name`` (its name in
    ``volcal.calibrate``), ``search_box`` (plausible box of the global stage, natural
    units, ``param_names`` order), :meth:`data_guess` (the data-driven start) and
    ``simulator`` (its Monte Carlo scheme), so everything model-specific lives on the
    class (:func:`volcal.models.fourier_models`).
    """

    model_name: ClassVar[str] = ""
    search_box: ClassVar[tuple[tuple[float, float], ...]] = ()
    #: Monte Carlo scheme of the class (:func:`volcal.pricing.mc.supported_models`):
    #: ``"black"``, ``"merton"``, ``"kou"``, ``"vg"`` (exact increments), ``"heston"``,
    #: ``"bates"``, ``"svcj"`` (QE), ``"heston_td"`` (QE per interval); empty: none.
    simulator: ClassVar[str] = ""

    @classmethod
    def data_guess(cls, atm_short: float, atm_long: float, atm_mid: float) -> dict[str, float]:
        """Starting parameters from the ATM vols of the shortest and longest expiry and
        their median (neutral shape parameters)."""
        raise NotImplementedError(f"{cls.__name__} has no data-driven start")  # pragma: no cover

    # ---------------------------------------------------------- characteristic
    def log_char_func(self, u: ArrayLike, t: ArrayLike) -> ComplexArray:
        """Exponent :math:`\\ln\\varphi(u, t)` (continuous in ``u``; broadcasting)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def char_func(self, u: ArrayLike, t: ArrayLike) -> ComplexArray:
        """Characteristic function :math:`E[e^{iu\\ln(F_t/F_0)}]` under the forward measure.

        ``u`` may be complex; ``u`` and ``t`` broadcast against each other, e.g.
        ``model.char_func(u[None, :], t[:, None])`` gives a (len(t), len(u)) grid.
        """
        return np.exp(self.log_char_func(u, t))

    def cumulants(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants ``(c1, c2, c4)`` of :math:`X_t` (arrays shaped like ``t``)."""
        raise NotImplementedError  # pragma: no cover - overridden

    def _numeric_cumulants(
        self, t: ArrayLike, radius: float = 0.2, n: int = 32
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cumulants from Cauchy's formula on the cumulant generating function.

        :math:`K(s) = \\ln\\varphi(-is, t)` is sampled on the circle :math:`|s| = r`;
        the trapezoid rule gives the Taylor coefficients :math:`a_n`, and
        :math:`c_n = n!\\,a_n`. The error is of order :math:`(r/R)^n` with :math:`R` the
        distance to the nearest moment explosion. With a very large vol of vol the
        moments of small negative order can explode (Heston, ``xi=5, kappa=1, T=3``: the
        moment of order -0.2 is infinite), so the circle must shrink: the radius starts
        at ``radius`` and is halved (at most 12 times) for the maturities where the
        variance from :math:`r` and :math:`r/2` disagree by more than 1e-8 relative.
        """
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        theta = 2.0 * np.pi * np.arange(n) / n

        def at(r: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
            s = r[:, None] * np.exp(1j * theta)[None, :]
            with np.errstate(all="ignore"):
                k = self.log_char_func(-1j * s, tt.reshape(-1, 1))
                coef = np.fft.fft(k, axis=1) / n  # a_m r^m
                return (
                    coef[:, 1].real / r,
                    2.0 * coef[:, 2].real / r**2,
                    24.0 * coef[:, 4].real / r**4,
                )

        r = np.full(tt.size, float(radius))
        c1, c2, c4 = at(r)
        for _ in range(12):
            h1, h2, h4 = at(0.5 * r)
            bad = ~(np.abs(h2 - c2) <= 1e-8 * np.abs(h2))
            if not bad.any():
                break
            r = np.where(bad, 0.5 * r, r)
            c1, c2, c4 = (np.where(bad, h, c) for h, c in ((h1, c1), (h2, c2), (h4, c4)))
        if not (np.all(np.isfinite(c1)) and np.all(np.isfinite(c2))):
            raise ParameterError(
                f"{self.summary()}: cumulants not finite (moment explosion near 0)"
            )
        shape = np.shape(t)
        return (
            c1.reshape(shape),
            np.maximum(c2, 0.0).reshape(shape),
            np.maximum(np.nan_to_num(c4, nan=0.0), 0.0).reshape(shape),
        )
