"""The typed configuration model: one pydantic section per TOML table, shared by every command.

``rtompc run``, ``rtompc simulate``, scenario files, campaigns and ``rtompc
demo`` read these same sections (a scenario adds its own tables, see
:mod:`rtompc.config.scenario`). Every section forbids unknown keys, is frozen
and documents each key (the docstring under a field is its description in the
JSON Schema, ``AppConfig.model_json_schema()``).

Units: a number is in the SI unit of its signal (or the unit in the key name,
``sample_time_s``) unless it is written as a string with a unit,
``target = "1.09 mol/l"``, ``upper = "126.85 degC"``, ``max_rate_per_s = "5 kW/min"``.

Weights and penalties: see :mod:`rtompc.config.mpc_section`.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from mpc.estimation import Discretization
from mpc.fallback import FallbackPolicy
from plant_models.samples import Mode
from plant_models.simulation import Integrator
from rtompc.config.console_section import ConsoleSection
from rtompc.config.engine_server_section import EngineServerSection
from rtompc.config.fields import (
    Name,
    PositiveSeconds,
    Seconds,
    Section,
    SignalDifference,
    SignalNumber,
    convert_signal_map,
)
from rtompc.config.mpc_section import MpcSection
from rtompc.config.paths import FilePath, resolve_model_name
from rtompc.config.supervision_section import SupervisionSection
from rtompc.config.transport import TransportConfig
from rtompc.handshake import RemotePolicy
from rtompc.historian.store import Durability
from rtompc.lifecycle import HandBack


class ModelRef(Section):
    """A plant model: a library name, ``path/to/module.py:function`` or an identified-model
    file, with builder parameters."""

    name: str = Field(min_length=1)
    """Registry name (``rtompc plants`` lists them: ``van_de_vusse``, ``williams_otto``, ...),
    ``path/to/module.py:function`` (relative to this file) or an identified-model ``.json``."""
    params: dict[str, Any] = {}
    """Keyword arguments of the model's builder (e.g. ``{ parameters = "klatt_engell" }``)."""
    p: dict[str, SignalNumber] = {}
    """Parameter values replacing the model's nominal ones, by parameter name (SI or with unit)."""

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any, info: ValidationInfo) -> Any:
        return resolve_model_name(v, info)

    @field_validator("p", mode="before")
    @classmethod
    def _p(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info)


class PlantConfig(ModelRef):
    """``[plant]``: the plant. Over OPC UA this is the model of the real plant (tags are
    checked against it); in-process and in scenarios it is also the simulated plant."""

    x0: dict[str, SignalNumber] = {}
    """Simulated plant: initial state by name (default: the nominal state)."""
    u0: dict[str, SignalNumber] = {}
    """Simulated plant: initial MVs by name (default: nominal)."""
    d: dict[str, SignalNumber] = {}
    """Simulated plant: measured disturbances by name (default: nominal)."""
    integrator: Integrator = Integrator.CVODES
    """Simulated plant: integrator."""
    noise_std: dict[str, Annotated[SignalDifference, Field(ge=0)]] = {}
    """Simulated plant: Gaussian measurement noise std by measured signal (y or d)."""
    seed: int = Field(default=0, ge=0)
    """Simulated plant: seed of the measurement noise (same seed, same noise)."""

    @field_validator("x0", "u0", "d", mode="before")
    @classmethod
    def _values(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info)

    @field_validator("noise_std", mode="before")
    @classmethod
    def _noise(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, difference=True)


class LoopConfig(Section):
    """``[loop]``: the closed-loop schedule."""

    sample_time_s: PositiveSeconds | None = None
    """Control period in plant seconds (default: ``mpc.sample_time_s``; the two must agree)."""
    mode: Mode | None = None
    """Start mode: ``off``, ``shadow`` (compute and log, write nothing) or ``on``. Default:
    ``shadow`` for ``rtompc run``, ``on`` for scenarios."""
    fallback: FallbackPolicy = FallbackPolicy.SHIFTED_PLAN
    """What to apply when a controller step is not usable."""
    max_fallback_cycles: int = Field(default=20, ge=0)
    """Consecutive fallback cycles after which the loop stops writing."""
    mv_in_service: list[Name] | None = None
    """MVs the loop may write (default: all)."""
    steps: int | None = Field(default=None, ge=0)
    """Cycles to run (``rtompc run``; default: until stopped)."""
    heartbeat: bool = True
    """Write the heartbeat counter each cycle (when the tag map has one)."""
    rto_every_n: int = Field(default=0, ge=0)
    """Run the ``[rto]`` stage every N cycles (0: take ``rto.every_n`` / ``rto.every_s``)."""
    remote_policy: RemotePolicy = RemotePolicy.AUTO
    """When to ask the plant for REMOTE again after it dropped to LOCAL (watchdog trip, key
    switch, PLC restart): ``auto`` (every ``remote_retry_cycles``, backing off) or
    ``operator`` (only on an operator's request: SIGUSR1 to ``rtompc run``)."""
    remote_retry_cycles: int = Field(default=5, ge=1)
    """Cycles between two REMOTE requests the plant refused; doubles after each refusal."""
    remote_retry_max_cycles: int = Field(default=60, ge=1)
    """Longest interval between REMOTE requests after backing off, cycles."""
    on_stop: HandBack = HandBack.LOCAL
    """How an ON run hands the plant back when it stops (signal or step count): ``local``
    (ask for LOCAL: the PLC holds its current values) or ``hold`` (write nothing more; the
    PLC's heartbeat watchdog takes over)."""
    max_write_failure_share: float = Field(default=0.1, ge=0.0, le=1.0)
    """Share of write attempts that may fail (refused, unverified) before ``rtompc run``
    exits with code 4."""

    @model_validator(mode="after")
    def _retry_backoff(self) -> LoopConfig:
        if self.remote_retry_max_cycles < self.remote_retry_cycles:
            raise ValueError(
                f"remote_retry_max_cycles ({self.remote_retry_max_cycles}) must be >= "
                f"remote_retry_cycles ({self.remote_retry_cycles})"
            )
        return self


class EstimatorKind(Enum):
    """Which state estimator runs in the loop."""

    EKF = "ekf"
    """Extended Kalman filter."""
    MHE = "mhe"
    """Moving-horizon estimator."""


class EstimatorSection(Section):
    """``[estimator]``: the state estimator (offset-free with disturbance states)."""

    kind: EstimatorKind = EstimatorKind.EKF
    """``ekf`` or ``mhe``."""
    measured: list[Name] = Field(min_length=1)
    """Measured outputs the estimator uses (outputs of both the plant and the model)."""
    output_disturbances: list[Name] = []
    """Outputs with an integrating disturbance state (offset-free control)."""
    input_disturbances: list[Name] = []
    """MVs with an integrating input disturbance state."""
    measurement_std: dict[str, Annotated[SignalDifference, Field(gt=0)]] = {}
    """Measurement noise std per measured output (default 1 % of nominal)."""
    process_std: dict[str, Annotated[SignalDifference, Field(gt=0)]] = {}
    """Process noise std per sample by augmented-state name: states, ``dy_<output>``,
    ``du_<mv>`` (defaults 0.1 % of nominal for states, 1 % for disturbances)."""
    initial_std: dict[str, Annotated[SignalDifference, Field(gt=0)]] = {}
    """Initial estimate std by augmented-state name (default 20 % of nominal)."""
    discretization: Discretization = Discretization.RK4
    """How a continuous model is discretised over the sample time."""
    substeps: int = Field(default=4, ge=1)
    """RK4 steps per sample."""
    clip_to_bounds: bool = True
    """EKF: project the estimate onto the state bounds."""
    require_detectable: bool = True
    """Refuse a disturbance model that is not detectable."""
    x0: dict[str, SignalNumber] = {}
    """Initial state guess by name (default: the model's nominal)."""
    mhe_horizon_steps: int = Field(default=10, ge=1)
    """MHE window length in samples."""

    @field_validator("measurement_std", "process_std", "initial_std", mode="before")
    @classmethod
    def _diff(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, difference=True)

    @field_validator("x0", mode="before")
    @classmethod
    def _x0(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info)


class EconomicsSection(Section):
    """``[economics]``: prices and limits of the RTO objective and of the profit KPI."""

    prices: dict[Name, float] = Field(min_length=1)
    """Price per stream (u, d or y signal) in $ per SI unit of the stream: profit rate
    = Σ price · value, $/s. A feed (cost) has a negative price."""
    limits: dict[Name, tuple[SignalNumber, SignalNumber]] = {}
    """Operating limits [lower, upper] by signal (u or y) for the RTO (``inf`` open)."""
    decisions: list[Name] | None = None
    """Free inputs of the economic optimisation (default: all MVs)."""

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, dict):
            return v
        from rtompc.config.fields import convert_signal

        return {
            k: [convert_signal(x, k, info) for x in pair] if isinstance(pair, list) else pair
            for k, pair in v.items()
        }

    @model_validator(mode="after")
    def _check(self) -> EconomicsSection:
        for k, (lo, hi) in self.limits.items():
            if lo > hi:
                raise ValueError(f"limits.{k}: lower {lo:g} is above upper {hi:g}")
        return self


class RtoMethodChoice(Enum):
    """How the RTO layer computes targets."""

    ECONOMIC = "economic"
    """Optimise the (controller or RTO) model at the measured disturbances each time."""
    TWO_STEP = "two_step"
    """Parameter estimation at each steady state, then optimisation (needs ``[rto.estimation]``)."""
    MODIFIER_ADAPTATION = "modifier_adaptation"
    """First-order modifier adaptation from plant data at steady states (reaches the plant
    optimum with a mismatched model)."""


class ModifierSection(Section):
    """``[rto.modifier]``: modifier adaptation."""

    gain: float = Field(default=0.7, gt=0, le=1)
    """Filter gain of the modifiers and inputs, (0, 1]."""
    step: dict[Name, SignalDifference] = {}
    """Probe step per MV for plant gradients (SI or with unit)."""
    max_condition: float = Field(default=100.0, gt=1)
    """Largest condition number of the past-point gradient system before probing."""
    min_spacing: float = Field(default=1e-3, gt=0)
    """Smallest scaled spacing of past points."""
    max_spacing: float = Field(default=0.05, gt=0)
    """Largest scaled spacing of past points."""

    @field_validator("step", mode="before")
    @classmethod
    def _step(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, difference=True)


class RtoEstimationSection(Section):
    """``[rto.estimation]``: the parameter estimation of two-step RTO."""

    parameters: list[Name] = Field(min_length=1)
    """Model parameters to estimate."""
    measured: list[Name] = Field(min_length=1)
    """Measured outputs fitted."""
    sigma: dict[Name, float] = {}
    """Measurement std per output (SI)."""


class RtoSection(Section):
    """``[rto]``: the real-time optimisation layer that sets the controller's targets."""

    method: RtoMethodChoice = RtoMethodChoice.ECONOMIC
    """``economic``, ``two_step`` or ``modifier_adaptation``."""
    model: ModelRef | None = None
    """RTO model when it differs from the controller's (e.g. ``williams_otto_2r``)."""
    every_n: int | None = Field(default=None, ge=1)
    """Run every N control cycles."""
    every_s: PositiveSeconds | None = None
    """Run every this many plant seconds (rounded to cycles); alternative to ``every_n``."""
    handoff_cvs: list[Name] = []
    """Outputs handed to the controller as CV targets."""
    handoff_mvs: list[Name] | None = None
    """Inputs handed over as MV targets (default: all)."""
    filter_gain: float = Field(default=1.0, gt=0, le=1)
    """First-order filter of the hand-off, (0, 1]."""
    max_rate: dict[Name, Annotated[SignalNumber, Field(gt=0)]] = {}
    """Ramp rate of the hand-off per signal (SI per second, or ``"1 degC/min"``)."""
    steady_window_s: Annotated[Seconds, Field(ge=0)] = 0.0
    """``economic``: optimise only when the last window passes the steady-state test (0: no
    gate)."""
    steady_signals: list[Name] = []
    """Signals tested for steady state (default: the hand-off CVs)."""
    window_samples: int = Field(default=20, ge=3)
    """``two_step``/``modifier_adaptation``: samples in the steady-state window."""
    average_samples: int = Field(default=5, ge=1)
    """Trailing samples averaged into the plant data."""
    steady_tolerance: dict[Name, Annotated[SignalDifference, Field(ge=0)]] = {}
    """Peak-to-peak change per signal that counts as steady whatever the R-statistic says."""
    max_spread: dict[Name, Annotated[SignalDifference, Field(ge=0)]] = {}
    """Largest peak-to-peak change per signal for a steady verdict."""
    modifier: ModifierSection = ModifierSection()
    """Modifier adaptation settings."""
    estimation: RtoEstimationSection | None = None
    """Two-step estimation settings."""

    @field_validator("max_rate", mode="before")
    @classmethod
    def _rate(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, rate=True)

    @field_validator("steady_tolerance", "max_spread", mode="before")
    @classmethod
    def _diff(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, difference=True)

    @model_validator(mode="after")
    def _check(self) -> RtoSection:
        if self.every_n is not None and self.every_s is not None:
            raise ValueError("give every_n or every_s, not both")
        if self.method is RtoMethodChoice.TWO_STEP and self.estimation is None:
            raise ValueError("method two_step needs an [rto.estimation] table")
        if self.average_samples > self.window_samples:
            raise ValueError("average_samples exceeds window_samples")
        return self


class HistorianSection(Section):
    """``[historian]``: the SQLite historian."""

    path: FilePath
    """SQLite file (relative to this config file); created with its directory. Many runs
    share one file (a runs table)."""
    durability: Durability = Durability.NORMAL
    """``NORMAL`` (survives a process kill) or ``FULL`` (fsync per cycle: survives power loss)."""
    retention_max_age_s: PositiveSeconds | None = None
    """Delete cycles older than this (wall clock; ``"30 d"`` works); default: keep all."""
    retention_max_size_bytes: int | None = Field(default=None, gt=0)
    """Keep the stored cycles under this many bytes, oldest deleted first."""
    retention_downsample_after_s: PositiveSeconds | None = None
    """Downsample cycles older than this."""
    retention_downsample_keep_every: int = Field(default=10, ge=2)
    """When downsampling, keep every n-th cycle."""
    retention_check_every_s: PositiveSeconds = 60.0
    """How often the retention rules are applied."""


UNIT_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
"""A unit name: snake_case (it names the unit in logs, the historian, OPC UA and the console)."""

UnitName = Annotated[str, Field(min_length=1, max_length=64, pattern=UNIT_NAME_PATTERN)]
"""The name of a unit of an application."""


class UnitTable(Section):
    """``[unit]`` of a single-unit config: the unit's name."""

    name: UnitName
    """The unit's name (snake_case; default: the config file's stem)."""


class UnitSections(Section):
    """The sections of one unit: plant, model, transport, loop, controller, estimator, RTO,
    supervision. A single-unit file has them at the top level; a multi-unit file has them in
    each ``[[unit]]`` table."""

    plant: PlantConfig
    """The plant model (and the simulated plant in-process)."""
    model: ModelRef | None = None
    """The controller's and estimator's model when it differs from the plant (default: the
    plant's model with nominal parameters)."""
    transport: TransportConfig = TransportConfig()
    """How the engine reaches the plant."""
    loop: LoopConfig = LoopConfig()
    """Schedule and mode."""
    mpc: MpcSection | None = None
    """The controller (required by ``rtompc run`` and scenarios)."""
    estimator: EstimatorSection | None = None
    """The state estimator (required by ``rtompc run`` and scenarios)."""
    economics: EconomicsSection | None = None
    """Prices and limits (RTO objective, profit KPI)."""
    rto: RtoSection | None = None
    """The RTO layer (needs ``[economics]``)."""
    supervision: SupervisionSection | None = None
    """Sensor and actuator supervision (every check on without the section)."""
    _source: Path | None = PrivateAttr(None)
    _loc: tuple[str | int, ...] = PrivateAttr(())

    @property
    def source(self) -> Path | None:
        """The file this config was read from (None when built in memory)."""
        return self._source

    @property
    def loc(self) -> tuple[str | int, ...]:
        """Key path of these sections in their file: ``()`` at the top level,
        ``("unit", i)`` for the i-th ``[[unit]]`` table (errors found when building name it)."""
        return self._loc

    @property
    def sample_time_s(self) -> float | None:
        """The control period: ``loop.sample_time_s``, else ``mpc.sample_time_s``."""
        if self.loop.sample_time_s is not None:
            return self.loop.sample_time_s
        return self.mpc.sample_time_s if self.mpc is not None else None

    @property
    def rto_every_n(self) -> int:
        """RTO period in cycles (0: no RTO)."""
        if self.rto is None:
            return 0
        if self.loop.rto_every_n:
            return self.loop.rto_every_n
        if self.rto.every_n is not None:
            return self.rto.every_n
        dt = self.sample_time_s
        if self.rto.every_s is not None and dt:
            return max(1, int(round(self.rto.every_s / dt)))
        return 1


class AppConfig(UnitSections):
    """An application: what ``rtompc run`` reads; the base of a scenario file. This is the
    single-unit layout; a file with ``[[unit]]`` tables is a multi-unit application
    (:class:`rtompc.config.site.SiteConfig`)."""

    unit: UnitTable | None = None
    """The unit's name (default: the config file's stem)."""
    historian: HistorianSection | None = None
    """The historian (default: none)."""
    console: ConsoleSection | None = None
    """The live web console (served by ``rtompc run`` when the section is present or
    ``--console HOST:PORT`` is given)."""
    engine_server: EngineServerSection | None = None
    """The engine's own OPC UA server (served by ``rtompc run`` when the section is present
    or ``--engine-server URL`` is given)."""

    def unit_name(self) -> str:
        """The unit's name: ``unit.name``, else the file stem made snake_case, else ``unit``."""
        if self.unit is not None:
            return self.unit.name
        return unit_name_from_stem(self.source)


def unit_name_from_stem(path: Path | None) -> str:
    """A snake_case unit name from a file name (``Reactor-1.toml`` -> ``reactor_1``)."""
    if path is None:
        return "unit"
    name = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = "unit_" + name if name else "unit"
    return name[:64]
