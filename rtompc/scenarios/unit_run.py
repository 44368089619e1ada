"""One unit's closed loop in a scenario, cycle by cycle: build, fire events, cycle, record, judge.

:class:`UnitRun` builds a unit's stack from its :class:`~rtompc.scenarios.spec.ScenarioSpec`
(plant bench, model, NMPC, estimator, optional RTO and economics) and runs it
one control period at a time (:meth:`UnitRun.cycle`): fire the events due ->
``loop.cycle()`` -> advance the plant one period (the plant keeps running through
link outages) -> record the plant truth. :meth:`UnitRun.result` computes the KPIs,
checks the criteria and returns a :class:`~rtompc.scenarios.result.ScenarioResult`.

The single-unit runner (:mod:`rtompc.scenarios.runner`) drives one of these to the
end; the site runner (:mod:`rtompc.scenarios.site_runner`) drives several in
plant-time lockstep under the multi-unit coordinator.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from mpc.controller import NmpcController, SolverKind
from mpc.estimation import ExtendedKalmanFilter, MheConfig, MovingHorizonEstimator
from mpc.result import MpcResult
from plant_models import library
from plant_models.errors import EngineError
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.runtime import ControlLoop, LoopSettings
from rtompc.scenarios.bench import make_bench
from rtompc.scenarios.economics import IdealProfit, ScenarioRto, profit_rate
from rtompc.scenarios.events import EventScheduler
from rtompc.scenarios.kpis import Trace, compute_kpis
from rtompc.scenarios.result import Prediction, ScenarioResult, judged
from rtompc.scenarios.spec import EstimatorKind, EventKind, ScenarioSpec
from rtompc.scenarios.supervision_kpis import supervision_kpis
from rtompc.supervision import with_sensor_checks

logger = logging.getLogger(__name__)

N_PREDICTIONS = 6
"""Prediction snapshots kept for the trend plots."""
MAX_EVENT_LINES = 200
"""Loop event lines kept in a result."""
_WRITTEN = ("verified", "mismatch")
_WRITE_FAILED = ("rejected", "nothing_to_write")
_ROWS = ("t", "y", "ym", "sp", "u", "solve", "fb", "svc", "conn", "wfail", "profit", "ideal")


class _RecordingController:
    """Passes steps to the controller and keeps the last result (for prediction plots)."""

    def __init__(self, inner: NmpcController) -> None:
        self.inner = inner
        self.last: MpcResult | None = None

    def step(self, x: Any, **kwargs: Any) -> MpcResult:
        result = self.inner.step(x, **kwargs)
        self.last = result
        return result

    def __getattr__(self, name: str) -> Any:  # config, restrict_mvs, ... of the controller
        return getattr(self.inner, name)


class _StageSource:
    """The RTO stage (two-step / modifier adaptation) as the runner's RTO: it keeps its own
    steady-state window (filled when the loop calls it); prices are fixed by the file."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage

    def update(self, *args: Any, **kwargs: Any) -> Any:
        return self.stage.update(*args, **kwargs)

    def observe(self, measurement: Any) -> None:
        """The stage samples the plant when the loop calls it."""

    def set_prices(self, prices: Any) -> None:  # pragma: no cover - refused at load
        raise EngineError("price events need [rto] method = 'economic'")


def _cv_names(spec: ScenarioSpec, model: PlantModel) -> tuple[str, ...]:
    """CVs to record: configured CVs, outputs given setpoints by events, RTO hand-off CVs."""
    names = [c.name for c in spec.mpc.cvs]
    names += [e.signal for e in spec.events if e.kind is EventKind.SETPOINT and e.signal in model.y]
    if spec.rto is not None:
        names += list(spec.rto.handoff_cvs)
    return tuple(dict.fromkeys(names))


def _target(t: float, y: dict[str, float], u: dict[str, float]) -> OperatingTarget:
    return OperatingTarget(time_s=t, y=dict(y), u=dict(u), source="scenario")


def _rto_source(spec: ScenarioSpec, model: PlantModel) -> Any:
    if spec.rto is None or spec.economics is None:
        return None
    if spec.config is not None and spec.config.rto is not None:
        from rtompc.config import build

        # the same RTO layer as `rtompc run`: method and RTO model from [rto]
        rto = build.rto_source(spec.config, build.models(spec.config))
        return rto if hasattr(rto, "observe") else _StageSource(rto)
    return ScenarioRto(model, spec.economics, spec.rto, spec.loop.sample_time_s)


class UnitRun:
    """One unit of a scenario: its bench, loop, event scheduler and per-cycle record."""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        self.t_start = time.perf_counter()
        plant = library.load(spec.plant.name, **dict(spec.plant.params))
        model = library.load(spec.model.name, **dict(spec.model.params))
        if spec.model.p:
            model = model.with_nominal(p=spec.model.p)
        self.model, self.dt = model, spec.loop.sample_time_s
        self.bench = make_bench(spec, plant)
        self.io = self.bench.io
        self.controller = _RecordingController(
            NmpcController(model, spec.mpc, SolverKind(spec.mpc_solver))
        )
        est_x0 = dict(spec.estimator.x0) or None
        est_cfg = with_sensor_checks(spec.estimator.config, model, spec.supervision.sensors)
        estimator: Any
        if spec.estimator.kind is EstimatorKind.MHE:
            mhe = MheConfig(horizon_steps=spec.estimator.mhe_horizon_steps)
            estimator = MovingHorizonEstimator(model, est_cfg, mhe, x0=est_x0)
        else:
            estimator = ExtendedKalmanFilter(model, est_cfg, x0=est_x0)
        prices = dict(spec.economics.prices) if spec.economics is not None else {}
        self.rto = _rto_source(spec, model)
        self.ideal = IdealProfit(plant, spec.economics) if spec.economics is not None else None
        sp_y = {c.name: c.target for c in spec.mpc.cvs if c.target is not None}
        sp_u = {m.name: m.target for m in spec.mpc.mvs if m.target is not None}
        self.sched = EventScheduler(
            spec.events,
            model,
            setpoints_y=sp_y,
            setpoints_u=sp_u,
            prices=prices,
            mode=spec.loop.mode,
        )
        every = (
            max(1, int(round(spec.rto.every_s / self.dt)))
            if self.rto is not None and spec.rto is not None
            else 0
        )
        settings = LoopSettings(
            sample_time_s=self.dt,
            mode=spec.loop.mode,
            fallback=spec.loop.fallback,
            rto_every_n=every,
            mv_in_service=spec.loop.mv_in_service,
            max_fallback_cycles=spec.loop.max_fallback_cycles,
        )
        self.loop = ControlLoop(
            model,
            self.io,
            estimator,
            self.controller,
            settings,
            target=_target(0.0, sp_y, sp_u),
            target_source=self.rto,
            supervision=spec.supervision,
        )
        bplant = self.bench.plant
        self.cvs = tuple(n for n in _cv_names(spec, model) if n in bplant.y and n in model.y)
        self._cv_plant = [bplant.y.index(n) for n in self.cvs]
        self._cv_model = [model.y.index(n) for n in self.cvs]
        specs = {n: spec.mpc.cv(n) for n in self.cvs}
        self._cv_lower = np.array([s.lower if s is not None else -math.inf for s in specs.values()])
        self._cv_upper = np.array([s.upper if s is not None else math.inf for s in specs.values()])
        self._cfg_target = {n: (s.target if s is not None else None) for n, s in specs.items()}
        self.rows: dict[str, list[Any]] = {k: [] for k in (*_ROWS, "flags", "yest")}
        self.predictions: list[Prediction] = []
        self._every_pred = max(1, spec.n_cycles // N_PREDICTIONS)
        self.events: list[str] = []
        self.cycles = 0
        self.wall_loop_s = 0.0

    @property
    def time_s(self) -> float:
        """Plant time of the unit's bench, seconds."""
        return self.bench.time_s

    async def start(self) -> None:
        """Start the bench (in-process plant, or HIL server + OPC UA client)."""
        await self.bench.start()

    async def stop(self) -> None:
        """Stop the bench."""
        await self.bench.stop()

    def note(self, line: str) -> None:
        """Add a line to the run's event log (e.g. from the site coordinator)."""
        self.events.append(f"t={self.time_s:g}s {line}")

    async def cycle(self) -> CycleRecord:
        """Fire the events due, run one loop cycle, advance the plant one period, record."""
        t0 = time.perf_counter()
        bench, loop, sched, io = self.bench, self.loop, self.sched, self.io
        t = bench.time_s
        for text in sched.apply(t, bench):
            self.events.append(f"t={t:g}s event: {text}")
        if sched.changed_y or sched.changed_u:
            base = loop.target
            loop.target = _target(
                t,
                {**(base.y if base else {}), **sched.changed_y},
                {**(base.u if base else {}), **sched.changed_u},
            )
        if self.rto is not None and sched.prices_changed:
            self.rto.set_prices(sched.prices)
        if sched.mode is not loop.settings.mode:
            loop.set_mode(sched.mode)
            if sched.mode is Mode.ON and io.connected:
                # the operator hands the MVs to the controller: plant to REMOTE
                await io.request_mode(remote=True)
        y_true, _, d_true, p_true = bench.truth()
        rec = await loop.cycle()
        await bench.advance()
        _, u_now, _, _ = bench.truth()  # MVs the plant held over the period just simulated
        self.events.extend(f"t={t:g}s loop: {e}" for e in rec.events)
        if rec.rto_status:
            self.events.append(f"t={t:g}s rto: {rec.rto_status}")
        if self.rto is not None:
            self.rto.observe(rec.measurement)
        self._record(t, rec, y_true, u_now, d_true, p_true)
        self.cycles += 1
        self.wall_loop_s += time.perf_counter() - t0
        return rec

    def _record(self, t: float, rec: CycleRecord, y_true: Any, u_now: Any, d: Any, p: Any) -> None:
        rows, cvs = self.rows, self.cvs
        rows["t"].append(t)
        rows["y"].append(y_true[self._cv_plant])
        meas = rec.measurement
        rows["ym"].append(
            [meas.value(c) if c in meas.names and meas.good(c) else math.nan for c in cvs]
        )
        tgt = rec.target.y if rec.target is not None else {}
        sp = [tgt.get(c, self._cfg_target[c]) for c in cvs]
        rows["sp"].append([v if v is not None else math.nan for v in sp])
        rows["u"].append(u_now)
        rows["solve"].append(rec.solve_time_s if rec.solver_status != "off" else math.nan)
        rows["fb"].append(rec.fallback)
        rows["svc"].append(rec.mode is Mode.ON and rec.connected and rec.write_status in _WRITTEN)
        rows["conn"].append(rec.connected)
        rows["wfail"].append(rec.write_status in _WRITE_FAILED)
        rows["flags"].append(rec.flags)
        if self.ideal is not None:
            plant = self.bench.plant
            rows["profit"].append(profit_rate(plant, self.sched.prices, y_true, u_now, d))
            rows["ideal"].append(self.ideal.rate(self.sched.prices, d, p))
        last = self.controller.last
        usable = last is not None and last.usable and last.y_pred.size
        rows["yest"].append(
            last.y_pred[0, self._cv_model] if usable and last is not None else [math.nan] * len(cvs)
        )
        if self.cycles % self._every_pred == 0 and usable and last is not None:
            tp = t + self.dt * np.arange(last.y_pred.shape[0])
            self.predictions.append(
                Prediction(t, np.asarray(tp, dtype=np.float64), last.y_pred[:, self._cv_model])
            )

    def trace(self) -> Trace:
        """The per-cycle record as a :class:`Trace`."""
        rows, cvs, model = self.rows, self.cvs, self.model

        def arr(key: str, width: int | None = None) -> np.ndarray:
            a = np.asarray(rows[key], dtype=float)
            return a.reshape(-1, width) if width is not None else a

        return Trace(
            t=arr("t"),
            cv_names=cvs,
            y=arr("y", len(cvs)),
            y_measured=arr("ym", len(cvs)),
            setpoint=arr("sp", len(cvs)),
            cv_lower=self._cv_lower,
            cv_upper=self._cv_upper,
            mv_names=model.u.names,
            u=arr("u", len(model.u)),
            u_lower=model.u.lower,
            u_upper=model.u.upper,
            solve_time_s=arr("solve"),
            fallback=np.asarray(rows["fb"], dtype=bool),
            in_service=np.asarray(rows["svc"], dtype=bool),
            connected=np.asarray(rows["conn"], dtype=bool),
            write_failed=np.asarray(rows["wfail"], dtype=bool),
            profit_rate=arr("profit"),
            ideal_profit_rate=arr("ideal"),
            wall_time_s=self.wall_loop_s,
            sample_time_s=self.dt,
            y_estimated=arr("yest", len(cvs)),
            flags=tuple(rows["flags"]),
        )

    def kpis(self, trace: Trace) -> dict[str, float]:
        """The unit's KPIs over its trace (control, supervision, RTO)."""
        spec = self.spec
        kpis = compute_kpis(
            trace,
            settling_band=dict(spec.kpi.settling_band),
            settling_rel=spec.kpi.settling_rel,
            cv_nominal={c: self.model.y[c].nominal for c in self.cvs},
        )
        faults = (EventKind.SENSOR_FAULT, EventKind.ACTUATOR_FAULT, EventKind.COMM_FAULT)
        onsets = [(ev.signal, ev.t_s) for ev in spec.events if ev.kind in faults]
        kpis.update(supervision_kpis(trace, onsets, [c.kpi for c in spec.criteria]))
        viol = [v for k, v in kpis.items() if k.startswith("max_violation.")]
        kpis["limits_violated"] = float(sum(v > 1e-9 for v in viol))
        if self.rto is not None:
            kpis["rto_updates"] = float(self.loop.stats.rto_updates)
            kpis["rto_waits"] = float(sum(" rto: rto waits" in e for e in self.events))
        return kpis

    def result(self, extra_kpis: dict[str, float] | None = None) -> ScenarioResult:
        """KPIs, criteria and status of the run so far."""
        spec = self.spec
        trace = self.trace()
        kpis = self.kpis(trace)
        kpis.update(extra_kpis or {})
        events = self.events
        if len(events) > MAX_EVENT_LINES:
            events = events[:MAX_EVENT_LINES] + [f"... {len(events) - MAX_EVENT_LINES} more"]
        return judged(
            spec,
            kpis,
            time.perf_counter() - self.t_start,
            trace=trace,
            predictions=tuple(self.predictions),
            events=tuple(events),
        )


__all__ = ["UnitRun"]
