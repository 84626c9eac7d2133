"""Aggregation of several venues (``volcal.aggregate``): consensus, quarantine, staleness,
the consolidated book, depth and the liquidity report; the ``volcal venues`` command.

Venues are synthesised from a real Deribit snapshot (tests/venue_helpers.py): the same
chain re-quoted with controlled differences and written in each venue's own layout.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli_json
from hypothesis import given, settings
from hypothesis import strategies as st
from venue_helpers import (
    fit_ivs_at,
    honest_venues,
    lagging,
    reference_chain,
    spoofed,
    vols,
    wing_shifted,
)

import volcal
from volcal.aggregate import AggregationPolicy, depth_weights, executable_chain, read_book_depth
from volcal.errors import DataError, ParameterError
from volcal.market.flags import Flag
from volcal.synthetic import synthetic_chain


@pytest.fixture(scope="module")
def ref(snapshot_dir: Path) -> volcal.OptionChain:
    return reference_chain(snapshot_dir)


@pytest.fixture(scope="module")
def venues(ref: volcal.OptionChain) -> dict[str, volcal.OptionChain]:
    return honest_venues(ref)


@pytest.fixture(scope="module")
def honest_fit(venues: dict[str, volcal.OptionChain]) -> object:
    return volcal.calibrate(volcal.clean(volcal.aggregate(venues).chain), "svi")


# ---------------------------------------------------------------- without real data
def test_identical_synthetic_venues_give_the_single_venue_chain() -> None:
    ch = synthetic_chain(seed=5)
    res = volcal.aggregate({"a": ch, "b": ch, "c": ch})
    c = res.chain
    order = np.lexsort((ch.is_call, ch.strike, ch.expiry))
    np.testing.assert_allclose(c.bid, ch.usd("bid")[order], rtol=1e-13)
    np.testing.assert_allclose(c.ask, ch.usd("ask")[order], rtol=1e-13)
    assert all(v.status == "ok" for v in res.venues)
    assert len(res.quotes) == 3 * len(ch)
    json.dumps(res.to_dict(), allow_nan=False)


def test_two_venues_the_tighter_one_sets_the_consensus() -> None:
    ch = synthetic_chain(seed=6)
    m = np.isfinite(ch.bid) & (ch.bid > 0)
    ch = ch.select(m)
    from venue_helpers import requote

    b, a = vols(ch, "bid"), vols(ch, "ask")
    tight = requote(ch, b, a)
    mid = 0.5 * (b + a)
    wide_off = requote(ch, mid + 0.05, mid + 0.09)  # 7 vol pts high, 4 wide
    res = volcal.aggregate({"tight": tight, "wide": wide_off})
    assert res.venue("tight").status == "ok"
    assert res.venue("wide").status == "quarantined"
    assert res.venue("wide").median_deviation_vol_pts == pytest.approx(7.0, abs=0.5)


def test_bad_inputs_are_one_line_errors() -> None:
    ch = synthetic_chain(seed=1)
    with pytest.raises(DataError, match="at least one chain"):
        volcal.aggregate({})
    with pytest.raises(DataError, match="not an OptionChain"):
        volcal.aggregate({"a": ch, "b": "file.csv"})  # type: ignore[dict-item]
    eth = ch.replace(underlying="ETH")
    with pytest.raises(DataError, match="different underlyings"):
        volcal.aggregate({"a": ch, "b": eth})
    with pytest.raises(ParameterError, match="quarantine_share"):
        AggregationPolicy(quarantine_share=0.0)
    with pytest.raises(ParameterError, match="policy must be"):
        volcal.aggregate({"a": ch}, policy={"max_lag_s": 1})  # type: ignore[arg-type]


def test_flags_are_appended_without_renumbering() -> None:
    assert Flag.ITM == 1 << 20  # the last flag before this feature keeps its bit
    assert Flag.VENUE_OUTLIER == 1 << 21 and Flag.VENUE_STALE == 1 << 23
    from volcal.market.flags import EXCLUDE_DEFAULT, decode

    assert decode(Flag.VENUE_OUTLIER | Flag.VENUE_STALE) == ["venue_outlier", "venue_stale"]
    assert EXCLUDE_DEFAULT & Flag.VENUE_QUARANTINED


# ---------------------------------------------------------------- real snapshot venues
@pytest.mark.data
def test_identical_venues_give_the_single_venue_surface(ref: volcal.OptionChain) -> None:
    from volcal.feeds import binance, bybit, okx

    single = volcal.calibrate(volcal.clean(ref), "svi")
    many = {
        "deribit": ref,
        "okx": volcal.read_chain(okx.to_okx(ref)),
        "bybit": volcal.read_chain(bybit.to_bybit(ref)),
        "binance": volcal.read_chain(binance.to_binance(ref)),
    }
    res = volcal.aggregate(many)
    fit = volcal.calibrate(volcal.clean(res.chain), "svi")
    assert fit.n_used == single.n_used
    a, b = fit_ivs_at(single, fit)
    assert np.max(np.abs(a - b)) < 1e-8
    assert fit.rmse_vol == pytest.approx(single.rmse_vol, abs=1e-8)
    # ties: every venue shows the best price of every instrument
    assert {v.n_best_ask for v in res.venues} == {len(res.chain)}


@pytest.mark.data
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda r: wing_shifted(r, 0.10), id="wings+10vol"),
        pytest.param(lambda r: spoofed(r), id="spoof-above-market"),
        pytest.param(lambda r: spoofed(r, crossed_own=True), id="crossed-spoof"),
    ],
)
def test_a_manipulating_venue_is_quarantined_and_barely_moves_the_fit(
    venues: dict[str, volcal.OptionChain], ref: volcal.OptionChain, honest_fit: object, bad: object
) -> None:
    res = volcal.aggregate({**venues, "bad": bad(ref)})  # type: ignore[operator]
    v = res.venue("bad")
    assert v.status == "quarantined", v
    assert "consensus" in v.reason
    assert all(res.venue(n).status == "ok" for n in venues)
    rows = res.quote_venue == "bad"
    assert np.all(res.quotes.flags[rows] & Flag.VENUE_QUARANTINED)
    assert "bad" not in set(res.bid_venue) | set(res.ask_venue)
    fit = volcal.calibrate(volcal.clean(res.chain), "svi")
    a, b = fit_ivs_at(honest_fit, fit)
    assert np.max(np.abs(a - b)) <= 0.002  # 0.2 vol points at every quoted strike


@pytest.mark.data
def test_outlier_rejection_alone_protects_the_fit(
    venues: dict[str, volcal.OptionChain], ref: volcal.OptionChain, honest_fit: object
) -> None:
    """Without quarantine (share limit 100%), the MAD rejection drops the shifted wings."""
    policy = AggregationPolicy(quarantine_share=1.0)
    res = volcal.aggregate({**venues, "bad": wing_shifted(ref, 0.10)}, policy)
    assert res.venue("bad").status == "ok"
    out = (res.quote_venue == "bad") & ((res.quotes.flags & Flag.VENUE_OUTLIER) != 0)
    k = np.log(res.quotes.strike / res.quotes.forward)
    assert out.sum() > 100
    assert np.all(np.abs(k[out]) > 0.1)  # exactly the shifted wings
    fit = volcal.calibrate(volcal.clean(res.chain), "svi")
    a, b = fit_ivs_at(honest_fit, fit)
    assert np.max(np.abs(a - b)) <= 0.002


@pytest.mark.data
def test_stale_venue_is_flagged(venues: dict[str, volcal.OptionChain]) -> None:
    res = volcal.aggregate({**venues, "okx": lagging(venues["okx"], 900.0)})
    v = res.venue("okx")
    assert v.status == "stale" and "900 s" in v.reason
    assert v.lag_s == pytest.approx(900.0)
    rows = res.quote_venue == "okx"
    assert np.all(res.quotes.flags[rows] & Flag.VENUE_STALE)
    assert res.to_dict()["venues"]["okx"]["status"] == "stale"
    fresh = volcal.aggregate({**venues, "okx": lagging(venues["okx"], 30.0)})
    assert fresh.venue("okx").status == "ok"


@pytest.mark.data
def test_removing_a_venue_never_loses_a_quote_reason(
    venues: dict[str, volcal.OptionChain], ref: volcal.OptionChain
) -> None:
    chains = {**venues, "bad": wing_shifted(ref, 0.10)}
    full = volcal.aggregate(chains)
    for r in range(2, len(chains)):
        for subset in itertools.combinations(chains, r):
            if "bad" not in subset:
                continue
            res = volcal.aggregate({k: chains[k] for k in subset})
            assert len(res.quotes) == sum(len(chains[k]) for k in subset)
            for name in subset:
                rows = res.quote_venue == name
                # the reader's reasons survive, and every venue quote says it was merged
                own = chains[name].flags
                assert np.all((res.quotes.flags[rows] & own) == own)
                assert np.all(res.quotes.flags[rows] & Flag.VENUE_MERGED)
            if len(subset) >= 3:  # with at least two honest venues the bad one stays out
                assert res.venue("bad").status == "quarantined"
                assert np.all(res.quotes.flags[res.quote_venue == "bad"] & Flag.VENUE_QUARANTINED)
    assert full.venue("bad").status == "quarantined"


@pytest.mark.data
def test_result_is_frozen_json_safe_and_consistent(venues: dict[str, volcal.OptionChain]) -> None:
    res = volcal.aggregate(venues)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    for name in venues:
        row = d["venues"][name]
        assert set(row) >= {"status", "reason", "n_quotes", "median_deviation_vol_pts"}
        assert row["n_quotes"] == len(venues[name])
    assert d["venues"]["bybit"]["median_deviation_vol_pts"] == pytest.approx(0.3, abs=0.02)
    assert d["venues"]["binance"]["median_deviation_vol_pts"] == pytest.approx(-0.2, abs=0.02)
    with pytest.raises(ValueError):
        res.consensus_vol[0] = 1.0
    # consolidated book: the best of the venues, each side from the venue that shows it
    assert set(res.bid_venue[res.bid_venue != ""]) == {"bybit"}
    assert set(res.ask_venue[res.ask_venue != ""]) == {"binance"}
    cb, ca = vols(res.chain, "bid"), vols(res.chain, "ask")
    both = np.isfinite(cb) & np.isfinite(ca)
    # bybit bids 0.3 vol pt over Deribit's bid, binance asks 0.2 below its ask
    deribit = venues["deribit"]
    order = np.lexsort((deribit.is_call, deribit.strike, deribit.expiry))
    db, da = vols(deribit, "bid")[order], vols(deribit, "ask")[order]
    np.testing.assert_allclose((cb - db)[both], 0.003, atol=1e-9)
    np.testing.assert_allclose((da - ca)[both], 0.002, atol=1e-9)
    basis = res.basis_frame()
    assert np.all(np.abs(basis["basis_bps"]) < 1e-6)
    liq = res.liquidity()
    json.dumps(liq.to_dict(), allow_nan=False)
    per = {r["venue"]: r for r in liq.per_venue}
    assert per["bybit"]["share_best_bid"] == 1.0 and per["binance"]["share_best_ask"] == 1.0
    # consolidated spread is 0.5 vol pt tighter than Deribit's own
    assert per["deribit"]["spread_vol_pts"] - per["deribit"][
        "consolidated_spread_vol_pts"
    ] == pytest.approx(0.5, abs=0.01)
    assert per["okx"]["spread_vol_pts"] - per["deribit"]["spread_vol_pts"] == pytest.approx(
        1.0, abs=0.01
    )
    assert "okx" in res.summary() and "okx" in liq.summary()


@pytest.mark.data
def test_basis_between_venues_does_not_show_as_deviation(ref: volcal.OptionChain) -> None:
    from volcal.feeds import okx

    doc = okx.to_okx(ref.replace(forward=ref.forward * 1.002, underlying_price=ref.forward * 1.002))
    shifted = volcal.read_chain(doc)
    # same vols, 20 bp higher forward: re-price at the shifted forward
    from venue_helpers import requote

    b, a = vols(ref, "bid"), vols(ref, "ask")
    base = ref.replace(forward=ref.forward * 1.002, underlying_price=ref.forward * 1.002)
    shifted = volcal.read_chain(okx.to_okx(requote(base, b, a)))
    res = volcal.aggregate({"deribit": ref, "okx": shifted, "bybit": ref})
    assert res.venue("okx").status == "ok"
    assert abs(res.venue("okx").median_deviation_vol_pts) < 1e-6
    bf = res.basis_frame()
    assert bf.loc[bf.venue == "okx", "basis_bps"].to_numpy() == pytest.approx(20.0, abs=1e-6)


# ---------------------------------------------------------------- depth
@pytest.mark.data
def test_executable_price_of_a_size_from_order_book_depth(raw_data: Path) -> None:
    path = raw_data / "schepal-deribit" / "btc_options_data.csv"
    book = read_book_depth(path)
    lv = book.levels("BTC-22MAY20-9250-P", "bid")
    assert lv[0].tolist() == [0.042, 15.5] and lv[1].tolist() == [0.0405, 8.2]
    f = book.executable("BTC-22MAY20-9250-P", 20.0, "bid")
    assert f.complete and f.average == pytest.approx((0.042 * 15.5 + 0.0405 * 4.5) / 20)
    assert f.worst == 0.0405
    f_small = book.executable("BTC-22MAY20-9250-P", 1.0, "ask")
    assert f_small.average == pytest.approx(0.5 * 0.045 + 0.5 * 0.0465)
    too_big = book.executable("BTC-22MAY20-9250-P", 1e6, "ask")
    assert not too_big.complete and too_big.filled == pytest.approx(
        book.depth("BTC-22MAY20-9250-P", "ask")
    )
    chain = volcal.read_chain(path)
    big = executable_chain(chain, book, 10.0)
    both = np.isfinite(big.bid) & np.isfinite(chain.bid)
    assert np.all(big.bid[both] <= chain.bid[both] + 1e-15)
    assert np.all(big.ask[np.isfinite(big.ask)] >= chain.ask[np.isfinite(big.ask)] - 1e-15)
    assert big.meta["depth"]["bid_too_thin"] > 0
    assert np.all(big.flags[~np.isfinite(big.bid)] & Flag.MISSING_BID)
    w = depth_weights(chain)
    assert w.mean() == pytest.approx(1.0) and np.all(w > 0)
    with pytest.raises(ParameterError):
        executable_chain(chain, book, -1.0)


def test_depth_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "book.csv"
    p.write_text("instrument_name,bids\nBTC-1JAN27-1-C,[]\n")
    with pytest.raises(DataError, match="asks"):
        read_book_depth(p)
    p.write_text('instrument_name,bids,asks\nBTC-1JAN27-1-C,"[[1, 2, 3]]",[]\n')
    with pytest.raises(DataError, match=r"book.csv: row 1: column 'bids'"):
        read_book_depth(p)


# ---------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def venue_files(
    tmp_path_factory: pytest.TempPathFactory,
    venues: dict[str, volcal.OptionChain],
    ref: volcal.OptionChain,
) -> list[Path]:
    from volcal.feeds import binance, bybit, okx

    d = tmp_path_factory.mktemp("venues")
    files = []
    for name, fn in (
        ("okx", okx.to_okx),
        ("bybit", bybit.to_bybit),
        ("binance", binance.to_binance),
    ):
        p = d / f"{name}.json"
        p.write_text(json.dumps(fn(venues[name] if name != "okx" else wing_shifted(ref, 0.10))))
        files.append(p)
    return files


@pytest.mark.data
def test_cli_venues_json_and_report(
    venue_files: list[Path], snapshot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from volcal.cli import main

    rep = tmp_path / "v.html"
    deribit = snapshot_dir / "deribit_options_snapshot_20260107T092155Z.csv"
    code = main(
        [
            "venues",
            str(deribit),
            *map(str, venue_files),
            "-c",
            "BTC",
            "--json",
            "--report",
            str(rep),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    d = cli_json(out, "venues")
    assert d["venues"]["okx"]["status"] == "quarantined"
    assert {d["venues"][n]["status"] for n in ("deribit", "bybit", "binance")} == {"ok"}
    assert d["fit"]["n_used"] > 100 and d["liquidity"]["per_venue"]
    html = rep.read_text()
    assert "Fragmentation" in html and "consolidated fit" in html and "okx (quarantined)" in html
    assert "Top-of-book depth per venue and expiry" in html
    code = main(["venues", str(deribit), *map(str, venue_files), "-c", "BTC"])
    text = capsys.readouterr().out
    assert code == 0 and "okx" in text and "Fragmentation" in text


@pytest.mark.data
def test_cli_calibrate_and_quality_aggregate_several_files(
    venue_files: list[Path], snapshot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from volcal.cli import main

    deribit = snapshot_dir / "deribit_options_snapshot_20260107T092155Z.csv"
    code = main(["calibrate", str(deribit), *map(str, venue_files[1:]), "-c", "BTC", "--json"])
    d = cli_json(capsys.readouterr().out)
    assert code == 0 and d["n_used"] > 100 and "bybit.json" in d["source"]
    code = main(["quality", str(deribit), str(venue_files[1]), "-c", "BTC", "--json"])
    assert code == 0 and cli_json(capsys.readouterr().out)["n_quotes"] > 0
    # the same venue twice is a one-line error
    code = main(["quality", str(venue_files[1]), str(venue_files[1]), "-c", "BTC"])
    err = capsys.readouterr().err
    assert code == 2 and "second chain of venue 'bybit'" in err


@pytest.mark.data
def test_report_chart_draws_the_venues_and_the_fit(venues: dict[str, volcal.OptionChain]) -> None:
    from volcal.report.chain import _smile_curve
    from volcal.report.venues import smile_points, venue_smile_figure

    res = volcal.aggregate(venues)
    fit = volcal.calibrate(volcal.clean(res.chain), "svi")
    pts = smile_points(res, fit)
    fig = venue_smile_figure(res, fit)
    e0 = fit.quotes.expiries[0]
    first = pts[0]
    assert first["expiry"] == str(np.datetime_as_string(e0, unit="m"))
    # the fit curve drawn is the fit of that expiry
    np.testing.assert_allclose(first["fit_vol"], _smile_curve(fit, 0, first["k_grid"]))
    # a venue's points are its own mid vols of that expiry
    q = res.quotes
    m = (q.expiry == e0) & (res.quote_venue == "bybit")
    mid = 0.5 * (res.quote_iv_bid + res.quote_iv_ask)[m]
    np.testing.assert_allclose(
        np.sort(first["venues"]["bybit"]["vol"]), np.sort(mid[np.isfinite(mid)])
    )
    traces = [
        t for t in fig.data if t.meta["expiry"] == first["expiry"] and t.meta["venue"] == "bybit"
    ]
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(traces[0].y), 100 * first["venues"]["bybit"]["vol"])


@pytest.mark.data
def test_depth_weighted_residuals_in_a_fit(raw_data: Path) -> None:
    from volcal.calibration.quotes import prepare_quotes

    path = raw_data / "schepal-deribit" / "btc_options_data.csv"
    chain = volcal.clean(volcal.read_chain(path))
    q = prepare_quotes(chain)
    w = depth_weights(chain, q.row)
    assert w.shape == (len(q),) and w.mean() == pytest.approx(1.0)
    depth = np.minimum(chain.bid_size[q.row], chain.ask_size[q.row])
    assert np.corrcoef(w, np.sqrt(1 + depth))[0, 1] == pytest.approx(1.0)
    fit = volcal.calibrate(chain, "svi", weights=w)
    plain = volcal.calibrate(chain, "svi")
    assert fit.n_used == plain.n_used
    np.testing.assert_allclose(fit.weights, w)


@pytest.mark.data
def test_every_venue_quote_can_say_why(
    venues: dict[str, volcal.OptionChain], ref: volcal.OptionChain
) -> None:
    res = volcal.aggregate({**venues, "bad": wing_shifted(ref, 0.10)})
    name = "bad:" + str(res.quotes.instrument[res.quote_venue == "bad"][0]).split(":", 1)[1]
    assert {"venue_quarantined", "venue_merged"} <= set(res.quotes.why(name))
    df = res.quotes_frame()
    assert set(df["venue"]) == {*venues, "bad"}
    assert "deviation_vol_pts" in df and len(res.consensus_frame()) == len(res.chain)


@pytest.mark.data
def test_cli_venues_reads_a_tardis_file_with_several_exchanges(
    venues: dict[str, volcal.OptionChain], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from volcal.cli import main
    from volcal.feeds import tardis

    p = tmp_path / "options_chain.csv"
    tardis.to_tardis({k: venues[k] for k in ("deribit", "okx", "bybit")}).to_csv(p, index=False)
    assert main(["venues", str(p), "--json"]) == 0
    d = cli_json(capsys.readouterr().out, "venues")
    assert set(d["venues"]) == {"deribit", "okx", "bybit"}
    assert d["venues"]["bybit"]["median_deviation_vol_pts"] == pytest.approx(0.3, abs=0.02)


@pytest.mark.data
def test_quarantine_persists_across_snapshots(
    venues: dict[str, volcal.OptionChain], ref: volcal.OptionChain
) -> None:
    """A venue shifting 15% of its quotes (below the 20% limit) is tolerated once; the
    same deviation in the next snapshot, or after a quarantine, is persistent."""
    from venue_helpers import requote

    ch = venues["deribit"]
    b, a = vols(ch, "bid"), vols(ch, "ask")
    k = np.abs(np.log(ch.strike / ch.forward))
    far = k >= np.quantile(k, 0.85)  # the farthest 15% of strikes
    bad = requote(ch, np.where(far, b + 0.10, b), np.where(far, a + 0.10, a))
    first = volcal.aggregate({**venues, "bad": bad})
    v = first.venue("bad")
    assert v.status == "ok" and 0.1 <= v.n_outliers / v.n_compared < 0.2
    second = volcal.aggregate({**venues, "bad": bad}, previous=first)
    assert second.venue("bad").status == "quarantined"
    assert "persistent" in second.venue("bad").reason
    # after a full quarantine, a venue with no outliers is released
    worse = volcal.aggregate({**venues, "bad": wing_shifted(ref, 0.10)})
    assert worse.venue("bad").status == "quarantined"
    healed = volcal.aggregate({**venues, "bad": venues["deribit"]}, previous=worse)
    assert healed.venue("bad").status == "ok"
    still = volcal.aggregate({**venues, "bad": bad}, previous=worse)
    assert still.venue("bad").status == "quarantined"
    with pytest.raises(ParameterError, match="previous"):
        volcal.aggregate(venues, previous={"x": 1})  # type: ignore[arg-type]


@functools.cache
def _synthetic(seed: int) -> volcal.OptionChain:
    base = synthetic_chain(seed=seed)
    return base.select(np.isfinite(base.bid) & (base.bid > 0))


@settings(max_examples=12, deadline=None)
@given(
    order=st.permutations(["a", "b", "c", "d"]),
    shift=st.floats(min_value=-0.004, max_value=0.004),
    seed=st.integers(min_value=0, max_value=3),
)
def test_consolidated_book_is_order_free_and_never_worse_than_any_venue(
    order: list[str], shift: float, seed: int
) -> None:
    """Property: the consolidated best bid/offer does not depend on the order of the
    venues, its bid vol is >= and its ask vol <= every live venue's, and each venue
    keeps all its quotes."""
    from venue_helpers import requote

    base = _synthetic(seed)
    b, a = vols(base, "bid"), vols(base, "ask")
    chains = {
        "a": base,
        "b": requote(base, b + shift, a + shift),
        "c": requote(base, b - 0.002, a + 0.002),
        "d": requote(base, b + 0.001, a - 0.001),
    }
    r1 = volcal.aggregate({k: chains[k] for k in order})
    r2 = volcal.aggregate(chains)
    np.testing.assert_array_equal(r1.chain.bid, r2.chain.bid)
    np.testing.assert_array_equal(r1.chain.ask, r2.chain.ask)
    cb, ca = vols(r1.chain, "bid"), vols(r1.chain, "ask")
    order_ = np.lexsort((base.is_call, base.strike, base.expiry))
    for name, ch in chains.items():
        assert np.sum(r1.quote_venue == name) == len(ch)
        if r1.venue(name).status != "ok":
            continue
        vb, va = vols(ch, "bid")[order_], vols(ch, "ask")[order_]
        m = np.isfinite(vb) & np.isfinite(cb)
        assert np.all(cb[m] >= vb[m] - 1e-9)
        m = np.isfinite(va) & np.isfinite(ca)
        assert np.all(ca[m] <= va[m] + 1e-9)
