"""Per-quote quality flags with reason codes.

Cleaning never deletes a quote: it sets bits in ``OptionChain.flags``. Each bit has a
short code (for tables and JSON) and a sentence (for reports). ``EXCLUDE_DEFAULT`` is
the policy deciding which flags keep a quote out of fitting; the others are warnings.
"""

from __future__ import annotations

from enum import IntFlag

import numpy as np

from volcal._typing import UIntArray


class Flag(IntFlag):
    """Reasons a quote may be unusable or suspicious (bit flags, combinable)."""

    NONE = 0
    INVALID = 1 << 0  # non-positive / non-finite strike, expiry or forward
    EXPIRED = 1 << 1  # expiry at or before the snapshot
    MISSING_BID = 1 << 2
    MISSING_ASK = 1 << 3
    ZERO_PRICE = 1 << 4  # bid and ask both zero / absent, or mark zero
    CROSSED = 1 << 5  # bid > ask
    LOCKED = 1 << 6  # bid == ask
    WIDE_SPREAD = 1 << 7
    STALE = 1 << 8
    BELOW_INTRINSIC = 1 << 9
    ABOVE_BOUND = 1 << 10
    PARITY = 1 << 11  # put-call parity break against the forward
    MONOTONICITY = 1 << 12  # call price not decreasing / put not increasing in strike
    CONVEXITY = 1 << 13  # butterfly arbitrage in strike
    CALENDAR = 1 << 14  # total variance decreasing in expiry at fixed moneyness
    OUTLIER = 1 << 15  # far from a robust first-pass smile
    NEAR_EXPIRY = 1 << 16
    DUPLICATE = 1 << 17
    NO_FORWARD = 1 << 18
    IV_FAILED = 1 << 19  # no implied vol could be computed from the quote
    ITM = 1 << 20  # in the money: the OTM twin carries the information
    # several venues (volcal.aggregate): bits appended, existing ones keep their numbers
    VENUE_OUTLIER = 1 << 21  # far from the cross-venue consensus of its strike and expiry
    VENUE_QUARANTINED = 1 << 22  # its venue deviates persistently from the consensus
    VENUE_STALE = 1 << 23  # its venue's timestamps lag the other venues
    VENUE_MERGED = 1 << 24  # folded into the consolidated best bid/offer row


REASONS: dict[Flag, tuple[str, str]] = {
    Flag.INVALID: ("invalid", "non-positive or non-finite strike, expiry or forward"),
    Flag.EXPIRED: ("expired", "expiry is at or before the snapshot time"),
    Flag.MISSING_BID: ("missing_bid", "no bid"),
    Flag.MISSING_ASK: ("missing_ask", "no ask"),
    Flag.ZERO_PRICE: ("zero_price", "no positive price on either side"),
    Flag.CROSSED: ("crossed", "bid above ask"),
    Flag.LOCKED: ("locked", "bid equals ask"),
    Flag.WIDE_SPREAD: ("wide_spread", "bid-ask spread too wide relative to the price"),
    Flag.STALE: ("stale", "quote older than the staleness limit"),
    Flag.BELOW_INTRINSIC: ("below_intrinsic", "price below intrinsic value"),
    Flag.ABOVE_BOUND: ("above_bound", "price above the no-arbitrage upper bound"),
    Flag.PARITY: ("parity", "put-call parity broken against the forward"),
    Flag.MONOTONICITY: ("monotonicity", "price not monotone in strike"),
    Flag.CONVEXITY: ("convexity", "price not convex in strike (butterfly arbitrage)"),
    Flag.CALENDAR: ("calendar", "total variance decreases with expiry"),
    Flag.OUTLIER: ("outlier", "far from a robust first-pass smile"),
    Flag.NEAR_EXPIRY: ("near_expiry", "too close to expiry to carry smile information"),
    Flag.DUPLICATE: ("duplicate", "duplicate of another quote"),
    Flag.NO_FORWARD: ("no_forward", "no forward could be established for the expiry"),
    Flag.IV_FAILED: ("iv_failed", "no implied volatility from the quote"),
    Flag.ITM: ("itm", "in the money (its out-of-the-money twin is used)"),
    Flag.VENUE_OUTLIER: (
        "venue_outlier",
        "far from the cross-venue consensus vol of its strike and expiry",
    ),
    Flag.VENUE_QUARANTINED: (
        "venue_quarantined",
        "its venue deviates persistently from the cross-venue consensus",
    ),
    Flag.VENUE_STALE: ("venue_stale", "its venue's quotes are older than the other venues'"),
    Flag.VENUE_MERGED: (
        "venue_merged",
        "a venue quote represented by the consolidated best bid/offer row",
    ),
}

# Flags that keep a quote out of fitting under the default policy.
EXCLUDE_DEFAULT: Flag = (
    Flag.INVALID
    | Flag.EXPIRED
    | Flag.MISSING_BID
    | Flag.MISSING_ASK  # fitting needs both sides (the bid-ask interval in vol)
    | Flag.ZERO_PRICE
    | Flag.CROSSED
    | Flag.WIDE_SPREAD
    | Flag.STALE
    | Flag.BELOW_INTRINSIC
    | Flag.ABOVE_BOUND
    | Flag.OUTLIER
    | Flag.NEAR_EXPIRY
    | Flag.DUPLICATE
    | Flag.NO_FORWARD
    | Flag.IV_FAILED
    | Flag.ITM
    | Flag.VENUE_OUTLIER
    | Flag.VENUE_QUARANTINED
    | Flag.VENUE_STALE
    | Flag.VENUE_MERGED
)


def flag_code(flag: Flag) -> str:
    """Short code of a single flag (``"crossed"``)."""
    return REASONS[flag][0]


def decode(flags: int) -> list[str]:
    """Codes of every bit set in ``flags``: ``decode(Flag.CROSSED | Flag.STALE)``
    -> ``["crossed", "stale"]``."""
    return [REASONS[f][0] for f in REASONS if int(flags) & int(f)]


def count_reasons(flags: UIntArray) -> dict[str, int]:
    """Number of quotes carrying each flag (a quote may count under several)."""
    arr = np.asarray(flags, dtype=np.uint32)
    return {code: int(np.count_nonzero(arr & np.uint32(f))) for f, (code, _) in REASONS.items()}
