"""Arbitrage-free SVI surface (``calibrate(chain, "svi_surface")``)."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import volcal
from volcal.black import price as black_price
from volcal.errors import CalibrationWarning, DataError
from volcal.models.svi import SVI, SVISurface, blend_min_g_poly, shift_min_g
from volcal.surface import VolSurface, check_arbitrage

SNAP = np.datetime64("2026-01-01T08:00")


def chain_of(smiles, days, n_strikes=21, noise=0.0, seed=0, half_spread=0.002):
    """A linear chain quoting each ``SVI`` of ``smiles`` at ``days`` (strikes over
    +-2.5 ATM standard deviations), mid vols optionally perturbed by ``noise``."""
    rng = np.random.default_rng(seed)
    exp, strike, call, bid, ask = [], [], [], [], []
    for s, d, n in zip(smiles, days, np.broadcast_to(n_strikes, len(days)), strict=True):
        t = d / 365.0
        atm = float(s.implied_vol(0.0, t))
        for k in np.linspace(-2.5, 2.5, int(n)) * atm * math.sqrt(t):
            vol = float(s.implied_vol(k, t)) + noise * rng.standard_normal()
            is_call = k >= 0
            for out, dv in ((bid, -half_spread), (ask, half_spread)):
                out.append(float(black_price(100.0, 100.0 * math.exp(k), t, vol + dv, is_call)))
            exp.append(SNAP + np.timedelta64(int(d), "D"))
            strike.append(100.0 * math.exp(k))
            call.append(is_call)
    return volcal.OptionChain.from_arrays(
        underlying="X", snapshot="2026-01-01T08:00Z", expiry=np.array(exp, dtype=object),
        strike=strike, is_call=call, bid=bid, ask=ask, forward=100.0, settlement="linear",
    )  # fmt: skip


def fit(chain, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return volcal.calibrate(chain, "svi_surface", **kw)


DAYS = (3, 10, 30, 60, 120, 240)


def true_surface() -> SVISurface:
    """Admissible nodes: total variance of one shape scaled up in time plus a level."""
    smiles = tuple(
        SVI(a=0.002 + 0.1 * d / 365, b=0.02 + 0.25 * math.sqrt(d / 365), rho=-0.25, m=0.02,
            sigma=0.08 + 0.1 * math.sqrt(d / 365))
        for d in DAYS
    )  # fmt: skip
    return SVISurface(tuple(f"d{d}" for d in DAYS), tuple(d / 365 for d in DAYS),
                      (100.0,) * len(DAYS), smiles)  # fmt: skip


# --------------------------------------------------------------------------- the model
def test_true_surface_is_certified_and_passes_the_checker() -> None:
    s = true_surface()
    cond = s.conditions()
    assert cond["ok"], cond
    assert check_arbitrage(VolSurface.from_model(s)).ok


def test_interpolation_is_linear_in_total_variance_and_extrapolation_as_documented() -> None:
    s = true_surface()
    k = np.linspace(-1, 1, 7)
    t0, t1 = s.t[1], s.t[2]
    tm = 0.3 * t0 + 0.7 * t1
    w = s.total_variance(k, tm)
    np.testing.assert_allclose(
        w, 0.3 * s.smiles[1].total_variance(k) + 0.7 * s.smiles[2].total_variance(k), rtol=1e-14
    )
    # before the first expiry: the first smile's vols; after the last: ATM variance grows
    np.testing.assert_allclose(
        s.total_variance(k, 0.5 * s.t[0]), 0.5 * s.smiles[0].total_variance(k), rtol=1e-14
    )
    th = float(s.smiles[-1].total_variance(0.0))
    np.testing.assert_allclose(
        s.total_variance(k, 2 * s.t[-1]), s.smiles[-1].total_variance(k) + th, rtol=1e-14
    )
    # analytic derivatives against central differences
    w0, wk, wkk, wt = s.derivatives(k, tm)
    h = 1e-5
    np.testing.assert_allclose(
        wk, (s.total_variance(k + h, tm) - s.total_variance(k - h, tm)) / (2 * h), rtol=1e-6
    )
    np.testing.assert_allclose(wt, (s.total_variance(k, tm + h) - s.total_variance(k, tm - h)) / (2 * h), rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(
        wkk,
        (s.total_variance(k + h, tm) - 2 * w0 + s.total_variance(k - h, tm)) / h**2,
        rtol=1e-4,
        atol=1e-6,
    )


def test_blend_and_shift_bounds_against_brute_force() -> None:
    """The exact minima over all alpha in [0, 1] (blends) and all shifts c >= 0 agree with
    a dense brute-force scan and never exceed it."""
    rng = np.random.default_rng(5)
    k = np.linspace(-2, 2, 201)
    for _ in range(20):
        s0 = SVI(rng.uniform(0.0, 0.02), rng.uniform(0.01, 0.3), rng.uniform(-0.8, 0.8),
                 rng.uniform(-0.2, 0.2), rng.uniform(0.02, 0.4))  # fmt: skip
        s1 = SVI(rng.uniform(0.0, 0.05), rng.uniform(0.01, 0.6), rng.uniform(-0.8, 0.8),
                 rng.uniform(-0.2, 0.2), rng.uniform(0.02, 0.4))  # fmt: skip
        lo = (s0.total_variance(k), s0.dw(k), s0.d2w(k))
        hi = (s1.total_variance(k), s1.dw(k), s1.d2w(k))
        exact = blend_min_g_poly(k, lo, hi)
        brute = np.full(k.size, np.inf)
        for al in np.linspace(0, 1, 401):
            w, wk, wkk = ((1 - al) * x + al * y for x, y in zip(lo, hi, strict=True))
            g = (1 - k * wk / (2 * w)) ** 2 - wk**2 / 4 * (1 / w + 0.25) + wkk / 2
            brute = np.minimum(brute, w * w * g)
        assert np.all(exact <= brute + 1e-12)
        assert np.all(exact >= brute - 1e-3 * np.abs(brute) - 1e-9)
        sh = shift_min_g(k, *lo)
        bs = np.full(k.size, np.inf)
        for c in np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 400)]):
            w = lo[0] + c
            g = (1 - k * lo[1] / (2 * w)) ** 2 - lo[1] ** 2 / 4 * (1 / w + 0.25) + lo[2] / 2
            bs = np.minimum(bs, g)
        assert np.all(sh <= bs + 1e-12)
        assert np.all(sh >= bs - 1e-3)


# --------------------------------------------------------------------------- the fit
def test_recovers_an_exactly_priced_surface() -> None:
    true = true_surface()
    f = fit(chain_of(true.smiles, DAYS))
    assert f.ok, f.message
    assert f.model == "svi_surface" and isinstance(f.params, SVISurface)
    assert f.rmse_vol < 0.01  # vol points
    surf = f.surface()
    ref = VolSurface.from_model(true)
    k = np.linspace(-0.4, 0.4, 9)
    for t in (4 / 365, 45 / 365, 200 / 365):  # between the expiries: same interpolation
        np.testing.assert_allclose(surf.implied_vol(k, t), ref.implied_vol(k, t), atol=2e-4)
    assert check_arbitrage(surf).ok
    # nothing had to be constrained: every slice is its free fit, at no cost
    rows = f.extra["slices"]
    assert len(rows) == len(DAYS)
    assert all(abs(r["rmse"] - r["rmse_free"]) < 1e-6 for r in rows)


def test_crossing_slices_are_repaired_and_the_cost_is_reported() -> None:
    """Free SVI fits of these smiles cross (the 10-day smile's wings lie above the
    30-day smile's): the surface is arbitrage-free and reports what that cost."""
    smiles = [
        SVI(0.0005, 0.05, -0.2, 0.0, 0.05),
        SVI(0.001, 0.12, -0.2, 0.0, 0.03),  # steep wings
        SVI(0.004, 0.08, -0.3, 0.0, 0.10),
        SVI(0.010, 0.15, -0.3, 0.0, 0.15),
    ]
    days = (3, 10, 30, 90)
    ch = chain_of(smiles, days)
    free = volcal.calibrate(ch, "svi")
    assert not check_arbitrage(free.surface()).ok  # the input itself has calendar arbitrage
    f = fit(ch)
    assert check_arbitrage(f.surface()).ok
    assert f.params.conditions()["ok"]
    rows = f.extra["slices"]
    assert any(r["fit"] == "constrained" for r in rows)
    for r in rows:
        assert r["cost"] >= r["cost_free"] - 1e-12 * max(1.0, r["cost_free"])
        assert {"rmse_free", "rmse", "fit", "cost", "cost_free"} <= set(r)
    assert f.extra["constraint_cost_vol"] >= -1e-9
    d = json.loads(json.dumps(f.to_dict()))  # JSON-safe, costs included
    assert d["extra"]["slices"][0]["expiry"] == rows[0]["expiry"]
    assert "svi_surface calibration" in f.summary()


@st.composite
def random_smiles(draw):
    """Random per-expiry SVI smiles with no ordering imposed: neighbours may cross
    (calendar arbitrage in the input), the fit must remove it."""
    n = draw(st.integers(2, 5))
    days = sorted(draw(st.lists(st.integers(2, 400), min_size=n, max_size=n, unique=True)))
    out = []
    for d in days:
        t = d / 365
        atm = draw(st.floats(0.3, 1.2))
        b = draw(st.floats(0.05, 1.0)) * math.sqrt(t)
        rho = draw(st.floats(-0.7, 0.7))
        sigma = draw(st.floats(0.05, 0.5)) * math.sqrt(t)
        m = draw(st.floats(-0.1, 0.1)) * math.sqrt(t)
        a = atm * atm * t - b * (rho * (-m) + math.sqrt(m * m + sigma * sigma))
        try:
            s = SVI(a, b, rho, m, sigma)
        except volcal.errors.ParameterError:
            assume(False)
        assume(s.is_arbitrage_free() and s.min_total_variance > 0)
        out.append(s)
    return out, days, draw(st.integers(0, 10_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(random_smiles())
def test_random_inputs_never_give_a_calendar_or_butterfly_violation(case) -> None:
    smiles, days, seed = case
    ch = chain_of(smiles, days, n_strikes=15, noise=0.003, seed=seed)
    f = fit(ch)
    rep = check_arbitrage(f.surface())
    assert rep.ok, rep.summary()
    assert f.params.conditions()["ok"]
    assert np.all(np.isfinite(f.model_iv))


# --------------------------------------------------------------------------- bad input
def test_single_expiry_is_degraded_with_a_clear_message() -> None:
    s = SVI(0.004, 0.08, -0.3, 0.0, 0.10)
    with pytest.warns(CalibrationWarning, match="single fitted expiry"):
        f = volcal.calibrate(chain_of([s], (30,)), "svi_surface")
    assert f.status == "degraded" and "single fitted expiry" in f.message
    assert f.rmse_vol < 0.05 and check_arbitrage(f.surface()).ok


def test_expiry_with_two_strikes_is_interpolated_not_flat() -> None:
    smiles = list(true_surface().smiles[1:4])
    days = DAYS[1:4]
    ch = chain_of(smiles, days, n_strikes=[21, 2, 21])
    with pytest.warns(CalibrationWarning, match="fewer than 3"):
        f = volcal.calibrate(ch, "svi_surface")
    assert f.status == "degraded"
    label = f.slices[1].expiry
    assert label in f.message and "2 distinct strike" in f.message
    assert f.slices[1].status == "degraded" and f.slices[1].params == {}
    assert len(f.params.smiles) == 2  # only the fittable expiries are nodes
    sel = f.quotes.slice_index == 1
    t = float(f.quotes.t_slices[1])
    np.testing.assert_allclose(
        f.model_iv[sel], f.surface().implied_vol(f.quotes.k[sel], t), rtol=1e-12
    )
    assert np.ptp(f.model_iv[sel]) > 0  # the interpolated smile, not a flat level


def test_no_fittable_expiry_is_a_data_error() -> None:
    s = SVI(0.004, 0.08, -0.3, 0.0, 0.10)
    with pytest.raises(DataError, match="3 or more distinct strikes"):
        volcal.calibrate(chain_of([s, s], (10, 30), n_strikes=2), "svi_surface")


# --------------------------------------------------------------------------- real chains
# Bounds from benchmarks/surface_accuracy.py over all 114 real chains (BENCHMARKS.md):
# the worst chain there is at 1.10 vol points and the lowest inside share 71 % (BTC of
# 2026-03-18, one of the chains below: its free slices are at 0.58 and 85 %, the mid
# quotes themselves cross between expiries), so a chain above 1.5 vol points (the
# issue's aim for every chain) or below 65 % inside is a regression. The medians over
# all chains (0.51 vol points, 96 % inside) are the benchmark's business.
REAL = [
    ("deribit_options_snapshot_20251230T173115Z.csv", "ETH"),
    ("deribit_options_snapshot_20260318T094436Z.csv", "BTC"),
    ("deribit_options_snapshot_20260819T154440Z.csv", "ETH"),
]


@pytest.mark.data
@pytest.mark.parametrize(("name", "currency"), REAL)
def test_real_chains_meet_the_aims(snapshot_dir, name, currency) -> None:
    chain = volcal.clean(volcal.read_chain(snapshot_dir / name, currency=currency))
    f = fit(chain)
    assert f.status == "ok", f.message
    assert check_arbitrage(f.surface()).ok
    assert f.rmse_vol <= 1.5
    assert f.inside_spread >= 0.65
    # the constraints cost something but never make a slice worse than its free fit by
    # more than the chain's worst case in the sweep (2 vol points)
    for r in f.extra["slices"]:
        assert r["rmse"] <= r["rmse_free"] + 2.0


@st.composite
def ordered_nodes(draw):
    """Nodes ordered by construction: each the previous one scaled by c >= 1 and
    lifted by d >= 0 (w_{j+1} = c w_j + d >= w_j, wing slopes scaled up)."""
    s = SVI(
        draw(st.floats(0.0, 0.01)),
        draw(st.floats(0.005, 0.1)),
        draw(st.floats(-0.8, 0.8)),
        draw(st.floats(-0.1, 0.1)),
        draw(st.floats(0.02, 0.3)),
    )
    assume(s.is_arbitrage_free())
    n = draw(st.integers(2, 5))
    smiles, t = [s], [draw(st.floats(0.005, 0.1))]
    for _ in range(n - 1):
        c = draw(st.floats(1.0, 2.5))
        d = draw(st.floats(0.0, 0.02))
        p = smiles[-1]
        nxt = SVI(c * p.a + d, c * p.b, p.rho, p.m, p.sigma)
        assume(nxt.is_arbitrage_free())
        smiles.append(nxt)
        t.append(t[-1] * draw(st.floats(1.2, 4.0)))
    return SVISurface(tuple(f"n{i}" for i in range(n)), tuple(t), (1.0,) * n, tuple(smiles))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(ordered_nodes())
def test_certified_surfaces_pass_the_dense_check(surface) -> None:
    """What SVISurface.conditions certifies, check_arbitrage confirms on its own grid
    (between, before and after the nodes)."""
    cond = surface.conditions()
    assert all(g["calendar"] >= 0 for g in cond["gaps"])
    assume(cond["ok"])
    rep = check_arbitrage(VolSurface.from_model(surface))
    assert rep.ok, rep.summary()


def test_warm_start_is_honoured() -> None:
    ch = chain_of(true_surface().smiles, DAYS, noise=0.002, seed=4)
    cold = fit(ch)
    warm = fit(ch, start=cold)
    assert warm.start is cold.params
    assert warm.nfev < cold.nfev  # local searches around the previous smiles
    assert warm.rmse_vol <= cold.rmse_vol + 0.01
    assert check_arbitrage(warm.surface()).ok


def test_sharp_neighbours_do_not_cross_between_grid_points() -> None:
    """A case the random-smile test found: a sharp 93-day smile (sigma 0.04) below a
    flat 227-day one. Their constrained fits used to touch the grid's points from
    above and still cross by 1.4e-6 in total variance between two of them (k = -0.171);
    the calendar check and the gap-closing shift also minimise the difference between
    the points, so the surface is ordered on a 1e-6 fine grid too."""
    smiles = [
        SVI(0.22748622110445207, 0.03154823443380645, 0.25, 0.0, 0.1261929377352258),
        SVI(0.09778199914383562, 0.4928860353424678, 0.25, 0.0, 0.04312752809246593),
        SVI(0.1280474101027397, 0.1890348141451836, 0.0, 0.0, 0.5040928377204896),
        SVI(0.9551583904109591, 0.2850767065122831, -0.6875, 0.0, 0.2534015168998072),
    ]
    f = fit(chain_of(smiles, [93, 227, 371, 375], n_strikes=15, noise=0.003, seed=0))
    assert f.status == "ok" and f.extra["passes"]["certified"]
    assert check_arbitrage(f.surface()).ok
    assert f.params.conditions()["ok"]
    kk = np.linspace(-3.0, 3.0, 600_001)
    nodes = f.params.smiles
    for lo, hi in itertools.pairwise(nodes):
        assert float(np.min(hi.total_variance(kk) - lo.total_variance(kk))) >= 0.0


def _no_candidate_for(monkeypatch, days: int) -> None:
    """The compiled free search finds no butterfly-free candidate on the slice of
    ``days`` (what a thin, steep short-dated slice of the real stream gives)."""
    import volcal.quality._svi_fast as fast

    orig = fast.fit_slice_full

    def patched(k, iv, t, weights, *a, **kw):
        return None if abs(t - days / 365.0) < 1e-9 else orig(k, iv, t, weights, *a, **kw)

    monkeypatch.setattr(fast, "fit_slice_full", patched)


def test_warm_refit_keeps_an_admissible_start_instead_of_the_slow_fallback(monkeypatch) -> None:
    import volcal.calibration.svi_surface as mod

    ch = chain_of(true_surface().smiles, DAYS, noise=0.0005, seed=7)
    cold = fit(ch)
    _no_candidate_for(monkeypatch, DAYS[0])

    def no_fallback(*a, **kw):
        raise AssertionError("the constrained SLSQP fallback ran")

    monkeypatch.setattr(mod, "fit_svi_slice", no_fallback)
    warm = fit(ch, start=cold)
    label = warm.params.expiries[0]
    assert list(warm.extra["start_kept"]) == [label]
    row = warm.extra["slices"][0]
    assert row["free_status"] == "ok"
    # the free fit of that slice is the start's smile, priced at the same quotes
    assert row["cost_free"] == pytest.approx(cold.extra["slices"][0]["cost"], rel=1e-12)
    assert warm.extra["passes"]["certified"]
    assert check_arbitrage(warm.surface()).ok
    assert warm.rmse_vol <= cold.rmse_vol + 0.01


def test_a_start_outside_the_quotes_still_gets_the_fallback(monkeypatch) -> None:
    import volcal.calibration.svi_surface as mod

    ch = chain_of(true_surface().smiles, DAYS, noise=0.0005, seed=7)
    # a start about 2 vol points above the quotes (total variance + 0.03 t): admissible,
    # but outside every bid-ask (half-spread 0.2 vol point)
    up = [SVI(s.a + 0.03 * d / 365, s.b, s.rho, s.m, s.sigma) for s, d in zip(true_surface().smiles, DAYS, strict=True)]  # fmt: skip
    shifted = chain_of(up, DAYS)
    start = fit(shifted)
    _no_candidate_for(monkeypatch, DAYS[0])
    calls = []
    orig = mod.fit_svi_slice

    def counted(*a, **kw):
        calls.append(1)
        return orig(*a, **kw)

    monkeypatch.setattr(mod, "fit_svi_slice", counted)
    warm = fit(ch, start=start)
    assert list(warm.extra["start_kept"]) == []
    assert len(calls) == 1
    assert check_arbitrage(warm.surface()).ok
