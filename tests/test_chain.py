"""OptionChain: construction, validation, unit conversions, immutability, views."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from volcal.errors import DataError
from volcal.market import EXCLUDE_DEFAULT, Flag, OptionChain, decode
from volcal.market.chain import SECONDS_PER_YEAR


def _chain(**kw: object) -> OptionChain:
    base: dict[str, object] = {
        "underlying": "BTC",
        "snapshot": "2026-01-07T09:00:00Z",
        "settlement": "inverse",
        "expiry": ["2026-01-16T08:00:00Z", "2026-01-16T08:00:00Z", "2026-02-27T08:00:00Z"],
        "strike": [90_000.0, 100_000.0, 100_000.0],
        "is_call": ["P", "call", "C"],
        "bid": [0.010, 0.005, 0.030],
        "ask": [0.011, 0.006, 0.032],
        "underlying_price": [92_000.0, 92_000.0, 92_500.0],
        "index_price": 91_900.0,
    }
    base.update(kw)
    return OptionChain.from_arrays(**base)  # type: ignore[arg-type]


def test_time_to_expiry_is_act365_from_exact_timestamps() -> None:
    ch = _chain()
    secs = (pd.Timestamp("2026-01-16T08:00Z") - pd.Timestamp("2026-01-07T09:00Z")).total_seconds()
    assert ch.t[0] == pytest.approx(secs / SECONDS_PER_YEAR, rel=1e-15)
    assert ch.t[0] == pytest.approx((8 + 23 / 24) / 365.0, rel=1e-12)
    assert ch.expiries.size == 2


def test_call_put_parsing_and_default_instrument_names() -> None:
    ch = _chain()
    assert ch.is_call.tolist() == [False, True, True]
    assert ch.instrument.tolist() == [
        "BTC-16JAN26-90000-P",
        "BTC-16JAN26-100000-C",
        "BTC-27FEB26-100000-C",
    ]


def test_forward_defaults_to_quoted_underlying() -> None:
    ch = _chain()
    np.testing.assert_array_equal(ch.forward, [92_000.0, 92_000.0, 92_500.0])
    np.testing.assert_allclose(ch.log_moneyness, np.log(ch.strike / ch.forward))


def test_inverse_conversions_coin_usd_forward_units() -> None:
    ch = _chain()
    mid = 0.5 * (ch.bid + ch.ask)
    np.testing.assert_allclose(ch.usd("mid"), mid * ch.underlying_price)
    np.testing.assert_allclose(ch.coin("mid"), mid)
    # forward = quoted underlying, discount 1: forward units are the coin price itself
    np.testing.assert_allclose(ch.forward_price("mid"), mid, rtol=1e-15)


def test_linear_conversions() -> None:
    ch = _chain(
        settlement="linear",
        bid=[900.0, 450.0, 2700.0],
        ask=[1000.0, 550.0, 2900.0],
        discount=0.99,
    )
    np.testing.assert_allclose(ch.usd("bid"), [900.0, 450.0, 2700.0])
    np.testing.assert_allclose(
        ch.coin("ask"), np.array([1000.0, 550.0, 2900.0]) / ch.underlying_price
    )
    np.testing.assert_allclose(ch.forward_price("mid"), ch.mid / (0.99 * ch.forward))


def test_index_price_is_conversion_fallback() -> None:
    ch = _chain(underlying_price=np.nan, forward=92_000.0)
    np.testing.assert_allclose(ch.usd("bid"), ch.bid * 91_900.0)


def test_arrays_are_read_only_and_replace_validates() -> None:
    ch = _chain()
    with pytest.raises(ValueError):
        ch.bid[0] = 1.0
    with pytest.raises(AttributeError):
        ch.underlying = "ETH"  # type: ignore[misc]
    with pytest.raises(DataError, match="length 3"):
        ch.replace(bid=np.array([1.0, 2.0]))
    with pytest.raises(DataError, match="settlement"):
        ch.replace(settlement="quanto")


def test_flags_select_and_why() -> None:
    ch = _chain().with_flags([int(Flag.CROSSED), 0, int(Flag.STALE | Flag.OUTLIER)])
    assert ch.usable().tolist() == [False, True, False]
    assert ch.usable(exclude=int(Flag.CROSSED)).tolist() == [False, True, True]
    assert ch.why("BTC-27FEB26-100000-C") == ["stale", "outlier"]
    assert ch.flag_counts() == {"crossed": 1, "stale": 1, "outlier": 1}
    sub = ch.select(ch.usable())
    assert len(sub) == 1 and sub.instrument[0] == "BTC-16JAN26-100000-C"
    assert len(ch) == 3  # selection never changes the source
    with pytest.raises(DataError, match="not in the chain"):
        ch.why("BTC-1JAN30-1-C")


def test_decode_and_default_policy() -> None:
    assert decode(int(Flag.MISSING_BID | Flag.ITM)) == ["missing_bid", "itm"]
    assert Flag.LOCKED not in EXCLUDE_DEFAULT  # a locked market is a warning, not an exclusion
    assert Flag.CROSSED in EXCLUDE_DEFAULT


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"strike": [1.0, 2.0, 3.0], "bid": [1.0, 2.0]}, "'bid' has 2 values"),
        ({"is_call": ["C", "X", "P"]}, "call/put"),
        ({"snapshot": "not a time"}, "snapshot"),
        ({"bid": ["a", "b", "c"]}, "not numeric"),
    ],
)
def test_bad_input_is_one_line_data_error(kw: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        _chain(**kw)
    assert "\n" not in str(err.value)


def test_views_are_json_safe_and_complete() -> None:
    ch = _chain().with_flags([0, int(Flag.WIDE_SPREAD), 0])
    df = ch.to_frame()
    assert len(df) == 3 and {"t", "k", "flag_codes", "bid", "ask"} <= set(df.columns)
    assert df["flag_codes"].tolist() == ["", "wide_spread", ""]
    d = ch.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["n_quotes"] == 3 and d["n_usable"] == 2 and d["flags"] == {"wide_spread": 1}
    assert "BTC" in ch.summary() and "wide_spread=1" in ch.summary()
