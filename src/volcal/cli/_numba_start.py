"""numba's first-dispatch set-up without importing the ``scipy.linalg`` package.

The first call of any compiled kernel in a process refreshes numba's CPU target: it
imports numba's whole registry of implementations, and with it checks that a BLAS is
available by importing ``scipy.linalg.cython_blas`` (``numba.np.linalg.ensure_blas``).
That one import runs ``scipy/linalg/__init__.py`` - every decomposition, the matrix
functions, scipy's array-API layer (which in turn imports ``numpy.f2py`` and
``numpy.testing``) - about 0.15-0.3 s of a command's start-up, for a check: nothing on
the command's path calls scipy.linalg.

:func:`prepare` does the refresh ahead of the first dispatch with only the compiled
``cython_blas`` module loaded (from its file, next to where scipy keeps it) and entered
in ``sys.modules`` under its name for the duration of the refresh; the refresh finds
it there. Afterwards the entry is removed again, so a later import of ``scipy.linalg``
(or a kernel that calls BLAS and looks its functions up) loads the package as it
always does. Nothing is compiled differently: the same registries, the same cached
kernels. When scipy's layout is not the expected one, or ``scipy.linalg`` is already
imported, :func:`prepare` leaves the refresh to the first dispatch.

Used by the command line only, whose processes exit after one command; the library
itself leaves numba alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

_NAME = "scipy.linalg.cython_blas"


def prepare() -> bool:
    """Refresh numba's CPU target now, with scipy's BLAS bindings loaded alone; ``True``
    if it was done this way (``False``: left to numba's first dispatch)."""
    if "scipy.linalg" in sys.modules or _NAME in sys.modules:
        return False
    import scipy

    folder = Path(scipy.__file__).parent / "linalg"
    path = next(
        (
            folder / f"cython_blas{suffix}"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if (folder / f"cython_blas{suffix}").is_file()
        ),
        None,
    )
    if path is None:  # pragma: no cover - another scipy layout
        return False
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        return False
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    try:
        try:
            spec.loader.exec_module(module)
        except ImportError:  # pragma: no cover - an unloadable build: numba's own way
            return False
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        if sys.modules.get(_NAME) is module and "scipy.linalg" not in sys.modules:
            del sys.modules[_NAME]
    return True


__all__ = ["prepare"]
