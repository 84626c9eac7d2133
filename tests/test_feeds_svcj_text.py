"""The pandas-free reader of the Deribit snapshot CSV (``svcj-snapshot`` layout):
``read_svcj_snapshot_text`` gives the chain the pandas reader gives, array for array and
bit for bit, or declines (``None``: the file is read with pandas) when a cell is one
whose reading it does not repeat exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import volcal
from volcal._io import read_bytes
from volcal.errors import DataError
from volcal.feeds.csv_formats import (
    CSV_LAYOUTS,
    SVCJ_SNAPSHOT_COLUMNS,
    is_svcj_snapshot_header,
    read_svcj_snapshot,
    read_svcj_snapshot_text,
)
from volcal.feeds.reader import _read_csv_text
from volcal.market.chain import _ARRAY_FIELDS

_HEADER = (
    "timestamp,instrument_name,underlying,underlying_name,option_type,strike,"
    "expiry_datetime,time_to_maturity,bid_price,ask_price,mark_price,mid_price,futures_price,"
    "futures_instrument_name,implied_volatility,delta,vega,open_interest,volume,"
    "bid_ask_spread,currency,index_price,volume_usd"
)
_T0 = "2026-01-07T09:21:55.572527+00:00"


def _row(**cells: str) -> str:
    base = {
        "timestamp": _T0,
        "instrument_name": "BTC-16JAN26-82000-C",
        "underlying": "92188.22",
        "underlying_name": "BTC-16JAN26",
        "option_type": "call",
        "strike": "82000.0",
        "expiry_datetime": "2026-01-16T08:00:00+00:00",
        "time_to_maturity": "0.024484891990297106",
        "bid_price": "0.081",
        "ask_price": "0.143",
        "mark_price": "0.11288473",
        "mid_price": "0.112",
        "futures_price": "92188.22",
        "futures_instrument_name": "BTC-16JAN26",
        "implied_volatility": "0.5078",
        "delta": "0.9349",
        "vega": "18.31865",
        "open_interest": "2.3",
        "volume": "0.0",
        "bid_ask_spread": "0.061999999999999986",
        "currency": "BTC",
        "index_price": "92076.5",
        "volume_usd": "0.0",
    }
    base.update(cells)
    return ",".join(base[c] for c in _HEADER.split(","))


def _text(*rows: str) -> str:
    return "\n".join((_HEADER, *rows))


#: rows whose cells the text reader reads as pandas does: plain decimals, whole numbers,
#: exponents, empty cells (NaN), a negative float zero, a 15-digit whole number, a
#: synthetic underlying, puts, ETH rows, an older snapshot in the same file
_EDGE = _text(
    _row(),
    _row(instrument_name="BTC-16JAN26-82000-P", option_type="put", bid_price="", ask_price=""),
    _row(strike="90000", bid_price="1.5e-05", ask_price="2E-4", mark_price=".5"),
    _row(strike="100000", bid_price="5.", ask_price="-0.0", volume="123456789012345"),
    _row(underlying_name="SYN.BTC-8JAN26", futures_price="", underlying="92100.125"),
    _row(timestamp="2026-01-07T09:21:54+00:00", strike="70000"),
    _row(currency="ETH", instrument_name="ETH-16JAN26-3000-C", strike="3000", index_price=""),
    _row(implied_volatility="0.12345678901234567", open_interest="-3", mark_price="7e5"),
    _row(currency="btc", strike="110000"),  # read as BTC, as pandas' upper-casing does
)


def _pandas_chain(text: str, currency: str | None, where: str = "f.csv") -> volcal.OptionChain:
    return read_svcj_snapshot(_read_csv_text(text, where), where, currency, None, None)


def _assert_same_chain(a: volcal.OptionChain, b: volcal.OptionChain) -> None:
    for name in _ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype == object:
            assert list(x) == list(y) and {type(v) for v in x} == {type(v) for v in y}, name
        else:
            assert x.tobytes() == y.tobytes(), name  # bit for bit, NaN and -0.0 included
    assert (a.underlying, a.settlement, a.venue) == (b.underlying, b.settlement, b.venue)
    assert np.float64(a.index_price).tobytes() == np.float64(b.index_price).tobytes()
    assert a.meta == b.meta
    assert a.snapshot_isoformat == b.snapshot.isoformat()
    assert a.snapshot64 == b.snapshot64
    assert isinstance(a.snapshot, pd.Timestamp) and str(a.snapshot.tz) == "UTC"
    assert a.snapshot == b.snapshot and a.snapshot.unit == b.snapshot.unit


@pytest.mark.parametrize("currency", ["BTC", "ETH"])
def test_text_reader_equals_pandas_reader_on_edge_cells(currency: str) -> None:
    chain = read_svcj_snapshot_text(_EDGE, "f.csv", currency, None, None)
    assert chain is not None
    _assert_same_chain(chain, _pandas_chain(_EDGE, currency))
    assert len(chain) == (7 if currency == "BTC" else 1)  # the 09:21:54 row: older snapshot
    assert chain.meta["snapshot_choice"] == ("latest" if currency == "BTC" else "only")


def test_text_reader_keeps_the_snapshot_as_datetime64_until_read() -> None:
    chain = read_svcj_snapshot_text(_EDGE, "f.csv", "BTC", None, None)
    assert chain is not None
    assert isinstance(chain.__dict__["_snapshot_raw"], np.datetime64)
    assert "_snapshot_ts" not in chain.__dict__
    assert chain.snapshot_isoformat == _T0
    ts = chain.snapshot
    assert ts == pd.Timestamp(_T0) and ts.unit == "us"
    assert chain.snapshot is ts  # made once


def test_text_reader_errors_are_the_pandas_readers() -> None:
    for currency, message in ((None, "holds BTC and ETH"), ("SOL", "no SOL options")):
        with pytest.raises(DataError, match=message) as got:
            read_svcj_snapshot_text(_EDGE, "f.csv", currency, None, None)
        with pytest.raises(DataError) as want:
            _pandas_chain(_EDGE, currency)
        assert str(got.value) == str(want.value)


_DECLINED = {
    "quoted cell": _text(_row(), _row(instrument_name='"BTC-16JAN26-82000-P"')),
    "NaN text in a number column": _text(_row(), _row(bid_price="NaN")),
    "negative integer zero": _text(_row(), _row(volume="-0")),
    "16-digit whole number": _text(_row(), _row(volume="1234567890123456")),
    "plus sign": _text(_row(), _row(strike="+82000")),
    "inf": _text(_row(), _row(ask_price="inf")),
    "space in a number": _text(_row(), _row(strike=" 82000")),
    "NA in a text column": _text(_row(), _row(underlying_name="NA")),
    "number in a text column": _text(_row(), _row(currency="1")),
    "bool in a text column": _text(_row(), _row(option_type="True")),
    "empty text cell": _text(_row(), _row(instrument_name="")),
    "space around a text cell": _text(_row(), _row(currency="BTC ")),
    "empty cell first": _text(_row(option_type=""), _row()),
    "nanosecond time": _text(_row(timestamp="2026-01-07T09:21:55.572527001+00:00")),
    "other time zone": _text(_row(timestamp="2026-01-07T10:21:55+01:00")),
    "naive time": _text(_row(expiry_datetime="2026-01-16T08:00:00")),
    "invalid date": _text(_row(expiry_datetime="2026-02-30T08:00:00+00:00")),
    "short line": _text(_row(), "2026-01-07T09:21:55+00:00,BTC-16JAN26-82000-C"),
    "blank line": _text(_row(), "", _row()),
    "carriage returns": _text(_row(), _row()).replace("\n", "\r\n"),
    "extra column": "\n".join((_HEADER + ",x", _row() + ",1")),
    "non-ASCII": _text(_row(), _row(underlying_name="BTC-16JAN26\u00e9")),
    "no rows": _HEADER,
}


@pytest.mark.parametrize("case", sorted(_DECLINED))
def test_text_reader_declines_what_it_would_not_read_as_pandas_does(case: str) -> None:
    assert read_svcj_snapshot_text(_DECLINED[case], "f.csv", "BTC", None, None) is None


def test_text_reader_declines_a_requested_snapshot() -> None:
    assert read_svcj_snapshot_text(_EDGE, "f.csv", "BTC", _T0, None) is None


def test_read_chain_falls_back_to_pandas(tmp_path: Path) -> None:
    path = tmp_path / "snap.csv"
    path.write_text(_DECLINED["NaN text in a number column"])
    chain = volcal.read_chain(path, "BTC")
    _assert_same_chain(chain, _pandas_chain(path.read_text(), "BTC", path.name))
    assert np.isnan(chain.bid[1])
    # the file read with pandas keeps its snapshot as a pandas.Timestamp
    assert isinstance(chain.__dict__["_snapshot_raw"], pd.Timestamp)


def test_header_check() -> None:
    from volcal.feeds.tardis import is_tardis

    cols = _HEADER.split(",")
    assert set(cols) == SVCJ_SNAPSHOT_COLUMNS
    assert is_svcj_snapshot_header(cols)
    assert is_svcj_snapshot_header(list(CSV_LAYOUTS["svcj-snapshot"]))
    assert not is_svcj_snapshot_header([*cols, "exchange"])
    assert not is_svcj_snapshot_header([*cols, "strike"])  # a name twice
    assert not is_svcj_snapshot_header(cols[1:])
    # a header the text reader takes is never Tardis's (read_chain tests that first)
    assert not is_tardis(sorted(SVCJ_SNAPSHOT_COLUMNS))


def _real_files(raw_data: Path) -> list[Path]:
    snaps = sorted((raw_data / "svcj-deribit-snapshots").glob("deribit_options_snapshot_*.csv"))
    hist = sorted((raw_data / "svcj-deribit-history").glob("deribit_options_snapshot_*.csv.gz"))
    return [*snaps[::28], *hist[::431]]


@pytest.mark.parametrize("currency", ["BTC", "ETH"])
def test_text_reader_equals_pandas_reader_on_real_files(raw_data: Path, currency: str) -> None:
    files = _real_files(raw_data)
    assert len(files) >= 4
    for path in files:
        text = read_bytes(path).decode("utf-8-sig").strip()
        chain = read_svcj_snapshot_text(text, path.name, currency, None, None)
        assert chain is not None, path.name
        ref = _pandas_chain(text, currency, path.name)
        _assert_same_chain(chain, ref)
        cleaned, ref_cleaned = volcal.clean(chain), volcal.clean(ref)
        for name in _ARRAY_FIELDS:
            x, y = getattr(cleaned, name), getattr(ref_cleaned, name)
            assert (list(x) == list(y)) if x.dtype == object else x.tobytes() == y.tobytes()
