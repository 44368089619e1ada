"""Fixtures of the interop tests: a free loopback endpoint, and the strict PLC stand-in.

``strict_plc`` is a running stand-in (node/strict_plc.js) with default options;
``strict_plc_factory(**options)`` starts one with options (speed, watchdog_s,
refuse_remote, initial setpoints, heater_max_kw, stuck actuators, ...). Both stop the
process at the end of the test and skip the test, with the reason, when Node.js or
node-opcua is missing. Model, tag map and process control: ``strict_plc.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from strict_plc import SKIP_REASON, StrictPlc


@pytest.fixture
def endpoint() -> str:
    """A loopback endpoint on a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"opc.tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def strict_plc_factory(tmp_path: Path) -> Iterator[Callable[..., StrictPlc]]:
    """Start strict PLC stand-ins with options: ``plc = strict_plc_factory(speed=20.0)``."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    started: list[StrictPlc] = []

    def make(**options: Any) -> StrictPlc:
        plc = StrictPlc(tmp_path, **options)
        started.append(plc)
        plc.start()
        return plc

    yield make
    for plc in started:
        plc.stop()


@pytest.fixture
def strict_plc(strict_plc_factory: Callable[..., StrictPlc]) -> StrictPlc:
    """A running strict PLC stand-in with default options (real time, LOCAL at start)."""
    return strict_plc_factory()
