"""``volcal.quality.why``: every reason comes with the value that set it and the
threshold it broke, on hand-made chains where both are known."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import volcal
from volcal.black import price as black_price
from volcal.errors import DataError
from volcal.market import OptionChain
from volcal.quality import QualityPolicy, QuoteValues, clean, why

SNAP = pd.Timestamp("2026-01-07T09:00Z")
F = 100.0
EXPIRY = "2026-04-07T08:00Z"
STRIKES = np.arange(70.0, 135.0, 5.0)


def _base(**kw: object) -> OptionChain:
    """Linear chain, calls and puts at 13 strikes, bid/ask at a smile vol -/+ 0.5."""
    t = (pd.Timestamp(EXPIRY) - SNAP) / pd.Timedelta(days=365)
    k = np.log(STRIKES / F)
    vol = np.tile(0.5 - 0.2 * k + 0.8 * k * k, 2)
    strikes = np.tile(STRIKES, 2)
    calls = np.repeat([True, False], STRIKES.size)
    args: dict[str, object] = dict(
        underlying="BTC", snapshot=SNAP, settlement="linear", forward=F,
        expiry=np.full(strikes.size, EXPIRY, dtype=object), strike=strikes, is_call=calls,
        bid=np.round(black_price(F, strikes, t, vol - 0.005, calls), 8),
        ask=np.round(black_price(F, strikes, t, vol + 0.005, calls), 8),
    )  # fmt: skip
    args.update(kw)
    return OptionChain.from_arrays(**args)  # type: ignore[arg-type]


def _set(ch: OptionChain, i: int, **values: float) -> OptionChain:
    changes = {}
    for name, v in values.items():
        arr = getattr(ch, name).copy()
        arr[i] = v
        changes[name] = arr
    return ch.replace(**changes)


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", line.split(":", 1)[1])]


def test_wide_spread_says_the_relative_spread_and_the_limit() -> None:
    raw = _base()
    i = int(np.flatnonzero((raw.strike == 130.0) & raw.is_call)[0])
    ch = clean(_set(raw, i, bid=raw.ask[i] / 4.0))
    (line,) = [s for s in why(ch, ch.instrument[i]) if s.startswith("wide_spread")]
    rel = (ch.ask[i] - ch.bid[i]) / (0.5 * (ch.ask[i] + ch.bid[i]))
    assert line.startswith("wide_spread: (ask - bid) / mid")
    assert _numbers(line)[:2] == [round(rel, 2), 1.0]
    # the threshold follows the policy the chain was cleaned with
    looser = clean(_set(raw, i, bid=raw.ask[i] / 2.5), QualityPolicy(max_relative_spread=0.5))
    (line,) = [s for s in why(looser, ch.instrument[i]) if s.startswith("wide_spread")]
    assert "> 0.50" in line


def test_near_expiry_stale_crossed_and_missing_bid() -> None:
    raw = _base()
    snap = np.datetime64(SNAP.tz_localize(None), "ns")
    qt = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    i, j, m = 8, 9, 10  # the 110, 115 and 120 calls (out of the money)
    qt[i] = snap - np.timedelta64(7200, "s")
    ch = clean(_set(_set(raw.replace(quote_time=qt), j, bid=raw.ask[j] * 1.1), m, bid=0.0))
    assert why(ch, ch.instrument[i]) == ["stale: quote 7200 s old > 3600 s"]
    (crossed,) = [s for s in why(ch, ch.instrument[j]) if s.startswith("crossed")]
    assert _numbers(crossed) == pytest.approx([ch.bid[j], ch.ask[j]], rel=1e-3)
    assert why(ch, ch.instrument[m]) == ["missing_bid: bid 0 (needs > 0)"]
    soon = clean(_base(snapshot=pd.Timestamp(EXPIRY) - pd.Timedelta(hours=3)))
    line = next(s for s in why(soon, soon.instrument[0]) if s.startswith("near_expiry"))
    assert _numbers(line) == [0.125, 0.25]


def test_outlier_reports_its_distance_and_both_limits() -> None:
    raw = _base()
    i = int(np.flatnonzero((raw.strike == 110.0) & raw.is_call)[0])
    t = (pd.Timestamp(EXPIRY) - SNAP) / pd.Timedelta(days=365)
    k = np.log(110.0 / F)
    vol = 0.5 - 0.2 * k + 0.8 * k * k + 0.08  # 8 vol points rich
    bumped = _set(
        raw,
        i,
        bid=float(black_price(F, 110.0, t, vol - 0.005, True)),
        ask=float(black_price(F, 110.0, t, vol + 0.005, True)),
    )
    ch = clean(bumped)
    assert "outlier" in ch.why(ch.instrument[i])
    line = next(s for s in why(ch, ch.instrument[i]) if s.startswith("outlier"))
    dev, limit, thr, min_vol = _numbers(line)
    assert dev == pytest.approx(8.0, abs=0.6) and abs(dev) > limit and abs(dev) > min_vol
    assert (thr, min_vol) == (5.0, 2.0)


def test_values_are_read_only_and_survive_select_and_json() -> None:
    raw = _base()
    ch = clean(_set(raw, 5, bid=0.0))
    values = ch.meta["quality_values"]
    assert isinstance(values, QuoteValues)
    with pytest.raises(ValueError):
        values.rel_spread[0] = 1.0
    sub = ch.select(np.arange(3, 9))
    assert why(sub, ch.instrument[5]) == why(ch, ch.instrument[5])
    d = values.to_dict()
    assert len(d["instrument"]) == len(ch) and d["rel_spread"][5] is None


def test_unclean_chain_and_unknown_instrument() -> None:
    raw = _base()
    flagged = raw.with_flags(np.where(np.arange(len(raw)) == 2, 1 << 8, 0).astype(np.uint32))
    assert why(flagged, raw.instrument[2]) == ["stale: quote older than the staleness limit"]
    assert why(clean(raw), raw.instrument[7]) == []  # the 105 call: nothing to say
    with pytest.raises(DataError, match="not in the chain"):
        why(raw, "BTC-1JAN30-1-C")
    with pytest.raises(DataError):
        why("chain", "x")  # type: ignore[arg-type]


@pytest.mark.data
def test_every_reason_on_a_real_chain_has_a_value(snapshot_dir: object) -> None:
    from pathlib import Path

    path = sorted(Path(str(snapshot_dir)).glob("deribit_options_snapshot_*.csv"))[20]
    ch = clean(volcal.read_chain(path, currency="BTC"))
    generic = {f"{c}: {t}" for c, t in volcal.market.flags.REASONS.values()}
    flagged = np.flatnonzero(ch.flags != 0)
    assert flagged.size > 100
    for i in flagged:
        lines = why(ch, ch.instrument[i])
        assert len(lines) == len(ch.why(ch.instrument[i])), lines
        assert not set(lines) & generic, lines
        assert all(re.search(r"\d", s) for s in lines if not s.startswith("no_forward")), lines
