"""Quote quality: flag what should not be fitted, and say why.

>>> import volcal
>>> chain = volcal.clean(volcal.read_chain("snapshot.csv", currency="BTC"))  # doctest: +SKIP
>>> print(volcal.quality_report(chain).summary())                           # doctest: +SKIP
>>> volcal.quality.why(chain, "BTC-16JAN26-82000-C")                         # doctest: +SKIP
['wide_spread: (ask - bid) / mid 1.40 > 1.00']
"""

from volcal._lazy import lazy_attributes
from volcal.quality.clean import CLEAN_FLAGS, clean
from volcal.quality.policy import QualityPolicy
from volcal.quality.why import QuoteValues, why

# the quality report is imported on first use (cleaning a chain does not load it)
_LAZY = {
    "PRECEDENCE": "volcal.quality.report",
    "QualityReport": "volcal.quality.report",
    "ReasonCount": "volcal.quality.report",
    "quality_report": "volcal.quality.report",
}


__getattr__, __dir__ = lazy_attributes("volcal.quality", _LAZY, globals())


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
