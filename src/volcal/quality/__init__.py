"""Quote quality: flag what should not be fitted, and say why.

>>> import volcal
>>> chain = volcal.clean(volcal.read_chain("snapshot.csv", currency="BTC"))  # doctest: +SKIP
>>> print(volcal.quality_report(chain).summary())                           # doctest: +SKIP
>>> volcal.quality.why(chain, "BTC-16JAN26-82000-C")                         # doctest: +SKIP
['wide_spread: (ask - bid) / mid 1.40 > 1.00']
"""

from volcal.quality.clean import CLEAN_FLAGS, clean
from volcal.quality.policy import QualityPolicy
from volcal.quality.report import PRECEDENCE, QualityReport, ReasonCount, quality_report
from volcal.quality.why import QuoteValues, why

__all__ = [
    "CLEAN_FLAGS",
    "PRECEDENCE",
    "QualityPolicy",
    "QualityReport",
    "QuoteValues",
    "ReasonCount",
    "clean",
    "quality_report",
    "why",
]
