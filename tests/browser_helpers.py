"""Headless Debian Chromium driven by Selenium, for the live-page tests.

The browser comes from the Debian packages ``chromium`` and ``chromium-driver``
(``make test`` installs them when run as root). Outside CI a missing browser skips
the test with a reason; in CI (``CI`` set) it fails, so CI never passes vacuously.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def _find(path: str, name: str) -> str | None:
    return path if os.access(path, os.X_OK) else shutil.which(name)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (own user-data-dir) controlled by Selenium."""
    webdriver = pytest.importorskip("selenium.webdriver")
    driver_path = _find(CHROMEDRIVER, "chromedriver")
    chromium = _find(CHROMIUM, "chromium")
    if driver_path is None or chromium is None:
        msg = "headless Chromium not found (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; the browser test must run in CI")
        pytest.skip(msg)
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


def text_of(drv: Any, element_id: str) -> str:
    """Text of the element with this id ('' when absent), read in one script call: the
    page re-renders its tables on every patch, so a found element can go stale before
    its text is read."""
    t = drv.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';",
        element_id,
    )
    return str(t or "").strip()


def wait_text(drv: Any, element_id: str, predicate: Any, timeout: float = 20.0) -> str:
    """Wait until ``predicate(text)`` holds for the element's text; returns the text."""
    from selenium.webdriver.support.ui import WebDriverWait

    out: list[str] = []

    def ok(d: Any) -> bool:
        t = text_of(d, element_id)
        out[:] = [t]
        return bool(predicate(t))

    try:
        WebDriverWait(drv, timeout, poll_frequency=0.1).until(ok)
    except Exception as exc:
        raise AssertionError(
            f"#{element_id} never satisfied the condition; last text {out[:1]!r}"
        ) from exc
    return out[0]


def sid(expiry: str) -> str:
    """The page's element-id form of an expiry (alphanumerics only)."""
    return "".join(ch for ch in str(expiry) if ch.isalnum())
