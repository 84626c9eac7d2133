"""``volcal stream`` and ``volcal record``: replay of real snapshots, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    doc = json.loads(out)
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
