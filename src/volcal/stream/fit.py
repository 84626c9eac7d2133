"""Incremental fits of the live book: quotes of one expiry, warm SVI, eSSVI, Heston.

Re-cleaning one expiry
----------------------
``volcal.clean`` on one expiry costs about 8 ms (a pandas forward estimate and a robust
SVI refit for outliers), too slow to run ten times a second per expiry.
:func:`slice_quotes` applies the same per-quote rules with the thresholds of a
:class:`~volcal.quality.QualityPolicy` on the NumPy columns of the expiry
(missing side, crossed, locked, wide spread in price and in vol, stale quote, near
expiry, bounds, the in-the-money side when its out-of-the-money twin is alive,
monotonicity and convexity in strike with ``volcal.quality.clean``'s own check).
Two steps differ, by design: forwards are Deribit's quoted underlying of each option
(the future, or the synthetic forward Deribit publishes; ``forwards="chain"`` in the
batch path), and the outlier refit is replaced by the off-smile guard, which compares a
quote with the *live* smile of its expiry and holds it out until the deviation has
persisted (a large trade distorts quotes for seconds; a real move persists).
``tests/test_stream.py`` checks on a real snapshot that the quotes used agree with
``volcal.clean``'s.

Warm SVI
--------
:func:`warm_svi` searches the quasi-explicit reduction of :mod:`volcal.calibration.svi`
(the exact inner solve in ``(a, p, q)``) on a small grid around the previous slice's
``(m, ln sigma)`` with two zoom levels, keeps the best butterfly-free candidate and falls
back to the full cold fit (:func:`~volcal.calibration.svi.fit_svi_slice`) when the warm
candidate is not admissible, and every ``cold_every`` fits of a slice (a warm search
can follow a local minimum; the periodic cold fit resets it).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.calibration.quotes import SPREAD_FLOOR, QuoteSet, black_vega_fwd
from volcal.errors import ParameterError
from volcal.market.chain import SECONDS_PER_YEAR
from volcal.models.svi import SVI
from volcal.quality.policy import QualityPolicy
from volcal.stream.book import ExpiryBook

__all__ = [
    "IvMemo",
    "SliceInput",
    "butterfly_free",
    "essvi_steps",
    "merge_quotes",
    "slice_quotes",
    "warm_svi",
]

_EPS = 1e-12


@dataclass
class SliceInput:
    """The quotes of one expiry a fit uses, with the reasons for the others."""

    quotes: QuoteSet | None
    t: float
    forward: float
    excluded: dict[str, int] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # off-smile quotes held out
    flagged: dict[str, str] = field(default_factory=dict)  # instrument -> first reason
    recheck_at: float = math.inf


def _median(a: FloatArray) -> float:
    """``np.median`` of a 1-d array without NaN, equal to it bit for bit (the middle
    element, or the two middle ones summed and halved) at a fraction of its overhead
    on the few dozen values of one expiry."""
    s = np.sort(a)
    n = s.size
    if n % 2:
        return float(s[n // 2])
    return float((s[n // 2 - 1] + s[n // 2]) / 2.0)


def _ivs(p: FloatArray, x: FloatArray, t: float, is_call: Any) -> FloatArray:
    from volcal.black import implied_vol

    out = np.full(p.size, np.nan)
    ok = np.isfinite(p) & (p > 0) & np.isfinite(x) & (x > 0)
    if ok.any():
        res = implied_vol(p[ok], 1.0, x[ok], t, np.asarray(is_call)[ok], full_output=True)
        out[ok] = res.vol
    return out


class IvMemo:
    """Total implied vols :math:`s = \\sigma\\sqrt{t}` of the mid, bid and ask of each
    row of one expiry at their last inputs (a memo owned by the engine's slice).

    A forward-unit Black price depends on ``t`` only through ``s`` (Jaeckel 2015
    solves for ``s``; :func:`volcal.black.implied_vol` returns ``s / sqrt(t)``), so a
    quote whose price, strike ratio and side are unchanged keeps its ``s`` as the
    clock moves: the refit of a slice inverts only the quotes that changed since its
    last refit and rescales the others (equal to a fresh inversion to rounding). The
    key is the inputs themselves, never the row alone: a row whose inputs differ is
    inverted again."""

    def __init__(self) -> None:
        self.x = np.empty(0)
        self.call = np.empty(0, dtype=bool)
        self.p = np.empty((3, 0))
        self.s = np.empty((3, 0))
        self.inverted = 0  # prices inverted (the rest were rescaled)
        self.reused = 0

    def vols(
        self,
        idx: Any,
        prices: tuple[FloatArray, FloatArray, FloatArray],
        x: FloatArray,
        is_call: Any,
        t: float,
    ) -> FloatArray:
        """Implied vols (3, len(idx)) of mid, bid, ask at rows ``idx``, at ``t``."""
        n = x.size
        if self.x.size < n:  # rows added to the book: new slots, never reused
            grow = n - self.x.size
            self.x = np.concatenate([self.x, np.full(grow, np.nan)])
            self.call = np.concatenate([self.call, np.zeros(grow, dtype=bool)])
            self.p = np.concatenate([self.p, np.full((3, grow), np.nan)], axis=1)
            self.s = np.concatenate([self.s, np.full((3, grow), np.nan)], axis=1)
        p_new = np.stack([a[idx] for a in prices])
        same_row = (self.x[idx] == x[idx]) & (self.call[idx] == np.asarray(is_call)[idx])
        fresh = same_row & (self.p[:, idx] == p_new) & np.isfinite(self.s[:, idx])
        stale = ~fresh
        sq = math.sqrt(t)
        if stale.any():
            kind, j = np.nonzero(stale)
            rows = idx[j]
            v = _ivs(p_new[kind, j], x[rows], t, np.asarray(is_call)[rows])
            self.s[kind, rows] = v * sq
            self.p[kind, rows] = p_new[kind, j]
            self.x[idx] = x[idx]
            self.call[idx] = np.asarray(is_call)[idx]
        self.inverted += int(stale.sum())
        self.reused += int(fresh.sum())
        out: FloatArray = self.s[:, idx] / sq
        return out


def slice_quotes(
    eb: ExpiryBook,
    now: float,
    *,
    policy: QualityPolicy,
    stale_quote_s: float,
    smile: SVI | None,
    off_smile_spreads: float,
    off_smile_min_vol: float,
    off_smile_persist_s: float,
    off_since: dict[str, float],
    iv_memo: IvMemo | None = None,
) -> SliceInput:
    """Clean one expiry of the live book and build its :class:`QuoteSet` (module docs).

    ``off_since`` (instrument -> clock time its quote first left the smile) is updated
    in place: that is the guard's memory. ``iv_memo``: the slice's :class:`IvMemo`
    (only the quotes that changed are inverted again).
    """
    from volcal.quality.clean import strike_arbitrage

    n = eb.n
    t = (eb.expiry - now) / SECONDS_PER_YEAR
    und = eb.col("underlying_price")
    # the median of the non-NaN entries, as np.nanmedian (a tenth of its cost here)
    fwd_exp = _median(und[~np.isnan(und)]) if np.any(np.isfinite(und)) else math.nan
    res = SliceInput(None, t, fwd_exp)
    if n == 0:
        return res
    codes: list[str] = [""]
    rc = np.zeros(n, dtype=np.int8)  # 0 = usable, else index into codes

    def flag(mask: Any, code: str) -> None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        m = m & (rc == 0)
        if m.any():
            if code not in codes:
                codes.append(code)
            rc[m] = codes.index(code)

    if not t > 0:
        flag(np.ones(n, bool), "expired")
    elif t < policy.min_days / 365.0:
        flag(np.ones(n, bool), "near_expiry")
    fwd = np.where(np.isfinite(und) & (und > 0), und, fwd_exp)
    flag(~(np.isfinite(fwd) & (fwd > 0)), "no_forward")
    bid, ask = eb.col("bid"), eb.col("ask")
    has_bid = np.isfinite(bid) & (bid > 0)
    has_ask = np.isfinite(ask) & (ask > 0)
    flag(~has_bid & ~has_ask, "zero_price")
    flag(~has_bid, "missing_bid")
    flag(~has_ask, "missing_ask")
    two = has_bid & has_ask
    flag(two & (bid > ask), "crossed")
    flag(two & (bid == ask), "locked")
    age = now - eb.col("exch_ts")
    flag(age > min(stale_quote_s, policy.max_quote_age_s), "stale")
    is_call = eb.is_call[:n]
    strike = eb.col("strike")
    with np.errstate(invalid="ignore", divide="ignore"):
        x = strike / fwd
        # inverse option: coin price x underlying / forward = forward-unit price (U = F)
        pb = np.where(has_bid, bid * und / fwd, np.nan)
        pa = np.where(has_ask, ask * und / fwd, np.nan)
        pm = np.where(two & (bid < ask), 0.5 * (pb + pa), np.nan)
        intrinsic = np.where(is_call, np.maximum(1.0 - x, 0.0), np.maximum(x - 1.0, 0.0))
        upper = np.where(is_call, 1.0, x)
        tol = _EPS * np.maximum(upper, 1.0)
        flag((pm < intrinsic - tol) | (pa < intrinsic - tol), "below_intrinsic")
        flag((pm >= upper - tol) | (pb > upper + tol), "above_bound")
    live = rc == 0
    ivm = np.full(n, np.nan)
    ivb = np.full(n, np.nan)
    iva = np.full(n, np.nan)
    if live.any() and t > 0:
        idx = np.flatnonzero(live)
        m_ = idx.size
        if iv_memo is not None:
            ivm[idx], ivb[idx], iva[idx] = iv_memo.vols(idx, (pm, pb, pa), x, is_call, t)
        else:
            # one implied-vol call for mid, bid and ask together
            three = _ivs(
                np.concatenate([pm[idx], pb[idx], pa[idx]]),
                np.tile(x[idx], 3),
                t,
                np.tile(is_call[idx], 3),
            )
            ivm[idx], ivb[idx], iva[idx] = three[:m_], three[m_ : 2 * m_], three[2 * m_ :]
    flag(live & ~np.isfinite(ivm), "iv_failed")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (ask - bid) / (0.5 * (bid + ask))
        vol_spread = np.where(np.isfinite(iva), iva, np.inf) - np.where(np.isfinite(ivb), ivb, 0.0)
    flag(
        (rel > policy.max_relative_spread)
        | (np.isfinite(ivm) & (vol_spread > policy.max_vol_spread)),
        "wide_spread",
    )
    # in the money, when the out-of-the-money twin at the same strike is alive
    alive = rc == 0
    itm = np.where(is_call, x < 1.0, x > 1.0)
    otm_alive = alive & ~itm & (x != 1.0)
    flag(itm & np.isin(strike, strike[otm_alive]), "itm")
    # off-smile guard against the live smile of this expiry
    alive = rc == 0
    k = np.log(x)
    if smile is not None and alive.any() and t > 0:
        idx = np.flatnonzero(alive)
        model = np.asarray(smile.implied_vol(k[idx], t))
        half = 0.5 * np.maximum(np.where(np.isfinite(iva[idx]), iva[idx] - ivb[idx], 0.0), 0.0)
        limit = np.maximum(
            off_smile_spreads * np.maximum(half, 0.5 * SPREAD_FLOOR), off_smile_min_vol
        )
        off = np.abs(ivm[idx] - model) > limit
        if off_since:  # a quote back on the smile forgets when it left it
            for j in idx[~off]:
                off_since.pop(eb.instruments[j], None)
        held = np.zeros(n, dtype=bool)
        for j in idx[off]:  # (few): the Python loop only over the quotes off the smile
            name = eb.instruments[j]
            since = off_since.setdefault(name, now)
            if now - since < off_smile_persist_s:
                held[j] = True
                res.held.append(name)
                res.recheck_at = min(res.recheck_at, since + off_smile_persist_s)
        flag(held, "off_smile")
    # static arbitrage in strike between the surviving quotes
    alive = rc == 0
    for call in (True, False):
        rows = np.flatnonzero(alive & (is_call == call))
        if rows.size < 2:
            continue
        rows = rows[np.argsort(x[rows], kind="stable")]
        mono, conv, _, _ = strike_arbitrage(x[rows], pb[rows], pa[rows], call)
        bad_m = np.zeros(n, dtype=bool)
        bad_m[rows[mono]] = True
        bad_c = np.zeros(n, dtype=bool)
        bad_c[rows[conv]] = True
        flag(bad_m, "monotonicity")
        flag(bad_c, "convexity")
    counts = np.bincount(rc, minlength=len(codes))
    res.excluded = {codes[i]: int(c) for i, c in enumerate(counts) if i > 0 and c > 0}
    res.flagged = {eb.instruments[j]: codes[rc[j]] for j in np.flatnonzero(rc)}
    use = np.flatnonzero(rc == 0)
    if use.size == 0 or not t > 0:
        return res
    kk = k[use]
    res.quotes = QuoteSet(
        row=use.astype(np.int64),
        instrument=np.array([eb.instruments[j] for j in use], dtype=object),
        expiry=np.full(use.size, int(eb.expiry * 1e9), dtype=np.int64).view("datetime64[ns]"),
        t=np.full(use.size, t),
        forward=fwd[use],
        strike=strike[use],
        k=kk,
        is_call=is_call[use].copy(),
        bid=pb[use],
        ask=pa[use],
        mid=pm[use],
        iv_bid=np.where(np.isfinite(ivb[use]), ivb[use], 0.0),
        iv_ask=np.where(np.isfinite(iva[use]), iva[use], np.inf),
        iv_mid=ivm[use],
        vega=black_vega_fwd(kk, np.full(use.size, t), ivm[use]),
        open_interest=eb.col("open_interest")[use].copy(),
        slice_index=np.zeros(use.size, dtype=np.int64),
        expiries=np.array([int(eb.expiry * 1e9)], dtype=np.int64).view("datetime64[ns]"),
        t_slices=np.array([t]),
        forward_slices=np.array([_median(fwd[use])]),
    )
    return res


def merge_quotes(sets: list[QuoteSet]) -> QuoteSet:
    """One :class:`QuoteSet` of several single-expiry sets (in increasing expiry)."""
    sets = sorted(sets, key=lambda q: float(q.t_slices[0]))
    per = {
        name: np.concatenate([getattr(q, name) for q in sets])
        for name in QuoteSet.__dataclass_fields__
        if name not in ("slice_index", "expiries", "t_slices", "forward_slices")
    }
    return QuoteSet(
        **per,
        slice_index=np.concatenate(
            [np.full(len(q), i, dtype=np.int64) for i, q in enumerate(sets)]
        ),
        expiries=np.concatenate([q.expiries for q in sets]),
        t_slices=np.concatenate([q.t_slices for q in sets]),
        forward_slices=np.concatenate([q.forward_slices for q in sets]),
    )


def surface_quality(model: Any, quotes: list[QuoteSet]) -> tuple[float, float, int]:
    """(RMSE in vol points, share inside bid-ask, quotes) of a surface model over the
    single-expiry sets ``quotes``: ``fit_quality`` of :func:`merge_quotes` of them,
    concatenating only the five columns it reads."""
    from volcal.calibration.result import vol_fit_quality

    if not quotes:
        return math.nan, math.nan, 0
    sets = sorted(quotes, key=lambda q: float(q.t_slices[0]))  # as merge_quotes

    def cat(name: str) -> FloatArray:
        return np.concatenate([getattr(q, name) for q in sets])

    iv = np.asarray(model.implied_vol(cat("k"), cat("t")), dtype=np.float64)
    rmse, inside = vol_fit_quality(iv, cat("iv_mid"), cat("iv_bid"), cat("iv_ask"))
    return rmse, inside, int(iv.size)


def svi_weights(q: QuoteSet) -> tuple[FloatArray, FloatArray]:
    """Vol-residual weights (spread) and the total-variance weights of the SVI fitter."""
    omega = q.weights("spread")
    wt = omega / (2.0 * q.iv_mid * q.t) ** 2
    return omega, wt / np.sum(wt)


def svi_cost(svi: SVI, q: QuoteSet, wt: FloatArray) -> float:
    v = q.iv_mid**2 * q.t
    return float(np.sum(wt * (np.asarray(svi.total_variance(q.k)) - v) ** 2))


def butterfly_free(svi: SVI, tol: float = 1e-10) -> bool:
    """``svi.is_arbitrage_free()`` (Lee bound, positive minimal variance, g >= -tol on
    the dense check grid), the same decision with the grid's g evaluated by the
    compiled :func:`volcal.models._svi_kernels.min_g` (bit-identical minimum) instead
    of a dozen NumPy temporaries of 2,402 points: a sixth of the CPU of a warm refit
    was this check."""
    from volcal.models._svi_kernels import min_g
    from volcal.models.svi import LEE_BOUND, _check_grid

    if svi.lee_slope > LEE_BOUND + 1e-12:
        return False
    if svi.min_total_variance <= 0:
        return False
    a, b, rho, m, sig = svi.a, svi.b, svi.rho, svi.m, svi.sigma
    return bool(min_g(_check_grid(a, b, rho, m, sig), a, b, rho, m, sig) >= -tol)


def warm_svi(
    q: QuoteSet, prev: SVI | None, *, cold: bool = False, cold_fallback: bool = True
) -> tuple[SVI, str, bool, int] | None:
    """Fit one slice, warm-started from ``prev`` (module docs); ``cold=True`` forces the
    full search (the engine does so every ``cold_every`` fits of a slice).

    Returns ``(svi, status, warm, n_candidates)``; ``warm`` is False when the cold fit
    ran. With ``cold_fallback=False`` the cold fit never runs here: ``None`` when it
    would have (the engine then runs it on a worker, :func:`cold_svi`).
    """
    from volcal.models.svi_fit import SVISliceInfo, _admissible, _inner, fit_svi_slice

    t = float(q.t_slices[0])
    omega, wt = svi_weights(q)
    k = np.ascontiguousarray(q.k)
    v = np.ascontiguousarray(q.iv_mid**2 * q.t)
    if prev is not None and not cold and len(q) >= 5 and np.ptp(k) > 0:
        span = float(np.ptp(k))
        grid_k = np.concatenate(
            [np.linspace(k.min() - span, k.max() + span, 41), [-8.0, -4.0, -2.0, 2.0, 4.0, 8.0]]
        )
        c_m, c_l = float(prev.m), math.log(float(prev.sigma))
        dm, dl = 0.05 * span, 0.15
        st = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
        best: tuple[float, float, float, float, float, float] | None = None
        n_cand = 0
        for _level in range(3):
            # the 5 x 5 grid (np.meshgrid, indexing="ij", raveled) without its overhead
            m_c = np.repeat(c_m + dm * st, st.size)
            l_c = np.tile(c_l + dl * st, st.size)
            s_c = np.exp(l_c)
            a, p, qq, cost = _inner(k, v, wt, m_c, s_c)
            n_cand += m_c.size
            ok = np.isfinite(cost) & _admissible(a, p, qq, m_c, s_c, grid_k)
            if ok.any():
                j = int(np.flatnonzero(ok)[np.argmin(cost[ok])])
                if best is None or cost[j] < best[0]:
                    best = (float(cost[j]), a[j], p[j], qq[j], m_c[j], l_c[j])
                c_m, c_l = best[4], best[5]
            dm, dl = 0.4 * dm, 0.4 * dl
        if best is not None:
            _cost_b, a_b, p_b, q_b, m_b, l_b = best
            s_b = math.exp(l_b)
            c_ = p_b + q_b
            if c_ > 0:
                try:
                    svi = SVI(a=a_b, b=c_ / s_b, rho=(p_b - q_b) / c_, m=m_b, sigma=s_b)
                except ParameterError:
                    svi = None
                if svi is not None and butterfly_free(svi):
                    return svi, "ok", True, n_cand
    if not cold_fallback:
        return None
    fitted = fit_svi_slice(q.k, q.iv_mid, t, omega, full_output=True)
    assert isinstance(fitted, tuple)
    svi, info = fitted
    assert isinstance(info, SVISliceInfo)
    return svi, info.status, False, info.n_candidates


def cold_svi(q: QuoteSet) -> tuple[SVI, str]:
    """The full (cold) SVI fit of one slice and its status: what :func:`warm_svi` runs
    when the warm search fails, as a job for a worker process (it can take hundreds of
    milliseconds when the constrained fallback of the fitter runs)."""
    from volcal.models.svi_fit import fit_svi_slice

    omega, _ = svi_weights(q)
    fitted = fit_svi_slice(q.k, q.iv_mid, float(q.t_slices[0]), omega, full_output=True)
    assert isinstance(fitted, tuple)
    return fitted[0], str(fitted[1].status)


Node = tuple[float, float, float]


@dataclass(frozen=True)
class EssviRefresh:
    """What one eSSVI refresh computed (:func:`essvi_refresh`): plain data, so it can
    come back from a worker process."""

    expiries: tuple[float, ...]
    t: tuple[float, ...]
    nodes: dict[float, Node]
    conv: dict[float, Node]  # expiry -> (ATM vol, RR25, BF25) at the node
    first: int  # index of the first slice refitted
    n_refit: int
    refit: frozenset[float]
    rmse_vol: float
    inside_spread: float
    n_used: int
    conditions_ok: bool | None  # None: the full check did not run this time
    error: str | None = None


def _calendar_ok(prev: Node | None, node: Node) -> bool:
    """eSSVI calendar conditions of a node against its predecessor (Hendriks & Martini
    2019): theta non-decreasing and both wing slopes psi (1 +- rho) non-decreasing."""
    if prev is None:
        return True
    th_p, r_p, ps_p = prev
    th, r, ps = node
    eps = 1e-12
    return (
        th >= th_p - eps
        and ps * (1 + r) >= ps_p * (1 + r_p) - eps
        and ps * (1 - r) >= ps_p * (1 - r_p) - eps
    )


def node_pillars(node: Node, t: float) -> Node | None:
    r"""(ATM vol, RR25, BF25) of one eSSVI node's slice by :func:`svi_pillars`.

    At its node an eSSVI slice is the SSVI slice
    :math:`w = \frac{\theta}{2}(1 + \rho\varphi k + \sqrt{(\varphi k + \rho)^2 + 1 -
    \rho^2})` with :math:`\varphi = \psi/\theta`, which is raw SVI with
    :math:`a = \theta(1-\rho^2)/2`, :math:`b = \psi/2`, :math:`m = -\rho/\varphi`,
    :math:`\sigma = \sqrt{1-\rho^2}/\varphi` (Gatheral & Jacquier 2014, section 3).
    ``None`` when that SVI is degenerate or the fast path does not apply.
    """
    th, rho, psi = node
    if not (th > 0 and psi > 0 and abs(rho) < 1 and t > 0):
        return None
    phi = psi / th
    try:
        svi = SVI(
            a=0.5 * th * (1.0 - rho * rho),
            b=0.5 * psi,
            rho=rho,
            m=-rho / phi,
            sigma=math.sqrt(1.0 - rho * rho) / phi,
        )
    except ParameterError:
        return None
    from volcal.calibration.smile_stats import svi_pillars

    st = svi_pillars(svi, t)
    if st is None:
        return None
    return (float(st.atm_vol), float(st.rr25), float(st.bf25))


def essvi_refresh(
    expiries: list[float],
    quotes: list[QuoteSet],
    t: list[float],
    fitted: set[float],
    nodes: dict[float, Node],
    conv: dict[float, Node],
    *,
    check: bool,
    warm: bool = False,
) -> EssviRefresh:
    """Refresh the eSSVI surface over the slices ``expiries`` (sorted, with their
    quotes and times to expiry ``t``) given the previous ``nodes`` and conventions.

    Slices are refitted from the first one in ``fitted`` (or without a node) on; a
    later unchanged slice whose node is still calendar-compatible with its new
    predecessor keeps it. The conventions (ATM, RR25, BF25) are recomputed only for
    refitted nodes; ``check`` runs the full no-arbitrage check of the surface;
    ``warm`` starts each slice's search at its previous node (the grid stage is
    skipped when that node is admissible in the slice's new box). Pure: the inputs
    are not modified, so it runs the same on a worker process. The whole refresh at
    once; :func:`essvi_steps` is the same computation one slice at a time.
    """
    steps = essvi_steps(expiries, quotes, t, fitted, nodes, conv, check=check, warm=warm)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            res: EssviRefresh = stop.value
            return res


def essvi_steps(
    expiries: list[float],
    quotes: list[QuoteSet],
    t: list[float],
    fitted: set[float],
    nodes: dict[float, Node],
    conv: dict[float, Node],
    *,
    check: bool,
    warm: bool = False,
) -> Generator[int, None, EssviRefresh]:
    """:func:`essvi_refresh` as a generator: yields after each refitted slice (its
    index) and before the final stage (conventions, fit quality, the check); its
    return value (``StopIteration.value``) is the :class:`EssviRefresh`. The engine
    runs one step at a time in its loop, so a slice refit never waits behind a whole
    surface refresh, only behind one slice of it (about a millisecond)."""
    from volcal.calibration.ssvi import _fit_slice, slice_conventions
    from volcal.models.ssvi import ESSVI, calendar_grid

    nodes = {e: nodes[e] for e in expiries if e in nodes}
    conv = {e: conv[e] for e in expiries if e in conv}
    first = next(
        (i for i, e in enumerate(expiries) if e in fitted or e not in nodes), len(expiries)
    )
    if first == len(expiries):
        first = 0
    grid = calendar_grid()
    prev = nodes.get(expiries[first - 1]) if first > 0 else None
    refit: set[float] = set()
    for e, q in zip(expiries[first:], quotes[first:], strict=True):
        node = nodes.get(e)
        if e not in fitted and node is not None and _calendar_ok(prev, node):
            prev = node
            continue
        _, wt = svi_weights(q)
        v = q.iv_mid**2 * q.t
        start = np.array(node, dtype=np.float64) if warm and node is not None else None
        th, rho, psi, _c, _n = _fit_slice(q.k, v, wt, prev, grid, start=start)
        nodes[e] = prev = (th, rho, psi)
        refit.add(e)
        yield len(refit)
    yield -1
    ns = [nodes[e] for e in expiries]
    base: dict[str, Any] = {
        "expiries": tuple(expiries),
        "t": tuple(float(x) for x in t),
        "nodes": nodes,
        "first": first,
        "n_refit": len(refit),
        "refit": frozenset(refit),
    }
    try:
        model = ESSVI(
            t=tuple(float(x) for x in t),
            theta=tuple(n[0] for n in ns),
            rho=tuple(n[1] for n in ns),
            psi=tuple(n[2] for n in ns),
        )
    except ParameterError as exc:
        return EssviRefresh(
            **base,
            conv=conv,
            rmse_vol=math.nan,
            inside_spread=math.nan,
            n_used=0,
            conditions_ok=None,
            error=str(exc),
        )
    # conventions only for the nodes that changed (a sub-surface of those nodes is
    # itself a valid eSSVI, evaluated slice by slice at its node times)
    todo = [i for i, e in enumerate(expiries) if e in refit or e not in conv]
    rest = []
    for i in todo:
        # a node's slice is an SSVI slice, i.e. a raw SVI one: its pillars in closed form
        c = node_pillars(ns[i], float(t[i]))
        if c is None:
            rest.append(i)
        else:
            conv[expiries[i]] = c
    todo = rest
    if todo:
        sub = ESSVI(
            t=tuple(float(t[i]) for i in todo),
            theta=tuple(ns[i][0] for i in todo),
            rho=tuple(ns[i][1] for i in todo),
            psi=tuple(ns[i][2] for i in todo),
        )
        a_, r_, b_ = slice_conventions(sub, np.asarray(sub.t), "forward")
        for j, i in enumerate(todo):
            conv[expiries[i]] = (float(a_[j]), float(r_[j]), float(b_[j]))
    rmse, inside, n_used = surface_quality(model, quotes)
    return EssviRefresh(
        **base,
        conv=conv,
        rmse_vol=float(rmse),
        inside_spread=float(inside),
        n_used=n_used,
        conditions_ok=bool(model.conditions()["ok"]) if check else None,
    )
