"""``[plantwide]``: the plant-wide RTO of a multi-unit application, from config alone.

The section describes a :class:`rto.plantwide.Site` over the application's
units (each unit's steady-state model is its RTO model, else its controller
model): the streams between units (``[[plantwide.stream]]``: an output of one
unit equals an input or a disturbance of another), what the RTO may move and
what it holds per unit (``[plantwide.units.NAME]``, with the unit's
steady-state gate and hand-off ramps), the objective (``[plantwide.objective]``:
a price per ``unit.signal``, in engineering units such as ``"40 USD/MWh"`` on a
power in W, converted to USD/s per SI unit), output limits
(``[plantwide.limits]``), run-time prices (a CSV price file, and every
disturbance a unit measures, so a price on an OPC UA tag is a disturbance in
that unit's tag map), zeroth-order modifier adaptation and the period.
:mod:`rtompc.plantwide_source` builds the RTO and its coordinator from it.

Names are checked against the units' models while the file loads (the loader
puts them in the validation context as ``site_models``): an unknown unit or
signal, a stream from an input, a limit on an input, or a price whose unit does
not fit its signal are errors naming the file, the key and what was expected.
Without ``objective`` the section only sets the coordinator's period (a target
source given in code, as the steel demo's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.units import rate_unit, to_si
from rto.plantwide import PriceSchedule
from rtompc.config.fields import _NUMBER_OR_QUANTITY, Name, PositiveSeconds, Section
from rtompc.config.paths import FilePath

Quantity = Annotated[Any, WithJsonSchema(_NUMBER_OR_QUANTITY)]
"""A number (SI) or a string with a unit; converted once the signal's unit is known."""
Pair = Annotated[
    list[Any],
    WithJsonSchema({"type": "array", "items": _NUMBER_OR_QUANTITY, "minItems": 2, "maxItems": 2}),
]
"""``[low, high]``, each a number (SI) or a string with a unit."""

KINDS = {"x": "state", "u": "input", "d": "disturbance", "y": "output"}
"""Signal groups by letter, for messages."""


class StreamKind(StrEnum):
    """What a stream carries."""

    GAS = "gas"
    STEAM = "steam"
    POWER = "power"
    MATERIAL = "material"


def site_models(info: ValidationInfo) -> Mapping[str, PlantModel]:
    """Unit name -> steady-state model from the validation context (empty without models)."""
    ctx = info.context or {}
    models = ctx.get("site_models", {}) if isinstance(ctx, Mapping) else {}
    return models if isinstance(models, Mapping) else {}


def split_key(key: str) -> tuple[str, str]:
    """``"unit.signal"`` -> (unit, signal); ValueError naming what was expected."""
    unit, dot, sig = str(key).partition(".")
    if not dot or not unit or not sig:
        raise ValueError(f"{key!r}: expected 'unit.signal' (a unit name, a dot, a signal name)")
    return unit, sig


def signal_kind(models: Mapping[str, PlantModel], key: str) -> tuple[str, PlantModel] | None:
    """The group letter of ``unit.signal`` and the unit's model (None without models);
    ValueError naming the known units or signals."""
    if not models:
        return None
    unit, sig = split_key(key)
    if unit not in models:
        raise ValueError(f"{key!r}: no unit {unit!r}; units: {', '.join(models)}")
    m = models[unit]
    for kind in ("u", "d", "y", "x"):
        if sig in getattr(m, kind):
            return kind, m
    raise ValueError(
        f"{key!r}: unit {unit!r} (model {m.name!r}) has no signal {sig!r}; outputs: "
        f"{', '.join(m.y.names)}; inputs: {', '.join(m.u.names)}; disturbances: "
        f"{', '.join(m.d.names) or '(none)'}"
    )


def _si(value: Any, unit: str, where: str) -> float:
    try:
        return to_si(value, unit, where=where)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class StreamConfig(Section):
    """``[[plantwide.stream]]``: one unit's output feeds another unit's input or disturbance."""

    name: Name
    """Stream name (reports, shadow prices), unique in the section."""
    kind: StreamKind = StreamKind.MATERIAL
    """What it carries: gas, steam, power or material."""
    source: str = Field(alias="from")
    """``"unit.output"``: where the stream comes from (an output of a unit's model)."""
    sink: str = Field(alias="to")
    """``"unit.input"`` or ``"unit.disturbance"``: where it goes (the sink's value becomes
    a decision of the site optimisation)."""

    @model_validator(mode="after")
    def _ends(self, info: ValidationInfo) -> StreamConfig:
        models = site_models(info)
        found = signal_kind(models, self.source)
        if found is not None and found[0] != "y":
            raise ValueError(
                f"from = {self.source!r} is an {KINDS[found[0]]}: a stream comes from an output"
            )
        found_to = signal_kind(models, self.sink)
        if found_to is not None and found_to[0] not in ("u", "d"):
            raise ValueError(
                f"to = {self.sink!r} is an {KINDS[found_to[0]]}: a stream goes to an input "
                "or a disturbance"
            )
        if found is not None and found_to is not None:
            su = found[1].y[split_key(self.source)[1]].unit
            dm = found_to[1]
            sig = split_key(self.sink)[1]
            du = (dm.u if sig in dm.u else dm.d)[sig].unit
            try:
                to_si(f"1 {su}", du, where="stream")
            except ConfigError:
                raise ValueError(
                    f"from = {self.source!r} is in {su} but to = {self.sink!r} is in {du}: "
                    "a stream joins signals of the same dimension"
                ) from None
        return self


class PlantwideUnit(Section):
    """``[plantwide.units.NAME]``: how the plant-wide RTO treats one unit (units not listed:
    every input is a decision, no state held, no steady-state gate)."""

    decisions: list[Name] | None = None
    """Inputs the RTO may move (default: all the model's inputs); the others stay at the
    values the unit applies."""
    held_states: list[Name] = Field(default_factory=list)
    """States fixed at the unit's estimate in the optimisation (integrating inventories such
    as gasholder contents: at steady state they neither fill nor empty)."""
    steady_signals: list[Name] = Field(default_factory=list)
    """Measured signals whose steadiness gates the unit's new targets (Cao & Rhinehart's
    R-statistic); empty: no gate."""
    steady_window: int = Field(default=15, ge=11)
    """Cycles of the unit in the steady-state test's window (at least 11: the R-statistic's
    filters warm up over 10 samples)."""
    steady_alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    """Significance level of the steady-state test."""
    max_rate: dict[Name, Quantity] = Field(default_factory=dict)
    """Ramp limit of the hand-off per input, the input's unit per second (``"1 m^3/s/min"``
    is converted); inputs not listed move in one step."""


class PlantwideSection(Section):
    """``[plantwide]``: the plant-wide RTO that sets every unit's targets."""

    enabled: bool = True
    """Run the plant-wide RTO (false: each unit keeps its configured targets)."""
    every_s: PositiveSeconds = Field(default=60.0)
    """Period of the plant-wide RTO, plant seconds."""
    objective: dict[str, Quantity] = Field(default_factory=dict)
    """Profit per ``"unit.signal"`` (input, disturbance or output): a price with its unit
    (``"40 USD/MWh"`` on a power, ``"0.3 USD/m^3"`` on a flow; ``1`` on a profit rate in
    USD/s) or a bare number in USD/s per SI unit of the signal. Costs are negative. Empty:
    no RTO is built from the config (the section only sets the coordinator's period)."""
    limits: dict[str, Pair] = Field(default_factory=dict)
    """``"unit.output" = [low, high]`` in the output's unit (``inf``/``-inf`` for none);
    inputs and states are bounded by their signals."""
    stream: list[StreamConfig] = Field(default_factory=list)
    """Streams between units (``[[plantwide.stream]]``)."""
    units: dict[str, PlantwideUnit] = Field(default_factory=dict)
    """Per-unit decisions, held states, steady-state gate and ramps, by unit name."""
    price_file: FilePath | None = None
    """CSV price file (relative to the config): header ``time_s,unit.signal,...``, one row per
    change, plant seconds and SI values; columns name disturbances (``steel.power_price``)
    or objective terms (their price, USD/s per SI unit). Read at start-up; it overrides the
    measured values."""
    measured_disturbances: bool = True
    """Take each unit's disturbances from its latest cycle (its tag map: a price published on
    an OPC UA tag is a disturbance mapped there); false: the model's nominal values."""
    trigger_signals: list[str] = Field(default_factory=list)
    """``"unit.disturbance"`` keys (prices on a unit's tags, or price-file columns) whose
    change by more than ``trigger_change`` starts an RTO run at once, between the periodic
    runs, with the value in force now. Such a price-triggered run re-optimises the model
    with the new prices: its targets pass the units' steady-state gates (still through the
    hand-off ramps and reachable targets); modifiers are only updated at steady state.
    Empty: runs every ``every_s`` only."""
    trigger_change: float = Field(default=0.05, gt=0.0)
    """Relative change of a trigger signal since the previous run that starts a run
    (0.05: 5 % of the previous value)."""
    modifier_adaptation: bool = False
    """Zeroth-order modifier adaptation: each measured limited output's bias (plant minus
    model at the applied optimum, filtered) corrects its limit in the next optimisation."""
    modifier_gain: float = Field(default=0.5, gt=0.0, le=1.0)
    """Filter gain K of the modifiers, in (0, 1] (1: no filtering)."""
    tolerance: float = Field(default=1e-8, gt=0.0)
    """IPOPT tolerance of the site optimisation."""

    @field_validator("objective", mode="after")
    @classmethod
    def _prices(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        models = site_models(info)
        out: dict[str, Any] = {}
        for key, price in value.items():
            if isinstance(price, bool) or not isinstance(price, int | float | str):
                raise ValueError(f"objective[{key!r}]: expected a number or a price with a unit")
            found = signal_kind(models, key)
            if found is None:
                out[key] = price
                continue
            kind, m = found
            if kind == "x":
                raise ValueError(f"objective[{key!r}]: a state is not priced; price an output")
            unit = getattr(m, kind)[split_key(key)[1]].unit
            unit = "dimensionless" if unit in ("1", "") else unit
            out[key] = _si(price, f"USD/s/({unit})", f"objective[{key!r}] (USD/s per {unit})")
        return out

    @field_validator("limits", mode="after")
    @classmethod
    def _limits(cls, value: dict[str, list[Any]], info: ValidationInfo) -> dict[str, list[Any]]:
        models = site_models(info)
        out: dict[str, list[Any]] = {}
        for key, pair in value.items():
            if len(pair) != 2:
                raise ValueError(f"limits[{key!r}]: expected [low, high], got {pair!r}")
            found = signal_kind(models, key)
            if found is None:
                out[key] = list(pair)
                continue
            kind, m = found
            if kind != "y":
                raise ValueError(
                    f"limits[{key!r}] is an {KINDS[kind]}: limits are on outputs; inputs and "
                    "states are bounded by their signals"
                )
            unit = m.y[split_key(key)[1]].unit
            lo, hi = (_si(v, unit, f"limits[{key!r}] ({unit})") for v in pair)
            if not lo <= hi:
                raise ValueError(f"limits[{key!r}]: low {lo} above high {hi}")
            out[key] = [lo, hi]
        return out

    @model_validator(mode="after")
    def _units(self, info: ValidationInfo) -> PlantwideSection:
        models = site_models(info)
        names = [s.name for s in self.stream]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"stream names used twice: {', '.join(sorted(dup))}")
        sinks = [s.sink for s in self.stream]
        dup = {n for n in sinks if sinks.count(n) > 1}
        if dup:
            raise ValueError(f"two streams feed {', '.join(sorted(dup))}: one stream per sink")
        columns: set[str] = set()
        if self.price_file is not None:
            try:
                schedule = PriceSchedule.from_csv(self.price_file)
            except ConfigError as exc:
                raise ValueError(f"price_file: {exc}") from None
            columns = set(schedule.columns)
            for col in schedule.columns:
                found = signal_kind(models, col)
                if found is not None and found[0] != "d" and col not in self.objective:
                    raise ValueError(
                        f"price_file {self.price_file}: column {col!r} is an "
                        f"{KINDS[found[0]]} and not an objective term: columns name "
                        "disturbances or objective terms"
                    )
        for key in self.trigger_signals:
            split_key(key)
            found = signal_kind(models, key)
            if found is not None and found[0] != "d" and key not in columns:
                raise ValueError(
                    f"trigger_signals: {key!r} is an {KINDS[found[0]]}: trigger signals are "
                    "disturbances (prices on a unit's tags) or price-file columns"
                )
        if not models:
            return self
        for name, cfg in self.units.items():
            if name not in models:
                raise ValueError(f"units.{name}: no unit {name!r}; units: {', '.join(models)}")
            m = models[name]
            for attr, kind in (("decisions", "u"), ("held_states", "x"), ("max_rate", "u")):
                for sig in getattr(cfg, attr) or []:
                    if sig not in getattr(m, kind):
                        raise ValueError(
                            f"units.{name}.{attr}: model {m.name!r} has no {KINDS[kind]} "
                            f"{sig!r}; {KINDS[kind]}s: {', '.join(getattr(m, kind).names)}"
                        )
            for sig in cfg.steady_signals:
                if sig not in m.y and sig not in m.d:
                    raise ValueError(
                        f"units.{name}.steady_signals: {sig!r} is not an output or disturbance "
                        f"of model {m.name!r}"
                    )
            for sig, rate in cfg.max_rate.items():
                per_s = rate_unit(m.u[sig].unit)
                v = _si(rate, per_s, f"units.{name}.max_rate[{sig!r}] ({per_s})")
                if not (math.isfinite(v) and v > 0):
                    raise ValueError(f"units.{name}.max_rate[{sig!r}]: expected > 0, got {v}")
        return self

    def rates(self, unit: str, model: PlantModel) -> dict[str, float]:
        """The unit's ramp limits in SI per second."""
        cfg = self.units.get(unit)
        if cfg is None:
            return {}
        return {
            sig: to_si(rate, rate_unit(model.u[sig].unit), where=f"units.{unit}.max_rate")
            for sig, rate in cfg.max_rate.items()
        }

    def prices(self) -> PriceSchedule | None:
        """The price file's schedule (None without one)."""
        return PriceSchedule.from_csv(self.price_file) if self.price_file is not None else None
