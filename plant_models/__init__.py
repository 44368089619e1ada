"""plant_models: what the plant is — signals, first-principles and identified models, library.

Public names: :class:`Signal`, :class:`SignalSet`, :class:`PlantModel`,
:class:`TimeDomain`, :class:`OperatingPoint`, :func:`build_model`, the sample
types and the error tree. Reference plants: ``plant_models.library.load(name)``.
"""

from plant_models.builder import Symbols, build_model
from plant_models.errors import ConfigError, EngineError, ModelError, PlantIOError, SolverFailed
from plant_models.linearization import LinearModel
from plant_models.model import OperatingPoint, PlantModel, TimeDomain
from plant_models.results import SolveInfo, SolveStatus
from plant_models.samples import (
    ControlMove,
    Measurement,
    Mode,
    OperatingTarget,
    Quality,
    StateEstimate,
)
from plant_models.signals import Signal, SignalSet, signal_set
from plant_models.simulation import Integrator, Trajectory
from plant_models.steady_state import SteadyState

__all__ = [
    "ConfigError", "ControlMove", "EngineError", "Integrator", "LinearModel", "Measurement",
    "Mode", "ModelError", "OperatingPoint", "OperatingTarget", "PlantIOError", "PlantModel",
    "Quality", "Signal", "SignalSet", "SolveInfo", "SolveStatus", "SolverFailed", "StateEstimate",
    "SteadyState", "Symbols", "TimeDomain", "Trajectory", "build_model", "signal_set",
]
