"""Cross-checks of a scenario file: events, faults and criteria against the plant and KPIs."""

from __future__ import annotations

import math
from pathlib import Path

from plant_models.model import PlantModel
from rtompc.config.checks import event_signals
from rtompc.config.errors import Problem
from rtompc.config.scenario import EventConfig, ScenarioConfig
from rtompc.config.transport import TransportKind
from rtompc.scenarios.kpis import kpi_domain, kpi_names
from rtompc.scenarios.spec import ActuatorFault, CommFault, Comparator, EventKind, SensorFault
from rtompc.scenarios.supervision_kpis import flag_reasons, is_detection_kpi

_NEEDS_VALUE = (
    EventKind.SETPOINT,
    EventKind.PRICE,
    EventKind.DISTURBANCE_STEP,
    EventKind.DISTURBANCE_RAMP,
    EventKind.PARAMETER_DRIFT,
)
_FAULTS = {
    EventKind.SENSOR_FAULT: SensorFault,
    EventKind.ACTUATOR_FAULT: ActuatorFault,
    EventKind.COMM_FAULT: CommFault,
}


def _event(
    loc: tuple[str | int, ...],
    ev: EventConfig,
    duration: float,
    plant: PlantModel,
    model: PlantModel,
    opcua: bool,
    file: Path | None,
) -> list[Problem]:
    out: list[Problem] = []

    def add(key: str, msg: str, **kw: str) -> None:
        out.append(Problem((*loc, key), msg, file, **kw))  # type: ignore[arg-type]

    if ev.t_s > duration:
        add("t_s", f"{ev.t_s:g} s is after the end of the run", expected=f"<= {duration:g} s")
    if ev.kind in _NEEDS_VALUE and math.isnan(ev.value):
        add("value", f"a {ev.kind.value} event needs a value")
    if ev.kind in _FAULTS:
        allowed = [f.value for f in _FAULTS[ev.kind]]
        if ev.fault not in allowed:
            add(
                "fault",
                f"{ev.fault!r} is not a {ev.kind.value} type",
                expected=f"one of {', '.join(allowed)}",
            )
        elif opcua and ev.fault == SensorFault.VALUE.value:
            add(
                "fault",
                "'value' faults are not available on the opcua transport",
                expected="bias, drift, freeze, bad, uncertain",
            )
    if ev.kind is EventKind.MODE and ev.mode is None:
        add("mode", 'a mode event needs mode = "on" | "shadow" | "off"')
    known, what = event_signals(ev.kind, plant, model)
    if known:
        if ev.signal not in known:
            add(
                "signal", f"unknown signal {ev.signal!r}", expected=f"a {what}: " + ", ".join(known)
            )
    elif ev.signal:
        add("signal", f"a {ev.kind.value} event takes no signal")
    if ev.kind is EventKind.DISTURBANCE_RAMP and ev.duration_s <= 0:
        add("duration_s", "a ramp needs duration_s > 0")
    return out


def check_scenario(
    cfg: ScenarioConfig, plant: PlantModel, model: PlantModel, file: Path | None
) -> list[Problem]:
    """Problems of the scenario tables (events in order and inside the run, criteria on KPIs
    the scenario produces with reachable thresholds)."""
    out: list[Problem] = []
    duration = cfg.scenario.duration_s
    dt = cfg.sample_time_s
    if dt is not None and duration < dt:
        out.append(
            Problem(
                ("scenario", "duration_s"),
                f"{duration:g} s is shorter than one control period",
                file,
                expected=f">= {dt:g} s",
            )
        )
    opcua = cfg.transport.kind is TransportKind.OPCUA
    for i, ev in enumerate(cfg.event):
        out.extend(_event(("event", i), ev, duration, plant, model, opcua, file))
        if i and ev.t_s < cfg.event[i - 1].t_s:
            out.append(
                Problem(
                    ("event", i, "t_s"),
                    f"events must be in time order; {ev.t_s:g} s "
                    f"comes after {cfg.event[i - 1].t_s:g} s",
                    file,
                )
            )
    if cfg.rto is not None and cfg.rto.method.value != "economic":
        for i, ev in enumerate(cfg.event):
            if ev.kind is EventKind.PRICE:
                out.append(
                    Problem(
                        ("event", i, "kind"),
                        "price events need [rto] method = "
                        "'economic' (the RTO stage keeps the prices of the file)",
                        file,
                    )
                )
    for i, f in enumerate(cfg.fault):
        out.extend(_event(("fault", i), f.as_event(), duration, plant, model, opcua, file))
    for cv in cfg.kpi.settling_band:
        if cv not in model.y:
            out.append(
                Problem(
                    ("kpi", "settling_band", cv),
                    f"unknown CV {cv!r}",
                    file,
                    expected=", ".join(model.y.names),
                )
            )
    mpc = cfg.mpc
    tracked = {c.name for c in mpc.cvs if c.target is not None or c.weight > 0}
    tracked |= {e.signal for e in cfg.event if e.kind is EventKind.SETPOINT and e.signal in model.y}
    if cfg.rto is not None:
        tracked |= set(cfg.rto.handoff_cvs)
    limited = {c.name for c in mpc.cvs if math.isfinite(c.lower) or math.isfinite(c.upper)}
    available = kpi_names(
        tuple(sorted(tracked)),
        tuple(sorted(limited)),
        model.u.names,
        cfg.economics is not None,
        cfg.rto is not None,
    )
    signals = {*model.y.names, *model.u.names, *model.d.names}
    for i, cr in enumerate(cfg.criterion):
        if cr.kpi not in available and not is_detection_kpi(cr.kpi, signals):
            out.append(
                Problem(
                    ("criterion", i, "kpi"),
                    f"KPI {cr.kpi!r} is not produced by this scenario (a CV "
                    "KPI needs a setpoint or a limit on that CV, profit needs [economics])",
                    file,
                    expected="one of "
                    + ", ".join(sorted(available))
                    + f", or detect_s.<signal>:<reason> with a reason in {', '.join(flag_reasons())}",
                )
            )
            continue
        lo, hi = kpi_domain(cr.kpi)
        op, th = cr.op, cr.threshold
        if (
            (op is Comparator.LE and th < lo)
            or (op is Comparator.LT and th <= lo)
            or (op is Comparator.GE and th > hi)
            or (op is Comparator.GT and th >= hi)
        ):
            out.append(
                Problem(
                    ("criterion", i, "threshold"),
                    f"unreachable criterion {cr.kpi} "
                    f"{op.value} {th:g}: {cr.kpi} lies in [{lo:g}, {hi:g}]",
                    file,
                )
            )
    return out
