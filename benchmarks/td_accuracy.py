"""Time-dependent Heston/Bates against constant Heston/Bates on real Deribit chains.

Run from the repository root (real data from ../shared/data)::

    python benchmarks/td_accuracy.py [--quick] [--chains N] [--mode bootstrap|joint]

For every chain (``volcal.clean(read_chain(snapshot, currency))``, snapshots in time
order, BTC and ETH) the four models are calibrated with the defaults of
``volcal.calibrate`` (cold start, spread weights); ``heston_td`` / ``bates_td`` are then
recalibrated warm from the previous snapshot's fit of the same currency (the live path:
``start=previous``; the first chain of a currency starts from its own cold fit). Printed:
median and worst RMSE (vol points, every quote used), median share inside bid-ask,
median cold and warm wall time per chain (ms, one run each - the machine is shared, so
read them as an upper bound), whether every parameter is finite and inside its box, and
the RMSE of every model pooled over the quotes of each expiry bucket (T < 7 days, 7-30,
30-90, > 90 days) and of the wings (|k| / (sigma sqrt T) > 1.5) against the centre.
``--mode joint`` calibrates the time-dependent models with ``mode="joint"`` (bootstrap,
then every parameter at once); ``--models bates_td`` runs a subset (e.g. for timing
before/after runs interleaved on a shared machine).

``--warm-only`` measures the warm refits of a sequence of consecutive snapshots (6 hours
apart; ``--first``, ``--consecutive``): a cold fit of the first chain of each currency, then
each next snapshot calibrated from the previous one's warm fit (``start=``, the live
path), timed as the minimum of ``--repeat`` calls. Printed per chain and summarised:
warm ms (median, p90), RMSE and inside share of the warm fits, the fallbacks of the warm
path (``extra["warm"]``; ``--clock cpu``: this process's CPU time, for a shared
machine), and - with ``--cold-cache FILE`` - the warm RMSE against a cold
fit of the same chain (computed once and stored in FILE, so interleaved before/after runs
share them).

``--bound`` (with ``--warm-only``'s sequence, heston_td / bates_td) asks how far the model
can go on each refit's chain: the warm refit solved to convergence with no smoothing
(``warm_evals=80, smooth=0``), and a lower bound on the error of any fit of the model on
the expiries under 7 days - each such expiry's quotes alone fitted by the piecewise model
with every interval up to it free (``v0`` and all their parameters, no smoothing; from
the converged fit and from a constant fit of that expiry copied onto every interval, the
lower weighted error kept). A fit of the whole chain has at least that weighted error on
each of those expiries, so the chain's RMSE with those expiries at their bound and every
other quote fitted exactly is a lower bound for the RMSE of any fit (up to the local
solver finding the per-expiry optimum, and RMSE being unweighted where the bound is on
the spread-weighted error).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import volcal
from volcal.calibration.td import calibrate_td
from volcal.errors import CalibrationWarning, DataWarning

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
SNAPS = DATA / "svcj-deribit-snapshots"
MODELS = ("heston", "bates", "heston_td", "bates_td")
BUCKETS = (0.0, 7 / 365, 30 / 365, 90 / 365, np.inf)
BUCKET_NAMES = ("T<7d", "7-30d", "30-90d", ">90d")


def _rms(x: list[float]) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a**2))) if a.size else float("nan")


def _in_box(params: object) -> bool:
    x = params.to_vector()  # type: ignore[attr-defined]
    lo, hi = params.bounds()  # type: ignore[attr-defined]
    return bool(np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi))


def _rel_change(prev: object, new: object) -> float:
    """Median over the parameters of |new - prev| / |prev| (the refit's step; NaN when
    the two fits have different layouts)."""
    a = prev.to_vector()  # type: ignore[attr-defined]
    b = new.to_vector()  # type: ignore[attr-defined]
    if a.shape != b.shape:
        return float("nan")
    nz = np.abs(a) > 0
    return float(np.median(np.abs(b[nz] - a[nz]) / np.abs(a[nz])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 snapshots x BTC/ETH")
    ap.add_argument("--chains", type=int, default=8, help="snapshots per currency (full run)")
    ap.add_argument("--mode", default="bootstrap", choices=("bootstrap", "joint"))
    ap.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS)
    )
    ap.add_argument("--warm-only", action="store_true", help="warm refits of consecutive snapshots")
    ap.add_argument(
        "--clock",
        default="wall",
        choices=("wall", "cpu"),
        help="--warm-only: wall time or this process's CPU time (a shared machine)",
    )
    ap.add_argument("--first", type=int, default=5, help="--warm-only: index of the first snapshot")
    ap.add_argument(
        "--consecutive", type=int, default=6, help="--warm-only: snapshots per currency"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="--warm-only: timed calls per refit (min)"
    )
    ap.add_argument(
        "--cold-cache", type=Path, default=None, help="--warm-only: cold RMSE JSON file"
    )
    ap.add_argument(
        "--bound",
        action="store_true",
        help="--warm-only's sequence: converged fits without smoothing and the short-expiry bound",
    )
    args = ap.parse_args()
    if args.bound:
        _bound(args)
        return
    if args.warm_only:
        _warm_only(args)
        return
    models = tuple(m for m in args.models.split(",") if m)
    if not models or any(m not in MODELS for m in models):
        raise SystemExit(f"--models: choose from {', '.join(MODELS)}")
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    if not files:
        raise SystemExit(f"no snapshots in {SNAPS}")
    n = 2 if args.quick else args.chains
    picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, n).round()]
    rows: dict[str, dict[str, list[float]]] = {
        m: {
            "rmse": [],
            "inside": [],
            "cold": [],
            "warm": [],
            "box": [],
            "wing": [],
            "centre": [],
            **{b: [] for b in BUCKET_NAMES},
        }
        for m in models
    }
    for cur in ("BTC", "ETH"):
        prev: dict[str, object] = {}
        for f in picks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                chain = volcal.clean(volcal.read_chain(f, currency=cur))
            for m in models:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CalibrationWarning)
                    # volcal.calibrate takes no mode: the joint runs call calibrate_td
                    # (what volcal.calibrate dispatches to) with mode="joint"
                    fn = calibrate_td if (m.endswith("_td") and args.mode == "joint") else None
                    kw = {"mode": args.mode} if fn is not None else {}
                    cal = fn or volcal.calibrate
                    t0 = time.perf_counter()
                    fit = cal(chain, m, **kw)
                    cold = time.perf_counter() - t0
                    warm = float("nan")
                    if m.endswith("_td"):
                        t0 = time.perf_counter()
                        wfit = cal(chain, m, start=prev.get(m, fit), **kw)
                        warm = time.perf_counter() - t0
                        prev[m] = wfit
                r = rows[m]
                r["rmse"].append(fit.rmse_vol)
                r["inside"].append(fit.inside_spread)
                r["cold"].append(1e3 * cold)
                r["warm"].append(1e3 * warm)
                r["box"].append(float(_in_box(fit.params)))
                qs = fit.quotes
                err = 100.0 * (np.asarray(fit.model_iv) - qs.iv_mid)
                bucket = np.digitize(qs.t, BUCKETS) - 1
                for b, name in enumerate(BUCKET_NAMES):
                    r[name].extend(err[bucket == b].tolist())
                wing = np.abs(qs.k) / (qs.iv_mid * np.sqrt(qs.t)) > 1.5
                r["wing"].extend(err[wing].tolist())
                r["centre"].extend(err[~wing].tolist())
                print(
                    f"{f.name[25:40]} {cur} {m:<10} rmse {fit.rmse_vol:6.3f} "
                    f"inside {100 * fit.inside_spread:5.1f}% cold {1e3 * cold:8.0f} ms "
                    f"warm {1e3 * warm:8.0f} ms {fit.status}",
                    flush=True,
                )
    print()
    print(f"{len(picks)} snapshots x BTC/ETH = {2 * len(picks)} chains, td mode {args.mode}")
    print(
        "| model | median RMSE (vol pts) | worst RMSE | median inside | cold ms (median) "
        "| warm ms (median) | params finite, in box |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in models:
        r = rows[m]
        warm = np.nanmedian(r["warm"]) if m.endswith("_td") else float("nan")
        print(
            f"| {m} | {np.median(r['rmse']):.2f} | {np.max(r['rmse']):.2f} | "
            f"{100 * np.median(r['inside']):.0f} % | {np.median(r['cold']):.0f} | "
            + ("-" if np.isnan(warm) else f"{warm:.0f}")
            + f" | {int(sum(r['box']))}/{len(r['box'])} |"
        )

    print()
    print("RMSE (vol pts) pooled over the quotes of each bucket (cold fits)")
    print("| model | " + " | ".join(BUCKET_NAMES) + " | centre | wings |")
    print("|---|" + "---|" * (len(BUCKET_NAMES) + 2))
    for m in models:
        r = rows[m]
        cells = [f"{_rms(r[b]):.2f}" for b in (*BUCKET_NAMES, "centre", "wing")]
        print(f"| {m} | " + " | ".join(cells) + " |")


def _warm_only(args: argparse.Namespace) -> None:
    import json

    models = tuple(m for m in args.models.split(",") if m.endswith("_td")) or ("bates_td",)
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    n = 3 if args.quick else args.consecutive
    picks = files[args.first : args.first + n]
    if len(picks) < 2:
        raise SystemExit("--warm-only needs at least 2 snapshots from --first")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    cache: dict[str, float] = {}
    if args.cold_cache is not None and args.cold_cache.exists():
        cache = json.loads(args.cold_cache.read_text())
    rows: dict[str, dict[str, list[float]]] = {
        m: {k: [] for k in ("ms", "rmse", "inside", "cold", "fallback", "box", "evals", "step")}
        for m in models
    }
    for cur in ("BTC", "ETH"):
        chains = []
        for f in picks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                chains.append((f, volcal.clean(volcal.read_chain(f, currency=cur))))
        for m in models:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                prev = volcal.calibrate(chains[0][1], m)
                for f, chain in chains[1:]:
                    times = []
                    for _ in range(max(args.repeat, 1)):
                        t0 = clock()
                        wfit = volcal.calibrate(chain, m, start=prev)
                        times.append(clock() - t0)
                    key = f"{f.name}:{cur}:{m}"
                    if args.cold_cache is not None and key not in cache:
                        cache[key] = float(volcal.calibrate(chain, m).rmse_vol)
                        args.cold_cache.write_text(json.dumps(cache, indent=1))
                    info = wfit.extra.get("warm") or {}
                    r = rows[m]
                    r["ms"].append(1e3 * min(times))
                    r["rmse"].append(wfit.rmse_vol)
                    r["inside"].append(wfit.inside_spread)
                    r["cold"].append(cache.get(key, float("nan")))
                    r["fallback"].append(float(bool(info.get("fallback", False))))
                    r["box"].append(float(_in_box(wfit.params)))
                    r["step"].append(_rel_change(prev.params, wfit.params))
                    r["evals"].append(float(info.get("evaluations", float("nan"))))
                    print(
                        f"{f.name[25:40]} {cur} {m:<9} warm {1e3 * min(times):7.0f} ms rmse "
                        f"{wfit.rmse_vol:6.3f} (start's {prev.rmse_vol:6.3f}, cold "
                        f"{cache.get(key, float('nan')):6.3f}) inside {100 * wfit.inside_spread:5.1f}% "
                        f"{wfit.status} warm path: {dict(info) if info else '-'}",
                        flush=True,
                    )
                    prev = wfit
    print()
    print(
        f"{len(picks)} consecutive snapshots from {picks[0].name[25:40]} x BTC/ETH: "
        f"{2 * (len(picks) - 1)} warm refits per model, min of {args.repeat} calls, "
        f"{args.clock} time"
    )
    print(
        "| model | warm ms median | warm ms p90 | warm RMSE median | worst | cold RMSE median "
        "| warm - cold median | worst | inside median | fallbacks | params in box "
        "| rel. step median |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in models:
        r = rows[m]
        d = np.asarray(r["rmse"]) - np.asarray(r["cold"])
        print(
            f"| {m} | {np.median(r['ms']):.0f} | {np.percentile(r['ms'], 90):.0f} | "
            f"{np.median(r['rmse']):.2f} | {np.max(r['rmse']):.2f} | {np.nanmedian(r['cold']):.2f} | "
            f"{np.nanmedian(d):+.2f} | {np.nanmax(d):+.2f} | {100 * np.median(r['inside']):.0f} % | "
            f"{int(sum(r['fallback']))}/{len(r['fallback'])} | {int(sum(r['box']))}/{len(r['box'])} | "
            f"{np.nanmedian(r['step']):.3f} |"
        )


def _short_bound(fit: object, q: object, t_max: float) -> np.ndarray:
    """Vol errors (vol points) of the lower bound on the expiries under ``t_max``: each
    expiry's quotes alone fitted with every interval up to it free (module docs); NaN on
    the other expiries."""
    from volcal.calibration import td
    from volcal.calibration.engine import OBJ_PHI_TOL, OBJ_TAIL_TOL
    from volcal.errors import MethodError, ParameterError, VolcalError
    from volcal.models import HestonTD
    from volcal.pricing.cos import COSPricer

    params = fit.params  # type: ignore[attr-defined]
    cls = type(params)
    n = q.n_slices  # type: ignore[attr-defined]
    lo, hi = params.bounds()
    eps = 1e-6 * (hi - lo)
    w = q.weights("spread")  # type: ignore[attr-defined]
    sw = np.sqrt(w)
    e_fit = 100.0 * (np.asarray(fit.model_iv) - q.iv_mid)  # type: ignore[attr-defined]
    pricer = COSPricer(phi_tol=OBJ_PHI_TOL, tail_tol=OBJ_TAIL_TOL)
    const = "heston" if cls is HestonTD else "bates"
    out = np.full(e_fit.size, np.nan)
    for j in range(n):
        if q.t_slices[j] >= t_max:  # type: ignore[attr-defined]
            continue
        mask = q.slice_index == j  # type: ignore[attr-defined]
        free = np.array(
            [0, *(1 + cls._pieces.index(p) * n + i for p in cls._pieces for i in range(j + 1))],
            dtype=np.int64,
        )
        starts = [params.to_vector()]
        try:
            c = volcal.calibrate(q.slice(j), const, global_search=True)  # type: ignore[attr-defined]
            starts.append(cls.constant(c.params, q.t_slices).to_vector())  # type: ignore[attr-defined]
        except (VolcalError, ValueError):
            pass  # too few quotes for a constant fit of the expiry alone
        best_e, best_w = e_fit[mask], float(np.sum(w[mask] * e_fit[mask] ** 2))
        for x0 in starts:
            x0 = np.clip(x0, lo + eps, hi - eps)
            prob = td._Problem(params.with_vector(x0), free, mask, q, sw, lo, hi, [], pricer)
            x, _st, _msg, res = td._solve(prob, "lm", 1e-12, 600)
            if res is None:
                continue
            try:
                miv, _atm = td._model_iv(params.with_vector(x), q)  # type: ignore[arg-type]
            except (MethodError, ParameterError):
                continue
            e = 100.0 * (miv[mask] - q.iv_mid[mask])  # type: ignore[attr-defined]
            we = float(np.sum(w[mask] * e**2))
            if np.all(np.isfinite(e)) and we < best_w:
                best_e, best_w = e, we
        out[mask] = best_e
    return out


def _bound(args: argparse.Namespace) -> None:
    models = tuple(m for m in args.models.split(",") if m.endswith("_td")) or ("heston_td",)
    files = sorted(SNAPS.glob("deribit_options_snapshot_*.csv"))
    picks = files[args.first : args.first + args.consecutive]
    t_max = 7.0 / 365.0
    for m in models:
        conv: list[float] = []
        bound: list[float] = []
        conv_short: list[float] = []
        bound_short: list[float] = []
        buckets: dict[str, list[float]] = {b: [] for b in BUCKET_NAMES}
        for cur in ("BTC", "ETH"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                chains = [volcal.clean(volcal.read_chain(f, currency=cur)) for f in picks]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                prev = volcal.calibrate(chains[0], m)
                for f, chain in zip(picks[1:], chains[1:], strict=True):
                    warm = volcal.calibrate(chain, m, start=prev)
                    c = calibrate_td(chain, m, start=prev, warm_evals=80, smooth=0.0, warm_tol=1e9)
                    q = c.quotes
                    e_c = 100.0 * (np.asarray(c.model_iv) - q.iv_mid)
                    e_b = _short_bound(c, q, t_max)
                    short = q.t < t_max
                    bk = np.digitize(q.t, BUCKETS) - 1
                    for b, name in enumerate(BUCKET_NAMES):
                        buckets[name].extend(e_c[bk == b].tolist())
                    conv.append(c.rmse_vol)
                    bound.append(float(np.sqrt(np.mean(np.where(short, e_b, 0.0) ** 2))))
                    conv_short.append(_rms(e_c[short].tolist()))
                    bound_short.append(_rms(e_b[short].tolist()))
                    per = " ".join(
                        f"{365 * t:.1f}d {_rms(e_c[q.slice_index == i].tolist()):.2f}"
                        + (f"/{_rms(e_b[q.slice_index == i].tolist()):.2f}" if t < t_max else "")
                        for i, t in enumerate(q.t_slices)
                    )
                    print(
                        f"{f.name[25:40]} {cur} {m:<9} warm {warm.rmse_vol:6.3f} converged "
                        f"{c.rmse_vol:6.3f} ({c.extra['warm']['evaluations']} J) bound "
                        f"{bound[-1]:6.3f} | per expiry converged/bound: {per}",
                        flush=True,
                    )
                    prev = warm
        print()
        print(
            f"| {m} | converged RMSE median {np.median(conv):.2f} (min {np.min(conv):.2f}, max "
            f"{np.max(conv):.2f}) | bound median {np.median(bound):.2f} (min {np.min(bound):.2f}, "
            f"max {np.max(bound):.2f}) | T<7d converged median {np.median(conv_short):.2f}, "
            f"bound {np.median(bound_short):.2f} | converged pooled "
            + ", ".join(f"{b} {_rms(buckets[b]):.2f}" for b in BUCKET_NAMES)
            + " |"
        )


if __name__ == "__main__":
    main()
