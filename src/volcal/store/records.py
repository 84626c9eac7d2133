"""Rows of the calibration store, built without a database connection.

A snapshot or a calibration becomes a *record* (plain rows and small tables) in the
process that computed it - a Dask worker in a backfill - and only the writer process
turns records into database rows. So the expensive parts (surface grid, conventions)
never run inside the single writer, and a record pickles cheaply.

Identifiers are content hashes, so writing the same record twice is a no-op:

* snapshot id = hash of (input sha256, underlying);
* calibration id = hash of (snapshot id, model, settings hash).

``sha256`` of a snapshot is the digest of the input file it was read from, or, for a
chain built in memory (a live stream), :func:`chain_sha256` of its quote columns.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal.errors import DataError, ParameterError

__all__ = [
    "CONVENTION_TENORS",
    "GRID_K",
    "GRID_TENORS",
    "CalibrationRecord",
    "SnapshotRecord",
    "calibration_id",
    "calibration_record",
    "chain_from_rows",
    "chain_sha256",
    "file_sha256",
    "settings_hash",
    "snapshot_id",
    "snapshot_record",
]

#: constant-maturity tenors (days) of the stored ATM / RR / BF conventions
CONVENTION_TENORS = (7, 30, 60, 90, 180)
#: the stored surface grid: tenors (days) x log-moneyness
GRID_TENORS = (7, 30, 60, 90, 180, 365)
GRID_K = tuple(float(x) for x in np.round(np.linspace(-0.5, 0.5, 21), 10))

_FLOAT_COLS = (
    "strike",
    "bid",
    "ask",
    "mark",
    "bid_size",
    "ask_size",
    "open_interest",
    "volume",
    "underlying_price",
    "forward",
    "discount",
    "mark_iv",
)
_META_KEEP = ("cleaned", "exclude")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (the identity of a stored input)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chain_sha256(chain: Any) -> str:
    """Hex sha256 of a chain's identity and quote columns (for chains without a file)."""
    h = hashlib.sha256()
    h.update(f"{chain.underlying}|{chain.venue}|{chain.snapshot.value}|{chain.settlement}".encode())
    for name in ("instrument", "expiry", "is_call", "quote_time", "flags", *_FLOAT_COLS):
        arr = np.asarray(getattr(chain, name))
        if arr.dtype == object:
            h.update("\x1f".join(str(x) for x in arr).encode())
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _json_safe(obj: Any) -> Any:
    """A JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, objects with
    ``to_dict`` -> their dict, anything else -> ``str``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return _json_safe(obj.to_dict())
    return str(obj)


def _dumps(obj: Any) -> str:
    return json.dumps(_json_safe(obj), sort_keys=True, allow_nan=False)


def settings_hash(settings: Mapping[str, Any] | None) -> str:
    """Hex sha256 of the canonical JSON of calibration settings (sorted keys)."""
    return _digest(settings_json(settings or {}))


def snapshot_id(sha256: str, underlying: str) -> str:
    """Identifier of a stored snapshot (from its input hash and underlying)."""
    return "s" + _digest(f"{sha256}|{underlying}")[:15]


def calibration_id(snap_id: str, model: str, settings_h: str) -> str:
    """Identifier of a stored calibration (snapshot, model, settings hash)."""
    return "c" + _digest(f"{snap_id}|{model}|{settings_h}")[:15]


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True, eq=False)
class SnapshotRecord:
    """A snapshot row and its quote table, ready to write."""

    id: str
    row: dict[str, Any]
    quotes: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {**_json_safe(self.row), "n_rows": len(self.quotes)}

    def summary(self) -> str:
        r = self.row
        return (
            f"snapshot {self.id}: {r['underlying']} {r['snapshot_time']} from {r['source']}, "
            f"{r['n_quotes']} quotes ({r['n_usable']} usable)"
        )


def snapshot_record(
    chain: Any,
    *,
    source: str | None = None,
    sha256: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> SnapshotRecord:
    """Record of one chain (normally a cleaned one: its flags and forwards are stored).

    Parameters
    ----------
    chain : OptionChain
    source : str, optional
        Where it came from (file name, ``"stream"``); default ``chain.meta["source"]``.
    sha256 : str, optional
        Digest of the input file; default :func:`chain_sha256` of the chain.
    metrics : mapping, optional
        Snapshot-level numbers to keep (e.g. ``{"vol_index_30d": 45.1}``).
    """
    from volcal.market import OptionChain

    if not isinstance(chain, OptionChain):
        raise DataError(f"add_snapshot needs an OptionChain, got {type(chain).__name__}")
    digest = sha256 or chain_sha256(chain)
    sid = snapshot_id(digest, chain.underlying)
    snap = _utc(chain.snapshot)
    n_exp = int(chain.expiries.size)
    row = {
        "id": sid,
        "sha256": digest,
        "underlying": str(chain.underlying),
        "venue": str(chain.venue),
        "source": str(source if source is not None else chain.meta.get("source", "")),
        "snapshot_time": snap.to_pydatetime(),
        "snapshot_ns": int(snap.value),
        "settlement": str(chain.settlement),
        "index_price": float(chain.index_price),
        "n_quotes": len(chain),
        "n_usable": int(chain.usable().sum()),
        "n_expiries": n_exp,
        "meta": _dumps(chain.meta),
        "metrics": _dumps(dict(metrics or {})),
    }
    q = pd.DataFrame(
        {
            "snapshot_id": sid,
            "pos": np.arange(len(chain), dtype=np.int32),
            # str() per name, not .astype(str): NumPy's fixed-width unicode drops
            # trailing NUL characters ("a\x00" -> "a"), which would alter a name
            "instrument": np.array([str(x) for x in chain.instrument], dtype=object),
            "expiry_ns": np.asarray(chain.expiry, dtype="datetime64[ns]").view(np.int64),
            **{c: np.asarray(getattr(chain, c), dtype=np.float64) for c in _FLOAT_COLS[:8]},
            "is_call": np.asarray(chain.is_call, dtype=bool),
            "quote_time_ns": np.asarray(chain.quote_time, dtype="datetime64[ns]").view(np.int64),
            **{c: np.asarray(getattr(chain, c), dtype=np.float64) for c in _FLOAT_COLS[8:]},
            "flags": np.asarray(chain.flags, dtype=np.uint32),
        }
    )
    return SnapshotRecord(id=sid, row=row, quotes=q)


def chain_from_rows(row: Mapping[str, Any], quotes: pd.DataFrame) -> Any:
    """Rebuild the stored :class:`~volcal.market.OptionChain` (bit for bit in every
    quote column; ``meta`` keeps its JSON-safe form)."""
    from volcal.market import OptionChain

    q = quotes.sort_values("pos")
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    fields: dict[str, Any] = {
        "instrument": q["instrument"].to_numpy(dtype=object),
        "expiry": q["expiry_ns"].to_numpy(dtype=np.int64).view("datetime64[ns]"),
        "is_call": q["is_call"].to_numpy(dtype=bool),
        "quote_time": q["quote_time_ns"].to_numpy(dtype=np.int64).view("datetime64[ns]"),
        "flags": q["flags"].to_numpy(dtype=np.uint32),
    }
    for c in _FLOAT_COLS:
        fields[c] = q[c].to_numpy(dtype=np.float64, na_value=np.nan)
    idx = row.get("index_price")
    return OptionChain(
        underlying=str(row["underlying"]),
        snapshot=pd.Timestamp(int(row["snapshot_ns"]), unit="ns", tz="UTC"),
        settlement=row["settlement"],
        venue=str(row.get("venue") or "unknown"),
        index_price=float("nan") if idx is None else float(idx),
        meta=meta,
        **fields,
    )


@dataclass(frozen=True, eq=False)
class CalibrationRecord:
    """A calibration row with its per-expiry, convention and surface-grid tables."""

    id: str
    row: dict[str, Any]
    slices: pd.DataFrame
    conventions: pd.DataFrame
    grid: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                **{k: v for k, v in self.row.items() if k != "snapshot_time"},
                "n_slices": len(self.slices),
            }
        )

    def summary(self) -> str:
        r = self.row
        return (
            f"calibration {self.id}: {r['model']} {r['underlying']} {r['snapshot_time']} "
            f"{r['status']}, RMSE {r['rmse_vol']} vol pts"
        )


def _versions() -> dict[str, str]:
    import scipy

    from volcal._version import __version__

    return {
        "volcal_version": __version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "python_version": platform.python_version(),
    }


_SURFACE_MODELS = ("svi", "ssvi", "essvi", "sabr")


class _ModelVols:
    """Implied vols of a stochastic model in forward space (what the conventions and
    the grid read): :math:`\\sigma(k, t)` of the out-of-the-money option at
    :math:`K = e^k` with forward 1, priced by :func:`volcal.model_iv` (COS).

    The stored tenors are priced once on a log-moneyness grid (step 0.025 over
    [-1.5, 1.5]; far wings below price precision are NaN) and read through a cubic
    spline (measured error below 1e-5 vol at 7 days, 1e-6 at 30 days, 1e-8 at 180 days
    on a real ETH Heston fit); any other point is priced directly."""

    _K = np.linspace(-1.5, 1.5, 121)

    def __init__(self, model: Any, t_nodes: Any) -> None:
        from scipy.interpolate import CubicSpline

        self.model = model
        self.t_nodes = np.asarray(t_nodes, dtype=np.float64)
        days = sorted(set(CONVENTION_TENORS) | set(GRID_TENORS))
        self._t = np.asarray(days, dtype=np.float64) / 365.0
        kk, tt = np.meshgrid(self._K, self._t)
        iv = self._direct(kk.ravel(), tt.ravel()).reshape(tt.shape)
        self._splines: list[Any] = []
        for row in iv:
            m = np.isfinite(row)
            if m.sum() >= 4:
                k = self._K[m]
                self._splines.append((k[0], k[-1], CubicSpline(k, row[m])))
            else:
                self._splines.append(None)

    def _direct(self, k: Any, t: Any) -> Any:
        from volcal.pricing import model_iv

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # far wings below price precision: NaN, kept
            return np.asarray(model_iv(self.model, 1.0, np.exp(k), t, "cos"), dtype=np.float64)

    def implied_vol(self, k: Any, t: Any) -> Any:
        kk, tt = np.broadcast_arrays(
            np.asarray(k, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        out = np.full(kk.shape, np.nan)
        done = np.zeros(kk.shape, dtype=bool)
        for tj, sp in zip(self._t, self._splines, strict=True):
            at = np.abs(tt - tj) <= 1e-12
            if not at.any():
                continue
            done |= at  # beyond the priced range (or with no spline): NaN, as priced
            if sp is not None:
                lo, hi, spline = sp
                m = at & (kk >= lo) & (kk <= hi)
                out[m] = spline(kk[m])
        rest = ~done & np.isfinite(kk)
        if rest.any():
            out[rest] = self._direct(kk[rest], tt[rest])
        return out


def _surface_tables(result: Any, cid: str) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Conventions at fixed tenors and the (tenor, k) vol grid of a fit's surface."""
    from volcal.surface.conventions import surface_conventions

    notes: list[str] = []
    conv_cols = ["calibration_id", "tenor_days", "t", "extrapolated", "atm", "rr25", "bf25"]
    conv_cols += ["rr10", "bf10"]
    empty_c = pd.DataFrame(columns=conv_cols)
    empty_g = pd.DataFrame(columns=["calibration_id", "tenor_days", "k", "iv"])
    try:
        surf = (
            result.surface()
            if result.model in _SURFACE_MODELS
            else _ModelVols(result.params, [s.t for s in result.slices])
        )
    except Exception as exc:  # a fit whose surface cannot be built keeps its row
        return empty_c, empty_g, (f"no surface: {exc}",)
    try:
        conv = surface_conventions(surf, CONVENTION_TENORS)
        conv_df = pd.DataFrame(
            {
                "calibration_id": cid,
                "tenor_days": np.asarray(conv.tenor_days, dtype=np.int32),
                "t": conv.t,
                "extrapolated": np.asarray(conv.extrapolated, dtype=bool),
                "atm": conv.atm,
                "rr25": conv.rr25,
                "bf25": conv.bf25,
                "rr10": conv.rr10,
                "bf10": conv.bf10,
            }
        )
    except Exception as exc:
        conv_df, notes = empty_c, [*notes, f"no conventions: {exc}"]
    kk, tt = np.meshgrid(np.asarray(GRID_K), np.asarray(GRID_TENORS, dtype=np.float64))
    try:
        with np.errstate(all="ignore"):
            iv = np.asarray(surf.implied_vol(kk.ravel(), tt.ravel() / 365.0), dtype=np.float64)
        grid_df = pd.DataFrame(
            {
                "calibration_id": cid,
                "tenor_days": tt.ravel().astype(np.int32),
                "k": kk.ravel(),
                "iv": iv,
            }
        )
    except Exception as exc:
        grid_df, notes = empty_g, [*notes, f"no surface grid: {exc}"]
    return conv_df, grid_df, tuple(notes)


def calibration_record(
    result: Any,
    *,
    snapshot: SnapshotRecord | Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    model: str | None = None,
    warm_start: Any = None,
    surface: bool = True,
) -> CalibrationRecord:
    """Record of one :class:`~volcal.calibration.CalibrationResult`.

    Parameters
    ----------
    result : CalibrationResult
    snapshot : SnapshotRecord or mapping
        The stored snapshot it was fitted to (needs ``id``, ``underlying``,
        ``snapshot_time``).
    settings : mapping
        The keyword arguments of :func:`volcal.calibrate` the fit ran with (JSON-safe);
        their hash is the calibration's identity together with snapshot and model.
    model : str, optional
        Model name (default ``result.model``).
    warm_start : model instance or dict, optional
        The ``start=`` the fit was given (a warm start), kept so an audit can repeat it.
    surface : bool
        Also compute the conventions and the surface grid of the fit.
    """
    from volcal.calibration.result import CalibrationResult, _params_dict

    if not isinstance(result, CalibrationResult):
        raise DataError(f"add_calibration needs a CalibrationResult, got {type(result).__name__}")
    snap = snapshot.row if isinstance(snapshot, SnapshotRecord) else dict(snapshot)
    name = str(model or result.model).lower()
    sett = dict(settings or {})
    sh = settings_hash(sett)
    cid = calibration_id(str(snap["id"]), name, sh)
    d = result.to_dict()
    warm = None if warm_start is None else _params_dict(warm_start)
    row: dict[str, Any] = {
        "id": cid,
        "snapshot_id": str(snap["id"]),
        "model": name,
        "underlying": str(snap["underlying"]),
        "snapshot_time": snap["snapshot_time"],
        "status": d["status"],
        "message": d["message"],
        "params": _dumps(d["params"]),
        "start": _dumps(d["start"]),
        "warm_start": None if warm is None else _dumps(warm),
        "stderr": None if d["stderr"] is None else _dumps(d["stderr"]),
        "warnings": _dumps(d["warnings"]),
        "rmse_vol": d["rmse_vol"],
        "inside_spread": d["inside_spread"],
        "n_used": int(d["n_used"]),
        "nfev": int(d["nfev"]),
        "elapsed_s": d["elapsed_s"],
        "jac_cond": d["jac_cond"],
        "extra": _dumps(d["extra"]),
        "settings": settings_json(sett),
        "settings_hash": sh,
        **_versions(),
    }
    slices = pd.DataFrame(
        [
            {
                "calibration_id": cid,
                "pos": i,
                "expiry": s.expiry,
                "t": float(s.t),
                "forward": float(s.forward),
                "n_used": int(s.n_used),
                "rmse_vol": float(s.rmse_vol),
                "inside_spread": float(s.inside_spread),
                "atm_vol": float(s.atm_vol),
                "rr25": float(s.rr25),
                "bf25": float(s.bf25),
                "status": s.status,
                "params": _dumps(s.params),
            }
            for i, s in enumerate(result.slices)
        ],
        columns=[
            "calibration_id",
            "pos",
            "expiry",
            "t",
            "forward",
            "n_used",
            "rmse_vol",
            "inside_spread",
            "atm_vol",
            "rr25",
            "bf25",
            "status",
            "params",
        ],
    )
    if surface:
        conv, grid, notes = _surface_tables(result, cid)
    else:
        conv, grid, notes = pd.DataFrame(), pd.DataFrame(), ()
    return CalibrationRecord(
        id=cid, row=row, slices=slices, conventions=conv, grid=grid, notes=notes
    )


def settings_json(settings: Mapping[str, Any]) -> str:
    """Canonical JSON of settings (the text their hash is taken of)."""
    try:
        return json.dumps(dict(settings), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"settings must be JSON-safe: {exc}") from None
