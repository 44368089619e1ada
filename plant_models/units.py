"""Units for people, SI inside: one pint registry with site units, and conversions to SI.

Every number inside the engine is in its signal's SI unit (``Signal.unit``).
People and PLCs speak engineering units; this module is the one place that
converts, with `pint <https://pint.readthedocs.io>`_:

- :func:`registry` — pint's registry extended with the units of process plants
  that pint lacks or spells differently: ``rpm`` / ``r/min`` (revolutions per
  minute, a revolution counted as 1, so ``1500 rpm`` is 25 1/s), ``t/h``,
  ``Nm3/h`` (normal cubic metres, counted as m³), ``barg`` (gauge bar, 1 atm
  offset), ``%``, ``ppm``, currencies (``USD``, ``EUR``, ``$``).
- :func:`to_si` — a config value (a bare number, already SI, or a string with
  a unit such as ``"126.85 degC"``, ``"1.09 mol/l"``, ``"5 kW/min"``,
  ``"1500 rpm"``) in a given SI unit; ``difference=True`` for spreads, standard
  deviations and biases (``"2 degC"`` is then 2 K, not 275.15 K).
- :func:`conversion` — the affine map ``si = raw * scale + offset`` between a
  tag's engineering unit and the model's unit (used by tag maps).
- :data:`UNECE_CODES` — OPC UA EngineeringUnits (UNECE Rec. 20 common codes)
  to unit text, so ``RPM``, ``TNH`` (t/h), ``BAR`` ... map to pint units.

Every problem raises :class:`~plant_models.errors.ConfigError` naming ``where``
and what was expected (the unit's dimension).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pint

from plant_models.errors import ConfigError

_DEFINITIONS = (
    "revolution_count = [] = rev_count",
    "rpm_site = 1 / minute = rpm_ = r_per_min",
    "barg = bar; offset: 1.01325",
    "normal_cubic_meter = meter ** 3 = Nm3 = Nm³",
    "currency = [currency]",
    "USD = currency = dollar_us",
    "EUR = currency = euro",
    "ppm_site = 1e-6 = ppm_",
)
"""Site units added to pint's defaults."""

ALIASES: dict[str, str] = {
    "°C": "degC",
    "C": "degC",
    "°F": "degF",
    "rpm": "r_per_min",
    "r/min": "r_per_min",
    "RPM": "r_per_min",
    "1/min": "1/minute",
    "m³": "m^3",
    "m³/s": "m^3/s",
    "m³/h": "m^3/h",
    "Nm3/h": "Nm3/h",
    "Nm³/h": "Nm3/h",
    "%": "percent",
    "ppm": "ppm_",
    "1": "dimensionless",
    "": "dimensionless",
    "$": "USD",
    "$/s": "USD/s",
}
"""Unit spellings of tag maps and PLCs that pint reads differently (``C`` is coulomb in pint;
on a process plant it is degrees Celsius)."""

UNECE_CODES: dict[str, str] = {
    "KEL": "K",
    "CEL": "degC",
    "FAH": "degF",
    "PAL": "Pa",
    "KPA": "kPa",
    "MPA": "MPa",
    "BAR": "bar",
    "MBR": "mbar",
    "MTR": "m",
    "CMT": "cm",
    "MMT": "mm",
    "MTK": "m^2",
    "MTQ": "m^3",
    "LTR": "l",
    "SEC": "s",
    "MIN": "min",
    "HUR": "h",
    "C97": "1/s",
    "RPM": "r_per_min",
    "RPS": "1/s",
    "WTT": "W",
    "KWT": "kW",
    "MAW": "MW",
    "JOU": "J",
    "KGM": "kg",
    "TNE": "t",
    "KGS": "kg/s",
    "KGH": "kg/h",
    "TNH": "t/h",
    "KMQ": "kg/m^3",
    "MQS": "m^3/s",
    "MQH": "m^3/h",
    "MTS": "m/s",
    "C34": "mol",
    "C36": "mol/m^3",
    "C38": "mol/l",
    "E95": "mol/s",
    "B15": "J/mol",
    "C62": "dimensionless",
    "P1": "percent",
    "59": "ppm_",
    "VLT": "V",
    "AMP": "A",
}
"""UNECE Rec. 20 common code (OPC UA EUInformation.UnitId) -> unit text pint reads."""

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)\s*(.*?)\s*$")


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The one unit registry (pint defaults plus the site units)."""
    reg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    for line in _DEFINITIONS:
        reg.define(line)
    return reg


def _text(unit: str) -> str:
    u = unit.strip()
    if u in ALIASES:
        return ALIASES[u]
    for src, dst in (("°C", "degC"), ("°F", "degF"), ("³", "^3"), ("²", "^2")):
        u = u.replace(src, dst)
    u = re.sub(r"\br/min\b", "r_per_min", u)
    u = re.sub(r"\brpm\b", "r_per_min", u)
    return u


@lru_cache(maxsize=512)
def parse_unit(unit: str, where: str = "unit") -> pint.Unit:
    """A pint unit from its text (aliases and UNECE display names understood)."""
    if not isinstance(unit, str):
        raise ConfigError(f"{where}: expected a unit string, got {unit!r}")
    text = _text(unit)
    try:
        return registry().parse_units(text)
    except (
        pint.errors.UndefinedUnitError,
        pint.errors.DefinitionSyntaxError,
        AttributeError,
        TypeError,
        ValueError,
        AssertionError,
    ) as exc:
        raise ConfigError(f"{where}: unknown unit {unit!r} ({exc})") from None


def dimension(unit: str) -> str:
    """Readable dimension of a unit (``[length] / [time]``)."""
    return str(parse_unit(unit).dimensionality) or "dimensionless"


def split_quantity(text: str, where: str = "value") -> tuple[float, str]:
    """``"126.85 degC"`` -> ``(126.85, "degC")``; a number without a unit gives ``(x, "")``."""
    m = _NUMBER.match(text)
    if m is None:
        raise ConfigError(
            f"{where}: expected a number or 'number unit' (e.g. \"126.85 degC\"), got {text!r}"
        )
    return float(m.group(1)), m.group(2)


def check_quantity(text: str, where: str = "value") -> None:
    """Raise unless ``text`` is a number followed by a unit pint knows."""
    _, unit = split_quantity(text, where)
    if unit:
        parse_unit(unit, where)


def to_si(
    value: Any, si_unit: str | None, *, where: str = "value", difference: bool = False
) -> float:
    """A config value in the SI unit ``si_unit``.

    A bare number is already SI and is returned as a float. A string carries its
    unit; it is converted to ``si_unit`` (an error names ``where`` when the
    dimensions differ). With ``si_unit=None`` (the signal's unit is not known) the
    value goes to pint's SI base units. ``difference`` treats the value as a
    difference (standard deviation, bias, band): offsets of degC/degF/barg drop out.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a number or a string with a unit, got {value!r}")
    mag, unit = split_quantity(value, where)
    if not unit:
        return mag
    if difference:  # a difference of temperatures/gauge pressures carries no offset
        text = _text(unit)
        text = re.sub(r"(?<![A-Za-z_])(degC|degF)(?![A-Za-z_])", r"delta_\1", text)
        unit = re.sub(r"(?<![A-Za-z_])barg(?![A-Za-z_])", "bar", text)
    src = parse_unit(unit, where)
    reg = registry()
    dst = parse_unit(si_unit, where) if si_unit is not None else None
    try:
        if dst is None:
            q0 = reg.Quantity(0.0, src).to_base_units()
            q1 = reg.Quantity(mag, src).to_base_units()
            out = float(q1.magnitude - q0.magnitude) if difference else float(q1.magnitude)
        elif difference:
            out = float(
                reg.Quantity(mag, src).to(dst).magnitude - reg.Quantity(0.0, src).to(dst).magnitude
            )
        else:
            out = float(reg.Quantity(mag, src).to(dst).magnitude)
    except pint.errors.DimensionalityError:
        raise ConfigError(
            f"{where}: {value!r} is in {src.dimensionality} but the signal is in "
            f"{si_unit!r} ({dst.dimensionality if dst is not None else '?'})"
        ) from None
    if math.isnan(out):
        raise ConfigError(f"{where}: {value!r} is not a number")
    return out


def rate_unit(si_unit: str) -> str:
    """The unit of a rate of change of a signal in ``si_unit`` (per second)."""
    return f"({si_unit})/s" if si_unit not in ("1", "") else "1/s"


@dataclass(frozen=True)
class Conversion:
    """An affine map from an engineering unit to a model (SI) unit."""

    from_unit: str
    """Unit of the raw (tag) value."""
    to_unit: str
    """Unit of the model signal."""
    scale: float = 1.0
    """``model = raw * scale + offset``."""
    offset: float = 0.0
    """Additive offset of the map."""

    @property
    def identity(self) -> bool:
        """True when no arithmetic is needed."""
        return self.scale == 1.0 and self.offset == 0.0

    def to_model(self, raw: float) -> float:
        """Raw tag value -> model (SI) value."""
        return raw * self.scale + self.offset

    def to_raw(self, value: float) -> float:
        """Model (SI) value -> raw tag value."""
        return (value - self.offset) / self.scale


def conversion(from_unit: str, to_unit: str, *, where: str = "unit conversion") -> Conversion:
    """The affine map from ``from_unit`` to ``to_unit`` (same dimension, else ConfigError)."""
    if from_unit.strip() == to_unit.strip():
        return Conversion(from_unit, to_unit)
    src = parse_unit(from_unit, where)
    dst = parse_unit(to_unit, where)
    reg = registry()
    try:
        zero = float(reg.Quantity(0.0, src).to(dst).magnitude)
        one = float(reg.Quantity(1.0, src).to(dst).magnitude)
    except pint.errors.DimensionalityError:
        raise ConfigError(
            f"{where}: cannot convert {from_unit!r} ({src.dimensionality}) to {to_unit!r} "
            f"({dst.dimensionality})"
        ) from None
    scale, offset = one - zero, zero
    if math.isclose(scale, 1.0, rel_tol=1e-12):
        scale = 1.0
    if abs(offset) < 1e-12:
        offset = 0.0
    return Conversion(from_unit, to_unit, scale, offset)


def same_unit(a: str, b: str) -> bool:
    """True when two unit strings mean the same unit (``"degC"`` and ``"°C"``, ``rpm`` and
    ``r/min``); unknown units compare as text."""
    if a.strip() == b.strip():
        return True
    try:
        c = conversion(a, b)
    except ConfigError:
        return False
    return c.identity


def unece_unit(code: str) -> str | None:
    """Unit text of a UNECE common code (``"RPM"`` -> ``"r_per_min"``), None when unknown."""
    return UNECE_CODES.get(code.strip().upper())


def unece_code(unit: str) -> str | None:
    """The UNECE common code of a unit (same unit by pint, not by spelling), None if none."""
    for code, text in UNECE_CODES.items():
        if same_unit(unit, text):
            return code
    return None
