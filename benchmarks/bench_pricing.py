"""Fourier pricing benchmark: a 10-expiry x 25-strike surface, volcal vs QuantLib vs PyFENG.

Same inputs for every engine, in one process: forward = spot = 100, zero rates, expiries
1, 7, 14, 30, 60, 91, 182, 365, 730 and 1095 days (ACT/365), 25 strikes per expiry at
-3..+3 standard deviations of ln(F_T/F) (from the model's cumulants), out-of-the-money
side (puts below the forward, calls at and above). Models: crypto-like Heston
(v0=0.36, kappa=3, theta=0.5, xi=2, rho=-0.3) and Bates (same plus lam=2, mu_j=-0.2,
sigma_j=0.1).

Engines:

* volcal ``price(..., method="cos" | "lewis" | "auto")``: one vectorized call per surface
  (the plan - ranges, N, weights - is built inside every call);
* volcal COS plan reuse: ``COSPricer().plan(...)`` once, then ``plan.price(model)``
  (what an optimizer does between parameter moves);
* QuantLib 1.44 ``AnalyticHestonEngine`` / ``BatesEngine``: tight (adaptive Gauss-Lobatto,
  ``relTolerance=1e-13, maxEvaluations=10**6``; the accuracy oracle) and default
  (Gauss-Laguerre, 144 nodes), one ``VanillaOption`` per quote as users do;
* PyFENG ``HestonFft`` and ``HestonCos`` (``sigma`` is the initial variance), one call per
  expiry; PyFENG has no Bates pricer.

Timings are medians of repeated runs (``--repeat``). Accuracy: max |price - reference|
and the max relative error with the tests' floor, |d| / (|ref| + 1e-5 max(F, K)), where
the reference is QuantLib's tight engine for Heston and volcal's Lewis at ``tol=1e-15``
for Bates (QuantLib's BatesEngine is off by up to ~1e-12 F on long-dated wings, see
tests/test_pricing.py); for Bates the tight QuantLib engine's own error is reported.
Last, throughput of one vectorized call on a 200-expiry x 500-strike batch.

BLAS is pinned to one thread (QuantLib and PyFENG run on one core; on the shared two
cores extra BLAS threads only add contention).

Run:  .venv/bin/python benchmarks/bench_pricing.py [--repeat 7] [--write]
``--write`` replaces the "## Fourier pricing" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from _markdown import write_section  # noqa: E402

import volcal  # noqa: E402
from volcal.models import Bates, Heston, Model  # noqa: E402
from volcal.pricing import COSPricer, LewisPricer  # noqa: E402

SECTION = "## Fourier pricing"
F0 = 100.0
DAYS = np.array([1, 7, 14, 30, 60, 91, 182, 365, 730, 1095])
HESTON = Heston(v0=0.36, kappa=3.0, theta=0.5, xi=2.0, rho=-0.3)
BATES = Bates(v0=0.36, kappa=3.0, theta=0.5, xi=2.0, rho=-0.3, lam=2.0, mu_j=-0.2, sigma_j=0.1)


def surface(model: Model, days: np.ndarray = DAYS, n_strikes: int = 25):
    t = days / 365.0
    c1, c2, _ = model.cumulants(t)
    z = np.linspace(-3.0, 3.0, n_strikes)
    k = (F0 * np.exp(c1[:, None] + z[None, :] * np.sqrt(c2)[:, None])).ravel()
    tt = np.repeat(t, n_strikes)
    return k, tt, k >= F0


def median_time(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up (imports, caches) and the result
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), np.asarray(out, dtype=float)


def quantlib_pricer(model: Model, tight: bool) -> Callable[..., np.ndarray] | None:
    try:
        import QuantLib as ql
    except ImportError:
        return None

    def run(k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
        today = ql.Date(2, 1, 2026)
        ql.Settings.instance().evaluationDate = today
        dc = ql.Actual365Fixed()
        curve = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
        s0 = ql.QuoteHandle(ql.SimpleQuote(F0))
        hp = (model.v0, model.kappa, model.theta, model.xi, model.rho)  # type: ignore[attr-defined]
        if isinstance(model, Bates):
            proc = ql.BatesProcess(curve, curve, s0, *hp, model.lam, model.mu_j, model.sigma_j)
            qm = ql.BatesModel(proc)
            engine = ql.BatesEngine(qm, 1e-13, 1_000_000) if tight else ql.BatesEngine(qm)
        else:
            qm = ql.HestonModel(ql.HestonProcess(curve, curve, s0, *hp))
            engine = (
                ql.AnalyticHestonEngine(qm, 1e-13, 1_000_000)
                if tight
                else ql.AnalyticHestonEngine(qm)
            )
        out = np.empty(k.size)
        for i in range(k.size):
            kind = ql.Option.Call if call[i] else ql.Option.Put
            opt = ql.VanillaOption(
                ql.PlainVanillaPayoff(kind, float(k[i])),
                ql.EuropeanExercise(today + round(float(t[i]) * 365.0)),
            )
            opt.setPricingEngine(engine)
            out[i] = opt.NPV()
        return out

    return run


def pyfeng_pricer(model: Model, cls_name: str) -> tuple[Callable[..., np.ndarray] | None, str]:
    if isinstance(model, Bates):
        return None, "PyFENG has no Bates pricer"
    try:
        import pyfeng as pf

        cls = getattr(pf, cls_name)
        m = cls(sigma=model.v0, vov=model.xi, mr=model.kappa, rho=model.rho, theta=model.theta)
    except Exception as exc:  # report any API failure honestly
        return None, f"PyFENG {cls_name} unavailable: {exc}"

    def run(k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
        out = np.empty(k.size)
        for tu in np.unique(t):
            sel = t == tu
            out[sel] = m.price(k[sel], F0, float(tu), cp=np.where(call[sel], 1, -1))
        return out

    try:
        run(np.array([F0]), np.array([0.5]), np.array([True]))
    except Exception as exc:
        return None, f"PyFENG {cls_name} failed: {exc}"
    return run, ""


def accuracy(p: np.ndarray, ref: np.ndarray, k: np.ndarray, t: np.ndarray) -> tuple:
    """Max |diff|, max floored relative error and the expiry (days) where it occurs."""
    d = np.abs(p - ref)
    if not np.all(np.isfinite(d)):
        return float("nan"), float("nan"), -1
    rel = d / (np.abs(ref) + 1e-5 * np.maximum(F0, k))
    i = int(np.argmax(rel))
    worst = round(float(t[i]) * 365.0) if rel[i] > 0 else "-"
    return float(d.max()), float(rel[i]), worst


def bench_model(model: Model, repeat: int) -> tuple[list[tuple], list[str]]:
    k, t, call = surface(model)
    notes: list[str] = []
    engines: list[tuple[str, Callable[[], np.ndarray] | None, int]] = []
    plan = COSPricer().plan(F0, k, t, call, model=model)
    engines += [
        ("volcal COS (price, method='cos')", lambda: volcal.price(model, F0, k, t, call, method="cos"), repeat),
        ("volcal Lewis (price, method='lewis')", lambda: volcal.price(model, F0, k, t, call, method="lewis"), repeat),
        ("volcal auto (price)", lambda: volcal.price(model, F0, k, t, call), repeat),
        ("volcal COS plan reuse (plan.price)", lambda: plan.price(model), repeat),
    ]  # fmt: skip
    for tight, label in ((True, "tight 1e-13"), (False, "default, 144-node Laguerre")):
        run = quantlib_pricer(model, tight)
        name = "AnalyticHestonEngine" if isinstance(model, Heston) else "BatesEngine"
        if run is None:
            notes.append("QuantLib not installed")
            continue
        engines.append(
            (f"QuantLib {name} ({label})", lambda run=run: run(k, t, call), max(3, repeat // 2))
        )
    for cls_name in ("HestonFft", "HestonCos"):
        run, why = pyfeng_pricer(model, cls_name)
        if run is None:
            notes.append(why)
            continue
        engines.append((f"PyFENG {cls_name}", lambda run=run: run(k, t, call), repeat))

    results = {}
    for name, fn, rep in engines:
        results[name] = median_time(fn, rep)
    ql_tight = next((n for n in results if "tight" in n), None)
    if isinstance(model, Heston) and ql_tight is not None:
        ref_name, ref = ql_tight, results[ql_tight][1]
    else:
        ref_name = "volcal Lewis tol=1e-15"
        ref = np.asarray(LewisPricer(tol=1e-15).price(model, F0, k, t, call))
    ql_time = results[ql_tight][0] if ql_tight else float("nan")
    rows = []
    for name, (sec, p) in results.items():
        dmax, rel, worst = accuracy(p, ref, k, t)
        rows.append((name, sec * 1e3, sec * 1e6 / k.size, ql_time / sec, dmax, rel, worst))
    notes.append(f"reference for the error columns: {ref_name}")
    return rows, notes


def throughput(repeat: int) -> list[tuple]:
    days = np.linspace(1.0, 1095.0, 200).round()
    rows = []
    for model in (HESTON, BATES):
        k, t, call = surface(model, days, 500)
        for method in ("cos", "lewis"):

            def run(model: Model = model, method: str = method, k=k, t=t, call=call):
                return volcal.price(model, F0, k, t, call, method=method)

            sec, p = median_time(run, max(3, repeat // 2))
            assert np.all(np.isfinite(p))
            rows.append(
                (type(model).__name__, f"price(method='{method}')", k.size, sec, k.size / sec)
            )
        plan = COSPricer().plan(F0, k, t, call, model=model)
        sec, p = median_time(lambda plan=plan, model=model: plan.price(model), repeat)
        rows.append(
            (type(model).__name__, "COS plan reuse (plan.price)", k.size, sec, k.size / sec)
        )
    return rows


def render(repeat: int) -> str:
    lines = [
        SECTION,
        "",
        "Command (2 shared cores; the figures below are from this run):",
        "",
        "```",
        f".venv/bin/python benchmarks/bench_pricing.py --repeat {repeat} --write",
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}. Surface: 10 expiries (1 day to 3 years) x 25 strikes at "
        "-3..+3 sd, OTM side, F = 100, zero rates; the same arrays go to every engine. "
        "Time per surface = median of repeated runs, BLAS on one thread; 'x QL' = QuantLib "
        "tight time / engine time; rel err = max |d| / (|ref| + 1e-5 max(F, K)) (the "
        "tests' metric).",
        "",
    ]
    for model in (HESTON, BATES):
        rows, notes = bench_model(model, repeat)
        lines += [
            f"### {model.summary()}",
            "",
            "| engine | ms / surface | us / option | x QL (tight) | max abs diff | max rel err "
            "| worst expiry (days) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, ms, us, ratio, dmax, rel, worst in rows:
            lines.append(
                f"| {name} | {ms:.2f} | {us:.1f} | {ratio:.1f} | {dmax:.2e} | {rel:.2e} | {worst} |"
            )
        lines += [""] + [f"- {n}" for n in dict.fromkeys(notes)] + [""]
    lines += [
        "### Vectorized batch (200 expiries x 500 strikes, one call)",
        "",
        "| model | method | options | seconds | options / s |",
        "|---|---|---|---|---|",
    ]
    for name, method, n, sec, rate in throughput(repeat):
        lines.append(f"| {name} | {method} | {n} | {sec:.3f} | {rate:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    text = render(args.repeat)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
