"""Helpers for the estimation tests: measurements and a noisy Van de Vusse plant run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from plant_models.builder import build_model
from plant_models.model import PlantModel, TimeDomain
from plant_models.samples import Measurement, Quality
from plant_models.signals import Signal, signal_set
from plant_models.simulation import step

DT = 20.0
"""Estimator sample time used throughout, seconds."""
NOISE = {"c_a": 10.0, "c_b": 10.0, "t_r": 0.2, "t_k": 0.2}
"""Measurement noise std of the simulated sensors, SI (1 % of c_B, 0.2 K)."""


def make_measurement(
    time_s: float,
    names: Sequence[str],
    values: ArrayLike,
    quality: Sequence[Quality] | None = None,
) -> Measurement:
    """A measurement with GOOD quality unless given."""
    q = tuple(quality) if quality is not None else (Quality.GOOD,) * len(names)
    return Measurement(
        time_s=time_s, names=tuple(names), values=np.asarray(values, float), quality=q
    )


def plant_outputs(
    plant: PlantModel,
    x0: np.ndarray,
    u: np.ndarray,
    steps: int,
    seed: int = 0,
    u_bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """True states (steps+1, nx) and noisy outputs (steps+1, ny) of the plant (CVODES).

    ``u`` is (steps, nu); the plant receives ``u + u_bias``. Row k of the outputs is the
    measurement at time k*DT.
    """
    rng = np.random.default_rng(seed)
    ub = np.zeros(len(plant.u)) if u_bias is None else u_bias
    xs = [np.asarray(x0, float)]
    for k in range(steps):
        xs.append(step(plant, xs[-1], u[k] + ub, plant.nominal.d, plant.nominal.p, DT))
    X = np.array(xs)
    noise = np.array([NOISE[n] for n in plant.y.names])
    Y = np.array([plant.outputs(x, u[max(k - 1, 0)] + ub) for k, x in enumerate(X)])
    return X, Y + rng.normal(0.0, 1.0, Y.shape) * noise


def linear_discrete() -> PlantModel:
    """x+ = A x + B u, y = C x: a 2-state discrete model for the Riccati comparison."""
    a = np.array([[0.9, 0.2], [-0.1, 0.8]])
    x = signal_set("x", Signal("x1", "1"), Signal("x2", "1"))
    u = signal_set("u", Signal("u1", "1"))
    y = signal_set("y", Signal("y1", "1"))
    return build_model(
        "linear2",
        x=x,
        u=u,
        y=y,
        rhs=lambda s: {
            "x1": a[0, 0] * s.x1 + a[0, 1] * s.x2 + s.u1,
            "x2": a[1, 0] * s.x1 + a[1, 1] * s.x2,
        },
        output=lambda s: {"y1": s.x1 + 0.5 * s.x2},
        nominal={"x": {"x1": 0.0, "x2": 0.0}, "u": {"u1": 0.0}},
        time_domain=TimeDomain.DISCRETE,
        sample_time_s=1.0,
    )
