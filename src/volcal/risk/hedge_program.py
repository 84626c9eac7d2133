"""Hedge search: the cheapest listed trades that bring a portfolio's greeks to targets.

Also called "option portfolio calibration": given targets for delta, gamma and vega (in total
or per expiry bucket) and the listed options with their bid and ask, find trades that reach
the targets at the lowest cost of crossing the spread. It is a linear program (solved with
:func:`scipy.optimize.linprog`, HiGHS):

.. math::

    \\min_{b, s \\ge 0} \\sum_j c^{buy}_j b_j + c^{sell}_j s_j \\quad\\text{s.t.}\\quad
    \\ell_g \\le G_g + \\sum_j a_{gj} (b_j - s_j) \\le u_g,\\quad b_j, s_j \\le \\bar{x}

``b_j``/``s_j`` are coin amounts bought at the ask and sold at the bid, ``a_{gj}`` the greek
``g`` of one unit of instrument ``j``, ``G_g`` the portfolio's, ``[l_g, u_g]`` the target
with its tolerance. The cost of a trade is what it loses against the mid (USD): the half
spread ``(ask - bid) / 2`` per coin for a buy or a sell, plus the exchange fee per option
(``option_fee`` coin, 0.0003 - Deribit's taker fee of 0.03% of the underlying per option).
The perpetual is available for delta at ``perp_cost`` (a fraction of the index, 5 bp by
default, a taker fee). The program is linear, so a solution uses at most as many
instruments as there are binding targets (a vertex), which is what a trader wants: few
legs.

Greek units: ``delta`` in coin (dV/dF), ``gamma`` in coin of delta per 1% move, ``vega`` in
USD per vol point, as in :class:`~volcal.risk.valuation.PortfolioRisk`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from volcal.errors import ParameterError, VolcalError
from volcal.market.chain import OptionChain
from volcal.risk.portfolio import Portfolio
from volcal.risk.valuation import as_market, portfolio_greeks

_DEFAULT_TOL = {"delta": 0.01, "gamma": 0.005, "vega": 10.0}
_KEY = re.compile(r"^(delta|gamma|vega)(?::(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)?)?$")


class HedgeError(VolcalError):
    """The targets cannot be reached with the instruments and limits given."""


@dataclass(frozen=True)
class Target:
    """One greek target: ``greek`` over expiries in ``[days_min, days_max)`` days."""

    greek: str
    value: float
    tolerance: float
    days_min: float = 0.0
    days_max: float = math.inf

    @property
    def label(self) -> str:
        if self.days_min == 0.0 and math.isinf(self.days_max):
            return self.greek
        hi = "" if math.isinf(self.days_max) else f"{self.days_max:g}"
        return f"{self.greek}:{self.days_min:g}-{hi}"


def parse_targets(
    spec: str | dict[str, float], tolerance: dict[str, float] | None = None
) -> tuple[Target, ...]:
    """Targets from ``"delta=0,gamma=0.05,vega:0-30=0,vega:30-=-500"`` or a dict.

    Keys: ``delta``, ``gamma``, ``vega``, optionally restricted to expiries between two
    day counts (``vega:0-30`` is expiries under 30 days, ``vega:30-`` 30 days and beyond).
    ``tolerance`` maps a greek name to its absolute tolerance (defaults: delta 0.01 coin,
    gamma 0.005 coin per 1%, vega 10 USD per vol point).
    """
    tol = {**_DEFAULT_TOL, **(tolerance or {})}
    if isinstance(spec, str):
        items: dict[str, float] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key, eq, val = part.partition("=")
            if not eq:
                raise ParameterError(f"target {part!r}: expected name=value (e.g. delta=0)")
            try:
                items[key.strip()] = float(val)
            except ValueError as exc:
                raise ParameterError(f"target {part!r}: {val!r} is not a number") from exc
    else:
        items = {str(k): float(v) for k, v in spec.items()}
    if not items:
        raise ParameterError("no targets given")
    out = []
    for key, value in items.items():
        m = _KEY.match(key.strip().lower())
        if m is None:
            raise ParameterError(
                f"unknown target {key!r}: use delta, gamma, vega, optionally ':DAYS-DAYS'"
            )
        if not math.isfinite(value):
            raise ParameterError(f"target {key!r} must be finite")
        greek = m.group(1)
        lo = float(m.group(2)) if m.group(2) else 0.0
        hi = float(m.group(3)) if m.group(3) else math.inf
        if m.group(2) and not hi > lo:
            raise ParameterError(f"target {key!r}: empty day range")
        out.append(Target(greek, value, float(tol[greek]), lo, hi))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class HedgeResult:
    """Trades found by :func:`hedge_search` and the greeks before and after (immutable)."""

    trades: tuple[dict[str, Any], ...]
    cost_usd: float
    targets: tuple[Target, ...]
    before: dict[str, float]
    after: dict[str, float]
    n_candidates: int
    status: str
    message: str

    def summary(self) -> str:
        lines = [
            f"Hedge search: {len(self.trades)} trades, cost {self.cost_usd:,.2f} USD "
            f"({self.n_candidates} candidate instruments; {self.status})"
        ]
        for t in self.targets:
            lines.append(
                f"  {t.label:<14} target {t.value:>12.4f} +- {t.tolerance:g}: "
                f"{self.before[t.label]:>12.4f} -> {self.after[t.label]:>12.4f}"
            )
        for tr in self.trades:
            lines.append(
                f"  {tr['side']:<4} {tr['size']:>10.4f} {tr['instrument']:<28} at "
                f"{tr['price']:.6g} (cost {tr['cost_usd']:,.2f} USD)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "cost_usd": self.cost_usd,
            "targets": [
                {"target": t.label, "value": t.value, "tolerance": t.tolerance}
                for t in self.targets
            ],
            "before": dict(self.before),
            "after": dict(self.after),
            "trades": [dict(t) for t in self.trades],
        }

    def to_portfolio_records(self) -> list[dict[str, Any]]:
        """The trades as portfolio records (signed sizes), to add to the portfolio."""
        return [
            {"instrument": t["instrument"], "size": t["size"] * (1 if t["side"] == "buy" else -1)}
            for t in self.trades
        ]


def _target_values(
    targets: tuple[Target, ...],
    delta: np.ndarray,
    gamma_1pct: np.ndarray,
    vega: np.ndarray,
    days: np.ndarray,
) -> np.ndarray:
    """Matrix (n_targets, n_items) of each item's contribution to each target."""
    by = {"delta": delta, "gamma": gamma_1pct, "vega": vega}
    rows = []
    for t in targets:
        inside = (days >= t.days_min) & (days < t.days_max)
        if t.days_min == 0.0 and math.isinf(t.days_max):
            inside = np.ones_like(days, dtype=bool)
        rows.append(np.where(inside, by[t.greek], 0.0))
    return np.array(rows)


def hedge_search(
    portfolio: Portfolio,
    market: Any,
    targets: str | dict[str, float] | tuple[Target, ...],
    *,
    tolerance: dict[str, float] | None = None,
    max_size: float = 50.0,
    min_days: float = 1.0,
    option_fee: float = 0.0003,
    perp_cost: float = 0.0005,
    use_perpetual: bool = True,
) -> HedgeResult:
    """Cheapest trades in listed options (and the perpetual) that reach greek targets.

    Parameters
    ----------
    portfolio : Portfolio
    market : OptionChain or Market
        Must carry a chain (bid/ask/mark of the listed options).
    targets : str, dict or tuple of Target
        See :func:`parse_targets`.
    tolerance : dict, optional
        Absolute tolerance per greek name.
    max_size : float
        Largest amount (coin) bought or sold of one instrument.
    min_days : float
        Options expiring sooner are not traded.
    option_fee : float
        Fee per option in coin (added to the spread cost).
    perp_cost : float
        Cost of trading the perpetual, fraction of the index.
    use_perpetual : bool

    Raises
    ------
    HedgeError
        When no trades within the limits reach the targets.
    """
    from scipy.optimize import linprog

    from volcal.black import greeks as black_greeks

    tg = targets if isinstance(targets, tuple) else parse_targets(targets, tolerance)
    if not (math.isfinite(max_size) and max_size > 0):
        raise ParameterError(f"max_size must be > 0, got {max_size}")
    mkt = as_market(market)
    chain = mkt.chain
    if not isinstance(chain, OptionChain):
        raise ParameterError("hedge search needs a market built from a chain (bid/ask quotes)")
    risk = portfolio_greeks(portfolio, mkt)
    pos_days = np.array(
        [
            np.inf if e == "perpetual" else float(row)
            for e, row in zip(risk.expiry, _position_days(portfolio, mkt), strict=True)
        ]
    )
    pos_gamma_1pct = risk.columns["gamma"] * _position_forwards(portfolio, mkt) * 0.01
    current = _target_values(
        tg, risk.columns["delta"], pos_gamma_1pct, risk.columns["vega_usd"], pos_days
    ).sum(axis=1)

    # candidates: usable options with both sides quoted
    t = chain.t
    ok = (
        chain.usable()
        & np.isfinite(chain.bid)
        & np.isfinite(chain.ask)
        & (chain.bid > 0)
        & (chain.ask >= chain.bid)
        & (t * 365.0 >= min_days)
    )
    idx = np.flatnonzero(ok)
    f = mkt.curve(t[idx])
    vol = mkt.iv(chain.strike[idx], t[idx])
    g = black_greeks(f, chain.strike[idx], t[idx], vol, chain.is_call[idx])
    conv = chain.conversion_price[idx] if chain.settlement == "inverse" else np.ones(idx.size)
    half_spread = 0.5 * (chain.ask[idx] - chain.bid[idx]) * conv
    fee = option_fee * mkt.index_price
    cost_buy = half_spread + fee
    cost_sell = half_spread + fee
    delta, gamma_1pct, vega, days = g.delta, g.gamma * f * 0.01, g.vega * 0.01, t[idx] * 365.0
    names = [str(s) for s in chain.instrument[idx]]
    buy_px, sell_px = chain.ask[idx], chain.bid[idx]
    if use_perpetual:
        delta = np.append(delta, 1.0)
        gamma_1pct = np.append(gamma_1pct, 0.0)
        vega = np.append(vega, 0.0)
        days = np.append(days, np.inf)
        c = perp_cost * mkt.index_price
        cost_buy, cost_sell = np.append(cost_buy, c), np.append(cost_sell, c)
        names.append(f"{mkt.underlying}-PERPETUAL")
        buy_px = np.append(buy_px, mkt.index_price)
        sell_px = np.append(sell_px, mkt.index_price)
    a = _target_values(tg, delta, gamma_1pct, vega, days)  # (n_targets, m)
    m = a.shape[1]
    if m == 0:
        raise HedgeError("no listed instrument with a two-sided quote to trade")
    value = np.array([x.value for x in tg])
    tol = np.array([x.tolerance for x in tg])
    lo, hi = value - tol - current, value + tol - current
    a_full = np.hstack([a, -a])
    cvec = np.concatenate([cost_buy, cost_sell]) + 1e-9 * mkt.index_price  # ties: smaller
    res = linprog(
        cvec,
        A_ub=np.vstack([a_full, -a_full]),
        b_ub=np.concatenate([hi, -lo]),
        bounds=[(0.0, max_size)] * (2 * m),
        method="highs",
    )
    if res.status != 0 or res.x is None:
        raise HedgeError(
            f"targets not reachable with {m} listed instruments and max_size {max_size:g} "
            f"coin ({res.message})"
        )
    x = res.x[:m] - res.x[m:]
    trades = []
    total = 0.0
    for j in np.flatnonzero(np.abs(x) > 1e-6):
        side = "buy" if x[j] > 0 else "sell"
        size = float(abs(x[j]))
        cost = size * float(cost_buy[j] if x[j] > 0 else cost_sell[j])
        total += cost
        trades.append(
            {
                "instrument": names[j],
                "side": side,
                "size": size,
                "price": float(buy_px[j] if x[j] > 0 else sell_px[j]),
                "cost_usd": cost,
            }
        )
    after = current + a @ x
    return HedgeResult(
        trades=tuple(trades),
        cost_usd=total,
        targets=tg,
        before={t_.label: float(v) for t_, v in zip(tg, current, strict=True)},
        after={t_.label: float(v) for t_, v in zip(tg, after, strict=True)},
        n_candidates=m,
        status="ok",
        message=str(res.message),
    )


def _position_days(portfolio: Portfolio, mkt: Any) -> list[float]:
    return [
        math.inf if p.instrument.expiry is None else mkt.years_to(p.instrument.expiry) * 365.0
        for p in portfolio
    ]


def _position_forwards(portfolio: Portfolio, mkt: Any) -> np.ndarray:
    t = np.array([0.0 if d == math.inf else d / 365.0 for d in _position_days(portfolio, mkt)])
    perp = np.array([p.instrument.expiry is None for p in portfolio])
    return np.where(perp, mkt.index_price, mkt.curve(t))


__all__ = ["HedgeError", "HedgeResult", "Target", "hedge_search", "parse_targets"]
