"""The closed-loop runtime: one fixed-period control loop over any PlantIO.

Each cycle: read the plant (values, quality, timestamps) -> the plant's mode and
status text, and whether the engine is in control (:mod:`rtompc.handshake`) ->
estimator update (measurement validation inside) -> targets (RTO every N
cycles, gated by its own steady-state detection) -> controller step in a worker
thread -> fallback when the step is not usable -> write (ON mode, link up,
plant in REMOTE, MVs in service) -> heartbeat (only while in control) ->
historian. Lockstep transports are advanced one sample per cycle; real-time
transports are paced by :class:`rtompc.pacing.Pacer`, which never catches up
after a stall: missed periods are skipped and counted as overruns, and the next
cycle re-initialises from the MV values the plant holds, so it moves at most one
rate step. The engine keeps its own monotonic time (``CycleRecord.time_s``);
the plant's clock is recorded beside it and its jumps are logged and tolerated.

What the plant holds is tracked per MV: after a write, accepted MVs hold what
the plant read back (or was written), refused ones keep the plant's value;
while nothing is written (SHADOW, plant LOCAL, after a stall or a reconnect)
the loop reads the plant's MVs each cycle. Nothing here raises on a bad solve,
a lost link or a refused mode request: the cycle records what happened (one
event per state change) and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from interfaces.plantio import MvWriteStatus, PlantIO, WriteResult, WriteStatus
from mpc.fallback import FallbackPolicy, fallback_move
from mpc.result import MpcResult
from plant_models.errors import ConfigError, PlantIOError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus
from plant_models.samples import (
    ControlMove,
    Measurement,
    Mode,
    OperatingTarget,
    Quality,
    StateEstimate,
)
from rtompc.cycle import CycleRecord
from rtompc.handshake import HandshakeSettings, RemoteHandshake
from rtompc.live import LiveApplier, LiveParameters
from rtompc.pacing import EngineClock, Pacer, PlantClockWatch, Tick
from rtompc.stats import LoopStats, PhaseClock
from rtompc.supervision import (
    ActuatorReport,
    ActuatorSupervisor,
    FlagTracker,
    SupervisionSettings,
    cv_limits_at_risk,
    sensor_flags,
)
from rtompc.supervision.flags import LIMIT_AT_RISK

logger = logging.getLogger(__name__)


class Estimator(Protocol):
    """What the loop needs of a state estimator (EKF, MHE)."""

    def update(self, measurement: Measurement, u: Any, d: Any = None, p: Any = None) -> Any:
        """Predict with the applied ``u`` and correct with ``measurement``; result has ``.estimate``."""


class Controller(Protocol):
    """What the loop needs of a controller (``mpc.NmpcController``)."""

    def step(
        self,
        x: Any,
        *,
        target: OperatingTarget | None = None,
        d: Any = None,
        p: Any = None,
        y_bias: Any = None,
        u_bias: Any = None,
        u_prev: Any = None,
        time_s: float = 0.0,
    ) -> MpcResult:
        """One controller step (``mpc.NmpcController.step``); never raises on a bad solve."""


class TargetSource(Protocol):
    """Supplies targets (an RTO layer); called every ``rto_every_n`` cycles in a worker thread."""

    def update(
        self,
        cycle: int,
        measurement: Measurement,
        estimate: StateEstimate,
        u: NDArray[np.float64],
        d: NDArray[np.float64],
    ) -> tuple[OperatingTarget | None, str]:
        """New targets (None keeps the current ones) and a status text for the record."""


class FramePublisher(Protocol):
    """Receives every cycle with the controller's result (``rtompc.live.view.UnitView``)."""

    def publish(
        self, record: CycleRecord, result: MpcResult | None, *, target: OperatingTarget | None
    ) -> Any:
        """Take one cycle; must not block."""


class Recorder(Protocol):
    """Receives every cycle record (historian, progress display, test probes)."""

    def append(self, record: CycleRecord) -> None:
        """Store one cycle."""


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs."""

    sample_time_s: float
    """Control period in plant time, seconds."""
    mode: Mode = Mode.ON
    """OFF (nothing computed), SHADOW (computed and logged, nothing written) or ON."""
    fallback: FallbackPolicy = FallbackPolicy.SHIFTED_PLAN
    """What to apply when a controller step is not usable."""
    speed: float = 1.0
    """Plant time per wall time for pacing real-time transports (the HIL speed factor)."""
    rto_every_n: int = 0
    """Call the target source every N cycles (0: never)."""
    mv_in_service: tuple[str, ...] | None = None
    """MVs the loop may write (None: all); the others are held at the plant's values."""
    max_fallback_cycles: int = 20
    """After this many consecutive fallback cycles the loop stops writing (holds the plant)."""
    handshake: HandshakeSettings = field(default_factory=HandshakeSettings)
    """How REMOTE is asked for, and again after the plant dropped to LOCAL."""
    clock_tolerance_s: float | None = None
    """Largest accepted jump of the plant clock against the engine clock, plant s
    (None: 2 sample times in real time, half a sample time in lockstep)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_time_s) and self.sample_time_s > 0):
            raise ConfigError(f"loop.sample_time_s: expected > 0, got {self.sample_time_s}")
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ConfigError(f"loop.speed: expected > 0, got {self.speed}")
        if self.rto_every_n < 0:
            raise ConfigError(f"loop.rto_every_n: expected >= 0, got {self.rto_every_n}")
        if not isinstance(self.mode, Mode):
            raise ConfigError(f"loop.mode: expected one of off/shadow/on, got {self.mode!r}")


class ControlLoop:
    """Runs estimator, targets and controller against a :class:`PlantIO`."""

    def __init__(
        self,
        model: PlantModel,
        io: PlantIO,
        estimator: Estimator,
        controller: Controller,
        settings: LoopSettings,
        *,
        target: OperatingTarget | None = None,
        target_source: TargetSource | None = None,
        recorders: Sequence[Recorder] = (),
        on_cycle: Callable[[CycleRecord], None] | None = None,
        supervision: SupervisionSettings | None = None,
        live: LiveParameters | None = None,
        view: FramePublisher | None = None,
    ) -> None:
        if tuple(io.mv_names) != model.u.names:
            raise ConfigError(
                f"plant I/O MVs {io.mv_names} do not match the model's inputs {model.u.names}"
            )
        self.model = model
        self.io = io
        self.estimator = estimator
        self.controller = controller
        self.settings = settings
        self.target = target
        self.target_source = target_source
        self.recorders = list(recorders)
        self.on_cycle = on_cycle
        self.stats = LoopStats()
        names = settings.mv_in_service if settings.mv_in_service is not None else model.u.names
        self._in_service = np.array([n in names for n in model.u.names])
        unknown = [n for n in names if n not in model.u]
        if unknown:
            raise ConfigError(f"loop.mv_in_service: unknown MVs {unknown}; known {model.u.names}")
        self.handshake = RemoteHandshake(settings.handshake)
        """REMOTE/LOCAL state: whether the engine is in control, refusals, drops."""
        self.clock = EngineClock(settings.speed)
        """Engine time (monotonic, plant seconds)."""
        tol = settings.clock_tolerance_s
        if tol is None:
            tol = settings.sample_time_s * (0.5 if io.lockstep else 2.0)
        self.plant_clock = PlantClockWatch(tol)
        """Jumps of the plant clock against the engine clock."""
        self.write_attempts = 0
        """Cycles in which a write was sent (the denominator of the write-failure share)."""
        self.skipped_periods = 0
        """Periods skipped after stalls (included in ``stats.overruns``)."""
        self.connected = False
        """Whether the link was up in the last cycle."""
        self._u_applied: NDArray[np.float64] | None = None
        self._follow_plant = True
        self._d_last = model.nominal.d.copy()
        self._d_seen = False
        self._last_good: MpcResult | None = None
        self._since_good = 0
        self._heartbeat = 0
        self._write_problem = ""
        self._rescued = False
        self._cycle = 0
        self._stop = asyncio.Event()
        self._notes: list[str] = []
        self.supervision = supervision if supervision is not None else SupervisionSettings()
        self.actuators = ActuatorSupervisor(
            model, settings.sample_time_s, self.supervision.actuators, io.actuator_feedback
        )
        self._flags = FlagTracker()
        self._judged = False  # the plant held setpoints this loop wrote over the last period
        self._replan = False
        self._limit_text: dict[str, str] = {}
        self._sup_bounds: dict[str, tuple[float, float]] = {}
        self.live = LiveApplier(live, model.u.names) if live is not None else None
        """Live parameters (operator/engineer changes), applied at the start of a cycle."""
        self.view = view
        """Fed after every cycle (:class:`rtompc.live.view.UnitView`; see
        ``UnitView.for_loop``)."""
        self.last_result: MpcResult | None = None
        """The controller's result of the last cycle (None: not computed)."""
        self.last_target: OperatingTarget | None = None
        """The target the controller tracked in the last cycle (live setpoints included)."""

    # ------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish after the current cycle."""
        self._stop.set()

    def note(self, event: str) -> None:
        """Record ``event`` with the next cycle (a coordinator saying it holds this unit's
        targets): it goes to that cycle's events, the log and the historian."""
        self._notes.append(event)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def return_to_service(self, mv: str) -> bool:
        """Operator: put an MV the actuator supervision took out back in service (next cycle)."""
        if self.actuators.return_to_service(mv, float(self._cycle) * self.settings.sample_time_s):
            self._replan = True
            return True
        return False

    async def _supervise_actuators(
        self, connected: bool, u_held: NDArray[np.float64], time_s: float, events: list[str]
    ) -> ActuatorReport | None:
        """Read actuator feedback, judge it against the held setpoints, re-plan on a change."""
        if not (connected and self.actuators.active):
            self._judged = False
            return None
        try:
            feedback: Measurement | None = await self.io.read_actuators()
        except PlantIOError as exc:
            events.append(f"actuator feedback read failed: {exc}")
            feedback = None
        report = self.actuators.observe(time_s, u_held, feedback, self._judged)
        events.extend(report.events)
        restrict = getattr(self.controller, "restrict_mvs", None)
        if (report.changed or self._replan) and restrict is not None:
            self._replan = False
            self._sup_bounds = dict(report.bounds)
            live = self.live.bounds if self.live is not None else {}
            await asyncio.to_thread(restrict, {**live, **report.bounds})
        return report

    def _limit_flags(
        self, result: MpcResult | None, sup: ActuatorReport | None, events: list[str]
    ) -> list[str]:
        """CVs the re-planned controller predicts beyond their limits (only while an MV is
        restricted by the actuator supervision: the controller says what it cannot hold)."""
        config = getattr(self.controller, "config", None)
        if sup is None or not sup.bounds or result is None or not result.usable or config is None:
            self._limit_text = {}
            return []
        risk = cv_limits_at_risk(self.model, getattr(config, "cvs", ()), result.y_pred)
        events.extend(t for n, t in risk.items() if self._limit_text.get(n) != t.split(" (")[0])
        self._limit_text = {n: t.split(" (")[0] for n, t in risk.items()}
        return [f"{n}:{LIMIT_AT_RISK}" for n in risk]

    def set_mode(self, mode: Mode) -> None:
        """Switch OFF/SHADOW/ON between cycles (bumpless: the next move starts from the plant)."""
        if mode is Mode.ON and self.settings.mode is not Mode.ON:
            self.handshake.reset()
        self.settings = LoopSettings(**{**self.settings.__dict__, "mode": mode})
        self._follow_plant = True

    def request_remote(self) -> None:
        """An operator asks for REMOTE (the only way back under ``RemotePolicy.OPERATOR``)."""
        self.handshake.operator_request()

    async def _read_plant_mvs(self, base: NDArray[np.float64]) -> NDArray[np.float64]:
        """The MV setpoints the plant holds (``base`` where unknown); raises PlantIOError."""
        act = await self.io.read_setpoints()
        u = np.array(
            [
                act.values[act.names.index(n)] if n in act.names else np.nan
                for n in self.model.u.names
            ]
        )
        good = np.array(
            [
                act.quality[act.names.index(n)] is Quality.GOOD if n in act.names else False
                for n in self.model.u.names
            ]
        ) & np.isfinite(u)
        return np.where(good, u, base)

    def _disturbances(self, meas: Measurement) -> NDArray[np.float64]:
        d = self._d_last.copy()
        for i, n in enumerate(self.model.d.names):
            if n in meas.names and meas.good(n):
                d[i] = meas.value(n)
        self._d_last = d
        return d

    async def run(self, n_cycles: int | None = None) -> dict[str, float]:
        """Run ``n_cycles`` cycles (None: until :meth:`stop`); returns the statistics summary.

        Real-time transports: one cycle per ``sample_time_s / speed`` wall seconds, never
        catching up after a stall (:class:`rtompc.pacing.Pacer`).
        """
        pacer = Pacer(self.settings.sample_time_s / self.settings.speed)
        k = 0
        while not self._stop.is_set() and (n_cycles is None or k < n_cycles):
            tick: Tick | None = None
            if not self.io.lockstep:
                tick = await pacer.wait()
                self.stats.jitter_s.append(tick.late_s)
                if tick.skipped:
                    self.stats.overruns += tick.skipped
                    self.skipped_periods += tick.skipped
                    self._follow_plant = True  # re-initialise from what the plant holds now
            await self.step(tick)
            k += 1
        return {
            **self.stats.summary(),
            "skipped_periods": self.skipped_periods,
            "remote_requests": self.handshake.requests,
            "remote_drops": self.handshake.drops,
            "plant_clock_jumps": self.plant_clock.jumps,
        }

    async def step(self, tick: Tick | None = None) -> CycleRecord:
        """One cycle, then (lockstep transports) the plant advanced by one sample."""
        record = await self.cycle(tick)
        if self.io.lockstep and self.io.connected:
            try:
                await self.io.advance(1)
            except Exception as exc:  # noqa: BLE001 - a lost link must not end the loop
                logger.warning("lockstep advance failed: %s", exc)
        return record

    async def cycle(self, tick: Tick | None = None) -> CycleRecord:
        """One control cycle; never raises for solver or link failures."""
        t0 = time.monotonic()
        phases = PhaseClock()  # where the cycle's time goes (LoopStats.breakdown)
        lap = phases.lap
        wall = time.time()
        events: list[str] = self._notes
        self._notes = []
        if self.live is not None:  # live changes take effect from this cycle on
            step = self.live.begin(events)
            if step.mode is not None and step.mode is not self.settings.mode:
                self.set_mode(step.mode)
        lap("live")
        settings = self.settings
        on = settings.mode is Mode.ON
        period_wall = settings.sample_time_s / settings.speed
        if tick is not None and tick.skipped:
            events.append(
                f"stall: {tick.skipped} period(s) skipped ({tick.late_s:.3g} s late), "
                "counted as overruns; re-initialising from the plant"
            )
        meas = await self.io.read()
        lap("read")
        connected = self.io.connected
        if connected and not self.connected:
            self._follow_plant = True
            if self._cycle > 0:
                self.stats.reconnects += 1
                events.append("link back (reconnected): re-initialising from the plant's MV values")
        elif not connected and self.connected:
            events.append("link lost: writing nothing, estimating open loop")
            self.handshake.link_lost()
        self.connected = connected
        # clocks: engine time is monotonic; the plant's is recorded and watched
        if connected:
            self.clock.anchor(meas.time_s)
        t_engine = self.clock.now(self.io.lockstep)
        if connected:
            jump = self.plant_clock.check(meas.time_s, t_engine)
            if jump:
                events.append(jump)
        plant_mode, plant_text, in_control = "", "", False
        if connected:
            side = await self.handshake.poll(self.io, on, events)
            plant_mode = side.mode.name if side.mode is not None else "UNKNOWN"
            plant_text, in_control = side.status_text, side.in_control
            if on and not in_control:
                self._follow_plant = True
        else:
            self.stats.disconnected_cycles += 1
        if connected and (self._follow_plant or self._u_applied is None or not on):
            base = self._u_applied if self._u_applied is not None else self.model.nominal.u
            try:
                self._u_applied = await self._read_plant_mvs(base)
                self._follow_plant = not (on and in_control)
                resync = getattr(self.io, "set_reference", None)
                if resync is not None:  # the transport's rate limits start from here too
                    resync(self._u_applied)
            except PlantIOError as exc:  # link lost again: retry next cycle
                events.append(f"reading the plant's MVs failed: {exc}")
        u_plant = self._u_applied.copy() if self._u_applied is not None else self.model.nominal.u
        in_service = self._in_service
        lap("plant_status")
        if self.live is not None:  # a rebuild may outlast the PLC's watchdog: keep beating
            await self._keeping_alive(
                self.live.apply_controller(self.controller, u_plant, self._sup_bounds),
                alive=connected and on and in_control,
                every_s=period_wall,
                events=events,
            )
            in_service = in_service & self.live.in_service()
            lap("live")
        sup = await self._supervise_actuators(connected, u_plant, t_engine, events)
        in_service = in_service if sup is None else in_service & sup.in_service
        if sup is not None:  # out of service by supervision: hold at (track) the position
            track = (~sup.in_service) & np.isfinite(sup.u_measured)
            u_plant = np.where(track, sup.u_measured, u_plant)
        lap("supervision")
        # the estimator predicts the last sample: with the disturbances held over it (those
        # measured a cycle ago, zero-order hold), not those measured at its end
        d_held = self._d_last.copy() if self._d_seen else None
        d = self._disturbances(meas)
        self._d_seen = True
        t_est = time.monotonic()
        est_result = self.estimator.update(
            meas, sup.u_estimator if sup else u_plant, d if d_held is None else d_held
        )
        estimate: StateEstimate = est_result.estimate
        est_time = time.monotonic() - t_est
        lap("estimator")
        rto_status = ""
        if (
            self.target_source is not None
            and settings.rto_every_n
            and self._cycle % settings.rto_every_n == 0
            and connected
            and (self.live is None or self.live.rto_enabled)
        ):
            try:
                new_target, rto_status = await asyncio.to_thread(
                    self.target_source.update, self._cycle, meas, estimate, u_plant, d
                )
            except Exception as exc:  # noqa: BLE001 - RTO failure keeps the previous targets
                new_target, rto_status = None, f"rto error: {exc}"
                logger.warning("RTO failed at cycle %d: %s", self._cycle, exc)
            if new_target is not None:
                self.target = new_target
                self.stats.rto_updates += 1
                events.append("new targets from RTO")
        lap("rto")
        nan_u = np.full(len(self.model.u), np.nan)
        result: MpcResult | None = None
        u_move: NDArray[np.float64] = nan_u
        fallback = False
        tracked = self.target if self.live is None else self.live.target(self.target)
        lap("live")
        if settings.mode is not Mode.OFF:
            result = await asyncio.to_thread(
                self.controller.step,
                estimate.x,
                target=tracked,
                d=d,
                y_bias=estimate.y_bias if estimate.y_bias.size else None,
                u_bias=estimate.u_bias if estimate.u_bias.size else None,
                u_prev=u_plant,
                time_s=t_engine,
            )
            self.stats.solve_times_s.append(result.solve_time_s)
            self._note_solver(result, events)
            if result.usable and result.u is not None:
                u_move = np.asarray(result.u, dtype=float)
                if self._since_good:
                    events.append(f"fallback left after {self._since_good} cycle(s)")
                self._last_good = result
                self._since_good = 0
            else:
                self._since_good += 1
                fallback = True
                self.stats.fallbacks += 1
                fb = fallback_move(
                    settings.fallback,
                    self._last_good,
                    self._since_good,
                    u_last_applied=u_plant,
                    lower=self.model.u.lower,
                    upper=self.model.u.upper,
                )
                u_move = fb if fb is not None else nan_u
                events.append(
                    f"fallback ({settings.fallback.value}): {result.status.value}: {result.message}"
                )
        u_move = np.where(in_service, u_move, u_plant)
        lap("nmpc")
        u_written, u_requested, u_readback = nan_u, None, None
        mv_status: tuple[str, ...] = ()
        write_status = "off" if settings.mode is Mode.OFF else "shadow"
        self._judged = False
        beat = connected and on and in_control  # the heartbeat only while in control
        if on:
            if not connected:
                write_status = WriteStatus.NOT_CONNECTED.value
            elif not in_control:
                write_status = f"held: plant {plant_mode}"
            elif self._since_good > settings.max_fallback_cycles:
                write_status = "held: too many consecutive fallbacks"
                events.append(write_status)
            elif np.all(np.isfinite(u_move)):
                move = ControlMove(time_s=t_engine, u=u_move, names=self.model.u.names)
                # the heartbeat goes out beside the write (two requests in flight, one wait)
                wr, _ = await asyncio.gather(self.io.write(move), self._beat())
                beat = False
                write_status = wr.status.value
                accepted = self._accepted(wr)
                u_written = np.where(accepted, wr.written, np.nan)
                u_requested, u_readback = wr.written, wr.readback
                mv_status = tuple(s.value for s in wr.mv_status)
                self._u_applied = self._held_after_write(wr, accepted, u_plant)
                self._account_write(wr, accepted, events)
                self._judged = wr.status in (WriteStatus.VERIFIED, WriteStatus.MISMATCH)
            else:
                write_status = "nothing to write"
        lap("write")
        flags = [
            *(sup.flags if sup is not None else ()),
            *sensor_flags(getattr(est_result, "validation", None)),
            *self._limit_flags(result, sup, events),
        ]
        events.extend(self._flags.update(flags, t_engine))
        lap("bookkeeping")
        if beat:
            await self._beat()
        lap("heartbeat")
        cycle_time = time.monotonic() - t0
        overrun = (not self.io.lockstep) and cycle_time > period_wall
        if overrun:
            self.stats.overruns += 1
        self.stats.cycles += 1
        self.stats.cycle_times_s.append(cycle_time)
        record = CycleRecord(
            cycle=self._cycle,
            time_s=t_engine,
            wall_time_s=wall,
            mode=settings.mode,
            connected=connected,
            measurement=meas,
            estimate=estimate,
            target=self.target,
            mv_names=self.model.u.names,
            u_computed=u_move,
            u_written=u_written,
            u_plant=u_plant,
            solver_status=result.status.value
            if result is not None
            else SolveStatus.FAILED.value
            if settings.mode is not Mode.OFF
            else "off",
            solver=result.solver if result is not None else "",
            fallback=fallback,
            solve_time_s=result.solve_time_s if result is not None else 0.0,
            estimator_time_s=est_time,
            cycle_time_s=cycle_time,
            overrun=overrun or bool(tick is not None and tick.skipped),
            write_status=write_status,
            rto_status=rto_status,
            events=tuple(events),
            u_requested=u_requested,
            u_readback=u_readback,
            mv_status=mv_status,
            plant_time_s=meas.time_s,
            u_measured=sup.u_measured if sup is not None else None,
            flags=tuple(flags),
            plant_mode=plant_mode,
            plant_status_text=plant_text,
        )
        lap("bookkeeping")
        for ev in events:
            logger.info("cycle %d: %s", self._cycle, ev)
        if self.live is not None:
            self.live.live.set_actual("controller.mode", settings.mode)
        for rec in self.recorders:
            rec.append(record)
        if self.on_cycle is not None:
            self.on_cycle(record)
        self.last_result, self.last_target = result, tracked
        if self.view is not None:
            try:
                self.view.publish(record, result, target=tracked)
            except Exception:  # noqa: BLE001 - a view must never stop the loop
                logger.exception("cycle %d: publishing to the engine view failed", self._cycle)
        lap("publish")
        self.stats.add_phases(phases.times_s)
        self._cycle += 1
        if self.io.lockstep:
            self.clock.step(settings.sample_time_s)
        return record

    async def _keeping_alive(
        self, work: Awaitable[None], *, alive: bool, every_s: float, events: list[str]
    ) -> None:
        """Await ``work`` (a controller rebuild after a live change: 0.1 s to seconds, more on
        large models); while the plant is in our control, send the heartbeat every
        ``every_s`` (the sample period in wall time, the loop's own cadence) until it ends,
        so an operator's change never trips the PLC's watchdog. A failed beat is noted,
        not raised: the cycle's own write and heartbeat follow."""
        if not alive:
            await work
            return
        task = asyncio.ensure_future(work)
        beats, t0 = 0, time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(every_s, 0.01))
                if done:
                    task.result()
                    break
                try:
                    await self._beat()
                    beats += 1
                except PlantIOError as exc:
                    events.append(f"heartbeat during the controller rebuild failed: {exc}")
                    await task
                    break
        finally:
            if not task.done():
                task.cancel()
        if beats:
            events.append(
                f"controller rebuild took {time.monotonic() - t0:.2g} s: "
                f"{beats} heartbeat(s) sent meanwhile"
            )

    async def _beat(self) -> None:
        """The next heartbeat count to the plant."""
        self._heartbeat = (self._heartbeat + 1) % 2**32
        await self.io.heartbeat(self._heartbeat)

    def _note_solver(self, result: MpcResult, events: list[str]) -> None:
        """One line when a step needed another solver than the configured one, and when the
        configured one is back (the first step's IPOPT warm start is not a rescue)."""
        kind = getattr(getattr(self.controller, "solver_kind", None), "value", None)
        if kind is None or not result.usable or not result.solver or self._cycle == 0:
            return
        if result.solver != kind and not self._rescued:
            events.append(
                f"solver rescue: {result.solver} instead of {kind}"
                + (f" ({result.message})" if result.message else "")
            )
            self._rescued = True
        elif result.solver == kind and self._rescued:
            events.append(f"solver {kind} again")
            self._rescued = False

    @staticmethod
    def _accepted(wr: WriteResult) -> NDArray[np.bool_]:
        """Per MV: the plant took the value (from the per-MV status, else from ``written``)."""
        if wr.mv_status:
            ok = (MvWriteStatus.ACCEPTED, MvWriteStatus.CLAMPED, MvWriteStatus.MISMATCH)
            return np.array([s in ok for s in wr.mv_status])
        sent = wr.status in (
            WriteStatus.VERIFIED,
            WriteStatus.MISMATCH,
            WriteStatus.UNVERIFIED,
            WriteStatus.REJECTED,
        )
        return np.isfinite(np.asarray(wr.written, dtype=float)) & sent

    @staticmethod
    def _held_after_write(
        wr: WriteResult, accepted: NDArray[np.bool_], u_plant: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """What the plant holds after a write: the transport's ``held`` when it gives one,
        else the read-back where known, else the accepted written value, else what it held
        before."""
        held_by_io = np.asarray(getattr(wr, "held", ()), dtype=float)
        if held_by_io.shape == u_plant.shape:
            return np.where(np.isfinite(held_by_io), held_by_io, u_plant)
        held = np.where(accepted & np.isfinite(wr.written), wr.written, u_plant)
        return np.where(np.isfinite(wr.readback), wr.readback, held)

    def _account_write(
        self, wr: WriteResult, accepted: NDArray[np.bool_], events: list[str]
    ) -> None:
        if wr.status is WriteStatus.NOTHING_TO_WRITE:
            return
        self.write_attempts += 1
        if accepted.any():
            self.stats.writes += 1
        if wr.status not in (WriteStatus.VERIFIED, WriteStatus.MISMATCH):
            self.stats.write_failures += 1
            why = f"write {wr.status.value}: {wr.message}"
        else:
            why = ""
        if why != self._write_problem:  # one line per change, not per cycle
            events.append(why or f"writes {wr.status.value} again")
        self._write_problem = why
