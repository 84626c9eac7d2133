"""``calibrate``: fit a smile or a stochastic model to a chain's cleaned quotes.

Objective
---------
With weights :math:`w_i` (mean 1) the model minimises

.. math::

    \\sum_i w_i\\,\\big(\\sigma^{model}_i - \\sigma^{mid}_i\\big)^2
    + \\lambda\\, n\\, (0.01)^2 \\sum_p \\Big(\\frac{x_p - x^{prior}_p}{s_p}\\Big)^2

in implied vol (``objective="iv"``), or the same with price errors scaled by a median
vega (``objective="price"``). The second term (``strength`` :math:`\\lambda`, only with
a ``prior``) prices a 100% relative change of one parameter like one extra vol point of
error on every quote; :math:`s_p = \\max(|x^{prior}_p|, 1\\%` of the parameter's box).

Implied vols inside the optimizer
---------------------------------
Each evaluation prices the whole surface once with the library's Fourier engine
(:class:`volcal.pricing.COSPricer`: the compiled per-expiry kernels behind
:func:`volcal.price`), planning ranges and N for the evaluated model itself, so there
is no separate calibration grid to verify or re-plan; the objective uses error bounds
of 1e-10 / 1e-11 per unit forward instead of the library's 1e-14 / 1e-15 (at most
1.4e-10 in vol on real chains, half the terms; deep-wing quotes on Lewis' contour to
1e-9 relative instead of 1e-11), and the reported ``model_iv`` is
exactly ``volcal.model_iv(fit.params, F, K, T)``. By default (``iv_mode="exact"``) the prices are inverted to Black vols
(:func:`volcal.black.implied_vol`, about as costly as one pricing) and the Jacobian is
the price Jacobian divided by the model vega, :math:`\\partial\\sigma/\\partial\\theta =
(\\partial P/\\partial\\theta)/\\mathcal V(\\sigma^{model})` - the exact objective with its
exact gradient (a model price outside the Black bounds falls back to the vega-scaled
error below). The alternative ``iv_mode="vega"`` converts price errors with a vega:
:math:`\\sigma^{model} - \\sigma^{mid} \\approx (P - P^{mid})/\\mathcal V_i`. The first
solve uses the market Black vega; then the exact model vols are computed
(:func:`volcal.black.implied_vol`) and :math:`\\mathcal V_i` is replaced by the secant
slope :math:`(P - P^{mid})/(\\sigma^{model} - \\sigma^{mid})`, which makes the linearised
residual exact at the current point, and a short warm solve follows. So the optimum is
the optimum of the exact implied-vol objective (to the second order of the last
step), at the cost of a few extra evaluations instead of one implied-vol inversion per
evaluation. ``benchmarks/bench_calibration.py`` measures both.

Stages
------
1. Start: ``start`` (instance or dict), a model instance passed as ``model``, the
   ``prior``'s parameters, or a data-driven guess (ATM vol of the first and last
   expiry for ``v0``/``theta``, ...).
2. Local stage first (below) from that start. Only when a cold start's local fit is
   poor (weighted RMSE above 10 vol points, or failed) - or with
   ``global_search=True`` - a global stage follows: a deterministic low-discrepancy
   design (:func:`~volcal.calibration.engine.low_discrepancy`, no scipy.stats) over a
   plausible box, scored with one pricing per point (no Jacobian); the best three
   distinct points and the local fit are refined briefly
   (:func:`~volcal.calibration.engine.global_stage`), then the winner is solved to
   convergence. On real chains the local fit from the data guess was never beaten by
   the former always-on 64-point stage, which cost 70-80 % of a fit.
3. Local stage: Levenberg-Marquardt (MINPACK through
   :func:`scipy.optimize.least_squares`) on the logistic-transformed parameters with the
   Jacobian from the char-function gradient (analytic for Heston and Bates; their
   compiled kernel returns prices and Jacobian for about twice the cost of prices, so
   both are taken at every trial point and an accepted step needs no second pass).
   Stopping rule: a cold start runs to a relative cost decrease of 1e-10 per step
   (noise-free recovery to 1e-6 needs it); a warm start stops at 1e-6 (``_WARM_FTOL``).
   On real data LM converges linearly there (each step removes ~80-90% of the remaining
   cost gap: Gauss-Newton with vol residuals of several points), so the looser rule
   saves 3-4 Jacobians while the weighted objective stays within 1e-5 of the converged
   one (tests/test_calibration_warm.py). A warm Heston start is solved by
   :func:`~volcal.calibration.engine.secant_lm` instead of MINPACK: the same
   Levenberg-Marquardt trust region on the Gauss-Newton model augmented by a secant
   estimate of the residual curvature (NL2SOL's model), superlinear where Gauss-Newton
   is linear - 5 instead of 7 Jacobians per warm refit along the 2026-01-23/24 BTC
   snapshots (median), 6 instead of 10 / 8 on 20 BTC/ETH snapshot pairs (``start=`` /
   ``prior=``), the same minimum to 1e-6 of the cost - and stopping without a last
   confirming evaluation when the model predicts less than ``ftol`` and predicted the
   previous step well. A noise-free fit stops once the residual RMS is below the
   objective's pricing accuracy (1e-10), or - in Gauss-Newton's quadratic regime, the
   model having predicted the last decrease to 10 % - takes the final step to below it
   without evaluating it. The first steps of a warm secant solve (while the cost falls
   by more than 1 % per step and the residual RMS is above 0.01 vol points) price with
   coarse error bounds (1e-8 / 1e-9 per unit forward: about 35 % fewer terms); every
   later point, and every point the solver stops at, with the objective's.
4. Secant-vega refinement (``iv_mode="vega"``), result. Standard errors come from the
   solver's last Jacobian when it was taken at the solution (``stderr="auto"``; True
   forces one more Jacobian), 25-delta pillars only with ``pillars=True``.

Failure handling: the solver stops by its tolerances and an evaluation budget
(``max_nfev``), never by the clock, so identical inputs give bit-identical
parameters; ``max_time`` is a safety limit only (checked inside every evaluation,
status ``"time_limit"``). Whatever stops the solver, the best parameters seen are returned with a status
(``"ok"``, ``"max_iter"``, ``"time_limit"``, ``"failed"``, ``"degraded"``). Parameters
are always a valid model - never NaN. A status other than ``"ok"`` also raises a
:class:`~volcal.errors.CalibrationWarning`; caveats of a converged fit (a parameter at
its bound, Feller violated, ill-conditioned Jacobian) are recorded in
``result.warnings`` only, because on crypto data they are the rule rather than the
exception.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.calibration.engine import OBJ_PHI_TOL, OBJ_TAIL_TOL, Tracker, global_stage, solve
from volcal.calibration.objective import FourierObjective
from volcal.calibration.quotes import (
    QuoteSet,
    as_quotes,
)
from volcal.calibration.quotes import atm_vols as _atm_vols
from volcal.calibration.result import (
    CalibrationResult,
    fit_quality,
    slice_fits,
)
from volcal.calibration.transforms import ParamSpace
from volcal.errors import CalibrationWarning, DataError, MethodError, ParameterError
from volcal.pricing.cos import COSPricer

__all__ = ["FOURIER_MODELS", "MODEL_NAMES", "as_quotes", "calibrate", "model_class"]

_WARM_FTOL = 1e-6  # relative cost decrease that ends a warm-start local solve
#: models whose warm-start local solve runs on the secant-augmented Gauss-Newton model
#: (engine.secant_lm: superlinear where Gauss-Newton converges linearly, i.e. on real
#: smiles with vol residuals of several points; 5 instead of 7 Jacobians per warm BTC
#: fit, median). Bates keeps MINPACK: from warm starts with a jump parameter saturated
#: at its box bound MINPACK's longer steps left the bound where the secant model
#: stopped (one real ETH pair in a sweep of 20)
_SECANT_MODELS = frozenset({"heston"})
_OBJ_PHI_TOL = OBJ_PHI_TOL  # COS error bounds of the objective (see _calibrate_fourier)
_OBJ_TAIL_TOL = OBJ_TAIL_TOL
#: coarse error bounds of the first steps of a warm secant solve (engine.secant_lm,
#: while the cost still falls by more than 1 % per step): 35 % fewer terms than the
#: objective's on real BTC chains, vol errors of at most a few 1e-7, cost errors of
#: about 1e-8 relatively - nothing next to those steps' decreases
_COARSE_PHI_TOL = 1e-8
_COARSE_TAIL_TOL = 1e-9
_COARSE_WING_RTOL = 1e-7
_OBJ_WING_RTOL = 1e-9  # relative tolerance of deep-wing quotes on Lewis' contour (the
# library's is 1e-11): a price error of 1e-9 P moves the vol by 1e-9 P / vega, below
# 1e-10 for the deep out-of-the-money quotes it applies to

FOURIER_MODELS = ("heston", "bates", "merton", "kou", "vg", "svcj", "black")
MODEL_NAMES = (
    "svi",
    "svi_surface",
    "sabr",
    "ssvi",
    "essvi",
    *FOURIER_MODELS,
    "heston_td",
    "bates_td",
)


def model_class(name: str) -> Any:
    """Model class of a Fourier model name (``"heston"`` -> :class:`volcal.models.Heston`),
    from the registry on the classes (:func:`volcal.models.fourier_models`)."""
    from volcal.models import fourier_models

    try:
        return fourier_models()[name]
    except KeyError:
        raise ParameterError(
            f"unknown model {name!r}: use one of {', '.join(MODEL_NAMES)}"
        ) from None


def _name_of(cls: Any) -> str:
    if cls.__name__ in ("HestonTD", "BatesTD"):
        return "heston_td" if cls.__name__ == "HestonTD" else "bates_td"
    for n in FOURIER_MODELS:
        if model_class(n) is cls:
            return n
    if cls.__name__ == "SABR":
        return "sabr"
    raise ParameterError(f"cannot calibrate a {cls.__name__} instance")


def _guess(name: str, q: QuoteSet) -> dict[str, float]:
    """Data-driven starting point: the class's ``data_guess`` from the ATM vols."""
    atm = _atm_vols(q)
    return dict(model_class(name).data_guess(float(atm[0]), float(atm[-1]), float(np.median(atm))))


def _to_instance(cls: Any, value: Any, fallback: dict[str, float]) -> Any:
    if value is None:
        return cls(**fallback)
    if isinstance(value, CalibrationResult):
        value = value.params
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**{**fallback, **{k: v for k, v in value.items() if k != "model"}})
    raise ParameterError(f"start must be a {cls.__name__} instance or a dict, got {value!r}")


def _clip_into_box(space: ParamSpace, x: FloatArray) -> FloatArray:
    """Move a start strictly inside the box so the logistic transform is invertible."""
    lo, hi = space.lo_full, space.hi_full
    eps = 1e-6 * (hi - lo)
    return np.clip(x, lo + eps, hi - eps)


def calibrate(
    chain: Any,
    model: Any,
    *,
    start: Any = None,
    fixed: Any = None,
    weights: Any = "spread",
    objective: str = "iv",
    prior: Any = None,
    strength: float = 0.0,
    global_search: bool | str = "auto",
    seed: int = 0,
    feller: bool = False,
    max_time: float = 20.0,
    n_terms: int | None = None,
    method: str = "lm",
    refine: bool = True,
    iv_mode: str = "exact",
    beta: float = 1.0,
    phi: str = "power",
    delta: str | None = None,
    max_nfev: int | None = None,
    bounds: Mapping[str, Any] | None = None,
    pillars: bool = False,
    stderr: bool | str = "auto",
) -> CalibrationResult:
    """Calibrate a model to the cleaned quotes of a chain.

    Parameters
    ----------
    chain : OptionChain or QuoteSet
        A cleaned chain (``volcal.clean(chain)``) or quotes already prepared.
    model : str or model instance
        ``"svi"``, ``"sabr"``, ``"ssvi"``, ``"essvi"``, ``"heston"``, ``"bates"``,
        ``"merton"``, ``"kou"``, ``"vg"``, ``"svcj"`` (or ``"black"``); an instance is
        the start.
    start : model instance or dict, optional
        Starting parameters (a warm start: the global stage is skipped under "auto").
    fixed : iterable of str or dict, optional
        Parameters held fixed (at ``start``'s value, or the dict's).
    weights : {"spread", "vega", "open_interest", "uniform"} or ndarray
        Residual weights (see :meth:`QuoteSet.weights`).
    objective : {"iv", "price"}
        Residuals in implied vol (default) or in price (scaled by a median vega).
    prior : CalibrationResult or model instance, optional
        Previous fit to regularize toward (and to start from when ``start`` is None).
    strength : float
        Regularization strength :math:`\\lambda` (0: none); see the module docs.
    global_search : {"auto", True, False}
        Global stage (Fourier models): ``"auto"`` runs it only when the local fit from a
        cold start is poor (weighted RMSE above 10 vol points, or failed); ``True``
        always (before the local solve); ``False`` never.
    seed : int
        Offset into the deterministic low-discrepancy design of the global stage.
    feller : bool
        Enforce :math:`2\\kappa\\theta \\ge \\xi^2` (Heston family).
    max_time : float
        Safety limit in seconds (default 20, far above any real chain's fit); on expiry
        the best parameters found are returned with status ``"time_limit"``. Fits stop
        by tolerances and ``max_nfev``, never by the clock, so identical inputs give
        bit-identical parameters.
    n_terms : int, optional
        Fixed number of COS terms per expiry. By default (None) every expiry gets the N
        its error bound needs, planned for every evaluated model; a fixed N that cannot
        meet the bound raises :class:`~volcal.errors.MethodError`.
    method : {"lm", "trf"}
        Local least-squares method.
    refine : bool
        With ``iv_mode="vega"``: secant-vega refinement to the exact implied-vol
        objective.
    iv_mode : {"exact", "vega"}
        How model prices become vols inside the optimizer (``objective="iv"``):
        ``"exact"`` inverts every evaluation (:func:`volcal.black.implied_vol`, Jacobian
        divided by the model vega); ``"vega"`` divides price errors by the market vega
        (then secant refinement). See the module docs.
    beta : float
        SABR beta (fixed; 1 = log-normal backbone).
    phi : {"power", "heston"}
        SSVI :math:`\\varphi` family: power law or Heston-like
        (:func:`volcal.calibration.ssvi.fit_ssvi`).
    delta : {"forward", "premium_adjusted"}, optional
        Delta convention of the 25-delta pillars of smile fits (SVI, SVI surface, SSVI,
        eSSVI; default ``"forward"``).
    max_nfev : int, optional
        Evaluation budget: of each local solve for the Fourier models (default 300), of
        the SSVI least squares (default 2000).

    bounds : dict of str to (lo, hi), optional
        Fourier models: search box of some parameters instead of the model's
        ``bounds()`` (Heston family: ``xi`` up to 40, ``kappa`` up to 200). A box that
        excludes the start raises :class:`~volcal.errors.ParameterError`.
    pillars : bool
        Fourier models: also compute the model's 25-delta risk reversal and butterfly
        per expiry (``result.slices``; about 45 small pricings, so off by default).
    stderr : {"auto", True, False}
        Fourier models: standard errors from the Jacobian at the solution. ``"auto"``
        computes them when the solver's last Jacobian was taken there (no extra
        pricing), ``True`` always, ``False`` never.

    Every option is either honoured by the model family or refused with a
    :class:`~volcal.errors.ParameterError` naming the option and the model (see
    ``SMILE_OPTIONS`` for what each smile model takes): ``svi`` honours ``start`` (the
    slices' :math:`(m, \\sigma)` seed its search), ``prior``/``strength`` and ``delta``;
    ``svi_surface`` ``start`` and ``delta``; ``sabr`` ``start``, ``fixed``, ``prior``,
    ``strength``, ``global_search``, ``max_nfev``, ``max_time`` and ``beta``; ``ssvi`` ``start``,
    ``prior``, ``strength``, ``phi``, ``delta`` and ``max_nfev``; ``essvi`` ``start``,
    ``prior``, ``strength`` and ``delta``.
    All take ``weights``, including
    ``"spread_vega"`` (the product of spread and vega weights, normalised).

    Returns
    -------
    CalibrationResult
        ``params`` is a model instance (for SVI/SABR, a per-expiry set).

    Examples
    --------
    >>> import volcal
    >>> chain = volcal.clean(volcal.read_chain("snapshot.csv", currency="BTC"))  # doctest: +SKIP
    >>> fit = volcal.calibrate(chain, "heston")                                  # doctest: +SKIP
    >>> fit.params.kappa, fit.rmse_vol, fit.status                                # doctest: +SKIP
    """
    if isinstance(model, str):
        name = model.lower()
        if name not in MODEL_NAMES:
            raise ParameterError(f"unknown model {model!r}: use one of {', '.join(MODEL_NAMES)}")
        model_start = None
    else:
        name = _name_of(type(model))
        model_start = model
    if objective not in ("iv", "price"):
        raise ParameterError(f"objective must be 'iv' or 'price', got {objective!r}")
    if iv_mode not in ("exact", "vega"):
        raise ParameterError(f"iv_mode must be 'exact' or 'vega', got {iv_mode!r}")
    if global_search not in ("auto", True, False):
        raise ParameterError(f"global_search must be 'auto', True or False, got {global_search!r}")
    if strength < 0 or not np.isfinite(strength):
        raise ParameterError(f"strength must be finite and >= 0, got {strength}")
    given = {
        "start": start,
        "fixed": fixed,
        "objective": objective,
        "prior": prior,
        "strength": strength,
        "global_search": global_search,
        "seed": seed,
        "feller": feller,
        "max_time": max_time,
        "n_terms": n_terms,
        "method": method,
        "refine": refine,
        "iv_mode": iv_mode,
        "beta": beta,
        "phi": phi,
        "delta": delta,
        "max_nfev": max_nfev,
        "bounds": bounds,
        "pillars": pillars,
        "stderr": stderr,
    }
    _refuse_unsupported(name, given)
    if name in SMILE_OPTIONS and isinstance(weights, str) and weights == "spread_vega":
        chain = as_quotes(chain)
        w = chain.weights("spread") * chain.weights("vega")
        weights = w * (w.size / np.sum(w))
    dconv = "forward" if delta is None else delta
    if name == "svi":
        from volcal.calibration.svi import fit_svi

        return fit_svi(
            chain, weights=weights, delta=dconv, start=start, prior=prior, strength=strength
        )
    if name == "svi_surface":
        from volcal.calibration.svi_surface import fit_svi_surface

        return fit_svi_surface(chain, weights=weights, start=start, delta=dconv)
    if name in ("ssvi", "essvi"):
        from volcal.calibration.ssvi import fit_essvi, fit_ssvi

        if name == "essvi":
            return fit_essvi(
                chain, weights=weights, delta=dconv, start=start, prior=prior, strength=strength
            )
        return fit_ssvi(
            chain,
            weights=weights,
            phi=phi,
            delta=dconv,
            max_nfev=max_nfev or 2000,
            start=start,
            prior=prior,
            strength=strength,
        )
    if name == "sabr":
        from volcal.calibration.sabr import fit_sabr

        return fit_sabr(
            chain,
            weights=weights,
            beta=beta,
            start=start if start is not None else model_start,
            fixed=fixed,
            prior=prior,
            strength=strength,
            global_search=global_search,
            max_nfev=200 if max_nfev is None else max_nfev,
            max_time=max_time,
        )
    if name in ("heston_td", "bates_td"):  # time-dependent Heston/Bates: calibration/td.py
        from volcal.calibration.td import calibrate_td

        opts = {"fixed": fixed, "objective": objective, "feller": feller, "n_terms": n_terms}
        opts.update(pillars=pillars, global_search=global_search, iv_mode=iv_mode)
        return calibrate_td(
            chain, name, start=start if start is not None else model_start, prior=prior,
            strength=strength, weights=weights, method=method, bounds=bounds,
            max_nfev=300 if max_nfev is None else max_nfev, max_time=max_time, stderr=stderr,
            options=opts, constant_fit=calibrate,
        )  # fmt: skip
    return _calibrate_fourier(
        chain,
        name,
        start=start if start is not None else model_start,
        fixed=fixed,
        weights=weights,
        objective=objective,
        prior=prior,
        strength=strength,
        global_search=global_search,
        seed=seed,
        feller=feller,
        max_time=max_time,
        n_terms=n_terms,
        method=method,
        refine=refine,
        iv_mode=iv_mode,
        bounds=bounds,
        max_nfev=300 if max_nfev is None else max_nfev,
        pillars=pillars,
        stderr=stderr,
    )


#: options each smile model honours (beyond ``weights``); the others are refused
SMILE_OPTIONS: dict[str, frozenset[str]] = {
    "svi": frozenset({"start", "prior", "strength", "delta"}),
    "svi_surface": frozenset({"start", "delta"}),
    "sabr": frozenset(
        {"start", "fixed", "prior", "strength", "global_search", "max_nfev", "max_time", "beta"}
    ),
    "ssvi": frozenset({"start", "prior", "strength", "phi", "delta", "max_nfev"}),
    "essvi": frozenset({"start", "prior", "strength", "delta"}),
}
#: options only the smile models take (refused for the Fourier models)
_SMILE_ONLY = frozenset({"beta", "phi", "delta"})
_DEFAULTS: dict[str, Any] = {
    "start": None,
    "fixed": None,
    "objective": "iv",
    "prior": None,
    "strength": 0.0,
    "global_search": "auto",
    "seed": 0,
    "feller": False,
    "max_time": 20.0,
    "n_terms": None,
    "method": "lm",
    "refine": True,
    "iv_mode": "exact",
    "beta": 1.0,
    "phi": "power",
    "delta": None,
    "max_nfev": None,
    "bounds": None,
    "pillars": False,
    "stderr": "auto",
}


def _is_default(option: str, value: Any) -> bool:
    if option == "fixed":
        return value is None or (hasattr(value, "__len__") and len(value) == 0)
    default = _DEFAULTS[option]
    if default is None:
        return value is None
    return bool(type(value) is type(default) and value == default) or (
        isinstance(default, float) and isinstance(value, int) and value == default
    )


def _refuse_unsupported(name: str, given: Mapping[str, Any]) -> None:
    """ParameterError naming the first option ``name`` cannot honour (module docs)."""
    if name in SMILE_OPTIONS:
        allowed = SMILE_OPTIONS[name]
        for opt, value in given.items():
            if opt not in allowed and not _is_default(opt, value):
                takes = ", ".join(sorted(allowed)) or "none"
                raise ParameterError(
                    f"calibrate: the {name} model does not support {opt}={value!r} "
                    f"(it takes weights and: {takes})"
                )
        if given["delta"] is not None and given["delta"] not in ("forward", "premium_adjusted"):
            raise ParameterError(
                f"calibrate: delta must be 'forward' or 'premium_adjusted', got {given['delta']!r}"
            )
        if given["max_nfev"] is not None and not (
            isinstance(given["max_nfev"], int) and given["max_nfev"] > 0
        ):
            raise ParameterError(
                f"calibrate: max_nfev must be a positive integer, got {given['max_nfev']!r}"
            )
        return
    for opt in _SMILE_ONLY:
        if not _is_default(opt, given[opt]):
            raise ParameterError(
                f"calibrate: the {name} model does not support {opt}={given[opt]!r} "
                "(a smile-model option)"
            )


def _exact_iv(q: QuoteSet, prices: FloatArray) -> FloatArray:
    from volcal.black import implied_vol

    with np.errstate(all="ignore"):
        res = implied_vol(prices, 1.0, np.exp(q.k), q.t, q.is_call, full_output=True)
    return np.asarray(res.vol, dtype=np.float64)


class _QuotePricer:
    """Model prices per unit forward of a quote set, by the library's Fourier engine.

    The surface is laid out once (forward, strike and maturity of every quote, exactly as
    :func:`volcal.model_iv` lays them out); every evaluation plans its ranges and N for
    the model it prices and prices in the same compiled call
    (:meth:`volcal.pricing.COSPricer.units`; the plan is a step of about 0.1 ms), so
    there is no fixed calibration grid to verify or re-plan and the objective prices
    exactly as :func:`volcal.price` does. Variance gamma, whose
    characteristic function decays only like a power of ``u`` (Fourier inversion fails on
    short expiries), is priced by its exact gamma-time mixture, the library's default for
    VG, with central-difference Jacobians.
    """

    def __init__(
        self, name: str, q: QuoteSet, pricer: COSPricer, coarse: COSPricer | None = None
    ) -> None:
        from volcal.pricing._layout import flat_surface

        self.name = name
        self.q = q
        self.pricer = pricer
        # looser error bounds for the first steps of a local solve (prices_and_jac with
        # coarse=True; None: every evaluation at the objective's bounds)
        self.coarse = coarse if name != "vg" else None
        self.call = q.k >= 0.0
        self.surface = flat_surface(q.forward, q.strike, q.t, self.call, where="calibrate")
        self.forward = q.forward
        # the shifted-contour wing refinement where the market quote itself is in the
        # deep wing (elsewhere a model price that small is far from the quote anyway and
        # the COS accuracy of ~1e-15 F is ample in vol)
        self.wing = q.mid < pricer.wing_tol * np.maximum(1.0, np.exp(q.k))
        # every quote is live, undiscounted and out of the money (as_quotes): the prices
        # are the engine's units (OTM price per unit forward) times F over F - what
        # volcal.price gives divided by F, bit for bit - in one pass over the block, with
        # no parity, discounting or per-row pass
        self.units_are_prices = bool(
            np.all(self.surface.live) and np.all(self.surface.discount == 1.0)
        )
        # the compiled pricing with the surface's arrays laid out once (the same call
        # and values as pricer.units)
        self._units = pricer.prepared_units(self.surface, self.wing)
        self._coarse_units = (
            None if self.coarse is None else self.coarse.prepared_units(self.surface, self.wing)
        )

    def prices(self, model: Any) -> FloatArray:
        if self.name == "vg":
            from volcal.pricing.closed import variance_gamma_price

            q = self.q
            return np.asarray(
                variance_gamma_price(model, q.forward, q.strike, q.t, self.call) / self.forward
            )
        if self.units_are_prices:
            return (self._units(model, False)[0] * self.forward) / self.forward
        plan, units = self.pricer.units(self.surface, model, wing_mask=self.wing)
        return plan._finish(units[0], False) / self.forward

    def prices_and_jac(self, model: Any, coarse: bool = False) -> tuple[FloatArray, FloatArray]:
        if self.name == "vg":
            # one compiled pass gives prices and the sigma / theta_vg derivatives (the
            # gamma nodes depend on nu only); nu by a forward difference, stepped away
            # from its upper bound
            from volcal.pricing.closed import variance_gamma_price_grad
            from volcal.pricing.cos import fd_steps

            q = self.q
            g = variance_gamma_price_grad(model, q.forward, q.strike, q.t, self.call)
            p0 = g[0] / self.forward
            h = 10.0 * float(fd_steps(model)[1])
            hi_nu = model.bounds()[1][1]
            step = h if model.nu + h <= hi_nu else -h
            up = self.prices(model.replace(nu=model.nu + step))
            jac = np.stack([g[2] / self.forward, (up - p0) / step, g[1] / self.forward], axis=1)
            return p0, jac
        if self.units_are_prices:
            fn = self._coarse_units if coarse and self._coarse_units is not None else self._units
            units = fn(model, True) * self.forward
            units /= self.forward
            return units[0], units[1:].T
        pricer = self.coarse if coarse and self.coarse is not None else self.pricer
        plan, units = pricer.units(self.surface, model, grad=True, wing_mask=self.wing)
        p = plan._finish(units[0], False)
        jac = np.stack([plan._finish(r, True) for r in units[1:]], axis=1)
        return p / self.forward, jac / self.forward[:, None]


def _calibrate_fourier(
    chain: Any,
    name: str,
    *,
    start: Any,
    fixed: Any,
    weights: Any,
    objective: str,
    prior: Any,
    strength: float,
    global_search: bool | str,
    seed: int,
    feller: bool,
    max_time: float,
    n_terms: int | None,
    method: str,
    refine: bool,
    iv_mode: str,
    bounds: Mapping[str, Any] | None = None,
    max_nfev: int = 300,
    pillars: bool = False,
    stderr: bool | str = "auto",
) -> CalibrationResult:
    t_start = time.perf_counter()
    deadline = t_start + max_time  # safety limit only: the solver stops by its budget
    if stderr not in ("auto", True, False):
        raise ParameterError(f"stderr must be 'auto', True or False, got {stderr!r}")
    if int(max_nfev) < 1:
        raise ParameterError(f"max_nfev must be >= 1, got {max_nfev}")
    q = as_quotes(chain)
    cls = model_class(name)
    n = len(q)
    prior_params = prior.params if isinstance(prior, CalibrationResult) else prior
    if prior_params is not None and not isinstance(prior_params, cls):
        raise ParameterError(
            f"prior must be a {cls.__name__} fit, got {type(prior_params).__name__}"
        )
    warm = start is not None or prior_params is not None
    src = start if start is not None else prior_params
    # the data guess fills a dict start and is the cold start; an instance needs none
    guess = _guess(name, q) if src is None or isinstance(src, Mapping) else {}
    if not warm and bounds:
        # the data guess (not the user's start) is moved inside a user box
        g = np.array([guess[nm] for nm in cls.param_names])
        lo, hi = cls.bounds()
        for nm, box in bounds.items():
            if nm in cls.param_names:
                j = cls.param_names.index(nm)
                try:
                    lo[j], hi[j] = (float(v) for v in box)
                except (TypeError, ValueError):
                    pass  # ParamSpace reports it
        g = np.clip(g, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
        guess = dict(zip(cls.param_names, g.tolist(), strict=True))
    start_model = _to_instance(cls, src, guess)
    space = ParamSpace(cls, start_model.to_vector(), fixed=fixed, feller=feller, bounds=bounds)
    space.base = _clip_into_box(space, space.base)
    if space.free.size > n:
        raise DataError(f"{n} quotes cannot determine {space.free.size} {cls.__name__} parameters")
    # the objective's engine: the library's COS engine with error bounds of 1e-10 (series)
    # and 1e-11 (tail mass) per unit forward instead of 1e-14 / 1e-15 - 1.4e-10 in vol at
    # worst on real chains, with about half the terms; the reported vols are the library's
    if n_terms is None:
        pricer = COSPricer(
            phi_tol=_OBJ_PHI_TOL,
            tail_tol=_OBJ_TAIL_TOL,
            wing_rtol=_OBJ_WING_RTOL,
            wing_grad=False,
        )
    else:
        if int(n_terms) < 8:
            raise ParameterError(f"n_terms must be >= 8, got {n_terms}")
        pricer = COSPricer(
            n=int(n_terms),
            n_max=int(n_terms),
            phi_tol=_OBJ_PHI_TOL,
            tail_tol=_OBJ_TAIL_TOL,
            wing_rtol=_OBJ_WING_RTOL,
            wing_grad=False,
        )
    # the coarse bounds of the first steps of a warm secant solve (engine.secant_lm):
    # with a fixed N there is nothing to save
    coarse = (
        COSPricer(
            phi_tol=_COARSE_PHI_TOL,
            tail_tol=_COARSE_TAIL_TOL,
            wing_rtol=_COARSE_WING_RTOL,
            wing_grad=False,
        )
        if n_terms is None
        else None
    )
    qp = _QuotePricer(name, q, pricer, coarse)
    if name != "vg" and global_search is True:
        # a fixed N that cannot meet the error bound at the start is a MethodError here,
        # before any optimisation (never a silently capped grid); without the global
        # stage the local solve's first evaluation, at the start, raises it
        pricer.units(qp.surface, cls.from_vector(space.base), plan_only=True)
    w = _weights(q, weights, objective)
    sw = np.sqrt(w)
    if objective == "iv":
        scale = np.maximum(q.vega, 1e-12)
    else:
        scale = np.full(n, float(np.median(q.vega)))
    mkt = q.mid

    # regularization toward the prior (natural units, free parameters)
    reg_idx = space.free
    if prior_params is not None and strength > 0:
        px = prior_params.to_vector()
        s_p = np.maximum(np.abs(px), 0.01 * (space.hi_full - space.lo_full))[reg_idx]
        reg_w = np.sqrt(strength * float(np.sum(w))) * 0.01 / s_p
        reg_x = px[reg_idx]
    else:
        reg_w, reg_x = None, None

    exact = objective == "iv" and iv_mode == "exact"
    obj = FourierObjective(cls, space, qp, q, sw, scale, exact, reg_w, reg_x)
    model_of = obj.model_of
    n_res = obj.n_res
    lm_ok = method != "lm" or n_res >= space.free.size
    local_method = method if lm_ok else "trf"
    use_secant = warm and name in _SECANT_MODELS and global_search is not True
    tracker = Tracker(
        obj.residuals,
        obj.residuals_jac,
        deadline,
        coarse_jac=obj.coarse_residuals_jac if use_secant and qp.coarse is not None else None,
    )
    y0 = space.to_y(space.base)
    # warm starts stop once an iteration lowers the cost by less than _WARM_FTOL
    # relatively (see the module docs); cold starts and noise-free recovery keep 1e-10
    ftol = _WARM_FTOL if warm and global_search is not True else 1e-10
    # the compiled Heston/Bates kernel gives prices and Jacobian for about twice the cost
    # of prices alone: take both at every trial point (an accepted step needs no second pass)
    tracker.eager_jac = name in ("heston", "bates")
    budget = int(max_nfev)
    n_scored = 0
    run_global = False
    if global_search is True:
        run_global = True
        out = None
    else:
        out = solve(
            tracker,
            y0,
            method=local_method,
            max_nfev=budget,
            ftol=ftol,
            secant=use_secant,
        )
        # a poor local fit from a cold start (or a failed one) calls for the global stage
        if global_search == "auto" and not warm:
            run_global = out.status not in ("ok", "max_iter") or _poor(q, out.cost, w)
    if run_global:
        box = np.array(cls.search_box, dtype=np.float64)[space.free]
        if space.feller:
            box[space.j_x] = (0.05, 1.0)
        box[:, 0] = np.maximum(box[:, 0], space.lo)
        box[:, 1] = np.minimum(box[:, 1], space.hi)
        box[:, 1] = np.maximum(box[:, 1], box[:, 0] + 1e-9 * (space.hi - space.lo))
        extra = [y0] if out is None else [out.y, y0]
        y_g, n_scored = global_stage(
            tracker,
            box[:, 0],
            box[:, 1],
            space.z_to_y,
            extra=extra,
            n_points=64 if space.free.size <= 5 else 128,
            offset=64 * int(seed),
            method=local_method,
        )
        out = solve(tracker, y_g, method=local_method, max_nfev=budget, ftol=1e-10)
    assert out is not None
    y_best, status, message = out.y, out.status, out.message
    n_refine = 0
    if refine and objective == "iv" and not exact and status in ("ok", "max_iter"):
        for _ in range(2):
            p = qp.prices(model_of(y_best))
            iv_m = _exact_iv(q, p)
            div = iv_m - q.iv_mid
            with np.errstate(divide="ignore", invalid="ignore"):
                sec = (p - mkt) / div
            good = np.isfinite(sec) & (sec > 0) & (np.abs(div) > 1e-7)
            new_scale = np.where(good, sec, np.maximum(q.vega, 1e-12))
            if np.allclose(new_scale, obj.scale, rtol=1e-3):
                break
            obj = obj.with_scale(new_scale)
            n_refine += 1
            t2 = Tracker(obj.residuals, obj.residuals_jac, deadline)
            o2 = solve(t2, y_best, method=local_method, max_nfev=100)
            tracker.nfev += t2.nfev
            tracker.njev += t2.njev
            y_best = o2.y
            if o2.status != "ok":
                status, message = o2.status, o2.message
                break
    jac_here = (
        tracker.best_rj
        if tracker.best_y is not None and np.array_equal(tracker.best_y, y_best)
        else None
    )
    return _assemble(
        name=name,
        q=q,
        qp=qp,
        cls=cls,
        space=space,
        y=y_best,
        start_model=start_model,
        w=w,
        status=status,
        message=message,
        nfev=tracker.nfev + tracker.njev,
        t_start=t_start,
        jac_fun=obj.residuals_jac,
        jac_at_y=jac_here if n_refine == 0 else None,
        want_stderr=stderr,
        want_pillars=pillars,
        extra={
            "objective": objective,
            "weights": weights if isinstance(weights, str) else "array",
            "global_search": bool(run_global),
            "design_points": int(n_scored),
            "warm_start": bool(warm),
            "fixed": list(space.names[i] for i in range(len(space.names)) if i not in space.free),
            "feller_enforced": bool(feller),
            "strength": float(strength) if reg_w is not None else 0.0,
            "n_terms": None if n_terms is None else int(n_terms),
            "method": local_method,
            "iv_mode": iv_mode if objective == "iv" else None,
            "iv_refinements": n_refine,
            "bounds": {
                nm: [float(space.lo_full[i]), float(space.hi_full[i])]
                for i, nm in enumerate(space.names)
            },
            "max_nfev": budget,
            "njev": int(tracker.njev),
            "njev_coarse": int(tracker.n_coarse),
        },
    )


_POOR_RMSE = 10.0  # vol points: a local fit from the data guess worse than this
# calls for the global stage (real chains: Heston 1-6, Levy models 5-9)


def _poor(q: QuoteSet, cost: float, w: FloatArray) -> bool:
    """Cheap indicator that a local fit is poor: weighted RMSE from the solver's cost."""
    if not np.isfinite(cost):
        return True
    rmse = 100.0 * float(np.sqrt(2.0 * cost / max(float(np.sum(w)), 1e-300)))
    return rmse > _POOR_RMSE


def _weights(q: QuoteSet, weights: Any, objective: str) -> FloatArray:
    if objective == "price" and isinstance(weights, str) and weights == "spread":
        # spread weights in price: 1 / bid-ask width in price, floored like the vol ones
        width = np.where(np.isfinite(q.ask - q.bid), q.ask - q.bid, np.nan)
        floor = 0.005 * q.vega
        width = np.where(np.isfinite(width), width, 4.0 * np.nanmedian(width))
        w = 1.0 / np.maximum(width, np.maximum(floor, 1e-12))
        return w * (w.size / float(np.sum(w)))
    return q.weights(weights)


def _model_vols(params: Any, q: QuoteSet) -> FloatArray:
    """Model vols of the quotes: exactly ``volcal.model_iv(params, F, K, T)``."""
    from volcal.pricing.api import model_iv

    return np.asarray(model_iv(params, q.forward, q.strike, q.t), dtype=np.float64)


def _library_iv(params: Any, f: FloatArray, k: FloatArray, t: FloatArray) -> FloatArray:
    """``volcal.model_iv(params, f, k, t)`` of validated flat arrays (positive forwards
    and strikes, positive maturities), bit for bit: for a model the library prices by
    COS, its steps - the default :class:`COSPricer` on the surface of
    :func:`~volcal.pricing._layout.make_surface`, then the compiled Black inversion of
    :func:`volcal.black.implied_vol` on ``(p / f, 1, k / f, t)`` - without the
    broadcasting, dispatch and input checks around them; any other model, or a COS
    MethodError (the library then falls back to Lewis), goes through ``model_iv``."""
    from volcal.black import _kernels as black_kernels
    from volcal.models.levy import Black, Merton, VarianceGamma
    from volcal.pricing._layout import Surface
    from volcal.pricing.api import model_iv
    from volcal.pricing.cos import _model_id

    if isinstance(params, (Black, Merton, VarianceGamma)) or _model_id(params) < 0:
        return np.asarray(model_iv(params, f, k, t), dtype=np.float64)
    f, k, t = (np.array(a, dtype=np.float64) for a in (f, k, t))
    is_call = k >= f
    ones = np.ones(f.size)
    t_unique, t_index = np.unique(t, return_inverse=True)
    surface = Surface(
        shape=f.shape,
        forward=f,
        strike=k,
        t=t,
        is_call=is_call,
        discount=ones,
        k=np.log(k / f),
        live=np.ones(f.size, dtype=bool),
        t_unique=t_unique,
        t_index=t_index.astype(np.int64).ravel(),
    )
    try:
        plan, units = COSPricer().units(surface, params)
    except MethodError:
        return np.asarray(model_iv(params, f, k, t), dtype=np.float64)
    p = plan._finish(units[0], False)
    vol = np.empty(f.size)
    status = np.empty(f.size, dtype=np.int8)
    black_kernels.implied_vol_loop(
        p / f, ones, k / f, t, is_call, ones, black_kernels.MAX_ITERATIONS, vol, status
    )
    return vol


def _model_and_atm_vols(params: Any, q: QuoteSet) -> tuple[FloatArray, FloatArray]:
    """Model vols of the quotes (exactly :func:`_model_vols`) and the model ATM-forward
    vol per expiry, in one library call when that cannot change the quotes' vols.

    The engine plans each maturity from its strikes' range only, so an ATM option
    (k = 0) added to an expiry whose quotes already span k = 0 leaves that expiry's
    plan, and with it every quote's price and vol, bit for bit as they were; otherwise
    the ATM vols are priced by a second call. Raises MethodError like model_iv."""
    from volcal.pricing.api import model_iv

    n, ns = len(q), q.n_slices
    kmin = np.full(ns, np.inf)
    kmax = np.full(ns, -np.inf)
    np.minimum.at(kmin, q.slice_index, q.k)
    np.maximum.at(kmax, q.slice_index, q.k)
    same_t = np.array_equal(q.t, q.t_slices[q.slice_index])
    if n and same_t and np.all((kmin <= 0.0) & (kmax >= 0.0)):
        f = np.concatenate([q.forward, np.ones(ns)])
        k = np.concatenate([q.strike, np.ones(ns)])
        t = np.concatenate([q.t, q.t_slices])
        iv = _library_iv(params, f, k, t)
        return iv[:n], iv[n:]
    vols = _model_vols(params, q)
    try:
        atm = np.asarray(model_iv(params, 1.0, 1.0, q.t_slices), dtype=np.float64)
    except MethodError:
        atm = np.full(ns, np.nan)
    return vols, atm


def _pillars(params: Any, q: QuoteSet, atm: FloatArray) -> tuple[FloatArray, FloatArray]:
    """25-delta risk reversal and butterfly of the fitted model per expiry (vol units).

    Conventions of :mod:`volcal.calibration.smile_stats` (forward delta, call pillar on
    the falling branch, :math:`RR = \\sigma_{25C} - \\sigma_{25P}`,
    :math:`BF = (\\sigma_{25C} + \\sigma_{25P})/2 - \\sigma_{ATM}`), solved for every
    expiry at once by :func:`~volcal.calibration.delta_pillars.strikes_for_delta` with
    the library's model vols. NaN where an expiry has no 25-delta strike within 10 ATM
    standard deviations. About 45 small pricings: computed only when asked for
    (``calibrate(..., pillars=True)``).
    """
    from volcal.calibration.delta_pillars import strikes_for_delta
    from volcal.pricing.api import model_iv

    ts = q.t_slices
    nan = np.full(ts.size, np.nan)
    ok = np.flatnonzero(np.isfinite(atm) & (atm > 0))
    if ok.size == 0:
        return nan, nan.copy()

    def iv(k: Any, t: Any) -> FloatArray:
        k = np.asarray(k, dtype=np.float64)
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), k.shape).ravel()
        kf = k.ravel()
        good = np.isfinite(kf)
        kf = np.where(good, kf, 0.0)
        with np.errstate(all="ignore"):
            v = model_iv(params, 1.0, np.exp(kf), tt)
        return np.asarray(np.where(good, v, np.nan)).reshape(k.shape)

    t_p = np.concatenate([ts[ok], ts[ok]])
    side = np.concatenate([np.ones(ok.size, dtype=bool), np.zeros(ok.size, dtype=bool)])
    atm_p = np.concatenate([atm[ok], atm[ok]])
    kk = strikes_for_delta(iv, t_p, 0.25, side, atm_p, n_grid=21, n_bisect=24)
    vol = iv(kk, t_p)
    vc, vp = vol[: ok.size], vol[ok.size :]
    rr, bf = nan.copy(), nan.copy()
    rr[ok] = vc - vp
    bf[ok] = 0.5 * (vc + vp) - atm[ok]
    return rr, bf


def _assemble(
    *,
    name: str,
    q: QuoteSet,
    qp: _QuotePricer,
    cls: Any,
    space: ParamSpace,
    y: FloatArray,
    start_model: Any,
    w: FloatArray,
    status: str,
    message: str,
    nfev: int,
    t_start: float,
    jac_fun: Any,
    extra: dict[str, Any],
    jac_at_y: tuple[FloatArray, FloatArray] | None = None,
    want_stderr: bool | str = "auto",
    want_pillars: bool = False,
) -> CalibrationResult:
    x = space.to_x(y)
    try:
        params = cls.from_vector(x)
    except ParameterError:
        params, status, message = start_model, "failed", "no valid parameters found"
        x = params.to_vector()
        jac_at_y = None
    notes: list[str] = []
    try:
        model_iv, atm = _model_and_atm_vols(params, q)
    except MethodError as exc:
        model_iv = np.full(len(q), np.nan)
        atm = np.full(q.n_slices, np.nan)
        status, message = "failed", f"the fitted model cannot be priced: {exc}"
    resid = model_iv - q.iv_mid
    rmse, inside = fit_quality(q, model_iv)
    n_bad = int(np.sum(~np.isfinite(model_iv)))
    if not np.isfinite(rmse):
        status, message = "failed", message or "no model implied vol could be computed"
    elif n_bad > 0.05 * len(q) and status == "ok":
        status = "degraded"
        message = f"{n_bad} of {len(q)} model prices have no implied vol"
    if n_bad:
        notes.append(f"{n_bad} quotes without a model implied vol (price outside Black bounds)")
    notes += space.at_bound(x)
    if hasattr(params, "feller") and not params.feller:
        notes.append("Feller condition violated (2 kappa theta < xi^2)")
    # standard errors and conditioning from the Jacobian at the solution: free when the
    # solver's last Jacobian was taken there ("auto"), one more evaluation when asked for
    stderr: dict[str, float] | None = None
    covariance: FloatArray | None = None
    cov_names: tuple[str, ...] = ()
    jac_cond: float | None = None
    if want_stderr is True or (want_stderr == "auto" and jac_at_y is not None):
        try:
            z = space.x_to_z(x)
            yz = space.z_to_y(z)
            r, j_y = jac_at_y if jac_at_y is not None else jac_fun(yz)
            r = r[: len(q)]
            j_y = j_y[: len(q)]
            dzdy = space.dz_dy(yz)
            with np.errstate(divide="ignore", invalid="ignore"):
                j_z = j_y / dzdy[None, :]
            if np.all(np.isfinite(j_z)):
                col = np.linalg.norm(j_z, axis=0)
                col = np.where(col > 0, col, 1.0)
                sv = np.linalg.svd(j_z / col, compute_uv=False)
                jac_cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
                dof = max(len(q) - space.free.size, 1)
                s2 = float(r @ r) / dof
                cov_z = s2 * np.linalg.pinv(j_z.T @ j_z, rcond=1e-14)
                d = space.dx_dz(z)
                cov_x = d @ cov_z @ d.T
                se = np.sqrt(np.clip(np.diag(cov_x), 0.0, None))
                keep = [
                    i
                    for i, nm in enumerate(space.names)
                    if i in space.free or (space.feller and nm == "xi")
                ]
                stderr = {space.names[i]: float(se[i]) for i in keep}
                covariance = cov_x[np.ix_(keep, keep)]
                cov_names = tuple(space.names[i] for i in keep)
                if jac_cond > 1e8:
                    notes.append(f"ill-conditioned Jacobian (condition number {jac_cond:.2g})")
        except (ValueError, np.linalg.LinAlgError, ParameterError):
            notes.append("standard errors unavailable (Jacobian failed)")
    # model ATM-forward vol per expiry: one k = 0 option each, the library's pricing,
    # priced with the quotes above (_model_and_atm_vols)
    rr25: FloatArray | None = None
    bf25: FloatArray | None = None
    if want_pillars:
        rr25, bf25 = _pillars(params, q, atm)
    slices = slice_fits(q, model_iv, atm_vol=atm, rr25=rr25, bf25=bf25)
    if status != "ok":
        msg = f"{name} calibration {status}: {message}"
        notes.insert(0, msg)
        warnings.warn(msg, CalibrationWarning, stacklevel=4)
    return CalibrationResult(
        model=name,
        params=params,
        start=start_model,
        quotes=q,
        model_iv=model_iv,
        weights=w,
        residuals=resid,
        slices=slices,
        rmse_vol=rmse,
        inside_spread=inside,
        nfev=int(nfev),
        elapsed_s=time.perf_counter() - t_start,
        status=status,
        message=message,
        warnings=tuple(notes),
        stderr=stderr,
        covariance=covariance,
        covariance_names=cov_names,
        jac_cond=jac_cond,
        extra=extra,
    )
