"""Multi-unit applications: ``[[unit]]`` tables, one app-level historian and plant-wide RTO.

A multi-unit file holds N units; each ``[[unit]]`` table has a ``name`` and the
sections of a single-unit config (``[unit.plant]``, ``[unit.transport]`` — its
own endpoint, i.e. its own PLC, or in-process —, ``[unit.loop]``,
``[[unit.mpc.cvs]]``, ``[unit.estimator]``, ...). App-level tables:
``[historian]`` (one file; each unit's run is a run of its own, named by the
unit) and ``[plantwide]`` (the plant-wide RTO). A single-unit file is a
:class:`SiteConfig` with one unit named ``unit.name`` or the file stem
(:func:`rtompc.config.load.load_site`)::

    [historian]
    path = "site.sqlite"

    [[unit]]
    name = "reactor"
    [unit.plant]
    name = "van_de_vusse"
    [unit.transport]
    kind = "opcua"
    endpoint = "opc.tcp://plc-reactor:4840"
    ...

    [[unit]]
    name = "tanks"
    [unit.plant]
    name = "quadruple_tank"
    ...

Signal values with units (``"1.09 mol/l"``) convert with the signal units of
their own unit's plant model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from rtompc.config.console_section import ConsoleSection
from rtompc.config.engine_server_section import EngineServerSection
from rtompc.config.fields import Section
from rtompc.config.model import AppConfig, HistorianSection, UnitName, UnitSections
from rtompc.config.plantwide_section import PlantwideSection

UNIT_SECTIONS = tuple(UnitSections.model_fields)
"""The sections each ``[[unit]]`` table may hold besides ``name``."""


def _name_first(schema: dict[str, Any]) -> None:
    """JSON Schema of a unit: ``name`` listed first (docs and editors)."""
    props = schema.get("properties", {})
    if "name" in props:
        schema["properties"] = {"name": props.pop("name"), **props}


class UnitConfig(UnitSections):
    """``[[unit]]``: one unit of a multi-unit application: its name and its own plant, model,
    transport (own endpoint = own PLC, or in-process), tags, loop (sample time, mode),
    estimator, NMPC, RTO and supervision."""

    model_config = ConfigDict(**UnitSections.model_config, json_schema_extra=_name_first)

    name: UnitName
    """The unit's name, unique in the file (snake_case: logs, historian runs, OPC UA objects
    and the console show units by it)."""

    @model_validator(mode="wrap")
    @classmethod
    def _own_units(
        cls, data: Any, handler: ModelWrapValidatorHandler[UnitConfig], info: ValidationInfo
    ) -> UnitConfig:
        """Validate with the signal units of this unit's own models (the loader puts them in
        the context, keyed by the table's identity)."""
        ctx = info.context
        per_unit = ctx.get("unit_units") if isinstance(ctx, dict) else None
        if not isinstance(per_unit, dict) or id(data) not in per_unit:
            return handler(data)
        saved = ctx.get("units")  # type: ignore[union-attr]
        ctx["units"] = per_unit[id(data)]  # type: ignore[index]
        try:
            return handler(data)
        finally:
            ctx["units"] = saved  # type: ignore[index]


class SiteConfig(Section):
    """A multi-unit application (``[[unit]]`` tables), or a single-unit one seen as one unit."""

    unit: list[UnitConfig] = Field(min_length=1)
    """The units (``[[unit]]`` tables), each run by its own control loop."""
    historian: HistorianSection | None = None
    """One historian for all units: each unit's run is a run in the file, named by the unit."""
    console: ConsoleSection | None = None
    """The live web console (served when the section is present or ``--console HOST:PORT``
    is given): every unit, by name."""
    engine_server: EngineServerSection | None = None
    """The engine's own OPC UA server: one object per unit under its Units folder (served when
    the section is present or ``--engine-server URL`` is given)."""
    plantwide: PlantwideSection | None = None
    """The plant-wide RTO setting every unit's targets (default: none; each unit keeps its own
    targets or its own ``[unit.rto]``)."""
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this config was read from (None when built in memory)."""
        return self._source

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        seen: set[str] = set()
        for u in self.unit:
            if u.name in seen:
                raise ValueError(f"unit name {u.name!r} is used twice: unit names must be unique")
            seen.add(u.name)
        return self

    @property
    def units(self) -> list[UnitConfig]:
        """The units in file order."""
        return list(self.unit)

    @property
    def names(self) -> tuple[str, ...]:
        """Unit names in file order."""
        return tuple(u.name for u in self.unit)

    def by_name(self, name: str) -> UnitConfig:
        """The unit called ``name`` (KeyError naming the known units otherwise)."""
        for u in self.unit:
            if u.name == name:
                return u
        raise KeyError(f"no unit {name!r}; units: {', '.join(self.names)}")

    @classmethod
    def from_app(cls, app: AppConfig) -> SiteConfig:
        """A single-unit application as a site of one unit (name ``unit.name`` or the file stem)."""
        fields = {f: getattr(app, f) for f in UNIT_SECTIONS}
        unit = UnitConfig.model_construct(name=app.unit_name(), **fields)
        unit._source = app.source
        site = cls.model_construct(
            unit=[unit],
            historian=app.historian,
            console=app.console,
            engine_server=app.engine_server,
            plantwide=None,
        )
        site._source = app.source
        return site


def attach_source(site: SiteConfig, file: Path | None) -> None:
    """Give the site and every unit its file, and each unit its key path (``("unit", i)``)
    for error messages."""
    site._source = file
    for i, u in enumerate(site.unit):
        u._source = file
        u._loc = ("unit", i)
