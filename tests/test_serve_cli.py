"""``volcal serve`` on the command line: bad arguments are one-line errors (exit 2), a
real replay is served by the command itself, and no source means the shared snapshots."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from volcal.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--live", "kraken"], "unknown venue"),
        (["--live", "deribit", "--currency", "DOGE"], "unknown Deribit currency"),
        (["--replay", "no/such/file.jsonl"], "no such file"),
        (["--replay", "a.jsonl", "--live", "deribit"], "either --replay or --live"),
        (["--port", "70000"], "port"),
        (["--speed", "-1"], "speed"),
        (["--models", ""], "--models is empty"),
    ],
)
@pytest.mark.data
def test_bad_arguments_are_one_line_errors(
    args: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    snapshot_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOLCAL_DATA_DIR", str(snapshot_dir.parents[1]))
    code = main(["serve", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) <= 2  # one message (wrapped)


@pytest.mark.data
def test_no_source_serves_the_shared_snapshots_and_says_so(snapshot_dir: Path) -> None:
    from volcal.serve.service import build_service

    svc = build_service(env={}, models="svi")
    assert svc.note.startswith("no source given: replay of 15 real Deribit snapshots")
    assert svc.settings.source == svc.note and svc.settings.engine_thread
    assert svc.source.speed == 3600.0 and len(svc.source.snapshots) == 15
    # between two snapshots ~6 h apart the replay is not "stale"; it is when it stops
    assert svc.engine.config.stale_feed_s > 6 * 3600


@pytest.mark.data
def test_command_serves_a_real_replay(snapshot_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    snap = snapshot_dir / "deribit_options_snapshot_20260123T092319Z.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("VOLCAL_SERVE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "volcal", "serve", "--replay", str(snap), "--speed", "0",
         "--port", str(port), "--models", "svi"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        h = None
        while time.monotonic() < deadline:
            try:
                h = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                if h["status"] != "starting":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert h is not None and h["status"] in ("ok", "stale"), h
        d = httpx.get(f"http://127.0.0.1:{port}/v1/surface").json()
        assert d["snapshot_time"].startswith("2026-01-23T09:23") and len(d["expiries"]) >= 5
        # --speed 0: the replay ended and the last state keeps being served
        time.sleep(1.0)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/surface").status_code == 200
        r = httpx.post(f"http://127.0.0.1:{port}/v1/admin/reload")
        assert r.status_code == 403  # no token configured: admin is off
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "source: replay of 1 file(s) at 0x" in err
    assert f"serving http://127.0.0.1:{port}/" in err and "admin off" in err
