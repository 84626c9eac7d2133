"""Per-expiry raw SVI fits of a chain: quotes in, a :class:`CalibrationResult` out.

Each expiry's smile is fitted by :func:`volcal.models.svi_fit.fit_svi_slice` (the
quasi-explicit method, butterfly-free; the method and its objective are documented
there); this module prepares the quotes and weights per expiry, honours ``start``,
``prior`` and ``strength`` slice by slice and assembles the result.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from volcal.calibration.quotes import QuoteSet
from volcal.calibration.result import (
    CalibrationResult,
    fit_quality,
    slice_fits,
)
from volcal.errors import CalibrationWarning, ParameterError
from volcal.market.chain import expiry_label
from volcal.models.svi import SVI, SVISmiles
from volcal.models.svi_fit import (
    SVISliceInfo,
    _admissible,
    _inner,
    _inner_numpy,
    fit_svi_slice,
)

# the slice fitter lives in models/ (array-only); re-exported here for existing callers
__all__ = ["SVISliceInfo", "_admissible", "_inner", "_inner_numpy", "fit_svi", "fit_svi_slice"]


# --------------------------------------------------------------------------- whole chain
def fit_svi(
    chain: Any,
    *,
    weights: Any = "spread",
    delta: str = "forward",
    start: Any = None,
    prior: Any = None,
    strength: float = 0.0,
    **slice_options: Any,
) -> CalibrationResult:
    """Fit one arbitrage-free raw SVI per expiry of a chain (or a prepared ``QuoteSet``).

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        A cleaned chain (``volcal.clean``) or quotes already prepared; only
        out-of-the-money quotes are fitted.
    weights : str or ndarray
        Vol-residual weights: ``"spread"`` (default: inverse bid-ask width in vol),
        ``"vega"``, ``"spread_vega"`` (product of both, normalised), ``"open_interest"``,
        ``"uniform"`` or one weight per quote.
    delta : {"forward", "premium_adjusted"}
        Delta convention of the 25-delta risk reversal and butterfly
        (:mod:`volcal.calibration.smile_stats`).
    start : CalibrationResult or SVISmiles, optional
        Warm start: each expiry found in it (by ISO label) is searched around its smile.
    prior : CalibrationResult or SVISmiles, optional
        Previous fit to regularize toward with ``strength`` (expiries matched by label;
        see :func:`fit_svi_slice`).
    strength : float
        Regularization strength :math:`\\lambda` (0: none).
    **slice_options
        Passed to :func:`fit_svi_slice` (``n_m``, ``n_sigma``, ``n_levels``, ``n_keep``).

    Returns
    -------
    CalibrationResult
        ``model="svi"``, ``params`` an :class:`~volcal.models.SVISmiles`; each slice has
        its parameters, ATM vol, RR25, BF25, RMSE (vol points) and inside-spread share.

    Examples
    --------
    >>> import volcal
    >>> fit = volcal.calibrate(volcal.clean(chain), "svi")   # doctest: +SKIP
    >>> fit.params.smiles[0].is_arbitrage_free()             # doctest: +SKIP
    True
    """
    from volcal.calibration.quotes import as_quotes
    from volcal.calibration.smile_stats import smile_stats

    t0 = time.perf_counter()
    q: QuoteSet = as_quotes(chain)
    if isinstance(weights, str) and weights == "spread_vega":
        w = q.weights("spread") * q.weights("vega")
        w = w * (w.size / np.sum(w))
    else:
        w = q.weights(weights)
    labels = [expiry_label(e) for e in q.expiries]
    warm = _smiles_of(start, "start")
    prev = _smiles_of(prior, "prior")
    if strength < 0 or not np.isfinite(strength):
        raise ParameterError(f"fit_svi: strength must be finite and >= 0, got {strength}")
    smiles: list[SVI] = []
    model_iv = np.empty(len(q))
    nfev = 0
    notes: list[str] = []
    status, message = "ok", ""
    stats = []
    slice_status: list[str] = []
    for i in range(q.n_slices):
        sel = q.slice_index == i
        t = float(q.t_slices[i])
        fitted = fit_svi_slice(
            q.k[sel],
            q.iv_mid[sel],
            t,
            w[sel],
            full_output=True,
            start=_match(warm, labels[i]),
            prior=_match(prev, labels[i]),
            strength=strength,
            **slice_options,
        )
        assert isinstance(fitted, tuple)
        svi, info = fitted
        assert isinstance(info, SVISliceInfo)
        nfev += info.n_candidates
        slice_status.append(info.status)
        if info.status != "ok":
            notes.append(f"{labels[i]}: {info.message}")
            if status == "ok":
                status, message = "degraded", f"{labels[i]}: {info.message}"
        smiles.append(svi)
        model_iv[sel] = svi.implied_vol(q.k[sel], t)
        stats.append(smile_stats(svi, t, delta=delta))
    params = SVISmiles(
        expiries=tuple(labels),
        t=tuple(float(x) for x in q.t_slices),
        forwards=tuple(float(x) for x in q.forward_slices),
        smiles=tuple(smiles),
    )
    rmse, inside = fit_quality(q, model_iv)
    slices = slice_fits(
        q,
        model_iv,
        params=[{n: float(getattr(sm, n)) for n in SVI.param_names} for sm in smiles],
        atm_vol=[st.atm_vol for st in stats],
        rr25=[st.rr25 for st in stats],
        bf25=[st.bf25 for st in stats],
        status=slice_status,
    )
    if status != "ok":
        warnings.warn(f"svi calibration {status}: {message}", CalibrationWarning, stacklevel=3)
    return CalibrationResult(
        model="svi",
        params=params,
        start=warm,
        quotes=q,
        model_iv=model_iv,
        weights=w,
        residuals=model_iv - q.iv_mid,
        slices=slices,
        rmse_vol=rmse,
        inside_spread=inside,
        nfev=nfev,
        elapsed_s=time.perf_counter() - t0,
        status=status,
        message=message,
        warnings=tuple(notes),
        extra={
            "weights": weights if isinstance(weights, str) else "array",
            "delta_convention": delta,
            "objective": "total variance, weights omega / (2 iv t)^2",
            "warm_start": warm is not None,
            "strength": float(strength) if prev is not None else 0.0,
        },
    )


def _smiles_of(value: Any, what: str) -> SVISmiles | None:
    if value is None:
        return None
    if isinstance(value, CalibrationResult):
        value = value.params
    if isinstance(value, SVISmiles):
        return value
    raise ParameterError(
        f"svi: {what} must be an svi (or svi_surface) CalibrationResult or an SVISmiles, "
        f"got {type(value).__name__}"
    )


def _match(smiles: SVISmiles | None, label: str) -> SVI | None:
    if smiles is None or label not in smiles.expiries:
        return None
    return smiles.smiles[smiles.expiries.index(label)]
