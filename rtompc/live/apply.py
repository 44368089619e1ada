"""LiveApplier: how the control loop takes live changes, once per cycle, at its start.

The loop calls :meth:`LiveApplier.begin` first thing in a cycle (mode and RTO
enable take effect for that cycle), then :meth:`LiveApplier.apply_controller`
once it knows the MV values the plant holds and before any estimator or
controller work: CV/MV changes reach the controller there (one rebuild at most,
none for setpoints), and an MV taken out of service is fixed at the value the
plant holds. Nothing is applied while a controller step runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plant_models.samples import Mode, OperatingTarget
from rtompc.live.config import controller_config, mv_bounds, setpoints
from rtompc.live.params import LiveParameters
from rtompc.live.types import check_key

logger = logging.getLogger(__name__)

_CONTROLLER_FIELDS = ("low", "high", "zone_low", "zone_high", "weight", "in_service", "rate")


@dataclass(frozen=True)
class LiveStep:
    """What the start of a cycle took from the live model."""

    mode: Mode | None
    """A new mode request (None: unchanged)."""
    retune: bool
    """CV/MV fields changed: the controller's configuration is rebuilt this cycle."""
    bounds: bool
    """MV limits or in-service changed: the controller re-plans with new MV bounds."""


class LiveApplier:
    """Applies :class:`LiveParameters` to a running loop's controller and settings."""

    def __init__(self, live: LiveParameters, mv_names: tuple[str, ...]) -> None:
        self.live = live
        self.mv_names = mv_names
        self.cv_names = tuple(c.name for c in live.base_config.cvs)
        self.bounds: dict[str, tuple[float, float]] = {}
        """The live MV bounds last given to the controller (empty: as configured)."""
        self._held: dict[str, float] = {}
        self._step = LiveStep(None, False, False)
        self.applied = 0
        """Changes applied so far."""

    def begin(self, events: list[str]) -> LiveStep:
        """Take the pending changes (start of a cycle); events name each one."""
        changes = self.live.take_pending()
        mode: Mode | None = None
        retune = bounds = False
        for ch in changes:
            events.append(
                f"live change {ch.key}: {ch.old!r} -> {ch.new!r} ({ch.user}, {ch.source.value})"
            )
            group, _, fld = check_key(ch.key)
            if ch.key == "controller.mode_request" and isinstance(ch.new, Mode):
                mode = ch.new
            elif group == "cv" and fld in _CONTROLLER_FIELDS:
                retune = True
            elif group == "mv" and fld == "rate":
                retune = True
            elif group == "mv" and fld in ("low", "high", "in_service"):
                bounds = True
        self.applied += len(changes)
        self._step = LiveStep(mode, retune, bounds)
        return self._step

    @property
    def rto_enabled(self) -> bool:
        """The operator's RTO enable."""
        return self.live.value("controller.rto_enable") is not False

    def in_service(self) -> NDArray[np.bool_]:
        """Per MV: in service by the operator."""
        values = self.live.snapshot()
        return np.array([values.get(f"mv.{n}.in_service") is not False for n in self.mv_names])

    async def apply_controller(
        self,
        controller: Any,
        u_plant: NDArray[np.float64],
        other_bounds: Mapping[str, tuple[float, float]],
    ) -> None:
        """Give this cycle's CV/MV changes to the controller (``retune``/``restrict_mvs``),
        merged with ``other_bounds`` (the actuator supervision's, which win)."""
        step = self._step
        if not (step.retune or step.bounds):
            return
        values = self.live.snapshot()
        for i, n in enumerate(self.mv_names):  # hold where it is when taken out
            out = values.get(f"mv.{n}.in_service") is False
            if out and n not in self._held:
                self._held[n] = float(u_plant[i])
            elif not out:
                self._held.pop(n, None)
        new_bounds = mv_bounds(values, self.mv_names, self._held)
        configured = {n: self.live.mv_validity(n) for n in self.mv_names}
        new_bounds = {n: b for n, b in new_bounds.items() if b != configured[n]}
        restrict = getattr(controller, "restrict_mvs", None)
        retune = getattr(controller, "retune", None)
        if restrict is None:
            logger.warning("controller has no restrict_mvs: live MV limits not applied")
            return
        self.bounds = new_bounds
        if step.retune and retune is not None:
            cfg = controller_config(self.live.base_config, values)
            await asyncio.to_thread(retune, cfg, {**new_bounds, **other_bounds})
        else:
            await asyncio.to_thread(restrict, {**new_bounds, **other_bounds})

    def target(self, target: OperatingTarget | None) -> OperatingTarget | None:
        """``target`` with the operator's setpoints: they apply to CVs the RTO does not
        target, and to every CV while the RTO is disabled."""
        sps = setpoints(self.live.snapshot(), self.cv_names)
        if not sps:
            return target
        if target is None:
            return OperatingTarget(0.0, y=sps, source="operator")
        keep = target.y if self.rto_enabled and target.source == "rto" else {}
        y = {**target.y, **{n: v for n, v in sps.items() if n not in keep}}
        return OperatingTarget(target.time_s, y=y, u=dict(target.u), source=target.source)
