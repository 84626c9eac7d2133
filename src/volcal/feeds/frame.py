"""Read a generic table of quotes (pandas/polars DataFrame, CSV or Parquet).

Columns
-------
Required: ``strike``, ``is_call``, ``bid``, ``ask``, ``forward`` and either ``t``
(years, ACT/365) or ``expiry`` (UTC). Optional: ``discount``, ``mark``,
``open_interest``, ``volume``, ``timestamp`` (per-quote time), ``instrument``,
``underlying_price``, ``mark_iv`` (decimal).

Conventions: prices are in USD. With a ``discount`` column they are *discounted*
prices of a USD-settled (linear) chain; without one the chain is linear with discount
1 (undiscounted prices). Pass ``settlement="inverse"`` if the prices are coin prices of
an inverse chain. With ``t``, expiries are ``snapshot + t x 365 days``; the snapshot is
the ``snapshot=`` argument or :data:`DEFAULT_EPOCH`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from volcal.feeds._common import build_chain, fail, numeric, parse_is_call
from volcal.market.chain import SECONDS_PER_YEAR, OptionChain, Settlement, to_utc_timestamp

if TYPE_CHECKING:
    import pandas as pd

FRAME_REQUIRED: tuple[str, ...] = ("strike", "is_call", "bid", "ask", "forward")
#: the text of :data:`DEFAULT_EPOCH`, the snapshot used to turn ``t`` into expiries when
#: no ``snapshot=`` is given (a ``pandas.Timestamp`` made on first use: this module is
#: imported by every read, pandas only by the readers that need it)
_DEFAULT_EPOCH_TEXT = "2000-01-01T00:00:00Z"


def _default_epoch() -> pd.Timestamp:
    value = globals().get("DEFAULT_EPOCH")
    if value is None:
        import pandas as pd

        value = globals()["DEFAULT_EPOCH"] = pd.Timestamp(_DEFAULT_EPOCH_TEXT)
    return value


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_EPOCH":
        return _default_epoch()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_pandas(obj: Any) -> pd.DataFrame | None:
    """A pandas DataFrame from a pandas or polars frame (``None`` for anything else)."""
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj
    mod = type(obj).__module__
    if mod.startswith("polars") and hasattr(obj, "to_pandas"):
        return obj.to_pandas()  # type: ignore[no-any-return]
    return None


def read_frame(
    df: pd.DataFrame,
    where: str,
    currency: str | None = None,
    snapshot: Any = None,
    settlement: Settlement | None = None,
) -> OptionChain:
    """An :class:`OptionChain` from a generic quote table (see the module docstring).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"strike": [90.0, 110.0], "is_call": [False, True],
    ...                    "bid": [1.0, 1.2], "ask": [1.1, 1.3], "forward": 100.0, "t": 0.25})
    >>> ch = read_frame(df, "example")
    >>> ch.settlement, round(float(ch.t[0]), 12)
    ('linear', 0.25)
    """
    missing = [c for c in FRAME_REQUIRED if c not in df.columns]
    if "t" not in df.columns and "expiry" not in df.columns:
        missing.append("t or expiry")
    if missing:
        raise fail(where, f"quote table is missing column(s) {', '.join(map(repr, missing))}")
    d = df.reset_index(drop=True)
    if "underlying" in d.columns:
        unds = sorted(d["underlying"].astype(str).str.upper().unique())
        if currency is None and len(unds) > 1:
            raise fail(where, f"table holds {' and '.join(unds)}: pass currency=...")
        if currency is not None:
            d = d.loc[d["underlying"].astype(str).str.upper() == str(currency).upper()]
            d = d.reset_index(drop=True)
    if len(d) == 0:
        raise fail(where, "no option quotes (empty chain)")
    if "expiry" in d.columns:
        if snapshot is None:
            raise fail(where, "table has expiry but no t: pass snapshot=... to date it")
        snap = to_utc_timestamp(snapshot, "snapshot")
        expiry: Any = d["expiry"].to_numpy(dtype=object)
        how = "requested"
    else:
        snap = _default_epoch() if snapshot is None else to_utc_timestamp(snapshot, "snapshot")
        t = numeric(d, "t", where)
        snap64 = np.datetime64(snap.tz_localize(None), "ns")
        with np.errstate(invalid="ignore"):
            ns = np.round(t * SECONDS_PER_YEAR * 1e9)
        expiry = np.where(
            np.isfinite(ns),
            snap64 + np.nan_to_num(ns).astype("timedelta64[ns]"),
            np.datetime64("NaT"),
        )
        how = "default epoch" if snapshot is None else "requested"
    has_df = "discount" in d.columns
    settle: Settlement = settlement or "linear"

    def opt(col: str) -> Any:
        return numeric(d, col, where) if col in d.columns else np.nan

    und = currency or (str(d["underlying"].iloc[0]) if "underlying" in d.columns else "UND")
    fwd = numeric(d, "forward", where)
    under = opt("underlying_price")
    return build_chain(
        where,
        underlying=str(und).upper(),
        snapshot=snap,
        settlement=settle,
        venue=str(d["venue"].iloc[0]) if "venue" in d.columns else "table",
        instrument=d["instrument"].astype(str).to_numpy(dtype=object)
        if "instrument" in d.columns
        else None,
        expiry=expiry,
        strike=numeric(d, "strike", where),
        is_call=parse_is_call(d["is_call"].to_numpy(), where),
        bid=numeric(d, "bid", where),
        ask=numeric(d, "ask", where),
        mark=opt("mark"),
        open_interest=opt("open_interest"),
        volume=opt("volume"),
        quote_time=d["timestamp"].to_numpy(dtype=object) if "timestamp" in d.columns else None,
        underlying_price=np.where(np.isfinite(under), under, fwd)
        if "underlying_price" in d.columns
        else fwd,
        forward=fwd,
        discount=opt("discount") if has_df else 1.0,
        mark_iv=opt("mark_iv"),
        meta={
            "source": where,
            "format": "quote-table",
            "snapshot_choice": how,
            "discounted_prices": has_df,
        },
    )


__all__ = ["DEFAULT_EPOCH", "FRAME_REQUIRED", "read_frame", "to_pandas"]  # noqa: F822 (__getattr__)
