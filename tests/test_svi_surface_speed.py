"""The compiled paths of the SVI surface fit against their references.

Each fast path of ``calibrate(chain, "svi_surface")`` replaces a slower one that is
kept as the reference: the free slice fits (``_svi_fast.fit_slice_full`` against
``fit_svi_slice``), the constrained candidate search (``constrained_search`` against
the NumPy loop ``_search_numpy``), the candidate checks (``compatible`` /
``first_compatible`` against ``_compatible_numpy`` / ``_first_compatible_numpy``) and
the 25-delta pillars (``svi_smile_stats`` against ``smile_stats`` per slice). The
inputs are the ones the fit itself produces on synthetic chains whose free fits cross.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from test_svi_surface import DAYS, chain_of, true_surface

import volcal
import volcal.calibration.svi_surface as svs
from volcal.calibration.smile_stats import smile_stats, svi_smile_stats
from volcal.errors import CalibrationWarning
from volcal.models.svi import SVI
from volcal.models.svi_fit import fit_svi_slice
from volcal.quality._svi_fast import fit_slice_full

CROSSING = (
    [
        SVI(0.0005, 0.05, -0.2, 0.0, 0.05),
        SVI(0.001, 0.12, -0.2, 0.0, 0.03),  # steep wings: crosses the next smile
        SVI(0.004, 0.08, -0.3, 0.0, 0.10),
        SVI(0.010, 0.15, -0.3, 0.0, 0.15),
    ],
    (3, 10, 30, 90),
)


def _chains() -> list[volcal.OptionChain]:
    return [
        chain_of(*CROSSING, noise=0.002, seed=3),
        chain_of(true_surface().smiles, DAYS, noise=0.004, seed=5),
    ]


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[tuple]]:
    """Arguments of every constrained search and candidate check of two fits."""
    calls: dict[str, list[tuple]] = {"search": [], "compatible": [], "between": []}
    orig_search, orig_comp, orig_between = svs._search, svs._compatible, svs._fit_between

    def search(*a):
        calls["search"].append(a)
        return orig_search(*a)

    def comp(*a, **kw):
        calls["compatible"].append((*a, kw.get("last", False)) if len(a) == 4 else a)
        return orig_comp(*a, **kw)

    def between(*a, **kw):
        out = orig_between(*a, **kw)
        if kw.get("bounds") is None:
            calls["between"].append((a, kw, out))
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(svs, "_search", search)
    mp.setattr(svs, "_compatible", comp)
    mp.setattr(svs, "_fit_between", between)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            for ch in _chains():
                volcal.calibrate(ch, "svi_surface")
    finally:
        mp.undo()
    assert calls["search"] and calls["compatible"] and calls["between"]
    return calls


def test_compiled_constrained_search_matches_the_numpy_loop(recorded) -> None:
    for args in recorded["search"]:
        fast, n_fast = svs._search(*args)
        ref, n_ref = svs._search_numpy(*args)
        assert n_fast == n_ref  # the same candidates solved
        ref = ref[: svs._N_ROWS]
        assert fast.shape == ref.shape
        # the compiled exp may differ from NumPy's in the last bit
        np.testing.assert_allclose(fast, ref, rtol=1e-8, atol=1e-14)


def test_compiled_candidate_checks_match_the_numpy_ones(recorded) -> None:
    seen = 0
    for lower, cur, upper, grid, last in recorded["compatible"]:
        assert svs._compatible(lower, cur, upper, grid, last) == svs._compatible_numpy(
            lower, cur, upper, grid, last
        )
        seen += 1
    # perturbed smiles: both verdicts occur and still agree
    rng = np.random.default_rng(7)
    verdicts = set()
    for lower, cur, upper, grid, last in recorded["compatible"][:40]:
        for _ in range(3):
            f = np.exp(rng.normal(0.0, 0.05, 5))
            try:
                c2 = SVI(cur.a * f[0], cur.b * f[1], cur.rho, cur.m, cur.sigma * f[4])
            except volcal.errors.ParameterError:
                continue
            ok = svs._compatible(lower, c2, upper, grid, last)
            assert ok == svs._compatible_numpy(lower, c2, upper, grid, last)
            verdicts.add(ok)
    assert seen > 0 and verdicts == {True, False}


def test_compiled_candidate_loop_matches_the_numpy_loop(recorded) -> None:
    for (k, v, wt, lower, upper, centers, kc, grid, check_grid), kw, out in recorded["between"]:
        rows, _ = svs._search_numpy(k, v, wt, kc, *_bounds(lower, upper, kc), centers, check_grid)
        ref = svs._first_compatible_numpy(rows, lower, upper, grid, kw.get("last", False))
        got = out[0]
        assert (got is None) == (ref is None)
        if got is not None:
            np.testing.assert_allclose(got.to_vector(), ref.to_vector(), rtol=1e-8, atol=1e-13)


def _bounds(lower, upper, kc):
    inf = np.full(kc.size, np.inf)
    wlo = -inf if lower is None else lower.total_variance(kc) + 2 * svs._CAL_MARGIN
    whi = inf if upper is None else upper.total_variance(kc) - 2 * svs._CAL_MARGIN
    slo = (
        np.zeros(2)
        if lower is None
        else np.array([lower.b * (1 - lower.rho), lower.b * (1 + lower.rho)])
    )
    shi = (
        np.full(2, np.inf)
        if upper is None
        else np.array([upper.b * (1 - upper.rho), upper.b * (1 + upper.rho)])
    )
    return wlo, whi, slo, shi


@pytest.mark.parametrize("warm", [False, True])
def test_compiled_free_fit_is_fit_svi_slice(warm) -> None:
    rng = np.random.default_rng(11)
    for s, d in zip(*CROSSING, strict=True):
        t = d / 365
        atm = float(s.implied_vol(0.0, t))
        k = np.linspace(-2.5, 2.5, 17) * atm * math.sqrt(t)
        iv = s.implied_vol(k, t) + 0.003 * rng.standard_normal(k.size)
        w = rng.uniform(0.5, 2.0, k.size)
        start = SVI(s.a, s.b, s.rho, s.m + 0.01, s.sigma * 1.1) if warm else None
        ref, info = fit_svi_slice(k, iv, t, w, full_output=True, start=start)
        got = fit_slice_full(k, iv, t, w, start=start)
        assert got is not None
        smile, cost, n_cand = got
        assert n_cand == info.n_candidates
        assert abs(cost - info.cost) <= 1e-9 * info.cost + 1e-15
        assert np.max(np.abs(smile.implied_vol(k, t) - ref.implied_vol(k, t))) < 1e-9


@pytest.mark.parametrize("delta", ["forward", "premium_adjusted"])
def test_batched_pillars_are_smile_stats(delta) -> None:
    smiles = [*CROSSING[0], *true_surface().smiles]
    ts = [d / 365 for d in (*CROSSING[1], *DAYS)]
    ref = [smile_stats(s, t, delta=delta) for s, t in zip(smiles, ts, strict=True)]
    for compiled in (False, True):
        got = svi_smile_stats(smiles, ts, delta=delta, compiled=compiled)
        for a, b in zip(ref, got, strict=True):
            va = np.array([a.atm_vol, a.k_call25, a.k_put25, a.rr25, a.bf25])
            vb = np.array([b.atm_vol, b.k_call25, b.k_put25, b.rr25, b.bf25])
            if delta == "forward" or not compiled:
                assert np.array_equal(va, vb)  # the same arithmetic, bit for bit
            else:  # the compiled exp of the premium adjustment
                np.testing.assert_allclose(vb, va, rtol=1e-13, atol=1e-15)
    with pytest.raises(volcal.errors.ParameterError):
        svi_smile_stats(smiles[:2], ts[:3])


def test_surfaces_whose_certification_was_not_repeated_pass_it() -> None:
    """The final certification is skipped when the check_arbitrage points add nothing to
    the grid the passes checked every slice on: the full certification on that grid
    must then pass too (and the forward pass, when stopped early, was not chosen)."""
    from volcal.models.svi import surface_k_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        for ch in _chains():
            fit = volcal.calibrate(ch, "svi_surface")
            smiles = list(fit.params.smiles)
            q = fit.quotes
            theta_short = float(np.median(q.iv_mid[q.slice_index == 0])) ** 2 * float(q.t_slices[0])
            theta_1 = float(smiles[0].total_variance(0.0))
            grid = np.unique(
                np.concatenate([surface_k_grid(theta_short), svs._check_arbitrage_grid(theta_1)])
            )
            assert fit.extra["passes"]["certified"]
            assert svs._certified(smiles, grid)
            rm = fit.extra["passes"]["rmse_vol"]
            chosen = fit.extra["passes"]["anchors"].index(fit.extra["passes"]["chosen"])
            assert rm[chosen] is not None
