"""Market data model: ``OptionChain``, quality flags, time and settlement conventions."""

from volcal.market.chain import OptionChain, to_utc_datetime64, to_utc_timestamp
from volcal.market.flags import EXCLUDE_DEFAULT, REASONS, Flag, count_reasons, decode
from volcal.market.forwards import ForwardReport, estimate_forwards

__all__ = [
    "EXCLUDE_DEFAULT",
    "REASONS",
    "Flag",
    "ForwardReport",
    "OptionChain",
    "count_reasons",
    "decode",
    "estimate_forwards",
    "to_utc_datetime64",
    "to_utc_timestamp",
]
