"""Monte Carlo benchmark: speed, accuracy and variance reduction of volcal.pricing.mc.

Model: crypto-like Heston (v0=0.5, kappa=3, theta=0.4, xi=3, rho=-0.1; Feller violated,
2 kappa theta = 2.4 < xi^2 = 9) and the Bates / SVCJ variants used in the tests.
Surface: 10 expiries (1 week to 2 years) x 25 strikes at -2.5..+2.5 standard deviations
(80 % vol), out-of-the-money side, F = 100. Reference prices: ``volcal.price(...,
method="cos")`` when available, else Lewis' integral of the model's characteristic
function. Implied-vol errors use ``volcal.implied_vol`` on both.

Sections:
1. throughput of the variance schemes (path-steps per second, one core);
2. a 250-option surface priced from one simulation (time, max |error| / stderr, vol-point
   error) for 25k..400k paths;
3. variance reduction: per-path variance of plain MC divided by that of antithetic and of
   antithetic + control variate, for OTM / ATM / ITM options;
4. anchor: QuantLib 1.44 ``MCEuropeanHestonEngine`` (QE with martingale correction,
   antithetic) on the same model, one option and the whole surface.

Run:  .venv/bin/python benchmarks/bench_mc.py [--write]
``--write`` replaces the "## Monte Carlo" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
from _markdown import write_section

import volcal
from volcal.models import SVCJ, Bates, Black, Heston
from volcal.pricing.mc import mc_price, simulate_log_forward

SECTION = "## Monte Carlo"
F0 = 100.0
HESTON = Heston(v0=0.5, kappa=3.0, theta=0.4, xi=3.0, rho=-0.1)
BATES = Bates(v0=0.4, kappa=2.0, theta=0.36, xi=2.0, rho=-0.2, lam=2.0, mu_j=-0.05, sigma_j=0.2)
SVCJ_M = SVCJ(
    v0=0.4, kappa=3.0, theta=0.36, xi=1.5, rho=-0.2, lam=2.0, mu_s=-0.05, sigma_s=0.15,
    mu_v=0.2, rho_j=-0.5,
)  # fmt: skip


def surface() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    expiries = np.array([7, 14, 30, 60, 90, 180, 270, 365, 540, 730]) / 365.0
    z = np.linspace(-2.5, 2.5, 25)
    t = np.repeat(expiries, z.size)
    k = F0 * np.exp(np.tile(z, expiries.size) * 0.8 * np.sqrt(t))
    return k, t, k >= F0


def reference(model: object, k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
    if hasattr(volcal, "price"):
        return np.asarray(volcal.price(model, F0, k, t, call, method="cos"), dtype=float)
    from scipy.integrate import quad

    out = []
    for kk, tt, cc in zip(k, t, call, strict=True):
        lk = math.log(kk / F0)
        f = lambda u, tt=tt, lk=lk: float(  # noqa: E731
            (np.exp(-1j * u * lk) * model.char_func(np.array(u - 0.5j), tt)).real / (u * u + 0.25)  # type: ignore[attr-defined]
        )
        c = F0 - math.sqrt(F0 * kk) / math.pi * quad(f, 0, np.inf, limit=1000)[0]
        out.append(c if cc else c - (F0 - kk))
    return np.array(out)


def iv(p: np.ndarray, k: np.ndarray, t: np.ndarray, call: np.ndarray) -> np.ndarray:
    return np.asarray(volcal.implied_vol(p, F0, k, t, call), dtype=float)


def throughput() -> list[str]:
    rows = ["| scheme | paths x steps | time | path-steps/s |", "|---|---|---|---|"]
    n, t = 100_000, [1.0]
    simulate_log_forward(HESTON, t, 2_000)  # compile the kernel (cached on disk)
    for label, scheme in (
        ("QE, compiled kernel", "qe"),
        ("QE, NumPy reference", "qe_numpy"),
        ("full-truncation Euler", "euler"),
    ):
        best = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            simulate_log_forward(HESTON, t, n, seed=1, steps_per_year=100, scheme=scheme)
            best = min(best, time.perf_counter() - t0)
        rows.append(f"| {label} | {n:,} x 100 | {best:.2f} s | {n * 100 / best / 1e6:.0f} M |")
    return rows


def accuracy() -> list[str]:
    k, t, call = surface()
    rows = [
        "| model | paths | time (250 options) | max abs(err)/stderr | share within 3 se | "
        "median / max vol error (vol pts) |",
        "|---|---|---|---|---|---|",
    ]
    for name, model in (("Heston", HESTON), ("Bates", BATES), ("SVCJ", SVCJ_M)):
        ref = reference(model, k, t, call)
        ref_iv = iv(ref, k, t, call)
        for n in (25_000, 100_000, 400_000):
            t0 = time.perf_counter()
            res = mc_price(model, F0, k, t, call, n_paths=n, seed=2)
            el = time.perf_counter() - t0
            err = np.abs(res.price - ref)
            ok = res.stderr > 0
            z = err[ok] / res.stderr[ok]
            mc_iv = iv(np.maximum(res.price, 1e-12), k, t, call)
            dv = np.abs(mc_iv - ref_iv)[ok & np.isfinite(mc_iv)] * 100
            rows.append(
                f"| {name} | {n:,} | {el:.2f} s | {z.max():.2f} | {np.mean(z < 3) * 100:.0f} % | "
                f"{np.median(dv):.3f} / {dv.max():.2f} |"
            )
    return rows


def variance_reduction() -> list[str]:
    rows = [
        "| model | option | antithetic | antithetic + control variate |",
        "|---|---|---|---|",
    ]
    n = 200_000
    cases = {
        "ITM call K=70": (70.0, True),
        "ATM call": (100.0, True),
        "OTM call K=140": (140.0, True),
        "OTM put K=70": (70.0, False),
    }
    k = np.array([c[0] for c in cases.values()])
    call = np.array([c[1] for c in cases.values()])
    for name, model in (("Black 80 %", Black(sigma=0.8)), ("Heston", HESTON)):
        common = dict(n_paths=n, seed=4)
        plain = mc_price(model, F0, k, 0.5, call, antithetic=False, control_variate=False, **common)
        anti = mc_price(model, F0, k, 0.5, call, control_variate=False, **common)
        both = mc_price(model, F0, k, 0.5, call, **common)
        for i, label in enumerate(cases):
            r1 = (plain.stderr[i] / anti.stderr[i]) ** 2
            r2 = (plain.stderr[i] / both.stderr[i]) ** 2
            rows.append(f"| {name}, T=0.5 | {label} | {r1:.1f}x | {r2:.1f}x |")
    return rows


def quantlib_anchor() -> list[str]:
    try:
        import QuantLib as ql
    except ImportError:
        return ["QuantLib not installed: anchor skipped."]
    k, t, call = surface()
    today = ql.Date(1, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    h = HESTON
    proc = ql.HestonProcess(
        flat, flat, ql.QuoteHandle(ql.SimpleQuote(F0)), h.v0, h.kappa, h.theta, h.xi, h.rho,
        ql.HestonProcess.QuadraticExponentialMartingale,
    )  # fmt: skip
    n = 100_000

    def ql_price(kk: float, tt: float, cc: bool) -> tuple[float, float]:
        days = round(tt * 365)
        eng = ql.MCEuropeanHestonEngine(
            proc, "pseudorandom", timeStepsPerYear=100, antitheticVariate=True,
            requiredSamples=n // 2, seed=42,
        )  # fmt: skip
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if cc else ql.Option.Put, kk),
            ql.EuropeanExercise(today + days),
        )
        opt.setPricingEngine(eng)
        return opt.NPV(), opt.errorEstimate()

    t0 = time.perf_counter()
    p_ql, se_ql = ql_price(100.0, 1.0, True)
    one_ql = time.perf_counter() - t0
    t0 = time.perf_counter()
    res1 = mc_price(HESTON, F0, 100.0, 1.0, True, n_paths=n, seed=42)
    one_vc = time.perf_counter() - t0
    # the surface: QuantLib simulates again for every option; time a 1-in-10 sample
    idx = np.arange(0, k.size, 10)
    t0 = time.perf_counter()
    for i in idx:
        ql_price(float(k[i]), float(t[i]), bool(call[i]))
    surf_ql = (time.perf_counter() - t0) * k.size / idx.size
    t0 = time.perf_counter()
    mc_price(HESTON, F0, k, t, call, n_paths=n, seed=42)
    surf_vc = time.perf_counter() - t0
    ref = reference(HESTON, np.array([100.0]), np.array([1.0]), np.array([True]))[0]
    return [
        f"| task ({n:,} paths, 100 steps/yr, QE + antithetic) | QuantLib 1.44 | volcal |",
        "|---|---|---|",
        f"| ATM 1y call (exact {ref:.4f}) | {p_ql:.4f} +/- {se_ql:.4f} in {one_ql:.2f} s | "
        f"{float(res1.price):.4f} +/- {float(res1.stderr):.4f} in {one_vc:.2f} s |",
        f"| 250-option surface, 10 expiries | {surf_ql:.0f} s (one simulation per option; "
        f"extrapolated from {idx.size} options) | {surf_vc:.2f} s (one simulation) |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    parts = [
        SECTION,
        "",
        f"`benchmarks/bench_mc.py` on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared, one thread; crypto Heston v0=0.5, kappa=3, "
        "theta=0.4, xi=3, rho=-0.1 (Feller violated). Wall times are from a shared "
        "machine and vary by about 2x with its load.",
        "",
        "Variance schemes (one maturity, 100 steps):",
        "",
        *throughput(),
        "",
        "250-option surface (10 expiries 1 week - 2 years, 25 strikes -2.5..+2.5 sd, OTM side) "
        "from one simulation, default 100 steps/yr and at least 4 steps per expiry interval, "
        "antithetic + control variate; errors against COS / Lewis:",
        "",
        *accuracy(),
        "",
        "Variance reduction (per-path variance of plain MC / of the estimator, same paths "
        "budget; 200k paths):",
        "",
        *variance_reduction(),
        "",
        "Anchor:",
        "",
        *quantlib_anchor(),
        "",
    ]
    table = "\n".join(parts)
    print(table)
    if args.write:
        write_section(SECTION, table)


if __name__ == "__main__":
    main()
