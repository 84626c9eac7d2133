"""SSVI and eSSVI total-variance surfaces (Gatheral & Jacquier 2014; Hendriks & Martini 2019).

One slice of the SSVI family is described by three numbers: the ATM total variance
:math:`\\theta`, the correlation :math:`\\rho` and :math:`\\psi = \\theta\\varphi`
(the ATM skew scale). With :math:`p = \\rho\\psi`,

.. math::

    w(k) = \\tfrac12\\Big(\\theta + p\\,k + \\sqrt{\\psi^2 k^2 + 2 p\\theta k + \\theta^2}\\Big)
         = \\tfrac{\\theta}{2}\\Big(1 + \\rho\\varphi k
           + \\sqrt{(\\varphi k + \\rho)^2 + 1 - \\rho^2}\\Big),

the form of Gatheral & Jacquier (2014, eq. 4.1). Its derivatives, with
:math:`R = \\sqrt{\\psi^2k^2 + 2p\\theta k + \\theta^2}`, are
:math:`w_k = \\tfrac12(p + (\\psi^2 k + p\\theta)/R)` and
:math:`w_{kk} = \\theta^2(\\psi^2 - p^2)/(2R^3)`; the wing slopes of :math:`w` are
:math:`\\psi(1\\pm\\rho)/2`.

Models
------
:class:`SSVI` (Gatheral & Jacquier 2014, section 4): one :math:`\\rho` and a function
:math:`\\varphi(\\theta)`, either the power law
:math:`\\varphi = \\eta\\,\\theta^{-\\gamma}(1+\\theta)^{\\gamma-1}` (eq. 4.5) or the
Heston-like :math:`\\varphi = \\frac{1}{\\lambda\\theta}\\big(1 - \\frac{1 -
e^{-\\lambda\\theta}}{\\lambda\\theta}\\big)` (eq. 4.4). By their Theorem 4.1 the
surface has no calendar arbitrage when :math:`\\theta_t` is non-decreasing; by
Theorem 4.2 / Corollary 4.1 and Remark 4.4 it has no butterfly arbitrage when
:math:`\\eta(1+|\\rho|) \\le 2` with :math:`0 < \\gamma \\le 1/2` (power law) or
:math:`\\lambda \\ge (1+|\\rho|)/4` (Heston-like). :meth:`SSVI.conditions` checks these.

:class:`ESSVI` (Hendriks & Martini 2019; calibration by Corbetta et al. 2019): one
triple :math:`(\\theta_i, \\rho_i, \\psi_i)` per quoted expiry. A slice has no butterfly
arbitrage when (GJ 2014 Thm 4.2, written slice by slice)
:math:`\\psi(1+|\\rho|) < 4` and :math:`\\psi^2(1+|\\rho|) \\le 4\\theta`; these are
sufficient only, and :meth:`ESSVI.conditions` also accepts a slice that passes the exact
check of :func:`essvi_min_g` (below). Between
consecutive slices :math:`\\theta` must not decrease and the two wing slopes
:math:`\\psi(1\\pm\\rho)` must not decrease (necessary conditions of Hendriks &
Martini); these do not exclude a crossing of the two hyperbolas in the body of the
smile, so :meth:`ESSVI.conditions` also compares the slices on a dense
log-moneyness grid (the exact characterisation of Hendriks & Martini, corrected by
Pasquazzi 2023, is not used).

Exact butterfly condition of one slice
--------------------------------------
A slice is free of butterfly arbitrage exactly when Durrleman's
:math:`g(k) = (1 - k w_k/(2w))^2 - \\tfrac{w_k^2}{4}(1/w + 1/4) + w_{kk}/2 \\ge 0`
everywhere (GJ 2014, Lemma 2.2; Martini & Mingone 2022, "No arbitrage SVI", SIAM J.
Financial Math. 13(1), characterise the set of such SVI parameters, and Martini &
Mingone, "Explicit no arbitrage domain for sub-SVIs via reparametrization",
arXiv:2106.02418, give it in closed form for SSVI; the closed form is not used here). With
:math:`x = \\varphi k`, :math:`w = \\theta f(x)`,
:math:`f(x) = \\tfrac12(1 + \\rho x + \\sqrt{(x+\\rho)^2 + 1 - \\rho^2})` and
:math:`\\beta = \\psi^2/\\theta = \\theta\\varphi^2`,

.. math::

    g = A(x) - \\beta B(x) - \\psi^2 f'^2/16,\\qquad
    A = \\big(1 - \\tfrac{x f'}{2f}\\big)^2,\\quad
    B = \\tfrac{f'^2}{4f} - \\tfrac{f''}{2},

so :math:`g \\le A - \\beta B` gives the necessary bound
:math:`\\beta \\le \\beta^*(\\rho) = \\inf_{B > 0} A/B` (:func:`fly_beta_bound`;
:math:`\\beta^* = 19.8` at :math:`\\rho = 0`, falling to 4 as :math:`|\\rho| \\to 1`,
where the Gatheral-Jacquier bound is :math:`4/(1+|\\rho|)`: short-dated slices, where
:math:`\\beta` binds, may be up to 2.2 times steeper in :math:`\\psi` than that bound
allows). :func:`essvi_min_g` evaluates :math:`g` on the scale-free grid
:math:`x = -\\rho + \\sqrt{1-\\rho^2}\\sinh z`, 561 points :math:`|z| \\le 14`, and
refines every local minimum below 0.05 by golden-section search in :math:`z`, so the
minimum is found to about :math:`10^{-12}` rather than to the grid spacing (the bare
grid overestimated it by up to 1.7e-4 at 400 random slices on the bound). Beyond the grid
(:math:`|x| > 6\\cdot 10^5\\sqrt{1-\\rho^2}`) :math:`g` tends to
:math:`\\tfrac14 - \\psi^2(1\\pm\\rho)^2/64` (Lee's bound), from below when
:math:`\\psi(1+|\\rho|)` is close to 4, so the exact check is only trusted with the wing
kept 0.1% inside Lee's bound, :math:`\\psi(1+|\\rho|) \\le 3.996` (limit at least 5e-4;
at the same 400 slices :math:`g` stayed positive beyond the grid, out to
:math:`|z| = 30`). For a fixed :math:`(\\theta, \\rho)` the
admissible :math:`\\psi` form an interval :math:`[0, \\psi_{max}]` in every case tried
(a 4000-point scan for 16 :math:`(\\theta, \\rho)` pairs), which the calibration's search
relies on only for its efficiency, never for the guarantee.

The node scalings below keep the exact condition too: :math:`g` is linear in
:math:`\\beta` at fixed :math:`(\\rho, \\psi)` and non-negative at :math:`\\beta = 0`
when :math:`\\psi(1+|\\rho|) < 4` (the limit of admissible Gatheral-Jacquier slices),
so lowering :math:`\\beta` (after the last node) keeps :math:`g \\ge 0`; scaling
:math:`w` by :math:`c \\in (0, 1]` (before the first node) turns :math:`g` into
:math:`A - c(w_k^2/(4w) - w_{kk}/2) - c^2 w_k^2/16`, concave in :math:`c` and
non-negative at :math:`c = 0` and :math:`c = 1`.

Time interpolation
------------------
SSVI: :math:`\\theta(t)` is linear in :math:`t` between nodes and
:math:`\\psi(t) = \\theta(t)\\varphi(\\theta(t))` everywhere; with :math:`\\theta`
non-decreasing and the conditions above this is free of static arbitrage for every
:math:`t` (GJ 2014, Thm 4.1 and 4.2).

eSSVI, between two nodes: total variance is linear in :math:`t` at fixed :math:`k`,
:math:`w = (1-a)w_i(k) + a\\,w_{i+1}(k)`, :math:`a = (t - t_i)/(t_{i+1} - t_i)`, so the
ATM total variance is linear in :math:`t` and :math:`w_t = (w_{i+1} - w_i)/(t_{i+1} -
t_i) \\ge 0` exactly where the nodes do not cross (no calendar arbitrage by
construction). The "natural" alternative of Corbetta et al. (2019, section 4), with
:math:`\\psi` and :math:`\\rho\\psi` linear in :math:`\\theta`, is not used: the
property test ``test_interpolated_essvi_is_arbitrage_free_when_nodes_are`` found
admissible, non-crossing nodes - :math:`(\\theta,\\rho,\\psi) = (0.125, 0, 0)` and
:math:`(0.25, 0.5, 0.816)` - whose parameter interpolation has a calendar arbitrage at a
quarter of the way (:math:`w(-0.8)` falls below the first slice). A convex combination
of two butterfly-free slices is not butterfly-free in general; for SSVI slices
satisfying the conditions above no counterexample appeared in 10,000 random admissible
pairs (smallest :math:`g` 0.19) nor in the property test, and
:func:`~volcal.surface.arbitrage.check_arbitrage` verifies every fitted surface on a
dense grid. Before the first node the first slice is scaled:
:math:`(\\theta, p, \\psi) \\to (t/t_1)(\\theta_1, p_1, \\psi_1)`, which scales
:math:`w` by :math:`t/t_1` (``w`` is homogeneous of degree one in
:math:`(\\theta, p, \\psi)`) and keeps the first smile's implied vols; after the last node
:math:`\\theta` grows as :math:`\\theta_N t/t_N` (flat ATM vol) with :math:`(\\rho, \\psi)`
held, which is calendar-monotone because :math:`\\partial w/\\partial\\theta \\ge 0` and
keeps the butterfly conditions (:math:`\\psi^2(1+|\\rho|) \\le 4\\theta` only gets easier).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from volcal._typing import ArrayLike, FloatArray, IntArray
from volcal.errors import ParameterError

__all__ = [
    "ESSVI",
    "SSVI",
    "essvi_derivatives",
    "essvi_g",
    "essvi_min_g",
    "essvi_total_variance",
    "fly_beta_bound",
    "heston_phi",
    "power_phi",
]

PHI_KINDS = ("power", "heston")

#: the exact butterfly check is trusted for psi (1 + |rho|) <= 4 LEE_FRACTION (module docs)
LEE_FRACTION = 0.999
#: scale-free grid of the exact butterfly check: x = -rho + sqrt(1 - rho^2) sinh(z)
FLY_Z = np.linspace(-14.0, 14.0, 561)
#: local minima of g on the grid below this are refined by golden-section search
FLY_REFINE_BELOW = 0.05
FLY_GOLDEN_STEPS = 48


def essvi_total_variance(k: ArrayLike, theta: Any, rho: Any, psi: Any) -> FloatArray:
    """Total variance of an SSVI slice :math:`(\\theta, \\rho, \\psi)` (broadcasting).

    Examples
    --------
    >>> float(essvi_total_variance(0.0, 0.04, -0.5, 0.2))   # w(0) = theta
    0.04
    """
    k = np.asarray(k, dtype=np.float64)
    p = rho * psi
    r = np.sqrt(psi * psi * k * k + 2.0 * p * theta * k + theta * theta)
    return np.asarray(0.5 * (theta + p * k + r), dtype=np.float64)


def essvi_derivatives(
    k: ArrayLike, theta: Any, p: Any, psi: Any
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(w, w_k, w_kk, w_theta, w_p, w_psi)`` of a slice in the variables
    :math:`(\\theta, p = \\rho\\psi, \\psi)` (module docs for the formulas)."""
    k = np.asarray(k, dtype=np.float64)
    r = np.sqrt(psi * psi * k * k + 2.0 * p * theta * k + theta * theta)
    w = 0.5 * (theta + p * k + r)
    wk = 0.5 * (p + (psi * psi * k + p * theta) / r)
    wkk = theta * theta * (psi * psi - p * p) / (2.0 * r**3)
    w_theta = 0.5 * (1.0 + (p * k + theta) / r)
    w_p = 0.5 * k * (1.0 + theta / r)
    w_psi = 0.5 * psi * k * k / r
    return w, wk, wkk, w_theta, w_p, w_psi


def _w(k: FloatArray, theta: Any, p: Any, psi: Any) -> FloatArray:
    """Total variance in the variables :math:`(\\theta, p, \\psi)`."""
    return np.asarray(
        0.5 * (theta + p * k + np.sqrt(psi * psi * k * k + 2.0 * p * theta * k + theta * theta))
    )


def power_phi(theta: Any, eta: float, gamma: float) -> FloatArray:
    """Power-law :math:`\\varphi(\\theta) = \\eta\\,\\theta^{-\\gamma}(1+\\theta)^{\\gamma-1}`
    (Gatheral & Jacquier 2014, eq. 4.5)."""
    th = np.asarray(theta, dtype=np.float64)
    return np.asarray(eta * th ** (-gamma) * (1.0 + th) ** (gamma - 1.0))


def heston_phi(theta: Any, lam: float) -> FloatArray:
    """Heston-like :math:`\\varphi(\\theta) = \\frac{1}{\\lambda\\theta}(1 -
    \\frac{1-e^{-\\lambda\\theta}}{\\lambda\\theta})` (Gatheral & Jacquier 2014, eq. 4.4),
    with its series :math:`1/2 - x/6 + x^2/24` for :math:`x = \\lambda\\theta < 10^{-4}`."""
    x = lam * np.asarray(theta, dtype=np.float64)
    small = x < 1e-4
    xs = np.where(small, 1.0, x)
    exact = (1.0 - (-np.expm1(-xs)) / xs) / xs
    series = 0.5 - x / 6.0 + x * x / 24.0
    return np.asarray(np.where(small, series, exact))


def _tuple(values: Any, name: str, owner: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))
    except (TypeError, ValueError):
        raise ParameterError(f"{owner}.{name} must be real numbers") from None
    if not all(math.isfinite(v) for v in out):
        raise ParameterError(f"{owner}.{name} must be finite")
    return out


def _check_nodes(t: tuple[float, ...], theta: tuple[float, ...], owner: str) -> None:
    if len(t) == 0 or len(t) != len(theta):
        raise ParameterError(f"{owner}: t and theta need the same, non-zero length")
    if t[0] <= 0 or any(b <= a for a, b in itertools.pairwise(t)):
        raise ParameterError(f"{owner}: node times must be positive and strictly increasing")
    if any(v <= 0 for v in theta):
        raise ParameterError(f"{owner}: theta (ATM total variance) must be > 0")


def _theta_path(
    t_nodes: FloatArray, theta_nodes: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray, IntArray]:
    """``(theta(t), dtheta/dt, segment index)``: linear between nodes, ``theta_1 t/t_1``
    before the first node and ``theta_N t/t_N`` after the last (segment -1 / N-1)."""
    n = t_nodes.size
    j = np.searchsorted(t_nodes, t, side="right") - 1  # node at or before t
    theta = np.empty_like(t)
    dtheta = np.empty_like(t)
    before = j < 0
    after = j >= n - 1
    mid = ~before & ~after
    theta[before] = theta_nodes[0] * t[before] / t_nodes[0]
    dtheta[before] = theta_nodes[0] / t_nodes[0]
    theta[after] = theta_nodes[-1] * t[after] / t_nodes[-1]
    dtheta[after] = theta_nodes[-1] / t_nodes[-1]
    jm = j[mid]
    if jm.size:
        slope = (theta_nodes[jm + 1] - theta_nodes[jm]) / (t_nodes[jm + 1] - t_nodes[jm])
        theta[mid] = theta_nodes[jm] + slope * (t[mid] - t_nodes[jm])
        dtheta[mid] = slope
    return theta, dtheta, j


class _SurfaceMixin:
    """Queries shared by SSVI and eSSVI (SSVI: everything follows from ``_slice_params``;
    eSSVI overrides :meth:`derivatives` between its nodes)."""

    def _slice_params(
        self, t: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        raise NotImplementedError  # pragma: no cover - implemented by both models

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`w(k, t)` at log-moneyness ``k`` and maturity ``t`` (broadcast)."""
        return self.derivatives(k, t)[0]

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """Black implied vol :math:`\\sqrt{w(k,t)/t}`."""
        return np.sqrt(self.total_variance(k, t) / _times(t))

    def derivatives(
        self, k: ArrayLike, t: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(w, w_k, w_kk, w_t)`` at ``(k, t)`` (analytic; broadcast)."""
        kb, tb = np.broadcast_arrays(np.asarray(k, dtype=np.float64), _times(t))
        shape = kb.shape
        theta, p, psi, dtheta, dp, dpsi = self._slice_params(tb.ravel())
        w, wk, wkk, w_th, w_p, w_psi = essvi_derivatives(kb.ravel(), theta, p, psi)
        wt = w_th * dtheta + w_p * dp + w_psi * dpsi
        return w.reshape(shape), wk.reshape(shape), wkk.reshape(shape), wt.reshape(shape)


def _times(t: ArrayLike) -> FloatArray:
    tt = np.asarray(t, dtype=np.float64)
    if np.any(~(tt > 0)) or np.any(~np.isfinite(tt)):
        raise ParameterError("maturities t must be finite and > 0 (years)")
    return tt


@dataclass(frozen=True)
class SSVI(_SurfaceMixin):
    """SSVI surface: ATM total variances at node times, one ``rho`` and a ``phi`` family.

    Parameters
    ----------
    t : tuple of float
        Node maturities (years, strictly increasing).
    theta : tuple of float
        ATM total variance at each node (> 0; non-decreasing for no calendar arbitrage).
    rho : float
        Correlation in (-1, 1).
    phi : {"power", "heston"}
        :math:`\\varphi` family (module docs).
    eta, gamma : float
        Power-law parameters (``phi="power"``).
    lam : float
        Heston-like parameter (``phi="heston"``).

    Examples
    --------
    >>> s = SSVI(t=(0.25, 1.0), theta=(0.04, 0.16), rho=-0.3, eta=1.0, gamma=0.4)
    >>> round(float(s.total_variance(0.0, 0.25)), 6), s.conditions()["ok"]
    (0.04, True)
    """

    t: tuple[float, ...]
    theta: tuple[float, ...]
    rho: float
    phi: str = "power"
    eta: float = 1.0
    gamma: float = 0.5
    lam: float = 1.0

    name: ClassVar[str] = "ssvi"

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _tuple(self.t, "t", "SSVI"))
        object.__setattr__(self, "theta", _tuple(self.theta, "theta", "SSVI"))
        _check_nodes(self.t, self.theta, "SSVI")
        for name in ("rho", "eta", "gamma", "lam"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ParameterError(f"SSVI.{name} must be finite, got {v}")
            object.__setattr__(self, name, v)
        if self.phi not in PHI_KINDS:
            raise ParameterError(f"SSVI.phi must be one of {PHI_KINDS}, got {self.phi!r}")
        if not -1.0 < self.rho < 1.0:
            raise ParameterError(f"SSVI: rho must lie in (-1, 1), got {self.rho}")
        if self.phi == "power" and (self.eta <= 0 or not 0.0 < self.gamma < 1.0):
            raise ParameterError("SSVI power law needs eta > 0 and 0 < gamma < 1")
        if self.phi == "heston" and self.lam <= 0:
            raise ParameterError(f"SSVI Heston-like phi needs lam > 0, got {self.lam}")

    def phi_of(self, theta: ArrayLike) -> FloatArray:
        """:math:`\\varphi(\\theta)` of the surface's family."""
        if self.phi == "power":
            return power_phi(theta, self.eta, self.gamma)
        return heston_phi(theta, self.lam)

    def _dpsi_dtheta(self, theta: FloatArray) -> FloatArray:
        """:math:`d(\\theta\\varphi(\\theta))/d\\theta` of the surface's family."""
        if self.phi == "power":
            # psi = eta theta^(1-g) (1+theta)^(g-1): dpsi/dtheta = psi (1-g)/(theta(1+theta))
            g = self.gamma
            psi = self.eta * theta ** (1.0 - g) * (1.0 + theta) ** (g - 1.0)
            return np.asarray(psi * (1.0 - g) / (theta * (1.0 + theta)))
        # psi = (1 - (1 - e^-x)/x)/lam, x = lam theta: dpsi/dtheta = (1 - e^-x (1 + x))/x^2
        x = self.lam * theta
        small = x < 1e-4
        xs = np.where(small, 1.0, x)
        exact = -np.expm1(-xs) / (xs * xs) - np.exp(-xs) / xs
        return np.asarray(np.where(small, 0.5 - x / 3.0 + x * x / 8.0, exact))

    def _slice_params(
        self, t: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        theta, dtheta, _ = _theta_path(np.asarray(self.t), np.asarray(self.theta), t)
        psi = theta * self.phi_of(theta)
        dpsi = self._dpsi_dtheta(theta) * dtheta
        return theta, self.rho * psi, psi, dtheta, self.rho * dpsi, dpsi

    def slice_params(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(theta, rho, psi)`` of the SSVI slice at each maturity ``t`` (years, > 0)."""
        theta, _p, psi = self._slice_params(_times(t))[:3]
        return theta, np.full_like(theta, self.rho), psi

    def conditions(self) -> dict[str, Any]:
        """Gatheral-Jacquier sufficient no-arbitrage conditions (module docs).

        Returns ``{"ok", "calendar", "butterfly", "messages"}``: ``calendar`` holds when
        ``theta`` is non-decreasing (Thm 4.1: the two families have
        :math:`\\theta\\varphi` increasing and within the bound of that theorem),
        ``butterfly`` when :math:`\\eta(1+|\\rho|) \\le 2, \\gamma \\le 1/2` (power law)
        or :math:`\\lambda \\ge (1+|\\rho|)/4` (Heston-like).
        """
        msgs = []
        cal = all(b >= a for a, b in zip(self.theta, self.theta[1:], strict=False))
        if not cal:
            msgs.append("theta decreases between nodes (calendar arbitrage)")
        if self.phi == "power":
            fly = self.eta * (1.0 + abs(self.rho)) <= 2.0 + 1e-12 and self.gamma <= 0.5 + 1e-12
            if not fly:
                msgs.append("power law needs eta (1 + |rho|) <= 2 and gamma <= 1/2")
        else:
            fly = self.lam >= (1.0 + abs(self.rho)) / 4.0 - 1e-12
            if not fly:
                msgs.append("Heston-like phi needs lam >= (1 + |rho|) / 4")
        return {"ok": cal and fly, "calendar": cal, "butterfly": fly, "messages": msgs}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the parameters."""
        d: dict[str, Any] = {
            "model": "SSVI",
            "phi": self.phi,
            "rho": self.rho,
            "t": list(self.t),
            "theta": list(self.theta),
        }
        if self.phi == "power":
            d.update(eta=self.eta, gamma=self.gamma)
        else:
            d["lam"] = self.lam
        return d

    def summary(self) -> str:
        """One line of text."""
        extra = (
            f"eta={self.eta:.4g}, gamma={self.gamma:.4g}"
            if self.phi == "power"
            else f"lam={self.lam:.4g}"
        )
        return f"SSVI({self.phi}: rho={self.rho:.4g}, {extra}; {len(self.t)} theta nodes)"


@dataclass(frozen=True)
class ESSVI(_SurfaceMixin):
    """eSSVI surface: one slice :math:`(\\theta_i, \\rho_i, \\psi_i)` per node maturity.

    Parameters
    ----------
    t : tuple of float
        Node maturities (years, strictly increasing).
    theta : tuple of float
        ATM total variance per node (> 0).
    rho : tuple of float
        Correlation per node, in (-1, 1).
    psi : tuple of float
        :math:`\\psi = \\theta\\varphi` per node (>= 0).

    Examples
    --------
    >>> e = ESSVI(t=(0.1, 0.5), theta=(0.02, 0.09), rho=(-0.4, -0.3), psi=(0.1, 0.2))
    >>> e.conditions()["ok"], round(float(e.total_variance(0.0, 0.3)), 4)
    (True, 0.055)
    """

    t: tuple[float, ...]
    theta: tuple[float, ...]
    rho: tuple[float, ...]
    psi: tuple[float, ...]

    name: ClassVar[str] = "essvi"

    def __post_init__(self) -> None:
        for field_name in ("t", "theta", "rho", "psi"):
            object.__setattr__(
                self, field_name, _tuple(getattr(self, field_name), field_name, "ESSVI")
            )
        _check_nodes(self.t, self.theta, "ESSVI")
        if not len(self.rho) == len(self.psi) == len(self.t):
            raise ParameterError("ESSVI: t, theta, rho and psi need the same length")
        if any(not -1.0 < r < 1.0 for r in self.rho):
            raise ParameterError("ESSVI: every rho must lie in (-1, 1)")
        if any(p < 0 for p in self.psi):
            raise ParameterError("ESSVI: every psi must be >= 0")

    def __len__(self) -> int:
        return len(self.t)

    def _slice_params(
        self, t: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        tn = np.asarray(self.t)
        th_n = np.asarray(self.theta)
        psi_n = np.asarray(self.psi)
        p_n = np.asarray(self.rho) * psi_n
        theta, dtheta, j = _theta_path(tn, th_n, t)
        n = tn.size
        psi = np.empty_like(t)
        p = np.empty_like(t)
        dpsi = np.empty_like(t)
        dp = np.empty_like(t)
        before = j < 0
        after = j >= n - 1
        mid = ~before & ~after
        scale = t[before] / tn[0]
        psi[before], p[before] = psi_n[0] * scale, p_n[0] * scale
        dpsi[before], dp[before] = psi_n[0] / tn[0], p_n[0] / tn[0]
        psi[after], p[after] = psi_n[-1], p_n[-1]
        dpsi[after], dp[after] = 0.0, 0.0
        # between nodes the slice is not an SSVI slice: see derivatives()
        psi[mid], p[mid], dpsi[mid], dp[mid] = np.nan, np.nan, np.nan, np.nan
        return theta, p, psi, dtheta, dp, dpsi

    def slice_params(self, t: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(theta, rho, psi)`` at node maturities or outside the nodes (between
        nodes the surface interpolates total variance, not parameters: NaN there)."""
        tt = _times(t)
        tn = np.asarray(self.t)
        at_node = np.isclose(tt[..., None], tn, rtol=1e-12, atol=0.0)
        theta, p, psi = self._slice_params(tt)[:3]
        hit = at_node.any(axis=-1)
        idx = np.argmax(at_node, axis=-1)
        theta = np.where(hit, np.asarray(self.theta)[idx], theta)
        psi = np.where(hit, np.asarray(self.psi)[idx], psi)
        p = np.where(hit, (np.asarray(self.rho) * np.asarray(self.psi))[idx], p)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(psi > 0, p / np.where(psi > 0, psi, 1.0), np.asarray(self.rho)[idx])
        return theta, np.where(np.isfinite(psi), rho, np.nan), psi

    def total_variance(self, k: ArrayLike, t: ArrayLike) -> FloatArray:
        """:math:`w(k, t)` (the first output of :meth:`derivatives`, computed alone)."""
        return self._evaluate(k, t, False)[0]

    def derivatives(
        self, k: ArrayLike, t: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(w, w_k, w_kk, w_t)`` at ``(k, t)``: analytic SSVI slices outside the nodes,
        linear in ``t`` in total variance at fixed ``k`` between them (module docs)."""
        w, wk, wkk, wt = self._evaluate(k, t, True)
        return w, wk, wkk, wt

    def _evaluate(self, k: ArrayLike, t: ArrayLike, derivs: bool) -> list[FloatArray]:
        kb, tb = np.broadcast_arrays(np.asarray(k, dtype=np.float64), _times(t))
        shape = kb.shape
        k1, t1 = kb.ravel(), tb.ravel()
        tn = np.asarray(self.t)
        n = tn.size
        j = np.searchsorted(tn, t1, side="right") - 1
        edge = (j < 0) | (j >= n - 1)
        n_out = 4 if derivs else 1
        out = [np.empty(k1.size) for _ in range(n_out)]
        if edge.any():
            theta, p, psi, dtheta, dp, dpsi = self._slice_params(t1[edge])
            if derivs:
                w, wk, wkk, w_th, w_p, w_psi = essvi_derivatives(k1[edge], theta, p, psi)
                out[0][edge], out[1][edge], out[2][edge] = w, wk, wkk
                out[3][edge] = w_th * dtheta + w_p * dp + w_psi * dpsi
            else:
                out[0][edge] = _w(k1[edge], theta, p, psi)
        th_n, psi_n = np.asarray(self.theta), np.asarray(self.psi)
        p_n = np.asarray(self.rho) * psi_n
        for seg in np.unique(j[~edge]):
            m = j == seg
            km = k1[m]
            dt = tn[seg + 1] - tn[seg]
            a = (t1[m] - tn[seg]) / dt
            if derivs:
                lo = essvi_derivatives(km, th_n[seg], p_n[seg], psi_n[seg])
                hi = essvi_derivatives(km, th_n[seg + 1], p_n[seg + 1], psi_n[seg + 1])
                for q in range(3):
                    out[q][m] = (1.0 - a) * lo[q] + a * hi[q]
                out[3][m] = (hi[0] - lo[0]) / dt
            else:
                w_lo = _w(km, th_n[seg], p_n[seg], psi_n[seg])
                w_hi = _w(km, th_n[seg + 1], p_n[seg + 1], psi_n[seg + 1])
                out[0][m] = (1.0 - a) * w_lo + a * w_hi
        return [o.reshape(shape) for o in out]

    def conditions(self, k_grid: ArrayLike | None = None) -> dict[str, Any]:
        """No-arbitrage conditions of the nodes (module docs).

        Butterfly per slice: :math:`\\psi(1+|\\rho|) < 4`, :math:`\\psi^2(1+|\\rho|) \\le
        4\\theta` (Gatheral-Jacquier, sufficient) or the exact check
        :math:`\\min_k g \\ge 0` of :func:`essvi_min_g` with :math:`\\psi(1+|\\rho|) \\le
        3.996`. Calendar per consecutive pair: :math:`\\theta` and both wing slopes
        :math:`\\psi(1\\pm\\rho)` non-decreasing, and :math:`w_{i+1} \\ge w_i` on
        ``k_grid`` (default: 241 points :math:`0.05\\sinh(z)`, :math:`|z| \\le 7.5`,
        i.e. :math:`|k|` up to about 45, dense near the money).
        """
        grid = calendar_grid() if k_grid is None else np.asarray(k_grid, dtype=np.float64)
        msgs: list[str] = []
        fly = True
        for i, (th, r, ps) in enumerate(zip(self.theta, self.rho, self.psi, strict=True)):
            gj = ps * (1 + abs(r)) < 4.0 and ps * ps * (1 + abs(r)) <= 4.0 * th * (1 + 1e-12)
            exact = ps * (1 + abs(r)) <= 4.0 * LEE_FRACTION and essvi_min_g(th, r, ps) >= -1e-10
            if not (gj or exact):
                fly = False
                msgs.append(f"slice {i} (t={self.t[i]:.4g}) violates the butterfly conditions")
        cal = True
        for i in range(len(self.t) - 1):
            th0, r0, p0 = self.theta[i], self.rho[i], self.psi[i]
            th1, r1, p1 = self.theta[i + 1], self.rho[i + 1], self.psi[i + 1]
            tol = 1e-12
            ok = th1 >= th0 - tol
            ok &= p1 * (1 + r1) >= p0 * (1 + r0) - tol and p1 * (1 - r1) >= p0 * (1 - r0) - tol
            w0 = essvi_total_variance(grid, th0, r0, p0)
            w1 = essvi_total_variance(grid, th1, r1, p1)
            ok &= bool(np.all(w1 >= w0 - 1e-12 * np.maximum(w0, 1.0)))
            if not ok:
                cal = False
                msgs.append(f"slices {i} and {i + 1} cross (calendar arbitrage)")
        return {"ok": fly and cal, "calendar": cal, "butterfly": fly, "messages": msgs}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the node parameters."""
        return {
            "model": "eSSVI",
            "t": list(self.t),
            "theta": list(self.theta),
            "rho": list(self.rho),
            "psi": list(self.psi),
        }

    def summary(self) -> str:
        """One line per node."""
        return "\n".join(
            f"t={t:.4f}  theta={th:.6g}  rho={r:+.4f}  psi={p:.5g}"
            for t, th, r, p in zip(self.t, self.theta, self.rho, self.psi, strict=True)
        )


def essvi_g(k: ArrayLike, theta: Any, rho: Any, psi: Any) -> FloatArray:
    """Durrleman's :math:`g(k)` of an SSVI slice :math:`(\\theta, \\rho, \\psi)`
    (broadcasting; a negative value is a negative density, GJ 2014 Lemma 2.2).

    Examples
    --------
    >>> round(float(essvi_g(0.0, 0.04, -0.5, 0.2)), 6)   # 1 - 0.063125 + 0.1875
    1.124375
    """
    w, wk, wkk = essvi_derivatives(k, theta, rho * psi, psi)[:3]
    k = np.asarray(k, dtype=np.float64)
    return np.asarray(
        (1.0 - k * wk / (2.0 * w)) ** 2 - wk * wk / 4.0 * (1.0 / w + 0.25) + wkk / 2.0
    )


def _fly_g_z(z: FloatArray, rho: float, psi: float, beta: float) -> FloatArray:
    """Scale-free :math:`g` at :math:`x = -\\rho + \\sqrt{1-\\rho^2}\\sinh z` (module docs)."""
    s = math.sqrt(1.0 - rho * rho)
    u = np.sinh(z)
    q = np.sqrt(u * u + 1.0)
    x = -rho + s * u
    f = 0.5 * (1.0 + rho * x + s * q)
    f1 = 0.5 * (rho + u / q)
    f2 = 0.5 / (s * q**3)
    a = (1.0 - x * f1 / (2.0 * f)) ** 2
    return np.asarray(a - beta * (f1 * f1 / (4.0 * f) - 0.5 * f2) - psi * psi * f1 * f1 / 16.0)


def essvi_min_g(theta: float, rho: float, psi: float) -> float:
    """Smallest Durrleman :math:`g` of an SSVI slice over all log-moneyness (module
    docs: 561-point scale-free grid, local minima below ``FLY_REFINE_BELOW`` refined by
    golden-section search; a larger result is the grid minimum, within about
    :math:`10^{-3}` of the true one).

    The slice is free of butterfly arbitrage exactly when the result is :math:`\\ge 0`
    (trusted for :math:`\\psi(1+|\\rho|) \\le 4` ``LEE_FRACTION``).

    Examples
    --------
    >>> essvi_min_g(0.0007, 0.0, 0.11) >= 0     # beyond the bound psi <= sqrt(4 theta)
    True
    >>> essvi_min_g(0.0007, 0.0, 0.12) >= 0
    False
    """
    if not (theta > 0 and -1.0 < rho < 1.0 and psi >= 0):
        raise ParameterError("essvi_min_g needs theta > 0, -1 < rho < 1 and psi >= 0")
    if psi == 0.0:
        return 1.0  # flat smile
    beta = psi * psi / theta
    g = _fly_g_z(FLY_Z, rho, psi, beta)
    j = np.flatnonzero((g[1:-1] <= g[:-2]) & (g[1:-1] <= g[2:]) & (g[1:-1] < FLY_REFINE_BELOW))
    best = float(g.min())
    if j.size:
        lo, hi = FLY_Z[j], FLY_Z[j + 2]
        c = 0.5 * (math.sqrt(5.0) - 1.0)
        z1, z2 = hi - c * (hi - lo), lo + c * (hi - lo)
        g1, g2 = _fly_g_z(z1, rho, psi, beta), _fly_g_z(z2, rho, psi, beta)
        for _ in range(FLY_GOLDEN_STEPS):
            left = g1 < g2  # the minimum lies in [lo, z2]
            hi = np.where(left, z2, hi)
            lo = np.where(left, lo, z1)
            z2n = np.where(left, z1, lo + c * (hi - lo))
            z1n = np.where(left, hi - c * (hi - lo), z2)
            z1, z2 = z1n, z2n
            g1, g2 = _fly_g_z(z1, rho, psi, beta), _fly_g_z(z2, rho, psi, beta)
            best = min(best, float(np.min(g1)), float(np.min(g2)))
    return best


@functools.cache
def _fly_beta_table() -> FloatArray:
    """The table of :func:`fly_beta_table`, computed once and read-only."""
    rho = np.arange(1000) / 1000.0
    s = np.sqrt(1.0 - rho * rho)[:, None]
    r = rho[:, None]
    u = np.sinh(FLY_Z)[None, :]
    q = np.sqrt(u * u + 1.0)
    x = -r + s * u
    f = 0.5 * (1.0 + r * x + s * q)
    f1 = 0.5 * (r + u / q)
    f2 = 0.5 / (s * q**3)
    a = (1.0 - x * f1 / (2.0 * f)) ** 2
    b = f1 * f1 / (4.0 * f) - 0.5 * f2
    ratio = np.where(b > 0, a / np.where(b > 0, b, 1.0), np.inf)
    table = np.asarray(ratio.min(axis=1))
    table.setflags(write=False)
    return table


def fly_beta_table() -> FloatArray:
    """:math:`\\beta^*` on :math:`|\\rho| = 0, 0.001, \\ldots, 0.999` (grid minima of
    :math:`A/B`, so never below the true infimum). A fresh copy on every call: changing
    it cannot change any later fit."""
    return _fly_beta_table().copy()


def fly_beta_bound(rho: ArrayLike) -> FloatArray:
    """Necessary bound :math:`\\beta^*(\\rho)` on :math:`\\beta = \\psi^2/\\theta` for a
    slice without butterfly arbitrage (module docs), tabulated in :math:`|\\rho|` with step
    0.001 and read at the larger of the two neighbouring nodes (an over-estimate, so
    usable as a search bound; ``psi <= sqrt(theta * fly_beta_bound(rho))``).

    Examples
    --------
    >>> round(float(fly_beta_bound(0.0)), 2), round(float(fly_beta_bound(0.999)), 2)
    (19.81, 4.02)
    """
    tab = _fly_beta_table()
    r = np.abs(np.asarray(rho, dtype=np.float64))
    i = np.minimum((r * 1000.0).astype(np.int64), tab.size - 1)
    return np.asarray(np.maximum(tab[i], tab[np.minimum(i + 1, tab.size - 1)]))


def calendar_grid() -> FloatArray:
    """Log-moneyness grid used for calendar comparisons of slices: ``0.05 sinh(z)``,
    241 points with :math:`|z| \\le 7.5` (dense near the money, out to :math:`|k| \\approx 45`)."""
    return np.asarray(0.05 * np.sinh(np.linspace(-7.5, 7.5, 241)))
