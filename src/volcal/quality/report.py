"""``QualityReport``: what cleaning found, per reason and per expiry.

Two counts per reason: ``count`` is every quote carrying the flag (a quote may carry
several), ``primary`` the excluded quotes for which this is the *first* excluding reason
in the order of :data:`PRECEDENCE`, so the primaries add up to ``n_excluded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal.errors import DataError
from volcal.market.chain import OptionChain
from volcal.market.flags import REASONS, Flag
from volcal.market.forwards import ForwardReport
from volcal.quality.policy import QualityPolicy

#: Order in which an excluded quote's main reason is chosen: data defects first, then
#: market defects; an in-the-money quote with a usable twin counts as ``itm`` before
#: its (usually wide) spread, since the twin is why it is not needed.
PRECEDENCE: tuple[Flag, ...] = (
    Flag.INVALID,
    Flag.EXPIRED,
    Flag.NO_FORWARD,
    Flag.DUPLICATE,
    Flag.ZERO_PRICE,
    Flag.MISSING_BID,
    Flag.MISSING_ASK,
    Flag.CROSSED,
    Flag.LOCKED,
    Flag.STALE,
    Flag.NEAR_EXPIRY,
    Flag.BELOW_INTRINSIC,
    Flag.ABOVE_BOUND,
    Flag.IV_FAILED,
    Flag.ITM,
    Flag.WIDE_SPREAD,
    Flag.PARITY,
    Flag.MONOTONICITY,
    Flag.CONVEXITY,
    Flag.CALENDAR,
    Flag.OUTLIER,
)


@dataclass(frozen=True)
class ReasonCount:
    """One row of the report."""

    code: str
    description: str
    count: int
    primary: int
    excluded: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "description": self.description,
            "count": self.count,
            "primary": self.primary,
            "excluded": self.excluded,
        }


@dataclass(frozen=True, eq=False)
class QualityReport:
    """Counts of flagged quotes of a cleaned chain (immutable).

    Attributes
    ----------
    underlying, snapshot : str
    n_quotes, n_used, n_excluded : int
    reasons : tuple of ReasonCount
        Every reason at least one quote carries, in :data:`PRECEDENCE` order.
    per_expiry : pandas.DataFrame
        One row per expiry: ``expiry``, ``days``, ``forward``, ``n_quotes``, ``n_used``
        and one column per reason present (quotes carrying it).
    policy : QualityPolicy
    forwards : ForwardReport or None
        Quoted vs put-call-parity forwards per expiry.
    """

    underlying: str
    snapshot: str
    n_quotes: int
    n_used: int
    n_excluded: int
    reasons: tuple[ReasonCount, ...]
    per_expiry: pd.DataFrame
    policy: QualityPolicy
    forwards: ForwardReport | None

    def count(self, code: str) -> int:
        """Quotes carrying the reason ``code`` (0 when none)."""
        if code not in {c for c, _ in REASONS.values()}:
            raise DataError(f"unknown reason code {code!r}")
        return next((r.count for r in self.reasons if r.code == code), 0)

    def to_frame(self) -> pd.DataFrame:
        """The reasons as a table."""
        return pd.DataFrame([r.to_dict() for r in self.reasons])

    def summary(self) -> str:
        """A few lines: totals, then the reasons."""
        lines = [
            f"Quote quality {self.underlying} {self.snapshot}: {self.n_quotes} quotes, "
            f"{self.n_used} used, {self.n_excluded} excluded"
        ]
        for r in self.reasons:
            tag = "excluded" if r.excluded else "warning"
            lines.append(f"  {r.code:<16} {r.count:>6}  ({tag}; main reason for {r.primary})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view."""
        per = self.per_expiry.copy()
        per["expiry"] = per["expiry"].astype(str)
        per = per.astype(object).where(pd.notna(per), None)
        return {
            "underlying": self.underlying,
            "snapshot": self.snapshot,
            "n_quotes": self.n_quotes,
            "n_used": self.n_used,
            "n_excluded": self.n_excluded,
            "reasons": [r.to_dict() for r in self.reasons],
            "per_expiry": per.to_dict(orient="records"),
            "policy": self.policy.to_dict(),
            "forwards": None if self.forwards is None else self.forwards.to_dict(),
        }


def quality_report(chain: OptionChain, policy: QualityPolicy | None = None) -> QualityReport:
    """The quality report of a chain (cleaned here first unless it already is).

    ``policy`` applies when the chain still needs cleaning; a cleaned chain is reported
    under the policy it was cleaned with.
    """
    from volcal.quality.clean import clean

    if not isinstance(chain, OptionChain):
        raise DataError(f"quality_report() needs an OptionChain, got {type(chain).__name__}")
    if not chain.meta.get("cleaned"):
        chain = clean(chain, policy)
    pol: QualityPolicy = chain.meta.get("quality_policy") or policy or QualityPolicy()
    fl = chain.flags
    excl = np.uint32(int(pol.exclude))
    used = (fl & excl) == 0
    primary = np.zeros(len(chain), dtype=np.uint32)
    remaining = ~used
    for flag in PRECEDENCE:
        if not pol.excludes(flag):
            continue
        hit = remaining & ((fl & np.uint32(flag)) != 0)
        primary[hit] = np.uint32(flag)
        remaining &= ~hit
    reasons = []
    present: list[tuple[Flag, str]] = []
    for flag in PRECEDENCE:
        code, text = REASONS[flag]
        cnt = int(np.count_nonzero(fl & np.uint32(flag)))
        if cnt == 0:
            continue
        present.append((flag, code))
        reasons.append(
            ReasonCount(
                code=code,
                description=text,
                count=cnt,
                primary=int(np.count_nonzero(primary == np.uint32(flag))),
                excluded=pol.excludes(flag),
            )
        )
    t = chain.t
    rows = []
    for e in chain.expiries:
        sel = chain.expiry == e
        fw = chain.forward[sel]
        row: dict[str, Any] = {
            "expiry": pd.Timestamp(e).tz_localize("UTC"),
            "days": float(t[sel][0] * 365.0),
            "forward": float(np.nanmedian(fw)) if np.isfinite(fw).any() else np.nan,
            "n_quotes": int(sel.sum()),
            "n_used": int((sel & used).sum()),
        }
        for flag, code in present:
            row[code] = int(np.count_nonzero(fl[sel] & np.uint32(flag)))
        rows.append(row)
    fwd_report = chain.meta.get("forward_report")
    return QualityReport(
        underlying=chain.underlying,
        snapshot=chain.snapshot.isoformat(),
        n_quotes=len(chain),
        n_used=int(used.sum()),
        n_excluded=int((~used).sum()),
        reasons=tuple(reasons),
        per_expiry=pd.DataFrame(rows),
        policy=pol,
        forwards=fwd_report if isinstance(fwd_report, ForwardReport) else None,
    )


__all__ = ["PRECEDENCE", "QualityReport", "ReasonCount", "quality_report"]
