"""ATM vol, 25-delta risk reversal and butterfly of a fitted smile.

Conventions
-----------
* ATM: at-the-money *forward*, :math:`k = \\ln(K/F) = 0`; ``atm_vol`` is
  :math:`\\sigma(0)`.
* Delta (``delta="forward"``, the default): undiscounted forward Black delta,
  :math:`\\Delta_C = N(d_1)`, :math:`\\Delta_P = N(d_1) - 1`,
  :math:`d_1 = -k/\\sqrt{w} + \\sqrt{w}/2`, :math:`w = \\sigma(k)^2 T`.
* ``delta="premium_adjusted"``: the delta net of the premium,
  :math:`\\Delta_C = e^k N(d_2)`, :math:`\\Delta_P = -e^k N(-d_2)`. This is the natural
  convention for Deribit's inverse (coin-settled) options: the coin delta of an inverse
  option is the USD delta divided by the forward minus the coin premium, which in
  forward units is exactly the premium-adjusted delta.
* The 25-delta call strike solves :math:`\\Delta_C(k) = 0.25` on the branch where delta
  falls with strike (the premium-adjusted call delta is not monotone far below the
  money); the 25-delta put strike solves :math:`\\Delta_P(k) = -0.25`. Each strike is
  found on a grid of :math:`\\pm 10` ATM standard deviations and refined by bisection,
  with the smile's own vol at every trial strike (by
  :func:`volcal.calibration.delta_pillars.strikes_for_delta`, the one solver of delta
  strikes).
* :math:`RR_{25} = \\sigma(k_{25C}) - \\sigma(k_{25P})`,
  :math:`BF_{25} = (\\sigma(k_{25C}) + \\sigma(k_{25P}))/2 - \\sigma_{ATM}`
  (the "smile" butterfly, vol units, not the broker-strangle butterfly).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import CalibrationWarning, ParameterError

__all__ = ["SmileStats", "smile_stats", "svi_pillars", "svi_smile_stats"]

_DELTAS = ("forward", "premium_adjusted")


@dataclass(frozen=True)
class SmileStats:
    """ATM vol, 25-delta strikes, risk reversal and butterfly of one smile (vol units).

    Attributes
    ----------
    t : float
    atm_vol : float
        Vol at the forward (k = 0).
    k_call25, k_put25 : float
        Log-moneyness of the 25-delta call and put.
    vol_call25, vol_put25 : float
    rr25, bf25 : float
        Risk reversal and butterfly (see the module docs).
    delta : str
        Delta convention.
    """

    t: float
    atm_vol: float
    k_call25: float
    k_put25: float
    vol_call25: float
    vol_put25: float
    rr25: float
    bf25: float
    delta: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }

    def summary(self) -> str:
        """One line: ATM, RR25, BF25 in vol points."""
        return (
            f"t={self.t:.4f}  ATM {100 * self.atm_vol:.2f}  RR25 {100 * self.rr25:+.2f}  "
            f"BF25 {100 * self.bf25:+.2f}  ({self.delta} delta)"
        )


def _delta(k: Any, vol: Any, t: float, is_call: bool, convention: str) -> Any:
    from volcal.calibration.delta_pillars import delta_of

    return delta_of(k, vol, t, is_call, convention)


def _strikes(smile: Any, t: float, level: float, convention: str, atm: float) -> Any:
    """(k of the ``level`` call, k of the ``level`` put) of one smile."""
    from volcal.calibration.delta_pillars import strikes_for_delta

    def iv(k: Any, tt: Any) -> Any:
        return np.asarray(smile.implied_vol(k, t), dtype=np.float64)

    kc, kp = strikes_for_delta(iv, t, level, np.array([True, False]), atm, convention)
    return float(kc), float(kp)


def smile_stats(smile: Any, t: float, *, delta: str = "forward", level: float = 0.25) -> SmileStats:
    """ATM vol, 25-delta RR and BF of a smile with an ``implied_vol(k, t)`` method.

    Parameters
    ----------
    smile : object
        Any smile exposing ``implied_vol(k, t)`` (``SVI``, ``SABR``, ...).
    t : float
        Years to expiry (> 0).
    delta : {"forward", "premium_adjusted"}
        Delta convention (module docs).
    level : float
        Delta level (0.25 for the 25-delta pillars).

    Returns
    -------
    SmileStats
        Fields are NaN (and a :class:`~volcal.errors.CalibrationWarning` is issued) only
        if a delta pillar does not exist on the smile.

    Examples
    --------
    >>> from volcal.models import SVI
    >>> st = smile_stats(SVI(a=0.0, b=0.0001, rho=0.0, m=0.0, sigma=1.0), 1.0)
    >>> round(st.atm_vol, 6), round(abs(st.rr25), 6), round(abs(st.bf25), 6)
    (0.01, 0.0, 0.0)
    """
    if delta not in _DELTAS:
        raise ParameterError(f"delta must be one of {_DELTAS}, got {delta!r}")
    t = float(t)
    if not (t > 0 and math.isfinite(t)):
        raise ParameterError(f"smile_stats: t must be > 0, got {t}")
    if not 0.0 < level < 0.5:
        raise ParameterError(f"smile_stats: level must lie in (0, 0.5), got {level}")
    atm: float = float(np.asarray(smile.implied_vol(0.0, t)))
    kc, kp = _strikes(smile, t, level, delta, atm)
    vc = float(np.asarray(smile.implied_vol(kc, t))) if math.isfinite(kc) else float("nan")
    vp = float(np.asarray(smile.implied_vol(kp, t))) if math.isfinite(kp) else float("nan")
    if not (math.isfinite(vc) and math.isfinite(vp)):
        import warnings

        warnings.warn(
            f"no {level:g}-delta pillar on the smile at t={t:.6g} ({delta} delta)",
            CalibrationWarning,
            stacklevel=2,
        )
    return SmileStats(
        t=t,
        atm_vol=atm,
        k_call25=kc,
        k_put25=kp,
        vol_call25=vc,
        vol_put25=vp,
        rr25=vc - vp,
        bf25=0.5 * (vc + vp) - atm,
        delta=delta,
    )


def svi_smile_stats(
    smiles: Any, t: Any, *, delta: str = "forward", level: float = 0.25, compiled: bool = True
) -> list[SmileStats]:
    """:func:`smile_stats` of many raw SVI smiles at once (one per maturity).

    The same numbers as ``[smile_stats(s, ti, delta=delta) for s, ti in zip(smiles,
    t)]`` - the same grid scan and bisection of
    :func:`~volcal.calibration.delta_pillars.strikes_for_delta`, the same elementwise
    formula :math:`\\sigma = \\sqrt{\\max(w(k), 0)/T}` - but every pillar of every
    smile is solved in one array problem, so the 60 bisection steps are 60 vectorised
    calls instead of 60 per smile; by default (``compiled=True``) the scan and bisection
    run in one compiled loop
    (:func:`volcal.calibration._svi_surface_kernels.svi_delta_strikes`, the same
    arithmetic element by element; the premium-adjusted delta's ``exp`` is the compiled
    one, which may differ from NumPy's in the last bit).

    Parameters
    ----------
    smiles : sequence of SVI
    t : sequence of float
        Years to expiry of each smile (> 0).
    delta, level
        As for :func:`smile_stats`.
    compiled : bool
        Solve the pillars in compiled code (default) or by
        :func:`~volcal.calibration.delta_pillars.strikes_for_delta`.

    Examples
    --------
    >>> from volcal.models import SVI
    >>> s = SVI(a=0.01, b=0.1, rho=-0.3, m=0.0, sigma=0.2)
    >>> svi_smile_stats([s], [0.5])[0] == smile_stats(s, 0.5)
    True
    """
    from volcal.calibration.delta_pillars import strikes_for_delta

    if delta not in _DELTAS:
        raise ParameterError(f"delta must be one of {_DELTAS}, got {delta!r}")
    if not 0.0 < level < 0.5:
        raise ParameterError(f"smile_stats: level must lie in (0, 0.5), got {level}")
    ts = np.asarray(t, dtype=np.float64).ravel()
    n = ts.size
    if len(smiles) != n:
        raise ParameterError(f"svi_smile_stats: {len(smiles)} smiles for {n} maturities")
    if n == 0:
        return []
    if not np.all((ts > 0) & np.isfinite(ts)):
        raise ParameterError(f"smile_stats: t must be > 0, got {ts}")
    par = np.array([[s.a, s.b, s.rho, s.m, s.sigma] for s in smiles], dtype=np.float64)
    par2 = np.concatenate([par, par])  # pillar rows: the calls, then the puts
    t2 = np.concatenate([ts, ts])

    def vol(k: Any, rows: FloatArray, tt: FloatArray) -> FloatArray:
        """Vol of row ``i``'s smile at ``k[i]`` (``k`` of shape (rows,) or (rows, n))."""
        k = np.asarray(k, dtype=np.float64)
        a_, b_, rho_, m_, s_ = (rows[:, j] for j in range(5))
        if k.ndim == 2:
            a_, b_, rho_, m_, s_, tt = (z[:, None] for z in (a_, b_, rho_, m_, s_, tt))
        x = k - m_
        w = a_ + b_ * (rho_ * x + np.sqrt(x * x + s_ * s_))
        return np.asarray(np.sqrt(np.maximum(w, 0.0) / tt))

    def iv(k: Any, tt: Any) -> FloatArray:
        return vol(k, par2, t2)

    atm = vol(np.zeros(n), par, ts)
    side = np.concatenate([np.ones(n, dtype=bool), np.zeros(n, dtype=bool)])
    if compiled:
        from volcal.calibration._svi_surface_kernels import svi_delta_strikes

        kk = svi_delta_strikes(
            par2,
            t2,
            np.where(side, level, -level),
            side,
            np.concatenate([atm, atm]),
            np.linspace(-1.0, 1.0, 801),
            delta == "premium_adjusted",
            60,
        )
    else:
        kk = strikes_for_delta(iv, t2, level, side, np.concatenate([atm, atm]), delta)
    good = np.isfinite(kk)
    vv = np.where(good, vol(np.where(good, kk, 0.0), par2, t2), np.nan)
    out: list[SmileStats] = []
    for i in range(n):
        kc, kp, vc, vp = float(kk[i]), float(kk[n + i]), float(vv[i]), float(vv[n + i])
        if not (math.isfinite(vc) and math.isfinite(vp)):
            import warnings

            warnings.warn(
                f"no {level:g}-delta pillar on the smile at t={ts[i]:.6g} ({delta} delta)",
                CalibrationWarning,
                stacklevel=2,
            )
        a_i = float(atm[i])
        out.append(
            SmileStats(
                t=float(ts[i]),
                atm_vol=a_i,
                k_call25=kc,
                k_put25=kp,
                vol_call25=vc,
                vol_put25=vp,
                rr25=vc - vp,
                bf25=0.5 * (vc + vp) - a_i,
                delta=delta,
            )
        )
    return out


def svi_pillars(svi: Any, t: float, level: float = 0.25) -> SmileStats | None:
    """ATM vol, 25-delta RR and BF of an SVI slice (forward delta), as
    :func:`volcal.calibration.smile_stats.smile_stats` gives them, in a few
    microseconds; ``None`` when the fast path does not apply (the caller then uses
    ``smile_stats``).

    ``smile_stats`` locates each pillar on any smile by a scan of 801 strikes and 60
    bisection steps, each a vectorised smile evaluation (about half of a live slice
    refit). For SVI the total variance and its slope are closed forms,
    :math:`w = a + b(\\rho(k-m) + \\sqrt{(k-m)^2+\\sigma^2})`, so the 25-delta strikes
    solve :math:`N(d_1(k)) = 0.25` (call) and :math:`0.75` (put, :math:`N(d_1)-1 =
    -0.25`) with :math:`d_1 = -k/\\sqrt w + \\sqrt w/2` by Newton's method in scalar
    arithmetic, started from the flat-smile strikes. When :math:`N(d_1)` is strictly
    decreasing on ``smile_stats``' own scan grid (checked, one vectorised evaluation)
    each target has one crossing, so the Newton root is the strike ``smile_stats``
    brackets; otherwise (or without convergence) ``None``.
    """
    from volcal.calibration.delta_pillars import norm_cdf

    a, b, rho, m, sig = svi.a, svi.b, svi.rho, svi.m, svi.sigma
    t = float(t)
    if not (t > 0 and math.isfinite(t)):
        return None
    w0 = a + b * (rho * (-m) + math.sqrt(m * m + sig * sig))
    if not w0 > 0:
        return None
    atm = math.sqrt(w0 / t)
    half = 10.0 * max(atm, 1e-4) * math.sqrt(t)
    grid = np.linspace(-half, half, 801)
    wg = np.asarray(svi.total_variance(grid))
    if not np.all(wg > 0):
        return None
    sg = np.sqrt(wg)
    nd = norm_cdf(-grid / sg + 0.5 * sg)
    if not np.all(np.diff(nd) < 0):
        return None

    def solve(target: float, k: float) -> float:
        for _ in range(50):
            x = k - m
            r = math.sqrt(x * x + sig * sig)
            w = a + b * (rho * x + r)
            if not w > 0:
                return math.nan
            wp = b * (rho + x / r)
            s = math.sqrt(w)
            d1 = -k / s + 0.5 * s
            f = 0.5 * math.erfc(-d1 * 0.7071067811865476) - target
            dd1 = -1.0 / s + k * wp / (2.0 * w * s) + wp / (4.0 * s)
            fp = math.exp(-0.5 * d1 * d1) * 0.3989422804014327 * dd1
            if not fp < 0:
                return math.nan
            step = f / fp
            k -= step
            if abs(step) <= 1e-15 * max(1.0, abs(k)):
                return k if -half <= k <= half else math.nan
        return math.nan

    s0 = atm * math.sqrt(t)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(level)  # d1 of the call pillar on a flat smile
    kc = solve(level, s0 * (0.5 * s0 - z))
    kp = solve(1.0 - level, s0 * (0.5 * s0 + z))
    if not (math.isfinite(kc) and math.isfinite(kp)):
        return None
    vc = float(np.asarray(svi.implied_vol(kc, t)))
    vp = float(np.asarray(svi.implied_vol(kp, t)))
    return SmileStats(
        t=t,
        atm_vol=atm,
        k_call25=kc,
        k_put25=kp,
        vol_call25=vc,
        vol_put25=vp,
        rr25=vc - vp,
        bf25=0.5 * (vc + vp) - atm,
        delta="forward",
    )
