"""Response schemas of the read API (OpenAPI documentation; units in every description).

Units everywhere: implied vols, RR and BF are fractions (0.55 = 55 vol points), times
are UTC ISO 8601 strings, ``t`` is in years (ACT/365), ``age_s`` and latencies in
seconds, forwards and strikes in USD per coin.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorOut",
    "ExpiryOut",
    "HealthOut",
    "HistoryOut",
    "IvOut",
    "IvPoint",
    "ParamsOut",
    "QualityOut",
    "SurfaceOut",
]


class ErrorOut(BaseModel):
    error: str = Field(description="One-line description of what was wrong (no unit).")


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(
        description="'ok' (fresh surface), 'stale' (source silent; last surface kept), "
        "'starting' (no surface yet) or 'error' (the engine process failed: see engine); "
        "worst over the underlyings (no unit)."
    )
    age_s: float | None = Field(
        description="Seconds since the newest input of the stalest surface (seconds)."
    )
    version: str = Field(description="volcal version string (no unit).")
    source: str = Field(description="What the engine reads, e.g. a replay or a live venue.")
    underlyings: dict[str, Any] = Field(
        description="Per underlying: status, age_s (seconds), snapshot_time (UTC ISO 8601)."
    )
    uptime_s: float = Field(description="Seconds since the server started (seconds).")
    engine: dict[str, Any] | None = Field(
        None,
        description="Engine process (when the engine runs in its own process): mode, alive "
        "(bool), pid (no unit), error (one-line reason it stopped, or null).",
    )


class ExpiryOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    expiry: str = Field(description="Expiry instant, UTC ISO 8601 (Deribit: 08:00 UTC).")
    t: float = Field(description="Time to expiry in years (ACT/365 from exact UTC times).")
    forward: float | None = Field(description="Forward price in USD per coin.")
    model: str | None = Field(
        description="Smile model of this expiry (no unit): 'svi_surface' (its slice of the "
        "arbitrage-free SVI surface, the default) or 'svi' (the free slice: fit='free')."
    )
    params: dict[str, Any] | None = Field(
        description="Smile parameters (raw SVI a, b, m, sigma in total-variance/log-moneyness "
        "units; rho dimensionless)."
    )
    atm_vol: float | None = Field(description="ATM-forward implied vol, fraction per year^0.5.")
    rr25: float | None = Field(
        description="25-delta risk reversal sigma(25C) - sigma(25P), vol as a fraction "
        "(forward delta N(d1))."
    )
    bf25: float | None = Field(
        description="25-delta smile butterfly (sigma(25C) + sigma(25P))/2 - ATM, vol as a "
        "fraction (forward delta N(d1))."
    )
    rmse_vol: float | None = Field(
        description="Fit RMSE in implied vol, in vol points (1.0 = 0.01 of vol)."
    )
    n_used: int | None = Field(description="Quotes used by the fit (count).")
    status: str | None = Field(description="Fit status of this expiry (no unit).")
    fit: str | None = Field(
        default=None,
        description="Which fit model/params/atm_vol/rr25/bf25/rmse_vol come from (no unit): "
        "'surface' (the arbitrage-free svi_surface) or 'free' (the free SVI slice).",
    )
    fit_reason: str | None = Field(
        default=None,
        description="Why fit is 'free' (no unit): 'requested' (fit=free), 'surface_pending' "
        "(no surface fit yet), 'surface_failed' (the last surface fit failed; see "
        "surface.svi_surface.message), 'surface_uncertified' (not certified arbitrage-free "
        "on the dense grid), 'not_in_surface' (expiry not in the last surface fit), "
        "'surface_off' (the engine does not fit svi_surface); null when fit is 'surface'.",
    )
    free: dict[str, Any] | None = Field(
        default=None,
        description="The free SVI slice of this expiry: model, params, atm_vol, rr25, bf25 "
        "(fractions), rmse_vol (vol points), status. Absent in fit=free answers.",
    )
    constraint: dict[str, Any] | None = Field(
        default=None,
        description="What the arbitrage conditions did to this slice: moved (bool: false = "
        "the free fit was admissible as it is), how ('free', 'tamed', 'constrained', "
        "'fallback'), rmse_free_vol and rmse_vol (the surface's own free and constrained "
        "fit, vol points), cost_vol (their difference, vol points), status, fitted_at "
        "(UTC ISO 8601); null when fit is 'free' for a reason other than 'requested'.",
    )


class SurfaceOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    underlying: str = Field(description="Underlying coin, e.g. 'BTC' (no unit).")
    snapshot_time: str | None = Field(
        description="Time of the newest input of this surface, UTC ISO 8601."
    )
    stale: bool = Field(description="True when the source went silent (last surface kept).")
    age_s: float | None = Field(description="Seconds since snapshot_time (seconds).")
    expiries: list[ExpiryOut] = Field(description="One row per expiry, nearest first.")
    surface: dict[str, Any] | None = Field(
        default=None,
        description="Surface model(s) and parameters (svi_surface: status, rmse_vol and "
        "rmse_free_vol in vol points, constraint_cost_vol (vol points), n_constrained, "
        "certified, message, its slices in the expiry rows; eSSVI theta in total variance, rho "
        "dimensionless, phi per unit total variance; Heston v0/theta variance per year, "
        "kappa per year, xi per year, rho dimensionless).",
    )


class IvPoint(BaseModel):
    strike: float = Field(description="Strike in USD per coin.")
    k: float = Field(description="Log-moneyness ln(strike/forward) (dimensionless).")
    iv: float | None = Field(description="Implied vol of the fitted smile, fraction per year^0.5.")
    delta: float | None = Field(
        default=None, description="Requested delta (fraction; > 0 call, < 0 put), if any."
    )


class IvOut(BaseModel):
    underlying: str = Field(description="Underlying coin (no unit).")
    expiry: str = Field(description="Expiry instant, UTC ISO 8601.")
    t: float = Field(description="Time to expiry in years.")
    forward: float = Field(description="Forward price in USD per coin.")
    model: str = Field(
        description="Smile model evaluated (no unit): 'svi_surface' or 'svi' (free slice)."
    )
    fit: str = Field(
        default="free",
        description="'surface' (arbitrage-free slice) or 'free' (no unit); see fit_reason.",
    )
    fit_reason: str | None = Field(
        default=None,
        description="Why the free slice was evaluated (as ExpiryOut.fit_reason; no unit).",
    )
    delta_convention: str = Field(
        description="Delta convention for delta= queries: 'forward' (N(d1), as rr25/bf25) "
        "or 'premium_adjusted' (Deribit coin delta) (no unit)."
    )
    snapshot_time: str | None = Field(description="Time of the surface's newest input, UTC.")
    stale: bool = Field(description="True when the source went silent.")
    points: list[IvPoint] = Field(description="One point per requested strike or delta.")


class ParamsOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    underlying: str = Field(description="Underlying coin (no unit).")
    model: str = Field(description="Model name (no unit).")
    snapshot_time: str | None = Field(description="Time of the surface's newest input, UTC.")
    params: Any = Field(
        description="Parameters: a dict for a surface model, or a list of per-expiry dicts "
        "(expiry UTC ISO 8601, t in years, parameters in the model's own units)."
    )


class QualityOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    underlying: str = Field(description="Underlying coin (no unit).")
    snapshot_time: str | None = Field(description="Time of the surface's newest input, UTC.")
    stale: bool = Field(description="True when the source went silent.")
    guards: dict[str, Any] = Field(description="Integrity-guard counts by reason code (counts).")
    active: list[str] = Field(default=[], description="Guard reason codes active now.")
    n_flagged: int = Field(default=0, description="Quotes kept out of the last fits (count).")
    flagged: list[dict[str, Any]] = Field(
        description="Quotes kept out of the last fits, each with instrument and reason code "
        "(first max_flagged)."
    )


class HistoryOut(BaseModel):
    underlying: str = Field(description="Underlying coin (no unit).")
    model: str | None = Field(description="Model filter, if any (no unit).")
    since: str | None = Field(description="Lower time bound, UTC ISO 8601, if any.")
    n: int = Field(description="Rows returned (count).")
    rows: list[dict[str, Any]] = Field(
        description="Stored calibrations, oldest first (times UTC ISO 8601, vols fractions)."
    )
