"""Calibration engine: gradients, pricing grid, transforms, recovery, failure modes, real data."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest

import volcal
from volcal.calibration import CalibrationResult, calibrate, calibrate_series
from volcal.calibration.engine import Tracker, solve
from volcal.calibration.synthetic import synthetic_quotes
from volcal.calibration.transforms import ParamSpace
from volcal.errors import CalibrationWarning, DataWarning, ParameterError
from volcal.models import SVCJ, Bates, Heston, Kou, Merton, VarianceGamma
from volcal.pricing import COSPricer
from volcal.pricing.gradient import log_cf_grad, log_cf_grad_fd

T_GRID = [0.02, 0.05, 0.1, 0.25, 0.5, 1.0]
K_GRID = np.linspace(-2.0, 2.0, 13)
HESTON = Heston(v0=0.36, kappa=3.0, theta=0.5, xi=1.8, rho=-0.3)


# ----------------------------------------------------------------------------- gradient
@pytest.mark.parametrize(
    "model",
    [
        Heston(0.04, 1.5, 0.05, 0.6, -0.7),
        Heston(0.5, 20.0, 0.3, 4.0, 0.3),
        Bates(0.04, 1.5, 0.05, 0.6, -0.7, 2.0, -0.05, 0.1),
    ],
)
def test_analytic_char_func_gradient_matches_finite_differences(model):
    u = np.linspace(0.01, 40.0, 9)[None, :]
    t = np.array([0.01, 0.3, 2.0])[:, None]
    lp, g = log_cf_grad(model, u, t)
    _, g_fd = log_cf_grad_fd(model, u, t)
    np.testing.assert_allclose(lp, model.log_char_func(u, t), rtol=1e-13, atol=1e-13)
    assert np.max(np.abs(g - g_fd) / (1e-6 + np.abs(g_fd))) < 1e-5


@pytest.mark.parametrize(
    "model",
    [
        Heston(0.36, 3.0, 0.5, 1.5, -0.3),
        Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12),
        SVCJ(0.36, 3.0, 0.5, 1.5, -0.3, 1.5, -0.05, 0.1, 0.1, -0.3),
        Merton(0.5, 2.0, -0.05, 0.15),
        Kou(0.5, 3.0, 0.35, 12.0, 9.0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_engine_jacobian_matches_finite_differences_of_its_prices(model):
    """Prices and Jacobian come from the same compiled kernel (analytic for Heston and
    Bates, forward differences of the characteristic function otherwise), on one plan."""
    t = np.repeat([0.02, 0.25, 1.0], 5)
    k = np.exp(np.tile(np.linspace(-1.0, 1.0, 5), 3) * np.sqrt(t) * 0.7)
    plan = COSPricer().plan(1.0, k, t, k >= 1.0, model=model)
    p, jac = plan.price_and_jac(model)
    np.testing.assert_array_equal(p, plan.price(model))
    x = model.to_vector()
    for j in range(x.size):
        h = 1e-5 * max(abs(x[j]), 1e-2)
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        up = plan.price(type(model).from_vector(xp))
        dn = plan.price(type(model).from_vector(xm))
        np.testing.assert_allclose(jac[:, j], (up - dn) / (2 * h), rtol=1e-5, atol=1e-10)


# ------------------------------------------------------------------------------ pricing
def test_calibration_prices_are_the_library_prices():
    """One engine: the objective's quote prices are volcal.price's, bit for bit."""
    from volcal.calibration.calibrate import _QuotePricer

    q = synthetic_quotes(HESTON, T_GRID, K_GRID)
    qp = _QuotePricer("heston", q, COSPricer())
    m = HESTON.replace(xi=2.5)
    ref = volcal.price(m, q.forward, q.strike, q.t, q.k >= 0.0) / q.forward
    np.testing.assert_array_equal(qp.prices(m), ref)


# --------------------------------------------------------------------------- transforms
def test_param_space_round_trip_fixed_and_feller():
    x = Heston(0.04, 2.0, 0.05, 0.3, -0.6).to_vector()
    sp = ParamSpace(Heston, x, fixed={"rho": -0.5})
    assert sp.free_names == ("v0", "kappa", "theta", "xi")
    back = sp.to_x(sp.to_y(x))
    np.testing.assert_allclose(back[:4], x[:4], rtol=1e-10)
    assert back[4] == -0.5
    # Feller: any unconstrained vector gives 2 kappa theta >= xi^2
    fs = ParamSpace(Heston, Heston(0.04, 2.0, 0.05, 0.9, -0.6).to_vector(), feller=True)
    rng = np.random.default_rng(1)
    for y in rng.normal(0, 5, (50, 5)):
        assert Heston.from_vector(fs.to_x(y)).feller
    # analytic dx/dz matches finite differences through the Feller map
    z = fs.x_to_z(fs.base)
    d = fs.dx_dz(z)
    for j in range(z.size):
        zp = z.copy()
        zp[j] += 1e-7
        np.testing.assert_allclose((fs.z_to_x(zp) - fs.z_to_x(z)) / 1e-7, d[:, j], atol=1e-5)
    with pytest.raises(ParameterError):
        ParamSpace(Heston, x, fixed=["nope"])


# ----------------------------------------------------------------------------- recovery
@pytest.mark.parametrize(
    ("name", "true", "maturities"),
    [
        ("heston", HESTON, T_GRID),
        ("bates", Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12), T_GRID),
        ("merton", Merton(0.55, 3.0, -0.05, 0.15), T_GRID),
        ("kou", Kou(0.5, 3.0, 0.35, 12.0, 9.0), [0.1, 0.25, 0.5, 1.0]),
        ("vg", VarianceGamma(0.6, 0.3, -0.2), [0.25, 0.5, 1.0, 2.0]),
        ("svcj", SVCJ(0.36, 3.0, 0.5, 1.5, -0.3, 1.5, -0.05, 0.1, 0.1, -0.3), T_GRID),
    ],
)
def test_noise_free_recovery_from_a_cold_start(name, true, maturities):
    """Synthetic surface from volcal.price; the calibrator's own COS grid must find it."""
    q = synthetic_quotes(true, maturities, K_GRID, spread_vol=0.02)
    fit = calibrate(q, name, seed=0)
    assert fit.status == "ok", fit.message
    x, x0 = fit.params.to_vector(), true.to_vector()
    rel = np.abs(x - x0) / np.maximum(np.abs(x0), 1e-2)
    tol = {"kou": 1e-3, "vg": 1e-2}.get(name, 1e-6)  # Lévy kinks: COS vs Lewis agree to ~1e-5
    assert rel.max() < tol, (fit.params.summary(), rel)
    assert fit.rmse_vol < (0.2 if name == "vg" else 1e-3)
    assert fit.inside_spread == 1.0 or name == "vg"
    assert isinstance(fit.params, type(true))


def test_noisy_recovery_within_stated_standard_errors():
    q = synthetic_quotes(HESTON, T_GRID, np.linspace(-2, 2, 21), spread_vol=0.02, noise=1.0, seed=3)
    fit = calibrate(q, "heston")
    assert fit.status == "ok"
    assert fit.stderr is not None
    z = np.array(
        [(getattr(fit.params, n) - getattr(HESTON, n)) / fit.stderr[n] for n in HESTON.param_names]
    )
    assert np.all(np.abs(z) < 4.0), z  # inside 4 standard errors
    assert 0.5 < fit.rmse_vol < 1.5  # noise std is 1 vol point
    assert fit.inside_spread > 0.6


def test_exact_and_vega_iv_modes_reach_the_same_fit():
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=5)
    a = calibrate(q, "heston", start=HESTON)
    b = calibrate(q, "heston", start=HESTON, iv_mode="vega")
    assert abs(a.rmse_vol - b.rmse_vol) < 0.02
    np.testing.assert_allclose(a.params.to_vector(), b.params.to_vector(), rtol=0.05)


# --------------------------------------------------------------------- options and API
def test_fixed_parameters_stay_fixed_and_feller_is_enforced():
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02)
    fit = calibrate(q, "heston", fixed={"kappa": 2.0}, start=HESTON.replace(kappa=2.0))
    assert fit.params.kappa == 2.0
    assert fit.stderr is not None and "kappa" not in fit.stderr
    assert "kappa" in fit.extra["fixed"]
    f2 = calibrate(q, "heston", feller=True, start=HESTON)
    assert f2.params.feller
    assert f2.rmse_vol > 0.01  # the true model violates Feller: the constraint costs fit
    assert not any("Feller condition violated" in w for w in f2.warnings)
    assert any("Feller condition violated" in w for w in calibrate(q, HESTON).warnings)


def test_regularization_pulls_toward_the_prior():
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=2)
    prior = HESTON.replace(kappa=6.0, xi=2.5)
    free = calibrate(q, "heston", start=prior)
    tied = calibrate(q, "heston", start=prior, prior=prior, strength=100.0)
    d_free = abs(free.params.kappa - 6.0)
    d_tied = abs(tied.params.kappa - 6.0)
    assert d_tied < 0.5 * d_free
    assert tied.rmse_vol >= free.rmse_vol - 1e-9


def test_time_limit_returns_best_parameters_with_status():
    q = synthetic_quotes(
        SVCJ(0.36, 3.0, 0.5, 1.5, -0.3, 1.5, -0.05, 0.1, 0.1, -0.3), T_GRID, K_GRID
    )
    # a limit far below the fit's own time (about 60 ms warm on a loaded machine): the
    # former 50 ms was within reach of the faster engine
    with pytest.warns(CalibrationWarning, match="time_limit"):
        fit = calibrate(q, "svcj", max_time=0.005)
    assert fit.status == "time_limit"
    assert np.all(np.isfinite(fit.params.to_vector()))
    assert fit.warnings[0].startswith("svcj calibration time_limit")
    json.dumps(fit.to_dict())


def test_tracker_survives_invalid_points_and_never_returns_nan():
    calls = {"n": 0}

    def fun(y):
        calls["n"] += 1
        if y[0] > 1.0:
            return np.array([np.nan, np.inf])
        return np.array([y[0] - 0.5, 0.1 * y[0]])

    tr = Tracker(fun, None, time.perf_counter() + 5)
    out = solve(tr, np.array([0.9]), method="trf")
    assert out.status == "ok"
    assert abs(out.y[0] - 0.5 / 1.01) < 1e-6
    # starting inside the invalid region: finite penalties, a finite answer, never NaN
    stuck = solve(Tracker(fun, None, time.perf_counter() + 5), np.array([3.0]), method="trf")
    assert np.all(np.isfinite(stuck.y)) and np.isfinite(stuck.cost)


def test_model_instance_is_the_start_and_bad_arguments_raise():
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02)
    fit = calibrate(q, HESTON.replace(kappa=2.5))
    assert fit.start.kappa == 2.5
    assert fit.extra["warm_start"] and not fit.extra["global_search"]
    for bad in (
        {"model": "nope"},
        {"model": "heston", "objective": "x"},
        {"model": "heston", "strength": -1.0},
    ):
        with pytest.raises(ParameterError):
            calibrate(q, **bad)


def test_result_contents_summary_and_json():
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02, noise=0.5)
    fit = calibrate(q, "heston", weights="vega", objective="price", start=HESTON)
    assert isinstance(fit, CalibrationResult)
    assert fit.model_iv.shape == fit.residuals.shape == fit.weights.shape == (len(q),)
    np.testing.assert_allclose(fit.residuals, fit.model_iv - q.iv_mid)
    assert len(fit.slices) == len(T_GRID)
    assert all(abs(s.atm_vol - 0.6) < 0.1 for s in fit.slices)
    text = fit.summary()
    assert "heston calibration: ok" in text and "kappa=" in text
    d = json.loads(json.dumps(fit.to_dict()))
    assert d["params"]["model"] == "Heston" and d["extra"]["objective"] == "price"
    assert fit.jac_cond is not None and fit.jac_cond > 1


def test_calibrate_series_warm_starts_and_regularizes():
    snaps = [
        synthetic_quotes(HESTON.replace(v0=v0), T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=i)
        for i, v0 in enumerate([0.36, 0.38, 0.35])
    ]
    s = calibrate_series(snaps, "heston", start=HESTON)
    tied = calibrate_series(snaps, "heston", start=HESTON, strength=50.0)
    assert len(s) == 3 and all(r.status == "ok" for r in s.results)
    assert not s.results[1].extra["global_search"]
    p = s.params()
    assert list(p.columns[:5]) == list(Heston.param_names)
    assert tied.stability()["kappa"] <= s.stability()["kappa"] + 1e-12
    assert set(s.quality().columns) >= {"rmse_vol", "inside_spread", "elapsed_s", "status"}


def test_volcal_top_level_exports():
    assert volcal.calibrate is calibrate
    assert volcal.calibrate_series is calibrate_series


# ---------------------------------------------------------------------------- real data
@pytest.mark.data
@pytest.mark.parametrize(
    ("fname", "currency"),
    [
        ("deribit_options_snapshot_20260107T092155Z.csv", "BTC"),
        ("deribit_options_snapshot_20260819T094232Z.csv", "ETH"),
    ],
)
def test_real_snapshots_fit_sanely(snapshot_dir, fname, currency):
    from volcal.calibration.quotes import as_quotes

    chain = volcal.read_chain(snapshot_dir / fname, currency=currency)
    with warnings.catch_warnings():  # uncleaned chain: bids below intrinsic are reported
        warnings.simplefilter("ignore", DataWarning)
        q = as_quotes(chain)
    q = q.subset(q.t > 2 / 365)
    for name in ("heston", "bates", "merton", "sabr"):
        fit = calibrate(q, name, max_time=10.0)
        assert fit.status in ("ok", "max_iter"), (name, fit.message)
        # stochastic vol fits the term structure; a Lévy model's constant law cannot
        limit = 10.0 if name == "merton" else 4.0
        assert np.isfinite(fit.rmse_vol) and fit.rmse_vol < limit, (name, fit.rmse_vol)
        assert fit.inside_spread > (0.05 if name == "merton" else 0.2)
        vec = (
            fit.params.to_vector()
            if hasattr(fit.params, "to_vector")
            else np.array([s.to_vector() for s in fit.params.smiles])
        )
        assert np.all(np.isfinite(vec))
    warm = calibrate(q, "heston", start=calibrate(q, "heston").params)
    assert warm.nfev < 60


# ---------------------------------------------------------------------- one engine, box
@pytest.mark.parametrize(
    ("name", "true"),
    [
        ("heston", HESTON),
        ("bates", Bates(0.36, 3.0, 0.5, 1.5, -0.3, 2.0, -0.08, 0.12)),
        ("merton", Merton(0.55, 3.0, -0.05, 0.15)),
        ("kou", Kou(0.5, 3.0, 0.35, 12.0, 9.0)),
        ("vg", VarianceGamma(0.6, 0.3, -0.2)),
        ("svcj", SVCJ(0.36, 3.0, 0.5, 1.5, -0.3, 1.5, -0.05, 0.1, 0.1, -0.3)),
        ("black", volcal.models.Black(0.7)),
    ],
)
def test_fit_model_iv_is_the_library_model_iv(name, true):
    """One Fourier engine: ``fit.model_iv`` equals ``volcal.model_iv(fit.params, F, K, T)``
    to 1e-10 in vol for every Fourier model (noisy quotes, so the fit is not the truth)."""
    q = synthetic_quotes(true, [0.02, 0.1, 0.5, 1.0], K_GRID, spread_vol=0.02, noise=1.0, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = calibrate(q, name, start=true)
    lib = volcal.model_iv(fit.params, q.forward, q.strike, q.t)
    np.testing.assert_allclose(fit.model_iv, lib, rtol=0.0, atol=1e-10)


def test_identical_inputs_give_bit_identical_parameters():
    """No wall-clock dependent stopping: the budget and tolerances decide, so a repeat is
    bit for bit the same (also through the global stage)."""
    q = synthetic_quotes(HESTON, T_GRID, K_GRID, spread_vol=0.02, noise=1.0, seed=9)
    a, b = (calibrate(q, "heston") for _ in range(2))
    np.testing.assert_array_equal(a.params.to_vector(), b.params.to_vector())
    assert a.nfev == b.nfev
    g1, g2 = (calibrate(q, "merton", global_search=True) for _ in range(2))
    assert g1.extra["global_search"] and g1.extra["design_points"] > 0
    np.testing.assert_array_equal(g1.params.to_vector(), g2.params.to_vector())


def test_heston_family_box_reaches_crypto_fits_and_is_an_argument():
    """xi up to 40 and kappa up to 200 (real BTC fits reach xi 15-16, kappa 60-120);
    ``bounds=`` narrows or widens any parameter's box; a box that excludes the start,
    an unknown name or a malformed pair is a ParameterError."""
    for cls in (Heston, Bates, SVCJ):
        hi = cls.bounds()[1]
        names = cls.param_names
        assert hi[names.index("xi")] == 40.0 and hi[names.index("kappa")] == 200.0
    true = Heston(0.5, 80.0, 0.4, 16.0, -0.2)
    q = synthetic_quotes(true, T_GRID, K_GRID, spread_vol=0.02)
    fit = calibrate(q, "heston", start=true.replace(kappa=60.0, xi=12.0))
    assert fit.params.xi == pytest.approx(16.0, rel=1e-6)
    assert fit.params.kappa == pytest.approx(80.0, rel=1e-6)
    capped = calibrate(q, "heston", start=HESTON, bounds={"xi": (0.1, 10.0)})
    assert capped.params.xi <= 10.0 and any("xi at upper bound" in w for w in capped.warnings)
    assert list(capped.extra["bounds"]["xi"]) == [0.1, 10.0]
    cold = calibrate(q, "heston", bounds={"kappa": (10.0, 150.0)})  # guess moved inside
    assert 10.0 <= cold.params.kappa <= 150.0
    for bad, match in (
        ({"xi": (0.1, 1.0)}, "excludes the start"),
        ({"nope": (0.0, 1.0)}, "no parameter"),
        ({"xi": (2.0, 1.0)}, "lo < hi"),
        ({"xi": 3.0}, "pair"),
    ):
        with pytest.raises(ParameterError, match=match):
            calibrate(q, "heston", start=HESTON, bounds=bad)


def test_closed_form_heston_cumulants_match_cauchy_formula():
    """Fang & Oosterlee (2008) c1, c2 of Heston (compiled engine) against the numerical
    Cauchy-formula cumulants of the exact exponent."""
    from volcal.pricing._fourier_numba import cumulants

    for m in (HESTON, Heston(0.04, 1.5, 0.05, 0.6, -0.7), Heston(0.5, 20.0, 0.3, 4.0, 0.3)):
        for t in (1 / 365, 0.25, 2.0):
            c1, c2, _ = cumulants(4, m.to_vector(), t)
            n1, n2, _ = m._numeric_cumulants(np.array([t]))
            assert c1 == pytest.approx(float(n1[0]), rel=1e-7, abs=1e-12)
            assert c2 == pytest.approx(float(n2[0]), rel=1e-7)


def test_low_discrepancy_design_is_deterministic_and_even():
    from volcal.calibration.engine import low_discrepancy

    d = low_discrepancy(256, 5)
    np.testing.assert_array_equal(d, low_discrepancy(256, 5))
    assert d.shape == (256, 5) and np.all((d >= 0) & (d < 1))
    # every coordinate fills [0, 1) evenly: 16 bins of 16 points +- a few
    for j in range(5):
        counts = np.histogram(d[:, j], bins=16, range=(0, 1))[0]
        assert counts.min() >= 12 and counts.max() <= 20
    np.testing.assert_array_equal(low_discrepancy(4, 2, offset=4), low_discrepancy(8, 2)[4:])


def test_model_registry_lives_on_the_classes():
    """Name, parameter order, bounds, search box and data-driven start of every Fourier
    model come from its class; the calibration reads them from there."""
    from volcal.calibration.calibrate import FOURIER_MODELS, model_class
    from volcal.models import fourier_models

    reg = fourier_models()
    assert set(reg) == set(FOURIER_MODELS)
    for name, cls in reg.items():
        assert model_class(name) is cls and cls.model_name == name
        lo, hi = cls.bounds()
        box = np.array(cls.search_box)
        assert box.shape == (len(cls.param_names), 2)
        assert np.all(box[:, 0] >= lo) and np.all(box[:, 1] <= hi)
        guess = cls.data_guess(0.8, 0.6, 0.7)
        assert set(guess) == set(cls.param_names)
        cls(**guess)  # a valid model


def test_slice_fits_without_params_are_the_dataclass_instances() -> None:
    """slice_fits' SliceFits of a surface model: equal, field for field and in repr, to
    SliceFit(...) of the same values, read-only, with an empty read-only params mapping."""
    import dataclasses as _dcs

    from volcal.calibration.result import SliceFit, slice_fits
    from volcal.calibration.synthetic import synthetic_quotes
    from volcal.models import Heston

    m = Heston(v0=0.08, kappa=3.0, theta=0.1, xi=0.25, rho=-0.8)
    q = synthetic_quotes(m, [0.25, 1.0], np.linspace(-1.0, 1.0, 5), spread_vol=0.02)
    iv = q.iv_mid + 0.001 * np.arange(len(q))
    iv[3] = np.nan
    fits = slice_fits(q, iv, atm_vol=np.array([0.3, 0.31]))
    for f in fits:
        g = SliceFit(**{fl.name: getattr(f, fl.name) for fl in _dcs.fields(SliceFit)})
        assert f == g and repr(f) == repr(g) and f.to_dict() == g.to_dict()
        assert list(vars(f)) == list(vars(g))
        with pytest.raises(_dcs.FrozenInstanceError):
            f.rmse_vol = 0.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            f.params["a"] = 1  # type: ignore[index]
    assert np.isfinite(fits[0].rmse_vol) and fits[0].n_used == 5
