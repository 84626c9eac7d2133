"""``volcal stream`` and ``volcal record``: replay of real snapshots, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli_json

from volcal.cli import main

SNAPS = (
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
)


@pytest.mark.data
def test_stream_replay_json(snapshot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(snapshot_dir / s) for s in SNAPS]
    code = main(["stream", "replay", *paths, "--speed", "0", "--models", "svi,essvi", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = cli_json(out)
    st, m = doc["state"], doc["metrics"]
    assert st["underlying"] == "BTC" and st["snapshot_time"].startswith("2026-01-23T15:35")
    ok = [e for e in st["expiries"] if e["status"] == "ok"]
    assert len(ok) >= 8
    assert all(0.05 < e["atm_vol"] < 2.0 for e in ok)
    msg = m["messages"]
    assert msg["received"] == msg["applied_total"] + sum(msg["dropped"].values())
    assert msg["applied"]["snapshot"] == 2 and st["synthetic_share"] == 0.0
    assert st["surface"]["essvi"]["status"] in ("ok", "degraded")


@pytest.mark.data
def test_stream_replay_live_view(snapshot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "stream",
            "replay",
            str(snapshot_dir / SNAPS[0]),
            "--speed",
            "0",
            "--models",
            "svi",
            "--ticks-between",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ATM %" in out and "messages: received" in out and "tick_to_slice" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["stream", "kraken", "BTC"], "unknown source 'kraken'"),
        (["stream", "deribit", "XYZ"], "unknown Deribit currency 'XYZ'"),
        (["stream", "replay", "no/such/file.jsonl"], "no such file"),
        (["stream", "replay"], "needs at least one"),
        (["stream", "replay", "x.jsonl", "--models", "svi,garch"], ""),
        (["record", "kraken", "BTC", "-o", "x.jsonl"], "unknown venue 'kraken'"),
        (["record", "deribit", "XYZ", "-o", "x.jsonl"], "unknown Deribit currency"),
    ],
)
def test_bad_arguments_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if "x.jsonl" in argv and argv[0] == "stream":
        log = tmp_path / "x.jsonl"
        log.write_text('{"recv": 1.0, "raw": "{}"}\n')
        argv = [str(log) if a == "x.jsonl" else a for a in argv]
        needle = "unknown stream model 'garch'"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_unreadable_log_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "bad.jsonl.gz"
    log.write_bytes(b"not gzip at all")
    assert main(["stream", "replay", str(log), "--speed", "0", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot read log" in err and len(err.splitlines()) == 1, err


@pytest.mark.data
def test_stream_and_record_live_against_fake_server(
    snapshot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`volcal stream deribit BTC` and `volcal record` against the local fake server
    (a thread with its own loop, 127.0.0.1, ephemeral port) serving a real snapshot."""
    import asyncio
    import threading
    import time as _time

    from fake_deribit import FakeDeribit, load_snapshot

    ms, quotes, index = load_snapshot(snapshot_dir / SNAPS[0], "BTC", expiries=4)
    # the snapshot's expiries are in the past for the system clock: shift them (and the
    # quote times) by whole days so that the live feed sees a current market
    now_ms = int(_time.time() * 1000)
    days = (now_ms - ms) // 86_400_000 + 1
    shift = days * 86_400_000
    for q in quotes.values():
        q.expiry_ms += shift
        q.ts_ms = now_ms
    renamed = {}
    import pandas as pd

    for name, q in quotes.items():
        und, _exp, k, cp = name.split("-")
        code = pd.Timestamp(q.expiry_ms, unit="ms", tz="UTC").strftime("%-d%b%y").upper()
        q.name = f"{und}-{code}-{k}-{cp}"
        renamed[q.name] = q
    fake = FakeDeribit(renamed, index)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    assert started.wait(10)
    try:
        code = main(
            [
                "stream",
                "deribit",
                "BTC",
                "--url",
                fake.url,
                "--duration",
                "3",
                "--models",
                "svi",
                "--json",
            ]
        )
        doc = cli_json(capsys.readouterr().out)
        assert code == 0
        assert doc["metrics"]["snapshot_quotes"]["applied"] == len(renamed)
        assert doc["metrics"]["source"]["connects"] == 1
        assert any(e["status"] == "ok" for e in doc["state"]["expiries"])
        log = tmp_path / "rec.jsonl"
        assert (
            main(["record", "deribit", "BTC", "-o", str(log), "--url", fake.url, "--duration", "1"])
            == 0
        )
        assert "recorded" in capsys.readouterr().out
        assert len(log.read_text().splitlines()) >= 5
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        th.join(10)
        loop.close()


def test_unreachable_feed_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from volcal.stream import DeribitSource, StreamConfig, StreamEngine

    async def main() -> StreamEngine:
        src = DeribitSource(
            "BTC",
            url=f"ws://127.0.0.1:{port}",
            backoff_s=0.01,
            backoff_max_s=0.02,
            max_reconnects=2,
        )
        eng = StreamEngine(src, StreamConfig(models=("svi",)))
        await eng.run()
        return eng

    import asyncio

    eng = asyncio.run(main())
    assert eng.error is not None and "after 2 reconnects" in str(eng.error)
    assert eng.source.metrics()["reconnects"] == 3


def test_the_command_freezes_its_start_up_heap() -> None:
    """``volcal stream`` owns its process: its engine freezes the start-up heap
    (StreamConfig.gc_freeze), a library engine does not by default."""
    from volcal.cli.stream import _config
    from volcal.stream import StreamConfig

    assert _config("BTC", "svi", None, 0.1, 10.0).gc_freeze is True
    assert StreamConfig().gc_freeze is False
