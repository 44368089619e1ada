"""Load a scenario TOML file into a validated :class:`~rtompc.scenarios.spec.ScenarioSpec`.

File layout (every number in SI; see ``scenarios/README`` examples)::

    [scenario]   name, description, tags, duration_s
    [plant]      name, params, x0, u0, d, p (true plant parameters), integrator, noise_std, seed
    [model]      name, params, p              (optional; default: the plant, nominal p)
    [loop]       sample_time_s, mode, fallback, max_fallback_cycles, mv_in_service
    [mpc]        solver, horizon_steps, sample_time_s, ... ; [[mpc.cvs]], [[mpc.mvs]], [mpc.robust]
    [estimator]  kind, measured, output_disturbances, input_disturbances, measurement_std,
                 process_std, initial_std, substeps, x0, mhe_horizon_steps
    [economics]  prices, limits, decisions     (optional; profit KPI and RTO objective)
    [rto]        every_s, handoff_cvs, handoff_mvs, filter_gain, max_rate, steady_window_s,
                 steady_signals   (optional)
    [transport]  kind = "inprocess" | "opcua"
    [kpi]        settling_band, settling_rel
    [[event]]    t_s, kind, signal, value, duration_s, fault, magnitude, mode
    [[criterion]] kpi, op, threshold

Everything is checked on load: TOML syntax, types, unknown keys, signal names
against the plant and model, events in time order and inside the run, criteria
naming KPIs this scenario produces with thresholds a run could meet. Every
error is a :class:`~plant_models.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mpc.config import CvSpec, Discretisation, MpcConfig, MvSpec, RobustSpec
from mpc.estimation import DisturbanceModel, EstimatorConfig
from mpc.fallback import FallbackPolicy
from plant_models import library
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.samples import Mode
from plant_models.simulation import Integrator
from rtompc.scenarios.kpis import kpi_domain, kpi_names
from rtompc.scenarios.spec import (
    ActuatorFault,
    CommFault,
    Comparator,
    Criterion,
    EconomicsSpec,
    EstimatorKind,
    EstimatorSpec,
    Event,
    EventKind,
    KpiSpec,
    LoopSpec,
    ModelSpec,
    PlantSpec,
    RtoSpec,
    ScenarioSpec,
    SensorFault,
    TransportKind,
    TransportSpec,
)
from rtompc.scenarios.toml_reader import TableReader

_MPC_SCALARS = {
    "rk4_substeps": int,
    "collocation_degree": int,
    "control_horizon_steps": int,
    "terminal_weight": float,
    "ipopt_max_iter": int,
    "ipopt_tol": float,
    "rti_iterations": int,
    "rti_step_tol": float,
    "qp_max_iter": int,
    "codegen": bool,
}
_CV_KEYS = ("weight", "target", "lower", "upper", "l1_penalty", "l2_penalty", "zone_weight")
_MV_KEYS = ("weight", "target", "move_weight", "lower", "upper", "max_rate_per_s")


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Parse and validate one scenario file."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: TOML syntax error: {exc}") from None
    return scenario_from_mapping(data, file)


def load_model(reader: TableReader, what: str) -> PlantModel:
    """Build the plant or model named in ``reader`` (errors name the key)."""
    name = reader.string("name")
    params_table = reader.table("params")
    params = dict(params_table.data) if params_table is not None else {}
    if name not in library.names() and ":" not in name and not name.endswith((".json", ".npz")):
        raise reader.error("name", f"unknown {what} {name!r}; known: {', '.join(library.names())}")
    try:
        return library.load(name, **params)
    except ModelError as exc:
        raise reader.error("params", str(exc)) from None


def _names(reader: TableReader, key: str, values: Any, known: tuple[str, ...], what: str) -> None:
    for n in values:
        if n not in known:
            raise reader.error(
                f"{key}.{n}" if isinstance(values, dict) else key,
                f"unknown {what} {n!r}; known: {', '.join(known) or '(none)'}",
            )


def _plant(top: TableReader) -> tuple[PlantSpec, PlantModel]:
    r = top.section("plant")
    model = load_model(r, "plant")
    spec = PlantSpec(
        name=r.string("name"),
        params=dict(r.raw("params", {}) or {}),
        x0=r.numbers_by_name("x0"),
        u0=r.numbers_by_name("u0"),
        d=r.numbers_by_name("d"),
        p=r.numbers_by_name("p"),
        integrator=r.string("integrator", "cvodes", choices=Integrator),
        noise_std=r.numbers_by_name("noise_std"),
        seed=r.integer("seed", 0, lower=0),
    )
    for name, std in spec.noise_std.items():
        if name not in (*model.y.names, *model.d.names):
            raise r.error(
                f"noise_std.{name}",
                f"unknown measured signal {name!r}; known: "
                f"{', '.join((*model.y.names, *model.d.names))}",
            )
        if std < 0:
            raise r.error(f"noise_std.{name}", f"expected >= 0, got {std:g}")
    for key, kind in (("x0", "x"), ("u0", "u"), ("d", "d"), ("p", "p")):
        _names(r, key, getattr(spec, key), getattr(model, kind).names, f"plant {kind} signal")
    r.done()
    return spec, model


def _model(
    top: TableReader, plant_spec: PlantSpec, plant: PlantModel
) -> tuple[ModelSpec, PlantModel]:
    r = top.table("model")
    if r is None:
        return ModelSpec(plant_spec.name, plant_spec.params), plant
    model = load_model(r, "model")
    spec = ModelSpec(r.string("name"), dict(r.raw("params", {}) or {}), r.numbers_by_name("p"))
    _names(r, "p", spec.p, model.p.names, "model parameter")
    r.done()
    if model.u.names != plant.u.names:
        raise r.error(
            "name", f"the model's MVs {model.u.names} differ from the plant's {plant.u.names}"
        )
    if spec.p:
        model = model.with_nominal(p=spec.p)
    return spec, model


def _mpc(top: TableReader, model: PlantModel) -> tuple[MpcConfig, str]:
    r = top.section("mpc")
    solver = r.string("solver", "rti", choices=("rti", "ipopt"))
    kwargs: dict[str, Any] = {
        "horizon_steps": r.integer("horizon_steps", lower=1),
        "sample_time_s": r.number("sample_time_s", lower=0, strict_lower=True),
        "discretisation": Discretisation(r.string("discretisation", "rk4", choices=Discretisation)),
    }
    for key, typ in _MPC_SCALARS.items():
        if r.has(key):
            if typ is int:
                kwargs[key] = r.integer(key)
            elif typ is bool:
                kwargs[key] = r.boolean(key, False)
            else:
                kwargs[key] = r.number(key)
    blocks = r.raw("move_blocks")
    if blocks is not None:
        kwargs["move_blocks"] = tuple(blocks) if isinstance(blocks, list) else blocks
    cvs = []
    for t in r.tables("cvs"):
        name = t.string("name")
        if name not in model.y:
            raise t.error(
                "name",
                f"unknown CV {name!r}: not an output of {model.name!r}; "
                f"outputs: {', '.join(model.y.names)}",
            )
        args: dict[str, Any] = {
            k: t.number(k, allow_inf=k in ("lower", "upper")) for k in _CV_KEYS if t.has(k)
        }
        zone = t.raw("zone")
        if zone is not None:
            args["zone"] = tuple(zone) if isinstance(zone, list) else zone
        t.done()
        cvs.append(_build(CvSpec, dict(name=name, **args), t))
    mvs = []
    for t in r.tables("mvs"):
        name = t.string("name")
        if name not in model.u:
            raise t.error(
                "name", f"unknown MV {name!r}; inputs of {model.name!r}: {', '.join(model.u.names)}"
            )
        args = {k: t.number(k) for k in _MV_KEYS if t.has(k)}
        t.done()
        mvs.append(_build(MvSpec, dict(name=name, **args), t))
    robust = r.table("robust")
    if robust is not None:
        vals = []
        for pname in robust.data:
            v = robust.raw(pname)
            if not isinstance(v, list) or not v:
                raise robust.error(pname, f"expected a list of values, got {v!r}")
            vals.append((pname, tuple(v)))
        kwargs["robust"] = _build(RobustSpec, {"values": tuple(vals)}, robust)
    r.done()
    cfg = _build(MpcConfig, dict(cvs=tuple(cvs), mvs=tuple(mvs), **kwargs), r)
    try:
        cfg.check_against(model)
    except ConfigError as exc:
        raise r.error(None, str(exc)) from None
    return cfg, solver


def _build(cls: Any, kwargs: dict[str, Any], r: TableReader) -> Any:
    try:
        return cls(**kwargs)
    except (ConfigError, TypeError, ValueError) as exc:
        raise r.error(None, str(exc)) from None


def _estimator(top: TableReader, model: PlantModel, plant: PlantModel, dt: float) -> EstimatorSpec:
    r = top.section("estimator")
    kind = EstimatorKind(r.string("kind", "ekf", choices=EstimatorKind))
    measured = r.strings("measured") or ()
    if not measured:
        raise r.error("measured", "expected at least one measured output")
    for n in measured:
        if n not in model.y or n not in plant.y:
            raise r.error(
                "measured",
                f"unknown signal {n!r}: a measured output must be an output "
                f"of both the plant and the model; model outputs: "
                f"{', '.join(model.y.names)}",
            )
    outs = r.strings("output_disturbances") or ()
    ins = r.strings("input_disturbances") or ()
    _names(r, "output_disturbances", outs, model.y.names, "output")
    _names(r, "input_disturbances", ins, model.u.names, "MV")
    x0 = r.numbers_by_name("x0")
    _names(r, "x0", x0, model.x.names, "state")
    kwargs = dict(
        sample_time_s=dt,
        measured=measured,
        disturbances=DisturbanceModel(outs, ins),
        measurement_std=r.numbers_by_name("measurement_std"),
        process_std=r.numbers_by_name("process_std"),
        initial_std=r.numbers_by_name("initial_std"),
        substeps=r.integer("substeps", 4, lower=1),
        require_detectable=r.boolean("require_detectable", True),
    )
    horizon = r.integer("mhe_horizon_steps", 10, lower=1)
    r.done()
    return EstimatorSpec(kind, _build(EstimatorConfig, kwargs, r), x0, horizon)


def _economics(top: TableReader, plant: PlantModel) -> EconomicsSpec | None:
    r = top.table("economics")
    if r is None:
        return None
    prices = r.numbers_by_name("prices")
    if not prices:
        raise r.error("prices", "expected at least one priced stream")
    streams = (*plant.u.names, *plant.d.names, *plant.y.names)
    _names(r, "prices", prices, streams, "stream (u, d or y signal)")
    limits = r.pairs_by_name("limits")
    _names(r, "limits", limits, (*plant.u.names, *plant.y.names), "u or y signal")
    decisions = r.strings("decisions", None)
    if decisions is not None:
        _names(r, "decisions", decisions, plant.u.names, "MV")
    r.done()
    return EconomicsSpec(prices, limits, decisions)


def _rto(top: TableReader, model: PlantModel, economics: EconomicsSpec | None) -> RtoSpec | None:
    r = top.table("rto")
    if r is None:
        return None
    if economics is None:
        raise r.error(None, "an RTO layer needs an [economics] table with prices")
    cvs = r.strings("handoff_cvs") or ()
    _names(r, "handoff_cvs", cvs, model.y.names, "output")
    mvs = r.strings("handoff_mvs", None)
    if mvs is not None:
        _names(r, "handoff_mvs", mvs, model.u.names, "MV")
    spec = RtoSpec(
        every_s=r.number("every_s", lower=0, strict_lower=True),
        handoff_cvs=cvs,
        handoff_mvs=mvs,
        filter_gain=r.number("filter_gain", 1.0, lower=0, upper=1, strict_lower=True),
        max_rate=r.numbers_by_name("max_rate"),
        steady_window_s=r.number("steady_window_s", 0.0, lower=0.0),
        steady_signals=r.strings("steady_signals") or (),
    )
    _names(r, "steady_signals", spec.steady_signals, model.y.names, "output")
    if spec.steady_window_s > 0 and not (spec.steady_signals or spec.handoff_cvs):
        raise r.error(
            "steady_signals",
            "the steady-state gate needs signals to test (steady_signals or handoff_cvs)",
        )
    _names(r, "max_rate", spec.max_rate, (*model.u.names, *model.y.names), "u or y signal")
    r.done()
    return spec


def _event(
    r: TableReader, index: int, plant: PlantModel, model: PlantModel, duration: float
) -> Event:
    kind = EventKind(r.string("kind", choices=EventKind))
    t_s = r.number("t_s", lower=0.0, upper=duration)
    signal = r.string("signal", "")
    value = r.number("value", math.nan)
    dur = r.number("duration_s", 0.0, lower=0.0)
    fault = r.string("fault", "")
    magnitude = r.number("magnitude", 0.0)
    mode_s = r.string("mode", "", choices=("", *[m.value for m in Mode]))
    r.done()
    need_value = kind in (
        EventKind.SETPOINT,
        EventKind.PRICE,
        EventKind.DISTURBANCE_STEP,
        EventKind.DISTURBANCE_RAMP,
        EventKind.PARAMETER_DRIFT,
    )
    if need_value and math.isnan(value):
        raise r.error("value", f"a {kind.value} event needs a value")
    known: tuple[str, ...] = ()
    what = ""
    if kind is EventKind.SETPOINT:
        known, what = (*model.y.names, *model.u.names), "CV or MV of the model"
    elif kind is EventKind.PRICE:
        known, what = (*plant.u.names, *plant.d.names, *plant.y.names), "stream"
    elif kind in (EventKind.DISTURBANCE_STEP, EventKind.DISTURBANCE_RAMP):
        known, what = plant.d.names, "measured disturbance of the plant"
    elif kind is EventKind.PARAMETER_DRIFT:
        known, what = plant.p.names, "parameter of the plant"
    elif kind is EventKind.SENSOR_FAULT:
        known, what = (*plant.y.names, *plant.d.names), "measured signal"
        if fault not in [f.value for f in SensorFault]:
            raise r.error(
                "fault", f"expected one of {[f.value for f in SensorFault]}, got {fault!r}"
            )
    elif kind is EventKind.ACTUATOR_FAULT:
        known, what = plant.u.names, "MV"
        if fault not in [f.value for f in ActuatorFault]:
            raise r.error(
                "fault", f"expected one of {[f.value for f in ActuatorFault]}, got {fault!r}"
            )
    elif kind is EventKind.COMM_FAULT:
        if fault not in [f.value for f in CommFault]:
            raise r.error("fault", f"expected one of {[f.value for f in CommFault]}, got {fault!r}")
    elif kind is EventKind.MODE and not mode_s:
        raise r.error("mode", 'a mode event needs mode = "on" | "shadow" | "off"')
    if known:
        if signal not in known:
            raise r.error(
                "signal", f"unknown signal {signal!r}: expected a {what}; known: {', '.join(known)}"
            )
    elif signal:
        raise r.error("signal", f"a {kind.value} event takes no signal")
    if kind is EventKind.DISTURBANCE_RAMP and dur <= 0:
        raise r.error("duration_s", "a ramp needs duration_s > 0")
    return Event(
        index, t_s, kind, signal, value, dur, fault, magnitude, Mode(mode_s) if mode_s else None
    )


def _criterion(r: TableReader, index: int, available: set[str]) -> Criterion:
    kpi = r.string("kpi")
    op = Comparator(r.string("op", choices=Comparator))
    threshold = r.number("threshold", allow_inf=True)
    r.done()
    if kpi not in available:
        raise r.error(
            "kpi",
            f"KPI {kpi!r} is not produced by this scenario (a CV KPI needs a "
            f"setpoint or a limit on that CV, profit needs [economics]); "
            f"available: {', '.join(sorted(available))}",
        )
    lo, hi = kpi_domain(kpi)
    impossible = (
        (op is Comparator.LE and threshold < lo)
        or (op is Comparator.LT and threshold <= lo)
        or (op is Comparator.GE and threshold > hi)
        or (op is Comparator.GT and threshold >= hi)
    )
    if impossible:
        raise r.error(
            "threshold",
            f"unreachable criterion {kpi} {op.value} {threshold:g}: {kpi} lies in [{lo:g}, {hi:g}]",
        )
    return Criterion(index, kpi, op, threshold)


def scenario_from_mapping(data: dict[str, Any], file: Path) -> ScenarioSpec:
    """Build a :class:`ScenarioSpec` from parsed TOML ``data`` (``file`` names errors)."""
    top = TableReader(file, data)
    sc = top.section("scenario")
    name = sc.string("name", file.stem)
    description = sc.string("description", "")
    tags = sc.strings("tags") or ()
    duration = sc.number("duration_s", lower=0, strict_lower=True)
    sc.done()
    plant_spec, plant = _plant(top)
    model_spec, model = _model(top, plant_spec, plant)
    mpc_cfg, solver = _mpc(top, model)
    lp = top.table("loop")
    lr = lp if lp is not None else TableReader(file, {}, "loop")
    dt = lr.number("sample_time_s", mpc_cfg.sample_time_s, lower=0, strict_lower=True)
    if not math.isclose(dt, mpc_cfg.sample_time_s, rel_tol=1e-9):
        raise lr.error(
            "sample_time_s",
            f"loop period {dt:g} s differs from mpc.sample_time_s {mpc_cfg.sample_time_s:g} s",
        )
    in_service = lr.strings("mv_in_service", None)
    if in_service is not None:
        _names(lr, "mv_in_service", in_service, model.u.names, "MV")
    loop = LoopSpec(
        sample_time_s=dt,
        mode=Mode(lr.string("mode", "on", choices=Mode)),
        fallback=FallbackPolicy(lr.string("fallback", "shifted_plan", choices=FallbackPolicy)),
        max_fallback_cycles=lr.integer("max_fallback_cycles", 20, lower=0),
        mv_in_service=in_service,
    )
    lr.done()
    if duration < dt:
        raise sc.error("duration_s", f"expected at least one control period ({dt:g} s)")
    estimator = _estimator(top, model, plant, dt)
    economics = _economics(top, plant)
    rto = _rto(top, model, economics)
    tr = top.table("transport")
    transport = TransportSpec()
    if tr is not None:
        transport = TransportSpec(
            TransportKind(tr.string("kind", "inprocess", choices=TransportKind))
        )
        tr.done()
    kr = top.table("kpi")
    kpi = KpiSpec()
    if kr is not None:
        bands = kr.numbers_by_name("settling_band")
        _names(kr, "settling_band", bands, model.y.names, "CV")
        kpi = KpiSpec(bands, kr.number("settling_rel", 0.05, lower=0, strict_lower=True))
        kr.done()
    events = tuple(_event(r, i, plant, model, duration) for i, r in enumerate(top.tables("event")))
    if transport.kind is TransportKind.OPCUA:
        for ev in events:
            if ev.kind is EventKind.SENSOR_FAULT and ev.fault == SensorFault.VALUE.value:
                raise ConfigError(
                    f"{file}: event[{ev.index}].fault: 'value' faults are not "
                    f"available on the opcua transport (HIL faults: bias, drift, "
                    f"freeze, bad, uncertain)"
                )
    for prev, ev in zip(events, events[1:], strict=False):
        if ev.t_s < prev.t_s:
            raise ConfigError(
                f"{file}: event[{ev.index}].t_s: events must be in time order; "
                f"{ev.t_s:g} s comes after {prev.t_s:g} s (event[{prev.index}])"
            )
    tracked = {c.name for c in mpc_cfg.cvs if c.target is not None or c.weight > 0}
    tracked |= {e.signal for e in events if e.kind is EventKind.SETPOINT and e.signal in model.y}
    if rto is not None:
        tracked |= set(rto.handoff_cvs)
    limited = {c.name for c in mpc_cfg.cvs if c.has_limits}
    available = kpi_names(
        tuple(sorted(tracked)),
        tuple(sorted(limited)),
        model.u.names,
        economics is not None,
        rto is not None,
    )
    criteria = tuple(_criterion(r, i, available) for i, r in enumerate(top.tables("criterion")))
    top.done()
    return ScenarioSpec(
        path=file,
        name=name,
        description=description,
        tags=tags,
        duration_s=duration,
        plant=plant_spec,
        model=model_spec,
        loop=loop,
        mpc=mpc_cfg,
        mpc_solver=solver,
        estimator=estimator,
        economics=economics,
        rto=rto,
        transport=transport,
        events=events,
        criteria=criteria,
        kpi=kpi,
    )


def mpc_from_table(file: Path, table: Mapping[str, Any], model: PlantModel) -> tuple[MpcConfig, str]:
    """An ``[mpc]`` table (as in scenario and application files) as an MpcConfig and solver name."""
    return _mpc(TableReader(file, {"mpc": dict(table)}), model)


def estimator_from_table(file: Path, table: Mapping[str, Any], model: PlantModel,
                         sample_time_s: float) -> EstimatorSpec:
    """An ``[estimator]`` table as an EstimatorSpec (kind, EstimatorConfig, x0, MHE horizon)."""
    return _estimator(TableReader(file, {"estimator": dict(table)}), model, model, sample_time_s)
