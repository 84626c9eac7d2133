"""MINPACK's ``lmder`` as :func:`scipy.optimize.leastsq` calls it, without importing the
``scipy.optimize`` package.

``leastsq`` is a thin Python layer over scipy's compiled MINPACK wrapper
(``scipy.optimize._minpack``), but importing it runs ``scipy/optimize/__init__.py``,
which imports every solver of the package - linear programming, sparse eigensolvers,
``scipy.special``, ``scipy.fft``, ``scipy.spatial`` - about a quarter of the start-up
of a Heston calibration run from the command line. :func:`leastsq` here loads only the
compiled wrapper (from its file, next to where scipy keeps it) and repeats what
``leastsq`` does around it for the arguments the calibration engine passes (an analytic
Jacobian, one residual per row, ``full_output``): the same two checking evaluations
before the solve, the same default evaluation cap, the same call into ``lmder`` and the
same messages, so the solve is bit for bit the one ``scipy.optimize.leastsq`` makes
(tests/test_minpack.py compares them). The covariance ``leastsq`` derives from the
final Jacobian is not computed (``None``): the engine does not use it.

When scipy's layout is not the expected one (the wrapper is not found or has another
signature), :func:`leastsq` calls ``scipy.optimize.leastsq`` itself.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_NAME = "scipy.optimize._minpack"


@functools.cache
def _from_file() -> Any:
    """scipy's compiled MINPACK wrapper loaded from its file, ``None`` if not found.

    Left out of ``sys.modules`` (where loading a single-phase extension puts it): a
    later ``import scipy.optimize`` then loads and binds its own module object, of the
    same compiled library, as it always does."""
    import scipy

    folder = Path(scipy.__file__).parent / "optimize"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_minpack{suffix}"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(_NAME, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if sys.modules.get(_NAME) is module:
            del sys.modules[_NAME]
        return module
    return None


def _load_wrapper() -> Any:
    """scipy's compiled MINPACK wrapper: scipy's own once ``scipy.optimize`` is imported,
    else loaded from its file without the package."""
    loaded = sys.modules.get(_NAME)
    return loaded if loaded is not None else _from_file()


def _messages(ftol: float, xtol: float, gtol: float, maxfev: int) -> dict[int, str]:
    """``leastsq``'s message per MINPACK ``info`` (its wording, its formatting)."""
    return {
        0: "Improper input parameters.",
        1: "Both actual and predicted relative reductions "
        f"in the sum of squares\n  are at most {ftol:f}",
        2: f"The relative error between two consecutive iterates is at most {xtol:f}",
        3: "Both actual and predicted relative reductions in "
        f"the sum of squares\n  are at most {ftol:f} and the "
        "relative error between two consecutive "
        f"iterates is at \n  most {xtol:f}",
        4: "The cosine of the angle between func(x) and any "
        f"column of the\n  Jacobian is at most {gtol:f} in "
        "absolute value",
        5: f"Number of calls to function has reached maxfev = {maxfev}.",
        6: f"ftol={ftol:f} is too small, no further reduction "
        "in the sum of squares\n  is possible.",
        7: f"xtol={xtol:f} is too small, no further improvement in "
        "the approximate\n  solution is possible.",
        8: f"gtol={gtol:f} is too small, func(x) is orthogonal to the "
        "columns of\n  the Jacobian to machine precision.",
    }


def leastsq(
    func: Callable[[Any], Any],
    x0: Any,
    Dfun: Callable[[Any], Any],
    *,
    full_output: bool = True,
    ftol: float,
    xtol: float,
    gtol: float,
    maxfev: int,
    factor: float,
    diag: Any,
) -> tuple[Any, None, dict[str, Any], str, int]:
    """``scipy.optimize.leastsq(func, x0, Dfun=Dfun, full_output=True, col_deriv=False,
    ...)``: ``(x, None, infodict, message, info)`` (the covariance is not computed).

    ``func(x)`` returns the ``m`` residuals, ``Dfun(x)`` their ``m x n`` Jacobian.
    Only the full output is offered (``full_output`` must be true).
    """
    if not full_output:
        raise TypeError("volcal's leastsq returns the full output only")
    wrapper = _load_wrapper()
    lmder = getattr(wrapper, "_lmder", None)
    if lmder is None:  # pragma: no cover - another scipy layout
        return _scipy_leastsq(func, x0, Dfun, ftol, xtol, gtol, maxfev, factor, diag)
    x0 = np.asarray(x0).flatten()
    n = len(x0)
    # leastsq's _check_func: one evaluation of each, the shapes checked
    m = np.shape(np.atleast_1d(func(x0[:n])))[0]
    if n > m:
        raise TypeError(
            f"Improper input: func input vector length N={n} must"
            f" not exceed func output vector length M={m}"
        )
    jac_shape = np.shape(np.atleast_1d(Dfun(x0[:n])))
    if jac_shape != (m, n) and m != 1 and n != 1:
        raise TypeError(
            "leastsq: there is a mismatch between the input and output shape of the "
            f"'Dfun' argument. Shape should be {(m, n)} but it is {jac_shape}."
        )
    if maxfev == 0:
        maxfev = 100 * (n + 1)
    x, infodict, info = lmder(func, Dfun, x0, (), 1, 0, ftol, xtol, gtol, maxfev, factor, diag)
    return x, None, infodict, _messages(ftol, xtol, gtol, maxfev)[info], info


def _scipy_leastsq(
    func: Callable[[Any], Any],
    x0: Any,
    Dfun: Callable[[Any], Any],
    ftol: float,
    xtol: float,
    gtol: float,
    maxfev: int,
    factor: float,
    diag: Any,
) -> tuple[Any, None, dict[str, Any], str, int]:
    from scipy.optimize import leastsq as scipy_leastsq

    x, _, infodict, msg, info = scipy_leastsq(
        func,
        x0,
        Dfun=Dfun,
        full_output=True,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        maxfev=maxfev,
        factor=factor,
        diag=diag,
    )
    return x, None, infodict, msg, info


__all__ = ["leastsq"]
