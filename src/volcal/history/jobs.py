"""``backfill``: calibrate a history of snapshot files on Dask and keep every result.

Work
----
The input files are put in chronological order (the ``YYYYMMDDTHHMMSSZ`` stamp in
the file name; the modification time when a name has none) and cut into batches of
``batch_size`` consecutive files. One Dask task runs one batch: for each file and
underlying it reads and cleans the chain, computes the 30-day vol index, and fits each
model; the Fourier models (Heston, ...) start from the previous successful fit of the
same underlying inside the batch (a warm start: the global stage is skipped), the
first file of a batch starts cold. Tasks return *records* (rows, see
:mod:`volcal.store.records`); only the client process writes them to the store, one
transaction per batch, so the store has a single writer whatever the cluster size.

Resumable and idempotent
------------------------
A (file sha256, underlying, model, settings hash) already in the store is skipped, so
re-running a backfill after an interruption does only what is missing, and running it
twice writes nothing the second time. A file, chain or fit that fails is recorded in
the store's ``failures`` table with its stage (``read``, ``clean``, ``calibrate``,
``worker``) and reason, and the run goes on; recorded failures are skipped on a re-run
unless ``retry_failed=True``.

Workers and memory
------------------
``workers`` processes on a ``LocalCluster`` (one thread each: the kernels are
compiled and single-threaded) unless ``scheduler`` gives the address of an existing
cluster (``tcp://host:port``) or ``client`` an existing ``distributed.Client``. At most
``2 x workers`` batches are in flight; a finished batch is written and released, so
the client holds at most that many batches of records. A worker that dies is replaced
by its nanny and Dask reruns its batch (``distributed.scheduler.allowed-failures``
times); because the client writes a batch only once it has its result, a rerun
neither loses nor duplicates rows.

What the client spends
----------------------
The client process does the writes while the workers compute (and, on a
``LocalCluster``, also runs the scheduler and the nannies), so on a machine with as many
cores as workers its CPU is taken from them. It keeps that small: it opens the store
once for the whole run (``hold=True``: a per-batch open and close of the DuckDB file,
with its checkpoint, cost more than the batch's inserts) with one DuckDB thread, and
the ``LocalCluster`` it starts (:func:`local_cluster`) runs with
:data:`CLUSTER_CONFIG`: no statistical profiler in the workers and slower periodic
housekeeping, which took about 5 % of a task's CPU in its worker (measured on 2 cores:
the worker's other threads during a task) and now about 1 %. While a backfill runs, its
store is held by its client: other processes wait for it (their ``timeout``).
"""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from volcal.errors import DataError, ParameterError, VolcalError

__all__ = [
    "CLUSTER_CONFIG",
    "BackfillReport",
    "ClusterError",
    "backfill",
    "discover",
    "local_cluster",
    "run_batch",
]

#: Dask settings of the :func:`local_cluster` a backfill starts (its tasks are seconds of
#: compiled, single-threaded compute; the defaults are made for interactive clusters):
#: Dask's sampling profiler off in the workers (a thread that reads the task's stack
#: every 10 ms), the event-loop tick every 500 ms (default 20 ms: it only detects a
#: blocked loop) and the system monitor every 2 s (default 0.5 s: CPU / memory figures of
#: the dashboard; the memory limits have their own monitor).
CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}

_STAMP = re.compile(r"(\d{8}T\d{6})Z?")
_SUFFIXES = (".csv", ".json", ".parquet", ".gz", ".zst", ".zstd", ".txt")


class ClusterError(VolcalError):
    """The Dask cluster cannot be reached or started."""


def _file_time(path: Path) -> pd.Timestamp:
    m = _STAMP.search(path.name)
    if m:
        try:
            return pd.Timestamp(m.group(1), tz="UTC")
        except ValueError:
            pass
    return pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")


def _head(path: Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a file's content, decompressed only as far as needed."""
    with path.open("rb") as fh:
        raw = fh.read(n)
        if raw[:2] == b"\x1f\x8b":
            import gzip
            import io

            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                try:
                    return gz.read(n)
                except (OSError, EOFError):
                    return b""  # damaged: read_chain reports it
        if raw[:4] == b"\x28\xb5\x2f\xfd":
            try:
                import zstandard
            except ImportError:
                return b""
            fh.seek(0)
            try:
                return zstandard.ZstdDecompressor().stream_reader(fh).read(n)
            except zstandard.ZstdError:
                return b""
        return raw


def _is_other_table(path: Path) -> bool:
    """A CSV whose header is none of the chain layouts (futures marks, a file index...).

    Only such files are passed over in a folder search; anything that might be a chain
    (JSON, Parquet, a damaged or unreadable file) is kept, so reading it records why it
    failed."""
    import csv

    from volcal.feeds.reader import looks_like_chain_csv

    try:
        head = _head(path)
    except OSError:
        return False
    if not head or head[:4] == b"PAR1" or head.lstrip()[:1] in (b"{", b"["):
        return False
    line = head.decode("utf-8-sig", errors="replace").splitlines()[0] if head.strip() else ""
    try:
        columns = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    return len(columns) > 1 and not looks_like_chain_csv(columns)


def discover_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Snapshot files under ``paths`` in chronological order, and the files a folder
    search passed over because they are other tables (see :func:`discover`)."""
    found: list[Path] = []
    ignored: list[Path] = []
    given = [Path(p) for p in paths]
    if not given:
        raise DataError("no input path given")
    for p in given:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in _SUFFIXES:
                    # a name with a snapshot time is meant as a snapshot: read, and a
                    # bad one recorded as a failure; other tables are passed over
                    other = not _STAMP.search(f.name) and _is_other_table(f)
                    (ignored if other else found).append(f)
        elif p.is_file():
            found.append(p)  # named by the user: read, and its failure recorded
        else:
            raise DataError(f"no such file or folder: {p}")
    if not found:
        raise DataError(f"no snapshot files in {', '.join(str(p) for p in given)}")
    unique = list(dict.fromkeys(f.resolve() for f in found))
    return sorted(unique, key=lambda f: (_file_time(f), f.name)), ignored


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Snapshot files under ``paths`` (files as given, folders searched for chain
    files), in chronological order; a path that does not exist or a search that finds
    nothing is a :class:`~volcal.errors.DataError`. In a folder, a CSV file whose
    header is none of the chain layouts and whose name carries no snapshot time (the
    futures marks or file index a data set keeps next to its snapshots) is passed over,
    not read as a failed snapshot."""
    return discover_files(paths)[0]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


def run_batch(
    items: Sequence[tuple[str, str, Mapping[str, Sequence[str]]]],
    settings: Mapping[str, Mapping[str, Any]],
    settings_hashes: Mapping[str, str],
) -> dict[str, Any]:
    """One backfill task: ``items`` are (file, sha256, {underlying: [models]}) in time
    order. Returns the records to write and counts (never raises for a bad input)."""
    from volcal.calibration import calibrate
    from volcal.calibration.calibrate import FOURIER_MODELS
    from volcal.feeds import read_chain
    from volcal.quality import clean
    from volcal.store.core import FailureRecord
    from volcal.store.records import calibration_record, snapshot_record
    from volcal.surface import vol_index

    records: list[Any] = []
    stats: Counter[str] = Counter()
    prev: dict[tuple[str, str], Any] = {}
    t0 = time.perf_counter()
    c0 = time.process_time()

    def fail(sha: str, cur: str, models: Iterable[str], src: str, stage: str, exc: Any) -> None:
        reason = exc if isinstance(exc, str) else _reason(exc)
        for m in models:
            records.append(FailureRecord(sha, cur, m, settings_hashes[m], src, stage, reason))
            stats["failures"] += 1

    for path, sha, todo in items:
        src = Path(path).name
        for cur, models in todo.items():
            stats["chains"] += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # data and fit caveats are stored as flags/status
                try:
                    chain = read_chain(path, currency=cur)
                except Exception as exc:
                    fail(sha, cur, models, src, "read", exc)
                    continue
                try:
                    cleaned = clean(chain)
                except Exception as exc:
                    fail(sha, cur, models, src, "clean", exc)
                    continue
                metrics: dict[str, Any] = {}
                try:
                    metrics["vol_index_30d"] = float(vol_index(cleaned).value)
                except Exception as exc:
                    metrics["vol_index_error"] = _reason(exc)
                snap = snapshot_record(cleaned, source=src, sha256=sha, metrics=metrics)
                records.append(snap)
                for m in models:
                    kwargs = dict(settings[m])
                    warm = prev.get((cur, m)) if m in FOURIER_MODELS else None
                    try:
                        if warm is not None and float(kwargs.get("strength", 0.0)) > 0:
                            res = calibrate(cleaned, m, prior=warm, **kwargs)
                        else:
                            res = calibrate(cleaned, m, start=warm, **kwargs)
                        rec = calibration_record(
                            res, snapshot=snap, settings=settings[m], model=m, warm_start=warm
                        )
                    except Exception as exc:
                        fail(sha, cur, [m], src, "calibrate", exc)
                        continue
                    records.append(rec)
                    stats["calibrations"] += 1
                    stats[f"status_{res.status}"] += 1
                    if res.status == "ok":
                        prev[(cur, m)] = res.params
    return {
        "records": records,
        "stats": dict(stats),
        "elapsed_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


@dataclass(frozen=True)
class BackfillReport:
    """What a backfill did (immutable)."""

    store: str
    files: int
    chains_total: int
    chains_done: int
    chains_skipped: int
    snapshots_written: int
    calibrations_written: int
    failures: int
    failures_by_reason: dict[str, int]
    statuses: dict[str, int]
    batches: int
    workers: int
    scheduler: str
    elapsed_s: float
    task_time_s: float
    task_cpu_s: float = 0.0
    models: tuple[str, ...] = field(default=())
    #: files a folder search passed over: CSV tables that are no option chain
    ignored: tuple[str, ...] = field(default=())

    @property
    def chains_per_s(self) -> float:
        return self.chains_done / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        rate = self.chains_per_s
        return {
            "store": self.store,
            "models": list(self.models),
            "files": self.files,
            "chains_total": self.chains_total,
            "chains_done": self.chains_done,
            "chains_skipped": self.chains_skipped,
            "snapshots_written": self.snapshots_written,
            "calibrations_written": self.calibrations_written,
            "failures": self.failures,
            "failures_by_reason": dict(self.failures_by_reason),
            "statuses": dict(self.statuses),
            "batches": self.batches,
            "workers": self.workers,
            "scheduler": self.scheduler,
            "elapsed_s": self.elapsed_s,
            "task_time_s": self.task_time_s,
            "task_cpu_s": self.task_cpu_s,
            "chains_per_s": None if rate != rate else rate,
            "ignored": list(self.ignored),
        }

    def summary(self) -> str:
        lines = [
            f"backfill into {self.store}: {self.files} files, {self.chains_total} chains "
            f"({self.chains_skipped} already stored), models {', '.join(self.models)}",
            f"  done {self.chains_done} chains in {self.elapsed_s:.1f} s "
            f"({self.chains_per_s:.2f} chains/s) on {self.workers} workers ({self.scheduler}), "
            f"{self.batches} batches",
            f"  written: {self.snapshots_written} snapshots, {self.calibrations_written} "
            f"calibrations, {self.failures} failures",
        ]
        if self.statuses:
            lines.append(
                "  fit status: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
            )
        for reason, n in sorted(self.failures_by_reason.items(), key=lambda kv: -kv[1]):
            lines.append(f"  failed x{n}: {reason}")
        if self.ignored:
            names = ", ".join(Path(f).name for f in self.ignored[:5])
            more = f" and {len(self.ignored) - 5} more" if len(self.ignored) > 5 else ""
            lines.append(f"  passed over {len(self.ignored)} files that are no option chain: "
                         f"{names}{more}")  # fmt: skip
        return "\n".join(lines)


def _connect(
    scheduler: str | None, workers: int, client: Any, timeout: float = 10.0
) -> tuple[Any, Any, int, str]:
    """(client, cluster to close or None, worker count, description)."""
    if client is not None:
        n = len(client.scheduler_info().get("workers", {})) or 1
        return client, None, n, str(getattr(client, "scheduler", None) and client.scheduler.address)
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a declared extra
        raise ClusterError(f"dask.distributed is not installed ({exc})") from None
    if scheduler:
        try:
            c = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        except ValueError as exc:
            raise ClusterError(f"bad Dask scheduler address {scheduler!r}: {exc}") from None
        n = len(c.scheduler_info().get("workers", {}))
        if n == 0:
            c.close()
            raise ClusterError(f"the Dask cluster at {scheduler} has no workers")
        return c, None, n, scheduler
    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    try:
        cluster = local_cluster(workers)
        c = Client(cluster)
    except Exception as exc:
        raise ClusterError(f"cannot start a local Dask cluster: {_reason(exc)}") from None
    return c, cluster, workers, f"LocalCluster({workers} processes)"


def local_cluster(workers: int) -> Any:
    """The ``LocalCluster`` a backfill starts: ``workers`` processes of one thread each
    (the kernels are compiled and single-threaded), dashboard on a free local port,
    :data:`CLUSTER_CONFIG` (also passed on to the worker processes by their nannies)."""
    import logging

    import dask
    from distributed import LocalCluster

    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    with dask.config.set(CLUSTER_CONFIG):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )


def backfill(
    paths: Iterable[str | Path],
    models: Sequence[str] = ("svi", "essvi", "heston"),
    store: str | Path = "volcal.duckdb",
    *,
    currencies: Sequence[str] = ("BTC", "ETH"),
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    batch_size: int = 20,
    settings: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    connect_timeout: float = 10.0,
) -> BackfillReport:
    """Calibrate every snapshot file under ``paths`` with every model into ``store``.

    Parameters
    ----------
    paths : files or folders
    models : sequence of str
        Model names of :func:`volcal.calibrate`.
    store : path
        Store file (created if missing, once the cluster is up).
    currencies : underlyings to read from each file.
    workers : LocalCluster worker processes (ignored with ``scheduler``/``client``).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    client : distributed.Client, optional
        An existing client (then ``workers``/``scheduler`` are not used).
    batch_size : files per task (warm starts run along a batch).
    settings : mapping, optional
        Keyword arguments of :func:`volcal.calibrate` for every model (JSON-safe; part
        of each calibration's identity through their hash).
    retry_failed : bool
        Also redo inputs recorded as failures.
    limit : int, optional
        Only the first ``limit`` files (chronologically).
    progress : callable, optional
        ``progress(chains_done, chains_total)`` after each written batch.
    connect_timeout : float
        Seconds to wait for ``scheduler``.
    """
    from volcal.calibration.calibrate import MODEL_NAMES
    from volcal.store.core import FailureRecord, Store, open_store
    from volcal.store.records import file_sha256, settings_hash, settings_json

    names = tuple(dict.fromkeys(m.strip().lower() for m in models if m.strip()))
    if not names:
        raise ParameterError("no model given")
    bad = [m for m in names if m not in MODEL_NAMES]
    if bad:
        raise ParameterError(f"unknown model {bad[0]!r}: use one of {', '.join(MODEL_NAMES)}")
    curs = tuple(dict.fromkeys(c.strip().upper() for c in currencies if c.strip()))
    if not curs:
        raise ParameterError("no currency given")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ParameterError(f"limit must be >= 1, got {limit}")
    sett = dict(settings or {})
    settings_json(sett)  # JSON-safe or a ParameterError now, not in a worker
    files, ignored = discover_files(paths)
    if limit is not None:
        files = files[:limit]
    store_path = Path(store)
    # the store is validated (not a DuckDB file, newer schema: an error now) but created
    # only once the cluster is up, so a failed start writes nothing
    check: Store | None = open_store(store_path) if store_path.exists() else None
    t_start = time.perf_counter()
    sh = {m: settings_hash(sett) for m in names}
    done = {m: (check.done(m, sh[m]) if check else set()) for m in names}
    failed = {m: (check.failed(m, sh[m]) if check and not retry_failed else set()) for m in names}
    if check is not None:
        check.close()
    items: list[tuple[str, str, dict[str, list[str]]]] = []
    skipped = 0
    hash_failures: list[Any] = []
    for f in files:
        try:
            sha = file_sha256(f)
        except OSError as exc:
            for cur in curs:
                for m in names:
                    hash_failures.append(
                        FailureRecord(f.name, cur, m, sh[m], f.name, "read", _reason(exc))
                    )
            continue
        todo: dict[str, list[str]] = {}
        for cur in curs:
            ms = [m for m in names if (sha, cur) not in done[m] and (sha, cur) not in failed[m]]
            if ms:
                todo[cur] = ms
            else:
                skipped += 1
        if todo:
            items.append((str(f), sha, todo))
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    c: Any = None
    cluster: Any = None
    n_workers, where = 0, "none (nothing to do)"
    if batches:
        c, cluster, n_workers, where = _connect(scheduler, workers, client, connect_timeout)
    st: Store | None = None
    try:
        # the only writer, for the whole run: one connection (and the file's lock), one
        # DuckDB thread (the cores are the workers')
        st = open_store(store_path, hold=True, threads=1)
        total = sum(len(t) for _, _, t in items)
        written = Counter(st.write(hash_failures)) if hash_failures else Counter()
        stats: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        task_time = 0.0
        task_cpu = 0.0
        chains_done = 0
        if progress is not None:
            progress(0, total)
        if batches:
            from distributed import as_completed

            settings_map = {m: sett for m in names}
            max_inflight = max(2, 2 * n_workers)
            pending = iter(enumerate(batches))
            stamp = f"{time.time_ns():x}"

            def submit(i: int, b: Any) -> Any:
                return c.submit(
                    run_batch, b, settings_map, sh, key=f"volcal-backfill-{stamp}-{i}", pure=False
                )

            futures = {}
            for _ in range(max_inflight):
                nxt = next(pending, None)
                if nxt is None:
                    break
                futures[submit(*nxt)] = nxt
            ac = as_completed(list(futures))
            for fut in ac:
                _i, batch = futures.pop(fut)
                try:
                    out = fut.result()
                except Exception as exc:  # the batch itself could not run (worker deaths)
                    reason = _reason(exc)
                    recs = [
                        FailureRecord(sha, cur, m, sh[m], Path(p).name, "worker", reason)
                        for p, sha, todo in batch
                        for cur, ms in todo.items()
                        for m in ms
                    ]
                    out = {
                        "records": recs,
                        "stats": {"chains": sum(len(t) for _, _, t in batch)},
                        "elapsed_s": 0.0,
                    }
                fut.release()
                for r in out["records"]:
                    if type(r).__name__ == "FailureRecord":
                        reasons[f"{r.stage}: {r.reason[:160]}"] += 1
                written.update(st.write(out["records"]))
                stats.update(out["stats"])
                task_time += float(out["elapsed_s"])
                task_cpu += float(out.get("cpu_s", 0.0))
                chains_done += int(out["stats"].get("chains", 0))
                del out
                if progress is not None:
                    progress(chains_done, total)
                nxt = next(pending, None)
                if nxt is not None:
                    f2 = submit(*nxt)
                    futures[f2] = nxt
                    ac.add(f2)
    finally:
        if st is not None:
            st.close()
        if c is not None and client is None:  # a client this call made (cluster or address)
            c.close()
        if cluster is not None:
            cluster.close()
    statuses = {k[len("status_") :]: v for k, v in stats.items() if k.startswith("status_")}
    return BackfillReport(
        store=str(store_path),
        files=len(files),
        chains_total=total + skipped,
        chains_done=chains_done,
        chains_skipped=skipped,
        snapshots_written=int(written.get("snapshots", 0)),
        calibrations_written=int(written.get("calibrations", 0)),
        failures=int(written.get("failures", 0)),
        failures_by_reason=dict(reasons),
        statuses=statuses,
        batches=len(batches),
        workers=n_workers,
        scheduler=where,
        elapsed_s=time.perf_counter() - t_start,
        task_time_s=task_time,
        task_cpu_s=task_cpu,
        models=names,
        ignored=tuple(str(f) for f in ignored),
    )
