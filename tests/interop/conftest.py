"""Fixtures of the interop tests: a free loopback endpoint per test."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def endpoint() -> str:
    """A loopback endpoint on a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"opc.tcp://127.0.0.1:{s.getsockname()[1]}"
