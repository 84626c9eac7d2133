"""Start-up and whole-process wall time of the command line (issue: a CLI that answers
in a second).

Runs each command in a fresh interpreter ``--repeat`` times and prints the minimum wall
time and the minimum CPU time (user + system of the child) per command, for one or more
source trees (``--src``; the first is the baseline of the ratio column, which compares
CPU time: on a shared, loaded machine it moves far less than the wall time). The numba cache
is warmed by one untimed run of each command first (what ``volcal warmup`` does at
install time).

    python benchmarks/bench_startup.py --snapshot ../shared/data/raw/svcj-deribit-snapshots/\\
        deribit_options_snapshot_20260107T092155Z.csv --src OLD/src --src src

Runs of the source trees are interleaved (tree 1, tree 2, tree 1, ...), so a change of
the machine's load hits every tree alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _run(src: str, argv: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": src}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshot", required=True, help="a Deribit snapshot CSV (BTC and ETH)")
    ap.add_argument("--src", action="append", help="source tree(s) on PYTHONPATH (default: src)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args()
    srcs = args.src or [str(Path(__file__).resolve().parents[1] / "src")]
    repeat = 3 if args.quick else args.repeat
    commands = {
        "import volcal": ["-c", "import volcal"],
        "volcal --help": ["-m", "volcal", "--help"],
        "volcal calibrate SNAPSHOT --currency BTC --model svi --json": [
            "-m",
            "volcal",
            "calibrate",
            args.snapshot,
            "--currency",
            "BTC",
            "--model",
            "svi",
            "--json",
        ],
        "volcal calibrate SNAPSHOT --currency BTC --model heston --json": [
            "-m",
            "volcal",
            "calibrate",
            args.snapshot,
            "--currency",
            "BTC",
            "--model",
            "heston",
            "--json",
        ],
    }
    rows = []
    for name, argv in commands.items():
        for src in srcs:
            _run(src, argv)  # warm the numba cache and the OS file cache
        # the source trees interleaved run by run: a change of the machine's load hits
        # every tree alike
        runs: dict[str, list[tuple[float, float]]] = {src: [] for src in srcs}
        for _ in range(repeat):
            for src in srcs:
                runs[src].append(_run(src, argv))
        base = None
        for src in srcs:
            wall = min(w for w, _ in runs[src])
            cpu = min(c for _, c in runs[src])
            base = base or cpu
            rows.append((name, src, wall, cpu, base / cpu))
    load = os.getloadavg()[0]
    print(f"min of {repeat} runs; load average {load:.2f} on {os.cpu_count()} cores")
    print("| command | source | wall s | CPU s | x baseline (CPU) |")
    print("|---|---|---|---|---|")
    for name, src, wall, cpu, ratio in rows:
        print(f"| `{name}` | {src} | {wall:.3f} | {cpu:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
