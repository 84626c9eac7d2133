"""Fourier pricing benchmark: the surface of issue 10, volcal vs QuantLib vs PyFENG.

Same inputs for every engine, in one process: S = F = 60000, zero rates, expiries 2, 7,
14, 30, 60, 90, 120, 180, 270 and 365 days (ACT/365), 25 strikes per expiry at
S exp(x), x from -2.5 to 2.5 standard deviations (sd = 0.6 sqrt(T)); calls for K >= S,
puts below. Models: Heston(v0=0.36, kappa=2.5, theta=0.42, xi=1.6, rho=-0.15), the same
with xi = 0.5, and Bates with the same Heston part plus lam=2, mu_j=-0.1, sigma_j=0.1.

Engines:

* volcal ``price(model, ...)`` (default method: the compiled COS engine, ranges and N
  planned inside every call);
* volcal plan reuse: ``COSPricer().plan(...)`` once, then ``plan.price(model)``;
* QuantLib ``AnalyticHestonEngine(model)`` / ``BatesEngine(model)``: the DEFAULT engines
  (what QuantLib users run; the baseline of every ratio), and the adaptive
  ``(model, 1e-13, 10**6)`` engines: the truth for the error columns. One
  ``VanillaOption`` per quote, process/model/engine/options built inside the timed call
  as a user pricing a new parameter set does;
* PyFENG ``HestonCos`` and ``HestonFft`` (Heston only), one call per expiry.

Times: minimum of ``--repeat`` runs. Max rel err = max |p - truth| / truth over the
surface (every price here is above 1e-6 of the spot).

Deep wings: Lewis (2019) short-maturity Heston reference prices (v0=0.01, kappa=4,
theta=0.25, xi=1, rho=-0.5, T=0.01, S=100, r=0.01, q=0.02; PyFENG's benchmark sheet,
https://financepress.com/2019/02/15/heston-model-reference-prices/), where the K=110
call is worth 1.3e-13 of the spot.

Run:  python benchmarks/bench_pricing.py [--repeat 7] [--quick] [--write]
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
from volcal.pricing import COSPricer  # noqa: E402

SECTION = "## Fourier pricing"
S0 = 60000.0
DAYS = np.array([2, 7, 14, 30, 60, 90, 120, 180, 270, 365])
HESTON = Heston(v0=0.36, kappa=2.5, theta=0.42, xi=1.6, rho=-0.15)
MODELS = {
    "Heston xi=1.6": HESTON,
    "Heston xi=0.5": HESTON.replace(xi=0.5),
    "Bates xi=1.6": Bates(0.36, 2.5, 0.42, 1.6, -0.15, lam=2.0, mu_j=-0.1, sigma_j=0.1),
}
# Lewis (2019) reference prices, T = 0.01 (PyFENG data/heston_benchmark.xlsx, case 9)
LEWIS = Heston(v0=0.01, kappa=4.0, theta=0.25, xi=1.0, rho=-0.5)
SCALE = 3.65  # T = 0.01 years = 3.65 days
LEWIS_K = np.array([90.0, 95.0, 100.0, 100.0, 105.0, 110.0])
LEWIS_CALL = np.array([False, False, False, True, True, True])
LEWIS_REF = np.array(
    [
        4.5183603586861701e-8,
        4.6195485565385098e-4,
        0.47778117162950401,
        0.46778267151284397,
        2.5274478231946999e-6,
        1.2993276005262401e-13,
    ]
)


def surface() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = DAYS / 365.0
    x = np.linspace(-2.5, 2.5, 25)
    k = (S0 * np.exp(x[None, :] * 0.6 * np.sqrt(t)[:, None])).ravel()
    tt = np.repeat(t, x.size)
    return k, tt, k >= S0


def min_time(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up and the result
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best), np.asarray(out, dtype=float)


def quantlib_pricer(
    model: Model, tight: bool, s0: float = S0, r: float = 0.0, q: float = 0.0
) -> Callable[..., np.ndarray]:
    import QuantLib as ql

    def run(k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
        today = ql.Date(2, 1, 2026)
        ql.Settings.instance().evaluationDate = today
        dc = ql.Actual365Fixed()
        rc = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))
        qc = ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc))
        spot = ql.QuoteHandle(ql.SimpleQuote(s0))
        hp = [float(getattr(model, n)) for n in ("v0", "kappa", "theta", "xi", "rho")]
        if isinstance(model, Bates):
            proc = ql.BatesProcess(rc, qc, spot, *hp, model.lam, model.mu_j, model.sigma_j)
            qm = ql.BatesModel(proc)
            engine = ql.BatesEngine(qm, 1e-13, 1_000_000) if tight else ql.BatesEngine(qm)
        else:
            qm = ql.HestonModel(ql.HestonProcess(rc, qc, spot, *hp))
            engine = (
                ql.AnalyticHestonEngine(qm, 1e-13, 1_000_000)
                if tight
                else ql.AnalyticHestonEngine(qm)
            )
        out = np.empty(k.size)
        for i in range(k.size):
            kind = ql.Option.Call if call[i] else ql.Option.Put
            exercise = ql.EuropeanExercise(today + round(float(t[i]) * 365.0))
            opt = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(k[i])), exercise)
            opt.setPricingEngine(engine)
            out[i] = opt.NPV()
        return out

    return run


def pyfeng_pricer(model: Model, cls_name: str) -> Callable[..., np.ndarray]:
    import pyfeng as pf

    cls = getattr(pf, cls_name)
    m = cls(model.v0, vov=model.xi, rho=model.rho, mr=model.kappa, theta=model.theta)

    def run(k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
        out = np.empty(k.size)
        for tu in np.unique(t):
            sel = t == tu
            out[sel] = m.price(k[sel], S0, float(tu), cp=np.where(call[sel], 1, -1))
        return out

    return run


def bench_model(model: Model, repeat: int) -> list[tuple[str, float, float]]:
    k, t, call = surface()
    truth_fn = quantlib_pricer(model, tight=True)
    t_truth, truth = min_time(lambda: truth_fn(k, t, call), max(1, repeat // 3))
    plan = COSPricer().plan(S0, k, t, call, model=model)
    engines: list[tuple[str, Callable[[], np.ndarray]]] = [
        (
            "volcal price (compiled COS, planned per call)",
            lambda: volcal.price(model, S0, k, t, call),
        ),
        ("volcal COS plan reuse (plan.price)", lambda: plan.price(model)),
        (
            "QuantLib default engine (model)",
            lambda: quantlib_pricer(model, tight=False)(k, t, call),
        ),
    ]
    if isinstance(model, Heston):
        for name in ("HestonCos", "HestonFft"):
            fn = pyfeng_pricer(model, name)
            engines.append((f"PyFENG {name}", lambda fn=fn: fn(k, t, call)))
    rows = []
    for name, fn in engines:
        sec, p = min_time(fn, repeat)
        rows.append((name, 1e3 * sec, float(np.max(np.abs(p - truth) / truth))))
    rows.append(("QuantLib adaptive 1e-13 (truth)", 1e3 * t_truth, 0.0))
    return rows


def deep_wing_rows() -> list[tuple[str, list[float]]]:
    r, q, t = 0.01, 0.02, 0.01
    fwd, df = 100.0 * np.exp((r - q) * t), np.exp(-r * t)
    out = []
    for label, fn in (
        ("volcal price", lambda: volcal.price(LEWIS, fwd, LEWIS_K, t, LEWIS_CALL, df)),
        (
            "volcal Lewis, real axis (method='lewis')",
            lambda: volcal.price(LEWIS, fwd, LEWIS_K, t, LEWIS_CALL, df, method="lewis"),
        ),
        (
            # QuantLib takes whole days: the same law on a time scale s = 3.65 (T = 1 day,
            # v0, kappa, theta, xi, r, q all times s) - Heston is invariant under it
            "QuantLib adaptive 1e-13 (time-scaled to 1 day)",
            lambda: quantlib_pricer(
                Heston(0.01 * SCALE, 4.0 * SCALE, 0.25 * SCALE, 1.0 * SCALE, -0.5),
                True,
                100.0,
                r * SCALE,
                q * SCALE,
            )(LEWIS_K, np.full(6, 1.0 / 365.0), LEWIS_CALL),
        ),
        (
            "PyFENG HestonCos",
            lambda: np.array(
                [
                    float(
                        __import__("pyfeng")
                        .HestonCos(0.01, vov=1.0, rho=-0.5, mr=4.0, theta=0.25, intr=r, divr=q)
                        .price(kk, 100.0, t, cp=1 if c else -1)
                    )
                    for kk, c in zip(LEWIS_K, LEWIS_CALL, strict=True)
                ]
            ),
        ),
    ):
        try:
            p = np.asarray(fn(), dtype=float)
            out.append((label, list(np.abs(p / LEWIS_REF - 1.0))))
        except Exception as exc:  # a table cell, not a failure
            out.append((f"{label} ({type(exc).__name__})", [float("nan")] * 6))
    return out


def fixed_cost(repeat: int) -> float:
    """One option, one expiry: what a call costs beyond its per-node work (ms)."""
    sec, _ = min_time(lambda: volcal.price(HESTON, S0, S0, 0.25, True), repeat * 10)
    return 1e3 * sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats, Heston xi=1.6 only")
    ap.add_argument("--write", action="store_true", help="replace the BENCHMARKS.md section")
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    models = dict(list(MODELS.items())[:1]) if args.quick else MODELS
    lines = [
        SECTION,
        "",
        "Command (2 shared cores; load noted below; the figures are from this run):",
        "",
        "```",
        f"python benchmarks/bench_pricing.py --repeat {repeat} --write",
        "```",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy "
        f"{np.__version__}, load average {os.getloadavg()[0]:.1f} at start. Surface of "
        "issue 10: S = 60000, expiries 2-365 days, 25 strikes at -2.5..+2.5 sd "
        "(sd = 0.6 sqrt(T)), calls K >= S, puts below, zero rates; one process, same "
        "arrays to every engine, minimum of repeated runs. **Baseline of every ratio: "
        "QuantLib's default engine** (`AnalyticHestonEngine(model)`, "
        "`BatesEngine(model)`); errors against QuantLib's adaptive 1e-13 engine.",
        "",
    ]
    for title, model in models.items():
        rows = bench_model(model, repeat)
        base = next(ms for name, ms, _ in rows if name.startswith("QuantLib default"))
        lines += [
            f"### {title}: {model.summary()}",
            "",
            "| engine | ms / surface (250 options) | x QuantLib default | max rel err vs truth |",
            "|---|---|---|---|",
        ]
        for name, ms, err in rows:
            lines.append(f"| {name} | {ms:.3f} | {base / ms:.1f} | {err:.1e} |")
        lines.append("")
        for ln in lines[-len(rows) - 4 :]:
            print(ln)
    fc = fixed_cost(repeat)
    lines += [
        f"Fixed cost of one call (one option, `volcal.price(heston, S, S, 0.25, True)`): "
        f"{fc:.3f} ms.",
        "",
        "### Deep wings: Lewis (2019) short maturity, T = 0.01",
        "",
        "Relative error against the published prices (K=110 call = 1.2993e-13; "
        "v0=0.01, kappa=4, theta=0.25, xi=1, rho=-0.5, S=100, r=0.01, q=0.02):",
        "",
        "| engine | P90 | P95 | P100 | C100 | C105 | C110 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, errs in deep_wing_rows():
        lines.append(f"| {label} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")
    lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
