"""A real browser for the console tests: Debian's headless Chromium driven by selenium.

``.ci/run`` installs ``chromium`` and ``chromium-driver``; without them the browser tests
are skipped with that reason (the HTTP-level tests still run).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
    ".ci/run installs them)"
)
needs_browser = pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")

T = TypeVar("T")


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium session (selenium WebDriver), closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="rtompc-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM or ""
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=opts)
        driver.set_page_load_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - the page may be mid-update
            last = exc
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def login(driver: Any, url: str, user: str, password: str) -> None:
    """Log in through the login form and wait for the console to show a frame."""
    from selenium.webdriver.common.by import By

    driver.get(url + "login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait_for("the console page", lambda: driver.find_elements(By.ID, "status"))
    wait_for("a first frame", lambda: page_cycle(driver) >= 0)


def page_cycle(driver: Any) -> int:
    """The cycle the page shows (-1 before the first frame)."""
    text = driver.execute_script(  # read in one step: the page redraws the table per frame
        "const c = document.querySelector('#status-cycle td:nth-child(2)');"
        "return c ? c.textContent : '';"
    )
    return int(text) if text and text.strip() else -1


def set_field(driver: Any, field_id: str, value: float) -> str:
    """Type a value into a numeric control, press its set button, return the page's message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.ID, field_id)
    box.click()  # focused: the page no longer refreshes it from the frames
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(repr(value))
    typed = box.get_attribute("value")
    assert typed is not None and float(typed) == value, f"{field_id}: typed {typed!r}"
    driver.find_element(By.ID, field_id + "-set").click()
    return wait_for("the answer to the change", lambda: driver.find_element(By.ID, "message").text)


def clear_message(driver: Any) -> None:
    driver.execute_script("document.getElementById('message').textContent = ''")
