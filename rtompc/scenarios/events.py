"""Carries out a scenario's timed events: targets, prices and mode here, the rest on the bench.

:class:`EventScheduler` is called once per cycle with the plant time, before the
cycle reads the plant. It fires every event whose time has come (in file
order): setpoint, price and mode events change the scenario-side state the
runner hands to the loop; plant events (disturbances, parameter drift, sensor,
actuator and link faults) go to the bench (:mod:`rtompc.scenarios.bench`),
which also advances ramps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.scenarios.spec import Event, EventKind

if TYPE_CHECKING:  # pragma: no cover
    from rtompc.scenarios.bench import Bench

logger = logging.getLogger(__name__)


class EventScheduler:
    """Fires timed events; owns the scenario's setpoints, prices and mode (mutable)."""

    def __init__(
        self,
        events: tuple[Event, ...],
        model: PlantModel,
        *,
        setpoints_y: dict[str, float],
        setpoints_u: dict[str, float],
        prices: dict[str, float],
        mode: Mode,
    ) -> None:
        self._pending = list(events)
        self._model = model  # the controller's model (setpoint names)
        self.setpoints_y = dict(setpoints_y)
        """Current CV setpoints by name, SI."""
        self.setpoints_u = dict(setpoints_u)
        """Current MV resting targets by name, SI."""
        self.prices = dict(prices)
        """Current prices by stream."""
        self.mode = mode
        """Requested runtime mode."""
        self.changed_y: dict[str, float] = {}
        """CV setpoints changed by the last :meth:`apply`."""
        self.changed_u: dict[str, float] = {}
        """MV targets changed by the last :meth:`apply`."""
        self.prices_changed = False
        """True when the last :meth:`apply` changed a price."""
        self.log: list[str] = []
        """Every fired event, described, in order."""

    def apply(self, t: float, bench: Bench) -> list[str]:
        """Fire the events due at plant time ``t`` and advance ramps; returns what fired."""
        self.changed_y, self.changed_u = {}, {}
        self.prices_changed = False
        fired: list[str] = []
        eps = 1e-9 * max(1.0, abs(t))
        while self._pending and self._pending[0].t_s <= t + eps:
            ev = self._pending.pop(0)
            self._fire(ev, t, bench)
            text = ev.describe()
            fired.append(text)
            self.log.append(text)
            logger.info("scenario event: %s", text)
        bench.update(t)
        return fired

    def _fire(self, ev: Event, t: float, bench: Bench) -> None:
        k = ev.kind
        if k is EventKind.SETPOINT:
            if ev.signal in self._model.y:
                self.setpoints_y[ev.signal] = self.changed_y[ev.signal] = ev.value
            else:
                self.setpoints_u[ev.signal] = self.changed_u[ev.signal] = ev.value
        elif k is EventKind.PRICE:
            self.prices[ev.signal] = ev.value
            self.prices_changed = True
        elif k is EventKind.MODE:
            if ev.mode is not None:
                self.mode = ev.mode
        else:
            bench.plant_event(ev, t)
