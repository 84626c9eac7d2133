"""``QualityPolicy``: the thresholds of quote cleaning and which flags exclude a quote.

Every threshold has a default chosen on the real Deribit chains the project ships tests
for (BTC and ETH, 2025-12 to 2026-08); the reasoning is next to each field. A desk
with other habits changes them in one place::

    policy = QualityPolicy(max_vol_spread=0.15, min_days=1.0)
    chain = volcal.clean(chain, policy)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from volcal.errors import ParameterError
from volcal.market.flags import EXCLUDE_DEFAULT, Flag, decode
from volcal.market.forwards import ForwardMethod


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of :func:`volcal.clean` (immutable).

    Attributes
    ----------
    min_days : float
        Quotes expiring sooner than this (in days) get ``near_expiry``. Default 0.25
        (6 hours): Deribit's daily options are still two-sided and informative a day
        out, but in the last hours the smile is dominated by tick size and gamma risk.
    max_relative_spread : float
        ``(ask - bid) / mid`` above this gives ``wide_spread``. Default 1.0 (ask at
        least three times the bid): deep out-of-the-money Deribit quotes one tick wide
        (0.0001 bid / 0.0002 ask, a relative spread of 0.67) still bracket the smile and
        are kept; a quote whose ask is many times its bid says little.
    max_vol_spread : float
        Bid-ask width in implied vol (decimal) above this gives ``wide_spread``.
        Default 0.30 (30 vol points): wider than that, the quote does not locate the
        smile to better than its own level.
    max_quote_age_s : float
        Quotes whose own timestamp is older than this (seconds before the snapshot)
        get ``stale``; quotes without a timestamp are never stale. Default 3600.
    outlier_threshold : float
        A quote is an ``outlier`` when its mid vol is further than this many robust
        standard deviations (in units of its own half spread) from a robust first-pass
        SVI smile of its expiry, ...
    outlier_min_vol : float
        ... and at least this far in vol (decimal), so that a very tight market is not
        punished for the smile's own small misfit. Defaults 5 and 0.02.
    forwards : {"chain", "auto", "quoted", "parity"}
        ``"chain"`` (default): keep the forwards the chain carries (the quoted future of
        each expiry for Deribit files, the user's column for quote tables) and
        establish the missing ones from the quoted underlying or put-call parity;
        otherwise the method of :func:`volcal.market.forwards.estimate_forwards` for
        every expiry.
    forward_tolerance_bps : float
        Quoted and parity forwards differing by more flag the expiry's quotes ``parity``.
    parity_slack : float
        Put-call parity of a call/put pair at one strike is broken (``parity``) when the
        executable interval ``[C_bid - P_ask, C_ask - P_bid]`` misses ``D (F - K)`` by
        more than this fraction of the forward. Default 0.0005 (5 bp of F: the forward
        itself is only known to a few bp).
    exclude : Flag
        Flags that keep a quote out of fitting (default ``EXCLUDE_DEFAULT``); the others
        are warnings reported but not acted on.
    """

    min_days: float = 0.25
    max_relative_spread: float = 1.0
    max_vol_spread: float = 0.30
    max_quote_age_s: float = 3600.0
    outlier_threshold: float = 5.0
    outlier_min_vol: float = 0.02
    forwards: ForwardMethod = "chain"
    forward_tolerance_bps: float = 50.0
    parity_slack: float = 0.0005
    exclude: Flag = field(default=EXCLUDE_DEFAULT)

    def __post_init__(self) -> None:
        for name in (
            "min_days",
            "max_relative_spread",
            "max_vol_spread",
            "max_quote_age_s",
            "outlier_threshold",
            "outlier_min_vol",
            "forward_tolerance_bps",
            "parity_slack",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ParameterError(
                    f"QualityPolicy.{name} must be a finite number >= 0, got {v!r}"
                )
        if self.forwards not in ("chain", "auto", "quoted", "parity"):
            raise ParameterError(
                f"QualityPolicy.forwards must be 'chain', 'auto', 'quoted' or 'parity', "
                f"got {self.forwards!r}"
            )
        try:
            object.__setattr__(self, "exclude", Flag(int(self.exclude)))
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"QualityPolicy.exclude is not a flag set: {self.exclude!r}"
            ) from exc

    def replace(self, **changes: Any) -> QualityPolicy:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    def excludes(self, flag: Flag) -> bool:
        """Whether ``flag`` keeps a quote out of fitting under this policy."""
        return bool(int(self.exclude) & int(flag))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (``exclude`` as a list of reason codes)."""
        d = asdict(self)
        d["exclude"] = decode(int(self.exclude))
        return d


__all__ = ["QualityPolicy"]
