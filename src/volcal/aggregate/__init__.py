"""Several venues -> one consolidated chain: consensus, venue quarantine, staleness,
depth and the liquidity of a fragmented market.

>>> res = volcal.aggregate({"deribit": d, "okx": o, "bybit": b})   # doctest: +SKIP
>>> fit = volcal.calibrate(volcal.clean(res.chain), "svi")        # doctest: +SKIP
"""

import sys
import types
from typing import Any

from volcal.aggregate.core import AggregateResult, VenueReport, aggregate
from volcal.aggregate.depth import BookDepth, depth_weights, executable_chain, read_book_depth
from volcal.aggregate.liquidity import LiquidityReport, liquidity_report
from volcal.aggregate.policy import AggregationPolicy

__all__ = [
    "AggregateResult",
    "AggregationPolicy",
    "BookDepth",
    "LiquidityReport",
    "VenueReport",
    "aggregate",
    "depth_weights",
    "executable_chain",
    "liquidity_report",
    "read_book_depth",
]


class _CallableModule(types.ModuleType):
    """``volcal.aggregate`` is both this package and the function: importing the package
    makes Python bind the name ``aggregate`` of ``volcal`` to the module, so the module
    itself calls :func:`aggregate`."""

    def __call__(self, *args: Any, **kwargs: Any) -> AggregateResult:
        return aggregate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
