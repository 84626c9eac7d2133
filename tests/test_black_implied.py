"""Implied volatility: round trips over extreme grids, bad-input statuses, peers as oracles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from volcal.black import IVResult, IVStatus, implied_vol, price, vega
from volcal.errors import DataWarning, ParameterError


def _grid() -> tuple[np.ndarray, ...]:
    """k from -10 to +10 standard deviations, one hour to 5 years, vol 1e-4 to 5, both types."""
    sd = np.linspace(-10.0, 10.0, 41)
    t = np.array([1.0 / 8760.0, 1.0 / 365.0, 0.1, 1.0, 5.0])
    vol = np.array([1e-4, 1e-3, 0.05, 0.3, 1.0, 2.5, 5.0])
    sd, t, vol = (a.ravel() for a in np.meshgrid(sd, t, vol, indexing="ij"))
    forward = np.full(sd.shape, 30_000.0)
    strike = forward * np.exp(sd * vol * np.sqrt(t))
    return forward, strike, t, vol


def _information_bound(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vol change caused by rounding the price to double: a few ulp(p) / vega."""
    return 4.0 * np.finfo(float).eps * p / np.maximum(v, 1e-300)


def test_round_trip_otm_extreme_grid_to_1e12() -> None:
    forward, strike, t, vol = _grid()
    is_call = strike >= forward  # out of the money: the side that carries the information
    p = price(forward, strike, t, vol, is_call)
    res = implied_vol(p, forward, strike, t, is_call, full_output=True)
    assert isinstance(res, IVResult)
    informative = p > 0.0  # 10 sd at vol 1e-4 and one hour still leaves ~1e-20: check, not assume
    assert informative.mean() > 0.95
    assert np.all(res.status[informative] == IVStatus.OK)
    assert np.all(res.status[~informative] == IVStatus.AT_INTRINSIC)
    err = np.abs(res.vol - vol)
    info = _information_bound(p, vega(forward, strike, t, vol))
    # Where the price pins the vol to better than 1e-13, the solver reaches 1e-12 ...
    sharp = informative & (info <= 1e-13)
    assert sharp.mean() > 0.9
    assert err[sharp].max() <= 1e-12
    # ... and elsewhere (price within ulps of its bound, e.g. vol 5 over 5 years) the error
    # stays within what the rounding of the price itself allows.
    assert np.all(err[informative] <= 1e-12 + info[informative])


def test_round_trip_itm_within_information_bound() -> None:
    """ITM inputs go through parity; the error is bounded by input rounding / vega."""
    forward, strike, t, vol = _grid()
    is_call = strike < forward  # in the money
    p = price(forward, strike, t, vol, is_call)
    res = implied_vol(p, forward, strike, t, is_call, full_output=True)
    bound = 1e-12 + 2.0 * _information_bound(p, vega(forward, strike, t, vol))
    solved = res.status == IVStatus.OK
    assert np.all(np.abs(res.vol - vol)[solved] <= bound[solved])
    # Every ITM option whose time value is large against its rounding is solved.
    intrinsic = np.maximum(np.where(is_call, forward - strike, strike - forward), 0.0)
    assert np.all(solved[(p - intrinsic) > 1e-10 * p])
    # Where it is not solved, the price rounded onto one of its bounds: the time value
    # vanished (deep ITM, tiny vol) or the price equals F / K (huge vol over years).
    upper = np.where(is_call, forward, strike)
    at_low = (res.status == IVStatus.AT_INTRINSIC) & (p == intrinsic)
    at_high = (res.status == IVStatus.ABOVE_BOUND) & (p == upper)
    assert np.all(solved | at_low | at_high)


def test_puts_and_calls_give_the_same_vol() -> None:
    f, k, t, vol = 100.0, np.array([50.0, 90.0, 100.0, 110.0, 200.0]), 0.5, 0.7
    vc = implied_vol(price(f, k, t, vol, True), f, k, t, True)
    vp = implied_vol(price(f, k, t, vol, False), f, k, t, False)
    np.testing.assert_allclose(vc, vol, rtol=0, atol=1e-13)
    np.testing.assert_allclose(vp, vol, rtol=0, atol=1e-13)


def test_discount_and_broadcasting() -> None:
    # Fang & Oosterlee (2008), Table 2 set-up: S=100, r=0.1, T=0.1; F = S e^{rT}, D = e^{-rT}.
    r, t = 0.1, 0.1
    forward, discount = 100.0 * np.exp(r * t), np.exp(-r * t)
    strikes = np.array([[80.0], [100.0], [120.0]])
    vols = np.array([0.3, 0.6, 0.9])  # K=80 stays within 2.5 sd: ITM input keeps its digits
    p = price(forward, strikes, t, vols, True, discount)
    assert p.shape == (3, 3)
    iv = implied_vol(p, forward, strikes, t, True, discount)
    assert iv.shape == (3, 3)
    np.testing.assert_allclose(iv, np.broadcast_to(vols, (3, 3)), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("p", "f", "k", "t", "call", "df", "expected"),
    [
        (19.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.BELOW_INTRINSIC),
        (9.0, 100.0, 110.0, 1.0, False, 1.0, IVStatus.BELOW_INTRINSIC),
        (19.7, 100.0, 80.0, 1.0, True, 0.99, IVStatus.BELOW_INTRINSIC),  # 19.7/0.99 < 20
        (20.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.AT_INTRINSIC),
        (0.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.AT_INTRINSIC),
        (100.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.ABOVE_BOUND),
        (150.0, 100.0, 80.0, 1.0, True, 1.0, IVStatus.ABOVE_BOUND),
        (80.0, 100.0, 80.0, 1.0, False, 1.0, IVStatus.ABOVE_BOUND),
        (99.5, 100.0, 80.0, 1.0, True, 0.99, IVStatus.ABOVE_BOUND),  # above D F = 99
        (np.nan, 100.0, 80.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, np.inf, 80.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, -100.0, 80.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, 100.0, 0.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, 100.0, 80.0, 0.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, 100.0, 80.0, -1.0, True, 1.0, IVStatus.INVALID_INPUT),
        (5.0, 100.0, 80.0, 1.0, True, 0.0, IVStatus.INVALID_INPUT),
        (-1.0, 100.0, 120.0, 1.0, True, 1.0, IVStatus.INVALID_INPUT),
    ],
)
def test_every_bad_input_has_a_status_and_nan(
    p: float, f: float, k: float, t: float, call: bool, df: float, expected: IVStatus
) -> None:
    res = implied_vol(p, f, k, t, call, df, full_output=True)
    assert int(res.status) == expected
    assert np.isnan(res.vol)
    assert res.reasons().item() == expected.describe()
    assert expected.name in res.describe()
    assert res.to_dict()["status"] == [expected.name]
    assert res.to_dict()["vol"] == [None]


def test_nan_without_full_output_warns_with_reasons() -> None:
    with pytest.warns(DataWarning, match="BELOW_INTRINSIC: 1"):
        out = implied_vol([1.0, 25.0], 100.0, 80.0, 1.0, True)
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_no_warning_when_all_solved() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        implied_vol(price(100.0, 90.0, 1.0, 0.5, True), 100.0, 90.0, 1.0, True)


def test_result_reports() -> None:
    res = implied_vol([10.0, -1.0, 200.0], 100.0, 100.0, 1.0, True, full_output=True)
    assert res.counts() == {"OK": 1, "ABOVE_BOUND": 1, "INVALID_INPUT": 1}
    assert "1/3 solved" in res.summary()
    assert res.ok.tolist() == [True, False, False]
    with pytest.raises(AttributeError):
        res.vol = np.zeros(3)  # type: ignore[misc]


def test_is_call_must_be_boolean() -> None:
    with pytest.raises(ParameterError):
        implied_vol(5.0, 100.0, 100.0, 1.0, "call")
    with pytest.raises(ParameterError):
        implied_vol(5.0, 100.0, 100.0, 1.0, 2)


def test_lazy_top_level_export() -> None:
    import volcal

    assert volcal.implied_vol is implied_vol


@pytest.mark.parametrize(
    ("f", "k", "t", "vol"),
    [
        (1.0, 1e5, 1.0, 0.5),  # price ~ 8.5e-117: far wing, still full precision
        (1.0, 1.5, 1.0, 0.05),  # price ~ 1.9e-18, 8 sd
        (1.0, 1.0 + 1e-12, 1.0, 1e-4),  # strike a hair off the forward
        (1.0, 1.0, 1.0 / 8760.0, 1e-8),  # ATM, one hour, vol far below the grid
        (1.0, 1.0, 1.0, 8.0),  # s = 8: price 0.99994, upper branch
    ],
)
def test_extreme_single_points(f: float, k: float, t: float, vol: float) -> None:
    p = price(f, k, t, vol, True)
    assert 0.0 < p < f
    res = implied_vol(p, f, k, t, True, full_output=True)
    assert int(res.status) == IVStatus.OK
    info = 4 * np.finfo(float).eps * float(p) / float(vega(f, k, t, vol))
    assert abs(float(res.vol) - vol) <= 1e-12 * max(vol, 1e-3) + info


def test_underflowed_and_saturated_prices_have_reasons() -> None:
    # x = ln(1e-200): the call price underflows to exactly 0 -> no information.
    res = implied_vol(price(1.0, 1e200, 1.0, 5.0, True), 1.0, 1e200, 1.0, True, full_output=True)
    assert int(res.status) == IVStatus.AT_INTRINSIC
    # s = 50: the call price rounds to F -> at the upper bound.
    res = implied_vol(price(1.0, 1.0, 100.0, 5.0, True), 1.0, 1.0, 100.0, True, full_output=True)
    assert int(res.status) == IVStatus.ABOVE_BOUND


def test_read_only_and_writable_inputs_share_one_compiled_loop() -> None:
    """Read-only inputs (an OptionChain's columns) and writable ones give the same vols
    through the same compiled specialisation, the writable one the calibration objective
    calls directly: a second one would be a second cache load in every fresh process
    (the CLI's start-up)."""
    from numba.core import types

    from volcal.black import _kernels

    forward, strike, t, vol = _grid()
    is_call = strike >= forward
    p = price(forward, strike, t, vol, is_call)
    frozen = [np.array(a) for a in (p, forward, strike, t, is_call)]
    for a in frozen:
        a.flags.writeable = False
    writable = [np.array(a) for a in frozen]
    before = [a.copy() for a in writable]
    got_ro = implied_vol(*frozen, full_output=True)
    sigs = set(_kernels.implied_vol_loop.signatures)
    got_rw = implied_vol(*writable, full_output=True)
    assert set(_kernels.implied_vol_loop.signatures) == sigs
    readonly = [a for sig in sigs for a in sig if isinstance(a, types.Array) and not a.mutable]
    assert readonly == []
    np.testing.assert_array_equal(got_ro.vol, got_rw.vol)
    np.testing.assert_array_equal(got_ro.status, got_rw.status)
    for a, b in zip(writable, before, strict=True):
        np.testing.assert_array_equal(a, b)  # inputs passed through are never written
    assert all(not a.flags.writeable for a in frozen)
