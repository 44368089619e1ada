"""SI unit strings to OPC UA EngineeringUnits (UNECE Recommendation 20 common codes).

OPC UA (Part 8, 5.6.3) identifies engineering units by the UNECE Rec. 20
common code packed into an Int32 ``UnitId`` (each ASCII character one byte,
e.g. ``"KEL"`` -> 0x004B454C) under the namespace
``http://www.opcfoundation.org/UA/units/un/cefact``. The code table lives in
:data:`plant_models.units.UNECE_CODES` (shared with the client side); a unit
pint does not match keeps its text as display name with ``UnitId = -1``
(OPC UA's "no code").
"""

from __future__ import annotations

from dataclasses import dataclass

from plant_models.errors import ConfigError
from plant_models.units import parse_unit, unece_code

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
"""NamespaceUri of EUInformation for UNECE codes."""


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
    """The EngineeringUnit of a unit string; falls back to the text with ``unit_id=-1``."""
    code = unece_code(unit)
    if code is None:
        return EngineeringUnit(unit_id=-1, display_name=unit, description=unit)
    try:
        description = str(parse_unit(unit))
    except ConfigError:  # pragma: no cover - unece_code found it, so pint reads it
        description = unit
    return EngineeringUnit(unit_id=unece_unit_id(code), display_name=unit, description=description)
