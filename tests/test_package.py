"""Package-level contracts: every lazily exported name resolves, import stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import volcal


@pytest.mark.parametrize("name", sorted(volcal._LAZY))
def test_lazy_export_resolves(name: str) -> None:
    assert getattr(volcal, name) is not None


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = volcal.no_such_thing  # type: ignore[attr-defined]


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, volcal; heavy = [m for m in ('plotly', 'QuantLib', 'scipy.optimize', 'numba',"
        " 'httpx') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
