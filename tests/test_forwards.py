"""Forwards: parity recovery on synthetic chains, agreement with quoted futures on real data.

Parity relations (derived in ``volcal.market.forwards``): linear ``C - P = D (F - K)``;
inverse coin prices ``c - p = 1 - K / F``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

import volcal
from volcal.errors import ParameterError
from volcal.market import Flag, OptionChain, estimate_forwards

SNAP = pd.Timestamp("2026-01-07T09:00:00Z")


def _black(f: np.ndarray, k: np.ndarray, t: np.ndarray, vol: float, call: np.ndarray) -> np.ndarray:
    """Undiscounted Black-76 price (Black 1976)."""
    s = vol * np.sqrt(t)
    d1 = np.log(f / k) / s + 0.5 * s
    c = f * ndtr(d1) - k * ndtr(d1 - s)
    return np.where(call, c, c - (f - k))


def _synthetic(
    settlement: str, fwds: dict[float, float], dfs: dict[float, float], spread: float = 0.0
) -> OptionChain:
    rows = []
    for t, f in fwds.items():
        ks = f * np.exp(np.linspace(-0.4, 0.4, 15))
        for call in (True, False):
            price = _black(
                np.full(ks.size, f), ks, np.full(ks.size, t), 0.6, np.full(ks.size, call)
            )
            if settlement == "inverse":
                price = price / f
            else:
                price = price * dfs[t]
            for k, p in zip(ks, price, strict=True):
                rows.append((t, k, call, p))
    t, k, c, p = map(np.array, zip(*rows, strict=True))
    exp = SNAP + pd.to_timedelta(np.round(t * 365 * 86400), unit="s")
    return OptionChain.from_arrays(
        underlying="BTC",
        snapshot=SNAP,
        settlement=settlement,
        expiry=exp.to_numpy(),
        strike=k,
        is_call=c,
        bid=p * (1 - spread),
        ask=p * (1 + spread),
    )


@pytest.mark.parametrize("settlement", ["inverse", "linear"])
def test_parity_forward_recovered_exactly(settlement: str) -> None:
    fwds = {0.05: 91_234.5, 0.25: 93_000.0, 1.0: 97_500.25}
    dfs = {0.05: 0.9975, 0.25: 0.9876, 1.0: 0.95}
    chain = _synthetic(settlement, fwds, dfs)
    assert np.all(np.isnan(chain.underlying_price))
    out, rep = estimate_forwards(chain)
    np.testing.assert_allclose(rep.used, list(fwds.values()), rtol=1e-12)
    assert rep.source == ("parity",) * 3
    assert np.all(rep.n_pairs == 6)
    if settlement == "linear":
        np.testing.assert_allclose(rep.discount, list(dfs.values()), rtol=1e-12)
        for t, d in dfs.items():
            sel = np.isclose(out.t, t, atol=1e-6)
            np.testing.assert_allclose(out.discount[sel], d, rtol=1e-12)
    else:
        assert np.all(rep.discount == 1.0)
    # forward written per expiry, chain otherwise unchanged, input untouched
    for t, f in fwds.items():
        np.testing.assert_allclose(out.forward[np.isclose(out.t, t, atol=1e-6)], f, rtol=1e-12)
    np.testing.assert_array_equal(out.bid, chain.bid)
    assert np.all(np.isnan(chain.forward))
    assert not np.any(out.flags & Flag.NO_FORWARD)


def test_linear_with_given_discount_uses_it() -> None:
    chain = _synthetic("linear", {0.5: 100.0}, {0.5: 0.98})
    _, rep = estimate_forwards(chain.replace(discount=np.full(len(chain), 0.98)))
    assert rep.used[0] == pytest.approx(100.0, rel=1e-12)
    assert rep.discount[0] == pytest.approx(0.98, rel=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    f=st.floats(50.0, 2e5),
    t=st.floats(0.01, 2.0),
    spread=st.floats(0.0, 0.02),
)
def test_inverse_parity_property(f: float, t: float, spread: float) -> None:
    """Symmetric relative spreads around parity-consistent mids keep mids on parity."""
    chain = _synthetic("inverse", {t: f}, {t: 1.0}, spread=spread)
    _, rep = estimate_forwards(chain, method="parity")
    assert rep.used[0] == pytest.approx(f, rel=1e-9)


def test_no_forward_flag_and_quoted_priority() -> None:
    # expiry A: only calls and no underlying -> no forward; expiry B: quoted underlying
    ch = OptionChain.from_arrays(
        underlying="BTC",
        snapshot=SNAP,
        settlement="inverse",
        expiry=["2026-02-27T08:00Z", "2026-02-27T08:00Z", "2026-03-27T08:00Z", "2026-03-27T08:00Z"],
        strike=[90e3, 100e3, 100e3, 100e3],
        is_call=[True, True, True, False],
        bid=[0.1, 0.05, 0.06, 0.04],
        ask=[0.11, 0.06, 0.06, 0.04],
        underlying_price=[np.nan, np.nan, 101_000.0, 101_000.0],
    )
    out, rep = estimate_forwards(ch, tolerance_bps=10.0)
    assert rep.source == ("none", "quoted")
    assert np.all(np.isnan(out.forward[:2])) and np.all(out.forward[2:] == 101_000.0)
    assert np.all(out.flags[:2] & Flag.NO_FORWARD) and not np.any(out.flags[2:] & Flag.NO_FORWARD)
    # parity: F = K / (1 - (c - p)) = 1e5 / 0.98
    assert rep.parity[1] == pytest.approx(1e5 / 0.98, rel=1e-14)
    assert rep.disagreement_bps[1] == pytest.approx(1e4 * (1e5 / 0.98 / 101_000.0 - 1), rel=1e-12)
    assert rep.flagged.tolist() == [False, True]
    assert np.all(out.flags[2:] & Flag.PARITY)
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["expiries"][0]["used"] is None and d["expiries"][1]["source"] == "quoted"
    assert "2026-03-27 08:00" in rep.summary()
    # method="parity" uses the parity value
    _, rep_p = estimate_forwards(ch, method="parity")
    assert rep_p.used[1] == pytest.approx(1e5 / 0.98, rel=1e-14)
    with pytest.raises(ParameterError, match="method"):
        estimate_forwards(ch, method="magic")  # type: ignore[arg-type]


@pytest.mark.data
def test_parity_agrees_with_quoted_futures_on_all_snapshots(snapshot_dir: Path) -> None:
    """Across all 57 snapshots x BTC/ETH (1,312 expiries), parity forwards from coin mids
    agree with Deribit's quoted future/synthetic underlying: measured median 1.6 bp,
    99th percentile 11 bp, max 42 bp. Asserted: every expiry within the default 50 bp
    tolerance (none flagged) and the 99th percentile below 15 bp."""
    dis = []
    for path in sorted(snapshot_dir.glob("deribit_options_snapshot_*.csv")):
        for cur in ("BTC", "ETH"):
            out, rep = estimate_forwards(volcal.read_chain(path, cur))
            assert not rep.flagged.any(), (path.name, cur, rep.summary())
            assert rep.source == ("quoted",) * len(rep.expiry)
            assert not np.any(out.flags & Flag.NO_FORWARD)
            dis.append(rep.disagreement_bps[np.isfinite(rep.disagreement_bps)])
    d = np.abs(np.concatenate(dis))
    assert d.size > 1200
    assert np.percentile(d, 99) < 15.0


def test_chain_method_keeps_own_forwards_and_fills_the_missing() -> None:
    # expiry 1 carries its own forward (no quoted future): kept per quote, not replaced by
    # parity; expiry 2 has none: put-call parity of its pair fills it
    ch = OptionChain.from_arrays(
        underlying="BTC",
        snapshot="2026-01-01T08:00Z",
        expiry=["2026-04-01T08:00Z"] * 2 + ["2026-07-01T08:00Z"] * 2,
        strike=[100.0, 100.0, 100.0, 100.0],
        is_call=[True, False, True, False],
        bid=[0.05, 0.03, 0.08, 0.05],
        ask=[0.05, 0.03, 0.08, 0.05],
        forward=[101.0, 101.5, np.nan, np.nan],
        settlement="inverse",
    )
    out, rep = estimate_forwards(ch, method="chain")
    assert out.forward[:2].tolist() == [101.0, 101.5]
    assert rep.source == ("chain", "parity")
    assert rep.used[0] == pytest.approx(101.25)
    assert out.forward[2] == pytest.approx(100.0 / (1.0 - 0.03)) == out.forward[3]
    with pytest.raises(ParameterError, match="'chain'"):
        estimate_forwards(ch, method="magic")  # type: ignore[arg-type]


def test_report_expiries_are_timestamps_made_when_read() -> None:
    """The report keeps its expiries as datetime64 and makes the tuple of tz-aware
    pandas.Timestamp of its public field only when read; text and tables the same."""
    ch = OptionChain.from_arrays(
        underlying="BTC",
        snapshot=np.datetime64("2026-01-07T09:00:00", "us"),
        expiry=np.array(["2026-04-01T08:00", "2026-02-27T08:00", "2026-04-01T08:00"], "M8[ns]"),
        strike=[100.0, 100.0, 100.0],
        is_call=[True, True, False],
        bid=[0.05, 0.04, 0.03],
        ask=[0.05, 0.04, 0.03],
        underlying_price=[101.0, 100.5, 101.0],
    )
    _, rep = estimate_forwards(ch)
    assert "_expiry_ts" not in rep.__dict__
    iso = rep.expiry_isoformat()
    assert iso == ["2026-02-27T08:00:00+00:00", "2026-04-01T08:00:00+00:00"]
    assert [e["expiry"] for e in rep.to_dict()["expiries"]] == iso
    assert "_expiry_ts" not in rep.__dict__
    want = (pd.Timestamp("2026-02-27T08:00Z"), pd.Timestamp("2026-04-01T08:00Z"))
    got = rep.expiry
    assert isinstance(got, tuple) and got == want
    assert all(isinstance(e, pd.Timestamp) and str(e.tz) == "UTC" for e in got)
    assert rep.expiry is got and rep.expiry_isoformat() == iso
    assert list(rep.to_frame()["expiry"]) == list(want)
    assert "2026-02-27 08:00" in rep.summary()


def test_report_with_a_missing_expiry_labels_it_nat() -> None:
    ch = OptionChain.from_arrays(
        underlying="BTC",
        snapshot=np.datetime64("2026-01-07T09:00:00", "us"),
        expiry=np.array(["2026-04-01T08:00", "NaT"], "M8[ns]"),
        strike=[100.0, 100.0],
        is_call=[True, False],
        bid=[0.05, 0.03],
        ask=[0.05, 0.03],
        underlying_price=[101.0, 101.0],
    )
    _, rep = estimate_forwards(ch)
    iso = [e["expiry"] for e in rep.to_dict()["expiries"]]
    assert iso == rep.expiry_isoformat() == ["2026-04-01T08:00:00+00:00", "NaT"]
    assert [e.isoformat() for e in rep.expiry] == iso
