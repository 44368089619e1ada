"""Several control loops in one engine, and the coordinator that hands them their targets.

:class:`MultiUnitEngine` runs N :class:`~rtompc.runtime.ControlLoop` objects in
one asyncio process. Each unit keeps its own PlantIO (its own PLC endpoint or
in-process plant), pacing, REMOTE/LOCAL handshake, fallbacks and historian run;
numeric work (estimator, NMPC, RTO) runs in worker threads, so one unit's slow
solve delays another unit's cycle only by what the cores allow.

Two schedules:

- **lockstep** (every unit's transport is lockstep): the engine advances all
  units together in plant time. The unit(s) due next run their cycle and
  advance their plant by one of their own samples, concurrently; a unit with a
  5 s sample time runs four cycles for every cycle of a 20 s unit. The
  coordinator runs at its own plant-time period between cycles.
- **real time**: each loop runs its own :meth:`ControlLoop.run` (own
  :class:`~rtompc.pacing.Pacer`), the coordinator is a task of its own.

Isolation: a unit's lost link, LOCAL plant or failing solver is handled by that
unit's loop (it records, holds, retries) and does not stop the others; an
unexpected exception in one unit's cycle (a bug) ends that unit only, its plant
is left to its watchdog, and it is reported ``failed``.

:class:`Coordinator` watches every unit after each cycle. A unit that cannot
take new targets (link lost, plant in LOCAL while ON, ``hold_after_fallbacks``
consecutive fallbacks, stopped, failed) is *unavailable*: its targets are held
(the plant-wide RTO's new targets for it are kept pending and applied when it
is back), and the coordinator says so once per change: a log line, the unit's
status (:meth:`Coordinator.status`) and an event in the unit's next cycle record
(so in its historian run).

Event-triggered updates: besides its period, the coordinator asks the target
source after every lockstep step (every shortest sample time in real time)
whether a run is due now (:meth:`Coordinator.poll`, the source's optional
``wants_run``: a price moved beyond its threshold), and runs it at once.

Exit code of a multi-unit run (:func:`worst_outcome`): the engine keeps running
while any unit runs; at the end the exit code is the worst unit's, in the order
internal error > start-up > link lost > not in control > write failures > OK.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from plant_models.samples import Mode, OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.lifecycle import ExitCode, RunOutcome
from rtompc.runtime import ControlLoop

logger = logging.getLogger(__name__)


class UnitState(Enum):
    """What the coordinator knows of a unit."""

    STARTING = "starting"
    """No cycle yet."""
    RUNNING = "running"
    """Cycling and able to take targets."""
    LINK_LOST = "link_lost"
    """The link to its plant is down: its loop writes nothing and retries."""
    LOCAL = "local"
    """ON, but its plant is in LOCAL (or refuses REMOTE): nothing is written."""
    SOLVER_FAILING = "solver_failing"
    """Its controller has failed for ``hold_after_fallbacks`` consecutive cycles."""
    STOPPED = "stopped"
    """Its loop ended normally (step count reached, stop asked)."""
    FAILED = "failed"
    """Its loop ended on an unexpected error; its plant is left to its watchdog."""


AVAILABLE = frozenset({UnitState.RUNNING})
"""States in which a unit takes new targets."""


@dataclass(frozen=True)
class UnitSnapshot:
    """One unit as the plant-wide target source sees it."""

    name: str
    """Unit name."""
    state: UnitState
    """Coordinator state."""
    reason: str
    """Why it is unavailable (empty when running)."""
    record: CycleRecord | None
    """Its latest cycle (None before the first)."""
    target: OperatingTarget | None
    """Targets in force."""

    @property
    def available(self) -> bool:
        """Whether the unit takes new targets."""
        return self.state in AVAILABLE


class SiteTargetSource(Protocol):
    """The plant-wide RTO as the coordinator calls it (in a worker thread)."""

    def update(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> Mapping[str, OperatingTarget]:
        """New targets by unit name (units left out keep theirs). Unavailable units are in
        ``units`` too (their last record: a plant-wide model may fix their flows there)."""


@dataclass
class UnitStatus:
    """A unit's coordinator status (mutable, owned by the coordinator)."""

    name: str
    """Unit name."""
    state: UnitState = UnitState.STARTING
    """Current state."""
    reason: str = ""
    """Why it is unavailable (empty when running)."""
    since_time_s: float = 0.0
    """Plant time of the unit when the state began."""
    cycles: int = 0
    """Cycles seen."""
    consecutive_fallbacks: int = 0
    """Fallback cycles in a row."""
    targets_held: bool = False
    """True while the coordinator holds this unit's targets."""
    pending: OperatingTarget | None = None
    """Targets for it from the plant-wide RTO, applied when it is back."""
    last: CycleRecord | None = None
    """Its latest cycle."""
    outcome: RunOutcome | None = None
    """How its loop ended (None: still running)."""
    changes: list[str] = field(default_factory=list)
    """Every state change, one line each (for reports and tests)."""


class Coordinator:
    """Hands targets to units and holds them for a unit that cannot take them."""

    def __init__(
        self,
        loops: Mapping[str, ControlLoop],
        source: SiteTargetSource | None = None,
        *,
        every_s: float = 60.0,
        hold_after_fallbacks: int = 3,
        on_change: Callable[[UnitStatus], None] | None = None,
    ) -> None:
        if not (math.isfinite(every_s) and every_s > 0):
            raise ValueError(f"coordinator every_s: expected > 0, got {every_s}")
        self.loops = dict(loops)
        self.source = source
        self.every_s = every_s
        self.hold_after_fallbacks = hold_after_fallbacks
        self.on_change = on_change
        self.units = {name: UnitStatus(name) for name in self.loops}
        self.updates = 0
        """Plant-wide target updates computed."""
        self.errors = 0
        """Target-source calls that raised (the targets in force are kept)."""
        self.triggered = 0
        """Updates run between the periodic ones because the source asked (a price event)."""

    # observing ---------------------------------------------------------------------
    def observe(self, name: str, record: CycleRecord) -> None:
        """One cycle of ``name`` (the engine calls this after each cycle)."""
        st = self.units[name]
        st.cycles += 1
        st.last = record
        st.consecutive_fallbacks = st.consecutive_fallbacks + 1 if record.fallback else 0
        loop = self.loops[name]
        if not record.connected:
            state, reason = UnitState.LINK_LOST, "link lost"
        elif record.mode is Mode.ON and not loop.handshake.in_control:
            state, reason = UnitState.LOCAL, f"plant {record.plant_mode or 'not REMOTE'}"
        elif st.consecutive_fallbacks >= self.hold_after_fallbacks:
            state = UnitState.SOLVER_FAILING
            reason = f"controller failed {st.consecutive_fallbacks} cycles ({record.solver_status})"
        else:
            state, reason = UnitState.RUNNING, ""
        self._set(st, state, reason, record.time_s)

    def finished(self, name: str, outcome: RunOutcome, failed: bool = False) -> None:
        """The loop of ``name`` ended (normally, or ``failed`` on an unexpected error)."""
        st = self.units[name]
        st.outcome = outcome
        t = st.last.time_s if st.last is not None else 0.0
        self._set(st, UnitState.FAILED if failed else UnitState.STOPPED, outcome.reason, t)

    def _set(self, st: UnitStatus, state: UnitState, reason: str, time_s: float) -> None:
        if state is st.state:
            st.reason = reason
            return
        was_available = st.state in AVAILABLE or st.state is UnitState.STARTING
        st.state, st.reason, st.since_time_s = state, reason, time_s
        loop = self.loops[st.name]
        if state in AVAILABLE:
            st.targets_held = False
            if st.pending is not None:
                loop.target = st.pending
                st.pending = None
                line = f"coordinator: unit {st.name} back: pending plant-wide targets applied"
            else:
                line = f"coordinator: unit {st.name} back: taking targets again"
            if not was_available:
                self._announce(st, line)
            return
        st.targets_held = True
        if state is UnitState.STOPPED:
            self._announce(st, f"coordinator: unit {st.name} stopped ({reason})", logging.INFO)
            return
        line = f"coordinator: unit {st.name} {state.value} ({reason}): its targets are held"
        self._announce(st, line)

    def _announce(self, st: UnitStatus, line: str, level: int = logging.WARNING) -> None:
        st.changes.append(line)
        logger.log(level, "%s", line)
        loop = self.loops[st.name]
        if st.state not in (UnitState.STOPPED, UnitState.FAILED):
            loop.note(line)  # into the unit's next cycle record: its historian run
        if self.on_change is not None:
            self.on_change(st)

    # targets -------------------------------------------------------------------------
    def snapshots(self) -> dict[str, UnitSnapshot]:
        """Every unit as the target source sees it."""
        return {
            n: UnitSnapshot(n, st.state, st.reason, st.last, self.loops[n].target)
            for n, st in self.units.items()
        }

    async def update(self, time_s: float) -> None:
        """Ask the target source for new targets and hand them to the available units."""
        if self.source is None:
            return
        snaps = self.snapshots()
        try:
            targets = await asyncio.to_thread(self.source.update, time_s, snaps)
        except Exception as exc:  # noqa: BLE001 - a failed plant-wide RTO keeps the targets
            self.errors += 1
            logger.warning("coordinator: plant-wide target update failed: %s (targets kept)", exc)
            return
        self.updates += 1
        for name, target in targets.items():
            st = self.units.get(name)
            if st is None:
                logger.warning("coordinator: targets for unknown unit %r ignored", name)
                continue
            if target.source != "rto":  # the RTO layer's targets (operator setpoints yield)
                target = dataclasses.replace(target, source="rto")
            if st.state in AVAILABLE:
                self.loops[name].target = target
            elif st.state not in (UnitState.STOPPED, UnitState.FAILED):
                st.pending = target

    async def poll(self, time_s: float) -> bool:
        """Run an update now if the source asks for one (its optional
        ``wants_run(time_s, snapshots) -> reason | None``: a price event); True if it ran."""
        wants = getattr(self.source, "wants_run", None)
        if wants is None:
            return False
        try:
            why = wants(time_s, self.snapshots())
        except Exception as exc:  # noqa: BLE001 - a failed check must not stop the site
            logger.warning("coordinator: event check failed: %s", exc)
            return False
        if not why:
            return False
        logger.info("coordinator: update at %.0f s on an event: %s", time_s, why)
        self.triggered += 1
        await self.update(time_s)
        return True

    def status(self) -> dict[str, dict[str, object]]:
        """Every unit's state for status lines, JSON and tests."""
        return {
            n: {
                "state": st.state.value,
                "reason": st.reason,
                "since_time_s": st.since_time_s,
                "cycles": st.cycles,
                "targets_held": st.targets_held,
            }
            for n, st in self.units.items()
        }


_SEVERITY = (
    ExitCode.INTERNAL,
    ExitCode.STARTUP,
    ExitCode.LINK_LOST,
    ExitCode.NOT_IN_CONTROL,
    ExitCode.WRITE_FAILURES,
    ExitCode.WATCHDOG_TRIPPED,
    ExitCode.OK,
)
"""Exit codes, worst first."""


def worst_outcome(outcomes: Mapping[str, RunOutcome]) -> RunOutcome:
    """The run's outcome: the worst unit's code, with every unit's reason in one line."""
    if not outcomes:
        return RunOutcome(ExitCode.OK, "no units")
    worst = min(outcomes.values(), key=lambda o: _SEVERITY.index(o.code))
    reasons = "; ".join(f"{n}: {o.code.name.lower()} ({o.reason})" for n, o in outcomes.items())
    return RunOutcome(worst.code, reasons)


class MultiUnitEngine:
    """N control loops and their coordinator in one asyncio process."""

    def __init__(
        self,
        loops: Mapping[str, ControlLoop],
        coordinator: Coordinator | None = None,
        *,
        outcome_of: Callable[[str, ControlLoop], RunOutcome] | None = None,
    ) -> None:
        if not loops:
            raise ValueError("a multi-unit engine needs at least one unit")
        self.loops = dict(loops)
        self.coordinator = coordinator if coordinator is not None else Coordinator(self.loops)
        self.outcome_of = outcome_of or _default_outcome
        self._stop = asyncio.Event()
        for name, loop in self.loops.items():
            loop.on_cycle = _chain(loop.on_cycle, self._observer(name))

    @property
    def lockstep(self) -> bool:
        """Every unit's transport is lockstep: the engine advances them together."""
        return all(loop.io.lockstep for loop in self.loops.values())

    def stop(self) -> None:
        """Ask every unit to finish after its current cycle."""
        self._stop.set()
        for loop in self.loops.values():
            loop.stop()

    def _observer(self, name: str) -> Callable[[CycleRecord], None]:
        def observe(record: CycleRecord) -> None:
            self.coordinator.observe(name, record)

        return observe

    async def run(
        self, steps: Mapping[str, int | None] | None = None, *, duration_s: float | None = None
    ) -> dict[str, dict[str, float]]:
        """Run until every unit has done its ``steps`` (None: until :meth:`stop`) or the
        plant time ``duration_s`` has passed; returns each unit's statistics summary."""
        steps = dict(steps or {})
        if duration_s is not None:
            for name, loop in self.loops.items():
                n = int(math.floor(duration_s / loop.settings.sample_time_s + 1e-9))
                steps[name] = n if steps.get(name) is None else min(n, int(steps[name] or 0))
        if self.lockstep:
            return await self._run_lockstep(steps)
        return await self._run_realtime(steps)

    async def _run_lockstep(self, steps: Mapping[str, int | None]) -> dict[str, dict[str, float]]:
        names = list(self.loops)
        done = {n: 0 for n in names}
        t_next = {n: 0.0 for n in names}
        active = {n for n in names if steps.get(n) is None or (steps.get(n) or 0) > 0}
        finished: set[str] = set()
        t_coord = 0.0
        while active and not self._stop.is_set():
            t = min(t_next[n] for n in active)
            if t >= t_coord - 1e-9:
                await self.coordinator.update(t)
                t_coord = t + self.coordinator.every_s
            else:  # between periodic runs: a price event runs the RTO now
                await self.coordinator.poll(t)
            due = [n for n in active if t_next[n] <= t + 1e-9]
            results = await asyncio.gather(
                *(self._guarded_step(n) for n in due), return_exceptions=False
            )
            for n, ok in zip(due, results, strict=True):
                done[n] += 1
                t_next[n] += self.loops[n].settings.sample_time_s
                limit = steps.get(n)
                if not ok or (limit is not None and done[n] >= limit) or self.loops[n].stopping:
                    active.discard(n)
                    finished.add(n)
                    if ok:
                        self.coordinator.finished(n, self.outcome_of(n, self.loops[n]))
        for n in names:
            if n not in finished:
                self.coordinator.finished(n, self.outcome_of(n, self.loops[n]))
        return {n: self._summary(n) for n in names}

    async def _guarded_step(self, name: str) -> bool:
        try:
            await self.loops[name].step()
            return True
        except Exception as exc:  # noqa: BLE001 - one unit's bug must not end the others
            self._unit_failed(name, exc)
            return False

    def _unit_failed(self, name: str, exc: BaseException) -> None:
        logger.error("unit %s: loop failed: %r; the other units carry on", name, exc, exc_info=exc)
        self.coordinator.finished(
            name, RunOutcome(ExitCode.INTERNAL, f"loop failed: {exc!r}"), failed=True
        )

    async def _run_realtime(self, steps: Mapping[str, int | None]) -> dict[str, dict[str, float]]:
        async def one(name: str) -> None:
            loop = self.loops[name]
            try:
                await loop.run(steps.get(name))
            except Exception as exc:  # noqa: BLE001 - one unit's bug must not end the others
                self._unit_failed(name, exc)
                return
            self.coordinator.finished(name, self.outcome_of(name, loop))

        async def coordinate() -> None:
            speed = max(loop.settings.speed for loop in self.loops.values())
            tick = min(
                [self.coordinator.every_s]
                + [lp.settings.sample_time_s for lp in self.loops.values()]
            )
            t0 = time.monotonic()
            t_coord = 0.0
            while True:
                t = (time.monotonic() - t0) * speed
                if t >= t_coord - 1e-9:
                    await self.coordinator.update(t)
                    t_coord = t + self.coordinator.every_s
                else:  # between periodic runs: a price event runs the RTO now
                    await self.coordinator.poll(t)
                await asyncio.sleep(tick / speed)

        coord = asyncio.create_task(coordinate(), name="coordinator")
        try:
            await asyncio.gather(*(one(n) for n in self.loops))
        finally:
            coord.cancel()
            try:
                await coord
            except asyncio.CancelledError:
                pass
        return {n: self._summary(n) for n in self.loops}

    def _summary(self, name: str) -> dict[str, float]:
        loop = self.loops[name]
        return {
            **loop.stats.summary(),
            "skipped_periods": loop.skipped_periods,
            "remote_requests": loop.handshake.requests,
            "remote_drops": loop.handshake.drops,
        }

    def outcomes(self) -> dict[str, RunOutcome]:
        """Each unit's outcome (after :meth:`run`)."""
        out = {}
        for n, st in self.coordinator.units.items():
            out[n] = st.outcome if st.outcome is not None else self.outcome_of(n, self.loops[n])
        return out


def _default_outcome(name: str, loop: ControlLoop) -> RunOutcome:
    if not loop.connected:
        return RunOutcome(ExitCode.LINK_LOST, "link to the plant lost at the end")
    if loop.settings.mode is Mode.ON and not loop.handshake.in_control:
        return RunOutcome(ExitCode.NOT_IN_CONTROL, "plant not in REMOTE at the end of an ON run")
    if loop.settings.mode is Mode.ON and loop.handshake.watchdog_trips:
        return RunOutcome(
            ExitCode.WATCHDOG_TRIPPED,
            "the PLC's watchdog tripped during the run, control came back",
        )
    return RunOutcome(ExitCode.OK, "normal end")


def _chain(
    first: Callable[[CycleRecord], None] | None, second: Callable[[CycleRecord], None]
) -> Callable[[CycleRecord], None]:
    if first is None:
        return second

    def both(record: CycleRecord) -> None:
        first(record)
        second(record)

    return both


__all__: Sequence[str] = (
    "AVAILABLE",
    "Coordinator",
    "MultiUnitEngine",
    "SiteTargetSource",
    "UnitSnapshot",
    "UnitState",
    "UnitStatus",
    "worst_outcome",
)
