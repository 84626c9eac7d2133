"""The arbitrage-free SVI surface as the fitted vol source of the risk layer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_svi_surface import DAYS, chain_of, true_surface

import volcal
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models.svi import SVISurface
from volcal.risk.valuation import Market, SurfaceVols, SVIVols


@pytest.fixture(scope="module")
def chain():
    return chain_of(true_surface().smiles, DAYS, noise=0.002, seed=1)


def test_surface_vols_are_the_arbitrage_free_fit(chain) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        m = Market.from_chain(chain, vols="surface")
        fit = volcal.calibrate(chain, "svi_surface")
    assert m.vol_label == "svi_surface" and isinstance(m.vols, SurfaceVols)
    surf = fit.params
    assert isinstance(surf, SVISurface)
    # at a listed expiry: that slice; between expiries: the surface's own interpolation
    for t in (surf.t[2], 0.5 * (surf.t[2] + surf.t[3]), 1.5 * surf.t[-1]):
        strikes = float(m.curve(t)) * np.exp(np.array([-0.3, 0.0, 0.2]))
        k = np.log(strikes / m.curve(t))
        np.testing.assert_allclose(
            m.iv(strikes, t), np.sqrt(surf.total_variance(k, t) / t), rtol=1e-12
        )
    # the same from the CalibrationResult, and the free slices still by option
    assert isinstance(Market.from_chain(chain, vols=fit).vols, SurfaceVols)
    free = Market.from_chain(chain, vols="svi")
    assert free.vol_label == "svi" and isinstance(free.vols, SVIVols)
    with pytest.raises(ParameterError, match="'surface'"):
        Market.from_chain(chain, vols="nope")
