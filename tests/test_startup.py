"""Start-up: ``import volcal`` and every command import only what they use (checked in a
fresh interpreter; figures of the wall time are in BENCHMARKS.md, not asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _modules_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _top(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


def test_import_volcal_is_light() -> None:
    mods = _top(_modules_after("import volcal"))
    assert not mods & {"numpy", "scipy", "pandas", "plotly", "numba", "typer", "rich"}


def test_help_imports_no_numerics() -> None:
    code = (
        "import contextlib, io\nfrom volcal.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])"
    )
    full = _modules_after(code)
    assert not _top(full) & {"numpy", "scipy", "pandas", "plotly", "numba"}
    assert "typer.rich_utils" not in full  # plain help: Rich's help renderer costs ~0.1 s


def test_calibrate_svi_imports_no_stats_optimize_or_plotly(quote_table) -> None:
    code = (
        "import contextlib, io\nfrom volcal.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['calibrate', {str(quote_table)!r}, '--json']) == 0"
    )
    mods = _modules_after(code)
    assert "scipy.stats" not in mods
    assert "plotly" not in _top(mods)


def test_calibrate_heston_imports_no_scipy_optimize(quote_table) -> None:
    # MINPACK's lmder through volcal.calibration._minpack: the scipy.optimize package
    # (linprog, sparse eigensolvers, scipy.special, scipy.fft...) cost ~0.2-0.4 s of the
    # command's start-up
    code = (
        "import contextlib, io, json\nfrom volcal.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['calibrate', {str(quote_table)!r}, '--model', 'heston', '--json']) == 0\n"
        "assert json.loads(out.getvalue())['result']['status'] == 'ok'"
    )
    mods = _modules_after(code)
    assert "volcal.calibration._minpack" in mods
    assert not mods & {"scipy.optimize", "scipy.special", "scipy.stats", "scipy.sparse"}
    assert "scipy.linalg" not in mods  # volcal.cli._numba_start
    assert not _top(mods) & {"plotly", "pydantic"}
    # --json on a pipe: no spinner, no table, so no Rich console is ever made
    assert "rich" not in _top(mods)


def test_numba_start_without_scipy_linalg_changes_nothing_compiled() -> None:
    """volcal.cli._numba_start.prepare: numba's target refreshed without the scipy.linalg
    package, no entry left behind; a kernel that calls BLAS still compiles and agrees
    with NumPy, and scipy.linalg still imports whole afterwards."""
    code = """
import sys
import numpy as np
from volcal.cli._numba_start import prepare
assert prepare() is True
assert "scipy.linalg" not in sys.modules and "scipy.linalg.cython_blas" not in sys.modules
import numba
@numba.njit
def f(a, b):
    return np.dot(a, b)
a = np.array([[2.0, 1.0], [1.0, 3.0]]); b = np.array([1.0, 2.0])
assert np.array_equal(f(a, b), a @ b)
import scipy.linalg
assert scipy.linalg.cython_blas.__pyx_capi__ and prepare() is False
assert np.allclose(scipy.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-15)
"""
    _modules_after(code)  # raises on a failed assertion


def test_pillars_import_no_scipy_solvers() -> None:
    # (numba itself imports the scipy package; the solvers and special functions are
    # what cost ~0.5 s)
    mods = _modules_after("import volcal.calibration.delta_pillars, volcal.calibration.smile_stats")
    assert not mods & {"scipy.optimize", "scipy.special", "scipy.stats"}


@pytest.mark.parametrize("attr", ["models", "surface", "risk", "calibration", "pricing"])
def test_subpackages_are_reachable_lazily(attr) -> None:
    mods = _modules_after(f"import volcal\nassert volcal.{attr} is not None")
    assert f"volcal.{attr}" in mods


def test_command_table_names_the_registering_modules() -> None:
    """volcal.cli._COMMAND_HOME (a command line naming a command imports only its
    module): every entry is the module that registers that command."""
    import typer.main

    from volcal.cli import _COMMAND_HOME, _COMMAND_MODULES, _load_commands, app

    _load_commands()
    command = typer.main.get_command(app)
    for name, home in _COMMAND_HOME.items():
        assert home in _COMMAND_MODULES
        sub = command.commands[name]
        subs = list(getattr(sub, "commands", {}).values()) or [sub]  # a group: its commands
        assert {c.callback.__module__ for c in subs} == {home}, name


def test_a_command_imports_only_its_command_module(tmp_path: Path) -> None:
    code = (
        "import contextlib, io\nfrom volcal.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        f"    assert main(['calibrate', {str(tmp_path / 'missing.csv')!r}]) == 2"
    )
    mods = _modules_after(code)
    assert "volcal.cli.chain" in mods
    assert not mods & {"volcal.cli.serve", "volcal.cli.store", "volcal.cli.riskparams"}
    assert "pydantic" not in _top(mods)  # volcal.cli._coerce
    full = _modules_after(code.replace("'calibrate'", "'calibrat'").replace("== 2", "!= 0"))
    assert {"volcal.cli.serve", "volcal.cli.store"} <= full  # a typo: every command module


def _run_cli(args: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``volcal ARGS`` through :func:`volcal.cli.run` (the console script's entry) in a
    fresh interpreter, stdout and stderr on pipes."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = f"{prelude}\nimport sys\nsys.argv = ['volcal', *{args!r}]\nfrom volcal.cli import run\nrun()"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )


#: a prelude for _run_cli: an atexit function, and an object whose finaliser only the
#: interpreter's teardown runs (it is a global of __main__)
_EXIT_PROBES = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
    "class Probe:\n"
    "    def __del__(self):\n"
    "        sys.stderr.write('teardown ran\\n')\n"
    "probe = Probe()"
)


def test_fast_exit_keeps_output_exit_code_and_atexit(quote_table, tmp_path: Path) -> None:
    """volcal.cli._FAST_EXIT: the process ends without the interpreter's teardown, yet the
    whole JSON document arrives, the HTML report is complete, atexit functions run and
    the exit code is the command's."""
    report = tmp_path / "fit.html"
    args = ["calibrate", str(quote_table), "--json", "--report", str(report)]
    done = _run_cli(args, _EXIT_PROBES)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["command"] == "calibrate" and doc["result"]["report"] == str(report)
    assert report.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert "atexit ran" in done.stderr
    assert "teardown ran" not in done.stderr  # the fast exit was taken
    missing = _run_cli(["calibrate", str(tmp_path / "missing.csv")], _EXIT_PROBES)
    assert missing.returncode == 2 and "error:" in missing.stderr
    assert "atexit ran" in missing.stderr and "teardown ran" not in missing.stderr


def test_fast_exit_only_for_listed_commands_and_one_thread(tmp_path: Path) -> None:
    from volcal.cli import _COMMAND_HOME, _FAST_EXIT

    assert _FAST_EXIT <= set(_COMMAND_HOME)
    # commands with servers, threads, processes or database connections end as usual
    assert not _FAST_EXIT & {"serve", "stream", "record", "backfill", "audit", "history"}
    missing = str(tmp_path / "missing.csv")
    done = _run_cli(["--version"], _EXIT_PROBES)
    assert done.returncode == 0 and "teardown ran" in done.stderr  # no listed command
    # another thread alive: the interpreter's own exit, which waits for it (the thread
    # lives until the main thread has begun its exit, however long the command takes on
    # a loaded machine, then writes its line: a fast exit would lose it)
    thread = (
        "import threading, time\n"
        "def late():\n"
        "    while threading.main_thread().is_alive():\n"
        "        time.sleep(0.01)\n"
        "    time.sleep(0.05)\n"
        "    sys.stderr.write('thread done\\n')\n"
        "threading.Thread(target=late).start()"
    )
    done = _run_cli(["calibrate", missing], _EXIT_PROBES + "\n" + thread)
    assert done.returncode == 2
    assert "thread done" in done.stderr and "teardown ran" in done.stderr


_SNAPSHOT = "deribit_options_snapshot_20260107T092155Z.csv"


@pytest.mark.parametrize("model", ["heston", "svi"])
def test_calibrate_on_a_deribit_snapshot_imports_no_pandas(snapshot_dir: Path, model: str) -> None:
    """The Deribit snapshot CSV is read without pandas (volcal.feeds.csv_formats.
    read_svcj_snapshot_text), the chain keeps its snapshot as datetime64 through cleaning
    and the fit: pandas (and pyarrow under it) cost ~0.2-0.5 s of the command."""
    path = snapshot_dir / _SNAPSHOT
    code = (
        "import contextlib, io, json\nfrom volcal.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['calibrate', {str(path)!r}, '--currency', 'BTC', '--model', {model!r},"
        " '--json']) == 0\n"
        "doc = json.loads(out.getvalue())\n"
        "assert doc['result']['status'] == 'ok', doc['result']['status']\n"
        "assert doc['result']['snapshot'] == '2026-01-07T09:21:55.572527+00:00'\n"
    )
    mods = _modules_after(code)
    assert not _top(mods) & {"pandas", "pyarrow", "dateutil"}
    assert "volcal.feeds.tardis" not in mods  # its header check: volcal.cli._load
    if model != "heston":
        return
    # volcal.models imports its model modules when their classes are used
    assert {"volcal.models.heston", "volcal.models.levy"} <= mods
    assert not mods & {"volcal.models.heston_td", "volcal.models.sabr", "volcal.models.ssvi"}


def test_models_package_imports_its_models_on_first_use() -> None:
    mods = _modules_after("import volcal.models")
    assert not {m for m in mods if m.startswith("volcal.models.")}
    mods = _modules_after("from volcal.models import HestonTD\nHestonTD")
    assert "volcal.models.heston_td" in mods and "volcal.models.sabr" not in mods
    code = (
        "import volcal.models as m\n"
        "assert sorted(m.fourier_models()) == "
        "['bates', 'black', 'heston', 'kou', 'merton', 'svcj', 'vg']\n"
        "assert set(m.__all__) <= set(dir(m))\n"
        "for name in m.__all__:\n"
        "    assert getattr(m, name).__module__.startswith('volcal.models'), name\n"
    )
    assert "volcal.models.ssvi" in _modules_after(code)
