"""Engineering units at the plant edge: the OPC UA EngineeringUnits (UNECE) side only.

Conversions between a tag's engineering unit and the model's SI unit live in
:mod:`plant_models.units` (pint, with site units such as ``r/min``, ``t/h``,
``Nm3/h``, ``barg``, ``%``); this module re-exports them for the tag map and
reads what a server says about a node's unit: an ``EUInformation`` gives a
UNECE common code (``UnitId``) and a display name, either of which may name
the unit.
"""

from __future__ import annotations

from plant_models.units import Conversion, conversion, same_unit, unece_unit

__all__ = ["Conversion", "conversion", "same_unit", "server_unit_matches", "unit_from_unece_id"]


def unit_from_unece_id(unit_id: int) -> str | None:
    """Unit text of an OPC UA ``UnitId`` (UNECE code packed into an Int32), None if unknown."""
    if unit_id <= 0:
        return None
    chars = []
    value = unit_id
    while value:
        chars.append(chr(value & 0xFF))
        value >>= 8
    return unece_unit("".join(reversed(chars)))


def server_unit_matches(display_name: str | None, unit_id: int | None, tag_unit: str) -> bool:
    """True when the server's EngineeringUnits (UNECE code or display name) mean ``tag_unit``.

    The UNECE code wins when the table knows it (``RPM`` and a tag in ``r/min`` match);
    otherwise the display name is compared through pint.
    """
    by_code = unit_from_unece_id(unit_id) if unit_id is not None else None
    if by_code is not None and same_unit(by_code, tag_unit):
        return True
    return bool(display_name) and same_unit(str(display_name), tag_unit)
