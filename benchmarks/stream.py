"""Streaming engine benchmark: a day of real Deribit snapshots replayed at >= 2,000 quote
updates per second through ``volcal.stream.StreamEngine``.

Input: the real BTC snapshots of one day (default 2026-01-23 03:59 UTC to 2026-01-24
03:53 UTC, five files of ../shared/data/raw/svcj-deribit-snapshots). Their values are
replayed exactly at their own (compressed) times; BETWEEN two snapshots the stream is
made of INTERPOLATED, NOISY ticks (a random instrument, bid/ask/underlying linearly
interpolated in time, the mid moved by Gaussian noise of a quarter half-spread) -
synthetic data, reported as such (``synthetic share`` in the table). The day is
compressed so that it lasts ``--day`` wall seconds (the gaps between snapshots shrink
in proportion) and the interpolated ticks arrive at ``--rate`` per second.

Measured (wall time, engine in one asyncio loop, this process):

* tick -> SVI slice: from the arrival of the newest tick in a refit to its publication
  (p50/p99), and from the OLDEST tick waiting for it (includes the 100 ms debounce);
* tick -> eSSVI surface (p99) and the eSSVI refresh's own compute time;
* tick -> arbitrage-free SVI surface (``svi_surface``, the default published surface,
  refreshed on its own worker process) p50/p99, its round trip, the fit on the worker
  itself and the loop's own share (inputs, taking in and publishing the result);
  ``-`` when the engine under test has no svi_surface model (an older baseline);
* warm Heston refit (every 5 s, warm-started, regularised toward the last fit);
* message accounting: received = applied + dropped by reason;
* memory: RSS sampled every second, growth between the first and the last quarter;
* parameter stability: median relative change of the SVI parameters and median change
  of the ATM vol per published slice update.

Run ``python benchmarks/stream.py --quick`` (a 20-second day) or with ``--day 600``
for a 10-minute soak; ``--write`` puts the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_FILES = (
    "deribit_options_snapshot_20260123T035907Z.csv",
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
    "deribit_options_snapshot_20260123T212130Z.csv",
    "deribit_options_snapshot_20260124T035341Z.csv",
)


READING = """
Reading these figures: the streamed latencies include waiting for the CPU when the
machine is shared (the CPU share this process got is in the first line); the compute
costs per step (min of repeats, same run) are what a quiet core spends. Message
accounting, memory and parameter stability do not depend on the load.
"""


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _has_svs() -> bool:
    """The engine under test has the svi_surface model (a baseline may not)."""
    from volcal.stream.engine import SURFACE_MODELS

    return "svi_surface" in SURFACE_MODELS


def _models() -> tuple[str, ...]:
    return ("svi", "svi_surface", "essvi", "heston") if _has_svs() else ("svi", "essvi", "heston")


def _data_dir() -> Path:
    env = os.environ.get("VOLCAL_DATA_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "raw" / "svcj-deribit-snapshots"


async def _warmup(files: list[Path]) -> None:
    """Compile the kernels (numba) once on one snapshot, outside the measurement."""
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine

    eng = StreamEngine(
        ReplaySource(files[:1], currency="BTC", speed=0),
        StreamConfig(models=_models()),
    )
    await eng.run()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine
    from volcal.stream.sources import _read_snapshot

    folder = Path(args.data) if args.data else _data_dir()
    files = [folder / f for f in DEFAULT_FILES]
    missing = [f for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"missing snapshot {missing[0]}")
    await _warmup(files)
    times = [_read_snapshot(f, "BTC")[0] for f in files]
    span = times[-1] - times[0]
    scale = args.day / span
    gaps = len(files) - 1
    ticks = int(args.rate * args.day / gaps)
    src = ReplaySource(
        files, currency="BTC", speed=1.0, ticks_between=ticks, time_scale=scale, seed=args.seed
    )
    cfg = StreamConfig(
        models=_models(),
        debounce_s=args.debounce,
        debounce_burst=args.debounce_burst,
        model_interval_s=args.model_interval,
        model_executor=args.model_executor,
        surface_executor=args.surface_executor,
        surface_interval_s=args.surface_interval,
        **({"gc_freeze": True} if getattr(args, "gc_freeze", False) else {}),
    )
    eng = StreamEngine(src, cfg)
    rss: list[tuple[float, float]] = []
    changes: dict[str, list[float]] = {"param": [], "atm": [], "atm_arb": []}
    last: dict[str, dict[str, Any]] = {}
    last_arb: dict[str, float] = {}

    async def watch() -> None:
        async for p in eng.subscribe("BTC"):
            if p.get("type") != "patch" or p.get("status") != "ok" or not p.get("params"):
                continue
            if p.get("fit") == "surface" and p.get("source") == "svi_surface":
                # a refresh of the arbitrage-free surface: its ATM vol's move per expiry
                prev_atm = last_arb.get(p["expiry"])
                if prev_atm is not None and p.get("atm_vol") is not None:
                    changes["atm_arb"].append(abs(p["atm_vol"] - prev_atm))
                if p.get("atm_vol") is not None:
                    last_arb[p["expiry"]] = p["atm_vol"]
                continue
            if p.get("source") == "svi_surface":
                continue
            # a slice refit: its free slice (as before the arbitrage-free surface)
            p = {**p, **p["free"]} if isinstance(p.get("free"), dict) else p
            key = p["expiry"]
            prev = last.get(key)
            if prev is not None:
                a, b = prev["params"], p["params"]
                rel = [
                    abs(b[k] - a[k]) / max(abs(a[k]), 1e-3)
                    for k in ("a", "b", "rho", "m", "sigma")
                    if a.get(k) is not None and b.get(k) is not None
                ]
                if rel:
                    changes["param"].append(float(np.median(rel)))
                if prev.get("atm_vol") is not None and p.get("atm_vol") is not None:
                    changes["atm"].append(abs(p["atm_vol"] - prev["atm_vol"]))
            last[key] = p

    async def sample() -> None:
        while True:
            rss.append((time.monotonic(), _rss_mb()))
            await asyncio.sleep(1.0)

    t0 = time.monotonic()
    cpu0 = time.process_time()
    w = asyncio.create_task(watch())
    s = asyncio.create_task(sample())
    await eng.run()
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    s.cancel()
    w.cancel()
    m = eng.metrics()
    st = eng.state("BTC")
    mem = np.array([r for _, r in rss])
    q = max(len(mem) // 4, 1)
    growth = (
        float(np.median(mem[-q:]) / np.median(mem[:q]) - 1.0) if mem.size >= 4 else float("nan")
    )
    return {
        "metrics": m,
        "lat": eng.lat,
        "state": st,
        "wall": wall,
        "ticks_planned": ticks * gaps,
        "rss": mem,
        "growth": growth,
        "changes": changes,
        "scale": scale,
        "cpu": cpu,
    }


def _micro(files: list[Path], repeats: int) -> list[tuple[str, float, float]]:
    """Compute cost of each step on one real snapshot, min and median of ``repeats``
    (no scheduling: what a quiet core would spend)."""
    import warnings

    from volcal.calibration import calibrate
    from volcal.calibration.smile_stats import smile_stats, svi_pillars
    from volcal.errors import CalibrationWarning
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine
    from volcal.stream.fit import merge_quotes, slice_quotes, warm_svi

    eng = StreamEngine(
        ReplaySource(files[1:2], currency="BTC", speed=0), StreamConfig(models=("svi", "essvi"))
    )
    asyncio.run(eng.run())
    u = eng._u["BTC"]
    now = eng.clock.now()
    cfg = eng.config
    ok = [(e, s) for e, s in sorted(u.slices.items()) if s.inp and s.inp.quotes is not None]
    e_mid, s_mid = ok[len(ok) // 2]
    eb = u.book.expiries[e_mid]
    q = s_mid.inp.quotes  # type: ignore[union-attr]

    def clean() -> Any:
        return slice_quotes(
            eb,
            now,
            policy=cfg.policy,
            stale_quote_s=900.0,
            smile=s_mid.svi,
            off_smile_spreads=4.0,
            off_smile_min_vol=0.03,
            off_smile_persist_s=5.0,
            off_since={},
        )

    sets = [s.inp.quotes for _, s in ok if s.inp and s.inp.t >= 2 / 365 and len(s.inp.quotes) >= 5]
    qa = merge_quotes(sets)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        cold = calibrate(qa, "heston", max_time=30.0)
    steps: list[tuple[str, Any]] = [
        (f"re-clean one expiry ({eb.n} quotes)", clean),
        (f"warm SVI slice ({len(q)} quotes)", lambda: warm_svi(q, s_mid.svi)),
        ("cold SVI slice (every 25th fit)", lambda: warm_svi(q, s_mid.svi, cold=True)),
        (
            "ATM / RR25 / BF25 of the slice (engine: closed-form SVI)",
            lambda: svi_pillars(s_mid.svi, float(q.t_slices[0])),  # type: ignore[arg-type]
        ),
        (
            "ATM / RR25 / BF25 by smile_stats (scan + bisection, reference)",
            lambda: smile_stats(s_mid.svi, float(q.t_slices[0])),
        ),
        ("eSSVI refresh, one slice changed", lambda: eng._fit_essvi(u, now, 0.0, {e_mid})),
        (
            f"eSSVI refresh, all {len(ok)} slices",
            lambda: eng._fit_essvi(u, now, 0.0, {e for e, _ in ok}),
        ),
        (
            f"warm Heston refit ({len(qa)} quotes, {qa.n_slices} expiries >= 2 days)",
            lambda: calibrate(qa, "heston", prior=cold, strength=0.1, max_time=5.0),
        ),
    ]
    if _has_svs():
        q_all = merge_quotes([s.inp.quotes for _, s in ok if s.inp and len(s.inp.quotes) >= 5])  # type: ignore[arg-type, misc]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            prev = calibrate(q_all, "svi_surface")
        steps.append(
            (
                f"svi_surface refresh, all {q_all.n_slices} slices ({len(q_all)} quotes, "
                "warm from the previous surface; runs on its worker)",
                lambda: calibrate(q_all, "svi_surface", start=prev),
            )
        )
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        for name, f in steps:
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                f()
                ts.append(1e3 * (time.perf_counter() - t0))
            out.append((name, min(ts), float(np.median(ts))))
    return out


def _fmt(x: Any, d: int = 2) -> str:
    return "-" if x is None else f"{x:.{d}f}"


def _steady(stats: Any) -> str:
    """p50 / p99 of a latency without its first value (the svi_surface refresh that
    waited for its worker's start-up)."""
    if stats is None:
        return "- / -"
    v = stats.values()[1:]
    if not v.size:
        return "- / -"
    p50, p99 = np.percentile(v, [50, 99])
    return f"{p50:.2f} / {p99:.2f} (n {v.size})"


def _pp(lat: dict[str, Any], key: str) -> str:
    """p50 / p99 of one latency (``-`` when the engine has no such measure)."""
    v = lat.get(key) or {}
    return f"{_fmt(v.get('p50_ms'))} / {_fmt(v.get('p99_ms'))}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 20-second day")
    ap.add_argument("--day", type=float, default=120.0, help="wall seconds the day lasts")
    ap.add_argument("--rate", type=float, default=2000.0, help="interpolated ticks per second")
    ap.add_argument("--debounce", type=float, default=0.1)
    ap.add_argument(
        "--debounce-burst", type=int, default=3, help="refits allowed closer than --debounce"
    )
    ap.add_argument("--model-interval", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-executor", choices=("thread", "process"), default="process")
    ap.add_argument(
        "--surface-executor",
        choices=("inline", "steps", "process"),
        default="inline",
        help="eSSVI refresh in the engine's loop, in the loop in steps, or on a worker process",
    )
    ap.add_argument("--surface-interval", type=float, default=0.25, help="eSSVI at most every (s)")
    ap.add_argument("--data", default=None, help="snapshot folder (default ../shared/data)")
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="StreamConfig(gc_freeze=True), as the stream command and serve's engine process run",
    )
    ap.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.day = 20.0
    res = asyncio.run(_run(args))
    folder = Path(args.data) if args.data else _data_dir()
    micro = _micro([folder / f for f in DEFAULT_FILES], 5 if args.quick else 15)
    m, st, eng_lat = res["metrics"], res["state"], res["lat"]
    lat = m["latency_ms"]
    msg = m["messages"]
    sq = m["surface_queue"]["BTC"]
    applied_ticks = msg["applied"].get("ticker", 0)
    rate = applied_ticks / res["wall"]
    dropped = sum(msg["dropped"].values())
    cmd = "python benchmarks/stream.py" + (" --quick" if args.quick else f" --day {args.day:g}")
    if args.model_executor != "process":
        cmd += f" --model-executor {args.model_executor}"
    if args.surface_executor != "inline":
        cmd += f" --surface-executor {args.surface_executor}"
    if args.debounce_burst != 3:
        cmd += f" --debounce-burst {args.debounce_burst}"
    if args.surface_interval != 0.25:
        cmd += f" --surface-interval {args.surface_interval:g}"
    if args.gc_freeze:
        cmd += " --gc-freeze"
    load = os.getloadavg()
    rows = [
        ("quote updates applied / s (wall)", f"{rate:,.0f}", ">= 2,000"),
        (
            "tick -> SVI slice p50 / p99 (newest tick, ms)",
            f"{_fmt(lat['tick_to_slice']['p50_ms'])} / {_fmt(lat['tick_to_slice']['p99_ms'])}",
            "p99 <= 20",
        ),
        (
            "tick -> SVI slice p50 / p99 (oldest waiting tick, incl. debounce, ms)",
            f"{_fmt(lat['oldest_tick_to_slice']['p50_ms'])} / {_fmt(lat['oldest_tick_to_slice']['p99_ms'])}",
            "-",
        ),
        (
            "SVI slice compute p50 / p99 (clean + warm fit + stats, ms)",
            f"{_fmt(lat['slice_compute']['p50_ms'])} / {_fmt(lat['slice_compute']['p99_ms'])}",
            "-",
        ),
        (
            "tick -> eSSVI surface p50 / p99 (ms)",
            f"{_fmt(lat['tick_to_surface']['p50_ms'])} / {_fmt(lat['tick_to_surface']['p99_ms'])}",
            "p99 <= 50",
        ),
        (
            "eSSVI refresh compute p50 / p99 (ms)",
            f"{_fmt(lat['essvi_compute']['p50_ms'])} / {_fmt(lat['essvi_compute']['p99_ms'])}",
            "-",
        ),
        (
            "tick -> svi_surface (arbitrage-free, published) p50 / p99 (ms)",
            _pp(lat, "tick_to_svi_surface")
            + f" (n {(lat.get('tick_to_svi_surface') or {}).get('count', 0)})",
            "-",
        ),
        (
            "tick -> svi_surface without the first refresh p50 / p99 (ms)",
            _steady(eng_lat.get("tick_to_svi_surface")),
            "-",
        ),
        (
            "svi_surface worker start-up: spawn, imports, kernels (s)",
            _fmt((m.get("svi_surface_worker") or {}).get("warm_s")),
            "-",
        ),
        (
            "svi_surface refresh round trip p50 / p99 (ms)",
            _pp(lat, "svi_surface_compute"),
            "-",
        ),
        (
            "svi_surface fit on its worker itself p50 / p99 (ms)",
            _pp(lat, "svi_surface_on_worker"),
            "-",
        ),
        (
            "svi_surface fit on its worker, CPU p50 / p99 (ms)",
            _pp(lat, "svi_surface_on_worker_cpu"),
            "-",
        ),
        (
            "svi_surface: the loop's share per refresh p50 / p99 (ms)",
            _pp(lat, "svi_surface_loop"),
            "<= eSSVI refresh",
        ),
        (
            "warm Heston refit p50 / p99 (ms, n)",
            f"{_fmt(lat['model_compute_warm']['p50_ms'])} / {_fmt(lat['model_compute_warm']['p99_ms'])} "
            f"(n {lat['model_compute_warm']['count']})",
            "p99 <= 30",
        ),
        (
            "warm Heston refit on the worker itself p50 / p99 (ms)",
            f"{_fmt(lat['model_on_worker_warm']['p50_ms'])} / {_fmt(lat['model_on_worker_warm']['p99_ms'])}",
            "-",
        ),
        (
            "slice updates to the surface = superseded + taken + pending",
            " = ".join(
                [
                    f"{sq['slice_updates']:,}",
                    f"{sq['superseded']:,} + {sq['taken']:,} + {sq['pending']:,}",
                ]
            ),
            "exact",
        ),
        (
            "messages received = applied + dropped",
            f"{msg['received']:,} = {msg['applied_total']:,} + {dropped:,}"
            f" ({'ok' if msg['received'] == msg['applied_total'] + dropped else 'MISMATCH'})",
            "exact",
        ),
        (
            "dropped by reason",
            ", ".join(f"{k} {v}" for k, v in sorted(msg["dropped"].items())) or "none",
            "-",
        ),
        (
            "fits by model and status",
            "; ".join(
                f"{mod}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                for mod, c in sorted(m["calibrations"].items())
            ),
            "-",
        ),
        (
            "RSS first / last quarter (MB), growth",
            f"{np.median(res['rss'][: max(len(res['rss']) // 4, 1)]):.0f} / "
            f"{np.median(res['rss'][-max(len(res['rss']) // 4, 1) :]):.0f}, {100 * res['growth']:+.1f}%",
            "<= 10%",
        ),
        (
            "median rel. change of SVI params per slice update (free slice)",
            _fmt(float(np.median(res["changes"]["param"])) if res["changes"]["param"] else None, 4),
            "-",
        ),
        (
            "median |change of ATM vol| per slice update (free slice, vol pts)",
            _fmt(
                100 * float(np.median(res["changes"]["atm"])) if res["changes"]["atm"] else None, 3
            ),
            "-",
        ),
        (
            "median |change of arbitrage-free ATM vol| per svi_surface refresh (vol pts)",
            _fmt(
                100 * float(np.median(res["changes"]["atm_arb"]))
                if res["changes"]["atm_arb"]
                else None,
                3,
            ),
            "-",
        ),
        (
            "synthetic (interpolated) share of quote updates",
            f"{100 * st.synthetic_share:.1f}%",
            "-",
        ),
        ("guards", ", ".join(f"{k} {v}" for k, v in sorted(st.guards.items())) or "none", "-"),
    ]
    head = (
        f"- command: `{cmd}`; {res['wall']:.1f} s wall; load average {load[0]:.1f} on "
        f"{os.cpu_count()} cores (machine shared with other jobs); this process used "
        f"{res['cpu']:.1f} s CPU in {res['wall']:.1f} s ({100 * res['cpu'] / res['wall']:.0f}% of one core)\n"
        f"- input: 5 real BTC snapshots 2026-01-23 03:59 -> 2026-01-24 03:53 UTC replayed "
        f"{1 / res['scale']:.0f}x compressed, with {res['ticks_planned']:,} INTERPOLATED NOISY "
        "ticks between them (synthetic; the snapshots themselves exact at their times)\n"
        f"- engine: debounce {args.debounce * 1000:.0f} ms per expiry (bucket of "
        f"{args.debounce_burst}), Heston every "
        f"{args.model_interval:g} s (warm, strength 0.1, on a worker {args.model_executor}), eSSVI at most every "
        f"{1000 * args.surface_interval:.0f} ms after SVI passes ({dict(process='on a worker process', steps='in the loop, in steps').get(args.surface_executor, 'in the loop')}); "
        + (
            "svi_surface at most as often, on its worker process; "
            if _has_svs()
            else "no svi_surface model in this engine; "
        )
        + "baseline: the issue's aims (no other streaming calibrator to compare with)\n"
    )
    table = "| measure | value | aim |\n|---|---|---|\n" + "".join(
        f"| {a} | {b} | {c} |\n" for a, b, c in rows
    )
    micro_t = (
        "\nCompute cost per step on the 2026-01-23 09:23 snapshot, no scheduling (min / median "
        f"of {5 if args.quick else 15} repeats, same load):\n\n| step | min ms | median ms |\n|---|---|---|\n"
        + "".join(f"| {n} | {a:.2f} | {b:.2f} |\n" for n, a, b in micro)
    )
    table = table + micro_t + READING
    print(head)
    print(table)
    if args.write:
        from _markdown import write_section

        title = "## Streaming engine" + (": 10-minute soak" if args.day >= 600 else "")
        write_section(title, title + "\n\n" + head + "\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
