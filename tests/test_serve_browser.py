"""The live page in a real headless Chromium over the engine double: it shows the
served values and follows a patch (the real-engine replay version is in
test_serve_e2e.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from browser_helpers import browser, sid, text_of, wait_text  # noqa: E402, F401
from serve_helpers import FakeEngine  # noqa: E402

from volcal.serve import ServerThread, ServeSettings, create_app  # noqa: E402


def test_page_shows_served_values_and_follows_patches(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    eng = FakeEngine(("BTC", "ETH"))
    app = create_app(eng, ServeSettings(underlyings=("BTC", "ETH"), status_interval_s=0.2,
                                        source="engine double"))  # fmt: skip
    with ServerThread(app) as srv:
        surf = httpx.get(srv.url + "/v1/surface").json()
        browser.get(srv.url + "/")
        for row in surf["expiries"]:
            e = sid(row["expiry"])
            wait_text(browser, f"atm-{e}", lambda t, v=row["atm_vol"]: t == f"{100 * v:.2f}")
            assert text_of(browser, f"rr25-{e}") == f"{100 * row['rr25']:.2f}"
            assert text_of(browser, f"fwd-{e}") == f"{row['forward']:.1f}"
        assert text_of(browser, "stale") == "fresh"
        assert text_of(browser, "snapshot-time") == surf["snapshot_time"]
        assert "engine double" in text_of(browser, "source")
        # a patch moves the table, the term-structure plot and the smile title
        e2 = sid(surf["expiries"][2]["expiry"])
        eng.set_atm("BTC", 2, 0.6543)
        wait_text(browser, f"atm-{e2}", lambda t: t == "65.43")
        ys = browser.execute_script("return document.getElementById('term').data[0].y")
        assert ys[2] == pytest.approx(65.43)
        wait_text(browser, f"smile-{e2}", lambda t: "65.43" in t)
        n_traces = browser.execute_script(
            f"return document.getElementById('smile-{e2}').data.map(t => t.name)"
        )
        assert n_traces == ["bid/ask", "mark", "fit"]
        # staleness reaches the page through the status messages
        eng.set_stale("BTC", 75.0)
        wait_text(browser, "stale", lambda t: t == "stale")
        assert text_of(browser, "age") == "75.0"
        assert text_of(browser, "guards-crossed").split()[-1] == "2"
        png = tmp_path / "page.png"
        browser.save_screenshot(str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
