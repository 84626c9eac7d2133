"""Calibration benchmark: volcal vs QuantLib (Heston LM), all models, warm-start series.

Run from the repository root (real data from ../shared/data)::

    .venv/bin/python benchmarks/bench_calibration.py

(a) 250-option synthetic Heston surface: volcal LM vs QuantLib LM, same start, same quotes.
(b) real BTC snapshots (OTM quotes with bids, T > 2 days): volcal vs QuantLib Heston.
(c) every model on those snapshots: RMSE (vol points), inside-spread share, time.
(d) warm-start recalibration along the 2026-01-23/24 sequence, with and without
    regularization: time per fit and parameter stability.

QuantLib's fit is scored with volcal's pricer on the exact maturities (QuantLib helpers
take whole days), so both RMSE columns measure the same thing.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.calibration.calibrate import as_quotes, calibrate
from volcal.calibration.fourier import CosSurface
from volcal.calibration.result import fit_quality
from volcal.calibration.synthetic import synthetic_quotes
from volcal.errors import CalibrationWarning, DataWarning
from volcal.models import Heston

DATA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "raw"
    / "svcj-deribit-snapshots"
)
START = Heston(v0=0.3, kappa=2.0, theta=0.3, xi=1.0, rho=-0.1)


def load(name: str, currency: str = "BTC"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        chain = volcal.read_chain(DATA / name, currency=currency)
        q = as_quotes(chain)
    return q.subset(q.t > 2 / 365)


def heston_iv(q, m):
    surf = CosSurface(q.k, q.is_call, q.slice_index, q.t_slices, np.full(q.n_slices, 1.5))
    res = volcal.implied_vol(surf.prices(m), 1.0, np.exp(q.k), q.t, q.is_call, full_output=True)
    return res.vol


def quantlib_heston(q, start, weights):
    import QuantLib as ql

    today = ql.Date(1, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    spot = ql.QuoteHandle(ql.SimpleQuote(1.0))
    proc = ql.HestonProcess(curve, curve, spot, *start.to_vector())
    model = ql.HestonModel(proc)
    engine = ql.AnalyticHestonEngine(model)
    helpers = []
    for i in range(len(q)):
        days = max(round(float(q.t[i]) * 365), 1)
        h = ql.HestonModelHelper(
            ql.Period(days, ql.Days),
            ql.NullCalendar(),
            1.0,
            float(np.exp(q.k[i])),
            ql.QuoteHandle(ql.SimpleQuote(float(q.iv_mid[i]))),
            curve,
            curve,
            ql.BlackCalibrationHelper.ImpliedVolError,
        )
        h.setPricingEngine(engine)
        helpers.append(h)
    lm = ql.LevenbergMarquardt(1e-8, 1e-8, 1e-8)
    t0 = time.perf_counter()
    model.calibrate(
        helpers,
        lm,
        ql.EndCriteria(500, 50, 1e-8, 1e-8, 1e-8),
        ql.NoConstraint(),
        list(map(float, weights)),
    )
    dt = time.perf_counter() - t0
    th, ka, xi, rho, v0 = model.params()
    return Heston(
        v0=max(v0, 1e-8),
        kappa=max(ka, 1e-8),
        theta=max(th, 1e-8),
        xi=max(xi, 0.0),
        rho=min(max(rho, -0.9999), 0.9999),
    ), dt


def row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def bench_a():
    true = Heston(v0=0.36, kappa=3.0, theta=0.5, xi=1.8, rho=-0.3)
    q = synthetic_quotes(
        true,
        [7 / 365, 14 / 365, 30 / 365, 60 / 365, 91 / 365, 182 / 365, 273 / 365, 1.0, 1.5, 2.0],
        np.linspace(-2.2, 2.2, 25),
        spread_vol=0.02,
    )
    w = np.ones(len(q))
    calibrate(
        q, "heston", start=START, global_search=False, weights="uniform"
    )  # compile/warm caches
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        fit = calibrate(q, "heston", start=START, global_search=False, weights="uniform")
    t_v = (time.perf_counter() - t0) / reps
    m_ql, t_ql = quantlib_heston(q, START, w)
    rm_ql = fit_quality(q, heston_iv(q, m_ql))[0]
    print(f"\n(a) synthetic Heston, {len(q)} options, start {START.summary()}")
    print(row("engine", "RMSE (vol pts)", "time (ms)", "nfev", "params"))
    print(row("---", "---", "---", "---", "---"))
    print(
        row("volcal LM", f"{fit.rmse_vol:.2e}", f"{1000 * t_v:.1f}", fit.nfev, fit.params.summary())
    )
    print(row("QuantLib LM", f"{rm_ql:.2e}", f"{1000 * t_ql:.1f}", "-", m_ql.summary()))
    print(f"speed-up {t_ql / t_v:.1f}x")


def bench_b_c(names):
    print("\n(b) real BTC, Heston from the same start: volcal vs QuantLib LM (uniform weights)")
    print(row("snapshot", "n", "volcal RMSE", "volcal ms", "QuantLib RMSE", "QuantLib ms", "ratio"))
    print(row(*["---"] * 7))
    for name in names:
        q = load(name)
        calibrate(q, "heston", start=START, global_search=False, weights="uniform")
        t0 = time.perf_counter()
        fit = calibrate(q, "heston", start=START, global_search=False, weights="uniform")
        t_v = time.perf_counter() - t0
        m_ql, t_ql = quantlib_heston(q, START, np.ones(len(q)))
        rm_ql = fit_quality(q, heston_iv(q, m_ql))[0]
        print(
            row(
                name[25:40],
                len(q),
                f"{fit.rmse_vol:.3f}",
                f"{1000 * t_v:.1f}",
                f"{rm_ql:.3f}",
                f"{1000 * t_ql:.1f}",
                f"{t_ql / t_v:.1f}x",
            )
        )
    print("\n(c) all models, cold start (global stage), spread weights")
    print(row("snapshot", "model", "RMSE", "inside", "RMSE T<30d", "ms", "status"))
    print(row(*["---"] * 7))
    for name in names:
        q = load(name)
        short = q.t < 30 / 365
        for model in ("sabr", "heston", "bates", "merton", "kou", "vg", "svcj"):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                fit = calibrate(q, model, max_time=20.0)
            dt = time.perf_counter() - t0
            rm_s = 100 * np.sqrt(np.nanmean(fit.residuals[short] ** 2))
            print(
                row(
                    name[25:40],
                    model,
                    f"{fit.rmse_vol:.3f}",
                    f"{fit.inside_spread:.2f}",
                    f"{rm_s:.3f}",
                    f"{1000 * dt:.0f}",
                    fit.status,
                )
            )


def bench_d():
    import importlib

    cal_mod = importlib.import_module("volcal.calibration.calibrate")

    names = sorted(p.name for p in DATA.glob("deribit_options_snapshot_2026012[34]T*.csv"))
    qs = [load(n) for n in names]
    print(f"\n(d) warm-start Heston recalibration along {len(qs)} snapshots 2026-01-23/24")
    print(
        row(
            "strength",
            "median ms",
            "max ms",
            "mean RMSE",
            "max abs RMSE change vs converged",
            "kappa range",
            "xi range",
            "mean |dkappa|/kappa",
        )
    )
    print(row(*["---"] * 8))
    first = calibrate(qs[0], "heston")
    for strength in (0.0, 1.0, 10.0):
        times, fits, prev, excess = [], [first], first, []
        for q in qs[1:]:
            kw = {"start": prev.params, "prior": prev if strength else None, "strength": strength}
            t0 = time.perf_counter()
            fit = calibrate(q, "heston", **kw)
            times.append(time.perf_counter() - t0)
            # the same solve run to the cold-start tolerance: what the stopping rule gives up
            warm_ftol, cal_mod._WARM_FTOL = cal_mod._WARM_FTOL, 1e-10
            try:
                full = calibrate(q, "heston", **kw)
            finally:
                cal_mod._WARM_FTOL = warm_ftol
            excess.append(abs(fit.rmse_vol - full.rmse_vol))
            fits.append(fit)
            prev = fit
        ka = np.array([f.params.kappa for f in fits])
        xi = np.array([f.params.xi for f in fits])
        dk = np.mean(np.abs(np.diff(ka)) / ka[:-1])
        print(
            row(
                strength,
                f"{1000 * np.median(times):.1f}",
                f"{1000 * np.max(times):.1f}",
                f"{np.mean([f.rmse_vol for f in fits]):.3f}",
                f"{max(excess):.4f}",
                f"{ka.min():.2f}-{ka.max():.2f}",
                f"{xi.min():.2f}-{xi.max():.2f}",
                f"{dk:.3f}",
            )
        )
    # QuantLib cold-per-snapshot reference: parameter stability of independent fits
    ka_ql, xi_ql, t_ql = [], [], []
    for q in qs:
        m, dt = quantlib_heston(q, START, q.weights("spread"))
        ka_ql.append(m.kappa)
        xi_ql.append(m.xi)
        t_ql.append(dt)
    print(
        f"QuantLib LM per snapshot from a fixed start: median {1000 * np.median(t_ql):.0f} ms, kappa {min(ka_ql):.2f}-{max(ka_ql):.2f}, xi {min(xi_ql):.2f}-{max(xi_ql):.2f}"
    )


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else "abcd"
    snaps = [
        "deribit_options_snapshot_20260107T092155Z.csv",
        "deribit_options_snapshot_20260819T094232Z.csv",
    ]
    if "a" in part:
        bench_a()
    if "b" in part or "c" in part:
        bench_b_c(snaps)
    if "d" in part:
        bench_d()
