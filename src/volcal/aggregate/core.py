"""Several venues' chains -> one consolidated, manipulation-resistant chain.

Method
------
1. **Common terms.** Each venue's quotes become implied vols with the venue's own forward
   and discount (:meth:`OptionChain.forward_price`: coin x forward for inverse venues,
   discounted USD for linear ones), so the basis between venues and their settlement
   conventions drop out. A venue without forwards gets them from put-call parity
   (:func:`volcal.market.forwards.estimate_forwards`).
2. **Staleness.** A venue's time is the median of its quote times (its snapshot where
   they are unknown); a venue lagging the freshest one by more than
   ``policy.max_lag_s`` is ``stale``: its quotes get ``venue_stale`` and take no part.
3. **Consensus per strike and expiry** (instrument-equivalent: same expiry, strike and
   call/put): the weighted median of the venues' mid vols, weights
   ``freshness x depth / spread`` with ``spread = max(ask vol - bid vol, spread_floor)``,
   ``depth = sqrt(1 + min(bid size, ask size))`` in coin (1 where unknown) and
   ``freshness = 2^(-lag / halflife)``. A weighted median needs a weighted majority to
   move, so one venue cannot drag it; with two venues the tighter, deeper one wins.
4. **Rejection.** A quote whose bid-ask vol interval misses the consensus by more than
   ``reject_threshold x max(1.4826 MAD, min_scale)`` (MAD: weighted median absolute
   deviation of the group) is a ``venue_outlier``, and so is a crossed quote (bid above
   its own ask); only groups quoted by at least one other venue are judged. A spoofed
   bid above the other venues' asks misses the consensus too.
5. **Quarantine.** A venue with at least ``quarantine_share`` of its compared quotes
   rejected (and ``min_compared`` compared) deviates persistently: it is
   ``quarantined``, all its quotes get ``venue_quarantined``, and the consensus is
   recomputed without it (``policy.passes``). Given the ``previous`` snapshot's result,
   quarantine also persists in time: a quarantined venue is released only once fewer
   than half the limit of its quotes are outliers, and a venue at half the limit in two
   snapshots running is quarantined.
6. **Consolidated best bid/offer.** Per instrument-equivalent, the highest bid vol and
   the lowest ask vol among the surviving quotes, each from whichever venue shows it; the
   consolidated chain prices them in USD at the consensus forward of the expiry (the
   median forward of the surviving venues), so its implied vols are the venues' own.
   With identical venues it is the single-venue chain.

Nothing is dropped: ``result.quotes`` holds every venue quote (in USD, with its own
forward, instrument ``"venue:name"``) with its reader flags and the venue flags above;
every venue quote also carries ``venue_merged`` (it is represented by the consolidated
row), so fitting ``result.quotes`` by mistake uses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import BoolArray, FloatArray, IntArray, ObjArray
from volcal.aggregate._iv import stack_vols
from volcal.aggregate.policy import AggregationPolicy
from volcal.errors import DataError, ParameterError
from volcal.feeds._common import reader_flags
from volcal.market.chain import OptionChain
from volcal.market.flags import Flag

_MAD_SCALE = 1.4826
#: Vols this close are the same price shown on two venues (a tie for the best).
_TIE = 1e-9
_NOT_COMPARABLE = np.uint32(Flag.INVALID | Flag.EXPIRED | Flag.NO_FORWARD)


@dataclass(frozen=True)
class VenueReport:
    """One venue's part in an aggregation.

    ``status`` is ``"ok"``, ``"quarantined"`` or ``"stale"``; ``reason`` says why (empty
    when ok). Deviations are mid vol minus consensus vol, in vol points, over the
    venue's compared quotes.
    """

    name: str
    status: str
    reason: str
    settlement: str
    snapshot: str
    lag_s: float
    n_quotes: int
    n_two_sided: int
    n_compared: int
    n_outliers: int
    n_best_bid: int
    n_best_ask: int
    median_deviation_vol_pts: float
    median_abs_deviation_vol_pts: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (NaN -> None)."""
        out: dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            out[k] = None if isinstance(v, float) and not np.isfinite(v) else v
        return out


@dataclass(frozen=True, eq=False)
class AggregateResult:
    """Result of :func:`aggregate` (immutable).

    Attributes
    ----------
    chain : OptionChain
        Consolidated chain: one row per instrument-equivalent, linear (USD), the
        consensus forward per expiry, best bid and best ask across the venues.
    quotes : OptionChain
        Every venue quote (USD, own forward and discount, instrument ``"venue:name"``)
        with its flags: the reason a quote did not make the consolidated book.
    venues : tuple of VenueReport
    bid_venue, ask_venue : ndarray of str
        Venue showing the consolidated bid / ask of each row of ``chain`` (``""``: none).
    consensus_vol, consensus_scale : ndarray
        Consensus mid vol and rejection scale per row of ``chain`` (NaN: no venue).
    n_venues : ndarray of int
        Venues in the consensus of each row.
    quote_venue : ndarray of str
        Venue of each row of ``quotes``.
    quote_iv_bid, quote_iv_ask, quote_deviation : ndarray
        Bid and ask vols of each venue quote and its mid vol minus the consensus (NaN
        where not comparable).
    basis : tuple of dict
        Forward of every venue per expiry and its basis to the consensus (bp).
    policy : AggregationPolicy
    elapsed_s : float
    """

    chain: OptionChain
    quotes: OptionChain
    venues: tuple[VenueReport, ...]
    bid_venue: ObjArray
    ask_venue: ObjArray
    consensus_vol: FloatArray
    consensus_scale: FloatArray
    n_venues: IntArray
    quote_venue: ObjArray
    quote_iv_bid: FloatArray
    quote_iv_ask: FloatArray
    quote_deviation: FloatArray
    basis: tuple[dict[str, Any], ...]
    policy: AggregationPolicy
    elapsed_s: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "bid_venue",
            "ask_venue",
            "consensus_vol",
            "consensus_scale",
            "n_venues",
            "quote_venue",
            "quote_iv_bid",
            "quote_iv_ask",
            "quote_deviation",
        ):
            a = np.array(getattr(self, name), copy=True)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def venue(self, name: str) -> VenueReport:
        """The report of one venue."""
        for v in self.venues:
            if v.name == name:
                return v
        raise DataError(f"venue {name!r} is not in the aggregation")

    def consensus_frame(self) -> pd.DataFrame:
        """One row per instrument-equivalent: consensus, best bid/ask and their venues."""
        c = self.chain
        return pd.DataFrame(
            {
                "instrument": c.instrument,
                "expiry": pd.to_datetime(c.expiry).tz_localize("UTC"),
                "strike": c.strike,
                "is_call": c.is_call,
                "k": c.log_moneyness,
                "consensus_vol": self.consensus_vol,
                "scale": self.consensus_scale,
                "n_venues": self.n_venues,
                "bid_usd": c.bid,
                "bid_venue": self.bid_venue,
                "ask_usd": c.ask,
                "ask_venue": self.ask_venue,
            }
        )

    def quotes_frame(self) -> pd.DataFrame:
        """Every venue quote with its vols, deviation from the consensus and reasons."""
        df = self.quotes.to_frame()
        df.insert(0, "venue", self.quote_venue)
        df["iv_bid"] = self.quote_iv_bid
        df["iv_ask"] = self.quote_iv_ask
        df["deviation_vol_pts"] = 100.0 * self.quote_deviation
        return df

    def basis_frame(self) -> pd.DataFrame:
        """Forward per venue and expiry and its basis to the consensus forward (bp)."""
        return pd.DataFrame(list(self.basis))

    def liquidity(self) -> Any:
        """The liquidity / fragmentation report (:func:`volcal.aggregate.liquidity_report`)."""
        from volcal.aggregate.liquidity import liquidity_report

        return liquidity_report(self)

    def summary(self) -> str:
        """A text table: one line per venue."""
        lines = [
            f"Aggregate of {len(self.venues)} venues: {len(self.chain)} instruments, "
            f"{len(self.quotes)} venue quotes, {1000 * self.elapsed_s:.1f} ms",
            f"  {'venue':<10}{'status':<13}{'quotes':>7}{'compared':>9}{'outliers':>9}"
            f"{'best bid':>9}{'best ask':>9}{'median dev':>11}  reason",
        ]
        for v in self.venues:
            lines.append(
                f"  {v.name:<10}{v.status:<13}{v.n_quotes:>7}{v.n_compared:>9}{v.n_outliers:>9}"
                f"{v.n_best_bid:>9}{v.n_best_ask:>9}{v.median_deviation_vol_pts:>+11.2f}  "
                f"{v.reason}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: venues by name, counts, policy and the basis table."""

        def clean(x: Any) -> Any:
            if isinstance(x, float) and not np.isfinite(x):
                return None
            if isinstance(x, (pd.Timestamp,)):
                return x.isoformat()
            return x

        return {
            "underlying": self.chain.underlying,
            "snapshot": self.chain.snapshot.isoformat(),
            "n_instruments": len(self.chain),
            "n_quotes": len(self.quotes),
            "n_two_sided_consolidated": int(
                np.sum(np.isfinite(self.chain.bid) & np.isfinite(self.chain.ask))
            ),
            "venues": {v.name: v.to_dict() for v in self.venues},
            "basis": [{k: clean(v) for k, v in row.items()} for row in self.basis],
            "policy": self.policy.to_dict(),
            "elapsed_s": self.elapsed_s,
        }


# ---------------------------------------------------------------------------- helpers
def _group_wmedian(g: IntArray, x: FloatArray, w: FloatArray, n_groups: int) -> FloatArray:
    """Weighted median of ``x`` per group ``g`` (lower weighted median; NaN if empty)."""
    out = np.full(n_groups, np.nan)
    if g.size == 0:
        return out
    order = np.lexsort((x, g))
    gs, xs, ws = g[order], x[order], w[order]
    tot = np.bincount(gs, weights=ws, minlength=n_groups)
    cw = np.cumsum(ws)
    start = np.searchsorted(gs, np.arange(n_groups), side="left")
    before = np.concatenate(([0.0], cw))[start]
    within = cw - before[gs]
    pick = within >= 0.5 * tot[gs] * (1.0 - 1e-12)
    idx = np.flatnonzero(pick)
    gi = gs[idx]
    first = np.ones(idx.size, dtype=bool)
    first[1:] = gi[1:] != gi[:-1]
    out[gi[first]] = xs[idx[first]]
    return out


def _with_forwards(ch: OptionChain) -> OptionChain:
    if np.all(np.isfinite(ch.forward) & (ch.forward > 0)):
        return ch
    from volcal.market.forwards import estimate_forwards

    out, _ = estimate_forwards(ch, method="chain")
    return out


def _to_usd(ch: OptionChain) -> dict[str, FloatArray]:
    return {
        "bid": ch.usd("bid"),
        "ask": ch.usd("ask"),
        "mark": ch.usd("mark"),
    }


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _canonical_names(und: str, expiry: np.ndarray, strike: FloatArray, call: BoolArray) -> ObjArray:
    """Deribit-style names (``BTC-27MAR26-100000-C``) of the instrument-equivalents."""
    e_i = expiry.view(np.int64)
    days = {}
    for e in np.unique(e_i).tolist():
        t = pd.Timestamp(e)
        days[e] = f"{und}-{t.day}{_MONTHS[t.month - 1]}{t.year % 100:02d}-"
    ks = {k: (f"{k:.0f}" if k.is_integer() else f"{k:g}") for k in set(strike.tolist())}
    return np.array(
        [
            f"{days[e]}{ks[k]}-{'C' if c else 'P'}"
            for e, k, c in zip(e_i.tolist(), strike.tolist(), call.tolist(), strict=True)
        ],
        dtype=object,
    )


def _best_rows(grp: IntArray, cand: BoolArray, weight: FloatArray, ng: int) -> IntArray:
    """Per group, the candidate row of highest weight (-1 where none)."""
    out = np.full(ng, -1, dtype=np.int64)
    r = np.flatnonzero(cand)
    if r.size == 0:
        return out
    o = r[np.lexsort((-weight[r], grp[r]))]
    go = grp[o]
    first = np.ones(o.size, dtype=bool)
    first[1:] = go[1:] != go[:-1]
    out[go[first]] = o[first]
    return out


# ---------------------------------------------------------------------------- main
def aggregate(
    chains: Mapping[str, OptionChain],
    policy: AggregationPolicy | None = None,
    *,
    previous: AggregateResult | None = None,
) -> AggregateResult:
    """Consolidate several venues' chains of one underlying (see the module docs).

    Parameters
    ----------
    chains : mapping of venue name -> OptionChain
        One chain per venue, same underlying (any settlement; forwards are established
        from parity where a chain has none).
    policy : AggregationPolicy, optional
    previous : AggregateResult, optional
        The aggregation of the previous snapshot. Quarantine is then persistent across
        snapshots: a venue quarantined before stays quarantined while at least half the
        share limit of its quotes are still outliers, and a venue at half the limit or more
        in both snapshots is quarantined (a moderate deviation that persists).

    Returns
    -------
    AggregateResult
        ``.chain`` to clean and calibrate, ``.quotes`` with every venue quote and its
        reasons, ``.venues`` with status ``ok`` / ``quarantined`` / ``stale``.

    Raises
    ------
    DataError
        No chains, different underlyings, or something that is not an OptionChain.

    Examples
    --------
    >>> res = volcal.aggregate({"deribit": d, "okx": o, "bybit": b})   # doctest: +SKIP
    >>> res.to_dict()["venues"]["okx"]["status"]                      # doctest: +SKIP
    'ok'
    """
    t0 = time.perf_counter()
    policy = policy or AggregationPolicy()
    if not isinstance(policy, AggregationPolicy):
        raise ParameterError(f"policy must be an AggregationPolicy, got {type(policy).__name__}")
    if previous is not None and not isinstance(previous, AggregateResult):
        raise ParameterError(f"previous must be an AggregateResult, got {type(previous).__name__}")
    if not isinstance(chains, Mapping) or len(chains) == 0:
        raise DataError("aggregate() needs a mapping {venue: OptionChain} with at least one chain")
    names = [str(k) for k in chains]
    if len(set(names)) != len(names):
        raise DataError("aggregate(): venue names must be distinct")
    for k, ch in chains.items():
        if not isinstance(ch, OptionChain):
            raise DataError(
                f"aggregate(): venue {k!r} is a {type(ch).__name__}, not an OptionChain"
            )
        if len(ch) == 0:
            raise DataError(f"aggregate(): venue {k!r} has an empty chain")
    unds = sorted({ch.underlying.upper() for ch in chains.values()})
    if len(unds) > 1:
        raise DataError(f"aggregate(): venues quote different underlyings ({', '.join(unds)})")
    prepared = [_with_forwards(ch) for ch in chains.values()]
    nv = len(prepared)

    # ------------------------------------------------------------ stack the venues
    vi = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in enumerate(prepared)])
    cat: dict[str, Any] = {}
    for name in (
        "expiry",
        "strike",
        "is_call",
        "forward",
        "discount",
        "bid_size",
        "ask_size",
        "open_interest",
        "volume",
        "quote_time",
        "mark_iv",
        "flags",
    ):
        cat[name] = np.concatenate([getattr(c, name) for c in prepared])
    usd = [_to_usd(c) for c in prepared]
    for side in ("bid", "ask", "mark"):
        cat[f"usd_{side}"] = np.concatenate([u[side] for u in usd])
    t_all = np.concatenate([c.t for c in prepared])
    unit_px = {
        side: np.concatenate([c.forward_price(side) for c in prepared])  # type: ignore[arg-type]
        for side in ("bid", "ask")
    }
    iv_bid = stack_vols(unit_px["bid"], cat["strike"], cat["forward"], t_all, cat["is_call"])
    iv_ask = stack_vols(unit_px["ask"], cat["strike"], cat["forward"], t_all, cat["is_call"])
    snap_ns = np.array([c.snapshot.value for c in prepared], dtype=np.int64)
    ref_snap = pd.Timestamp(int(snap_ns.max()), tz="UTC")
    instrument = np.concatenate(
        [
            # per name, not np.char on fixed-width strings (those drop trailing NULs)
            np.array([f"{n}:{x}" for x in c.instrument], dtype=object)
            for n, c in zip(names, prepared, strict=True)
        ]
    )

    # ------------------------------------------------------------ staleness
    venue_time = np.empty(nv)
    for i, c in enumerate(prepared):
        qt = c.quote_time[~np.isnat(c.quote_time)].view(np.int64)
        venue_time[i] = float(np.median(qt)) if qt.size else float(c.snapshot.value)
    ref_time = float(venue_time.max())
    lag_s = (ref_time - venue_time) / 1e9
    stale_v = lag_s > policy.max_lag_s
    qt_all = cat["quote_time"]
    q_ns = np.where(np.isnat(qt_all), venue_time[vi], qt_all.view(np.int64).astype(np.float64))
    q_lag = np.maximum(ref_time - q_ns, 0.0) / 1e9

    # ------------------------------------------------------------ groups
    exp_i = cat["expiry"].view(np.int64)
    order0 = np.lexsort((cat["is_call"], cat["strike"], exp_i))
    e_s, k_s, c_s = exp_i[order0], cat["strike"][order0], cat["is_call"][order0]
    new = np.ones(order0.size, dtype=bool)
    new[1:] = (e_s[1:] != e_s[:-1]) | (k_s[1:] != k_s[:-1]) | (c_s[1:] != c_s[:-1])
    grp = np.empty(order0.size, dtype=np.int64)
    grp[order0] = np.cumsum(new) - 1
    ng = int(new.sum())
    first_of = order0[new]
    comparable = (cat["flags"] & _NOT_COMPARABLE) == 0
    has_b = np.isfinite(iv_bid) & (iv_bid > 0)
    has_a = np.isfinite(iv_ask) & (iv_ask > 0)
    crossed = has_b & has_a & (cat["usd_bid"] > cat["usd_ask"])
    two = has_b & has_a & ~crossed & comparable
    mid = np.where(two, 0.5 * (iv_bid + iv_ask), np.nan)
    width = np.maximum(np.where(two, iv_ask - iv_bid, np.inf), policy.spread_floor)
    depth = np.minimum(cat["bid_size"], cat["ask_size"])
    w_depth = np.where(np.isfinite(depth) & (depth > 0), np.sqrt(1.0 + np.nan_to_num(depth)), 1.0)
    w_fresh = 0.5 ** (q_lag / policy.freshness_halflife_s)
    weight = w_fresh * w_depth / width
    lo = np.where(has_b, iv_bid, -np.inf)
    hi = np.where(has_a, iv_ask, np.inf)
    hi = np.where(crossed, iv_bid, hi)  # a crossed quote claims the whole [ask, bid] range
    lo = np.where(crossed, iv_ask, lo)
    one_side = (has_b | has_a) & comparable

    quarantined = np.zeros(nv, dtype=bool)
    was_q = np.zeros(nv, dtype=bool)
    was_half = np.zeros(nv, dtype=bool)
    if previous is not None:
        prev = {v.name: v for v in previous.venues}
        for i, nm in enumerate(names):
            pv = prev.get(nm)
            if pv is not None:
                was_q[i] = pv.status == "quarantined"
                was_half[i] = pv.n_compared >= policy.min_compared and (
                    pv.n_outliers >= 0.5 * policy.quarantine_share * pv.n_compared
                )
    cons = np.full(ng, np.nan)
    scale = np.full(ng, policy.min_scale)
    nven = np.zeros(ng, dtype=np.int64)
    outlier = np.zeros(vi.size, dtype=bool)
    dev = np.full(vi.size, np.nan)
    compared = np.zeros(vi.size, dtype=bool)
    for _ in range(int(policy.passes)):
        active = two & ~stale_v[vi] & ~quarantined[vi]
        a = np.flatnonzero(active)
        cons = _group_wmedian(grp[a], mid[a], weight[a], ng)
        absdev = np.abs(mid[a] - cons[grp[a]])
        mad = _group_wmedian(grp[a], absdev, weight[a], ng)
        scale = np.maximum(_MAD_SCALE * np.nan_to_num(mad, nan=0.0), policy.min_scale)
        nven = np.bincount(grp[a], minlength=ng)
        n_other = nven[grp] - active.astype(np.int64)
        c_row = cons[grp]
        miss = np.maximum(np.maximum(lo - c_row, c_row - hi), 0.0)
        compared = one_side & ~stale_v[vi] & np.isfinite(c_row) & (n_other >= 1)
        # a crossed quote (bid above its own ask) is never a price anyone can deal on
        outlier = compared & ((miss > policy.reject_threshold * scale[grp]) | crossed)
        dev = np.where(compared & two, mid - c_row, np.nan)
        dev = np.where(compared & ~two, np.where(lo > c_row, lo - c_row, hi - c_row), dev)
        n_cmp = np.bincount(vi[compared], minlength=nv)
        n_out = np.bincount(vi[outlier], minlength=nv)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = n_out / np.maximum(n_cmp, 1)
        enough = n_cmp >= policy.min_compared
        new_q = enough & (share >= policy.quarantine_share) & ~stale_v
        if previous is not None:
            half = share >= 0.5 * policy.quarantine_share
            new_q |= enough & half & ~stale_v & (was_q | was_half)
        # never quarantine every live venue: the consensus would have nothing left
        live = ~stale_v
        if np.all(new_q[live]):
            keep = np.argmin(np.where(live, share, np.inf))
            new_q[keep] = False
        if np.array_equal(new_q | quarantined, quarantined):
            break
        quarantined |= new_q

    # ------------------------------------------------------------ flags of venue quotes
    f = cat["flags"].copy()
    f |= np.where(outlier, np.uint32(Flag.VENUE_OUTLIER), np.uint32(0))
    f |= np.where(quarantined[vi], np.uint32(Flag.VENUE_QUARANTINED), np.uint32(0))
    f |= np.where(stale_v[vi], np.uint32(Flag.VENUE_STALE), np.uint32(0))
    f |= np.where(crossed, np.uint32(Flag.CROSSED), np.uint32(0))
    f |= np.uint32(Flag.VENUE_MERGED)

    # ------------------------------------------------------------ consolidated book
    alive = comparable & ~outlier & ~quarantined[vi] & ~stale_v[vi] & ~crossed
    # a positive price without a vol (bid below intrinsic, ask above the bound) ranks last
    bid_ok = alive & (cat["usd_bid"] > 0)
    ask_ok = alive & (cat["usd_ask"] > 0)
    b_rank = np.where(has_b, iv_bid, -1.0)
    a_rank = np.where(has_a, iv_ask, np.inf)
    best_b = np.full(ng, -np.inf)
    np.maximum.at(best_b, grp[bid_ok], b_rank[bid_ok])
    best_a = np.full(ng, np.inf)
    np.minimum.at(best_a, grp[ask_ok], a_rank[ask_ok])
    at_best_bid = bid_ok & (b_rank >= best_b[grp] - _TIE)
    at_best_ask = ask_ok & (a_rank <= best_a[grp] + _TIE)
    bid_row = _best_rows(grp, at_best_bid, weight, ng)
    ask_row = _best_rows(grp, at_best_ask, weight, ng)
    best_bid = np.where(best_b > 0, best_b, np.nan)
    best_ask = np.where(np.isfinite(best_a), best_a, np.nan)
    # consensus forward per expiry: median over surviving venues
    exps, exp_idx = np.unique(exp_i, return_inverse=True)
    ne = exps.size
    fin = np.isfinite(cat["forward"])
    vg = (vi * ne + exp_idx.ravel())[fin]
    v_fwd = _group_wmedian(vg, cat["forward"][fin], np.ones(vg.size), nv * ne).reshape(nv, ne)
    fwd_exp = np.full(ne, np.nan)
    basis_rows: list[dict[str, Any]] = []
    use = ~quarantined & ~stale_v
    for j in range(ne):
        col = v_fwd[:, j]
        good = np.isfinite(col) & use
        pool = col[good] if good.any() else col[np.isfinite(col)]
        fwd_exp[j] = float(np.median(pool)) if pool.size else np.nan
    for i in range(nv):
        for j in np.flatnonzero(np.isfinite(v_fwd[i])).tolist():
            basis_rows.append(
                {
                    "expiry": pd.Timestamp(int(exps[j]), tz="UTC").isoformat(),
                    "venue": names[i],
                    "forward": float(v_fwd[i, j]),
                    "consensus_forward": float(fwd_exp[j]),
                    "basis_bps": float(1e4 * (v_fwd[i, j] / fwd_exp[j] - 1.0)),
                }
            )
    basis_rows.sort(key=lambda r: (r["expiry"], r["venue"]))
    g_exp = exp_i[first_of]
    g_k = cat["strike"][first_of]
    g_call = cat["is_call"][first_of]
    g_fwd = fwd_exp[np.searchsorted(exps, g_exp)]
    g_exp64 = g_exp.astype("datetime64[ns]")
    snap64 = np.datetime64(ref_snap.tz_localize(None), "ns")
    g_t = ((g_exp64 - snap64) / np.timedelta64(1, "s")).astype(np.float64) / (365.0 * 86400.0)
    from volcal.black import price as black_price

    fwd_row = cat["forward"]
    unit_px = {
        "bid": np.concatenate([c.forward_price("bid") for c in prepared]),
        "ask": np.concatenate([c.forward_price("ask") for c in prepared]),
    }

    def px(side: str, rows: IntArray, vol: FloatArray) -> FloatArray:
        """USD price at the consensus forward: the venue's forward-unit price x F when the
        venue's forward is the consensus one (no basis), else Black at the best vol."""
        out = np.full(ng, np.nan)
        ok = (rows >= 0) & np.isfinite(g_fwd) & (g_t > 0)
        r = rows[ok]
        same = np.abs(fwd_row[r] / g_fwd[ok] - 1.0) <= 1e-13
        direct = unit_px[side][r] * g_fwd[ok]
        has_vol = np.isfinite(vol[ok]) & (vol[ok] > 0)
        val = np.where(same | ~has_vol, direct, np.nan)
        need = ~(same | ~has_vol)
        if need.any():
            idx = np.flatnonzero(ok)[need]
            val[need] = black_price(g_fwd[idx], g_k[idx], g_t[idx], vol[idx], g_call[idx])
        out[ok] = val
        return out

    okb = bid_row >= 0
    oka = ask_row >= 0
    c_bid = px("bid", bid_row, best_bid)
    c_ask = px("ask", ask_row, best_ask)

    def pick(arr: np.ndarray, rows: IntArray, fill: Any) -> np.ndarray:
        out = np.full(ng, fill, dtype=arr.dtype)
        ok = rows >= 0
        out[ok] = arr[rows[ok]]
        return out

    oi = np.full(ng, np.nan)
    vol_sum = np.full(ng, np.nan)
    for arr, out in ((cat["open_interest"], oi), (cat["volume"], vol_sum)):
        fin = np.isfinite(arr)
        s = np.bincount(grp[fin], weights=arr[fin], minlength=ng)
        any_ = np.bincount(grp[fin], minlength=ng) > 0
        out[any_] = s[any_]
    mark_iv = _group_wmedian(
        grp[np.isfinite(cat["mark_iv"])],
        cat["mark_iv"][np.isfinite(cat["mark_iv"])],
        np.ones(int(np.isfinite(cat["mark_iv"]).sum())),
        ng,
    )
    qt_b = pick(qt_all, bid_row, np.datetime64("NaT"))
    qt_a = pick(qt_all, ask_row, np.datetime64("NaT"))
    qt_c = np.where(np.isnat(qt_b), qt_a, np.where(np.isnat(qt_a), qt_b, np.maximum(qt_b, qt_a)))
    names_arr = np.array(names, dtype=object)
    bid_venue = np.where(okb, names_arr[vi[np.maximum(bid_row, 0)]], "")
    ask_venue = np.where(oka, names_arr[vi[np.maximum(ask_row, 0)]], "")
    consolidated = OptionChain(
        underlying=unds[0],
        instrument=_canonical_names(unds[0], g_exp64, g_k, g_call),
        snapshot=ref_snap,
        settlement="linear",
        venue="consolidated",
        index_price=float(np.nanmedian([c.index_price for c in prepared]))
        if np.isfinite([c.index_price for c in prepared]).any()
        else np.nan,
        expiry=g_exp64,
        strike=g_k,
        is_call=g_call,
        bid=c_bid,
        ask=c_ask,
        mark=np.full(ng, np.nan),
        bid_size=pick(cat["bid_size"], bid_row, np.nan),
        ask_size=pick(cat["ask_size"], ask_row, np.nan),
        open_interest=oi,
        volume=vol_sum,
        quote_time=qt_c,
        underlying_price=g_fwd,
        forward=g_fwd,
        discount=np.ones(ng),
        mark_iv=mark_iv,
        flags=np.zeros(ng, dtype=np.uint32),
        meta={
            "format": "volcal.aggregate",
            "venues": names,
            "quarantined": [n for n, q in zip(names, quarantined, strict=True) if q],
            "stale": [n for n, s in zip(names, stale_v, strict=True) if s],
        },
    )
    consolidated = consolidated.with_flags(
        reader_flags(
            consolidated.strike,
            consolidated.expiry,
            consolidated.snapshot,
            consolidated.bid,
            consolidated.ask,
            consolidated.mark,
        )
    )
    quotes = OptionChain(
        underlying=unds[0],
        snapshot=ref_snap,
        settlement="linear",
        venue="+".join(names),
        index_price=consolidated.index_price,
        instrument=instrument,
        expiry=cat["expiry"],
        strike=cat["strike"],
        is_call=cat["is_call"],
        bid=cat["usd_bid"],
        ask=cat["usd_ask"],
        mark=cat["usd_mark"],
        bid_size=cat["bid_size"],
        ask_size=cat["ask_size"],
        open_interest=cat["open_interest"],
        volume=cat["volume"],
        quote_time=qt_all,
        underlying_price=cat["forward"],
        forward=cat["forward"],
        discount=cat["discount"],
        mark_iv=cat["mark_iv"],
        flags=f.astype(np.uint32),
        meta={"format": "volcal.aggregate-quotes", "venues": names},
    )

    # ------------------------------------------------------------ venue reports
    best_b_vg = np.zeros((nv, ng), dtype=bool)
    best_b_vg[vi[at_best_bid], grp[at_best_bid]] = True
    best_a_vg = np.zeros((nv, ng), dtype=bool)
    best_a_vg[vi[at_best_ask], grp[at_best_ask]] = True
    reports = []
    for i, n in enumerate(names):
        m = vi == i
        cm = m & compared
        d = dev[cm & np.isfinite(dev)]
        if stale_v[i]:
            status, reason = (
                "stale",
                (
                    f"quotes lag the freshest venue by {lag_s[i]:.0f} s "
                    f"(limit {policy.max_lag_s:g} s)"
                ),
            )
        elif quarantined[i]:
            share_i = int(np.sum(outlier & m)) / max(int(cm.sum()), 1)
            status, reason = (
                "quarantined",
                (
                    f"{100 * share_i:.0f}% of {int(cm.sum())} compared quotes are outside the "
                    f"consensus (limit {100 * policy.quarantine_share:.0f}%); median deviation "
                    f"{100 * float(np.median(d)) if d.size else float('nan'):+.2f} vol pts"
                    + (
                        "; persistent since the previous snapshot"
                        if share_i < policy.quarantine_share
                        else ""
                    )
                ),
            )
        else:
            status, reason = "ok", ""
        reports.append(
            VenueReport(
                name=n,
                status=status,
                reason=reason,
                settlement=prepared[i].settlement,
                snapshot=prepared[i].snapshot.isoformat(),
                lag_s=float(lag_s[i]),
                n_quotes=int(m.sum()),
                n_two_sided=int(np.sum(m & two)),
                n_compared=int(cm.sum()),
                n_outliers=int(np.sum(outlier & m)),
                n_best_bid=int(best_b_vg[i].sum()),
                n_best_ask=int(best_a_vg[i].sum()),
                median_deviation_vol_pts=100.0 * float(np.median(d)) if d.size else float("nan"),
                median_abs_deviation_vol_pts=100.0 * float(np.median(np.abs(d)))
                if d.size
                else float("nan"),
            )
        )
    return AggregateResult(
        chain=consolidated,
        quotes=quotes,
        venues=tuple(reports),
        bid_venue=bid_venue.astype(object),
        ask_venue=ask_venue.astype(object),
        consensus_vol=cons,
        consensus_scale=scale,
        n_venues=nven,
        quote_venue=names_arr[vi],
        quote_iv_bid=iv_bid,
        quote_iv_ask=iv_ask,
        quote_deviation=dev,
        basis=tuple(basis_rows),
        policy=policy,
        elapsed_s=time.perf_counter() - t0,
    )


__all__ = ["AggregateResult", "VenueReport", "aggregate"]
