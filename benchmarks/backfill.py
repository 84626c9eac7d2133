"""Backfill throughput: chains/s of ``volcal backfill`` on Dask with 1 and 2 worker
processes against a plain loop in one process doing the same work.

Work: the first ``--limit`` snapshot files (chronologically) of
../shared/data/raw/svcj-deribit-snapshots and svcj-deribit-history, each read for every
``--currency`` and fitted with every ``--models`` model (default svi, essvi, heston),
in batches of ``--batch-size`` files warm-started along time - exactly the task
function the backfill sends to Dask (:func:`volcal.history.jobs.run_batch`), and
every batch written to a fresh store, in both cases.

* plain loop: ``run_batch`` on each batch in this process, then ``Store.write``;
* Dask: ``volcal.history.backfill`` with a ``LocalCluster`` of N worker processes (one
  thread each) started by this script, so the cluster start-up and the workers'
  warm-up (imports, loading the compiled kernels) are timed separately from the run.

Reported: wall time and chains/s of each, CPU time of the tasks (process time summed
over batches: wall much above CPU / workers means the cores were busy elsewhere), the
CPU of the worker processes over the run (tasks and Dask's own threads) and of this
process (the client's writes, the scheduler, the nannies: CPU taken from the workers
when there are as many workers as cores), Dask overhead = (1-worker time - loop time) /
loop time, scaling = 1-worker time / 2-worker time, peak resident memory of the client
and of each worker (VmHWM), failures by reason. Timings are the min of ``--repeat``
runs (the machine is shared: the load is printed), so read small differences as noise.

``--ceiling``: only the hardware ceiling of the scaling - the plain loop done by one
process alone against the same work split over two independent processes at once (no
Dask, each with its own store; throughput ratio and CPU per chain of each), ``--repeat``
runs interleaved. Two cores that slow each other down when both are busy (shared caches,
memory bandwidth, a hypervisor's scheduling) cap what two Dask workers can reach.

Run: ``python benchmarks/backfill.py --limit 24`` (``--quick``: 6 files, ETH, svi +
heston); ``--write`` puts the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = Path(
    os.environ.get("VOLCAL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
FOLDERS = ("svcj-deribit-snapshots", "svcj-deribit-history")


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss survives exec on Linux, so
    a spawned worker would report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm(models: list[str]) -> float:
    """Import and run one fit of each model on a synthetic chain (loads compiled kernels)."""
    import warnings

    import volcal
    from volcal.store.records import calibration_record, snapshot_record
    from volcal.synthetic import synthetic_chain

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ch = volcal.clean(synthetic_chain(seed=1))
        snap = snapshot_record(ch)
        volcal.vol_index(ch)
        for m in models:
            calibration_record(volcal.calibrate(ch, m), snapshot=snap)
    return time.perf_counter() - t


def _items(files, currencies, models):
    from volcal.store.records import file_sha256

    return [(str(f), file_sha256(f), {c: list(models) for c in currencies}) for f in files]


def plain_loop(files, currencies, models, batch_size, store):
    import volcal.store as vs
    from volcal.history.jobs import run_batch
    from volcal.store.records import settings_hash

    sh = {m: settings_hash({}) for m in models}
    items = _items(files, currencies, models)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    t = time.perf_counter()
    reasons: Counter[str] = Counter()
    chains = 0
    c0 = time.process_time()
    try:  # the store as the backfill's client opens it (one held single-threaded connection)
        st = vs.open(store, hold=True, threads=1)
    except TypeError:  # an older tree (the baseline): a connection per write, as its client
        st = vs.open(store)
    with st:
        for b in batches:
            out = run_batch(b, {m: {} for m in models}, sh)
            for r in out["records"]:
                if type(r).__name__ == "FailureRecord":
                    reasons[f"{r.stage}: {r.reason[:100]}"] += 1
            st.write(out["records"])
            chains += out["stats"].get("chains", 0)
    return time.perf_counter() - t, chains, reasons, time.process_time() - c0


def _ceiling_child(files, currencies, models, batch_size, store, barrier, queue):
    """One independent process of the ceiling run: warm up, wait for the others, then the
    plain loop on its files (its own store)."""
    import resource as _res

    _warm(models)
    barrier.wait()
    r0 = _res.getrusage(_res.RUSAGE_SELF)
    s, chains, _reasons, _cpu = plain_loop(files, currencies, models, batch_size, store)
    r1 = _res.getrusage(_res.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    queue.put({"wall": s, "chains": chains, "cpu": cpu,
               "nivcsw": r1.ru_nivcsw - r0.ru_nivcsw})  # fmt: skip


def ceiling_run(files, currencies, models, batch_size, tmp, procs):
    """The plain loop split over ``procs`` independent OS processes at once (no Dask, no
    shared store): batch i goes to process i mod ``procs``; all start together after
    their warm-up. Returns one dict per process (wall s, chains, CPU s)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    idx = list(range(0, len(files), batch_size))
    parts = [[f for j in idx[p::procs] for f in files[j : j + batch_size]] for p in range(procs)]
    barrier = ctx.Barrier(procs)
    queue = ctx.Queue()
    stamp = time.time_ns()
    ps = []
    for p, part in enumerate(parts):
        store = tmp / f"ceil{stamp}-{procs}-{p}.duckdb"
        args = (part, currencies, models, batch_size, store, barrier, queue)
        ps.append(ctx.Process(target=_ceiling_child, args=args))
    for p in ps:
        p.start()
    out = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    return out


def ceiling(files, currencies, models, batch_size, tmp, repeat) -> str:
    """Hardware ceiling of the 1 -> 2 process scaling on this machine (see ``--ceiling``)."""
    runs: dict[int, list[list[dict]]] = {1: [], 2: []}
    loads = []
    for _ in range(repeat):  # interleaved: 1, 2, 1, 2, ...
        for n in (1, 2):
            loads.append(os.getloadavg()[0])
            runs[n].append(ceiling_run(files, currencies, models, batch_size, tmp, n))
    one = min(runs[1], key=lambda r: r[0]["wall"])
    two = min(runs[2], key=lambda r: max(x["wall"] for x in r))
    chains = one[0]["chains"]
    w1 = one[0]["wall"]
    w2 = max(x["wall"] for x in two)
    rate1 = chains / w1
    rate2_sum = sum(x["chains"] / x["wall"] for x in two)
    cpu1 = one[0]["cpu"] / chains
    cpu2 = sum(x["cpu"] for x in two) / sum(x["chains"] for x in two)
    lines = [
        f"Ceiling: the plain loop (read, clean, fit, write its own store) on {chains} chains in "
        f"batches of {batch_size} files, done by ONE process alone against TWO independent "
        f"processes at once (batches alternating between them, no Dask, each its own store), "
        f"each freshly spawned and warmed up; best of {repeat} interleaved run(s) each; load "
        f"average (1 min) before each run {', '.join(f'{x:.1f}' for x in loads)}.",
        "",
        "| run | wall s | chains | chains/s | CPU s | CPU s per chain | involuntary context switches |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| 1 process | {w1:.1f} | {chains} | {rate1:.2f} | {one[0]['cpu']:.1f} | {cpu1:.3f} | "
        f"{one[0]['nivcsw']} |",
    ]
    for k, x in enumerate(two):
        lines.append(
            f"| 2 processes: #{k + 1} | {x['wall']:.1f} | {x['chains']} | "
            f"{x['chains'] / x['wall']:.2f} | {x['cpu']:.1f} | {x['cpu'] / x['chains']:.3f} | "
            f"{x['nivcsw']} |"
        )
    lines += [
        "",
        f"Ceiling of the scaling 1 -> 2 processes: {w1 / w2:.2f}x by wall time (one alone / "
        f"the slower of the two), {rate2_sum / rate1:.2f}x by summed rates; CPU per chain "
        f"{cpu2 / cpu1:.2f}x of the lone process's.",
    ]
    return "\n".join(lines)


def dask_run(files, currencies, models, batch_size, store, workers):
    import logging

    from distributed import Client, LocalCluster

    from volcal.history import jobs
    from volcal.history.jobs import backfill

    t0 = time.perf_counter()
    if hasattr(jobs, "local_cluster"):  # the cluster the backfill itself starts
        cluster = jobs.local_cluster(workers)
    else:  # an older tree (the baseline): its backfill's LocalCluster
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    client.run(_warm, models)
    warm = time.perf_counter() - t1
    try:
        w0 = client.run(time.process_time)
        c0 = resource.getrusage(resource.RUSAGE_SELF)
        t2 = time.perf_counter()
        rep = backfill(files, models, store, currencies=currencies, client=client,
                       batch_size=batch_size)  # fmt: skip
        run = time.perf_counter() - t2
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        w1 = client.run(time.process_time)
        rss = client.run(_rss_mb)
    finally:
        client.close()
        cluster.close()
    # this process = the client (its writes), the scheduler and the nannies
    client_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    worker_cpu = sum(w1[k] - w0[k] for k in w1 if k in w0)
    return {"startup": startup, "warm": warm, "run": run, "report": rep, "rss": rss,
            "client_cpu": client_cpu, "worker_cpu": worker_cpu}  # fmt: skip


def store_ops(n: int, hold: bool) -> str:
    """Latency of the store's calls (per call: open the file, one transaction, close;
    with ``hold``: one connection kept open)."""
    import statistics
    import warnings

    import volcal
    import volcal.store as vs
    from volcal.synthetic import synthetic_chain

    path = Path(tempfile.mkdtemp(prefix="volcal-store-")) / "s.duckdb"
    t_snap, t_cal, t_cal_grid = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with vs.open(path, hold=hold) as st:
            for i in range(n):
                ch = volcal.clean(synthetic_chain(seed=i))
                fit = volcal.calibrate(ch, "svi")
                t = time.perf_counter()
                sid = st.add_snapshot(ch)
                t_snap.append(time.perf_counter() - t)
                t = time.perf_counter()
                st.add_calibration(fit, sid, settings={}, surface=False)
                t_cal.append(time.perf_counter() - t)
                t = time.perf_counter()
                st.add_calibration(fit, sid, settings={"grid": 1}, surface=True)
                t_cal_grid.append(time.perf_counter() - t)
            t = time.perf_counter()
            df = st.calibrations(model="svi")
            t_read = time.perf_counter() - t
            t = time.perf_counter()
            st.latest("BTC", "svi")
            t_latest = time.perf_counter() - t
    med = statistics.median
    return "\n".join([
        f"Store calls ({'hold=True' if hold else 'a connection per call'}) on {n} synthetic BTC chains ({len(ch)} quotes, {len(fit.slices)} expiries "
        f"each), median ms: add_snapshot {1e3 * med(t_snap):.1f}; add_calibration without "
        f"surface tables {1e3 * med(t_cal):.1f}, with them (conventions + grid, SVI) "
        f"{1e3 * med(t_cal_grid):.1f}; calibrations() of {len(df)} rows {1e3 * t_read:.1f}; "
        f"latest() {1e3 * t_latest:.1f}. File size {path.stat().st_size / 1e6:.1f} MB.",
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=24, help="number of snapshot files")
    ap.add_argument("--models", default="svi,essvi,heston")
    ap.add_argument("--currency", default="BTC,ETH")
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--workers", default="1,2", help="worker counts to run")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (min kept)")
    ap.add_argument("--quick", action="store_true", help="6 files, ETH, svi + heston")
    ap.add_argument("--store-ops", type=int, default=0, metavar="N",
                    help="only time the store's calls on N synthetic chains")  # fmt: skip
    ap.add_argument("--ceiling", action="store_true",
                    help="only the hardware ceiling: the plain loop in 1 process against 2 "
                    "independent processes at once (no Dask)")  # fmt: skip
    ap.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = ap.parse_args()
    if args.store_ops:
        print(store_ops(args.store_ops, hold=False))
        print(store_ops(args.store_ops, hold=True))
        return
    if args.quick:
        args.limit, args.currency, args.models, args.batch_size = 6, "ETH", "svi,heston", 3
    models = [m for m in args.models.split(",") if m]
    currencies = [c for c in args.currency.split(",") if c]
    from volcal.history.jobs import discover

    files = discover([DATA / "raw" / f for f in FOLDERS])[: args.limit]
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="volcal-bench-"))
    if args.ceiling:
        print(ceiling(files, currencies, models, args.batch_size, tmp, args.repeat))
        return
    warm_main = _warm(models)
    loop_s = float("inf")
    for i in range(args.repeat):
        s_i, chains, reasons, cpu_i = plain_loop(files, currencies, models, args.batch_size,
                                          tmp / f"loop{i}.duckdb")  # fmt: skip
        if s_i < loop_s:
            loop_s, loop_cpu = s_i, cpu_i
    client_rss_loop = _rss_mb()
    rows = [("plain loop (1 process)", loop_s, chains, f"{loop_cpu:.1f}", "-", "-", "-",
             "-", f"{client_rss_loop:.0f}", "-")]  # fmt: skip
    runs = {}
    for w in [int(x) for x in args.workers.split(",") if x]:
        r = min(
            (dask_run(files, currencies, models, args.batch_size, tmp / f"dask{w}-{i}.duckdb", w)
             for i in range(args.repeat)),
            key=lambda x: x["run"],
        )  # fmt: skip
        runs[w] = r
        rep = r["report"]
        rows.append((
            f"Dask LocalCluster, {w} worker{'s' if w > 1 else ''}", r["run"], rep.chains_done,
            f"{rep.task_cpu_s:.1f}", f"{r['worker_cpu']:.1f}",
            f"{r['client_cpu']:.1f} ({100 * r['client_cpu'] / rep.task_cpu_s:.1f} %)",
            f"{r['startup']:.1f}", f"{r['warm']:.1f}", f"{_rss_mb():.0f}",
            " / ".join(f"{v:.0f}" for v in r["rss"].values()),
        ))  # fmt: skip
        for k, v in rep.failures_by_reason.items():
            reasons[f"(dask {w}) {k}"] += v
    lines = [
        f"Subset: first {len(files)} snapshot files (chronological) of svcj-deribit-snapshots + "
        f"svcj-deribit-history, {', '.join(currencies)} x {', '.join(models)} = {chains} chains, "
        f"{chains * len(models)} fits, batches of {args.batch_size} files. Load average at start "
        f"{load[0]:.1f} / {load[1]:.1f} (1 / 5 min) on 2 shared cores; min of {args.repeat} run(s) each; warm-up of "
        f"this process before the loop {warm_main:.1f} s.",
        "",
        "| run | wall s | chains | chains/s | task CPU s | worker process CPU s | "
        "client process CPU s (of task CPU) | cluster start s | worker warm-up s | "
        "client peak RSS MB | worker peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s, n, cpu, wcpu, ccpu, start, warm, crss, wrss in rows:
        lines.append(
            f"| {name} | {s:.1f} | {n} | {n / s:.2f} | {cpu} | {wcpu} | {ccpu} | {start} | "
            f"{warm} | {crss} | {wrss} |"
        )
    if 1 in runs:
        over = (runs[1]["run"] - loop_s) / loop_s
        lines.append("")
        lines.append(f"Dask overhead (1 worker vs plain loop, warm workers): {100 * over:+.1f} %.")
    if 1 in runs and 2 in runs:
        lines.append(f"Scaling 1 -> 2 workers: {runs[1]['run'] / runs[2]['run']:.2f}x.")
    lines.append(
        "Failures by reason: "
        + ("none" if not reasons else "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    )
    text = "\n".join(lines)
    print(text)
    if args.write:
        from _markdown import write_section

        cmd = " ".join(["python", "benchmarks/backfill.py", *sys.argv[1:]]).replace(" --write", "")
        write_section(
            "## Backfill on Dask",
            "## Backfill on Dask\n\n"
            f"`{cmd}` (benchmarks/backfill.py; baseline: the same task function in a plain "
            "loop in one process, writing to a store the same way).\n\n" + text + "\n",
        )


if __name__ == "__main__":
    main()
