"""Start-up and whole-process wall time of the command line (issue: a CLI that answers
in a second).

Runs each command in a fresh interpreter ``--repeat`` times and prints the minimum and
median wall time and the minimum CPU time (user + system of the child) per command, for
one or more source trees (``--src``; the first is the baseline of the ratio column, which
compares CPU time: on a shared, loaded machine it moves far less than the wall time). The
numba cache is warmed by one untimed run of each command first (what ``volcal warmup``
does at install time); that run also writes the trees' ``.pyc`` files, as an install does
(``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment: without ``.pyc``
every run compiles volcal's sources again).

    python benchmarks/bench_startup.py --snapshot ../shared/data/raw/svcj-deribit-snapshots/\\
        deribit_options_snapshot_20260107T092155Z.csv --src OLD/src --src src

Runs of the source trees are interleaved (tree 1, tree 2, tree 1, ...), so a change of
the machine's load hits every tree alike.

``--budget`` instead times what the Heston command cannot avoid as long as its path
imports these libraries: the interpreter, NumPy, numba and the target-context
refresh of its first dispatch (its type registries; its BLAS check imports scipy's
``cython_blas`` alone, as ``volcal.cli._numba_start`` arranges), Typer, and pydantic
(Typer's own parameter coercion, which volcal.cli._coerce keeps off the path), each
added to the previous line, in fresh interpreters, interleaved the same way; pandas, which
the command no longer imports on a Deribit snapshot (read by
``volcal.feeds.csv_formats.read_svcj_snapshot_text``), last, for its size.

``--phases`` times the phases of the Heston command inside fresh interpreters (min over
``--repeat`` runs): as the command runs (each phase pays for the imports it triggers),
and with the libraries imported first, one by one (NumPy and numba: their import times,
then what is left of each phase: volcal's own imports and work, the numba cache loads,
pandas where the tree reads the chain with it), and counts the compiled kernels each
first dispatch loads, and the modules the process has imported at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: the library floor of ``volcal calibrate ... --model heston``, one line per step, each
#: snippet run after the previous ones (``--budget``)
BUDGET = (
    ("interpreter", "pass"),
    ("+ numpy", "import numpy"),
    ("+ numba", "import numba"),
    (
        # as volcal.cli._numba_start does it: the BLAS check finds scipy's cython_blas
        # loaded alone, not the scipy.linalg package
        "+ numba's first-dispatch refresh (BLAS check on cython_blas alone)",
        "import importlib.util as u, pathlib, sys, scipy; "
        "p = next((pathlib.Path(scipy.__file__).parent / 'linalg').glob('cython_blas.*.so')); "
        "s = u.spec_from_file_location('scipy.linalg.cython_blas', p); "
        "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
        "from numba.core.registry import cpu_target; cpu_target.target_context.refresh(); "
        "del sys.modules[s.name]",
    ),
    ("+ typer", "import typer.main"),
    ("+ pydantic (Typer's own parameter coercion)", "import typer._adapters"),
    ("+ pandas (off the path on a Deribit snapshot)", "import pandas"),
)


#: the child of ``--phases``: argv = [libraries-first flag, snapshot]; prints one JSON
#: object {phase: seconds} on its last stdout line
PHASES_CHILD = r"""
import contextlib, io, json, sys, time
T0 = time.perf_counter()
PREPARE = (  # a tree before volcal.cli._numba_start: numba's own refresh
    "try:\n    from volcal.cli._numba_start import prepare\n"
    "except ImportError:\n    from numba.core.registry import cpu_target\n"
    "    cpu_target.target_context.refresh()\nelse:\n    prepare()\n"
)
marks = {}
def add(label, dt):
    marks[label] = marks.get(label, 0.0) + dt
def timed(label, stmt):
    t = time.perf_counter(); exec(stmt, {}); add(label, time.perf_counter() - t)
if sys.argv[1] == "1":  # (pandas not: a tree that reads the chain with it pays it there)
    timed("import numpy", "import numpy")
    timed("import numba", "import numba")
timed("import volcal.cli and the command module (Typer, Rich if imported)", "import volcal.cli, volcal.cli.chain, volcal.cli._load")
if sys.argv[1] == "1":
    timed("numba first-dispatch refresh (as the tree's command line does it)", PREPARE)
import volcal, volcal.cli, volcal.cli._load as load
def wrap(owner, name, label, resolve):
    def call(*a, **k):
        t = time.perf_counter()
        try:
            return resolve()(*a, **k)
        finally:
            add(label, time.perf_counter() - t)
    setattr(owner, name, call)
real_load = load.load_snapshot
wrap(load, "load_snapshot", "read the chain (+ its imports)", lambda: real_load)
def lazy(mod, name):
    return lambda: getattr(__import__(mod, fromlist=[name]), name)
wrap(volcal, "clean", "clean (+ its imports)", lazy("volcal.quality", "clean"))
wrap(volcal, "calibrate", "calibrate (+ its imports)", lazy("volcal.calibration", "calibrate"))
try:
    import volcal.cli._numba_start as start
except ImportError:
    pass
else:
    real_prepare = start.prepare
    wrap(start, "prepare", "numba refresh ahead (+ import numba)", lambda: real_prepare)
def patch_numba():
    from numba.core import dispatcher
    real = dispatcher.Dispatcher._compile_for_args
    def first(self, *a, **k):
        t = time.perf_counter()
        try:
            return real(self, *a, **k)
        finally:
            add("  first dispatch " + self.py_func.__name__, time.perf_counter() - t)
    dispatcher.Dispatcher._compile_for_args = first
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "numba":
            sys.meta_path.remove(self)
            import numba  # noqa: F401
            patch_numba()
        return None
if "numba" in sys.modules:
    patch_numba()
else:
    sys.meta_path.insert(0, Hook())
argv = ["calibrate", sys.argv[2], "--currency", "BTC", "--model", "heston", "--json"]
with contextlib.redirect_stdout(io.StringIO()):
    assert volcal.cli.main(argv) == 0
whole = time.perf_counter() - T0
marks["the rest (imports of volcal.cli.chain._load_clean, output)"] = whole - sum(
    v for k, v in marks.items() if not k.startswith(" "))
marks["whole process after interpreter start"] = whole
marks["modules imported (count)"] = len(sys.modules)
marks["pandas imported (1 = yes)"] = int("pandas" in sys.modules)
print(json.dumps(marks))
"""


def _phases(srcs: list[str], snapshot: str, repeat: int) -> None:
    """Print, per mode, one column per source tree: the min over ``repeat`` runs of each
    phase (runs interleaved over trees and modes)."""
    import json

    def child(src: str, first: str) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-c", PHASES_CHILD, first, snapshot],
            env=_env(src),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    modes = (("0", "as the command runs"), ("1", "libraries imported first"))
    for src in srcs:
        for first, _ in modes:
            child(src, first)  # numba cache, .pyc files, OS file cache
    runs: dict[tuple[str, str], list[dict[str, float]]] = {
        (src, first): [] for src in srcs for first, _ in modes
    }
    for _ in range(repeat):
        for src in srcs:
            for first, _ in modes:
                runs[src, first].append(child(src, first))
    load = os.getloadavg()[0]
    print(f"{repeat} runs each, interleaved; load average {load:.2f} on {os.cpu_count()} cores")
    for first, title in modes:
        labels: list[str] = []
        for src in reversed(srcs):  # the last tree's order (the newest code, say)
            labels += [k for k in runs[src, first][0] if k not in labels]
        print(f"\n{title}: min over runs, s\n")
        print("| phase | " + " | ".join(srcs) + " |")
        print("|---|" + "---|" * len(srcs))
        for label in labels:
            cells = []
            for src in srcs:
                vals = [r[label] for r in runs[src, first] if label in r]
                count = label.endswith(("(count)", "(1 = yes)"))
                cells.append(f"{min(vals):{'.0f' if count else '.3f'}}" if vals else "-")
            print(f"| {label} | " + " | ".join(cells) + " |")
        kernels = [
            sum(k.startswith("  first dispatch ") for k in runs[src, first][0]) for src in srcs
        ]
        print(
            "| compiled kernels loaded from the numba cache | "
            + " | ".join(map(str, kernels))
            + " |"
        )


def _env(src: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def _run(src: str | None, argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *argv],
        env=_env(src),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _commands(snapshot: str) -> dict[str, list[str]]:
    def calibrate(model: str) -> list[str]:
        return ["-m", "volcal", "calibrate", snapshot, "--currency", "BTC", "--model", model]

    return {
        "import": ["-c", "import volcal"],
        "help": ["-m", "volcal", "--help"],
        "svi": [*calibrate("svi"), "--json"],
        "heston": [*calibrate("heston"), "--json"],
    }


_TITLES = {
    "import": "import volcal",
    "help": "volcal --help",
    "svi": "volcal calibrate SNAPSHOT --currency BTC --model svi --json",
    "heston": "volcal calibrate SNAPSHOT --currency BTC --model heston --json",
}


def _budget(repeat: int) -> None:
    snippets = []
    code = ""
    for label, line in BUDGET:
        code = f"{code}; {line}" if code else line
        snippets.append((label, ["-c", code]))
    for _, argv in snippets:
        _run(None, argv)  # OS file cache
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in snippets}
    for _ in range(repeat):
        for label, argv in snippets:
            runs[label].append(_run(None, argv))
    load = os.getloadavg()[0]
    print(f"{repeat} runs each, interleaved; load average {load:.2f} on {os.cpu_count()} cores")
    print("| cumulative step | min wall s | median wall s | min CPU s |")
    print("|---|---|---|---|")
    for label, _ in snippets:
        walls = [w for w, _ in runs[label]]
        cpu = min(c for _, c in runs[label])
        print(f"| {label} | {min(walls):.3f} | {statistics.median(walls):.3f} | {cpu:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshot", help="a Deribit snapshot CSV (BTC and ETH)")
    ap.add_argument("--src", action="append", help="source tree(s) on PYTHONPATH (default: src)")
    ap.add_argument(
        "--command",
        action="append",
        choices=sorted(_TITLES),
        help="time only these commands (default: all)",
    )
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument(
        "--budget", action="store_true", help="the library floor of the Heston command instead"
    )
    ap.add_argument(
        "--phases", action="store_true", help="the phases of the Heston command instead"
    )
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    if args.budget:
        _budget(repeat)
        return
    if args.snapshot is None:
        ap.error("--snapshot is required (unless --budget)")
    srcs = args.src or [str(Path(__file__).resolve().parents[1] / "src")]
    if args.phases:
        _phases(srcs, args.snapshot, repeat)
        return
    commands = _commands(args.snapshot)
    rows = []
    for key in args.command or list(commands):
        argv = commands[key]
        for src in srcs:
            _run(src, argv)  # warm the numba cache, the .pyc files and the OS file cache
        # the source trees interleaved run by run: a change of the machine's load hits
        # every tree alike
        runs: dict[str, list[tuple[float, float]]] = {src: [] for src in srcs}
        for _ in range(repeat):
            for src in srcs:
                runs[src].append(_run(src, argv))
        base = None
        for src in srcs:
            walls = [w for w, _ in runs[src]]
            cpu = min(c for _, c in runs[src])
            base = base or cpu
            rows.append((_TITLES[key], src, min(walls), statistics.median(walls), cpu, base / cpu))
    load = os.getloadavg()[0]
    print(f"{repeat} runs each, interleaved; load average {load:.2f} on {os.cpu_count()} cores")
    print("| command | source | min wall s | median wall s | min CPU s | x baseline (CPU) |")
    print("|---|---|---|---|---|---|")
    for name, src, wall, med, cpu, ratio in rows:
        print(f"| `{name}` | {src} | {wall:.3f} | {med:.3f} | {cpu:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
