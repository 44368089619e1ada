"""The HIL plant simulator: a PlantModel integrated step by step behind a PLC-like layer.

Pure Python/NumPy/CasADi (no OPC UA here), deterministic for a given config:

    setpoints --(base layer: mode, watchdog, fallback)--> actuators (limits, rate,
    lag, stuck faults) --> plant (CVODES, d/p profiles) --> h(x,u,d,p) + noise
    --> sensor faults --> Measurements with status codes

:meth:`PlantSimulator.step` does the numeric work and may run in a worker
thread while client writes arrive from the event loop: a lock guards the
command state, and the integration itself runs outside the lock. Writes made
during a step take effect at the next step.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from hil.actuators import ActuatorBank, ActuatorSpec, resolve_specs
from hil.disturbances import DisturbanceEvent, DisturbanceProfile
from hil.faults import Fault, FaultEvent, FaultInjector
from hil.plc import BaseLayer, ControlMode, WatchdogConfig, WriteOutcome
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.simulation import Integrator
from plant_models.simulation import step as plant_step

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatorConfig:
    """How the HIL plant behaves (everything but the model itself)."""

    sample_time_s: float = 1.0
    """Simulation step, seconds (a discrete model must use its own sample time)."""
    seed: int = 0
    """Seed of the measurement-noise generator (same seed, same noise)."""
    noise_std: Mapping[str, float] = field(default_factory=dict)
    """Standard deviation of additive Gaussian noise by measurement name (SI); default 0."""
    actuators: Mapping[str, ActuatorSpec] = field(default_factory=dict)
    """Actuator limits and dynamics by MV name; default: signal bounds, no dynamics."""
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    """Heartbeat watchdog and fallback values."""
    disturbances: tuple[DisturbanceEvent, ...] = ()
    """Steps and ramps on d and p over simulation time."""
    faults: tuple[Fault, ...] = ()
    """Scheduled faults."""
    initial_state: Mapping[str, float] | None = None
    """Initial states by name; default: the model's nominal state."""
    initial_inputs: Mapping[str, float] | None = None
    """Initial MV (actuator) values by name; default: the model's nominal inputs."""
    initial_mode: ControlMode = ControlMode.LOCAL
    """Mode at start."""
    integrator: Integrator = Integrator.CVODES
    """Integration method for continuous models."""

    def __post_init__(self) -> None:
        dt = float(self.sample_time_s)
        if not (math.isfinite(dt) and dt > 0):
            raise ConfigError(f"sample_time_s must be positive and finite, got {self.sample_time_s}")
        object.__setattr__(self, "sample_time_s", dt)
        object.__setattr__(self, "initial_mode", ControlMode(self.initial_mode))
        object.__setattr__(self, "integrator", Integrator(self.integrator))
        for name, std in self.noise_std.items():
            if not (math.isfinite(float(std)) and float(std) >= 0):
                raise ConfigError(f"noise_std.{name}: must be finite and >= 0, got {std}")


@dataclass(frozen=True)
class SimSnapshot:
    """What the plant shows at one instant (published by the server)."""

    step: int
    """Steps taken since start."""
    time_s: float
    """Simulation time, seconds."""
    wall_time: float
    """Wall-clock time (``time.time()``) when the snapshot was made: the source timestamp."""
    measurements: NDArray[np.float64]
    """Measured values (y then d), SI, after noise and sensor faults."""
    measurement_status: tuple[int, ...]
    """OPC UA status code per measurement (0: Good)."""
    actuators: NDArray[np.float64]
    """Actuator positions the plant holds, ordered like u."""
    setpoints: NDArray[np.float64]
    """Setpoints in force, ordered like u."""
    mode: ControlMode
    """LOCAL or REMOTE."""
    watchdog_tripped: bool
    """True after a watchdog trip until the client asks for REMOTE again."""
    status_text: str
    """Why the mode last changed."""
    server_faults: tuple[Fault, ...] = ()
    """Server faults (pause, drop connections) that started in this step."""


class PlantSimulator:
    """A PlantModel running as a plant: state, actuators, base layer, faults, noise."""

    def __init__(self, model: PlantModel, config: SimulatorConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or SimulatorConfig()
        if not model.is_continuous:
            if abs(cfg.sample_time_s - float(model.sample_time_s or 0)) > 1e-9 * cfg.sample_time_s:
                raise ConfigError(
                    f"sample_time_s {cfg.sample_time_s}: model {model.name!r} is discrete with "
                    f"sample time {model.sample_time_s} s"
                )
        self.measurement_names: tuple[str, ...] = model.y.names + model.d.names
        dup = set(model.y.names) & set(model.d.names)
        if dup:
            raise ModelError(f"model {model.name!r}: y and d share names {sorted(dup)}")
        unknown = sorted(set(cfg.noise_std) - set(self.measurement_names))
        if unknown:
            raise ConfigError(
                f"noise_std: unknown measurement(s) {', '.join(unknown)}; known: "
                f"{', '.join(self.measurement_names)}"
            )
        self._noise = np.array([float(cfg.noise_std.get(n, 0.0)) for n in self.measurement_names])
        self._rng = np.random.default_rng(cfg.seed)
        self._profile = DisturbanceProfile(model, tuple(cfg.disturbances))
        specs = resolve_specs(model.u, cfg.actuators)
        self._actuators = ActuatorBank(specs, model.resolve("u", cfg.initial_inputs))
        self._base = BaseLayer(
            model.u, cfg.watchdog, self._actuators.position, self._actuators.lower,
            self._actuators.upper, cfg.initial_mode,
        )
        self._faults = FaultInjector(self.measurement_names, model.u.names, cfg.faults)
        self._x = model.resolve("x", cfg.initial_state)
        self._linked: dict[int, float] = {}
        """Disturbances set by another unit's plant (a stream between PLCs), by index."""
        self.after_step: list[Callable[[PlantSimulator], None]] = []
        """Called after every step (outside the locks): links to other units' plants."""
        self._t = 0.0
        self._k = 0
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._snapshot = self._make_snapshot((), self._faults.update(0.0))

    # Properties ------------------------------------------------------------
    @property
    def sample_time_s(self) -> float:
        """Simulation step, seconds."""
        return self.config.sample_time_s

    @property
    def state(self) -> NDArray[np.float64]:
        """Current plant state (a copy)."""
        return self._x.copy()

    @property
    def fault_log(self) -> tuple[FaultEvent, ...]:
        """Every fault start and end with its simulation time."""
        with self._lock:
            return tuple(self._faults.log)

    def plc_status(self) -> tuple[ControlMode, bool, str, NDArray[np.float64]]:
        """Mode, watchdog flag, status text and setpoints in force, now (between steps)."""
        with self._lock:
            b = self._base
            return b.mode, b.watchdog_tripped, b.status_text, b.setpoints.copy()

    def snapshot(self) -> SimSnapshot:
        """The latest snapshot (after the last step)."""
        return self._snapshot

    # Commands (thread-safe) ------------------------------------------------
    def write_setpoint(self, name: str, value: float) -> WriteOutcome:
        """A client writes a setpoint by MV name; returns what happened to it."""
        i = self.model.u.index(name)
        with self._lock:
            outcome = self._base.write_setpoint(i, float(value))
        if outcome in (WriteOutcome.OUT_OF_RANGE, WriteOutcome.NOT_REMOTE):
            _log.debug("setpoint %s = %r refused: %s", name, value, outcome.value)
        return outcome

    def write_heartbeat(self, value: int) -> None:
        """A client writes the heartbeat counter."""
        with self._lock:
            self._base.write_heartbeat(int(value), self._t)

    def request_mode(self, mode: ControlMode | int) -> None:
        """A client asks for LOCAL (0) or REMOTE (1)."""
        with self._lock:
            self._base.request_mode(ControlMode(mode), self._t)
            _log.debug("mode request %s at sim time %.3f s", ControlMode(mode).name, self._t)

    def link_disturbance(self, name: str, value: float) -> None:
        """Another unit's plant sets disturbance ``name`` (a stream between units: gas drawn,
        slabs passed); it holds until set again and overrides the disturbance profile."""
        if name not in self.model.d:
            raise ConfigError(
                f"link: {self.model.name!r} has no disturbance {name!r}; disturbances: "
                f"{', '.join(self.model.d.names)}"
            )
        with self._lock:
            self._linked[self.model.d.index(name)] = float(value)

    def true_output(self, name: str) -> float:
        """Noise-free value of output ``name`` at the current state (what flows to a linked
        unit)."""
        with self._lock:
            x, u, t = self._x.copy(), self._actuators.position.copy(), self._t
        d, p = self._disturbances(t)
        y = np.asarray(self.model.h(x, u, d, p), dtype=float).reshape(-1)
        return float(y[self.model.y.index(name)])

    def _disturbances(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        d, p = self._profile.values(t)
        if self._linked:
            d = d.copy()
            for i, v in self._linked.items():
                d[i] = v
        return d, p

    def add_fault(self, fault: Fault) -> None:
        """Schedule a fault at run time (Python API)."""
        with self._lock:
            self._faults.add(fault)

    # Numerics ----------------------------------------------------------------
    def step(self, n: int = 1) -> SimSnapshot:
        """Advance exactly ``n`` steps of ``sample_time_s``; returns the new snapshot."""
        if n < 0:
            raise ConfigError(f"step: n must be >= 0, got {n}")
        with self._step_lock:
            server_faults: list[Fault] = []
            for _ in range(n):
                server_faults.extend(self._one_step())
                for hook in self.after_step:
                    hook(self)
            return self._snapshot if not server_faults else _with_faults(self._snapshot, server_faults)

    def _one_step(self) -> list[Fault]:
        dt = self.config.sample_time_s
        with self._lock:
            t = self._t
            setpoints = self._base.scan(t, dt, self._actuators.position)
            positions = self._actuators.advance(setpoints, dt, self._faults.stuck())
        d, p = self._disturbances(t)
        x_next = plant_step(self.model, self._x, positions, d, p, dt, self.config.integrator)
        noise = self._rng.standard_normal(len(self._noise)) * self._noise
        with self._lock:
            self._x = x_next
            self._k += 1
            self._t = self._k * dt
            started = self._faults.update(self._t)
            self._snapshot = self._make_snapshot(noise, started)
        return started

    def _make_snapshot(self, noise: NDArray[np.float64] | tuple[()], started: list[Fault]) -> SimSnapshot:
        d, p = self._disturbances(self._t)
        u = self._actuators.position
        y = np.asarray(self.model.h(self._x, u, d, p), dtype=float).reshape(-1)
        clean = np.concatenate([y, d])
        if len(noise):
            clean = clean + noise
        values, status = self._faults.apply(self._t, clean)
        return SimSnapshot(
            step=self._k, time_s=self._t, wall_time=time.time(), measurements=values,
            measurement_status=status, actuators=u.copy(), setpoints=self._base.setpoints.copy(),
            mode=self._base.mode, watchdog_tripped=self._base.watchdog_tripped,
            status_text=self._base.status_text, server_faults=tuple(started),
        )


def _with_faults(snap: SimSnapshot, faults: list[Fault]) -> SimSnapshot:
    return replace(snap, server_faults=tuple(faults))
