"""rtompc.console.headless.wait_for: an exception raised while the page changes is retried, never returned."""

from __future__ import annotations

import pytest

from rtompc.console.headless import wait_for


def test_an_exception_from_the_check_is_retried_not_returned() -> None:
    calls = iter([RuntimeError("stale element"), "", "wrong password"])

    def check() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert wait_for("the message", check, timeout_s=5.0) == "wrong password"


def test_a_timeout_names_what_was_awaited_and_the_last_exception() -> None:
    def check() -> str:
        raise RuntimeError("stale element")

    with pytest.raises(AssertionError, match=r"the message .*stale element"):
        wait_for("the message", check, timeout_s=0.3)
