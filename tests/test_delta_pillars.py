"""One delta/pillar module: its normal CDF, its strikes against an independent root
search, and the convention every fit records."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import volcal
from volcal.calibration.delta_pillars import delta_of, norm_cdf, strikes_for_delta
from volcal.calibration.smile_stats import smile_stats
from volcal.models import SVI
from volcal.synthetic import synthetic_chain


def test_norm_cdf_to_full_relative_accuracy() -> None:
    from scipy.special import ndtr  # the function it replaces, as the oracle

    x = np.concatenate([np.linspace(-37, 8, 2001), [0.0, -1e-300]])
    # relative accuracy in the deep lower tail (erfc's condition number grows as x^2)
    np.testing.assert_allclose(norm_cdf(x), ndtr(x), rtol=1e-14 * 37**2 / 10, atol=0)
    np.testing.assert_allclose(norm_cdf(x[x > -5]), ndtr(x[x > -5]), rtol=2e-15, atol=0)
    assert norm_cdf(np.array([[0.0]])).shape == (1, 1)
    assert float(norm_cdf(1.959963984540054)) == pytest.approx(0.975, abs=1e-15)


@pytest.mark.parametrize("convention", ["forward", "premium_adjusted"])
def test_pillar_strikes_match_an_independent_root_search(convention) -> None:
    from scipy.optimize import brentq

    smile = SVI(a=0.02, b=0.1, rho=-0.4, m=0.05, sigma=0.2)
    t = 0.5
    st = smile_stats(smile, t, delta=convention)
    for k, is_call, target in ((st.k_call25, True, 0.25), (st.k_put25, False, -0.25)):

        def f(x: float, is_call: bool = is_call, target: float = target) -> float:
            v = float(smile.implied_vol(x, t))
            return float(delta_of(x, v, t, is_call, convention)) - target

        lo, hi = (0.0, 2.0) if is_call else (-2.0, 0.0)
        ref = brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)
        assert k == pytest.approx(ref, abs=1e-10)
    assert st.rr25 == pytest.approx(
        float(smile.implied_vol(st.k_call25, t) - smile.implied_vol(st.k_put25, t)), abs=1e-14
    )


def test_vectorised_and_single_smile_pillars_agree() -> None:
    smile = SVI(a=0.01, b=0.08, rho=-0.2, m=0.0, sigma=0.3)
    ts = np.array([0.1, 0.5, 1.0])
    atm = np.array([float(smile.implied_vol(0.0, t)) for t in ts])
    k = strikes_for_delta(
        lambda kk, tt: smile.implied_vol(kk, tt), ts, 0.25, True, atm, "premium_adjusted"
    )
    for i, t in enumerate(ts):
        st = smile_stats(smile, float(t), delta="premium_adjusted")
        assert k[i] == pytest.approx(st.k_call25, abs=1e-12)


def test_every_fit_records_its_delta_convention() -> None:
    chain = volcal.clean(synthetic_chain(seed=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = volcal.calibrate(chain, "svi")
    for s in fit.slices:
        assert s.delta_convention == "forward"
        assert s.to_dict()["delta_convention"] == "forward"
        assert math.isfinite(s.rr25)
    with pytest.raises(ValueError):
        type(fit.slices[0])(**{**fit.slices[0].__dict__, "delta_convention": "spot"})
