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
    0.1974126514
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
        b_s = np.empty(n_s)
        self.idx: list[IntArray] = []
        for s in range(n_s):
            sel = np.flatnonzero(slice_index == s)
            self.idx.append(sel)
            sd = float(vol_ref[s]) * np.sqrt(self.t[s])
            c1 = -0.5 * sd * sd
            ks = k[sel]
            reach = float(np.max(np.abs(ks - c1))) if ks.size else 0.0
            h = max(width * sd, 1.25 * reach + 4.0 * sd)
            self.a[s], b_s[s] = c1 - h, c1 + h
            self.u[s] = j * np.pi / (2.0 * h)
        # payoff coefficients of every quote plus one ATM-forward call per expiry, in
        # one compiled pass; the ATM rows give the model's ATM vol without a second grid
        from volcal.calibration._cos_numba import cos_payoff  # compiled _cos_payoff

        v_all = cos_payoff(
            np.concatenate([k, np.zeros(n_s)]),
            np.concatenate([is_call, np.ones(n_s, dtype=bool)]),
            np.concatenate([self.a[slice_index], self.a]),
            np.concatenate([b_s[slice_index], b_s]),
            self.n_terms,
        )
        self.V: list[FloatArray] = [np.ascontiguousarray(v_all[sel]) for sel in self.idx]
        self.V_atm = np.ascontiguousarray(v_all[self.n :])

    # --------------------------------------------------------------- pricing
    def _grid(self, log_phi: Any) -> Any:
        return np.exp(log_phi - 1j * self.u * self.a[:, None])

    def _re_h(self, model: Any) -> FloatArray:
        from volcal.pricing.gradient import heston_family_grid

        fast = heston_family_grid(model, self.u, self.t, self.a, False)
        if fast is not None:
            return fast[0]
        return self._grid(model.log_char_func(self.u, self.t[:, None])).real

    def prices(self, model: Any) -> FloatArray:
        """Undiscounted OTM prices per unit forward of every quote."""
        re_h = self._re_h(model)
        out = np.empty(self.n)
        for s, sel in enumerate(self.idx):
            out[sel] = self.V[s] @ re_h[s]
        return out

    def prices_and_atm(self, model: Any) -> tuple[FloatArray, FloatArray]:
        """Quote prices and the ATM-forward (k = 0) call price of every expiry, from one
        char-function grid."""
        re_h = self._re_h(model)
        out = np.empty(self.n)
        for s, sel in enumerate(self.idx):
            out[sel] = self.V[s] @ re_h[s]
        return out, np.einsum("sj,sj->s", self.V_atm, re_h)

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


def _cos_payoff(
    k: FloatArray, is_call: BoolArray, a: FloatArray, b: FloatArray, n_terms: int
) -> FloatArray:
    """COS payoff coefficients V (quotes x N) for OTM puts/calls, first term halved.

    Each quote has its own interval ``[a, b]`` (its expiry's) and nodes
    :math:`u_j = j\\pi/(b-a)`. With :math:`c = \\mathrm{clip}(k, a, b)`,
    :math:`C = \\cos(u(c-a))`, :math:`S = \\sin(u(c-a))` and
    :math:`\\cos(u(b-a)) = (-1)^j`:
    :math:`\\chi(a,c) = (Ce^c - e^a + uSe^c)/(1+u^2)`,
    :math:`\\chi(c,b) = ((-1)^je^b - Ce^c - uSe^c)/(1+u^2)`,
    :math:`\\psi(a,c) = S/u = -\\psi(c,b)` (:math:`c-a` and :math:`b-c` for :math:`j=0`).

    :math:`C + iS = e^{iu_j(c-a)}` is formed as a product of two short tables,
    :math:`e^{ix\\,l}\\,e^{ix\\,16h}` with :math:`j = 16h + l`, :math:`x = \\pi(c-a)/(b-a)`:
    32 complex exponentials per quote instead of 2N cosines and sines (the product of
    two unit complex numbers keeps full relative precision).
    """
    k = np.asarray(k, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = k.size
    blk = 16
    n_hi = -(-n_terms // blk)
    du = np.pi / (b - a)
    c = np.clip(k, a, b)
    x = du * (c - a)
    lo = np.exp(1j * x[:, None] * np.arange(blk, dtype=np.float64)[None, :])
    hi = np.exp(1j * (blk * x)[:, None] * np.arange(n_hi, dtype=np.float64)[None, :])
    e = (hi[:, :, None] * lo[:, None, :]).reshape(n, n_hi * blk)[:, :n_terms]
    uu = du[:, None] * np.arange(n_terms, dtype=np.float64)[None, :]
    inv = 1.0 / (1.0 + uu * uu)
    ec = np.exp(c)[:, None]
    ek = np.exp(k)[:, None]
    sign = np.where(np.arange(n_terms) % 2 == 0, 1.0, -1.0)[None, :]
    ecs = ec * (e.real + uu * e.imag)  # e^c (C + u S)
    uu[:, 0] = 1.0
    psi = e.imag / uu  # psi(a, c) = -psi(c, b) for j > 0
    call = np.asarray(is_call, dtype=bool)[:, None]
    chi = np.where(call, sign * np.exp(b)[:, None] - ecs, ecs - np.exp(a)[:, None]) * inv
    v = np.where(call, chi + ek * psi, ek * psi - chi)
    ea, eb, e_c, e_k = np.exp(a), np.exp(b), np.exp(c), np.exp(k)
    v[:, 0] = 0.5 * np.where(
        is_call, (eb - e_c) - e_k * (b - c), e_k * (c - a) - (e_c - ea)
    )  # j = 0: psi is an interval length, chi a plain exponential integral
    v *= (2.0 / (b - a))[:, None]
    return np.ascontiguousarray(v)
