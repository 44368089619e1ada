"""Runs one scenario: builds plant, model, controller, estimator and RTO, closes the loop.

The loop is :class:`rtompc.runtime.ControlLoop` over the scenario's bench
(:mod:`rtompc.scenarios.bench`): the in-process lockstep plant by default, or
the HIL simulator over OPC UA on loopback, lockstep. This module drives the loop
one cycle at a time so timed events land between cycles: fire events ->
``loop.cycle()`` -> record the plant truth -> advance the plant one period (the
plant keeps running through link outages). At the end it computes the KPIs,
checks the criteria and returns a :class:`~rtompc.scenarios.result.ScenarioResult`.

:func:`run_scenario_file` never raises: a bad file or a crash becomes an ERROR
result with the reason, which is what the campaign and the pytest plugin need.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from mpc.controller import NmpcController, SolverKind
from mpc.estimation import ExtendedKalmanFilter, MheConfig, MovingHorizonEstimator
from mpc.result import MpcResult
from plant_models import library
from plant_models.errors import EngineError
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget
from rtompc.runtime import ControlLoop, LoopSettings
from rtompc.scenarios.bench import make_bench
from rtompc.scenarios.economics import IdealProfit, ScenarioRto, profit_rate
from rtompc.scenarios.events import EventScheduler
from rtompc.scenarios.kpis import Trace, compute_kpis
from rtompc.scenarios.result import Prediction, ScenarioResult, ScenarioStatus, check_criteria
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


async def run_scenario_async(spec: ScenarioSpec) -> ScenarioResult:
    """Run ``spec`` in-process, lockstep; returns its result (raises only for set-up errors)."""
    t_start = time.perf_counter()
    plant = library.load(spec.plant.name, **dict(spec.plant.params))
    model = library.load(spec.model.name, **dict(spec.model.params))
    if spec.model.p:
        model = model.with_nominal(p=spec.model.p)
    dt = spec.loop.sample_time_s
    bench = make_bench(spec, plant)
    io = bench.io
    controller = _RecordingController(NmpcController(model, spec.mpc, SolverKind(spec.mpc_solver)))
    est_x0 = dict(spec.estimator.x0) or None
    est_cfg = with_sensor_checks(spec.estimator.config, model, spec.supervision.sensors)
    estimator: Any
    if spec.estimator.kind is EstimatorKind.MHE:
        estimator = MovingHorizonEstimator(
            model,
            est_cfg,
            MheConfig(horizon_steps=spec.estimator.mhe_horizon_steps),
            x0=est_x0,
        )
    else:
        estimator = ExtendedKalmanFilter(model, est_cfg, x0=est_x0)
    prices = dict(spec.economics.prices) if spec.economics is not None else {}
    rto: Any = None
    if spec.rto is not None and spec.economics is not None:
        if spec.config is not None and spec.config.rto is not None:
            from rtompc.config import build

            # the same RTO layer as `rtompc run`: method and RTO model from [rto]
            rto = build.rto_source(spec.config, build.models(spec.config))
            if not hasattr(rto, "observe"):
                rto = _StageSource(rto)
        else:
            rto = ScenarioRto(model, spec.economics, spec.rto, dt)
    ideal = IdealProfit(plant, spec.economics) if spec.economics is not None else None
    sp_y = {c.name: c.target for c in spec.mpc.cvs if c.target is not None}
    sp_u = {m.name: m.target for m in spec.mpc.mvs if m.target is not None}
    sched = EventScheduler(
        spec.events, model, setpoints_y=sp_y, setpoints_u=sp_u, prices=prices, mode=spec.loop.mode
    )
    settings = LoopSettings(
        sample_time_s=dt,
        mode=spec.loop.mode,
        fallback=spec.loop.fallback,
        rto_every_n=(
            max(1, int(round(spec.rto.every_s / dt)))
            if rto is not None and spec.rto is not None
            else 0
        ),
        mv_in_service=spec.loop.mv_in_service,
        max_fallback_cycles=spec.loop.max_fallback_cycles,
    )
    loop = ControlLoop(
        model,
        io,
        estimator,
        controller,
        settings,
        target=_target(0.0, sp_y, sp_u),
        target_source=rto,
        supervision=spec.supervision,
    )
    cvs = tuple(n for n in _cv_names(spec, model) if n in plant.y and n in model.y)
    cv_plant = [plant.y.index(n) for n in cvs]
    cv_model = [model.y.index(n) for n in cvs]
    specs = {n: spec.mpc.cv(n) for n in cvs}
    cv_lower = np.array([s.lower if s is not None else -math.inf for s in specs.values()])
    cv_upper = np.array([s.upper if s is not None else math.inf for s in specs.values()])
    cfg_target = {n: (s.target if s is not None else None) for n, s in specs.items()}
    n = spec.n_cycles
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "t",
            "y",
            "ym",
            "sp",
            "u",
            "solve",
            "fb",
            "svc",
            "conn",
            "wfail",
            "profit",
            "ideal",
            "flags",
            "yest",
        )
    }
    predictions: list[Prediction] = []
    every_pred = max(1, n // N_PREDICTIONS)
    events: list[str] = []
    t_loop = time.perf_counter()
    await bench.start()
    try:
        for k in range(n):
            t = bench.time_s
            for text in sched.apply(t, bench):
                events.append(f"t={t:g}s event: {text}")
            if sched.changed_y or sched.changed_u:
                base = loop.target
                loop.target = _target(
                    t,
                    {**(base.y if base else {}), **sched.changed_y},
                    {**(base.u if base else {}), **sched.changed_u},
                )
            if rto is not None and sched.prices_changed:
                rto.set_prices(sched.prices)
            if sched.mode is not loop.settings.mode:
                loop.set_mode(sched.mode)
                if sched.mode is Mode.ON and io.connected:
                    # the operator hands the MVs to the controller: plant to REMOTE
                    await io.request_mode(remote=True)
            y_true, _, d_true, p_true = bench.truth()
            rec = await loop.cycle()
            await bench.advance()
            _, u_now, _, _ = bench.truth()  # MVs the plant held over the period just simulated
            events.extend(f"t={t:g}s loop: {e}" for e in rec.events)
            if rec.rto_status:
                events.append(f"t={t:g}s rto: {rec.rto_status}")
            if rto is not None:
                rto.observe(rec.measurement)
            rows["t"].append(t)
            rows["y"].append(y_true[cv_plant])
            meas = rec.measurement
            rows["ym"].append(
                [meas.value(c) if c in meas.names and meas.good(c) else math.nan for c in cvs]
            )
            tgt = rec.target.y if rec.target is not None else {}
            rows["sp"].append(
                [
                    tgt.get(c, cfg_target[c]) if tgt.get(c, cfg_target[c]) is not None else math.nan
                    for c in cvs
                ]
            )
            rows["u"].append(u_now)
            rows["solve"].append(rec.solve_time_s if rec.solver_status != "off" else math.nan)
            rows["fb"].append(rec.fallback)
            rows["svc"].append(
                rec.mode is Mode.ON and rec.connected and rec.write_status in _WRITTEN
            )
            rows["conn"].append(rec.connected)
            rows["wfail"].append(rec.write_status in _WRITE_FAILED)
            rows["flags"].append(rec.flags)
            if ideal is not None:
                rows["profit"].append(profit_rate(plant, sched.prices, y_true, u_now, d_true))
                rows["ideal"].append(ideal.rate(sched.prices, d_true, p_true))
            last = controller.last
            usable = last is not None and last.usable and last.y_pred.size
            rows["yest"].append(
                last.y_pred[0, cv_model] if usable and last is not None else [math.nan] * len(cvs)
            )
            if k % every_pred == 0 and last is not None and last.usable and last.y_pred.size:
                tp = t + dt * np.arange(last.y_pred.shape[0])
                predictions.append(
                    Prediction(t, np.asarray(tp, dtype=np.float64), last.y_pred[:, cv_model])
                )
    finally:
        await bench.stop()
    wall_loop = time.perf_counter() - t_loop

    def arr(key: str, width: int | None = None) -> np.ndarray:
        a = np.asarray(rows[key], dtype=float)
        return a.reshape(-1, width) if width is not None else a

    trace = Trace(
        t=arr("t"),
        cv_names=cvs,
        y=arr("y", len(cvs)),
        y_measured=arr("ym", len(cvs)),
        setpoint=arr("sp", len(cvs)),
        cv_lower=cv_lower,
        cv_upper=cv_upper,
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
        wall_time_s=wall_loop,
        sample_time_s=dt,
        y_estimated=arr("yest", len(cvs)),
        flags=tuple(rows["flags"]),
    )
    kpis = compute_kpis(
        trace,
        settling_band=dict(spec.kpi.settling_band),
        settling_rel=spec.kpi.settling_rel,
        cv_nominal={c: model.y[c].nominal for c in cvs},
    )
    faults = (EventKind.SENSOR_FAULT, EventKind.ACTUATOR_FAULT, EventKind.COMM_FAULT)
    onsets = [(ev.signal, ev.t_s) for ev in spec.events if ev.kind in faults]
    kpis.update(supervision_kpis(trace, onsets, [c.kpi for c in spec.criteria]))
    if rto is not None:
        kpis["rto_updates"] = float(loop.stats.rto_updates)
        kpis["rto_waits"] = float(sum(" rto: rto waits" in e for e in events))
    outcomes = check_criteria(spec.criteria, kpis)
    failed = [o for o in outcomes if not o.passed]
    status = ScenarioStatus.FAILED if failed else ScenarioStatus.PASSED
    message = "; ".join(o.describe() for o in failed)
    if len(events) > MAX_EVENT_LINES:
        events = events[:MAX_EVENT_LINES] + [f"... {len(events) - MAX_EVENT_LINES} more"]
    return ScenarioResult(
        name=spec.name,
        path=str(spec.path),
        tags=spec.tags,
        status=status,
        kpis=kpis,
        criteria=outcomes,
        message=message,
        wall_time_s=time.perf_counter() - t_start,
        trace=trace,
        predictions=tuple(predictions),
        events=tuple(events),
        description=spec.description,
    )


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read a scenario file through :mod:`rtompc.config` and describe it for the runner."""
    from rtompc.config import load_scenario as load_scenario_config
    from rtompc.config.build_scenario import scenario_spec

    return scenario_spec(load_scenario_config(path))


def run_scenario(spec: ScenarioSpec | str | Path) -> ScenarioResult:
    """Run a scenario (a spec or a file) to completion; raises for set-up errors."""
    if not isinstance(spec, ScenarioSpec):
        spec = load_scenario(spec)
    return asyncio.run(run_scenario_async(spec))


def run_scenario_file(path: str | Path) -> ScenarioResult:
    """Load and run one scenario file; never raises (errors become an ERROR result)."""
    t0 = time.perf_counter()
    p = Path(path)
    name: str = p.stem
    tags: tuple[str, ...] = ()
    try:
        spec = load_scenario(p)
        name, tags = spec.name, spec.tags
        return run_scenario(spec)
    except EngineError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - one scenario must never stop a campaign
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        logger.exception("scenario %s crashed", p)
    return ScenarioResult(
        name=name,
        path=str(p),
        tags=tuple(tags),
        status=ScenarioStatus.ERROR,
        message=message,
        wall_time_s=time.perf_counter() - t0,
    )
