"""README stays true: its Python examples and its command lines run as written.

They run in a working folder holding every file the examples name: the real snapshots of
../shared/data (``SNAPSHOT`` and ``PRICES.csv`` in commands stand for real files of it,
``../shared/data`` for the data folder itself), ``deribit.csv`` (a real snapshot),
``new.csv`` (the next one), OKX / Bybit / Binance answers and a Tardis ``options_chain``
file written by volcal's own writers from that real chain, the real Deribit order-book file
``btc_options_data.csv`` and ``btc.jsonl``, a message log recorded by ``volcal.stream``'s
own recorder from the replay of two real snapshots.

The few commands a test cannot run (network, a server that runs until stopped, a
whole-history job) are listed in ``NOT_RUN`` with the reason; each still has to answer
``--help``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import time
import warnings
from pathlib import Path

import pytest

from volcal.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SNAP = "deribit_options_snapshot_20260107T092155Z.csv"
NEXT = "deribit_options_snapshot_20260114T092233Z.csv"
# the two snapshots the message log is recorded from (16 h apart, compressed to 8 s)
LOG_SNAPS = (
    "deribit_options_snapshot_20251230T173115Z.csv",
    "deribit_options_snapshot_20251231T091828Z.csv",
)
LOG_TIME_SCALE = 1 / 7200

# README commands not run here: prefix -> (reason, the command line whose --help must work)
NOT_RUN: dict[str, tuple[str, str]] = {
    "volcal fetch": ("network: venues' public REST APIs", "fetch"),
    "volcal stream deribit": ("network: Deribit's websocket", "stream"),
    "volcal record deribit": ("network: Deribit's websocket", "record"),
    "volcal serve": ("long-running server: serves until stopped", "serve"),
    "volcal backfill ../shared/data/raw/svcj-deribit-snapshots ../shared/data/raw/svcj-deribit-history": (
        "whole-history job: every snapshot of both folders, hours",
        "backfill",
    ),
    "volcal backfill ... --scheduler": ("needs an existing remote Dask cluster", "backfill"),
}


def _commands() -> list[str]:
    """Every ``volcal ...`` line of the bash blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            cmd = line.split("  #")[0].strip()
            if cmd.startswith("volcal "):
                out.append(cmd)
    return out


def _not_run(cmd: str) -> str | None:
    return next((p for p in NOT_RUN if cmd.startswith(p)), None)


def _to_run() -> list[str]:
    return [c for c in _commands() if _not_run(c) is None]


def _write_json(path: Path, doc: object) -> None:
    with path.open("w", encoding="utf-8") as fh:
        json.dump(doc, fh)


def _build(base: Path, raw: Path) -> None:
    from venue_helpers import reference_chain, requote, two_sided, vols

    import volcal
    from volcal.feeds import binance, bybit, okx, tardis
    from volcal.stream.sources import ReplaySource, record

    snaps = raw / "svcj-deribit-snapshots"
    for f in sorted(snaps.iterdir()):
        (base / f.name).symlink_to(f)
    (base / "deribit.csv").symlink_to(snaps / SNAP)
    (base / "new.csv").symlink_to(snaps / NEXT)
    (base / "btc_options_data.csv").symlink_to(raw / "schepal-deribit" / "btc_options_data.csv")
    (base / "examples").symlink_to(REPO / "examples")
    # other venues re-quoting the real chain (wider, higher, lower), in their own layouts
    ch = reference_chain(snaps, SNAP)
    ch = ch.select(two_sided(ch))
    b, a = vols(ch, "bid"), vols(ch, "ask")
    payloads = {
        "okx": okx.to_okx(requote(ch, b - 0.005, a + 0.005)),
        "bybit": bybit.to_bybit(requote(ch, b + 0.003, a + 0.003)),
        "binance": binance.to_binance(requote(ch, b - 0.002, a - 0.002)),
    }
    for venue, doc in payloads.items():
        _write_json(base / f"{venue}.json", doc)
    venues = {"deribit": ch} | {v: volcal.read_chain(base / f"{v}.json") for v in payloads}
    tardis.to_tardis(venues).to_csv(base / "tardis_options_chain.csv", index=False)
    # a message log: the stream recorder on the replay of two real snapshots
    src = ReplaySource([snaps / n for n in LOG_SNAPS], speed=0, time_scale=LOG_TIME_SCALE)
    n = asyncio.run(record(src, base / "btc.jsonl"))
    assert n >= len(LOG_SNAPS)  # a book-summary frame (and the index) per snapshot


@pytest.fixture(scope="session")
def readme_files(raw_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("readme-files")
    _build(base, raw_data)
    return base


@pytest.fixture
def workdir(readme_files: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh folder with the example files (what the examples write lands here)."""
    for f in readme_files.iterdir():
        (tmp_path / f.name).symlink_to(f.resolve() if f.is_symlink() else f)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _argv(cmd: str, raw: Path) -> list[str]:
    snapshot = raw / "svcj-deribit-snapshots" / SNAP
    prices = raw / "btctree-btc-power" / "btc_daily.csv"
    out = []
    for a in shlex.split(cmd)[1:]:
        if a == "SNAPSHOT":
            a = str(snapshot)
        elif a == "PRICES.csv":
            a = str(prices)
        elif a.startswith("../shared/data"):
            a = str(raw.parent) + a[len("../shared/data") :]
        out.append(a)
    return out


def test_readme_has_examples() -> None:
    assert len(re.findall(r"```python\n", README)) >= 3
    assert len(_to_run()) >= 20
    cmds = _commands()
    assert not any(c.endswith("\\") for c in cmds)
    for prefix in NOT_RUN:  # no stale entry
        assert any(c.startswith(prefix) for c in cmds), prefix


@pytest.mark.parametrize("prefix", sorted(NOT_RUN))
def test_readme_not_run_commands_have_help(prefix: str, capsys) -> None:
    reason, command = NOT_RUN[prefix]
    assert reason
    code = main([*shlex.split(command), "--help"])
    out = capsys.readouterr().out
    assert code == 0, f"{command} --help"
    assert "Usage" in out


@pytest.mark.data
def test_readme_python_examples_run(workdir: Path, capsys) -> None:
    ns: dict = {}
    with warnings.catch_warnings():
        # the examples' own warnings (a far-wing pillar, a bound) are not failures here
        warnings.simplefilter("ignore")
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", README, re.S)):
            exec(compile(block, f"README.md python block {i + 1}", "exec"), ns)
    assert "fit" in ns and "clean" in ns and "surf" in ns and "nxt" in ns
    assert (workdir / "volcal.duckdb").is_file()


@pytest.mark.data
def test_readme_commands_run(workdir: Path, raw_data: Path, monkeypatch, capsys) -> None:
    """In README order, in one folder (the store the backfill writes is what the audit and
    history commands read)."""
    monkeypatch.setenv("VOLCAL_DATA_DIR", str(raw_data.parent))
    failed, took = [], []
    for cmd in _to_run():
        t0 = time.perf_counter()
        code = main(_argv(cmd, raw_data))
        took.append((round(time.perf_counter() - t0, 1), cmd))
        err = capsys.readouterr().err
        if code != 0 or "Traceback" in err:
            failed.append(f"{cmd} -> {code}: {err.strip()[-400:]}")
    print(sorted(took, reverse=True)[:8])
    assert not failed, "\n".join(failed)
