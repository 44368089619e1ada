"""The typed configuration model: one pydantic section per TOML table, shared by every command.

``rtompc run``, ``rtompc simulate``, scenario files, campaigns and ``rtompc
demo`` read these same sections (a scenario adds its own tables, see
:mod:`rtompc.config.scenario`). Every section forbids unknown keys, is frozen
and documents each key (the docstring under a field is its description in the
JSON Schema, ``AppConfig.model_json_schema()``).

Units: a number is in the SI unit of its signal (or the unit in the key name,
``sample_time_s``) unless it is written as a string with a unit,
``target = "1.09 mol/l"``, ``upper = "126.85 degC"``, ``max_rate_per_s = "5 kW/min"``.

Weights and penalties are dimensionless. A deviation is first divided by the
signal's *nominal* value (its scaling, ``rtompc plants NAME`` shows it), then
squared and multiplied by the weight, at every stage of the horizon:
``weight * ((y - target) / nominal)**2``; a move costs
``move_weight * ((u_k - u_(k-1)) / nominal)**2``; a soft-limit violation
``l1_penalty * (violation / nominal) + l2_penalty * (violation / nominal)**2``.
Example (Van de Vusse): c_B has nominal 1000 mol/m³, so ``weight = 10`` makes
an error of 0.1 mol/l (a tenth of the nominal) cost 10 × 0.1² = 0.1 per stage;
f_dil has nominal 0.00556 1/s (20 1/h), so ``move_weight = 0.1`` makes a move
of 2 1/h (a tenth) cost 0.1 × 0.1² = 0.001: the controller moves f_dil freely
to remove c_B errors. To choose them, write down the error you would accept on
each CV and the move you would accept on each MV as fractions of the nominals,
and pick weights so that each of them costs about the same; raising a weight
a hundredfold makes that error about ten times smaller relative to the others.
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from mpc.config import Discretisation, QpSolver, Transcription
from mpc.estimation import Discretization
from mpc.fallback import FallbackPolicy
from plant_models.samples import Mode
from plant_models.simulation import Integrator
from rtompc.config.fields import (
    PositiveSeconds,
    Section,
    SignalDifference,
    SignalNumber,
    convert_fields,
    convert_signal_map,
)
from rtompc.config.paths import FilePath, resolve_model_name
from rtompc.config.transport import TransportConfig
from rtompc.historian.store import Durability

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
"""A signal or parameter name."""


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


class CvConfig(Section):
    """One controlled variable (a model output). It needs an objective: a ``weight`` with a
    ``target``, a ``zone`` with a ``zone_weight``, or soft limits with a penalty."""

    name: Name
    """Output signal name of the controller's model."""
    weight: float = Field(default=0.0, ge=0)
    """Tracking weight on ((y - target) / nominal)² per stage (nominal: the signal's scaling).
    Example: nominal 1000 mol/m³, weight 10: an error of 100 mol/m³ costs 10·0.1² = 0.1."""
    target: SignalNumber | None = None
    """Setpoint (SI or with unit, ``"1.09 mol/l"``); needed with ``weight > 0``; the RTO may
    replace it."""
    lower: SignalNumber = -math.inf
    """Soft lower limit (violations cost ``l1_penalty``/``l2_penalty``)."""
    upper: SignalNumber = math.inf
    """Soft upper limit (``"126.85 degC"``)."""
    l1_penalty: float = Field(default=0.0, ge=0)
    """Linear (exact) penalty on the limit violation divided by the nominal, per stage. An exact
    penalty holds the limit whenever possible if it exceeds the largest multiplier; 100-1000
    is typical."""
    l2_penalty: float = Field(default=0.0, ge=0)
    """Quadratic penalty on (violation / nominal)² per stage; give both sides a small one."""
    zone: tuple[SignalNumber, SignalNumber] | None = None
    """Zone control: no cost inside [low, high], ``zone_weight`` outside."""
    zone_weight: float = Field(default=0.0, ge=0)
    """Quadratic penalty on (distance outside the zone / nominal)² per stage."""
    hard_lower: SignalNumber = -math.inf
    """Hard lower bound, held from the second predicted node on (the first node is soft with
    ``mpc.hard_bound_penalty`` so a disturbed start never makes the problem infeasible)."""
    hard_upper: SignalNumber = math.inf
    """Hard upper bound (see ``hard_lower``)."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the output, per stage (e.g. -1 to maximise it)."""
    terminal_linear_cost: float = 0.0
    """Economic cost per SI unit of the output at the end of the horizon."""
    cost_scale: Annotated[SignalDifference, Field(gt=0)] | None = None
    """The divisor of the tracking error instead of the nominal: the cost is
    weight · ((y - target) / cost_scale)². Example: ``cost_scale = "1 degC"`` with
    ``weight = 0.25`` charges 0.25 per K² whatever the nominal is."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict):
            return convert_fields(
                data,
                data.get("name"),
                info,
                {
                    "target": "value",
                    "lower": "value",
                    "upper": "value",
                    "zone": "pair",
                    "hard_lower": "value",
                    "hard_upper": "value",
                    "cost_scale": "difference",
                },
            )
        return data

    @model_validator(mode="after")
    def _objective(self) -> CvConfig:
        if self.weight > 0 and self.target is None:
            raise ValueError(f"CV {self.name!r} has weight > 0 but no target")
        if self.lower > self.upper:
            raise ValueError(
                f"CV {self.name!r}: lower {self.lower:g} is above upper {self.upper:g}"
            )
        limits = math.isfinite(self.lower) or math.isfinite(self.upper)
        if limits and self.l1_penalty == 0 and self.l2_penalty == 0:
            raise ValueError(f"CV {self.name!r} has soft limits but no l1_penalty/l2_penalty")
        if self.zone is not None:
            if self.zone[0] > self.zone[1]:
                raise ValueError(f"CV {self.name!r}: zone low above high {self.zone}")
            if self.zone_weight <= 0:
                raise ValueError(f"CV {self.name!r}: a zone needs zone_weight > 0")
        if self.hard_lower > self.hard_upper:
            raise ValueError(f"CV {self.name!r}: hard_lower is above hard_upper")
        hard = math.isfinite(self.hard_lower) or math.isfinite(self.hard_upper)
        economic = self.linear_cost != 0 or self.terminal_linear_cost != 0
        if not (self.weight > 0 or self.zone is not None or limits or hard or economic):
            raise ValueError(
                f"CV {self.name!r} has no objective: give weight and target, a zone with "
                "zone_weight, lower/upper limits with l1_penalty/l2_penalty, hard limits or a "
                "linear_cost (a CV without one makes every QP fail)"
            )
        return self


class MvConfig(Section):
    """One manipulated variable (a model input)."""

    name: Name
    """Input signal name of the controller's model."""
    weight: float = Field(default=0.0, ge=0)
    """Weight on ((u - target) / nominal)² per stage."""
    target: SignalNumber | None = None
    """Resting value (needed with ``weight > 0``)."""
    move_weight: float = Field(default=0.0, ge=0)
    """Move suppression: weight on ((u_k - u_(k-1)) / nominal)² per stage. Example: 0.1 lets
    the controller trade a 10 % move against a ~3 % CV error of weight 1."""
    lower: SignalNumber | None = None
    """Hard lower bound (default: the model's; must lie within the plant's)."""
    upper: SignalNumber | None = None
    """Hard upper bound (default: the model's; must lie within the plant's)."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the input, per stage (e.g. a feed price)."""
    cost_scale: Annotated[SignalDifference, Field(gt=0)] | None = None
    """The divisor of ``weight`` and ``move_weight`` deviations instead of the nominal."""
    max_rate_per_s: Annotated[SignalNumber, Field(gt=0)] | None = None
    """Hard rate limit |u_k - u_(k-1)| <= max_rate_per_s · sample time (SI per second, or
    with a unit: ``"5 kW/min"``)."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict):
            return convert_fields(
                data,
                data.get("name"),
                info,
                {
                    "target": "value",
                    "lower": "value",
                    "upper": "value",
                    "max_rate_per_s": "rate",
                    "cost_scale": "difference",
                },
            )
        return data

    @model_validator(mode="after")
    def _check(self) -> MvConfig:
        if self.weight > 0 and self.target is None:
            raise ValueError(f"MV {self.name!r} has weight > 0 but no target")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"MV {self.name!r}: lower {self.lower:g} above upper {self.upper:g}")
        return self


class SolverChoice(Enum):
    """NLP method of the controller."""

    RTI = "rti"
    """SQP real-time iterations on a Gauss-Newton QP (IPOPT for the first step and fallback)."""
    IPOPT = "ipopt"
    """Full NLP with IPOPT every step."""


def _tables_by_name(value: Any) -> Any:
    """``[mpc.cvs.c_b]`` tables (keyed by name) -> the ``[[mpc.cvs]]`` list form."""
    if isinstance(value, dict):
        return [{"name": k, **v} if isinstance(v, dict) else v for k, v in value.items()]
    return value


class MpcSection(Section):
    """``[mpc]``: the NMPC controller (everything :class:`mpc.config.MpcConfig` takes)."""

    horizon_steps: int = Field(ge=1)
    """Prediction horizon in samples."""
    sample_time_s: PositiveSeconds | None = None
    """Controller sample time (default: ``loop.sample_time_s``; the two must agree)."""
    solver: SolverChoice = SolverChoice.RTI
    """``rti`` (fast) or ``ipopt``."""
    qp_solver: QpSolver = QpSolver.AUTO
    """QP method of the RTI solver: ``auto``, ``hpipm`` or ``condensed_qpoases``."""
    discretisation: Discretisation = Discretisation.RK4
    """``rk4`` or ``collocation`` (Radau)."""
    rk4_substeps: int = Field(default=2, ge=1, le=1000)
    """RK4 substeps per sample."""
    collocation_degree: int = Field(default=2, ge=1, le=5)
    """Radau collocation degree."""
    control_horizon_steps: int | None = Field(default=None, ge=1)
    """Free moves; after it the MVs are held (default: all)."""
    move_blocks: list[Annotated[int, Field(ge=1)]] | None = None
    """Move blocking: block lengths summing to ``horizon_steps``."""
    terminal_weight: float = Field(default=1.0, ge=0)
    """Multiplier of the CV weights at the end of the horizon."""
    ipopt_max_iter: int = Field(default=200, ge=0, le=100000)
    """IPOPT iteration limit."""
    ipopt_tol: float = Field(default=1e-10, gt=0)
    """IPOPT tolerance."""
    rti_iterations: int = Field(default=1, ge=1, le=100)
    """SQP iterations per step (1 = real-time iteration)."""
    rti_step_tol: float = Field(default=1e-9, gt=0)
    """Extra SQP iterations stop below this scaled step."""
    qp_max_iter: int = Field(default=100, ge=1, le=10000)
    """QP iteration limit."""
    codegen: bool = False
    """Compile the QP data function to C (needs gcc)."""
    cvs: list[CvConfig] = []
    """Controlled variables (``[[mpc.cvs]]``), each with an objective."""
    mvs: list[MvConfig] = []
    """Manipulated variables (``[[mpc.mvs]]``); unlisted MVs keep model bounds and no cost."""
    robust: dict[Name, list[float]] | None = None
    """Robust multi-stage MPC: parameter name -> values of the scenario tree."""
    robust_probabilities: dict[Name, list[Annotated[float, Field(ge=0)]]] | None = None
    """Probability of each value in ``robust`` (per parameter, summing to 1; default uniform)."""
    robust_horizon: int = Field(default=1, ge=1, le=100)
    """Stages at which the scenario tree branches (do-mpc's n_robust)."""
    transcription: Transcription = Transcription.AUTO
    """``auto``, ``whole_horizon`` or ``stagewise`` (per-stage functions, HPIPM; needed for
    hard bounds, economic costs, robust horizon > 1)."""
    ipopt_fallback: bool = True
    """Build IPOPT for a failed RTI step; false: cold starts by iterated SQP."""
    first_sqp_iterations: int = Field(default=30, ge=1, le=1000)
    """SQP iteration limit of a cold start without IPOPT."""
    hard_bound_penalty: float = Field(default=1e4, gt=0)
    """L1 penalty on the scaled violation of a hard CV bound at the first predicted node."""

    @field_validator("cvs", "mvs", mode="before")
    @classmethod
    def _by_name(cls, v: Any) -> Any:
        return _tables_by_name(v)

    @model_validator(mode="after")
    def _check(self) -> MpcSection:
        for kind, items in (("cvs", self.cvs), ("mvs", self.mvs)):
            names = [c.name for c in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind}: {', '.join(dup)} listed twice")
        if self.move_blocks is not None and sum(self.move_blocks) != self.horizon_steps:
            raise ValueError(
                f"move_blocks sum to {sum(self.move_blocks)}, not horizon_steps "
                f"{self.horizon_steps}"
            )
        if self.robust_probabilities is not None:
            if self.robust is None or set(self.robust_probabilities) != set(self.robust):
                raise ValueError("robust_probabilities must name the parameters of robust")
            for k, ps in self.robust_probabilities.items():
                if len(ps) != len(self.robust[k]) or abs(sum(ps) - 1.0) > 1e-9:
                    raise ValueError(
                        f"robust_probabilities.{k}: {len(self.robust[k])} values summing to 1"
                    )
        if self.robust_horizon > self.horizon_steps:
            raise ValueError("robust_horizon exceeds horizon_steps")
        if self.control_horizon_steps is not None and self.move_blocks is not None:
            raise ValueError("give control_horizon_steps or move_blocks, not both")
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
    steady_window_s: Annotated[float, Field(ge=0)] = 0.0
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


class SupervisionSection(Section):
    """``[supervision]``: actuator and sensor supervision (keys come with issue 14)."""


class AppConfig(Section):
    """An application: what ``rtompc run`` reads; the base of a scenario file."""

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
    historian: HistorianSection | None = None
    """The historian (default: none)."""
    supervision: SupervisionSection | None = None
    """Actuator and sensor supervision."""
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this config was read from (None when built in memory)."""
        return self._source

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
