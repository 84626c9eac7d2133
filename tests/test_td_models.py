"""Time-dependent Heston/Bates (``HestonTD``, ``BatesTD``, ``"heston_td"``, ``"bates_td"``).

Layers: reduction to the constant models (machine precision), QuantLib's
``PiecewiseTimeDependentHestonModel`` with ``AnalyticPTDHestonEngine`` as the independent
oracle (QuantLib 1.x, ql/models/equity/piecewisetimedependenthestonmodel.hpp and
ql/pricingengines/vanilla/analyticptdhestonengine.hpp; Elices 2008), Monte Carlo within
3 standard errors, recovery from an exactly priced synthetic chain, real chains.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import volcal
from volcal.calibration.synthetic import synthetic_quotes
from volcal.calibration.td import calibrate_td
from volcal.errors import CalibrationWarning, DataWarning, ParameterError
from volcal.models import Bates, BatesTD, Heston, HestonTD
from volcal.models.heston_td import td_exponents
from volcal.pricing.mc import mc_price

KNOTS = (0.1, 0.3, 0.7, 1.5)
H = Heston(0.04, 1.5, 0.05, 0.8, -0.7)
B = Bates(0.04, 1.5, 0.05, 0.8, -0.7, 2.0, -0.05, 0.1)
PTD = HestonTD(
    (0.25, 0.5, 1.0),
    0.04,
    kappa=(2.0, 1.0, 3.0),
    theta=(0.04, 0.09, 0.06),
    xi=(0.5, 0.9, 0.4),
    rho=(-0.7, -0.3, -0.5),
)
U = np.linspace(-60.0, 60.0, 241)[None, :] + 0.0j
T = np.array([0.02, 0.1, 0.2, 0.5, 1.0, 2.5])[:, None]


# ------------------------------------------------------------- reduction to constant
def test_char_func_reduces_to_heston_and_bates():
    for const, cls in ((H, HestonTD), (B, BatesTD)):
        td = cls.constant(const, KNOTS)
        a, b = const.char_func(U, T), td.char_func(U, T)
        assert np.max(np.abs(a - b)) < 1e-14
        # complex arguments too (the Chernoff bound and cumulants use u = -i s)
        s = -1j * np.linspace(-2.0, 3.0, 11)
        assert np.allclose(const.log_char_func(s, 0.7), td.log_char_func(s, 0.7), atol=1e-13)


def test_prices_reduce_to_constant_models():
    k = np.linspace(60.0, 160.0, 11)
    for const, cls in ((H, HestonTD), (B, BatesTD)):
        td = cls.constant(const, KNOTS)
        for t in (0.05, 0.5, 2.0):
            p0 = volcal.price(const, 100.0, k, t, k >= 100.0)
            p1 = volcal.price(td, 100.0, k, t, k >= 100.0)
            # the engine's accuracy is ~1e-13 of the forward (compiled vs generic path)
            assert np.max(np.abs(p0 - p1)) < 1e-12 * 100.0, (cls, t)
    iv0 = volcal.model_iv(H, 1.0, np.exp([-0.3, 0.0, 0.2]), 0.4)
    iv1 = volcal.model_iv(HestonTD.constant(H, KNOTS), 1.0, np.exp([-0.3, 0.0, 0.2]), 0.4)
    assert np.max(np.abs(iv0 - iv1)) < 1e-10


def test_compiled_kernel_matches_numpy_reference():
    c, d = td_exponents(U, T, PTD.knots, PTD.kappa, PTD.theta, PTD.xi, PTD.rho)
    ref = c + d * PTD.v0
    got = PTD.log_char_func(U, T)
    assert np.max(np.abs(ref - got)) < 1e-12
    assert abs(complex(PTD.char_func(-1j, 3.0)) - 1.0) < 1e-14  # martingale


# ------------------------------------------------------------ per-interval jumps
PJ = BatesTD(
    PTD.knots,
    PTD.v0,
    PTD.kappa,
    PTD.theta,
    PTD.xi,
    PTD.rho,
    lam=(8.0, 1.0, 3.0),
    mu_j=(-0.1, 0.04, -0.02),
    sigma_j=(0.2, 0.05, 0.12),
)


def _jumps_direct(m, u, t):
    """Sum over the intervals of duration x Merton exponent per year (the definition)."""
    iu = 1j * u
    out = np.zeros(np.broadcast(u, t).shape, dtype=complex)
    for i in range(m.n_intervals):
        start = 0.0 if i == 0 else m.knots[i - 1]
        end = np.inf if i == m.n_intervals - 1 else m.knots[i]
        dur = np.clip(np.minimum(t, end) - start, 0.0, None)
        lam, mu, s = m.lam[i], m.mu_j[i], m.sigma_j[i]
        out = out + dur * lam * (
            np.exp(iu * mu - 0.5 * u * u * s * s) - 1 - iu * np.expm1(mu + s * s / 2)
        )
    return out


def test_scalar_jumps_reproduce_the_global_jump_law_exactly():
    from volcal.models.heston import _merton_jump_exponent
    from volcal.models.heston_td import _td_log_cf

    m = BatesTD(PTD.knots, 0.04, PTD.kappa, PTD.theta, PTD.xi, PTD.rho, 2.0, -0.05, 0.1)
    assert m.lam == (2.0,) * 3 and m.interval(2).lam == 2.0
    # the former BatesTD: recursion plus one global Merton exponent lam * t * (...)
    old = _td_log_cf(m, U, T) + _merton_jump_exponent(U, T, 2.0, -0.05, 0.1)
    assert np.array_equal(m.log_char_func(U, T), old)  # bit for bit
    # compiled recursion (the calibration's kernel) with equal jumps: same to rounding
    from volcal.pricing import _td_numba

    for u, t in ((0.7, 0.05), (25.0, 0.6), (3.0 - 0.5j, 2.0)):
        g = np.zeros(0, dtype=complex)
        val = _td_numba.td_log_cf(complex(u), t, *_packed(m), np.zeros(0, np.int64), g)
        want = _td_log_cf(m, u, t) + _merton_jump_exponent(u, t, 2.0, -0.05, 0.1)
        assert abs(val - complex(want)) < 1e-14


def test_per_interval_jumps_char_func():
    # the definition (sum of durations x exponents) against the summed-by-parts form
    ref = td_exponents(U, T, PJ.knots, PJ.kappa, PJ.theta, PJ.xi, PJ.rho)
    want = ref[0] + ref[1] * PJ.v0 + _jumps_direct(PJ, U, T)
    got = PJ.log_char_func(U, T)
    assert np.max(np.abs(got - want)) < 1e-12
    assert abs(complex(PJ.char_func(-1j, 2.0)) - 1.0) < 1e-14  # martingale
    # before the first knot only interval 0's jumps act: the constant Bates of interval 0
    b0 = PJ.interval(0)
    assert b0.lam == 8.0 and b0.mu_j == -0.1
    assert np.max(np.abs(PJ.log_char_func(U, 0.2) - b0.log_char_func(U, 0.2))) < 1e-13
    # equal pieces beyond knot 1 reduce to one interval less
    two = BatesTD(
        (0.25, 0.5),
        PJ.v0,
        PJ.kappa[:2],
        PJ.theta[:2],
        PJ.xi[:2],
        PJ.rho[:2],
        lam=PJ.lam[:2],
        mu_j=PJ.mu_j[:2],
        sigma_j=PJ.sigma_j[:2],
    )
    flat = BatesTD.from_vector(two.resample(PJ.knots).to_vector(), PJ.knots)
    assert np.max(np.abs(flat.log_char_func(U, T) - two.log_char_func(U, T))) < 1e-13
    # compiled kernel
    from volcal.pricing import _td_numba

    for u in (0.7, 25.0, 1.0 - 0.5j):
        for t in (0.1, 0.4, 2.0):
            g = np.zeros(0, dtype=complex)
            val = _td_numba.td_log_cf(complex(u), t, *_packed(PJ), np.zeros(0, np.int64), g)
            assert abs(val - complex(PJ.log_char_func(np.array([u]), t)[0])) < 1e-13
    # layout: 1 + 7n entries, per-interval jump bounds, resample keeps the jump curve
    x = PJ.to_vector()
    assert x.size == 1 + 7 * 3 == len(PJ.names()) and PJ.names()[13] == "lam[0]"
    lo, hi = PJ.bounds()
    assert lo[13:16].tolist() == [0.0] * 3 and hi[19:22].tolist() == [0.5] * 3
    assert BatesTD.from_vector(x, PJ.knots) == PJ
    assert PJ.resample((0.1, 0.4, 0.9, 2.0)).lam == (8.0, 1.0, 3.0, 3.0)
    with pytest.raises(ParameterError, match="interval 1"):
        BatesTD(PJ.knots, 0.04, 1.0, 0.04, 0.5, -0.5, lam=(1.0, -1.0, 1.0))


# ------------------------------------------------------------------ QuantLib oracle
def test_quantlib_piecewise_heston_oracle():
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(1, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    s0 = ql.QuoteHandle(ql.SimpleQuote(100.0))

    def par(vals):
        p = ql.PiecewiseConstantParameter(list(PTD.knots[:-1]), ql.NoConstraint())
        for i, v in enumerate(vals):
            p.setParam(i, v)
        return p

    grid = ql.TimeGrid([*PTD.knots, 2.0], 10)
    qm = ql.PiecewiseTimeDependentHestonModel(
        flat, flat, s0, PTD.v0, par(PTD.theta), par(PTD.kappa), par(PTD.xi), par(PTD.rho), grid
    )
    engine = ql.AnalyticPTDHestonEngine(qm, 1e-12, 100000)
    strikes = np.array([70.0, 85.0, 100.0, 115.0, 140.0])
    for days in (60, 146, 438):
        mat = today + days
        t = dc.yearFraction(today, mat)
        want = []
        for k in strikes:
            opt = ql.EuropeanOption(
                ql.PlainVanillaPayoff(ql.Option.Call, float(k)), ql.EuropeanExercise(mat)
            )
            opt.setPricingEngine(engine)
            want.append(opt.NPV())
        got = volcal.price(PTD, 100.0, strikes, t, True)
        assert np.max(np.abs(got - np.array(want))) < 1e-9, days


# ----------------------------------------------------------------------- Monte Carlo
def test_monte_carlo_within_three_standard_errors():
    m = BatesTD(
        PTD.knots,
        0.04,
        PTD.kappa,
        PTD.theta,
        PTD.xi,
        PTD.rho,
        lam=(1.0, 4.0, 0.5),
        mu_j=(-0.05, -0.15, 0.05),
        sigma_j=(0.1, 0.2, 0.05),
    )
    k = np.array([80.0, 100.0, 120.0])[None, :]
    t = np.array([0.2, 0.6, 1.2])[:, None]
    res = mc_price(m, 100.0, k, t, k >= 100.0, n_paths=20_000, seed=11)
    exact = volcal.price(m, 100.0, k, t, k >= 100.0)
    z = (res.price - exact) / res.stderr
    assert np.all(np.abs(z) < 3.0), z
    # equal pieces: the simulator is the constant one (same draws per step)
    same = mc_price(HestonTD.constant(H, (1.0,)), 100.0, 90.0, 1.0, False, n_paths=2000, seed=2)
    ref = mc_price(H, 100.0, 90.0, 1.0, False, n_paths=2000, seed=2)
    assert abs(float(same.price) - float(ref.price)) < 1e-12


# ------------------------------------------------------------------------ validation
def test_validation_errors():
    with pytest.raises(ParameterError, match="increasing"):
        HestonTD((0.5, 0.2), 0.04, 1.0, 0.04, 0.5, -0.5)
    with pytest.raises(ParameterError, match="one per interval"):
        HestonTD((0.2, 0.5), 0.04, (1.0, 2.0, 3.0), 0.04, 0.5, -0.5)
    with pytest.raises(ParameterError, match="rho"):
        HestonTD((0.2, 0.5), 0.04, 1.0, 0.04, 0.5, (-0.5, 1.5))
    with pytest.raises(ParameterError, match="knots"):
        HestonTD.from_vector(PTD.to_vector())
    assert HestonTD.from_vector(PTD.to_vector(), PTD.knots) == PTD
    lo, hi = PTD.bounds()
    assert np.all(lo < hi)
    assert lo.size == PTD.to_vector().size == len(PTD.names())
    d = BatesTD.constant(B, KNOTS).to_dict()
    assert d["model"] == "BatesTD" and d["lam"] == [2.0] * 4 and len(d["xi"]) == 4
    # resampling onto new knots keeps the parameter curve
    r = PTD.resample((0.1, 0.4, 0.9, 2.0))
    assert r.theta == (0.04, 0.09, 0.06, 0.06)


def test_calibrate_refuses_unsupported_options():
    q = synthetic_quotes(PTD, (0.25, 0.5), np.linspace(-0.2, 0.2, 5))
    with pytest.raises(ParameterError, match="not supported"):
        volcal.calibrate(q, "heston_td", objective="price")
    with pytest.raises(ParameterError, match="mode"):
        calibrate_td(q, "heston_td", mode="sideways")


# -------------------------------------------------------------------------- recovery
def test_recovery_from_exact_synthetic_chain():
    t = np.array([0.05, 0.15, 0.4, 1.0])
    true = HestonTD(
        tuple(t),
        0.30,
        kappa=3.0,
        theta=(0.35, 0.45, 0.40, 0.30),
        xi=(2.0, 1.6, 1.2, 1.0),
        rho=(-0.2, -0.3, -0.4, -0.5),
    )
    q = synthetic_quotes(true, t, np.linspace(-0.4, 0.3, 11))
    start = HestonTD(tuple(t), 0.2, kappa=3.0, theta=0.3, xi=1.0, rho=0.0)
    # kappa fixed (at the truth): per-interval kappa and theta are not separately
    # identified by one expiry's smile
    fit = calibrate_td(q, "heston_td", smooth=0.0, free_kappa=False, start=start)
    assert fit.status == "ok"
    assert fit.rmse_vol < 1e-8
    assert np.max(np.abs(fit.params.to_vector() - true.to_vector())) < 1e-6
    assert fit.stderr is not None and fit.jac_cond is not None
    # a warm start at the solution stays there
    again = calibrate_td(q, "heston_td", smooth=0.0, free_kappa=False, start=fit)
    assert again.rmse_vol < 1e-8 and again.nfev < fit.nfev
    # volcal.calibrate's defaults (free kappa, smoothing penalty) trade a little fit for
    # a smooth term structure; same result object as the constant models
    fit2 = volcal.calibrate(q, "heston_td", start=fit)
    assert fit2.model == "heston_td" and fit2.rmse_vol < 0.2
    assert set(fit2.to_dict()) >= {"params", "rmse_vol", "slices", "stderr", "extra"}
    assert "heston_td" in fit2.summary()


def test_recovery_of_per_interval_jumps():
    # a chain whose three expiries each carry their own jump law (a global law cannot
    # fit all three); the diffusion part is boxed at the truth (one smile hardly
    # separates jumps from vol of vol, which is what the smoothing is for on real data)
    t = np.array([0.02, 0.08, 0.3])
    true = BatesTD(
        tuple(t),
        0.3,
        kappa=3.0,
        theta=0.4,
        xi=1.0,
        rho=-0.3,
        lam=(12.0, 4.0, 1.5),
        mu_j=(-0.06, 0.04, -0.15),
        sigma_j=(0.05, 0.1, 0.12),
    )
    q = synthetic_quotes(true, t, np.linspace(-0.4, 0.3, 15))
    box = {p: (v - 1e-7, v + 1e-7) for p, v in (("kappa", 3.0), ("theta", 0.4), ("xi", 1.0))}
    box["rho"] = (-0.3 - 1e-7, -0.3 + 1e-7)
    # start: one global jump law on every interval (what the former BatesTD had)
    start = BatesTD(tuple(t), 0.25, 3.0, 0.4, 1.0, -0.3, lam=8.0, mu_j=-0.05, sigma_j=0.08)
    fit = calibrate_td(q, "bates_td", smooth=0.0, bounds=box, start=start, ftol=1e-12)
    assert fit.status == "ok" and fit.rmse_vol < 1e-6
    got = fit.params
    for name in ("lam", "mu_j", "sigma_j"):
        np.testing.assert_allclose(getattr(got, name), getattr(true, name), rtol=1e-4, atol=1e-5)
    assert abs(got.v0 - 0.3) < 1e-5
    # the constant Bates with the best single jump law on the same chain is far worse
    const = volcal.calibrate(q, "bates", weights="uniform")
    assert const.rmse_vol > 100 * fit.rmse_vol


# -------------------------------------------------------------------------- real data
@pytest.mark.data
@pytest.mark.parametrize(
    ("fname", "currency"),
    [
        ("deribit_options_snapshot_20260107T092155Z.csv", "BTC"),
        ("deribit_options_snapshot_20260819T094232Z.csv", "ETH"),
    ],
)
def test_real_chains(snapshot_dir, fname, currency):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        chain = volcal.clean(volcal.read_chain(snapshot_dir / fname, currency=currency))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        # max_time only as a safety net: on a loaded machine the fit takes 5-15 s
        fit = volcal.calibrate(chain, "bates_td", max_time=300.0)
    x = fit.params.to_vector()
    lo, hi = fit.params.bounds()
    assert np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi)
    assert fit.status in ("ok", "max_iter")
    # measured (default smooth=0.01) on these two chains: with one global jump law
    # (fitted on the first expiry) 2.73 (BTC, 47 % inside) and 1.41 (ETH, 64 %); with
    # per-interval jumps 0.82 (76 %) and 1.21 (80 %). The bounds leave ~30 % for
    # solver/platform changes; beyond them the bootstrap has gone wrong (constant Bates
    # is at 2.3-2.8 on such chains).
    assert fit.rmse_vol < RMSE_BOUND, fit.rmse_vol
    assert fit.inside_spread > 0.6
    assert np.all(np.isfinite(fit.model_iv))


RMSE_BOUND = 1.6


def test_single_expiry_and_thin_expiry_get_a_clear_report():
    t = np.array([0.1, 0.3, 0.8])
    q = synthetic_quotes(PTD.resample(tuple(t)), t, np.linspace(-0.3, 0.3, 7))
    # one expiry only: one interval, i.e. constant Heston
    one = calibrate_td(q.slice(1), "heston_td")
    assert one.params.n_intervals == 1 and one.status == "ok" and one.rmse_vol < 0.5
    # an expiry with two strikes: fitted through the smoothing, and said so
    keep = q.slice_index != 1
    keep[np.flatnonzero(q.slice_index == 1)[2:4]] = True
    thin = q.subset(keep)
    assert np.bincount(thin.slice_index).tolist() == [7, 2, 7]
    fit = calibrate_td(thin, "heston_td")
    assert np.all(np.isfinite(fit.params.to_vector()))
    assert any("expiry 1 has only 2 quotes" in w for w in fit.warnings)


def test_joint_mode_refines_the_bootstrap():
    t = np.array([0.1, 0.3, 0.8])
    true = PTD.resample(tuple(t))
    q = synthetic_quotes(true, t, np.linspace(-0.3, 0.3, 9), spread_vol=0.02, noise=1.0, seed=4)
    boot = calibrate_td(q, "heston_td", free_kappa=False)
    joint = calibrate_td(q, "heston_td", free_kappa=False, mode="joint")
    assert joint.status == "ok" and joint.extra["steps"][-1]["step"] == "joint"
    # the joint solve starts at the bootstrap solution and minimises the full objective
    assert joint.rmse_vol <= boot.rmse_vol + 1e-3
    assert joint.rmse_vol < 1.5  # noise of one half-spread (1 vol point) per quote


def test_evaluation_only_scores_the_start():
    # fit=False (the rescue's constant candidate): no solve, the start's own fit quality
    t = np.array([0.1, 0.3, 0.8])
    q = synthetic_quotes(H, t, np.linspace(-0.3, 0.3, 7))
    res = calibrate_td(q, "heston_td", start=H, fit=False)
    assert list(res.extra["steps"]) == [] and res.nfev == 0
    assert res.rmse_vol < 1e-8  # H priced as HestonTD.constant(H) reproduces H's quotes


def test_starts_convert_between_the_layouts():
    # a heston_td fit starts bates_td (no jumps on any interval) and back; a stored
    # BatesTD dict with scalar jumps (the former layout) is read onto new knots
    t = np.array([0.1, 0.3, 0.8])
    q = synthetic_quotes(PJ.resample(tuple(t)), t, np.linspace(-0.3, 0.3, 7))
    b = calibrate_td(q, "bates_td", start=PTD, fit=False).params
    # (no jumps: lam 0, clipped into the box interior by 1e-6 of its width)
    assert isinstance(b, BatesTD) and max(b.lam) < 1e-4 and b.theta == (0.04, 0.09, 0.06)
    h = calibrate_td(q, "heston_td", start=PJ, fit=False).params
    assert type(h) is HestonTD and h.to_vector().size == 1 + 4 * 3 and h.xi == PJ.xi
    old = {"model": "BatesTD", "knots": [0.2, 0.6], "v0": 0.04, "kappa": [2.0, 1.0],
           "theta": [0.04, 0.05], "xi": [0.5, 0.6], "rho": [-0.5, -0.4],
           "lam": 2.0, "mu_j": -0.05, "sigma_j": 0.1}  # fmt: skip
    m = calibrate_td(q, "bates_td", start=old, fit=False).params
    assert m.knots == tuple(t) and m.lam == (2.0,) * 3 and m.theta == (0.04, 0.05, 0.05)


# ------------------------------------------------------------ compiled exact Jacobian
def _packed(m):
    return (
        np.array(m.knots),
        np.array(m.kappa),
        np.array(m.theta),
        np.array(m.xi),
        np.array(m.rho),
        m.v0,
        np.concatenate([m.lam, m.mu_j, m.sigma_j])
        if isinstance(m, BatesTD)
        else np.zeros(3 * m.n_intervals),
    )


def test_compiled_recursion_gradient_matches_central_differences():
    from volcal.pricing import _td_numba

    m = BatesTD(
        (0.1, 0.3, 0.7),
        0.05,
        kappa=(2.0, 5.0, 1.0),
        theta=(0.04, 0.09, 0.06),
        xi=(0.5, 1.9, 0.4),
        rho=(-0.7, -0.3, -0.5),
        lam=(1.5, 6.0, 0.5),
        mu_j=(-0.05, -0.12, 0.03),
        sigma_j=(0.1, 0.25, 0.05),
    )
    x = m.to_vector()
    dirs = np.arange(x.size, dtype=np.int64)
    for u in (0.7, 3.0, 25.0, 1.0 - 0.5j):
        for t in (0.05, 0.3, 1.2):
            g = np.zeros(dirs.size, dtype=complex)
            val = _td_numba.td_log_cf(complex(u), t, *_packed(m), dirs, g)
            assert abs(val - complex(m.log_char_func(np.array([u]), t)[0])) < 1e-14
            fd = np.zeros(dirs.size, dtype=complex)
            for j in range(x.size):
                h = 1e-6 * max(abs(x[j]), 1e-2)
                up, dn = x.copy(), x.copy()
                up[j] += h
                dn[j] -= h
                fd[j] = (
                    m.with_vector(up).log_char_func(np.array([u]), t)[0]
                    - m.with_vector(dn).log_char_func(np.array([u]), t)[0]
                ) / (2 * h)
            assert np.max(np.abs(g - fd)) < 1e-8 * max(1.0, np.max(np.abs(fd))), (u, t)
            # a subset of directions (one interval, as in a bootstrap step) gives the
            # same entries
            sub = np.array([2, 5, 8, 11, 14, 17, 20], dtype=np.int64)  # interval 1's pieces
            gs = np.zeros(sub.size, dtype=complex)
            _td_numba.td_log_cf(complex(u), t, *_packed(m), sub, gs)
            assert np.max(np.abs(gs - g[sub])) < 1e-13 * max(1.0, np.max(np.abs(g)))


def test_compiled_prices_and_calibration_jacobian():
    from volcal.calibration.td import _Problem
    from volcal.pricing.cos import COSPricer

    t = np.array([0.05, 0.2, 0.6])
    m = BatesTD.constant(B, tuple(t)).resample(tuple(t))
    m = m.with_vector(m.to_vector() * (1 + 0.1 * np.sin(np.arange(m.to_vector().size))))
    q = synthetic_quotes(m, t, np.linspace(-0.4, 0.3, 9), spread_vol=0.01, noise=1.0, seed=3)
    lo, hi = m.bounds()
    sw = np.sqrt(q.weights("spread"))
    for free, mask in (
        (np.array([0, 1, 4, 7, 10, 13, 16, 19]), q.slice_index == 0),  # step 0 (+ jumps)
        (np.array([3, 6, 9, 12, 15, 18, 21]), q.slice_index == 2),  # interval 2 on expiry 2
        (np.arange(22), np.ones(len(q), dtype=bool)),  # joint
    ):
        pen = [(int(free[0]), None, float(m.to_vector()[free[0]]), 0.1, 0.5)]
        prob = _Problem(m, free, mask, q, sw, lo, hi, pen, COSPricer())
        # prices: the library's engine on the same quotes
        units = prob.units(m.to_vector(), False)[0]
        lib = volcal.price(m, 1.0, np.exp(prob.k), prob.t, prob.call)
        assert np.max(np.abs(units - lib)) < 1e-12
        y = prob.to_y(m.to_vector()) + 0.05
        jac = prob.jacobian(y)
        fd = np.empty_like(jac)
        for j in range(y.size):
            h = 1e-6
            up, dn = y.copy(), y.copy()
            up[j] += h
            dn[j] -= h
            fd[:, j] = (prob.residuals(up) - prob.residuals(dn)) / (2 * h)
        assert np.max(np.abs(jac - fd)) < 1e-6 * max(1.0, np.max(np.abs(fd)))


def test_multistart_keeps_the_best_start_and_plan_is_checked():
    from volcal.calibration.td import _Problem
    from volcal.pricing.cos import COSPricer

    t = np.array([0.08])
    true = HestonTD(tuple(t), 0.3, kappa=20.0, theta=0.4, xi=6.0, rho=-0.3)
    q = synthetic_quotes(true, t, np.linspace(-0.35, 0.3, 11), spread_vol=0.01, noise=1.0, seed=5)
    kw = {"smooth": 0.0, "weights": "uniform", "stderr": False, "rescue": False}
    one = calibrate_td(q, "heston_td", multistart=False, **kw)
    many = calibrate_td(q, "heston_td", multistart=True, **kw)
    # one step, uniform weights, no penalty: the objective is the squared vol error, and
    # the first of the three starts is the single start's, so the kept one is no worse
    assert many.rmse_vol <= one.rmse_vol + 1e-9
    assert many.extra["steps"][0]["nfev"] > one.extra["steps"][0]["nfev"]
    # the plan of a problem is kept while it meets the error bounds, replaced otherwise
    lo, hi = true.bounds()
    prob = _Problem(
        true, np.arange(5), np.ones(len(q), bool), q, np.ones(len(q)), lo, hi, [], COSPricer()
    )
    x = true.to_vector()
    assert prob.replan(x) and not prob.replan(x)
    wide = x.copy()
    wide[0], wide[3] = 1.5, 30.0  # much larger variance and vol of vol: wider range
    assert prob.replan(wide)


def test_compiled_kernel_arguments_are_not_broadcast_views(monkeypatch):
    """A scalar t broadcast against a one-element u stays a stride-0 broadcast view through
    ravel/ascontiguousarray; numba's argument typing (run on the first call in a process)
    reads its deprecated writeable flag and NumPy 2 raises a FutureWarning - a real CI
    failure when this was the first call of the kernel in a worker. Every array the model
    hands the kernel must type cleanly with warnings as errors."""
    import numba

    from volcal.models import heston_td

    real = heston_td._td_kernel()
    seen = []

    def checking(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for a in args:
                if isinstance(a, np.ndarray):
                    numba.typeof(a)
                    seen.append(a.shape)
        return real(*args)

    monkeypatch.setattr(heston_td, "_td_kernel", lambda: checking)
    PTD.log_char_func(np.array([0.7]), 0.05)
    PTD.log_char_func(0.7, np.array([0.05]))
    assert seen, "the compiled kernel was not called"


def test_price_layout_arrays_are_owned_copies():
    """The pricing layout (every compiled pricer's input) gives owned arrays even when a
    scalar is broadcast to a single option (same FutureWarning as above)."""
    import numba

    from volcal.pricing._layout import make_surface

    s = make_surface(100.0, np.array([90.0]), 0.5, True, 1.0, where="test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("forward", "strike", "t", "is_call", "discount"):
            a = getattr(s, name, None)
            if isinstance(a, np.ndarray):
                numba.typeof(a)


def test_warm_refit_never_ends_worse_than_its_start():
    # exact quotes of a piecewise model whose intervals differ: started at the truth, the
    # warm bootstrap's smoothing pulls the intervals together and its data error grows
    # above the start's (zero); the start is kept and said so
    t = np.array([0.25, 0.5, 1.0])
    q = synthetic_quotes(PTD, t, np.linspace(-0.3, 0.3, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        boot = calibrate_td(q, "heston_td", start=PTD, smooth=1.0)
    assert boot.extra["kept_start"] is True and boot.rmse_vol < 1e-6
    assert boot.params.to_vector().tolist() == PTD.to_vector().tolist()
    assert any("start kept" in w for w in boot.warnings)
    # from a perturbed start, refine (the joint solve without the bootstrap) lowers the
    # chain's error below the start's
    off = PTD.with_vector(PTD.to_vector() * 1.15)
    start_fit = calibrate_td(q, "heston_td", start=off, fit=False, stderr=False)
    ref = calibrate_td(q, "heston_td", start=off, mode="refine")
    assert [s["step"] for s in ref.extra["steps"]] == ["joint"]
    assert ref.rmse_vol < 0.2 * start_fit.rmse_vol
