"""Samples that flow through the loop: measurements, estimates, targets, moves.

These are frozen values with vectors ordered like the model's signal sets.
``Quality`` follows the OPC UA status classes (Good/Uncertain/Bad); a
measurement carries one quality and one source timestamp per signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray


class Quality(Enum):
    """Per-signal quality, mapped from OPC UA status codes at the edge."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class Mode(Enum):
    """Operating mode of a controller or of the runtime."""

    OFF = "off"
    """Nothing computed or written."""
    SHADOW = "shadow"
    """Computed and logged, nothing written to the plant (commissioning)."""
    ON = "on"
    """Closed loop: moves are written to the plant."""


@dataclass(frozen=True)
class Measurement:
    """One read of the plant's measured signals."""

    time_s: float
    """Time of the read (plant/simulation time in seconds)."""
    names: tuple[str, ...]
    """Signal names of ``values``, usually the model's ``y`` then ``d`` and MV read-backs."""
    values: NDArray[np.float64]
    """Values in SI units, ordered like ``names`` (NaN where no value)."""
    quality: tuple[Quality, ...]
    """Quality per signal."""
    source_time_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Source timestamp per signal (seconds, same clock as ``time_s``); empty if unknown."""

    def value(self, name: str) -> float:
        """Value of one signal by name."""
        return float(self.values[self.names.index(name)])

    def good(self, name: str) -> bool:
        """True when the signal's quality is GOOD and its value finite."""
        i = self.names.index(name)
        return self.quality[i] is Quality.GOOD and bool(np.isfinite(self.values[i]))


@dataclass(frozen=True)
class StateEstimate:
    """Output of a state estimator."""

    time_s: float
    """Time the estimate refers to."""
    x: NDArray[np.float64]
    """State estimate, ordered like the model's ``x``."""
    p: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Estimated parameters / disturbance states (offset-free), if any."""
    y_bias: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Estimated additive output disturbance (offset-free control), ordered like ``y``;
    empty when the estimator has no output disturbance model."""
    u_bias: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Estimated additive input disturbance (plant sees u + u_bias), ordered like ``u``;
    empty when the estimator has no input disturbance model."""
    covariance: NDArray[np.float64] | None = None
    """Error covariance of the augmented state, if the estimator has one."""
    rejected: tuple[str, ...] = ()
    """Measurements rejected by validation in this update, with no effect on it."""


@dataclass(frozen=True)
class OperatingTarget:
    """Steady-state targets passed from RTO (or config) to MPC."""

    time_s: float
    """Time the target was computed."""
    y: dict[str, float] = field(default_factory=dict)
    """Targets on outputs (CVs) by name, SI."""
    u: dict[str, float] = field(default_factory=dict)
    """Targets on manipulated inputs by name, SI."""
    source: str = "config"
    """Where the target came from: ``config``, ``rto``, ``operator``."""


@dataclass(frozen=True)
class ControlMove:
    """A move the controller wants applied to the manipulated inputs."""

    time_s: float
    """Time the move is meant for."""
    u: NDArray[np.float64]
    """Absolute MV values in SI, ordered like the model's ``u``."""
    names: tuple[str, ...] = ()
    """MV names (redundant with the model, kept for logs and I/O)."""
