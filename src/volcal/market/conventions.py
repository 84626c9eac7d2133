"""Venue conventions, in one place: settlement, quote currency, contract size, expiry
time of day, units of implied vols, where each venue's forward comes from, and the
basis between venues.

Every reader of a venue's data (``volcal.feeds.okx``, ``bybit``, ``binance``,
``tardis``, ``quantflow``) takes its units from :data:`VENUES`; nothing else hard-codes
them.

Settlement and units
--------------------
* **inverse** (coin-settled, coin-margined): Deribit BTC/ETH and OKX ``BTC-USD`` options.
  Prices are in coin per unit of underlying; USD value = coin price x the forward (the
  future or synthetic future the venue quotes the option against), as in
  :meth:`volcal.market.OptionChain.usd`.
* **linear** (stablecoin-settled): Bybit (USDC, and USDT for ``-USDT`` symbols) and
  Binance European options (USDT). Prices are in the quote currency per unit of
  underlying. volcal treats USDC, USDT and USD as one unit (the stablecoin basis is not
  modelled; it is below a few basis points in normal markets and would need its own
  curve).

Sizes
-----
``OptionChain.bid_size`` / ``ask_size`` are always in **coin of the underlying** (Deribit's
unit: one BTC option is on 1 BTC). Venues that count contracts (OKX) are converted with
the contract size ``ctVal x ctMult`` of their instruments answer
(:func:`sizes_to_coin`).

Expiry time of day
------------------
All four venues expire BTC/ETH options at 08:00 UTC (:data:`EXPIRY_HOUR_UTC`); the exact
expiry timestamp of each instrument is taken from its instruments answer when there is
one (``expiration_timestamp``, ``expTime``, ``deliveryTime``, ``expiryDate``), the
instrument name at 08:00 UTC otherwise.

Forwards
--------
``forward_source`` names the field giving each venue's forward per expiry: Deribit's
``underlying_price`` (the future of the expiry or a synthetic one), OKX's ``fwdPx``
(``/api/v5/public/opt-summary``), Bybit's ``underlyingPrice`` and, for Binance, the
index grown at the published ``riskFreeInterest`` (``S e^{rT}``, with discount factor
``e^{-rT}``: the model of Binance's own mark price). Where a venue gives no forward,
``volcal.clean`` establishes it from put-call parity. :func:`venue_forwards` and
:func:`basis` compare venues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volcal._typing import FloatArray
from volcal.errors import DataError
from volcal.market.chain import OptionChain, Settlement

#: BTC/ETH options of every supported venue expire at 08:00 UTC.
EXPIRY_HOUR_UTC = 8


@dataclass(frozen=True)
class VenueConvention:
    """How one venue quotes its BTC/ETH options.

    Attributes
    ----------
    venue : str
        volcal's name for the venue (``OptionChain.venue``).
    settlement : {"inverse", "linear"}
    quote_currency : str
        ``"coin"`` (the underlying itself) or the stablecoin of the premium.
    contract_size : float
        Coin of underlying per contract when fixed by the venue (NaN when it comes from
        the instruments answer).
    size_unit : {"coin", "contracts"}
        Unit of the sizes the venue reports.
    expiry_hour_utc : int
    iv_scale : float
        Multiply the venue's implied-vol fields by this for a decimal (0.01 for percent).
    forward_source : str
        The field giving the venue's forward (see the module docs).
    time_unit : str
        Unit of its timestamps (``"ms"`` or ``"us"``).
    """

    venue: str
    settlement: Settlement
    quote_currency: str
    contract_size: float
    size_unit: str
    expiry_hour_utc: int
    iv_scale: float
    forward_source: str
    time_unit: str = "ms"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {
            "venue": self.venue,
            "settlement": self.settlement,
            "quote_currency": self.quote_currency,
            "contract_size": None if np.isnan(self.contract_size) else self.contract_size,
            "size_unit": self.size_unit,
            "expiry_hour_utc": self.expiry_hour_utc,
            "iv_scale": self.iv_scale,
            "forward_source": self.forward_source,
            "time_unit": self.time_unit,
        }


VENUES: Mapping[str, VenueConvention] = {
    "deribit": VenueConvention(
        "deribit", "inverse", "coin", 1.0, "coin", EXPIRY_HOUR_UTC, 0.01, "underlying_price"
    ),
    "okx": VenueConvention(
        "okx", "inverse", "coin", np.nan, "contracts", EXPIRY_HOUR_UTC, 1.0, "fwdPx"
    ),
    "bybit": VenueConvention(
        "bybit", "linear", "USDC", 1.0, "coin", EXPIRY_HOUR_UTC, 1.0, "underlyingPrice"
    ),
    "binance": VenueConvention(
        "binance",
        "linear",
        "USDT",
        1.0,
        "coin",
        EXPIRY_HOUR_UTC,
        1.0,
        "index x exp(riskFreeInterest T)",
    ),
}

#: Tardis ``exchange`` ids -> volcal venue names.
TARDIS_EXCHANGES: Mapping[str, str] = {
    "deribit": "deribit",
    "okex-options": "okx",
    "okx-options": "okx",
    "bybit-options": "bybit",
    "binance-options": "binance",
    "binance-european-options": "binance",
}


def convention(venue: str) -> VenueConvention:
    """The :class:`VenueConvention` of ``venue`` (``"deribit"``, ``"okx"``, ``"bybit"``,
    ``"binance"``); a one-line :class:`DataError` names the known venues otherwise."""
    try:
        return VENUES[str(venue).lower()]
    except KeyError:
        raise DataError(
            f"unknown venue {venue!r}: known venues are {', '.join(sorted(VENUES))}"
        ) from None


def expiry_at(day: Any, venue: str = "deribit") -> pd.Timestamp:
    """Expiry timestamp of an option expiring on calendar ``day`` at ``venue``."""
    d = pd.Timestamp(day)
    d = d.tz_localize("UTC") if d.tzinfo is None else d.tz_convert("UTC")
    return d.normalize() + pd.Timedelta(hours=convention(venue).expiry_hour_utc)


def sizes_to_coin(size: Any, contract_size: Any) -> FloatArray:
    """Sizes in contracts -> sizes in coin of underlying (``size x contract_size``)."""
    return np.asarray(size, dtype=np.float64) * np.asarray(contract_size, dtype=np.float64)


def to_quote_units(usd: Any, coin_price: Any, settlement: Settlement) -> FloatArray:
    """A venue's quoted price from a USD value (linear) or a coin price (inverse)."""
    return np.asarray(coin_price if settlement == "inverse" else usd, dtype=np.float64)


def venue_forwards(chain: OptionChain) -> pd.DataFrame:
    """Forward per expiry of one venue's chain (median over its quotes; NaN if none).

    Columns ``expiry``, ``forward``, ``discount``, ``n_quotes``.
    """
    rows = []
    for e in chain.expiries:
        m = chain.expiry == e
        f = chain.forward[m]
        d = chain.discount[m]
        ok = np.isfinite(f) & (f > 0)
        rows.append(
            {
                "expiry": pd.Timestamp(e).tz_localize("UTC"),
                "forward": float(np.median(f[ok])) if ok.any() else np.nan,
                "discount": float(np.median(d[np.isfinite(d)])) if np.isfinite(d).any() else 1.0,
                "n_quotes": int(m.sum()),
            }
        )
    return pd.DataFrame(rows, columns=["expiry", "forward", "discount", "n_quotes"])


def basis(chains: Mapping[str, OptionChain]) -> pd.DataFrame:
    """Forward of every venue per expiry and its basis to the cross-venue median.

    Returns one row per (expiry, venue): ``forward``, ``median_forward`` (over the venues
    quoting the expiry) and ``basis_bps = 1e4 (forward / median - 1)``.
    """
    if not chains:
        raise DataError("basis() needs at least one chain")
    frames = []
    for name, ch in chains.items():
        f = venue_forwards(ch)
        f.insert(1, "venue", name)
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    med = df.groupby("expiry")["forward"].transform("median")
    df["median_forward"] = med
    with np.errstate(invalid="ignore", divide="ignore"):
        df["basis_bps"] = 1e4 * (df["forward"] / med - 1.0)
    return df.sort_values(["expiry", "venue"]).reset_index(drop=True)


__all__ = [
    "EXPIRY_HOUR_UTC",
    "TARDIS_EXCHANGES",
    "VENUES",
    "VenueConvention",
    "basis",
    "convention",
    "expiry_at",
    "sizes_to_coin",
    "to_quote_units",
    "venue_forwards",
]
