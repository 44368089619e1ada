"""Runs a plant-wide scenario: several units in plant-time lockstep under the coordinator.

Each unit is a :class:`~rtompc.scenarios.unit_run.UnitRun` (the single-unit
runner's loop: its own bench — in-process plant or its own HIL endpoint over
OPC UA —, NMPC, estimator, RTO, events, KPIs). This module advances them
together in plant time: the unit(s) due next run one cycle each (concurrently),
a unit with a 5 s sample time runs four cycles per cycle of a 20 s unit. After
every cycle :class:`rtompc.multiunit.Coordinator` observes the unit; it holds the
targets of a unit that cannot take them (link lost, plant LOCAL, solver failing)
and says so in that unit's event log. At the end each unit's KPIs and criteria
are computed as in a single-unit run, prefixed with the unit's name
(``furnace.max_violation.t_zone1``), and the site-wide KPIs
(:data:`~rtompc.scenarios.site_spec.SITE_KPIS`) are added; every criterion of
the file is checked against that one table.

With ``[plantwide]`` (an objective) the coordinator's target source is the
plant-wide RTO (:class:`rtompc.plantwide_source.PlantwideSource`, every
``plantwide.every_s``, and at once on a price event: ``trigger_signals``), fed by every
unit's cycles. ``[[site.link]]`` streams join the simulated plants: after each
cycle of the source unit its output's true value becomes the sink unit's disturbance.
With ``[site]
compare_fixed_setpoints = true`` the same site runs a second time with every RTO
off (the units' and the plant-wide one; configured targets held):
``site.profit_fixed`` and ``site.profit_gain``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from pathlib import Path

from rtompc.multiunit import Coordinator, UnitState
from rtompc.scenarios.result import ScenarioResult, judged
from rtompc.scenarios.site_spec import SiteScenarioSpec
from rtompc.scenarios.unit_run import UnitRun

_HELD = "its targets are held"
_BACK = "pending plant-wide targets applied"


@dataclasses.dataclass
class _SiteRun:
    results: dict[str, ScenarioResult]
    site: dict[str, float]
    events: list[str]


async def _run_units(spec: SiteScenarioSpec, *, fixed: bool = False) -> _SiteRun:
    t0 = time.perf_counter()
    specs = [dataclasses.replace(u, rto=None) if fixed else u for u in spec.units]
    runs = {u.name: UnitRun(u) for u in specs}
    held_cycles = dict.fromkeys(runs, 0)
    source = None
    pw = spec.plantwide
    if pw is not None and pw.enabled and pw.objective and not fixed:
        from rtompc.plantwide_source import PlantwideSource

        source = PlantwideSource(pw, {n: r.model for n, r in runs.items()})
        for n, r in runs.items():
            r.loop.recorders.append(source.recorder(n))
    coord = Coordinator(
        {n: r.loop for n, r in runs.items()},
        source,
        every_s=pw.every_s if source is not None else spec.every_s,
        hold_after_fallbacks=spec.hold_after_fallbacks,
        on_change=lambda st: runs[st.name].note(st.changes[-1]),
    )
    started: list[UnitRun] = []
    try:
        for r in runs.values():
            await r.start()
            started.append(r)
        for n in runs:  # the streams in force from the start
            _streams(spec, runs, n)
        remaining = {n: r.spec.n_cycles for n, r in runs.items()}
        t_next = dict.fromkeys(runs, 0.0)
        t_coord = 0.0
        while any(remaining.values()):
            active = [n for n in runs if remaining[n] > 0]
            t = min(t_next[n] for n in active)
            if t >= t_coord - 1e-9:
                await coord.update(t)
                t_coord = t + coord.every_s
            else:  # between periodic runs: a price event runs the RTO now
                await coord.poll(t)
            due = [n for n in active if t_next[n] <= t + 1e-9]
            records = await asyncio.gather(*(runs[n].cycle() for n in due))
            for n, rec in zip(due, records, strict=True):
                _streams(spec, runs, n)
                coord.observe(n, rec)
                held_cycles[n] += coord.units[n].targets_held
                remaining[n] -= 1
                t_next[n] += runs[n].dt
    finally:
        for r in started:
            await r.stop()
    results: dict[str, ScenarioResult] = {}
    for n, r in runs.items():
        changes = coord.units[n].changes
        extra = {
            "held_target_events": float(sum(_HELD in c for c in changes)),
            "held_cycles": float(held_cycles[n]),
            "pending_applied": float(sum(_BACK in c for c in changes)),
        }
        results[n] = r.result(extra)
    wall = time.perf_counter() - t0
    site = _site_kpis(spec, results, coord, wall)
    site["targets_issued"] = float(
        sum(d.status.value == "issued" for _, disp in source.history for d in disp.values())
        if source is not None
        else 0
    )
    return _SiteRun(results, site, [])


def _streams(spec: SiteScenarioSpec, runs: dict[str, UnitRun], source: str) -> None:
    """After a cycle of ``source``: its linked outputs' true values to the sink plants."""
    for out, sink in spec.links:
        unit, _, name = out.partition(".")
        if unit == source:
            y = runs[unit].bench.truth()[0]
            value = float(y[runs[unit].bench.plant.y.index(name)])
            to_unit, _, d = sink.partition(".")
            runs[to_unit].bench.link_disturbance(d, value)


def _total(results: dict[str, ScenarioResult], key: str) -> float:
    values = [r.kpis[key] for r in results.values() if key in r.kpis]
    return float(sum(values)) if values else math.nan


def _site_kpis(
    spec: SiteScenarioSpec, results: dict[str, ScenarioResult], coord: Coordinator, wall: float
) -> dict[str, float]:
    viol = [
        v for r in results.values() for k, v in r.kpis.items() if k.startswith("max_violation.")
    ]
    return {
        "profit": _total(results, "profit"),
        "profit_ideal": _total(results, "profit_ideal"),
        "profit_loss": _total(results, "profit_loss"),
        "max_violation": max(viol, default=0.0),
        "limits_violated": _total(results, "limits_violated"),
        "min_service_factor": min(r.kpis.get("service_factor", math.nan) for r in results.values()),
        "held_target_events": _total(results, "held_target_events"),
        "held_cycles": _total(results, "held_cycles"),
        "pending_applied": _total(results, "pending_applied"),
        "coordinator_updates": float(coord.updates),
        "rto_triggered": float(coord.triggered),
        "units": float(len(results)),
        "units_failed": float(sum(st.state is UnitState.FAILED for st in coord.units.values())),
        "wall_time_s": wall,
        "realtime_factor": spec.duration_s / wall if wall > 0 else math.nan,
    }


async def run_site_scenario_async(spec: SiteScenarioSpec) -> ScenarioResult:
    """Run a plant-wide scenario to the end; the site's result (raises for set-up errors)."""
    t0 = time.perf_counter()
    run = await _run_units(spec)
    site = dict(run.site)
    if spec.compare_fixed_setpoints:
        fixed = await _run_units(spec, fixed=True)
        site["profit_fixed"] = fixed.site["profit"]
        site["profit_gain"] = site["profit"] - fixed.site["profit"]
    kpis = {f"site.{k}": v for k, v in site.items()}
    for n, r in run.results.items():
        kpis.update({f"{n}.{k}": v for k, v in r.kpis.items()})
    events = [f"[{n}] {line}" for n, r in run.results.items() for line in r.events]
    events.sort(key=_event_time)
    return judged(
        spec,
        kpis,
        time.perf_counter() - t0,
        events=tuple(events),
        units=tuple(run.results.values()),
    )


def _event_time(line: str) -> float:
    """Plant time of a ``[unit] t=12s ...`` line (stable sort keeps each unit's order)."""
    try:
        return float(line.split("t=", 1)[1].split("s", 1)[0])
    except (IndexError, ValueError):
        return math.inf


def run_site_scenario(spec: SiteScenarioSpec | str | Path) -> ScenarioResult:
    """Run a plant-wide scenario (a spec or a file); raises for set-up errors."""
    if not isinstance(spec, SiteScenarioSpec):
        from rtompc.config.site_scenario import load_site_scenario

        spec = load_site_scenario(spec)
    return asyncio.run(run_site_scenario_async(spec))


__all__ = ["run_site_scenario", "run_site_scenario_async"]
