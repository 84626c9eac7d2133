"""Warm refits of heston_td / bates_td (calibration/td.py, the warm path of mode="auto").

A synthetic sequence of two snapshots, each priced exactly by a piecewise model: the
second is the first six hours later (every expiry 0.25 days closer) with the market
moved (the short end's variance and skew). The warm path (a few Levenberg-Marquardt
steps on the joint problem from the previous snapshot's fit) must reach the quality of a
cold fit of the second snapshot; a warm result outside its acceptance limit runs the full
path (a cold fit) and says so; parameters stay finite and inside their box.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import volcal
from volcal.calibration.synthetic import synthetic_quotes
from volcal.calibration.td import calibrate_td
from volcal.errors import CalibrationWarning, ParameterError
from volcal.models import BatesTD, HestonTD

DT = 0.25 / 365.0
T1 = np.array([3.0, 10.0, 30.0, 90.0]) / 365.0
K = np.linspace(-0.25, 0.2, 9)


def _snapshot(shift: float, theta0: float, rho0: float) -> tuple[HestonTD, object]:
    t = T1 - shift
    true = HestonTD(
        tuple(t.tolist()),
        0.36,
        kappa=(4.0, 3.0, 2.0, 2.0),
        theta=(theta0, 0.40, 0.36, 0.30),
        xi=(3.0, 2.0, 1.5, 1.0),
        rho=(rho0, -0.2, -0.3, -0.3),
    )
    return true, synthetic_quotes(true, t, K)


def _in_box(params: HestonTD) -> bool:
    x = params.to_vector()
    lo, hi = params.bounds()
    return bool(np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi))


@pytest.fixture(scope="module")
def sequence() -> dict[str, object]:
    _, q1 = _snapshot(0.0, 0.45, -0.1)
    _, q2 = _snapshot(DT, 0.55, -0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        first = volcal.calibrate(q1, "heston_td")
        cold2 = volcal.calibrate(q2, "heston_td")
    return {"q1": q1, "q2": q2, "first": first, "cold2": cold2}


def test_warm_path_reproduces_the_cold_fit(sequence):
    first, cold2, q2 = sequence["first"], sequence["cold2"], sequence["q2"]
    start_on_q2 = calibrate_td(q2, "heston_td", start=first.params, fit=False)
    warm = volcal.calibrate(q2, "heston_td", start=first)
    info = warm.extra["warm"]
    assert warm.extra["mode"] == "warm" and info["fallback"] is False
    assert [s["step"] for s in warm.extra["steps"]] == ["warm"]
    # the market moved: the start is off on the new chain, the warm steps fix it
    assert start_on_q2.rmse_vol > 3.0 * cold2.rmse_vol
    assert warm.rmse_vol <= cold2.rmse_vol + 0.05
    assert info["evaluations"] <= 12
    assert info["reference_rmse"] == pytest.approx(first.rmse_vol)
    assert warm.status == "ok" and _in_box(warm.params)
    # the next refit is held to the same reference (the last full fit's RMSE)
    again = volcal.calibrate(q2, "heston_td", start=warm)
    assert again.extra["warm"]["reference_rmse"] == pytest.approx(first.rmse_vol)
    assert again.rmse_vol <= warm.rmse_vol + 1e-9
    d = warm.to_dict()
    assert d["extra"]["warm"]["fallback"] is False


def test_fallback_when_the_warm_result_is_outside_its_limit(sequence):
    first, cold2, q2 = sequence["first"], sequence["cold2"], sequence["q2"]
    # one evaluation cannot reach a limit below the reference: the full path runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        res = calibrate_td(q2, "heston_td", start=first, warm_evals=1, warm_tol=-1.0)
    info = res.extra["warm"]
    assert info["fallback"] is True and info["kept"] in ("full", "warm")
    assert info["full_rmse"] == pytest.approx(cold2.rmse_vol, rel=1e-6)
    # the better of the two is kept, and the next refit's reference is the full fit's
    assert res.rmse_vol <= min(info["rmse"], info["full_rmse"]) + 1e-12
    assert info["reference_rmse"] == pytest.approx(res.rmse_vol)
    assert res.extra["warm_start"] is True and _in_box(res.params)


def test_second_round_before_the_fallback(sequence, monkeypatch):
    first, q2 = sequence["first"], sequence["q2"]
    # accepted after one round of two Jacobians
    one = calibrate_td(q2, "heston_td", start=first, warm_evals=2, warm_tol=1e9)
    one_info = one.extra["warm"]
    assert one_info["rounds"] == 1 and one_info["status"] == "max_iter"
    # outside the limit after that round (still decreasing, on its budget): a second
    # round from where the first ended, before the cold fit; it never ends worse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        res = calibrate_td(q2, "heston_td", start=first, warm_evals=2, warm_tol=-1.0)
    info = res.extra["warm"]
    assert info["rounds"] == 2 and info["fallback"] is True
    assert info["evaluations"] > one_info["evaluations"]
    assert info["rmse"] <= one_info["rmse"] + 1e-12
    # a round that takes no step (the start kept) is not repeated (one Jacobian and no
    # secant steps: no step at all)
    from volcal.calibration import td

    monkeypatch.setattr(td, "_WARM_BROYDEN", 0)
    none = calibrate_td(q2, "heston_td", start=first, warm_evals=1, warm_tol=1e9)
    assert none.extra["kept_start"] and none.extra["warm"]["rounds"] == 1


def test_bare_parameter_start_runs_the_bootstrap(sequence):
    # without a previous fit there is no reference for the warm path's acceptance
    res = calibrate_td(sequence["q2"], "heston_td", start=sequence["first"].params)
    assert res.extra["mode"] == "bootstrap" and res.extra["warm"] is None


def test_warm_options_are_validated(sequence):
    with pytest.raises(ParameterError):
        calibrate_td(sequence["q2"], "heston_td", start=sequence["first"], warm_tol=np.nan)
    with pytest.raises(ParameterError):
        calibrate_td(sequence["q2"], "heston_td", start=sequence["first"], warm_evals=0)


def test_bates_td_warm_path_in_box():
    # per-interval jumps: the same sequence with a jump law that moves at the short end
    t1, t2 = T1, T1 - DT
    kw = dict(kappa=3.0, theta=(0.45, 0.40, 0.36, 0.30), xi=(3.0, 2.0, 1.5, 1.0), rho=-0.2)
    m1 = BatesTD(tuple(t1.tolist()), 0.36, **kw, lam=(4.0, 2.0, 1.0, 1.0), mu_j=-0.05, sigma_j=0.1)
    m2 = BatesTD(tuple(t2.tolist()), 0.40, **kw, lam=(6.0, 2.0, 1.0, 1.0), mu_j=-0.08, sigma_j=0.1)
    q1, q2 = synthetic_quotes(m1, t1, K), synthetic_quotes(m2, t2, K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        first = volcal.calibrate(q1, "bates_td")
        cold2 = volcal.calibrate(q2, "bates_td")
    warm = volcal.calibrate(q2, "bates_td", start=first)
    assert warm.extra["mode"] == "warm" and warm.extra["warm"]["fallback"] is False
    assert warm.rmse_vol <= cold2.rmse_vol + 0.05
    assert _in_box(warm.params) and np.all(np.isfinite(warm.model_iv))


def test_warm_result_on_its_budget_says_so(sequence):
    """An accepted warm result that stopped on its Jacobian budget says so in its
    warnings (its status stays that of an accepted fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = calibrate_td(sequence["q2"], "heston_td", start=sequence["first"], warm_evals=1)
    info = fit.extra["warm"]
    assert not info["fallback"] and info["status"] == "max_iter"  # one Jacobian: accepted
    assert fit.status == "ok"
    assert any("stopped on its budget of 1 Jacobians" in m for m in fit.warnings)


def test_corner_start_reset_before_the_fallback(sequence):
    """A start with an interval in a corner of the box (kappa and xi on their upper
    bounds, theta on its lower one: the logistic coordinates saturated, so the warm steps
    cannot move them) is not within its limit after the round from the start; the round
    from the start with that interval reset to the data-driven start is, so no cold fit
    runs."""
    from dataclasses import replace

    first, cold2, q2 = sequence["first"], sequence["cold2"], sequence["q2"]
    p = first.params
    lo, hi = p.bounds()
    bad = p.with_vector(p.to_vector())
    kw = {nm: list(getattr(bad, nm)) for nm in ("kappa", "theta", "xi", "rho")}
    kw["kappa"][0], kw["theta"][0], kw["xi"][0] = float(hi[1]), float(lo[1 + 4]), float(hi[1 + 8])
    corner = HestonTD(bad.knots, bad.v0, **{k: tuple(v) for k, v in kw.items()})
    start = replace(first, params=corner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        no_reset = calibrate_td(q2, "heston_td", start=start, warm_tol=1e9)
        res = calibrate_td(q2, "heston_td", start=start)
    # accepted from the start as it is (a huge limit): no reset, and a poor fit
    assert list(no_reset.extra["warm"]["reset"]) == [] and no_reset.extra["warm"]["rounds"] == 1
    assert no_reset.rmse_vol > 10.0 * cold2.rmse_vol
    info = res.extra["warm"]
    assert list(info["reset"]) == [0] and info["rounds"] >= 2 and info["fallback"] is False
    assert res.rmse_vol <= cold2.rmse_vol + 0.05
    assert res.status == "ok" and _in_box(res.params)
    # a near miss (within warm_tol beyond the limit) is continued
    ref = float(first.rmse_vol)
    tol = float(no_reset.rmse_vol - ref) / 1.5  # limit + tol above the start round's RMSE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        near = calibrate_td(q2, "heston_td", start=start, warm_tol=tol)
    # ... first (the round after the start's), reset only when that misses too
    assert near.extra["warm"]["rounds"] >= 2
    assert list(near.extra["warm"]["reset"]) == ([0] if near.extra["warm"]["rounds"] == 3 else [])
    # a start without a corner is not reset
    plain = volcal.calibrate(q2, "heston_td", start=first)
    assert list(plain.extra["warm"]["reset"]) == []


def test_secant_steps_between_jacobians(sequence, monkeypatch):
    """The warm path takes accepted steps from Broyden updates of the Jacobian between
    full ones (a step costs a pricing of the chain, not a Jacobian): more steps than
    Jacobians, a better fit at the same Jacobian budget than without the updates, and the
    standard errors still from an exact Jacobian at the result."""
    from volcal.calibration import td

    q2, first = sequence["q2"], sequence["first"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        fit = calibrate_td(q2, "heston_td", start=first, warm_evals=2, warm_tol=1e9)
        monkeypatch.setattr(td, "_WARM_BROYDEN", 0)
        plain = calibrate_td(q2, "heston_td", start=first, warm_evals=2, warm_tol=1e9)
    info = fit.extra["warm"]
    # the same Jacobians (the budget and the check of the plan at the result)
    assert info["evaluations"] == plain.extra["warm"]["evaluations"] < info["steps"]
    assert plain.extra["warm"]["steps"] <= 2
    assert fit.rmse_vol < plain.rmse_vol
    assert _in_box(fit.params) and np.all(np.isfinite(fit.model_iv))
    assert fit.stderr is not None and all(np.all(np.isfinite(v)) for v in fit.stderr.values())
