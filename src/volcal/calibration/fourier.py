"""Whole-surface COS pricing with a fixed grid, built once per calibration.

Fang & Oosterlee (2008) expand the density of :math:`X = \\ln(F_T/F_0)` in cosines on
a truncation interval :math:`[a, b]`. With :math:`u_j = j\\pi/(b-a)` the undiscounted
out-of-the-money price per unit forward of a quote with log-moneyness
:math:`k = \\ln(K/F)` is

.. math::

    \\frac{P}{F} = {\\sum_{j=0}^{N-1}}{}' \\,
        \\mathrm{Re}\\big[\\varphi(u_j, T)\\, e^{-iu_j a}\\big]\\, V_j(k),

    V_j^{put}(k) = \\tfrac{2}{b-a}\\big(e^{k}\\psi_j(a, c) - \\chi_j(a, c)\\big),\\qquad
    V_j^{call}(k) = \\tfrac{2}{b-a}\\big(\\chi_j(c, b) - e^{k}\\psi_j(c, b)\\big),

with :math:`c = \\min(\\max(k, a), b)`, :math:`\\psi_j(x,y) = \\int_x^y\\cos(u_j(s-a))ds`,
:math:`\\chi_j(x,y) = \\int_x^y e^s\\cos(u_j(s-a))ds` and the first term halved.

The interval is set per expiry from the *market* (the largest quoted vol and the
widest strike), not from the model, so :math:`V` - an (quotes x N) real matrix -
does not change while the optimizer moves the parameters. A pricing is then one
char-function evaluation on an (expiries x N) grid plus one matrix product per expiry,
and the Jacobian is the same product applied to :math:`\\varphi\\,\\partial\\ln\\varphi`
(see :mod:`volcal.pricing.gradient`). Out-of-the-money options are priced directly
(no put-call parity), so deep wings keep their relative accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from volcal._typing import BoolArray, FloatArray, IntArray

__all__ = ["CosSurface"]


class CosSurface:
    """Fixed-grid COS pricer of a set of quotes (one matrix per expiry).

    Parameters
    ----------
    k : ndarray
        Log-moneyness ln(K/F) per quote.
    is_call : ndarray of bool
        Option type per quote (price out-of-the-money options for accuracy).
    slice_index : ndarray of int
        Expiry index per quote into ``t_slices``.
    t_slices : ndarray
        Maturity of each expiry (years).
    vol_ref : ndarray
        A generous volatility scale per expiry (e.g. the largest quoted vol); the
        interval half-width is ``max(L vol_ref sqrt(T), 1.25 max|k - c1| + 4 vol_ref
        sqrt(T))`` around :math:`c_1 = -vol\\_ref^2 T/2`.
    n_terms : int
        Cosine terms N (default 256).
    width : float
        L, the interval half-width in standard deviations (default 10).

    Examples
    --------
    >>> from volcal.models import Black
    >>> s = CosSurface(np.array([0.0]), np.array([True]), np.array([0]),
    ...                np.array([1.0]), np.array([0.5]))
    >>> round(float(s.prices(Black(0.5))[0]), 10)   # 2 N(0.25) - 1
    0.1974126199
    """

    def __init__(
        self,
        k: FloatArray,
        is_call: BoolArray,
        slice_index: IntArray,
        t_slices: FloatArray,
        vol_ref: FloatArray,
        n_terms: int = 256,
        width: float = 10.0,
    ) -> None:
        k = np.asarray(k, dtype=np.float64)
        is_call = np.asarray(is_call, dtype=bool)
        slice_index = np.asarray(slice_index, dtype=np.int64)
        self.t = np.asarray(t_slices, dtype=np.float64)
        self.n = int(k.size)
        self.n_terms = int(n_terms)
        n_s = self.t.size
        j = np.arange(self.n_terms, dtype=np.float64)
        self.u = np.empty((n_s, self.n_terms))
        self.a = np.empty(n_s)
        self.idx: list[IntArray] = []
        self.V: list[FloatArray] = []
        for s in range(n_s):
            sel = np.flatnonzero(slice_index == s)
            self.idx.append(sel)
            sd = float(vol_ref[s]) * np.sqrt(self.t[s])
            c1 = -0.5 * sd * sd
            ks = k[sel]
            reach = float(np.max(np.abs(ks - c1))) if ks.size else 0.0
            h = max(width * sd, 1.25 * reach + 4.0 * sd)
            a, b = c1 - h, c1 + h
            self.a[s] = a
            us = j * np.pi / (b - a)
            self.u[s] = us
            self.V.append(_cos_payoff(ks, is_call[sel], a, b, us))

    # --------------------------------------------------------------- pricing
    def _grid(self, log_phi: Any) -> Any:
        return np.exp(log_phi - 1j * self.u * self.a[:, None])

    def prices(self, model: Any) -> FloatArray:
        """Undiscounted OTM prices per unit forward of every quote."""
        from volcal.pricing.gradient import heston_family_grid

        fast = heston_family_grid(model, self.u, self.t, self.a, False)
        if fast is not None:
            re_h = fast[0]
        else:
            re_h = self._grid(model.log_char_func(self.u, self.t[:, None])).real
        out = np.empty(self.n)
        for s, sel in enumerate(self.idx):
            out[sel] = self.V[s] @ re_h[s]
        return out

    def prices_and_jac(self, model: Any) -> tuple[FloatArray, FloatArray]:
        """Prices and their Jacobian (quotes x parameters, ``param_names`` order)."""
        from volcal.pricing.gradient import heston_family_grid, log_cf_grad

        fast = heston_family_grid(model, self.u, self.t, self.a, True)
        if fast is not None:
            re_h, re_dh = fast
        else:
            log_phi, grad = log_cf_grad(model, self.u, self.t[:, None])
            h = self._grid(log_phi)
            re_h = h.real
            re_dh = (h[None] * grad).real  # (P, S, N)
        out = np.empty(self.n)
        jac = np.empty((self.n, re_dh.shape[0]))
        for s, sel in enumerate(self.idx):
            out[sel] = self.V[s] @ re_h[s]
            jac[sel] = self.V[s] @ re_dh[:, s, :].T
        return out, jac


def _cos_payoff(k: FloatArray, is_call: BoolArray, a: float, b: float, u: FloatArray) -> FloatArray:
    """COS payoff coefficients V (quotes x N) for OTM puts/calls on [a, b], first halved.

    With :math:`c = \\mathrm{clip}(k, a, b)`, :math:`C = \\cos(u(c-a))`,
    :math:`S = \\sin(u(c-a))` and :math:`\\cos(u(b-a)) = (-1)^j`:
    :math:`\\chi(a,c) = (Ce^c - e^a + uSe^c)/(1+u^2)`,
    :math:`\\chi(c,b) = ((-1)^je^b - Ce^c - uSe^c)/(1+u^2)`,
    :math:`\\psi(a,c) = S/u = -\\psi(c,b)` (:math:`c-a` and :math:`b-c` for :math:`j=0`).
    """
    c = np.clip(k, a, b)[:, None]
    ek = np.exp(k)[:, None]
    ec = np.exp(c)
    uu = u[None, :]
    arg = uu * (c - a)
    cos_c, sin_c = np.cos(arg), np.sin(arg)
    inv = 1.0 / (1.0 + uu * uu)
    sign = np.where(np.arange(u.size) % 2 == 0, 1.0, -1.0)[None, :]
    u_safe = np.where(uu == 0.0, 1.0, uu)
    psi_ac = np.where(uu == 0.0, c - a, sin_c / u_safe)
    psi_cb = np.where(uu == 0.0, b - c, -sin_c / u_safe)
    chi_ac = (cos_c * ec - np.exp(a) + uu * sin_c * ec) * inv
    chi_cb = (sign * np.exp(b) - cos_c * ec - uu * sin_c * ec) * inv
    put = ek * psi_ac - chi_ac
    call = chi_cb - ek * psi_cb
    v = np.where(is_call[:, None], call, put) * (2.0 / (b - a))
    v[:, 0] *= 0.5
    return np.ascontiguousarray(v)
