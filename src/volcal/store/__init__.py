"""Embedded calibration store (DuckDB, one file, default ``volcal.duckdb``).

Keeps every snapshot (with its cleaned quotes and flags), every calibration (parameters,
start, status, quality, settings and their hash, library versions), per-expiry metrics,
surface conventions at fixed tenors and a surface grid, and the inputs that failed.
Schema versioned (``schema_version`` table) with migrations; safe for several writer
processes (see :mod:`volcal.store.core`). DuckDB is imported only when a store is
opened, so ``import volcal.store`` stays light.

>>> import volcal.store
>>> with volcal.store.open("volcal.duckdb") as st:             # doctest: +SKIP
...     df = st.calibrations(model="heston", underlying="BTC")
...     last = st.latest("BTC", "heston")
"""

from __future__ import annotations

from pathlib import Path

from volcal.store._schema import SCHEMA_VERSION
from volcal.store.core import DEFAULT_PATH, Store, StoreError, open_store
from volcal.store.records import (
    calibration_record,
    chain_sha256,
    file_sha256,
    settings_hash,
    snapshot_record,
)

__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "calibration_record",
    "chain_sha256",
    "file_sha256",
    "open",
    "settings_hash",
    "snapshot_record",
]


def open(
    path: str | Path = DEFAULT_PATH,
    read_only: bool = False,
    *,
    timeout: float = 60.0,
    hold: bool = False,
    threads: int | None = None,
) -> Store:
    """Open the store at ``path`` (created and migrated when writable); see :class:`Store`.

    ``timeout``: seconds to wait while another process holds the file; ``hold``: keep
    one connection (and the lock) until ``close()`` - fast calls for a single writer;
    ``threads``: DuckDB threads of its connections (default one per core)."""
    return open_store(path, read_only=read_only, timeout=timeout, hold=hold, threads=threads)
