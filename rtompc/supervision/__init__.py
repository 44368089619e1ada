"""Sensor and actuator supervision of a control loop.

Public names: :class:`SupervisionSettings`, :class:`SensorSupervision`,
:class:`MeasurementChecks`, :class:`ActuatorSupervision`, :class:`ActuatorCheck`,
:func:`with_sensor_checks` (settings -> estimator validation and innovation
monitor), :class:`ActuatorSupervisor`, :class:`ActuatorReport`,
:class:`MvHealth`, :class:`FlagTracker`, :func:`sensor_flags`,
:func:`cv_limits_at_risk`.
"""

from rtompc.supervision.actuators import ActuatorReport, ActuatorSupervisor, MvHealth
from rtompc.supervision.flags import FlagTracker, cv_limits_at_risk, sensor_flags
from rtompc.supervision.settings import (
    ActuatorCheck,
    ActuatorSupervision,
    MeasurementChecks,
    SensorSupervision,
    SupervisionSettings,
    with_sensor_checks,
)

__all__ = [
    "ActuatorCheck",
    "ActuatorReport",
    "ActuatorSupervision",
    "ActuatorSupervisor",
    "FlagTracker",
    "MeasurementChecks",
    "MvHealth",
    "SensorSupervision",
    "SupervisionSettings",
    "cv_limits_at_risk",
    "sensor_flags",
    "with_sensor_checks",
]
