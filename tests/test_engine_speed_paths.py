"""The fast paths of the engine, the calibration result and cleaning give what the plain
computations they replace give: the strike sums of several expiries and derivative rows
at once, the combined plan-and-price kernel, the result's ATM vols priced with the
quotes, per-slice quality without subsets, expiry labels, (expiry, strike) groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_calibration_warm import _direct_payoff

import volcal
from volcal.calibration.calibrate import _model_and_atm_vols, _model_vols
from volcal.calibration.result import _expiry_labels, expiry_label, fit_quality, slice_fits
from volcal.calibration.synthetic import synthetic_quotes
from volcal.models import Bates, Heston, Merton
from volcal.pricing import COSPricer
from volcal.pricing._layout import make_surface
from volcal.quality.clean import _key_groups

HESTON = Heston(v0=0.36, kappa=3.0, theta=0.5, xi=1.8, rho=-0.3)


@pytest.mark.parametrize("n_rows", [1, 2, 6, 9])
def test_strike_sums_of_many_expiries_and_rows_match_the_textbook(n_rows):
    """Options of 3 expiries in shuffled order (groups of 4 and a remainder), calls and
    puts, every derivative row: the textbook payoff coefficients times each row."""
    from volcal.pricing._fourier_numba import cos_sums

    rng = np.random.default_rng(n_rows)
    n = np.array([40, 96, 17])
    a, b = np.array([-2.0, -4.0, -1.0]), np.array([1.5, 3.0, 2.5])
    t_index = rng.permutation(np.repeat(np.arange(3), [7, 5, 10]))
    k = rng.uniform(-1.5, 1.5, t_index.size)
    is_call = rng.random(k.size) < 0.5
    coef = np.zeros((n_rows, 3, n.max()))
    for s in range(3):
        coef[:, s, : n[s]] = rng.normal(size=(n_rows, n[s]))
    got = cos_sums(coef, n, a, b, k, t_index.astype(np.int64), is_call)
    for i in range(k.size):
        s = t_index[i]
        v = _direct_payoff(k[i : i + 1], is_call[i : i + 1], a[s : s + 1], b[s : s + 1], n[s])
        ref = v[0] @ coef[:, s, : n[s]].T
        scale = np.exp(b[s]) + np.exp(k[i])
        np.testing.assert_allclose(got[:, i], ref, rtol=0, atol=1e-13 * scale * n[s])


@pytest.mark.parametrize("model", [HESTON, Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12)])
def test_one_call_plan_and_units_equal_the_plan_then_units(model):
    """COSPricer.units (one compiled call) gives bit for bit the plan and the units of
    plan_surface(...).units(...), with and without the Jacobian and a wing mask."""
    q = synthetic_quotes(HESTON, [0.02, 0.1, 0.5, 1.0], np.linspace(-3, 3, 13))
    s = make_surface(q.forward, q.strike, q.t, q.k >= 0, 1.0, where="test")
    pr = COSPricer(phi_tol=1e-10, tail_tol=1e-11)
    wing = q.mid < 1e-3
    for grad in (False, True):
        plan, units = pr.units(s, model, grad=grad, wing_mask=wing)
        ref_plan = pr.plan_surface(s, model)
        ref = ref_plan.units(model, grad=grad, wing_mask=wing)[0]
        np.testing.assert_array_equal(units, ref)
        np.testing.assert_array_equal(plan.n, ref_plan.n)
        np.testing.assert_array_equal(plan.a, ref_plan.a)
    only, empty = pr.units(s, model, plan_only=True)
    assert empty.shape[1] == 0 and np.array_equal(only.n, ref_plan.n)


def test_quote_vols_priced_with_the_atm_options_are_unchanged():
    """The result's ATM vols come from the quotes' library call: the quotes' vols stay
    bit for bit ``volcal.model_iv``'s and the ATM vols agree with a separate call."""
    q = synthetic_quotes(HESTON, [0.02, 0.1, 0.5, 1.0], np.linspace(-2, 2, 9))
    vols, atm = _model_and_atm_vols(HESTON, q)
    np.testing.assert_array_equal(vols, _model_vols(HESTON, q))
    ref = volcal.model_iv(HESTON, 1.0, 1.0, q.t_slices)
    np.testing.assert_allclose(atm, ref, rtol=0, atol=1e-12)
    # an expiry whose quotes do not span the money: priced separately, same numbers
    puts = q.subset(q.k < -0.05)
    vols, atm = _model_and_atm_vols(Merton(0.5, 1.0, -0.1, 0.2), puts)
    np.testing.assert_array_equal(vols, _model_vols(Merton(0.5, 1.0, -0.1, 0.2), puts))
    np.testing.assert_array_equal(
        atm, volcal.model_iv(Merton(0.5, 1.0, -0.1, 0.2), 1.0, 1.0, puts.t_slices)
    )


def test_slice_fits_equal_the_quality_of_each_slice_subset():
    q = synthetic_quotes(HESTON, [0.05, 0.3, 1.0], np.linspace(-2, 2, 11), spread_vol=0.02)
    iv = q.iv_mid + np.random.default_rng(3).normal(0, 0.01, len(q))
    iv[4] = np.nan
    for i, s in enumerate(slice_fits(q, iv)):
        m = q.slice_index == i
        rmse, inside = fit_quality(q.subset(m), iv[m])
        assert (s.rmse_vol, s.inside_spread, s.n_used) == (rmse, inside, int(m.sum()))
        assert s.expiry == expiry_label(q.expiries[i])


def test_expiry_labels_are_pandas_isoformat():
    e = np.array(
        ["2026-01-30T08:00", "2026-03-27T08:00:00.123456789", "2027-12-31T23:59:59.5"],
        dtype="datetime64[ns]",
    )
    assert _expiry_labels(e) == [expiry_label(x) for x in e]
    obj = np.array([pd.Timestamp("2026-01-30T08:00", tz="UTC")], dtype=object)
    assert _expiry_labels(obj) == [expiry_label(x) for x in obj]


def test_key_groups_are_numpy_unique_over_records():
    rng = np.random.default_rng(1)
    exp = np.array(["2026-01-30", "2026-02-27", "2026-03-27"], dtype="datetime64[ns]")
    e = exp[rng.integers(0, 3, 200)]
    k = rng.choice([9e4, 1e5, 1.1e5, 1.2e5], 200)
    ref = np.unique(np.rec.fromarrays([e.view(np.int64), k]), return_inverse=True)[1]
    np.testing.assert_array_equal(_key_groups(e, k), ref.ravel())


def test_strike_arbitrage_of_all_blocks_at_once_equals_block_by_block():
    from volcal.quality.clean import _strike_arbitrage_blocks, strike_arbitrage

    rng = np.random.default_rng(7)
    sizes = [1, 2, 3, 7, 12, 5]
    key = np.repeat(np.arange(len(sizes)), sizes)
    is_call = (key % 2 == 0)[:]
    x = np.concatenate([np.sort(rng.uniform(0.5, 1.5, s)) for s in sizes])
    mid = np.where(is_call, np.maximum(1.0 - x, 0.0), np.maximum(x - 1.0, 0.0)) + 0.05
    bid = mid * rng.uniform(0.8, 1.3, x.size)  # some crossed, some arbitrage
    ask = mid * rng.uniform(1.0, 1.2, x.size)
    bid[3] = np.nan
    got = _strike_arbitrage_blocks(x, bid, ask, is_call, key)
    start = 0
    for blk, s in enumerate(sizes):
        sl = slice(start, start + s)
        ref = strike_arbitrage(x[sl], bid[sl], ask[sl], bool(blk % 2 == 0))
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_array_equal(g[sl], r)
        start += s
    assert got[0].any() and got[1].any()  # the data exercise both checks
