"""A real browser for the console tests: Debian's headless Chromium driven by selenium
(:mod:`rtompc.console.headless`), plus typing into the page.

``.ci/run`` installs ``chromium`` and ``chromium-driver``; without them the browser tests
are skipped with that reason (the HTTP-level tests still run).
"""

from __future__ import annotations

from typing import Any

import pytest

from rtompc.console.headless import NO_BROWSER, chromium, login, page_cycle, wait_for

__all__ = [
    "chromium",
    "clear_message",
    "login",
    "needs_browser",
    "page_cycle",
    "set_field",
    "wait_for",
]

needs_browser = pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")


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
