"""Forwards per expiry: the quoted future/underlying, put-call parity, or both.

Parity relations
----------------
Linear (USD-settled, discounted USD prices ``C``, ``P``, discount factor ``D``)::

    C - P = D (F - K)            =>  F = K + (C - P) / D

With three or more strikes both unknowns follow from a straight line in ``K``:
``C - P = D F - D K`` (slope ``-D``, intercept ``D F``).

Inverse (coin-settled, Deribit BTC/ETH). A call pays ``(S_T - K)^+ / S_T`` coin; its coin
price is an expectation under the coin numeraire, in which the forward ``F`` is the
price of the future, so ``E[1/S_T] = 1/F`` and::

    c - p = E[(S_T - K) / S_T] = 1 - K / F      =>  F = K / (1 - (c - p))

Multiplying by ``F`` gives the USD form ``C - P = F - K`` (``D = 1``), which is how
Deribit converts coin prices to USD (``coin x underlying``). Coin prices need no
conversion price, so the parity forward is independent of the quoted underlying.

Each expiry uses the ``max_pairs`` strikes nearest the money whose call and put are both
quoted on both sides (bid > 0, ask >= bid, not flagged invalid/expired); the forward is
the median of the per-pair values (linear: a line fit, one outlier pass). The pairs of
all expiries come from one sort of the chain (expiry, strike, type), not a join per
expiry; ties in ``|c - p|`` are broken by strike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import ParameterError
from volcal.market.chain import OptionChain, isoformat_utc
from volcal.market.flags import Flag

if TYPE_CHECKING:
    import pandas as pd

ForwardMethod = Literal["auto", "chain", "quoted", "parity"]

#: Default tolerance between quoted and parity forwards, in basis points.
DEFAULT_TOLERANCE_BPS = 50.0


@dataclass(frozen=True)
class ForwardReport:
    """Per-expiry forwards and where they came from.

    Attributes
    ----------
    expiry : tuple of pandas.Timestamp
    t : ndarray
        Years to expiry (ACT/365).
    quoted : ndarray
        Median quoted underlying/future of the expiry (NaN if none).
    parity : ndarray
        Put-call parity forward (NaN if fewer than one usable pair).
    used : ndarray
        Forward written into the chain (NaN if none: quotes flagged ``no_forward``).
    source : tuple of str
        ``"quoted"``, ``"parity"`` or ``"none"`` per expiry.
    n_pairs : ndarray of int
        Call/put pairs used by the parity estimate.
    disagreement_bps : ndarray
        ``1e4 x (parity / quoted - 1)`` (NaN unless both exist).
    discount : ndarray
        Discount factor per expiry (1 for inverse chains or when not derivable).
    flagged : ndarray of bool
        ``|disagreement_bps| > tolerance_bps`` (quotes of the expiry get ``Flag.PARITY``).
    method : str
    tolerance_bps : float
    """

    expiry: tuple[pd.Timestamp, ...]
    t: FloatArray
    quoted: FloatArray
    parity: FloatArray
    used: FloatArray
    source: tuple[str, ...]
    n_pairs: np.ndarray
    disagreement_bps: FloatArray
    discount: FloatArray
    flagged: np.ndarray
    method: str
    tolerance_bps: float

    def __post_init__(self) -> None:
        # read-only arrays (own copies): a report never changes after it is made
        for name in ("t", "quoted", "parity", "used", "n_pairs", "disagreement_bps",
                     "discount", "flagged"):  # fmt: skip
            arr = np.array(getattr(self, name))
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def to_frame(self) -> pd.DataFrame:
        """The per-expiry table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            {
                "expiry": list(self.expiry),
                "t": self.t,
                "quoted": self.quoted,
                "parity": self.parity,
                "used": self.used,
                "source": list(self.source),
                "n_pairs": self.n_pairs,
                "disagreement_bps": self.disagreement_bps,
                "discount": self.discount,
                "flagged": self.flagged,
            }
        )

    def summary(self) -> str:
        """A text table: one line per expiry."""
        lines = [
            f"Forwards ({self.method}, tolerance {self.tolerance_bps:g} bp): "
            f"{len(self.expiry)} expiries, {int(np.sum(self.flagged))} flagged, "
            f"{sum(s == 'none' for s in self.source)} without forward",
            f"  {'expiry':<17}{'t':>8}{'quoted':>13}{'parity':>13}{'used':>13}"
            f"{'source':>8}{'pairs':>6}{'diff bp':>9}{'DF':>9}",
        ]
        for i, e in enumerate(self.expiry):
            mark = " *" if self.flagged[i] else ""
            lines.append(
                f"  {e.strftime('%Y-%m-%d %H:%M'):<17}{self.t[i]:>8.4f}{self.quoted[i]:>13.2f}"
                f"{self.parity[i]:>13.2f}{self.used[i]:>13.2f}{self.source[i]:>8}"
                f"{int(self.n_pairs[i]):>6}{self.disagreement_bps[i]:>9.1f}"
                f"{self.discount[i]:>9.5f}{mark}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""

        def f(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "method": self.method,
            "tolerance_bps": self.tolerance_bps,
            "expiries": [
                {
                    "expiry": e,
                    "t": f(self.t[i]),
                    "quoted": f(self.quoted[i]),
                    "parity": f(self.parity[i]),
                    "used": f(self.used[i]),
                    "source": self.source[i],
                    "n_pairs": int(self.n_pairs[i]),
                    "disagreement_bps": f(self.disagreement_bps[i]),
                    "discount": f(self.discount[i]),
                    "flagged": bool(self.flagged[i]),
                }
                for i, e in enumerate(self.expiry_isoformat())
            ],
        }

    def expiry_isoformat(self) -> list[str]:
        """``[e.isoformat() for e in expiry]``, without making the ``pandas.Timestamp``
        objects when the report keeps its expiries as ``datetime64``."""
        d = self.__dict__
        raw = d.get("_expiry_raw")
        if isinstance(raw, np.ndarray) and "_expiry_ts" not in d:
            return [isoformat_utc(e) for e in raw]
        return [e.isoformat() for e in self.expiry]


class _Expiries:
    """The ``expiry`` field of :class:`ForwardReport`: kept as given; an array of
    naive-UTC ``datetime64`` becomes the public tuple of ``pandas.Timestamp`` (tz UTC)
    the first time it is read."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        try:
            return d["_expiry_ts"]
        except KeyError:
            pass
        raw = d["_expiry_raw"] if "_expiry_raw" in d else d["expiry"]
        if isinstance(raw, np.ndarray):
            import pandas as pd

            raw = tuple(pd.Timestamp(e).tz_localize("UTC") for e in raw)
        d["_expiry_ts"] = raw
        return raw

    def __set__(self, obj: Any, value: Any) -> None:
        d = obj.__dict__
        if isinstance(value, np.ndarray) and value.dtype.kind == "M":
            value = np.array(value, copy=True)
            value.flags.writeable = False
        d["_expiry_raw"] = value
        d.pop("_expiry_ts", None)


ForwardReport.expiry = _Expiries()  # type: ignore[assignment]


def _pair_table(
    chain: OptionChain, group: np.ndarray
) -> tuple[np.ndarray, FloatArray, FloatArray, FloatArray]:
    """Every strike with a two-sided call and put, for all expiries at once.

    Returns ``(g, K, c, p)`` sorted by expiry group ``g`` then strike: the call and put
    mids (chain units) of the first two-sided quote of each (expiry, strike, type) in row
    order. One sort of the whole chain instead of a join per expiry.
    """
    bad = np.uint32(Flag.INVALID | Flag.EXPIRED)
    with np.errstate(invalid="ignore"):
        ok = (
            (chain.bid > 0)
            & (chain.ask >= chain.bid)
            & np.isfinite(chain.ask)
            & ((chain.flags & bad) == 0)
            & np.isfinite(chain.strike)
            & (chain.strike > 0)
        )
    r = np.flatnonzero(ok)
    g, k, call = group[r], chain.strike[r], chain.is_call[r]
    order = np.lexsort((call, k, g))  # stable: the first row of each key comes first
    r, g, k, call = r[order], g[order], k[order], call[order]
    first = np.ones(r.size, dtype=bool)
    first[1:] = (g[1:] != g[:-1]) | (k[1:] != k[:-1]) | (call[1:] != call[:-1])
    r, g, k, call = r[first], g[first], k[first], call[first]
    # within a (group, strike) the put (False) sorts before the call (True)
    both = (g[1:] == g[:-1]) & (k[1:] == k[:-1])
    put_rows, call_rows = r[:-1][both], r[1:][both]
    mid = 0.5 * (chain.bid + chain.ask)
    return g[:-1][both], k[:-1][both], mid[call_rows], mid[put_rows]


def _median(x: FloatArray) -> float:
    """``np.median`` of a finite 1-d array without its overhead (same value: the middle
    element, or half the sum of the two middle ones); NumPy's own for anything else."""
    n = x.size
    if n == 0 or not np.all(np.isfinite(x)):
        return float(np.median(x))
    lo, hi = x.min(), x.max()
    if lo == hi:
        return float(lo)
    srt = np.sort(x)
    h = n // 2
    return float(srt[h]) if n % 2 else float((srt[h - 1] + srt[h]) / 2.0)


def _parity_inverse(
    k: FloatArray, c: FloatArray, p: FloatArray, max_pairs: int
) -> tuple[float, int]:
    diff = c - p
    ok = diff < 1.0
    if not ok.any():
        return np.nan, 0
    diff, k = diff[ok], k[ok]
    near = np.argsort(np.abs(diff), kind="stable")[:max_pairs]
    est = k[near] / (1.0 - diff[near])
    return _median(est), int(near.size)


def _parity_linear(
    k: FloatArray, c: FloatArray, p: FloatArray, max_pairs: int, discount: float | None
) -> tuple[float, float, int]:
    """Linear parity: returns (forward, discount, n_pairs)."""
    y = c - p
    near = np.argsort(np.abs(y), kind="stable")[:max_pairs]
    y, k = y[near], k[near]
    if discount is None and k.size >= 3 and np.ptp(k) > 0:
        keep = np.ones(k.size, dtype=bool)
        for _ in range(2):
            slope, icpt = np.polyfit(k[keep], y[keep], 1)
            resid = y - (icpt + slope * k)
            mad = np.median(np.abs(resid[keep] - np.median(resid[keep])))
            new = np.abs(resid) <= max(5.0 * 1.4826 * mad, 1e-12 * np.max(np.abs(y)) + 1e-300)
            if new.sum() < 3 or np.array_equal(new, keep):
                break
            keep = new
        d = -slope
        if 0.0 < d <= 1.5:
            return float(icpt / d), float(d), int(keep.sum())
    d = 1.0 if discount is None else float(discount)
    est = k + y / d
    return float(np.median(est)), d, int(k.size)


def estimate_forwards(
    chain: OptionChain,
    *,
    method: ForwardMethod = "auto",
    tolerance_bps: float = DEFAULT_TOLERANCE_BPS,
    max_pairs: int = 6,
) -> tuple[OptionChain, ForwardReport]:
    """Establish one forward per expiry and write it into the chain.

    Parameters
    ----------
    chain : OptionChain
    method : {"auto", "chain", "quoted", "parity"}
        ``"auto"``: the quoted underlying/future of the expiry (median of
        ``underlying_price``) when present, else put-call parity. ``"chain"``: keep the
        forwards (and discounts) the chain already carries, per quote, and establish
        only the missing expiries as ``"auto"`` does. ``"quoted"`` or ``"parity"``:
        only that source. Parity is always computed when possible so the
        report shows the disagreement.
    tolerance_bps : float
        Quotes of an expiry whose quoted and parity forwards differ by more get
        ``Flag.PARITY`` (a warning flag).
    max_pairs : int
        Near-the-money call/put pairs used per expiry.

    Returns
    -------
    (OptionChain, ForwardReport)
        The chain with ``forward`` (and, for linear chains, ``discount``) set per
        expiry; quotes of an expiry without forward get ``Flag.NO_FORWARD`` and a NaN
        forward. The input chain is not modified.

    Notes
    -----
    Inverse: ``F = K / (1 - (c - p))`` per pair (coin mids). Linear: fit of
    ``C - P = D F - D K`` on >= 3 strikes when the chain's discount for the expiry is 1
    (not supplied); otherwise ``F = K + (C - P) / D`` with the chain's ``D``.

    Examples
    --------
    >>> from volcal.market.chain import OptionChain
    >>> ch = OptionChain.from_arrays(
    ...     underlying="BTC", snapshot="2026-01-01T08:00Z", expiry="2026-04-01T08:00Z",
    ...     strike=[100.0, 100.0], is_call=[True, False], bid=[0.05, 0.03],
    ...     ask=[0.05, 0.03], settlement="inverse")
    >>> out, rep = estimate_forwards(ch)
    >>> round(float(rep.used[0]), 6), rep.source[0]
    (102.040816, 'parity')
    """
    if method not in ("auto", "chain", "quoted", "parity"):
        raise ParameterError(
            f"method must be 'auto', 'chain', 'quoted' or 'parity', got {method!r}"
        )
    if not (np.isfinite(tolerance_bps) and tolerance_bps >= 0):
        raise ParameterError(f"tolerance_bps must be >= 0, got {tolerance_bps!r}")
    if max_pairs < 1:
        raise ParameterError(f"max_pairs must be >= 1, got {max_pairs!r}")
    exps, group = np.unique(chain.expiry, return_inverse=True)
    group = group.ravel()
    n = exps.size
    snap = chain.snapshot64
    t = np.asarray((exps - snap) / np.timedelta64(1, "s"), dtype=np.float64) / (365.0 * 86400.0)
    quoted = np.full(n, np.nan)
    parity = np.full(n, np.nan)
    used = np.full(n, np.nan)
    disc = np.ones(n)
    n_pairs = np.zeros(n, dtype=np.int64)
    source: list[str] = []
    fwd = np.full(len(chain), np.nan)
    dcol = chain.discount.copy()
    extra = np.zeros(len(chain), dtype=np.uint32)
    inverse = chain.settlement == "inverse"
    # rows of each expiry (ascending) and the call/put pairs of each expiry, by one sort
    by_group = np.argsort(group, kind="stable")
    row_lo = np.searchsorted(group[by_group], np.arange(n + 1))
    pg, pk, pc, pp = _pair_table(chain, group)
    pair_lo = np.searchsorted(pg, np.arange(n + 1))
    under = chain.underlying_price
    own_all = chain.forward
    with np.errstate(invalid="ignore"):
        up_ok = np.isfinite(under) & (under > 0)
        own_ok = np.isfinite(own_all) & (own_all > 0)
    for i in range(n):
        rows = by_group[row_lo[i] : row_lo[i + 1]]
        up = under[rows][up_ok[rows]]
        if up.size:
            quoted[i] = _median(up)
        j0, j1 = pair_lo[i], pair_lo[i + 1]
        if j1 > j0:
            k_i, c_i, p_i = pk[j0:j1], pc[j0:j1], pp[j0:j1]
            if inverse:
                parity[i], n_pairs[i] = _parity_inverse(k_i, c_i, p_i, max_pairs)
            else:
                given = chain.discount[rows]
                d_given = (
                    None
                    if np.all(given == 1.0)
                    else float(np.median(given[np.isfinite(given)]))
                    if np.isfinite(given).any()
                    else None
                )
                parity[i], disc[i], n_pairs[i] = _parity_linear(k_i, c_i, p_i, max_pairs, d_given)
        if not np.isfinite(parity[i]):
            n_pairs[i] = 0
        has_own = own_ok[rows]
        if method == "chain" and has_own.any():
            # keep the chain's own forwards (per quote) and discounts
            own = own_all[rows]
            used[i] = _median(own[has_own])
            ref = under[rows][has_own]  # np.allclose(own, ref, rtol=1e-12), own finite:
            same = bool(
                np.all(
                    np.isfinite(ref) & (np.abs(own[has_own] - ref) <= 1e-8 + 1e-12 * np.abs(ref))
                )
            )
            source.append("quoted" if same else "chain")
            fwd[rows] = np.where(has_own, own, used[i])
            disc[i] = _median(chain.discount[rows])
            continue
        if method == "parity" or (method in ("auto", "chain") and not np.isfinite(quoted[i])):
            used[i], src = parity[i], "parity"
        else:
            used[i], src = quoted[i], "quoted"
        if not (np.isfinite(used[i]) and used[i] > 0):
            used[i], src = np.nan, "none"
            extra[rows] |= np.uint32(Flag.NO_FORWARD)
        source.append(src)
        fwd[rows] = used[i]
        if not inverse and np.isfinite(parity[i]):
            dcol[rows] = disc[i]
        elif not inverse:
            disc[i] = _median(chain.discount[rows])
    with np.errstate(invalid="ignore", divide="ignore"):
        dis = 1e4 * (parity / quoted - 1.0)
    flagged = np.isfinite(dis) & (np.abs(dis) > tolerance_bps)
    if n:
        extra[flagged[group]] |= np.uint32(Flag.PARITY)
    out = chain.replace(forward=fwd, discount=dcol, flags=chain.flags | extra)
    report = ForwardReport(
        expiry=exps,  # type: ignore[arg-type]  # the pandas.Timestamp tuple made when read
        t=t,
        quoted=quoted,
        parity=parity,
        used=used,
        source=tuple(source),
        n_pairs=n_pairs,
        disagreement_bps=dis,
        discount=disc,
        flagged=flagged,
        method=method,
        tolerance_bps=float(tolerance_bps),
    )
    return out, report


__all__ = ["DEFAULT_TOLERANCE_BPS", "ForwardMethod", "ForwardReport", "estimate_forwards"]
