"""One headless Chromium for all the console's browser tests (starting one costs seconds on a
loaded machine); each test starts from a browser without cookies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from console_browser import chromium


@pytest.fixture(scope="session")
def shared_chromium() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def browser(shared_chromium: Any) -> Iterator[Any]:
    """The shared Chromium, its cookies cleared before and after the test."""
    shared_chromium.delete_all_cookies()
    shared_chromium.get("about:blank")
    try:
        yield shared_chromium
    finally:
        shared_chromium.delete_all_cookies()
        shared_chromium.get("about:blank")
