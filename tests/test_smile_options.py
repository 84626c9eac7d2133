"""calibrate's contract for the smile models: every option honoured or refused, warm
recalibration of SVI (start, prior, strength), and calibrate_series on smile models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_svi_surface import chain_of

import volcal
from volcal.calibration.calibrate import SMILE_OPTIONS
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models.svi import SVI

SMILES = [
    SVI(0.0015, 0.03, -0.3, 0.0, 0.06),
    SVI(0.004, 0.06, -0.3, 0.01, 0.09),
    SVI(0.010, 0.11, -0.25, 0.02, 0.13),
]
DAYS = (10, 30, 90)


@pytest.fixture(scope="module")
def chain():
    return chain_of(SMILES, DAYS, n_strikes=17)


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return fn(*a, **kw)


NON_DEFAULT = {
    "start": {"a": 0.1},
    "fixed": ["a"],
    "objective": "price",
    "prior": object(),
    "strength": 2.0,
    "global_search": False,
    "seed": 3,
    "feller": True,
    "max_time": 5.0,
    "n_terms": 128,
    "method": "trf",
    "refine": False,
    "iv_mode": "vega",
    "beta": 0.5,
    "phi": "heston",
    "delta": "premium_adjusted",
    "max_nfev": 10,
}


UNSUPPORTED = [
    (m, o) for m in sorted(SMILE_OPTIONS) for o in sorted(NON_DEFAULT) if o not in SMILE_OPTIONS[m]
]


@pytest.mark.parametrize(("model", "option"), UNSUPPORTED)
def test_unsupported_options_are_refused_naming_option_and_model(chain, model, option) -> None:
    with pytest.raises(ParameterError, match=rf"{model} model does not support {option}="):
        volcal.calibrate(chain, model, **{option: NON_DEFAULT[option]})


def test_smile_only_options_are_refused_by_fourier_models(chain) -> None:
    for option in ("beta", "phi", "delta"):
        with pytest.raises(ParameterError, match=rf"heston model does not support {option}"):
            volcal.calibrate(chain, "heston", **{option: NON_DEFAULT[option]})


@pytest.mark.parametrize("model", ["svi", "svi_surface", "ssvi", "essvi"])
def test_delta_convention_reaches_the_fit(chain, model) -> None:
    f = quiet(volcal.calibrate, chain, model, delta="premium_adjusted")
    assert f.extra["delta_convention"] == "premium_adjusted"
    g = quiet(volcal.calibrate, chain, model)
    assert g.extra["delta_convention"] == "forward"
    # premium-adjusted 25-delta strikes differ, so do the pillars
    assert not np.allclose([s.rr25 for s in f.slices], [s.rr25 for s in g.slices])


def test_max_nfev_reaches_ssvi(chain) -> None:
    small = quiet(volcal.calibrate, chain, "ssvi", max_nfev=3)
    assert small.nfev <= 3 + 6  # MINPACK counts its finite-difference Jacobian too
    assert small.status == "max_iter"
    with pytest.raises(ParameterError, match="max_nfev must be a positive integer"):
        volcal.calibrate(chain, "ssvi", max_nfev=0)


@pytest.mark.parametrize("model", sorted(SMILE_OPTIONS))
def test_spread_vega_weights_for_every_smile_model(chain, model) -> None:
    f = quiet(volcal.calibrate, chain, model, weights="spread_vega")
    q = f.quotes
    w = q.weights("spread") * q.weights("vega")
    np.testing.assert_allclose(f.weights, w * (w.size / w.sum()), rtol=1e-12)
    assert np.isfinite(f.rmse_vol)


def test_svi_warm_start_is_honoured(chain) -> None:
    cold = volcal.calibrate(chain, "svi")
    warm = volcal.calibrate(chain, "svi", start=cold)
    assert warm.start is cold.params and warm.extra["warm_start"]
    assert cold.start is None
    # the local search around the start finds the same smiles with fewer candidates
    assert warm.nfev < cold.nfev
    assert warm.rmse_vol <= cold.rmse_vol + 1e-4
    with pytest.raises(ParameterError, match="start must be an svi"):
        volcal.calibrate(chain, "svi", start={"a": 0.1})


def test_svi_prior_and_strength_pull_toward_the_prior(chain) -> None:
    """A prior whose smiles are 20 % steeper: with a large strength the fitted wing
    slopes move toward it, with strength 0 the prior is ignored."""
    base = volcal.calibrate(chain, "svi")
    steep = volcal.models.SVISmiles(
        base.params.expiries, base.params.t, base.params.forwards,
        tuple(SVI(s.a, 1.2 * s.b, s.rho, s.m, s.sigma) for s in base.params.smiles),
    )  # fmt: skip
    same = volcal.calibrate(chain, "svi", prior=steep, strength=0.0)
    assert [s.b for s in same.params.smiles] == pytest.approx([s.b for s in base.params.smiles])
    pulled = quiet(volcal.calibrate, chain, "svi", prior=steep, strength=50.0)
    for b0, b1, bp in zip(
        (s.b for s in base.params.smiles),
        (s.b for s in pulled.params.smiles),
        (s.b for s in steep.smiles),
        strict=True,
    ):
        assert abs(b1 - bp) < abs(b0 - bp)
    assert pulled.rmse_vol > base.rmse_vol  # the price of the regularization
    assert pulled.extra["strength"] == 50.0


@pytest.mark.parametrize("model", ["svi", "svi_surface", "sabr", "essvi"])
def test_calibrate_series_keeps_per_expiry_parameters(model) -> None:
    moved = [SVI(s.a * 1.03, s.b * 1.05, s.rho, s.m, s.sigma) for s in SMILES]
    chains = [chain_of(SMILES, DAYS, n_strikes=17), chain_of(moved, DAYS, n_strikes=17)]
    s = quiet(volcal.calibrate_series, chains, model)
    sp = s.slice_params()
    assert len(sp) == 2 * len(DAYS)
    assert set(sp.index.get_level_values("expiry")) == {x.expiry for x in s.results[0].slices}
    stab = s.slice_stability()
    assert len(stab) == len(DAYS)
    st = s.stability()
    assert st and all(np.isfinite(v) and v >= 0 for v in st.values())
    if model in ("svi", "svi_surface"):
        # b moved by 5 %: the reported stability of b is of that order
        assert 0.01 < st["b"] < 0.2
        assert s.results[1].start is not None  # warm-started from the first fit
    d = s.to_dict()
    assert set(d["stability"]) == set(st)


def test_ssvi_warm_start_prior_and_strength(chain) -> None:
    cold = quiet(volcal.calibrate, chain, "ssvi")
    warm = quiet(volcal.calibrate, chain, "ssvi", start=cold)
    assert warm.extra["warm_start"] and warm.nfev < cold.nfev
    assert warm.rmse_vol <= cold.rmse_vol + 1e-3
    # a prior with rho pushed to +0.5: a large strength pulls the fitted rho toward it
    far = volcal.calibration.ssvi.SSVI(
        t=cold.params.t, theta=cold.params.theta, rho=0.5, eta=cold.params.eta,
        gamma=cold.params.gamma,
    )  # fmt: skip
    pulled = quiet(volcal.calibrate, chain, "ssvi", prior=far, strength=100.0)
    assert abs(pulled.params.rho - 0.5) < abs(cold.params.rho - 0.5)
    assert pulled.extra["strength"] == 100.0
    with pytest.raises(ParameterError, match="phi='power'"):
        volcal.calibrate(chain, "ssvi", start=cold, phi="heston")


def test_essvi_warm_start_prior_and_strength(chain) -> None:
    cold = quiet(volcal.calibrate, chain, "essvi")
    warm = quiet(volcal.calibrate, chain, "essvi", start=cold)
    assert warm.extra["warm_start"] and warm.nfev < cold.nfev  # grid skipped
    assert warm.rmse_vol <= cold.rmse_vol + 0.02
    assert volcal.check_arbitrage(warm.surface()).ok
    # a prior whose rho are all +0.5: a large strength pulls every node's rho toward it
    p = cold.params
    far = type(p)(t=p.t, theta=p.theta, rho=(0.5,) * len(p.t), psi=p.psi)
    pulled = quiet(volcal.calibrate, chain, "essvi", prior=far, strength=100.0)
    for r0, r1 in zip(p.rho, pulled.params.rho, strict=True):
        assert abs(r1 - 0.5) < abs(r0 - 0.5)
    assert volcal.check_arbitrage(pulled.surface()).ok
    with pytest.raises(ParameterError, match="an essvi CalibrationResult or an ESSVI"):
        volcal.calibrate(chain, "essvi", start=volcal.calibrate(chain, "svi"))


def test_sabr_stops_by_its_evaluation_budget_not_the_clock(chain) -> None:
    """SABR honours max_nfev: a fit is reproducible whatever the machine's speed, and a
    smaller budget is used (fewer evaluations) - max_time is only a safety limit."""
    full = quiet(volcal.calibrate, chain, "sabr")
    again = quiet(volcal.calibrate, chain, "sabr")
    small = quiet(volcal.calibrate, chain, "sabr", max_nfev=3)
    assert full.nfev == again.nfev
    np.testing.assert_array_equal(full.model_iv, again.model_iv)
    assert small.nfev < full.nfev
    with pytest.raises(ParameterError, match="max_nfev"):
        volcal.calibrate(chain, "sabr", max_nfev=0)
