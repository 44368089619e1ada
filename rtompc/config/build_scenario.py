"""A validated scenario file -> the runner's :class:`~rtompc.scenarios.spec.ScenarioSpec`."""

from __future__ import annotations

from mpc.fallback import FallbackPolicy
from plant_models.samples import Mode
from rtompc.config.build import (
    economics_spec,
    estimator_config,
    mpc_config,
    rto_spec,
    sample_time,
    supervision,
)
from rtompc.config.scenario import ScenarioConfig
from rtompc.config.transport import TransportKind
from rtompc.scenarios.spec import (
    Criterion,
    EstimatorKind,
    EstimatorSpec,
    Event,
    KpiSpec,
    LoopSpec,
    ModelSpec,
    PlantSpec,
    ScenarioSpec,
    TransportSpec,
)
from rtompc.scenarios.spec import TransportKind as SpecTransport


def scenario_spec(cfg: ScenarioConfig) -> ScenarioSpec:
    """The runner's description of a loaded scenario."""
    file = cfg.source
    dt = sample_time(cfg)
    mpc, solver = mpc_config(cfg)
    p = cfg.plant
    plant = PlantSpec(
        name=p.name,
        params=dict(p.params),
        x0=dict(p.x0),
        u0=dict(p.u0),
        d=dict(p.d),
        p=dict(p.p),
        integrator=p.integrator.value,
        noise_std=dict(p.noise_std),
        seed=p.seed,
    )
    m = cfg.model
    model = (
        ModelSpec(m.name, dict(m.params), dict(m.p))
        if m is not None
        else ModelSpec(p.name, dict(p.params))
    )
    lp = cfg.loop
    loop = LoopSpec(
        sample_time_s=dt,
        mode=lp.mode or Mode.ON,
        fallback=FallbackPolicy(lp.fallback),
        max_fallback_cycles=lp.max_fallback_cycles,
        mv_in_service=tuple(lp.mv_in_service) if lp.mv_in_service is not None else None,
    )
    e = cfg.estimator
    estimator = EstimatorSpec(
        EstimatorKind(e.kind.value), estimator_config(cfg), dict(e.x0), e.mhe_horizon_steps
    )
    rto = rto_spec(cfg)
    events = sorted([*cfg.event, *(f.as_event() for f in cfg.fault)], key=lambda ev: ev.t_s)
    return ScenarioSpec(
        path=file if file is not None else cfg.scenario.name or "scenario",  # type: ignore[arg-type]
        name=cfg.scenario.name or (file.stem if file is not None else "scenario"),
        description=cfg.scenario.description,
        tags=tuple(cfg.scenario.tags),
        duration_s=cfg.scenario.duration_s,
        plant=plant,
        model=model,
        loop=loop,
        mpc=mpc,
        mpc_solver=solver.value,
        estimator=estimator,
        economics=economics_spec(cfg),
        rto=rto,
        transport=TransportSpec(
            SpecTransport(cfg.transport.kind.value)
            if cfg.transport.kind is TransportKind.OPCUA
            else SpecTransport.INPROCESS
        ),
        events=tuple(
            Event(
                i,
                ev.t_s,
                ev.kind,
                ev.signal,
                ev.value,
                ev.duration_s,
                ev.fault,
                ev.magnitude,
                ev.mode,
            )
            for i, ev in enumerate(events)
        ),
        criteria=tuple(Criterion(i, c.kpi, c.op, c.threshold) for i, c in enumerate(cfg.criterion)),
        kpi=KpiSpec(dict(cfg.kpi.settling_band), cfg.kpi.settling_rel),
        supervision=supervision(cfg),
        config=cfg,
    )
