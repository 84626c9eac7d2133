"""Parameter gradients of characteristic functions (for calibration Jacobians).

Fourier prices are linear in the characteristic function, so

.. math:: \\frac{\\partial P}{\\partial \\theta_p}
    = \\mathcal{L}\\Big[\\varphi\\,\\frac{\\partial \\ln\\varphi}{\\partial\\theta_p}\\Big],

with :math:`\\mathcal L` the same linear pricing functional (COS sum, Lewis integral).
Given :math:`\\partial\\ln\\varphi/\\partial\\theta` on the pricing grid, a full Jacobian
costs about one extra pricing per parameter - a matrix product on a grid that is
already evaluated.

Heston and Bates have the analytic gradient of Cui, del Baño Rollin & Germano (2017),
"Full and fast calibration of the Heston stochastic volatility model", EJOR 263(2).
Cui et al. differentiate their own continuous representation; here the same chain rule
is applied to the little-Heston-trap form used by :mod:`volcal.models.heston`
(:math:`b = \\kappa - i\\rho\\xi u`, :math:`d = \\sqrt{b^2 + \\xi^2(iu+u^2)}`,
:math:`g = (b-d)/(b+d)`), so gradient and price share every intermediate:

.. math::

    \\partial d = \\frac{b\\,\\partial b + \\xi w\\,\\partial\\xi}{d},\\quad
    \\partial q = -q\\frac{\\partial b + \\partial d}{b+d},\\quad
    \\partial g = \\frac{2(d\\,\\partial b - b\\,\\partial d)}{(b+d)^2},\\quad
    \\partial e = -t\\,e\\,\\partial d,

    B = q\\frac{1-e}{1-ge},\\qquad
    A = \\kappa\\theta\\Big(qt - \\frac{2}{\\xi^2}\\ln\\frac{1-ge}{1-g}\\Big).

Every other model gets central finite differences of :math:`\\ln\\varphi` on the grid
(:func:`log_cf_grad_fd`): exact to about 1e-9 relative, and still cheap because the
char function is evaluated on a small (expiries x Fourier nodes) grid, never per strike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from volcal._typing import ArrayLike

__all__ = [
    "bates_log_cf_grad",
    "heston_log_cf_grad",
    "log_cf_grad",
    "log_cf_grad_fd",
]


def _heston_core(
    u: Any, t: Any, v0: float, kappa: float, theta: float, xi: float, rho: float
) -> tuple[Any, Any]:
    """ln phi of Heston and its gradient (v0, kappa, theta, xi, rho) stacked on axis 0."""
    from volcal.models.heston import heston_exponents

    A, B, p = heston_exponents(u, t, kappa, theta, xi, rho)
    d, g, q, e = p["d"], p["g"], p["q"], p["e"]
    one_m_e = p["one_m_e"]
    lg = p["log_ratio"]  # ln((1 - g e) / (1 - g))
    iu = 1j * u
    w = iu + u * u
    b = kappa - rho * xi * iu
    bd = b + d
    one_m_ge = 1.0 - g * e
    one_m_g = 1.0 - g
    # A / (kappa theta) without dividing by theta (theta may be 0)
    a_unit = q * t - 2.0 * lg / (xi * xi) if xi > 0 else q * t

    def partials(db: Any, dd: Any, dxi: float) -> tuple[Any, Any]:
        dq = -q * (db + dd) / bd
        dg = 2.0 * (d * db - b * dd) / (bd * bd)
        de = -t * e * dd
        dB = dq * one_m_e / one_m_ge + q * (-de * one_m_ge + one_m_e * (dg * e + g * de)) / (
            one_m_ge * one_m_ge
        )
        dlg = -(dg * e + g * de) / one_m_ge + dg / one_m_g
        da_unit = dq * t - 2.0 * dlg / (xi * xi) + (4.0 * lg / xi**3) * dxi
        return da_unit, dB

    # kappa: db = 1
    dd_k = b / d
    da_k, dB_k = partials(1.0, dd_k, 0.0)
    # rho: db = -i xi u
    db_r = -xi * iu
    da_r, dB_r = partials(db_r, b * db_r / d, 0.0)
    # xi: db = -i rho u, dd = (b db + xi w) / d
    db_x = -rho * iu
    da_x, dB_x = partials(db_x, (b * db_x + xi * w) / d, 1.0)
    log_phi = A + B * v0
    grad = np.stack(
        [
            B,
            theta * a_unit + kappa * theta * da_k + dB_k * v0,
            kappa * a_unit,
            kappa * theta * da_x + dB_x * v0,
            kappa * theta * da_r + dB_r * v0,
        ]
    )
    return log_phi, grad


def heston_log_cf_grad(model: Any, u: ArrayLike, t: ArrayLike) -> tuple[Any, Any]:
    """Heston :math:`\\ln\\varphi(u,t)` and its analytic gradient.

    Parameters
    ----------
    model : volcal.models.Heston
    u, t : array_like
        Fourier nodes (complex allowed) and maturities, broadcasting together.

    Returns
    -------
    log_phi : ndarray (complex), broadcast shape ``S``
    grad : ndarray (complex), shape ``(5, *S)`` in ``param_names`` order
        (``v0, kappa, theta, xi, rho``).

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(0.04, 1.5, 0.05, 0.6, -0.7)
    >>> lp, g = heston_log_cf_grad(m, np.array([0.5, 2.0]), 1.0)
    >>> g.shape
    (5, 2)
    """
    u = np.asarray(u, dtype=np.complex128)
    t = np.asarray(t, dtype=np.float64)
    xi = max(float(model.xi), 1e-8)  # the xi -> 0 limit is smooth; avoid 0/0 in the chain rule
    return _heston_core(u, t, model.v0, model.kappa, model.theta, xi, model.rho)


def bates_log_cf_grad(model: Any, u: ArrayLike, t: ArrayLike) -> tuple[Any, Any]:
    """Bates :math:`\\ln\\varphi` and analytic gradient (Heston part + Merton jumps).

    With :math:`E = e^{iu\\mu_j - u^2\\sigma_j^2/2}` and :math:`K = e^{\\mu_j+\\sigma_j^2/2}`
    the jump exponent is :math:`J = \\lambda t(E - 1 - iu(K-1))`, so
    :math:`\\partial_\\lambda J = t(E-1-iu(K-1))`,
    :math:`\\partial_{\\mu_j} J = \\lambda t\\,iu(E-K)` and
    :math:`\\partial_{\\sigma_j} J = \\lambda t\\,\\sigma_j(-u^2E - iuK)`.

    Returns the gradient in ``param_names`` order
    (``v0, kappa, theta, xi, rho, lam, mu_j, sigma_j``).

    Examples
    --------
    >>> from volcal.models import Bates
    >>> m = Bates(0.04, 1.5, 0.05, 0.6, -0.7, 2.0, -0.05, 0.1)
    >>> bates_log_cf_grad(m, np.array([1.0]), 0.5)[1].shape
    (8, 1)
    """
    u = np.asarray(u, dtype=np.complex128)
    t = np.asarray(t, dtype=np.float64)
    xi = max(float(model.xi), 1e-8)
    lp_h, g_h = _heston_core(u, t, model.v0, model.kappa, model.theta, xi, model.rho)
    iu = 1j * u
    mu, sj, lam = model.mu_j, model.sigma_j, model.lam
    E = np.exp(iu * mu + 0.5 * iu * iu * sj * sj)
    K = np.exp(mu + 0.5 * sj * sj)
    unit = t * (E - 1.0 - iu * (K - 1.0))
    d_mu = lam * t * iu * (E - K)
    d_sj = lam * t * sj * (iu * iu * E - iu * K)
    shape = np.broadcast(lp_h, unit).shape
    grad = np.concatenate(
        [
            np.broadcast_to(g_h, (5, *shape)),
            np.stack([np.broadcast_to(x, shape) for x in (unit, d_mu, d_sj)]),
        ]
    )
    return lp_h + lam * unit, grad


def log_cf_grad_fd(
    model: Any, u: ArrayLike, t: ArrayLike, rel_step: float = 1e-6
) -> tuple[Any, Any]:
    """:math:`\\ln\\varphi` and its gradient by central differences (any model).

    Step :math:`h_p = \\epsilon\\max(|\\theta_p|, s_p)` with :math:`s_p` one thousandth
    of the parameter's box range; a step that would leave the box or make the model
    invalid becomes one-sided.

    Examples
    --------
    >>> from volcal.models import Merton
    >>> m = Merton(0.5, 1.0, -0.1, 0.2)
    >>> log_cf_grad_fd(m, np.array([1.0, 3.0]), 0.25)[1].shape
    (4, 2)
    """
    from volcal.errors import ParameterError

    u = np.asarray(u, dtype=np.complex128)
    t = np.asarray(t, dtype=np.float64)
    x = model.to_vector()
    lo, hi = model.bounds()
    base = model.log_char_func(u, t)
    cls = type(model)
    grads = []
    for p in range(x.size):
        h = rel_step * max(abs(x[p]), 1e-3 * (hi[p] - lo[p]), 1e-8)
        xp, xm = x.copy(), x.copy()
        xp[p] += h
        xm[p] -= h
        try:
            fp = cls.from_vector(xp).log_char_func(u, t)
            up = True
        except ParameterError:
            fp, up = base, False
        try:
            fm = cls.from_vector(xm).log_char_func(u, t)
            dn = True
        except ParameterError:
            fm, dn = base, False
        span = (h if up else 0.0) + (h if dn else 0.0)
        grads.append((fp - fm) / span if span > 0 else np.zeros_like(base))
    return base, np.stack([np.broadcast_to(gr, np.shape(base)) for gr in grads])


def log_cf_grad(model: Any, u: ArrayLike, t: ArrayLike) -> tuple[Any, Any]:
    """:math:`\\ln\\varphi` and its parameter gradient: analytic for Heston and Bates,
    central differences otherwise. Gradient axis 0 follows ``model.param_names``.

    Examples
    --------
    >>> from volcal.models import Heston
    >>> m = Heston(0.04, 1.5, 0.05, 0.6, -0.7)
    >>> lp, g = log_cf_grad(m, np.array([1.0]), 1.0)
    >>> bool(np.allclose(lp, m.log_char_func(np.array([1.0]), 1.0)))
    True
    """
    from volcal.models.heston import Bates, Heston

    if type(model) is Heston:
        return heston_log_cf_grad(model, u, t)
    if type(model) is Bates:
        return bates_log_cf_grad(model, u, t)
    return log_cf_grad_fd(model, u, t)


# ---------------------------------------------------------------------------------------
# Compiled grid kernel (Heston / Bates): COS grid values and their parameter gradients
# ---------------------------------------------------------------------------------------
