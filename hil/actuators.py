"""Actuator model of the HIL plant: limits, rate limits and first-order dynamics.

Each manipulated input ``u`` of the plant sits behind an actuator: the commanded
setpoint is clamped to the actuator's operating limits, moved at most
``rate_limit_per_s`` per second (rate limiter), and then followed with a
first-order lag of time constant ``time_constant_s`` (valve/drive dynamics).
The plant sees the actuator position, which is also what the server publishes
under ``Actuators``. A stuck actuator (fault) holds its position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.signals import SignalSet


@dataclass(frozen=True)
class ActuatorSpec:
    """Limits and dynamics of one actuator (SI units of its MV)."""

    lower: float = -math.inf
    """Lower operating limit; setpoints below are clamped to it (default: the signal's bound)."""
    upper: float = math.inf
    """Upper operating limit; setpoints above are clamped to it (default: the signal's bound)."""
    rate_limit_per_s: float = math.inf
    """Largest change of the actuator per second (MV unit per second); inf: no rate limit."""
    time_constant_s: float = 0.0
    """Time constant of the first-order actuator lag, seconds; 0: the actuator follows at once."""

    def __post_init__(self) -> None:
        for attr in ("lower", "upper", "rate_limit_per_s", "time_constant_s"):
            value = float(getattr(self, attr))
            if math.isnan(value):
                raise ConfigError(f"actuator {attr}: NaN is not allowed")
            object.__setattr__(self, attr, value)
        if self.lower > self.upper:
            raise ConfigError(f"actuator limits: lower {self.lower} is above upper {self.upper}")
        if not self.rate_limit_per_s > 0:
            raise ConfigError(f"actuator rate_limit_per_s must be > 0, got {self.rate_limit_per_s}")
        if not (self.time_constant_s >= 0 and math.isfinite(self.time_constant_s)):
            raise ConfigError(
                f"actuator time_constant_s must be finite and >= 0, got {self.time_constant_s}"
            )


def resolve_specs(u: SignalSet, specs: Mapping[str, ActuatorSpec]) -> tuple[ActuatorSpec, ...]:
    """One spec per MV in ``u`` order; limits default to (and must lie within) the signal bounds."""
    unknown = sorted(set(specs) - set(u.names))
    if unknown:
        raise ConfigError(
            f"actuators: unknown MV(s) {', '.join(unknown)}; known: {', '.join(u.names)}"
        )
    out = []
    for sig in u:
        spec = specs.get(sig.name, ActuatorSpec())
        lower = max(spec.lower, sig.lower)
        upper = min(spec.upper, sig.upper)
        if lower > upper:
            raise ConfigError(
                f"actuators.{sig.name}: limits [{spec.lower}, {spec.upper}] do not overlap the "
                f"signal bounds [{sig.lower}, {sig.upper}]"
            )
        out.append(
            ActuatorSpec(lower, upper, spec.rate_limit_per_s, spec.time_constant_s)
        )
    return tuple(out)


class ActuatorBank:
    """Mutable state of all actuators of a plant (owned by the simulator)."""

    def __init__(self, specs: tuple[ActuatorSpec, ...], initial: NDArray[np.float64]) -> None:
        self.specs = specs
        self.lower = np.array([s.lower for s in specs], dtype=float)
        self.upper = np.array([s.upper for s in specs], dtype=float)
        self._rate = np.array([s.rate_limit_per_s for s in specs], dtype=float)
        self._tau = np.array([s.time_constant_s for s in specs], dtype=float)
        start = np.clip(np.asarray(initial, dtype=float), self.lower, self.upper)
        self.ramp = start.copy()
        """Output of the rate limiter (input of the lag)."""
        self.position = start.copy()
        """Actuator positions the plant sees."""

    def clamp(self, setpoints: NDArray[np.float64]) -> NDArray[np.float64]:
        """Setpoints clamped to the operating limits."""
        return np.clip(setpoints, self.lower, self.upper)

    def advance(
        self, setpoints: NDArray[np.float64], dt: float, stuck: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float64]:
        """Move the actuators over ``dt`` seconds toward ``setpoints``; returns the new positions.

        A stuck actuator (``stuck[i]``) keeps its position and its rate-limiter state.
        """
        target = self.clamp(setpoints)
        max_step = self._rate * dt
        new_ramp = self.ramp + np.clip(target - self.ramp, -max_step, max_step)
        with np.errstate(divide="ignore"):
            alpha = np.where(self._tau > 0, 1.0 - np.exp(-dt / np.where(self._tau > 0, self._tau, 1.0)), 1.0)
        new_pos = self.position + alpha * (new_ramp - self.position)
        if stuck is not None and stuck.any():
            new_ramp = np.where(stuck, self.ramp, new_ramp)
            new_pos = np.where(stuck, self.position, new_pos)
        self.ramp = new_ramp
        self.position = np.clip(new_pos, self.lower, self.upper)
        return self.position.copy()
