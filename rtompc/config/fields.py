"""Building blocks of the config model: the frozen base section and number types with units.

A number in a config may be written bare (SI) or as a string with a unit
(``"126.85 degC"``, ``"5 kW/min"``, ``"10 min"``); pint converts it
(:mod:`plant_models.units`). Three kinds of fields:

- :data:`Seconds` and friends: the unit is in the key name; a string with any
  time unit is converted to seconds.
- signal values (targets, limits, initial states): the unit is the signal's SI
  unit. The table that holds them converts them with the signal units passed in
  the validation context (``{"units": {signal: unit}}``, set by
  :mod:`rtompc.config.load` once the plant model is known). Without a model they
  go to SI base units, which equal every coherent SI unit.
- plain numbers (weights, penalties, gains): no unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from plant_models.errors import ConfigError
from plant_models.units import rate_unit, to_si

QUANTITY_PATTERN = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*\S.*$"
"""A number followed by a unit, e.g. ``126.85 degC``."""

_NUMBER_OR_QUANTITY = {
    "anyOf": [
        {"type": "number"},
        {
            "type": "string",
            "pattern": QUANTITY_PATTERN,
            "description": 'a number with a unit pint reads, e.g. "126.85 degC"',
        },
    ]
}


Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
"""A signal or parameter name."""


class Section(BaseModel):
    """Base of every config table: unknown keys are errors, values are frozen, every field
    documented (the attribute docstring is the description in the JSON Schema)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=False,
        populate_by_name=False,
    )


class UnitProblem:
    """A value whose unit did not fit its signal; the field's validator reports it (so the
    error carries the field's key path)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _unit_value(unit: str | None, *, difference: bool = False):  # type: ignore[no-untyped-def]
    def convert(value: Any) -> Any:
        if isinstance(value, UnitProblem):
            raise ValueError(value.message)
        if isinstance(value, str):
            try:
                return to_si(value, unit, where="value", difference=difference)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("value: ")) from None
        return value

    return convert


Seconds = Annotated[float, BeforeValidator(_unit_value("s")), WithJsonSchema(_NUMBER_OR_QUANTITY)]
"""A duration in seconds (``"10 min"`` is converted)."""

PositiveSeconds = Annotated[Seconds, Field(gt=0)]
"""A duration in seconds, > 0."""

SignalNumber = Annotated[
    float, BeforeValidator(_unit_value(None)), WithJsonSchema(_NUMBER_OR_QUANTITY)
]
"""A value of a signal: bare = the signal's SI unit; a string carries its unit."""

SignalDifference = Annotated[
    float, BeforeValidator(_unit_value(None, difference=True)), WithJsonSchema(_NUMBER_OR_QUANTITY)
]
"""A difference of a signal's values (std, bias, band): ``"2 degC"`` is 2 K."""


def signal_units(info: ValidationInfo) -> Mapping[str, str]:
    """Signal name -> SI unit from the validation context (empty without a model)."""
    ctx = info.context or {}
    units = ctx.get("units", {})
    return units if isinstance(units, Mapping) else {}


def convert_signal(
    value: Any,
    signal: str | None,
    info: ValidationInfo,
    *,
    difference: bool = False,
    rate: bool = False,
) -> Any:
    """Convert one signal value (string with unit) to the signal's SI unit; other input
    passes through for the field's own validation; a unit that does not fit becomes a
    :class:`UnitProblem` the field's validator reports."""
    if not isinstance(value, str):
        return value
    unit = signal_units(info).get(signal) if signal else None
    if unit is not None and rate:
        unit = rate_unit(unit)
    try:
        return to_si(value, unit, where="value", difference=difference)
    except ConfigError as exc:
        return UnitProblem(f"{signal}: " + str(exc).removeprefix("value: "))


def convert_signal_map(
    values: Any, info: ValidationInfo, *, difference: bool = False, rate: bool = False
) -> Any:
    """A ``{signal: value}`` table with each value converted to its signal's SI unit."""
    if not isinstance(values, Mapping):
        return values
    return {
        k: convert_signal(v, str(k), info, difference=difference, rate=rate)
        for k, v in values.items()
    }


def convert_fields(
    data: Any, signal: str | None, info: ValidationInfo, fields: Mapping[str, str]
) -> Any:
    """Convert the listed fields of a raw table (``fields``: name -> "value" | "difference" |
    "rate" | "pair") for ``signal``."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for name, kind in fields.items():
        if name not in out:
            continue
        v = out[name]
        if kind == "pair" and isinstance(v, list | tuple):
            out[name] = [convert_signal(x, signal, info) for x in v]
        elif kind != "pair":
            out[name] = convert_signal(
                v, signal, info, difference=kind == "difference", rate=kind == "rate"
            )
    return out


class SignalTable(Section):
    """A table about one signal (its ``name``) whose fields listed in ``_unit_fields`` carry
    that signal's unit: converted before validation (see :func:`convert_fields`)."""

    _unit_fields: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping):
            return convert_fields(data, data.get("name"), info, cls._unit_fields)
        return data
