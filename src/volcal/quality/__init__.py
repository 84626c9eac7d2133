"""Quote quality: flag what should not be fitted, and say why.

>>> import volcal
>>> chain = volcal.clean(volcal.read_chain("snapshot.csv", currency="BTC"))  # doctest: +SKIP
>>> print(volcal.quality_report(chain).summary())                           # doctest: +SKIP
"""

from volcal.quality.clean import CLEAN_FLAGS, clean
from volcal.quality.policy import QualityPolicy
from volcal.quality.report import PRECEDENCE, QualityReport, ReasonCount, quality_report

__all__ = [
    "CLEAN_FLAGS",
    "PRECEDENCE",
    "QualityPolicy",
    "QualityReport",
    "ReasonCount",
    "clean",
    "quality_report",
]
