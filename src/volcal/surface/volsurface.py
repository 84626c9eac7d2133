"""``VolSurface``: implied vol, prices, greeks, local vol and density from a fitted surface.

A surface is a total implied variance :math:`w(k, t)` in log-moneyness
:math:`k = \\ln(K/F(t))` and maturity :math:`t` (years), with its derivatives
:math:`w_k, w_{kk}, w_t`. Everything else follows:

* implied vol :math:`\\sigma = \\sqrt{w/t}`; prices and greeks by Black-76 at the forward
  :math:`F(t)` (linear in :math:`t` between the fitted expiries, flat outside);
* the butterfly function (Gatheral & Jacquier 2014, eq. 2.1)
  :math:`g = (1 - \\frac{k w_k}{2w})^2 - \\frac{w_k^2}{4}(\\frac1w + \\frac14) + \\frac{w_{kk}}2`;
* Dupire's local variance in total-variance form (Gatheral 2006, eq. 1.10):
  :math:`\\sigma_{loc}^2(k, t) = w_t / g(k, t)`, positive and finite exactly where the
  surface is free of calendar (:math:`w_t > 0`) and butterfly (:math:`g > 0`) arbitrage;
* the density of :math:`\\ln(F_T/F)` at :math:`k` (Gatheral & Jacquier 2014, eq. 2.2):
  :math:`p(k) = g(k)\\,\\varphi(d_2)/\\sqrt{w}`, :math:`d_2 = -k/\\sqrt w - \\sqrt w/2`
  (the density of :math:`F_T/F` at :math:`x = e^k` is :math:`p(k)/x`).

Backends
--------
*SVI surface* fits (``svi_surface``, :class:`~volcal.models.svi.SVISurface`) give
:math:`w` and its derivatives in closed form with their own arbitrage-free time
interpolation (linear in total variance between certified nodes, scaled before the first,
shifted by the ATM variance growth after the last). *SSVI / eSSVI* fits give :math:`w` and all derivatives in closed form, with the time
interpolation of :mod:`volcal.models.ssvi` (arbitrage-free between and beyond the
expiries). *Per-expiry smiles* (SVI, SABR) are joined linearly in total variance at fixed
:math:`k` between expiries, :math:`w = (1-a) w_j(k) + a\\,w_{j+1}(k)`, so
:math:`w_t = (w_{j+1} - w_j)/(t_{j+1} - t_j)` is non-negative wherever the fitted slices
do not cross (calendar monotonicity is kept, and where the slices cross
:func:`~volcal.surface.arbitrage.check_arbitrage` reports it); before the first expiry
:math:`w = w_1(k)\\,t/t_1` and after the last :math:`w = w_N(k)\\,t/t_N` (the end smiles'
implied vols held). Slice derivatives are analytic for SVI and central differences
(step :math:`10^{-4}`) for SABR. *Fourier models* (Heston, Bates, SVCJ, Merton, Kou, VG,
the time-dependent Heston/Bates) are their own surface at every :math:`(k, t)`:
:math:`w = t\\,\\sigma^2_{model}(k, t)` from the common Fourier engine
(:func:`volcal.model_iv`, the same numbers as the fit's ``model_iv``), with
:math:`w_k, w_{kk}, w_t` by central differences (steps :math:`10^{-3}` in :math:`k` and
:math:`10^{-3} t` in :math:`t`): a model surface has no calendar or butterfly arbitrage
beyond the pricing error, and no interpolation between expiries.

All queries are vectorised: arguments broadcast, and one call evaluates any number of
points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import MethodError, ParameterError

__all__ = ["VolSurface"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_FD_STEP = 1e-4


def _times(t: ArrayLike) -> FloatArray:
    tt = np.asarray(t, dtype=np.float64)
    if np.any(~np.isfinite(tt)) or np.any(tt <= 0):
        raise ParameterError("maturities t must be finite and > 0 (years)")
    return tt


class _ModelBackend:
    """A characteristic-function model priced by the Fourier engine (module docs)."""

    H_K = 1e-3
    H_T = 1e-3

    def __init__(self, model: Any) -> None:
        self.model = model

    def derivatives(
        self, k: FloatArray, t: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        from volcal.pricing import model_iv

        kk, tt = np.broadcast_arrays(np.asarray(k, float), np.asarray(t, float))
        hk, ht = self.H_K, self.H_T * tt
        ks = np.stack([kk, kk + hk, kk - hk, kk, kk])
        ts = np.stack([tt, tt, tt, tt + ht, tt - ht])
        iv = np.asarray(model_iv(self.model, 1.0, np.exp(ks), ts), dtype=np.float64)
        w0, wp, wm, wtp, wtm = ts * iv * iv
        return (
            w0,
            (wp - wm) / (2.0 * hk),
            (wp - 2.0 * w0 + wm) / (hk * hk),
            (wtp - wtm) / (2.0 * ht),
        )


class _SliceBackend:
    """Per-expiry smiles joined linearly in total variance (module docs)."""

    def __init__(
        self,
        t_nodes: FloatArray,
        w: list[Callable[[FloatArray], FloatArray]],
        dw: list[Callable[[FloatArray], FloatArray]],
        d2w: list[Callable[[FloatArray], FloatArray]],
    ) -> None:
        self.t = t_nodes
        self.w, self.dw, self.d2w = w, dw, d2w

    def derivatives(
        self, k: FloatArray, t: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        kb, tb = np.broadcast_arrays(np.asarray(k, dtype=np.float64), _times(t))
        shape = kb.shape
        k1, t1 = kb.ravel(), tb.ravel()
        n = self.t.size
        j = np.searchsorted(self.t, t1, side="right") - 1
        out = [np.zeros(k1.size) for _ in range(4)]
        for node in range(n):
            # weight of this node's smile for every point (hat function in t)
            wgt = np.zeros(k1.size)
            dwgt = np.zeros(k1.size)
            if node == 0:
                m = j < 0
                wgt[m] = t1[m] / self.t[0]
                dwgt[m] = 1.0 / self.t[0]
            if node == n - 1:
                m = j >= n - 1
                wgt[m] = t1[m] / self.t[-1]
                dwgt[m] = 1.0 / self.t[-1]
            if node + 1 < n:  # left end of segment [node, node+1]
                m = j == node
                dt = self.t[node + 1] - self.t[node]
                wgt[m] = (self.t[node + 1] - t1[m]) / dt
                dwgt[m] = -1.0 / dt
            if node >= 1:  # right end of segment [node-1, node]
                m = (j == node - 1) & (j >= 0)
                dt = self.t[node] - self.t[node - 1]
                wgt[m] = (t1[m] - self.t[node - 1]) / dt
                dwgt[m] = 1.0 / dt
            sel = (wgt != 0.0) | (dwgt != 0.0)
            if not sel.any():
                continue
            ks = k1[sel]
            wv = self.w[node](ks)
            out[0][sel] += wgt[sel] * wv
            out[1][sel] += wgt[sel] * self.dw[node](ks)
            out[2][sel] += wgt[sel] * self.d2w[node](ks)
            out[3][sel] += dwgt[sel] * wv
        w, wk, wkk, wt = (o.reshape(shape) for o in out)
        return w, wk, wkk, wt

    def total_variance(self, k: FloatArray, t: FloatArray) -> FloatArray:
        return self.derivatives(k, t)[0]


def _fd_first(f: Callable[[FloatArray], FloatArray]) -> Callable[[FloatArray], FloatArray]:
    return lambda k: (f(k + _FD_STEP) - f(k - _FD_STEP)) / (2.0 * _FD_STEP)


def _fd_second(f: Callable[[FloatArray], FloatArray]) -> Callable[[FloatArray], FloatArray]:
    return lambda k: (f(k + _FD_STEP) - 2.0 * f(k) + f(k - _FD_STEP)) / _FD_STEP**2


@dataclass(frozen=True, eq=False)
class VolSurface:
    """An implied-volatility surface (immutable; build with :meth:`from_result`).

    Attributes
    ----------
    model : str
        Name of the fitted model (``"essvi"``, ``"ssvi"``, ``"svi"``, ``"sabr"``).
    t_nodes : tuple of float
        Fitted expiries (years).
    forwards : tuple of float
        Forward at each fitted expiry.
    expiries : tuple of str
        ISO labels of the fitted expiries.
    params : object
        The fitted parameters (model instance).

    Examples
    --------
    >>> from volcal.models.ssvi import ESSVI
    >>> s = VolSurface.from_model(
    ...     ESSVI(t=(0.1, 0.5), theta=(0.02, 0.09), rho=(-0.4, -0.3), psi=(0.1, 0.2)),
    ...     forwards=(100.0, 101.0))
    >>> round(float(s.iv(100.5, 0.3)), 4), bool(s.local_vol(0.0, 0.3) > 0)
    (0.4284, True)
    """

    model: str
    t_nodes: tuple[float, ...]
    forwards: tuple[float, ...]
    expiries: tuple[str, ...]
    params: Any
    _backend: Any = field(repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_model(
        cls,
        params: Any,
        forwards: Any = None,
        expiries: Any = None,
        t: Any = None,
    ) -> VolSurface:
        """A surface from SSVI/eSSVI parameters, per-expiry smiles (``SVISmiles``,
        ``SABRSmiles``), an ``SVISurface`` or a Fourier model (then ``t``, the fitted
        expiries in years, is required: the forwards are interpolated between them).
        ``forwards`` default to 1 (forward units)."""
        from volcal.models import Model
        from volcal.models.sabr import SABRSmiles
        from volcal.models.ssvi import ESSVI, SSVI
        from volcal.models.svi import SVISmiles, SVISurface

        if isinstance(params, (SSVI, ESSVI)):
            t_nodes = tuple(params.t)
            backend: Any = params
            name = params.name
        elif isinstance(params, SVISurface):
            t_nodes = tuple(params.t)
            backend = params
            name = params.name
            forwards = params.forwards if forwards is None else forwards
            expiries = params.expiries if expiries is None else expiries
        elif isinstance(params, SVISmiles):
            t_nodes = tuple(params.t)
            sm = params.smiles
            backend = _SliceBackend(
                np.asarray(t_nodes),
                [s.total_variance for s in sm],
                [s.dw for s in sm],
                [s.d2w for s in sm],
            )
            name = "svi"
            forwards = params.forwards if forwards is None else forwards
            expiries = params.expiries if expiries is None else expiries
        elif isinstance(params, SABRSmiles):
            t_nodes = tuple(params.t)
            ws = [_sabr_w(s, ti) for s, ti in zip(params.smiles, t_nodes, strict=True)]
            backend = _SliceBackend(
                np.asarray(t_nodes), ws, [_fd_first(f) for f in ws], [_fd_second(f) for f in ws]
            )
            name = "sabr"
            forwards = params.forwards if forwards is None else forwards
            expiries = params.expiries if expiries is None else expiries
        elif isinstance(params, Model):
            if t is None:
                raise ParameterError(
                    f"a {type(params).__name__} surface needs the expiries t (years) of "
                    "its forwards: pass t=..., or build it from the fit (fit.surface())"
                )
            t_nodes = tuple(float(x) for x in np.atleast_1d(np.asarray(t, dtype=np.float64)))
            backend = _ModelBackend(params)
            name = getattr(params, "model_name", "") or type(params).__name__.lower()
        else:
            raise MethodError(
                "a VolSurface needs a fitted model or smiles (ssvi, essvi, svi, sabr, "
                f"svi_surface or a Fourier model), not {type(params).__name__}"
            )
        n = len(t_nodes)
        if any(b <= a for a, b in itertools.pairwise(t_nodes)):
            raise ParameterError("VolSurface: expiries must be strictly increasing")
        fw = (1.0,) * n if forwards is None else tuple(float(f) for f in forwards)
        if len(fw) != n or not all(math.isfinite(f) and f > 0 for f in fw):
            raise ParameterError(f"VolSurface: need {n} positive finite forwards")
        ex = tuple(f"t={x:.6g}" for x in t_nodes) if expiries is None else tuple(expiries)
        return cls(name, t_nodes, fw, ex, params, backend)

    @classmethod
    def from_result(cls, result: Any) -> VolSurface:
        """The surface of a :class:`~volcal.calibration.CalibrationResult`."""
        from volcal.market.chain import expiry_label
        from volcal.models.svi import SVISurface

        if isinstance(result.params, SVISurface):  # its nodes: the fitted expiries only
            return cls.from_model(result.params)
        q = result.quotes
        return cls.from_model(
            result.params,
            forwards=tuple(float(f) for f in q.forward_slices),
            expiries=tuple(expiry_label(e) for e in q.expiries),
            t=tuple(float(x) for x in q.t_slices),
        )

    @property
    def is_model_surface(self) -> bool:
        """True for a surface backed by a Fourier model's own prices (module docs)."""
        return isinstance(self._backend, _ModelBackend)

    # ------------------------------------------------------------------ basics
    def forward(self, t: ArrayLike) -> FloatArray:
        """Forward at maturity ``t``: linear in ``t`` between expiries, flat outside."""
        return np.asarray(np.interp(_times(t), self.t_nodes, self.forwards))

    def log_moneyness(self, strike: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`k = \\ln(K/F(t))`."""
        kk = np.asarray(strike, dtype=np.float64)
        if np.any(~(kk > 0)):
            raise ParameterError("strikes must be > 0")
        return np.asarray(np.log(kk / self.forward(t)))

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`w(k, t)` at log-moneyness ``k`` (broadcast with ``t``)."""
        return np.asarray(self._backend.derivatives(np.asarray(k, float), _times(t))[0])

    def derivatives(
        self, k: ArrayLike, t: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(w, w_k, w_kk, w_t)`` at ``(k, t)``."""
        out: tuple[FloatArray, FloatArray, FloatArray, FloatArray] = self._backend.derivatives(
            np.asarray(k, float), _times(t)
        )
        return out

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Implied vol at log-moneyness ``k`` and maturity ``t``: :math:`\\sqrt{w/t}`."""
        tt = _times(t)
        return np.asarray(np.sqrt(np.maximum(self.total_variance(k, tt), 0.0) / tt))

    def iv(self, strike: ArrayLike, t: ArrayLike) -> FloatArray:
        """Implied vol at ``strike`` (in the underlying's price units) and maturity ``t``."""
        tt = _times(t)
        return self.implied_vol(self.log_moneyness(strike, tt), tt)

    # ------------------------------------------------------------------ pricing
    def price(
        self,
        strike: ArrayLike,
        t: ArrayLike,
        is_call: ArrayLike,
        *,
        discount: ArrayLike = 1.0,
        units: str = "usd",
    ) -> FloatArray:
        """Black-76 price with the surface's vol and forward.

        ``units="usd"``: discounted price in the forward's currency; ``"coin"``: the
        inverse-option price (USD / F); ``"forward"``: undiscounted price per unit of
        forward.
        """
        from volcal.black import price

        tt = _times(t)
        f = self.forward(tt)
        vol = self.iv(strike, tt)
        if units == "usd":
            return price(f, strike, tt, vol, is_call, discount)
        if units == "coin":
            return np.asarray(price(f, strike, tt, vol, is_call, discount) / f)
        if units == "forward":
            return price(1.0, np.asarray(strike) / f, tt, vol, is_call, 1.0)
        raise ParameterError(f"units must be 'usd', 'coin' or 'forward', got {units!r}")

    def greeks(
        self,
        strike: ArrayLike,
        t: ArrayLike,
        is_call: ArrayLike,
        *,
        discount: ArrayLike = 1.0,
        units: str = "usd",
    ) -> Any:
        """Black-76 greeks at the surface's vol (sticky strike: the vol is held when the
        forward moves), in USD or coin terms (:func:`volcal.black.greeks`)."""
        from volcal.black import coin_greeks, greeks

        tt = _times(t)
        f = self.forward(tt)
        vol = self.iv(strike, tt)
        if units == "usd":
            return greeks(f, strike, tt, vol, is_call, discount)
        if units == "coin":
            return coin_greeks(f, strike, tt, vol, is_call, discount)
        raise ParameterError(f"units must be 'usd' or 'coin', got {units!r}")

    # ------------------------------------------------------------------ arbitrage
    def butterfly_g(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Gatheral-Jacquier :math:`g(k, t)`; negative where the density is negative."""
        w, wk, wkk, _ = self.derivatives(k, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            kk = np.asarray(k, dtype=np.float64)
            g = (1.0 - kk * wk / (2.0 * w)) ** 2 - 0.25 * wk * wk * (1.0 / w + 0.25) + 0.5 * wkk
        return np.asarray(np.where(w > 0, g, -np.inf))

    def local_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Dupire local vol :math:`\\sqrt{w_t/g}` at log-moneyness ``k``, maturity ``t``.

        NaN where the local variance is not positive and finite (an arbitrage of the
        surface: :func:`~volcal.surface.arbitrage.check_arbitrage` says where).
        """
        _, _, _, wt = self.derivatives(k, t)
        g = self.butterfly_g(k, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            lv = wt / g
        ok = (g > 0) & (lv > 0) & np.isfinite(lv)
        return np.asarray(np.sqrt(np.where(ok, lv, np.nan)))

    def density(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Risk-neutral density of :math:`\\ln(F_T/F)` at ``k`` (integrates to 1 in k)."""
        w = self.total_variance(k, t)
        g = self.butterfly_g(k, t)
        kk = np.asarray(k, dtype=np.float64)
        sw = np.sqrt(np.maximum(w, 1e-300))
        d2 = -kk / sw - 0.5 * sw
        return np.asarray(g * np.exp(-0.5 * d2 * d2) / (_SQRT_2PI * sw))

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (model, expiries, forwards, parameters)."""
        p = self.params.to_dict() if hasattr(self.params, "to_dict") else {}
        return {
            "model": self.model,
            "expiries": list(self.expiries),
            "t": list(self.t_nodes),
            "forwards": list(self.forwards),
            "params": p,
        }

    def summary(self) -> str:
        """A few lines: model, expiries and ATM vols."""
        atm = self.implied_vol(np.zeros(len(self.t_nodes)), np.asarray(self.t_nodes))
        lines = [f"VolSurface ({self.model}), {len(self.t_nodes)} expiries"]
        for e, t, f, a in zip(self.expiries, self.t_nodes, self.forwards, atm, strict=True):
            lines.append(f"  {e:<26} t={t:.4f}  F={f:,.2f}  ATM {100 * a:.2f}")
        return "\n".join(lines)


def _sabr_w(smile: Any, t: float) -> Callable[[FloatArray], FloatArray]:
    return lambda k: np.asarray(smile.implied_vol(k, t)) ** 2 * t
