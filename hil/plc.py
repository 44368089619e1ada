"""PLC-like base layer of the HIL plant: LOCAL/REMOTE mode, setpoint checks, watchdog.

Like a PLC in front of a process unit, the base layer decides which setpoints
reach the actuators:

- LOCAL: the plant holds its own setpoints (the "operator" values); client
  setpoint writes are refused. REMOTE: the client (the controller) writes
  setpoints, each checked against the signal range (NaN or outside the
  EURange: refused) and clamped to the actuator limits.
- Mode changes go through a handshake: the client writes ``mode_request``;
  the base layer switches and says why in ``status_text``.
- Watchdog: in REMOTE the client must keep changing ``heartbeat``. When it has
  not changed for ``timeout_s`` (simulation seconds, so lockstep tests are
  deterministic), the plant falls back to LOCAL, sets ``watchdog_tripped`` and
  moves the setpoints bumplessly to the safe values: the last actuator
  positions (``hold_last``) or configured ``safe_values``, approached at
  ``fallback_rate_per_s`` (default: the MV's span per minute).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.signals import SignalSet


class ControlMode(IntEnum):
    """Who writes the setpoints (values as published in ``Status.mode``)."""

    LOCAL = 0
    REMOTE = 1


class FallbackPolicy(Enum):
    """What the plant holds after a watchdog trip."""

    HOLD_LAST = "hold_last"
    """Hold the actuator positions at the moment of the trip."""
    SAFE_VALUES = "safe_values"
    """Ramp to the configured safe values."""


class WriteOutcome(Enum):
    """Result of a client write, mapped to an OPC UA status code by the server."""

    ACCEPTED = "accepted"
    CLAMPED = "clamped"
    """Accepted after clamping to the actuator limits (OPC UA GoodClamped)."""
    OUT_OF_RANGE = "out_of_range"
    """NaN, infinite or outside the signal range: refused (BadOutOfRange)."""
    NOT_REMOTE = "not_remote"
    """Setpoint write while the plant is in LOCAL: refused (BadInvalidState)."""


@dataclass(frozen=True)
class WatchdogConfig:
    """Heartbeat watchdog and fallback of the base layer."""

    timeout_s: float = 30.0
    """Simulation seconds without a heartbeat change before the plant falls back to LOCAL;
    inf disables the watchdog."""
    fallback: FallbackPolicy = FallbackPolicy.HOLD_LAST
    """Hold the last actuator positions, or ramp to ``safe_values``."""
    safe_values: Mapping[str, float] = field(default_factory=dict)
    """Safe MV values by name (SI) for ``safe_values``; MVs not listed hold their last value."""
    fallback_rate_per_s: Mapping[str, float] = field(default_factory=dict)
    """Ramp rate toward the safe value by MV name (SI per second); default: span / 60 s."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fallback", FallbackPolicy(self.fallback))
        if not (float(self.timeout_s) > 0):
            raise ConfigError(f"watchdog.timeout_s must be > 0, got {self.timeout_s}")
        for name, rate in self.fallback_rate_per_s.items():
            if not float(rate) > 0:
                raise ConfigError(f"watchdog.fallback_rate_per_s.{name}: must be > 0, got {rate}")
        for name, val in self.safe_values.items():
            if not math.isfinite(float(val)):
                raise ConfigError(f"watchdog.safe_values.{name}: must be finite, got {val}")


class BaseLayer:
    """Mutable mode/setpoint/watchdog state (owned by the simulator, used under its lock)."""

    def __init__(
        self,
        u: SignalSet,
        config: WatchdogConfig,
        initial_setpoints: NDArray[np.float64],
        actuator_lower: NDArray[np.float64],
        actuator_upper: NDArray[np.float64],
        mode: ControlMode = ControlMode.LOCAL,
    ) -> None:
        unknown = sorted((set(config.safe_values) | set(config.fallback_rate_per_s)) - set(u.names))
        if unknown:
            raise ConfigError(f"watchdog: unknown MV(s) {', '.join(unknown)}; known: {', '.join(u.names)}")
        self._u = u
        self._config = config
        self._range_lo = u.lower
        self._range_hi = u.upper
        self._act_lo = actuator_lower
        self._act_hi = actuator_upper
        self.setpoints = np.clip(np.asarray(initial_setpoints, dtype=float), actuator_lower, actuator_upper)
        self._safe = np.array([config.safe_values.get(n, np.nan) for n in u.names], dtype=float)
        span = actuator_upper - actuator_lower
        default_rate = np.where(np.isfinite(span) & (span > 0), span / 60.0, np.inf)
        self._fallback_rate = np.array(
            [config.fallback_rate_per_s.get(n, default_rate[i]) for i, n in enumerate(u.names)],
            dtype=float,
        )
        self._fallback_target: NDArray[np.float64] | None = None
        self.mode = ControlMode(mode)
        self.watchdog_tripped = False
        self.status_text = f"{self.mode.name} at start"
        self.heartbeat = 0
        self._heartbeat_time = 0.0

    # Client commands -------------------------------------------------------
    def write_setpoint(self, index: int, value: float) -> WriteOutcome:
        """Validate and store one setpoint written by a client."""
        if not math.isfinite(value) or not (self._range_lo[index] <= value <= self._range_hi[index]):
            return WriteOutcome.OUT_OF_RANGE
        if self.mode is not ControlMode.REMOTE:
            return WriteOutcome.NOT_REMOTE
        clamped = min(max(value, self._act_lo[index]), self._act_hi[index])
        self.setpoints[index] = clamped
        return WriteOutcome.ACCEPTED if clamped == value else WriteOutcome.CLAMPED

    def write_heartbeat(self, value: int, t: float) -> None:
        """Record a heartbeat write; a changed value feeds the watchdog."""
        if value != self.heartbeat:
            self.heartbeat = value
            self._heartbeat_time = t

    def request_mode(self, mode: ControlMode, t: float) -> None:
        """Handshake: the client asks for LOCAL or REMOTE."""
        mode = ControlMode(mode)
        if mode is ControlMode.REMOTE:
            self._heartbeat_time = t  # grace: the watchdog counts from the switch
            if self.mode is not ControlMode.REMOTE:
                self.status_text = f"REMOTE requested by client at sim time {t:.3f} s"
            self.watchdog_tripped = False
            self._fallback_target = None
        elif self.mode is not ControlMode.LOCAL:
            self.status_text = f"LOCAL requested by client at sim time {t:.3f} s"
        self.mode = mode

    # Scan -------------------------------------------------------------------
    def scan(self, t: float, dt: float, positions: NDArray[np.float64]) -> NDArray[np.float64]:
        """One PLC scan at sim time ``t``: watchdog check, fallback ramp; returns the setpoints."""
        if self.mode is ControlMode.REMOTE and t - self._heartbeat_time >= self._config.timeout_s:
            self._trip(t, positions)
        if self._fallback_target is not None:
            step = self._fallback_rate * dt
            delta = np.clip(self._fallback_target - self.setpoints, -step, step)
            self.setpoints = self.setpoints + delta
        return self.setpoints.copy()

    def _trip(self, t: float, positions: NDArray[np.float64]) -> None:
        idle = t - self._heartbeat_time
        self.mode = ControlMode.LOCAL
        self.watchdog_tripped = True
        self.setpoints = np.clip(positions, self._act_lo, self._act_hi)  # bumpless start
        if self._config.fallback is FallbackPolicy.SAFE_VALUES:
            target = np.where(np.isnan(self._safe), self.setpoints, self._safe)
            self._fallback_target = np.clip(target, self._act_lo, self._act_hi)
            what = "ramping to safe values"
        else:
            self._fallback_target = None
            what = "holding last actuator values"
        self.status_text = (
            f"watchdog tripped at sim time {t:.3f} s: heartbeat unchanged for {idle:.3f} s "
            f"(timeout {self._config.timeout_s:g} s); LOCAL, {what}"
        )
