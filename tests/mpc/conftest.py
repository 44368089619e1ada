"""Shared fixtures of the MPC tests: do-mpc's CSTR plant (Van de Vusse, SI units)."""

from __future__ import annotations

import pytest

from plant_models.library import load
from plant_models.model import PlantModel


@pytest.fixture(scope="session")
def cstr() -> PlantModel:
    """do-mpc's CSTR example plant (examples/CSTR of do-mpc 5.x) in SI units."""
    return load("van_de_vusse", parameters="do_mpc")
