"""Calibration benchmark: volcal vs QuantLib (Heston LM), Cui et al. recovery, warm series.

Run from the repository root (real data from ../shared/data)::

    python benchmarks/bench_calibration.py [--quick] [--write] [--parts abc] [--repeat N]
        [--clock wall|cpu]

(a) Real BTC snapshots (OTM quotes with bids, T > 2 days, uniform weights), Heston from
    the same start: volcal ``calibrate(q, "heston", start=START, weights="uniform")``
    against QuantLib LM (``AnalyticHestonEngine(model, 64)`` - 64-node Gauss-Laguerre -
    ``LevenbergMarquardt(1e-8, 1e-8, 1e-8)``, one ``HestonModelHelper`` per quote, implied
    vol error). Both fits are scored by ``volcal.model_iv`` on the same quotes with their
    exact maturities (QuantLib helpers take whole days). Also the default
    ``calibrate(clean(chain), "heston")`` (data-driven start, spread weights).
(b) Cui, del Baño Rollin & Germano (2017) setting: true Heston(v0=0.08, kappa=3,
    theta=0.1, xi=0.25, rho=-0.8), start (v0=0.2, kappa=1.2, theta=0.2, xi=0.3,
    rho=-0.6), 40 noise-free options (8 maturities 0.25-2 years x 5 strikes 0.8-1.2,
    S = 1, zero rates - our layout of their 40-option test); recovery to 1e-5 relative
    in every parameter, in a process that has already calibrated once (compiled kernels
    loaded), against QuantLib LM from the same start.
(c) Warm Heston recalibration along consecutive snapshots (2026-01-23/24, 8 chains):
    first fit cold, then ``start=`` the previous fit; median and max time per snapshot.

Times: minimum of ``--repeat`` runs for (a)/(b) (QuantLib in (b): of up to 5 runs, in
(a): one run); for (c) the minimum per snapshot over
``--repeat`` passes along the sequence (the fits are deterministic: every pass repeats
the same fits).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from _markdown import write_section

import volcal
from volcal.calibration.calibrate import as_quotes, calibrate
from volcal.calibration.result import fit_quality
from volcal.calibration.synthetic import synthetic_quotes
from volcal.errors import CalibrationWarning, DataWarning
from volcal.models import Heston

SECTION = "## Calibration speed"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
SNAPS = DATA / "svcj-deribit-snapshots"
START = Heston(v0=0.3, kappa=2.0, theta=0.3, xi=1.0, rho=-0.1)
REAL = [
    "deribit_options_snapshot_20260107T092155Z.csv",
    "deribit_options_snapshot_20260318T094436Z.csv",
    "deribit_options_snapshot_20260513T113501Z.csv",
    "deribit_options_snapshot_20260610T071543Z.csv",
    "deribit_options_snapshot_20260819T094232Z.csv",
    "deribit_options_snapshot_20251230T173115Z.csv",
]
CUI_TRUE = Heston(v0=0.08, kappa=3.0, theta=0.1, xi=0.25, rho=-0.8)
CUI_START = Heston(v0=0.2, kappa=1.2, theta=0.2, xi=0.3, rho=-0.6)


def chain_of(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return volcal.read_chain(SNAPS / name, currency="BTC")


def real_quotes(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        q = as_quotes(chain_of(name))
    keep = (q.t > 2 / 365) & np.isfinite(q.bid) & (q.bid > 0)
    return q.subset(keep)


def quantlib_heston(q, start: Heston, weights, clock=time.perf_counter) -> tuple[Heston, float]:
    import QuantLib as ql

    today = ql.Date(1, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    spot = ql.QuoteHandle(ql.SimpleQuote(1.0))
    proc = ql.HestonProcess(curve, curve, spot, *map(float, start.to_vector()))
    model = ql.HestonModel(proc)
    engine = ql.AnalyticHestonEngine(model, 64)
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
    t0 = clock()
    model.calibrate(
        helpers,
        lm,
        ql.EndCriteria(500, 50, 1e-8, 1e-8, 1e-8),
        ql.NoConstraint(),
        list(map(float, weights)),
    )
    dt = clock() - t0
    th, ka, xi, rho, v0 = model.params()
    fit = Heston(
        v0=max(v0, 1e-8),
        kappa=max(ka, 1e-8),
        theta=max(th, 1e-8),
        xi=max(xi, 0.0),
        rho=min(max(rho, -0.9999), 0.9999),
    )
    return fit, dt


def score(q, m: Heston) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_quality(q, volcal.model_iv(m, q.forward, q.strike, q.t))[0]


def best_of(fn, repeat: int, clock=time.perf_counter):
    out, best = None, np.inf
    for _ in range(repeat):
        t0 = clock()
        out = fn()
        best = min(best, clock() - t0)
    return out, best


def part_a(names: list[str], repeat: int, clock=time.perf_counter) -> list[str]:
    lines = [
        "(a) Real BTC snapshots, OTM quotes with bids, T > 2 days, uniform weights, "
        f"start {START.summary()}. Baseline: QuantLib LM with `AnalyticHestonEngine(model, "
        "64)`, LM 1e-8; both RMSEs (vol points) from `volcal.model_iv` on the same quotes "
        "with exact maturities. Last two columns: the default "
        '`calibrate(clean(chain), "heston")` (data-driven start, spread weights).',
        "",
        "| snapshot | n | volcal RMSE | volcal ms | QuantLib RMSE | QuantLib ms | x QuantLib "
        "| default ms | default x QuantLib |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios, dratios = [], []
    for name in names:
        q = real_quotes(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            fit, t_v = best_of(
                lambda q=q: calibrate(q, "heston", start=START, weights="uniform"), repeat, clock
            )
            clean = volcal.clean(chain_of(name))
            _, t_d = best_of(lambda clean=clean: calibrate(clean, "heston"), repeat, clock)
        m_ql, t_ql = quantlib_heston(q, START, np.ones(len(q)), clock)
        rm_v, rm_ql = score(q, fit.params), score(q, m_ql)
        ratios.append(t_ql / t_v)
        dratios.append(t_ql / t_d)
        lines.append(
            f"| {name[25:40]} | {len(q)} | {rm_v:.3f} | {1e3 * t_v:.1f} | {rm_ql:.3f} | "
            f"{1e3 * t_ql:.0f} | {t_ql / t_v:.1f} | {1e3 * t_d:.1f} | {t_ql / t_d:.1f} |"
        )
        print(lines[-1])
    lines += [
        "",
        f"Ratio to QuantLib, same start: median {np.median(ratios):.1f}x (min "
        f"{np.min(ratios):.1f}x); default calibrate: median {np.median(dratios):.1f}x "
        f"(min {np.min(dratios):.1f}x).",
        "",
    ]
    return lines


def part_b(repeat: int, clock=time.perf_counter) -> list[str]:
    t = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    q = synthetic_quotes(CUI_TRUE, t, np.linspace(-1.0, 1.0, 5), spread_vol=0.02)
    # 5 strikes at k = -1..1 standard units of synthetic_quotes; the layout is ours
    calibrate(q, "heston", start=CUI_START, weights="uniform")  # this process calibrated once
    fit, t_v = best_of(
        lambda: calibrate(q, "heston", start=CUI_START, weights="uniform"), repeat, clock
    )
    x, x0 = fit.params.to_vector(), CUI_TRUE.to_vector()
    rel = float(np.max(np.abs(x / x0 - 1.0)))
    # QuantLib: minimum of up to 5 runs (each from the same start), like volcal's
    n_ql = min(max(repeat, 1), 5)
    runs = [quantlib_heston(q, CUI_START, np.ones(len(q)), clock) for _ in range(n_ql)]
    m_ql, t_ql = runs[0][0], min(dt for _, dt in runs)
    rel_ql = float(np.max(np.abs(m_ql.to_vector() / x0 - 1.0)))
    return [
        f"(b) Cui et al. (2017) parameters, {len(q)} noise-free options, start "
        f"{CUI_START.summary()}, second calibration in the process:",
        "",
        "| engine | ms | max rel. parameter error | params |",
        "|---|---|---|---|",
        f"| volcal calibrate | {1e3 * t_v:.1f} | {rel:.1e} | {fit.params.summary()} |",
        f"| QuantLib LM (model, 64) | {1e3 * t_ql:.1f} | {rel_ql:.1e} | {m_ql.summary()} |",
        "",
        f"Ratio: {t_ql / t_v:.1f}x QuantLib (QuantLib prices on whole-day maturities, so its "
        "recovery error includes the day rounding).",
        "",
    ]


def part_c(quick: bool, repeat: int = 1, clock=time.perf_counter) -> list[str]:
    names = sorted(p.name for p in SNAPS.glob("deribit_options_snapshot_2026012[34]T*.csv"))
    if quick:
        names = names[:4]
    chains = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        for n in names:
            chains.append(volcal.clean(chain_of(n)))
    passes, rmse = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        for _ in range(max(1, repeat)):  # deterministic fits: every pass is the same chain
            prev = calibrate(chains[0], "heston")
            times, rmse = [], []
            for c in chains[1:]:
                t0 = clock()
                prev = calibrate(c, "heston", start=prev)
                times.append(clock() - t0)
                rmse.append(prev.rmse_vol)
            passes.append(times)
    times = list(np.min(np.array(passes), axis=0))  # per snapshot, min over the passes
    return [
        f"(c) Warm Heston recalibration along {len(chains)} consecutive BTC snapshots "
        "(2026-01-23/24, cleaned, spread weights; first fit cold, then `start=` the "
        f"previous fit; min of {len(passes)} passes per snapshot): median "
        f"{1e3 * np.median(times):.1f} ms, max "
        f"{1e3 * np.max(times):.1f} ms per snapshot, RMSE {min(rmse):.2f}-{max(rmse):.2f} "
        "vol points.",
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 snapshots, 2 repeats")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="replace the BENCHMARKS.md section")
    ap.add_argument(
        "--parts",
        default="abc",
        help="which parts to run, e.g. 'bc' for the Cui set and the warm series only",
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default) or this process's CPU time (steadier on a shared machine)",
    )
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if not set(args.parts) <= set("abc") or not args.parts:
        ap.error(f"--parts takes letters of 'abc', got {args.parts!r}")
    if args.write and args.parts != "abc":
        ap.error("--write needs every part (--parts abc)")
    repeat = 2 if args.quick else args.repeat
    names = REAL[:2] if args.quick else REAL
    # compile / load every kernel first: the figures are for a process that has run once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        calibrate(real_quotes(names[0]), "heston", start=START)
    lines = [
        SECTION,
        "",
        "Command (2 shared cores, load average "
        f"{os.getloadavg()[0]:.1f} at start; the figures are from this run):",
        "",
        "```",
        "python benchmarks/bench_calibration.py" + (" --quick" if args.quick else "") + " --write",
        "```",
        "",
    ]
    if "a" in args.parts:
        lines += part_a(names, repeat, clock)
    if "b" in args.parts:
        lines += part_b(repeat, clock)
    if "c" in args.parts:
        lines += part_c(args.quick, repeat, clock)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
