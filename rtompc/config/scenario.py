"""Scenario files: an application config plus ``[scenario]``, ``[kpi]``, ``[[event]]``,
``[[fault]]`` and ``[[criterion]]``.

A scenario runs the same sections as ``rtompc run`` (``[plant]`` is the
simulated plant, ``[model]`` the controller's model when it differs), with the
plant simulated in-process or served by the HIL on loopback
(``transport.kind = "opcua"``), lockstep. Events change setpoints, prices,
disturbances, parameters and modes at given plant times; faults corrupt
sensors, actuators and the link; criteria decide pass or fail from the KPIs.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from plant_models.samples import Mode
from rtompc.config.fields import (
    Name,
    PositiveSeconds,
    Seconds,
    Section,
    SignalDifference,
    SignalNumber,
    convert_signal,
    convert_signal_map,
)
from rtompc.config.model import AppConfig, EstimatorSection, MpcSection
from rtompc.scenarios.spec import Comparator, EventKind

_FAULT_KINDS = {
    "bias": EventKind.SENSOR_FAULT,
    "drift": EventKind.SENSOR_FAULT,
    "freeze": EventKind.SENSOR_FAULT,
    "value": EventKind.SENSOR_FAULT,
    "bad": EventKind.SENSOR_FAULT,
    "uncertain": EventKind.SENSOR_FAULT,
    "stuck": EventKind.ACTUATOR_FAULT,
    "link_loss": EventKind.COMM_FAULT,
    "plc_stop": EventKind.COMM_FAULT,
}
"""Fault type -> the event kind that carries it."""


class ScenarioMeta(Section):
    """``[scenario]``: what the scenario is."""

    name: str | None = None
    """Scenario name (default: the file stem)."""
    description: str = ""
    """What the scenario exercises."""
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = []
    """Labels (``fast`` marks the CI subset; ``pytest -m fast``)."""
    duration_s: PositiveSeconds
    """Plant time to simulate (``"2 h"`` works)."""


class KpiSection(Section):
    """``[kpi]``: settings of the KPI computation."""

    settling_band: dict[Name, Annotated[SignalDifference, Field(gt=0)]] = {}
    """Absolute settling band per CV (default: ``settling_rel`` of the last step)."""
    settling_rel: float = Field(default=0.05, gt=0)
    """Settling band as a fraction of the last setpoint step (or of the CV's nominal)."""

    @field_validator("settling_band", mode="before")
    @classmethod
    def _band(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, difference=True)


def _event_units(data: Any, info: ValidationInfo) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    signal = out.get("signal")
    kind = out.get("kind")
    if kind != "price" and "value" in out:
        out["value"] = convert_signal(out["value"], signal, info)
    if "magnitude" in out:
        fault = out.get("fault")
        if fault == "value":
            out["magnitude"] = convert_signal(out["magnitude"], signal, info)
        else:
            out["magnitude"] = convert_signal(
                out["magnitude"], signal, info, difference=True, rate=fault == "drift"
            )
    return out


class EventConfig(Section):
    """``[[event]]``: one timed change (setpoint, price, disturbance, parameter, fault, mode)."""

    t_s: Annotated[Seconds, Field(ge=0)]
    """Plant time of the event, seconds from the start."""
    kind: EventKind
    """``setpoint``, ``price``, ``disturbance_step``, ``disturbance_ramp``, ``parameter_drift``,
    ``sensor_fault``, ``actuator_fault``, ``comm_fault`` or ``mode``."""
    signal: str = ""
    """Signal the event acts on (none for link and mode events)."""
    value: SignalNumber = math.nan
    """New value / ramp end value (signal unit, or with a unit); a price for ``price``."""
    duration_s: Annotated[Seconds, Field(ge=0)] = 0.0
    """Ramp length or fault duration (0: a step, or a fault until the end)."""
    fault: str = ""
    """Fault type: bias, drift, freeze, value, bad, uncertain (sensor); stuck (actuator);
    link_loss (link), plc_stop (the PLC's server down and back)."""
    magnitude: float = 0.0
    """Bias (difference), drift rate (per second) or reported value of a sensor fault."""
    mode: Mode | None = None
    """New mode of a ``mode`` event: on, shadow, off."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        return _event_units(data, info)


class FaultConfig(Section):
    """``[[fault]]``: a sensor, actuator or link fault (the kind follows from ``fault``)."""

    t_s: Annotated[Seconds, Field(ge=0)]
    """Onset, plant seconds from the start."""
    fault: str
    """bias, drift, freeze, value, bad, uncertain (sensor); stuck (actuator); link_loss,
    plc_stop (link)."""
    signal: str = ""
    """Measured signal or MV (none for link_loss)."""
    magnitude: float = 0.0
    """Bias, drift rate per second or reported value."""
    duration_s: Annotated[Seconds, Field(ge=0)] = 0.0
    """How long (0: until the end)."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        return _event_units(data, info)

    @model_validator(mode="after")
    def _check(self) -> FaultConfig:
        if self.fault not in _FAULT_KINDS:
            raise ValueError(f"fault {self.fault!r}: expected one of {', '.join(_FAULT_KINDS)}")
        return self

    def as_event(self) -> EventConfig:
        """The same fault as an ``[[event]]``."""
        return EventConfig.model_construct(
            t_s=self.t_s,
            kind=_FAULT_KINDS[self.fault],
            signal=self.signal,
            value=math.nan,
            duration_s=self.duration_s,
            fault=self.fault,
            magnitude=self.magnitude,
            mode=None,
        )


class CriterionConfig(Section):
    """``[[criterion]]``: an acceptance criterion ``kpi op threshold``."""

    kpi: str = Field(min_length=1)
    """KPI name, e.g. ``iae.c_b``, ``service_factor``, ``profit_gap_pct``."""
    op: Comparator
    """``<=``, ``<``, ``>=`` or ``>``."""
    threshold: float
    """Threshold in the KPI's unit."""


class ScenarioConfig(AppConfig):
    """A scenario file: an application plus events, faults and criteria."""

    scenario: ScenarioMeta
    """Name, description, tags and duration."""
    mpc: MpcSection
    """The controller."""
    estimator: EstimatorSection
    """The state estimator."""
    kpi: KpiSection = KpiSection()
    """KPI settings."""
    event: list[EventConfig] = []
    """Timed events (``[[event]]``), in time order."""
    fault: list[FaultConfig] = []
    """Faults (``[[fault]]``); merged with the events by time."""
    criterion: list[CriterionConfig] = []
    """Acceptance criteria (``[[criterion]]``); the scenario passes when all hold."""
