"""Why a quote is (not) used: each flag with the value behind it and the threshold.

``volcal.clean`` keeps, next to the flags, the numbers its checks compared
(:class:`QuoteValues`, in ``chain.meta["quality_values"]``); :func:`why` turns the flags
of one instrument into sentences such as ``"wide_spread: (ask - bid) / mid 1.40 > 1.00"``
using the policy the chain was cleaned with. Values are looked up by instrument name,
so a sub-chain (``chain.select(...)``) of a cleaned chain explains its quotes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import DataError
from volcal.market.chain import OptionChain
from volcal.market.flags import REASONS, Flag
from volcal.market.forwards import ForwardReport

__all__ = ["QuoteValues", "why"]


@dataclass(frozen=True, eq=False)
class QuoteValues:
    """Per-quote numbers behind the flags of :func:`volcal.clean` (one entry per quote
    of the cleaned chain; prices in forward units, price / (D F); NaN where a check did
    not apply).

    Attributes
    ----------
    instrument : ndarray of str
    days, age_s : ndarray
        Days to expiry; age of the quote's own timestamp at the snapshot (seconds).
    rel_spread, vol_spread : ndarray
        ``(ask - bid) / mid``; ask implied vol minus bid implied vol (decimal).
    iv_mid, moneyness, mid, bid, ask, intrinsic, upper : ndarray
        Mid implied vol, ``K / F``, prices and their no-arbitrage bounds.
    monotonicity_by, convexity_by, parity_miss : ndarray
        Locked-in profit of the strike-arbitrage trades; distance of ``1 - K/F`` from
        the pair's executable ``C - P`` interval.
    calendar_ask_w, calendar_ref_w : ndarray
        The quote's ask total variance and the earlier expiry's bid total variance.
    outlier_dev, outlier_limit : ndarray
        Mid vol minus the robust first-pass smile, and the limit it was held to (the
        threshold x robust scale, in vol), both decimal.
    """

    instrument: np.ndarray
    days: FloatArray
    age_s: FloatArray
    rel_spread: FloatArray
    vol_spread: FloatArray
    iv_mid: FloatArray
    moneyness: FloatArray
    mid: FloatArray
    bid: FloatArray
    ask: FloatArray
    intrinsic: FloatArray
    upper: FloatArray
    monotonicity_by: FloatArray
    convexity_by: FloatArray
    parity_miss: FloatArray
    calendar_ask_w: FloatArray
    calendar_ref_w: FloatArray
    outlier_dev: FloatArray
    outlier_limit: FloatArray

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray) and arr.flags.writeable:
                arr = arr.copy()
                arr.flags.writeable = False
                object.__setattr__(self, name, arr)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: one list per field (NaN -> None)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            arr = getattr(self, name)
            if name == "instrument":
                out[name] = [str(v) for v in arr]
            else:
                out[name] = [float(v) if np.isfinite(v) else None for v in arr]
        return out

    def summary(self) -> str:
        return f"QuoteValues of {self.instrument.size} quotes"


def _g(x: float) -> str:
    return f"{x:.4g}"


def _parity_forward(report: ForwardReport | None, expiry: np.datetime64) -> str | None:
    if report is None:
        return None
    for i, e in enumerate(report.expiry):
        if np.datetime64(e.tz_convert("UTC").tz_localize(None), "ns") == expiry and bool(
            report.flagged[i]
        ):
            return (
                f"parity forward {report.parity[i]:.2f} vs quoted {report.quoted[i]:.2f}: "
                f"|{report.disagreement_bps[i]:+.1f}| bp > {report.tolerance_bps:g} bp"
            )
    return None


def _explain(
    flag: Flag,
    v: QuoteValues,
    j: int,
    policy: Any,
    report: ForwardReport | None,
    chain: OptionChain,
    i: int,
) -> str:
    code = REASONS[flag][0]
    if flag == Flag.WIDE_SPREAD:
        parts = []
        if v.rel_spread[j] > policy.max_relative_spread:
            parts.append(
                f"(ask - bid) / mid {v.rel_spread[j]:.2f} > {policy.max_relative_spread:.2f}"
            )
        if np.isfinite(v.iv_mid[j]) and not v.vol_spread[j] <= policy.max_vol_spread:
            width = (
                f"{100 * v.vol_spread[j]:.1f}"
                if np.isfinite(v.vol_spread[j])
                else "unbounded (no implied vol at the bid or the ask)"
            )
            parts.append(
                f"bid-ask width in vol {width} > {100 * policy.max_vol_spread:.1f} vol points"
            )
        return f"{code}: " + ("; ".join(parts) or REASONS[flag][1])
    if flag == Flag.ZERO_PRICE:
        return f"{code}: bid {_g(chain.bid[i])} and ask {_g(chain.ask[i])} (needs one > 0)"
    if flag == Flag.DUPLICATE:
        return (
            f"{code}: {int(np.sum(v.instrument == v.instrument[j]))} quotes of this expiry, "
            "strike and type; the kept one is two-sided, then tightest, then newest"
        )
    if flag == Flag.NO_FORWARD:
        return f"{code}: no forward for the expiry (no quoted underlying, no call/put pair)"
    if flag == Flag.INVALID:
        return (
            f"{code}: strike {_g(chain.strike[i])}, bid {_g(chain.bid[i])}, ask "
            f"{_g(chain.ask[i])}, mark {_g(chain.mark[i])} (needs a strike > 0, an expiry "
            "and no negative price)"
        )
    if flag == Flag.NEAR_EXPIRY:
        return f"{code}: {v.days[j]:.3f} days to expiry < {policy.min_days:g}"
    if flag == Flag.EXPIRED:
        return f"{code}: expiry {-v.days[j]:.3f} days before the snapshot (needs > 0)"
    if flag == Flag.STALE:
        return f"{code}: quote {v.age_s[j]:.0f} s old > {policy.max_quote_age_s:g} s"
    if flag == Flag.MISSING_BID:
        return f"{code}: bid {_g(chain.bid[i])} (needs > 0)"
    if flag == Flag.MISSING_ASK:
        return f"{code}: ask {_g(chain.ask[i])} (needs > 0)"
    if flag in (Flag.CROSSED, Flag.LOCKED):
        unit = "coin" if chain.settlement == "inverse" else "USD"
        rel = ">" if flag == Flag.CROSSED else "="
        return f"{code}: bid {_g(chain.bid[i])} {rel} ask {_g(chain.ask[i])} ({unit})"
    if flag == Flag.BELOW_INTRINSIC:
        use_mid = np.isfinite(v.mid[j]) and v.mid[j] < v.intrinsic[j]
        side, low = ("mid", v.mid[j]) if use_mid else ("ask", v.ask[j])
        return (
            f"{code}: {side} {_g(low)} < intrinsic {_g(v.intrinsic[j])} (forward units, "
            f"K/F {v.moneyness[j]:.4f})"
        )
    if flag == Flag.ABOVE_BOUND:
        high = v.mid[j] if np.isfinite(v.mid[j]) else v.bid[j]
        return f"{code}: price {_g(high)} >= upper bound {_g(v.upper[j])} (forward units)"
    if flag == Flag.IV_FAILED:
        return f"{code}: no implied vol from the mid {_g(v.mid[j])} (forward units)"
    if flag == Flag.ITM:
        return (
            f"{code}: in the money (K/F {v.moneyness[j]:.4f}); the out-of-the-money "
            "quote at this strike is used"
        )
    if flag == Flag.MONOTONICITY and np.isfinite(v.monotonicity_by[j]):
        return (
            f"{code}: a neighbouring strike's executable price crosses this one by "
            f"{_g(v.monotonicity_by[j])} > 0 (forward units)"
        )
    if flag == Flag.CONVEXITY and np.isfinite(v.convexity_by[j]):
        return (
            f"{code}: bid {_g(v.bid[j])} above the interpolated asks of the neighbouring "
            f"strikes by {_g(v.convexity_by[j])} > 0 (forward units)"
        )
    if flag == Flag.PARITY:
        parts = []
        if np.isfinite(v.parity_miss[j]):
            parts.append(
                f"executable C - P misses 1 - K/F by {_g(v.parity_miss[j])} > "
                f"{policy.parity_slack:g} (forward units)"
            )
        fwd = _parity_forward(report, chain.expiry[i])
        if fwd:
            parts.append(fwd)
        return f"{code}: " + ("; ".join(parts) or REASONS[flag][1])
    if flag == Flag.CALENDAR and np.isfinite(v.calendar_ref_w[j]):
        return (
            f"{code}: ask total variance {v.calendar_ask_w[j]:.5f} < the earlier expiry's "
            f"bid total variance {v.calendar_ref_w[j]:.5f} at this log-moneyness"
        )
    if flag == Flag.OUTLIER and np.isfinite(v.outlier_dev[j]):
        return (
            f"{code}: mid vol {100 * v.outlier_dev[j]:+.2f} vol points from the robust "
            f"first-pass smile; |distance| > {100 * v.outlier_limit[j]:.2f} "
            f"({policy.outlier_threshold:g} robust sd of the half spread) and > "
            f"{100 * policy.outlier_min_vol:.2f} vol points"
        )
    return f"{code}: {REASONS[flag][1]}"


def why(chain: OptionChain, instrument: str) -> list[str]:
    """Each flag of ``instrument`` with the value that set it and the threshold.

    Parameters
    ----------
    chain : OptionChain
        A chain returned by :func:`volcal.clean` (or a sub-chain of one). On a chain
        that was not cleaned the reasons are given without values.
    instrument : str

    Returns
    -------
    list of str
        One sentence per flag, e.g. ``"wide_spread: (ask - bid) / mid 1.40 > 1.00"``;
        empty when the quote carries no flag.

    Raises
    ------
    DataError
        If the instrument is not in the chain.

    Examples
    --------
    >>> import volcal
    >>> ch = volcal.OptionChain.from_arrays(
    ...     underlying="BTC", snapshot="2026-01-07T09:00Z", expiry="2026-02-27T08:00Z",
    ...     strike=[90e3, 100e3, 105e3], is_call=[False, True, True],
    ...     bid=[0.02, 0.03, 0.04], ask=[0.021, 0.031, 0.035], forward=95e3)
    >>> volcal.quality.why(volcal.clean(ch), "BTC-27FEB26-105000-C")
    ['crossed: bid 0.04 > ask 0.035 (coin)']
    """
    if not isinstance(chain, OptionChain):
        raise DataError(f"why() needs an OptionChain, got {type(chain).__name__}")
    hits = np.flatnonzero(chain.instrument == instrument)
    if hits.size == 0:
        raise DataError(f"instrument {instrument!r} is not in the chain")
    values = chain.meta.get("quality_values")
    policy = chain.meta.get("quality_policy")
    report = chain.meta.get("forward_report")
    rows = (
        np.flatnonzero(values.instrument == instrument)
        if isinstance(values, QuoteValues)
        else np.array([], dtype=np.int64)
    )
    out: list[str] = []
    for n, i in enumerate(hits):
        bits = int(chain.flags[i])
        j = int(rows[n]) if n < rows.size else -1
        for flag, (code, text) in REASONS.items():
            if not bits & int(flag):
                continue
            line = (
                _explain(flag, values, j, policy, report, chain, int(i))
                if j >= 0 and isinstance(values, QuoteValues) and policy is not None
                else f"{code}: {text}"
            )
            if line not in out:
                out.append(line)
    return out
