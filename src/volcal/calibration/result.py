"""``CalibrationResult``: the immutable outcome of every fit (smile, surface or model).

Whatever was fitted - per-expiry SVI or SABR, an SSVI surface, Heston, a jump model -
the user gets the same object: the parameters (a model instance), where the fit started,
the quotes used with their weights, market and model vols and residuals, fit quality
overall and per expiry, cost and status. Nothing here is recomputed on access except
cheap aggregates, and nothing can be changed after construction.

Fit quality is measured in implied volatility:

* ``rmse_vol``: root mean square of (model vol - market mid vol) over the quotes used,
  in vol points (1 vol point = 0.01 in vol), unweighted so fits with different weights
  compare;
* ``inside_spread``: share of the quotes used whose model vol lies within their
  bid-ask vol interval.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.calibration.quotes import QuoteSet, inside_bid_ask
from volcal.market.chain import expiry_label

if TYPE_CHECKING:  # pandas is imported by the two tables only (not on a fit's path)
    import pandas as pd

STATUSES = ("ok", "max_iter", "time_limit", "failed", "degraded")


class FrozenDict(Mapping[str, Any]):
    """A read-only mapping (what results hold instead of a ``dict``): no item can be set,
    deleted or replaced; ``dict(fd)`` or :meth:`copy` gives a mutable copy."""

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenDict is read-only")

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __eq__(self, other: object) -> bool:
        return dict(self._data) == (dict(other) if isinstance(other, Mapping) else other)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._data.items(), key=lambda kv: kv[0])))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (self._data,))

    def copy(self) -> dict[str, Any]:
        """A mutable deep copy (plain dicts and lists)."""
        return thaw(self)


_SCALARS = frozenset({str, int, float, bool, complex, bytes})


def freeze(obj: Any) -> Any:
    """A read-only deep copy: dicts -> :class:`FrozenDict`, lists -> tuples, arrays ->
    read-only copies; frozen dataclasses are kept (their arrays are frozen in place by
    their own constructors)."""
    tp = type(obj)
    if obj is None or tp in _SCALARS:
        return obj  # immutable already (the common case: skip the abc checks below)
    if tp is list or tp is tuple:
        # a sequence of scalars (bounds, names): the same tuple without a call per item
        if all(v is None or type(v) in _SCALARS for v in obj):
            return tuple(obj)
        return tuple(freeze(v) for v in obj)
    if tp is dict:
        return FrozenDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, FrozenDict):
        return obj
    if isinstance(obj, Mapping):
        return FrozenDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    if isinstance(obj, np.ndarray):
        if not obj.flags.writeable and obj.base is None:
            return obj
        arr = np.array(obj, copy=True)
        arr.setflags(write=False)
        return arr
    return obj


def thaw(obj: Any) -> Any:
    """A mutable, JSON-shaped deep copy of :func:`freeze`'s output (mappings -> dicts,
    tuples -> lists, arrays -> lists)."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return copy.deepcopy(obj)


def _frozen_quotes(quotes: QuoteSet) -> QuoteSet:
    """The quotes with every array a read-only copy (the caller's arrays untouched)."""
    changes = {}
    for name in _field_names(type(quotes)):
        v = getattr(quotes, name)
        if isinstance(v, np.ndarray):
            changes[name] = freeze(v)
    return dataclasses.replace(quotes, **changes)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The field names of a dataclass (looked up once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _num(x: Any) -> float | None:
    """JSON-safe float (None for NaN / inf / missing)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if hasattr(params, "to_dict"):
        d = params.to_dict()
        return {
            k: (_num(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in d.items()
        }
    if hasattr(params, "__dataclass_fields__"):
        return {k: _num(getattr(params, k)) for k in params.__dataclass_fields__}
    if isinstance(params, Mapping):
        return {
            k: (_num(v) if isinstance(v, (int, float, np.floating)) else v)
            for k, v in params.items()
        }
    return {"value": str(params)}


def _expiry_labels(expiries: Any) -> list[str]:
    """:func:`expiry_label` of every expiry: for naive UTC ``datetime64`` values (what
    quote sets hold) formatted as pandas' ``isoformat`` does (seconds, then 6 or 9
    fractional digits when there are any, ``+00:00``), else one by one."""
    e = np.asarray(expiries)
    if e.dtype.kind != "M" or e.size == 0:
        return [expiry_label(x) for x in e]
    ns = e.astype("datetime64[ns]").view(np.int64)
    if np.any(ns == np.iinfo(np.int64).min):  # NaT
        return [expiry_label(x) for x in e]
    sec = ns // 1_000_000_000
    frac = ns - sec * 1_000_000_000
    base = np.datetime_as_string(sec.astype("datetime64[s]"), unit="s")
    out = []
    for b, f in zip(base.tolist(), frac.tolist(), strict=True):
        if f == 0:
            out.append(f"{b}+00:00")
        elif f % 1000 == 0:
            out.append(f"{b}.{f // 1000:06d}+00:00")
        else:
            out.append(f"{b}.{f:09d}+00:00")
    return out


@dataclass(frozen=True)
class SliceFit:
    """Fit quality and conventions of one expiry.

    ``params`` holds the slice's own parameters for per-expiry models (SVI, SABR) and
    is empty for surface/stochastic models. ``atm_vol``, ``rr25``, ``bf25`` are the
    fitted smile's ATM-forward vol, 25-delta risk reversal and butterfly (vol units,
    NaN when not computed), at the delta convention ``delta_convention`` (see
    :mod:`volcal.calibration.delta_pillars`).
    """

    expiry: str
    t: float
    forward: float
    n_used: int
    rmse_vol: float
    inside_spread: float
    params: dict[str, Any] = field(default_factory=dict)
    atm_vol: float = float("nan")
    rr25: float = float("nan")
    bf25: float = float("nan")
    status: str = "ok"
    delta_convention: str = "forward"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(self.params))
        if self.delta_convention not in ("forward", "premium_adjusted"):
            raise ValueError(
                f"delta_convention must be forward or premium_adjusted, "
                f"got {self.delta_convention!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "expiry": self.expiry,
            "t": _num(self.t),
            "forward": _num(self.forward),
            "n_used": int(self.n_used),
            "rmse_vol": _num(self.rmse_vol),
            "inside_spread": _num(self.inside_spread),
            "params": thaw(_params_dict(self.params)),
            "atm_vol": _num(self.atm_vol),
            "rr25": _num(self.rr25),
            "bf25": _num(self.bf25),
            "delta_convention": self.delta_convention,
            "status": self.status,
        }


def fit_quality(quotes: QuoteSet, model_iv: FloatArray) -> tuple[float, float]:
    """(rmse in vol points, share inside bid-ask) of model vols against the quotes."""
    return vol_fit_quality(model_iv, quotes.iv_mid, quotes.iv_bid, quotes.iv_ask)


def vol_fit_quality(
    model_iv: FloatArray, iv_mid: FloatArray, iv_bid: FloatArray, iv_ask: FloatArray
) -> tuple[float, float]:
    """:func:`fit_quality` from the quotes' mid, bid and ask vols alone (no QuoteSet)."""
    iv = np.asarray(model_iv, dtype=np.float64)
    err = iv - iv_mid
    finite = np.isfinite(err)
    rmse = float(100.0 * np.sqrt(np.mean(err[finite] ** 2))) if finite.any() else float("nan")
    inside = float(np.mean(inside_bid_ask(iv, iv_bid, iv_ask))) if iv.size else float("nan")
    return rmse, inside


def slice_fits(
    quotes: QuoteSet,
    model_iv: FloatArray,
    *,
    params: Sequence[dict[str, Any]] | None = None,
    atm_vol: ArrayLike | None = None,
    rr25: ArrayLike | None = None,
    bf25: ArrayLike | None = None,
    status: Sequence[str] | None = None,
) -> tuple[SliceFit, ...]:
    """One :class:`SliceFit` per expiry of ``quotes``: its fit quality (quotes used, RMSE
    in vol points, share inside bid-ask) measured from ``model_iv``, with the slice's
    own parameters, conventions and status where the fitter has them. A slice without
    a given status is ``"ok"`` when its RMSE is finite, else ``"failed"``."""
    iv = np.asarray(model_iv, dtype=np.float64)
    nan = np.full(quotes.n_slices, np.nan)
    atm = nan if atm_vol is None else np.asarray(atm_vol, dtype=np.float64)
    rr = nan if rr25 is None else np.asarray(rr25, dtype=np.float64)
    bf = nan if bf25 is None else np.asarray(bf25, dtype=np.float64)
    # per slice what fit_quality(quotes.subset(m), iv[m]) gives, without building the
    # subsets: the same values in the same order
    err = iv - quotes.iv_mid
    inside_all = quotes.inside_spread(iv)
    labels = _expiry_labels(quotes.expiries)
    # the quotes of every slice in their order, contiguous (a stable sort by slice):
    # each slice's values are those of the boolean mask, summed in the same order
    order = np.argsort(quotes.slice_index, kind="stable")
    err_s = err[order]
    fin_s = np.isfinite(err_s)
    sq_s = err_s * err_s  # the squares of every slice's errors (elementwise, as per slice)
    ins_s = inside_all[order]
    bounds = np.searchsorted(quotes.slice_index[order], np.arange(quotes.n_slices + 1))
    # per-slice counts (exact integers) and the scalars as Python floats, in one call each
    fin_c = np.concatenate([[0], np.cumsum(fin_s)])[bounds].tolist()
    ins_c = np.concatenate([[0], np.cumsum(ins_s)])[bounds].tolist()
    b = bounds.tolist()
    t_l = quotes.t_slices.tolist()
    f_l = quotes.forward_slices.tolist()
    atm_l, rr_l, bf_l = atm.tolist(), rr.tolist(), bf.tolist()
    out = []
    for i in range(quotes.n_slices):
        lo, hi = b[i], b[i + 1]
        n_fin = fin_c[i + 1] - fin_c[i]
        if n_fin == 0:
            rmse = float("nan")
        else:
            sq = sq_s[lo:hi] if n_fin == hi - lo else sq_s[lo:hi][fin_s[lo:hi]]
            # np.mean's own sum and division, without its dispatch
            rmse = 100.0 * math.sqrt(float(np.add.reduce(sq)) / n_fin)
        inside = float((ins_c[i + 1] - ins_c[i]) / (hi - lo)) if hi > lo else float("nan")
        st = status[i] if status is not None else ("ok" if math.isfinite(rmse) else "failed")
        if params is None:
            # no parameters (surface models): the instance SliceFit(...) builds, field by
            # field, without the frozen dataclass's __setattr__ per field and the checks
            # of arguments that are the defaults here
            sf = object.__new__(SliceFit)
            sf.__dict__.update(
                expiry=labels[i],
                t=t_l[i],
                forward=f_l[i],
                n_used=hi - lo,
                rmse_vol=rmse,
                inside_spread=inside,
                params=FrozenDict({}),
                atm_vol=atm_l[i],
                rr25=rr_l[i],
                bf25=bf_l[i],
                status=st,
                delta_convention="forward",
            )
            out.append(sf)
            continue
        out.append(
            SliceFit(
                expiry=labels[i],
                t=t_l[i],
                forward=f_l[i],
                n_used=hi - lo,
                rmse_vol=rmse,
                inside_spread=inside,
                params=dict(params[i]),
                atm_vol=atm_l[i],
                rr25=rr_l[i],
                bf25=bf_l[i],
                status=st,
            )
        )
    return tuple(out)


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """Outcome of a calibration (immutable).

    Attributes
    ----------
    model : str
        Model name (``"svi"``, ``"heston"``, ...).
    params : object
        Fitted parameters as a model instance (for per-expiry smiles, an object holding
        one parameter set per expiry).
    start : object or None
        Parameters the local solver started from.
    quotes : QuoteSet
        The quotes used (with bid/ask/mid vols).
    model_iv : ndarray
        Model implied vol per quote used.
    weights : ndarray
        Residual weight per quote (mean 1).
    residuals : ndarray
        Model minus market mid vol per quote (vol units).
    slices : tuple of SliceFit
        Per-expiry quality (and parameters for per-expiry models).
    rmse_vol, inside_spread : float
        Overall fit quality (see module docs).
    nfev : int
        Objective evaluations.
    elapsed_s : float
        Wall time of the calibration.
    status : str
        One of ``"ok"``, ``"max_iter"``, ``"time_limit"``, ``"failed"``, ``"degraded"``.
    message : str
        Solver message or reason of the status.
    warnings : tuple of str
        Caveats (bound hit, Feller violated, ill-conditioned Jacobian, ...).
    stderr : mapping or None
        Standard errors of the parameters from the Jacobian, when available.
    covariance : ndarray or None
        Covariance matrix of the parameters (order of ``covariance_names``) from the
        Jacobian, when the fitter provides it; see also :meth:`conf_int`.
    covariance_names : tuple of str
        Parameter order of ``covariance``.
    jac_cond : float or None
        Condition number of the weighted Jacobian at the solution.
    extra : mapping
        Model-specific diagnostics (JSON-safe values).

    Everything is read-only all the way down: arrays (the result's and its quotes')
    cannot be written, mappings cannot be changed, and :meth:`to_dict` returns copies.
    """

    model: str
    params: Any
    start: Any
    quotes: QuoteSet
    model_iv: FloatArray
    weights: FloatArray
    residuals: FloatArray
    slices: tuple[SliceFit, ...]
    rmse_vol: float
    inside_spread: float
    nfev: int
    elapsed_s: float
    status: str = "ok"
    message: str = ""
    warnings: tuple[str, ...] = ()
    stderr: Mapping[str, float] | None = None
    jac_cond: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    covariance: FloatArray | None = field(default=None, repr=False)
    covariance_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for name in ("model_iv", "weights", "residuals"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "quotes", _frozen_quotes(self.quotes))
        object.__setattr__(self, "slices", tuple(self.slices))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "extra", freeze(self.extra))
        if self.stderr is not None:
            object.__setattr__(self, "stderr", freeze(self.stderr))
        if self.covariance is not None:
            cov = np.array(self.covariance, dtype=np.float64, copy=True)
            if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
                raise ValueError("covariance must be a square matrix")
            if len(self.covariance_names) != cov.shape[0]:
                raise ValueError("covariance_names must name every row of covariance")
            cov.setflags(write=False)
            object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "covariance_names", tuple(self.covariance_names))

    def __repr__(self) -> str:
        return (
            f"CalibrationResult(model={self.model!r}, status={self.status!r}, "
            f"rmse_vol={self.rmse_vol:.4g}, inside_spread={self.inside_spread:.3g}, "
            f"n_used={self.n_used}, n_slices={len(self.slices)}, nfev={self.nfev}, "
            f"elapsed_s={self.elapsed_s:.3g})"
        )

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Normal-approximation confidence intervals of the parameters,
        ``value -+ z * stderr`` (z the two-sided quantile of ``level``); empty when the
        fit has no standard errors."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        if not self.stderr:
            return {}
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + 0.5 * level)
        p = _params_dict(self.params)
        out = {}
        for name, se in self.stderr.items():
            v = p.get(name)
            if isinstance(v, (int, float)) and se is not None and math.isfinite(float(se)):
                out[name] = (float(v) - z * float(se), float(v) + z * float(se))
        return out

    def correlation(self) -> FloatArray | None:
        """Correlation matrix of the parameters (order of ``covariance_names``), or None."""
        if self.covariance is None:
            return None
        sd = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.covariance / np.outer(sd, sd)
        corr.setflags(write=False)
        return np.asarray(corr)

    @property
    def n_used(self) -> int:
        return len(self.quotes)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def surface(self) -> Any:
        """The fitted surface as a :class:`volcal.surface.VolSurface` (iv, prices, greeks,
        local vol, density) for every model: smiles and SSVI/eSSVI/SVI surfaces with the
        time interpolation of :mod:`volcal.surface.volsurface`, Fourier models as their
        own prices at every maturity (the numbers of ``model_iv``)."""
        from volcal.surface.volsurface import VolSurface

        return VolSurface.from_result(self)

    def slice_table(self) -> pd.DataFrame:
        """Per-expiry table (one row per expiry)."""
        import pandas as pd

        rows = []
        for s in self.slices:
            d = s.to_dict()
            params = d.pop("params")
            rows.append({**d, **{f"p_{k}": v for k, v in params.items()}})
        return pd.DataFrame(rows)

    def quote_table(self) -> pd.DataFrame:
        """Per-quote table: identification, market vols, model vol, residual, weight."""
        import pandas as pd

        q = self.quotes
        return pd.DataFrame(
            {
                "instrument": q.instrument,
                "expiry": pd.to_datetime(q.expiry).tz_localize("UTC"),
                "t": q.t,
                "strike": q.strike,
                "k": q.k,
                "is_call": q.is_call,
                "iv_bid": q.iv_bid,
                "iv_ask": q.iv_ask,
                "iv_mid": q.iv_mid,
                "model_iv": self.model_iv,
                "residual": self.residuals,
                "weight": self.weights,
                "inside": q.inside_spread(self.model_iv),
            }
        )

    def summary(self) -> str:
        """Human-readable report: status, quality, parameters, per-expiry table."""
        lines = [
            f"{self.model} calibration: {self.status}"
            + (f" ({self.message})" if self.message else ""),
            f"  quotes used: {self.n_used} in {len(self.slices)} expiries; "
            f"RMSE {self.rmse_vol:.3f} vol pts; inside bid-ask {100 * self.inside_spread:.1f}%; "
            f"nfev {self.nfev}; {1000 * self.elapsed_s:.1f} ms",
        ]
        p = _params_dict(self.params)
        if p and not any(isinstance(v, (dict, list)) for v in p.values()):
            se = self.stderr or {}
            lines.append(
                "  params: "
                + ", ".join(
                    f"{k}={v:.6g}" + (f" (±{se[k]:.2g})" if se.get(k) is not None else "")
                    if isinstance(v, float)
                    else f"{k}={v}"
                    for k, v in p.items()
                )
            )
        lines.append(
            f"  {'expiry':<26}{'t':>8}{'n':>5}{'rmse':>8}{'inside':>8}{'atm':>8}{'rr25':>8}{'bf25':>8}"
        )
        for s in self.slices:
            lines.append(
                f"  {s.expiry:<26}{s.t:>8.4f}{s.n_used:>5d}{s.rmse_vol:>8.3f}"
                f"{100 * s.inside_spread:>7.1f}%{100 * s.atm_vol:>8.2f}"
                f"{100 * s.rr25:>8.2f}{100 * s.bf25:>8.2f}"
            )
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def to_dict(self, *, quotes: bool = True) -> dict[str, Any]:
        """JSON-safe dictionary (the CLI's ``--json`` output); a fresh copy each call.

        With ``quotes`` (default) it holds, per quote used, the instrument, maturity,
        log-moneyness, market bid/ask/mid vols, model vol, residual and weight.
        """
        q = self.quotes
        ci = self.conf_int()
        out = {
            "model": self.model,
            "status": self.status,
            "message": self.message,
            "params": thaw(_params_dict(self.params)),
            "start": thaw(_params_dict(self.start)),
            "rmse_vol": _num(self.rmse_vol),
            "inside_spread": _num(self.inside_spread),
            "n_used": self.n_used,
            "nfev": int(self.nfev),
            "elapsed_s": _num(self.elapsed_s),
            "warnings": list(self.warnings),
            "stderr": None if self.stderr is None else {k: _num(v) for k, v in self.stderr.items()},
            "conf_int_95": {k: [_num(lo), _num(hi)] for k, (lo, hi) in ci.items()} or None,
            "covariance": None
            if self.covariance is None
            else {
                "names": list(self.covariance_names),
                "matrix": [[_num(x) for x in row] for row in self.covariance],
            },
            "jac_cond": _num(self.jac_cond),
            "slices": [s.to_dict() for s in self.slices],
            "extra": thaw(self.extra),
        }
        if quotes:
            out["quotes"] = {
                "instrument": [str(x) for x in q.instrument],
                "t": [_num(x) for x in q.t],
                "k": [_num(x) for x in q.k],
                "strike": [_num(x) for x in q.strike],
                "is_call": [bool(x) for x in q.is_call],
                "iv_bid": [_num(x) for x in q.iv_bid],
                "iv_ask": [_num(x) for x in q.iv_ask],
                "iv_mid": [_num(x) for x in q.iv_mid],
                "model_iv": [_num(x) for x in self.model_iv],
                "residual": [_num(x) for x in self.residuals],
                "weight": [_num(x) for x in self.weights],
            }
        return out


__all__ = [
    "STATUSES",
    "CalibrationResult",
    "FrozenDict",
    "SliceFit",
    "expiry_label",
    "fit_quality",
    "freeze",
    "slice_fits",
    "thaw",
    "vol_fit_quality",
]
