"""The typed, frozen description of one closed-loop scenario (what a scenario TOML file holds).

A :class:`ScenarioSpec` says which plant is simulated (and how it differs from
the controller's model), how the controller, estimator and optional RTO are
configured, what happens during the run (timed :class:`Event` objects), how the
plant is reached (:class:`TransportSpec`) and when the run passes
(:class:`Criterion`). :func:`rtompc.config.build_scenario.scenario_spec` builds it from a
validated :class:`rtompc.config.ScenarioConfig`; :mod:`rtompc.scenarios.runner` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from mpc.config import MpcConfig
from mpc.estimation import EstimatorConfig
from mpc.fallback import FallbackPolicy
from plant_models.samples import Mode
from rtompc.supervision.settings import SupervisionSettings


class EventKind(Enum):
    """What a timed scenario event does."""

    SETPOINT = "setpoint"
    """New target for a CV (model output) or an MV resting value: ``signal``, ``value``."""
    PRICE = "price"
    """New price of a stream (economics/RTO): ``signal``, ``value``."""
    DISTURBANCE_STEP = "disturbance_step"
    """Measured disturbance of the plant jumps to ``value``."""
    DISTURBANCE_RAMP = "disturbance_ramp"
    """Measured disturbance ramps linearly to ``value`` over ``duration_s``."""
    PARAMETER_DRIFT = "parameter_drift"
    """Plant parameter (not the model's) ramps to ``value`` over ``duration_s`` (0: a step)."""
    SENSOR_FAULT = "sensor_fault"
    """A measured signal is corrupted (``fault``: bias, drift, freeze, value, bad, uncertain)."""
    ACTUATOR_FAULT = "actuator_fault"
    """An MV is stuck at its current value (``fault = "stuck"``) for ``duration_s``."""
    COMM_FAULT = "comm_fault"
    """The plant link is lost (``fault = "link_loss"``) or its PLC stops (``"plc_stop"``) for
    ``duration_s``."""
    MODE = "mode"
    """The runtime mode changes to ``value`` (``on``, ``shadow``, ``off``)."""


class SensorFault(Enum):
    """How a sensor fault corrupts a measurement."""

    BIAS = "bias"
    """Adds ``magnitude`` (SI)."""
    DRIFT = "drift"
    """Adds ``magnitude`` (SI per second) times the time since onset."""
    FREEZE = "freeze"
    """Holds the value read at onset (quality stays Good: the estimator must catch it)."""
    VALUE = "value"
    """Reports ``magnitude`` instead of the true value."""
    BAD = "bad"
    """Keeps the value, reports Bad quality."""
    UNCERTAIN = "uncertain"
    """Keeps the value, reports Uncertain quality."""


class ActuatorFault(Enum):
    """How an actuator fails."""

    STUCK = "stuck"
    """The MV stays where it is whatever is written."""


class CommFault(Enum):
    """How the plant link fails."""

    LINK_LOSS = "link_loss"
    """No reads or writes reach the plant; the plant keeps running."""
    PLC_STOP = "plc_stop"
    """The PLC stops for ``duration_s``: over OPC UA its HIL server goes down (sockets
    closed, endpoint gone) and comes back on the same endpoint; in-process the link is lost.
    The plant keeps running on the last actuator values."""


class TransportKind(Enum):
    """How the loop reaches the simulated plant."""

    INPROCESS = "inprocess"
    """In-process lockstep simulation (default; deterministic, fastest)."""
    OPCUA = "opcua"
    """OPC UA client against the HIL server on loopback, lockstep."""


class EstimatorKind(Enum):
    """Which state estimator runs in the loop."""

    EKF = "ekf"
    """Extended Kalman filter."""
    MHE = "mhe"
    """Moving-horizon estimator."""


class Comparator(Enum):
    """How a KPI is compared with a criterion's threshold."""

    LE = "<="
    LT = "<"
    GE = ">="
    GT = ">"

    def holds(self, value: float, threshold: float) -> bool:
        """True when ``value <op> threshold`` (NaN never passes)."""
        if math.isnan(value):
            return False
        return {
            Comparator.LE: value <= threshold,
            Comparator.LT: value < threshold,
            Comparator.GE: value >= threshold,
            Comparator.GT: value > threshold,
        }[self]


@dataclass(frozen=True)
class PlantSpec:
    """The simulated (true) plant."""

    name: str
    """Registry name (``plant_models.library``) or ``path/to/module.py:function``."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the plant's builder."""
    x0: Mapping[str, float] = field(default_factory=dict)
    """Initial state by name, SI (default: nominal)."""
    u0: Mapping[str, float] = field(default_factory=dict)
    """Initial MV values by name, SI (default: nominal)."""
    d: Mapping[str, float] = field(default_factory=dict)
    """Initial measured disturbances by name, SI (default: nominal)."""
    p: Mapping[str, float] = field(default_factory=dict)
    """True plant parameters by name (default: nominal); differences to the model are mismatch."""
    integrator: str = "cvodes"
    """Integrator of the simulated plant (``plant_models.simulation.Integrator`` value)."""
    noise_std: Mapping[str, float] = field(default_factory=dict)
    """Gaussian measurement noise std by measured signal (y or d), SI (default none)."""
    seed: int = 0
    """Seed of the measurement noise (same seed, same noise)."""


@dataclass(frozen=True)
class ModelSpec:
    """The controller's and estimator's model (default: the plant with nominal parameters)."""

    name: str
    """Registry name or ``path/to/module.py:function``."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the model's builder."""
    p: Mapping[str, float] = field(default_factory=dict)
    """Model parameter values replacing the nominal ones."""


@dataclass(frozen=True)
class LoopSpec:
    """Runtime settings of the closed loop."""

    sample_time_s: float
    """Control period, seconds (equals the MPC and estimator sample time)."""
    mode: Mode = Mode.ON
    """Initial runtime mode."""
    fallback: FallbackPolicy = FallbackPolicy.SHIFTED_PLAN
    """Fallback policy when a controller step is not usable."""
    max_fallback_cycles: int = 20
    """Consecutive fallback cycles after which the loop stops writing."""
    mv_in_service: tuple[str, ...] | None = None
    """MVs the loop may write (None: all)."""


@dataclass(frozen=True)
class EstimatorSpec:
    """State estimator of the loop."""

    kind: EstimatorKind
    """EKF or MHE."""
    config: EstimatorConfig
    """Estimator settings (measured outputs, disturbance model, noise)."""
    x0: Mapping[str, float] = field(default_factory=dict)
    """Initial state guess by name (default: the model's nominal state)."""
    mhe_horizon_steps: int = 10
    """Window length of the MHE (ignored by the EKF)."""


@dataclass(frozen=True)
class EconomicsSpec:
    """Prices and limits used by the RTO layer and by the profit KPI."""

    prices: Mapping[str, float]
    """Price per stream (u, d or y signal), $ per SI unit per second of operation."""
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Operating limits by signal name, SI."""
    decisions: tuple[str, ...] | None = None
    """Free inputs of the economic optimisation (None: all MVs)."""


@dataclass(frozen=True)
class RtoSpec:
    """Optional real-time optimisation layer handing targets to the MPC."""

    every_s: float
    """Interval between RTO runs, seconds (rounded to whole control periods)."""
    handoff_cvs: tuple[str, ...] = ()
    """Outputs passed to the MPC as CV targets."""
    handoff_mvs: tuple[str, ...] | None = None
    """Inputs passed to the MPC as MV targets (None: all)."""
    filter_gain: float = 1.0
    """First-order filter gain of the hand-off, (0, 1]."""
    max_rate: Mapping[str, float] = field(default_factory=dict)
    """Rate limits of the hand-off per signal, SI per second."""
    steady_window_s: float = 0.0
    """Gate: optimise only when the measured CVs of the last ``steady_window_s`` seconds pass
    the R-statistic steady-state test (0: no gate)."""
    steady_signals: tuple[str, ...] = ()
    """Measured outputs the steady-state gate tests (default: the hand-off CVs)."""


@dataclass(frozen=True)
class TransportSpec:
    """How the loop reaches the plant."""

    kind: TransportKind = TransportKind.INPROCESS
    """In-process lockstep or OPC UA against the HIL server."""


@dataclass(frozen=True)
class Event:
    """One timed change during the run."""

    index: int
    """Position in the file (for messages: ``event[index]``)."""
    t_s: float
    """Plant time of the event, seconds from the start."""
    kind: EventKind
    """What happens."""
    signal: str = ""
    """Signal the event acts on (empty for link and mode events)."""
    value: float = math.nan
    """New value / ramp end value / fault value, SI (NaN where unused)."""
    duration_s: float = 0.0
    """Ramp length or fault duration (0: a step, or a fault until the end)."""
    fault: str = ""
    """Fault type (value of SensorFault, ActuatorFault or CommFault)."""
    magnitude: float = 0.0
    """Bias (SI), drift rate (SI/s) or reported value (SI) of a sensor fault."""
    mode: Mode | None = None
    """New runtime mode for MODE events."""

    def describe(self) -> str:
        """One line for logs and reports."""
        parts = [f"t={self.t_s:g}s {self.kind.value}"]
        if self.signal:
            parts.append(self.signal)
        if self.fault:
            parts.append(self.fault)
        if not math.isnan(self.value):
            parts.append(f"-> {self.value:g}")
        if self.magnitude:
            parts.append(f"magnitude {self.magnitude:g}")
        if self.duration_s:
            parts.append(f"for {self.duration_s:g}s")
        if self.mode is not None:
            parts.append(self.mode.value)
        return " ".join(parts)


@dataclass(frozen=True)
class Criterion:
    """An acceptance criterion: ``kpi <op> threshold``."""

    index: int
    """Position in the file (for messages: ``criterion[index]``)."""
    kpi: str
    """KPI name, e.g. ``iae.c_b``, ``service_factor``, ``solve_ms_p95``."""
    op: Comparator
    """Comparison."""
    threshold: float
    """Threshold in the KPI's unit."""

    def describe(self) -> str:
        """``kpi <op> threshold``."""
        return f"{self.kpi} {self.op.value} {self.threshold:g}"


@dataclass(frozen=True)
class KpiSpec:
    """Settings of the KPI computation."""

    settling_band: Mapping[str, float] = field(default_factory=dict)
    """Absolute settling band per CV, SI (default: ``settling_rel`` of the last step)."""
    settling_rel: float = 0.05
    """Settling band as a fraction of the last setpoint step (or of the CV's nominal)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """One closed-loop scenario."""

    path: Path
    """File the scenario came from."""
    name: str
    """Scenario name (default: the file stem)."""
    description: str
    """What the scenario exercises."""
    tags: tuple[str, ...]
    """Free labels (``fast`` marks the CI subset)."""
    duration_s: float
    """Plant time to simulate, seconds."""
    plant: PlantSpec
    """Simulated plant."""
    model: ModelSpec
    """Controller/estimator model."""
    loop: LoopSpec
    """Runtime settings."""
    mpc: MpcConfig
    """Controller configuration."""
    mpc_solver: str
    """``rti`` or ``ipopt`` (``mpc.controller.SolverKind`` value)."""
    estimator: EstimatorSpec
    """State estimator."""
    economics: EconomicsSpec | None
    """Prices and limits (profit KPI; RTO objective), if any."""
    rto: RtoSpec | None
    """RTO layer, if any."""
    transport: TransportSpec
    """How the plant is reached."""
    events: tuple[Event, ...]
    """Timed events, in time order."""
    criteria: tuple[Criterion, ...]
    """Acceptance criteria; the scenario passes when all hold."""
    kpi: KpiSpec = field(default_factory=KpiSpec)
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    """Sensor and actuator supervision (``[supervision]``; every check on by default)."""
    config: Any = None
    """The :class:`rtompc.config.ScenarioConfig` this spec was built from (None for a spec
    made in code); the runner builds the RTO layer from it (``[rto] method`` and ``model``)."""
    """KPI settings."""

    @property
    def n_cycles(self) -> int:
        """Number of control cycles of the run."""
        return max(1, int(round(self.duration_s / self.loop.sample_time_s)))
