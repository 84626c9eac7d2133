"""``volcal.clean``: flag every quote of a chain that should not (or might not) be fitted.

Nothing is deleted: each check sets bits of ``OptionChain.flags`` (see
:mod:`volcal.market.flags` for the reasons) and the policy
(:class:`~volcal.quality.policy.QualityPolicy`) says which bits keep a quote out of
fitting. The checks run in this order, each on the quotes that survived the previous
ones (so a crossed quote is not also called an outlier):

1. **Forwards** per expiry (:func:`~volcal.market.forwards.estimate_forwards`): the
   chain's own where it has one, else the quoted underlying, else put-call parity;
   ``parity`` when the quoted and parity forwards disagree, ``no_forward`` when there
   is none.
2. **Single-quote checks**: ``invalid`` (strike, expiry, negative price), ``expired``,
   ``near_expiry``, ``missing_bid`` / ``missing_ask`` / ``zero_price``, ``crossed``,
   ``locked``, ``stale`` (own timestamp older than the limit), ``duplicate`` (same
   expiry, strike and type: the two-sided, tightest, most recent one is kept),
   ``below_intrinsic`` / ``above_bound`` (mid, or an executable side, outside the
   no-arbitrage bounds in forward units), ``iv_failed`` (no implied vol from the mid),
   ``wide_spread`` (relative spread or bid-ask width in vol too large).
3. **In the money**: the in-the-money quote of a strike whose out-of-the-money twin
   survived gets ``itm`` (the twin carries the same information with a tighter market).
4. **Static arbitrage between quotes** (warnings by default), from *executable* prices,
   so a flag means a trade that locks in a profit, not noise between mids:
   ``monotonicity`` (a higher-strike call bid above a lower-strike call ask, or a call
   spread bid above its width; puts alike), ``convexity`` (the body of a butterfly bid
   above the interpolated asks of its wings: the body is flagged), ``parity`` (the
   call/put pair's executable interval misses ``D(F - K)``), ``calendar`` (a later
   expiry's ask total variance below the earlier expiry's bid total variance at the
   same log-moneyness: the later quote is flagged).
5. **Outliers**: per expiry, a robust first-pass SVI smile (quasi-explicit SVI fit,
   re-weighted three times with Tukey's bisquare on residuals in units of each quote's
   half spread) and a quote whose mid vol is further than ``outlier_threshold`` robust
   standard deviations and ``outlier_min_vol`` from it gets ``outlier``.

Cleaning is idempotent: cleaning a cleaned chain first clears the bits cleaning owns.

Layering note: the outlier check borrows the per-expiry SVI fitter of the calibration
layer, imported at call time: its compiled kernels through
:mod:`volcal.quality._svi_fast` (the same search as
``volcal.models.svi_fit.fit_svi_slice``, compiled end to end), and
``fit_svi_slice`` itself when no quasi-explicit candidate is butterfly-free. It is a pure
function of arrays (log-moneyness, vols, weights); no calibration state or result flows
back into the chain. A second smile fitter written here only to respect the layer
order (say, a polynomial in k) would follow the steep short-dated crypto smiles less
faithfully than the SVI every later fit uses, so the exception is deliberate.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from volcal._typing import BoolArray, FloatArray, IntArray, UIntArray
from volcal.errors import DataError
from volcal.market.chain import OptionChain
from volcal.market.flags import Flag
from volcal.market.forwards import estimate_forwards
from volcal.quality.policy import QualityPolicy
from volcal.quality.why import QuoteValues

#: Bits :func:`clean` computes (cleared before re-cleaning a cleaned chain).
CLEAN_FLAGS = Flag(
    Flag.EXPIRED
    | Flag.NEAR_EXPIRY
    | Flag.CROSSED
    | Flag.LOCKED
    | Flag.WIDE_SPREAD
    | Flag.STALE
    | Flag.BELOW_INTRINSIC
    | Flag.ABOVE_BOUND
    | Flag.PARITY
    | Flag.MONOTONICITY
    | Flag.CONVEXITY
    | Flag.CALENDAR
    | Flag.OUTLIER
    | Flag.DUPLICATE
    | Flag.NO_FORWARD
    | Flag.IV_FAILED
    | Flag.ITM
)

_VOL_FLOOR = 0.0025  # quarter vol point: smallest half spread used to scale residuals
_EPS = 1e-12


def _bit(mask: BoolArray, flag: Flag) -> UIntArray:
    return np.where(mask, np.uint32(flag), np.uint32(0)).astype(np.uint32)


def _ivs(p: FloatArray, x: FloatArray, t: FloatArray, is_call: BoolArray) -> FloatArray:
    """Implied vols of forward-unit prices (NaN where there is none; never warns)."""
    from volcal.black import implied_vol

    out = np.full(p.size, np.nan)
    ok = np.isfinite(p) & (p > 0) & np.isfinite(x) & (x > 0) & (t > 0)
    if ok.any():
        res = implied_vol(p[ok], 1.0, x[ok], t[ok], is_call[ok], full_output=True)
        out[ok] = res.vol
    return out


def _ivs3(
    pm: FloatArray, pb: FloatArray, pa: FloatArray, x: FloatArray, t: FloatArray, is_call: BoolArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`_ivs` of mid, bid and ask prices in one implied-vol call (element by
    element the same vols)."""
    n = pm.size
    out = _ivs(np.concatenate([pm, pb, pa]), np.tile(x, 3), np.tile(t, 3), np.tile(is_call, 3))
    return out[:n], out[n : 2 * n], out[2 * n :]


def _key_groups(expiry: Any, strike: FloatArray) -> IntArray:
    """Group number of every (expiry, strike) pair, numbered in sorted key order: what
    ``np.unique(np.rec.fromarrays([expiry_ns, strike]), return_inverse=True)[1]`` gives,
    by one lexsort instead of a sort of records."""
    e = np.asarray(expiry).view(np.int64)
    order = np.lexsort((strike, e))
    es, ks = e[order], strike[order]
    new = np.ones(order.size, dtype=np.int64)
    new[1:] = (es[1:] != es[:-1]) | (ks[1:] != ks[:-1])
    group = np.empty(order.size, dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    return group


def _duplicates(chain: OptionChain, two_sided: BoolArray, spread: FloatArray) -> BoolArray:
    """All but the best quote of each (expiry, strike, type): two-sided first, then the
    tightest, then the most recent."""
    exp = chain.expiry.view(np.int64)
    qt = chain.quote_time.view(np.int64)  # NaT is the smallest int64: oldest
    sp = np.where(np.isfinite(spread), spread, np.inf)
    order = np.lexsort((-qt, sp, ~two_sided, chain.is_call, chain.strike, exp))
    e, k, c = exp[order], chain.strike[order], chain.is_call[order]
    same = np.zeros(order.size, dtype=bool)
    same[1:] = (e[1:] == e[:-1]) & (k[1:] == k[:-1]) & (c[1:] == c[:-1])
    dup = np.zeros(order.size, dtype=bool)
    dup[order] = same
    return dup


def _itm_with_twin(chain: OptionChain, alive: BoolArray) -> BoolArray:
    """In-the-money quotes whose out-of-the-money twin (same expiry and strike) is alive."""
    x = chain.strike / chain.forward
    itm = np.where(chain.is_call, x < 1.0, x > 1.0) & np.isfinite(x)
    otm_alive = alive & ~itm & np.isfinite(x) & (x != 1.0)
    group = _key_groups(chain.expiry, chain.strike)
    has_otm = np.zeros(group.max() + 1 if group.size else 0, dtype=bool)
    np.logical_or.at(has_otm, group[otm_alive], True)
    return itm & has_otm[group]


def strike_arbitrage(
    x: FloatArray,
    bid: FloatArray,
    ask: FloatArray,
    is_call: bool,
) -> tuple[BoolArray, BoolArray, FloatArray, FloatArray]:
    """Monotonicity and convexity violations of one expiry and type, strikes sorted,
    and by how much (the locked-in profit in forward units; NaN where none).

    Prices and strikes in forward units (price / (D F), x = K / F). A call must fall
    in strike with slope in [-1, 0] (puts rise, slope in [0, 1]) and be convex.
    """
    n = x.size
    mono = np.zeros(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    mono_by = np.full(n, np.nan)
    conv_by = np.full(n, np.nan)
    if n < 2:
        return mono, conv, mono_by, conv_by
    b = np.where(np.isfinite(bid) & (bid > 0), bid, 0.0)
    a = np.where(np.isfinite(ask) & (ask > 0), ask, np.inf)
    dx = np.diff(x)
    tol = _EPS * np.maximum(a[:-1], 1.0)
    if is_call:
        # buy the lower-strike call at ask, sell the higher one at bid: a profit
        cheap_by = b[1:] - a[:-1]
        # sell the lower-strike call at bid, buy the higher at ask: worth at most dx
        steep_by = b[:-1] - a[1:] - dx
    else:
        cheap_by = b[:-1] - a[1:]
        steep_by = b[1:] - a[:-1] - dx
    if is_call:  # the tests exactly as written before the amounts were kept
        cheap = b[1:] > a[:-1] + tol
        steep = b[:-1] - a[1:] > dx + tol
    else:
        cheap = b[:-1] > a[1:] + tol
        steep = b[1:] - a[:-1] > dx + tol
    bad = cheap | steep
    mono[:-1] |= bad
    mono[1:] |= bad
    with np.errstate(invalid="ignore"):
        by = np.where(
            bad,
            np.fmax(np.where(cheap, cheap_by, np.nan), np.where(steep, steep_by, np.nan)),
            np.nan,
        )
    mono_by[:-1] = np.fmax(mono_by[:-1], by)
    mono_by[1:] = np.fmax(mono_by[1:], by)
    if n >= 3:
        w = (x[2:] - x[1:-1]) / (x[2:] - x[:-2])
        wing = w * a[:-2] + (1.0 - w) * a[2:]
        conv[1:-1] = b[1:-1] > wing + _EPS * np.maximum(wing, 1.0)
        conv_by[1:-1] = np.where(conv[1:-1], b[1:-1] - wing, np.nan)
    return mono, conv, mono_by, conv_by


def _strike_arbitrage_blocks(
    x: FloatArray, bid: FloatArray, ask: FloatArray, is_call: BoolArray, key: Any
) -> tuple[BoolArray, BoolArray, FloatArray, FloatArray]:
    """:func:`strike_arbitrage` of every block of equal ``key`` at once (quotes sorted by
    block, then strike; each block one expiry and type): the same tests on the same
    numbers element by element, pairs and triples that straddle two blocks masked out."""
    n = x.size
    mono = np.zeros(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    mono_by = np.full(n, np.nan)
    conv_by = np.full(n, np.nan)
    if n < 2:
        return mono, conv, mono_by, conv_by
    pair = key[1:] == key[:-1]
    call = is_call[:-1]
    b = np.where(np.isfinite(bid) & (bid > 0), bid, 0.0)
    a = np.where(np.isfinite(ask) & (ask > 0), ask, np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dx = np.diff(x)
        tol = _EPS * np.maximum(a[:-1], 1.0)
        cheap_by = np.where(call, b[1:] - a[:-1], b[:-1] - a[1:])
        steep_by = np.where(call, b[:-1] - a[1:] - dx, b[1:] - a[:-1] - dx)
        cheap = pair & np.where(call, b[1:] > a[:-1] + tol, b[:-1] > a[1:] + tol)
        steep = pair & np.where(call, b[:-1] - a[1:] > dx + tol, b[1:] - a[:-1] > dx + tol)
        bad = cheap | steep
        mono[:-1] |= bad
        mono[1:] |= bad
        by = np.where(
            bad,
            np.fmax(np.where(cheap, cheap_by, np.nan), np.where(steep, steep_by, np.nan)),
            np.nan,
        )
        mono_by[:-1] = np.fmax(mono_by[:-1], by)
        mono_by[1:] = np.fmax(mono_by[1:], by)
        if n >= 3:
            triple = pair[:-1] & pair[1:]
            w = (x[2:] - x[1:-1]) / (x[2:] - x[:-2])
            wing = w * a[:-2] + (1.0 - w) * a[2:]
            conv[1:-1] = triple & (b[1:-1] > wing + _EPS * np.maximum(wing, 1.0))
            conv_by[1:-1] = np.where(conv[1:-1], b[1:-1] - wing, np.nan)
    return mono, conv, mono_by, conv_by


def _parity_breaks(
    chain: OptionChain, sel: BoolArray, pb: FloatArray, pa: FloatArray, slack: float
) -> tuple[BoolArray, FloatArray]:
    """Call/put pairs at one strike whose executable interval of C - P misses 1 - K/F
    (forward units) by more than ``slack``, and the miss."""
    out = np.zeros(len(chain), dtype=bool)
    miss = np.full(len(chain), np.nan)
    rows = np.flatnonzero(sel)
    if rows.size < 2:
        return out, miss
    group = _key_groups(chain.expiry[rows], chain.strike[rows])
    calls = chain.is_call[rows]
    ng = group.max() + 1
    ci = np.full(ng, -1)
    pi = np.full(ng, -1)
    ci[group[calls]] = rows[calls]
    pi[group[~calls]] = rows[~calls]
    both = (ci >= 0) & (pi >= 0)
    c, p = ci[both], pi[both]
    target = 1.0 - chain.strike[c] / chain.forward[c]
    lo = pb[c] - pa[p]
    hi = pa[c] - pb[p]
    broken = (target < lo - slack) | (target > hi + slack)
    out[c[broken]] = True
    out[p[broken]] = True
    by = np.maximum(lo - target, target - hi)[broken]
    miss[c[broken]] = by
    miss[p[broken]] = by
    return out, miss


def _calendar(
    chain: OptionChain,
    sel: BoolArray,
    t: FloatArray,
    ivb: FloatArray,
    iva: FloatArray,
    expiries: Any = None,
) -> tuple[BoolArray, FloatArray]:
    """Later-expiry quotes whose ask total variance is below the earlier expiry's bid
    total variance (linearly interpolated in log-moneyness, inside its quoted range),
    and that earlier bid total variance."""
    out = np.zeros(len(chain), dtype=bool)
    ref_w = np.full(len(chain), np.nan)
    k = chain.log_moneyness
    prev: tuple[FloatArray, FloatArray] | None = None
    for e in chain.expiries if expiries is None else expiries:
        rows = np.flatnonzero(sel & (chain.expiry == e))
        if rows.size == 0:
            continue
        order = rows[np.argsort(k[rows])]
        kk = k[order]
        wb = np.where(np.isfinite(ivb[order]), ivb[order], 0.0) ** 2 * t[order]
        wa = iva[order] ** 2 * t[order]
        if prev is not None:
            pk, pw = prev
            inside = (kk >= pk[0]) & (kk <= pk[-1])
            ref = np.interp(kk, pk, pw)
            bad = inside & np.isfinite(wa) & (wa < ref * (1.0 - 1e-9))
            out[order[bad]] = True
            ref_w[order[bad]] = ref[bad]
        if kk.size >= 2:
            prev = (kk, wb)
    return out, ref_w


def _outliers(
    chain: OptionChain,
    sel: BoolArray,
    t: FloatArray,
    ivm: FloatArray,
    ivb: FloatArray,
    iva: FloatArray,
    policy: QualityPolicy,
    expiries: Any = None,
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Quotes far from a robust first-pass SVI smile of their expiry (bisquare IRLS),
    each quote's distance ``z`` in half spreads and the limit ``threshold x scale``
    it was held to (NaN outside the pass)."""
    from volcal.models.svi import SVI
    from volcal.quality._svi_fast import fit_slice, robust_smile_distance

    out = np.zeros(len(chain), dtype=bool)
    z_all = np.full(len(chain), np.nan)
    limit = np.full(len(chain), np.nan)
    k = chain.log_moneyness
    for e in chain.expiries if expiries is None else expiries:
        rows = np.flatnonzero(sel & (chain.expiry == e))
        if rows.size < 6:  # fewer quotes than a robust 5-parameter smile needs
            continue
        kk, vm, tt = k[rows], ivm[rows], float(t[rows[0]])
        half = 0.5 * (np.minimum(iva[rows], vm + 1.0) - np.nan_to_num(ivb[rows], nan=0.0))
        half = np.maximum(half, _VOL_FLOOR)
        done, z, scale = robust_smile_distance(
            np.ascontiguousarray(kk), np.ascontiguousarray(vm), tt, half,
            float(policy.outlier_threshold),
        )  # fmt: skip
        if not done:  # the same pass uncompiled, with fit_svi_slice's fallback
            robust = np.ones(rows.size)
            z = np.zeros(rows.size)
            scale = 1.0
        for _ in range(0 if done else 4):
            wts = robust / half
            if np.count_nonzero(wts > 0) < 6:
                break
            w_fit = np.maximum(wts, 1e-12)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fast = fit_slice(kk, vm, tt, w_fit, n_levels=1)
                if fast is None:
                    # no quasi-explicit candidate passed: fit_svi_slice's constrained
                    # fallback (imported only here: SciPy's optimizers load with it)
                    from volcal.models.svi_fit import fit_svi_slice

                    smile = fit_svi_slice(kk, vm, tt, w_fit, n_levels=1)
                else:
                    smile = fast
            assert isinstance(smile, SVI)
            fitted = smile.implied_vol(kk, tt)
            z = (vm - fitted) / half
            scale = max(1.4826 * float(np.median(np.abs(z))), 1.0)
            u = z / (policy.outlier_threshold * scale)
            robust = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
        far = np.abs(z) > policy.outlier_threshold * scale
        far &= np.abs(z * half) > policy.outlier_min_vol
        out[rows[far]] = True
        z_all[rows] = z * half  # in vol (decimal)
        limit[rows] = policy.outlier_threshold * scale * half
    return out, z_all, limit


def clean(chain: OptionChain, policy: QualityPolicy | None = None) -> OptionChain:
    """Flag the quotes of ``chain`` (nothing is removed) and establish forwards.

    Parameters
    ----------
    chain : OptionChain
        Any chain (from ``volcal.read_chain`` or ``OptionChain.from_arrays``).
    policy : QualityPolicy, optional
        Thresholds and the flags that exclude a quote (default ``QualityPolicy()``).

    Returns
    -------
    OptionChain
        A copy with ``forward``/``discount`` set per expiry and ``flags`` updated; its
        ``usable()`` applies the policy's exclusions. ``meta`` records the policy and
        the forward report (read them back with :func:`quality_report`).

    Raises
    ------
    DataError
        If ``chain`` is not an ``OptionChain``.

    Examples
    --------
    >>> import volcal
    >>> ch = volcal.OptionChain.from_arrays(
    ...     underlying="BTC", snapshot="2026-01-07T09:00Z", expiry="2026-02-27T08:00Z",
    ...     strike=[90e3, 100e3, 105e3], is_call=[False, True, True],
    ...     bid=[0.02, 0.03, 0.04], ask=[0.021, 0.031, 0.035], forward=95e3)
    >>> volcal.clean(ch).flag_counts()
    {'crossed': 1}
    """
    if not isinstance(chain, OptionChain):
        raise DataError(f"clean() needs an OptionChain, got {type(chain).__name__}")
    policy = policy or QualityPolicy()
    base = chain.flags
    if chain.meta.get("cleaned"):
        base = base & np.uint32(~int(CLEAN_FLAGS) & 0xFFFFFFFF)
    ch, fwd_report = estimate_forwards(
        chain.replace(flags=base.astype(np.uint32)),
        method=policy.forwards,
        tolerance_bps=policy.forward_tolerance_bps,
    )
    n = len(ch)
    f = ch.flags.copy()
    t = ch.t
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd_ok = np.isfinite(ch.forward) & (ch.forward > 0)
        f |= _bit(~fwd_ok, Flag.NO_FORWARD)
        negative = (ch.bid < 0) | (ch.ask < 0) | (ch.mark < 0)
        invalid = ~np.isfinite(ch.strike) | ~(ch.strike > 0) | np.isnat(ch.expiry) | negative
        f |= _bit(invalid, Flag.INVALID)
        f |= _bit(~np.isnat(ch.expiry) & (t <= 0), Flag.EXPIRED)
        f |= _bit((t > 0) & (t < policy.min_days / 365.0), Flag.NEAR_EXPIRY)
        has_bid = ch.bid > 0
        has_ask = ch.ask > 0
        f |= _bit(~has_bid, Flag.MISSING_BID)
        f |= _bit(~has_ask, Flag.MISSING_ASK)
        f |= _bit(~has_bid & ~has_ask, Flag.ZERO_PRICE)
        two = has_bid & has_ask
        f |= _bit(two & (ch.bid > ch.ask), Flag.CROSSED)
        f |= _bit(two & (ch.bid == ch.ask), Flag.LOCKED)
        age = (ch.snapshot64 - ch.quote_time) / np.timedelta64(1, "s")
        f |= _bit(~np.isnat(ch.quote_time) & (age > policy.max_quote_age_s), Flag.STALE)
        spread = np.where(two, ch.ask - ch.bid, np.nan)
        sane = two & (ch.bid <= ch.ask)
        f |= _bit(_duplicates(ch, sane, np.where(sane, spread, np.nan)), Flag.DUPLICATE)

        # prices in forward units and no-arbitrage bounds
        x = ch.strike / ch.forward
        pb = np.where(has_bid, ch.forward_price("bid"), np.nan)
        pa = np.where(has_ask, ch.forward_price("ask"), np.nan)
        pm = np.where(two & (ch.bid <= ch.ask), 0.5 * (pb + pa), np.nan)
        intrinsic = np.where(ch.is_call, np.maximum(1.0 - x, 0.0), np.maximum(x - 1.0, 0.0))
        upper = np.where(ch.is_call, 1.0, x)
        tol = _EPS * np.maximum(upper, 1.0)
        below = (pm < intrinsic - tol) | (pa < intrinsic - tol)
        above = (pm >= upper - tol) | (pb > upper + tol)
        f |= _bit(below & fwd_ok, Flag.BELOW_INTRINSIC)
        f |= _bit(above & fwd_ok, Flag.ABOVE_BOUND)

        ivm, ivb, iva = _ivs3(pm, pb, pa, x, t, ch.is_call)
        f |= _bit(np.isfinite(pm) & fwd_ok & (t > 0) & ~np.isfinite(ivm), Flag.IV_FAILED)
        rel = spread / np.where(np.isfinite(pm), 0.5 * (ch.bid + ch.ask), np.nan)
        vol_spread = np.where(np.isfinite(iva), iva, np.inf) - np.where(np.isfinite(ivb), ivb, 0.0)
        wide = (rel > policy.max_relative_spread) | (
            np.isfinite(ivm) & (vol_spread > policy.max_vol_spread)
        )
        f |= _bit(two & wide, Flag.WIDE_SPREAD)

    excl = np.uint32(int(policy.exclude) & ~int(Flag.ITM))
    alive = (f & excl) == 0
    f |= _bit(_itm_with_twin(ch, alive), Flag.ITM)

    # static arbitrage between the surviving quotes (executable prices)
    mono = np.zeros(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    mono_by = np.full(n, np.nan)
    conv_by = np.full(n, np.nan)
    exps, group = np.unique(ch.expiry, return_inverse=True)
    live = np.flatnonzero(alive)
    # live quotes by (expiry, type), each block by strike (stable: ties keep row order)
    order = live[np.lexsort((x[live], ch.is_call[live], group.ravel()[live]))]
    key = 2 * group.ravel()[order] + ch.is_call[order]
    m, c, m_by, c_by = _strike_arbitrage_blocks(
        x[order], pb[order], pa[order], ch.is_call[order], key
    )
    mono[order] = m
    conv[order] = c
    mono_by[order] = m_by
    conv_by[order] = c_by
    f |= _bit(mono, Flag.MONOTONICITY)
    f |= _bit(conv, Flag.CONVEXITY)
    pair_break, pair_miss = _parity_breaks(ch, alive & two, pb, pa, policy.parity_slack)
    f |= _bit(pair_break, Flag.PARITY)

    # smile-level checks on the quotes a fit would use
    used = ((f & np.uint32(int(policy.exclude))) == 0) & np.isfinite(ivm)
    cal, cal_ref = _calendar(ch, used, t, ivb, iva, exps)
    f |= _bit(cal, Flag.CALENDAR)
    out, dev, limit = _outliers(ch, used, t, ivm, ivb, iva, policy, exps)
    f |= _bit(out, Flag.OUTLIER)
    values = QuoteValues(
        instrument=ch.instrument,
        days=t * 365.0,
        age_s=np.where(np.isnat(ch.quote_time), np.nan, age),
        rel_spread=rel,
        vol_spread=np.where(np.isfinite(iva) & np.isfinite(ivb), iva - ivb, np.nan),
        iv_mid=ivm,
        moneyness=x,
        mid=pm,
        bid=pb,
        ask=pa,
        intrinsic=intrinsic,
        upper=upper,
        monotonicity_by=mono_by,
        convexity_by=conv_by,
        parity_miss=pair_miss,
        calendar_ask_w=np.where(cal, iva**2 * t, np.nan),
        calendar_ref_w=cal_ref,
        outlier_dev=dev,
        outlier_limit=limit,
    )

    meta: dict[str, Any] = dict(ch.meta)
    meta.update(
        cleaned=True,
        exclude=int(policy.exclude),
        quality_policy=policy,
        forward_report=fwd_report,
        quality_values=values,
    )
    return ch.replace(flags=f.astype(np.uint32), meta=meta)


__all__ = ["CLEAN_FLAGS", "clean"]
