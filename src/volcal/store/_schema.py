"""Schema of the calibration store and its migrations.

The schema carries a version (table ``schema_version``, one row per applied
migration). Opening a store applies the migrations it lacks, each in its own
transaction; a store written by a newer volcal (a version above
:data:`SCHEMA_VERSION`) is refused with a one-line error rather than read wrongly.

Tables (version 1)
------------------
``snapshots``
    One row per (input sha256, underlying): source, venue, snapshot time (UTC, and as
    integer nanoseconds for an exact round trip), settlement, index price, counts, the
    chain's metadata (JSON) and optional snapshot metrics (the 30-day vol index).
``quotes``
    The cleaned quotes of each snapshot with their flags: every column of an
    :class:`~volcal.market.OptionChain`, times as integer nanoseconds, so the chain a
    calibration saw can be rebuilt bit for bit (what ``volcal audit`` does).
``calibrations``
    One row per (snapshot, model, settings hash): parameters, start, warm start,
    standard errors, status, message, warnings, RMSE, inside share, quotes used, nfev,
    elapsed time, the settings (JSON) and their hash, volcal/numpy/scipy/python versions.
``slices``
    Per-expiry metrics of each calibration (``SliceFit``).
``conventions``
    ATM vol, 25/10-delta RR/BF of the fitted surface at constant-maturity tenors.
``surface_grid``
    Implied vol of the fitted surface on a fixed (tenor, log-moneyness) grid.
``failures``
    Inputs that could not be read, cleaned or calibrated, with the stage and reason
    (one row per input, underlying, model and settings hash; ``attempts`` counts).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE snapshots (
    id VARCHAR PRIMARY KEY,
    sha256 VARCHAR NOT NULL,
    underlying VARCHAR NOT NULL,
    venue VARCHAR,
    source VARCHAR,
    snapshot_time TIMESTAMPTZ NOT NULL,
    snapshot_ns BIGINT NOT NULL,
    settlement VARCHAR NOT NULL,
    index_price DOUBLE,
    n_quotes INTEGER NOT NULL,
    n_usable INTEGER NOT NULL,
    n_expiries INTEGER NOT NULL,
    meta JSON,
    metrics JSON,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (sha256, underlying)
);
CREATE TABLE quotes (
    snapshot_id VARCHAR NOT NULL,
    pos INTEGER NOT NULL,
    instrument VARCHAR,
    expiry_ns BIGINT NOT NULL,
    strike DOUBLE,
    is_call BOOLEAN NOT NULL,
    bid DOUBLE,
    ask DOUBLE,
    mark DOUBLE,
    bid_size DOUBLE,
    ask_size DOUBLE,
    open_interest DOUBLE,
    volume DOUBLE,
    quote_time_ns BIGINT,
    underlying_price DOUBLE,
    forward DOUBLE,
    discount DOUBLE,
    mark_iv DOUBLE,
    flags UINTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, pos)
);
CREATE TABLE calibrations (
    id VARCHAR PRIMARY KEY,
    snapshot_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    underlying VARCHAR NOT NULL,
    snapshot_time TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    message VARCHAR,
    params JSON NOT NULL,
    start JSON,
    warm_start JSON,
    stderr JSON,
    warnings JSON,
    rmse_vol DOUBLE,
    inside_spread DOUBLE,
    n_used INTEGER,
    nfev INTEGER,
    elapsed_s DOUBLE,
    jac_cond DOUBLE,
    extra JSON,
    settings JSON NOT NULL,
    settings_hash VARCHAR NOT NULL,
    volcal_version VARCHAR,
    numpy_version VARCHAR,
    scipy_version VARCHAR,
    python_version VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (snapshot_id, model, settings_hash)
);
CREATE TABLE slices (
    calibration_id VARCHAR NOT NULL,
    pos INTEGER NOT NULL,
    expiry VARCHAR NOT NULL,
    t DOUBLE,
    forward DOUBLE,
    n_used INTEGER,
    rmse_vol DOUBLE,
    inside_spread DOUBLE,
    atm_vol DOUBLE,
    rr25 DOUBLE,
    bf25 DOUBLE,
    status VARCHAR,
    params JSON,
    PRIMARY KEY (calibration_id, pos)
);
CREATE TABLE conventions (
    calibration_id VARCHAR NOT NULL,
    tenor_days INTEGER NOT NULL,
    t DOUBLE,
    extrapolated BOOLEAN,
    atm DOUBLE,
    rr25 DOUBLE,
    bf25 DOUBLE,
    rr10 DOUBLE,
    bf10 DOUBLE,
    PRIMARY KEY (calibration_id, tenor_days)
);
CREATE TABLE surface_grid (
    calibration_id VARCHAR NOT NULL,
    tenor_days INTEGER NOT NULL,
    k DOUBLE NOT NULL,
    iv DOUBLE,
    PRIMARY KEY (calibration_id, tenor_days, k)
);
CREATE TABLE failures (
    sha256 VARCHAR NOT NULL,
    underlying VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    settings_hash VARCHAR NOT NULL,
    source VARCHAR,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sha256, underlying, model, settings_hash)
);
"""

#: version -> SQL that migrates from version - 1 (version 1 creates the schema)
MIGRATIONS: dict[int, str] = {1: _V1}

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]
