"""Price/return series: validation report, gap-aware returns, readers (synthetic + real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from volcal.errors import DataError, ParameterError
from volcal.risk import PriceSeries, parse_horizon, read_prices


def _days(n: int, start: str = "2024-01-01") -> np.ndarray:
    return np.datetime64(start, "D") + np.arange(n)


def test_clean_series_and_returns() -> None:
    s = PriceSeries.from_arrays(_days(5), [100.0, 110.0, 99.0, 99.0, 121.0], name="x")
    assert s.report.clean and s.freq_label == "1d" and len(s) == 5
    r = s.returns()
    np.testing.assert_allclose(r.values, np.log([1.1, 0.9, 1.0, 121 / 99]))
    r2 = s.returns("2d", overlapping=False, kind="simple")
    np.testing.assert_allclose(r2.values, [99 / 100 - 1, 121 / 99 - 1])
    assert r2.steps == 2 and r2.horizon_label == "2d"


def test_defects_are_reported_and_handled() -> None:
    t = np.array(
        [
            "2024-01-03",
            "2024-01-01",
            "2024-01-02",
            "2024-01-02",
            "2024-01-04",
            "2024-01-05",
            "2024-01-06T06:00",
            "2024-01-09",
            "2024-01-10",
            "2024-01-11",
        ],
        dtype="datetime64[s]",
    )
    p = [103.0, 100.0, 101.0, 102.0, -1.0, np.nan, 104.0, 105.0, 106.0, 107.0]
    s = PriceSeries.from_arrays(t, p, name="bad")
    rep = s.report
    assert not rep.was_sorted
    assert rep.duplicates == 1 and rep.conflicting_duplicates == 1
    assert rep.non_positive == 1 and rep.non_finite == 1 and rep.off_grid == 1
    # kept: 01, 02 (last duplicate = 102), 03, 09, 10, 11 -> one gap 03 -> 09 (5 missing days)
    assert rep.n_used == 6 and rep.gaps == 1 and rep.missing_points == 5
    assert rep.largest_gap == "5d" and not rep.clean
    assert s.prices[1] == 102.0
    assert len(rep.issues()) == 6 and "gaps" in rep.summary()
    r = s.returns()
    # returns never bridge the gap: 02/01, 03/02, 10/09, 11/10
    np.testing.assert_allclose(r.values, np.log([1.02, 103 / 102, 106 / 105, 107 / 106]))
    assert r.n_gap_excluded == 6
    assert rep.to_dict()["gap_examples"] == [["2024-01-03T00:00:00Z", "2024-01-09T00:00:00Z"]]


def test_strict_mode_raises_on_any_defect() -> None:
    with pytest.raises(DataError, match="duplicate"):
        PriceSeries.from_arrays(
            np.array(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03"], "datetime64[D]"),
            [1.0, 1.0, 2.0, 3.0],
            strict=True,
        )
    with pytest.raises(DataError, match="non-positive"):
        PriceSeries.from_arrays(_days(4), [1.0, 0.0, 2.0, 3.0], strict=True)
    with pytest.raises(DataError, match="gaps"):
        PriceSeries.from_arrays(_days(6)[[0, 1, 2, 5]], [1.0, 2.0, 3.0, 4.0], strict=True)


def test_too_short_and_bad_horizons() -> None:
    with pytest.raises(DataError, match="usable points"):
        PriceSeries.from_arrays(_days(3), [1.0, -2.0, np.nan])
    s = PriceSeries.from_arrays(_days(5), [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(DataError, match="horizon"):
        s.returns("7d")
    with pytest.raises(ParameterError, match="multiple"):
        s.returns("36h")
    with pytest.raises(ParameterError):
        parse_horizon("soon")
    with pytest.raises(ParameterError):
        parse_horizon("0h")
    with pytest.raises(DataError, match="length"):
        PriceSeries.from_arrays(_days(3), [1.0, 2.0])
    assert parse_horizon("4h") == np.timedelta64(14400, "s")


def test_readers_of_the_raw_formats(tmp_path: Path) -> None:
    bitstamp = tmp_path / "bitstamp.csv"
    bitstamp.write_text(
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USD\n"
        "1660953600,2022-08-20 00:00:00,BTC/USD,1,1,1,20963.0,1,1\n"
        "1660950000,2022-08-19 23:00:00,BTC/USD,1,1,1,20840.0,1,1\n"
        "1660946400,2022-08-19 22:00:00,BTC/USD,1,1,1,20800.0,1,1\n"
    )
    s = read_prices(bitstamp)
    assert s.freq_label == "1h" and not s.report.was_sorted
    assert s.prices.tolist() == [20800.0, 20840.0, 20963.0]
    binance = tmp_path / "binance.csv"
    binance.write_text(
        "open_time,open,high,low,close,volume,close_time,returns\n"
        "2020-10-23 11:00:00+03:00,1,1,1,10.0,1,x,0\n"
        "2020-10-23 12:00:00+03:00,1,1,1,11.0,1,x,0\n"
        "2020-10-23 13:00:00+03:00,1,1,1,12.0,1,x,0\n"
    )
    b = read_prices(binance)
    assert str(b.times[0]) == "2020-10-23T08:00:00.000000000"  # converted to UTC
    plain = tmp_path / "plain.csv"
    plain.write_text("when,level\n2024-01-01,5\n2024-01-02,6\n2024-01-03,oops\n2024-01-04,7\n")
    with pytest.raises(DataError, match="time column"):
        read_prices(plain)
    q = read_prices(plain, time_column="when", column="level")
    assert q.report.non_finite == 1 and q.report.gaps == 1
    with pytest.raises(DataError, match="price column"):
        read_prices(plain, time_column="when", column="close")
    with pytest.raises(FileNotFoundError):
        read_prices(tmp_path / "missing.csv")


@pytest.mark.data
def test_real_histories_read_clean(raw_data: Path) -> None:
    btc = read_prices(raw_data / "btctree-btc-power" / "btc_daily.csv")
    assert btc.report.clean and btc.freq_label == "1d" and len(btc) > 3000
    eth_h = read_prices(raw_data / "emanuelgoldman-binance-1h" / "ETHUSDT_1h.csv")
    assert eth_h.freq_label == "1h" and eth_h.report.gaps == 0
    dvol = read_prices(raw_data / "joachimoliver-dvol" / "btc_dvol.csv")
    assert not dvol.report.was_sorted and dvol.report.n_used == dvol.report.n_input
    r = btc.between("2022-01-01", "2023-12-31").returns("1d")
    assert len(r) == 729 and 0.01 < r.values.std() < 0.06


def test_risk_lazy_exports_resolve_after_submodule_imports() -> None:
    import importlib
    import inspect

    import volcal.risk as risk

    for mod in set(risk._LAZY.values()):
        importlib.import_module(mod)  # a submodule import must not shadow an exported name
    for name, mod in risk._LAZY.items():
        obj = getattr(risk, name)
        assert not inspect.ismodule(obj), name
        assert getattr(importlib.import_module(mod), name) is obj
