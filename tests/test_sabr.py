"""SABR: Hagan 2002 / Oblój 2008 vols against PyFENG and limits; per-expiry recovery."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import require

from volcal.calibration import calibrate
from volcal.calibration.quotes import black_vega_fwd
from volcal.calibration.synthetic import synthetic_quotes
from volcal.errors import ParameterError
from volcal.models import SABR, Heston, SABRSmiles


def test_beta_one_matches_pyfeng_hagan():
    pf = require("pyfeng")
    strikes = np.array([0.6, 0.8, 0.95, 1.0, 1.1, 1.5])
    ref = pf.SabrHagan2002(sigma=0.6, vov=1.5, rho=-0.3, beta=1.0).vol_for_price(strikes, 1.0, 0.5)
    mine = SABR(0.6, 1.0, -0.3, 1.5).implied_vol(np.log(strikes), 0.5)
    np.testing.assert_allclose(mine, ref, rtol=1e-10)


def test_limits_atm_continuity_and_validation():
    s = SABR(0.5, 1.0, 0.3, 0.0)  # nu = 0, beta = 1: flat Black smile
    np.testing.assert_allclose(s.implied_vol([-0.5, 0.0, 0.5], 2.0), 0.5, rtol=1e-14)
    s = SABR(0.5, 0.5, -0.4, 2.0)
    k = np.array([-1e-9, 0.0, 1e-9])
    v = s.implied_vol(k, 1.0)
    assert np.ptp(v) < 1e-8  # smooth through the money (series branches)
    far = s.implied_vol(np.array([-3.0, 3.0]), 1.0)
    assert np.all(np.isfinite(far))
    with pytest.raises(ParameterError):
        SABR(0.5, 1.0, 1.0, 1.0)
    with pytest.raises(ParameterError):
        SABR(-0.1, 1.0, 0.0, 1.0)


def _sabr_quotes(smiles, ts):
    """Quotes whose mid vols are exact SABR vols (built on a Heston skeleton)."""
    q = synthetic_quotes(
        Heston(0.36, 3.0, 0.5, 1.8, -0.3), ts, np.linspace(-2, 2, 13), spread_vol=0.02
    )
    iv = np.concatenate(
        [smiles[i].implied_vol(q.k[q.slice_index == i], ts[i]) for i in range(len(ts))]
    )
    import dataclasses

    return dataclasses.replace(
        q, iv_mid=iv, iv_bid=iv - 0.01, iv_ask=iv + 0.01, vega=black_vega_fwd(q.k, q.t, iv)
    )


def test_sabr_recovers_per_expiry_parameters():
    ts = [0.05, 0.25, 1.0]
    true = [SABR(0.7, 1.0, -0.2, 3.0), SABR(0.6, 1.0, 0.1, 1.5), SABR(0.55, 1.0, -0.4, 0.8)]
    fit = calibrate(_sabr_quotes(true, ts), "sabr")
    assert fit.status == "ok"
    assert isinstance(fit.params, SABRSmiles) and len(fit.params) == 3
    for got, want in zip(fit.params.smiles, true, strict=True):
        np.testing.assert_allclose(got.to_vector(), want.to_vector(), rtol=1e-6, atol=1e-8)
    assert fit.rmse_vol < 1e-6
    assert fit.slices[0].params["nu"] == pytest.approx(3.0, rel=1e-6)
    d = fit.to_dict()
    assert d["params"]["model"] == "SABR" and len(d["params"]["slices"]) == 3
    # warm start from the previous fit and fixed beta honoured
    warm = calibrate(_sabr_quotes(true, ts), "sabr", start=fit.params)
    assert warm.params.smiles[1].beta == 1.0 and warm.rmse_vol < 1e-6
