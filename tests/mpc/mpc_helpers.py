"""Helpers of the MPC tests: the plant integrated independently of the controller."""

from __future__ import annotations

import numpy as np

from plant_models.model import PlantModel

H = 3600.0
"""Seconds per hour."""


def plant_step(model: PlantModel, x: np.ndarray, u: np.ndarray, dt: float,
               d: np.ndarray | None = None) -> np.ndarray:
    """One sample of the plant, integrated by CVODES (independent of the controller's RK4)."""
    return model.simulate(x, [u], dt, d=None if d is None else [d]).x[-1]
