"""Market state, volatility sources, and portfolio valuation and greeks.

A :class:`Market` is what a portfolio is valued against: the snapshot time, the index, a
forward curve and a volatility source. The volatility source is anything with a method
``iv(strike, t) -> ndarray`` (or a plain callable ``f(strike, t)``), so the risk layer does
not depend on a particular surface class (DESIGN.md feeds risk from the ``VolSurface``; a
surface fits this protocol as it is, and the adapters below keep risk usable from a chain or
a calibration alone). Three adapters are provided:

* :class:`MarkVols` - the chain's mark implied vols, per expiry linear in log-moneyness
  (flat vol beyond the outermost strikes), across expiries linear in total variance at
  fixed log-moneyness ``k = ln(K/F(t))`` (flat vol before the first and after the last);
* :class:`SurfaceVols` - the arbitrage-free SVI surface (``vols="surface"``, a
  ``calibrate(chain, "svi_surface")`` fit): its own time interpolation, certified free of
  calendar and butterfly arbitrage between and beyond the expiries
  (:class:`~volcal.models.svi.SVISurface`); the fitted surface risk uses by default;
* :class:`SVIVols` - free per-expiry SVI smiles (``vols="svi"`` or an ``"svi"``
  :class:`~volcal.calibration.result.CalibrationResult`: one raw SVI smile per expiry,
  same interpolation across expiries as the marks; neighbouring smiles may cross);
* :class:`ModelVols` - a stochastic-model calibration, through :func:`volcal.model_iv`.

Valuation is Black-76 with the source's vol at the option's strike, undiscounted (Deribit
options settle at expiry against the future of that expiry; the rate is in the forward).
Values and greeks exist in USD and in coin; for an inverse (coin-settled) instrument the coin
value is the USD value divided by the instrument's own underlying price, the convention of
Deribit's marks (see :mod:`volcal.market.chain`), and the coin delta is Deribit's
``USD delta - coin price`` (:func:`volcal.black.coin_greeks`).

Examples
--------
>>> import numpy as np
>>> from volcal.market import OptionChain
>>> ch = OptionChain.from_arrays(underlying="BTC", snapshot="2026-01-07T08:00Z",
...     expiry="2026-02-06T08:00Z", strike=[90e3, 100e3, 110e3], is_call=True,
...     mark=[0.1, 0.05, 0.02], underlying_price=100e3, index_price=99.9e3,
...     mark_iv=[0.55, 0.5, 0.52], settlement="inverse")
>>> m = Market.from_chain(ch)
>>> round(float(m.iv(100e3, m.curve_t[0])[()]), 6)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from volcal._typing import FloatArray
from volcal.errors import DataError, ParameterError
from volcal.market.chain import SECONDS_PER_YEAR, OptionChain
from volcal.risk.portfolio import Portfolio

_MIN_T = 1.0 / (365.0 * 24.0 * 60.0)  # one minute: instruments closer to expiry are "expired"


@runtime_checkable
class VolSource(Protocol):
    """Anything that gives Black implied vols by absolute strike and time to expiry."""

    def iv(self, strike: Any, t: Any) -> FloatArray: ...


@dataclass(frozen=True)
class ForwardCurve:
    """Forwards by time: ln F linear in t between nodes (index at t = 0), last slope beyond."""

    t: FloatArray
    forward: FloatArray

    def __call__(self, t: Any) -> FloatArray:
        tt = np.asarray(t, dtype=np.float64)
        lf = np.log(self.forward)
        out = np.interp(tt, self.t, lf)
        if self.t.size >= 2:
            slope = (lf[-1] - lf[-2]) / (self.t[-1] - self.t[-2])
            out = np.where(tt > self.t[-1], lf[-1] + slope * (tt - self.t[-1]), out)
        return np.exp(out)


class _SliceVols:
    """Shared interpolation for sources defined on a set of expiries.

    Subclasses give ``t`` (ascending), ``forwards`` and ``_slice_vol(i, k)``.
    """

    t: FloatArray
    forwards: FloatArray
    curve: ForwardCurve

    def _slice_vol(self, i: int, k: FloatArray) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def iv(self, strike: Any, t: Any) -> FloatArray:
        """Black vols at absolute strikes ``strike`` and times ``t`` (broadcast)."""
        kk, tt = np.broadcast_arrays(
            np.asarray(strike, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        out = np.empty(kk.shape)
        flat_k, flat_t, flat_o = kk.reshape(-1), tt.reshape(-1), out.reshape(-1)
        for tv in np.unique(flat_t):
            sel = flat_t == tv
            flat_o[sel] = self._at(flat_k[sel], float(tv))
        return out

    def _at(self, strike: FloatArray, t: float) -> FloatArray:
        ts = self.t
        j = int(np.searchsorted(ts, t))
        for i in (j - 1, j):
            if 0 <= i < ts.size and abs(ts[i] - t) <= 1e-10 * max(1.0, ts[i]):
                return self._slice_vol(i, np.log(strike / self.forwards[i]))
        k = np.log(strike / float(self.curve(t)))
        if j == 0:
            return self._slice_vol(0, k)
        if j >= ts.size:
            return self._slice_vol(ts.size - 1, k)
        t0, t1 = ts[j - 1], ts[j]
        w0 = self._slice_vol(j - 1, k) ** 2 * t0
        w1 = self._slice_vol(j, k) ** 2 * t1
        w = w0 + (w1 - w0) * (t - t0) / (t1 - t0)
        return np.sqrt(np.maximum(w, 0.0) / t)


class MarkVols(_SliceVols):
    """The chain's mark implied vols, interpolated (see the module docs).

    Quotes used: finite positive ``mark_iv`` on rows the chain marks usable; where a
    strike has both a call and a put, their mark vols are averaged (Deribit marks both
    from one smile, so they agree to rounding).
    """

    def __init__(self, chain: OptionChain, curve: ForwardCurve, t: FloatArray, fwd: FloatArray):
        tq = chain.t
        ok = np.isfinite(chain.mark_iv) & (chain.mark_iv > 0.0) & (tq > _MIN_T)
        ts, fs, ks, vs = [], [], [], []
        for ti, fi in zip(t, fwd, strict=True):
            sel = ok & (np.abs(tq - ti) <= 1e-9)
            if not sel.any():
                continue
            strikes, inv = np.unique(chain.strike[sel], return_inverse=True)
            vols = np.bincount(inv, chain.mark_iv[sel]) / np.bincount(inv)
            ts.append(ti)
            fs.append(fi)
            ks.append(np.log(strikes / fi))
            vs.append(vols)
        if not ts:
            raise DataError("chain has no usable mark implied vols to value options with")
        self.t = np.array(ts)
        self.forwards = np.array(fs)
        self._k = ks
        self._v = vs
        self.curve = curve

    def _slice_vol(self, i: int, k: FloatArray) -> FloatArray:
        return np.interp(k, self._k[i], self._v[i])


class SVIVols(_SliceVols):
    """Vols of an SVI calibration (``params`` an :class:`~volcal.models.SVISmiles`)."""

    def __init__(self, smiles: Any, curve: ForwardCurve):
        self.t = np.asarray(smiles.t, dtype=np.float64)
        self.forwards = np.asarray(smiles.forwards, dtype=np.float64)
        self._smiles = smiles
        self.curve = curve

    def _slice_vol(self, i: int, k: FloatArray) -> FloatArray:
        w = self._smiles.smiles[i].total_variance(k)
        return np.sqrt(np.maximum(w, 0.0) / self.t[i])


class SurfaceVols:
    """Vols of an arbitrage-free SVI surface (``params`` an
    :class:`~volcal.models.svi.SVISurface`), at log-moneyness against the market's
    forward curve and with the surface's own interpolation in time."""

    def __init__(self, surface: Any, curve: ForwardCurve):
        self.surface = surface
        self.curve = curve

    def iv(self, strike: Any, t: Any) -> FloatArray:
        """Black vols at absolute strikes ``strike`` and times ``t`` (broadcast)."""
        kk, tt = np.broadcast_arrays(
            np.asarray(strike, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        if np.any(~(tt > 0)) or np.any(~(kk > 0)):
            raise ParameterError("SurfaceVols.iv: strikes and times must be > 0")
        k = np.log(kk / self.curve(tt))
        w = self.surface.total_variance(k, tt)
        return np.asarray(np.sqrt(np.maximum(w, 0.0) / tt), dtype=np.float64)


class ModelVols:
    """Vols of a calibrated stochastic model through :func:`volcal.model_iv`."""

    def __init__(self, model: Any, curve: ForwardCurve):
        self.model = model
        self.curve = curve

    def iv(self, strike: Any, t: Any) -> FloatArray:
        from volcal.pricing import model_iv

        kk, tt = np.broadcast_arrays(
            np.asarray(strike, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        return np.asarray(model_iv(self.model, self.curve(tt), kk, tt), dtype=np.float64)


class _CallableVols:
    def __init__(self, fn: Callable[[Any, Any], Any]):
        self.fn = fn

    def iv(self, strike: Any, t: Any) -> FloatArray:
        return np.asarray(self.fn(strike, t), dtype=np.float64)


def _expiry_forwards(chain: OptionChain) -> tuple[np.ndarray, FloatArray, FloatArray]:
    """One forward per expiry (median of the quoted underlying/forward), expired dropped."""
    fwd = np.where(np.isfinite(chain.forward), chain.forward, chain.underlying_price)
    tq = chain.t
    exps, ts, fs = [], [], []
    for e in chain.expiries:
        sel = (chain.expiry == e) & np.isfinite(fwd) & (fwd > 0.0)
        ti = float(tq[chain.expiry == e][0])
        if ti <= _MIN_T or not sel.any():
            continue
        exps.append(e)
        ts.append(ti)
        fs.append(float(np.median(fwd[sel])))
    if not ts:
        raise DataError("chain has no unexpired expiry with a known forward")
    return np.array(exps, dtype="datetime64[ns]"), np.array(ts), np.array(fs)


@dataclass(frozen=True, eq=False)
class Market:
    """What a portfolio is valued against (immutable).

    Attributes
    ----------
    underlying : str
    snapshot : pandas.Timestamp
    index_price : float
        Spot index (perpetuals are valued at the index).
    curve : ForwardCurve
        Forward by time; the listed expiries are its nodes.
    vols : VolSource
    vol_label : str
        Where the vols come from (``"mark"``, ``"svi"``, a model name, ``"custom"``).
    chain : OptionChain or None
        The quotes (bid/ask/mark, instrument names) when built from a chain.
    """

    underlying: str
    snapshot: pd.Timestamp
    index_price: float
    curve: ForwardCurve
    vols: Any
    vol_label: str = "custom"
    chain: OptionChain | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def curve_t(self) -> FloatArray:
        return self.curve.t[1:]

    def iv(self, strike: Any, t: Any) -> FloatArray:
        return np.asarray(self.vols.iv(strike, t), dtype=np.float64)

    def years_to(self, expiry: pd.Timestamp) -> float:
        return float((expiry - self.snapshot).total_seconds()) / SECONDS_PER_YEAR

    @classmethod
    def from_chain(cls, chain: OptionChain, vols: Any = "mark") -> Market:
        """A market from a chain's forwards and index, with vols from ``vols``.

        Parameters
        ----------
        chain : OptionChain
        vols : "mark", "surface", "svi", CalibrationResult, VolSource or callable
            ``"mark"``: the chain's mark IVs (:class:`MarkVols`; the default, because
            Deribit marks positions to its marks and its portfolio margin shocks each
            option's mark IV, see :mod:`volcal.risk.portfolio_margin` - so a
            Deribit-mirroring valuation or margin starts from them); ``"surface"`` (or ``"svi_surface"``): the
            arbitrage-free SVI surface fitted to the chain
            (``volcal.calibrate(chain, "svi_surface")``, :class:`SurfaceVols`) - the
            model vols to use wherever a fitted surface is wanted (scenario, VaR or
            hedge revaluation away from the marks), because between and beyond the
            expiries it is certified free of calendar and butterfly arbitrage;
            ``"svi"``: the free per-expiry SVI smiles (:class:`SVIVols`, may carry
            calendar arbitrage), kept for comparison; a CalibrationResult of the same
            chain: an SVI surface, SVI smiles or a stochastic model
            (:class:`ModelVols`); anything with ``iv(strike, t)`` or a callable
            ``f(strike, t)``.
        """
        if not isinstance(chain, OptionChain):
            raise DataError(f"expected an OptionChain, got {type(chain).__name__}")
        exps, ts, fs = _expiry_forwards(chain)
        index = float(chain.index_price)
        if not (math.isfinite(index) and index > 0.0):
            index = float(fs[0])
        curve = ForwardCurve(np.concatenate([[0.0], ts]), np.concatenate([[index], fs]))
        label = "custom"
        source: Any
        if isinstance(vols, str):
            if vols == "mark":
                source, label = MarkVols(chain, curve, ts, fs), "mark"
            elif vols in ("surface", "svi_surface"):
                from volcal.calibration import calibrate

                fit = calibrate(chain, "svi_surface")
                source, label = SurfaceVols(fit.params, curve), "svi_surface"
            elif vols == "svi":
                from volcal.calibration import calibrate

                source, label = SVIVols(calibrate(chain, "svi").params, curve), "svi"
            else:
                raise ParameterError(
                    f"vols must be 'mark', 'surface', 'svi' or a vol source, got {vols!r}"
                )
        elif isinstance(vols, VolSource):  # first: a VolSurface also has model/params
            source, label = vols, f"surface ({getattr(vols, 'model', 'custom')})"
        elif hasattr(vols, "params") and hasattr(vols, "model"):  # CalibrationResult
            from volcal.models.svi import SVISurface

            params = vols.params
            label = str(vols.model)
            if isinstance(params, SVISurface):
                source = SurfaceVols(params, curve)
            elif hasattr(params, "smiles") and hasattr(params, "forwards"):
                if label != "svi":
                    raise ParameterError(
                        f"{label} calibration: per-expiry smiles other than SVI are not "
                        "supported as a vol source; pass a VolSource"
                    )
                source = SVIVols(params, curve)
            elif hasattr(params, "char_func"):
                source = ModelVols(params, curve)
            else:
                raise ParameterError(f"cannot use a {label} calibration as a vol source")
        elif callable(vols):
            source = _CallableVols(vols)
        else:
            raise ParameterError(f"cannot use {type(vols).__name__} as a vol source")
        return cls(
            underlying=chain.underlying,
            snapshot=chain.snapshot,
            index_price=index,
            curve=curve,
            vols=source,
            vol_label=label,
            chain=chain,
            meta={"settlement": chain.settlement, "expiries": exps},
        )


def as_market(market: Any) -> Market:
    """A :class:`Market` from a Market or an OptionChain (mark vols)."""
    if isinstance(market, Market):
        return market
    if isinstance(market, OptionChain):
        return Market.from_chain(market)
    raise DataError(
        f"market must be an OptionChain or a Market, got {type(market).__name__} "
        "(a calibrated surface: Market.from_chain(chain, vols=fit))"
    )


# ---------------------------------------------------------------------- resolution
@dataclass(frozen=True, eq=False)
class Book:
    """A portfolio resolved against a market: one array entry per position.

    ``kind`` is 0 option, 1 future, 2 perpetual; ``forward`` is the instrument's own
    underlying price (the expiry's forward; the index for perpetuals); ``entry`` the
    reference price of futures P&L (the entry price if given, else today's forward, so
    today's value is 0); ``vol`` the source's vol at the option's strike (NaN otherwise).
    """

    portfolio: Portfolio
    market: Market
    names: tuple[str, ...]
    size: FloatArray
    kind: np.ndarray
    inverse: np.ndarray
    is_call: np.ndarray
    strike: FloatArray
    t: FloatArray
    forward: FloatArray
    entry: FloatArray
    vol: FloatArray
    expiry_label: tuple[str, ...]

    @property
    def is_option(self) -> np.ndarray:
        return self.kind == 0

    def values_usd(self, fwd_mult: Any, vol: Any) -> FloatArray:
        """USD value per unit size for forwards ``forward * fwd_mult`` and option vols
        ``vol`` (both broadcast against the positions, e.g. shape (n_scenarios, n))."""
        from volcal.black import price

        f, v = np.broadcast_arrays(
            self.forward * np.asarray(fwd_mult, dtype=np.float64), np.asarray(vol, dtype=np.float64)
        )
        out = np.array(f - self.entry, dtype=np.float64)  # futures and perpetuals: F - E
        opt = np.broadcast_to(self.is_option, f.shape)
        if opt.any():
            kk = np.broadcast_to(self.strike, f.shape)[opt]
            tt = np.broadcast_to(self.t, f.shape)[opt]
            cc = np.broadcast_to(self.is_call, f.shape)[opt]
            out[opt] = price(f[opt], kk, tt, np.maximum(v[opt], 0.0), cc)
        return np.asarray(out, dtype=np.float64)

    def values_margin_ccy(self, fwd_mult: Any, vol: Any) -> FloatArray:
        """Value per unit size in the settlement currency, expressed in USD at today's index.

        Inverse instruments: coin value (USD value / own underlying price) times today's
        index; linear instruments: USD value. Differences of this quantity between
        scenarios are the P&L a coin-margined (inverse) or USD-margined (linear) account
        sees, in one unit.
        """
        usd = self.values_usd(fwd_mult, vol)
        f = self.forward * np.asarray(fwd_mult, dtype=np.float64)
        return np.where(self.inverse, usd / f * self.market.index_price, usd)


def resolve(portfolio: Portfolio, market: Any) -> Book:
    """Resolve every position against ``market``; errors name the position.

    Raises
    ------
    DataError
        Wrong currency, expired instrument, or an option not listed in the market's chain.
    """
    mkt = as_market(market)
    n = len(portfolio)
    kind = np.zeros(n, dtype=np.int8)
    inverse = np.zeros(n, dtype=bool)
    is_call = np.zeros(n, dtype=bool)
    strike = np.full(n, np.nan)
    t = np.zeros(n)
    entry = np.full(n, np.nan)
    labels = []
    listed: set[str] | None = None
    if mkt.chain is not None:
        listed = {str(s).upper() for s in mkt.chain.instrument}
    for i, p in enumerate(portfolio):
        ins = p.instrument
        where = f"position {i} ({p.name})"
        if ins.underlying != mkt.underlying.upper():
            raise DataError(
                f"{where}: wrong currency - underlying {ins.underlying}, market is {mkt.underlying}"
            )
        inverse[i] = ins.settlement == "inverse"
        if ins.kind == "perpetual":
            kind[i] = 2
            labels.append("perpetual")
            continue
        assert ins.expiry is not None
        ti = mkt.years_to(ins.expiry)
        if ti <= _MIN_T:
            raise DataError(
                f"{where}: expired ({ins.expiry.isoformat()} is not after the market snapshot "
                f"{mkt.snapshot.isoformat()})"
            )
        t[i] = ti
        labels.append(ins.expiry.strftime("%Y-%m-%d"))
        if ins.kind == "future":
            kind[i] = 1
            continue
        if listed is not None and ins.name not in listed:
            raise DataError(f"{where}: unknown instrument - not listed in the market's chain")
        strike[i] = ins.strike
        is_call[i] = ins.is_call
    forward = np.where(kind == 2, mkt.index_price, mkt.curve(t))
    for i, p in enumerate(portfolio):
        if kind[i] != 0:
            entry[i] = p.entry_price if math.isfinite(p.entry_price) else forward[i]
    vol = np.full(n, np.nan)
    opt = kind == 0
    if opt.any():
        vol[opt] = mkt.iv(strike[opt], t[opt])
        bad = opt & ~(np.isfinite(vol) & (vol >= 0.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"position {i} ({portfolio.positions[i].name}): the vol source gives no valid "
                f"vol ({vol[i]})"
            )
    return Book(
        portfolio=portfolio,
        market=mkt,
        names=tuple(portfolio.names),
        size=portfolio.sizes,
        kind=kind,
        inverse=inverse,
        is_call=is_call,
        strike=strike,
        t=t,
        forward=forward,
        entry=entry,
        vol=vol,
        expiry_label=tuple(labels),
    )


# ---------------------------------------------------------------------- greeks
_POS_FIELDS = (
    "value_usd",
    "value_coin",
    "delta",
    "delta_coin",
    "gamma",
    "vega_usd",
    "vega_coin",
    "theta_usd",
    "pnl_usd",
)


@dataclass(frozen=True, eq=False)
class PortfolioRisk:
    """Values and greeks of every position, their totals, and per-expiry aggregates.

    Per position (size included):

    * ``value_usd``, ``value_coin`` - value today (futures: P&L since the entry price);
    * ``delta`` - dV_usd/dF in coin of underlying; ``delta_coin`` - the exchange delta of
      inverse instruments (Deribit's, USD delta minus coin price for options; E/F per coin
      for inverse futures), equal to ``delta`` for linear ones;
    * ``gamma`` - d delta / dF (per USD of underlying); ``vega_usd``/``vega_coin`` - per vol
      point (0.01); ``theta_usd`` - per calendar day;
    * ``pnl_usd`` - unrealised P&L since the entry price: futures as their value; options
      ``size x (c - entry) x F`` (inverse, coin prices) or ``size x (V - entry)`` (linear);
      0 for an option given without an entry price.

    ``by_expiry`` adds the time-normalised vega ``vega_usd * sqrt(30 / days)`` (vega
    scaled to a 30-day equivalent, so short-dated vega weighs more, as vol moves do).
    """

    names: tuple[str, ...]
    expiry: tuple[str, ...]
    sizes: FloatArray
    columns: dict[str, FloatArray]
    by_expiry: tuple[dict[str, Any], ...]
    index_price: float
    vol_label: str

    def total(self, name: str) -> float:
        return float(np.sum(self.columns[name]))

    @property
    def totals(self) -> dict[str, float]:
        return {k: self.total(k) for k in _POS_FIELDS}

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"instrument": self.names, "expiry": self.expiry, "size": self.sizes})
        for k in _POS_FIELDS:
            df[k] = self.columns[k]
        return df

    def summary(self) -> str:
        tot = self.totals
        lines = [
            f"Portfolio risk ({len(self.names)} positions, vols: {self.vol_label}, "
            f"index {self.index_price:,.2f})",
            f"  value      {tot['value_usd']:>14,.2f} USD  {tot['value_coin']:>12.6f} coin",
            f"  delta      {tot['delta']:>14.6f} coin (USD terms)  "
            f"{tot['delta_coin']:.6f} coin (exchange)",
            f"  gamma      {tot['gamma']:>14.6g} per USD   "
            f"({tot['gamma'] * self.index_price * 0.01:.6f} coin per 1% move)",
            f"  vega       {tot['vega_usd']:>14,.2f} USD per vol point",
            f"  theta      {tot['theta_usd']:>14,.2f} USD per day",
            f"  P&L        {tot['pnl_usd']:>14,.2f} USD since entry prices",
            "  expiry          delta        gamma/1%      vega USD   vega30 USD   theta USD",
        ]
        for row in self.by_expiry:
            lines.append(
                f"  {row['expiry']:<12} {row['delta']:>10.4f} {row['gamma_1pct']:>13.5f} "
                f"{row['vega_usd']:>13,.1f} {row['vega_30d_usd']:>12,.1f} {row['theta_usd']:>11,.1f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vol_source": self.vol_label,
            "index_price": self.index_price,
            "totals": self.totals,
            "by_expiry": [dict(r) for r in self.by_expiry],
            "positions": [
                {
                    "instrument": n,
                    "size": float(s),
                    **{k: float(self.columns[k][i]) for k in _POS_FIELDS},
                }
                for i, (n, s) in enumerate(zip(self.names, self.sizes, strict=True))
            ],
        }


def portfolio_greeks(portfolio: Portfolio, market: Any) -> PortfolioRisk:
    """Values and Black-76 greeks of a portfolio (see :class:`PortfolioRisk`).

    Option greeks use the vol source's vol at the strike with the vol held fixed
    (sticky strike).

    Examples
    --------
    >>> import volcal  # doctest: +SKIP
    >>> r = portfolio_greeks(Portfolio.from_records([...]), chain)  # doctest: +SKIP
    """
    from volcal.black import greeks as black_greeks

    book = resolve(portfolio, market)
    n = len(book.size)
    size, f = book.size, book.forward
    cols = {k: np.zeros(n) for k in _POS_FIELDS}
    fut = ~book.is_option
    # futures/perpetuals: V = q (F - E); coin value of an inverse one q (F - E) / F
    cols["value_usd"][fut] = (size * (f - book.entry))[fut]
    cols["delta"][fut] = size[fut]
    cols["delta_coin"][fut] = np.where(book.inverse, size * book.entry / f, size)[fut]
    opt = book.is_option
    if opt.any():
        g = black_greeks(f[opt], book.strike[opt], book.t[opt], book.vol[opt], book.is_call[opt])
        gc = black_greeks(
            f[opt], book.strike[opt], book.t[opt], book.vol[opt], book.is_call[opt], units="coin"
        )
        value = book.values_usd(1.0, book.vol)[opt]
        q = size[opt]
        cols["value_usd"][opt] = q * value
        cols["delta"][opt] = q * g.delta
        cols["delta_coin"][opt] = q * np.where(book.inverse[opt], gc.delta, g.delta)
        cols["gamma"][opt] = q * g.gamma
        cols["vega_usd"][opt] = q * g.vega * 0.01
        cols["theta_usd"][opt] = q * g.theta / 365.0
    cols["value_coin"] = cols["value_usd"] / np.where(book.inverse, f, book.market.index_price)
    cols["pnl_usd"][fut] = cols["value_usd"][fut]
    entry = np.array([p.entry_price for p in portfolio])
    known = opt & np.isfinite(entry)
    unit = cols["value_usd"] / size
    per_unit = np.where(book.inverse, (unit / f - entry) * f, unit - entry)
    cols["pnl_usd"][known] = (size * per_unit)[known]
    cols["vega_coin"] = cols["vega_usd"] / f
    for a in cols.values():
        a.setflags(write=False)
    rows = []
    labels = np.array(book.expiry_label, dtype=object)
    for lab in sorted(set(book.expiry_label), key=lambda s: (s == "perpetual", s)):
        sel = labels == lab
        days = float(book.t[sel][0] * 365.0)
        vega = float(np.sum(cols["vega_usd"][sel]))
        gamma = float(np.sum(cols["gamma"][sel]))
        rows.append(
            {
                "expiry": lab,
                "days": days,
                "n": int(sel.sum()),
                "delta": float(np.sum(cols["delta"][sel])),
                "gamma": gamma,
                "gamma_1pct": gamma * float(f[sel][0]) * 0.01,
                "vega_usd": vega,
                "vega_30d_usd": vega * math.sqrt(30.0 / days) if days > 0 else 0.0,
                "theta_usd": float(np.sum(cols["theta_usd"][sel])),
            }
        )
    sizes = size.copy()
    sizes.setflags(write=False)
    return PortfolioRisk(
        names=book.names,
        expiry=book.expiry_label,
        sizes=sizes,
        columns=cols,
        by_expiry=tuple(rows),
        index_price=book.market.index_price,
        vol_label=book.market.vol_label,
    )


__all__ = [
    "Book",
    "ForwardCurve",
    "MarkVols",
    "Market",
    "ModelVols",
    "PortfolioRisk",
    "SVIVols",
    "SurfaceVols",
    "VolSource",
    "as_market",
    "portfolio_greeks",
    "resolve",
]
