"""Scenario engine: full revaluation of a portfolio on a spot x vol grid.

Every scenario moves all underlying prices (index, futures, forwards of every expiry) by the
same relative amount ``m`` and shifts each option's implied vol by a shock that depends on
its time to expiry,

.. math::

    \\Delta\\sigma(T) = s \\cdot \\left(\\frac{30}{\\text{days}(T)}\\right)^{p},

``s`` the shock at 30 days (vol points as a decimal, 0.05 = 5 points) and ``p`` the vol
power (0.5: square-root-of-time scaling, short-dated vol moves more; 0: a parallel shift),
the shape Deribit's margin model uses for its vol stress (Deribit portfolio-margin docs,
``(30/days)^power``). Shocked vols are floored at 0. Options are repriced in full (Black-76),
not by a greeks expansion - the non-linear risk view. With ``sticky="strike"`` an option
keeps its vol at its strike; with ``sticky="moneyness"`` it takes the vol of the same
``K/F`` after the move (the smile moves with the forward).

P&L is in USD (``currency="usd"``), or in the settlement currency expressed in USD at
today's index (``currency="settlement"``: coin P&L x index for inverse instruments, the
view of a coin-margined account).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from volcal._typing import FloatArray
from volcal.errors import ParameterError
from volcal.risk.portfolio import Portfolio
from volcal.risk.valuation import Book, resolve


def vol_shock(shock: float, t: Any, power: float, ref_days: float = 30.0) -> FloatArray:
    """Vol shock of each expiry: ``shock * (ref_days / days)^power`` (days floored at 1 hour)."""
    days = np.maximum(np.asarray(t, dtype=np.float64) * 365.0, 1.0 / 24.0)
    return np.asarray(shock * (ref_days / days) ** power, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ScenarioGrid:
    """P&L of a portfolio on a grid of spot moves (columns) x vol shocks (rows).

    Attributes
    ----------
    spot_moves : ndarray
        Relative moves of every underlying price (0.1 = +10%).
    vol_shocks : ndarray
        Vol shocks at 30 days (decimal vol points).
    pnl : ndarray, shape (n_vol, n_spot)
        Portfolio P&L in USD.
    by_position : ndarray, shape (n_vol, n_spot, n_positions)
    names : tuple of str
    currency : str
    vol_power, sticky :
        The settings used.
    """

    spot_moves: FloatArray
    vol_shocks: FloatArray
    pnl: FloatArray
    by_position: FloatArray
    names: tuple[str, ...]
    currency: str
    vol_power: float
    sticky: str
    index_price: float

    @property
    def worst(self) -> tuple[float, float, float]:
        """(spot move, vol shock, P&L) of the worst cell."""
        i, j = np.unravel_index(int(np.argmin(self.pnl)), self.pnl.shape)
        return float(self.spot_moves[j]), float(self.vol_shocks[i]), float(self.pnl[i, j])

    def summary(self) -> str:
        head = "vol \\ spot " + "".join(f"{m:>+10.0%}" for m in self.spot_moves)
        lines = [
            f"Scenario P&L ({self.currency}, USD; vol power {self.vol_power:g}, "
            f"sticky {self.sticky})",
            head,
        ]
        for i, s in enumerate(self.vol_shocks):
            lines.append(f"{s * 100:>+8.1f}vp " + "".join(f"{x:>10,.0f}" for x in self.pnl[i]))
        m, s, p = self.worst
        lines.append(f"worst: spot {m:+.0%}, vol {s * 100:+.1f} points: {p:,.2f} USD")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        m, s, p = self.worst
        return {
            "currency": self.currency,
            "vol_power": self.vol_power,
            "sticky": self.sticky,
            "spot_moves": self.spot_moves.tolist(),
            "vol_shocks": self.vol_shocks.tolist(),
            "pnl": self.pnl.tolist(),
            "worst": {"spot_move": m, "vol_shock": s, "pnl": p},
        }


def revalue(
    book: Book, fwd_mult: Any, vols: Any, currency: Literal["usd", "settlement"] = "usd"
) -> FloatArray:
    """Value per unit size for scenario forwards multipliers and vols (broadcast)."""
    if currency == "usd":
        return book.values_usd(fwd_mult, vols)
    return book.values_margin_ccy(fwd_mult, vols)


def scenario_grid(
    portfolio: Portfolio,
    market: Any,
    spot_moves: Any = (-0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3),
    vol_shocks: Any = (-0.1, -0.05, 0.0, 0.05, 0.1),
    *,
    vol_power: float = 0.5,
    sticky: Literal["strike", "moneyness"] = "strike",
    currency: Literal["usd", "settlement"] = "usd",
) -> ScenarioGrid:
    """Full revaluation of ``portfolio`` on the grid ``vol_shocks`` x ``spot_moves``.

    Parameters
    ----------
    portfolio : Portfolio
    market : OptionChain or Market
    spot_moves : sequence of float
        Relative moves (> -1) of all underlying prices.
    vol_shocks : sequence of float
        Vol shocks at 30 days in decimal vol points.
    vol_power : float
        Time scaling of the vol shock, ``(30/days)^vol_power``.
    sticky : {"strike", "moneyness"}
    currency : {"usd", "settlement"}

    Returns
    -------
    ScenarioGrid
    """
    moves = np.asarray(spot_moves, dtype=np.float64).ravel()
    shocks = np.asarray(vol_shocks, dtype=np.float64).ravel()
    if moves.size == 0 or shocks.size == 0:
        raise ParameterError("spot_moves and vol_shocks must not be empty")
    if not (np.all(np.isfinite(moves)) and np.all(moves > -1.0)):
        raise ParameterError("spot moves must be finite and > -100%")
    if not np.all(np.isfinite(shocks)):
        raise ParameterError("vol shocks must be finite")
    if sticky not in ("strike", "moneyness"):
        raise ParameterError(f"sticky must be 'strike' or 'moneyness', got {sticky!r}")
    if currency not in ("usd", "settlement"):
        raise ParameterError(f"currency must be 'usd' or 'settlement', got {currency!r}")
    book = resolve(portfolio, market)
    n = book.size.size
    base_vol = np.broadcast_to(book.vol, (moves.size, n))
    if sticky == "moneyness" and book.is_option.any():
        opt = book.is_option
        base_vol = np.array(base_vol)
        strikes = book.strike[opt][None, :] / (1.0 + moves[:, None])
        tt = np.broadcast_to(book.t[opt], strikes.shape)
        base_vol[:, opt] = book.market.iv(strikes, tt)
    dv = np.stack([vol_shock(s, book.t, vol_power) for s in shocks])  # (n_vol, n)
    vols = base_vol[None, :, :] + dv[:, None, :]  # (n_vol, n_spot, n)
    mult = (1.0 + moves)[None, :, None]
    value = revalue(book, mult, vols, currency)
    today = revalue(book, 1.0, book.vol, currency)
    by_pos = (value - today) * book.size
    by_pos.setflags(write=False)
    pnl = by_pos.sum(axis=-1)
    pnl.setflags(write=False)
    moves.setflags(write=False)
    shocks.setflags(write=False)
    return ScenarioGrid(
        spot_moves=moves,
        vol_shocks=shocks,
        pnl=pnl,
        by_position=by_pos,
        names=book.names,
        currency=currency,
        vol_power=float(vol_power),
        sticky=sticky,
        index_price=book.market.index_price,
    )


__all__ = ["ScenarioGrid", "revalue", "scenario_grid", "vol_shock"]
