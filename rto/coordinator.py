"""Plant-wide coordinator: hand a site optimum to each unit's controller, unit by unit.

After :meth:`rto.plantwide.PlantwideRto.solve`, :meth:`PlantwideCoordinator.dispatch`
passes each unit's optimal inputs (and chosen CVs) through that unit's
:class:`rto.handoff.TargetHandoff` (filter, ramp, reachable steady-state target),
but only when the unit is at steady state by Cao & Rhinehart's R-statistic on a
window of its measurements (:class:`rto.steady_detection.SteadyStateDetector`).
A unit that is moving, whose hand-off failed, or when the site optimisation
failed, keeps its previous target; the dispatch says which and why per unit
(:class:`DispatchStatus`), so one unit's trouble never blocks the others.

The gate protects what is learnt from measurements (modifiers, model updates):
a moving unit's data would bias them. A run that only re-optimises the model
because an economic parameter (a price) changed learns nothing from the
plant, so ``dispatch(..., gate=False)`` lets its targets through a closed gate
(still through the hand-off's ramps and reachable target), as industrial RTO
does on a price event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike

from plant_models.errors import ConfigError
from plant_models.samples import OperatingTarget
from rto.handoff import HandoffResult, TargetHandoff
from rto.plantwide import PlantwideResult, PlantwideRto
from rto.steady_detection import SteadyStateDetector

log = logging.getLogger(__name__)


class DispatchStatus(Enum):
    """What happened to one unit's target in a dispatch."""

    ISSUED = "issued"
    """A new target went through the hand-off."""
    HELD_NOT_STEADY = "held_not_steady"
    """The unit is moving (R-statistic above critical): previous target kept."""
    HELD_RTO_FAILED = "held_rto_failed"
    """The site optimisation failed: previous target kept."""
    HELD_HANDOFF_FAILED = "held_handoff_failed"
    """The unit's steady-state target calculation failed: previous target kept."""


@dataclass(frozen=True)
class UnitLink:
    """How the coordinator reaches one unit."""

    handoff: TargetHandoff
    """The unit's hand-off (its model must be the unit's model in the site)."""
    steady_signals: tuple[str, ...] = ()
    """Measured signals tested for steady state; empty = no gate."""
    detector: SteadyStateDetector | None = None
    """The R-statistic test (default configuration when None and signals are given)."""


@dataclass(frozen=True)
class UnitDispatch:
    """One unit's outcome of a dispatch."""

    unit: str
    """Unit name."""
    status: DispatchStatus
    """Issued or held, and why."""
    target: OperatingTarget | None
    """The target now in force (the previous one when held; None before any)."""
    message: str = ""
    """Reason when held (moving signals, solver message)."""
    handoff: HandoffResult | None = None
    """The hand-off result when one ran."""


class PlantwideCoordinator:
    """Dispatches site optima to units through their hand-offs, gated per unit."""

    def __init__(self, rto: PlantwideRto, links: Mapping[str, UnitLink]) -> None:
        self.rto = rto
        self.links = dict(links)
        for name, link in self.links.items():
            unit = rto.site.unit(name)
            if link.handoff.model is not unit.model:
                raise ConfigError(
                    f"coordinator: unit {name!r}: the hand-off's model is not the site unit's model"
                )
            if link.steady_signals and link.detector is None:
                self.links[name] = UnitLink(
                    link.handoff, tuple(link.steady_signals), SteadyStateDetector()
                )
        self._targets: dict[str, OperatingTarget | None] = {n: None for n in self.links}

    def target(self, unit: str) -> OperatingTarget | None:
        """The target in force for ``unit``."""
        return self._targets[unit]

    def dispatch(
        self,
        time_s: float,
        result: PlantwideResult,
        windows: Mapping[str, ArrayLike] | None = None,
        *,
        cv_targets: Mapping[str, Mapping[str, float]] | None = None,
        gate: bool = True,
        only: set[str] | None = None,
    ) -> dict[str, UnitDispatch]:
        """Hand ``result`` to every linked unit; ``windows[unit]`` has rows of samples of
        that unit's ``steady_signals``. ``cv_targets[unit]`` overrides CV values passed to
        the hand-off (e.g. holder levels at mid-band instead of the RTO's held values).
        ``gate=False`` (a price-triggered re-optimisation) skips the steady-state tests;
        ``only``: dispatch to these units alone (ramps advancing between runs)."""
        out: dict[str, UnitDispatch] = {}
        for name, link in self.links.items():
            if only is not None and name not in only:
                continue
            prev = self._targets[name]
            if not result.usable:
                out[name] = UnitDispatch(
                    name, DispatchStatus.HELD_RTO_FAILED, prev, result.info.message
                )
                continue
            if gate and link.steady_signals and link.detector is not None:
                win = (windows or {}).get(name)
                if win is None:
                    out[name] = UnitDispatch(
                        name, DispatchStatus.HELD_NOT_STEADY, prev, "no measurement window"
                    )
                    continue
                check = link.detector.check(np.asarray(win, float), link.steady_signals)
                if not check.steady:
                    out[name] = UnitDispatch(
                        name,
                        DispatchStatus.HELD_NOT_STEADY,
                        prev,
                        f"moving: {', '.join(check.moving)}",
                    )
                    continue
            opt = result.units[name]
            model = link.handoff.model
            y = model.y.mapping(opt.y)
            y.update((cv_targets or {}).get(name, {}))
            ho = link.handoff.update(time_s, opt.u, y, d=opt.d)
            if ho.target is None or not ho.info.status.usable:
                out[name] = UnitDispatch(
                    name, DispatchStatus.HELD_HANDOFF_FAILED, prev, ho.info.message, ho
                )
                continue
            self._targets[name] = ho.target
            why = "" if gate else "not gated (price-triggered run or ramp)"
            out[name] = UnitDispatch(name, DispatchStatus.ISSUED, ho.target, why, ho)
        for name, disp in out.items():
            if disp.status is not DispatchStatus.ISSUED:
                log.info("coordinator: unit %s %s (%s)", name, disp.status.value, disp.message)
        return out
