"""Streaming engine end to end against a local fake Deribit server (tests/fake_deribit.py).

The fake serves a real BTC snapshot of ../shared/data (2026-01-23 09:23 UTC, its first
expiries) exactly as recorded; the ticks pushed afterwards are test inputs (small moves,
a spoofed quote, a crossed book), said so in each test.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_deribit import FakeDeribit, load_snapshot

from volcal.errors import DataError, ParameterError
from volcal.stream import (
    DeribitSource,
    JsonlWriter,
    ManualClock,
    ReplaySource,
    StoreWriter,
    StreamConfig,
    StreamEngine,
    ThreadedSink,
    record,
)

SNAP = "deribit_options_snapshot_20260123T092319Z.csv"
pytestmark = pytest.mark.data


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def accounted(engine: StreamEngine) -> bool:
    m = engine.metrics()["messages"]
    return m["received"] == m["applied_total"] + sum(m["dropped"].values())


def _same(live: float, want: float | None) -> bool:
    return math.isnan(live) if want is None else live == want


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


@pytest.fixture
def snapshot(snapshot_dir: Path) -> tuple[int, dict[str, Any], float]:
    return load_snapshot(snapshot_dir / SNAP, "BTC", expiries=5)


def _clock_at(ms: int) -> ManualClock:
    return ManualClock(ms / 1000.0 + 1.0)


def _engine(fake: FakeDeribit, clock: ManualClock, **cfg: Any) -> StreamEngine:
    src = DeribitSource("BTC", url=fake.url, backoff_s=0.02, backoff_max_s=0.1, clock=clock)
    base: dict[str, Any] = {"models": ("svi", "essvi"), "debounce_s": 0.0, "clock": clock}
    base.update(cfg)
    return StreamEngine(src, StreamConfig(**base))


def _a_liquid_option(engine: StreamEngine) -> str:
    """An out-of-the-money option used in the fit of its expiry (the test moves it)."""
    st = engine.state("BTC")
    book = engine.book("BTC")
    flagged = engine.flagged("BTC")
    best = None
    for e in st.expiries:
        if e.status != "ok" or e.n_used < 10:
            continue
        eb = book.expiries[e.expiry]
        for name in eb.instruments:
            if name not in flagged and (best is None or e.t > best[0]):
                best = (e.t, name)
        if best:
            break
    assert best is not None
    return best[1]


def test_subscription_resync_and_ticks(snapshot: tuple[int, dict[str, Any], float]) -> None:
    ms, quotes, index = snapshot

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock)
        eng.start()
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            await eng.wait_idle()
            methods = [r["method"] for r in fake.requests]
            assert methods[0] == "public/set_heartbeat"
            assert "public/get_instruments" in methods and "public/subscribe" in methods
            assert "public/get_book_summary_by_currency" in methods
            subs = fake.subscribed()
            assert {f"ticker.{n}.100ms" for n in quotes} <= subs
            assert {"markprice.options.btc_usd", "deribit_price_index.btc_usd"} <= subs
            # the book holds the real snapshot values exactly
            book = eng.book("BTC")
            for name, q in quotes.items():
                live = book.quote(name)
                assert live is not None
                assert _same(live["bid"], q.bid) and _same(live["ask"], q.ask)
                assert _same(live["mark"], q.mark)
            st = eng.state("BTC")
            ok = [e for e in st.expiries if e.status == "ok"]
            assert len(ok) >= 3
            for e in ok:
                assert 0.1 < e.atm_vol < 1.5 and e.rmse_vol < 5.0 and e.n_used >= 5
            assert st.surface["essvi"]["status"] in ("ok", "degraded")
            d = st.to_dict()
            json.dumps(d, allow_nan=False)
            assert d["snapshot_time"].startswith("2026-01-23T09:23")
            # a live tick moves the book and refits its expiry (a test input: +1 tick of 0.0001)
            name = _a_liquid_option(eng)
            q = quotes[name]
            seq0 = st.seq
            await fake.push(name, bid=q.bid + 0.0001, ask=q.ask + 0.0001, ts_ms=ms + 500)
            await until(lambda: book.quote(name)["exch_ts"] == (ms + 500) / 1000)  # type: ignore[index]
            await eng.wait_idle()
            assert eng.state("BTC").seq > seq0
            # heartbeats: a test_request is answered with public/test
            await fake.test_request()
            await until(lambda: fake.heartbeat_answers == 1)
            assert accounted(eng)
            m = eng.metrics()["messages"]
            assert m["applied"]["ticker"] == 1 and m["applied"]["heartbeat"] == 1
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_reconnect_resubscribe_resync_no_duplicate_or_lost(
    snapshot: tuple[int, dict[str, Any], float],
) -> None:
    ms, quotes, index = snapshot
    names = sorted(n for n, q in quotes.items() if q.bid and q.ask)[:20]

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock)
        eng.start()
        book = eng.book("BTC")
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            # test inputs: 1-tick moves of 20 instruments, 10 ms apart
            t = ms
            sent_live = 0
            for i, n in enumerate(names):
                t += 10
                sent_live += await fake.push(
                    n, bid=quotes[n].bid + 0.0001 * (i % 3), ask=quotes[n].ask + 0.0001, ts_ms=t
                )
            await until(lambda: eng.metrics()["messages"]["applied"].get("ticker", 0) == sent_live)
            await fake.drop_connections()
            # while the client is away the market moves (nobody receives these)
            for n in names[:10]:
                t += 10
                await fake.push(n, bid=quotes[n].bid + 0.0002, ask=quotes[n].ask + 0.0002, ts_ms=t)
            await until(lambda: eng.source.metrics()["resyncs"] == 2, timeout=10)
            await until(
                lambda: all(book.quote(n)["exch_ts"] * 1000 == quotes[n].ts_ms for n in names)
            )  # type: ignore[index]
            # after the resubscription ticks flow again
            for n in names[10:]:
                t += 10
                sent_live += await fake.push(
                    n, bid=quotes[n].bid, ask=quotes[n].ask + 0.0003, ts_ms=t
                )
            await until(lambda: eng.metrics()["messages"]["applied"].get("ticker", 0) == sent_live)
            await eng.wait_idle()
            src = eng.source.metrics()
            assert src["connects"] == 2 and src["reconnects"] == 1 and src["resyncs"] == 2
            assert fake.connections_total == 2
            # resubscribed to everything
            assert {f"ticker.{n}.100ms" for n in quotes} <= fake.subscribed()
            # nothing lost: the book equals the server's book, instrument by instrument
            for n, q in quotes.items():
                live = book.quote(n)
                assert live is not None
                assert live["exch_ts"] * 1000 == pytest.approx(q.ts_ms)
                if q.bid:
                    assert live["bid"] == q.bid
                if q.ask:
                    assert live["ask"] == q.ask
            # nothing applied twice: the resync's unchanged quotes are duplicates
            sq = eng.metrics()["snapshot_quotes"]
            assert sq["applied"] == len(quotes) + 10  # first sync + the 10 moved while away
            assert sq["duplicate"] == len(quotes) - 10
            assert accounted(eng)
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_malformed_unknown_and_out_of_order_are_counted(
    snapshot: tuple[int, dict[str, Any], float],
) -> None:
    ms, quotes, index = snapshot
    name = sorted(n for n, q in quotes.items() if q.bid and q.ask)[0]

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock)
        eng.start()
        book = eng.book("BTC")
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            bad = [
                "this is not json",
                "[1, 2, 3]",
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "subscription",
                        "params": {"channel": "ticker.X.100ms", "data": {}},
                    }
                ),
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "subscription",
                        "params": {
                            "channel": f"ticker.{name}.100ms",
                            "data": {"instrument_name": name, "timestamp": "soon"},
                        },
                    }
                ),
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "subscription",
                        "params": {"channel": "book.BTC-PERPETUAL.100ms", "data": {}},
                    }
                ),
                json.dumps({"jsonrpc": "2.0", "method": "private/whatever", "params": {}}),
                json.dumps({"jsonrpc": "2.0", "id": 999, "error": {"code": 10001, "message": "x"}}),
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "subscription",
                        "params": {
                            "channel": "ticker.DOGE-XYZ.100ms",
                            "data": {"instrument_name": "DOGE-XYZ", "timestamp": ms},
                        },
                    }
                ),
            ]
            for raw in bad:
                await fake.broadcast(raw)
            # a newer tick, then an older one (out of order) for the same instrument
            a0 = quotes[name].ask
            await fake.push(name, bid=quotes[name].bid, ask=a0 + 0.0002, ts_ms=ms + 2000)
            await fake.push(name, bid=quotes[name].bid, ask=a0 + 0.0005, ts_ms=ms + 1000)
            await until(lambda: eng.metrics()["messages"]["dropped"].get("out_of_order", 0) == 1)
            d = eng.metrics()["messages"]["dropped"]
            assert d["malformed"] == 4  # not JSON, a list, empty data, a text timestamp
            assert d["unknown_channel"] == 2
            assert d["rpc_error"] == 1
            assert d["unknown_instrument"] == 1
            live = book.quote(name)
            assert live is not None and live["exch_ts"] == (ms + 2000) / 1000
            assert live["ask"] == pytest.approx(a0 + 0.0002)
            assert accounted(eng)
            # the engine still works
            await fake.push(name, bid=quotes[name].bid, ask=a0, ts_ms=ms + 3000)
            await until(lambda: book.quote(name)["exch_ts"] == (ms + 3000) / 1000)  # type: ignore[index]
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_sixty_second_silence_stale_then_recovered(
    snapshot: tuple[int, dict[str, Any], float],
) -> None:
    ms, quotes, index = snapshot
    name = sorted(n for n, q in quotes.items() if q.bid and q.ask)[0]

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock, stale_feed_s=10.0)
        eng.start()
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            await eng.wait_idle()
            before = eng.state("BTC")
            assert not before.stale
            updates = eng.subscribe("BTC")
            first = await updates.__anext__()
            assert first["type"] == "state"
            # 60 seconds of silence on the injected clock
            for _ in range(60):
                clock.advance(1.0)
                await asyncio.sleep(0)
            await until(lambda: eng.stale)
            st = eng.state("BTC")
            assert st.stale and "stale_feed" in st.reasons and st.age_s >= 60
            assert [e.params for e in st.expiries] == [e.params for e in before.expiries]
            msg = await asyncio.wait_for(updates.__anext__(), 2)
            assert msg["type"] == "status" and msg["stale"] is True
            # a heartbeat is not market data: still stale
            await fake.test_request()
            await until(lambda: fake.heartbeat_answers == 1)
            assert eng.stale
            # the feed comes back (a test input tick)
            await fake.push(name, bid=quotes[name].bid, ask=quotes[name].ask, ts_ms=ms + 61_000)
            await until(lambda: not eng.stale)
            msg = await asyncio.wait_for(updates.__anext__(), 2)
            assert msg["type"] == "status" and msg["stale"] is False
            st = eng.state("BTC")
            assert "stale_feed" not in st.reasons
            assert st.guards["stale_feed"] == 1 and st.guards["feed_recovered"] == 1
            await updates.aclose()
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_spoofed_far_off_quote_is_held_until_it_persists(
    snapshot: tuple[int, dict[str, Any], float],
) -> None:
    ms, quotes, index = snapshot

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock, off_smile_persist_s=5.0)
        eng.start()
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            await eng.wait_idle()
            name = _a_liquid_option(eng)
            exp = eng.book("BTC").where[name][0].expiry
            before = next(e for e in eng.state("BTC").expiries if e.expiry == exp)
            q = quotes[name]
            # test input: a tight quote at twice the market price (far off the smile)
            mid = 0.5 * (q.bid + q.ask)
            await fake.push(
                name, bid=round(2 * mid, 4), ask=round(2 * mid + 0.0001, 4), ts_ms=ms + 100
            )
            await until(lambda: eng.flagged("BTC").get(name) == "off_smile")
            await eng.wait_idle()
            held = next(e for e in eng.state("BTC").expiries if e.expiry == exp)
            assert "off_smile" in held.reasons
            assert held.atm_vol == pytest.approx(before.atm_vol, abs=0.005)
            assert eng.state("BTC").guards["off_smile_held"] >= 1
            # it persists past 5 s: now it is market information, accepted
            clock.advance(6.0)
            eng.check()
            await until(lambda: eng.flagged("BTC").get(name) != "off_smile")
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_index_jump_and_crossed_book(snapshot: tuple[int, dict[str, Any], float]) -> None:
    ms, quotes, index = snapshot
    name = sorted(n for n, q in quotes.items() if q.bid and q.ask)[1]

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        eng = _engine(fake, clock, debounce_s=30.0)
        eng.start()
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            await eng.wait_idle()
            n_fit = eng.metrics()["calibrations"]["svi"]
            # test inputs: a crossed quote, then a 3% index jump
            await fake.push(
                name, bid=quotes[name].ask + 0.001, ask=quotes[name].ask, ts_ms=ms + 100
            )
            await until(lambda: eng.state("BTC").guards.get("crossed_book", 0) == 1)
            await fake.push_index(index * 1.03, ms + 200)
            await until(lambda: eng.state("BTC").guards.get("index_jump", 0) == 1)
            # every expiry refits at once despite the 30 s debounce
            n_exp = len(eng.book("BTC").expiries)
            await until(
                lambda: (
                    sum(eng.metrics()["calibrations"]["svi"].values())
                    >= sum(n_fit.values()) + n_exp
                )
            )
            assert eng.flagged("BTC").get(name) == "crossed"
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


@pytest.mark.parametrize("writer", ["store", "jsonl"])
def test_restart_recovers_last_surface(snapshot_dir: Path, tmp_path: Path, writer: str) -> None:
    store = tmp_path / ("volcal.duckdb" if writer == "store" else "calibrations.jsonl")
    files = [snapshot_dir / SNAP]

    def make() -> ThreadedSink:
        return ThreadedSink(StoreWriter(store) if writer == "store" else JsonlWriter(store))

    async def first() -> dict[str, Any]:
        sink = make()
        eng = StreamEngine(
            ReplaySource(files, currency="BTC", speed=0),
            StreamConfig(models=("svi",), sink=sink, store_interval_s=0.0),
        )
        await eng.run()
        sink.close()
        assert sink.metrics()["written"] >= 1 and sink.metrics()["failed"] == 0, sink.metrics()[
            "last_error"
        ]
        return eng.state("BTC").to_dict()

    async def second(before: dict[str, Any]) -> None:
        sink = make()
        clock = ManualClock(time.time())
        eng = StreamEngine(_Silent(), StreamConfig(models=("svi",), sink=sink, clock=clock))
        st = eng.state("BTC")
        assert st.stale and "recovered" in st.reasons
        ok = [e for e in before["expiries"] if e["status"] == "ok"]
        got = {e.expiry: e for e in st.expiries}
        assert len(got) == len(ok) > 3
        for e in ok:
            rec = next(r for r in got.values() if r.to_dict()["expiry"] == e["expiry"])
            assert rec.status == "recovered"
            assert rec.params == pytest.approx(e["params"])
            assert rec.atm_vol == pytest.approx(e["atm_vol"])
        sink.close()

    before: dict[str, Any] = {}

    async def both() -> None:
        before.update(await first())
        await second(before)

    run(both)


class _Silent:
    async def messages(self) -> Any:
        if False:  # pragma: no cover
            yield None


def test_record_and_replay_log(snapshot: tuple[int, dict[str, Any], float], tmp_path: Path) -> None:
    ms, quotes, index = snapshot
    log = tmp_path / "btc.jsonl"
    names = sorted(n for n, q in quotes.items() if q.bid and q.ask)[:5]

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        src = DeribitSource("BTC", url=fake.url, clock=_clock_at(ms))

        async def feed() -> None:
            await until(lambda: len(fake.subscribed()) > len(quotes))
            await asyncio.sleep(0.05)
            for i, n in enumerate(names):
                await fake.push(
                    n, bid=quotes[n].bid, ask=quotes[n].ask + 0.0001, ts_ms=ms + 10 * (i + 1)
                )
            await fake.broadcast("garbage")

        task = asyncio.create_task(feed())
        n = await record(src, log, duration=1.5)
        await task
        await fake.stop()
        assert n > 5
        eng = StreamEngine(ReplaySource([log], speed=0), StreamConfig(models=("svi",)))
        await eng.run()
        m = eng.metrics()["messages"]
        assert m["received"] == n
        assert m["applied"]["ticker"] == len(names) and m["dropped"]["malformed"] == 1
        assert eng.metrics()["snapshot_quotes"]["applied"] == len(quotes)
        for nm in names:
            assert eng.book("BTC").quote(nm)["ask"] == pytest.approx(quotes[nm].ask)  # type: ignore[index]

    run(main)


def test_stream_clean_agrees_with_batch_clean(snapshot_dir: Path) -> None:
    """The streaming per-expiry cleaner keeps the quotes volcal.clean keeps (real chain)."""
    import numpy as np

    import volcal

    async def main() -> None:
        eng = StreamEngine(
            ReplaySource([snapshot_dir / SNAP], speed=0), StreamConfig(models=("svi",))
        )
        await eng.run()
        chain = volcal.clean(volcal.read_chain(snapshot_dir / SNAP, currency="BTC"))
        used_batch = set(chain.instrument[chain.usable()])
        flagged = eng.flagged("BTC")
        used_stream = {
            n
            for eb in eng.book("BTC").expiries.values()
            for n in eb.instruments
            if n not in flagged
        }
        inter = len(used_batch & used_stream)
        jacc = inter / len(used_batch | used_stream)
        assert jacc > 0.85, (jacc, sorted(used_batch ^ used_stream)[:10])
        assert np.isfinite(jacc)

    run(main)


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown Deribit currency"):
        DeribitSource("XYZ")
    with pytest.raises(DataError, match="no such file"):
        ReplaySource([tmp_path / "missing.jsonl"])
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match="cannot replay"):
        ReplaySource([bad])
    with pytest.raises(ParameterError, match="speed"):
        ReplaySource([bad], speed=-1)
    with pytest.raises(ParameterError, match="unknown stream model"):
        StreamConfig(models=("svi", "garch"))
    with pytest.raises(ParameterError, match="debounce_s"):
        StreamConfig(debounce_s=-1)
    eng = StreamEngine(_Silent(), StreamConfig())
    with pytest.raises(ParameterError, match="unknown underlying"):
        eng.state("DOGE")


def test_new_listing_subscribed_and_removed_one_unsubscribed(
    snapshot: tuple[int, dict[str, Any], float],
) -> None:
    import copy

    ms, quotes, index = snapshot

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        src = DeribitSource("BTC", url=fake.url, clock=clock, refresh_s=0.2)
        eng = StreamEngine(src, StreamConfig(models=("svi",), clock=clock, debounce_s=0.0))
        eng.start()
        try:
            await until(lambda: eng.metrics()["snapshot_quotes"].get("applied", 0) == len(quotes))
            # test input: a new strike lists, another instrument is delisted
            base = next(q for q in quotes.values() if q.bid and q.ask)
            new = copy.copy(base)
            new.name = base.name.rsplit("-", 2)[0] + "-555000-C"
            fake.quotes[new.name] = new
            gone = sorted(quotes)[-1]
            del fake.quotes[gone]
            await until(lambda: f"ticker.{new.name}.100ms" in fake.subscribed())
            await until(lambda: f"ticker.{gone}.100ms" not in fake.subscribed())
            await fake.push(new.name, bid=0.0001, ask=0.0002, ts_ms=ms + 50)
            await until(lambda: eng.book("BTC").quote(new.name) is not None)
            assert eng.source.metrics()["unsubscribed"] == 1
            assert accounted(eng)
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_silent_connection_is_treated_as_dead(snapshot: tuple[int, dict[str, Any], float]) -> None:
    ms, quotes, index = snapshot

    async def main() -> None:
        fake = FakeDeribit(quotes, index)
        await fake.start()
        clock = _clock_at(ms)
        src = DeribitSource(
            "BTC", url=fake.url, clock=clock, dead_after_s=0.3, backoff_s=0.02, backoff_max_s=0.05
        )
        eng = StreamEngine(src, StreamConfig(models=("svi",), clock=clock))
        eng.start()
        try:
            # the fake sends nothing after the resync (no heartbeats): a half-open link
            await until(lambda: src.metrics()["dead_connections"] >= 1, timeout=10)
            await until(lambda: src.metrics()["resyncs"] >= 2, timeout=10)
            assert fake.connections_total >= 2
            assert accounted(eng)
        finally:
            await eng.stop()
            await fake.stop()

    run(main)


def test_speed_zero_replay_clock_does_not_spin() -> None:
    """At speed 0 a sleeper (the watchdog) pauses briefly instead of returning at once,
    so a finished replay that keeps serving its last state does not busy-loop a core."""
    import time as _time

    from volcal.stream.clock import ReplayClock

    clock = ReplayClock(start=0.0, speed=0)

    async def steps() -> int:
        n = 0
        end = _time.monotonic() + 0.3
        while _time.monotonic() < end:
            await clock.sleep(1.0)
            n += 1
        return n

    n = asyncio.run(steps())
    assert 2 <= n <= 0.3 / ReplayClock.IDLE_S + 2


def test_butterfly_free_is_the_smile_check_bit_for_bit() -> None:
    """The warm refit's compiled butterfly check gives SVI.is_arbitrage_free's decision
    and SVI.min_g's minimum exactly, on smiles on both sides of the boundary."""
    import numpy as np

    from volcal.models._svi_kernels import min_g
    from volcal.models.svi import SVI, _check_grid
    from volcal.stream.fit import butterfly_free

    rng = np.random.default_rng(7)
    seen = {True: 0, False: 0}
    for _ in range(400):
        try:
            svi = SVI(
                a=float(rng.uniform(-0.05, 0.08)),
                b=float(rng.uniform(0.0, 1.2)),
                rho=float(rng.uniform(-0.99, 0.99)),
                m=float(rng.uniform(-0.5, 0.5)),
                sigma=float(rng.uniform(0.005, 0.5)),
            )
        except ParameterError:
            continue
        ok = butterfly_free(svi)
        assert ok == svi.is_arbitrage_free()
        seen[ok] += 1
        grid = _check_grid(svi.a, svi.b, svi.rho, svi.m, svi.sigma)
        got = min_g(grid, svi.a, svi.b, svi.rho, svi.m, svi.sigma)
        want = svi.min_g()
        assert got == want or (np.isnan(got) and np.isnan(want))
    assert seen[True] > 20 and seen[False] > 20
