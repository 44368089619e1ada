"""Clocks of the HIL server: real time with a speed factor, or lockstep.

In real-time mode the server advances the simulator by itself: step ``k`` is
due at ``start + k * sample_time_s / speed`` on the monotonic clock. The
:class:`PacingStats` record how late each step started (pacing jitter) and
the achieved real-time factor (simulated seconds per wall second). When the
server falls behind by more than one period it re-anchors the schedule
instead of bursting through missed steps (counted as overruns).
In lockstep mode nothing advances until a client calls the ``step`` method.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from plant_models.errors import ConfigError


class ClockMode(Enum):
    """How simulation time advances."""

    REALTIME = "realtime"
    """By itself, at ``speed`` times wall-clock time."""
    LOCKSTEP = "lockstep"
    """Only through the ``step`` method (deterministic, for CI)."""


@dataclass(frozen=True)
class ClockConfig:
    """Clock of the HIL server."""

    mode: ClockMode = ClockMode.REALTIME
    """Real time (with speed factor) or lockstep."""
    speed: float = 1.0
    """Real-time factor asked for (simulated seconds per wall second), realtime mode only."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ClockMode(self.mode))
        speed = float(self.speed)
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"clock speed must be positive and finite, got {self.speed}")
        object.__setattr__(self, "speed", speed)


class PacingStats:
    """Lateness of step starts and achieved real-time factor over a sliding window."""

    def __init__(self, window: int = 2000) -> None:
        self._late: deque[float] = deque(maxlen=window)
        self._marks: deque[tuple[float, float]] = deque(maxlen=window)
        self.overruns = 0
        """Times the schedule was re-anchored because a step started more than a period late."""

    def record(self, lateness_s: float, wall_s: float, sim_s: float) -> None:
        """One step started ``lateness_s`` after it was due; at wall time ``wall_s`` sim time was ``sim_s``."""
        self._late.append(max(0.0, lateness_s))
        self._marks.append((wall_s, sim_s))

    def jitter_p99_s(self) -> float:
        """99th percentile of step-start lateness, seconds (0 before any step)."""
        if not self._late:
            return 0.0
        return float(np.percentile(np.fromiter(self._late, dtype=float), 99))

    def realtime_factor(self) -> float:
        """Simulated seconds per wall second over the window (0 before two steps)."""
        if len(self._marks) < 2:
            return 0.0
        (w0, s0), (w1, s1) = self._marks[0], self._marks[-1]
        return (s1 - s0) / (w1 - w0) if w1 > w0 else 0.0
