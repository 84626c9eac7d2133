"""Readers of OKX, Bybit, Binance, Tardis and quantflow data, their writers, and the
OKX / Bybit / Binance fetchers (httpx.MockTransport: no network).

The hand-written fixtures below follow the shapes in each venue's public API
documentation (field names and units), with made-up numbers; the conversion tests take a
real Deribit snapshot, write it in each layout and read it back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import volcal
from volcal.errors import DataError, FetchError
from volcal.feeds import binance, bybit, okx, quantflow, tardis
from volcal.market.conventions import VENUES, basis, convention, expiry_at, venue_forwards

SNAP_MS = 1767777715000  # 2026-01-07T09:21:55Z
EXP_MS = 1769760000000  # 2026-01-30T08:00:00Z


# ---------------------------------------------------------------- fixtures (documented shapes)
def okx_doc() -> dict[str, Any]:
    def tick(inst: str, bid: str, bsz: str, ask: str, asz: str) -> dict[str, str]:
        return {
            "instType": "OPTION", "instId": inst, "last": "0.02", "lastSz": "1",
            "askPx": ask, "askSz": asz, "bidPx": bid, "bidSz": bsz, "open24h": "0.02",
            "high24h": "0.03", "low24h": "0.01", "volCcy24h": "1.5", "vol24h": "150",
            "ts": str(SNAP_MS), "sodUtc0": "0.02", "sodUtc8": "0.02",
        }  # fmt: skip

    names = ["BTC-USD-260130-95000-C", "BTC-USD-260130-90000-P", "BTC-USD-260130-100000-C"]
    return {
        "format": "volcal.okx-raw", "version": 1, "currency": "BTC", "fetched_at": "x",
        "responses": {
            "tickers": {"code": "0", "msg": "", "data": [
                tick(names[0], "0.0250", "120", "0.0260", "80"),
                tick(names[1], "0.0190", "50", "0.0200", "40"),
                tick(names[2], "", "", "0.0105", "10"),  # empty bid side
            ]},
            "opt_summary": {"code": "0", "msg": "", "data": [
                {"instType": "OPTION", "instId": n, "uly": "BTC-USD", "fwdPx": "93000.5",
                 "markVol": "0.45", "bidVol": "0.44", "askVol": "0.46", "ts": str(SNAP_MS)}
                for n in names
            ]},
            "instruments": {"code": "0", "msg": "", "data": [
                {"instType": "OPTION", "instId": n, "uly": "BTC-USD", "settleCcy": "BTC",
                 "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "optType": n[-1],
                 "stk": n.split("-")[3], "expTime": str(EXP_MS), "state": "live"}
                for n in names
            ]},
            "index": {"code": "0", "msg": "", "data": [
                {"instId": "BTC-USD", "idxPx": "92950.1", "ts": str(SNAP_MS)}]},
        },
    }  # fmt: skip


def bybit_doc() -> dict[str, Any]:
    def tick(sym: str, bid: str, ask: str, size: str) -> dict[str, str]:
        return {
            "symbol": sym, "bid1Price": bid, "bid1Size": size, "bid1Iv": "0.44",
            "ask1Price": ask, "ask1Size": size, "ask1Iv": "0.46", "lastPrice": "2300",
            "highPrice24h": "2400", "lowPrice24h": "2200", "markPrice": "2310",
            "indexPrice": "92950.1", "markIv": "0.45", "underlyingPrice": "93010",
            "openInterest": "12.5", "turnover24h": "1000", "volume24h": "3.2",
            "totalVolume": "100", "totalTurnover": "1e6", "delta": "0.5", "gamma": "0",
            "vega": "100", "theta": "-50", "predictedDeliveryPrice": "0", "change24h": "0",
        }  # fmt: skip

    return {
        "retCode": 0, "retMsg": "SUCCESS", "time": SNAP_MS, "retExtInfo": {},
        "result": {"category": "option", "list": [
            tick("BTC-30JAN26-95000-C", "2300", "2400", "1.5"),
            tick("BTC-30JAN26-90000-P", "1800", "1850", "0.8"),
            tick("BTC-30JAN26-100000-C-USDT", "0", "1000", "0"),  # empty bid, USDT-settled
        ]},
    }  # fmt: skip


def binance_doc() -> dict[str, Any]:
    names = ["BTC-260130-95000-C", "BTC-260130-90000-P"]
    return {
        "format": "volcal.binance-raw", "version": 1, "currency": "BTC", "fetched_at": "x",
        "responses": {
            "ticker": [
                {"symbol": n, "priceChange": "0", "priceChangePercent": "0", "lastPrice": "2300",
                 "lastQty": "0.1", "open": "2300", "high": "2300", "low": "2300",
                 "volume": "4", "amount": "9200", "bidPrice": b, "askPrice": a,
                 "openTime": SNAP_MS - 86400000, "closeTime": SNAP_MS - 5000,
                 "firstTradeId": 1, "tradeCount": 3, "strikePrice": n.split("-")[2],
                 "exercisePrice": "92950.1"}
                for n, b, a in zip(names, ("2290", "1790"), ("2410", "1860"), strict=True)
            ],
            "mark": [
                {"symbol": n, "markPrice": "2350", "bidIV": "0.44", "askIV": "0.46",
                 "markIV": "0.45", "delta": "0.5", "theta": "-50", "gamma": "0", "vega": "100",
                 "highPriceLimit": "5000", "lowPriceLimit": "5", "riskFreeInterest": "0.05"}
                for n in names
            ],
            "exchange_info": {"timezone": "UTC", "serverTime": SNAP_MS, "optionSymbols": [
                {"expiryDate": EXP_MS, "symbol": n, "side": "CALL" if n.endswith("C") else "PUT",
                 "strikePrice": n.split("-")[2], "underlying": "BTCUSDT", "unit": 1,
                 "quoteAsset": "USDT"} for n in names]},
            "index": {"time": SNAP_MS, "indexPrice": "92950.1"},
        },
    }  # fmt: skip


TARDIS_CSV = """exchange,symbol,timestamp,local_timestamp,type,strike_price,expiration,open_interest,last_price,bid_price,bid_amount,bid_iv,ask_price,ask_amount,ask_iv,mark_price,mark_iv,underlying_index,underlying_price,delta,gamma,vega,theta,rho
deribit,BTC-30JAN26-95000-C,1767777700000000,1767777700100000,call,95000,1769760000000000,120.5,0.025,0.0250,10.0,0.44,0.0260,12.0,0.46,0.0255,0.45,BTC-30JAN26,93000.0,0.45,0.0001,100,-50,1
deribit,BTC-30JAN26-95000-C,1767777715000000,1767777715100000,call,95000,1769760000000000,120.5,0.025,0.0251,11.0,0.44,0.0259,13.0,0.46,0.0255,0.45,BTC-30JAN26,93001.0,0.45,0.0001,100,-50,1
deribit,BTC-30JAN26-90000-P,1767777710000000,1767777710100000,put,90000,1769760000000000,80,0.019,0.0190,5.0,0.44,0.0200,6.0,0.46,0.0195,0.45,SYN.BTC-30JAN26,93001.0,-0.3,0.0001,100,-50,-1
bybit-options,BTC-30JAN26-95000-C,1767777000000000,1767777000100000,call,95000,1769760000000000,12.5,2300,2300,1.5,0.44,2400,1.5,0.46,2310,0.45,BTC-30JAN26,93010,0.5,0,100,-50,1
"""

QUANTFLOW_DOC = {
    "ref_date": "2026-01-07T09:21:55Z",
    "inputs": [
        {"bid": "92950", "ask": "92951", "security_type": "spot"},
        {"bid": "93000", "ask": "93002", "maturity": "2026-01-30T08:00:00Z", "security_type": "forward"},
        {"bid": {"price": "0.025", "strike": "95000", "maturity": "2026-01-30T08:00:00Z", "call": True},
         "ask": {"price": "0.026", "strike": "95000", "maturity": "2026-01-30T08:00:00Z", "call": True},
         "security_type": "option"},
        {"bid": {"price": "0", "strike": "90000", "maturity": "2026-01-30T08:00:00Z", "call": False},
         "ask": {"price": "0.02", "strike": "90000", "maturity": "2026-01-30T08:00:00Z", "call": False},
         "security_type": "option"},
        {"bid": {"price": "0.01", "strike": "80000", "maturity": "2026-02-27T08:00:00Z", "call": False},
         "ask": {"price": "0.012", "strike": "80000", "maturity": "2026-02-27T08:00:00Z", "call": False},
         "security_type": "option"},
    ],
}  # fmt: skip


# ---------------------------------------------------------------- readers: documented fields
def test_okx_reader_fields_and_conventions() -> None:
    ch = volcal.read_chain(okx_doc())
    assert (ch.venue, ch.settlement, ch.underlying) == ("okx", "inverse", "BTC")
    assert ch.snapshot == pd.Timestamp(SNAP_MS, unit="ms", tz="UTC")
    assert ch.index_price == 92950.1
    assert ch.strike.tolist() == [95000.0, 90000.0, 100000.0]
    assert ch.is_call.tolist() == [True, False, True]
    assert np.all(ch.expiry == np.datetime64("2026-01-30T08:00", "ns"))
    np.testing.assert_allclose(ch.bid[:2], [0.025, 0.019])
    assert np.isnan(ch.bid[2]) and ch.why("BTC-USD-260130-100000-C")[0] == "missing_bid"
    # sizes: contracts x ctVal (0.01 BTC) -> coin
    np.testing.assert_allclose(ch.bid_size[:2], [1.2, 0.5])
    np.testing.assert_allclose(ch.volume, 1.5)
    np.testing.assert_allclose(ch.forward, 93000.5)  # fwdPx
    np.testing.assert_allclose(ch.mark_iv, 0.45)
    # USD value of an inverse quote: coin x forward
    assert ch.usd("bid")[0] == pytest.approx(0.025 * 93000.5)
    assert ch.meta["quote_currency"] == "coin" and ch.meta["contract_size_known"]


def test_okx_without_instruments_or_summary() -> None:
    doc = okx_doc()["responses"]["tickers"]
    ch = volcal.read_chain(doc, "BTC")
    assert np.all(np.isnan(ch.bid_size))  # contract size unknown: sizes not guessed
    assert np.all(np.isnan(ch.forward))  # left to put-call parity in clean
    assert np.all(ch.expiry == np.datetime64("2026-01-30T08:00", "ns"))  # name, 08:00 UTC


def test_bybit_reader_fields_and_conventions() -> None:
    ch = volcal.read_chain(bybit_doc())
    assert (ch.venue, ch.settlement) == ("bybit", "linear")
    np.testing.assert_allclose(ch.bid[:2], [2300.0, 1800.0])
    assert np.isnan(ch.bid[2])  # "0" is an empty side
    np.testing.assert_allclose(ch.forward, 93010.0)
    np.testing.assert_allclose(ch.bid_size[:2], [1.5, 0.8])  # coin
    np.testing.assert_allclose(ch.open_interest, 12.5)
    assert ch.meta["quote_currency"] == "USDC/USDT"
    assert ch.usd("ask")[0] == 2400.0  # linear: prices are USD already
    assert ch.coin("ask")[0] == pytest.approx(2400.0 / 93010.0)
    assert np.all(ch.expiry == np.datetime64("2026-01-30T08:00", "ns"))


def test_binance_reader_forward_from_index_and_rate() -> None:
    ch = volcal.read_chain(binance_doc())
    assert (ch.venue, ch.settlement) == ("binance", "linear")
    t = (EXP_MS - SNAP_MS) / 1000 / (365 * 86400)
    np.testing.assert_allclose(ch.forward, 92950.1 * np.exp(0.05 * t), rtol=1e-15)
    np.testing.assert_allclose(ch.discount, np.exp(-0.05 * t), rtol=1e-15)
    np.testing.assert_allclose(ch.bid, [2290.0, 1790.0])
    assert np.all(np.isnan(ch.bid_size))  # the ticker has no book sizes
    np.testing.assert_allclose(ch.mark_iv, 0.45)
    assert ch.quote_time[0] == np.datetime64(SNAP_MS - 5000, "ms")


def test_tardis_reader_takes_latest_row_per_option_in_microseconds(tmp_path: Path) -> None:
    p = tmp_path / "options_chain.csv"
    p.write_text(TARDIS_CSV)
    with pytest.raises(DataError, match="holds bybit-options, deribit"):
        volcal.read_chain(p)
    df = pd.read_csv(io.StringIO(TARDIS_CSV))
    d = tardis.read_tardis(df, "t", exchange="deribit")
    assert d.venue == "deribit" and d.settlement == "inverse"
    assert d.snapshot == pd.Timestamp(1767777715000000 * 1000, tz="UTC")
    call = d.instrument.tolist().index("BTC-30JAN26-95000-C")
    assert d.bid[call] == 0.0251 and d.bid_size[call] == 11.0  # the later update
    assert np.all(d.expiry == np.datetime64("2026-01-30T08:00", "ns"))
    np.testing.assert_allclose(d.mark_iv, 0.45)  # decimals
    early = tardis.read_tardis(df, "t", exchange="deribit", snapshot="2026-01-07T09:21:45Z")
    assert early.bid[early.instrument.tolist().index("BTC-30JAN26-95000-C")] == 0.025
    venues = tardis.read_tardis_venues(df, "t")
    assert set(venues) == {"deribit", "bybit"}
    assert venues["bybit"].settlement == "linear"
    res = volcal.aggregate(venues)
    assert res.venue("bybit").status == "stale"  # its rows stop 715 s before deribit's


def test_quantflow_reader() -> None:
    ch = volcal.read_chain(QUANTFLOW_DOC, "BTC")
    assert ch.settlement == "inverse" and ch.underlying == "BTC"
    assert ch.index_price == 92950.5
    np.testing.assert_allclose(ch.forward[:2], 93001.0)
    assert np.isnan(ch.forward[2])  # no forward input for that maturity
    assert np.isnan(ch.bid[1])  # price "0": empty side
    assert ch.is_call.tolist() == [True, False, False]
    assert ch.snapshot == pd.Timestamp("2026-01-07T09:21:55Z")


def test_quantflow_older_option_type_field() -> None:
    doc = json.loads(json.dumps(QUANTFLOW_DOC))
    for inp in doc["inputs"][2:]:
        for side in ("bid", "ask"):
            inp[side]["option_type"] = "call" if inp[side].pop("call") else "put"
    ch = volcal.read_chain(doc, "BTC")
    assert ch.is_call.tolist() == [True, False, False]


def test_conventions_in_one_place() -> None:
    assert set(VENUES) == {"deribit", "okx", "bybit", "binance"}
    assert {v.expiry_hour_utc for v in VENUES.values()} == {8}
    assert convention("OKX").settlement == "inverse" and convention("bybit").settlement == "linear"
    assert convention("deribit").iv_scale == 0.01
    with pytest.raises(DataError, match="known venues"):
        convention("ftx")
    assert expiry_at("2026-03-27", "okx") == pd.Timestamp("2026-03-27T08:00Z")
    json.dumps(convention("okx").to_dict(), allow_nan=False)
    o = volcal.read_chain(okx_doc())
    b = volcal.read_chain(bybit_doc())
    vf = venue_forwards(o)
    assert vf["forward"].tolist() == [93000.5]
    bs = basis({"okx": o, "bybit": b})
    row = bs.loc[bs.venue == "bybit"].iloc[0]
    assert row["basis_bps"] == pytest.approx(1e4 * (93010 / np.median([93000.5, 93010]) - 1))


# ---------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"code": "0", "msg": "", "data": [{"instType": "OPTION", "instId": "BTC-USD-260130-95000-C"}]}',
         "lacks 'bidPx'"),
        ('{"code": "51001", "msg": "Instrument ID does not exist", "data": []}', "OKX error answer 51001"),
        ('{"code": "0", "msg": "", "data": [{"instType": "OPTION", "instId": "BTC-X-C", "bidPx": "1", "askPx": "1", "ts": "1"}]}',
         "cannot parse OKX option name"),
        ('{"retCode": 10001, "retMsg": "params error", "result": {}}', "Bybit error answer 10001"),
        ('{"retCode": 0, "retMsg": "OK", "result": {"category": "option", "list": []}, "time": 1}',
         "empty chain"),
        ('[{"symbol": "BTC-260130-95000-C", "bidPrice": "abc", "askPrice": "1", "strikePrice": "95000"}]',
         "'bidPrice': 'abc' is not a number"),
        ('{"code": -1121, "msg": "Invalid symbol."}', "Binance error answer -1121"),
        ('{"ref_date": "2026-01-07T09:21:55Z", "inputs": [{"bid": "1", "ask": "2"}]}', "no security_type"),
        ('{"ref_date": "2026-01-07", "inputs": [{"security_type": "option", "bid": {"price": "1", "strike": "1", "maturity": "2026-02-01", "call": true}, "ask": {"price": "1", "strike": "2", "maturity": "2026-02-01", "call": true}}]}',
         "bid and ask are different options"),
        ('{"code": "0", "msg": "", "data": [{"instType": "OPTION", "instId": "BTC-USD-260130-95000-C", "ctVal": "0.01"}]}',
         "holds OKX instruments data"),
        ('{"code": "0", "msg": "", "data": [', "malformed JSON"),
    ],
)  # fmt: skip
def test_bad_venue_files_are_one_line_errors(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "venue.json"
    p.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        volcal.read_chain(p)
    msg = str(info.value)
    assert msg.startswith("venue.json") and "\n" not in msg


def test_bad_tardis_files(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    header = TARDIS_CSV.splitlines()[0]
    p.write_text(
        header
        + "\nhuobi-dm-options,BTC-USD-260130-C-95000,1,1,call,95000,2,0,,1,1,,2,1,,1,,x,90000,,,,,\n"
    )
    with pytest.raises(DataError, match="'huobi-dm-options' is not supported"):
        volcal.read_chain(p)
    p.write_text(
        header + "\nderibit,BTC-30JAN26-95000-C,abc,1,call,95000,2,0,,1,1,,2,1,,1,,x,90000,,,,,\n"
    )
    with pytest.raises(DataError, match="column 'timestamp' row 1: non-numeric"):
        volcal.read_chain(p)
    p.write_text(header + "\n")
    with pytest.raises(DataError, match="empty chain"):
        volcal.read_chain(p)


# ---------------------------------------------------------------- conversions both ways
def _ivs(ch: volcal.OptionChain) -> tuple[np.ndarray, np.ndarray]:
    from volcal.black import implied_vol

    o = np.lexsort((ch.is_call, ch.strike, ch.expiry))
    c = ch.select(o)
    out = [
        np.asarray(
            implied_vol(
                c.forward_price(s), 1.0, c.strike / c.forward, c.t, c.is_call, full_output=True
            ).vol
        )
        for s in ("bid", "ask")
    ]
    return out[0], out[1]


@pytest.fixture(scope="module")
def ref(snapshot_dir: Path) -> volcal.OptionChain:
    from venue_helpers import reference_chain

    return reference_chain(snapshot_dir)


@pytest.mark.data
@pytest.mark.parametrize(
    ("writer", "suffix"),
    [
        (okx.to_okx, "json"),
        (bybit.to_bybit, "json"),
        (binance.to_binance, "json"),
        (quantflow.to_quantflow, "json"),
        (lambda ch: tardis.to_tardis({"okx": ch}), "csv"),
        (
            lambda ch: tardis.to_tardis({"deribit": ch, "bybit": ch}).query(
                "exchange == 'bybit-options'"
            ),
            "csv",
        ),
    ],
    ids=["okx", "bybit", "binance", "quantflow", "tardis-okx", "tardis-bybit"],
)
def test_real_snapshot_through_every_layout_gives_the_same_vols(
    ref: volcal.OptionChain, tmp_path: Path, writer: Any, suffix: str
) -> None:
    """A real Deribit snapshot converted to each layout (by this test) and read back
    through ``read_chain`` gives the same implied vols to 1e-12."""
    out = writer(ref)
    p = tmp_path / f"chain.{suffix}"
    if suffix == "json":
        p.write_text(json.dumps(out, allow_nan=False))
    else:
        out.to_csv(p, index=False)
    back = volcal.read_chain(p, "BTC")
    assert len(back) == len(ref)
    b0, a0 = _ivs(ref)
    b1, a1 = _ivs(back)
    for x0, x1 in ((b0, b1), (a0, a1)):
        assert np.array_equal(np.isfinite(x0), np.isfinite(x1))
        m = np.isfinite(x0)
        assert m.sum() > 300
        assert np.max(np.abs(x0[m] - x1[m])) <= 1e-12
    np.testing.assert_array_equal(np.sort(back.t), np.sort(ref.t))


@pytest.mark.data
def test_venue_layouts_round_trip_back(ref: volcal.OptionChain) -> None:
    """venue layout -> chain -> venue layout gives the same document prices."""
    fields = {
        okx.to_okx: (("tickers", "data"), ("bidPx", "askPx")),
        bybit.to_bybit: (("tickers", "result", "list"), ("bid1Price", "ask1Price")),
        binance.to_binance: (("ticker",), ("bidPrice", "askPrice")),
    }
    for write, (path, keys) in fields.items():
        docs = [write(ref)]
        docs.append(write(volcal.read_chain(docs[0])))
        prices = []
        for doc in docs:
            rows: Any = doc["responses"]
            for key in path:
                rows = rows[key]
            px = np.array([[float(r[k] or "nan") for k in keys] for r in rows])
            prices.append(np.where(px == 0, np.nan, px))
        # a few ulp: prices pass through price / forward x forward (and for Binance
        # r = ln(F/S)/T is recomputed from F = S e^{rT})
        np.testing.assert_allclose(prices[1], prices[0], rtol=1e-14, atol=0)
    qf = quantflow.to_quantflow(ref)
    assert quantflow.to_quantflow(volcal.read_chain(qf, "BTC"))["inputs"] == qf["inputs"]


def test_writers_need_forwards() -> None:
    ch = volcal.read_chain(okx_doc()["responses"]["tickers"], "BTC")
    with pytest.raises(DataError, match="no forward"):
        okx.to_okx(ch)


# ---------------------------------------------------------------- fetchers (mock transport)
def _mock(routes: dict[str, Any], seen: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.path}?{request.url.query.decode()}")
        body = routes[request.url.path]
        if callable(body):
            return body(request)
        return httpx.Response(200, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_fetch_okx_saves_a_document_read_chain_reads(tmp_path: Path) -> None:
    r = okx_doc()["responses"]
    calls = {"n": 0}

    def tickers(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:  # OKX rate limit inside a 200 answer: retried
            return httpx.Response(
                200, json={"code": "50011", "msg": "Too Many Requests", "data": []}
            )
        return httpx.Response(200, json=r["tickers"])

    seen: list[str] = []
    client = _mock(
        {
            "/api/v5/public/instruments": r["instruments"],
            "/api/v5/market/tickers": tickers,
            "/api/v5/public/opt-summary": r["opt_summary"],
            "/api/v5/market/index-tickers": r["index"],
        },
        seen,
    )
    waits: list[float] = []
    out = tmp_path / "okx.json"
    ch = okx.fetch_chain("BTC", client=client, save=out, sleep=waits.append, backoff=0.1)
    assert waits == [0.1]
    assert any("instType=OPTION" in s and "uly=BTC-USD" in s for s in seen)
    back = volcal.read_chain(out)
    np.testing.assert_array_equal(back.bid, ch.bid)
    assert back.venue == "okx" and back.index_price == 92950.1


def test_fetch_bybit_follows_pages_and_binance_reads_back(tmp_path: Path) -> None:
    page1 = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "category": "option",
            "nextPageCursor": "c2",
            "list": [
                {
                    "symbol": "BTC-30JAN26-95000-C",
                    "optionsType": "Call",
                    "deliveryTime": str(EXP_MS),
                    "settleCoin": "USDC",
                }
            ],
        },
    }
    page2 = {"retCode": 0, "retMsg": "OK", "result": {"category": "option", "nextPageCursor": "", "list": [
        {"symbol": "BTC-30JAN26-90000-P", "optionsType": "Put", "deliveryTime": str(EXP_MS), "settleCoin": "USDC"}]}}  # fmt: skip

    def instruments(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=page2 if request.url.params.get("cursor") == "c2" else page1
        )

    seen: list[str] = []
    client = _mock(
        {"/v5/market/instruments-info": instruments, "/v5/market/tickers": bybit_doc()}, seen
    )
    out = tmp_path / "bybit.json"
    bybit.fetch_chain("BTC", client=client, save=out, sleep=lambda s: None)
    assert sum("instruments-info" in s for s in seen) == 2
    back = volcal.read_chain(out)
    assert back.venue == "bybit" and len(back) == 3
    r = binance_doc()["responses"]
    client = _mock(
        {
            "/eapi/v1/exchangeInfo": r["exchange_info"],
            "/eapi/v1/ticker": r["ticker"],
            "/eapi/v1/mark": r["mark"],
            "/eapi/v1/index": r["index"],
        },
        seen,
    )
    out = tmp_path / "binance.json"
    binance.fetch_chain("BTC", client=client, save=out, sleep=lambda s: None)
    assert volcal.read_chain(out).venue == "binance"
    assert any("underlying=BTCUSDT" in s for s in seen)


def test_fetch_errors_are_fetch_errors() -> None:
    seen: list[str] = []
    client = _mock(
        {
            "/eapi/v1/exchangeInfo": lambda r: httpx.Response(
                400, json={"code": -1121, "msg": "Invalid symbol."}
            )
        },
        seen,
    )
    with pytest.raises(FetchError, match=r"binance /eapi/v1/exchangeInfo.*-1121 Invalid symbol"):
        binance.fetch_raw("BTC", client=client, sleep=lambda s: None)
    client = _mock({"/v5/market/instruments-info": lambda r: httpx.Response(503)}, seen)
    with pytest.raises(FetchError, match=r"bybit .*HTTP 503 \(gave up after 2 attempts\)"):
        bybit.fetch_raw("BTC", client=client, retries=1, sleep=lambda s: None)
    client = _mock(
        {"/api/v5/public/instruments": {"code": "51000", "msg": "Parameter uly error", "data": []}},
        seen,
    )
    with pytest.raises(FetchError, match=r"okx .*51000 Parameter uly error"):
        okx.fetch_raw("BTC", client=client, sleep=lambda s: None)


def test_cli_fetch_lists_the_venues(capsys: pytest.CaptureFixture[str]) -> None:
    from volcal.cli import main

    assert main(["fetch", "--help"]) == 0
    out = capsys.readouterr().out
    for venue in ("deribit", "okx", "bybit", "binance"):
        assert venue in out
