"""Quote cleaning on hand-made chains: each defect is injected into an otherwise clean
chain and the exact flags and counts are asserted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcal
from volcal.black import price as black_price
from volcal.errors import DataError, ParameterError
from volcal.market import OptionChain
from volcal.market.flags import EXCLUDE_DEFAULT, Flag
from volcal.quality import CLEAN_FLAGS, QualityPolicy, clean, quality_report

SNAP = pd.Timestamp("2026-01-07T09:00Z")
F = 100.0


def _smile(k: np.ndarray) -> np.ndarray:
    return 0.5 - 0.2 * k + 0.8 * k * k


def _slice(
    expiry: str, strikes: np.ndarray, vol_shift: float = 0.0, half: float = 0.005
) -> dict[str, np.ndarray]:
    """Calls and puts at every strike, bid/ask = Black at smile vol -/+ ``half``."""
    t = (pd.Timestamp(expiry) - SNAP) / pd.Timedelta(days=365)
    k = np.log(strikes / F)
    strikes2 = np.concatenate([strikes, strikes])
    calls = np.concatenate([np.ones(strikes.size, bool), np.zeros(strikes.size, bool)])
    vol = np.concatenate([_smile(k), _smile(k)]) + vol_shift
    bid = black_price(F, strikes2, t, vol - half, calls)
    ask = black_price(F, strikes2, t, vol + half, calls)
    return {
        "expiry": np.full(strikes2.size, expiry, dtype=object),
        "strike": strikes2,
        "is_call": calls,
        "bid": np.round(bid, 8),
        "ask": np.round(ask, 8),
    }


def _chain(*slices: dict[str, np.ndarray], **kw: object) -> OptionChain:
    cols = {key: np.concatenate([s[key] for s in slices]) for key in slices[0]}
    args: dict[str, object] = {
        "underlying": "BTC",
        "snapshot": SNAP,
        "settlement": "linear",
        "forward": F,
        **cols,
    }
    args.update(kw)
    return OptionChain.from_arrays(**args)  # type: ignore[arg-type]


STRIKES = np.arange(70.0, 135.0, 5.0)  # 13 strikes, F = 100 in the middle


def _base() -> OptionChain:
    return _chain(_slice("2026-04-07T08:00Z", STRIKES))


def _idx(ch: OptionChain, strike: float, call: bool, expiry: str | None = None) -> int:
    sel = (ch.strike == strike) & (ch.is_call == call)
    if expiry is not None:
        sel &= ch.expiry == np.datetime64(pd.Timestamp(expiry).tz_localize(None), "ns")
    (i,) = np.flatnonzero(sel)
    return int(i)


def _with(ch: OptionChain, i: int, **values: float) -> OptionChain:
    changes = {}
    for name, v in values.items():
        arr = getattr(ch, name).copy()
        arr[i] = v
        changes[name] = arr
    return ch.replace(**changes)


def _flags_of(ch: OptionChain, i: int) -> set[str]:
    return set(volcal.market.decode(int(ch.flags[i])))


def test_clean_chain_only_flags_in_the_money_twins() -> None:
    ch = clean(_base())
    n_itm = int(np.sum(np.where(ch.is_call, ch.strike < F, ch.strike > F)))
    assert ch.flag_counts() == {"itm": n_itm}
    # out of the money and both at the money stay: 13 strikes -> 6 puts, 6 calls, 2 ATM
    assert int(ch.usable().sum()) == len(ch) - n_itm == 14
    rep = quality_report(ch)
    assert rep.n_used == 14 and rep.n_excluded == n_itm and rep.count("itm") == n_itm


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bid": np.nan}, {"missing_bid"}),
        ({"bid": 0.0}, {"missing_bid"}),
        ({"ask": np.nan}, {"missing_ask"}),
        ({"bid": np.nan, "ask": np.nan}, {"missing_bid", "missing_ask", "zero_price"}),
        ({"bid": -1.0}, {"invalid", "missing_bid"}),
    ],
)
def test_missing_and_bad_sides(change: dict[str, float], expected: set[str]) -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    ch = clean(_with(raw, i, **change))
    assert _flags_of(ch, i) == expected
    assert not ch.usable()[i]


def test_crossed_is_excluded_and_locked_is_a_warning() -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    j = _idx(raw, 85.0, False)
    ch = clean(_with(_with(raw, i, bid=raw.ask[i] * 1.1), j, ask=raw.bid[j]))
    assert _flags_of(ch, i) == {"crossed"}
    assert _flags_of(ch, j) == {"locked"}
    assert not ch.usable()[i] and ch.usable()[j]
    assert Flag.LOCKED not in EXCLUDE_DEFAULT


def test_stale_quotes_by_own_timestamp_only() -> None:
    raw = _base()
    qt = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    snap = np.datetime64(SNAP.tz_localize(None), "ns")
    i, j = _idx(raw, 110.0, True), _idx(raw, 120.0, True)
    qt[i] = snap - np.timedelta64(2, "h")  # older than the 1 h limit
    qt[j] = snap - np.timedelta64(30, "m")
    ch = clean(raw.replace(quote_time=qt))
    assert _flags_of(ch, i) == {"stale"}
    assert _flags_of(ch, j) == set()
    looser = clean(raw.replace(quote_time=qt), QualityPolicy(max_quote_age_s=3 * 3600))
    assert _flags_of(looser, i) == set()


def test_duplicates_keep_the_tightest_quote() -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    wide = raw.select(np.array([i]))
    wide = wide.replace(bid=wide.bid * 0.9, ask=wide.ask * 1.1)
    both = _chain(_slice("2026-04-07T08:00Z", STRIKES))
    cols = {
        name: np.concatenate([getattr(both, name), getattr(wide, name)])
        for name in ("expiry", "strike", "is_call", "bid", "ask")
    }
    ch = clean(_chain(cols))
    assert _flags_of(ch, len(ch) - 1) == {"duplicate"}
    assert _flags_of(ch, i) == set()
    assert quality_report(ch).count("duplicate") == 1


def test_price_bounds() -> None:
    raw = _base()
    i = _idx(raw, 80.0, True)  # in the money: intrinsic 0.2 F
    j = _idx(raw, 120.0, True)  # out of the money
    ch = clean(_with(_with(raw, i, bid=15.0, ask=18.0), j, bid=101.0, ask=102.0))
    assert {"below_intrinsic", "iv_failed"} <= _flags_of(ch, i)
    assert {"above_bound", "iv_failed"} <= _flags_of(ch, j)
    assert not ch.usable()[i] and not ch.usable()[j]


def test_wide_spread_relative_and_in_vol() -> None:
    raw = _base()
    i = _idx(raw, 125.0, True)
    j = _idx(raw, 75.0, False)
    t = float(raw.t[0])
    k = np.log(125.0 / F)
    bid_v = black_price(F, 125.0, t, _smile(np.array([k]))[0] - 0.2, True)
    ask_v = black_price(F, 125.0, t, _smile(np.array([k]))[0] + 0.2, True)  # 40 vol pts
    ch = clean(_with(_with(raw, i, bid=bid_v, ask=ask_v), j, bid=raw.bid[j] / 4.0))
    assert _flags_of(ch, i) == {"wide_spread"}  # 40 vol points wide
    assert "wide_spread" in _flags_of(ch, j)  # ask four times the bid
    ok = clean(
        _with(raw, i, bid=bid_v, ask=ask_v),
        QualityPolicy(max_vol_spread=0.5, max_relative_spread=10.0),
    )
    assert _flags_of(ok, i) == set()


def test_near_and_past_expiry() -> None:
    ch = clean(
        _chain(
            _slice("2026-04-07T08:00Z", STRIKES),
            _slice("2026-01-07T12:00Z", STRIKES),  # 3 hours
            {**_slice("2026-01-08T08:00Z", STRIKES), "expiry": np.full(26, "2026-01-06T08:00Z")},
        )
    )
    t = ch.t
    near = (t > 0) & (t < 0.25 / 365)
    assert np.all((ch.flags[near] & Flag.NEAR_EXPIRY) != 0)
    assert np.all((ch.flags[t <= 0] & Flag.EXPIRED) != 0)
    assert not ch.usable()[t < 0.25 / 365].any()
    assert np.count_nonzero(ch.flags & Flag.NEAR_EXPIRY) == 2 * STRIKES.size


def test_missing_forward_comes_from_parity_or_is_flagged() -> None:
    raw = _base().replace(forward=np.full(2 * STRIKES.size, np.nan))
    ch = clean(raw)
    assert np.allclose(ch.forward, F, rtol=1e-4)  # put-call parity on the pairs
    lone = raw.select(np.array([_idx(raw, 115.0, True)]))
    out = clean(lone)
    assert _flags_of(out, 0) == {"no_forward"}
    assert not out.usable()[0]


def test_monotonicity_is_an_executable_arbitrage() -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    j = _idx(raw, 120.0, True)
    ch = clean(_with(raw, j, bid=raw.ask[i] * 1.02, ask=raw.ask[i] * 1.05))
    assert "monotonicity" in _flags_of(ch, i) and "monotonicity" in _flags_of(ch, j)
    # a higher mid that is not executable (bid below the other's ask) is no arbitrage
    ch2 = clean(_with(raw, j, bid=raw.ask[i] * 0.99, ask=raw.ask[i] * 1.2))
    assert "monotonicity" not in _flags_of(ch2, j)


def test_convexity_flags_the_body_of_the_butterfly() -> None:
    raw = _base()
    lo, mid, hi = (_idx(raw, s, True) for s in (110.0, 115.0, 120.0))
    wings = 0.5 * (raw.ask[lo] + raw.ask[hi])
    ch = clean(_with(raw, mid, bid=wings * 1.03, ask=wings * 1.06))
    assert "convexity" in _flags_of(ch, mid)
    assert "convexity" not in _flags_of(ch, lo) | _flags_of(ch, hi)
    assert ch.usable()[lo] and ch.usable()[hi]


def test_parity_break_flags_the_pair() -> None:
    raw = _base()
    c, p = _idx(raw, 100.0, True), _idx(raw, 100.0, False)
    ch = clean(_with(raw, c, bid=raw.bid[c] + 2.0, ask=raw.ask[c] + 2.0))  # 2 % of F off
    assert "parity" in _flags_of(ch, c) and "parity" in _flags_of(ch, p)
    assert quality_report(ch).count("parity") == 2
    assert clean(raw).flag_counts().get("parity", 0) == 0


def test_calendar_violation_flags_the_later_expiry() -> None:
    early = _slice("2026-04-07T08:00Z", STRIKES)
    late = _slice("2026-04-21T08:00Z", STRIKES, vol_shift=-0.12)  # total variance lower
    ch = clean(_chain(early, late))
    late_rows = ch.expiry == np.datetime64("2026-04-21T08:00", "ns")
    cal = (ch.flags & Flag.CALENDAR) != 0
    assert cal[late_rows & ch.usable(int(EXCLUDE_DEFAULT & ~Flag.CALENDAR))].all()
    assert not cal[~late_rows].any()
    fine = clean(_chain(early, _slice("2026-04-21T08:00Z", STRIKES)))
    assert not ((fine.flags & Flag.CALENDAR) != 0).any()


def test_outlier_against_the_robust_smile() -> None:
    raw = _base()
    i = _idx(raw, 120.0, True)
    t = float(raw.t[0])
    v = _smile(np.array([np.log(120.0 / F)]))[0] + 0.10  # 10 vol points off
    ch = clean(
        _with(
            raw,
            i,
            bid=black_price(F, 120.0, t, v - 0.005, True),
            ask=black_price(F, 120.0, t, v + 0.005, True),
        )
    )
    out = np.flatnonzero(ch.flags & Flag.OUTLIER)
    assert out.tolist() == [i]
    assert not ch.usable()[i]


def test_clean_is_idempotent_and_keeps_every_row() -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    dirty = _with(raw, i, bid=raw.ask[i] * 1.1)
    once = clean(dirty)
    twice = clean(once)
    assert len(once) == len(dirty) == len(twice)
    assert np.array_equal(once.flags, twice.flags)
    assert np.array_equal(once.bid, dirty.bid, equal_nan=True)


def test_custom_policy_travels_with_the_chain() -> None:
    raw = _base()
    i = _idx(raw, 115.0, True)
    pol = QualityPolicy(exclude=EXCLUDE_DEFAULT & ~Flag.ITM)
    ch = clean(_with(raw, i, bid=raw.ask[i] * 1.1), pol)
    assert ch.usable().sum() == len(ch) - 1  # in-the-money quotes now kept
    rep = quality_report(ch)
    assert rep.policy == pol and not next(r for r in rep.reasons if r.code == "itm").excluded
    q = volcal.calibration.prepare_quotes(ch)
    assert len(q) == len(ch) - 1


@pytest.mark.parametrize(
    "bad",
    [
        {"min_days": -1.0},
        {"max_vol_spread": float("nan")},
        {"forwards": "magic"},
        {"outlier_threshold": "5"},
    ],
)
def test_policy_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ParameterError, match="QualityPolicy"):
        QualityPolicy(**bad)  # type: ignore[arg-type]


def test_clean_rejects_non_chains() -> None:
    with pytest.raises(DataError, match="OptionChain"):
        clean(pd.DataFrame())  # type: ignore[arg-type]


def test_report_counts_add_up_and_serialise() -> None:
    raw = _base()
    i, j = _idx(raw, 115.0, True), _idx(raw, 85.0, False)
    ch = clean(_with(_with(raw, i, bid=raw.ask[i] * 1.1), j, bid=np.nan))
    rep = quality_report(ch)
    assert sum(r.primary for r in rep.reasons) == rep.n_excluded
    assert rep.n_used + rep.n_excluded == rep.n_quotes == len(ch)
    d = json.loads(json.dumps(rep.to_dict()))
    assert {r["code"] for r in d["reasons"]} == {"itm", "crossed", "missing_bid"}
    assert d["per_expiry"][0]["n_quotes"] == len(ch)
    assert "excluded" in rep.summary()
    assert rep.to_frame().shape[0] == len(rep.reasons)
    with pytest.raises(DataError, match="unknown reason"):
        rep.count("nonsense")


def test_quality_report_cleans_a_raw_chain() -> None:
    rep = quality_report(_base())
    assert rep.count("itm") > 0 and rep.forwards is not None
    # the chain's own forward is kept and reported, with its parity cross-check
    assert rep.forwards.source == ("chain",)
    assert rep.forwards.used[0] == F
    assert abs(rep.forwards.parity[0] - F) < 0.05


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from([60.0, 80.0, 90.0, 100.0, 110.0, 150.0]),
            st.booleans(),
            st.one_of(st.just(np.nan), st.floats(-1.0, 50.0)),
            st.one_of(st.just(np.nan), st.floats(-1.0, 50.0)),
            st.sampled_from(["2026-01-07T08:00Z", "2026-01-08T08:00Z", "2026-03-27T08:00Z"]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_clean_never_raises_or_drops_rows(
    data: list[tuple[float, bool, float, float, str]],
) -> None:
    k, c, b, a, e = zip(*data, strict=True)
    raw = OptionChain.from_arrays(
        underlying="BTC",
        snapshot=SNAP,
        settlement="linear",
        expiry=list(e),
        strike=list(k),
        is_call=list(c),
        bid=list(b),
        ask=list(a),
        forward=F,
    )
    ch = clean(raw)
    assert len(ch) == len(raw)
    assert np.all(
        (
            ch.flags
            & ~np.uint32(
                int(CLEAN_FLAGS)
                | int(Flag.INVALID)
                | int(Flag.MISSING_BID)
                | int(Flag.MISSING_ASK)
                | int(Flag.ZERO_PRICE)
            )
        )
        == 0
    )
    # every usable quote has a two-sided, uncrossed market and time to expiry
    u = ch.usable()
    assert np.all(ch.bid[u] > 0) and np.all(ch.ask[u] >= ch.bid[u]) and np.all(ch.t[u] > 0)
