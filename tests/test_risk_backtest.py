"""VaR backtests: hand-computed Kupiec / Christoffersen cases, Basel table, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from volcal.errors import DataError, ParameterError
from volcal.risk import christoffersen, kupiec, traffic_light
from volcal.risk.backtest import BASEL_MULTIPLIERS


def test_kupiec_hand_computed_basel_case() -> None:
    # n = 250, x = 6, p = 0.01, pi_hat = 6/250 = 0.024
    # ln L0 = 244 ln 0.99 + 6 ln 0.01 = -2.4522819 - 27.6310211 = -30.0833031
    # ln L1 = 244 ln 0.976 + 6 ln 0.024 = -5.9274170 - 22.3782087 = -28.3056257
    # LR = -2 (ln L0 - ln L1) = 3.5553548
    exc = np.zeros(250, dtype=bool)
    exc[[3, 40, 41, 100, 180, 249]] = True
    res = kupiec(exc, 0.01)
    assert res.statistic == pytest.approx(3.5553548, abs=2e-6)
    assert res.df == 1 and res.n == 250 and res.exceptions == 6
    # chi2(1) survival = erfc(sqrt(LR / 2))
    assert res.pvalue == pytest.approx(math.erfc(math.sqrt(3.5553548 / 2)), rel=1e-5)
    assert not res.reject(0.05)


def test_kupiec_zero_exceptions() -> None:
    # x = 0: ln L1 = 0 (pi_hat = 0, 0^0 = 1); ln L0 = 100 ln 0.95 = -5.1293294
    # LR = 10.2586589, p-value = erfc(sqrt(5.1293294)) = 0.0013604
    res = kupiec(np.zeros(100), 0.05)
    assert res.statistic == pytest.approx(10.2586589, abs=1e-6)
    assert res.pvalue == pytest.approx(0.0013604, abs=2e-7)
    assert res.reject(0.01)


def test_kupiec_exact_rate_is_zero() -> None:
    assert kupiec([1] + [0] * 99, 0.01).statistic == 0.0
    assert kupiec([1] + [0] * 99, 0.01).pvalue == pytest.approx(1.0)


def test_christoffersen_hand_computed_clustered() -> None:
    # sequence 0 0 1 1 0 0 0 0 0 0: transitions 00,01,11,10,00,00,00,00,00
    # n00 = 6, n01 = 1, n10 = 1, n11 = 1; pi01 = 1/7, pi11 = 1/2, pi = 2/9
    # ln L(pi)   = 7 ln(7/9) + 2 ln(2/9) = -1.7592010 - 3.0081548 = -4.7673558
    # ln L(pi_ij) = 6 ln(6/7) + ln(1/7) + ln(1/2) + ln(1/2) = -0.9249041 - 1.9459101 - 1.3862944
    #             = -4.2571086
    # LR_ind = 2 (4.7673558 - 4.2571086) = 1.0204944
    # Kupiec (n=10, x=2, p=0.1): ln L0 = 8 ln 0.9 + 2 ln 0.1 = -5.4480544,
    #   ln L1 = 8 ln 0.8 + 2 ln 0.2 = -5.0040242; LR_pof = 0.8880602
    # LR_cc = 1.9085546 ~ chi2(2): p = exp(-LR_cc / 2) = 0.3850904
    res = christoffersen([0, 0, 1, 1, 0, 0, 0, 0, 0, 0], 0.1)
    assert (res.n00, res.n01, res.n10, res.n11) == (6, 1, 1, 1)
    assert res.pi01 == pytest.approx(1 / 7) and res.pi11 == pytest.approx(0.5)
    assert res.independence.statistic == pytest.approx(1.0204944, abs=2e-6)
    assert res.coverage.statistic == pytest.approx(0.8880602, abs=2e-6)
    assert res.statistic == pytest.approx(1.9085546, abs=4e-6)
    assert res.df == 2
    assert res.pvalue == pytest.approx(math.exp(-1.9085546 / 2), abs=2e-6)
    assert res.independence.pvalue == pytest.approx(chi2.sf(1.0204944, 1), abs=1e-6)


def test_christoffersen_hand_computed_no_consecutive() -> None:
    # 1 0 1 0 0 0: transitions 10,01,10,00,00 -> n00=2, n01=1, n10=2, n11=0
    # pi01 = 1/3, pi11 = 0, pi = 1/5
    # ln L(pi) = 4 ln 0.8 + ln 0.2 = -0.8925742 - 1.6094379 = -2.5020121
    # ln L(pi_ij) = 2 ln(2/3) + ln(1/3) + 2 ln 1 + 0 = -0.8109302 - 1.0986123 = -1.9095425
    # LR_ind = 1.1849392
    res = christoffersen([1, 0, 1, 0, 0, 0], 0.05)
    assert (res.n00, res.n01, res.n10, res.n11) == (2, 1, 2, 0)
    assert res.independence.statistic == pytest.approx(1.1849392, abs=2e-6)


def test_christoffersen_no_exceptions_is_independent() -> None:
    res = christoffersen(np.zeros(300, dtype=bool), 0.01)
    assert res.independence.statistic == 0.0
    assert res.independence.pvalue == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("x", "zone", "mult"),
    [
        (0, "green", 3.0),
        (4, "green", 3.0),
        (5, "yellow", 3.4),
        (6, "yellow", 3.5),
        (7, "yellow", 3.65),
        (8, "yellow", 3.75),
        (9, "yellow", 3.85),
        (10, "red", 4.0),
        (17, "red", 4.0),
    ],
)
def test_traffic_light_basel_table(x: int, zone: str, mult: float) -> None:
    tl = traffic_light(x)
    assert (tl.zone, tl.multiplier, tl.n) == (zone, mult, 250)
    exc = np.zeros(250, dtype=bool)
    exc[:x] = True
    assert traffic_light(exc, 0.01).zone == zone


def test_traffic_light_zone_edges_are_binomial_95_and_9999() -> None:
    from scipy.stats import binom

    # Basel defines the zones by the binomial(250, 0.01) CDF: green below 95 %, red from 99.99 %
    assert binom.cdf(4, 250, 0.01) < 0.95 <= binom.cdf(5, 250, 0.01)
    assert binom.cdf(9, 250, 0.01) < 0.9999 <= binom.cdf(10, 250, 0.01)
    assert BASEL_MULTIPLIERS[9] == 3.85


def test_traffic_light_other_sample_sizes() -> None:
    # 1000 forecasts at 99 %: 10 exceptions is exactly the expected count -> green
    assert traffic_light(10, 0.01, n=1000).zone == "green"
    assert traffic_light(25, 0.01, n=1000).zone == "red"
    assert traffic_light(0, 0.05, n=20).zone == "green"


def test_bad_inputs() -> None:
    with pytest.raises(DataError):
        kupiec([], 0.01)
    with pytest.raises(DataError):
        kupiec([0, 2, 1], 0.01)
    with pytest.raises(ParameterError):
        kupiec([0, 1], 1.5)
    with pytest.raises(DataError):
        christoffersen([1], 0.01)
    with pytest.raises(DataError):
        traffic_light(300)
    with pytest.raises(DataError):
        traffic_light([0, 1, 0], n=5)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.booleans(), min_size=2, max_size=400),
    st.floats(min_value=1e-3, max_value=0.5),
)
def test_lr_statistics_nonnegative_and_pvalues_in_unit_interval(exc: list[bool], p: float) -> None:
    k = kupiec(exc, p)
    c = christoffersen(exc, p)
    for stat, pv in (
        (k.statistic, k.pvalue),
        (c.statistic, c.pvalue),
        (c.independence.statistic, c.independence.pvalue),
    ):
        assert stat >= 0.0 and math.isfinite(stat)
        assert 0.0 <= pv <= 1.0
    assert c.statistic == pytest.approx(k.statistic + c.independence.statistic)


_ORDER = {"green": 0, "yellow": 1, "red": 2}


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.floats(min_value=1e-3, max_value=0.2))
def test_traffic_light_monotone_in_exceptions(n: int, p: float) -> None:
    xs = sorted({0, n, *np.linspace(0, n, 15).astype(int).tolist()})
    zones = [_ORDER[traffic_light(x, p, n=n).zone] for x in xs]
    mults = [traffic_light(x, p, n=n).multiplier for x in xs]
    assert zones == sorted(zones)
    assert mults == sorted(mults)
