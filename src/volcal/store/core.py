"""The calibration store: one DuckDB file holding snapshots, cleaned quotes,
calibrations, per-expiry metrics, surface conventions and grids, and failures.

Concurrency
-----------
DuckDB lets one process at a time open a database file for writing (and no reader
while it does). A :class:`Store` therefore holds no connection between calls: every
call opens the file, does its work in one transaction and closes it, retrying with
back-off while another process holds the file (up to ``timeout`` seconds, then a
one-line :class:`StoreError`). So several processes can write to one store; each
write is atomic (a snapshot with all its quotes, a calibration with all its tables)
and a crash in the middle of one leaves nothing of it. A bulk writer (the backfill)
writes one transaction per batch of records, in its client process only.

With ``hold=True`` the store keeps one connection (and the file's lock) from opening
to :meth:`close`: each call then costs a query instead of opening and closing the
file (tens of milliseconds), the choice of a single long-running writer such as a
live recorder; other processes wait for the lock (and give up after their timeout).
``threads`` caps the DuckDB threads of the store's connections (default: DuckDB's, one
per core); a writer that shares the cores with compute - the backfill's client, next
to its Dask workers - uses one: a batch's inserts then cost about a third less CPU
(measured on 2 cores), as they do not fan out over cores that are busy anyway.

Reading back
------------
Every query returns a pandas DataFrame by default; ``format="polars"`` or
``format="arrow"`` give a polars DataFrame or a pyarrow Table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volcal.errors import DataError, ParameterError
from volcal.store._schema import MIGRATIONS, SCHEMA_VERSION
from volcal.store.records import (
    CalibrationRecord,
    SnapshotRecord,
    calibration_record,
    chain_from_rows,
    snapshot_record,
)

__all__ = ["DEFAULT_PATH", "Store", "StoreError", "open_store"]

DEFAULT_PATH = "volcal.duckdb"
FORMATS = ("pandas", "polars", "arrow")

_SNAP_COLS = (
    "id", "sha256", "underlying", "venue", "source", "snapshot_time", "snapshot_ns",
    "settlement", "index_price", "n_quotes", "n_usable", "n_expiries", "meta", "metrics",
)  # fmt: skip
_QUOTE_COLS = (
    "snapshot_id", "pos", "instrument", "expiry_ns", "strike", "bid", "ask", "mark",
    "bid_size", "ask_size", "open_interest", "volume", "is_call", "quote_time_ns",
    "underlying_price", "forward", "discount", "mark_iv", "flags",
)  # fmt: skip
_CAL_COLS = (
    "id", "snapshot_id", "model", "underlying", "snapshot_time", "status", "message",
    "params", "start", "warm_start", "stderr", "warnings", "rmse_vol", "inside_spread",
    "n_used", "nfev", "elapsed_s", "jac_cond", "extra", "settings", "settings_hash",
    "volcal_version", "numpy_version", "scipy_version", "python_version",
)  # fmt: skip


class StoreError(DataError):
    """The store file cannot be used (not a DuckDB file, newer schema, locked, ...)."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflict" in text or "could not set" in text)


def _utc(value: Any, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"cannot parse {what} {value!r}") from None
    if ts is pd.NaT:
        raise DataError(f"{what} is missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _loads(text: Any) -> Any:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    return json.loads(text)


class Store:
    """A calibration store file (see the module docs). Open one with
    :func:`volcal.store.open`; use it as a context manager or call :meth:`close`.

    Examples
    --------
    >>> import volcal, volcal.store
    >>> chain = volcal.clean(volcal.read_chain("snapshot.csv", currency="BTC"))  # doctest: +SKIP
    >>> with volcal.store.open("volcal.duckdb") as st:                          # doctest: +SKIP
    ...     sid = st.add_snapshot(chain, source="snapshot.csv")
    ...     cid = st.add_calibration(volcal.calibrate(chain, "svi"), snapshot_id=sid,
    ...                              settings={})
    ...     st.calibrations(model="svi")
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        timeout: float = 60.0,
        hold: bool = False,
        threads: int | None = None,
    ):
        self.path = Path(path)
        self.read_only = bool(read_only)
        self.timeout = float(timeout)
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ParameterError(f"threads must be a whole number >= 1, got {threads!r}")
        self.threads = threads
        self._closed = False
        self._held: Any = None
        if self.path.is_dir():
            raise StoreError(f"store path is a folder: {self.path}")
        if self.read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        if not self.path.exists() and not self.path.parent.is_dir():
            raise StoreError(f"folder of the store does not exist: {self.path.parent}")
        self._version = self._migrate()
        if hold:
            self._held = self._open_connection()

    # ------------------------------------------------------------------ connection
    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[Any]:
        """A connection for one unit of work; a write runs in one transaction."""
        if self._closed:
            raise StoreError("the store is closed")
        if write and self.read_only:
            raise StoreError(f"store {self.path} is open read-only")
        held = self._held is not None
        con = self._held if held else self._open_connection()
        try:
            if write:
                con.begin()
                try:
                    yield con
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
            else:
                yield con
        finally:
            if not held:
                con.close()

    def _open_connection(self) -> Any:
        import duckdb

        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                config: dict[str, Any] = {} if self.threads is None else {"threads": self.threads}
                return duckdb.connect(str(self.path), read_only=self.read_only, config=config)
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"store {self.path} stayed locked by another process for "
                            f"{self.timeout:g} s"
                        ) from None
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2.0, 0.25)
                    continue
                msg = str(exc).splitlines()[0]
                if "not a valid duckdb database" in msg.lower() or "database file" in msg.lower():
                    raise StoreError(
                        f"{self.path} is not a volcal store (not a DuckDB file)"
                    ) from None
                raise StoreError(f"cannot open store {self.path}: {msg}") from None

    def _migrate(self) -> int:
        with self._connect(write=False) as con:
            version = self._read_version(con)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this volcal "
                f"supports ({SCHEMA_VERSION}): upgrade volcal"
            )
        if version == SCHEMA_VERSION:
            return version
        if self.read_only:
            raise StoreError(
                f"store {self.path} has schema version {version}; open it writable once to "
                f"migrate it to {SCHEMA_VERSION}"
            )
        with self._connect(write=True) as con:
            version = self._read_version(con)  # another process may have migrated it
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {version}, newer than this volcal "
                    f"supports ({SCHEMA_VERSION}): upgrade volcal"
                )
            if version == 0:
                con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT INTO schema_version VALUES (?, now())", [v])
        return SCHEMA_VERSION

    @staticmethod
    def _read_version(con: Any) -> int:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if "schema_version" not in tables:
            if tables:
                raise StoreError(
                    "file is a DuckDB database but not a volcal store (no schema_version table)"
                )
            return 0
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @property
    def schema_version(self) -> int:
        return self._version

    def close(self) -> None:
        """Close the store (and the held connection, with ``hold=True``)."""
        if self._held is not None:
            self._held.close()
            self._held = None
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, schema={self._version}, read_only={self.read_only})"

    # ------------------------------------------------------------------ writing
    def add_snapshot(
        self,
        chain: Any,
        source: str | None = None,
        sha256: str | None = None,
        *,
        metrics: Mapping[str, Any] | None = None,
    ) -> str:
        """Store a (cleaned) chain with all its quotes and flags; returns its id.

        Idempotent on (``sha256``, underlying): storing the same input again returns
        the existing id and writes nothing. ``sha256`` is the digest of the input file
        (:func:`volcal.store.file_sha256`); without it the chain's content is hashed.
        """
        rec = snapshot_record(chain, source=source, sha256=sha256, metrics=metrics)
        self.write([rec])
        return rec.id

    def add_calibration(
        self,
        result: Any,
        snapshot_id: str,
        settings: Mapping[str, Any] | None = None,
        model: str | None = None,
        *,
        warm_start: Any = None,
        surface: bool = True,
    ) -> str:
        """Store a calibration of a stored snapshot; returns its id.

        ``settings`` are the keyword arguments of :func:`volcal.calibrate` the fit ran
        with (JSON-safe; ``volcal audit`` repeats the fit with them), ``warm_start``
        the ``start=`` it was given. Idempotent on (snapshot, model, settings hash).
        """
        snap = self._snapshot_row(snapshot_id)
        rec = calibration_record(
            result,
            snapshot=snap,
            settings=settings,
            model=model,
            warm_start=warm_start,
            surface=surface,
        )
        self.write([rec])
        return rec.id

    def add_failure(
        self,
        *,
        sha256: str,
        underlying: str,
        model: str,
        settings_hash: str,
        stage: str,
        reason: str,
        source: str | None = None,
    ) -> None:
        """Record an input that could not be processed (``attempts`` counts repeats)."""
        self.write([FailureRecord(sha256, underlying, model, settings_hash, source, stage, reason)])

    def write(self, records: Iterable[Any]) -> dict[str, int]:
        """Write snapshot, calibration and failure records in ONE transaction; records
        already stored are skipped. Returns counts of rows written per kind."""
        recs = list(records)
        counts = {"snapshots": 0, "calibrations": 0, "failures": 0}
        if not recs:
            return counts
        for rec in recs:
            if not isinstance(rec, SnapshotRecord | CalibrationRecord | FailureRecord):
                raise DataError(f"cannot store a {type(rec).__name__}")
        # Every table gets one statement per write() whatever the number of records: a
        # DuckDB statement has a fixed cost of about a millisecond (measured: the
        # existence checks, row inserts and failure deletes of one statement per record
        # were most of a backfill batch's write time), the rows are the same.
        snaps = _first_by_id(r for r in recs if isinstance(r, SnapshotRecord))
        cals = _first_by_id(r for r in recs if isinstance(r, CalibrationRecord))
        with self._connect(write=True) as con:
            stored = _existing(con, "snapshots", [r.id for r in snaps])
            new_snaps = [r for r in snaps if r.id not in stored]
            self._insert_rows(con, "snapshots", _SNAP_COLS, [r.row for r in new_snaps])
            self._insert_frames(con, "quotes", _QUOTE_COLS, [r.quotes for r in new_snaps])
            counts["snapshots"] = len(new_snaps)
            # failures: an upsert each (rare), before the calibrations, so a success in
            # the same write replaces a failure of the same work as a later write would
            for rec in recs:
                if isinstance(rec, FailureRecord):
                    counts["failures"] += self._write_failure(con, rec)
            done = _existing(con, "calibrations", [r.id for r in cals])
            new_cals = [r for r in cals if r.id not in done]
            if new_cals:
                known = stored | {r.id for r in new_snaps}
                missing = sorted({r.row["snapshot_id"] for r in new_cals} - known)
                if missing:
                    missing = sorted(
                        set(missing) - _existing(con, "snapshots", missing)
                    )  # stored by another writer since the first check
                if missing:
                    raise StoreError(f"snapshot {missing[0]} is not in the store")
                self._insert_rows(con, "calibrations", _CAL_COLS, [r.row for r in new_cals])
                for attr, table in (
                    ("slices", "slices"),
                    ("conventions", "conventions"),
                    ("grid", "surface_grid"),
                ):
                    self._insert_frames(con, table, None, [getattr(r, attr) for r in new_cals])
                # a success replaces an earlier failure of the same work
                con.execute(
                    "DELETE FROM failures WHERE (sha256, underlying, model, settings_hash) IN "
                    "(SELECT s.sha256, s.underlying, c.model, c.settings_hash "
                    "FROM calibrations c JOIN snapshots s ON s.id = c.snapshot_id "
                    "WHERE c.id IN (SELECT UNNEST(?::VARCHAR[])))",
                    [[r.id for r in new_cals]],
                )
                counts["calibrations"] = len(new_cals)
        return counts

    @staticmethod
    def _insert_rows(
        con: Any, table: str, cols: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert row dicts (their ``cols``) with ``created_at = now()`` in one statement."""
        if not rows:
            return
        import pyarrow as pa

        # from Python lists, not pandas: None stays NULL and a NaN stays NaN, as a
        # parameterised INSERT stores them
        tbl = pa.table({c: pa.array([r[c] for r in rows]) for c in cols})
        con.register("_volcal_rows", tbl)
        try:
            names = ", ".join(cols)
            con.execute(
                f"INSERT INTO {table} ({names}, created_at) SELECT {names}, now() FROM _volcal_rows"
            )
        finally:
            con.unregister("_volcal_rows")

    @classmethod
    def _insert_frames(
        cls,
        con: Any,
        table: str,
        cols: Sequence[str] | None,
        dfs: Iterable[pd.DataFrame | None],
    ) -> None:
        """Insert the rows of several frames (``cols``, default each frame's own columns;
        one INSERT per distinct column set)."""
        groups: dict[tuple[str, ...], list[pd.DataFrame]] = {}
        for df in dfs:
            if df is None or df.empty:
                continue
            names = tuple(df.columns) if cols is None else tuple(cols)
            if tuple(df.columns) != names:
                df = df.loc[:, list(names)]
            groups.setdefault(names, []).append(df)
        for names, frames in groups.items():
            df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            cls._insert_frame(con, table, df, names)

    @staticmethod
    def _insert_frame(con: Any, table: str, df: pd.DataFrame, cols: Sequence[str]) -> None:
        if df is None or df.empty:
            return
        import pyarrow as pa

        tbl = pa.Table.from_pandas(df, preserve_index=False)  # df has exactly cols
        con.register("_volcal_rows", tbl)
        try:
            names = ", ".join(cols)
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _volcal_rows")
        finally:
            con.unregister("_volcal_rows")

    @staticmethod
    def _write_failure(con: Any, rec: FailureRecord) -> int:
        con.execute(
            "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, 1, now()) "
            "ON CONFLICT (sha256, underlying, model, settings_hash) DO UPDATE SET "
            "attempts = failures.attempts + 1, stage = excluded.stage, "
            "reason = excluded.reason, created_at = excluded.created_at",
            [
                rec.sha256,
                rec.underlying,
                rec.model,
                rec.settings_hash,
                rec.source,
                rec.stage,
                rec.reason[:2000],
            ],
        )
        return 1

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str, params: Sequence[Any] = (), fmt: str = "pandas") -> Any:
        if fmt not in FORMATS:
            raise DataError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        with self._connect() as con:
            df = con.execute(sql, list(params)).df()
        return _convert(df, fmt)

    def _snapshot_row(self, snapshot_id: str) -> dict[str, Any]:
        with self._connect() as con:
            cur = con.execute("SELECT * FROM snapshots WHERE id = ?", [snapshot_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            raise StoreError(f"snapshot {snapshot_id!r} is not in the store")
        return dict(zip(names, row, strict=True))

    def snapshots(
        self,
        underlying: str | None = None,
        since: Any = None,
        until: Any = None,
        *,
        format: str = "pandas",
    ) -> Any:
        """Stored snapshots in time order (no quotes; see :meth:`chain`)."""
        where, params = _filters(underlying=underlying, since=since, until=until)
        sql = (
            "SELECT id, sha256, underlying, venue, source, snapshot_time, settlement, "
            "index_price, n_quotes, n_usable, n_expiries, metrics, created_at "
            f"FROM snapshots {where} ORDER BY snapshot_time, underlying"
        )
        df = self._query(sql, params)
        if not df.empty:
            met = [(_loads(m) or {}) for m in df["metrics"]]
            keys = sorted({k for m in met for k in m})
            for k in keys:
                df[k] = [m.get(k) for m in met]
        return _convert(df, format)

    def chain(self, snapshot_id: str) -> Any:
        """The stored chain of a snapshot as an :class:`~volcal.market.OptionChain`."""
        row = self._snapshot_row(snapshot_id)
        with self._connect() as con:
            q = con.execute(
                "SELECT * FROM quotes WHERE snapshot_id = ? ORDER BY pos", [snapshot_id]
            ).df()
        return chain_from_rows(row, q)

    def calibrations(
        self,
        model: str | None = None,
        underlying: str | None = None,
        since: Any = None,
        until: Any = None,
        *,
        status: str | None = None,
        settings_hash: str | None = None,
        format: str = "pandas",
    ) -> Any:
        """Stored calibrations in time order, one row each.

        Columns: ids, model, underlying, snapshot time, status, quality (``rmse_vol``,
        ``inside_spread``, ``n_used``, ``nfev``, ``elapsed_s``), settings hash, versions,
        the parameters and standard errors as JSON (``params``, ``stderr``) and, for
        models with scalar parameters, one column per parameter ``p_<name>`` and its
        standard error ``se_<name>``.
        """
        where, params = _filters(
            model=model, underlying=underlying, since=since, until=until, status=status
        )
        if settings_hash is not None:
            where += (" AND " if where else "WHERE ") + "settings_hash = ?"
            params.append(settings_hash)
        sql = (
            "SELECT id, snapshot_id, model, underlying, snapshot_time, status, message, "
            "rmse_vol, inside_spread, n_used, nfev, elapsed_s, jac_cond, settings_hash, "
            "settings, params, stderr, warnings, warm_start, volcal_version, numpy_version, "
            f"scipy_version, created_at FROM calibrations {where} "
            "ORDER BY snapshot_time, underlying, model"
        )
        df = self._query(sql, params)
        if not df.empty:
            ps = [_loads(p) or {} for p in df["params"]]
            ses = [_loads(s) or {} for s in df["stderr"]]
            names: list[str] = []
            for p in ps:
                for k, v in p.items():
                    if _is_num(v) and k not in names:
                        names.append(k)
            for k in names:
                df[f"p_{k}"] = [_float(p.get(k)) for p in ps]
                df[f"se_{k}"] = [_float(s.get(k)) for s in ses]
        return _convert(df, format)

    def slices(self, calibration_id: str | None = None, *, format: str = "pandas") -> Any:
        """Per-expiry metrics (of one calibration, or of all with model and time)."""
        sql = (
            "SELECT c.model, c.underlying, c.snapshot_time, s.* FROM slices s "
            "JOIN calibrations c ON c.id = s.calibration_id"
        )
        params: list[Any] = []
        if calibration_id is not None:
            sql += " WHERE s.calibration_id = ?"
            params.append(calibration_id)
        return self._query(
            sql + " ORDER BY c.snapshot_time, s.calibration_id, s.pos", params, format
        )

    def conventions(
        self,
        model: str | None = None,
        underlying: str | None = None,
        *,
        format: str = "pandas",
    ) -> Any:
        """ATM vol and 25/10-delta RR/BF at the stored tenors, per calibration."""
        where, params = _filters(model=model, underlying=underlying, prefix="c.")
        sql = (
            "SELECT c.model, c.underlying, c.snapshot_time, c.status, v.* FROM conventions v "
            f"JOIN calibrations c ON c.id = v.calibration_id {where} "
            "ORDER BY c.snapshot_time, v.calibration_id, v.tenor_days"
        )
        return self._query(sql, params, format)

    def surface_grid(self, calibration_id: str, *, format: str = "pandas") -> Any:
        """The stored (tenor, log-moneyness) implied-vol grid of one calibration."""
        return self._query(
            "SELECT tenor_days, k, iv FROM surface_grid WHERE calibration_id = ? "
            "ORDER BY tenor_days, k",
            [calibration_id],
            format,
        )

    def failures(self, *, format: str = "pandas") -> Any:
        """Recorded failures (input, model, stage, reason, attempts)."""
        return self._query("SELECT * FROM failures ORDER BY created_at", (), format)

    def calibration(self, calibration_id: str) -> dict[str, Any]:
        """Everything stored about one calibration (JSON fields parsed)."""
        with self._connect() as con:
            cur = con.execute("SELECT * FROM calibrations WHERE id = ?", [calibration_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            raise StoreError(f"calibration {calibration_id!r} is not in the store")
        out = dict(zip(names, row, strict=True))
        for k in ("params", "start", "warm_start", "stderr", "warnings", "extra", "settings"):
            out[k] = _loads(out[k])
        out["snapshot_time"] = _utc(out["snapshot_time"], "snapshot time")
        return out

    def latest(
        self, underlying: str, model: str, *, settings_hash: str | None = None
    ) -> dict[str, Any] | None:
        """The most recent successful (``status == "ok"``) calibration of ``model`` on
        ``underlying``, or None: parameters (``start=`` of :func:`volcal.calibrate` for a
        warm start), snapshot time, quality, settings and the per-expiry slices (expiry,
        t, forward: with the parameters, enough to rebuild the surface)."""
        sql = "SELECT id FROM calibrations WHERE underlying = ? AND model = ? AND status = 'ok'"
        params: list[Any] = [underlying, model.lower()]
        if settings_hash is not None:
            sql += " AND settings_hash = ?"
            params.append(settings_hash)
        with self._connect() as con:
            row = con.execute(
                sql + " ORDER BY snapshot_time DESC, created_at DESC LIMIT 1", params
            ).fetchone()
        if row is None:
            return None
        out = self.calibration(row[0])
        sl = self.slices(row[0])
        out["slices"] = [
            {k: _py(v) for k, v in rec.items() if k not in ("model", "underlying", "snapshot_time")}
            for rec in sl.to_dict("records")
        ]
        return out

    def params(self, calibration_id: str) -> Any:
        """The fitted parameters of a stored calibration as a model instance (a warm
        start for :func:`volcal.calibrate`, or the input of a surface)."""
        from volcal.store.params import params_from_dict

        row = self.calibration(calibration_id)
        return params_from_dict(row["model"], row["params"] or {})

    def surface(self, calibration_id: str) -> Any:
        """The fitted :class:`~volcal.surface.VolSurface` of a stored smile or surface
        calibration (SVI, SSVI, eSSVI, SABR), rebuilt from its parameters and the
        stored per-expiry forwards."""
        from volcal.surface.volsurface import VolSurface

        row = self.calibration(calibration_id)
        if row["model"] not in ("svi", "ssvi", "essvi", "sabr"):
            raise DataError(
                f"{row['model']} is not a smile or surface model: price it with volcal.price "
                "(Store.params gives the model)"
            )
        sl = self.slices(calibration_id)
        return VolSurface.from_model(
            self.params(calibration_id),
            forwards=tuple(float(f) for f in sl["forward"]),
            expiries=tuple(str(e) for e in sl["expiry"]),
        )

    def done(self, model: str, settings_hash: str) -> set[tuple[str, str]]:
        """(input sha256, underlying) pairs already calibrated with these settings."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT s.sha256, s.underlying FROM calibrations c JOIN snapshots s "
                "ON s.id = c.snapshot_id WHERE c.model = ? AND c.settings_hash = ?",
                [model, settings_hash],
            ).fetchall()
        return {(str(a), str(b)) for a, b in rows}

    def failed(self, model: str, settings_hash: str) -> set[tuple[str, str]]:
        """(input sha256, underlying) pairs recorded as failures with these settings."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT sha256, underlying FROM failures WHERE model IN (?, '*') "
                "AND settings_hash = ?",
                [model, settings_hash],
            ).fetchall()
        return {(str(a), str(b)) for a, b in rows}

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        tables = (
            "snapshots", "quotes", "calibrations", "slices", "conventions", "surface_grid",
            "failures",
        )  # fmt: skip
        with self._connect() as con:
            return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "schema_version": self._version,
            "read_only": self.read_only,
            "counts": self.counts(),
        }

    def summary(self) -> str:
        c = self.counts()
        return f"store {self.path} (schema {self._version}): " + ", ".join(
            f"{k} {v}" for k, v in c.items()
        )


@dataclass(frozen=True)
class FailureRecord:
    """An input that could not be processed (written by :meth:`Store.write`)."""

    sha256: str
    underlying: str
    model: str
    settings_hash: str
    source: str | None
    stage: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        return f"{self.source} {self.underlying} {self.model}: {self.stage} failed: {self.reason}"


def _first_by_id(recs: Iterable[Any]) -> list[Any]:
    """Records in order, the first of each id only (a repeat would be skipped as stored)."""
    seen: dict[str, Any] = {}
    for r in recs:
        seen.setdefault(r.id, r)
    return list(seen.values())


def _existing(con: Any, table: str, ids: Sequence[str]) -> set[str]:
    """The ids of ``ids`` already in ``table`` (one query)."""
    if not ids:
        return set()
    rows = con.execute(
        f"SELECT id FROM {table} WHERE id IN (SELECT UNNEST(?::VARCHAR[]))", [list(ids)]
    ).fetchall()
    return {r[0] for r in rows}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _float(v: Any) -> float:
    return float(v) if _is_num(v) else float("nan")


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _filters(
    *,
    model: str | None = None,
    underlying: str | None = None,
    since: Any = None,
    until: Any = None,
    status: str | None = None,
    prefix: str = "",
) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    if model is not None:
        conds.append(f"{prefix}model = ?")
        params.append(model.lower())
    if underlying is not None:
        conds.append(f"{prefix}underlying = ?")
        params.append(underlying.upper())
    if since is not None:
        conds.append(f"{prefix}snapshot_time >= ?")
        params.append(_utc(since, "since").to_pydatetime())
    if until is not None:
        conds.append(f"{prefix}snapshot_time <= ?")
        params.append(_utc(until, "until").to_pydatetime())
    if status is not None:
        conds.append(f"{prefix}status = ?")
        params.append(status)
    return ("WHERE " + " AND ".join(conds)) if conds else "", params


def _convert(tbl: Any, fmt: str) -> Any:
    """Arrow table or pandas frame -> the requested format."""
    if fmt not in FORMATS:
        raise DataError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    import pyarrow as pa

    if isinstance(tbl, pd.DataFrame):
        if fmt == "pandas":
            return tbl
        tbl = pa.Table.from_pandas(tbl, preserve_index=False)
    if fmt == "arrow":
        return tbl
    if fmt == "polars":
        import polars as pl

        return pl.from_arrow(tbl)
    return tbl.to_pandas()


def open_store(
    path: str | Path = DEFAULT_PATH,
    read_only: bool = False,
    *,
    timeout: float = 60.0,
    hold: bool = False,
    threads: int | None = None,
) -> Store:
    """Open (creating and migrating if needed) the store at ``path``."""
    return Store(os.fspath(path), read_only=read_only, timeout=timeout, hold=hold, threads=threads)
