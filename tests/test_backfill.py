"""Backfill on a real Dask LocalCluster (2 worker processes) over a handful of real
snapshot files: stored rows, warm starts along time, the idempotent re-run, a killed
worker, a corrupt input, the audit round trip; and the one-line errors of bad input.

About a minute on 2 cores (one cluster for the module; 4 files, ETH, SVI + Heston)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

import volcal.store as vs
from volcal.cli import main
from volcal.errors import DataError
from volcal.history.jobs import backfill, discover
from volcal.store.audit import audit

pytestmark = pytest.mark.data

HISTORY = "svcj-deribit-history"
FILES = (
    "deribit_options_snapshot_20260102T091809Z.csv.gz",
    "deribit_options_snapshot_20260102T162624Z.csv.gz",
    "deribit_options_snapshot_20260102T211623Z.csv.gz",
    "deribit_options_snapshot_20260103T034831Z.csv.gz",
)
MODELS = ("svi", "heston")


@pytest.fixture(scope="module")
def inputs(raw_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    for name in FILES:
        shutil.copy(raw_data / HISTORY / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _counts(path: Path) -> dict[str, int]:
    with vs.open(path, read_only=True) as st:
        return st.counts()


def test_discover_orders_by_time(inputs):
    import volcal

    assert volcal.history.backfill is backfill  # the function, also after the module import
    files = discover([inputs])
    assert [f.name for f in files] == sorted(FILES)


def test_folder_search_passes_over_the_tables_kept_next_to_the_snapshots(raw_data, tmp_path):
    """The snapshot folder of the data set also holds futures marks and a file index
    (CSV tables, no option chain): a folder search passes over them (listed, not read as
    failed snapshots), also gzip-compressed, and keeps a damaged chain file, whose read
    then records why it failed."""
    import gzip

    from volcal.history.jobs import discover_files

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(raw_data / HISTORY / FILES[0], folder / FILES[0])
    side = (
        "perpetual_futures_prices.csv",
        "snapshot_currency_combos.csv",
        "term_futures_marks.csv",
    )
    for name in side:
        shutil.copy(raw_data / "svcj-deribit-snapshots" / name, folder / name)
    marks = (folder / side[2]).read_bytes()
    (folder / "term_futures_marks_copy.csv.gz").write_bytes(gzip.compress(marks))
    # a chain whose header lost columns: still a chain file (read, and fails with its reason)
    text = gzip.decompress((raw_data / HISTORY / FILES[1]).read_bytes()).decode()
    header, *rows = text.splitlines()
    cols = header.split(",")
    keep = [i for i, c in enumerate(cols) if c not in ("bid_price", "ask_price")]
    damaged = [",".join(cols[i] for i in keep)]
    damaged += [",".join(r.split(",")[i] for i in keep) for r in rows[:50]]
    (folder / "deribit_options_snapshot_20260102T162624Z.csv").write_text("\n".join(damaged))

    # named as a snapshot (a time stamp) but no chain inside: read, its failure recorded
    (folder / "deribit_options_snapshot_20260102T120000Z.csv").write_text("not,a,chain\n1,2,3\n")

    files, ignored = discover_files([folder])
    assert [f.name for f in files] == [
        FILES[0],
        "deribit_options_snapshot_20260102T120000Z.csv",
        "deribit_options_snapshot_20260102T162624Z.csv",
    ]
    assert sorted(f.name for f in ignored) == sorted([*side, "term_futures_marks_copy.csv.gz"])
    assert discover([folder]) == files
    # a table named explicitly is the user's choice: read (and its failure recorded)
    assert discover_files([folder / side[0]]) == ([folder / side[0]], [])
    only_tables = tmp_path / "tables"
    only_tables.mkdir()
    shutil.copy(raw_data / "svcj-deribit-snapshots" / side[0], only_tables / side[0])
    with pytest.raises(DataError, match="no snapshot files"):
        discover([only_tables])


def test_backfill_rows_warm_starts_rerun_and_audit(inputs, client, tmp_path):
    store = tmp_path / "h.duckdb"
    seen = []
    rep = backfill(
        [inputs], MODELS, store, currencies=["ETH"], client=client, batch_size=2,
        progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert rep.chains_done == len(FILES) and rep.failures == 0
    assert rep.snapshots_written == len(FILES)
    assert rep.calibrations_written == len(FILES) * len(MODELS)
    assert seen[0] == (0, len(FILES)) and seen[-1] == (len(FILES), len(FILES))
    with vs.open(store, read_only=True) as st:
        snaps = st.snapshots()
        cals = st.calibrations()
        heston = st.calibrations(model="heston", underlying="ETH")
        assert st.failures().empty
    assert list(snaps["source"]) == sorted(FILES)  # chronological
    assert snaps["snapshot_time"].is_monotonic_increasing
    assert snaps["vol_index_30d"].between(20, 200).all()
    assert len(cals) == len(FILES) * len(MODELS)
    assert not cals.duplicated(["snapshot_id", "model"]).any()
    # batches of 2 files: the first of each batch is cold, the other warm-started from it
    warm = heston["warm_start"].notna().tolist()
    assert warm == [False, True, False, True]
    assert json.loads(heston["warm_start"].iloc[1]) == json.loads(heston["params"].iloc[0])
    # the store's hashes are the files' hashes
    assert set(snaps["sha256"]) == {vs.file_sha256(inputs / n) for n in FILES}

    again = backfill([inputs], MODELS, store, currencies=["ETH"], client=client, batch_size=2)
    assert again.chains_done == 0 and again.chains_skipped == len(FILES)
    assert again.calibrations_written == 0 and again.snapshots_written == 0

    # audit: a cold and a warm-started Heston fit and an SVI fit reproduce bit for bit
    ids = [heston["id"].iloc[0], heston["id"].iloc[1], cals[cals.model == "svi"]["id"].iloc[1]]
    for cid in ids:
        res = audit(store, cid)
        assert res.verdict == "bit-for-bit", res.summary()
    # a tampered parameter is caught
    import duckdb

    con = duckdb.connect(str(store))
    con.execute(
        "UPDATE calibrations SET params = json_object('model', 'Heston', 'v0', 0.3, "
        "'kappa', 2.0, 'theta', 0.4, 'xi', 1.0, 'rho', -0.1) WHERE id = ?",
        [ids[0]],
    )
    con.close()
    bad = audit(store, ids[0])
    assert not bad.reproduced and bad.verdict == "not reproduced"
    assert main(["audit", str(store), ids[0]]) == 1
    assert main(["audit", str(store), ids[1], "--json"]) == 0


def test_corrupt_input_is_recorded_and_run_continues(inputs, client, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in FILES[:2]:
        shutil.copy(inputs / name, folder / name)
    data = (inputs / FILES[2]).read_bytes()
    (folder / FILES[2]).write_bytes(data[: len(data) // 2])  # truncated archive
    (folder / "deribit_options_snapshot_20260102T120000Z.csv.gz").write_bytes(
        gzip.compress(b"not,a,chain\n1,2,3\n")
    )
    store = tmp_path / "c.duckdb"
    rep = backfill([folder], ["svi"], store, currencies=["ETH"], client=client, batch_size=2)
    assert rep.chains_done == 4 and rep.calibrations_written == 2
    assert rep.failures == 2 and all(r.startswith("read: ") for r in rep.failures_by_reason)
    with vs.open(store, read_only=True) as st:
        fails = st.failures()
        assert len(st.calibrations()) == 2
    assert set(fails["source"]) == {FILES[2], "deribit_options_snapshot_20260102T120000Z.csv.gz"}
    assert (fails["stage"] == "read").all() and fails["reason"].str.len().gt(10).all()
    # a re-run skips the recorded failures; --retry-failed tries them again
    assert backfill([folder], ["svi"], store, currencies=["ETH"], client=client).chains_done == 0
    rep2 = backfill(  # through the scheduler's address, as --scheduler does
        [folder], ["svi"], store, currencies=["ETH"], scheduler=client.scheduler.address,
        retry_failed=True,
    )  # fmt: skip
    assert rep2.scheduler == client.scheduler.address and rep2.workers == 2
    assert rep2.chains_done == 2 and rep2.failures == 2
    with vs.open(store, read_only=True) as st:
        assert set(st.failures()["attempts"]) == {2}


def test_killed_worker_batch_is_retried(inputs, client, tmp_path):
    store = tmp_path / "k.duckdb"
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if done == 0 or killed:
            return
        busy = [(w, keys) for w, keys in client.processing().items() if keys]
        if busy:
            w, keys = busy[0]
            assert all(str(k).startswith("volcal-backfill-") for k in keys)
            os.kill(pids[w], signal.SIGKILL)  # its batch must be rerun for its rows to exist
            killed.append(pids[w])

    rep = backfill(
        [inputs], ["heston"], store, currencies=["ETH"], client=client, batch_size=1,
        progress=kill_one,
    )  # fmt: skip
    assert killed, "no batch was in flight to kill"
    assert rep.chains_done == len(FILES) and rep.failures == 0
    with vs.open(store, read_only=True) as st:
        cals = st.calibrations()
        c = st.counts()
    assert len(cals) == len(FILES) and cals["snapshot_id"].is_unique
    assert c["snapshots"] == len(FILES)
    client.wait_for_workers(2, timeout=60)


def test_one_held_single_threaded_writer_for_the_whole_run(inputs, client, tmp_path, monkeypatch):
    """The client writes every batch through one connection held for the run, with one
    DuckDB thread (no open, checkpoint and close of the file per batch); the store is
    released at the end, also when the run fails."""
    from volcal.store.core import Store

    calls = []
    write = Store.write

    def spy(self, records):
        recs = list(records)
        with self._connect() as con:
            threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        calls.append((id(self._held) if self._held is not None else None, threads, len(recs)))
        return write(self, recs)

    monkeypatch.setattr(Store, "write", spy)
    store = tmp_path / "w.duckdb"
    rep = backfill([inputs / n for n in FILES[:3]], ["svi"], store, currencies=["ETH"],
                   client=client, batch_size=1)  # fmt: skip
    assert rep.batches == 3 and rep.calibrations_written == 3
    assert len(calls) == 3 and all(n == 2 for _, _, n in calls)  # snapshot + fit per batch
    assert calls[0][0] is not None and {c[0] for c in calls} == {calls[0][0]}  # one connection
    assert {c[1] for c in calls} == {1}
    with vs.open(store, timeout=1) as st:  # released
        assert st.counts()["calibrations"] == 3

    def boom(self, records):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Store, "write", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        backfill([inputs / FILES[3]], ["svi"], store, currencies=["ETH"], client=client)
    with vs.open(store, timeout=1) as st:  # released after the failure too
        assert st.counts()["calibrations"] == 3


def test_local_cluster_runs_without_the_profiler_and_with_slow_housekeeping():
    """The LocalCluster a backfill starts passes CLUSTER_CONFIG to its worker processes:
    no sampling profiler thread, a 500 ms tick, a 2 s system monitor."""
    from distributed import Client

    from volcal.history.jobs import CLUSTER_CONFIG, local_cluster

    assert CLUSTER_CONFIG["distributed.worker.profile.enabled"] is False

    def inside(dask_worker):
        import dask

        return (
            dask.config.get("distributed.worker.profile.enabled"),
            "profile" in dask_worker.periodic_callbacks,
            dask_worker._tick_interval,
            dask_worker.periodic_callbacks["monitor"].callback_time,
        )

    with local_cluster(1) as cluster, Client(cluster) as c:
        (got,) = c.run(inside).values()
        assert got == (False, False, 0.5, 2000)
        assert cluster.scheduler._tick_interval == 0.5
        assert c.submit(sum, [1, 2], pure=False).result() == 3
    with pytest.raises(Exception, match="workers must be >= 1"):
        local_cluster(0)


def _cli(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_backfill_default_cluster_and_bad_input(inputs, tmp_path, capsys):
    store = tmp_path / "cli.duckdb"
    code, out, err = _cli(
        ["backfill", str(inputs / FILES[0]), str(inputs / FILES[1]), "--models", "svi",
         "--currency", "ETH", "--workers", "1", "--store", str(store), "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert '"calibrations_written": 2' in out
    assert _counts(store)["calibrations"] == 2

    # an empty folder
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = _cli(["backfill", str(empty), "--store", str(tmp_path / "e.duckdb")], capsys)
    assert code == 2 and "no snapshot files" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.duckdb").exists()
    # a store that is not DuckDB: refused, untouched
    bad = tmp_path / "bad.duckdb"
    bad.write_text("hello\n" * 100)
    code, out, err = _cli(["backfill", str(inputs), "--store", str(bad)], capsys)
    assert code == 2 and "not a volcal store" in err and len(err.strip().splitlines()) == 1
    assert bad.read_text() == "hello\n" * 100
    # an unreachable scheduler: nothing created
    code, out, err = _cli(
        ["backfill", str(inputs), "--store", str(tmp_path / "u.duckdb"), "--scheduler",
         "tcp://127.0.0.1:9", "--connect-timeout", "2"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "cannot reach the Dask scheduler" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "u.duckdb").exists()
    # a newer schema version
    import duckdb

    con = duckdb.connect(str(store))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [vs.SCHEMA_VERSION + 1])
    con.close()
    before = _raw_rows(store)
    code, out, err = _cli(["backfill", str(inputs), "--store", str(store)], capsys)
    assert code == 2 and "newer than this volcal" in err
    code, out, err = _cli(["audit", str(store), "c0"], capsys)
    assert code == 2 and "newer than this volcal" in err
    assert _raw_rows(store) == before
    # unknown model, unknown calibration id
    code, out, err = _cli(["backfill", str(inputs), "--models", "svi,nope"], capsys)
    assert code == 2 and "unknown model 'nope'" in err


def _raw_rows(path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    n = con.execute("SELECT count(*) FROM calibrations").fetchone()[0]
    con.close()
    return int(n)


def test_cli_progress_bar_redraws_once_a_second():
    """The backfill's progress bar moves once per batch: it redraws about once a second
    (Rich's default of 10 per second would spend the client's CPU on identical frames)."""
    import time

    from volcal.cli.store import _backfill_bar

    bar = _backfill_bar(transient=True)
    draws = []
    refresh = bar.live.refresh

    def counted():
        draws.append(time.monotonic())
        refresh()

    bar.live.refresh = counted
    bar.start()
    task = bar.add_task("chains", total=10)
    for i in range(10):
        time.sleep(0.2)
        bar.update(task, completed=i + 1)
    bar.stop()
    assert 1 <= len(draws) <= 5, len(draws)  # 2 s: ~2 timed redraws + start / stop
