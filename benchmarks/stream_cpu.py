"""CPU per operation of the streaming engine: the replay of ``benchmarks/stream.py``
with the engine's slice refit (``_fit_slice``), eSSVI refresh (``_fit_essvi``) and
scheduler action (``_recalibrate``: one chunk of slices, plus a refresh started at its
end where the engine does so) each timed by the CPU of the loop's thread
(``time.thread_time``) and by wall time. CPU per operation does not depend on
how busy the shared machine is (the wall time does): compare two trees with interleaved
runs, e.g. ``PYTHONPATH=<other>/src python benchmarks/stream_cpu.py --bench
<other>/benchmarks/stream.py``.

Run ``python benchmarks/stream_cpu.py --quick`` (a 10-second day) or ``--day 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 10-second day")
    ap.add_argument("--day", type=float, default=20.0, help="wall seconds the day lasts")
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument(
        "--bench",
        default=str(Path(__file__).resolve().parent / "stream.py"),
        help="the stream.py whose replay is run (default: this tree's)",
    )
    args = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("_stream_bench", args.bench)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from volcal.stream import engine as engine_mod

    acc: dict[str, list[tuple[float, float]]] = {"slice": [], "essvi": [], "pass": []}
    for name, key in (("_fit_slice", "slice"), ("_fit_essvi", "essvi"), ("_recalibrate", "pass")):
        f = getattr(engine_mod.StreamEngine, name)

        def timed(self: Any, *a: Any, _f: Any = f, _k: str = key, **k: Any) -> Any:
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                return _f(self, *a, **k)
            finally:
                acc[_k].append((1e3 * (time.thread_time() - c0), 1e3 * (time.perf_counter() - w0)))

        setattr(engine_mod.StreamEngine, name, timed)
    warm = bench._warmup

    async def warmup(files: Any) -> None:
        await warm(files)
        for v in acc.values():
            v.clear()  # the warm-up engine is not measured

    bench._warmup = warmup
    ns = argparse.Namespace(
        data=None,
        day=10.0 if args.quick else args.day,
        rate=args.rate,
        debounce=0.1,
        debounce_burst=3,
        model_interval=5.0,
        seed=0,
        model_executor="process",
        surface_executor="inline",
        surface_interval=0.25,
    )
    r = asyncio.run(bench._run(ns))
    m = r["metrics"]
    msg = m["messages"]
    print(
        f"- {r['wall']:.1f} s wall, load average {os.getloadavg()[0]:.1f} on 2 cores, "
        f"process CPU {r['cpu']:.2f} s; messages received {msg['received']:,} = applied "
        f"{msg['applied_total']:,} + dropped {sum(msg['dropped'].values()):,}"
    )
    print("\n| operation | n | CPU p50 / mean / p99 (ms) | wall p99 / max (ms) |")
    print("|---|---|---|---|")
    for key, label in (
        ("slice", "slice refit"),
        ("essvi", "eSSVI refresh"),
        ("pass", "scheduler action (slice chunk)"),
    ):
        a = np.array(acc[key]) if acc[key] else np.zeros((1, 2))
        c, w = a[:, 0], a[:, 1]
        print(
            f"| {label} | {len(acc[key]):,} | {np.median(c):.2f} / {c.mean():.2f} / "
            f"{np.percentile(c, 99):.2f} | {np.percentile(w, 99):.1f} / {w.max():.1f} |"
        )
    lat = m["latency_ms"]
    print(
        f"\ntick -> slice p50 / p99 {lat['tick_to_slice']['p50_ms']:.2f} / "
        f"{lat['tick_to_slice']['p99_ms']:.2f} ms; tick -> eSSVI p50 / p99 "
        f"{lat['tick_to_surface']['p50_ms']:.2f} / {lat['tick_to_surface']['p99_ms']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
