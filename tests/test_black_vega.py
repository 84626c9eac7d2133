"""One Black vega: the calibration reuses volcal.black's formula."""

from __future__ import annotations

import numpy as np


def test_one_black_vega_for_the_library_and_the_calibration() -> None:
    """The calibration's per-unit-forward vega is volcal.black's vega formula (one
    implementation), NaN-propagating for the hot path."""
    from volcal.black import vega
    from volcal.calibration.quotes import black_vega_fwd

    rng = np.random.default_rng(11)
    k = rng.uniform(-1.5, 1.0, 300)
    t = rng.uniform(0.003, 2.0, 300)
    vol = rng.uniform(0.1, 2.0, 300)
    ref = np.asarray(vega(1.0, np.exp(k), t, vol))
    np.testing.assert_allclose(black_vega_fwd(k, t, vol), ref, rtol=1e-14, atol=0)
    assert np.isnan(black_vega_fwd(np.array([0.1]), np.array([0.5]), np.array([np.nan])))[0]
