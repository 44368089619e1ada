"""Engineering-unit conversion at the plant edge: a small table of affine maps to SI.

Inside the engine every value is SI (the model's signal units). Tag maps may
name the unit a PLC tag carries (``"degC"``, ``"bar"``, ``"t/h"``, ...); this
module converts between such a unit and the model's unit with
``si = raw * scale + offset``. Only units in :data:`UNITS` (and the SI symbols
themselves) are known; anything else raises :class:`ConfigError` naming the
unit, so a typo never silently means "no conversion".
"""

from __future__ import annotations

from dataclasses import dataclass

from plant_models.errors import ConfigError


@dataclass(frozen=True)
class UnitDef:
    """How one engineering unit maps to its SI unit: ``si = raw * scale + offset``."""

    si_unit: str
    """SI unit symbol the engineering unit converts to (as used in model signals)."""
    scale: float
    """Multiplier from the engineering unit to SI."""
    offset: float = 0.0
    """Additive offset after scaling (temperatures)."""


_H = 3600.0
_C0 = 273.15

UNITS: dict[str, UnitDef] = {
    # temperature
    "K": UnitDef("K", 1.0),
    "degC": UnitDef("K", 1.0, _C0),
    "°C": UnitDef("K", 1.0, _C0),
    "C": UnitDef("K", 1.0, _C0),
    "degF": UnitDef("K", 5.0 / 9.0, _C0 - 32.0 * 5.0 / 9.0),
    # pressure
    "Pa": UnitDef("Pa", 1.0),
    "kPa": UnitDef("Pa", 1e3),
    "MPa": UnitDef("Pa", 1e6),
    "bar": UnitDef("Pa", 1e5),
    "mbar": UnitDef("Pa", 1e2),
    # mass flow
    "kg/s": UnitDef("kg/s", 1.0),
    "kg/h": UnitDef("kg/s", 1.0 / _H),
    "t/h": UnitDef("kg/s", 1e3 / _H),
    # volume flow
    "m^3/s": UnitDef("m^3/s", 1.0),
    "m^3/h": UnitDef("m^3/s", 1.0 / _H),
    "m³/s": UnitDef("m^3/s", 1.0),  # UNECE display names (OPC UA EUInformation, e.g. node-opcua)
    "m³/h": UnitDef("m^3/s", 1.0 / _H),
    "l/h": UnitDef("m^3/s", 1e-3 / _H),
    "l/min": UnitDef("m^3/s", 1e-3 / 60.0),
    # power and heat flow
    "W": UnitDef("W", 1.0),
    "kW": UnitDef("W", 1e3),
    "MW": UnitDef("W", 1e6),
    "kJ/h": UnitDef("W", 1e3 / _H),
    "MJ/h": UnitDef("W", 1e6 / _H),
    # rates and time
    "1/s": UnitDef("1/s", 1.0),
    "1/min": UnitDef("1/s", 1.0 / 60.0),
    "1/h": UnitDef("1/s", 1.0 / _H),
    "r/min": UnitDef("1/s", 1.0 / 60.0),  # UNECE "RPM" display name (drives)
    "rpm": UnitDef("1/s", 1.0 / 60.0),
    "s": UnitDef("s", 1.0),
    "min": UnitDef("s", 60.0),
    "h": UnitDef("s", _H),
    # volume, length, mass
    "m^3": UnitDef("m^3", 1.0),
    "m³": UnitDef("m^3", 1.0),
    "l": UnitDef("m^3", 1e-3),
    "m": UnitDef("m", 1.0),
    "cm": UnitDef("m", 1e-2),
    "mm": UnitDef("m", 1e-3),
    "kg": UnitDef("kg", 1.0),
    "t": UnitDef("kg", 1e3),
    # concentration
    "mol/m^3": UnitDef("mol/m^3", 1.0),
    "mol/l": UnitDef("mol/m^3", 1e3),
    "mmol/l": UnitDef("mol/m^3", 1.0),
    "kg/m^3": UnitDef("kg/m^3", 1.0),
    "g/l": UnitDef("kg/m^3", 1.0),
    # dimensionless
    "1": UnitDef("1", 1.0),
    "%": UnitDef("1", 1e-2),
    "ppm": UnitDef("1", 1e-6),
}
"""Known engineering units. Add a line here rather than converting by hand elsewhere."""


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


def _lookup(unit: str, where: str) -> UnitDef:
    try:
        return UNITS[unit]
    except KeyError:
        raise ConfigError(
            f"{where}: unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}"
        ) from None


def conversion(from_unit: str, to_unit: str, *, where: str = "unit conversion") -> Conversion:
    """The affine map from ``from_unit`` to ``to_unit``; both must share an SI unit.

    Identical unit strings always convert by identity, even when not in the table
    (a model may use an SI unit the table does not list).
    """
    if from_unit == to_unit:
        return Conversion(from_unit, to_unit)
    src = _lookup(from_unit, where)
    dst = _lookup(to_unit, where)
    if src.si_unit != dst.si_unit:
        raise ConfigError(
            f"{where}: cannot convert {from_unit!r} ({src.si_unit}) to {to_unit!r} ({dst.si_unit})"
        )
    # raw -> SI: raw*s1 + o1 ; SI -> dst: (si - o2)/s2
    scale = src.scale / dst.scale
    offset = (src.offset - dst.offset) / dst.scale
    return Conversion(from_unit, to_unit, scale, offset)


def same_unit(a: str, b: str) -> bool:
    """True when two unit strings mean the same unit (``"degC"`` and ``"°C"``, ...)."""
    if a.strip() == b.strip():
        return True
    ua_, ub = UNITS.get(a.strip()), UNITS.get(b.strip())
    return ua_ is not None and ua_ == ub
