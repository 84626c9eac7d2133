"""Every other chain file in ../shared/data/raw with prices, generic tables, bad input.

Raw values spot-checked here are read from the same files with pandas/json; the data
sources are listed in ../shared/data/raw/PROVENANCE.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import volcal
from volcal.errors import DataError
from volcal.market import Flag, estimate_forwards

SYN = Path(__file__).parent / "fixtures" / "synthetic"


def _row(chain: volcal.OptionChain, name: str) -> int:
    hits = np.flatnonzero(chain.instrument == name)
    assert hits.size == 1, name
    return int(hits[0])


@pytest.mark.data
@pytest.mark.parametrize("name", ["options_data.csv", "btc_options_data.csv"])
def test_order_book_csv(raw_data: Path, name: str) -> None:
    path = raw_data / "schepal-deribit" / name
    raw = pd.read_csv(path)
    chain = volcal.read_chain(path)
    assert len(chain) == len(raw) and chain.underlying == "BTC"
    assert chain.snapshot == pd.Timestamp(int(raw["timestamp"].max()), unit="ms", tz="UTC")
    r = raw.iloc[0]
    i = _row(chain, r["instrument_name"])
    assert chain.strike[i] == r["strike"] and chain.mark[i] == r["mark_price"]
    assert chain.bid[i] == r["best_bid_price"] and chain.ask[i] == r["best_ask_price"]
    assert chain.mark_iv[i] == pytest.approx(r["mark_iv"] / 100)
    assert chain.underlying_price[i] == r["underlying_price"]
    assert chain.expiry[i] == np.datetime64(int(r["expiration_timestamp"]), "ms")
    # a zero best bid is an empty side: NaN and flagged, row kept
    zero = (raw["best_bid_price"] == 0).to_numpy()
    assert zero.sum() > 0
    assert np.all(np.isnan(chain.bid[zero])) and np.all(chain.flags[zero] & Flag.MISSING_BID)
    _, rep = estimate_forwards(chain)
    # measured max |parity - quoted|: 9.8 bp (2020-05-21), 43.4 bp (2020-05-14, wide
    # 2020 spreads): within the default 50 bp tolerance, nothing flagged
    assert np.all(np.abs(rep.disagreement_bps) < 50.0) and not rep.flagged.any()


@pytest.mark.data
def test_usd_btc_snapshots_choose_snapshot(raw_data: Path) -> None:
    path = raw_data / "lucas-btc-vrp" / "deribit_option_snapshots.csv"
    raw = pd.read_csv(path)
    latest = volcal.read_chain(path)
    first = volcal.read_chain(path, snapshot="2026-04-28 21:29:00+00:00")
    assert latest.meta["snapshot_choice"] == "latest" and len(latest.meta["snapshots_in_file"]) == 2
    assert first.meta["snapshot_choice"] == "requested"
    counts = raw["timestamp"].value_counts()
    assert len(latest) == counts["2026-04-28 21:34:00+00:00"] == 233
    assert len(first) == counts["2026-04-28 21:29:00+00:00"] == 119
    r = raw[raw["timestamp"] == "2026-04-28 21:29:00+00:00"].iloc[1]
    i = _row(first, r["instrument_name"])
    assert (first.bid[i], first.ask[i], first.mark[i]) == (
        r["bid_btc"],
        r["ask_btc"],
        r["mark_btc"],
    )
    assert first.underlying_price[i] == r["underlying"]
    with pytest.raises(
        DataError, match=r"no snapshot at 2026-04-28T21:00:00\+00:00 \(file holds: "
    ):
        volcal.read_chain(path, snapshot="2026-04-28T21:00Z")


@pytest.mark.data
@pytest.mark.parametrize("name", ["deribit_options.csv", "btc_options.csv"])
def test_instrument_ticker_csv_snapshot_inferred_or_given(raw_data: Path, name: str) -> None:
    from volcal.black import price as black_price

    path = raw_data / "tessicin-deribit" / name
    inferred = volcal.read_chain(path)
    assert inferred.meta["snapshot_choice"].startswith("inferred from")
    # the inferred time reprices the venue's marks from its mark IVs to about the tick
    model = black_price(
        1.0,
        inferred.strike / inferred.underlying_price,
        inferred.t,
        inferred.mark_iv,
        inferred.is_call,
    )
    near = np.abs(np.log(inferred.strike / inferred.underlying_price)) < 0.25
    err = np.abs(model - inferred.mark)[near]
    assert np.median(err) < 1e-4 and np.max(err) < 1e-3
    raw = pd.read_csv(path)
    chain = volcal.read_chain(path, snapshot="2026-02-28T12:00Z")
    assert len(chain) == len(raw)
    r = raw.iloc[-1]
    i = _row(chain, r["instrument_name"])
    assert (chain.bid[i], chain.ask[i], chain.strike[i]) == (
        r["best_bid_price"],
        r["best_ask_price"],
        r["strike"],
    )
    assert pd.Timestamp(chain.expiry[i]) == pd.Timestamp(r["expiration"]).tz_localize(None)
    assert chain.snapshot == pd.Timestamp("2026-02-28T12:00Z")


@pytest.mark.data
def test_instrument_ticker_without_usable_marks_asks_for_snapshot(
    raw_data: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(raw_data / "tessicin-deribit" / "deribit_options.csv")
    raw["mark_price"] = 0.0  # nothing to infer the time from
    bad = tmp_path / "ticker.csv"
    raw.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"^ticker.csv: this layout has no snapshot time"):
        volcal.read_chain(bad)


@pytest.mark.data
def test_iv_only_chain(raw_data: Path) -> None:
    path = raw_data / "r1quant-deribit-iv" / "full_data_sample.csv"
    raw = pd.read_csv(path)
    chain = volcal.read_chain(path, snapshot="2026-01-23T01:00:00")
    sub = raw[raw["date"] == "2026-01-23T01:00:00.000000"]
    assert len(chain) == len(sub)
    assert np.all(np.isnan(chain.bid)) and np.all(chain.flags & Flag.ZERO_PRICE)
    r = sub.iloc[0]
    i = _row(chain, r["instrument_name"])
    assert chain.mark_iv[i] == pytest.approx(r["mark_iv"] / 100)
    assert chain.expiry[i] == np.datetime64(f"{r['expiry_date']}T08:00:00", "ns")
    assert (
        len(
            volcal.read_chain(raw_data / "r1quant-deribit-iv" / "sample.csv", snapshot="2026-03-01")
        )
        == 1016
    )


@pytest.mark.data
def test_surface_snapshot_json(raw_data: Path) -> None:
    path = raw_data / "maksm05-deribit-fixtures" / "snapshot_btc_surface.json"
    doc = json.loads(path.read_text())
    chain = volcal.read_chain(path)
    assert len(chain) == len(doc["option_quotes"]) == 878
    assert chain.expiries.size == len(doc["forwards"]) == 11
    q = doc["option_quotes"][0]
    i = _row(chain, q["instrument_name"])
    assert (chain.ask[i], chain.mark[i]) == (q["best_ask"], q["mark_price"])
    fwd = {pd.Timestamp(f["expiry"]): f["forward_price"] for f in doc["forwards"]}
    _, rep = estimate_forwards(chain)
    np.testing.assert_array_equal(rep.quoted, [fwd[e] for e in rep.expiry])
    # measured: parity within 4.1 bp of every quoted forward of this snapshot
    assert np.nanmax(np.abs(rep.disagreement_bps)) < 10.0
    assert (
        len(
            volcal.read_chain(
                raw_data / "maksm05-deribit-fixtures" / "snapshot_btc_validation.json"
            )
        )
        == 9
    )


def test_quote_table_frame_and_csv(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "strike": [90.0, 110.0],
            "is_call": [False, True],
            "bid": [1.0, 1.2],
            "ask": [1.1, 1.3],
            "forward": 100.0,
            "t": [0.25, 0.5],
            "discount": 0.99,
        }
    )
    ch = volcal.read_chain(df, snapshot="2026-01-07T08:00Z")
    assert ch.settlement == "linear" and np.all(ch.discount == 0.99)
    np.testing.assert_allclose(ch.t, [0.25, 0.5], rtol=0, atol=1e-12)
    assert ch.expiry[0] == np.datetime64("2026-04-08T14:00:00", "ns")  # + 91.25 days
    df.to_csv(tmp_path / "q.csv", index=False)
    back = volcal.read_chain(tmp_path / "q.csv", snapshot="2026-01-07T08:00Z")
    np.testing.assert_array_equal(back.bid, ch.bid)
    np.testing.assert_array_equal(back.expiry, ch.expiry)
    ep = volcal.read_chain(df.drop(columns="discount"))
    assert ep.snapshot == pd.Timestamp("2000-01-01T00:00Z") and np.all(ep.discount == 1.0)
    exp = df.drop(columns="t").assign(expiry=["2026-03-27T08:00Z", "2026-06-26T08:00Z"])
    with pytest.raises(DataError, match="pass snapshot="):
        volcal.read_chain(exp)
    assert volcal.read_chain(exp, snapshot="2026-01-07T08:00Z").expiries.size == 2
    with pytest.raises(
        DataError, match=r"^DataFrame: quote-table layout is missing column\(s\) 'forward'$"
    ):
        volcal.read_chain(df.drop(columns="forward"))
    mixed = df.assign(underlying=["BTC", "ETH"])
    with pytest.raises(DataError, match="table holds BTC and ETH: pass currency="):
        volcal.read_chain(mixed)
    assert len(volcal.read_chain(mixed, "ETH")) == 1


def test_polars_frame_is_converted() -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(
        {
            "strike": [100.0],
            "is_call": [True],
            "bid": [4.0],
            "ask": [4.2],
            "forward": [100.0],
            "t": [0.5],
        }
    )
    assert len(volcal.read_chain(df)) == 1


def test_bad_quotes_are_flagged_not_dropped() -> None:
    ch = volcal.read_chain(SYN / "bad_quotes_snapshot.csv", "BTC")
    assert len(ch) == 6
    f = ch.flags
    assert f[0] == 0 and f[1] & Flag.INVALID  # negative bid
    assert f[2] & Flag.INVALID  # zero strike
    assert f[3] & Flag.EXPIRED and not f[3] & Flag.INVALID
    assert f[4] & Flag.ZERO_PRICE and f[4] & Flag.MISSING_BID and f[4] & Flag.MISSING_ASK
    assert f[5] & Flag.ZERO_PRICE and f[5] & Flag.MISSING_BID
    assert np.isnan(ch.bid[4]) and ch.bid[5] == 0.0 and ch.bid[1] == -0.01
    assert set(ch.why("BTC-6JAN26-90000-C")) == {"expired"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "truncated_snapshot.csv",
            r"^truncated_snapshot\.csv: truncated file: last line has 7 of 23 fields$",
        ),
        (
            "missing_column_snapshot.csv",
            r"^missing_column_snapshot\.csv: svcj-snapshot layout is missing column\(s\) 'bid_price'$",
        ),
        (
            "non_numeric_snapshot.csv",
            r"^non_numeric_snapshot\.csv: column 'strike' row 2: non-numeric value 'ninety'$",
        ),
        ("empty_snapshot.csv", r"^empty_snapshot\.csv: no option quotes \(empty chain\)$"),
        ("ohlc_not_a_chain.csv", r"^ohlc_not_a_chain\.csv: unknown chain format \(CSV columns: "),
        (
            "malformed_book_summary.json",
            r"^malformed_book_summary\.json: malformed JSON: Expecting .* at line 1 column \d+$",
        ),
        (
            "mixed_book_summary.json",
            r"^mixed_book_summary\.json: file holds BTC and ETH: pass currency=\.\.\.$",
        ),
    ],
)
def test_bad_files_give_one_line_data_error(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        volcal.read_chain(SYN / name, "BTC" if "snapshot" in name else None)
    assert "\n" not in str(info.value)


def test_other_bad_sources(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"^empty\.csv: file is empty$"):
        volcal.read_chain(tmp_path / "empty.csv")
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(DataError, match="not a text, JSON or Parquet file"):
        volcal.read_chain(tmp_path / "bin.dat")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match=r"^x\.json: unknown chain format \(JSON"):
        volcal.read_chain(tmp_path / "x.json")
    with pytest.raises(DataError, match="cannot read a chain from int"):
        volcal.read_chain(3)
    with pytest.raises(FileNotFoundError):
        volcal.read_chain(tmp_path / "nope.csv")
    ch = volcal.read_chain(SYN / "mixed_book_summary.json", "eth")
    assert ch.underlying == "ETH" and ch.strike[0] == 3000.0
    assert ch.expiry[0] == np.datetime64("2026-02-27T08:00:00", "ns")  # from the name, 08:00 UTC


@pytest.mark.data
def test_future_summary_alone_is_not_a_chain(raw_data: Path) -> None:
    with pytest.raises(DataError, match="holds Deribit book-future data, not option quotes"):
        volcal.read_chain(
            raw_data / "maksm05-deribit-fixtures" / "deribit_book_summary_btc_future.json"
        )


def test_reader_black_formula_equals_volcal_black() -> None:
    """The snapshot-time inference prices with its own undiscounted Black-76 (the readers
    sit below the Black layer); it must be the same function as ``volcal.black.price``."""
    from volcal.black import price
    from volcal.feeds.csv_formats import _black_unit

    rng = np.random.default_rng(7)
    x = np.exp(rng.uniform(-0.3, 0.3, 400))
    t = rng.uniform(0.002, 2.0, 400)
    vol = rng.uniform(0.2, 1.5, 400)
    call = rng.uniform(size=400) < 0.5
    ref = np.asarray(price(1.0, x, t, vol, call))
    assert np.max(np.abs(_black_unit(x, t, vol, call) - ref)) < 1e-15
