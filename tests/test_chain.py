"""OptionChain: construction, validation, unit conversions, immutability, views."""

from __future__ import annotations

import copy
import json
import pickle

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


# ---------------------------------------------------------------- snapshot kept as datetime64


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-07T09:21:55.572527",
        "2026-01-07T09:21:55",
        "2026-01-07T09:21:55.500000",
        "2026-01-07T09:21:55.123456789",
        "2026-01-07T09:21:55.000001",
    ],
)
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetime64_snapshot_reads_as_the_timestamp_it_was(text: str, unit: str) -> None:
    """A naive-UTC datetime64 snapshot is kept as it is and read as the tz-aware
    pandas.Timestamp that parsing it (the way before) gives: value, unit, tz, text."""
    value = np.datetime64(text, unit)
    want = pd.Timestamp(value).tz_localize("UTC")
    ch = _chain(snapshot=value)
    assert ch.__dict__["_snapshot_raw"] == value and "_snapshot_ts" not in ch.__dict__
    # as before: NumPy's conversion of the Timestamp (to the microsecond)
    assert ch.snapshot64 == np.datetime64(want.tz_localize(None), "ns")
    assert ch.snapshot64.dtype == np.dtype("datetime64[ns]")
    assert ch.snapshot_isoformat == want.isoformat()
    assert "_snapshot_ts" not in ch.__dict__  # neither made the Timestamp
    got = ch.snapshot
    assert isinstance(got, pd.Timestamp) and got == want
    assert got.unit == want.unit and str(got.tz) == "UTC"
    assert ch.snapshot is got
    ref = _chain(snapshot=want)
    assert ch.t.tobytes() == ref.t.tobytes()
    # copies keep it as kept: no Timestamp made for a select / replace
    sub = ch.select([0, 2]).replace(bid=np.array([0.02, 0.04]))
    assert isinstance(sub.__dict__["_snapshot_raw"], np.datetime64)
    assert sub.snapshot == want and sub.snapshot.unit == want.unit
    assert ch.replace(snapshot=want).snapshot is want
    for copied in (pickle.loads(pickle.dumps(ch)), copy.deepcopy(sub)):
        assert copied.snapshot == want and copied.snapshot.unit == want.unit


def test_snapshot_given_as_text_or_timestamp_is_a_timestamp() -> None:
    ch = _chain(snapshot="2026-01-07T10:00:00+01:00")
    assert isinstance(ch.__dict__["_snapshot_raw"], pd.Timestamp)
    assert ch.snapshot == pd.Timestamp("2026-01-07T09:00:00Z") and str(ch.snapshot.tz) == "UTC"
    assert ch.snapshot_isoformat == ch.snapshot.isoformat() == "2026-01-07T09:00:00+00:00"
    assert ch.select([1]).snapshot is ch.snapshot


def test_nat_snapshot_is_an_error() -> None:
    with pytest.raises(DataError, match="snapshot is missing"):
        _chain(snapshot=np.datetime64("NaT", "ns"))


def test_isoformat_utc_is_pandas_isoformat() -> None:
    from volcal.market.chain import isoformat_utc

    for text in ("2026-01-07T09:21:55", "2026-01-07T09:21:55.1", "1970-01-01T00:00:00.000000001",
                 "2261-12-31T23:59:59.999999", "1969-12-31T23:59:59.5", "1678-01-01T00:00:00"):  # fmt: skip
        for unit in ("s", "ms", "us", "ns"):
            try:
                value = np.datetime64(text, unit)
                want = pd.Timestamp(value).tz_localize("UTC").isoformat()
            except (ValueError, OverflowError):
                continue
            assert isoformat_utc(value) == want, (text, unit)
    nat = np.datetime64("NaT", "ns")
    assert isoformat_utc(nat) == pd.Timestamp(nat).tz_localize("UTC").isoformat() == "NaT"


def test_datetime64_time_columns_are_taken_as_they_are() -> None:
    """datetime64[ns] expiries and quote times (NaT included) come out as the old
    parsing of them gave (pandas on their object values)."""
    exp = np.array(["2026-01-16T08:00:00", "NaT", "2026-02-27T08:00:00.5"], dtype="datetime64[ns]")
    qt = np.array(["2026-01-07T08:59:00", "2026-01-07T08:59:30.000000001", "NaT"], "datetime64[ns]")
    from volcal.market.chain import to_utc_datetime64

    ch = _chain(expiry=exp, quote_time=qt)
    assert ch.expiry.tobytes() == to_utc_datetime64(exp.astype(object)).tobytes()
    assert ch.quote_time.tobytes() == to_utc_datetime64(qt.astype(object)).tobytes()
    assert ch.expiry.tobytes() == exp.tobytes() and not ch.expiry.flags.writeable


def test_expiry_label_of_datetime64_is_pandas_label() -> None:
    from volcal.market.chain import expiry_label

    def pandas_label(e: object) -> str:
        ts = pd.Timestamp(e)
        return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()

    for text in ("2026-03-27T08:00", "2026-03-27T08:00:00.25", "2026-03-27T08:00:00.000000007"):
        for unit in ("s", "ms", "us", "ns", "D"):
            e = np.datetime64(text, unit)
            assert expiry_label(e) == pandas_label(e), (text, unit)
    for e in (np.datetime64("NaT", "ns"), "2026-03-27T09:00+01:00", pd.Timestamp("2026-03-27")):
        assert expiry_label(e) == pandas_label(e)
