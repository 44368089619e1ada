"""Supervision settings: which sensor and actuator checks run, per signal, with defaults on.

Owns the frozen settings of :mod:`rtompc.supervision` (the ``[supervision]``
section of an application config) and :func:`with_sensor_checks`, which turns
the per-measurement switches into the estimator's
:class:`~mpc.estimation.ValidationConfig` and
:class:`~mpc.estimation.InnovationConfig`. Every check is on by default; a
default threshold that depends on the plant is taken from the signal's bounds
and the sample time, as documented on each field. Values are SI.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mpc.estimation import EstimatorConfig, InnovationConfig, ValidationConfig
from plant_models.errors import ConfigError
from plant_models.model import PlantModel

DEFAULT_STALE_SAMPLES = 10
"""Default staleness limit: a source timestamp older than this many sample times."""
DEFAULT_RATE_SAMPLES = 2
"""Default rate-of-change limit: the signal's full span (upper - lower bound) in this many
sample times (a gross-error check; set ``max_rate_per_s`` for a tight one)."""
DEFAULT_DEADBAND_FRACTION = 0.01
"""Default actuator deadband: this fraction of the MV's span (upper - lower bound)."""


def _opt_pos(value: float | None, label: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label}: expected a number or None, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{label}: expected a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MeasurementChecks:
    """Checks applied to one measured output before it may correct the estimate."""

    range: bool = True
    """Reject values outside ``[lower, upper]``."""
    lower: float | None = None
    """Lower validity limit, SI (None: the signal's lower bound)."""
    upper: float | None = None
    """Upper validity limit, SI (None: the signal's upper bound)."""
    bad_status: bool = True
    """Reject values whose OPC UA status is Bad (or Uncertain, unless accepted)."""
    frozen: bool = True
    """Reject a value that has not changed by more than ``frozen_tolerance`` over more than
    :attr:`SensorSupervision.frozen_samples` samples."""
    frozen_tolerance: float = 0.0
    """Change (SI) at or below which the value counts as unchanged (0: bit-identical)."""
    stale: bool = True
    """Reject a value whose source timestamp is older than ``max_age_s``."""
    max_age_s: float | None = None
    """Staleness limit, seconds (None: ``DEFAULT_STALE_SAMPLES`` sample times)."""
    rate: bool = True
    """Reject a value further from the last good value than ``max_rate_per_s`` allows."""
    max_rate_per_s: float | None = None
    """Rate-of-change limit, SI per second (None: the signal's span in ``DEFAULT_RATE_SAMPLES``
    sample times; no check when the signal is unbounded)."""
    innovation: bool | None = None
    """Run the innovation monitor (CUSUM and NIS on measurement minus prediction, in units of
    the declared measurement noise). None (default): on when the estimator's
    ``measurement_std`` names this output, off otherwise; the built-in default noise (1 % of
    the nominal value) is a scaling guess, so statistics in its units would flag any model
    mismatch as a sensor fault."""
    bias_limit: float | None = None
    """Largest credible estimated output disturbance on this output, SI (None: unbounded);
    catches a slow drift that an offset-free disturbance model would absorb."""

    def __post_init__(self) -> None:
        if self.innovation is not None and not isinstance(self.innovation, bool):
            raise ConfigError(
                f"supervision.measurement.innovation: expected true, false or unset, "
                f"got {self.innovation!r}"
            )
        for name in ("range", "bad_status", "frozen", "stale", "rate"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"supervision.measurement.{name}: expected true or false, "
                    f"got {getattr(self, name)!r}"
                )
        for name in ("max_age_s", "max_rate_per_s", "bias_limit"):
            object.__setattr__(
                self, name, _opt_pos(getattr(self, name), f"supervision.measurement.{name}")
            )
        tol = self.frozen_tolerance
        if (
            isinstance(tol, bool)
            or not isinstance(tol, int | float)
            or not (math.isfinite(tol) and tol >= 0)
        ):
            raise ConfigError(
                f"supervision.measurement.frozen_tolerance: expected a number >= 0, got {tol!r}"
            )
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v)):
                raise ConfigError(f"supervision.measurement.{name}: expected a number, got {v!r}")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ConfigError(
                f"supervision.measurement: lower {self.lower} is above upper {self.upper}"
            )


@dataclass(frozen=True)
class SensorSupervision:
    """Sensor checks for every measured output: defaults plus per-signal overrides."""

    enabled: bool = True
    """Master switch (False: no checks beyond rejecting Bad values)."""
    default: MeasurementChecks = field(default_factory=MeasurementChecks)
    """Checks of a measurement without its own entry."""
    signals: Mapping[str, MeasurementChecks] = field(default_factory=dict)
    """Per-measurement checks by output name (replace ``default`` for that signal)."""
    accept_uncertain: bool = False
    """Use values of Uncertain OPC UA quality."""
    frozen_samples: int = 10
    """A value unchanged over more than this many consecutive samples is frozen."""
    innovation: InnovationConfig = field(default_factory=InnovationConfig)
    """Thresholds of the innovation monitor (its ``signals`` and ``bias_limits`` are filled
    from the per-measurement switches)."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(
                f"supervision.sensors.enabled: expected true/false, got {self.enabled!r}"
            )
        if (
            isinstance(self.frozen_samples, bool)
            or not isinstance(self.frozen_samples, int)
            or (self.frozen_samples < 1)
        ):
            raise ConfigError(
                f"supervision.sensors.frozen_samples: expected an integer >= 1, "
                f"got {self.frozen_samples!r}"
            )
        object.__setattr__(self, "signals", dict(self.signals))

    def checks(self, name: str) -> MeasurementChecks:
        """The checks of measurement ``name``."""
        return self.signals.get(name, self.default)


@dataclass(frozen=True)
class ActuatorCheck:
    """Expected response of one actuator and when a disagreement makes it faulty."""

    enabled: bool = True
    """Supervise this MV when the plant I/O has actuator feedback for it."""
    time_constant_s: float = 0.0
    """First-order lag of the actuator (position follows setpoint), seconds; 0: follows
    within one sample."""
    deadband: float | None = None
    """Largest |position - expected position| that is still agreement, SI (None:
    ``DEFAULT_DEADBAND_FRACTION`` of the MV's span)."""
    detect_samples: int = 3
    """Consecutive samples of disagreement before the MV is declared stuck or saturated."""
    take_out_of_service: bool = True
    """Take a stuck MV out of service (held at its position, re-planned without it) and
    restrict a saturated MV's bound at its position."""
    retry_after_s: float = 0.0
    """Return a faulty MV to service on trial after this long (plant time), doubling after
    each failed trial; 0: only the operator returns it
    (:meth:`rtompc.runtime.ControlLoop.return_to_service`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(
                f"supervision.actuator.enabled: expected true/false, got {self.enabled!r}"
            )
        tau = self.time_constant_s
        if (
            isinstance(tau, bool)
            or not isinstance(tau, int | float)
            or not (math.isfinite(tau) and tau >= 0)
        ):
            raise ConfigError(
                f"supervision.actuator.time_constant_s: expected a number >= 0, got {tau!r}"
            )
        object.__setattr__(
            self, "deadband", _opt_pos(self.deadband, "supervision.actuator.deadband")
        )
        if (
            isinstance(self.detect_samples, bool)
            or not isinstance(self.detect_samples, int)
            or (self.detect_samples < 1)
        ):
            raise ConfigError(
                f"supervision.actuator.detect_samples: expected an integer >= 1, "
                f"got {self.detect_samples!r}"
            )
        r = self.retry_after_s
        if (
            isinstance(r, bool)
            or not isinstance(r, int | float)
            or not (math.isfinite(r) and r >= 0)
        ):
            raise ConfigError(
                f"supervision.actuator.retry_after_s: expected a number >= 0, got {r!r}"
            )


@dataclass(frozen=True)
class ActuatorSupervision:
    """Actuator checks for every MV with feedback: defaults plus per-MV overrides."""

    enabled: bool = True
    """Master switch."""
    default: ActuatorCheck = field(default_factory=ActuatorCheck)
    """Check of an MV without its own entry."""
    mvs: Mapping[str, ActuatorCheck] = field(default_factory=dict)
    """Per-MV checks by name (replace ``default`` for that MV)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mvs", dict(self.mvs))

    def check(self, name: str) -> ActuatorCheck:
        """The check of MV ``name``."""
        return self.mvs.get(name, self.default)


@dataclass(frozen=True)
class SupervisionSettings:
    """Sensor and actuator supervision of one unit (the ``[supervision]`` section)."""

    sensors: SensorSupervision = field(default_factory=SensorSupervision)
    """Measurement checks and the innovation monitor."""
    actuators: ActuatorSupervision = field(default_factory=ActuatorSupervision)
    """Actuator feedback checks."""


def with_sensor_checks(
    config: EstimatorConfig, model: PlantModel, sensors: SensorSupervision | None = None
) -> EstimatorConfig:
    """``config`` with its validation and innovation monitor set from ``sensors``.

    Unknown measurement names raise :class:`ConfigError` naming the known ones.
    """
    sensors = sensors if sensors is not None else SensorSupervision()
    unknown = sorted(set(sensors.signals) - set(config.measured))
    if unknown:
        raise ConfigError(
            f"supervision.sensors.signals: {', '.join(unknown)} not measured by the estimator; "
            f"measured: {', '.join(config.measured)}"
        )
    if not sensors.enabled:
        return dataclasses.replace(
            config, validation=ValidationConfig(), innovation=InnovationConfig()
        )
    dt = config.sample_time_s
    limits: dict[str, tuple[float, float]] = {}
    ages: dict[str, float] = {}
    rates: dict[str, float] = {}
    bias: dict[str, float] = {}
    frozen_exempt, stale_exempt, quality_exempt, monitored = [], [], [], []
    tolerances: dict[str, float] = {}
    for name in config.measured:
        c = sensors.checks(name)
        sig = model.y[name]
        if c.range:
            lo = c.lower if c.lower is not None else sig.lower
            hi = c.upper if c.upper is not None else sig.upper
            limits[name] = (lo, hi)
        if c.frozen:
            tolerances[name] = c.frozen_tolerance
        else:
            frozen_exempt.append(name)
        if c.stale:
            ages[name] = c.max_age_s if c.max_age_s is not None else DEFAULT_STALE_SAMPLES * dt
        else:
            stale_exempt.append(name)
        if c.rate:
            span = sig.upper - sig.lower
            rate = c.max_rate_per_s
            if rate is None and math.isfinite(span) and span > 0:
                rate = span / (DEFAULT_RATE_SAMPLES * dt)
            if rate is not None:
                rates[name] = rate
        if not c.bad_status:
            quality_exempt.append(name)
        if c.innovation or (c.innovation is None and name in config.measurement_std):
            monitored.append(name)
        if c.bias_limit is not None:
            bias[name] = c.bias_limit
    validation = ValidationConfig(
        limits=limits,
        accept_uncertain=sensors.accept_uncertain,
        max_age_s=None,
        frozen_samples=sensors.frozen_samples,
        frozen_tolerances=tolerances,
        frozen_exempt=tuple(frozen_exempt),
        max_ages_s=ages,
        stale_exempt=tuple(stale_exempt),
        max_rate_per_s=rates,
        quality_exempt=tuple(quality_exempt),
    )
    innovation = dataclasses.replace(sensors.innovation, signals=tuple(monitored), bias_limits=bias)
    return dataclasses.replace(config, validation=validation, innovation=innovation)
