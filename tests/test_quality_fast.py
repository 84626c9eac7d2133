"""The compiled outlier pass (first-pass smile and bisquare rounds) against
``fit_svi_slice``, and ``clean()``'s flags with it against the flags of the uncompiled
pass with ``fit_svi_slice`` itself (the code before it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import volcal
from volcal.models import SVI
from volcal.models.svi_fit import fit_svi_slice
from volcal.quality import _svi_fast


def _slices(seed: int) -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray]]:
    """Noisy SVI smiles with uneven weights, as the outlier pass hands them over."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(25):
        t = float(rng.uniform(2 / 365, 1.0))
        true = SVI(
            a=float(rng.uniform(0.001, 0.05)) * t,
            b=float(rng.uniform(0.02, 0.6)) * min(1.0, 4 * t),
            rho=float(rng.uniform(-0.7, 0.5)),
            m=float(rng.uniform(-0.1, 0.1)),
            sigma=float(rng.uniform(0.02, 0.4)),
        )
        n = int(rng.integers(6, 60))
        k = np.sort(rng.uniform(-0.8, 0.6, n)) * np.sqrt(t)
        iv = true.implied_vol(k, t) * (1 + 0.01 * rng.standard_normal(n))
        w = rng.uniform(0.0, 1.0, n) ** 2 + 1e-12
        out.append((k, iv, t, w))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_slice_is_fit_svi_slice(seed: int) -> None:
    for k, iv, t, w in _slices(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = fit_svi_slice(k, iv, t, w, n_levels=1)
        got = _svi_fast.fit_slice(k, iv, t, w, n_levels=1)
        if got is None:  # no quasi-explicit candidate: the caller falls back to ref
            continue
        assert isinstance(ref, SVI)
        np.testing.assert_allclose(got.implied_vol(k, t), ref.implied_vol(k, t), atol=1e-8)
        assert got.is_arbitrage_free()


def test_compiled_rounds_match_the_python_rounds() -> None:
    """robust_smile_distance against the same four bisquare rounds written in NumPy on
    fit_svi_slice (the loop of clean() before it was compiled)."""
    n_done = 0
    for k, iv, t, _ in _slices(3):
        half = np.full(k.size, 0.004) * (1 + np.arange(k.size) % 3)
        done, z, scale = _svi_fast.robust_smile_distance(k, iv, t, half, 5.0)
        robust, z_ref, scale_ref = np.ones(k.size), np.zeros(k.size), 1.0
        for _ in range(4):
            if np.count_nonzero(robust / half > 0) < 6:
                break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                smile = fit_svi_slice(k, iv, t, np.maximum(robust / half, 1e-12), n_levels=1)
            assert isinstance(smile, SVI)
            z_ref = (iv - smile.implied_vol(k, t)) / half
            scale_ref = max(1.4826 * float(np.median(np.abs(z_ref))), 1.0)
            u = z_ref / (5.0 * scale_ref)
            robust = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
        if done:
            np.testing.assert_allclose(z, z_ref, atol=1e-6)
            assert scale == pytest.approx(scale_ref, abs=1e-6)
            n_done += 1
    assert n_done >= 20


def test_compiled_butterfly_check_is_svi_is_arbitrage_free() -> None:
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(3000):
        try:
            p = SVI(
                a=float(rng.uniform(-0.05, 0.1)),
                b=float(rng.uniform(0.0, 1.5)),
                rho=float(rng.uniform(-0.99, 0.99)),
                m=float(rng.uniform(-0.5, 0.5)),
                sigma=float(rng.uniform(0.005, 1.0)),
            )
        except volcal.errors.ParameterError:  # negative minimal variance: not an SVI
            continue
        ref = p.is_arbitrage_free()
        seen.add(ref)
        assert (
            _svi_fast._butterfly_free(p.a, p.b, p.rho, p.m, p.sigma, _svi_fast._Z_VERTEX) == ref
        ), p
    assert seen == {True, False}


@pytest.mark.data
def test_clean_flags_equal_those_from_fit_svi_slice(
    snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same flags with the compiled smile as with ``fit_svi_slice`` (the code before it)
    on a BTC and an ETH chain, under the default policy and under a strict outlier
    threshold that flags many quotes (the default flags one quote in all 114 real
    chains, so it alone would not test the smile); benchmarks/bench_clean.py --compare
    checks all 114 chains against the previous release."""
    path = sorted(snapshot_dir.glob("deribit_options_snapshot_*.csv"))[20]
    chains = [volcal.read_chain(path, currency=c) for c in ("BTC", "ETH")]
    strict = volcal.QualityPolicy(outlier_threshold=1.5, outlier_min_vol=0.002)
    policies = (None, strict)
    fast = [volcal.clean(ch, p).flags for ch in chains for p in policies]
    # the uncompiled pass with fit_svi_slice: what clean() ran before
    monkeypatch.setattr(_svi_fast, "robust_smile_distance", lambda *a: (False, None, 1.0))
    monkeypatch.setattr(_svi_fast, "fit_slice", lambda *a, **k: None)
    slow = [volcal.clean(ch, p).flags for ch in chains for p in policies]
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    n_out = [int(np.count_nonzero(f & np.uint32(volcal.market.Flag.OUTLIER))) for f in fast]
    assert n_out[1] + n_out[3] > 20, n_out  # 34 + 4 when written
