"""Shared fixtures of the hil tests: the reference plant and free loopback ports."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from plant_models.library import load
from plant_models.model import PlantModel


@pytest.fixture(scope="session")
def vdv() -> PlantModel:
    """Van de Vusse CSTR, Klatt & Engell parameters (the reference plant of the HIL tests)."""
    return load("van_de_vusse")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def port_factory() -> Callable[[], int]:
    """The free_port function, for fixtures with a wider scope than ``endpoint``."""
    return free_port


@pytest.fixture
def endpoint() -> str:
    """A loopback endpoint on a free port (one per test)."""
    return f"opc.tcp://127.0.0.1:{free_port()}"
