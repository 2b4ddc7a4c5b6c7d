"""Headless Chromium for the report tests (selenium + Debian's chromium and chromium-driver).

No network: the report is opened as file:// URLs, and Chromium runs with background networking,
component updates and sync off, in a fresh profile folder.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def find_browser() -> tuple[str | None, str | None]:
    browser = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver = next((shutil.which(n) for n in DRIVER_NAMES if shutil.which(n)), None)
    return browser, driver


@contextmanager
def chromium(width: int = 1366, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    profile = tempfile.mkdtemp(prefix="mlm-harness-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser or ""
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    try:
        yield d
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(d, width: int, height: int, mobile: bool = False) -> None:  # noqa: ANN001
    """Emulate a viewport (headless windows cannot be narrower than ~500 px; a phone is 390)."""
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def full_page_screenshot(d, path: Path, width: int, max_height: int = 6000,  # noqa: ANN001
                         mobile: bool = False) -> None:
    """Emulate ``width`` with the page's full height (capped) and save a PNG."""
    set_viewport(d, width, 900, mobile)
    height = d.execute_script("return Math.max(document.body.scrollHeight, "
                              "document.documentElement.scrollHeight)")
    set_viewport(d, width, min(int(height), max_height), mobile)
    d.save_screenshot(str(path))
