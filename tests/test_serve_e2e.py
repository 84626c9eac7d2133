"""volcal serve end to end: the real streaming engine on a replay of real Deribit
snapshots (../shared/data), served by the real uvicorn server on an ephemeral
127.0.0.1 port. The replay advances when the test says so (``GatedReplay``)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_sync = pytest.importorskip("websockets.sync.client")

from browser_helpers import browser, sid, text_of, wait_text  # noqa: E402, F401
from serve_helpers import GatedReplay, recv_message, wait_for  # noqa: E402

from volcal.serve import ServerThread, ServeSettings, create_app  # noqa: E402
from volcal.serve.schemas import QualityOut, SurfaceOut  # noqa: E402

pytestmark = pytest.mark.data

SNAPSHOTS = (
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
    "deribit_options_snapshot_20260123T212130Z.csv",
)


def _files(snapshot_dir: Path) -> list[Path]:
    return [snapshot_dir / f for f in SNAPSHOTS]


def _wait(pred: Any, timeout: float = 90.0, what: str = "condition") -> Any:
    return wait_for(pred, timeout, what)


def _engine(source: Any, **kw: Any) -> Any:
    from volcal.stream import StreamConfig, StreamEngine

    return StreamEngine(source, StreamConfig(underlyings=("BTC",), models=("svi", "essvi"), **kw))


def _fitted(srv: ServerThread, n_min: int = 5) -> dict[str, Any] | None:
    r = httpx.get(srv.url + "/v1/surface")
    if r.status_code != 200:
        return None
    d = r.json()
    ok = [e for e in d["expiries"] if e["status"] == "ok"]
    return d if len(ok) >= n_min else None


class Served:
    def __init__(self, snapshot_dir: Path, **settings: Any) -> None:
        self.src = GatedReplay(_files(snapshot_dir), released=1)
        self.engine = _engine(self.src)
        self.app = create_app(
            self.engine, ServeSettings(status_interval_s=0.2, engine_thread=True, **settings)
        )
        self.srv = ServerThread(self.app).start()
        self.first = _wait(lambda: self._settled(None), what="the first real surface")

    def _settled(self, before: str | None) -> dict[str, Any] | None:
        """The served surface once it moved past ``before`` and stopped changing."""
        d = _fitted(self.srv)
        if not d or (before is not None and d["snapshot_time"] == before):
            return None
        # the slices held for their cold refit (done on the engine's slice worker when
        # a warm search fails on a large move) have it
        if any("cold_refit_pending" in (e.get("reasons") or ()) for e in d["expiries"]):
            return None
        # the engine refits due slices a few per scheduler turn, so the snapshot time
        # moves with the first turn: wait until the served expiries stop changing
        time.sleep(0.5)
        again = _fitted(self.srv)
        return d if again and again["expiries"] == d["expiries"] else None

    def advance(self) -> dict[str, Any]:
        """Release the next snapshot and wait until the served surface moved."""
        before = self.srv and httpx.get(self.srv.url + "/v1/surface").json()["snapshot_time"]
        self.src.release()
        return dict(_wait(lambda: self._settled(before), what="the next snapshot"))


@pytest.fixture(scope="module")
def served(snapshot_dir: Path) -> Iterator[Served]:
    s = Served(snapshot_dir, rate_limit=0)
    yield s
    s.srv.stop()


def _atm_row(d: dict[str, Any]) -> dict[str, Any]:
    """An expiry 1-3 months out with a good fit."""
    rows = [e for e in d["expiries"] if e["status"] == "ok" and 0.05 < e["t"] < 0.3]
    return rows[0]


def test_real_surface_served_as_the_engine_has_it(served: Served) -> None:
    d = SurfaceOut.model_validate(served.first)
    st = served.engine.state("BTC").to_dict()
    assert d.snapshot_time == st["snapshot_time"] and d.snapshot_time.startswith("2026-01-23T09:23")
    assert not d.stale
    got = {e.expiry: e.atm_vol for e in d.expiries}
    want = {e["expiry"]: e["atm_vol"] for e in st["expiries"]}
    assert got == want
    assert all(0.1 < (v or 0.3) < 2.0 for v in got.values())  # BTC vols, as fractions
    assert "essvi" in served.first["surface"]
    h = httpx.get(served.srv.url + "/health").json()
    assert h["status"] == "ok" and h["underlyings"]["BTC"]["snapshot_time"] == d.snapshot_time


def test_real_iv_matches_engine_atm_and_rr(served: Served) -> None:
    row = _atm_row(httpx.get(served.srv.url + "/v1/surface").json())
    r = httpx.get(
        served.srv.url + "/v1/iv",
        params={"expiry": row["expiry"], "strike": [row["forward"]], "delta": ["0.25", "-0.25"]},
    ).json()
    atm, c25, p25 = (p["iv"] for p in r["points"])
    # the ATM-forward vol of the served smile is the engine's own atm_vol
    assert atm == pytest.approx(row["atm_vol"], abs=1e-10)
    # RR25 from the 25-delta strikes the API solves equals the engine's (premium-adjusted)
    assert c25 - p25 == pytest.approx(row["rr25"], abs=2e-4)
    assert (c25 + p25) / 2 - atm == pytest.approx(row["bf25"], abs=2e-4)


def test_real_quotes_quality_params_metrics(served: Served) -> None:
    u = served.srv.url
    row = _atm_row(httpx.get(u + "/v1/surface").json())
    q = httpx.get(u + "/v1/quotes", params={"expiry": row["expiry"]}).json()
    both = [x for x in q["quotes"] if x["bid_iv"] is not None and x["ask_iv"] is not None]
    assert len(both) >= 5 and all(x["bid_iv"] <= x["ask_iv"] + 1e-12 for x in both)
    marks = [x["mark_iv"] for x in q["quotes"] if x["mark_iv"] is not None]
    assert marks and all(0.1 < m < 3.0 for m in marks)  # Deribit's mark vol, as a fraction
    k = np.log(np.asarray(q["fit"]["strike"]) / row["forward"])
    assert q["fit"]["iv"][int(np.argmin(np.abs(k)))] == pytest.approx(row["atm_vol"], abs=5e-3)
    qual = QualityOut.model_validate(httpx.get(u + "/v1/quality").json())
    assert qual.n_flagged == len(served.engine.flagged("BTC")) > 0
    # every quote kept out carries the engine's reason code, and the counts agree
    assert all(f["reason"] for f in qual.flagged)
    assert {f["instrument"]: f["reason"] for f in qual.flagged} == served.engine.flagged("BTC")
    p = httpx.get(u + "/v1/params/svi").json()["params"]
    assert {"a", "b", "rho", "m", "sigma"} <= set(p[0]["params"])
    assert "theta" in httpx.get(u + "/v1/params/essvi").json()["params"]["params"]
    text = httpx.get(u + "/metrics").text
    m = served.engine.metrics()["messages"]
    assert f"volcal_engine_messages_received {m['received']}" in text
    assert m["received"] == m["applied_total"] + sum(m["dropped"].values())
    assert "# TYPE volcal_engine_latency_tick_to_slice_seconds histogram" in text
    n_ok = served.engine.metrics()["calibrations"]["svi"]["ok"]
    assert f'volcal_engine_calibrations_total{{model="svi",status="ok"}} {n_ok}' in text


def test_real_ws_snapshot_then_patches_as_the_replay_advances(served: Served) -> None:
    # close_timeout: this client stops reading after the test (its receive queue full,
    # uncompressed frames fill the socket), so the server's close frame waits behind the
    # data it sent meanwhile; the close handshake would take the client's default 10 s
    url = served.srv.ws_url + "/v1/stream?underlying=BTC"
    with ws_sync.connect(url, max_size=None, close_timeout=1) as ws:
        first = recv_message(ws, 10)
        assert first["type"] == "snapshot"
        before = {e["expiry"]: e for e in first["state"]["expiries"]}
        d2 = served.advance()  # the next real snapshot (6 hours later)
        assert d2["snapshot_time"].startswith("2026-01-23T15:35")
        patches: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 30
        want = {e["expiry"]: e["atm_vol"] for e in d2["expiries"] if e["status"] == "ok"}
        while time.monotonic() < deadline:
            m = recv_message(ws, max(deadline - time.monotonic(), 0.1))
            if m["type"] == "patch" and m["patch"].get("expiry"):
                patches[m["patch"]["expiry"]] = m["patch"]
                assert m["tick_wall_time"] <= time.time() + 1e-3
            got = {e: p["atm_vol"] for e, p in patches.items() if e in want}
            if len(got) >= len(want) // 2:
                now = _served_atms(served)  # one request per message, not per expiry
                if all(got[e] == now.get(e) for e in got):
                    break
        assert len(patches) >= 3
        moved = [
            e for e, p in patches.items() if e in before and p["atm_vol"] != before[e]["atm_vol"]
        ]
        assert moved  # the smiles moved with the market
        for e, p in patches.items():  # a patch is the expiry as /v1/surface now has it
            if e in want and p["atm_vol"] == _served_atm(served, e):
                assert math.isfinite(p["atm_vol"])


def _served_atms(served: Served) -> dict[str, float | None]:
    return {
        e["expiry"]: (float(e["atm_vol"]) if e["atm_vol"] is not None else None)
        for e in httpx.get(served.srv.url + "/v1/surface").json()["expiries"]
    }


def _served_atm(served: Served, expiry: str) -> float | None:
    for e in httpx.get(served.srv.url + "/v1/surface").json()["expiries"]:
        if e["expiry"] == expiry:
            return float(e["atm_vol"]) if e["atm_vol"] is not None else None
    return None


def test_real_page_in_browser_follows_the_replay(
    browser: Any,  # noqa: F811
    snapshot_dir: Path,
    tmp_path: Path,
) -> None:
    s = Served(snapshot_dir, source="gated replay of 3 real Deribit snapshots (2026-01-23)")
    try:
        d = s.first
        browser.get(s.srv.url + "/")
        row = _atm_row(d)
        e = sid(row["expiry"])
        wait_text(browser, f"atm-{e}", lambda t: t == f"{100 * row['atm_vol']:.2f}")
        assert text_of(browser, "snapshot-time") == d["snapshot_time"]
        assert text_of(browser, "stale") == "fresh"
        n_rows = browser.execute_script(
            "return document.getElementById('expiries').tBodies[0].rows.length"
        )
        assert n_rows == len(d["expiries"]) >= 8  # one row per served expiry
        # which fit a row shows, short; why a free slice is shown, in the cell's tooltip
        cell = browser.find_element("id", f"fit-{e}")
        assert cell.text.split()[0] == {"free": "free", "surface": "arb-free"}[row["fit"]]
        if row.get("fit_reason"):
            assert cell.get_attribute("title") == row["fit_reason"] and cell.text.endswith("*")
        wait_text(browser, f"smile-{e}", lambda t: "ATM" in t)
        traces = browser.execute_script(
            f"return document.getElementById('smile-{e}').data.map(t => t.name)"
        )
        assert traces == ["bid/ask", "mark", "fit"]
        d2 = s.advance()
        row2 = next(r for r in d2["expiries"] if r["expiry"] == row["expiry"])
        assert row2["atm_vol"] != row["atm_vol"]
        wait_text(browser, f"atm-{e}", lambda t: t == f"{100 * row2['atm_vol']:.2f}", timeout=30)
        wait_text(browser, "snapshot-time", lambda t: t == d2["snapshot_time"], timeout=30)
        ys = browser.execute_script("return document.getElementById('term').data[0].y")
        assert len(ys) == len(d2["expiries"])
        # latency and guards reach the page with the status messages
        lat = wait_text(browser, "latency-ticktoslice", lambda t: len(t.split()) == 5, timeout=10)
        assert float(lat.split()[1]) > 0  # p50 in ms
        png = tmp_path / "live.png"
        browser.set_window_size(1400, 1500)
        time.sleep(1.5)  # let the smiles refetch their quotes and the plots resize
        browser.save_screenshot(str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import os
        import shutil

        if os.environ.get("VOLCAL_SERVE_SCREENSHOT"):
            shutil.copy(png, os.environ["VOLCAL_SERVE_SCREENSHOT"])
    finally:
        s.srv.stop()


def test_real_stale_when_the_source_goes_silent_then_recovered(snapshot_dir: Path) -> None:
    s = Served(snapshot_dir)
    try:
        u = s.srv.url
        with ws_sync.connect(s.srv.ws_url + "/v1/stream?underlying=BTC", max_size=None) as ws:
            assert recv_message(ws, 10)["type"] == "snapshot"
            assert httpx.get(u + "/health").json()["status"] == "ok"
            assert s.src.loop is not None
            s.src.loop.call_soon_threadsafe(s.src.clock.advance, 61.0)  # 61 s of silence
            deadline = time.monotonic() + 20
            stale_msg = None
            while time.monotonic() < deadline and stale_msg is None:
                m = recv_message(ws, 10)
                if m["type"] == "status" and m.get("stale"):
                    stale_msg = m
            assert stale_msg is not None and stale_msg["age_s"] >= 60.0
        h = httpx.get(u + "/health").json()
        assert h["status"] == "stale" and h["age_s"] >= 60.0
        d = httpx.get(u + "/v1/surface").json()
        assert d["stale"] and d["expiries"] == s.first["expiries"]  # last good surface kept
        assert "stale_feed" in httpx.get(u + "/v1/quality").json()["active"]
        s.advance()  # the feed comes back
        _wait(lambda: httpx.get(u + "/health").json()["status"] == "ok", 30, "recovery")
    finally:
        s.srv.stop()


def test_real_restart_recovers_the_last_surface_from_the_store(
    snapshot_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    from volcal.serve.service import StoreRecordWriter
    from volcal.stream.sink import ThreadedSink

    path = tmp_path / "volcal.duckdb"
    src = GatedReplay(_files(snapshot_dir), released=1)
    eng = _engine(src, sink=ThreadedSink(StoreRecordWriter(path)))
    srv = ServerThread(
        create_app(eng, ServeSettings(store_path=str(path), engine_thread=True))
    ).start()
    try:
        first = _wait(lambda: _fitted(srv), what="the first real surface")
        _wait(lambda: eng.metrics()["sink"]["written"] >= 1, 60, "a stored calibration")
        hist = httpx.get(srv.url + "/v1/history", params={"model": "svi"}).json()
        assert hist["n"] >= 1 and hist["rows"][-1]["model"] == "svi"
    finally:
        srv.stop()  # drains the engine's writer
    # a new process: nothing has arrived from the (silent) source yet
    src2 = GatedReplay(_files(snapshot_dir), released=0)
    eng2 = _engine(src2, sink=ThreadedSink(StoreRecordWriter(path)))
    with ServerThread(
        create_app(eng2, ServeSettings(store_path=str(path), engine_thread=True))
    ) as srv2:
        h = httpx.get(srv2.url + "/health").json()
        assert h["underlyings"]["BTC"]["recovered"] and h["status"] == "stale"
        d = httpx.get(srv2.url + "/v1/surface").json()
        assert d["stale"] and d["expiries"]
        assert {e["status"] for e in d["expiries"]} == {"recovered"}
        was = {e["expiry"]: e["atm_vol"] for e in first["expiries"] if e["status"] == "ok"}
        now = {e["expiry"]: e["atm_vol"] for e in d["expiries"]}
        common = set(was) & set(now)
        assert len(common) >= 5
        for e in common:  # the stored fit, not a refit: same ATM vols
            assert now[e] == pytest.approx(was[e], abs=1e-9)
        r = httpx.get(srv2.url + "/v1/iv", params={"expiry": sorted(common)[-1], "strike": "90000"})
        assert r.status_code == 200 and r.json()["stale"]
        hist = httpx.get(srv2.url + "/v1/history", params={"model": "svi", "since": "2026-01-01"})
        assert hist.status_code == 200 and hist.json()["n"] >= 1
