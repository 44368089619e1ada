"""Headless Chromium sessions on the console, for its browser tests and its benchmark.

Uses Debian's ``chromium`` and ``chromium-driver`` through selenium (the ``test`` extra);
:data:`NO_BROWSER` says why they cannot run here (None when they can). The flags are those
a root user in a container needs (no sandbox, no GPU, nothing phoning home).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Path of the Chromium binary (None: not installed)."""
CHROMEDRIVER = shutil.which("chromedriver")
"""Path of chromedriver (None: not installed)."""
NO_BROWSER = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)"
)
"""Why no browser can run here (None: it can)."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
"""Chromium flags of every session (plus a fresh ``--user-data-dir``)."""

T = TypeVar("T")


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium session (selenium WebDriver) with a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="rtompc-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM or ""
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=opts)
        driver.set_page_load_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError naming ``what``."""
    end = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < end:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - the page may be mid-update
            last = exc  # remembered for the timeout message, never returned
        else:
            last = value
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def page_cycle(driver: Any) -> int:
    """The cycle the console page shows (-1 before the first frame)."""
    text = driver.execute_script(  # read in one step: the page redraws the table per frame
        "const c = document.querySelector('#status-cycle td:nth-child(2)');"
        "return c ? c.textContent : '';"
    )
    return int(text) if text and text.strip() else -1


def login(driver: Any, url: str, user: str, password: str, timeout_s: float = 30.0) -> None:
    """Log in through the login form and wait until the console shows a frame."""
    from selenium.webdriver.common.by import By

    driver.get(url + "login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait_for("the console page", lambda: driver.find_elements(By.ID, "status"), timeout_s)
    wait_for("a first frame", lambda: page_cycle(driver) >= 0, timeout_s)
