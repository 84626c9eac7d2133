"""Live Deribit fetcher, replayed offline through ``httpx.MockTransport``.

The replayed answers are the recorded real Deribit REST responses of 2026-05-22 in
../shared/data/raw/maksm05-deribit-fixtures (book summaries for options and futures,
option instruments). That folder has no ``get_index_price`` answer; the replay builds
one from the recorded BTC-PERPETUAL ticker's ``index_price`` (same second). No test
touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import volcal
from volcal.cli import main
from volcal.errors import FetchError
from volcal.feeds import deribit

_FILES = {
    ("public/get_book_summary_by_currency", "option"): "deribit_book_summary_btc_option.json",
    ("public/get_book_summary_by_currency", "future"): "deribit_book_summary_btc_future.json",
    ("public/get_instruments", "option"): "deribit_get_instruments_btc_option.json",
}


@pytest.fixture(scope="module")
def recorded(raw_data: Path) -> dict[str, Any]:
    folder = raw_data / "maksm05-deribit-fixtures"
    out: dict[str, Any] = {k: json.loads((folder / f).read_text()) for k, f in _FILES.items()}  # type: ignore[misc]
    ticker = json.loads((folder / "deribit_ticker_btc_perpetual.json").read_text())["result"]
    out["index"] = {
        "jsonrpc": "2.0",
        "result": {
            "index_price": ticker["index_price"],
            "estimated_delivery_price": ticker["estimated_delivery_price"],
        },
    }
    return out


def _replay(
    recorded: dict[str, Any], script: list[Any] | None = None, log: list[str] | None = None
):
    """Handler answering from the recordings; ``script`` gives failures to play first."""
    queue = list(script or [])

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/api/v2/")[-1]
        if log is not None:
            log.append(f"{path}?{request.url.query.decode()}")
        if queue:
            step = queue.pop(0)
            if isinstance(step, Exception):
                raise step
            if isinstance(step, httpx.Response):
                return step
        if path == "public/get_index_price":
            assert request.url.params["index_name"] == "btc_usd"
            return httpx.Response(200, json=recorded["index"])
        assert request.url.params["currency"] == "BTC"
        return httpx.Response(200, json=recorded[(path, request.url.params["kind"])])

    return handler


def _client(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.data
def test_fetch_replay_and_round_trip(
    recorded: dict[str, Any], raw_data: Path, tmp_path: Path
) -> None:
    log: list[str] = []
    steps: list[str] = []
    out = tmp_path / "btc.json"
    chain = deribit.fetch_chain(
        "btc", client=_client(_replay(recorded, log=log)), save=out, progress=steps.append
    )
    assert len(log) == 4 and len(steps) == 4
    assert any("kind=future" in x for x in log) and any("get_instruments" in x for x in log)
    opts = recorded[("public/get_book_summary_by_currency", "option")]["result"]
    assert len(chain) == len(opts) == 5
    rec = {r["instrument_name"]: r for r in opts}
    for i, name in enumerate(chain.instrument):
        r = rec[name]
        assert chain.mark[i] == r["mark_price"]
        assert chain.ask[i] == r["ask_price"]
        assert (np.isnan(chain.bid[i]) and r["bid_price"] is None) or chain.bid[i] == r["bid_price"]
        assert chain.mark_iv[i] == pytest.approx(r["mark_iv"] / 100, rel=1e-15)
        assert chain.underlying_price[i] == r["underlying_price"]
    # exact expiry from get_instruments: 1779523200000 ms = 2026-05-23T08:00Z
    assert np.all(chain.expiry == np.datetime64("2026-05-23T08:00:00", "ns"))
    assert chain.index_price == recorded["index"]["result"]["index_price"]
    assert chain.meta["expiry_from_instruments"] == 5
    assert chain.meta["futures"]["BTC-23MAY26"]["mark_price"] == 76744.11
    # round trip: the saved document reads back to the same chain
    back = volcal.read_chain(out)
    assert back.meta["format"] == "volcal.deribit-raw"
    for name in ("bid", "ask", "mark", "strike", "underlying_price", "mark_iv", "flags"):
        np.testing.assert_array_equal(getattr(back, name), getattr(chain, name))
    np.testing.assert_array_equal(back.expiry, chain.expiry)
    assert back.snapshot == chain.snapshot
    # and the same chain as reading the recorded raw files directly
    direct = volcal.read_chain(
        raw_data
        / "maksm05-deribit-fixtures"
        / _FILES[("public/get_book_summary_by_currency", "option")]
    )
    np.testing.assert_array_equal(direct.mark, chain.mark)
    np.testing.assert_array_equal(direct.expiry, chain.expiry)


@pytest.mark.data
def test_429_then_success_respects_retry_after(recorded: dict[str, Any]) -> None:
    waits: list[float] = []
    script = [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(429)]
    chain = deribit.fetch_chain(
        "BTC", client=_client(_replay(recorded, script)), sleep=waits.append, backoff=0.25
    )
    assert len(chain) == 5
    assert waits == [2.0, 0.5]  # Retry-After, then backoff x 2**1


@pytest.mark.data
def test_deribit_rate_limit_error_is_retried(recorded: dict[str, Any]) -> None:
    waits: list[float] = []
    body = {"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}}
    chain = deribit.fetch_chain(
        "BTC",
        client=_client(_replay(recorded, [httpx.Response(400, json=body)])),
        sleep=waits.append,
    )
    assert len(chain) == 5 and waits == [0.5]


def test_timeouts_end_in_fetch_error() -> None:
    waits: list[float] = []
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(
        FetchError,
        match=r"^deribit public/get_index_price\(index_name=btc_usd\): timed out after 2 s \(gave up after 4 attempts\)$",
    ):
        deribit.fetch_chain(
            "BTC", client=_client(handler), timeout=2, retries=3, sleep=waits.append
        )
    assert len(calls) == 4
    assert waits == [0.5, 1.0, 2.0]


def test_malformed_json_is_fetch_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"jsonrpc": "2.0", "result": {"index_pr')

    with pytest.raises(FetchError, match="malformed JSON in response"):
        deribit.fetch_chain("BTC", client=_client(handler), sleep=lambda s: None)


def test_error_answer_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            400, json={"jsonrpc": "2.0", "error": {"code": 10020, "message": "invalid currency"}}
        )

    with pytest.raises(FetchError, match="HTTP 400, invalid currency"):
        deribit.fetch_chain("XYZ", client=_client(handler), sleep=lambda s: None)
    assert calls == [1]


def test_cli_without_network_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    monkeypatch.setattr(deribit, "_make_client", lambda timeout: _client(offline))
    monkeypatch.setattr(deribit.time, "sleep", lambda s: None)
    code = main(["fetch", "deribit", "BTC", "-o", str(tmp_path / "x.json"), "--retries", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    # one message (Rich soft-wraps it at the 80-column test terminal), no traceback
    assert err.count("error:") == 1 and "Traceback" not in err
    err = " ".join(err.split())
    assert err.endswith("(gave up after 2 attempts)")
    assert err.startswith("error: deribit public/get_index_price") and "connection failed" in err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.data
def test_cli_fetch_saves_document(
    monkeypatch: pytest.MonkeyPatch,
    recorded: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(deribit, "_make_client", lambda timeout: _client(_replay(recorded)))
    out = tmp_path / "btc.json"
    assert main(["fetch", "deribit", "BTC", "-o", str(out)]) == 0
    assert "OptionChain BTC @ deribit" in capsys.readouterr().out
    assert len(volcal.read_chain(out)) == 5


def test_import_volcal_feeds_does_not_load_httpx() -> None:
    import subprocess
    import sys

    code = "import sys, volcal.feeds, volcal.feeds.reader; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
