"""Disturbance profiles over simulation time: steps and ramps on d and p signals.

A profile is a tuple of :class:`DisturbanceEvent` s. The value of a signal at
time ``t`` starts from the model's nominal value; events on that signal apply
in start-time order: a step sets the value at ``start_s``; a ramp moves it
linearly from its value at ``start_s`` to ``value`` over ``duration_s``.
Measured disturbances (``d``) are published under Measurements; parameters
(``p``) are hidden plant changes (e.g. catalyst decay) the controller must
estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.model import PlantModel


class ProfileKind(Enum):
    """Shape of a disturbance event."""

    STEP = "step"
    RAMP = "ramp"


@dataclass(frozen=True)
class DisturbanceEvent:
    """One step or ramp on a measured disturbance (d) or parameter (p)."""

    signal: str
    """Name of a d or p signal of the plant."""
    start_s: float
    """Simulation time at which the event starts, seconds."""
    value: float
    """New value (step) or final value (ramp), SI units of the signal."""
    kind: ProfileKind = ProfileKind.STEP
    """Step or ramp."""
    duration_s: float = 0.0
    """Length of a ramp, seconds (ignored for steps)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProfileKind(self.kind))
        for attr in ("start_s", "value", "duration_s"):
            val = float(getattr(self, attr))
            if not math.isfinite(val):
                raise ConfigError(f"disturbance on {self.signal!r}: {attr} must be finite, got {val}")
            object.__setattr__(self, attr, val)
        if self.start_s < 0 or self.duration_s < 0:
            raise ConfigError(f"disturbance on {self.signal!r}: start_s and duration_s must be >= 0")
        if self.kind is ProfileKind.RAMP and self.duration_s <= 0:
            raise ConfigError(f"disturbance on {self.signal!r}: a ramp needs duration_s > 0")


class DisturbanceProfile:
    """Evaluates d(t) and p(t) of a plant from its events (immutable after construction)."""

    def __init__(self, model: PlantModel, events: tuple[DisturbanceEvent, ...]) -> None:
        self._model = model
        self._events: dict[tuple[str, int], list[DisturbanceEvent]] = {}
        for ev in sorted(events, key=lambda e: e.start_s):
            in_d, in_p = ev.signal in model.d, ev.signal in model.p
            if in_d == in_p:
                raise ConfigError(
                    f"disturbance signal {ev.signal!r}: expected exactly one d or p signal of "
                    f"{model.name!r} (d: {', '.join(model.d.names) or '-'}; "
                    f"p: {', '.join(model.p.names) or '-'})"
                )
            key = ("d", model.d.index(ev.signal)) if in_d else ("p", model.p.index(ev.signal))
            self._events.setdefault(key, []).append(ev)

    def values(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(d, p) vectors at simulation time ``t``."""
        d = self._model.nominal.d.copy()
        p = self._model.nominal.p.copy()
        for (kind, i), events in self._events.items():
            vec = d if kind == "d" else p
            vec[i] = _evaluate(vec[i], events, t)
        return d, p


def _evaluate(base: float, events: list[DisturbanceEvent], t: float) -> float:
    value = base
    for ev in events:
        if t < ev.start_s:
            break
        if ev.kind is ProfileKind.STEP:
            value = ev.value
        else:
            frac = min(1.0, (t - ev.start_s) / ev.duration_s)
            value = value + frac * (ev.value - value)
    return value
