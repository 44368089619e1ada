"""The plant-wide RTO of a site config: ``[plantwide]`` -> Site, RTO, coordinator, target source.

:func:`build_site` turns a :class:`~rtompc.config.plantwide_section.PlantwideSection`
and the units' steady-state models into a :class:`rto.plantwide.Site`;
:class:`PlantwideSource` is the :class:`~rtompc.multiunit.SiteTargetSource`
that :class:`~rtompc.site_run.SiteRun` gives its coordinator when the config
has a plant-wide objective. Every period it

1. reads each unit's latest cycle: disturbances as measured (prices on OPC UA
   tags are disturbances in a unit's tag map), then the price file's values in
   force; held states from the unit's estimate; the inputs the RTO does not move
   at the values the unit applies;
2. optimises the site (:class:`rto.plantwide.PlantwideRto`), with zeroth-order
   modifiers when ``modifier_adaptation`` is on (filtered plant-minus-model bias
   of every measured limited output, taken at the applied optimum when the unit
   is steady);
3. hands each unit its optimum through its :class:`rto.handoff.TargetHandoff`
   (ramps, reachable target), gated by its steady-state test
   (:class:`rto.coordinator.PlantwideCoordinator`); a moving unit, a failed site
   solve or a failed hand-off keeps the previous targets, and says so.

The windows of the steady-state tests come from :meth:`PlantwideSource.recorder`,
one Recorder per unit, fed by that unit's loop after every cycle.

Price events (``trigger_signals``): :meth:`PlantwideSource.wants_run` tells the
coordinator, after every cycle, when a watched price (a disturbance a unit
measures, or a price-file column at the current time) has moved by more than
``trigger_change`` since the previous run; the coordinator then runs the RTO at
once with the price in force now, not at the next ``every_s``. A run whose
watched prices changed is a re-optimisation of the model on new prices: its
targets pass the steady-state gates (the gate still guards the modifiers).
Ramps: a unit whose issued target is still on its hand-off ramp gets the ramp
advanced every cycle toward the last optimum (no new solve) rather than only at
the next run, so a run one cycle after the previous one does not leave the
target a cycle's ramp along for 15 min.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from plant_models.model import PlantModel
from plant_models.samples import OperatingTarget
from rto.coordinator import DispatchStatus, PlantwideCoordinator, UnitDispatch, UnitLink
from rto.handoff import HandoffConfig, TargetHandoff
from rto.modifiers import Modifiers
from rto.plantwide import PlantwideResult, PlantwideRto, PriceSchedule, Site, SiteUnit, Stream
from rto.plantwide import StreamKind as RtoStreamKind
from rto.steady_detection import RStatisticConfig, SteadyStateDetector
from rtompc.config.plantwide_section import PlantwideSection, split_key
from rtompc.cycle import CycleRecord
from rtompc.multiunit import UnitSnapshot

log = logging.getLogger(__name__)


def build_site(section: PlantwideSection, models: Mapping[str, PlantModel]) -> Site:
    """The site of ``section`` over ``models`` (unit name -> steady-state model, file order)."""
    units = []
    for name, model in models.items():
        cfg = section.units.get(name)
        units.append(
            SiteUnit(
                name,
                model,
                decisions=tuple(cfg.decisions) if cfg and cfg.decisions is not None else None,
                held_states=tuple(cfg.held_states) if cfg else (),
            )
        )
    streams = tuple(
        Stream(s.name, RtoStreamKind(s.kind.value), s.source, s.sink) for s in section.stream
    )
    return Site(
        units=tuple(units),
        streams=streams,
        objective={k: float(v) for k, v in section.objective.items()},
        limits={k: (float(v[0]), float(v[1])) for k, v in section.limits.items()},
    )


def build_rto(section: PlantwideSection, models: Mapping[str, PlantModel]) -> PlantwideRto:
    """The plant-wide RTO of ``section`` (NLP built once)."""
    return PlantwideRto(build_site(section, models), tol=section.tolerance)


@dataclass
class _Window:
    """Recorder: rows of one unit's steady-state signals, one per cycle with all good."""

    signals: tuple[str, ...]
    rows: deque[list[float]]

    def append(self, record: CycleRecord) -> None:
        m = record.measurement
        if self.signals and all(n in m.names and m.good(n) for n in self.signals):
            self.rows.append([m.value(n) for n in self.signals])


class PlantwideSource:
    """The config-built plant-wide RTO as the coordinator's target source."""

    def __init__(self, section: PlantwideSection, models: Mapping[str, PlantModel]) -> None:
        self.section = section
        self.models = dict(models)
        self.rto = build_rto(section, self.models)
        self.schedule: PriceSchedule | None = section.prices()
        links: dict[str, UnitLink] = {}
        self.windows: dict[str, _Window] = {}
        for name, model in self.models.items():
            cfg = section.units.get(name)
            decisions = tuple(cfg.decisions) if cfg and cfg.decisions is not None else None
            handoff = TargetHandoff(
                model, HandoffConfig(mvs=decisions, max_rate=section.rates(name, model))
            )
            signals = tuple(cfg.steady_signals) if cfg else ()
            detector = (
                SteadyStateDetector(RStatisticConfig(alpha=cfg.steady_alpha))
                if cfg and signals
                else None
            )
            links[name] = UnitLink(handoff, signals, detector)
            self.windows[name] = _Window(signals, deque(maxlen=cfg.steady_window if cfg else 15))
        self.coordinator = PlantwideCoordinator(self.rto, links)
        self.bias: dict[str, float] = {k: 0.0 for k in self.rto.limited}
        """Zeroth-order modifiers per limited output (SI)."""
        self.last: PlantwideResult | None = None
        """The latest site optimum."""
        self.history: list[tuple[float, dict[str, UnitDispatch]]] = []
        """(time, dispatch per unit) of every run."""
        self.events: list[tuple[float, str]] = []
        """(time, what changed) of every price-triggered run (gate not applied)."""
        self._watched_at_run: dict[str, float] | None = None
        self._ramping: set[str] = set()
        """Units whose issued target is still on its hand-off ramp."""
        self._ramp_only = False

    def recorder(self, unit: str) -> _Window:
        """The Recorder feeding ``unit``'s steady-state window (add it to its loop)."""
        return self.windows[unit]

    def _inputs(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> tuple[
        dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, dict[str, float]]
    ]:
        d: dict[str, dict[str, float]] = {}
        x: dict[str, dict[str, float]] = {}
        u: dict[str, dict[str, float]] = {}
        for name, model in self.models.items():
            snap = units.get(name)
            rec = snap.record if snap is not None else None
            d[name] = {}
            if rec is not None:
                m = rec.measurement
                if self.section.measured_disturbances:
                    d[name] = {n: m.value(n) for n in model.d.names if n in m.names and m.good(n)}
                if len(rec.estimate.x) == len(model.x):
                    x[name] = model.x.mapping(rec.estimate.x)
                u[name] = {
                    n: float(v)
                    for n, v in zip(rec.mv_names, rec.u_plant, strict=False)
                    if n in model.u and np.isfinite(v)
                }
        if self.schedule is not None:
            for name, vals in self.schedule.by_unit(time_s).items():
                found = self.models.get(name)
                if found is not None:
                    d.setdefault(name, {}).update({k: v for k, v in vals.items() if k in found.d})
        return d, x, u

    def _watched(self, time_s: float, units: Mapping[str, UnitSnapshot]) -> dict[str, float]:
        """The trigger signals' values in force now (price file at ``time_s``, else the
        unit's latest good measurement)."""
        sched = self.schedule.at(time_s) if self.schedule is not None else {}
        out: dict[str, float] = {}
        for key in self.section.trigger_signals:
            if key in sched:
                out[key] = float(sched[key])
                continue
            unit, sig = split_key(key)
            snap = units.get(unit)
            rec = snap.record if snap is not None else None
            if rec is not None and sig in rec.measurement.names and rec.measurement.good(sig):
                out[key] = float(rec.measurement.value(sig))
        return out

    def _price_change(self, now: Mapping[str, float]) -> str | None:
        """What moved beyond ``trigger_change`` since the previous run (None: nothing)."""
        before = self._watched_at_run
        if before is None:
            return None
        moved = []
        for key, v in now.items():
            old = before.get(key)
            if old is None:
                continue
            if abs(v - old) > self.section.trigger_change * max(abs(old), 1e-300):
                moved.append(f"{key} {old:.4g} -> {v:.4g}")
        return "; ".join(moved) or None

    def wants_run(self, time_s: float, units: Mapping[str, UnitSnapshot]) -> str | None:
        """Why an RTO run is due now between the periodic runs (a price event), else None."""
        why = None
        if self.section.trigger_signals:
            why = self._price_change(self._watched(time_s, units))
        if why is None and self._ramping and self.last is not None:
            self._ramp_only = True  # no new optimum: the ramps advance one cycle
            return f"ramping to the last optimum: {', '.join(sorted(self._ramping))}"
        return why

    def _note_ramps(self, disp: Mapping[str, UnitDispatch]) -> None:
        for n, r in disp.items():
            if r.status is DispatchStatus.ISSUED:
                if r.handoff is not None and r.handoff.ramping:
                    self._ramping.add(n)
                else:
                    self._ramping.discard(n)

    def _advance_ramps(self, time_s: float) -> dict[str, OperatingTarget]:
        """Between runs: the ramping units' hand-offs move one cycle further toward the last
        optimum (no new solve, no gate: the target was issued already)."""
        last = self.last
        if last is None:
            return {}
        disp = self.coordinator.dispatch(time_s, last, gate=False, only=set(self._ramping))
        self._note_ramps(disp)
        return _issued(disp)

    def _modifiers(self, units: Mapping[str, UnitSnapshot]) -> Modifiers | None:
        if not self.section.modifier_adaptation:
            return None
        prev = self.last
        if prev is not None and prev.usable:
            k = self.section.modifier_gain
            for key in self.rto.limited:
                unit, sig = split_key(key)
                snap = units.get(unit)
                rec = snap.record if snap is not None else None
                if rec is None or sig not in rec.measurement.names:
                    continue
                if not rec.measurement.good(sig) or not self._steady(unit):
                    continue
                raw = rec.measurement.value(sig) - prev.value(key)
                self.bias[key] = (1.0 - k) * self.bias[key] + k * raw
        n = len(self.rto.decisions)
        return Modifiers(np.zeros(n), np.zeros(n), dict(self.bias))

    def _steady(self, unit: str) -> bool:
        link = self.coordinator.links[unit]
        win = self.windows[unit]
        if not link.steady_signals or link.detector is None:
            return True
        if len(win.rows) < (win.rows.maxlen or 0):
            return False
        return link.detector.check(np.asarray(win.rows, float), link.steady_signals).steady

    def update(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> Mapping[str, OperatingTarget]:
        """One plant-wide RTO run: new targets for the units that take them."""
        if not any(s.record is not None for s in units.values()):
            if self._watched_at_run is None:  # the price file's values at the start
                self._watched_at_run = self._watched(time_s, units)
            return {}
        if self._ramp_only:
            self._ramp_only = False
            return self._advance_ramps(time_s)
        d, x, u = self._inputs(time_s, units)
        prices = {}
        if self.schedule is not None:
            prices = {k: v for k, v in self.schedule.at(time_s).items() if k in self.rto.priced}
        watched = self._watched(time_s, units)
        event = self._price_change(watched)
        self._watched_at_run = {**(self._watched_at_run or {}), **watched}
        mods = self._modifiers(units)
        res = self.rto.solve(d=d, x=x, u=u, prices=prices, modifiers=mods)
        if res.usable:
            self.last = res
        windows = {
            n: np.asarray(w.rows, float)
            for n, w in self.windows.items()
            if w.signals and len(w.rows) >= (w.rows.maxlen or 0)
        }
        if event is not None:
            self.events.append((time_s, event))
            log.info("plant-wide RTO at %.0f s on a price change: %s", time_s, event)
        disp = self.coordinator.dispatch(time_s, res, windows, gate=event is None)
        self.history.append((time_s, disp))
        self._note_ramps(disp)
        return {
            n: r.target
            for n, r in disp.items()
            if r.status is DispatchStatus.ISSUED and r.target is not None
        }


def _issued(disp: Mapping[str, UnitDispatch]) -> dict[str, OperatingTarget]:
    return {
        n: r.target
        for n, r in disp.items()
        if r.status is DispatchStatus.ISSUED and r.target is not None
    }


def source_for(site_cfg: object, models: Mapping[str, PlantModel]) -> PlantwideSource | None:
    """The config-built source of a site (None without a ``[plantwide]`` objective or when
    the section is disabled)."""
    pw = getattr(site_cfg, "plantwide", None)
    if pw is None or not pw.enabled or not pw.objective:
        return None
    return PlantwideSource(pw, models)


__all__ = ["PlantwideSource", "build_rto", "build_site", "source_for"]
