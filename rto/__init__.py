"""rto layer of rtompc: steady-state economics (see ../shared/DESIGN.md).

- :class:`RtoConfig`, :class:`EconomicOptimizer` -> :class:`RtoResult` (optimum, profit,
  active limits, d(profit)/d(limit) per signal and side);
- :class:`SteadyStateDetector` (Cao & Rhinehart's R-statistic);
- :class:`ParameterEstimator` and :class:`TwoStepRto`; :class:`ModifierAdaptation`;
- :class:`TargetHandoff` -> :class:`plant_models.samples.OperatingTarget` for MPC;
- :class:`SteadyPlant` and :func:`run_rto` for offline studies;
- plant-wide: :class:`Site` (units, :class:`Stream` s, objective, limits) ->
  :class:`PlantwideRto` -> :class:`PlantwideResult`; :class:`PriceSchedule` (run-time prices);
  :class:`PlantwideCoordinator` (per-unit hand-off gated by steady-state detection).
"""

from rto.config import RtoConfig
from rto.coordinator import DispatchStatus, PlantwideCoordinator, UnitDispatch, UnitLink
from rto.estimation import EstimationConfig, EstimationResult, ParameterEstimator
from rto.handoff import HandoffConfig, HandoffResult, TargetHandoff
from rto.iteration import (
    GradientSource,
    ModifierAdaptation,
    ModifierAdaptationConfig,
    RtoIteration,
    TwoStepRto,
)
from rto.modifiers import Modifiers, update_modifiers
from rto.offline import SettleMode, SteadyPlant, run_rto
from rto.optimizer import EconomicOptimizer
from rto.plantwide import (
    PlantwideResult,
    PlantwideRto,
    PriceSchedule,
    Site,
    SiteUnit,
    Stream,
    StreamKind,
    UnitOptimum,
)
from rto.results import LimitSensitivity, RtoResult, Side
from rto.steady_detection import (
    CRITICAL_VALUES,
    RStatisticConfig,
    SteadyStateCheck,
    SteadyStateDetector,
    critical_value,
    r_statistic,
)

__all__ = [
    "CRITICAL_VALUES", "EconomicOptimizer", "EstimationConfig", "EstimationResult",
    "GradientSource", "HandoffConfig", "HandoffResult", "LimitSensitivity", "ModifierAdaptation",
    "ModifierAdaptationConfig", "Modifiers", "ParameterEstimator", "RStatisticConfig",
    "RtoConfig", "RtoIteration", "RtoResult", "SettleMode", "Side", "SteadyPlant",
    "SteadyStateCheck", "SteadyStateDetector", "TargetHandoff", "TwoStepRto", "critical_value",
    "r_statistic", "run_rto", "update_modifiers",
    "DispatchStatus", "PlantwideCoordinator", "PlantwideResult", "PlantwideRto", "PriceSchedule",
    "Site", "SiteUnit", "Stream", "StreamKind", "UnitDispatch", "UnitLink", "UnitOptimum",
]
