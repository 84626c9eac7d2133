"""Static-arbitrage checks of a smile, a surface or a chain of quotes.

``check_arbitrage(obj)`` returns an :class:`ArbitrageReport` with ``.ok`` and every
violation with where it occurs (maturity, log-moneyness range, worst value).

* **Smile** (``SVI(...)`` or any object with ``implied_vol(k, t)``; give ``t=``):
  butterfly arbitrage where :math:`g(k) < 0` (Gatheral & Jacquier 2014, eq. 2.1; the
  density is :math:`g\\,\\varphi(d_2)/\\sqrt w`, so a negative :math:`g` is a negative
  density), on a dense grid (SVI: the 2402-point grid of :meth:`SVI.min_g` plus the
  wide grid below; other smiles: :math:`g` from central differences of
  :math:`w = \\sigma^2 t`), and Lee's wing bound for SVI, :math:`b(1+|\\rho|) \\le 2`.
* **Surface** (a :class:`~volcal.surface.VolSurface`, a ``CalibrationResult``, or
  SSVI/eSSVI/SVI/SABR parameters): on a dense grid in :math:`(k, t)` - each fitted
  expiry, three maturities inside every gap, two before the first and two after the
  last; in :math:`k` 1201 points over :math:`[-3, 3]`, 401 points over 12 ATM standard
  deviations of the shortest expiry and a few far points out to :math:`|k| = 20` -
  butterfly where :math:`g < 0` and calendar where :math:`w_t < 0` or where :math:`w`
  decreases between consecutive maturities of the grid.
* **Chain** (an ``OptionChain``): model-free checks of mid prices per unit forward, puts
  turned into calls by parity (:math:`C = P + 1 - K/F`): call prices must fall with
  strike no faster than 1 (vertical spreads), be convex in strike (butterflies), and the
  mid total implied variance must not fall between consecutive expiries at the same
  log-moneyness (calendar spreads, compared where the expiries' strikes overlap, the
  later smile interpolated linearly). Mid prices inside wide markets can show
  violations that no one can trade; the report gives their size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volcal._typing import BoolArray, FloatArray
from volcal.errors import DataError, MethodError, ParameterError
from volcal.models.svi import check_k_grid as _k_grid

__all__ = ["ArbitrageReport", "Violation", "check_arbitrage"]

_G_TOL = 1e-10


@dataclass(frozen=True)
class Violation:
    """One region of arbitrage.

    Attributes
    ----------
    kind : {"butterfly", "calendar", "wing", "vertical"}
    t : float
        Maturity (years; for a calendar violation between two maturities, the later).
    k_lo, k_hi : float
        Log-moneyness range of the region.
    worst : float
        Most negative value in the region (``g`` for butterfly, the fall of total
        variance or of ``w_t`` for calendar, the excess slope for vertical spreads,
        the Lee slope excess for wings).
    expiry : str
        Expiry label when known.
    detail : str
    """

    kind: str
    t: float
    k_lo: float
    k_hi: float
    worst: float
    expiry: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "t": float(self.t),
            "k_lo": float(self.k_lo),
            "k_hi": float(self.k_hi),
            "worst": float(self.worst),
            "expiry": self.expiry,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ArbitrageReport:
    """Result of :func:`check_arbitrage` (immutable).

    Attributes
    ----------
    subject : str
        What was checked.
    violations : tuple of Violation
    n_points : int
        Grid points (or quotes) examined.
    """

    subject: str
    violations: tuple[Violation, ...] = ()
    n_points: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No violation found."""
        return not self.violations

    @property
    def butterfly(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.kind in ("butterfly", "wing"))

    @property
    def calendar(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.kind == "calendar")

    def summary(self) -> str:
        """Text: verdict and one line per violation region."""
        head = f"arbitrage check of {self.subject}: " + (
            "no arbitrage found" if self.ok else f"{len(self.violations)} violation region(s)"
        )
        lines = [head + f" ({self.n_points} points)"]
        for v in self.violations:
            lines.append(
                f"  {v.kind:<9} t={v.t:.5f} {v.expiry} k in [{v.k_lo:+.4f}, {v.k_hi:+.4f}] "
                f"worst {v.worst:.3g}" + (f" ({v.detail})" if v.detail else "")
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "n_points": int(self.n_points),
            "violations": [v.to_dict() for v in self.violations],
            "notes": list(self.notes),
        }


def _regions(
    kind: str, k: FloatArray, bad: BoolArray, value: FloatArray, t: float, expiry: str = ""
) -> list[Violation]:
    """Contiguous runs of ``bad`` along sorted ``k`` as violations."""
    out: list[Violation] = []
    if not bad.any():
        return out
    idx = np.flatnonzero(bad)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [idx.size - 1]])
    for s, e in zip(starts, ends, strict=True):
        run = idx[s : e + 1]
        out.append(
            Violation(
                kind, t, float(k[run[0]]), float(k[run[-1]]), float(np.min(value[run])), expiry
            )
        )
    return out


# --------------------------------------------------------------------------- smiles
def _check_smile(smile: Any, t: float, k_grid: Any) -> ArbitrageReport:
    from volcal.models.svi import SVI, _check_grid

    if not (np.isfinite(t) and t > 0):
        raise ParameterError(f"check_arbitrage: t must be > 0, got {t}")
    violations: list[Violation] = []
    if isinstance(smile, SVI):
        subject = smile.summary()
        if k_grid is None:
            grid = np.unique(
                np.concatenate(
                    [
                        _check_grid(smile.a, smile.b, smile.rho, smile.m, smile.sigma),
                        _k_grid(np.sqrt(max(float(smile.total_variance(0.0)), 1e-12))),
                    ]
                )
            )
        else:
            grid = np.sort(np.asarray(k_grid, dtype=np.float64))
        g = smile.g(grid)
        if smile.lee_slope > 2.0 + 1e-12:
            violations.append(
                Violation(
                    "wing",
                    t,
                    -np.inf,
                    np.inf,
                    2.0 - smile.lee_slope,
                    detail=f"Lee bound b(1+|rho|) = {smile.lee_slope:.4g} > 2",
                )
            )
    elif hasattr(smile, "implied_vol"):
        subject = type(smile).__name__
        atm = float(np.asarray(smile.implied_vol(0.0, t)))
        grid = (
            _k_grid(atm * np.sqrt(t))
            if k_grid is None
            else np.sort(np.asarray(k_grid, dtype=np.float64))
        )
        h = 1e-4

        def w(x: FloatArray) -> FloatArray:
            return np.asarray(smile.implied_vol(x, t)) ** 2 * t

        w0 = w(grid)
        wk = (w(grid + h) - w(grid - h)) / (2 * h)
        wkk = (w(grid + h) - 2 * w0 + w(grid - h)) / h**2
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1 - grid * wk / (2 * w0)) ** 2 - 0.25 * wk**2 * (1 / w0 + 0.25) + 0.5 * wkk
        g = np.where(w0 > 0, g, -np.inf)
    else:
        raise MethodError(
            f"check_arbitrage: cannot check a {type(smile).__name__}; give a chain, a smile "
            "with implied_vol(k, t) and t=, a surface or a calibration result"
        )
    violations.extend(_regions("butterfly", grid, ~(g >= -_G_TOL), g, t))
    return ArbitrageReport(subject, tuple(violations), int(grid.size))


# --------------------------------------------------------------------------- surfaces
def _surface_t_grid(t_nodes: FloatArray) -> FloatArray:
    parts = [t_nodes, t_nodes[0] * np.array([0.25, 0.5]), t_nodes[-1] * np.array([1.5, 2.0])]
    for a, b in itertools.pairwise(t_nodes):
        parts.append(a + (b - a) * np.array([0.25, 0.5, 0.75]))
    return np.unique(np.concatenate(parts))


def _check_surface(surface: Any, k_grid: Any, t_grid: Any) -> ArbitrageReport:
    tn = np.asarray(surface.t_nodes, dtype=np.float64)
    model_backed = surface.is_model_surface
    if t_grid is not None:
        tg = np.unique(np.asarray(t_grid, dtype=float))
    else:  # a Fourier model is its own time interpolation: check it at the fitted expiries
        tg = tn if model_backed else _surface_t_grid(tn)
    if np.any(~(tg > 0)):
        raise ParameterError("check_arbitrage: t_grid must be > 0")
    atm0 = float(surface.total_variance(0.0, tn[0]))
    if k_grid is not None:
        kg = np.unique(np.asarray(k_grid))
    elif model_backed:
        # a model surface comes from one martingale law, free of static arbitrage by
        # construction: the check verifies the numerics where every expiry prices to
        # full accuracy, +-4 ATM standard deviations of the first expiry
        kg = np.linspace(-4.0, 4.0, 161) * np.sqrt(max(atm0, 1e-12))
    else:
        kg = _k_grid(np.sqrt(max(atm0, 1e-12)))
    kk, tt = np.meshgrid(kg, tg)
    w, _, _, wt = surface.derivatives(kk, tt)
    g = surface.butterfly_g(kk, tt)
    label = dict(zip(np.round(tn, 12), surface.expiries, strict=True))
    violations: list[Violation] = []
    for i, t in enumerate(tg):
        exp = label.get(round(float(t), 12), "")
        violations += _regions("butterfly", kg, ~(g[i] >= -_G_TOL), g[i], float(t), exp)
        scale = np.maximum(w[i], 1e-8)
        bad_t = ~(wt[i] >= -1e-10 * scale)
        violations += [
            Violation("calendar", v.t, v.k_lo, v.k_hi, v.worst, exp, "w_t < 0")
            for v in _regions("calendar", kg, bad_t, wt[i], float(t))
        ]
        if i > 0:
            dw = w[i] - w[i - 1]
            bad = ~(dw >= -1e-12 * np.maximum(w[i - 1], 1.0))
            violations += [
                Violation(
                    "calendar",
                    v.t,
                    v.k_lo,
                    v.k_hi,
                    v.worst,
                    exp,
                    f"total variance falls from t={tg[i - 1]:.5f}",
                )
                for v in _regions("calendar", kg, bad, dw, float(t))
            ]
    return ArbitrageReport(f"{surface.model} surface", tuple(violations), int(kk.size))


# --------------------------------------------------------------------------- chains
def _check_chain(chain: Any) -> ArbitrageReport:
    from volcal.black import implied_vol
    from volcal.market.chain import expiry_label

    usable = chain.usable() if chain.meta.get("cleaned") else np.ones(len(chain), bool)
    px = chain.forward_price("mid")
    ok = usable & np.isfinite(px) & (px > 0) & np.isfinite(chain.forward) & (chain.forward > 0)
    ok &= (chain.bid > 0) & np.isfinite(chain.ask) & (chain.t > 0)
    if not ok.any():
        raise DataError("check_arbitrage: no quote with a bid, an ask and a forward in the chain")
    x_all = chain.strike / chain.forward
    violations: list[Violation] = []
    smiles: list[tuple[float, str, FloatArray, FloatArray]] = []
    n_pts = 0
    for e in chain.expiries:
        m = ok & (chain.expiry == e)
        if m.sum() < 2:
            continue
        t = float(chain.t[m][0])
        lab = expiry_label(e)
        x, p, call = x_all[m], px[m], chain.is_call[m]
        otm = np.where(call, x >= 1.0, x < 1.0)
        x, p, call = x[otm], p[otm], call[otm]
        c = np.where(call, p, p + 1.0 - x)
        order = np.argsort(x)
        x, c = x[order], c[order]
        keep = np.concatenate([[True], np.diff(x) > 0])
        x, c = x[keep], c[keep]
        n_pts += x.size
        k = np.log(x)
        if x.size >= 2:
            slope = np.diff(c) / np.diff(x)
            too_steep = slope < -1.0 - 1e-12
            rising = slope > 1e-12
            kmid = 0.5 * (k[1:] + k[:-1])
            violations += [
                Violation("vertical", v.t, v.k_lo, v.k_hi, v.worst, lab, "call slope < -1")
                for v in _regions("vertical", kmid, too_steep, slope + 1.0, t)
            ]
            violations += [
                Violation("vertical", v.t, v.k_lo, v.k_hi, v.worst, lab, "call price rises")
                for v in _regions("vertical", kmid, rising, -slope, t)
            ]
            if x.size >= 3:
                conv = np.diff(slope)
                violations += [
                    Violation(
                        "butterfly", v.t, v.k_lo, v.k_hi, v.worst, lab, "mid calls not convex"
                    )
                    for v in _regions("butterfly", k[1:-1], conv < -1e-12, conv, t)
                ]
        iv = np.asarray(implied_vol(c, 1.0, x, t, True, full_output=True).vol)
        good = np.isfinite(iv)
        smiles.append((t, lab, k[good], iv[good] ** 2 * t))
    for (_t0, _l0, k0, w0), (t1, l1, k1, w1) in itertools.pairwise(smiles):
        if k0.size < 1 or k1.size < 2:
            continue
        inside = (k0 >= k1[0]) & (k0 <= k1[-1])
        if not inside.any():
            continue
        kc = k0[inside]
        diff = np.interp(kc, k1, w1) - w0[inside]
        violations += [
            Violation("calendar", v.t, v.k_lo, v.k_hi, v.worst, l1, "mid total variance falls")
            for v in _regions("calendar", kc, diff < -1e-12, diff, t1)
        ]
    return ArbitrageReport(
        f"{chain.underlying} chain of {chain.snapshot.isoformat()} (mid prices)",
        tuple(violations),
        n_pts,
    )


def check_arbitrage(
    obj: Any,
    t: float | None = None,
    *,
    k_grid: Any = None,
    t_grid: Any = None,
) -> ArbitrageReport:
    """Check a chain, a smile or a surface for static arbitrage (module docs).

    Parameters
    ----------
    obj : OptionChain, SVI (or any smile with ``implied_vol``), VolSurface,
          CalibrationResult, SSVI/ESSVI/SVISmiles/SABRSmiles
    t : float
        Maturity of a single smile (required for smiles, ignored otherwise).
    k_grid, t_grid : array_like, optional
        Override the default grids.

    Examples
    --------
    >>> from volcal.models import SVI
    >>> rep = check_arbitrage(SVI(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153), t=1.0)
    >>> rep.ok, rep.violations[0].kind
    (False, 'butterfly')
    """
    from volcal.calibration.result import CalibrationResult
    from volcal.market.chain import OptionChain
    from volcal.surface.volsurface import VolSurface

    if isinstance(obj, OptionChain):
        return _check_chain(obj)
    if isinstance(obj, CalibrationResult):
        obj = obj.surface()
    if isinstance(obj, VolSurface):
        return _check_surface(obj, k_grid, t_grid)
    if hasattr(obj, "smiles") or hasattr(obj, "theta"):
        return _check_surface(VolSurface.from_model(obj), k_grid, t_grid)
    if t is None:
        raise ParameterError("check_arbitrage: give t= (years) to check a single smile")
    return _check_smile(obj, float(t), k_grid)
