"""SI unit strings to OPC UA EngineeringUnits (UNECE Recommendation 20 common codes).

OPC UA (Part 8, 5.6.3) identifies engineering units by the UNECE Rec. 20
common code packed into an Int32 ``UnitId`` (each ASCII character one byte,
e.g. ``"KEL"`` -> 0x004B454C) under the namespace
``http://www.opcfoundation.org/UA/units/un/cefact``. This module owns the small
table of units our plants use; an unknown unit keeps its text as display name
with ``UnitId = -1`` (OPC UA's "no code").
"""

from __future__ import annotations

from dataclasses import dataclass

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
"""NamespaceUri of EUInformation for UNECE codes."""

# SI unit string (as written in Signal.unit) -> (UNECE common code, description)
_UNECE: dict[str, tuple[str, str]] = {
    "K": ("KEL", "kelvin"),
    "Pa": ("PAL", "pascal"),
    "bar": ("BAR", "bar"),
    "m": ("MTR", "metre"),
    "m^2": ("MTK", "square metre"),
    "m^3": ("MTQ", "cubic metre"),
    "s": ("SEC", "second"),
    "1/s": ("C97", "reciprocal second"),
    "W": ("WTT", "watt"),
    "J": ("JOU", "joule"),
    "kg": ("KGM", "kilogram"),
    "kg/s": ("KGS", "kilogram per second"),
    "kg/m^3": ("KMQ", "kilogram per cubic metre"),
    "m^3/s": ("MQS", "cubic metre per second"),
    "m/s": ("MTS", "metre per second"),
    "mol": ("C34", "mole"),
    "mol/m^3": ("C36", "mole per cubic metre"),
    "mol/s": ("E95", "mole per second"),
    "J/mol": ("B15", "joule per mole"),
    "1": ("C62", "one"),
    "%": ("P1", "percent"),
}


@dataclass(frozen=True)
class EngineeringUnit:
    """An engineering unit as OPC UA's EUInformation wants it."""

    unit_id: int
    """UNECE code packed into an integer, or -1 when the unit has no code in the table."""
    display_name: str
    """Short symbol shown to operators (the SI unit string)."""
    description: str
    """Long name of the unit."""
    namespace_uri: str = UNECE_NAMESPACE
    """Namespace of ``unit_id``."""


def unece_unit_id(code: str) -> int:
    """Pack a UNECE common code into OPC UA's Int32 UnitId (Part 8, 5.6.3)."""
    value = 0
    for ch in code.upper():
        value = (value << 8) | ord(ch)
    return value


def engineering_unit(unit: str) -> EngineeringUnit:
    """The EngineeringUnit of an SI unit string; falls back to the text with ``unit_id=-1``."""
    entry = _UNECE.get(unit.strip())
    if entry is None:
        return EngineeringUnit(unit_id=-1, display_name=unit, description=unit)
    code, description = entry
    return EngineeringUnit(unit_id=unece_unit_id(code), display_name=unit, description=description)
