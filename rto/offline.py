"""Offline RTO studies: a PlantModel standing in for the plant, and the iteration loop.

:class:`SteadyPlant` turns a PlantModel (e.g. the three-reaction Williams-Otto
plant) into "the plant" of an RTO study: given inputs, it returns steady
measurements. ``SettleMode.ROOT`` solves the steady-state equations;
``SettleMode.SIMULATE`` integrates the dynamics from the last state in chunks,
with optional measurement noise, until Cao & Rhinehart's R-statistic accepts a
window as steady, and returns the window's tail mean. :func:`run_rto` drives
a two-step or modifier-adaptation runner against such a plant.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.steady_state import steady_state
from rto.iteration import RtoIteration
from rto.steady_detection import SteadyStateDetector

log = logging.getLogger(__name__)


class SettleMode(Enum):
    """How the stand-in plant reaches steady state."""

    ROOT = "root"
    """Solve f(x, u, d, p) = 0."""
    SIMULATE = "simulate"
    """Integrate the dynamics until the R-statistic test says steady."""


@dataclass(frozen=True)
class SettleInfo:
    """How one plant steady state was obtained."""

    settled: bool
    """True when a steady state was reached."""
    time_s: float
    """Simulated time to reach it (0 for ROOT)."""
    windows: int
    """Windows tested (SIMULATE)."""


class SteadyPlant:
    """A PlantModel used as the plant of an RTO study (counts its evaluations)."""

    def __init__(self, model: PlantModel, *, mode: SettleMode = SettleMode.ROOT,
                 p: Mapping[str, float] | ArrayLike | None = None, sample_time_s: float = 10.0,
                 window: int = 60, max_time_s: float = 20000.0,
                 noise: Mapping[str, float] | None = None,
                 detector: SteadyStateDetector | None = None, seed: int = 0) -> None:
        self.model, self.mode = model, SettleMode(mode)
        self.p = model.resolve("p", p)
        self.sample_time_s, self.window, self.max_time_s = sample_time_s, window, max_time_s
        self.noise = {n: float(v) for n, v in (noise or {}).items()}
        for name in self.noise:
            model.y.index(name)
        self.detector = detector or SteadyStateDetector()
        self._rng = np.random.default_rng(seed)
        self._x = model.nominal.x.copy()
        self.evaluations = 0
        self.last_settle = SettleInfo(False, 0.0, 0)

    def __call__(self, u: ArrayLike, d: ArrayLike | None = None) -> dict[str, float] | None:
        """Steady measurements {output: value} at ``u``, ``d``; None if not reached."""
        m = self.model
        uv, dv = m.resolve("u", u), m.resolve("d", d)
        self.evaluations += 1
        if self.mode is SettleMode.ROOT:
            ss = steady_state(m, uv, dv, self.p, x_guess=self._x, raise_on_failure=False)
            if ss.x is None or ss.y is None:
                self.last_settle = SettleInfo(False, 0.0, 0)
                return None
            self._x = ss.x
            self.last_settle = SettleInfo(True, 0.0, 0)
            return m.y.mapping(ss.y)
        return self._simulate(uv, dv)

    def _simulate(self, u: NDArray, d: NDArray) -> dict[str, float] | None:
        m = self.model
        n = self.window
        u_prof = np.tile(u, (n, 1))
        t, windows = 0.0, 0
        names = m.y.names
        while t < self.max_time_s:
            traj = m.simulate(self._x, u_prof, self.sample_time_s, d=d, p=self.p)
            self._x = traj.x[-1]
            t += n * self.sample_time_s
            windows += 1
            ys = traj.y[1:].copy()
            for name, sd in self.noise.items():
                ys[:, m.y.index(name)] += sd * self._rng.standard_normal(n)
            watched = [i for i, nm in enumerate(names) if nm in self.noise] or list(
                range(len(names)))
            check = self.detector.check(ys[:, watched], [names[i] for i in watched])
            if check.steady and windows > 1:
                self.last_settle = SettleInfo(True, t, windows)
                tail = ys[-max(2, n // 4):].mean(axis=0)
                return m.y.mapping(tail)
        self.last_settle = SettleInfo(False, t, windows)
        log.warning("plant %s did not settle within %.0f s", m.name, self.max_time_s)
        return None


class RtoRunner(Protocol):
    """What :func:`run_rto` needs of a two-step or modifier-adaptation runner."""

    def probe_points(self, u: ArrayLike) -> list[NDArray[np.float64]]: ...

    def step(self, u: ArrayLike, d: ArrayLike | None, y: Mapping[str, float],
             probes: Sequence[tuple[ArrayLike, Mapping[str, float]]] = ()) -> RtoIteration: ...


def run_rto(runner: RtoRunner, plant: SteadyPlant, u0: ArrayLike, d: ArrayLike | None,
            iterations: int) -> list[RtoIteration]:
    """Iterate: measure the plant at the current target, step the runner, apply its target."""
    if iterations < 1:
        raise ModelError(f"run_rto: iterations must be >= 1, got {iterations}")
    model = plant.model
    u = model.resolve("u", u0)
    dv = model.resolve("d", d)
    out: list[RtoIteration] = []
    for _ in range(iterations):
        y = plant(u, dv)
        if y is None:
            raise ModelError(f"run_rto: plant {model.name!r} found no steady state at u={u}")
        probes = []
        for pu in runner.probe_points(u):
            py = plant(pu, dv)
            if py is None:
                raise ModelError(f"run_rto: plant {model.name!r} found no steady state at {pu}")
            probes.append((pu, py))
        it = runner.step(u, dv, y, probes)
        out.append(it)
        u = it.target
    return out
