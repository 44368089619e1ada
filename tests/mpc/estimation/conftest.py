"""Fixtures for the estimation tests."""

from __future__ import annotations

import pytest

from plant_models.library import load
from plant_models.model import PlantModel


@pytest.fixture(scope="session")
def vdv() -> PlantModel:
    """Van de Vusse CSTR, Klatt & Engell parameters."""
    return load("van_de_vusse")
