"""Typed estimator settings and their resolution against a plant model.

Owns :class:`EstimatorConfig` (shared by the EKF and the MHE: sample time,
measured outputs, disturbance model, noise levels by signal name, validation,
discretisation), :class:`MheConfig` (horizon, state bounds, IPOPT limits) and
:func:`resolve_tuning`, which turns the named settings into the vectors the
estimators use and raises :class:`ConfigError` naming the field and signal when
a name or number is wrong. Standard deviations are in SI units of the signal;
process noise is per sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mpc.estimation.augmented import AugmentedModel, Discretization, DisturbanceModel
from mpc.estimation.innovation import InnovationConfig
from mpc.estimation.validation import ValidationConfig
from plant_models.errors import ConfigError

DEFAULT_MEASUREMENT_REL_STD = 1e-2
"""Default measurement noise std as a fraction of the output's nominal value."""
DEFAULT_PROCESS_REL_STD = 1e-3
"""Default per-sample process noise std of a state, fraction of its nominal value."""
DEFAULT_DISTURBANCE_REL_STD = 1e-2
"""Default per-sample random-walk std of a disturbance state, fraction of the nominal of the
output or MV it acts on."""
DEFAULT_INITIAL_REL_STD = 0.2
"""Default initial std of a state or disturbance, fraction of its nominal value."""


def _positive(value: object, label: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{label}: expected a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{label}: expected a finite number > 0, got {value!r}")
    return v


@dataclass(frozen=True)
class EstimatorConfig:
    """Settings common to the extended Kalman filter and the moving-horizon estimator."""

    sample_time_s: float
    """Time between updates, seconds (the model is discretised over it)."""
    measured: tuple[str, ...]
    """Outputs (names in the model's ``y``) the estimator uses when they pass validation."""
    disturbances: DisturbanceModel = field(default_factory=DisturbanceModel)
    """Integrating output/input disturbances for offset-free estimation."""
    measurement_std: Mapping[str, float] = field(default_factory=dict)
    """Measurement noise std per measured output, SI (default 1 % of the output's nominal)."""
    process_std: Mapping[str, float] = field(default_factory=dict)
    """Per-sample process noise std by augmented-state name: state names, ``dy_<output>``,
    ``du_<mv>`` (defaults: 0.1 % of nominal for states, 1 % for disturbances)."""
    initial_std: Mapping[str, float] = field(default_factory=dict)
    """Initial estimate std by augmented-state name (default 20 % of nominal)."""
    discretization: Discretization = Discretization.RK4
    """How a continuous model is discretised over the sample time."""
    substeps: int = 4
    """RK4 steps per sample (``Discretization.RK4`` only)."""
    clip_to_bounds: bool = True
    """EKF: project the state estimate onto the state bounds after each update."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    """Measurement checks applied before each update."""
    innovation: InnovationConfig = field(default_factory=InnovationConfig)
    """Innovation monitor (CUSUM / NIS on measurement minus prediction) applied to the validated
    measurements before each correction; flagged ones are left out (default: off)."""
    require_detectable: bool = True
    """Raise :class:`ModelError` at construction when the disturbance model is not detectable."""

    def __post_init__(self) -> None:
        _positive(self.sample_time_s, "EstimatorConfig.sample_time_s")
        object.__setattr__(self, "sample_time_s", float(self.sample_time_s))
        measured = (self.measured,) if isinstance(self.measured, str) else tuple(self.measured)
        if not measured:
            raise ConfigError("EstimatorConfig.measured: expected at least one output name")
        if len(set(measured)) != len(measured):
            raise ConfigError(f"EstimatorConfig.measured: duplicate names in {measured}")
        object.__setattr__(self, "measured", measured)
        if not isinstance(self.disturbances, DisturbanceModel):
            raise ConfigError("EstimatorConfig.disturbances: expected a DisturbanceModel")
        if not isinstance(self.discretization, Discretization):
            try:
                object.__setattr__(self, "discretization", Discretization(self.discretization))
            except ValueError:
                raise ConfigError(
                    f"EstimatorConfig.discretization: expected one of "
                    f"{[m.value for m in Discretization]}, got {self.discretization!r}"
                ) from None
        if (
            isinstance(self.substeps, bool)
            or not isinstance(self.substeps, int)
            or self.substeps < 1
        ):
            raise ConfigError(
                f"EstimatorConfig.substeps: expected an integer >= 1, got {self.substeps!r}"
            )
        for fname in ("measurement_std", "process_std", "initial_std"):
            values = {
                str(k): _positive(v, f"EstimatorConfig.{fname}[{k!r}]")
                for k, v in dict(getattr(self, fname)).items()
            }
            object.__setattr__(self, fname, values)
        if not isinstance(self.validation, ValidationConfig):
            raise ConfigError("EstimatorConfig.validation: expected a ValidationConfig")
        if not isinstance(self.innovation, InnovationConfig):
            raise ConfigError("EstimatorConfig.innovation: expected an InnovationConfig")
        for name in (*self.innovation.signals, *self.innovation.bias_limits):
            if name not in measured:
                raise ConfigError(
                    f"EstimatorConfig.innovation: {name!r} is not a measured output; "
                    f"measured: {', '.join(measured)}"
                )


@dataclass(frozen=True)
class MheConfig:
    """Settings specific to the moving-horizon estimator."""

    horizon_steps: int = 10
    """Number of past samples (measurements) in the window."""
    state_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Bounds by augmented-state name, SI, overriding the model's state bounds."""
    use_signal_bounds: bool = True
    """Bound the states by their signal bounds (lower/upper of the model's ``x``)."""
    max_iter: int = 100
    """IPOPT iteration limit per update."""
    tol: float = 1e-6
    """IPOPT tolerance (on the scaled problem)."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.horizon_steps, bool)
            or not isinstance(self.horizon_steps, int)
            or self.horizon_steps < 1
        ):
            raise ConfigError(
                f"MheConfig.horizon_steps: expected an integer >= 1, got {self.horizon_steps!r}"
            )
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 1
        ):
            raise ConfigError(
                f"MheConfig.max_iter: expected an integer >= 1, got {self.max_iter!r}"
            )
        _positive(self.tol, "MheConfig.tol")
        bounds = {}
        for name, pair in dict(self.state_bounds).items():
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"MheConfig.state_bounds[{name!r}]: expected (lower, upper), got {pair!r}"
                ) from None
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ConfigError(
                    f"MheConfig.state_bounds[{name!r}]: expected lower <= upper, got ({lo}, {hi})"
                )
            bounds[str(name)] = (lo, hi)
        object.__setattr__(self, "state_bounds", bounds)


@dataclass(frozen=True)
class Tuning:
    """Resolved vectors of an :class:`EstimatorConfig` for one augmented model."""

    measured_index: NDArray[np.int64]
    """Positions of the measured outputs in ``y``."""
    r_std: NDArray[np.float64]
    """Measurement noise std, ordered like ``measured``."""
    q_std: NDArray[np.float64]
    """Process noise std per augmented state."""
    p0_std: NDArray[np.float64]
    """Initial std per augmented state."""
    scale: NDArray[np.float64]
    """Typical magnitude per augmented state (for scaling)."""


def resolve_tuning(aug: AugmentedModel, config: EstimatorConfig) -> Tuning:
    """Vectors of the config for ``aug``; unknown names raise :class:`ConfigError`."""
    model = aug.model
    for name in config.measured:
        if name not in model.y:
            raise ConfigError(
                f"EstimatorConfig.measured: {name!r} is not an output of {model.name!r}; "
                f"known: {', '.join(model.y.names)}"
            )
    for name in config.measurement_std:
        if name not in config.measured:
            raise ConfigError(
                f"EstimatorConfig.measurement_std: {name!r} is not a measured output; "
                f"measured: {', '.join(config.measured)}"
            )
    names = aug.names
    dist = aug.disturbances
    scale = np.concatenate(
        [
            model.x.nominal,
            model.y.nominal[model.y.indices(dist.outputs)],
            model.u.nominal[model.u.indices(dist.inputs)],
        ]
    )
    nx = aug.nx
    q_default = np.concatenate(
        [DEFAULT_PROCESS_REL_STD * scale[:nx], DEFAULT_DISTURBANCE_REL_STD * scale[nx:]]
    )
    p0_default = DEFAULT_INITIAL_REL_STD * scale
    vectors = {}
    for fname, default in (("process_std", q_default), ("initial_std", p0_default)):
        vec = default.copy()
        for name, value in getattr(config, fname).items():
            if name not in names:
                raise ConfigError(
                    f"EstimatorConfig.{fname}: {name!r} is not an estimator state; "
                    f"known: {', '.join(names)}"
                )
            vec[names.index(name)] = value
        vectors[fname] = vec
    idx = np.asarray(model.y.indices(config.measured), dtype=np.int64)
    r_std = np.array(
        [
            config.measurement_std.get(n, DEFAULT_MEASUREMENT_REL_STD * model.y[n].nominal)
            for n in config.measured
        ]
    )
    return Tuning(
        measured_index=idx,
        r_std=r_std,
        q_std=vectors["process_std"],
        p0_std=vectors["initial_std"],
        scale=scale,
    )
