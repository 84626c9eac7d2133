"""volcal serve publishes the arbitrage-free SVI surface by default (real engine on a
replay of real Deribit snapshots, ../shared/data; the real uvicorn server on an
ephemeral 127.0.0.1 port): ``/v1/surface`` and ``/v1/iv`` serve the svi_surface slices,
``fit=free`` the free slices, a bad ``fit=`` is a one-line 4xx JSON error, the
websocket carries the same rows, ``/v1/quotes`` draws both fits, and the default
``volcal serve`` (engine in its own process) serves the surface too."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_sync = pytest.importorskip("websockets.sync.client")

from serve_helpers import recv_message, wait_for  # noqa: E402

from volcal.models.svi import SVI, SVISurface  # noqa: E402
from volcal.serve import ServerThread, ServeSettings, create_app  # noqa: E402
from volcal.serve.schemas import IvOut, SurfaceOut  # noqa: E402
from volcal.surface import VolSurface, check_arbitrage  # noqa: E402

pytestmark = pytest.mark.data

SNAPS = (
    "deribit_options_snapshot_20260123T092319Z.csv",
    "deribit_options_snapshot_20260123T153525Z.csv",
)


@pytest.fixture(scope="module")
def served(snapshot_dir: Path) -> Iterator[tuple[Any, ServerThread]]:
    """The engine's replay run to its end (a finished engine keeps its last state),
    then served."""
    from volcal.stream import ReplaySource, StreamConfig, StreamEngine

    eng = StreamEngine(
        ReplaySource([snapshot_dir / s for s in SNAPS], currency="BTC", speed=0),
        StreamConfig(models=("svi", "svi_surface", "essvi")),
    )
    asyncio.run(eng.run())
    app = create_app(eng, ServeSettings(rate_limit=0, status_interval_s=0.2), manage_engine=False)
    srv = ServerThread(app).start()
    yield eng, srv
    srv.stop()


def _one_line_error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return str(body["error"])


def _arb_ok(rows: list[dict[str, Any]]) -> bool:
    rows = sorted(rows, key=lambda r: r["t"])
    s = SVISurface(
        expiries=tuple(r["expiry"] for r in rows),
        t=tuple(r["t"] for r in rows),
        forwards=tuple(r["forward"] for r in rows),
        smiles=tuple(SVI(**r["params"]) for r in rows),
    )
    return bool(check_arbitrage(VolSurface.from_model(s)).ok)


def test_surface_serves_the_arbitrage_free_slices_and_free_on_request(
    served: tuple[Any, ServerThread],
) -> None:
    eng, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    SurfaceOut.model_validate(d)
    rows = [r for r in d["expiries"] if r["status"] == "ok"]
    assert len(rows) >= 8
    assert all(r["fit"] == "surface" and r["model"] == "svi_surface" for r in rows)
    assert _arb_ok(rows)
    assert d["surface"]["svi_surface"]["certified"] is True
    # explicit fit=surface is the same body
    assert httpx.get(srv.url + "/v1/surface", params={"fit": "surface"}).json() == d
    free = httpx.get(srv.url + "/v1/surface", params={"fit": "free", "underlying": "btc"})
    assert free.status_code == 200
    f = free.json()
    SurfaceOut.model_validate(f)
    by_e = {r["expiry"]: r for r in f["expiries"]}
    for r in rows:
        fr = by_e[r["expiry"]]
        assert fr["fit"] == "free" and fr["fit_reason"] == "requested" and fr["model"] == "svi"
        assert fr["params"] == r["free"]["params"] and fr["atm_vol"] == r["free"]["atm_vol"]
        assert fr["constraint"] == r["constraint"]
    # the free slices of this day are not arbitrage-free together
    assert not _arb_ok([by_e[r["expiry"]] for r in rows])
    # the free values are the engine's own free slices
    u = eng._u["BTC"]
    for sl in u.slices.values():
        if sl.svi is not None and sl.est is not None and sl.est.status == "ok":
            got = by_e[sl.est.to_dict()["expiry"]]["params"]
            assert got == {n: float(getattr(sl.svi, n)) for n in SVI.param_names}


def test_iv_evaluates_the_surface_by_default_and_free_on_request(
    served: tuple[Any, ServerThread],
) -> None:
    _, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    row = next(r for r in d["expiries"] if r["fit"] == "surface" and r["constraint"]["moved"])
    strikes = [0.85 * row["forward"], row["forward"], 1.2 * row["forward"]]
    q = {"expiry": row["expiry"], "strike": [str(x) for x in strikes]}
    a = httpx.get(srv.url + "/v1/iv", params=q).json()
    b = httpx.get(srv.url + "/v1/iv", params={**q, "fit": "free"}).json()
    IvOut.model_validate(a)
    IvOut.model_validate(b)
    assert a["model"] == "svi_surface" and a["fit"] == "surface" and a["fit_reason"] is None
    assert b["model"] == "svi" and b["fit"] == "free" and b["fit_reason"] == "requested"
    k = np.log(np.asarray(strikes) / row["forward"])
    want_a = np.sqrt(SVI(**row["params"]).total_variance(k) / row["t"])
    want_b = np.sqrt(SVI(**row["free"]["params"]).total_variance(k) / row["t"])
    assert [p["iv"] for p in a["points"]] == pytest.approx(want_a.tolist(), rel=1e-12)
    assert [p["iv"] for p in b["points"]] == pytest.approx(want_b.tolist(), rel=1e-12)
    # by delta too: the 25-delta call/put vols of the surface's slice give its rr25
    dl = httpx.get(
        srv.url + "/v1/iv", params={"expiry": row["expiry"], "delta": ["0.25", "-0.25"]}
    ).json()
    c25, p25 = (p["iv"] for p in dl["points"])
    assert c25 - p25 == pytest.approx(row["rr25"], abs=1e-6)


@pytest.mark.parametrize("path", ["/v1/surface", "/v1/iv"])
@pytest.mark.parametrize("bad", ["best", "FREE", "", "surface;drop"])
def test_bad_fit_is_a_one_line_422(served: tuple[Any, ServerThread], path: str, bad: str) -> None:
    _, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    params: dict[str, Any] = {"fit": bad}
    if path == "/v1/iv":
        params.update(expiry=d["expiries"][3]["expiry"], strike="90000")
    msg = _one_line_error(httpx.get(srv.url + path, params=params), 422)
    assert msg.startswith("fit:")


def test_quotes_draw_the_surface_fit_and_the_free_slice(served: tuple[Any, ServerThread]) -> None:
    _, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    row = next(r for r in d["expiries"] if r["fit"] == "surface" and r["constraint"]["moved"])
    q = httpx.get(srv.url + "/v1/quotes", params={"expiry": row["expiry"]}).json()
    assert q["fit"]["fit"] == "surface" and q["fit_free"]["fit"] == "free"
    k = np.log(np.asarray(q["fit"]["strike"]) / row["forward"])
    want = np.sqrt(SVI(**row["params"]).total_variance(k) / row["t"])
    want_free = np.sqrt(SVI(**row["free"]["params"]).total_variance(k) / row["t"])
    assert q["fit"]["iv"] == pytest.approx(want.tolist(), rel=1e-12)
    assert q["fit_free"]["iv"] == pytest.approx(want_free.tolist(), rel=1e-12)
    # the page draws the free slice dashed next to the fit
    page = httpx.get(srv.url + "/").text
    assert "q.fit_free" in page and 'dash: "dash"' in page


def test_websocket_state_carries_the_surface_rows(served: tuple[Any, ServerThread]) -> None:
    _, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    with ws_sync.connect(srv.url.replace("http", "ws") + "/v1/stream?underlying=BTC") as ws:
        m = recv_message(ws)
    assert m["type"] == "snapshot"
    rows = {r["expiry"]: r for r in m["state"]["expiries"]}
    for r in d["expiries"]:
        got = rows[r["expiry"]]
        for key in ("model", "params", "fit", "fit_reason", "free", "constraint", "atm_vol"):
            assert got[key] == r[key]


def test_default_serve_in_its_engine_process_serves_the_surface(snapshot_dir: Path) -> None:
    """``volcal serve``'s default: the engine in its own process, svi_surface among the
    default models, the rows published encoded by the engine process."""
    from volcal.serve.process import EngineProcess
    from volcal.serve.service import build_service

    svc = build_service(
        replay=[snapshot_dir / SNAPS[0]], speed=0, models="svi,svi_surface", env={}, rate_limit=0
    )
    assert isinstance(svc.engine, EngineProcess)
    with ServerThread(create_app(svc.engine, svc.settings)) as srv:

        def surfaced() -> Any:
            r = httpx.get(srv.url + "/v1/surface")
            if r.status_code != 200:
                return None
            rows = [e for e in r.json()["expiries"] if e["status"] == "ok"]
            return rows if len(rows) >= 8 and all(e["fit"] == "surface" for e in rows) else None

        rows = wait_for(surfaced, 90, "the arbitrage-free surface from the engine process")
        assert _arb_ok(rows)
        free = httpx.get(srv.url + "/v1/surface", params={"fit": "free"}).json()
        assert all(r["model"] == "svi" for r in free["expiries"] if r["status"] == "ok")
        assert math.isfinite(free["expiries"][0]["atm_vol"])


def test_default_models_include_the_surface() -> None:
    import inspect

    from volcal.serve.service import build_service

    default = inspect.signature(build_service).parameters["models"].default
    assert "svi_surface" in default.split(",")


def test_params_of_the_free_slices_and_of_the_surface(served: tuple[Any, ServerThread]) -> None:
    _, srv = served
    d = httpx.get(srv.url + "/v1/surface").json()
    rows = {r["expiry"]: r for r in d["expiries"]}
    free = httpx.get(srv.url + "/v1/params/svi").json()
    arb = httpx.get(srv.url + "/v1/params/svi_surface").json()
    assert free["model"] == "svi" and arb["model"] == "svi_surface"
    assert len(free["params"]) == len(rows)
    for p in free["params"]:
        assert p["params"] == rows[p["expiry"]]["free"]["params"]
    assert {p["expiry"] for p in arb["params"]} == {
        e for e, r in rows.items() if r["fit"] == "surface"
    }
    for p in arb["params"]:
        assert p["params"] == rows[p["expiry"]]["params"]
    assert httpx.get(srv.url + "/v1/params/essvi").json()["params"]["model"] == "essvi"
