"""``audit``: repeat a stored calibration from its stored inputs and compare.

The stored snapshot (cleaned quotes, flags and forwards, rebuilt bit for bit) is
calibrated again with the stored model, settings (the keyword arguments of
:func:`volcal.calibrate`) and warm start (``start=``, or ``prior=`` when the settings
regularize with ``strength > 0``). Every numeric parameter is compared:

* ``bit-for-bit``: every parameter identical (JSON keeps a float exactly, so this is
  equality of the float64 values). SVI, SSVI/eSSVI and the Fourier models are
  deterministic for a given input (no random draws without a seed, no wall-clock
  stopping while the fit converges within ``max_time``), so this is what an audit
  expects;
* ``within tolerance``: largest relative difference at most ``rtol`` (default 1e-6)
  - a different BLAS, CPU or library version can move the last bits;
* ``not reproduced`` otherwise.

A fit that stopped on its wall-clock limit (status ``time_limit``) depends on the
machine's speed and is reported as such rather than expected to reproduce.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from volcal.errors import ParameterError

__all__ = ["AuditResult", "audit"]


def _flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    elif obj is None:
        out[prefix] = float("nan")
    return out


@dataclass(frozen=True)
class AuditResult:
    """Outcome of :func:`audit` (immutable)."""

    calibration_id: str
    model: str
    underlying: str
    snapshot_time: str
    verdict: str
    reproduced: bool
    exact: bool
    rtol: float
    max_rel_diff: float
    max_abs_diff: float
    worst_param: str
    n_params: int
    stored_status: str
    status: str
    stored_rmse: float | None
    rmse: float | None
    diffs: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "calibration_id": self.calibration_id,
            "model": self.model,
            "underlying": self.underlying,
            "snapshot_time": self.snapshot_time,
            "verdict": self.verdict,
            "reproduced": self.reproduced,
            "exact": self.exact,
            "rtol": self.rtol,
            "max_rel_diff": num(self.max_rel_diff),
            "max_abs_diff": num(self.max_abs_diff),
            "worst_param": self.worst_param,
            "n_params": self.n_params,
            "stored_status": self.stored_status,
            "status": self.status,
            "stored_rmse": num(self.stored_rmse),
            "rmse": num(self.rmse),
            "differences": {k: [num(a), num(b)] for k, (a, b) in self.diffs.items()},
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        lines = [
            f"audit {self.calibration_id}: {self.model} {self.underlying} {self.snapshot_time}",
            f"  verdict: {self.verdict} ({self.n_params} parameters; max relative difference "
            f"{self.max_rel_diff:.3g}"
            + (f" in {self.worst_param}" if self.worst_param else "")
            + f"; tolerance {self.rtol:g})",
            f"  status stored {self.stored_status}, now {self.status}; RMSE stored "
            f"{self.stored_rmse} vol pts, now {self.rmse}",
        ]
        for k, (a, b) in list(self.diffs.items())[:10]:
            lines.append(f"  differs: {k}: stored {a!r}, now {b!r}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def audit(store: Any, calibration_id: str, *, rtol: float = 1e-6) -> AuditResult:
    """Re-run stored calibration ``calibration_id`` of ``store`` (a
    :class:`~volcal.store.Store` or a path) and compare its parameters (module docs)."""
    from volcal.calibration import calibrate
    from volcal.calibration.calibrate import FOURIER_MODELS, model_class
    from volcal.store.core import Store, open_store

    if not (rtol >= 0 and math.isfinite(rtol)):
        raise ParameterError(f"rtol must be finite and >= 0, got {rtol}")
    st = store if isinstance(store, Store) else open_store(store, read_only=True)
    row = st.calibration(calibration_id)
    chain = st.chain(row["snapshot_id"])
    model = row["model"]
    settings = dict(row["settings"] or {})
    allowed = set(inspect.signature(calibrate).parameters) - {"chain", "model", "start", "prior"}
    kwargs = {k: v for k, v in settings.items() if k in allowed}
    notes = []
    ignored = sorted(set(settings) - allowed)
    if ignored:
        notes.append(f"settings not passed to calibrate: {', '.join(ignored)}")
    warm = row["warm_start"]
    if warm is not None:
        params = {k: v for k, v in warm.items() if k != "model"}
        if float(kwargs.get("strength", 0.0) or 0.0) > 0 and model in FOURIER_MODELS:
            kwargs["prior"] = model_class(model)(**params)
        else:
            kwargs["start"] = params
    import numpy as np
    import scipy

    from volcal._version import __version__

    for name, now in (
        ("volcal_version", __version__),
        ("numpy_version", np.__version__),
        ("scipy_version", scipy.__version__),
    ):
        if row.get(name) and row[name] != now:
            notes.append(f"{name.split('_')[0]} {row[name]} when stored, {now} now")
    if row["status"] == "time_limit":
        notes.append("the stored fit stopped on its wall-clock limit: not expected to repeat")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = calibrate(chain, model, **kwargs)
    for w in caught:
        notes.append(f"warning when repeated: {w.message}")
    new = result.to_dict()
    a = _flatten({k: v for k, v in (row["params"] or {}).items() if k != "model"})
    b = _flatten({k: v for k, v in new["params"].items() if k != "model"})
    keys = sorted(set(a) | set(b))
    diffs: dict[str, tuple[float, float]] = {}
    max_rel = max_abs = 0.0
    worst = ""
    for k in keys:
        x, y = a.get(k, float("nan")), b.get(k, float("nan"))
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        diffs[k] = (x, y)
        d = abs(x - y)
        rel = d / max(abs(x), abs(y), 1e-300) if math.isfinite(d) else math.inf
        if not math.isfinite(d):
            d = math.inf
        if rel >= max_rel:
            max_rel, worst = rel, k
        max_abs = max(max_abs, d)
    exact = not diffs
    ok = exact or max_rel <= rtol
    verdict = "bit-for-bit" if exact else ("within tolerance" if ok else "not reproduced")
    return AuditResult(
        calibration_id=calibration_id,
        model=model,
        underlying=row["underlying"],
        snapshot_time=row["snapshot_time"].isoformat(),
        verdict=verdict,
        reproduced=ok,
        exact=exact,
        rtol=float(rtol),
        max_rel_diff=max_rel,
        max_abs_diff=max_abs,
        worst_param=worst,
        n_params=len(keys),
        stored_status=row["status"],
        status=result.status,
        stored_rmse=row["rmse_vol"],
        rmse=new["rmse_vol"],
        diffs=diffs,
        notes=tuple(notes),
    )
