"""Plant-wide scenario files: ``[scenario]``, ``[site]``, ``[[unit]]``, ``[[event]]``,
``[[fault]]`` and ``[[criterion]]`` with events and criteria addressed per unit.

A site scenario is a scenario whose application has several units: ``[[unit]]``
tables as in a multi-unit config (each with a ``name`` and its own ``[unit.plant]``,
``[unit.mpc]``, ``[unit.estimator]``, ``[unit.economics]``, ``[unit.rto]``,
``[unit.kpi]``, ...), and/or ``[site] config = "path/to/site.toml"`` naming a
multi-unit config whose units it runs (a ``[[unit]]`` table of the scenario with
the same name replaces that unit's sections). Events name their unit by
``unit = "furnace"`` or by a prefixed signal (``signal = "furnace.throughput"``);
link, mode and PLC events need ``unit``. Criteria name ``<unit>.<kpi>`` or
``site.<kpi>`` (:data:`rtompc.scenarios.site_spec.SITE_KPIS`). ``[plantwide]`` is the
plant-wide RTO of a multi-unit config (:mod:`rtompc.config.plantwide_section`), checked
against the units' models; its targets reach the units through the coordinator.

Each unit is validated as a single-unit scenario (its own models convert values
with units and cross-check signal names), and every problem is reported with the
key path of the scenario file (``event[3].signal``, ``unit[1].mpc.cvs[0]``) or of
the site config the unit came from, with its line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from plant_models import library
from rtompc.config.build_scenario import scenario_spec
from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.fields import PositiveSeconds, Section
from rtompc.config.lines import LineIndex
from rtompc.config.load import _problems, _with_line, read_toml, validate
from rtompc.config.plantwide_section import PlantwideSection
from rtompc.config.scenario import CriterionConfig, ScenarioConfig, ScenarioMeta
from rtompc.scenarios.site_spec import SITE_KPIS, UNIT_SITE_KPIS, SiteScenarioSpec
from rtompc.scenarios.spec import Criterion

TOP_KEYS = ("scenario", "site", "unit", "plantwide", "event", "fault", "criterion")
"""Tables a site scenario may hold at the top level."""
_UNIT_ONLY = ("comm_fault", "mode")
"""Event kinds without a signal: they name their unit with ``unit``."""


class LinkSection(Section):
    """``[[site.link]]``: one unit's plant output feeds another unit's plant disturbance (the
    gas a furnace fires is the network's furnace demand), as ``[[link]]`` of a HIL bench."""

    source: str = Field(alias="from")
    """``"unit.output"`` the stream comes from."""
    sink: str = Field(alias="to")
    """``"unit.disturbance"`` it sets."""


class SiteSection(Section):
    """``[site]``: where the units come from and how the coordinator runs."""

    config: str | None = None
    """A multi-unit config (``[[unit]]`` tables) whose units the scenario runs, relative to the
    scenario file; its ``[historian]``, ``[console]`` and endpoints are not used."""
    transport: Literal["inprocess", "opcua"] | None = None
    """Every unit's bench: ``inprocess`` (lockstep, default) or ``opcua`` (each unit its own HIL
    endpoint on loopback, lockstep: a multi-unit HIL bench). Default: each unit's own
    ``[unit.transport] kind``."""
    every_s: PositiveSeconds = Field(default=60.0)
    """Coordinator period, plant seconds."""
    hold_after_fallbacks: int = Field(default=3, ge=1)
    """Consecutive controller fallbacks after which the coordinator holds a unit's targets."""
    link: list[LinkSection] = []
    """Streams between the simulated plants (``[[site.link]]``): after every cycle of the
    source unit its output's true value becomes the sink unit's disturbance."""
    compare_fixed_setpoints: bool = False
    """Also run the site with every unit's RTO off and report ``site.profit_fixed`` and
    ``site.profit_gain`` (doubles the run time)."""


def is_site_scenario(data: Mapping[str, Any]) -> bool:
    """Whether a parsed scenario table is a plant-wide one (``[[unit]]`` or ``[site]``)."""
    return isinstance(data.get("unit"), list) or isinstance(data.get("site"), dict)


@dataclasses.dataclass
class _Unit:
    name: str
    table: dict[str, Any]
    file: Path
    text: str
    index: int
    from_scenario: set[str]
    events: list[tuple[tuple[str, int], dict[str, Any]]] = dataclasses.field(default_factory=list)
    criteria: list[tuple[int, dict[str, Any]]] = dataclasses.field(default_factory=list)


def _raw_units(
    data: Mapping[str, Any],
    site: SiteSection | None,
    file: Path,
    problems: list[Problem],
    config: dict[str, Any],
) -> list[_Unit]:
    """The units of the site config (its parsed table goes to ``config``) and of the file."""
    units: list[_Unit] = []
    if site is not None and site.config:
        cfg_path = (file.parent / site.config).resolve()
        try:
            cfg_text, cfg_data = read_toml(cfg_path)
        except ConfigProblems as exc:
            problems.append(
                Problem(("site", "config"), f"cannot read the site config: {exc.problems[0]}", file)
            )
            return []
        config.update(cfg_data, _path=cfg_path)
        raw = cfg_data.get("unit")
        if not isinstance(raw, list):
            problems.append(
                Problem(
                    ("site", "config"),
                    f"{cfg_path} has no [[unit]] tables",
                    file,
                    expected="a multi-unit config (docs/configuration.md#multi-unit-applications)",
                )
            )
            return []
        for i, t in enumerate(raw):
            if isinstance(t, dict):
                units.append(_Unit(str(t.get("name", "")), dict(t), cfg_path, cfg_text, i, set()))
    text = file.read_text(encoding="utf-8")
    for i, t in enumerate(data.get("unit", [])):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            problems.append(Problem(("unit", i, "name"), "each [[unit]] needs a name", file))
            continue
        known = next((u for u in units if u.name == t["name"]), None)
        if known is not None:  # the scenario replaces sections of the site config's unit
            known.table.update(t)
            known.from_scenario |= set(t)
            known.file, known.text, known.index = file, text, i
        else:
            units.append(_Unit(t["name"], dict(t), file, text, i, set(t)))
    if not units:
        problems.append(
            Problem(("unit",), "a site scenario needs units", file, expected="[[unit]] tables")
        )
    seen: set[str] = set()
    for u in units:
        if u.name in seen:
            problems.append(Problem(("unit", u.index, "name"), f"unit {u.name!r} twice", file))
        seen.add(u.name)
    if site is not None and site.transport is not None:
        for u in units:
            u.table["transport"] = {"kind": site.transport}
    return units


def _which_unit(
    loc: tuple[str, int], raw: dict[str, Any], units: dict[str, _Unit], file: Path
) -> tuple[_Unit | None, dict[str, Any], Problem | None]:
    ev = dict(raw)
    names = ", ".join(units)
    name = ev.pop("unit", None)
    signal = ev.get("signal")
    if name is None and isinstance(signal, str) and "." in signal:
        name, ev["signal"] = signal.split(".", 1)
        if name not in units:
            return (
                None,
                ev,
                Problem(
                    (*loc, "signal"),
                    f"{signal!r}: no unit {name!r}",
                    file,
                    expected=f"<unit>.<signal> with a unit of this site: {names}",
                ),
            )
    elif isinstance(signal, str) and signal.startswith(f"{name}."):
        ev["signal"] = signal.split(".", 1)[1]
    if name is None:
        return (
            None,
            ev,
            Problem(
                (*loc, "unit"),
                "which unit does this event act on?",
                file,
                expected=f'unit = "<name>" or signal = "<unit>.<signal>"; units: {names}',
            ),
        )
    if name not in units:
        return (
            None,
            ev,
            Problem((*loc, "unit"), f"no unit {name!r}", file, expected=f"one of: {names}"),
        )
    return units[name], ev, None


def _remap(p: Problem, u: _Unit, file: Path, text: str) -> Problem:
    """A problem of unit ``u``'s single-unit scenario, at its place in the real file(s)."""
    loc = p.loc
    head = loc[0] if loc else ""
    if head in ("event", "fault") and len(loc) > 1 and isinstance(loc[1], int):
        mine = [orig for orig, _ in u.events if orig[0] == head]
        return _located(p, (head, mine[loc[1]][1], *loc[2:]), file, text, u.name)
    if head == "criterion" and len(loc) > 1 and isinstance(loc[1], int):
        return _located(p, ("criterion", u.criteria[loc[1]][0], *loc[2:]), file, text, u.name)
    if head == "scenario":
        return _located(p, loc, file, text, u.name)
    in_scenario = not loc or head in u.from_scenario
    where, where_text = (file, text) if in_scenario else (u.file, u.text)
    return _located(p, ("unit", u.index, *loc), where, where_text, u.name)


def _located(p: Problem, loc: tuple[str | int, ...], file: Path, text: str, unit: str) -> Problem:
    moved = dataclasses.replace(
        p, loc=loc, file=file, line=None, notes=(*p.notes, f"unit {unit!r}")
    )
    return _with_line(moved, LineIndex(text))


def _check_links(site: SiteSection, specs: list[Any], file: Path, problems: list[Problem]) -> None:
    plants = {s.name: library.load(s.plant.name, **dict(s.plant.params)) for s in specs}
    for i, link in enumerate(site.link):
        for key, end, group, kind in (
            ("from", link.source, "y", "output"),
            ("to", link.sink, "d", "disturbance"),
        ):
            unit, _, sig = end.partition(".")
            plant = plants.get(unit)
            if plant is None or sig not in getattr(plant, group):
                known = ", ".join(getattr(plant, group).names) if plant is not None else ""
                problems.append(
                    Problem(
                        ("site", "link", i, key),
                        f"{end!r}: " + (f"no unit {unit!r}" if plant is None else f"no {kind}"),
                        file,
                        expected=f"'unit.{kind}'; "
                        + (
                            f"{kind}s of {unit}: {known}"
                            if plant
                            else f"units: {', '.join(plants)}"
                        ),
                    )
                )


def _plantwide(
    data: Mapping[str, Any],
    config: Mapping[str, Any],
    specs: list[Any],
    file: Path,
    problems: list[Problem],
) -> PlantwideSection | None:
    """``[plantwide]`` of the file, else of the site config, checked against every unit's
    model (the controller's model: a scenario unit has no separate RTO model for the site),
    as in a multi-unit config."""
    raw = data.get("plantwide")
    base, where = file.parent, file
    if raw is None and "plantwide" in config:
        raw, where = config["plantwide"], config["_path"]
        base = where.parent
    if raw is None:
        return None
    models = {}
    for spec in specs:
        m = library.load(spec.model.name, **dict(spec.model.params))
        models[spec.name] = m.with_nominal(p=dict(spec.model.p)) if spec.model.p else m
    try:
        return PlantwideSection.model_validate(raw, context={"site_models": models, "base": base})
    except ValidationError as exc:
        problems.extend(
            dataclasses.replace(p, loc=("plantwide", *p.loc), file=where)
            for p in _problems(exc, PlantwideSection, raw, where)
        )
        return None


def load_site_scenario(path: str | Path) -> SiteScenarioSpec:
    """Read, validate and cross-check a plant-wide scenario file (ConfigProblems naming the
    file, line and key path of every problem)."""
    file = Path(path)
    text, data = read_toml(file)
    index = LineIndex(text)
    problems: list[Problem] = []
    for key in data:
        if key not in TOP_KEYS:
            extra = (
                f"; put [{key}] in each [[unit]] table ([unit.{key}])"
                if key not in ("historian", "console", "engine_server")
                else "; a scenario has no " + key
            )
            problems.append(
                Problem(
                    (key,), f"[{key}] is not a site scenario table{extra}", file, allowed=TOP_KEYS
                )
            )
    meta: ScenarioMeta | None = None
    site: SiteSection | None = None
    try:
        meta = ScenarioMeta.model_validate(data.get("scenario", {}))
    except ValidationError as exc:
        problems.extend(
            dataclasses.replace(p, loc=("scenario", *p.loc))
            for p in _problems(exc, ScenarioMeta, data.get("scenario", {}), file)
        )
    try:
        site = SiteSection.model_validate(data.get("site", {}), context={"base": file.parent})
    except ValidationError as exc:
        problems.extend(
            dataclasses.replace(p, loc=("site", *p.loc))
            for p in _problems(exc, SiteSection, data.get("site", {}), file)
        )
    config: dict[str, Any] = {}
    units = {u.name: u for u in _raw_units(data, site, file, problems, config)}
    for kind in ("event", "fault"):
        for j, raw in enumerate(data.get(kind, [])):
            u, ev, problem = _which_unit((kind, j), dict(raw), units, file)
            if problem is not None:
                problems.append(problem)
            elif u is not None:
                u.events.append(((kind, j), ev))
    criteria: list[Criterion] = []
    for j, raw in enumerate(data.get("criterion", [])):
        kpi = raw.get("kpi") if isinstance(raw, dict) else None
        head, _, rest = str(kpi).partition(".")
        wrong = ""
        if head == "site" and rest not in SITE_KPIS:
            wrong = f"no site KPI {rest!r}; expected site.<kpi> with one of: {', '.join(SITE_KPIS)}"
        elif head != "site" and (head not in units or not rest):
            wrong = f"{kpi!r} names no unit; expected <unit>.<kpi> or site.<kpi>, units: " + (
                ", ".join(units)
            )
        elif head != "site" and rest not in UNIT_SITE_KPIS:
            # checked by the unit's own loader against the KPIs the unit produces
            units[head].criteria.append((j, {**raw, "kpi": rest}))
        if wrong:
            problems.append(Problem(("criterion", j, "kpi"), wrong, file))
            continue
        try:
            parsed = CriterionConfig.model_validate(raw)
            criteria.append(Criterion(j, parsed.kpi, parsed.op, parsed.threshold))
        except ValidationError as exc:
            problems.extend(
                dataclasses.replace(p, loc=("criterion", j, *p.loc))
                for p in _problems(exc, CriterionConfig, raw, file)
            )
    specs = []
    scen = dict(data.get("scenario", {}))
    for u in units.values():
        doc = {k: v for k, v in u.table.items() if k != "name"}
        doc["scenario"] = {**scen, "name": u.name}
        for kind in ("event", "fault"):
            doc[kind] = [ev for (k, _), ev in u.events if k == kind]
        doc["criterion"] = [c for _, c in u.criteria]
        try:
            cfg = validate(ScenarioConfig, doc, file=file, text="")
        except ConfigProblems as exc:
            problems.extend(_remap(p, u, file, text) for p in exc.problems)
            continue
        cfg._source = file
        specs.append(scenario_spec(cfg))
    plantwide = None
    if len(specs) == len(units):
        plantwide = _plantwide(data, config, specs, file, problems)
        if site is not None:
            _check_links(site, specs, file, problems)
    problems = [_with_line(p, index) for p in problems]
    if problems:
        raise ConfigProblems(problems, file)
    assert meta is not None and site is not None  # noqa: S101 - no problems: both validated
    return SiteScenarioSpec(
        path=file,
        name=meta.name or file.stem,
        description=meta.description,
        tags=tuple(meta.tags),
        duration_s=meta.duration_s,
        units=tuple(specs),
        criteria=tuple(sorted(criteria, key=lambda c: c.index)),
        every_s=site.every_s if math.isfinite(site.every_s) else 60.0,
        hold_after_fallbacks=site.hold_after_fallbacks,
        compare_fixed_setpoints=site.compare_fixed_setpoints,
        plantwide=plantwide,
        links=tuple((lk.source, lk.sink) for lk in site.link),
    )


__all__ = ["SiteSection", "is_site_scenario", "load_site_scenario"]
