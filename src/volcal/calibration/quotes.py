"""Quotes prepared for fitting: the one place a chain becomes arrays an optimizer reads.

``prepare_quotes(chain)`` keeps the quotes that pass the exclusion policy (by default
``EXCLUDE_DEFAULT``: everything cleaning flagged as unusable, including the
in-the-money side, whose out-of-the-money twin carries the information), converts them
to undiscounted forward units and computes bid / ask / mid implied vols and Black vega.
Every calibrator (SVI, SABR, SSVI, Heston, ...) starts from the same ``QuoteSet``, so
"which quotes were used and how they were weighted" has a single answer.

Weights
-------
``QuoteSet.weights(kind)`` returns weights for residuals in implied vol:

* ``"spread"``: 1 / max(ask_iv - bid_iv, floor): a quote is trusted as much as its
  market is tight (floor 0.5 vol point, so a locked quote cannot dominate);
* ``"vega"``: Black vega normalised to mean 1 (price-like weighting);
* ``"open_interest"``: sqrt(1 + open interest), normalised;
* ``"uniform"``: ones.

All weights are normalised to mean 1, so an objective's scale does not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from volcal._typing import BoolArray, DateArray, FloatArray, IntArray, ObjArray
from volcal.errors import DataError
from volcal.market.chain import OptionChain
from volcal.models.svi_fit import SPREAD_FLOOR

WeightKind = Literal["spread", "vega", "open_interest", "uniform"]


def inside_bid_ask(iv: FloatArray, iv_bid: FloatArray, iv_ask: FloatArray) -> BoolArray:
    """Whether each model vol lies inside its bid-ask vol interval (1e-12 slack)."""
    iv = np.asarray(iv, dtype=np.float64)
    return (iv >= iv_bid - 1e-12) & (iv <= iv_ask + 1e-12)


@dataclass(frozen=True, eq=False)
class QuoteSet:
    """Quotes used in a fit, in forward units (undiscounted price per unit forward).

    Attributes
    ----------
    row : ndarray of int
        Row of each quote in the source chain (``chain.select(row)`` gives them back).
    instrument, expiry, t, forward, strike, k, is_call :
        Per-quote identification; ``k = ln(K/F)``.
    bid, ask, mid : ndarray
        Prices per unit forward (NaN where the side is absent).
    iv_bid, iv_ask, iv_mid : ndarray
        Black implied vols of bid, ask and mid. A zero or missing bid has
        ``iv_bid = 0`` (the vol interval is [0, iv_ask]); a missing ask has
        ``iv_ask = inf``.
    vega : ndarray
        Black vega per unit forward at ``iv_mid`` (d price / d vol).
    open_interest : ndarray
    slice_index : ndarray of int
        Index into ``expiries`` / ``t_slices`` / ``forward_slices``.
    """

    row: IntArray
    instrument: ObjArray
    expiry: DateArray
    t: FloatArray
    forward: FloatArray
    strike: FloatArray
    k: FloatArray
    is_call: BoolArray
    bid: FloatArray
    ask: FloatArray
    mid: FloatArray
    iv_bid: FloatArray
    iv_ask: FloatArray
    iv_mid: FloatArray
    vega: FloatArray
    open_interest: FloatArray
    slice_index: IntArray
    expiries: DateArray
    t_slices: FloatArray
    forward_slices: FloatArray

    def __len__(self) -> int:
        return int(self.k.size)

    @property
    def n_slices(self) -> int:
        return int(self.expiries.size)

    @property
    def total_variance(self) -> FloatArray:
        """Market total implied variance w = iv_mid^2 t."""
        return self.iv_mid**2 * self.t

    def slice(self, i: int) -> QuoteSet:
        """The quotes of expiry ``i`` only."""
        return self.subset(self.slice_index == i)

    def subset(self, mask: Any) -> QuoteSet:
        """Quotes selected by a mask; the expiry list shrinks to the expiries kept."""
        m = np.asarray(mask)
        keep = np.unique(self.slice_index[m])
        remap = np.full(self.n_slices, -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        per_quote = {
            name: getattr(self, name)[m]
            for name in self.__dataclass_fields__
            if name not in ("expiries", "t_slices", "forward_slices", "slice_index")
        }
        return QuoteSet(
            **per_quote,
            slice_index=remap[self.slice_index[m]],
            expiries=self.expiries[keep],
            t_slices=self.t_slices[keep],
            forward_slices=self.forward_slices[keep],
        )

    def inside_spread(self, iv: FloatArray) -> BoolArray:
        """Whether each model vol lies inside the quote's bid-ask vol interval."""
        return inside_bid_ask(iv, self.iv_bid, self.iv_ask)

    def weights(self, kind: WeightKind | FloatArray = "spread") -> FloatArray:
        """Residual weights normalised to mean 1 (see the module docs)."""
        if not isinstance(kind, str):
            w = np.asarray(kind, dtype=np.float64)
            if w.shape != self.k.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise DataError(f"weights array must hold {len(self)} finite non-negative values")
        elif kind == "spread":
            width = np.where(np.isfinite(self.iv_ask), self.iv_ask - self.iv_bid, np.nan)
            fallback = np.nanmedian(width) if np.any(np.isfinite(width)) else 0.05
            width = np.where(np.isfinite(width), width, 4.0 * fallback)
            w = 1.0 / np.maximum(width, SPREAD_FLOOR)
        elif kind == "vega":
            w = self.vega.copy()
        elif kind == "open_interest":
            w = np.sqrt(1.0 + np.nan_to_num(self.open_interest, nan=0.0))
        elif kind == "uniform":
            w = np.ones_like(self.k)
        else:
            raise DataError(
                f"unknown weights {kind!r}: use spread, vega, open_interest, uniform or an array"
            )
        total = float(np.sum(w))
        if not np.isfinite(total) or total <= 0:
            raise DataError("weights sum to zero: no quote carries any weight")
        return w * (w.size / total)


def black_vega_fwd(k: FloatArray, t: FloatArray, vol: FloatArray) -> FloatArray:
    """Black vega per unit forward, d(price/F)/d sigma = sqrt(t) n(d1): the one Black
    vega of :mod:`volcal.black` (:func:`volcal.black.pricing.unit_vega`)."""
    from volcal.black.pricing import unit_vega

    return unit_vega(k, t, vol)


def prepare_quotes(
    chain: OptionChain,
    *,
    exclude: int | None = None,
    require_bid: bool = True,
) -> QuoteSet:
    """Select and convert the quotes of ``chain`` used for fitting.

    Parameters
    ----------
    chain : OptionChain
        A chain; one not yet cleaned is cleaned here with the default policy
        (``volcal.clean``), which also establishes its forwards.
    exclude : int
        Flag bits that keep a quote out (default: the policy the chain was cleaned
        with, else ``EXCLUDE_DEFAULT``).
    require_bid : bool
        Keep only quotes with a positive bid (a quote nobody bids says little about value).

    Raises
    ------
    DataError
        When no quote survives, naming the chain.
    """
    from volcal.black import implied_vol  # numerics layer, imported on use

    if not chain.meta.get("cleaned"):
        # fitting raw quotes is never what a user means: clean with the default policy
        from volcal.quality import clean

        chain = clean(chain)
    t_all = chain.t
    ok = chain.usable(exclude) & np.isfinite(chain.forward) & (chain.forward > 0)
    ok &= np.isfinite(chain.strike) & (chain.strike > 0) & (t_all > 0)
    ok &= np.isfinite(chain.ask) & (chain.ask > 0)
    if require_bid:
        ok &= np.isfinite(chain.bid) & (chain.bid > 0)
    row = np.flatnonzero(ok)
    if row.size == 0:
        raise DataError(
            f"no usable quotes in {chain.underlying} chain of {chain.snapshot.isoformat()} "
            f"(flags: {chain.flag_counts() or 'none'})"
        )
    sub = chain.select(row)
    t = t_all[row]
    fwd = sub.forward
    strike = sub.strike
    k = np.log(strike / fwd)
    bid = sub.forward_price("bid")
    ask = sub.forward_price("ask")
    mid = sub.forward_price("mid")
    moneyness = strike / fwd
    is_call = sub.is_call
    # full_output: a NaN here is handled (dropped / widened below), not warned about;
    # mid, bid and ask inverted in one call (element by element, as three calls would)
    n_q = mid.size
    iv3 = np.asarray(
        implied_vol(
            np.concatenate([mid, bid, ask]),
            1.0,
            np.tile(moneyness, 3),
            np.tile(t, 3),
            np.tile(is_call, 3),
            full_output=True,
        ).vol
    )
    iv_mid = iv3[:n_q].copy()
    with np.errstate(invalid="ignore"):
        iv_bid = np.where(bid > 0, iv3[n_q : 2 * n_q], 0.0)
        iv_ask = iv3[2 * n_q :].copy()
    # a bid below intrinsic carries no lower bound (0); an ask above the bound no upper bound
    iv_bid = np.where(np.isfinite(iv_bid), iv_bid, 0.0)
    iv_ask = np.where(np.isfinite(iv_ask), iv_ask, np.inf)
    good = np.isfinite(iv_mid) & (iv_mid > 0)
    if not np.all(good):
        row, t, fwd, strike, k = row[good], t[good], fwd[good], strike[good], k[good]
        bid, ask, mid, is_call = bid[good], ask[good], mid[good], is_call[good]
        iv_bid, iv_ask, iv_mid = iv_bid[good], iv_ask[good], iv_mid[good]
        sub = chain.select(row)
        if row.size == 0:
            raise DataError(f"no quote of the {chain.underlying} chain has a mid implied vol")
    expiries, first, slice_index = np.unique(sub.expiry, return_index=True, return_inverse=True)
    t_slices = t[first]  # the maturity of each expiry's first quote
    fwd_slices = _slice_medians(fwd, slice_index, expiries.size)
    return QuoteSet(
        row=row.astype(np.int64),
        instrument=sub.instrument,
        expiry=sub.expiry,
        t=t,
        forward=fwd,
        strike=strike,
        k=k,
        is_call=is_call,
        bid=bid,
        ask=ask,
        mid=mid,
        iv_bid=iv_bid,
        iv_ask=iv_ask,
        iv_mid=iv_mid,
        vega=black_vega_fwd(k, t, iv_mid),
        open_interest=sub.open_interest,
        slice_index=slice_index.astype(np.int64),
        expiries=expiries,
        t_slices=t_slices,
        forward_slices=fwd_slices,
    )


def _slice_medians(x: FloatArray, slice_index: Any, n_slices: int) -> FloatArray:
    """``np.median(x[slice_index == i])`` for every slice, from one sort: the middle
    value, or the mean of the two middle values, of each slice (the same numbers)."""
    order = np.lexsort((x, slice_index))
    xs = x[order]
    counts = np.bincount(slice_index, minlength=n_slices)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lo = start + (counts - 1) // 2
    hi = start + counts // 2
    return np.asarray((xs[lo] + xs[hi]) / 2.0)


def as_quotes(chain: Any) -> QuoteSet:
    """Quotes used for fitting: a ``QuoteSet`` as given, or ``prepare_quotes(chain)``.

    Only out-of-the-money quotes are kept (calls with :math:`K \\ge F`, puts with
    :math:`K < F`, both at :math:`K = F`), which a cleaned chain already guarantees.
    """
    q = chain if isinstance(chain, QuoteSet) else prepare_quotes(chain)
    otm = np.where(q.is_call, q.k >= 0.0, q.k <= 0.0)
    if not np.all(otm):
        if not np.any(otm):
            raise DataError("no out-of-the-money quote to fit")
        q = q.subset(otm)
    return q


def atm_vols(q: QuoteSet) -> FloatArray:
    """Per slice, the mid vol interpolated at the forward (k = 0)."""
    out = np.empty(q.n_slices)
    for s in range(q.n_slices):
        m = q.slice_index == s
        k, iv = q.k[m], q.iv_mid[m]
        order = np.argsort(k)
        out[s] = float(np.interp(0.0, k[order], iv[order]))
    return out


__all__ = [
    "SPREAD_FLOOR",
    "QuoteSet",
    "WeightKind",
    "as_quotes",
    "atm_vols",
    "black_vega_fwd",
    "prepare_quotes",
]
