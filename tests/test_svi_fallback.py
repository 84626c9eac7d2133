"""The constrained SVI fallback returns an admissible smile when SLSQP ends with a
butterfly violation between the points of its constraint grid."""

from __future__ import annotations

import numpy as np

from volcal.models.svi import SVI
from volcal.models.svi_fit import _shrink_to_admissible

# SLSQP's result on the 2026-01-25 expiry of the BTC chain of
# svcj-deribit-snapshots/deribit_options_snapshot_20260123T212130Z.csv (1.5 days out,
# 11 quotes): g >= 0 on its 169-point constraint grid, g = -2.5e-5 at k = 0.066 on the
# dense check grid. Before the repair the whole slice fell back to a flat smile.
SLSQP_RESULT = SVI(
    a=-0.001500636152969921,
    b=0.027875171743590228,
    rho=-0.07848391921983143,
    m=-0.0013978363099000216,
    sigma=0.05674743300130805,
)
A_FLAT = 0.00015452386210150734  # weighted mean total variance of the slice's quotes


def test_a_dip_between_constraint_points_is_repaired_not_flattened() -> None:
    assert not SLSQP_RESULT.is_arbitrage_free()
    fixed = _shrink_to_admissible(SLSQP_RESULT, A_FLAT)
    assert fixed is not None and fixed.is_arbitrage_free()
    # the repair shrinks the slopes by a hair: not the flat smile
    assert 0.999 < fixed.b / SLSQP_RESULT.b < 1.0
    k = np.linspace(-0.2, 0.2, 81)
    w0, w1 = SLSQP_RESULT.total_variance(k), fixed.total_variance(k)
    assert np.max(np.abs(w1 - w0) / w0) < 1e-3


def test_an_admissible_smile_stays_admissible_and_close() -> None:
    ok = SVI(a=0.02, b=0.1, rho=-0.3, m=0.0, sigma=0.2)
    assert ok.is_arbitrage_free()
    fixed = _shrink_to_admissible(ok, 0.03)
    assert fixed is not None and fixed.is_arbitrage_free()
    assert fixed.b > 0.99999 * ok.b
