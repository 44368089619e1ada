"""Cross-checks of a validated config against the plant model(s).

The pydantic model checks each table on its own; here the file is checked as
a whole: signals exist where they are named, MV limits lie within the
plant's, sample times agree, ``rto_every_n`` has an ``[rto]`` and ``[rto]``
has ``[economics]``, events and criteria fit the scenario. Every finding is a
:class:`~rtompc.config.errors.Problem`; nothing raises.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plant_models import library
from plant_models.errors import EngineError
from plant_models.model import PlantModel
from rtompc.config.errors import Problem
from rtompc.config.model import ModelRef, UnitSections
from rtompc.config.paths import base_dir_of, resolve_name
from rtompc.config.transport import TransportKind
from rtompc.scenarios.spec import EventKind

Loc = tuple[str | int, ...]


def load_model_ref(name: str, params: Mapping[str, Any]) -> PlantModel:
    """Build a model through the registry (``EngineError`` when it cannot)."""
    return library.load(name, **dict(params))


@dataclass
class LoadedModels:
    """The plant, controller and RTO models of a config (None where they did not load)."""

    plant: PlantModel | None = None
    model: PlantModel | None = None
    rto_model: PlantModel | None = None
    complete: bool = True
    """False when a named model could not be built (cross-checks are skipped)."""
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def load(
        cls, data: Mapping[str, Any], file: Path | None, problems: list[Problem]
    ) -> LoadedModels:
        """Load what the raw tables name; problems go to ``problems``."""
        out = cls()
        base = base_dir_of(file)

        def one(loc: Loc, table: Any) -> PlantModel | None:
            if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
                out.complete = False
                return None
            params = table.get("params", {})
            name = resolve_name(table["name"], base)
            try:
                return load_model_ref(name, params if isinstance(params, Mapping) else {})
            except EngineError as exc:
                names = library.names()
                near = difflib.get_close_matches(table["name"], names, n=1)
                problems.append(
                    Problem(
                        (*loc, "name"),
                        str(exc),
                        file,
                        expected="a library plant (" + ", ".join(names) + "), path.py:function "
                        "or an identified-model .json",
                        suggestion=near[0] if near else "",
                    )
                )
                out.complete = False
                return None
            except TypeError as exc:
                problems.append(Problem((*loc, "params"), f"builder parameters: {exc}", file))
                out.complete = False
                return None

        if "plant" in data:
            out.plant = one(("plant",), data["plant"])
        else:
            out.complete = False
        out.model = one(("model",), data["model"]) if "model" in data else out.plant
        rto = data.get("rto")
        if isinstance(rto, Mapping) and "model" in rto:
            out.rto_model = one(("rto", "model"), rto["model"])
        else:
            out.rto_model = out.model
        return out

    def units(self) -> dict[str, str]:
        """Signal (and parameter) name -> SI unit over the loaded models (plant first)."""
        units: dict[str, str] = {}
        for m in (self.rto_model, self.model, self.plant):
            if m is None:
                continue
            for group in (m.x, m.u, m.d, m.p, m.y):
                for s in group:
                    units[s.name] = s.unit
        return units


class _Checker:
    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, **kw: Any) -> None:
        self.problems.append(Problem(loc, message, self.file, **kw))

    def names(
        self,
        loc: Loc,
        given: Iterable[str],
        known: Sequence[str],
        what: str,
        *,
        keyed: bool = False,
    ) -> None:
        for n in given:
            if n not in known:
                near = difflib.get_close_matches(n, known, n=1)
                short, _, detail = what.partition(" (")
                self.add(
                    (*loc, n) if keyed else loc,
                    f"unknown {short} {n!r}",
                    expected=(f"{detail.rstrip(')')}: " if detail else "")
                    + f"one of {', '.join(known) or '(none)'}",
                    suggestion=near[0] if near else "",
                )


def cross_check(cfg: UnitSections, models: LoadedModels, file: Path | None) -> list[Problem]:
    """Every cross-section problem of ``cfg`` against its models."""
    c = _Checker(file)
    plant, model = models.plant, models.model
    if plant is None or model is None:
        return c.problems
    pc = cfg.plant
    c.names(("plant", "x0"), pc.x0, plant.x.names, "state", keyed=True)
    c.names(("plant", "u0"), pc.u0, plant.u.names, "MV", keyed=True)
    c.names(("plant", "d"), pc.d, plant.d.names, "measured disturbance", keyed=True)
    c.names(("plant", "p"), pc.p, plant.p.names, "parameter", keyed=True)
    c.names(
        ("plant", "noise_std"),
        pc.noise_std,
        (*plant.y.names, *plant.d.names),
        "measured signal",
        keyed=True,
    )
    if cfg.model is not None:
        c.names(("model", "p"), cfg.model.p, model.p.names, "parameter", keyed=True)
        if set(model.u.names) != set(plant.u.names):
            c.add(
                ("model", "name"),
                f"the model's MVs {model.u.names} differ from the plant's {plant.u.names}",
            )
    _check_timing(c, cfg, model)
    if cfg.mpc is not None:
        _check_mpc(c, cfg, plant, model)
    if cfg.estimator is not None:
        est = cfg.estimator
        both = tuple(n for n in model.y.names if n in plant.y)
        c.names(
            ("estimator", "measured"),
            est.measured,
            both,
            "measured output (an output of both plant and model)",
        )
        c.names(
            ("estimator", "output_disturbances"), est.output_disturbances, model.y.names, "output"
        )
        c.names(("estimator", "input_disturbances"), est.input_disturbances, model.u.names, "MV")
        c.names(
            ("estimator", "measurement_std"),
            est.measurement_std,
            est.measured,
            "measured output",
            keyed=True,
        )
        c.names(("estimator", "x0"), est.x0, model.x.names, "state", keyed=True)
        aug = (
            *model.x.names,
            *(f"dy_{n}" for n in est.output_disturbances),
            *(f"du_{n}" for n in est.input_disturbances),
        )
        c.names(("estimator", "process_std"), est.process_std, aug, "augmented state", keyed=True)
        c.names(("estimator", "initial_std"), est.initial_std, aug, "augmented state", keyed=True)
    if cfg.loop.mv_in_service is not None:
        c.names(("loop", "mv_in_service"), cfg.loop.mv_in_service, model.u.names, "MV")
    c.names(
        ("transport", "max_rate_per_s"),
        cfg.transport.max_rate_per_s,
        plant.u.names,
        "MV",
        keyed=True,
    )
    _check_rto(c, cfg, plant, model, models.rto_model)
    from rtompc.config.scenario import ScenarioConfig

    if isinstance(cfg, ScenarioConfig):
        from rtompc.config.scenario_checks import check_scenario

        c.problems.extend(check_scenario(cfg, plant, model, file))
    elif cfg.transport.kind is TransportKind.OPCUA and cfg.transport.endpoint is None:
        c.add(
            ("transport", "endpoint"),
            "missing: an OPC UA transport needs the server URL",
            expected="opc.tcp://host:port[/path]",
        )
    if cfg.transport.user is not None and cfg.transport.password_env is None:
        c.add(
            ("transport", "password_env"),
            "missing: a user needs a password",
            expected="the name of an environment variable holding the password",
        )
    return c.problems


def _check_timing(c: _Checker, cfg: UnitSections, model: PlantModel) -> None:
    loop_dt = cfg.loop.sample_time_s
    mpc_dt = cfg.mpc.sample_time_s if cfg.mpc is not None else None
    if loop_dt is None and mpc_dt is None:
        c.add(
            ("loop", "sample_time_s"),
            "missing: no control period",
            expected="loop.sample_time_s (or mpc.sample_time_s), seconds",
        )
    if (
        loop_dt is not None
        and mpc_dt is not None
        and not math.isclose(loop_dt, mpc_dt, rel_tol=1e-9)
    ):
        c.add(
            ("mpc", "sample_time_s"),
            f"{mpc_dt:g} s differs from loop.sample_time_s {loop_dt:g} s",
            expected="the same control period in both (or give one)",
        )
    dt = loop_dt or mpc_dt
    if (
        dt is not None
        and not model.is_continuous
        and model.sample_time_s is not None
        and not math.isclose(model.sample_time_s, dt, rel_tol=1e-9)
    ):
        c.add(
            ("loop", "sample_time_s"),
            f"{dt:g} s differs from the discrete-time model's "
            f"sample time {model.sample_time_s:g} s",
        )


def _check_mpc(c: _Checker, cfg: UnitSections, plant: PlantModel, model: PlantModel) -> None:
    assert cfg.mpc is not None  # noqa: S101 - the caller checked
    for i, cv in enumerate(cfg.mpc.cvs):
        c.names(
            ("mpc", "cvs", i, "name"), [cv.name], model.y.names, f"CV (an output of {model.name!r})"
        )
    for i, mv in enumerate(cfg.mpc.mvs):
        loc: Loc = ("mpc", "mvs", i)
        if mv.name not in model.u:
            c.names((*loc, "name"), [mv.name], model.u.names, f"MV (an input of {model.name!r})")
            continue
        if mv.name not in plant.u:
            continue
        sig = plant.u[mv.name]
        if mv.lower is not None and mv.lower < sig.lower:
            c.add(
                (*loc, "lower"),
                f"{mv.lower:g} {sig.unit} is below the plant's lower limit "
                f"{sig.lower:g} {sig.unit}",
                expected=f"within [{sig.lower:g}, {sig.upper:g}]",
            )
        if mv.upper is not None and mv.upper > sig.upper:
            c.add(
                (*loc, "upper"),
                f"{mv.upper:g} {sig.unit} is above the plant's upper limit "
                f"{sig.upper:g} {sig.unit}",
                expected=f"within [{sig.lower:g}, {sig.upper:g}]",
            )
    if cfg.mpc.robust:
        c.names(("mpc", "robust"), cfg.mpc.robust, model.p.names, "parameter", keyed=True)
    if not cfg.mpc.cvs and not any(m.weight > 0 for m in cfg.mpc.mvs):
        c.add(
            ("mpc", "cvs"),
            "the controller has no objective: no CVs and no MV weights",
            expected="at least one [[mpc.cvs]] with weight and target, zone or limits",
        )


def _check_rto(
    c: _Checker,
    cfg: UnitSections,
    plant: PlantModel,
    model: PlantModel,
    rto_model: PlantModel | None,
) -> None:
    if cfg.loop.rto_every_n > 0 and cfg.rto is None:
        c.add(("loop", "rto_every_n"), "needs an [rto] section (there is nothing to run)")
    if cfg.economics is not None:
        eco = cfg.economics
        c.names(
            ("economics", "prices"),
            eco.prices,
            (*plant.u.names, *plant.d.names, *plant.y.names),
            "stream (u, d or y signal)",
            keyed=True,
        )
        c.names(
            ("economics", "limits"),
            eco.limits,
            (*plant.u.names, *plant.y.names),
            "u or y signal",
            keyed=True,
        )
        if eco.decisions is not None:
            c.names(("economics", "decisions"), eco.decisions, plant.u.names, "MV")
    if cfg.rto is None:
        return
    rto = cfg.rto
    if cfg.economics is None:
        c.add(("rto",), "an RTO layer needs an [economics] table with prices")
    c.names(("rto", "handoff_cvs"), rto.handoff_cvs, model.y.names, "output")
    if rto.handoff_mvs is not None:
        c.names(("rto", "handoff_mvs"), rto.handoff_mvs, model.u.names, "MV")
    c.names(
        ("rto", "max_rate"),
        rto.max_rate,
        (*model.u.names, *model.y.names),
        "u or y signal",
        keyed=True,
    )
    steady_known = (*model.y.names, *model.d.names, *model.u.names)
    c.names(
        ("rto", "steady_signals"), rto.steady_signals, steady_known, "output, disturbance or MV"
    )
    for key in ("steady_tolerance", "max_spread"):
        c.names(
            ("rto", key),
            getattr(rto, key),
            rto.steady_signals or steady_known,
            "steady signal",
            keyed=True,
        )
    if rto.steady_window_s > 0 and not (rto.steady_signals or rto.handoff_cvs):
        c.add(
            ("rto", "steady_signals"),
            "the steady-state gate needs signals to test",
            expected="steady_signals or handoff_cvs",
        )
    if rto_model is not None:
        c.names(("rto", "modifier", "step"), rto.modifier.step, rto_model.u.names, "MV", keyed=True)
        if rto.estimation is not None:
            c.names(
                ("rto", "estimation", "parameters"),
                rto.estimation.parameters,
                rto_model.p.names,
                "parameter of the RTO model",
            )
            c.names(
                ("rto", "estimation", "measured"),
                rto.estimation.measured,
                rto_model.y.names,
                "output of the RTO model",
            )
        if set(rto_model.u.names) != set(model.u.names):
            c.add(
                ("rto", "model", "name"),
                f"the RTO model's MVs {rto_model.u.names} differ "
                f"from the controller model's {model.u.names}",
            )


def event_signals(
    kind: EventKind, plant: PlantModel, model: PlantModel
) -> tuple[tuple[str, ...], str]:
    """Signals an event of ``kind`` may name, and what they are (for messages)."""
    if kind is EventKind.SETPOINT:
        return (*model.y.names, *model.u.names), "CV or MV of the model"
    if kind is EventKind.PRICE:
        return (*plant.u.names, *plant.d.names, *plant.y.names), "stream"
    if kind in (EventKind.DISTURBANCE_STEP, EventKind.DISTURBANCE_RAMP):
        return plant.d.names, "measured disturbance of the plant"
    if kind is EventKind.PARAMETER_DRIFT:
        return plant.p.names, "parameter of the plant"
    if kind is EventKind.SENSOR_FAULT:
        return (*plant.y.names, *plant.d.names), "measured signal"
    if kind is EventKind.ACTUATOR_FAULT:
        return plant.u.names, "MV"
    return (), ""


__all__ = ["LoadedModels", "ModelRef", "cross_check", "event_signals"]
