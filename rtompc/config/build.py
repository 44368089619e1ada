"""Config -> the runtime stack: models, PlantIO, estimator, NMPC, RTO stage, historian.

Each function takes a validated :class:`~rtompc.config.model.AppConfig` (or a
scenario) and builds one part; errors that only appear when building (a
solver that cannot be set up, a missing environment variable) raise
:class:`~rtompc.config.errors.ConfigProblems` naming the key. The flow of the
application is: :func:`rtompc.config.load_app` -> these builders ->
:class:`rtompc.runtime.ControlLoop`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interfaces.limits import MoveLimits
from interfaces.opcua_settings import OpcUaSecurity, OpcUaSettings, SecurityMode, SecurityPolicy
from interfaces.plantio import PlantIO
from interfaces.tagmap import HIL_NAMESPACE_URI, TagMap
from mpc.config import CvSpec, MpcConfig, MvSpec, RobustSpec
from mpc.controller import NmpcController, SolverKind
from mpc.estimation import (
    DisturbanceModel,
    EstimatorConfig,
    ExtendedKalmanFilter,
    InnovationConfig,
    MheConfig,
    MovingHorizonEstimator,
)
from plant_models import library
from plant_models.errors import ConfigError, EngineError
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget
from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.model import AppConfig, EstimatorKind, ModelRef, RtoMethodChoice, UnitSections
from rtompc.config.transport import Security, TransportKind
from rtompc.handshake import HandshakeSettings
from rtompc.runtime import LoopSettings
from rtompc.supervision import (
    ActuatorCheck,
    ActuatorSupervision,
    MeasurementChecks,
    SensorSupervision,
    SupervisionSettings,
    with_sensor_checks,
)

if TYPE_CHECKING:  # pragma: no cover
    from rtompc.historian import Historian

_MODES = {
    Security.NONE: SecurityMode.NONE,
    Security.SIGN: SecurityMode.SIGN,
    Security.SIGN_ENCRYPT: SecurityMode.SIGN_AND_ENCRYPT,
}


def fail(
    cfg: UnitSections | Any, loc: tuple[str | int, ...], message: str, **kw: Any
) -> ConfigProblems:
    """A one-problem ConfigProblems for ``cfg``'s file (the key path of a ``[[unit]]`` table
    is put in front of ``loc``)."""
    return ConfigProblems(
        [Problem((*getattr(cfg, "loc", ()), *loc), message, cfg.source, **kw)], cfg.source
    )


def require(cfg: UnitSections, section: str, why: str) -> Any:
    """The section, or a ConfigProblems saying it is required (and why)."""
    value = getattr(cfg, section)
    if value is None:
        raise fail(cfg, (section,), f"missing section [{section}] ({why})")
    return value


@dataclass(frozen=True)
class Models:
    """The models of a config."""

    plant: PlantModel
    """The plant (simulated in-process; over OPC UA, the model the tags are checked against)."""
    model: PlantModel
    """The controller's and estimator's model."""
    rto_model: PlantModel
    """The RTO model."""


def _load(cfg: UnitSections, ref: ModelRef, loc: tuple[str, ...]) -> PlantModel:
    try:
        model = library.load(ref.name, **dict(ref.params))
    except EngineError as exc:
        raise fail(cfg, (*loc, "name"), str(exc)) from None
    return model.with_nominal(p=dict(ref.p)) if ref.p else model


def models(cfg: UnitSections) -> Models:
    """Build the plant, controller and RTO models (parameters of ``[model]``, ``[rto.model]``
    replace the nominal ones; the plant's ``p`` are its true values, kept for the bench)."""
    plant = _load(cfg, ModelRef(name=cfg.plant.name, params=cfg.plant.params), ("plant",))
    model = _load(cfg, cfg.model, ("model",)) if cfg.model is not None else plant
    rto_model = model
    if cfg.rto is not None and cfg.rto.model is not None:
        rto_model = _load(cfg, cfg.rto.model, ("rto", "model"))
    return Models(plant, model, rto_model)


def sample_time(cfg: UnitSections) -> float:
    """The control period (the loader checked that one is given)."""
    dt = cfg.sample_time_s
    if dt is None:
        raise fail(cfg, ("loop", "sample_time_s"), "missing: no control period")
    return dt


def _spec(cls: Any, section: Any) -> Any:
    """A dataclass of the mpc package from the config section with the same field names."""
    names = [f.name for f in dataclasses.fields(cls) if hasattr(section, f.name)]
    return cls(**{n: getattr(section, n) for n in names})


def rto_spec(cfg: UnitSections) -> Any:
    """``[rto]`` as the scenario runner's RtoSpec (the ``economic`` method's settings)."""
    from rtompc.scenarios.spec import RtoSpec

    r = cfg.rto
    if r is None:
        return None
    return RtoSpec(
        every_s=cfg.rto_every_n * sample_time(cfg),
        handoff_cvs=tuple(r.handoff_cvs),
        handoff_mvs=tuple(r.handoff_mvs) if r.handoff_mvs is not None else None,
        filter_gain=r.filter_gain,
        max_rate=dict(r.max_rate),
        steady_window_s=r.steady_window_s,
        steady_signals=tuple(r.steady_signals),
    )


def mpc_config(cfg: UnitSections) -> tuple[MpcConfig, SolverKind]:
    """The NMPC problem and its solver kind."""
    m = require(cfg, "mpc", "the controller")
    try:
        out = MpcConfig(
            horizon_steps=m.horizon_steps,
            sample_time_s=sample_time(cfg),
            cvs=tuple(_spec(CvSpec, c) for c in m.cvs),
            mvs=tuple(_spec(MvSpec, v) for v in m.mvs),
            discretisation=m.discretisation,
            rk4_substeps=m.rk4_substeps,
            collocation_degree=m.collocation_degree,
            control_horizon_steps=m.control_horizon_steps,
            move_blocks=tuple(m.move_blocks) if m.move_blocks is not None else None,
            terminal_weight=m.terminal_weight,
            robust=RobustSpec(
                tuple((k, tuple(v)) for k, v in m.robust.items()),
                tuple(tuple(m.robust_probabilities[k]) for k in m.robust)
                if m.robust_probabilities
                else None,
            )
            if m.robust
            else None,
            robust_horizon=m.robust_horizon,
            transcription=m.transcription,
            ipopt_fallback=m.ipopt_fallback,
            first_sqp_iterations=m.first_sqp_iterations,
            hard_bound_penalty=m.hard_bound_penalty,
            ipopt_max_iter=m.ipopt_max_iter,
            ipopt_tol=m.ipopt_tol,
            rti_iterations=m.rti_iterations,
            rti_step_tol=m.rti_step_tol,
            qp_max_iter=m.qp_max_iter,
            codegen=m.codegen,
            codegen_budget_s=m.codegen_budget_s,
            qp_solver=m.qp_solver,
        )
    except ConfigError as exc:
        raise fail(cfg, ("mpc",), str(exc)) from None
    return out, SolverKind(m.solver.value)


def controller(cfg: UnitSections, model: PlantModel) -> NmpcController:
    """The NMPC controller on ``model``."""
    mc, solver = mpc_config(cfg)
    try:
        mc.check_against(model)
        return NmpcController(model, mc, solver)
    except EngineError as exc:
        raise fail(cfg, ("mpc",), str(exc)) from None


def estimator_config(cfg: UnitSections) -> EstimatorConfig:
    """The estimator settings shared by EKF and MHE."""
    e = require(cfg, "estimator", "the state estimator")
    try:
        return EstimatorConfig(
            sample_time_s=sample_time(cfg),
            measured=tuple(e.measured),
            disturbances=DisturbanceModel(
                tuple(e.output_disturbances), tuple(e.input_disturbances)
            ),
            measurement_std=dict(e.measurement_std),
            process_std=dict(e.process_std),
            initial_std=dict(e.initial_std),
            discretization=e.discretization,
            substeps=e.substeps,
            clip_to_bounds=e.clip_to_bounds,
            require_detectable=e.require_detectable,
        )
    except ConfigError as exc:
        raise fail(cfg, ("estimator",), str(exc)) from None


def supervision(cfg: UnitSections, model: PlantModel | None = None) -> SupervisionSettings:
    """Sensor and actuator supervision of ``[supervision]`` (every check on without it);
    with ``model``, names are checked against the estimator's measurements and the MVs."""
    sec = cfg.supervision
    if sec is None:
        return SupervisionSettings()
    measured = set(cfg.estimator.measured) if cfg.estimator is not None else None
    for i, m in enumerate(sec.measurements):
        if measured is not None and m.name not in measured:
            raise fail(
                cfg,
                ("supervision", "measurements", i, "name"),
                f"{m.name!r} is not measured by the estimator",
                expected="one of " + ", ".join(sorted(measured)),
            )
    for i, a in enumerate(sec.mvs):
        if model is not None and a.name not in model.u:
            raise fail(
                cfg,
                ("supervision", "mvs", i, "name"),
                f"{a.name!r} is not an MV",
                expected="one of " + ", ".join(model.u.names),
            )
    try:
        return SupervisionSettings(
            sensors=SensorSupervision(
                enabled=sec.sensors,
                accept_uncertain=sec.accept_uncertain,
                frozen_samples=sec.frozen_samples,
                innovation=InnovationConfig(
                    cusum_k=sec.cusum_k,
                    cusum_h=sec.cusum_h,
                    nis_window=sec.nis_window,
                    nis_alpha=sec.nis_alpha,
                    clear_samples=sec.clear_samples,
                    clear_band=sec.clear_band,
                ),
                signals={
                    m.name: MeasurementChecks(
                        range=m.range,
                        lower=m.lower,
                        upper=m.upper,
                        bad_status=m.bad_status,
                        frozen=m.frozen,
                        frozen_tolerance=m.frozen_tolerance,
                        stale=m.stale,
                        max_age_s=m.max_age_s,
                        rate=m.rate,
                        max_rate_per_s=m.max_rate_per_s,
                        innovation=m.innovation,
                        bias_limit=m.bias_limit,
                    )
                    for m in sec.measurements
                },
            ),
            actuators=ActuatorSupervision(
                enabled=sec.actuators,
                mvs={
                    a.name: ActuatorCheck(
                        enabled=a.enabled,
                        time_constant_s=a.time_constant_s,
                        deadband=a.deadband,
                        detect_samples=a.detect_samples,
                        take_out_of_service=a.take_out_of_service,
                        retry_after_s=a.retry_after_s,
                    )
                    for a in sec.mvs
                },
            ),
        )
    except ConfigError as exc:
        raise fail(cfg, ("supervision",), str(exc)) from None


def estimator(cfg: UnitSections, model: PlantModel) -> Any:
    """The EKF or MHE on ``model``, with the sensor checks of ``[supervision]``."""
    e = require(cfg, "estimator", "the state estimator")
    ec = estimator_config(cfg)
    x0 = dict(e.x0) or None
    sensors = supervision(cfg, model).sensors
    try:
        ec = with_sensor_checks(ec, model, sensors)
        if e.kind is EstimatorKind.MHE:
            return MovingHorizonEstimator(
                model, ec, MheConfig(horizon_steps=e.mhe_horizon_steps), x0=x0
            )
        return ExtendedKalmanFilter(model, ec, x0=x0)
    except EngineError as exc:
        raise fail(cfg, ("estimator",), str(exc)) from None


def initial_target(cfg: UnitSections) -> OperatingTarget:
    """Targets of the configured CVs and MVs (the RTO replaces them later)."""
    m = cfg.mpc
    y = {c.name: c.target for c in m.cvs if c.target is not None} if m else {}
    u = {v.name: v.target for v in m.mvs if v.target is not None} if m else {}
    return OperatingTarget(0.0, y=y, u=u, source="config")  # type: ignore[arg-type]


def loop_settings(
    cfg: UnitSections, *, default_mode: Mode, mode: Mode | None = None
) -> LoopSettings:
    """The loop's schedule (``mode`` overrides the file, ``default_mode`` fills a gap)."""
    lp = cfg.loop
    return LoopSettings(
        sample_time_s=sample_time(cfg),
        mode=mode or lp.mode or default_mode,
        fallback=lp.fallback,
        speed=cfg.transport.speed,
        rto_every_n=cfg.rto_every_n,
        mv_in_service=tuple(lp.mv_in_service) if lp.mv_in_service is not None else None,
        max_fallback_cycles=lp.max_fallback_cycles,
        handshake=HandshakeSettings(
            lp.remote_policy, lp.remote_retry_cycles, lp.remote_retry_max_cycles
        ),
    )


def rto_source(cfg: UnitSections, ms: Models) -> Any:
    """The RTO target source (None without ``[rto]``): the steady-state-gated stage of
    two-step RTO or modifier adaptation, or the economic optimiser with hand-off."""
    if cfg.rto is None:
        return None
    from rto import EstimationConfig, HandoffConfig, ModifierAdaptationConfig, RtoConfig
    from rtompc.rto_stage import RtoMethod, RtoStage, RtoStageConfig
    from rtompc.scenarios.economics import ScenarioRto

    r = cfg.rto
    eco = require(cfg, "economics", "prices of the RTO objective")
    dt = sample_time(cfg)
    try:
        if r.method is RtoMethodChoice.ECONOMIC:
            spec = rto_spec(cfg)
            return ScenarioRto(ms.rto_model, economics_spec(cfg), spec, dt)
        limits = {k: v for k, v in eco.limits.items()}
        stage_cfg = RtoStageConfig(
            method=RtoMethod(r.method.value),
            rto=RtoConfig(
                prices=dict(eco.prices),
                limits=limits,
                decisions=tuple(eco.decisions) if eco.decisions else None,
            ),
            handoff=HandoffConfig(
                cvs=tuple(r.handoff_cvs),
                mvs=tuple(r.handoff_mvs) if r.handoff_mvs is not None else None,
                filter_gain=r.filter_gain,
                max_rate=dict(r.max_rate),
            ),
            steady_signals=tuple(r.steady_signals or r.handoff_cvs),
            window_samples=r.window_samples,
            average_samples=r.average_samples,
            steady_tolerance=dict(r.steady_tolerance),
            max_spread=dict(r.max_spread),
            modifier=ModifierAdaptationConfig(
                gain=r.modifier.gain,
                step=dict(r.modifier.step),
                max_condition=r.modifier.max_condition,
                min_spacing=r.modifier.min_spacing,
                max_spacing=r.modifier.max_spacing,
            ),
            estimation=EstimationConfig(
                parameters=tuple(r.estimation.parameters),
                measured=tuple(r.estimation.measured),
                sigma=dict(r.estimation.sigma),
            )
            if r.estimation is not None
            else None,
        )
        return RtoStage(ms.rto_model, ms.model, stage_cfg)
    except EngineError as exc:
        raise fail(cfg, ("rto",), str(exc)) from None


class SteadyGateFeed:
    """A loop Recorder feeding each cycle's measurement to the ``economic`` RTO's steady-state
    gate (the scenario runner feeds it itself)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def append(self, record: Any) -> None:
        """Observe one cycle."""
        self.source.observe(record.measurement)


def rto_recorders(source: Any) -> list[Any]:
    """Recorders the RTO target source needs in a ``ControlLoop`` (none for the RTO stage)."""
    return [SteadyGateFeed(source)] if hasattr(source, "observe") else []


def economics_spec(cfg: UnitSections) -> Any:
    """``[economics]`` as the scenario runner's EconomicsSpec (None without it)."""
    from rtompc.scenarios.spec import EconomicsSpec

    e = cfg.economics
    if e is None:
        return None
    return EconomicsSpec(
        dict(e.prices), dict(e.limits), tuple(e.decisions) if e.decisions is not None else None
    )


def _env(cfg: UnitSections, key: str, var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise fail(
            cfg,
            ("transport", key),
            f"environment variable {var} is not set",
            expected="the secret in that variable (secrets never sit in the file)",
        )
    return value


def opcua_settings(
    cfg: UnitSections, *, endpoint: str | None = None, password: str | None = None
) -> OpcUaSettings:
    """The OPC UA client settings; secrets come from the environment variables named in the
    file (or ``password`` when a caller made them, as the demo does)."""
    t = cfg.transport
    url = endpoint or t.endpoint
    if url is None:
        raise fail(cfg, ("transport", "endpoint"), "missing: the server URL")
    pw = password if password is not None else _env(cfg, "password_env", t.password_env)
    try:
        security = OpcUaSecurity(
            mode=_MODES[t.security],
            policy=t.policy if t.security is not Security.NONE else SecurityPolicy.NONE,
            certificate=t.certificate,
            private_key=t.private_key,
            private_key_password=_env(cfg, "private_key_password_env", t.private_key_password_env),
            trusted_server_certificates=tuple(t.trust_list) or None,
            application_uri=t.application_uri,
        )
        return OpcUaSettings(
            endpoint=url,
            sample_time_s=sample_time(cfg),
            security=security,
            username=t.user,
            password=pw if t.user is not None else None,
            lockstep=t.lockstep,
            read_method=t.read_method,
            request_timeout_s=t.request_timeout_s,
            watchdog_interval_s=t.watchdog_interval_s,
            reconnect_initial_delay_s=t.reconnect_initial_delay_s,
            reconnect_max_delay_s=t.reconnect_max_delay_s,
            stale_after_s=t.stale_after_s,
            readback_rel_tol=t.readback_rel_tol,
            readback_abs_tol=t.readback_abs_tol,
            mode_timeout_s=t.mode_timeout_s,
            check_units=t.check_units,
        )
    except ConfigError as exc:
        if isinstance(exc, ConfigProblems):
            raise
        raise fail(cfg, ("transport",), str(exc)) from None


def tag_map(cfg: UnitSections, model: PlantModel) -> TagMap:
    """The tag map: ``[transport.tags]``, or the rtompc HIL layout for the plant."""
    t = cfg.transport
    if t.tags is None:
        return TagMap.for_hil(model, t.hil_plant, HIL_NAMESPACE_URI)
    try:
        return TagMap.from_mapping(t.tags.as_mapping(), model, where="transport.tags")
    except ConfigError as exc:
        raise fail(cfg, ("transport", "tags"), str(exc).removeprefix("transport.tags: ")) from None


def move_limits(cfg: UnitSections, model: PlantModel) -> MoveLimits:
    """Client-side MV rate limits."""
    try:
        return MoveLimits.from_model(model, dict(cfg.transport.max_rate_per_s))
    except ConfigError as exc:
        raise fail(cfg, ("transport", "max_rate_per_s"), str(exc)) from None


def plantio(cfg: UnitSections, model: PlantModel, **opcua: Any) -> PlantIO:
    """A not-yet-connected PlantIO for ``model`` (``opcua``: overrides of
    :func:`opcua_settings`)."""
    limits = move_limits(cfg, model)
    t = cfg.transport
    if t.kind is TransportKind.INPROCESS:
        from interfaces.inprocess import InProcessPlantIO

        p = cfg.plant
        return InProcessPlantIO(
            model,
            sample_time(cfg),
            x0=dict(p.x0) or None,
            d=dict(p.d) or None,
            p=dict(p.p) or None,
            u0=dict(p.u0) or None,
            limits=limits,
            method=p.integrator,
            start_remote=t.start_remote,
        )
    from interfaces.opcua_client import OpcUaPlantIO

    return OpcUaPlantIO(model, opcua_settings(cfg, **opcua), tag_map(cfg, model), limits=limits)


def historian(
    cfg: AppConfig | Any, model: PlantModel, measured: tuple[str, ...] | None = None
) -> Historian | None:
    """The configured historian (None when not configured)."""
    if cfg.historian is None:
        return None
    from rtompc.historian import Historian, HistorianLayout, RetentionSettings

    h = cfg.historian
    path: Path = h.path  # its folder is created by the historian's writability check
    try:
        retention = RetentionSettings(
            max_age_s=h.retention_max_age_s,
            max_size_bytes=h.retention_max_size_bytes,
            downsample_after_s=h.retention_downsample_after_s,
            downsample_keep_every=h.retention_downsample_keep_every,
            check_every_s=h.retention_check_every_s,
        )
        return Historian(
            path,
            HistorianLayout.for_model(model, measured),
            durability=h.durability,
            retention=retention,
        )
    except ConfigError as exc:
        raise fail(cfg, ("historian", "path"), str(exc)) from None
