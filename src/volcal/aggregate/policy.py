"""Thresholds of :func:`volcal.aggregate` (immutable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volcal.errors import ParameterError


@dataclass(frozen=True)
class AggregationPolicy:
    """How venues are compared, weighted, quarantined and found stale.

    Attributes
    ----------
    reject_threshold : float
        A quote is a ``venue_outlier`` when the consensus vol of its strike and expiry
        lies further than ``reject_threshold x scale`` outside the quote's own bid-ask
        vol interval, with ``scale = max(1.4826 x MAD, min_scale)`` (MAD: weighted median
        absolute deviation of the venues' mid vols from the consensus). Default 3.
    min_scale : float
        Floor of that scale, in vol (decimal). Default 0.01 (1 vol point): venues quote
        the same option a vol point or so apart in calm markets; with the default
        threshold a quote must miss the consensus by 3 vol points beyond its own spread.
    quarantine_share : float
        A venue is quarantined when at least this share of its compared quotes are
        outliers (the deviation is persistent across its smile, not one bad strike) ...
    min_compared : int
        ... and at least this many of its quotes could be compared. Defaults 0.2 and 5.
    max_lag_s : float
        A venue whose median quote time lags the freshest venue by more than this many
        seconds is ``stale``. Default 300.
    freshness_halflife_s : float
        Consensus weight halves for every this many seconds a quote lags the freshest
        venue. Default 60.
    spread_floor : float
        Floor of the bid-ask width in vol used by the spread weight ``1 / width``.
        Default 0.005 (half a vol point), as the calibration's spread weights.
    passes : int
        Consensus passes; venues quarantined in one pass are left out of the next.
        Default 2.
    """

    reject_threshold: float = 3.0
    min_scale: float = 0.01
    quarantine_share: float = 0.2
    min_compared: int = 5
    max_lag_s: float = 300.0
    freshness_halflife_s: float = 60.0
    spread_floor: float = 0.005
    passes: int = 2

    def __post_init__(self) -> None:
        positive = ("reject_threshold", "min_scale", "max_lag_s", "freshness_halflife_s")
        for name in (*positive, "spread_floor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ParameterError(f"AggregationPolicy.{name} must be > 0, got {v!r}")
        if not 0 < self.quarantine_share <= 1:
            raise ParameterError(
                f"AggregationPolicy.quarantine_share must be in (0, 1], got {self.quarantine_share!r}"
            )
        if int(self.min_compared) != self.min_compared or self.min_compared < 1:
            raise ParameterError(
                f"AggregationPolicy.min_compared must be >= 1, got {self.min_compared!r}"
            )
        if int(self.passes) != self.passes or self.passes < 1:
            raise ParameterError(f"AggregationPolicy.passes must be >= 1, got {self.passes!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


__all__ = ["AggregationPolicy"]
