"""The reports render in a real browser (headless Chromium): the compressed plotly.js
unpacks offline and every figure is drawn."""

from __future__ import annotations

import os
import shutil
import time

import pytest

import volcal
from volcal.synthetic import synthetic_chain


def _driver():
    webdriver = pytest.importorskip("selenium.webdriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None or shutil.which("chromedriver") is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium and chromedriver are needed in CI")
        pytest.skip("no Chromium / chromedriver on this machine")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def test_calibration_report_draws_every_figure_offline(tmp_path) -> None:
    from volcal.report.chain import write_calibration_report

    chain = volcal.clean(synthetic_chain(seed=3))
    fit = volcal.calibrate(chain, "svi")
    page = write_calibration_report(tmp_path / "fit.html", chain, fit)
    assert page.stat().st_size < 3_000_000  # the plain bundle alone is 4.8 MB
    driver = _driver()
    try:
        driver.get(page.as_uri())
        deadline = time.monotonic() + 60
        drawn = -1
        while time.monotonic() < deadline:
            drawn = driver.execute_script(
                "return Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".filter(d => d._fullLayout && d.querySelector('svg.main-svg')).length"
            )
            if drawn == 2:
                break
            time.sleep(0.2)
        assert drawn == 2
        n_traces = driver.execute_script(
            "return document.querySelectorAll('.plotly-graph-div')[0].data.length"
        )
        assert n_traces == 3 * fit.quotes.n_slices
    finally:
        driver.quit()
