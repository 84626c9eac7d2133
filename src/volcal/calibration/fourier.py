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
widest strike), widened where the start model needs more (the cumulant rule), so
:math:`V` - an (quotes x N) real matrix - does not change while the optimizer moves the
parameters. A market-only interval is not enough for jump models: on a one-day expiry
quoted within a few percent of the forward, a Merton fit with 30% jumps put mass far
outside it and mispriced the shortest quotes by up to 8 vol points; ``calibrate``
therefore re-plans the grid for the fitted model when its range is wider than the
grid's (:meth:`CosSurface.too_narrow`) and re-solves from the fit. A pricing is then one
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

_CUMULANT_L = 10.0  # truncation range in cumulant units (Fang & Oosterlee 2008, L = 10)
# Largest half-width a model may widen an interval to: OTM call coefficients involve
# e^b with alternating signs, so a wider interval loses e^b * eps of absolute accuracy
# (e^8 * 1e-16 ~ 3e-13); mass beyond 3000x the forward is immaterial to quoted options.
_H_CAP = 8.0
_SLACK = 1.25  # a model range up to this factor wider than the grid's is accepted


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
        Cosine terms N (default 256) for the market interval.
    width : float
        L, the interval half-width in standard deviations (default 10).
    model : model instance, optional
        Widen each expiry's interval to the range this model needs (Fang & Oosterlee's
        cumulant rule, :meth:`model_half_width`: jumps can put mass far outside the
        range of the quotes on short expiries), up to a half-width of 8 (``_H_CAP``).
        N then grows in proportion (rounded up to a multiple of 16, at most
        ``max_terms``), so the node spacing - the resolution of the diffusive part -
        never coarsens.
    min_half_width : ndarray, optional
        A floor on the half-width per expiry (e.g. a previous grid's, so that re-planning
        only ever widens).
    max_terms : int
        Cap on N when intervals are widened (default 2048).

    Attributes
    ----------
    center, half_width : ndarray
        The interval :math:`[c - h, c + h]` of every expiry.
    capped : bool
        Whether N hit ``max_terms`` (the widened grid is then coarser than asked).

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
        model: Any = None,
        min_half_width: FloatArray | None = None,
        max_terms: int = 2048,
    ) -> None:
        k = np.asarray(k, dtype=np.float64)
        is_call = np.asarray(is_call, dtype=bool)
        slice_index = np.asarray(slice_index, dtype=np.int64)
        self.t = np.asarray(t_slices, dtype=np.float64)
        self.n = int(k.size)
        n_s = self.t.size
        self.center = np.empty(n_s)
        h_mkt = np.empty(n_s)
        self.idx: list[IntArray] = []
        for s in range(n_s):
            sel = np.flatnonzero(slice_index == s)
            self.idx.append(sel)
            sd = float(vol_ref[s]) * np.sqrt(self.t[s])
            c1 = -0.5 * sd * sd
            ks = k[sel]
            reach = float(np.max(np.abs(ks - c1))) if ks.size else 0.0
            self.center[s] = c1
            h_mkt[s] = max(width * sd, 1.25 * reach + 4.0 * sd)
        self._h_max = np.maximum(h_mkt, _H_CAP)
        h = h_mkt.copy()
        if model is not None:
            # the same 25% slack as too_narrow: a range the rule wants up to 1.25x wider
            # than the market's is accepted (L = 8 instead of 10), else widened to it
            need = self.model_half_width(model)
            h = np.where(need > _SLACK * h, need, h)
        if min_half_width is not None:
            h = np.fmax(h, np.asarray(min_half_width, dtype=np.float64))
        h = np.minimum(h, self._h_max)
        ratio = float(np.max(h / h_mkt)) if n_s else 1.0
        n_eff = int(n_terms) if ratio <= 1.0 else 16 * int(np.ceil(n_terms * ratio / 16.0))
        self.max_terms = max(int(max_terms), int(n_terms))
        self.capped = n_eff > self.max_terms
        self._k, self._is_call, self._slice_index = k, is_call, slice_index
        self._setup(h, min(n_eff, self.max_terms))

    def _setup(self, h: FloatArray, n_terms: int) -> None:
        """Interval [center - h, center + h] and N terms: nodes and payoff matrices."""

        n_s = self.t.size
        self.n_terms = int(n_terms)
        self.half_width = np.asarray(h, dtype=np.float64)
        self.a = self.center - self.half_width
        self.b = self.center + self.half_width
        j = np.arange(self.n_terms, dtype=np.float64)
        self.u = j[None, :] * np.pi / (2.0 * self.half_width[:, None])
        # at the cap the range may cut a fat right tail (Heston-type models with a vol of
        # vol near its bound: the moment explosion is close to 1): there out-of-the-money
        # calls are priced by parity from the put coefficients, C = P + 1 - e^k, which
        # needs no mass beyond b (E[e^X] = 1 holds exactly) - the direct route had
        # 0.90 vs 0.77 (QuantLib) on a 198-day Bates call at 6.6x the forward
        self.parity = self.half_width >= self._h_max * (1.0 - 1e-12)
        # payoff coefficients of every quote plus one ATM-forward call per expiry, in
        # one compiled pass; the ATM rows give the model's ATM vol without a second grid
        si = self._slice_index
        v_all = self._payoff(
            np.concatenate([self._k, np.zeros(n_s)]),
            np.concatenate([self._is_call, np.ones(n_s, dtype=bool)]),
            np.concatenate([si, np.arange(n_s)]),
        )
        self.V: list[FloatArray] = [np.ascontiguousarray(v_all[sel]) for sel in self.idx]
        self.V_atm = np.ascontiguousarray(v_all[self.n :])

    def _payoff(self, k: FloatArray, is_call: BoolArray, si: IntArray) -> FloatArray:
        """Payoff rows of options ``k`` on expiries ``si`` (parity for calls at the cap:
        put coefficients plus the constant 1 - e^k on the j = 0 term, whose grid value
        Re phi(0) is exactly 1)."""
        from volcal.calibration._cos_numba import cos_payoff  # compiled _cos_payoff

        par = np.asarray(is_call, dtype=bool) & self.parity[si]
        v = cos_payoff(
            k, np.asarray(is_call, dtype=bool) & ~par, self.a[si], self.b[si], self.n_terms
        )
        if np.any(par):
            v[par, 0] += 1.0 - np.exp(k[par])
        return np.asarray(v)

    def _copy_with(self, h: FloatArray, n_terms: int) -> CosSurface:
        new = object.__new__(CosSurface)
        new.__dict__.update(
            {
                k: v
                for k, v in self.__dict__.items()
                if k not in ("V", "V_atm", "u", "a", "b", "parity")
            }
        )
        new.capped = n_terms > self.max_terms
        new._setup(h, min(n_terms, self.max_terms))
        return new

    def refined(self, range_factor: float = 2.0, terms_factor: int = 2) -> CosSurface:
        """The plan with ``range_factor`` times the half-width (within the cap) and
        ``terms_factor`` times the terms. ``(2, 2)`` keeps the node spacing and measures
        the range truncation; ``(1, 2)`` halves it and measures the series truncation."""
        h = np.minimum(range_factor * self.half_width, np.maximum(self.half_width, self._h_max))
        return self._copy_with(h, terms_factor * self.n_terms)

    def widened_for(self, model: Any) -> CosSurface:
        """A plan whose intervals also cover ``model``'s range (:meth:`model_half_width`),
        with N grown so the node spacing does not coarsen."""
        h = np.minimum(np.fmax(self.half_width, self.model_half_width(model)), self._h_max)
        ratio = float(np.max(h / self.half_width))
        return self._copy_with(h, 16 * int(np.ceil(self.n_terms * ratio / 16.0)))

    # ------------------------------------------------------------------ range
    def model_half_width(self, model: Any) -> FloatArray:
        """Half-width per expiry that ``model`` needs around this grid's centres.

        Fang & Oosterlee's rule :math:`|c_1 - c| + L\\sqrt{c_2 + \\sqrt{c_4}}` with the
        model's cumulants and :math:`L = 10` (the rule ``volcal.pricing.cos`` uses); NaN
        where the cumulants are not finite.
        """
        c1, c2, c4 = (np.asarray(c, dtype=np.float64) for c in model.cumulants(self.t))
        with np.errstate(all="ignore"):
            h = np.abs(c1 - self.center) + _CUMULANT_L * np.sqrt(c2 + np.sqrt(np.abs(c4)))
        return np.where(np.isfinite(h), h, np.nan)

    def too_narrow(self, model: Any, slack: float = _SLACK) -> bool:
        """Whether ``model`` needs an interval wider than ``slack`` times this grid's on
        some expiry (then re-plan with ``min_half_width=half_width, model=model``)."""
        need = np.minimum(self.model_half_width(model), self._h_max)
        return bool(np.any(need > slack * self.half_width))

    # --------------------------------------------------------------- pricing
    def _grid(self, log_phi: Any) -> Any:
        return np.exp(log_phi - 1j * self.u * self.a[:, None])

    def grid_values(self, model: Any) -> FloatArray:
        """:math:`\\mathrm{Re}[\\varphi(u_j, T)e^{-iu_ja}]` on the (expiries x N) grid: the
        model-dependent half of every price (see :meth:`prices_from_grid`)."""
        from volcal.pricing.gradient import heston_family_grid

        fast = heston_family_grid(model, self.u, self.t, self.a, False)
        if fast is not None:
            return np.asarray(fast[0])
        return np.asarray(self._grid(model.log_char_func(self.u, self.t[:, None])).real)

    def prices_from_grid(self, re_h: FloatArray) -> FloatArray:
        """Quote prices from :meth:`grid_values` (one matrix product per expiry)."""
        out = np.empty(self.n)
        for s, sel in enumerate(self.idx):
            out[sel] = self.V[s] @ re_h[s]
        return out

    def atm_from_grid(self, re_h: FloatArray) -> FloatArray:
        """ATM-forward (k = 0) call price of every expiry from :meth:`grid_values`."""
        return np.asarray(np.einsum("sj,sj->s", self.V_atm, re_h))

    def rows_from_grid(
        self, re_h: FloatArray, k: FloatArray, is_call: BoolArray, slice_index: IntArray
    ) -> FloatArray:
        """Prices of any further options (log-moneyness ``k`` on expiry ``slice_index``)
        on the calibration grid: new payoff rows, the same char-function values."""
        k = np.ascontiguousarray(k, dtype=np.float64).ravel()
        si = np.asarray(slice_index, dtype=np.int64).ravel()
        call = np.ascontiguousarray(np.broadcast_to(is_call, k.shape), dtype=bool)
        v = self._payoff(k, call, si)
        return np.asarray(np.einsum("ij,ij->i", v, re_h[si]))

    def grid_diagnostics(self, re_h: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Free accuracy indicators of the plan, per expiry, from :meth:`grid_values`.

        ``edge``: the COS density at the interval ends times the half-width,
        :math:`|\\sum' A_j|` and :math:`|\\sum' (-1)^j A_j|` - not small when mass lies
        beyond the range. ``tail``: the largest coefficient in the last eighth of the
        series - not small when the characteristic function has not decayed by the last
        node. Both are ~1e-10 or below on a well-planned grid; either above ~1e-5 calls
        for the refined comparison (``calibrate`` does it).
        """
        w = np.ones(self.n_terms)
        w[0] = 0.5
        sign = np.where(np.arange(self.n_terms) % 2 == 0, 1.0, -1.0)
        edge = np.maximum(np.abs(re_h @ w), np.abs(re_h @ (w * sign)))
        tail = np.max(np.abs(re_h[:, (7 * self.n_terms) // 8 :]), axis=1)
        return np.asarray(edge), np.asarray(tail)

    def prices(self, model: Any) -> FloatArray:
        """Undiscounted OTM prices per unit forward of every quote."""
        return self.prices_from_grid(self.grid_values(model))

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
