"""The typed description of a plant-wide (multi-unit) scenario: several units, one clock.

A :class:`SiteScenarioSpec` holds one :class:`~rtompc.scenarios.spec.ScenarioSpec`
per unit (its plant, model, NMPC, estimator, optional RTO and economics, and the
events and criteria addressed to it, with the unit prefix removed), the
site-wide criteria (``site.*`` KPIs, and every unit criterion again under its
``unit.kpi`` name) and the coordinator's settings.
:func:`rtompc.config.site_scenario.load_site_scenario` builds it from a file;
:mod:`rtompc.scenarios.site_runner` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtompc.scenarios.spec import Criterion, ScenarioSpec

SITE_KPIS: dict[str, str] = {
    "profit": "sum of the units' profits over the run (units with [economics]), $",
    "profit_ideal": "sum of the units' ideal (steady-state optimum) profits, $",
    "profit_loss": "profit_ideal - profit, $",
    "profit_fixed": "site profit of the same run with every RTO off (the units' and the "
    "plant-wide one: fixed setpoints; needs [site] compare_fixed_setpoints = true), $",
    "profit_gain": "profit - profit_fixed, $",
    "max_violation": "largest CV limit violation of any unit, in that CV's unit",
    "limits_violated": "number of (unit, CV) pairs whose limits were violated at some cycle",
    "min_service_factor": "smallest service factor of any unit",
    "held_target_events": "times the coordinator held a unit's targets (link lost, LOCAL, solver)",
    "held_cycles": "unit cycles run while the coordinator held that unit's targets",
    "pending_applied": "times a unit came back and took the targets kept for it",
    "coordinator_updates": "plant-wide target updates computed by the coordinator",
    "rto_triggered": "of those, updates between the periodic ones on an event (a price change "
    "beyond [plantwide] trigger_change, or the hand-off ramps advancing a cycle)",
    "targets_issued": "unit targets the plant-wide RTO issued through the hand-off (a unit that "
    "is not steady, a failed solve or hand-off issues none)",
    "units": "number of units",
    "units_failed": "units whose loop ended on an unexpected error",
    "wall_time_s": "wall time of the whole run, s",
    "realtime_factor": "plant time / wall time of the whole run",
}
"""Site-wide KPIs (criteria name them ``site.<name>``); per-unit KPIs are ``<unit>.<kpi>``
(every single-unit KPI, plus :data:`UNIT_SITE_KPIS`)."""

UNIT_SITE_KPIS: dict[str, str] = {
    "held_target_events": "times the coordinator held this unit's targets",
    "held_cycles": "cycles this unit ran while the coordinator held its targets",
    "pending_applied": "times this unit came back and took the targets kept for it",
    "limits_violated": "number of this unit's CVs whose limits were violated at some cycle",
}
"""KPIs a unit has in a plant-wide run only (``<unit>.<name>``)."""


@dataclass(frozen=True)
class SiteScenarioSpec:
    """One plant-wide scenario."""

    path: Path
    """The scenario file."""
    name: str
    """Scenario name (default: the file stem)."""
    description: str
    """What the scenario exercises."""
    tags: tuple[str, ...]
    """Labels (``fast`` marks the CI subset)."""
    duration_s: float
    """Plant time to simulate, seconds (every unit)."""
    units: tuple[ScenarioSpec, ...]
    """One spec per unit, in file order; each spec's ``name`` is the unit's name."""
    criteria: tuple[Criterion, ...]
    """Every criterion of the file by its full name (``unit.kpi`` or ``site.kpi``)."""
    every_s: float = 60.0
    """Coordinator period (plant-wide target updates), plant seconds."""
    hold_after_fallbacks: int = 3
    """Consecutive controller fallbacks after which the coordinator holds a unit's targets."""
    compare_fixed_setpoints: bool = False
    """Also run the site with every unit's RTO off (``site.profit_fixed``, ``profit_gain``)."""
    links: tuple[tuple[str, str], ...] = ()
    """Streams between the simulated plants: (``unit.output``, ``unit.disturbance``)."""
    plantwide: Any = None
    """The ``[plantwide]`` section (:class:`rtompc.config.plantwide_section.PlantwideSection`)
    whose RTO sets the units' targets through the coordinator, or None."""

    @property
    def unit_names(self) -> tuple[str, ...]:
        """Unit names in file order."""
        return tuple(u.name for u in self.units)


__all__ = ["SITE_KPIS", "UNIT_SITE_KPIS", "SiteScenarioSpec"]
