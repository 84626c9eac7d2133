"""volcal.calibration._minpack.leastsq is scipy.optimize.leastsq (analytic Jacobian, full
output) bit for bit, without importing scipy.optimize: the same solution, the same
evaluations in the same order, the same messages, the same errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.optimize import leastsq as scipy_leastsq

from volcal.calibration._minpack import leastsq

T = np.linspace(0.0, 4.0, 25)
Y = 2.5 * np.exp(-1.3 * T) + 0.4 + 0.01 * np.sin(7.0 * T)  # not exactly on the model


def _exp_problem(log: list[tuple[str, bytes]]) -> tuple[Any, Any]:
    def fun(p: np.ndarray) -> np.ndarray:
        log.append(("f", p.tobytes()))
        return p[0] * np.exp(-p[1] * T) + p[2] - Y

    def jac(p: np.ndarray) -> np.ndarray:
        log.append(("j", p.tobytes()))
        e = np.exp(-p[1] * T)
        return np.column_stack([e, -p[0] * T * e, np.ones_like(T)])

    return fun, jac


def _rosenbrock(log: list[tuple[str, bytes]]) -> tuple[Any, Any]:
    def fun(p: np.ndarray) -> np.ndarray:
        log.append(("f", p.tobytes()))
        return np.array([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

    def jac(p: np.ndarray) -> np.ndarray:
        log.append(("j", p.tobytes()))
        return np.array([[-20.0 * p[0], 10.0], [-1.0, 0.0]])

    return fun, jac


def _both(problem: Any, x0: Any, **kw: Any) -> tuple[Any, Any, list[Any], list[Any]]:
    opts = {"ftol": 1e-10, "xtol": 1e-10, "gtol": 0.0, "maxfev": 0, "factor": 1.0}
    opts.update(kw)
    n = np.size(x0)
    ours_log: list[Any] = []
    fun, jac = problem(ours_log)
    ours = leastsq(fun, np.array(x0, float), Dfun=jac, full_output=True, diag=np.ones(n), **opts)
    ref_log: list[Any] = []
    fun, jac = problem(ref_log)
    ref = scipy_leastsq(
        fun, np.array(x0, float), Dfun=jac, full_output=True, diag=np.ones(n), **opts
    )
    return ours, ref, ours_log, ref_log


@pytest.mark.parametrize(
    ("problem", "x0", "kw"),
    [
        (_exp_problem, [1.0, 0.5, 0.0], {}),  # info 3
        (_exp_problem, [1.0, 0.5, 0.0], {"ftol": 1e-6}),  # info 1
        (_exp_problem, [1.0, 0.5, 0.0], {"factor": 100.0, "ftol": 1e-6}),
        (_exp_problem, [1.0, 0.5, 0.0], {"xtol": 1e-3, "ftol": 1e-30}),  # info 2
        (_exp_problem, [1.0, 0.5, 0.0], {"gtol": 1e-1, "ftol": 1e-30, "xtol": 1e-30}),  # 4
        (_exp_problem, [1.0, 0.5, 0.0], {"maxfev": 4}),  # the cap: info 5
        (_rosenbrock, [-1.2, 1.0], {}),
    ],
)
def test_same_solve_as_scipy(problem, x0, kw) -> None:
    ours, ref, ours_log, ref_log = _both(problem, x0, **kw)
    assert ours[0].tobytes() == ref[0].tobytes()  # the solution, bit for bit
    assert ours[3] == ref[3] and ours[4] == ref[4]  # message and info
    assert ours[2]["nfev"] == ref[2]["nfev"] and ours[2]["njev"] == ref[2]["njev"]
    assert ours[2]["fvec"].tobytes() == ref[2]["fvec"].tobytes()
    assert ours_log == ref_log  # every evaluation, in order, at the same points
    assert ours[1] is None


def test_the_infos_of_the_cases_above_differ() -> None:
    # the cases exercise several of MINPACK's stopping rules, not one
    x0 = [1.0, 0.5, 0.0]
    infos = [
        _both(_exp_problem, x0, **kw)[0][4]
        for kw in (
            {},
            {"ftol": 1e-6},
            {"xtol": 1e-3, "ftol": 1e-30},
            {"gtol": 1e-1, "ftol": 1e-30, "xtol": 1e-30},
            {"maxfev": 4},
        )
    ]
    assert infos == [3, 1, 2, 4, 5]


def test_same_errors_as_scipy() -> None:
    def fun(p: np.ndarray) -> np.ndarray:
        return np.array([p[0] - 1.0])

    def jac(p: np.ndarray) -> np.ndarray:
        return np.array([[1.0, 0.0]])

    for impl in (leastsq, scipy_leastsq):
        with pytest.raises(TypeError, match="must not exceed func output vector length"):
            impl(fun, np.zeros(2), Dfun=jac, full_output=True, ftol=1e-8, xtol=1e-8,
                 gtol=0.0, maxfev=0, factor=1.0, diag=np.ones(2))  # fmt: skip

    def bad_jac(p: np.ndarray) -> np.ndarray:
        return np.ones((2, 3))

    for impl in (leastsq, scipy_leastsq):
        with pytest.raises(TypeError, match="mismatch between the input and output shape"):
            impl(lambda p: p - 1.0, np.zeros(2), Dfun=bad_jac, full_output=True, ftol=1e-8,
                 xtol=1e-8, gtol=0.0, maxfev=0, factor=1.0, diag=np.ones(2))  # fmt: skip


def test_an_exception_in_the_residuals_propagates() -> None:
    class Stop(Exception):
        pass

    calls = []

    def fun(p: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) > 3:
            raise Stop
        return p - 1.0

    with pytest.raises(Stop):
        leastsq(fun, np.zeros(2), Dfun=lambda p: np.eye(2) * 1e-3, ftol=1e-8, xtol=1e-8,
                gtol=0.0, maxfev=0, factor=1.0, diag=np.ones(2))  # fmt: skip


def test_full_output_only() -> None:
    with pytest.raises(TypeError, match="full output"):
        leastsq(lambda p: p, np.zeros(1), Dfun=lambda p: np.eye(1), full_output=False,
                ftol=1e-8, xtol=1e-8, gtol=0.0, maxfev=0, factor=1.0, diag=np.ones(1))  # fmt: skip


def test_a_fresh_process_loads_only_the_compiled_wrapper() -> None:
    """In a new interpreter the wrapper is loaded from its file, scipy.optimize is not
    imported, and a later ``import scipy.optimize`` still works (its own module object)
    and solves the same problem bit for bit."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import sys
import numpy as np
from volcal.calibration._minpack import leastsq
t = np.linspace(0.0, 4.0, 25)
y = 2.5 * np.exp(-1.3 * t) + 0.4 + 0.01 * np.sin(7.0 * t)
fun = lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y
jac = lambda p: np.column_stack([np.exp(-p[1] * t), -p[0] * t * np.exp(-p[1] * t), np.ones_like(t)])
kw = dict(ftol=1e-10, xtol=1e-10, gtol=0.0, maxfev=0, factor=1.0, diag=np.ones(3))
ours = leastsq(fun, np.array([1.0, 0.5, 0.0]), Dfun=jac, **kw)
assert "scipy.optimize" not in sys.modules and "scipy.optimize._minpack" not in sys.modules
import scipy.optimize
assert scipy.optimize._minpack._lmder is not None
ref = scipy.optimize.leastsq(fun, np.array([1.0, 0.5, 0.0]), Dfun=jac, full_output=True, **kw)
assert ours[0].tobytes() == ref[0].tobytes() and ours[3:] == ref[3:]
print("ok")
"""
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": src},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
