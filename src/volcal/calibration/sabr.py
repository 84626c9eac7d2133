"""Per-expiry SABR calibration (Hagan 2002 / Oblój 2008 implied vol, beta fixed).

For each expiry the free parameters (``alpha, rho, nu`` by default; ``beta`` fixed)
minimise :math:`\\sum_i w_i(\\sigma_{SABR}(k_i) - \\sigma^{mid}_i)^2` (plus the optional
regularization toward a previous fit's smile of the same expiry, as in
:func:`volcal.calibrate`). The smile formula is closed-form, so each slice is a small
Levenberg-Marquardt problem on logistic-transformed parameters; a cold start tries a
few (rho, nu) starting pairs around the ATM level and keeps the best.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.calibration.engine import Tracker, solve
from volcal.calibration.quotes import QuoteSet
from volcal.calibration.result import (
    CalibrationResult,
    expiry_label,
    fit_quality,
    slice_fits,
)
from volcal.calibration.transforms import ParamSpace
from volcal.errors import CalibrationWarning, ParameterError

__all__ = ["fit_sabr"]

_COLD_STARTS = ((0.0, 1.0), (-0.5, 2.0), (0.5, 2.0), (0.0, 5.0))


def fit_sabr(
    chain: Any,
    *,
    weights: Any = "spread",
    beta: float = 1.0,
    start: Any = None,
    fixed: Any = None,
    prior: Any = None,
    strength: float = 0.0,
    global_search: bool | str = "auto",
    max_nfev: int = 200,
    max_time: float = 20.0,
) -> CalibrationResult:
    """Fit one SABR smile per expiry.

    Parameters
    ----------
    chain : OptionChain or QuoteSet
    weights : str or ndarray
        As for :meth:`QuoteSet.weights`.
    beta : float
        Backbone exponent, held fixed (default 1: log-normal).
    start : SABRSmiles or SABR, optional
        Start per expiry (matched by expiry label) or one smile for all expiries.
    fixed : iterable of str or dict, optional
        Extra fixed parameters (``beta`` is fixed at ``beta``; pass ``beta=None`` to
        fit it too).
    prior : CalibrationResult, optional
        Previous SABR fit to regularize toward (with ``strength``).
    global_search : {"auto", True, False}
        Try several (rho, nu) starts per expiry ("auto": when no start is given).
    max_nfev : int
        Evaluation budget of each local solve (per expiry and start): the fit stops by
        this budget, so its result does not depend on the machine's speed.
    max_time : float
        Safety limit only (seconds for the whole surface): when it trips, the result
        has status ``"time_limit"`` instead of silently depending on the wall clock.

    Examples
    --------
    >>> from volcal.calibration.sabr import fit_sabr
    >>> fit = fit_sabr(quotes)          # doctest: +SKIP
    >>> fit.params.smiles[0].rho        # doctest: +SKIP
    """
    from volcal.calibration.quotes import as_quotes
    from volcal.models.sabr import SABR, SABRSmiles

    if isinstance(max_nfev, bool) or not isinstance(max_nfev, int) or max_nfev < 1:
        raise ParameterError(f"max_nfev must be an integer >= 1, got {max_nfev!r}")
    t0 = time.perf_counter()
    deadline = t0 + max_time
    q: QuoteSet = as_quotes(chain)
    w = q.weights(weights)
    sw = np.sqrt(w)
    labels = [expiry_label(e) for e in q.expiries]
    fixed_set: dict[str, float | None] = {}
    if fixed is not None:
        fixed_set.update(fixed.items() if isinstance(fixed, Mapping) else dict.fromkeys(fixed))
    if beta is not None:
        fixed_set["beta"] = float(beta)

    def start_for(i: int) -> SABR | None:
        src = start.params if isinstance(start, CalibrationResult) else start
        if isinstance(src, SABR):
            return src
        if isinstance(src, SABRSmiles) and labels[i] in src.expiries:
            return src.smiles[src.expiries.index(labels[i])]
        return None

    prior_smiles = prior.params if isinstance(prior, CalibrationResult) else prior
    smiles: list[SABR] = []
    starts: list[SABR] = []
    model_iv = np.empty(len(q))
    nfev = 0
    status, message = "ok", ""
    notes: list[str] = []
    for i in range(q.n_slices):
        m = q.slice_index == i
        k, t, iv, swi = q.k[m], float(q.t_slices[i]), q.iv_mid[m], sw[m]
        order = np.argsort(k)
        atm = float(np.interp(0.0, k[order], iv[order]))
        s0 = start_for(i)
        cold = s0 is None
        if s0 is None:
            s0 = SABR(alpha=max(atm, 1e-3), beta=1.0 if beta is None else beta, rho=0.0, nu=1.0)
        elif beta is not None:
            s0 = s0.replace(beta=beta)
        space = ParamSpace(SABR, s0.to_vector(), fixed=fixed_set or None)
        reg = None
        if (
            isinstance(prior_smiles, SABRSmiles)
            and strength > 0
            and labels[i] in prior_smiles.expiries
        ):
            px = prior_smiles.smiles[prior_smiles.expiries.index(labels[i])].to_vector()
            s_p = np.maximum(np.abs(px), 0.01 * (space.hi_full - space.lo_full))[space.free]
            reg = (np.sqrt(strength * float(np.sum(w[m]))) * 0.01 / s_p, px[space.free])

        def resid(y: FloatArray, k=k, t=t, iv=iv, swi=swi, space=space, reg=reg) -> FloatArray:
            x = space.to_x(y)
            r = swi * (SABR.from_vector(x).implied_vol(k, t) - iv)
            if reg is not None:
                r = np.concatenate([r, reg[0] * (x[space.free] - reg[1])])
            return r

        tracker = Tracker(resid, None, deadline)
        method = (
            "lm" if k.size + (0 if reg is None else space.free.size) >= space.free.size else "trf"
        )
        cands = [s0.to_vector()]
        if global_search is True or (global_search == "auto" and cold):
            for rho0, nu0 in _COLD_STARTS[1:]:
                x = s0.to_vector()
                x[2], x[3] = rho0, nu0
                cands.append(x)
        best = None
        for x in cands:
            out = solve(tracker, space.to_y(x), method=method, max_nfev=max_nfev)
            if best is None or out.cost <= best.cost:
                best = out
            if out.status == "time_limit":
                break
        assert best is not None
        nfev += tracker.nfev
        smile = SABR.from_vector(space.to_x(best.y))
        smiles.append(smile)
        starts.append(s0)
        model_iv[m] = smile.implied_vol(k, t)
        notes += [f"{labels[i]}: {b}" for b in space.at_bound(smile.to_vector())]
        if best.status != "ok" and status == "ok":
            status, message = best.status, f"{labels[i]}: {best.message}"
    params = SABRSmiles(
        expiries=tuple(labels),
        t=tuple(float(x) for x in q.t_slices),
        forwards=tuple(float(x) for x in q.forward_slices),
        smiles=tuple(smiles),
    )
    rmse, inside = fit_quality(q, model_iv)
    if not np.isfinite(rmse):
        status, message = "failed", "no finite SABR vol"
    slices = slice_fits(
        q,
        model_iv,
        params=[{n: float(getattr(sm, n)) for n in SABR.param_names} for sm in smiles],
        atm_vol=[float(sm.implied_vol(0.0, t)) for sm, t in zip(smiles, q.t_slices, strict=True)],
        status=["ok"] * len(smiles),
    )
    if status != "ok":
        msg = f"sabr calibration {status}: {message}"
        notes.insert(0, msg)
        warnings.warn(msg, CalibrationWarning, stacklevel=3)
    return CalibrationResult(
        model="sabr",
        params=params,
        start=SABRSmiles(params.expiries, params.t, params.forwards, tuple(starts)),
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
        extra={"beta": beta, "weights": weights if isinstance(weights, str) else "array"},
    )
