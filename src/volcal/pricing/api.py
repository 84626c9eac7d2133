"""Public pricing entry points: :func:`price` and :func:`model_iv`."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from volcal._typing import ArrayLike, FloatArray
from volcal.errors import MethodError
from volcal.models._base import Model
from volcal.models.levy import Black, Merton, VarianceGamma
from volcal.pricing.closed import black_model_price, merton_price, variance_gamma_price
from volcal.pricing.cos import COSPricer
from volcal.pricing.lewis import LewisPricer

__all__ = ["METHODS", "model_iv", "price"]

METHODS = ("auto", "closed", "cos", "lewis", "mc")


def price(
    model: Model,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
    method: str = "auto",
    *,
    pricer: COSPricer | LewisPricer | None = None,
    **mc_kw: Any,
) -> FloatArray:
    """European option prices under ``model``, broadcast over all arguments.

    Prices are undiscounted forward-space expectations times ``discount``:
    :math:`V = D\\,E[(\\pm(F_T - K))^+]`. One call prices a whole surface; the
    characteristic function is evaluated once per unique maturity on a grid shared by
    all strikes of that maturity, and all maturities in one vectorized call.

    Parameters
    ----------
    model : Model
        A volcal model (``Black``, ``Heston``, ``Bates``, ``SVCJ``, ``Merton``, ``Kou``,
        ``VarianceGamma``).
    forward, strike, t, is_call, discount : array_like
        Forward, strike, maturity in years (0 gives intrinsic value), True for calls,
        discount factor. They broadcast against each other.
    method : {"auto", "closed", "cos", "lewis", "mc"}
        ``"auto"``: closed form where one exists (Black; Merton's Poisson series;
        variance gamma's gamma-time mixture of Black prices, exact even for one-day
        maturities where Fourier inversion fails), else COS with the default
        :class:`COSPricer`, and Lewis' adaptive integral (:class:`LewisPricer`) when COS
        reports that it cannot reach its accuracy (tails too heavy for a practical
        truncation range). Both are verified against QuantLib, quadrature and
        published values to 1e-8 relative above 1e-5 max(F, K) and 1e-13 max(F, K)
        absolute below (see tests/test_pricing.py and the pricers' docs for the
        domain). ``"mc"`` delegates to :func:`volcal.pricing.mc.mc_price` and
        returns its price (use ``mc_price`` itself for the standard errors).
    pricer : COSPricer or LewisPricer, optional
        Numerical settings for ``"cos"`` / ``"lewis"`` (``"auto"`` uses it as well when
        the model has no closed form).
    **mc_kw
        Passed to ``mc_price`` (paths, seed, ...); only valid with ``method="mc"``.

    Returns
    -------
    ndarray
        Prices with the broadcast shape of the inputs.

    Raises
    ------
    MethodError
        If ``method`` is unknown or the model cannot be priced by it.
    ParameterError
        If an input is invalid (non-positive forward/strike/discount, negative t).

    Examples
    --------
    >>> import volcal
    >>> from volcal.models import Heston
    >>> m = Heston(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> volcal.price(m, 100.0, [90.0, 100.0, 110.0], 1.0, True).round(6)
    array([12.709532,  5.785155,  1.787135])
    """
    if method not in METHODS:
        raise MethodError(f"price: unknown method {method!r}; choose one of {METHODS}")
    if mc_kw and method != "mc":
        raise MethodError(
            f"price: keyword arguments {sorted(mc_kw)} are only accepted with method='mc'"
        )
    if not isinstance(model, Model):
        raise MethodError(f"price: {type(model).__name__} is not a volcal model")
    if method in ("auto", "closed"):
        if isinstance(model, Black):
            return black_model_price(model, forward, strike, t, is_call, discount)
        if isinstance(model, Merton):
            return merton_price(model, forward, strike, t, is_call, discount)
        if isinstance(model, VarianceGamma):
            return variance_gamma_price(model, forward, strike, t, is_call, discount)
        if method == "closed":
            raise MethodError(
                f"price: {type(model).__name__} has no closed form; use 'cos' or 'lewis'"
            )
        if pricer is None:
            try:
                return COSPricer().price(model, forward, strike, t, is_call, discount)
            except MethodError:
                return LewisPricer().price(model, forward, strike, t, is_call, discount)
        method = "lewis" if isinstance(pricer, LewisPricer) else "cos"
    if method == "cos":
        if pricer is not None and not isinstance(pricer, COSPricer):
            raise MethodError(f"price: method 'cos' needs a COSPricer, got {pricer!r}")
        return (pricer or COSPricer()).price(model, forward, strike, t, is_call, discount)
    if method == "lewis":
        if pricer is not None and not isinstance(pricer, LewisPricer):
            raise MethodError(f"price: method 'lewis' needs a LewisPricer, got {pricer!r}")
        return (pricer or LewisPricer()).price(model, forward, strike, t, is_call, discount)
    # method == "mc": the simulator is optional and imported only when asked for
    try:
        mc = importlib.import_module("volcal.pricing.mc")
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MethodError(f"price: Monte Carlo is not available ({exc})") from None
    res = mc.mc_price(model, forward, strike, t, is_call, discount, **mc_kw)
    return np.asarray(res.price, dtype=np.float64)


def model_iv(
    model: Model,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    method: str = "auto",
    *,
    pricer: COSPricer | LewisPricer | None = None,
) -> FloatArray:
    """Black implied volatilities of the model's out-of-the-money option prices.

    Calls are used for :math:`K \\ge F`, puts below; the implied vol is the one of
    :func:`volcal.black.implied_vol` (undiscounted, so the discount factor plays no
    role).

    Examples
    --------
    >>> from volcal.models import Black
    >>> model_iv(Black(0.6), 100.0, [80.0, 120.0], 0.5).round(12)  # doctest: +SKIP
    array([0.6, 0.6])
    """
    # own copies: broadcast views carry a deprecated writeable flag that the compiled
    # kernels' type check trips over (a FutureWarning in NumPy 2)
    f, k, tt = (
        np.array(a)
        for a in np.broadcast_arrays(
            np.asarray(forward, dtype=np.float64),
            np.asarray(strike, dtype=np.float64),
            np.asarray(t, dtype=np.float64),
        )
    )
    is_call = k >= f
    p = price(model, f, k, tt, is_call, 1.0, method, pricer=pricer)
    from volcal.black import implied_vol

    # in forward units (Black is homogeneous in F, K and the price): the implied-vol
    # kernel is then called with the argument types of every other caller (a scalar
    # forward), so a new process loads one compiled specialisation of it, not two
    return np.asarray(implied_vol(p / f, 1.0, k / f, tt, is_call), dtype=np.float64)
